package pipeline_test

import (
	"context"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// TestRunnerCarriesArrowKeysAndHeaders: an Arrow Document batch produced to
// the input topic with a key or producer headers leaves the runner with the
// kafka_key, kafka_header_names and kafka_header_values columns after its
// own (its extra columns kept), every row holding its message's key (null
// in the row whose id the key is) and headers; a batch without a key or
// producer headers gets none, and a batch that has a kafka_key column of its
// own keeps it and gets no other.
func TestRunnerCarriesArrowKeysAndHeaders(t *testing.T) {
	ids := []string{"a", "b", "c"}
	batch := func(t *testing.T, key string, own bool, hs ...string) kafka.Message {
		b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
		defer b.Release()
		for _, id := range ids {
			b.Append(schemas.Document{ID: id, Text: "text of " + id}, schemas.Origin{})
		}
		rec := b.NewRecord()
		defer rec.Release()
		withExtra := pipetest.AddExtraColumns(t, rec, func(row int) int { return row })
		defer withExtra.Release()
		out := withExtra
		if own { // the user's own kafka_key column
			kb := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
			defer kb.Release()
			for range ids {
				kb.Append([]byte("mine"))
			}
			k := kb.NewArray()
			defer k.Release()
			s := withExtra.Schema()
			md := s.Metadata()
			fields := append(append([]arrow.Field(nil), s.Fields()...), arrow.Field{Name: pipeline.ColKafkaKey, Type: arrow.BinaryTypes.Binary, Nullable: true})
			out = array.NewRecord(arrow.NewSchema(fields, &md), append(append([]arrow.Array(nil), withExtra.Columns()...), k), withExtra.NumRows())
			defer out.Release()
		}
		payload, err := schemas.EncodeRecord(out)
		if err != nil {
			t.Fatal(err)
		}
		m := kafka.Message{Topic: "in", Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
		if key != "" {
			m.Key = []byte(key)
		}
		for i := 0; i+1 < len(hs); i += 2 {
			m.Headers = append(m.Headers, kafka.Header{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return m
	}
	type row struct{ key, headers string }
	for _, tt := range []struct {
		name string
		msg  func(t *testing.T) kafka.Message
		want map[string]row // nil: no carried columns
		own  bool           // the batch's own kafka_key column, alone
	}{
		{"key and headers", func(t *testing.T) kafka.Message { return batch(t, "user-key", false, "trace-id", "t1") },
			map[string]row{"a": {"user-key", `["trace-id"]=["dDE="]`}, "c": {"user-key", `["trace-id"]=["dDE="]`}}, false},
		{"key of one row's id", func(t *testing.T) kafka.Message { return batch(t, "b", false) },
			map[string]row{"a": {"b", "(null)=(null)"}, "b": {"", "(null)=(null)"}}, false},
		{"headers only", func(t *testing.T) kafka.Message { return batch(t, "", false, "tenant", "x") },
			map[string]row{"a": {"", `["tenant"]=["eA=="]`}}, false},
		{"no key, no headers", func(t *testing.T) kafka.Message { return batch(t, "", false) }, nil, false},
		{"own kafka_key", func(t *testing.T) kafka.Message { return batch(t, "user-key", true, "trace-id", "t1") }, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := pipeline.NewMemSource(tt.msg(t))
			src.CloseInput()
			sink := pipeline.NewMemSink()
			r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink})
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if dead := sink.Messages(pipeline.TopicDeadLetter); len(dead) != 0 {
				t.Fatalf("%d dead letters: %v", len(dead), dead[0].Headers)
			}
			rows := 0
			for _, m := range sink.Messages("out") {
				recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					rows += int(rec.NumRows())
					s := rec.Schema()
					for _, f := range pipetest.ExtraFields() {
						if !s.HasField(f.Name) {
							t.Errorf("output lost the batch's column %s: %v", f.Name, s)
						}
					}
					hasKey, hasNames := s.HasField(pipeline.ColKafkaKey), s.HasField(pipeline.ColKafkaHeaderNames)
					if tt.own {
						key := rec.Column(s.FieldIndices(pipeline.ColKafkaKey)[0]).(*array.Binary)
						if hasNames || len(s.FieldIndices(pipeline.ColKafkaKey)) != 1 || string(key.Value(0)) != "mine" {
							t.Errorf("a batch with its own kafka_key: %v, key %q", s, key.Value(0))
						}
					}
					if tt.want == nil {
						if !tt.own && (hasKey || hasNames) {
							t.Errorf("output schema %v has carried columns, want none", s)
						}
						rec.Release()
						continue
					}
					if !hasKey || !hasNames {
						t.Fatalf("output schema %v lacks the carried columns", s)
					}
					docs, _ := schemas.Documents(rec)
					key := rec.Column(s.FieldIndices(pipeline.ColKafkaKey)[0]).(*array.Binary)
					names := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderNames)[0]).(*array.List)
					values := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderValues)[0]).(*array.List)
					for i := range docs.Len() {
						w, ok := tt.want[docs.ID(i)]
						if !ok {
							continue
						}
						got := row{headers: names.ValueStr(i) + "=" + values.ValueStr(i)}
						if key.IsValid(i) {
							got.key = string(key.Value(i))
						}
						if got != w {
							t.Errorf("row %s carries %+v, want %+v", docs.ID(i), got, w)
						}
					}
					rec.Release()
				}
			}
			if rows != len(ids) {
				t.Errorf("%d rows out, want %d", rows, len(ids))
			}
		})
	}
}

// TestDeadRowKeepsExtraColumns: a row a stage dead-letters from a batch
// with extra columns becomes a one-row Arrow Document batch that keeps them,
// typed (a row without extra columns stays a JSON document); the carried
// key becomes the dead letter's key and is not a column of it.
func TestDeadRowKeepsExtraColumns(t *testing.T) {
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	defer b.Release()
	for _, id := range []string{"a", "b", "c"} {
		b.Append(schemas.Document{ID: id, Text: "text of " + id, Meta: []byte(`{"m":1}`)}, schemas.Origin{})
	}
	rec := b.NewRecord()
	defer rec.Release()
	withExtra := pipetest.AddExtraColumns(t, rec, func(row int) int { return row + 1 })
	defer withExtra.Release()
	payload, err := schemas.EncodeRecord(withExtra)
	if err != nil {
		t.Fatal(err)
	}
	m := kafka.Message{Topic: "in", Key: []byte("user-key"), Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
	rejectB := pipeline.StageFunc(func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
		res, err := pipeline.Identity.Process(ctx, in)
		res.Dead = []pipeline.DeadRow{{Row: 1, Reason: "test"}}
		return res, err
	})
	src := pipeline.NewMemSource(m)
	src.CloseInput()
	sink := pipeline.NewMemSink()
	if err := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, Stage: rejectB}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead := sink.Messages(pipeline.TopicDeadLetter)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	if ct := headerOf(d, schemas.HeaderContentType); ct != schemas.ContentTypeArrow || string(d.Key) != "user-key" {
		t.Fatalf("dead letter content type %q, key %q; want Arrow, user-key", ct, d.Key)
	}
	recs, err := schemas.DecodeRecords(d.Value, memory.DefaultAllocator)
	if err != nil || len(recs) != 1 || recs[0].NumRows() != 1 {
		t.Fatalf("dead letter value: %d records, %v; want one row", len(recs), err)
	}
	got := recs[0]
	defer got.Release()
	if err := schemas.CheckSchema(got.Schema(), schemas.KindDocument); err != nil {
		t.Fatal(err)
	}
	if got.Schema().HasField(pipeline.ColKafkaKey) {
		t.Errorf("dead row keeps the carried key column: %v", got.Schema())
	}
	docs, _ := schemas.Documents(got)
	if doc := docs.Doc(0); doc.ID != "b" || doc.Text != "text of b" || string(doc.Meta) != `{"m":1}` {
		t.Errorf("dead row %+v, want document b", doc)
	}
	pipetest.CheckExtraColumns(t, got, func(int) int { return 2 })
}
