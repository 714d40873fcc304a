package cluster

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// shrinkRouter is an unbalanced router over the two planted fit blobs and
// one new blob: three domains, ids 0, 1, 2.
func shrinkRouter(t testing.TB) *RouterModel {
	t.Helper()
	fit, novel := plantedCenters()
	x := denseRows(plantedBlobs(append(fit, novel...), 300, 0.3, 1))
	m, _, err := Fit(context.Background(), x, FitConfig{K: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids, next := MatchIDs(nil, m)
	return &RouterModel{Version: 1, FeaturizerVersion: 1, Featurizer: "test", IDs: ids, Model: m, NextID: next,
		Fit: FitConfig{K: 3, Seed: 1}, Route: RouteConfig{Unbalanced: true}, Distances: FitDistances(m, x)}
}

// TestShrinkCandidate: a domain that gets no documents for a window is the
// candidate; none before a whole window, none below one domain, and a
// domain added later only once it has existed for a window.
func TestShrinkCandidate(t *testing.T) {
	ctx := context.Background()
	rm := shrinkRouter(t)
	st, err := NewStage(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetShrink(&ShrinkConfig{Below: 0.05, Window: 300}); err != nil {
		t.Fatal(err)
	}
	fit, _ := plantedCenters()
	feed := func(first, n int) {
		rec := featuresRecord(t, "d", first, plantedBlobs(fit, n/2, 0.3, uint64(first)))
		res, err := st.Process(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		releaseOut(res)
	}
	feed(0, 200)
	if _, _, ok := st.ShrinkCandidate(); ok {
		t.Fatal("a candidate before a whole window")
	}
	feed(200, 200)
	id, share, ok := st.ShrinkCandidate()
	// The new blob's domain: the one no fit-blob row went to.
	counts := st.Counts()
	var empty int
	for d, c := range counts {
		if c == 0 {
			empty = d
		}
	}
	if !ok || id != empty || share != 0 {
		t.Fatalf("candidate %d (share %v, ok %v), want domain %d (counts %v)", id, share, ok, empty, counts)
	}
	// Remove it: the router has two domains, each with half the rows.
	m2, err := rm.RemoveDomain(id)
	if err != nil {
		t.Fatal(err)
	}
	m2.Version = 2
	if err := st.Swap(m2); err != nil {
		t.Fatal(err)
	}
	feed(400, 300)
	if id, _, ok := st.ShrinkCandidate(); ok {
		t.Errorf("candidate %d among two balanced domains", id)
	}
	if err := (ShrinkConfig{Below: 1}).Validate(); err == nil {
		t.Error("a share of 1 validated")
	}
}

// TestRunStageShrink: with shrinking on, the routing stage on Kafka removes
// the domain that gets no documents and publishes the smaller router.
func TestRunStageShrink(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	dir := t.TempDir()
	rm := shrinkRouter(t)
	rm.Version = 0
	if _, err := SaveRouter(dir, rm); err != nil {
		t.Fatal(err)
	}
	fit, _ := plantedCenters()
	vs := plantedBlobs(fit, 300, 0.3, 5)
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicFeatures)
	produceRaw(t, cc, 1, len(vs))
	var msgs []pipeline.Message
	for lo := 0; lo < len(vs); lo += 100 {
		rec := featuresRecord(t, "p", lo, vs[lo:lo+100])
		msgs = append(msgs, arrowMessage(t, pipeline.TopicFeatures, rec))
		rec.Release()
	}
	pipetest.Produce(t, cc, msgs...)
	stop := runInBackground(t, RunConfig{Client: cc, RouterDir: dir, Linger: 5 * time.Millisecond,
		Shrink: &ShrinkConfig{Below: 0.05, Window: 500}, ShrinkEvery: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	var got *RouterModel
	pipetest.Eventually(t, 60*time.Second, "a smaller router", func() bool {
		v, err := LatestRouterVersion(dir)
		if err != nil || v < 2 {
			return false
		}
		got, err = LoadRouter(dir, v)
		return err == nil
	})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	if got.K() != 2 || slices.Contains(got.IDs, 2) && slices.Contains(got.IDs, 0) && slices.Contains(got.IDs, 1) {
		t.Fatalf("router v%d ids %v, want two of 0, 1, 2", got.Version, got.IDs)
	}
	if v, _ := LatestRouterVersion(dir); v != 2 {
		t.Errorf("latest router version %d: removed more than one domain", v)
	}
}

// TestShrinkLoopWaitsForNewerRouter: while a router newer than the stage's
// is saved (a removal whose publishing failed after the save, not yet
// loaded), the shrink loop does not remove the same domain again from the
// stage's older router (it once wrote a third version so).
func TestShrinkLoopWaitsForNewerRouter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	rm := shrinkRouter(t)
	rm.Version = 0
	if _, err := SaveRouter(dir, rm); err != nil {
		t.Fatal(err)
	}
	st, err := NewStage(rm)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ShrinkConfig{Below: 0.05, Window: 200}
	if err := st.SetShrink(cfg); err != nil {
		t.Fatal(err)
	}
	fit, _ := plantedCenters()
	rec := featuresRecord(t, "d", 0, plantedBlobs(fit, 150, 0.3, 7))
	res, err := st.ProcessAt(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: "in"}}, rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	releaseOut(res)
	id, _, ok := st.ShrinkCandidate()
	if !ok {
		t.Fatal("no shrink candidate")
	}
	removed, err := rm.RemoveDomain(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveRouter(dir, removed); err != nil { // saved, never loaded
		t.Fatal(err)
	}
	s := &service{cfg: RunConfig{RouterDir: dir, InputTopic: "in", Shrink: cfg, ShrinkEvery: time.Millisecond},
		log: slog.New(slog.DiscardHandler)}
	lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	s.shrinkLoop(lctx, st, &routerWatch{s: s, stage: st})
	if v, err := LatestRouterVersion(dir); err != nil || v != removed.Version {
		t.Errorf("latest router version %d (%v), want %d: the domain was removed again", v, err, removed.Version)
	}
}
