package embed_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// produceTexts puts texts on docs.raw as JSON documents, over two
// partitions.
func produceTexts(t *testing.T, cc pipeline.ClientConfig, texts []string) {
	t.Helper()
	pipetest.CreateTopics(t, cc, 2, pipeline.TopicRaw)
	var msgs []pipeline.Message
	for i, text := range texts {
		m := pipetest.JSONDoc(pipeline.TopicRaw, fmt.Sprint(i), text)
		m.Partition = i % 2
		msgs = append(msgs, m)
	}
	pipetest.Produce(t, cc, msgs...)
}

// savedState fits a tf-idf state on texts, saves it into dir and returns it
// loaded.
func savedState(t *testing.T, dir string, texts []string) *embed.State {
	t.Helper()
	s, err := embed.NewState(fitKind(t, embed.KindTfidf, texts), len(texts))
	if err != nil {
		t.Fatal(err)
	}
	v, err := embed.SaveState(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := embed.LoadState(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

func TestSampleTexts(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	_, texts := fixtureTexts(t, 6)
	produceTexts(t, cc, texts[:4])
	// An Arrow message of two documents, and messages that are no
	// documents: all skipped but the documents.
	db := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	db.Append(schemas.Document{ID: "x4", Text: texts[4]}, schemas.Origin{})
	db.Append(schemas.Document{ID: "x5", Text: texts[5]}, schemas.Origin{})
	rec := db.NewRecord()
	db.Release()
	payload, err := schemas.EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	pipetest.Produce(t, cc,
		pipeline.Message{Topic: pipeline.TopicRaw, Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)},
		pipeline.Message{Topic: pipeline.TopicRaw, Value: []byte("{not json"), Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)},
		pipeline.Message{Topic: pipeline.TopicRaw, Value: []byte(`{"id":"e","text":""}`), Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)},
	)
	tests := []struct {
		topic string
		n     int
		want  int
	}{
		{pipeline.TopicRaw, 100, 6},
		{pipeline.TopicRaw, 2, 2},
		{"no.such.topic", 100, 0},
	}
	for _, tc := range tests {
		got, err := embed.SampleTexts(context.Background(), cc, tc.topic, tc.n, schemas.Limits{}, quiet)
		if err != nil || len(got) != tc.want {
			t.Errorf("SampleTexts(%s, %d) = %d texts, %v; want %d", tc.topic, tc.n, len(got), err, tc.want)
		}
	}
}

// TestRunStageFitsAndShares: a first instance fits its featurizer on a
// sample of docs.raw, saves it and publishes it on router.models; a second
// instance, in a state dir of its own, picks up a newer state published
// there and swaps it in while it runs.
func TestRunStageFitsAndShares(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	_, texts := fixtureTexts(t, 60)
	produceTexts(t, cc, texts[:40])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The first instance: no state, so it fits on 30 sampled documents.
	dirA := t.TempDir()
	stages := make(chan *embed.Stage, 2)
	hold := func(ctx context.Context, st pipeline.Stage) error {
		stages <- st.(*embed.Stage)
		<-ctx.Done()
		return nil
	}
	ctxA, stopA := context.WithCancel(ctx)
	doneA := make(chan error, 1)
	go func() {
		doneA <- embed.RunStage(ctxA, embed.StageConfig{Client: cc, StateDir: dirA, FitSample: 30, Kind: embed.KindTfidf, Logger: quiet, Run: hold})
	}()
	stA := <-stages
	if s := stA.State(); s.Settings.Version != 1 || s.Settings.FitDocs != 30 {
		t.Fatalf("first instance: state v%d fitted on %d documents, want v1 on 30", s.Settings.Version, s.Settings.FitDocs)
	}
	if _, err := os.Stat(embed.StatePath(dirA, 1)); err != nil {
		t.Fatalf("the fitted state was not saved: %v", err)
	}
	ft, err := embed.NewFeaturizerTopic(cc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	onTopic, err := ft.Get(ctx, 1)
	if err != nil || onTopic == nil || !embed.SameState(onTopic, stA.State()) {
		t.Fatalf("router.models does not hold the fitted v1: %v", err)
	}

	// The second instance starts from v1 in a dir of its own; v2 appears
	// on router.models (a refit elsewhere) and reaches it.
	dirB := t.TempDir()
	if err := embed.SaveReceivedState(dirB, onTopic); err != nil {
		t.Fatal(err)
	}
	logsB := &pipetest.LogBuffer{}
	go func() {
		_ = embed.RunStage(ctx, embed.StageConfig{Client: cc, StateDir: dirB, State: onTopic, Watch: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logsB, nil)), Run: hold})
	}()
	stB := <-stages
	v2 := savedState(t, dirA, texts[20:60])
	if v2.Settings.Version != 2 {
		t.Fatalf("refit saved as v%d, want v2", v2.Settings.Version)
	}
	if err := ft.Publish(ctx, v2); err != nil {
		t.Fatal(err)
	}
	pipetest.Eventually(t, 20*time.Second, "the second instance on v2", func() bool { return stB.State().Settings.Version == 2 })
	if !embed.SameState(stB.State(), v2) || !strings.Contains(logsB.String(), "featurizer reloaded") {
		t.Fatalf("the second instance runs v%d, not the published v2\n%s", stB.State().Settings.Version, logsB.String())
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("first instance: %v", err)
	}
}

// TestRunStageDefaultRunner: without a Run hook the stage runs its own
// pipeline.Runner from docs.raw to docs.features.
func TestRunStageDefaultRunner(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	_, texts := fixtureTexts(t, 20)
	produceTexts(t, cc, texts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- embed.RunStage(ctx, embed.StageConfig{Client: cc, StateDir: t.TempDir(), Kind: embed.KindHashing, FitMin: 20,
			Options: embed.FitOptions{Hashing: embed.HashingConfig{Features: 1 << 10}}, Logger: quiet})
	}()
	pipetest.Eventually(t, 40*time.Second, "20 rows on docs.features", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the stage returned: %v", err)
		default:
		}
		msgs, err := pipetest.ReadTopic(ctx, cc, pipeline.TopicFeatures)
		if err != nil {
			return false
		}
		rows := 0
		for _, m := range msgs {
			d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
			if err != nil {
				t.Fatalf("docs.features@%d: %v", m.Offset, err)
			}
			rows += int(d.Rows())
			d.Release()
		}
		return rows == 20
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunStage after its ctx ended: %v", err)
	}
}

// TestPublishVerifiedFeaturizer: with the Arrow file of a state damaged, the
// state loads from its Parquet twin, and what is published on router.models
// is that state, verified, not the damaged bytes (issue 13).
func TestPublishVerifiedFeaturizer(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	dir := t.TempDir()
	_, texts := fixtureTexts(t, 30)
	state := savedState(t, dir, texts)
	arrowPath := embed.StatePath(dir, 1)
	data, err := os.ReadFile(arrowPath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(arrowPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ft, err := embed.NewFeaturizerTopic(cc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	if err := ft.PublishSaved(ctx, dir, 1); err != nil {
		t.Fatal(err)
	}
	msgs := pipetest.ReadAll(t, cc, pipeline.TopicRouterModels)
	if len(msgs) != 1 || string(msgs[0].Key) != embed.FeaturizerKey {
		t.Fatalf("router.models holds %d messages, want the featurizer", len(msgs))
	}
	v, got, err := embed.DecodeFeaturizerMessage(msgs[0])
	if err != nil {
		t.Fatalf("the published featurizer does not verify: %v", err)
	}
	twin, err := embed.LoadStateFile(schemas.ParquetTwin(arrowPath))
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 || !embed.SameState(got, twin) || !embed.SameState(got, state) {
		t.Fatalf("published v%d, not the state of the Parquet twin", v)
	}
}

// TestStagePhasesRideOutBrokerOutage runs the broker-facing phases of the
// embedding stage with the broker down: each retries, with a warning, until
// the broker is back, then finishes with the right result (issue 13).
func TestStagePhasesRideOutBrokerOutage(t *testing.T) {
	t.Parallel()
	_, texts := fixtureTexts(t, 40)
	phases := []struct {
		name  string
		setup func(t *testing.T, cc pipeline.ClientConfig) // with the broker up
		run   func(ctx context.Context, t *testing.T, cc pipeline.ClientConfig) error
	}{
		{
			name:  "sample docs.raw",
			setup: func(t *testing.T, cc pipeline.ClientConfig) { produceTexts(t, cc, texts[:5]) },
			run: func(ctx context.Context, t *testing.T, cc pipeline.ClientConfig) error {
				got, err := embed.SampleTexts(ctx, cc, pipeline.TopicRaw, 100, schemas.Limits{}, cc.Logger)
				if err == nil && len(got) != 5 {
					return fmt.Errorf("sampled %d texts, want 5", len(got))
				}
				return err
			},
		},
		{
			name: "share the featurizer",
			run: func(ctx context.Context, t *testing.T, cc pipeline.ClientConfig) error {
				state := savedState(t, t.TempDir(), texts)
				ft, err := embed.NewFeaturizerTopic(cc, nil)
				if err != nil {
					return err
				}
				defer ft.Close()
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ft.Share(wctx, t.TempDir(), state)
				s, err := ft.Get(ctx, 1)
				if err == nil && (s == nil || !embed.SameState(s, state)) {
					return fmt.Errorf("the featurizer was not published")
				}
				return err
			},
		},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			b := pipetest.StartRestartable(t, pipeline.BrokerConfig{Partitions: 2})
			logs := &pipetest.LogBuffer{}
			cc := b.Client()
			cc.Logger = slog.New(slog.NewTextHandler(logs, nil))
			if ph.setup != nil {
				ph.setup(t, cc)
			}
			b.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- ph.run(ctx, t, cc) }()
			pipetest.Eventually(t, 20*time.Second, "a retry while the broker is down", func() bool {
				select {
				case err := <-done:
					t.Fatalf("returned while the broker was down: %v\nlog:\n%s", err, logs.String())
				default:
				}
				return strings.Contains(logs.String(), "failed; retrying")
			})
			b.Start()
			if err := <-done; err != nil {
				t.Fatalf("after the broker came back: %v\nlog:\n%s", err, logs.String())
			}
		})
	}
}

// TestRunStageWaitsForFitSample: with no featurizer the stage waits for its
// fit sample instead of failing on an empty (even missing) input topic, and
// says what it waits for; it fits once FitMin documents are there and their
// count settled; with FitTimeout it fits on fewer, with a warning; and a
// stop while it waits is a clean return.
func TestRunStageWaitsForFitSample(t *testing.T) {
	t.Parallel()
	_, texts := fixtureTexts(t, 60)
	produce := func(t *testing.T, cc pipeline.ClientConfig, from, to int) {
		if from == 0 {
			pipetest.CreateTopics(t, cc, 2, pipeline.TopicRaw)
		}
		var msgs []pipeline.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, pipetest.JSONDoc(pipeline.TopicRaw, fmt.Sprint(i), texts[i]))
		}
		pipetest.Produce(t, cc, msgs...)
	}
	type stage struct {
		stages chan *embed.Stage
		done   chan error
		logs   *pipetest.LogBuffer
		cancel context.CancelFunc
	}
	start := func(t *testing.T, cfg embed.StageConfig) *stage {
		st := &stage{stages: make(chan *embed.Stage, 1), done: make(chan error, 1), logs: &pipetest.LogBuffer{}}
		cfg.StateDir, cfg.Kind, cfg.FitQuiet = t.TempDir(), embed.KindTfidf, 200*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		st.cancel = cancel
		finished := make(chan struct{})
		t.Cleanup(func() { cancel(); <-finished }) // before the state dir goes
		cfg.Logger = slog.New(slog.NewTextHandler(st.logs, nil))
		cfg.Run = func(ctx context.Context, s pipeline.Stage) error {
			st.stages <- s.(*embed.Stage)
			<-ctx.Done()
			return nil
		}
		go func() { st.done <- embed.RunStage(ctx, cfg); close(finished) }()
		return st
	}
	waitLog := func(t *testing.T, st *stage, subs ...string) {
		t.Helper()
		pipetest.Eventually(t, 20*time.Second, fmt.Sprintf("a log line with %q", subs), func() bool {
			select {
			case err := <-st.done:
				t.Fatalf("RunStage returned while it should wait: %v\n%s", err, st.logs.String())
			default:
			}
			for _, l := range strings.Split(st.logs.String(), "\n") {
				if containsAll(l, subs...) {
					return true
				}
			}
			return false
		})
	}

	t.Run("waits for the minimum", func(t *testing.T) {
		t.Parallel()
		cc := pipetest.Broker(t).Client()
		st := start(t, embed.StageConfig{Client: cc, FitSample: 1000, FitMin: 30})
		waitLog(t, st, "waiting for documents to fit the featurizer on", "have=0", "need=30")
		produce(t, cc, 0, 10)
		waitLog(t, st, "waiting for documents to fit the featurizer on", "have=10", "need=30")
		produce(t, cc, 10, 40)
		s := <-st.stages
		if got := s.State().Settings.FitDocs; got != 40 {
			t.Fatalf("fitted on %d documents, want the 40 there once the count settled\n%s", got, st.logs.String())
		}
		st.cancel()
		if err := <-st.done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fit timeout", func(t *testing.T) {
		t.Parallel()
		cc := pipetest.Broker(t).Client()
		produce(t, cc, 0, 3)
		st := start(t, embed.StageConfig{Client: cc, FitMin: 50, FitTimeout: 300 * time.Millisecond})
		s := <-st.stages
		if got := s.State().Settings.FitDocs; got != 3 || !strings.Contains(st.logs.String(), "fewer documents than the minimum") {
			t.Fatalf("fitted on %d documents, want 3 with a warning\n%s", got, st.logs.String())
		}
	})
	t.Run("stop while waiting", func(t *testing.T) {
		t.Parallel()
		cc := pipetest.Broker(t).Client()
		st := start(t, embed.StageConfig{Client: cc})
		waitLog(t, st, "waiting for documents", "need=300")
		st.cancel()
		select {
		case err := <-st.done:
			if err != nil {
				t.Fatalf("RunStage stopped while waiting: %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("RunStage did not return within 5s of its ctx ending")
		}
		if len(st.stages) != 0 {
			t.Fatal("the stage ran without a featurizer")
		}
	})
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
