package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// namedBroker is a broker the Kafka tests run against.
type namedBroker struct {
	name string
	cc   pipeline.ClientConfig
}

// externalBrokers lists brokers beyond the embedded one; the integration
// build adds a real Apache Kafka (integration_test.go).
var externalBrokers = func(testing.TB) []namedBroker { return nil }

// forEachBroker runs fn as a subtest against a fresh embedded broker and
// against every external broker.
func forEachBroker(t *testing.T, fn func(t *testing.T, cc pipeline.ClientConfig)) {
	t.Run("kfake", func(t *testing.T) { fn(t, pipetest.Broker(t).Client()) })
	for _, b := range externalBrokers(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b.cc) })
	}
}

func uniqueName(t *testing.T, base string) string {
	return fmt.Sprintf("%s.%s.%d", base, strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
}

// crashSource stops committing after allowed commits: the commit that would
// follow is refused as if the process died between writing and committing,
// and crash is called.
type crashSource struct {
	pipeline.Source
	mu      sync.Mutex
	allowed int
	crashed bool
	crash   func()
}

var errCrashed = errors.New("process crashed")

func (s *crashSource) Commit(ctx context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed || s.allowed == 0 {
		if !s.crashed {
			s.crashed = true
			s.crash()
		}
		return errCrashed
	}
	s.allowed--
	return s.Source.Commit(ctx, msgs...)
}

func (s *crashSource) Fetch(ctx context.Context) (kafka.Message, error) {
	s.mu.Lock()
	crashed := s.crashed
	s.mu.Unlock()
	if crashed {
		<-ctx.Done()
		return kafka.Message{}, ctx.Err()
	}
	return s.Source.Fetch(ctx)
}

func kafkaRunner(t *testing.T, cc pipeline.ClientConfig, in, out, group string, wrap func(pipeline.Source) pipeline.Source, lim schemas.Limits) *pipeline.Runner {
	t.Helper()
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{in}, GroupID: group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	var s pipeline.Source = src
	if wrap != nil {
		s = wrap(src)
	}
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "identity", Stage: pipeline.Identity, Source: s, Sink: sink,
		OutputTopic: out, DeadLetterTopic: out + ".dead", Limits: lim,
		DrainTimeout: 5 * time.Second, Logger: quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runUntil runs r until done reports true (checked every 20ms) or timeout.
func runUntil(t *testing.T, r *pipeline.Runner, timeout time.Duration, done func(pipeline.Counts) bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			if done(r.Counts()) {
				cancel()
				return <-errc
			}
		case <-deadline:
			cancel()
			<-errc
			t.Fatalf("runner did not finish in %v: counts %+v", timeout, r.Counts())
		}
	}
}

// TestIdentity100kCrashRestart sends 100k documents through the identity
// stage, crashes it between a write and its commit, restarts it, and checks
// that every document came out at least once and that the duplicates are
// exactly the rows written after the last commit before the crash.
func TestIdentity100kCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("100k documents through Kafka; run without -short")
	}
	forEachBroker(t, testIdentity100kCrashRestart)
}

func testIdentity100kCrashRestart(t *testing.T, cc pipeline.ClientConfig) {
	const n, parts = 100_000, 4
	in, out, group := uniqueName(t, "raw"), uniqueName(t, "identity"), uniqueName(t, "g")
	pipetest.CreateTopics(t, cc, parts, in, out, out+".dead")
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = pipetest.JSONDoc(in, fmt.Sprintf("doc-%06d", i), fmt.Sprintf("document %d says hello to the stage runtime", i))
		msgs[i].Partition = i % parts
	}
	pipetest.Produce(t, cc, msgs...)

	// Run 1: crash after 12 commits, i.e. mid-run.
	var cs *crashSource
	var cancelRun1 context.CancelFunc
	r1 := kafkaRunner(t, cc, in, out, group, func(s pipeline.Source) pipeline.Source {
		cs = &crashSource{Source: s, allowed: 12, crash: func() { cancelRun1() }}
		return cs
	}, schemas.Limits{})
	ctx1, cancel1 := context.WithTimeout(context.Background(), 2*time.Minute)
	cancelRun1 = cancel1
	// After the crash, the batches already processed may still be written
	// during the drain, or the drain may give up: a crashed process does not
	// finish its work either. Both are fine; only the commits matter.
	if err := r1.Run(ctx1); err != nil && !cs.crashed {
		t.Fatalf("run 1: %v", err)
	}
	cancel1()
	if !cs.crashed {
		t.Fatalf("run 1 finished without crashing: counts %+v", r1.Counts())
	}
	// Close the crashed consumer so the group rebalances to run 2 at once.
	cs.Source.Close()

	committed := pipetest.Committed(t, cc, group, in, parts)
	var committedTotal int64
	for p, off := range committed {
		if off < 0 {
			committed[p] = 0
		}
		committedTotal += committed[p]
	}
	if committedTotal == 0 || committedTotal >= n {
		t.Fatalf("committed %d of %d before the crash; want a mid-run crash", committedTotal, n)
	}
	run1 := pipetest.ReadAll(t, cc, out)
	_, rows1 := outputDocs(t, run1)
	var window int
	inWindow := map[string]bool{}
	for _, row := range rows1 {
		if row.origin.Offset >= committed[row.origin.Partition] {
			window++
			inWindow[row.id] = true
		}
	}
	if window == 0 {
		t.Fatalf("no output was written after the last commit; the crash did not hit the window")
	}

	// Run 2: restart and finish.
	r2 := kafkaRunner(t, cc, in, out, group, nil, schemas.Limits{})
	need := int64(n) - committedTotal
	if err := runUntil(t, r2, 3*time.Minute, func(c pipeline.Counts) bool { return c.In >= need }); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	all := pipetest.ReadAll(t, cc, out)
	ids, _ := outputDocs(t, all)
	if len(ids) != n {
		t.Fatalf("%d distinct documents out, want %d", len(ids), n)
	}
	dups := 0
	for id, c := range ids {
		if c > 1 {
			dups += c - 1
			if c != 2 || !inWindow[id] {
				t.Fatalf("document %s came out %d times; in the uncommitted window: %v", id, c, inWindow[id])
			}
		}
	}
	if dups != window {
		t.Errorf("%d duplicates, want exactly the %d rows of the uncommitted window", dups, window)
	}
	t.Logf("committed %d before the crash; uncommitted window %d rows; duplicates %d", committedTotal, window, dups)
}

// TestBadInputKafka sends every kind of bad input between good documents
// through the identity stage on a broker.
func TestBadInputKafka(t *testing.T) { forEachBroker(t, testBadInputKafka) }

func testBadInputKafka(t *testing.T, cc pipeline.ClientConfig) {
	in, out := uniqueName(t, "raw"), uniqueName(t, "identity")
	pipetest.CreateTopics(t, cc, 2, in, out, out+".dead")
	bad, reasons := badInputs(t, in)
	var msgs []kafka.Message
	for i, m := range bad {
		g := pipetest.JSONDoc(in, fmt.Sprintf("good-%d", i), "a perfectly good document")
		g.Partition, m.Partition = i%2, i%2
		msgs = append(msgs, g, m)
	}
	pipetest.Produce(t, cc, msgs...)
	r := kafkaRunner(t, cc, in, out, uniqueName(t, "g"), nil, schemas.Limits{MaxTextBytes: 1000})
	total := int64(len(msgs))
	if err := runUntil(t, r, time.Minute, func(c pipeline.Counts) bool { return c.In >= total }); err != nil {
		t.Fatal(err)
	}
	ids, _ := outputDocs(t, pipetest.ReadAll(t, cc, out))
	if len(ids) != len(bad) {
		t.Errorf("%d good documents out, want %d", len(ids), len(bad))
	}
	dead := pipetest.ReadAll(t, cc, out+".dead")
	checkDeadLetters(t, dead, bad, reasons)
	for _, d := range dead {
		if got := headerOf(d, pipeline.HeaderOriginTopic); got != in {
			t.Errorf("dead letter origin topic %q, want %q", got, in)
		}
	}
	c := r.Counts()
	if c.In != total || c.Out+c.Dead != c.In {
		t.Errorf("counts %+v: want in = out + dead = %d", c, total)
	}
}
