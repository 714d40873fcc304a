package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// readRoundRobin reads up to max messages (0: until none is left) the way a
// trainer does: the cursor goes to the partition after the one read. It
// returns "p/offset" per message and the cursor.
func readRoundRobin(t *testing.T, r *pipeline.RoundRobin, cursor, max int) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for max == 0 || len(got) < max {
		m, p, ok, err := r.NextRetrying(ctx, cursor, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if m.Partition != p {
			t.Fatalf("message of partition %d handed out as %d's", m.Partition, p)
		}
		got = append(got, fmt.Sprintf("%d/%d", p, m.Offset))
		cursor = (p + 1) % r.Partitions()
	}
	return got, cursor
}

// TestRoundRobinResumesInPlace: the round robin reads the partitions in the
// same order whatever the fetch timing, and a reader started again from the
// positions and cursor of one stopped after any message reads the rest in
// the order the uninterrupted reader did.
func TestRoundRobinResumesInPlace(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	const topic = "rr.in"
	pipetest.CreateTopics(t, cc, 3, topic)
	var msgs []pipeline.Message
	for p, n := range []int{3, 1, 2} {
		for i := range n {
			m := pipetest.JSONDoc(topic, fmt.Sprintf("d%d-%d", p, i), "text")
			m.Partition = p
			msgs = append(msgs, m)
		}
	}
	pipetest.Produce(t, cc, msgs...)
	open := func() *pipeline.RoundRobin {
		r, err := pipeline.NewRoundRobin(pipeline.ConsumerConfig{Client: cc, Topic: topic}, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	whole, _ := readRoundRobin(t, open(), 0, 0)
	want := []string{"0/0", "1/0", "2/0", "0/1", "2/1", "0/2"}
	if !slices.Equal(whole, want) {
		t.Fatalf("read %v, want %v", whole, want)
	}
	for stop := range len(want) + 1 {
		t.Run(fmt.Sprintf("stop after %d", stop), func(t *testing.T) {
			first := open()
			head, cursor := readRoundRobin(t, first, 0, stop)
			again := open()
			for p := range 3 {
				again.Seek(p, first.Position(p))
			}
			tail, _ := readRoundRobin(t, again, cursor, 0)
			if got := append(head, tail...); !slices.Equal(got, want) {
				t.Errorf("stopped after %d and resumed: read %v, want %v", stop, got, want)
			}
		})
	}
}
