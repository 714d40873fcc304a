package embed_test

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
	"github.com/domainflow/domainflow/stages/embed"
)

// docsRecord builds a Document record of texts whose row i has origin
// offset i.
func docsRecord(ids, texts []string) arrow.Record {
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := range ids {
		b.Append(schemas.Document{ID: ids[i], Text: texts[i]}, schemas.Origin{Topic: pipeline.TopicRaw, Offset: int64(i)})
	}
	return b.NewRecord()
}

// TestStageCarriesExtraColumns: the columns a user stage added to a
// Document batch come out of the featurization stage on the Features rows,
// after the Features columns, row for row; the document columns and vectors
// are those of the batch without them. Through the runner the batch is an
// Arrow message on docs.raw, as a user stage would write it.
func TestStageCarriesExtraColumns(t *testing.T) {
	ids, texts := fixtureTexts(t, 40)
	for _, k := range []embed.Kind{embed.KindTfidf, embed.KindLSA} {
		f := fitKind(t, k, texts)
		s, _ := embed.NewState(f, len(texts))
		s.Settings.Version = 3
		plain := docsRecord(ids, texts)
		defer plain.Release()
		in := pipetest.AddExtraColumns(t, plain, func(i int) int { return i })
		defer in.Release()
		tests := []struct {
			name string
			run  func(t *testing.T) []arrow.Record
			key  func(docs *schemas.DocumentColumns, i int) int
		}{
			{"Process", func(t *testing.T) []arrow.Record {
				res, err := embed.NewStage(s).Process(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Dead) != 0 || len(res.Out) != 1 {
					t.Fatalf("result: %d dead, %d outputs", len(res.Dead), len(res.Out))
				}
				return []arrow.Record{res.Out[0].Record}
			}, func(docs *schemas.DocumentColumns, i int) int { return int(docs.Origin(i).Offset) }},
			{"runner", func(t *testing.T) []arrow.Record {
				payload, err := schemas.EncodeRecord(in)
				if err != nil {
					t.Fatal(err)
				}
				src := pipeline.NewMemSource(kafka.Message{Topic: pipeline.TopicRaw, Value: payload, Headers: []kafka.Header{
					{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
					{Key: schemas.HeaderSchemaVersion, Value: []byte("1")}}})
				src.CloseInput()
				sink := pipeline.NewMemSink()
				r, err := pipeline.NewRunner(pipeline.RunnerConfig{Name: "embed", Stage: embed.NewStage(s), Source: src, Sink: sink,
					OutputTopic: pipeline.TopicFeatures, Logger: quiet, OneToOne: true, OutMaxRows: 16})
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				if c := r.Counts(); c.In != int64(len(ids)) || c.Out != c.In || c.Dead != 0 || c.Unaccounted != 0 {
					t.Fatalf("counts %+v", c)
				}
				var out []arrow.Record
				for _, m := range sink.Messages(pipeline.TopicFeatures) {
					recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, recs...)
				}
				return out
			}, func(docs *schemas.DocumentColumns, i int) int { return int(docs.Origin(i).Row) }},
		}
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				want, err := f.Transform(context.Background(), texts)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, rec := range tt.run(t) {
					if err := schemas.CheckSchema(rec.Schema(), schemas.KindFeatures); err != nil {
						t.Fatal(err)
					}
					docs, err := schemas.Documents(rec)
					if err != nil {
						t.Fatal(err)
					}
					pipetest.CheckExtraColumns(t, rec, func(i int) int { return tt.key(docs, i) })
					v, err := embed.FeatureVectors(rec)
					if err != nil {
						t.Fatal(err)
					}
					for i := range docs.Len() {
						j := tt.key(docs, i)
						if docs.ID(i) != ids[j] || docs.Text(i) != texts[j] {
							t.Fatalf("row %d is document %q, want %q", i, docs.ID(i), ids[j])
						}
						sameVectors(t, "document "+ids[j], rowOf(want, j), rowOf(v, i))
					}
					n += docs.Len()
					rec.Release()
				}
				if n != len(ids) {
					t.Fatalf("%d rows out, want %d", n, len(ids))
				}
			})
		}
	}
}

// TestFeaturesRecordExtraColumns: FeaturesRecord shares the columns of its
// input, extra ones included, and with none its schema is the shared
// Features schema; an extra column that breaks the rules is refused.
func TestFeaturesRecordExtraColumns(t *testing.T) {
	plain := docsRecord([]string{"a", "b"}, []string{"alpha", "beta"})
	defer plain.Release()
	v := embed.Vectors{Dense: embed.NewDense(2, 3)}
	rec, err := embed.FeaturesRecord(memory.DefaultAllocator, plain, v, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Schema() != schemas.FeaturesSchema() {
		t.Errorf("schema without extra columns: %v, want the shared Features schema", rec.Schema())
	}
	rec.Release()

	s := plain.Schema()
	md := s.Metadata()
	bad := []struct {
		name string
		f    arrow.Field
	}{
		{"takes a Features name", arrow.Field{Name: schemas.ColValues, Type: arrow.BinaryTypes.String}},
		{"takes a Routed name", arrow.Field{Name: schemas.ColRouterVersion, Type: arrow.BinaryTypes.String}},
		{"our field metadata", arrow.Field{Name: "lang", Type: arrow.BinaryTypes.String,
			Metadata: arrow.NewMetadata([]string{schemas.MetaKind}, []string{"document"})}},
		{"unsupported type", arrow.Field{Name: "when", Type: arrow.FixedWidthTypes.Date32}},
	}
	for _, tt := range bad {
		b := array.NewBuilder(memory.DefaultAllocator, tt.f.Type)
		b.AppendNulls(2)
		col := b.NewArray()
		b.Release()
		in := array.NewRecord(arrow.NewSchema(append(s.Fields(), tt.f), &md), append(plain.Columns(), col), 2)
		col.Release()
		if _, err := embed.FeaturesRecord(memory.DefaultAllocator, in, v, 1); schemas.ReasonOf(err) != schemas.ReasonWrongSchema {
			t.Errorf("%s: FeaturesRecord = %v, want a wrong-schema error", tt.name, err)
		}
		in.Release()
	}
}
