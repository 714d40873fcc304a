package pipetest

import (
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// The extra columns AddExtraColumns adds, as a user stage would: a string
// put before every other column, then an int64, a float64, a list of strings
// and a nullable int64 after them. Their values are functions of a row's key
// (see ExtraValues).
var extraFields = []arrow.Field{
	{Name: "lang", Type: arrow.BinaryTypes.String, Metadata: arrow.NewMetadata([]string{"user.note"}, []string{"iso 639-1"})},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	{Name: "maybe", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}

// ExtraFields returns the fields of the columns AddExtraColumns adds, in the
// order a stage puts them after its own columns.
func ExtraFields() []arrow.Field { return append([]arrow.Field(nil), extraFields...) }

// ExtraRow is the value of the extra columns of the row of key k.
type ExtraRow struct {
	Lang  string
	N     int64
	Score float64
	Tags  []string
	Maybe *int64 // nil: null
}

// ExtraValues returns the extra column values of the row of key k: lang
// "lang-k", n 10k, score k+0.25, k%3 tags "tk.j", and maybe k, null for odd k.
func ExtraValues(k int) ExtraRow {
	r := ExtraRow{Lang: fmt.Sprintf("lang-%d", k), N: int64(10 * k), Score: float64(k) + 0.25}
	for j := range k % 3 {
		r.Tags = append(r.Tags, fmt.Sprintf("t%d.%d", k, j))
	}
	if k%2 == 0 {
		v := int64(k)
		r.Maybe = &v
	}
	return r
}

// AddExtraColumns returns rec with the extra columns of ExtraFields added,
// row i holding ExtraValues(key(i)): lang as the first column, the others
// after rec's columns. The schema metadata of rec is kept. The caller
// releases the result; rec is not released.
func AddExtraColumns(tb testing.TB, rec arrow.Record, key func(row int) int) arrow.Record {
	tb.Helper()
	mem := memory.DefaultAllocator
	n := int(rec.NumRows())
	lang := array.NewStringBuilder(mem)
	num := array.NewInt64Builder(mem)
	score := array.NewFloat64Builder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	maybe := array.NewInt64Builder(mem)
	for i := range n {
		v := ExtraValues(key(i))
		lang.Append(v.Lang)
		num.Append(v.N)
		score.Append(v.Score)
		tags.Append(true)
		for _, t := range v.Tags {
			tags.ValueBuilder().(*array.StringBuilder).Append(t)
		}
		if v.Maybe == nil {
			maybe.AppendNull()
		} else {
			maybe.Append(*v.Maybe)
		}
	}
	built := []arrow.Array{lang.NewArray(), num.NewArray(), score.NewArray(), tags.NewArray(), maybe.NewArray()}
	for _, b := range []array.Builder{lang, num, score, tags, maybe} {
		b.Release()
	}
	defer func() {
		for _, a := range built {
			a.Release()
		}
	}()
	s := rec.Schema()
	fields := append([]arrow.Field{extraFields[0]}, s.Fields()...)
	fields = append(fields, extraFields[1:]...)
	cols := append([]arrow.Array{built[0]}, rec.Columns()...)
	cols = append(cols, built[1:]...)
	md := s.Metadata()
	return array.NewRecord(arrow.NewSchema(fields, &md), cols, int64(n))
}

// CheckExtraColumns checks that rec ends with the extra columns of
// ExtraFields, in that order, with their types, nullability and field
// metadata, and that row i holds ExtraValues(key(i)).
func CheckExtraColumns(tb testing.TB, rec arrow.Record, key func(row int) int) {
	tb.Helper()
	s := rec.Schema()
	first := s.NumFields() - len(extraFields)
	if first < 0 {
		tb.Fatalf("record of %d columns cannot end with the %d extra columns", s.NumFields(), len(extraFields))
	}
	for j, want := range extraFields {
		if got := s.Field(first + j); !got.Equal(want) {
			tb.Fatalf("column %d is %v, want %v", first+j, got, want)
		}
		if n := len(s.FieldIndices(want.Name)); n != 1 {
			tb.Fatalf("column %q appears %d times", want.Name, n)
		}
	}
	lang, ok1 := rec.Column(first).(*array.String)
	num, ok2 := rec.Column(first + 1).(*array.Int64)
	score, ok3 := rec.Column(first + 2).(*array.Float64)
	tags, ok4 := rec.Column(first + 3).(*array.List)
	maybe, ok5 := rec.Column(first + 4).(*array.Int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		tb.Fatal("extra columns have unexpected array types")
	}
	tagv := tags.ListValues().(*array.String)
	for i := range int(rec.NumRows()) {
		k := key(i)
		want := ExtraValues(k)
		got := ExtraRow{Lang: lang.Value(i), N: num.Value(i), Score: score.Value(i)}
		lo, hi := tags.ValueOffsets(i)
		for j := lo; j < hi; j++ {
			got.Tags = append(got.Tags, tagv.Value(int(j)))
		}
		if maybe.IsValid(i) {
			v := maybe.Value(i)
			got.Maybe = &v
		}
		if got.String() != want.String() || tags.IsNull(i) || lang.IsNull(i) {
			tb.Errorf("row %d (key %d): extra columns %s, want %s", i, k, got, want)
		}
	}
}

func (r ExtraRow) String() string {
	maybe := "null"
	if r.Maybe != nil {
		maybe = fmt.Sprint(*r.Maybe)
	}
	return fmt.Sprintf("{lang %q n %d score %g tags %q maybe %s}", r.Lang, r.N, r.Score, r.Tags, maybe)
}
