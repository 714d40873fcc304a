package schemas

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

func recordJSON(t *testing.T, rec arrow.Record) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteRecordJSON(&buf, rec); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %s is not valid JSON", l)
		}
	}
	if len(lines) != int(rec.NumRows()) {
		t.Errorf("%d lines for %d rows", len(lines), rec.NumRows())
	}
	return lines
}

func TestWriteRecordJSON(t *testing.T) {
	mem := memory.DefaultAllocator
	tests := []struct {
		kind Kind
		row  int
		want string
	}{
		{KindDocument, 0, `{"id":"brown/cf02","text":"She was just another freighter from the States.","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":0,"origin_row":0}`},
		{KindDocument, 1, `{"id":"","text":"déjà vu — 日本語 😀\n\ttabs","meta":"{\"source\":\"sotu\",\"label\":[\"speech\",1]}","origin_topic":"docs.raw","origin_partition":3,"origin_offset":1099511627776,"origin_row":2}`},
		{KindFeatures, 0, `"dim":4,"indices":[0,3],"values":[0.6,-0.8],"featurizer_version":7}`},
		{KindFeatures, 1, `"dim":4,"indices":null,"values":[0.5,0.5,0.5,1],"featurizer_version":7}`},
		{KindRouted, 2, `"domain":2,"distance":0.5,"router_version":3}`},
		{KindRouterModel, 1, `{"domain":1,"size":101,"top_terms":["whale","sea"],"centroid":[1,0,1]}`},
		{KindCheckpoint, 0, `{"name":"wte","shape":[2,2],"dtype":"float32","data":"AACAPwAAAEAAAEBAAACAQA=="}`},
	}
	for _, tt := range tests {
		rec := builders[tt.kind](t, mem)
		lines := recordJSON(t, rec)
		if got := lines[tt.row]; !strings.HasSuffix(got, tt.want) {
			t.Errorf("%s row %d:\n got %s\nwant …%s", tt.kind, tt.row, got, tt.want)
		}
		rec.Release()
	}

	// NaN and infinities become null; invalid UTF-8 is replaced.
	rb := array.NewRecordBuilder(mem, RoutedSchema())
	defer rb.Release()
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(1)), 1e-7} {
		AppendDocument(rb, Document{ID: "bad\xff", Text: "t"}, Origin{})
		rb.Field(7).(*array.Int32Builder).Append(0)
		rb.Field(8).(*array.Float32Builder).Append(f)
		rb.Field(9).(*array.Int64Builder).Append(0)
	}
	rec := rb.NewRecord()
	defer rec.Release()
	lines := recordJSON(t, rec)
	for i, want := range []string{`"distance":null`, `"distance":null`, `"distance":1e-07`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"id":"bad`+"\uFFFD"+`"`) {
			t.Errorf("row %d = %s, want %s and a replaced id", i, lines[i], want)
		}
	}
}

func TestWriteArrowFileJSON(t *testing.T) {
	mem := memory.DefaultAllocator
	rec := buildFeatures(t, mem)
	defer rec.Release()
	var want bytes.Buffer
	if err := WriteRecordJSON(&want, rec); err != nil {
		t.Fatal(err)
	}
	want.Write(want.Bytes()) // two batches

	stream, err := AppendRecords(nil, rec, rec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ff, err := os.Create(filepath.Join(dir, "written.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	fw, err := ipc.NewFileWriter(ff, ipc.WithSchema(rec.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	fileData, err := os.ReadFile(ff.Name())
	if err != nil {
		t.Fatal(err)
	}
	file := bytes.NewBuffer(fileData)
	// A stream of any schema (no kind metadata) is shown too.
	plain := array.NewRecord(arrow.NewSchema(rec.Schema().Fields(), nil), rec.Columns(), rec.NumRows())
	defer plain.Release()
	plainStream, err := AppendRecords(nil, plain, plain)
	if err != nil {
		t.Fatal(err)
	}

	for name, data := range map[string][]byte{"stream.arrows": stream, "file.arrow": file.Bytes(), "plain.arrows": plainStream} {
		var got bytes.Buffer
		if err := WriteArrowFileJSON(&got, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.String() != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", name, got.String(), want.String())
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got.Reset()
		if err := WriteFileJSON(&got, p); err != nil || got.String() != want.String() {
			t.Errorf("WriteFileJSON(%s) = %v, output differs: %v", name, err, got.String() != want.String())
		}
	}
	for name, data := range map[string][]byte{
		"truncated file": file.Bytes()[:file.Len()-3],
		"bad footer":     append(append([]byte{}, file.Bytes()[:file.Len()-10]...), 0xff, 0xff, 0xff, 0x7f, 'A', 'R', 'R', 'O', 'W', '1'),
		"garbage":        []byte("hello world, not arrow"),
	} {
		if err := WriteArrowFileJSON(&bytes.Buffer{}, bytes.NewReader(data), int64(len(data))); ReasonOf(err) != ReasonMalformedArrow {
			t.Errorf("%s: error %v, want malformed-arrow", name, err)
		}
	}
	p := filepath.Join(dir, "x.jsonl")
	os.WriteFile(p, []byte(`{"text":"t"}`), 0o644)
	if err := WriteFileJSON(&bytes.Buffer{}, p); err == nil {
		t.Errorf("WriteFileJSON(jsonl) succeeded, want an error")
	}
}

// TestSchemaCycle checks the flatbuffers verifier: a schema whose field is
// its own child (which would send the arrow reader into endless recursion) is
// refused, and a nested struct column is still read.
func TestSchemaCycle(t *testing.T) {
	mem := memory.DefaultAllocator
	docs := buildDocuments(t, mem)
	defer docs.Release()
	typ := arrow.StructOf(arrow.Field{Name: "x", Type: arrow.StructOf(arrow.Field{Name: "y", Type: arrow.PrimitiveTypes.Int32})})
	b := array.NewStructBuilder(mem, typ)
	defer b.Release()
	for i := 0; i < int(docs.NumRows()); i++ {
		b.Append(true)
		inner := b.FieldBuilder(0).(*array.StructBuilder)
		inner.Append(true)
		inner.FieldBuilder(0).(*array.Int32Builder).Append(int32(i))
	}
	col := b.NewArray()
	defer col.Release()
	s, err := DocumentSchema().AddField(NumDocumentColumns, arrow.Field{Name: "s", Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	rec := array.NewRecord(s, append(append([]arrow.Array{}, docs.Columns()...), col), docs.NumRows())
	defer rec.Release()
	payload, err := EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeRecords(payload, nil)
	if err != nil {
		t.Fatalf("nested struct column: %v", err)
	}
	if lines := recordJSON(t, recs[0]); !strings.HasSuffix(lines[2], `"s":{"x":{"y":2}}}`) {
		t.Errorf("nested struct row = %s", lines[2])
	}
	releaseAll(recs)

	// Point the first child of field "s" back at "s".
	meta := payload[8 : 8+int(le32(payload[4:]))]
	v := fbVerifier{buf: meta}
	field := func(pos uint32, slot int) uint32 {
		soff := le32(meta[pos:])
		vt := uint32(int32(pos) - int32(soff))
		p, err := v.slot(pos, vt, uint16(meta[vt])|uint16(meta[vt+1])<<8, slot)
		if err != nil || p == 0 {
			t.Fatalf("slot %d of table at %d: %v", slot, pos, err)
		}
		return p + le32(meta[p:])
	}
	schema := field(le32(meta), 2)
	fields := field(schema, 1)
	patched := false
	for i := uint32(0); i < le32(meta[fields:]); i++ {
		ep := fields + 4 + 4*i
		fpos := ep + le32(meta[ep:])
		name := field(fpos, 0)
		if string(meta[name+4:name+4+le32(meta[name:])]) != "s" {
			continue
		}
		children := field(fpos, 5)
		ep0 := children + 4
		putLE32(meta[ep0:], fpos-ep0)
		patched = true
	}
	if !patched {
		t.Fatal("field s not found")
	}
	if _, err := DecodeRecords(payload, nil); ReasonOf(err) != ReasonMalformedArrow {
		t.Errorf("cyclic schema: error %v, want malformed-arrow", err)
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
