package cluster

import (
	"context"
	"math"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// TestStageCarriesExtraColumns: the columns a user stage added to its
// documents come out on the routed rows of docs.domain.<id>, row for row,
// whether the rows of a batch go to one domain or are split over several,
// and whether some of them are dead-lettered; and they survive the trip
// through an Arrow IPC payload.
func TestStageCarriesExtraColumns(t *testing.T) {
	dirs := [][]float32{{1, 0}, {0, 1}, {-1, 0}, {0, -1}}
	tests := []struct {
		name    string
		n       int
		vec     func(i int) featVec
		dead    []int // input rows expected dead
		domains int   // at least this many output topics
	}{
		{"one domain", 12, func(int) featVec { return featVec{val: []float32{1, 0.01}, dim: 2, version: 1} }, nil, 1},
		{"split over four domains", 40, func(i int) featVec { return featVec{val: dirs[i%4], dim: 2, version: 1} }, nil, 4},
		{"sparse rows split", 17, func(i int) featVec {
			return featVec{idx: []int32{int32(i % 2)}, val: []float32{1}, dim: 2, version: 1}
		}, nil, 2},
		{"dead rows among split rows", 30, func(i int) featVec {
			switch {
			case i%7 == 3:
				return featVec{val: dirs[i%4], dim: 2, version: 2} // wrong featurizer version
			case i%11 == 5:
				return featVec{val: []float32{float32(math.NaN()), 0}, dim: 2, version: 1}
			}
			return featVec{val: dirs[i%4], dim: 2, version: 1}
		}, []int{3, 5, 10, 16, 17, 24, 27}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
			if err != nil {
				t.Fatal(err)
			}
			vs := make([]featVec, tt.n)
			for i := range vs {
				vs[i] = tt.vec(i)
			}
			plain := featuresRecord(t, "d", 0, vs)
			defer plain.Release()
			in := pipetest.AddExtraColumns(t, plain, func(i int) int { return i })
			defer in.Release()
			if err := schemas.CheckSchema(in.Schema(), schemas.KindFeatures); err != nil {
				t.Fatal(err)
			}
			res, err := st.Process(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				for _, o := range res.Out {
					o.Record.Release()
				}
			}()
			var gotDead []int
			for _, d := range res.Dead {
				gotDead = append(gotDead, d.Row)
			}
			if len(gotDead) != len(tt.dead) {
				t.Fatalf("dead rows %v, want %v", gotDead, tt.dead)
			}
			for i := range gotDead {
				if gotDead[i] != tt.dead[i] {
					t.Fatalf("dead rows %v, want %v", gotDead, tt.dead)
				}
			}
			if len(res.Out) < tt.domains {
				t.Fatalf("%d output records, want at least %d", len(res.Out), tt.domains)
			}
			rows := 0
			for _, o := range res.Out {
				check := func(rec arrow.Record) {
					t.Helper()
					if err := schemas.CheckSchema(rec.Schema(), schemas.KindRouted); err != nil {
						t.Fatalf("%s: %v", o.Topic, err)
					}
					if got, want := rec.Schema().NumFields(), schemas.RoutedSchema().NumFields()+len(pipetest.ExtraFields()); got != want {
						t.Fatalf("%s: %d columns, want %d", o.Topic, got, want)
					}
					docs, err := schemas.Documents(rec)
					if err != nil {
						t.Fatal(err)
					}
					pipetest.CheckExtraColumns(t, rec, func(i int) int { return int(docs.Origin(i).Offset) })
				}
				check(o.Record)
				b, err := schemas.EncodeRecord(o.Record)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := schemas.DecodeRecords(b, memory.DefaultAllocator)
				if err != nil {
					t.Fatalf("%s: decode: %v", o.Topic, err)
				}
				for _, rec := range recs {
					check(rec)
					rec.Release()
				}
				rows += int(o.Record.NumRows())
			}
			if rows+len(res.Dead) != tt.n {
				t.Fatalf("%d rows out + %d dead, want %d", rows, len(res.Dead), tt.n)
			}
		})
	}
}

// TestStageWithoutExtraColumns: a batch without extra columns comes out in
// exactly the Routed schema, the shared one.
func TestStageWithoutExtraColumns(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	in := featuresRecord(t, "d", 0, skewed(50, 2))
	defer in.Release()
	res, err := st.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Out {
		if o.Record.Schema() != schemas.RoutedSchema() {
			t.Errorf("%s: schema %v, want the shared Routed schema", o.Topic, o.Record.Schema())
		}
		o.Record.Release()
	}
}

// TestStageRefusesBadExtraColumns: an extra column that takes one of our
// names is refused with a sentence that names it.
func TestStageRefusesBadExtraColumns(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	plain := featuresRecord(t, "d", 0, skewed(4, 3))
	defer plain.Release()
	s := plain.Schema()
	md := s.Metadata()
	fields := append(s.Fields(), arrow.Field{Name: schemas.ColDomain, Type: arrow.PrimitiveTypes.Int32})
	cols := append(plain.Columns(), plain.Column(s.FieldIndices(schemas.ColDim)[0]))
	bad := array.NewRecord(arrow.NewSchema(fields, &md), cols, plain.NumRows())
	defer bad.Release()
	_, err = st.Process(context.Background(), bad)
	if err == nil || schemas.ReasonOf(err) != schemas.ReasonWrongSchema {
		t.Fatalf("Process = %v, want a wrong-schema error", err)
	}
	t.Log(err)
}
