package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
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

// TestRunnerCarriesKeysAndHeaders: a JSON document whose message had a key
// other than its id, or producer headers, leaves the runner as a row with
// the kafka_key, kafka_header_names and kafka_header_values columns (extra
// columns, which the featurization and routing stages carry onto the
// domain topics); a row a stage dead-letters gets them back as the dead
// letter's key and headers. A batch keyed by ids without producer headers
// (what ingest produces) has no such columns.
func TestRunnerCarriesKeysAndHeaders(t *testing.T) {
	withKH := func(id, key string, hs ...string) kafka.Message {
		m := pipetest.JSONDoc("in", id, "text of "+id)
		m.Key = []byte(key)
		for i := 0; i+1 < len(hs); i += 2 {
			m.Headers = append(m.Headers, kafka.Header{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return m
	}
	// The stage passes every row on and also dead-letters row b (as the
	// runner's "one row" test does).
	rejectB := pipeline.StageFunc(func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
		res, err := pipeline.Identity.Process(ctx, in)
		res.Dead = []pipeline.DeadRow{{Row: 1, Reason: "test", Err: errors.New("b is rejected")}}
		return res, err
	})
	for _, tt := range []struct {
		name    string
		msgs    []kafka.Message
		columns bool
	}{
		{"keys and headers", []kafka.Message{withKH("a", "user-key-a", "trace-id", "t-a"), withKH("b", "user-key-b", "trace-id", "t-b", "tenant", "x"), withKH("c", "c")}, true},
		{"ingest-style", []kafka.Message{withKH("a", "a"), withKH("b", "b"), withKH("c", "c")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := pipeline.NewMemSource(tt.msgs...)
			src.CloseInput()
			sink := pipeline.NewMemSink()
			r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, Stage: rejectB})
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			type carried struct {
				key     string
				headers string
			}
			got := map[string]carried{}
			for _, m := range sink.Messages("out") {
				recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					s := rec.Schema()
					if has := s.HasField(pipeline.ColKafkaKey); has != tt.columns {
						t.Errorf("output schema %v: kafka columns %v, want %v", s, has, tt.columns)
					}
					if !tt.columns {
						rec.Release()
						continue
					}
					docs, _ := schemas.Documents(rec)
					key := rec.Column(s.FieldIndices(pipeline.ColKafkaKey)[0]).(*array.Binary)
					names := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderNames)[0]).(*array.List)
					values := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderValues)[0]).(*array.List)
					for i := range docs.Len() {
						c := carried{}
						if key.IsValid(i) {
							c.key = string(key.Value(i))
						}
						c.headers = names.ValueStr(i) + "=" + values.ValueStr(i)
						got[docs.Doc(i).ID] = c
					}
					rec.Release()
				}
			}
			if tt.columns {
				want := map[string]carried{
					"a": {"user-key-a", `["trace-id"]=["dC1h"]`},
					"c": {"", "(null)=(null)"},
				}
				for id, w := range want {
					if got[id] != w {
						t.Errorf("row %s carries %+v, want %+v", id, got[id], w)
					}
				}
			}
			dead := sink.Messages(pipeline.TopicDeadLetter)
			if len(dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dead))
			}
			d := dead[0]
			wantKey, wantTrace := "", ""
			if tt.columns {
				wantKey, wantTrace = "user-key-b", "t-b"
			}
			if string(d.Key) != wantKey || headerOf(d, "trace-id") != wantTrace || (tt.columns && headerOf(d, "tenant") != "x") {
				t.Errorf("dead letter key %q, headers %v; want key %q, trace-id %q", d.Key, d.Headers, wantKey, wantTrace)
			}
		})
	}
}
