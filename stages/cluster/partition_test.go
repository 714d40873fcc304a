package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// splitModel is stageModel's router after a split: domain ids stay, one more
// domain, centroids moved, same featurizer.
func splitModel(version int64) *RouterModel {
	m := stageModel(version, []int{3, 5, 7, 9})
	m.IDs = append(m.IDs, 11)
	m.NextID = 12
	s := float32(math.Sqrt(0.5))
	m.Model = &Model{K: 5, Dim: 2, Centroids: []float32{1, 0, s, s, 0, 1, -1, 0, 0, -1}, Sizes: []int{1, 1, 1, 1, 1}}
	return m
}

// routeAt routes message off of partition p with st and returns id → domain.
func routeAt(t *testing.T, st *Stage, p pipeline.Partition, off int64, vs []featVec, rowsPer int) map[string]int32 {
	t.Helper()
	rec := featuresRecordAt(t, "d", int(off)*rowsPer, 0, vs)
	defer rec.Release()
	res, err := st.ProcessAt(context.Background(), pipeline.Position{Partition: p, First: off, Last: off}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dead) != 0 || len(res.Dropped) != 0 {
		t.Fatalf("message %d: dead %v, dropped %v", off, res.Dead, res.Dropped)
	}
	out := map[string]int32{}
	for _, o := range res.Out {
		for _, r := range decodeRouted(t, []kafka.Message{arrowMessage(t, o.Topic, o.Record)}) {
			out[r.id] = r.domain
		}
		o.Record.Release()
	}
	return out
}

// TestStageRedeliveryPlacesOnce plays a partition handed from process to
// process: each process routes some messages, saving a snapshot after most
// of them, learns newer routers (splits) at random moments, and crashes at a
// random point, possibly after routing messages whose snapshot it never
// saved. The next process restores the latest snapshot (pinned up to the
// partition's end) and goes on from it. Every document must get one domain,
// whichever process routed it, however often.
func TestStageRedeliveryPlacesOnce(t *testing.T) {
	const (
		messages = 40
		rowsPer  = 20
	)
	p := pipeline.Partition{Topic: pipeline.TopicFeatures, Partition: 0}
	input := make([][]featVec, messages)
	for i := range input {
		input[i] = skewed(rowsPer, uint64(i+1))
	}
	models := []*RouterModel{stageModel(1, []int{3, 5, 7, 9}), splitModel(2), splitModel(3)}
	models[2].Model.Centroids[2], models[2].Model.Centroids[3] = models[2].Model.Centroids[3], models[2].Model.Centroids[2]
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		store := &pipeline.MemStateStore{EndFunc: func(pipeline.Partition) int64 { return messages }}
		placed := map[string]int32{}
		routed := 0
		known := 1 // models a new process knows
		for next := int64(0); next < messages; {
			st, err := NewStage(models[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range models[1:known] {
				if err := st.Swap(m); err != nil {
					t.Fatal(err)
				}
			}
			state, at, _ := store.Load(context.Background(), p)
			if err := st.Restore(context.Background(), p, state, at, messages); err != nil {
				t.Fatal(err)
			}
			if at < next { // the runner saves a snapshot before the first output
				sn, err := st.Snapshot(p, next)
				if err != nil {
					t.Fatal(err)
				}
				_ = store.Save(context.Background(), p, next, sn)
			}
			next = max(next, at)
			// This process handles batches of its own size and crashes
			// after some of them; the snapshot of its last batch may be
			// lost (the crash came after the batch's outputs were
			// written, before its snapshot was saved).
			batch := 1 + rng.Int64N(4)
			batches := 1 + rng.IntN(4)
			for b := 0; b < batches && next < messages; b++ {
				end := min(next+batch, messages)
				for ; next < end; next++ {
					if known < len(models) && rng.IntN(6) == 0 {
						if err := st.Swap(models[known]); err != nil {
							t.Fatal(err)
						}
						known++
					}
					for id, d := range routeAt(t, st, p, next, input[next], rowsPer) {
						if prev, ok := placed[id]; ok && prev != d {
							t.Fatalf("seed %d: document %s routed to domain %d and, redelivered, to %d", seed, id, prev, d)
						}
						placed[id] = d
						routed++
					}
				}
				sn, err := st.Snapshot(p, next)
				if err != nil {
					t.Fatal(err)
				}
				if b+1 < batches || rng.IntN(2) == 0 {
					_ = store.Save(context.Background(), p, next, sn)
				}
			}
			// Crash: the next process redelivers from the last snapshot.
			_, at, _ = store.Load(context.Background(), p)
			next = at
		}
		if len(placed) != messages*rowsPer {
			t.Fatalf("seed %d: %d documents placed, want %d", seed, len(placed), messages*rowsPer)
		}
		if routed == len(placed) {
			t.Fatalf("seed %d: no document was redelivered", seed)
		}
	}
}

// TestStageForgedOrigin: a row claiming an origin far beyond its
// partition's end is dead-lettered as impossible, and the rows after it are
// routed, not dropped as duplicates of it.
func TestStageForgedOrigin(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	st.OriginCheck = func(_ context.Context, o schemas.Origin) error {
		if o.Offset >= 1000 {
			return fmt.Errorf("%w: offset %d beyond the end", pipeline.ErrImpossibleOrigin, o.Offset)
		}
		return nil
	}
	p := pipeline.Partition{Topic: pipeline.TopicFeatures}
	forged := featuresRecordAt(t, "forged", 1_000_000_000, 0, skewed(1, 1))
	defer forged.Release()
	res, err := st.ProcessAt(context.Background(), pipeline.Position{Partition: p}, forged)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dead) != 1 || res.Dead[0].Reason != ReasonImpossibleOrigin || len(res.Out) != 0 {
		t.Fatalf("forged row: dead %v, %d outputs", res.Dead, len(res.Out))
	}
	legit := featuresRecordAt(t, "d", 0, 0, skewed(50, 2))
	defer legit.Release()
	res, err = st.ProcessAt(context.Background(), pipeline.Position{Partition: p, First: 1, Last: 1}, legit)
	if err != nil {
		t.Fatal(err)
	}
	n := releaseOut(res)
	if n != 50 || len(res.Dropped) != 0 {
		t.Fatalf("after a forged row: %d of 50 routed, %d dropped", n, len(res.Dropped))
	}
	// A broker that cannot be asked makes the batch retry, and changes
	// nothing meanwhile.
	st.OriginCheck = func(context.Context, schemas.Origin) error {
		return fmt.Errorf("%w: broker away", pipeline.ErrRetry)
	}
	more := featuresRecordAt(t, "d", 50, 0, skewed(5, 3))
	defer more.Release()
	if _, err := st.ProcessAt(context.Background(), pipeline.Position{Partition: p, First: 2, Last: 2}, more); !errors.Is(err, pipeline.ErrRetry) {
		t.Fatalf("broker away: err %v, want ErrRetry", err)
	}
	st.OriginCheck = nil
	res, err = st.ProcessAt(context.Background(), pipeline.Position{Partition: p, First: 2, Last: 2}, more)
	if err != nil || len(res.Dropped) != 0 {
		t.Fatalf("retried batch: err %v, %d dropped", err, len(res.Dropped))
	}
	for _, o := range res.Out {
		o.Record.Release()
	}
}

// TestStageRowChecks: rows with NaN or Inf values and rows whose origin goes
// back within one record are dead-lettered with their reasons; re-sent rows
// are reported as dropped; every row is accounted for.
func TestStageRowChecks(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	vs := skewed(6, 4)
	vs[1].val = []float32{float32(math.NaN()), 0}
	vs[2].val = []float32{float32(math.Inf(1)), 0}
	rec := featuresRecordAt(t, "d", 0, 0, vs)
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int]schemas.Reason{}
	for _, d := range res.Dead {
		reasons[d.Row] = d.Reason
	}
	if len(reasons) != 2 || reasons[1] != ReasonNonFiniteFeatures || reasons[2] != ReasonNonFiniteFeatures {
		t.Fatalf("dead rows %v, want rows 1 and 2 %s", reasons, ReasonNonFiniteFeatures)
	}
	out := releaseOut(res)
	if out != 4 {
		t.Fatalf("%d rows routed, want 4", out)
	}

	// Offsets 10, 11, 3: the third goes back within the record. Offsets 4
	// and 5 are at or below the last position seen: duplicates.
	back := featuresRecordAt(t, "e", 10, 0, skewed(2, 5))
	defer back.Release()
	res, err = st.Process(context.Background(), back)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Out {
		o.Record.Release()
	}
	mixed := featuresRecordOffsets(t, "f", []int{12, 4, 5}, 0, skewed(3, 6))
	defer mixed.Release()
	res, err = st.Process(context.Background(), mixed)
	if err != nil {
		t.Fatal(err)
	}
	out = releaseOut(res)
	if out != 1 || len(res.Dead) != 2 || res.Dead[0].Reason != ReasonOutOfOrderOrigin || len(res.Dropped) != 0 {
		t.Fatalf("offsets 12, 4, 5: %d routed, dead %v, dropped %v; want 1 routed and 2 out of order", out, res.Dead, res.Dropped)
	}
	resent := featuresRecordAt(t, "e", 10, 0, skewed(3, 5))
	defer resent.Release()
	res, err = st.Process(context.Background(), resent)
	if err != nil {
		t.Fatal(err)
	}
	out = releaseOut(res)
	if out != 0 || len(res.Dropped) != 3 {
		t.Fatalf("re-sent offsets 10-12: %d routed, %d dropped; want 0 and 3", out, len(res.Dropped))
	}
}

// releaseOut releases the outputs of res and returns how many rows they held.
func releaseOut(res pipeline.Result) int {
	n := 0
	for _, o := range res.Out {
		n += int(o.Record.NumRows())
		o.Record.Release()
	}
	return n
}

// TestStageRestorePartitions: the partitions with a snapshot are restored,
// the others left alone, and the counts are the snapshots' sum.
func TestStageRestorePartitions(t *testing.T) {
	m := stageModel(1, []int{3, 5, 7, 9})
	src, err := NewStage(m)
	if err != nil {
		t.Fatal(err)
	}
	store := &pipeline.MemStateStore{}
	for part := range 2 {
		p := pipeline.Partition{Topic: pipeline.TopicFeatures, Partition: part}
		if n := releaseOut(mustProcessAt(t, src, p, featuresRecordAt(t, "d", 0, part, skewed(10+part, uint64(part+1))))); n != 10+part {
			t.Fatalf("partition %d: %d routed", part, n)
		}
		sn, err := src.Snapshot(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		_ = store.Save(context.Background(), p, 1, sn)
	}
	dst, err := NewStage(m)
	if err != nil {
		t.Fatal(err)
	}
	n, err := dst.RestorePartitions(context.Background(), store, pipeline.TopicFeatures, 3)
	if err != nil || n != 2 {
		t.Fatalf("restored %d partitions (err %v), want 2", n, err)
	}
	var total int64
	for _, c := range dst.Counts() {
		total += c
	}
	if total != 21 {
		t.Fatalf("restored counts %v sum to %d, want 21", dst.Counts(), total)
	}
}

func mustProcessAt(t *testing.T, st *Stage, p pipeline.Partition, rec arrow.Record) pipeline.Result {
	t.Helper()
	defer rec.Release()
	res, err := st.ProcessAt(context.Background(), pipeline.Position{Partition: p}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
