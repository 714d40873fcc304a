package pipeline_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// TestGroupCommitter: a consumer that joins no group commits its positions
// to one (a simple commit); OffsetFetch (what Kafka's tools read) returns
// them; offered positions are committed, the latest winning, by Close at the
// latest; a group whose members are joined refuses such commits.
func TestGroupCommitter(t *testing.T) { forEachBroker(t, testGroupCommitter) }

func testGroupCommitter(t *testing.T, cc pipeline.ClientConfig) {
	topic, group := uniqueName(t, "gc"), uniqueName(t, "gc.monitor")
	pipetest.CreateTopics(t, cc, 3, topic)
	produceSpread(t, cc, topic, []int{4, 4, 4})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	gc, err := pipeline.NewGroupCommitter(cc, group, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	if err := gc.Commit(ctx, topic, map[int]int64{0: 2, 2: 4}); err != nil {
		t.Fatal(err)
	}
	if got, want := pipetest.Committed(t, cc, group, topic, 3), []int64{2, -1, 4}; !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	gc.Offer(topic, map[int]int64{0: 3, 1: 1})
	gc.Offer(topic, map[int]int64{1: 2})
	if err := gc.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := pipetest.Committed(t, cc, group, topic, 3), []int64{3, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("committed after Offer and Close %v, want %v", got, want)
	}

	// A group with a joined member refuses a commit from outside it.
	joined := uniqueName(t, "gc.joined")
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{topic}, GroupID: joined})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Fetch(ctx); err != nil { // the member has joined
		t.Fatal(err)
	}
	other, err := pipeline.NewGroupCommitter(cc, joined, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Commit(ctx, topic, map[int]int64{0: 1}); err == nil {
		t.Fatal("a simple commit to a group with a joined member was accepted")
	}
}

// TestGroupCommitterOutage: positions offered while the broker is away are
// committed once it is back.
func TestGroupCommitterOutage(t *testing.T) {
	b := pipetest.StartRestartable(t, pipeline.BrokerConfig{})
	cc := b.Client()
	pipetest.CreateTopics(t, cc, 1, "gco")
	gc, err := pipeline.NewGroupCommitter(cc, "gco.monitor", quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	b.Stop()
	gc.Offer("gco", map[int]int64{0: 7})
	time.Sleep(300 * time.Millisecond) // a failed attempt or two
	b.Start()
	pipetest.Eventually(t, 30*time.Second, "the offered offset committed after the outage", func() bool {
		c, err := pipeline.CommittedOffsets(context.Background(), cc, "gco.monitor", "gco", 1)
		return err == nil && c[0] == 7
	})
}
