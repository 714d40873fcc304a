package schemas

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// TestTypedExtras: with Limits.TypedExtras a Parquet input gives its
// columns of extra-column types as typed values (nullable fields, in file
// order) and keeps the others (a timestamp, a list, a column of a reserved
// name) in Meta; without it, everything is in Meta as before. The values
// build a Document record with those columns.
func TestTypedExtras(t *testing.T) {
	type row struct {
		ID    string    `parquet:"id"`
		Text  string    `parquet:"text"`
		N     int64     `parquet:"n"`
		OK    bool      `parquet:"ok"`
		Score float64   `parquet:"score"`
		F     float32   `parquet:"f"`
		Small int8      `parquet:"small"`
		U     uint16    `parquet:"u"`
		Lang  string    `parquet:"lang"`
		Blob  []byte    `parquet:"blob"`
		Maybe *int64    `parquet:"maybe,optional"`
		When  time.Time `parquet:"when,timestamp"`
		Tags  []string  `parquet:"tags,list"`
		Dom   int32     `parquet:"domain"`
	}
	seven := int64(7)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []row{
		{"a", "text a", -5, true, 0.5, 1.5, -3, 65000, "en", []byte{0, 1}, &seven, at, []string{"x"}, 2},
		{"b", "text b", 1 << 40, false, -2, 0, 3, 1, "de", nil, nil, at, nil, 3},
	}); err != nil {
		t.Fatal(err)
	}
	path := write(t, filepath.Join(t.TempDir(), "typed.parquet"), buf.Bytes())

	in, err := OpenInput(path, Limits{TypedExtras: true})
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := in.(TypedInput)
	if !ok {
		t.Fatalf("%T is not a TypedInput", in)
	}
	wantFields := []arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "small", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
		{Name: "lang", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "blob", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "maybe", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	fields := ti.ExtraFields()
	if len(fields) != len(wantFields) {
		t.Fatalf("extra fields %v, want %v", fields, wantFields)
	}
	for i := range wantFields {
		if !fields[i].Equal(wantFields[i]) {
			t.Errorf("extra field %d = %v, want %v", i, fields[i], wantFields[i])
		}
	}
	b, err := NewExtraDocumentBuilder(memory.DefaultAllocator, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	for {
		rec, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil || rec.Err != nil {
			t.Fatalf("Next: %v, %v", err, rec.Err)
		}
		if m := string(rec.Doc.Meta); m != `{"when":1767323045000,"tags":["x"],"domain":2}` && m != `{"when":1767323045000,"tags":[],"domain":3}` {
			t.Errorf("%s: meta %s, want only the timestamp, the list and the reserved column", rec.Doc.ID, m)
		}
		if err := b.AppendExtra(rec.Doc, Origin{}, rec.Extra); err != nil {
			t.Fatal(err)
		}
	}
	in.Close()
	rec := b.NewRecord()
	defer rec.Release()
	if err := CheckSchema(rec.Schema(), KindDocument); err != nil {
		t.Fatal(err)
	}
	col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
	if n := col("n").(*array.Int64); n.Value(0) != -5 || n.Value(1) != 1<<40 {
		t.Errorf("n = %v", n)
	}
	if ok := col("ok").(*array.Boolean); !ok.Value(0) || ok.Value(1) {
		t.Errorf("ok = %v", ok)
	}
	if s := col("small").(*array.Int8); s.Value(0) != -3 {
		t.Errorf("small = %v", s)
	}
	if u := col("u").(*array.Uint16); u.Value(0) != 65000 {
		t.Errorf("u = %v", u)
	}
	if l := col("lang").(*array.String); l.Value(1) != "de" {
		t.Errorf("lang = %v", l)
	}
	if bl := col("blob").(*array.Binary); !bytes.Equal(bl.Value(0), []byte{0, 1}) {
		t.Errorf("blob = %v", bl)
	}
	if m := col("maybe").(*array.Int64); m.Value(0) != 7 || m.IsValid(1) {
		t.Errorf("maybe = %v, want 7 and null", m)
	}
	if err := b.AppendExtra(Document{ID: "x", Text: "x"}, Origin{}, []any{"not an int"}); err == nil {
		t.Error("AppendExtra took a wrong count of values")
	}

	// Without TypedExtras: all in Meta, no Extra.
	plain, err := OpenInput(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	r, _ := plain.Next()
	if r.Extra != nil || !bytes.Contains(r.Doc.Meta, []byte(`"n":-5`)) || !bytes.Contains(r.Doc.Meta, []byte(`"ok":true`)) {
		t.Errorf("without TypedExtras: extra %v, meta %s", r.Extra, r.Doc.Meta)
	}
}
