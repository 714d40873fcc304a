package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestStalledPartitions: a partition is stalled when it has messages past
// the group's committed offset, is not this member's, and its committed
// offset has not moved for the stall time; an empty or caught-up partition
// never is.
func TestStalledPartitions(t *testing.T) {
	b, err := StartBroker(BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc := b.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cc, TopicSpec{Name: "stall", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	sink, err := NewKafkaSink(SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// Partition 0: 3 messages, nothing committed. Partition 1: 2 messages,
	// both committed. Partition 2: empty.
	var msgs []kafka.Message
	for _, p := range []int{0, 0, 0, 1, 1} {
		msgs = append(msgs, kafka.Message{Topic: "stall", Partition: p, Value: []byte("x")})
	}
	if err := sink.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	cl := cc.Client()
	defer CloseClient(cl)
	res, err := cl.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: "g", GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{"stall": {{Partition: 1, Offset: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatal(p.Error)
			}
		}
	}
	s := &KafkaSource{cfg: SourceConfig{Client: cc, Topics: []string{"stall"}, GroupID: "g"}}
	old := func(Partition, int64, time.Time) time.Duration { return time.Hour }
	got, err := s.stalledPartitions(ctx, cl, nil, old, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"stall/0"}) {
		t.Fatalf("stalled %v, want [stall/0]", got)
	}
	if got, _ := s.stalledPartitions(ctx, cl, map[Partition]bool{{Topic: "stall", Partition: 0}: true}, old, time.Minute); len(got) != 0 {
		t.Fatalf("stalled %v although partition 0 is this member's", got)
	}
	young := func(Partition, int64, time.Time) time.Duration { return time.Second }
	if got, _ := s.stalledPartitions(ctx, cl, nil, young, time.Minute); len(got) != 0 {
		t.Fatalf("stalled %v after a second", got)
	}
}
