package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// produceFeatures writes n skewed feature rows to docs.features, per rows
// a message, message i on partition i%parts.
func produceFeatures(t testing.TB, cc pipeline.ClientConfig, prefix string, first, n, per, parts int, seed uint64) {
	t.Helper()
	vs := skewed(n, seed)
	var msgs []pipeline.Message
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		p := (lo / per) % parts
		rec := featuresRecordAt(t, prefix, first+lo, p, vs[lo:hi])
		m := arrowMessage(t, pipeline.TopicFeatures, rec)
		m.Partition = p
		msgs = append(msgs, m)
		rec.Release()
	}
	pipetest.Produce(t, cc, msgs...)
}

// produceRaw fills docs.raw with n documents on each of its parts
// partitions, so that the origins the feature rows name exist.
func produceRaw(t testing.TB, cc pipeline.ClientConfig, parts, n int) {
	t.Helper()
	pipetest.CreateTopics(t, cc, parts, pipeline.TopicRaw)
	var msgs []pipeline.Message
	for p := range parts {
		for i := range n {
			m := pipetest.JSONDoc(pipeline.TopicRaw, fmt.Sprint(p, "-", i), "text")
			m.Partition = p
			msgs = append(msgs, m)
		}
	}
	pipetest.Produce(t, cc, msgs...)
}

// routedOn reads the rows routed onto the domain topics of ids.
func routedOn(t testing.TB, cc pipeline.ClientConfig, ids []int) map[int][]routedRow {
	t.Helper()
	out := map[int][]routedRow{}
	for _, id := range ids {
		msgs, err := pipeline.ReadTopic(context.Background(), cc, pipeline.DomainTopic(id), 0)
		if err != nil {
			continue // not created yet
		}
		out[id] = decodeRouted(t, msgs)
	}
	return out
}

func rowCount(m map[int][]routedRow) int {
	n := 0
	for _, rows := range m {
		n += len(rows)
	}
	return n
}

// runInBackground runs RunStage until the returned stop is called.
func runInBackground(t *testing.T, cfg RunConfig) (stop func() (pipeline.StageRun, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		run pipeline.StageRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := RunStage(ctx, cfg)
		done <- result{run, err}
	}()
	var once sync.Once
	var res result
	stop = func() (pipeline.StageRun, error) {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(60 * time.Second):
				res.err = errors.New("the stage did not stop")
			}
		})
		return res.run, res.err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestRunStage runs the routing stage on the embedded broker with a router
// from a dir: every row lands once on its domain's topic, the router is
// published on router.models, a newer version saved into the dir is
// swapped in and published, and the routed counts are saved at the stop.
func TestRunStage(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	logs := &pipetest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ids := []int{3, 5, 7, 9}
	dir := t.TempDir()
	if _, err := SaveRouter(dir, stageModel(0, ids)); err != nil {
		t.Fatal(err)
	}
	pipetest.CreateTopics(t, cc, 2, pipeline.TopicFeatures)
	const n = 400
	produceRaw(t, cc, 2, n)
	produceFeatures(t, cc, "d", 0, n, 40, 2, 3)
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	stop := runInBackground(t, RunConfig{Client: cc, RouterDir: dir, Watch: 50 * time.Millisecond, Linger: 5 * time.Millisecond,
		StateInterval: 200 * time.Millisecond, HistoryPath: hist, Logger: log})

	pipetest.Eventually(t, 60*time.Second, "every row routed", func() bool { return rowCount(routedOn(t, cc, ids)) >= n })
	seen := map[string]int{}
	for _, rows := range routedOn(t, cc, ids) {
		for _, r := range rows {
			seen[r.id]++
		}
	}
	if len(seen) != n || rowCount(routedOn(t, cc, ids)) != n {
		t.Fatalf("%d distinct of %d rows routed, want %d once each", len(seen), rowCount(routedOn(t, cc, ids)), n)
	}
	rt, err := NewRouterTopic(cc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	if rm, err := rt.LatestRouter(ctx); err != nil || rm == nil || rm.Version != 1 {
		t.Fatalf("router.models holds %v, %v; want v1", rm, err)
	}

	// A newer version in the dir is swapped in and published.
	if _, err := SaveRouter(dir, stageModel(0, ids)); err != nil {
		t.Fatal(err)
	}
	pipetest.Eventually(t, 20*time.Second, "router v2 published", func() bool {
		rm, err := rt.LatestRouter(ctx)
		return err == nil && rm != nil && rm.Version == 2
	})
	if !strings.Contains(logs.String(), "router reloaded") {
		t.Fatalf("no reload logged:\n%s", logs.String())
	}
	run, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if run.In != n || run.Out != n || run.Dead != 0 || run.Partitions != 2 {
		t.Fatalf("stage run %+v, want %d in and out over 2 partitions", run, n)
	}
	counts, ok, err := rt.Counts(ctx, "cluster")
	if err != nil || !ok {
		t.Fatalf("routed counts on router.models: %v, %v", ok, err)
	}
	var sum int64
	for _, c := range counts {
		sum += c
	}
	if sum != n {
		t.Fatalf("saved routed counts %v sum to %d, want %d", counts, sum, n)
	}
	h, err := os.ReadFile(hist)
	if err != nil || !strings.Contains(string(h), `"counts"`) {
		t.Fatalf("routing history %q, %v", h, err)
	}
}

// testFeaturizer is a Featurizer whose state names each centroid "t<j>".
type testFeaturizer struct {
	mu       sync.Mutex
	onTopic  int
	verified []string
}

type testFeaturizerState struct{}

func (testFeaturizerState) Kind() string { return "test" }
func (testFeaturizerState) TopTerms(m *Model, n int) [][]string {
	out := make([][]string, m.K)
	for j := range out {
		out[j] = []string{fmt.Sprintf("t%d", j)}
	}
	return out
}
func (testFeaturizerState) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "featurizer-saved"), nil, 0o644)
}

func (f *testFeaturizer) Publish(context.Context, string, int64) error { return nil }
func (f *testFeaturizer) OnTopic(_ context.Context, v int64) (FeaturizerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTopic++
	if v != 1 {
		return nil, nil
	}
	return testFeaturizerState{}, nil
}
func (f *testFeaturizer) Verify(dir string, v int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verified = append(f.verified, fmt.Sprint(dir, v))
	return nil
}

// TestRunStageFitOnStream: with no router anywhere the stage fits one on a
// sample of the stream, names its domains with the featurizer, saves both
// into the router dir and routes everything; a router published on
// router.models by another process (a domain removed) is then swapped in,
// and the removed domain receives nothing more.
func TestRunStageFitOnStream(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	dir := filepath.Join(t.TempDir(), "router")
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicFeatures)
	const n = 300
	produceRaw(t, cc, 1, 2*n)
	produceFeatures(t, cc, "a", 0, n, 30, 1, 5)
	logs := &pipetest.LogBuffer{}
	stop := runInBackground(t, RunConfig{Client: cc, RouterDir: dir, Linger: 5 * time.Millisecond, Watch: 50 * time.Millisecond,
		Fit:        StreamFit{K: 3, Sample: 200, Wait: 300 * time.Millisecond, Seed: 1},
		Featurizer: &testFeaturizer{}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ids := []int{0, 1, 2}
	pipetest.Eventually(t, 60*time.Second, "every row routed", func() bool { return rowCount(routedOn(t, cc, ids)) >= n })
	v1, err := LoadRouter(dir, 1)
	if err != nil {
		t.Fatalf("the router fitted on the stream was not saved: %v", err)
	}
	if v1.K() != 3 || v1.Featurizer != "test" || len(v1.TopTerms) != 3 || v1.Examples == nil {
		t.Fatalf("fitted router: k %d, featurizer %q, top terms %v", v1.K(), v1.Featurizer, v1.TopTerms)
	}
	if _, err := os.Stat(filepath.Join(dir, "featurizer-saved")); err != nil {
		t.Fatal("the featurizer was not saved into the router dir")
	}

	// Another process removes domain 1 and publishes the result only.
	v2, err := v1.RemoveDomain(1)
	if err != nil {
		t.Fatal(err)
	}
	v2.Version = 2
	rt, err := NewRouterTopic(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.PublishRouter(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	before := routedOn(t, cc, ids)
	pipetest.Eventually(t, 20*time.Second, "router v2 swapped in", func() bool { return strings.Contains(logs.String(), "router reloaded") })
	produceFeatures(t, cc, "b", n, n, 30, 1, 6)
	pipetest.Eventually(t, 60*time.Second, "the second batch routed", func() bool { return rowCount(routedOn(t, cc, ids)) >= 2*n })
	after := routedOn(t, cc, ids)
	if len(after[1]) != len(before[1]) {
		t.Fatalf("removed domain 1 grew from %d to %d rows", len(before[1]), len(after[1]))
	}
	run, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if run.In != 2*n || run.Out != 2*n {
		t.Fatalf("stage run %+v, want %d in and out", run, 2*n)
	}
}

// corrupt returns b with a byte after field changed: it still decodes as
// Arrow, but no longer matches its checksum.
func corrupt(t *testing.T, b []byte, field string) []byte {
	t.Helper()
	at := bytes.Index(b, []byte(field))
	if at < 0 {
		t.Fatalf("no %s in the payload", field)
	}
	d := slices.Clone(b)
	d[at+len(field)] ^= 0x01
	return d
}

// TestDamagedRouterIgnored: a damaged router on router.models after a good
// one is passed over with a warning, by LatestRouter and by WatchRouters.
func TestDamagedRouterIgnored(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	logs := &pipetest.LogBuffer{}
	rt, err := NewRouterTopic(cc, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rm := &RouterModel{Version: 4, FeaturizerVersion: 1, IDs: []int{0, 1}, NextID: 2,
		Model: &Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}}}
	good, err := EncodeRouter(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Publish(ctx, RouterKey, good); err != nil {
		t.Fatal(err)
	}
	if err := rt.Publish(ctx, RouterKey, corrupt(t, good, `"version":`)); err != nil {
		t.Fatal(err)
	}
	got, err := rt.LatestRouter(ctx)
	if err != nil || got == nil || got.Version != 4 {
		t.Fatalf("LatestRouter = %v, %v; want the valid v4", got, err)
	}
	if !strings.Contains(logs.String(), "damaged router on router.models ignored") {
		t.Fatalf("no warning about the damaged router:\n%s", logs.String())
	}
	if got, err := rt.Router(ctx, 4); err != nil || got.Version != 4 {
		t.Fatalf("Router(4) = %v, %v", got, err)
	}
	if _, err := rt.Router(ctx, 5); err == nil {
		t.Fatal("Router(5) found a version nobody published")
	}
	var seen []int64
	wctx, stop := context.WithCancel(ctx)
	go func() {
		time.Sleep(time.Second)
		stop()
	}()
	rt.WatchRouters(wctx, func(_ context.Context, rm *RouterModel) { seen = append(seen, rm.Version) })
	if !slices.Equal(seen, []int64{4}) {
		t.Fatalf("WatchRouters handed out versions %v, want [4]", seen)
	}
}

// TestRunPhasesRideOutBrokerOutage runs each broker-facing phase of the
// routing stage with the broker down: each must retry, with a warning,
// until the broker is back, then finish with the right result.
func TestRunPhasesRideOutBrokerOutage(t *testing.T) {
	t.Parallel()
	rm := &RouterModel{Version: 3, FeaturizerVersion: 1, IDs: []int{0, 5}, NextID: 6,
		Model: &Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}}}
	phases := []struct {
		name  string
		setup func(t *testing.T, cc pipeline.ClientConfig)                                       // with the broker up
		run   func(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger) (any, error) // with the broker down at first
		check func(t *testing.T, cc pipeline.ClientConfig, got any)
	}{
		{
			name: "publish on router.models, then read it",
			run: func(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger) (any, error) {
				rt, err := NewRouterTopic(cc, log)
				if err != nil {
					return nil, err
				}
				defer rt.Close()
				if err := rt.PublishRouter(ctx, rm); err != nil {
					return nil, err
				}
				return rt.Latest(ctx)
			},
			check: func(t *testing.T, _ pipeline.ClientConfig, got any) {
				if v := routerVersionOf(got.(map[string]pipeline.Message)[RouterKey]); v != 3 {
					t.Fatalf("router.models holds router v%d, want v3", v)
				}
			},
		},
		{
			name:  "wait for the input topic",
			setup: func(t *testing.T, cc pipeline.ClientConfig) { pipetest.CreateTopics(t, cc, 3, pipeline.TopicFeatures) },
			run: func(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger) (any, error) {
				return pipeline.WaitPartitions(ctx, cc, pipeline.TopicFeatures, log)
			},
			check: func(t *testing.T, _ pipeline.ClientConfig, got any) {
				if got.(int) != 3 {
					t.Fatalf("%d partitions, want 3", got)
				}
			},
		},
		{
			name: "create the domain topics",
			run: func(ctx context.Context, cc pipeline.ClientConfig, _ *slog.Logger) (any, error) {
				return nil, ensureDomainTopics(ctx, cc, rm, 2)
			},
			check: func(t *testing.T, cc pipeline.ClientConfig, _ any) {
				if n, err := pipeline.PartitionCount(context.Background(), cc, pipeline.DomainTopic(5)); err != nil || n != 2 {
					t.Fatalf("%s: %d partitions, %v", pipeline.DomainTopic(5), n, err)
				}
			},
		},
		{
			name: "fit a router on the stream",
			setup: func(t *testing.T, cc pipeline.ClientConfig) {
				pipetest.CreateTopics(t, cc, 2, pipeline.TopicFeatures)
				produceFeatures(t, cc, "d", 0, 60, 10, 2, 7)
			},
			run: func(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger) (any, error) {
				cfg := RunConfig{Client: cc, Logger: log, Featurizer: &testFeaturizer{},
					Fit: StreamFit{K: 2, Sample: 100, Window: 1000, Wait: 300 * time.Millisecond, Restarts: 1, Seed: 1}}
				cfg.setDefaults()
				rt, err := NewRouterTopic(cc, log)
				if err != nil {
					return nil, err
				}
				defer rt.Close()
				return (&service{cfg: cfg, cc: cc, log: log, topic: rt}).fitOnStream(ctx)
			},
			check: func(t *testing.T, _ pipeline.ClientConfig, got any) {
				rm := got.(*RouterModel)
				if rm.K() != 2 || rm.TopTerms == nil || rm.Featurizer != "test" || rm.FeaturizerVersion != 1 || rm.Version != 1 {
					t.Fatalf("router fitted on the stream: k %d, featurizer %q v%d, top terms %v, version %d", rm.K(), rm.Featurizer, rm.FeaturizerVersion, rm.TopTerms, rm.Version)
				}
			},
		},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			b := pipetest.StartRestartable(t, pipeline.BrokerConfig{Partitions: 2, MaxMessageBytes: RouterTopicMaxBytes + 1<<20})
			logs := &pipetest.LogBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			cc := b.Client()
			cc.Logger = log
			if ph.setup != nil {
				ph.setup(t, cc)
			}
			b.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			type result struct {
				v   any
				err error
			}
			done := make(chan result, 1)
			go func() {
				v, err := ph.run(ctx, cc, log)
				done <- result{v, err}
			}()
			pipetest.Eventually(t, 30*time.Second, "a retry warning", func() bool {
				return strings.Contains(logs.String(), "retrying")
			})
			select {
			case r := <-done:
				t.Fatalf("returned with the broker down: %v, %v", r.v, r.err)
			default:
			}
			b.Start()
			r := <-done
			if r.err != nil {
				t.Fatalf("after the outage: %v\n%s", r.err, logs.String())
			}
			ph.check(t, cc, r.v)
		})
	}
}

// TestDomains: only the ids of routers on router.models are domains; other
// docs.domain.* topics are ignored with one warning each, and a domain a
// later router adds is known after the next Refresh.
func TestDomains(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	ctx := context.Background()
	names := []string{"docs.domain.0", "docs.domain.1", "docs.domain.2", "docs.domain.007", "docs.domain.-1", "docs.domain.9", "docs.raw"}
	pipetest.CreateTopics(t, cc, 1, names...)
	logs := &pipetest.LogBuffer{}
	d := NewDomains(cc, slog.New(slog.NewTextHandler(logs, nil)))
	defer d.Close()
	refresh := func() []pipeline.TopicInfo {
		t.Helper()
		ts, err := pipeline.ListTopics(ctx, cc)
		if err == nil {
			err = d.Refresh(ctx, ts)
		}
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	if ids := d.IDs(refresh()); ids != nil || d.Any() {
		t.Fatalf("no router yet: ids %v, any %v", ids, d.Any())
	}
	rt, err := NewRouterTopic(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, step := range []struct {
		rm   *RouterModel
		want []int
	}{
		{idsModel(1, 0, 1), []int{0, 1}},
		{idsModel(2, 0, 1, 2), []int{0, 1, 2}}, // domain 1 split: 2 is new
	} {
		if err := rt.PublishRouter(ctx, step.rm); err != nil {
			t.Fatal(err)
		}
		if ids := d.IDs(refresh()); !slices.Equal(ids, step.want) {
			t.Errorf("after router v%d: ids %v, want %v", step.rm.Version, ids, step.want)
		}
	}
	if !d.Known(2) || d.Known(9) {
		t.Errorf("Known(2) = %v, Known(9) = %v; want true, false", d.Known(2), d.Known(9))
	}
	for _, topic := range []string{"docs.domain.007", "docs.domain.-1", "docs.domain.9", "docs.domain.2"} {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "topic ignored") && slices.Contains(strings.Fields(l), "topic="+topic) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d warnings about %s, want 1:\n%s", n, topic, logs.String())
		}
	}
}

// idsModel is a router of version v whose domains are ids.
func idsModel(v int64, ids ...int) *RouterModel {
	k := len(ids)
	md := &Model{K: k, Dim: 2, Centroids: make([]float32, 2*k), Sizes: make([]int, k)}
	next := 0
	for j, id := range ids {
		md.Centroids[2*j] = 1
		md.Sizes[j] = 1
		next = max(next, id+1)
	}
	return &RouterModel{Version: v, FeaturizerVersion: 1, Featurizer: "tfidf", IDs: ids, Model: md, NextID: next, Fit: FitConfig{K: k}}
}
