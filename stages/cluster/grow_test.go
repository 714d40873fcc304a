package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// newCenters are two far centers of the planted space (see plantedCenters)
// that the router never saw.
func newCenters() [][]float32 {
	c := func(d int) []float32 {
		v := make([]float32, 8)
		v[d] = 5
		return v
	}
	return [][]float32{c(2), c(3)}
}

// TestGrowPlanted: pending rows of two planted new blobs grow exactly two
// domains, with fresh ids, origin grow, centroids on the blobs, and claims
// for nearly all of the rows.
func TestGrowPlanted(t *testing.T) {
	rm := plantedRouter(t)
	rm.Version = 1
	pending := denseRows(plantedBlobs(newCenters(), 300, 0.3, 5))
	g, claims, err := rm.Grow(context.Background(), pending, GrowConfig{Seed: 1}, NoveltyRule{})
	if err != nil {
		t.Fatal(err)
	}
	if g.K() != 4 || !slices.Equal(g.IDs[:2], rm.IDs) || !slices.Equal(g.IDs[2:], []int{2, 3}) || g.NextID != 4 {
		t.Fatalf("grown ids %v (next %d), want %v then 2, 3", g.IDs, g.NextID, rm.IDs)
	}
	if g.Growth == nil || !slices.Equal(g.Growth.IDs, []int{2, 3}) || g.Growth.Pending != 600 {
		t.Fatalf("growth record %+v", g.Growth)
	}
	for j := range 2 {
		if !slices.Equal(g.Model.Centroid(j), rm.Model.Centroid(j)) || g.Origins[j].How != OriginFit {
			t.Errorf("old domain %d changed", g.IDs[j])
		}
	}
	for j := 2; j < 4; j++ {
		if g.Origins[j].How != OriginGrow || g.Distances[j].Count == 0 {
			t.Errorf("new domain %d: origin %+v, distances %+v", g.IDs[j], g.Origins[j], g.Distances[j])
		}
	}
	// Each blob is claimed by one new domain, 97%+ of its rows.
	by := map[int]map[int]int{} // blob → claim → rows
	for i, c := range claims {
		b := i % 2
		if by[b] == nil {
			by[b] = map[int]int{}
		}
		by[b][c]++
	}
	if by[0][-1] > 9 || by[1][-1] > 9 {
		t.Errorf("unclaimed rows per blob: %d, %d (want at most 3%%)", by[0][-1], by[1][-1])
	}
	var d0, d1 int
	for c, n := range by[0] {
		if n > 250 {
			d0 = c
		}
	}
	for c, n := range by[1] {
		if n > 250 {
			d1 = c
		}
	}
	if d0 < 2 || d1 < 2 || d0 == d1 {
		t.Errorf("claims by blob %v: want each blob in its own new domain", by)
	}
	if err := g.validate(); err != nil {
		t.Fatal(err)
	}
	// One tight blob grows one domain, not MaxNew.
	one := denseRows(plantedBlobs(newCenters()[:1], 300, 0.3, 6))
	g1, _, err := rm.Grow(context.Background(), one, GrowConfig{Seed: 1}, NoveltyRule{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g1.Growth.IDs) != 1 {
		t.Errorf("one planted blob grew %d domains (%+v)", len(g1.Growth.IDs), g1.Growth)
	}
	// Too few rows for a domain: an error, nothing grown.
	if _, _, err := rm.Grow(context.Background(), denseRows(plantedBlobs(newCenters()[:1], 10, 0.3, 7)), GrowConfig{MinCount: 20, MinSize: 20}, NoveltyRule{}); err == nil {
		t.Error("grew a domain from 10 rows with MinSize 20")
	}
	// The growth survives encoding.
	g.Version = 2
	b, err := EncodeRouter(g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRouter(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Growth == nil || !slices.Equal(back.Growth.IDs, g.Growth.IDs) || back.Origins[3].How != OriginGrow || back.Origins[3].Version != 2 {
		t.Errorf("decoded growth %+v, origins %+v", back.Growth, back.Origins)
	}
}

// growWorld runs a routing stage with growth on and a mover in process:
// the parked records go to the mover as they come (the parked topic), and
// every domain topic's rows are kept in arrival order.
type growWorld struct {
	t      *testing.T
	stage  *Stage
	mover  *Mover
	topics map[string][]routedRow // domain topic → rows in arrival order
	parked []arrow.Record         // the parked topic, in order
	pubs   int
}

func newGrowWorld(t *testing.T, cfg GrowConfig) *growWorld {
	rm := plantedRouter(t)
	rm.Version = 1
	st, err := NewStage(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetGrowth(&cfg); err != nil {
		t.Fatal(err)
	}
	w := &growWorld{t: t, stage: st, topics: map[string][]routedRow{}}
	w.mover = w.newMover(rm, cfg)
	t.Cleanup(func() {
		w.mover.Close()
		for _, r := range w.parked {
			r.Release()
		}
	})
	return w
}

func (w *growWorld) newMover(rm *RouterModel, cfg GrowConfig) *Mover {
	mv, err := NewMover(rm, cfg, NoveltyRule{})
	if err != nil {
		w.t.Fatal(err)
	}
	mv.Publish = func(ctx context.Context, m *RouterModel) (*RouterModel, error) {
		m.Version = w.stage.Model().Version + 1
		w.pubs++
		return m, w.stage.Swap(m)
	}
	mv.Refetch = func(ctx context.Context, from, to int64, fn func(int64, arrow.Record) error) error {
		return refetchFrom(w.parked)(ctx, from, to, fn)
	}
	return mv
}

// collect files the routed outputs of res under their topics and returns
// the parked ones (not released).
func (w *growWorld) collect(res pipeline.Result) []arrow.Record {
	var parked []arrow.Record
	for _, o := range res.Out {
		if o.Topic == pipeline.TopicNovel {
			if !o.PartitionSet || o.Partition != 0 {
				w.t.Fatalf("a parked record for partition %d (set %v), want 0", o.Partition, o.PartitionSet)
			}
			parked = append(parked, o.Record)
			continue
		}
		rows := decodeRouted(w.t, []pipeline.Message{arrowMessage(w.t, o.Topic, o.Record)})
		w.topics[o.Topic] = append(w.topics[o.Topic], rows...)
		o.Record.Release()
	}
	return parked
}

// feed routes vs (origin offsets from first) in batches of 100 and hands
// the parked records to the mover.
func (w *growWorld) feed(ctx context.Context, prefix string, first int, vs []featVec) {
	for lo := 0; lo < len(vs); lo += 100 {
		hi := min(lo+100, len(vs))
		rec := featuresRecord(w.t, prefix, first+lo, vs[lo:hi])
		res, err := w.stage.Process(ctx, rec)
		rec.Release()
		if err != nil {
			w.t.Fatal(err)
		}
		for _, p := range w.collect(res) {
			off := int64(len(w.parked))
			w.parked = append(w.parked, p)
			mres, err := w.mover.ProcessAt(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: pipeline.TopicNovel}, First: off, Last: off}, p)
			if err != nil {
				w.t.Fatal(err)
			}
			if len(mres.Dead) > 0 {
				w.t.Fatalf("mover dead-lettered %d rows", len(mres.Dead))
			}
			w.collect(mres)
		}
	}
}

// placements returns each row id's domain topics (several: placed twice).
func (w *growWorld) placements() map[string][]string {
	out := map[string][]string{}
	for topic, rows := range w.topics {
		for _, r := range rows {
			out[r.id] = append(out[r.id], topic)
		}
	}
	return out
}

// checkOrder fails unless every domain topic received each origin
// partition's rows in increasing origin order (what the trainers need).
func (w *growWorld) checkOrder() {
	for topic, rows := range w.topics {
		last := int64(-1)
		for _, r := range rows {
			if r.offset <= last {
				w.t.Fatalf("%s: origin %d after %d: out of order", topic, r.offset, last)
			}
			last = r.offset
		}
	}
}

// growStream is the planted scenario: 2000 rows of the fit blobs (A), then
// 2000 rows of which half come from two new blobs (B) and half from the
// fit blobs, interleaved. Row ids say where they come from.
func growStream(seed uint64) (a, b []featVec, bNew []bool) {
	fit, _ := plantedCenters()
	a = plantedBlobs(fit, 1000, 0.3, seed)
	olds := plantedBlobs(fit, 500, 0.3, seed+1)
	news := plantedBlobs(newCenters(), 500, 0.3, seed+2)
	rng := rand.New(rand.NewPCG(seed, 3))
	for len(olds)+len(news) > 0 {
		if len(news) > 0 && (len(olds) == 0 || rng.IntN(2) == 0) {
			b, news, bNew = append(b, news[0]), news[1:], append(bNew, true)
		} else {
			b, olds, bNew = append(b, olds[0]), olds[1:], append(bNew, false)
		}
	}
	return a, b, bNew
}

// TestGrowthPlanted runs the whole growth in process: planted new blobs
// become new domains (≥ 90% of their rows land there), rows of the fit
// blobs stay in the old domains (≥ 98%), the ids of the old domains stay,
// every row is placed at most once and pending otherwise, and every domain
// topic receives its rows in origin order.
func TestGrowthPlanted(t *testing.T) {
	for _, seed := range []uint64{11, 12, 13} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			w := newGrowWorld(t, GrowConfig{MinCount: 100, Seed: 1})
			a, b, bNew := growStream(seed)
			w.feed(ctx, "a", 0, a)
			if n, _ := w.stage.Parked(); n > 40 {
				t.Errorf("%d of A's 2000 rows parked as novel", n)
			}
			w.feed(ctx, "b", len(a), b)
			w.checkOrder()
			m := w.stage.Model()
			if m.K() < 3 || w.pubs == 0 {
				t.Fatalf("no domain grew: k=%d, %d growths", m.K(), w.pubs)
			}
			if !slices.Equal(m.IDs[:2], []int{0, 1}) {
				t.Errorf("old ids changed: %v", m.IDs)
			}
			place := w.placements()
			stats := w.mover.Stats()
			var inNew, newTotal, oldInOld, oldTotal, placed int
			for i := range b {
				id := "b" + strconv.Itoa(len(a)+i)
				ts := place[id]
				if len(ts) > 1 {
					t.Fatalf("%s placed %d times: %v", id, len(ts), ts)
				}
				placed += len(ts)
				d := -1
				if len(ts) == 1 {
					d, _ = pipeline.ParseDomainTopic(ts[0])
				}
				if bNew[i] {
					newTotal++
					if d >= 2 {
						inNew++
					}
				} else {
					oldTotal++
					if d == 0 || d == 1 {
						oldInOld++
					}
				}
			}
			for i := range a {
				if len(place["a"+strconv.Itoa(i)]) > 1 {
					t.Fatalf("a%d placed twice", i)
				}
				placed += len(place["a"+strconv.Itoa(i)])
			}
			// Nothing lost: every row is placed or pending.
			if int64(placed)+stats.Pending != int64(len(a)+len(b)) {
				t.Errorf("placed %d + pending %d != %d inputs (%+v)", placed, stats.Pending, len(a)+len(b), stats)
			}
			t.Logf("k=%d ids=%v growths=%d; new-blob rows in new domains %d/%d, fit-blob rows in old %d/%d; mover %+v",
				m.K(), m.IDs, w.pubs, inNew, newTotal, oldInOld, oldTotal, stats)
			if float64(inNew) < 0.9*float64(newTotal) {
				t.Errorf("new-blob rows in new domains: %d of %d, want ≥ 90%%", inNew, newTotal)
			}
			if float64(oldInOld) < 0.98*float64(oldTotal) {
				t.Errorf("fit-blob rows in old domains: %d of %d, want ≥ 98%%", oldInOld, oldTotal)
			}
		})
	}
}

// TestMoverReplay kills the mover at random points of the parked topic and
// restores it from its last snapshot: the rows it writes, deduplicated by
// origin per domain as the trainers do, are exactly those of an
// uninterrupted mover, and the growth is published once.
func TestMoverReplay(t *testing.T) {
	ctx := context.Background()
	cfg := GrowConfig{MinCount: 100, Seed: 1}
	ref := newGrowWorld(t, cfg)
	a, b, _ := growStream(21)
	ref.feed(ctx, "a", 0, a)
	ref.feed(ctx, "b", len(a), b)
	if ref.pubs == 0 {
		t.Fatal("no growth")
	}
	want := map[string][]string{} // topic → ids
	for topic, rows := range ref.topics {
		for _, r := range rows {
			if topic != pipeline.DomainTopic(0) && topic != pipeline.DomainTopic(1) {
				want[topic] = append(want[topic], r.id)
			}
		}
	}
	// Replay the recorded parked topic through movers that crash.
	rng := rand.New(rand.NewPCG(4, 5))
	for trial := range 5 {
		rm := plantedRouter(t)
		rm.Version = 1
		pubs := 0
		grown := map[int64]*RouterModel{}
		mk := func() *Mover {
			mv, err := NewMover(rm, cfg, NoveltyRule{})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range grown {
				if err := mv.Swap(g); err != nil {
					t.Fatal(err)
				}
			}
			mv.Publish = func(ctx context.Context, m *RouterModel) (*RouterModel, error) {
				m.Version = int64(2 + len(grown))
				grown[m.Version] = m
				pubs++
				return m, nil
			}
			mv.Refetch = refetchFrom(ref.parked)
			return mv
		}
		got := map[string][]routedRow{}
		mv := mk()
		var snap []byte
		var at int64
		for off := int64(0); off < int64(len(ref.parked)); off++ {
			res, err := mv.ProcessAt(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: pipeline.TopicNovel}, First: off, Last: off}, ref.parked[off])
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Out {
				got[o.Topic] = append(got[o.Topic], decodeRouted(t, []pipeline.Message{arrowMessage(t, o.Topic, o.Record)})...)
				o.Record.Release()
			}
			if rng.IntN(4) == 0 { // a commit
				if snap, err = mv.Snapshot(pipeline.Partition{Topic: pipeline.TopicNovel}, off+1); err != nil {
					t.Fatal(err)
				}
				at = off + 1
			}
			if rng.IntN(10) == 0 { // a crash: a new process from the last snapshot
				mv.Close()
				mv = mk()
				if err := mv.Restore(ctx, pipeline.Partition{Topic: pipeline.TopicNovel}, snap, at, int64(len(ref.parked))); err != nil {
					t.Fatal(err)
				}
				off = at - 1
				if snap == nil {
					off = -1
				}
			}
		}
		mv.Close()
		if pubs != ref.pubs {
			t.Errorf("trial %d: %d growths published, want %d", trial, pubs, ref.pubs)
		}
		// Deduplicate as a trainer does: a row at or below the last origin
		// applied is skipped.
		for topic, w := range want {
			ids := trainerDedup(got[topic])
			if !slices.Equal(ids, w) {
				t.Errorf("trial %d: %s got %d rows after dedup, want %d", trial, topic, len(ids), len(w))
			}
		}
	}
}

// TestMoverStaleSnapshot: a mover can be restored from a snapshot older
// than the input its group committed: a process that lost the parked
// partition (a broker restart ended its generation) saves its snapshot
// late, over the newer one of the process that took over and committed
// more. The runner then restores that snapshot and, the input being
// committed further, saves it again at the committed offset and goes on
// from there. The mover must replay the parked records in between (and
// adopt a growth the other process published there) instead of going on
// without them: the rows they left pending would be lost. Its rows,
// deduplicated as a trainer does, and its pending rows are those of an
// uninterrupted mover, and no growth is published twice.
func TestMoverStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	cfg := GrowConfig{MinCount: 100, Seed: 1}
	ref := newGrowWorld(t, cfg)
	a, b, _ := growStream(21)
	ref.feed(ctx, "a", 0, a)
	ref.feed(ctx, "b", len(a), b)
	if ref.pubs == 0 {
		t.Fatal("no growth")
	}
	want := map[string][]string{} // topic → ids, of the mover's topics
	for topic, rows := range ref.topics {
		if topic == pipeline.DomainTopic(0) || topic == pipeline.DomainTopic(1) {
			continue
		}
		for _, r := range rows {
			want[topic] = append(want[topic], r.id)
		}
	}
	wantPending := ref.mover.Stats().Pending
	n := int64(len(ref.parked))
	p := pipeline.Partition{Topic: pipeline.TopicNovel}
	spanned := 0
	for _, cut := range [][2]int64{{n / 5, 2 * n / 5}, {n / 3, 2 * n / 3}, {n / 2, 4 * n / 5}, {n / 10, 9 * n / 10}} {
		k1, k2 := cut[0], cut[1]
		rm := plantedRouter(t)
		rm.Version = 1
		grown := map[int64]*RouterModel{}
		mk := func(known int64) *Mover {
			mv, err := NewMover(rm, cfg, NoveltyRule{})
			if err != nil {
				t.Fatal(err)
			}
			for v, g := range grown {
				if v <= known {
					if err := mv.Swap(g); err != nil {
						t.Fatal(err)
					}
				}
			}
			mv.Publish = func(ctx context.Context, m *RouterModel) (*RouterModel, error) {
				m.Version = int64(2 + len(grown))
				grown[m.Version] = m
				return m, nil
			}
			mv.Lookup = func(ctx context.Context, v int64) (*RouterModel, error) {
				if g, ok := grown[v]; ok {
					return g, nil
				}
				if v == rm.Version {
					return rm, nil
				}
				return nil, fmt.Errorf("no router version %d", v)
			}
			mv.Refetch = refetchFrom(ref.parked)
			return mv
		}
		got := map[string][]routedRow{}
		run := func(mv *Mover, from, to int64) {
			for off := from; off < to; off++ {
				res, err := mv.ProcessAt(ctx, pipeline.Position{Partition: p, First: off, Last: off}, ref.parked[off])
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range res.Out {
					got[o.Topic] = append(got[o.Topic], decodeRouted(t, []pipeline.Message{arrowMessage(t, o.Topic, o.Record)})...)
					o.Record.Release()
				}
			}
		}
		// The first owner, up to k1: its snapshot at k1.
		m1 := mk(0)
		run(m1, 0, k1)
		s1, err := m1.Snapshot(p, k1)
		if err != nil {
			t.Fatal(err)
		}
		m1.Close()
		known := int64(1 + len(grown))
		// The next owner goes on to k2 and commits there.
		m2 := mk(known)
		if err := m2.Restore(ctx, p, s1, k1, n); err != nil {
			t.Fatal(err)
		}
		run(m2, k1, k2)
		m2.Close()
		grewInGap := int64(1+len(grown)) > known
		if grewInGap {
			spanned++
		}
		// The snapshot at k1 lands last. The runner restores it, saves it
		// at the committed k2, and a crash later another process restores
		// that and goes on from k2. Neither knows the growths m2 made.
		m3 := mk(known)
		if err := m3.Restore(ctx, p, s1, k1, n); err != nil {
			t.Fatal(err)
		}
		s3, err := m3.Snapshot(p, k2)
		if err != nil {
			t.Fatal(err)
		}
		m3.Close()
		m4 := mk(known)
		if err := m4.Restore(ctx, p, s3, k2, n); err != nil {
			t.Fatal(err)
		}
		run(m4, k2, n)
		pending := m4.Stats().Pending
		m4.Close()

		if len(grown) != ref.pubs {
			t.Errorf("cut %d..%d: %d growths published, want %d", k1, k2, len(grown), ref.pubs)
		}
		if pending != wantPending {
			t.Errorf("cut %d..%d: %d rows pending at the end, want %d", k1, k2, pending, wantPending)
		}
		for topic, w := range want {
			ids := trainerDedup(got[topic])
			if !slices.Equal(ids, w) {
				t.Errorf("cut %d..%d: %s got %d rows after dedup, want %d", k1, k2, topic, len(ids), len(w))
			}
		}
		t.Logf("cut %d..%d of %d parked records: growth in the gap %v, pending %d", k1, k2, n, grewInGap, pending)
	}
	if spanned == 0 {
		t.Error("no cut has a growth between its snapshot and the committed offset")
	}
}

// TestMoverGapWithDeadRecord: a parked message the runner dead-lettered
// (here a record without parking metadata) leaves a gap in the offsets the
// mover is handed; its catch-up passes over it instead of asking for a
// retry for ever, and its state then reaches the record after.
func TestMoverGapWithDeadRecord(t *testing.T) {
	ctx := context.Background()
	w := newGrowWorld(t, GrowConfig{MinCount: 100000, MinSize: 25})
	_, novel := plantedCenters()
	w.feed(ctx, "n", 0, plantedBlobs(novel, 50, 0.3, 9))
	n := int64(len(w.parked))
	bad := featuresRecord(t, "x", 1000, plantedBlobs(novel, 1, 0.3, 10))
	defer bad.Release()
	refetched := 0
	w.mover.Refetch = func(ctx context.Context, from, to int64, fn func(int64, arrow.Record) error) error {
		for off := from; off < to; off++ {
			refetched++
			if err := fn(off, bad); err != nil {
				return err
			}
		}
		return nil
	}
	next := featuresRecord(t, "y", 2000, plantedBlobs(novel, 3, 0.3, 11))
	defer next.Release()
	_, err := w.mover.ProcessAt(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: pipeline.TopicNovel}, First: n + 1, Last: n + 1}, next)
	switch {
	case err == nil:
		t.Fatal("a record without parking metadata was accepted")
	case errors.Is(err, pipeline.ErrRetry):
		t.Fatalf("the mover asks for a retry: %v", err)
	}
	if refetched != 1 {
		t.Fatalf("refetched %d records, want the 1 of the gap", refetched)
	}
	b, err := w.mover.Snapshot(pipeline.Partition{Topic: pipeline.TopicNovel}, n+2)
	if err != nil {
		t.Fatal(err)
	}
	var sn moverSnapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		t.Fatal(err)
	}
	// The record at n+1 failed (no parking metadata either), so the state
	// reaches n+1: the gap is behind it.
	if sn.Next == nil || *sn.Next != n+1 {
		t.Fatalf("snapshot next %v, want %d", sn.Next, n+1)
	}
}

// TestRunStageGrowth runs the routing stage with growth on against the
// embedded broker: A's rows, then B's (half of them from two new blobs),
// with the stage restarted in between and again after the growth. The new
// blobs become new domains, every row lands in one domain at most once
// after a trainer's deduplication by origin (or stays pending), and the
// mover's state survives the restarts.
func TestRunStageGrowth(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	dir := t.TempDir()
	rm := plantedRouter(t)
	if _, err := SaveRouter(dir, rm); err != nil {
		t.Fatal(err)
	}
	a, b, bNew := growStream(31)
	all := append(slices.Clone(a), b...)
	n := len(all)
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicFeatures)
	produceRaw(t, cc, 1, n)
	produce := func(lo, hi int) {
		var msgs []pipeline.Message
		for i := lo; i < hi; i += 100 {
			rec := featuresRecord(t, "p", i, all[i:min(i+100, hi)])
			msgs = append(msgs, arrowMessage(t, pipeline.TopicFeatures, rec))
			rec.Release()
		}
		pipetest.Produce(t, cc, msgs...)
	}
	grow := &GrowConfig{MinCount: 100, Seed: 1}
	cfg := RunConfig{Client: cc, RouterDir: dir, Linger: 5 * time.Millisecond, Grow: grow, Logger: slog.New(slog.DiscardHandler)}
	ids := []int{0, 1, 2, 3, 4, 5}
	// placed returns each row id's domains after a trainer's deduplication.
	placed := func() map[string][]int {
		out := map[string][]int{}
		for id, rows := range routedOn(t, cc, ids) {
			last := int64(-1)
			for _, r := range rows {
				if r.offset <= last {
					continue
				}
				last = r.offset
				out[r.id] = append(out[r.id], id)
			}
		}
		return out
	}
	produce(0, len(a))
	stop := runInBackground(t, cfg)
	pipetest.Eventually(t, 60*time.Second, "A routed", func() bool { return len(placed()) >= len(a)-40 })
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	produce(len(a), len(a)+len(b)/2)
	stop = runInBackground(t, cfg)
	pipetest.Eventually(t, 60*time.Second, "a growth", func() bool {
		v, err := LatestRouterVersion(dir)
		return err == nil && v > rm.Version
	})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	produce(len(a)+len(b)/2, n)
	stop = runInBackground(t, cfg)
	newRows := 0
	for _, isNew := range bNew {
		if isNew {
			newRows++
		}
	}
	var got map[string][]int
	pipetest.Eventually(t, 60*time.Second, "B's new rows in new domains", func() bool {
		got = placed()
		in := 0
		for i, isNew := range bNew {
			if ds := got["p"+strconv.Itoa(len(a)+i)]; isNew && len(ds) == 1 && ds[0] >= 2 {
				in++
			}
		}
		return float64(in) >= 0.9*float64(newRows)
	})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	got = placed()
	oldInNew := 0
	for i, isNew := range bNew {
		ds := got["p"+strconv.Itoa(len(a)+i)]
		if !isNew && len(ds) == 1 && ds[0] >= 2 {
			oldInNew++
		}
	}
	for id, ds := range got {
		if len(ds) > 1 {
			t.Errorf("row %s placed in %v", id, ds)
		}
	}
	if oldInNew > len(b)/100 {
		t.Errorf("%d fit-blob rows of B in new domains", oldInNew)
	}
	g, err := LoadRouter(dir, rm.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Growth == nil || len(g.Growth.IDs) != 2 || g.Origins[2].How != OriginGrow {
		t.Errorf("grown router: growth %+v, origins %+v", g.Growth, g.Origins)
	}
	if v, _ := LatestRouterVersion(dir); v != rm.Version+1 {
		t.Errorf("latest router version %d: grew more than once", v)
	}
	t.Logf("placed %d of %d rows; %d fit-blob rows of B in new domains", len(got), n, oldInNew)
}

// TestDecodeMoverState: a mover's snapshot decodes to its pending origins
// and counters.
func TestDecodeMoverState(t *testing.T) {
	ctx := context.Background()
	w := newGrowWorld(t, GrowConfig{MinCount: 100000, MinSize: 25})
	_, novel := plantedCenters()
	w.feed(ctx, "n", 0, plantedBlobs(novel, 50, 0.3, 9))
	b, err := w.mover.Snapshot(pipeline.Partition{Topic: pipeline.TopicNovel}, int64(len(w.parked)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeMoverState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pending) != int(w.mover.Stats().Pending) || len(s.Pending) < 45 || s.Seen != int64(len(s.Pending)) || s.RouterVersion != 1 {
		t.Fatalf("decoded %+v, mover %+v", s, w.mover.Stats())
	}
	for i, o := range s.Pending {
		if o.Topic != pipeline.TopicRaw || (i > 0 && o.Offset <= s.Pending[i-1].Offset) {
			t.Fatalf("pending origin %d: %+v", i, o)
		}
	}
	if _, err := DecodeMoverState([]byte(`{"format":9}`)); err == nil {
		t.Error("decoded a snapshot of an unknown format")
	}
}

// TestFineAndOOVRoundTrip: a router's fine centroids (rows with negative
// ids) and out-of-vocabulary shares survive the Arrow and Parquet files
// and the topic encoding; fine rows out of order or without distances are
// damage.
func TestFineAndOOVRoundTrip(t *testing.T) {
	rm := plantedRouter(t)
	fit, _ := plantedCenters()
	x := denseRows(plantedBlobs(fit, 200, 0.3, 3))
	fine, err := FitFine(context.Background(), x, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	rm.Fine = fine
	oov := NewDistanceStats([]float64{0, 0.01, 0.02, 0.05, 0.1})
	rm.OOV = &oov
	dir := t.TempDir()
	v, err := SaveRouter(dir, rm)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got *RouterModel) {
		t.Helper()
		if got.K() != rm.K() || got.Fine == nil || got.Fine.Model.K != 8 || !slices.Equal(got.Fine.Model.Centroids, fine.Model.Centroids) ||
			got.Fine.Distances.Count != fine.Distances.Count || got.OOV == nil || got.OOV.Max != 0.1 {
			t.Errorf("%s: k %d, fine %+v, oov %+v", name, got.K(), got.Fine, got.OOV)
		}
	}
	back, err := LoadRouter(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	check("arrow", back)
	if back, err = loadRouterParquet(RouterPath(dir, v)[:len(RouterPath(dir, v))-len(".arrow")] + ".parquet"); err != nil {
		t.Fatal(err)
	}
	check("parquet", back)
	b, err := EncodeRouter(rm)
	if err != nil {
		t.Fatal(err)
	}
	if back, err = DecodeRouter(b); err != nil {
		t.Fatal(err)
	}
	check("topic", back)
	// The leave-one-out distances are those of rows the fit did not see:
	// fresh rows of the same blobs lie within their 0.99 quantile about 99%
	// of the time.
	fresh := denseRows(plantedBlobs(fit, 500, 0.3, 4))
	th := NoveltyRule{}.FineThreshold(rm)
	over := 0
	for _, d := range rm.fineDistances(fresh) {
		if float64(d) > th {
			over++
		}
	}
	if over > 30 {
		t.Errorf("%d of 1000 fresh rows beyond the fine threshold %.3f, want about 10", over, th)
	}
	// Damage: fine rows without distances.
	tb := rm.table()
	if _, err := tb.splitFine(rm.Model.Dim, nil); err == nil {
		t.Error("fine rows without distances accepted")
	}
	tb = rm.table()
	tb.ids[len(tb.ids)-1] = -3
	if _, err := tb.splitFine(rm.Model.Dim, &fine.Distances); err == nil {
		t.Error("fine rows out of order accepted")
	}
}

// TestStageOOVNovelty: with a Coverage function, a row whose text is
// mostly outside the vocabulary is novel even at the centroid.
func TestStageOOVNovelty(t *testing.T) {
	rm := plantedRouter(t)
	oov := NewDistanceStats([]float64{0, 0.05, 0.1, 0.1, 0.2})
	rm.OOV = &oov
	st, err := NewStage(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetGrowth(&GrowConfig{}); err != nil { // the test runs with growth on
		t.Fatal(err)
	}
	st.Coverage = func(v int64) func(string) float64 {
		return func(text string) float64 {
			if len(text) > 0 && text[len(text)-1] == '7' { // rows whose offset ends in 7
				return 0.9
			}
			return 0
		}
	}
	fit, _ := plantedCenters()
	rec := featuresRecord(t, "d", 0, plantedBlobs(fit, 50, 0.01, 2)) // all at the centroids
	res, err := st.Process(context.Background(), rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	releaseOut(res)
	if s := st.Novelty(); s.Novel != 10 {
		t.Errorf("%d novel of %d, want the 10 rows with a text outside the vocabulary", s.Novel, s.Judged)
	}
}

// refetchFrom is a Mover.Refetch over parked, the parked topic as a list
// of records by offset.
func refetchFrom(parked []arrow.Record) func(context.Context, int64, int64, func(int64, arrow.Record) error) error {
	return func(ctx context.Context, from, to int64, fn func(int64, arrow.Record) error) error {
		for off := max(from, 0); off < to && off < int64(len(parked)); off++ {
			if err := fn(off, parked[off]); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestMoverForgedOrigin: a row on the parked topic whose origin cannot
// exist is dead-lettered and does not move the deduplication ahead: the
// genuine rows after it are read, not dropped.
func TestMoverForgedOrigin(t *testing.T) {
	ctx := context.Background()
	rm := plantedRouter(t)
	rm.Version = 1
	mv, err := NewMover(rm, GrowConfig{MinCount: 100000, MinSize: 25}, NoveltyRule{})
	if err != nil {
		t.Fatal(err)
	}
	defer mv.Close()
	mv.OriginCheck = func(_ context.Context, o schemas.Origin) error {
		if o.Offset >= 1000 {
			return fmt.Errorf("%w: offset %d beyond the end", pipeline.ErrImpossibleOrigin, o.Offset)
		}
		return nil
	}
	_, novel := plantedCenters()
	park := func(offsets []int) pipeline.Result {
		rec := featuresRecordOffsets(t, "n", offsets, 0, plantedBlobs(novel, len(offsets), 0.3, 1))
		defer rec.Release()
		md := rec.Schema().Metadata()
		meta := arrow.NewMetadata(append(md.Keys(), MetaParkedRouterVersion), append(md.Values(), "1"))
		parked := array.NewRecord(arrow.NewSchema(rec.Schema().Fields(), &meta), rec.Columns(), rec.NumRows())
		defer parked.Release()
		res, err := mv.Process(ctx, parked)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := park([]int{5, 999999})
	if len(res.Dead) != 1 || res.Dead[0].Row != 1 || res.Dead[0].Reason != ReasonImpossibleOrigin {
		t.Fatalf("dead rows %+v, want the forged row 1", res.Dead)
	}
	res = park([]int{6, 7})
	if len(res.Dropped) != 0 || mv.Stats().Pending != 3 {
		t.Errorf("after the forged row: dropped %v, pending %d; want the genuine rows 5, 6, 7 pending", res.Dropped, mv.Stats().Pending)
	}
}

// trainerDedup returns the ids of rows (one origin partition, in arrival
// order) that a trainer applies: a row at or below the last origin offset
// applied is skipped as a duplicate.
func trainerDedup(rows []routedRow) []string {
	var ids []string
	last := int64(-1)
	for _, r := range rows {
		if r.offset <= last {
			continue
		}
		last = r.offset
		ids = append(ids, r.id)
	}
	return ids
}
