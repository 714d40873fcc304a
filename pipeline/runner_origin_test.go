package pipeline

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// documentBatch is an Arrow message of documents whose origin columns claim
// offset claim.
func documentBatch(t *testing.T, n int, claim int64) kafka.Message {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DocumentSchema())
	defer rb.Release()
	for i := range n {
		schemas.AppendDocument(rb, schemas.Document{ID: "a" + strconv.Itoa(i), Text: "text"},
			schemas.Origin{Topic: "forged", Partition: 9, Offset: claim, Row: int32(i)})
	}
	rec := rb.NewRecord()
	defer rec.Release()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: TopicRaw, Value: b, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
	}}
}

// TestRunnerStampsOrigins: Document rows read from Arrow messages get the
// position the runner read them from, whatever origin they claim (an origin
// far ahead would make the duplicate filters downstream drop every later
// row); with TrustOrigins they keep theirs. A tombstone is an empty-message
// dead letter.
func TestRunnerStampsOrigins(t *testing.T) {
	for _, trust := range []bool{false, true} {
		src := NewMemSource(
			kafka.Message{Topic: TopicRaw, Value: []byte(`{"id":"j","text":"json"}`)},
			documentBatch(t, 3, 1_000_000_000),
			kafka.Message{Topic: TopicRaw}, // a tombstone: no value, no headers
		)
		src.CloseInput()
		sink := NewMemSink()
		var got []schemas.Origin
		stage := StageFunc(func(_ context.Context, in arrow.Record) (Result, error) {
			docs, err := schemas.Documents(in)
			if err != nil {
				return Result{}, err
			}
			for i := range docs.Len() {
				got = append(got, docs.Origin(i))
			}
			in.Retain()
			return Result{Out: []Output{{Record: in}}}, nil
		})
		r, err := NewRunner(RunnerConfig{Name: "stamp", Stage: stage, Source: src, Sink: sink, OutputTopic: "out",
			TrustOrigins: trust, OneToOne: true, Linger: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []schemas.Origin{{Topic: TopicRaw, Offset: 0}}
		for i := range 3 {
			o := schemas.Origin{Topic: TopicRaw, Offset: 1, Row: int32(i)}
			if trust {
				o = schemas.Origin{Topic: "forged", Partition: 9, Offset: 1_000_000_000, Row: int32(i)}
			}
			want = append(want, o)
		}
		if len(got) != len(want) {
			t.Fatalf("trust=%v: origins %v, want %v", trust, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("trust=%v: row %d origin %+v, want %+v", trust, i, got[i], want[i])
			}
		}
		dead := sink.Messages(TopicDeadLetter)
		if len(dead) != 1 || HeaderValue(dead[0], HeaderReason) != string(schemas.ReasonEmptyMessage) {
			t.Fatalf("trust=%v: %d dead letters (reason %q), want one %s", trust, len(dead), HeaderValue(dead[0], HeaderReason), schemas.ReasonEmptyMessage)
		}
		if c := r.Counts(); c.In != 5 || c.Out != 4 || c.Dead != 1 || c.Unaccounted != 0 {
			t.Fatalf("trust=%v: counts %+v", trust, c)
		}
	}
}
