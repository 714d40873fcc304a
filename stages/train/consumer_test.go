package train_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	_ "github.com/domainflow/domainflow/accel/cpu"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// micro is a model small enough to train many steps in a test: 64 bytes a
// step.
var micro = train.Config{Name: "micro", Vocab: 256, Dim: 16, Layers: 1, Heads: 2, Ctx: 16, Batch: 4}

// consumerConfig is a fast configuration of the training consumers on cc.
func consumerConfig(cc pipeline.ClientConfig, out string) train.ConsumerConfig {
	return train.ConsumerConfig{Client: cc, Out: out, Model: micro, Seed: 1, Threads: 1,
		CheckpointSteps: 3, Keep: 1000, ExitOnIdle: 300 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
}

// docMessage is an Arrow message of document rows (an ingress topic's),
// one per text, for partition p of topic.
func docMessage(t *testing.T, topic string, p int, texts ...string) pipeline.Message {
	t.Helper()
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i, text := range texts {
		b.Append(schemas.Document{ID: fmt.Sprintf("%s-%d", topic, i), Text: text}, schemas.Origin{})
	}
	rec := b.NewRecord()
	defer rec.Release()
	payload, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topic, Partition: p, Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
}

// routedMessage is an Arrow message on topic of routed rows of domain 0
// whose origins are the given offsets of docs.raw partition 0.
func routedMessage(t *testing.T, topic string, offsets ...int64) pipeline.Message {
	t.Helper()
	s := schemas.RoutedSchema()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer rb.Release()
	fi := func(name string) int { return s.FieldIndices(name)[0] }
	for _, off := range offsets {
		schemas.AppendDocument(rb, schemas.Document{ID: strconv.FormatInt(off, 10), Text: fmt.Sprintf("routed document %d, long enough to train on", off)},
			schemas.Origin{Topic: pipeline.TopicRaw, Partition: 0, Offset: off})
		rb.Field(fi(schemas.ColDomain)).(*array.Int32Builder).Append(0)
		rb.Field(fi(schemas.ColDistance)).(*array.Float32Builder).Append(0.5)
		rb.Field(fi(schemas.ColRouterVersion)).(*array.Int64Builder).Append(3)
	}
	rec := rb.NewRecord()
	defer rec.Release()
	payload, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topic, Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
}

// mixedInput is input on 3 partitions of topic: JSON documents, and Arrow
// messages of several documents whose bytes span many steps.
func mixedInput(t *testing.T, topic string) []pipeline.Message {
	var msgs []pipeline.Message
	for i := range 30 {
		m := pipetest.JSONDoc(topic, fmt.Sprint("j", i), fmt.Sprintf("document %d: %s", i, strings.Repeat(fmt.Sprintf("w%d ", i%7), 5+i%11)))
		m.Partition = i % 3
		msgs = append(msgs, m)
		if i%10 == 4 {
			var texts []string
			for k := range 6 {
				texts = append(texts, fmt.Sprintf("batch %d doc %d %s", i, k, strings.Repeat("abc ", 10+k)))
			}
			msgs = append(msgs, docMessage(t, topic, (i+1)%3, texts...))
		}
	}
	return msgs
}

func runExpert(t *testing.T, cfg train.ConsumerConfig, name, topic string) train.ExpertReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := train.RunExpert(ctx, cfg, name, topic)
	if err != nil {
		t.Fatalf("RunExpert(%s, %s): %v", name, topic, err)
	}
	return rep
}

// copyCheckpoint copies the checkpoint of step from expert dir src into dst,
// as if the expert that wrote it had been killed right after.
func copyCheckpoint(t *testing.T, src, dst string, step int) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".arrow", ".parquet"} {
		p := strings.TrimSuffix(train.CheckpointPath(src, step), ".arrow") + ext
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunExpertResumeBitIdentical: an expert killed after any checkpoint
// (inside a message of many documents, between partitions of the round
// robin) and run again from it ends bit-identical to an uninterrupted one.
func TestRunExpertResumeBitIdentical(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic = "docs.in"
	pipetest.CreateTopics(t, cc, 3, topic)
	pipetest.Produce(t, cc, mixedInput(t, topic)...)

	whole := t.TempDir()
	final := runExpert(t, consumerConfig(cc, whole), "e", topic)
	if final.Docs != 48 || final.Step < 20 || final.Size != "micro" || final.Loss <= 0 {
		t.Fatalf("uninterrupted: %+v, want 48 documents over at least 20 steps", final)
	}
	// The input ran out (no budget): the packer holds the bytes short of a
	// full window in each lane, untrained.
	if final.Stop != train.StopIdle || final.TokensAtStart != 0 || final.Pending <= 0 {
		t.Fatalf("uninterrupted: stop %q, %d bytes at start, %d pending; want idle, 0 and some", final.Stop, final.TokensAtStart, final.Pending)
	}
	steps, err := train.ListCheckpoints(train.ExpertDir(whole, "e"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(steps)
	for _, tc := range []struct {
		name string
		step int
	}{
		{"first", steps[0]},
		{"middle", steps[len(steps)/2]},
		{"last but one", steps[len(steps)-2]},
		{"last", steps[len(steps)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			copyCheckpoint(t, train.ExpertDir(whole, "e"), train.ExpertDir(out, "e"), tc.step)
			ck, err := train.LoadCheckpoint(train.CheckpointPath(train.ExpertDir(out, "e"), tc.step))
			if err != nil {
				t.Fatal(err)
			}
			got := runExpert(t, consumerConfig(cc, out), "e", topic)
			if got.TokensAtStart != ck.Meta.Tokens || got.Pending != final.Pending || got.Stop != train.StopIdle {
				t.Errorf("resumed from step %d: %d bytes at start, %d pending, stop %q; want the checkpoint's %d, %d, idle",
					tc.step, got.TokensAtStart, got.Pending, got.Stop, ck.Meta.Tokens, final.Pending)
			}
			if got.ParamsSHA256 != final.ParamsSHA256 || got.Step != final.Step || got.Tokens != final.Tokens || got.Docs != final.Docs {
				t.Errorf("resumed from step %d: step %d, %d tokens, %d docs, params %.12s; uninterrupted: step %d, %d tokens, %d docs, params %.12s",
					tc.step, got.Step, got.Tokens, got.Docs, got.ParamsSHA256, final.Step, final.Tokens, final.Docs, final.ParamsSHA256)
			}
		})
	}
}

// TestRunExpertDeadLetters: a message that does not decode, and a routed
// row whose origin cannot exist, go to the dead-letter topic with their
// reason, and the expert trains on the rest.
func TestRunExpertDeadLetters(t *testing.T) {
	t.Parallel()
	const topic = "docs.domain.0"
	real := make([]int64, 20)
	for i := range real {
		real[i] = int64(i)
	}
	for _, tc := range []struct {
		name     string
		input    func(t *testing.T) []pipeline.Message
		wantDocs int64
		want     []schemas.Reason // the dead letters' reasons, in order
		origin   string           // the dead letters' origin topic
	}{
		{
			name: "undecodable Arrow",
			input: func(t *testing.T) []pipeline.Message {
				bad := pipeline.Message{Topic: topic, Value: []byte("\x00garbage"), Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
				return []pipeline.Message{bad, routedMessage(t, topic, real...)}
			},
			wantDocs: 20,
			want:     []schemas.Reason{schemas.ReasonMalformedArrow},
			origin:   topic,
		},
		{
			name: "undecodable JSON",
			input: func(t *testing.T) []pipeline.Message {
				bad := pipeline.Message{Topic: topic, Value: []byte(`{"id": "x", "text": `), Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)}
				return []pipeline.Message{routedMessage(t, topic, real[:10]...), bad, routedMessage(t, topic, real[10:]...)}
			},
			wantDocs: 20,
			want:     []schemas.Reason{schemas.ReasonMalformedJSON},
			origin:   topic,
		},
		{
			name: "impossible origin",
			input: func(t *testing.T) []pipeline.Message {
				// Applied, the forged row would make the expert skip
				// the 20 real rows as seen.
				return []pipeline.Message{routedMessage(t, topic, 1_000_000_000), routedMessage(t, topic, real...)}
			},
			wantDocs: 20,
			want:     []schemas.Reason{pipeline.ReasonImpossibleOrigin},
			origin:   pipeline.TopicRaw, // the row's own
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := pipetest.Broker(t).Client()
			pipetest.CreateTopics(t, cc, 1, pipeline.TopicRaw, topic, pipeline.TopicDeadLetter)
			var raw []pipeline.Message
			for i := range 20 {
				raw = append(raw, pipetest.JSONDoc(pipeline.TopicRaw, "d"+strconv.Itoa(i), "text"))
			}
			pipetest.Produce(t, cc, raw...)
			pipetest.Produce(t, cc, tc.input(t)...)

			rep := runExpert(t, consumerConfig(cc, t.TempDir()), "0", topic)
			if rep.Docs != tc.wantDocs || rep.RouterVersion != 3 {
				t.Errorf("expert trained on %d documents, router version %d; want %d, 3", rep.Docs, rep.RouterVersion, tc.wantDocs)
			}
			var got []schemas.Reason
			for _, m := range pipetest.ReadAll(t, cc, pipeline.TopicDeadLetter) {
				dl := pipeline.ParseDeadLetter(m)
				if dl.Stage != "train" || dl.Origin.Topic != tc.origin {
					t.Errorf("dead letter %+v: want stage train, origin %s", dl, tc.origin)
				}
				got = append(got, dl.Reason)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("dead letters %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRunExpertTokenBudget: an expert stops at its token budget exactly,
// with input left, and its learning rate decays over the budget's steps.
func TestRunExpertTokenBudget(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic = "docs.in"
	pipetest.CreateTopics(t, cc, 3, topic)
	pipetest.Produce(t, cc, mixedInput(t, topic)...)
	perStep := int64(micro.Batch * micro.Ctx)
	for _, steps := range []int64{1, 4, 7} {
		t.Run(fmt.Sprint(steps, " steps"), func(t *testing.T) {
			t.Parallel()
			cfg := consumerConfig(cc, t.TempDir())
			cfg.Tokens = steps * perStep
			cfg.ExitOnIdle = 0 // the budget alone stops it
			rep := runExpert(t, cfg, "b", topic)
			if int64(rep.Step) != steps || rep.Tokens != cfg.Tokens || rep.Docs >= 48 {
				t.Fatalf("report %+v, want step %d, %d tokens and input left", rep, steps, cfg.Tokens)
			}
			c, _, err := train.LoadLatestCheckpoint(train.ExpertDir(cfg.Out, "b"))
			if err != nil || c == nil {
				t.Fatalf("no checkpoint: %v", err)
			}
			if c.Meta.Opt.TotalSteps != int(steps) {
				t.Errorf("decay over %d steps, want %d (the budget's)", c.Meta.Opt.TotalSteps, steps)
			}
		})
	}
}

// TestRunPicksUpNewDomains: Run trains an expert per domain its source
// names, starts the expert of a domain that appears later, and rides out a
// source that fails once.
func TestRunPicksUpNewDomains(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 2, pipeline.DomainTopic(0))
	pipetest.Produce(t, cc, mixedInput(t, pipeline.DomainTopic(0))[:12]...)
	calls := 0
	src := train.DomainSourceFunc(func(ctx context.Context) ([]int, error) {
		calls++
		switch {
		case calls == 2:
			return nil, errors.New("broker away")
		case calls < 4:
			return []int{0}, nil
		case calls == 4: // a split: domain 3 appears
			pipetest.CreateTopics(t, cc, 2, pipeline.DomainTopic(3))
			pipetest.Produce(t, cc, mixedInput(t, pipeline.DomainTopic(3))[:6]...)
		}
		return []int{0, 3}, nil
	})
	cfg := consumerConfig(cc, t.TempDir())
	cfg.DomainScanEvery = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reps, err := train.Run(ctx, cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.Expert)
		if r.Docs == 0 {
			t.Errorf("expert %s trained on nothing", r.Expert)
		}
	}
	if want := []string{"0", "3"}; !slices.Equal(names, want) {
		t.Fatalf("Run trained experts %v, want %v", names, want)
	}

	// RunDomains trains the domains it is given; here, nothing new.
	again, err := train.RunDomains(ctx, cfg, []int{3, 0})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Expert != names[i] || r.ParamsSHA256 != reps[i].ParamsSHA256 {
			t.Errorf("RunDomains again: expert %s params %.12s, want %s %.12s", r.Expert, r.ParamsSHA256, names[i], reps[i].ParamsSHA256)
		}
	}
}

// TestRunExpertConfig: a configuration that cannot run fails before
// anything starts.
func TestRunExpertConfig(t *testing.T) {
	t.Parallel()
	cc := pipeline.ClientConfig{Brokers: []string{"127.0.0.1:1"}}
	for _, tc := range []struct {
		name string
		edit func(*train.ConsumerConfig)
		want string
	}{
		{"no brokers", func(c *train.ConsumerConfig) { c.Client = pipeline.ClientConfig{} }, "no brokers"},
		{"no out", func(c *train.ConsumerConfig) { c.Out = "" }, "no output dir"},
		{"negative budget", func(c *train.ConsumerConfig) { c.Tokens = -1 }, "negative"},
		{"continue without init", func(c *train.ConsumerConfig) { c.Continue = true }, "need Init"},
		{"bad model", func(c *train.ConsumerConfig) { c.Model.Heads = 3 }, "not a multiple of heads"},
	} {
		cfg := consumerConfig(cc, t.TempDir())
		tc.edit(&cfg)
		if _, err := train.RunExpert(context.Background(), cfg, "x", "t"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: RunExpert = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestCheckpointStepsInsideOneMessage: one input message that holds many
// documents trains dozens of steps, and CheckpointSteps 5 checkpoints at
// steps 5, 10, 15, ... inside it, not once after it. An expert run again
// from a checkpoint taken inside the message (as one killed right after it
// would be) ends bit-identical to the uninterrupted run.
func TestCheckpointStepsInsideOneMessage(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic = "docs.big"
	pipetest.CreateTopics(t, cc, 1, topic)
	var texts []string
	for i := range 200 {
		texts = append(texts, fmt.Sprintf("document %d: %s", i, strings.Repeat(fmt.Sprintf("word%d ", i%17), 3)))
	}
	pipetest.Produce(t, cc, docMessage(t, topic, 0, texts...))

	trainOn := func(out string) train.ExpertReport {
		t.Helper()
		cfg := consumerConfig(cc, out)
		cfg.CheckpointSteps = 5
		return runExpert(t, cfg, "big", topic)
	}
	whole := t.TempDir()
	final := trainOn(whole)
	if final.Step < 20 || final.Docs != 200 {
		t.Fatalf("the message trained %d steps on %d documents; want at least 20 steps on 200", final.Step, final.Docs)
	}
	steps, err := train.ListCheckpoints(train.ExpertDir(whole, "big"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(steps)
	var want []int
	for s := 5; s < final.Step; s += 5 {
		want = append(want, s)
	}
	want = append(want, final.Step) // the checkpoint on exit
	if !slices.Equal(steps, want) {
		t.Fatalf("checkpoints at steps %v, want %v (every 5 steps inside the one message, and on exit)", steps, want)
	}

	// Resume from the checkpoint at step 10, inside the message: its input
	// offset is past the message and the packer holds the rest of it.
	resumed := t.TempDir()
	copyCheckpoint(t, train.ExpertDir(whole, "big"), train.ExpertDir(resumed, "big"), 10)
	again := trainOn(resumed)
	if again.ParamsSHA256 != final.ParamsSHA256 || again.Step != final.Step || again.Tokens != final.Tokens || again.Docs != final.Docs {
		t.Fatalf("resumed from step 10: step %d, %d tokens, %d docs, params %s; uninterrupted: step %d, %d tokens, %d docs, params %s",
			again.Step, again.Tokens, again.Docs, again.ParamsSHA256, final.Step, final.Tokens, final.Docs, final.ParamsSHA256)
	}
}

// TestRunExpertInitFor: a new expert branches from what InitFor gives (and
// records how), not from the seed, and takes neither Continue nor SkipSeen;
// an expert that resumes does not ask InitFor; a nil answer falls back to
// the seed.
func TestRunExpertInitFor(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic = "docs.in"
	pipetest.CreateTopics(t, cc, 1, topic)
	pipetest.Produce(t, cc, docMessage(t, topic, 0, "alpha beta gamma delta", "epsilon zeta eta theta", "iota kappa lambda mu"))
	out := t.TempDir()
	seedCfg := consumerConfig(cc, out)
	seedCfg.Tokens = int64(micro.Batch * micro.Ctx)
	runExpert(t, seedCfg, "seed", topic)
	seed, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, "seed"))
	if err != nil || seed == nil {
		t.Fatalf("seed: %v", err)
	}
	parentCfg := consumerConfig(cc, out)
	parentCfg.Seed = 99
	parentCfg.Tokens = seedCfg.Tokens
	runExpert(t, parentCfg, "parent", topic)
	parent, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, "parent"))
	if err != nil || parent == nil {
		t.Fatalf("parent: %v", err)
	}

	calls := 0
	cfg := consumerConfig(cc, out)
	cfg.Init, cfg.SkipSeen, cfg.Tokens = seed, true, seedCfg.Tokens
	cfg.InitFor = func(_ context.Context, expert string) (*train.Checkpoint, string, error) {
		calls++
		if expert == "child" {
			return parent, "nearest parent", nil
		}
		return nil, "", nil
	}
	rep := runExpert(t, cfg, "child", topic)
	if rep.Init != train.ParamsSHA256(parent.Model) || rep.InitFrom != "nearest parent" {
		t.Errorf("child branched from %s (%q), want the parent's %s", rep.Init, rep.InitFrom, train.ParamsSHA256(parent.Model))
	}
	if rep.Skipped != 0 {
		t.Errorf("child skipped %d documents: SkipSeen is about the seed, not the parent", rep.Skipped)
	}
	rep = runExpert(t, cfg, "other", topic)
	if rep.Init != train.ParamsSHA256(seed.Model) || rep.InitFrom != "" {
		t.Errorf("other branched from %s (%q), want the seed's", rep.Init, rep.InitFrom)
	}
	before := calls
	cfg.Tokens *= 2
	runExpert(t, cfg, "child", topic) // resumes from its checkpoint
	if calls != before {
		t.Errorf("a resumed expert asked InitFor again")
	}
	cfg.InitFor = func(context.Context, string) (*train.Checkpoint, string, error) {
		return nil, "", fmt.Errorf("no router")
	}
	if _, err := train.RunExpert(context.Background(), cfg, "third", topic); err == nil {
		t.Error("an InitFor error did not stop the expert")
	}
}

// TestRunExpertMonitorGroup: with MonitorGroup an expert commits its
// checkpointed positions to group "<prefix>.<name>", where Kafka's tools
// see them, and a resume starts from its checkpoint whatever the group
// holds.
func TestRunExpertMonitorGroup(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic, group = "docs.in", "train.e"
	pipetest.CreateTopics(t, cc, 3, topic)
	pipetest.Produce(t, cc, mixedInput(t, topic)...)
	positions := func(dir string) []int64 {
		t.Helper()
		ck, _, err := train.LoadLatestCheckpoint(dir)
		if err != nil || ck == nil {
			t.Fatalf("latest checkpoint of %s: %v", dir, err)
		}
		out := make([]int64, 3)
		for p := range out {
			out[p] = ck.Meta.Offsets[topic+"/"+strconv.Itoa(p)]
		}
		return out
	}

	whole := t.TempDir()
	cfg := consumerConfig(cc, whole)
	cfg.MonitorGroup = "train"
	final := runExpert(t, cfg, "e", topic)
	if got, want := pipetest.Committed(t, cc, group, topic, 3), positions(train.ExpertDir(whole, "e")); !slices.Equal(got, want) {
		t.Fatalf("group %s committed %v, the checkpoint holds %v", group, got, want)
	}
	end, err := pipeline.EndOffsets(context.Background(), cc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := pipetest.Committed(t, cc, group, topic, 3); !slices.Equal(got, end) {
		t.Fatalf("group %s committed %v after consuming everything, want the end offsets %v", group, got, end)
	}

	// A resume from a middle checkpoint, with the group moved to the end:
	// it reads from the checkpoint's positions and ends as the
	// uninterrupted run.
	steps, err := train.ListCheckpoints(train.ExpertDir(whole, "e"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(steps)
	out := t.TempDir()
	copyCheckpoint(t, train.ExpertDir(whole, "e"), train.ExpertDir(out, "e"), steps[len(steps)/2])
	gc, err := pipeline.NewGroupCommitter(cc, group, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gc.Commit(context.Background(), topic, map[int]int64{0: end[0], 1: end[1], 2: end[2]}); err != nil {
		t.Fatal(err)
	}
	gc.Close()
	cfg.Out = out
	got := runExpert(t, cfg, "e", topic)
	if got.ParamsSHA256 != final.ParamsSHA256 || got.Docs != final.Docs || got.Step != final.Step {
		t.Fatalf("resumed with the group at the end: step %d, %d docs, params %.12s; uninterrupted: step %d, %d docs, params %.12s",
			got.Step, got.Docs, got.ParamsSHA256, final.Step, final.Docs, final.ParamsSHA256)
	}
	if got, want := pipetest.Committed(t, cc, group, topic, 3), positions(train.ExpertDir(out, "e")); !slices.Equal(got, want) {
		t.Fatalf("group %s committed %v after the resume, the checkpoint holds %v", group, got, want)
	}
}
