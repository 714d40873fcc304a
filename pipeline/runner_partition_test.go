package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/segmentio/kafka-go"
)

// countStage is a PartitionStage that counts the rows of each partition; its
// state is the count. It logs what it is told.
type countStage struct {
	mu       sync.Mutex
	counts   map[Partition]int64
	restores []string
}

func newCountStage() *countStage { return &countStage{counts: map[Partition]int64{}} }

func (s *countStage) Process(ctx context.Context, in arrow.Record) (Result, error) {
	return s.ProcessAt(ctx, Position{}, in)
}

func (s *countStage) ProcessAt(_ context.Context, pos Position, in arrow.Record) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[pos.Partition] += in.NumRows()
	in.Retain()
	return Result{Out: []Output{{Record: in}}}, nil
}

func (s *countStage) Snapshot(p Partition, _ int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return binary.BigEndian.AppendUint64(nil, uint64(s.counts[p])), nil
}

func (s *countStage) Pending(Partition, int64) bool { return false }

func (s *countStage) Restore(_ context.Context, p Partition, state []byte, at, end int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[p] = 0
	if state != nil {
		s.counts[p] = int64(binary.BigEndian.Uint64(state))
	}
	s.restores = append(s.restores, fmt.Sprintf("%s at %d end %d", p, at, end))
	return nil
}

func (s *countStage) count(p Partition) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[p]
}

// genSource is a MemSource whose consumer-group generation a test can bump.
type genSource struct {
	*MemSource
	gen atomic.Int64
}

func (s *genSource) Generation() int64 { return s.gen.Load() }

func jsonDocs(n, from int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: "in", Value: fmt.Appendf(nil, `{"id":"d%d","text":"text %d"}`, from+i, from+i)}
	}
	return msgs
}

func runPartitionStage(t *testing.T, stage PartitionStage, src Source, store StateStore) (Counts, *MemSink) {
	t.Helper()
	sink := NewMemSink()
	r, err := NewRunner(RunnerConfig{Name: "count", Stage: stage, Source: src, Sink: sink, OutputTopic: "out",
		States: store, OneToOne: true, BatchMaxRecords: 3, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return r.Counts(), sink
}

// TestRunnerPartitionState: the runner saves a partition's snapshot after
// every batch and before the commit; a runner that takes the partition over
// restores the state from it and drops the messages below it (handled
// before), counting them, so in = out + dead + dropped holds.
func TestRunnerPartitionState(t *testing.T) {
	p := Partition{Topic: "in", Partition: 0}
	store := &MemStateStore{EndFunc: func(Partition) int64 { return 15 }}

	st1 := newCountStage()
	src := NewMemSource(jsonDocs(10, 0)...)
	src.CloseInput()
	c1, _ := runPartitionStage(t, st1, src, store)
	if c1.In != 10 || c1.Out != 10 || c1.Dropped != 0 {
		t.Fatalf("first run counts %+v", c1)
	}
	state, at, _ := store.Load(context.Background(), p)
	if at != 10 || binary.BigEndian.Uint64(state) != 10 {
		t.Fatalf("snapshot at %d with count %d, want 10 and 10", at, binary.BigEndian.Uint64(state))
	}
	// A fresh partition gets a snapshot before its first output, then one
	// per batch of at most 3 messages.
	if store.Saves() < 5 {
		t.Fatalf("%d snapshots saved, want at least 5", store.Saves())
	}
	if len(st1.restores) != 1 || st1.restores[0] != "in/0 at -1 end 15" {
		t.Fatalf("restores %q", st1.restores)
	}

	// The partition is redelivered from offset 0 (say nothing was
	// committed) to another process, with 5 new messages.
	st2 := newCountStage()
	src2 := NewMemSource(append(jsonDocs(10, 0), jsonDocs(5, 10)...)...)
	src2.CloseInput()
	c2, sink := runPartitionStage(t, st2, src2, store)
	if c2.In != 15 || c2.Out != 5 || c2.Dropped != 10 || c2.Unaccounted != 0 {
		t.Fatalf("takeover counts %+v, want in 15, out 5, dropped 10", c2)
	}
	if got := st2.count(p); got != 15 {
		t.Fatalf("restored count %d, want 15", got)
	}
	if n := len(sink.Messages("out")); n == 0 {
		t.Fatal("nothing written")
	}
	if len(st2.restores) != 1 || st2.restores[0] != "in/0 at 10 end 15" {
		t.Fatalf("restores %q", st2.restores)
	}
}

// TestRunnerPartitionStateRebalance: after the source joins a new group
// generation, the runner restores every partition from the store before it
// goes on, even where the offsets continue (another member may have routed
// the partition meanwhile and saved a newer snapshot).
func TestRunnerPartitionStateRebalance(t *testing.T) {
	p := Partition{Topic: "in", Partition: 0}
	store := &MemStateStore{}
	st := newCountStage()
	src := &genSource{MemSource: NewMemSource(jsonDocs(10, 0)...)}
	sink := NewMemSink()
	r, err := NewRunner(RunnerConfig{Name: "count", Stage: st, Source: src, Sink: sink, OutputTopic: "out",
		States: store, OneToOne: true, BatchMaxRecords: 3, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitUntil(t, func() bool { return src.Committed("in", 0) == 10 })
	// Meanwhile another member handled offsets 10 and 11 and saved its
	// snapshot: 100 rows.
	if err := store.Save(ctx, p, 12, binary.BigEndian.AppendUint64(nil, 100)); err != nil {
		t.Fatal(err)
	}
	src.gen.Add(1)
	src.Add(jsonDocs(5, 10)...)
	src.CloseInput()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := st.count(p); got != 103 {
		t.Fatalf("count %d after the rebalance, want 100 restored + 3", got)
	}
	if c := r.Counts(); c.In != 15 || c.Out != 13 || c.Dropped != 2 {
		t.Fatalf("counts %+v, want in 15, out 13, dropped 2", c)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failingStore is a MemStateStore whose saves fail while fail is set, and
// that calls onFail at each failure.
type failingStore struct {
	*MemStateStore
	fail   atomic.Bool
	onFail func()
	saves  atomic.Int64
}

func (s *failingStore) Save(ctx context.Context, p Partition, at int64, state []byte) error {
	if s.fail.Load() {
		if s.onFail != nil {
			s.onFail()
		}
		return errors.New("broker away")
	}
	s.saves.Add(1)
	return s.MemStateStore.Save(ctx, p, at, state)
}

// TestRunnerStaleGenerationSave: a batch whose state save is failing when
// the source joins a later group generation (a broker restart handed the
// partition to another member) is not saved at all once the save could go
// through: its older state would overwrite the new owner's. The input is
// not committed and the runner goes on.
func TestRunnerStaleGenerationSave(t *testing.T) {
	ctx := context.Background()
	r, store := runStaleGeneration(t, nil)
	// The only save is the restore's (the state it started from, count 0);
	// the batch's (count 3) is not written.
	if state, _, _ := store.Load(ctx, Partition{Topic: "in"}); state == nil || binary.BigEndian.Uint64(state) != 0 || store.saves.Load() != 1 {
		t.Errorf("saved state %x after %d saves: the batch of the ended generation was saved", state, store.saves.Load())
	}
	if c := r.Counts(); c.In != 3 || c.Out != 3 {
		t.Errorf("counts %+v: the batch's outputs are written all the same", c)
	}
}

// TestRunnerStaleGenerationKeepsState: when the save of a batch is cut off
// because the group moved on, and this process keeps the partition and the
// source goes on after that batch, the stage goes on from its in-memory
// state (which the batch's outputs were made with) and saves it, not from
// the older snapshot: the next batch's state counts all six rows. Restoring
// the snapshot made the routing stage place redelivered documents in a
// second domain under the reliability suite.
func TestRunnerStaleGenerationKeepsState(t *testing.T) {
	ctx := context.Background()
	r, store := runStaleGeneration(t, jsonDocs(3, 3))
	state, at, err := store.Load(ctx, Partition{Topic: "in"})
	if err != nil || state == nil || at != 6 || binary.BigEndian.Uint64(state) != 6 {
		t.Errorf("saved state %x at offset %d (%v), want a count of 6 at 6: the stage went on from the older snapshot", state, at, err)
	}
	if c := r.Counts(); c.In != 6 || c.Out != 6 {
		t.Errorf("counts %+v, want 6 in and out", c)
	}
}

// runStaleGeneration runs a count stage over 3 documents fetched in group
// generation 1 whose state save fails once: the group moves on to
// generation 2 meanwhile (this process keeping the partition), the store
// comes back, and more documents (none: the input ends) follow.
func runStaleGeneration(t *testing.T, more []kafka.Message) (*Runner, *failingStore) {
	t.Helper()
	src := &genSource{MemSource: NewMemSource(jsonDocs(3, 0)...)}
	src.gen.Store(1)
	store := &failingStore{MemStateStore: &MemStateStore{}}
	store.fail.Store(true)
	store.onFail = func() { // the group moves on while the broker is away
		if src.gen.Load() == 1 {
			src.gen.Store(2) // the batch was fetched in generation 1
			store.fail.Store(false)
			if more != nil {
				src.Add(more...)
				src.CloseInput()
			}
		}
	}
	if more == nil {
		src.CloseInput()
	}
	r, err := NewRunner(RunnerConfig{Name: "count", Stage: newCountStage(), Source: src, Sink: NewMemSink(), OutputTopic: "out",
		States: store, OneToOne: true, BatchMaxRecords: 3, Linger: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return r, store
}
