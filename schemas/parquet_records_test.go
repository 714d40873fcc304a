package schemas

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// routedWithExtras builds a Routed-kind record of n documents (row i: id
// "d<i>", meta set on even rows) with an extra column per case, placed
// before the document columns.
func routedWithExtras(t *testing.T, first, n int) arrow.Record {
	t.Helper()
	mem := memory.DefaultAllocator
	rb := array.NewRecordBuilder(mem, RoutedSchema())
	defer rb.Release()
	for i := first; i < first+n; i++ {
		d := Document{ID: "d" + itoa(i), Text: "text " + itoa(i)}
		if i%2 == 0 {
			d.Meta = []byte(`{"src":"s` + itoa(i) + `"}`)
		}
		AppendDocument(rb, d, Origin{Topic: "docs.raw", Offset: int64(i)})
		rb.Field(7).(*array.Int32Builder).Append(1)
		rb.Field(8).(*array.Float32Builder).Append(0.5)
		rb.Field(9).(*array.Int64Builder).Append(1)
	}
	base := rb.NewRecord()
	defer base.Release()
	lang := array.NewStringBuilder(mem)
	num := array.NewInt64Builder(mem)
	score := array.NewFloat64Builder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	maybe := array.NewInt32Builder(mem)
	flag := array.NewBooleanBuilder(mem)
	for i := first; i < first+n; i++ {
		lang.Append("lang-" + itoa(i))
		num.Append(int64(10 * i))
		score.Append(float64(i) + 0.25)
		switch i % 3 {
		case 0:
			tags.AppendNull()
		case 1:
			tags.Append(true) // empty
		case 2:
			tags.Append(true)
			tags.ValueBuilder().(*array.StringBuilder).Append("a" + itoa(i))
			tags.ValueBuilder().(*array.StringBuilder).AppendNull()
			tags.ValueBuilder().(*array.StringBuilder).Append("b")
		}
		if i%2 == 1 {
			maybe.AppendNull()
		} else {
			maybe.Append(int32(i))
		}
		flag.Append(i%2 == 0)
	}
	extra := []arrow.Array{lang.NewArray(), num.NewArray(), score.NewArray(), tags.NewArray(), maybe.NewArray(), flag.NewArray()}
	fields := []arrow.Field{
		{Name: "lang", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "maybe", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean},
	}
	for _, b := range []array.Builder{lang, num, score, tags, maybe, flag} {
		b.Release()
	}
	s := base.Schema()
	md := s.Metadata()
	all := append([]arrow.Field{fields[0]}, s.Fields()...)
	all = append(all, fields[1:]...)
	cols := append([]arrow.Array{extra[0]}, base.Columns()...)
	cols = append(cols, extra[1:]...)
	rec := array.NewRecord(arrow.NewSchema(all, &md), cols, int64(n))
	for _, a := range extra {
		a.Release()
	}
	if err := CheckSchema(rec.Schema(), KindRouted); err != nil {
		t.Fatal(err)
	}
	return rec
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestWriteParquetRecordsExtraColumns: a shard of records with extra columns
// holds id, text, meta and then the extra columns, with their names and
// types, row for row; parquet-go reads them back.
func TestWriteParquetRecordsExtraColumns(t *testing.T) {
	recs := []arrow.Record{routedWithExtras(t, 0, 5), routedWithExtras(t, 5, 1200)}
	defer releaseAll(recs)
	var buf bytes.Buffer
	if err := WriteParquetRecords(&buf, recs); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fl := range f.Schema().Fields() {
		names = append(names, fl.Name())
	}
	if got, want := strings.Join(names, ","), "id,text,meta,lang,n,score,tags,maybe,flag"; got != want {
		t.Fatalf("columns %s, want %s", got, want)
	}
	types := map[string]string{}
	for _, fl := range f.Schema().Fields() {
		types[fl.Name()] = fl.String()
	}
	for name, want := range map[string]string{"n": "INT64", "score": "DOUBLE", "maybe": "optional int32", "flag": "BOOLEAN", "tags": "LIST"} {
		if !strings.Contains(strings.ToLower(types[name]), strings.ToLower(want)) {
			t.Errorf("column %s is %s, want %s", name, types[name], want)
		}
	}
	r := parquet.NewGenericReader[map[string]any](bytes.NewReader(buf.Bytes()), f.Schema())
	defer r.Close()
	rows := make([]map[string]any, 1205)
	for i := range rows {
		rows[i] = map[string]any{}
	}
	n, err := r.Read(rows)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if n != 1205 {
		t.Fatalf("%d rows read, want 1205", n)
	}
	for i, row := range rows {
		want := map[string]any{"id": "d" + itoa(i), "text": "text " + itoa(i), "lang": "lang-" + itoa(i),
			"n": int64(10 * i), "score": float64(i) + 0.25, "flag": i%2 == 0}
		if i%2 == 0 {
			want["meta"] = `{"src":"s` + itoa(i) + `"}`
			want["maybe"] = int32(i)
		}
		for k, v := range want {
			if row[k] != v {
				t.Fatalf("row %d column %s = %#v, want %#v (row %v)", i, k, row[k], v, row)
			}
		}
		if i%2 == 1 && (row["meta"] != nil || row["maybe"] != nil) {
			t.Fatalf("row %d: meta %#v, maybe %#v, want nulls", i, row["meta"], row["maybe"])
		}
		tags := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(string(appendAnyJSON(nil, row["tags"])), "\n", ""), " ", ""))
		wantTags := map[int]string{0: "null", 1: "[]", 2: `["a` + itoa(i) + `",null,"b"]`}[i%3]
		if tags != wantTags {
			t.Fatalf("row %d tags %s, want %s", i, tags, wantTags)
		}
	}
}

// TestWriteParquetRecordsWithoutExtra: without extra columns the file is
// byte for byte the one WriteParquetDocuments writes.
func TestWriteParquetRecordsWithoutExtra(t *testing.T) {
	b := NewDocumentBuilder(nil)
	defer b.Release()
	var docs []Document
	for i := range 10 {
		d := Document{ID: "d" + itoa(i), Text: "text " + itoa(i)}
		if i%3 == 0 {
			d.Meta = []byte(`{"k":1}`)
		}
		docs = append(docs, d)
		b.Append(d, Origin{})
	}
	rec := b.NewRecord()
	defer rec.Release()
	var got, want bytes.Buffer
	if err := WriteParquetRecords(&got, []arrow.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := WriteParquetDocuments(&want, docs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("WriteParquetRecords without extra columns differs from WriteParquetDocuments")
	}
	extra := routedWithExtras(t, 0, 2)
	defer extra.Release()
	if err := WriteParquetRecords(io.Discard, []arrow.Record{rec, extra}); err == nil {
		t.Fatal("records with different extra columns written into one file")
	}
}
