package pipetest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Broker starts an in-memory embedded broker on a free loopback port and
// closes it when the test ends.
func Broker(tb testing.TB) *pipeline.Broker {
	tb.Helper()
	return BrokerWith(tb, pipeline.BrokerConfig{})
}

// BrokerWith starts an embedded broker with cfg (Listen defaults to a free
// loopback port) and closes it when the test ends.
func BrokerWith(tb testing.TB, cfg pipeline.BrokerConfig) *pipeline.Broker {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := pipeline.StartBroker(cfg)
	if err != nil {
		tb.Fatalf("start embedded broker: %v", err)
	}
	tb.Cleanup(b.Close)
	return b
}

// CreateTopics creates topics with the given partition count.
func CreateTopics(tb testing.TB, cc pipeline.ClientConfig, partitions int, topics ...string) {
	tb.Helper()
	specs := make([]pipeline.TopicSpec, len(topics))
	for i, t := range topics {
		specs[i] = pipeline.TopicSpec{Name: t, Partitions: partitions}
	}
	if err := pipeline.EnsureTopics(context.Background(), cc, specs...); err != nil {
		tb.Fatalf("create topics %v: %v", topics, err)
	}
}

// JSONDoc returns a JSON document message for topic with the headers the
// runtime expects.
func JSONDoc(topic, id, text string) kafka.Message {
	v, _ := json.Marshal(map[string]string{"id": id, "text": text})
	return kafka.Message{
		Topic: topic,
		Key:   []byte(id),
		Value: v,
		Headers: []kafka.Header{
			{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
			{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
		},
	}
}

// Produce writes msgs synchronously, each to msgs[i].Partition of its topic
// (modulo the partition count).
func Produce(tb testing.TB, cc pipeline.ClientConfig, msgs ...kafka.Message) {
	tb.Helper()
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		tb.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const chunk = 5000
	for lo := 0; lo < len(msgs); lo += chunk {
		hi := min(lo+chunk, len(msgs))
		if err := sink.Write(ctx, msgs[lo:hi]...); err != nil {
			tb.Fatalf("produce messages %d..%d: %v", lo, hi, err)
		}
	}
}

// ReadAll reads every message of topic from the first offset to the end
// offsets at the time of the call, all partitions, without a consumer group.
func ReadAll(tb testing.TB, cc pipeline.ClientConfig, topic string) []kafka.Message {
	tb.Helper()
	msgs, err := ReadTopic(context.Background(), cc, topic)
	if err != nil {
		tb.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

// ReadTopic reads every message of topic up to the end offsets at the time
// of the call.
func ReadTopic(ctx context.Context, cc pipeline.ClientConfig, topic string) ([]kafka.Message, error) {
	return pipeline.ReadTopic(ctx, cc, topic, 0)
}

// Committed returns the committed offset of group on topic/partition (-1
// when none).
func Committed(tb testing.TB, cc pipeline.ClientConfig, group, topic string, partitions int) []int64 {
	tb.Helper()
	out, err := pipeline.CommittedOffsets(context.Background(), cc, group, topic, partitions)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
