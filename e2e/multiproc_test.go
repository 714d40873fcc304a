package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// outputIDs reads every row of topic and counts each document id.
func outputIDs(cc pipeline.ClientConfig, topic string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := pipetest.ReadTopic(ctx, cc, topic)
	if err != nil {
		return nil, err
	}
	ids := map[string]int{}
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			return nil, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		for _, rec := range recs {
			docs, err := schemas.Documents(rec)
			if err != nil {
				return nil, err
			}
			for i := range docs.Len() {
				ids[docs.Doc(i).ID]++
			}
			rec.Release()
		}
	}
	return ids, nil
}

func wave(topic string, from, n, parts int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		id := from + i
		msgs[i] = pipetest.JSONDoc(topic, fmt.Sprintf("doc-%06d", id), fmt.Sprintf("document %d of the multi-process test", id))
		msgs[i].Partition = id % parts
	}
	return msgs
}

// waitAll waits until every id below total came out of topic at least once.
func waitAll(t *testing.T, cc pipeline.ClientConfig, topic string, total int) map[string]int {
	t.Helper()
	var ids map[string]int
	waitFor(t, 90*time.Second, fmt.Sprintf("%d documents on %s", total, topic), func() bool {
		var err error
		ids, err = outputIDs(cc, topic)
		return err == nil && len(ids) >= total
	})
	for i := range total {
		if ids[fmt.Sprintf("doc-%06d", i)] == 0 {
			t.Fatalf("doc-%06d is missing from %s", i, topic)
		}
	}
	return ids
}

// brokerProc is a broker the multi-process test can kill and restart.
type brokerProc interface {
	addr() string
	kill(t *testing.T)    // SIGKILL
	restart(t *testing.T) // start again on the same data
}

// kfakeProc is `pipeline broker --data-dir` as a child process.
type kfakeProc struct {
	port int
	dir  string
	p    *proc
}

func startKfake(t *testing.T) *kfakeProc {
	k := &kfakeProc{port: freePort(t), dir: filepath.Join(t.TempDir(), "broker")}
	k.restart(t)
	return k
}

func (k *kfakeProc) addr() string    { return "127.0.0.1:" + strconv.Itoa(k.port) }
func (k *kfakeProc) kill(*testing.T) { k.p.kill() }
func (k *kfakeProc) restart(t *testing.T) {
	k.p = start(t, "broker", brokerArgs(k.port, k.dir)...)
	waitFor(t, 20*time.Second, "broker to listen", func() bool { return reachable(k.addr()) })
}

// TestMultiProcess runs `pipeline broker --data-dir` and two `pipeline
// identity` processes in one consumer group: the partitions are split between
// them; when one is killed the other takes its partitions; when the broker is
// killed and restarted on its data dir, nothing is lost.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	testMultiProcess(t, startKfake(t))
}

func testMultiProcess(t *testing.T, broker brokerProc) {
	const parts, per = 4, 5000
	addr := broker.addr()
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	in, out := "mp.raw."+strconv.FormatInt(time.Now().UnixNano(), 36), "mp.identity."+strconv.FormatInt(time.Now().UnixNano(), 36)
	group := "identity-" + in
	pipetest.CreateTopics(t, cc, parts, in, out, pipeline.TopicDeadLetter)

	stageArgs := []string{"identity", "--brokers", addr, "--in", in, "--out", out, "--group", group, "--log-level", "warn", "--json"}
	a := start(t, "identity-a", stageArgs...)
	b := start(t, "identity-b", stageArgs...)
	waitFor(t, 60*time.Second, "two members with two partitions each", func() bool {
		as := assignments(cc, group, in)
		return len(as) == 2 && len(as[0]) == 2 && len(as[1]) == 2
	})
	split := assignments(cc, group, in)
	all := slices.Concat(split...)
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3}) {
		t.Fatalf("partitions split as %v, want 0..3 once each", split)
	}

	// Wave 1 with both members, then kill one.
	pipetest.Produce(t, cc, wave(in, 0, per, parts)...)
	waitAll(t, cc, out, per)
	// Kill a while wave 2 is in flight: what a wrote but did not commit is
	// redone by b.
	pipetest.Produce(t, cc, wave(in, per, per, parts)...)
	a.kill()
	waitFor(t, 60*time.Second, "the survivor to own all four partitions", func() bool {
		as := assignments(cc, group, in)
		return len(as) == 1 && len(as[0]) == 4
	})
	waitAll(t, cc, out, 2*per)

	// Kill the broker, restart it on its data, send wave 3.
	broker.kill(t)
	broker.restart(t)
	var raw []kafka.Message
	waitFor(t, 60*time.Second, "the restarted broker to serve "+in, func() bool {
		var err error
		raw, err = pipetest.ReadTopic(context.Background(), cc, in)
		return err == nil
	})
	if len(raw) != 2*per {
		t.Fatalf("after restart %s holds %d records, want %d", in, len(raw), 2*per)
	}
	pipetest.Produce(t, cc, wave(in, 2*per, per, parts)...)
	ids := waitAll(t, cc, out, 3*per)
	dups := 0
	for _, c := range ids {
		dups += c - 1
	}
	t.Logf("%d documents out, %d duplicates (from the killed member's uncommitted window)", len(ids), dups)
	b.stop(t)
}
