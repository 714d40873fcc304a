package pipeline_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// TestDeadLetterCarriesProducerHeaders: a rejected message reaches the
// dead-letter topic with its key and its producer's headers (after ours,
// which it cannot override), and a pile of large headers is capped.
func TestDeadLetterCarriesProducerHeaders(t *testing.T) {
	src := pipeline.NewMemSource()
	bad := kafka.Message{Topic: "in", Key: []byte("k1"), Value: []byte(`{"id":"m1","text":"unterminated`), Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
		{Key: "trace-id", Value: []byte("abc")},
		{Key: pipeline.HeaderReason, Value: []byte("forged")},
		{Key: "tenant", Value: []byte("t7")},
	}}
	src.Add(bad)
	src.CloseInput()
	sink := pipeline.NewMemSink()
	r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead := sink.Messages(pipeline.TopicDeadLetter)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	if string(d.Key) != "k1" {
		t.Errorf("dead letter key %q, want k1", d.Key)
	}
	count := map[string]int{}
	for _, h := range d.Headers {
		count[h.Key]++
	}
	for _, tt := range []struct{ key, want string }{
		{"trace-id", "abc"}, {"tenant", "t7"},
		{pipeline.HeaderReason, string(schemas.ReasonMalformedJSON)},
		{schemas.HeaderContentType, schemas.ContentTypeJSON},
	} {
		if got := headerOf(d, tt.key); got != tt.want || count[tt.key] != 1 {
			t.Errorf("header %s = %q (%d times), want %q once", tt.key, got, count[tt.key], tt.want)
		}
	}

	// Many large producer headers: the dead letter carries a bounded part.
	var many []kafka.Header
	for range 100 {
		many = append(many, kafka.Header{Key: "big", Value: bytes.Repeat([]byte("h"), 1000)})
	}
	m := pipeline.DeadLetter(pipeline.TopicDeadLetter, "test", kafka.Message{Topic: "in", Value: []byte("x"), Headers: many}, schemas.ErrUnknownFormat)
	size := 0
	for _, h := range m.Headers {
		if h.Key == "big" {
			size += len(h.Key) + len(h.Value)
		}
	}
	if size == 0 || size > 16<<10 {
		t.Errorf("%d bytes of producer headers carried, want some and at most 16 KiB", size)
	}
	if !strings.Contains(headerOf(m, pipeline.HeaderStage), "test") {
		t.Errorf("stage header %q", headerOf(m, pipeline.HeaderStage))
	}
}
