package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// routedMessages returns messages for topic, one routed document each, of
// documents from to to-1.
func routedMessages(t *testing.T, topic string, from, to int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for i := from; i < to; i++ {
		b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
		b.Append(schemas.Document{ID: fmt.Sprint(i), Text: fmt.Sprintf("document %d %s", i, strings.Repeat("text ", 50))},
			schemas.Origin{Topic: pipeline.TopicRaw, Offset: int64(i)})
		rec := b.NewRecord()
		payload, err := schemas.EncodeRecord(rec)
		rec.Release()
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafka.Message{Topic: topic, Partition: 0, Value: payload, Headers: []kafka.Header{
			{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}, {Key: schemas.HeaderSchemaVersion, Value: []byte("1")}}})
	}
	return out
}

// TestTrainArchiveRideOutBrokerOutage: `train` and `archive` keep running
// while their broker is away (here stopped and restarted on the same address
// and data dir) and go on with the input that comes after it, instead of
// exiting at the first failed read.
func TestTrainArchiveRideOutBrokerOutage(t *testing.T) {
	t.Parallel()
	topic := pipeline.DomainTopic(0)
	tests := []struct {
		name string
		args func(addr, out string) []string
		// consumed is the number of documents the command has durably
		// taken (checkpointed or archived).
		consumed func(t *testing.T, out string) int
	}{
		{
			name: "train",
			args: func(addr, out string) []string {
				return []string{"train", "--brokers", addr, "--domain", "0", "--out", out, "--expert", "tiny", "--threads", "1",
					"--checkpoint-every", "50ms", "--json"}
			},
			consumed: func(t *testing.T, out string) int {
				c, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, "0"))
				if err != nil || c == nil {
					return 0
				}
				return int(c.Meta.Docs)
			},
		},
		{
			name: "archive",
			args: func(addr, out string) []string {
				return []string{"archive", "--brokers", addr, "--domain", "0", "--out", out, "--shard-messages", "1", "--json"}
			},
			consumed: func(t *testing.T, out string) int {
				shards, _ := filepath.Glob(filepath.Join(out, "archive", "0", "*.parquet"))
				return len(shards)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0", DataDir: data})
			if err != nil {
				t.Fatal(err)
			}
			addr := b.Addr()
			cc := b.Client()
			produce := func(from, to int) {
				t.Helper()
				sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
				if err != nil {
					t.Fatal(err)
				}
				defer sink.Close()
				if err := sink.Write(context.Background(), routedMessages(t, topic, from, to)...); err != nil {
					t.Fatal(err)
				}
			}
			if err := pipeline.EnsureTopics(context.Background(), cc, pipeline.TopicSpec{Name: topic, Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			produce(0, 10)

			out := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr pipetest.LogBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, tt.args(addr, out), strings.NewReader(""), &stdout, &stderr) }()
			waitUntil := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(60 * time.Second)
				for !cond() {
					select {
					case code := <-done:
						t.Fatalf("%s exited (status %d) while waiting for %s: %s", tt.name, code, what, stderr.String())
					case <-time.After(20 * time.Millisecond):
					}
					if time.Now().After(deadline) {
						t.Fatalf("no %s within 60s: %s", what, stderr.String())
					}
				}
			}
			waitUntil("the first 10 documents consumed", func() bool { return tt.consumed(t, out) == 10 })

			b.Close() // the outage
			waitUntil("a retry during the outage", func() bool { return strings.Contains(stderr.String(), "failed; retrying") })
			b, err = pipeline.StartBroker(pipeline.BrokerConfig{Listen: addr, DataDir: data})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			produce(10, 20)
			waitUntil("all 20 documents consumed", func() bool { return tt.consumed(t, out) == 20 })
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("%s exit %d after the stop: %s", tt.name, code, stderr.String())
			}
		})
	}
}
