package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/schemas")

var sampleDocs = []struct {
	doc Document
	org Origin
}{
	{Document{ID: "brown/cf02", Text: "She was just another freighter from the States."}, Origin{Topic: "docs.raw", Partition: 0, Offset: 0}},
	{Document{ID: "", Text: "déjà vu — 日本語 😀\n\ttabs", Meta: json.RawMessage(`{"source":"sotu","label":["speech",1]}`)}, Origin{Topic: "docs.raw", Partition: 3, Offset: 1 << 40, Row: 2}},
	{Document{ID: "42", Text: "x"}, Origin{Topic: "", Partition: math.MaxInt32, Offset: math.MaxInt64, Row: math.MaxInt32}},
}

func buildDocuments(t testing.TB, mem memory.Allocator) arrow.Record {
	t.Helper()
	b := NewDocumentBuilder(mem)
	defer b.Release()
	for _, s := range sampleDocs {
		b.Append(s.doc, s.org)
	}
	if b.Len() != len(sampleDocs) {
		t.Fatalf("Len() = %d, want %d", b.Len(), len(sampleDocs))
	}
	rec := b.NewRecord()
	if b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("after NewRecord: Len() = %d, Bytes() = %d, want 0", b.Len(), b.Bytes())
	}
	return rec
}

// buildFeatures builds one sparse row and one dense row per sample document.
func buildFeatures(t testing.TB, mem memory.Allocator) arrow.Record {
	t.Helper()
	rb := array.NewRecordBuilder(mem, FeaturesSchema())
	defer rb.Release()
	for i, s := range sampleDocs {
		AppendDocument(rb, s.doc, s.org)
		rb.Field(7).(*array.Int32Builder).Append(4)
		ind := rb.Field(8).(*array.ListBuilder)
		vals := rb.Field(9).(*array.ListBuilder)
		if i%2 == 0 { // sparse
			ind.Append(true)
			ind.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{0, 3}, nil)
			vals.Append(true)
			vals.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{0.6, -0.8}, nil)
		} else { // dense
			ind.AppendNull()
			vals.Append(true)
			vals.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{0.5, 0.5, 0.5, float32(i)}, nil)
		}
		rb.Field(10).(*array.Int64Builder).Append(7)
	}
	return rb.NewRecord()
}

func buildRouted(t testing.TB, mem memory.Allocator) arrow.Record {
	t.Helper()
	rb := array.NewRecordBuilder(mem, RoutedSchema())
	defer rb.Release()
	for i, s := range sampleDocs {
		AppendDocument(rb, s.doc, s.org)
		rb.Field(7).(*array.Int32Builder).Append(int32(i))
		rb.Field(8).(*array.Float32Builder).Append(0.25 * float32(i))
		rb.Field(9).(*array.Int64Builder).Append(3)
	}
	return rb.NewRecord()
}

func buildRouterModel(t testing.TB, mem memory.Allocator) arrow.Record {
	t.Helper()
	s := WithMetadata(RouterModelSchema(), map[string]string{"domainflow.router_version": "3", "domainflow.k": "2"})
	rb := array.NewRecordBuilder(mem, s)
	defer rb.Release()
	for d := 0; d < 2; d++ {
		rb.Field(0).(*array.Int32Builder).Append(int32(d))
		rb.Field(1).(*array.Int64Builder).Append(int64(100 + d))
		terms := rb.Field(2).(*array.ListBuilder)
		terms.Append(true)
		terms.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"whale", "sea"}, nil)
		c := rb.Field(3).(*array.ListBuilder)
		c.Append(true)
		c.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{1, 0, float32(d)}, nil)
	}
	return rb.NewRecord()
}

func buildCheckpoint(t testing.TB, mem memory.Allocator) arrow.Record {
	t.Helper()
	s := WithMetadata(CheckpointSchema(), map[string]string{"domainflow.step": "10"})
	rb := array.NewRecordBuilder(mem, s)
	defer rb.Release()
	rb.Field(0).(*array.StringBuilder).Append("wte")
	sh := rb.Field(1).(*array.ListBuilder)
	sh.Append(true)
	sh.ValueBuilder().(*array.Int64Builder).AppendValues([]int64{2, 2}, nil)
	rb.Field(2).(*array.StringBuilder).Append("float32")
	data := make([]byte, 16)
	for i, v := range []float32{1, 2, 3, 4} {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	rb.Field(3).(*array.BinaryBuilder).Append(data)
	return rb.NewRecord()
}

var builders = map[Kind]func(testing.TB, memory.Allocator) arrow.Record{
	KindDocument:    buildDocuments,
	KindFeatures:    buildFeatures,
	KindRouted:      buildRouted,
	KindRouterModel: buildRouterModel,
	KindCheckpoint:  buildCheckpoint,
}

func TestKindOf(t *testing.T) {
	schemas := map[Kind]*arrow.Schema{
		KindDocument:    DocumentSchema(),
		KindFeatures:    FeaturesSchema(),
		KindRouted:      RoutedSchema(),
		KindRouterModel: RouterModelSchema(),
		KindCheckpoint:  CheckpointSchema(),
	}
	for kind, s := range schemas {
		k, v, err := KindOf(s)
		if k != kind || v != Version || err != nil {
			t.Errorf("KindOf(%s schema) = %q, %d, %v", kind, k, v, err)
		}
		if SchemaOf(kind) != s {
			t.Errorf("SchemaOf(%s) is not the shared schema", kind)
		}
		if err := CheckSchema(s, kind); err != nil {
			t.Errorf("CheckSchema(%s) = %v", kind, err)
		}
		w := WithMetadata(s, map[string]string{"x": "y", MetaKind: "routed", MetaSchemaVersion: "9"})
		k, v, err = KindOf(w)
		if x, _ := w.Metadata().GetValue("x"); k != kind || v != Version || err != nil || x != "y" {
			t.Errorf("WithMetadata(%s): KindOf = %q, %d, %v; x = %q", kind, k, v, err, x)
		}
		if !w.Equal(s) || s.Metadata().FindKey("x") >= 0 {
			t.Errorf("WithMetadata(%s) changed the fields or the shared schema", kind)
		}
	}
	// The document columns lead the Features and Routed schemas.
	for _, s := range []*arrow.Schema{FeaturesSchema(), RoutedSchema()} {
		for i, f := range DocumentSchema().Fields() {
			if !s.Field(i).Equal(f) {
				t.Errorf("field %d = %v, want %v", i, s.Field(i), f)
			}
		}
	}
}

func TestKindOfErrors(t *testing.T) {
	md := func(kv ...string) *arrow.Schema {
		m := arrow.NewMetadata(nil, nil)
		if len(kv) > 0 {
			var keys, vals []string
			for i := 0; i < len(kv); i += 2 {
				keys, vals = append(keys, kv[i]), append(vals, kv[i+1])
			}
			m = arrow.NewMetadata(keys, vals)
		}
		return arrow.NewSchema(DocumentSchema().Fields(), &m)
	}
	tests := []struct {
		name   string
		s      *arrow.Schema
		reason Reason
	}{
		{"nil", nil, ReasonWrongSchema},
		{"no metadata", md(), ReasonWrongSchema},
		{"no version", md(MetaKind, "document"), ReasonWrongSchema},
		{"unknown kind", md(MetaKind, "poem", MetaSchemaVersion, "1"), ReasonWrongSchema},
		{"version 2", md(MetaKind, "document", MetaSchemaVersion, "2"), ReasonUnknownSchemaVersion},
		{"version 0", md(MetaKind, "document", MetaSchemaVersion, "0"), ReasonUnknownSchemaVersion},
		{"version text", md(MetaKind, "document", MetaSchemaVersion, "v1"), ReasonUnknownSchemaVersion},
	}
	for _, tt := range tests {
		if _, _, err := KindOf(tt.s); ReasonOf(err) != tt.reason {
			t.Errorf("%s: KindOf error %v, want %s", tt.name, err, tt.reason)
		}
	}
	if err := CheckSchema(RoutedSchema(), KindFeatures); ReasonOf(err) != ReasonWrongSchema {
		t.Errorf("CheckSchema(routed, features) = %v, want wrong-schema", err)
	}
	noText := arrow.NewSchema(append([]arrow.Field{}, DocumentSchema().Field(0)), ptr(DocumentSchema().Metadata()))
	if err := CheckSchema(noText, KindDocument); ReasonOf(err) != ReasonWrongSchema || !strings.Contains(err.Error(), `"text"`) {
		t.Errorf("CheckSchema(no text column) = %v, want wrong-schema naming text", err)
	}
	wrongType := DocumentSchema().Fields()
	wrongType[1].Type = arrow.BinaryTypes.Binary
	if err := CheckSchema(arrow.NewSchema(wrongType, ptr(DocumentSchema().Metadata())), KindDocument); ReasonOf(err) != ReasonWrongSchema {
		t.Errorf("CheckSchema(binary text) = %v, want wrong-schema", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRecordRoundTrip encodes a record of every kind, decodes it and checks
// it is unchanged, with a checked allocator to catch leaks.
func TestRecordRoundTrip(t *testing.T) {
	for kind, build := range builders {
		t.Run(string(kind), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := build(t, mem)
			defer rec.Release()
			payload, err := EncodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			appended, err := AppendRecord([]byte("xyz"), rec)
			if err != nil || !bytes.Equal(appended[3:], payload) || string(appended[:3]) != "xyz" {
				t.Fatalf("AppendRecord differs from EncodeRecord (%v)", err)
			}
			recs, err := DecodeRecords(payload, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseAll(recs)
			if len(recs) != 1 || !array.RecordEqual(recs[0], rec) {
				t.Fatalf("DecodeRecords = %v, want %v", recs, rec)
			}
			if !recs[0].Schema().Equal(rec.Schema()) || !recs[0].Schema().Metadata().Equal(rec.Schema().Metadata()) {
				t.Errorf("schema or metadata changed: %v", recs[0].Schema())
			}
			if k, _, err := KindOf(recs[0].Schema()); k != kind || err != nil {
				t.Errorf("KindOf(decoded) = %q, %v", k, err)
			}
			golden(t, filepath.Join("arrow", string(kind)+".arrows"), payload)
		})
	}
}

func TestDocumentsView(t *testing.T) {
	for _, kind := range []Kind{KindDocument, KindFeatures, KindRouted} {
		rec := builders[kind](t, memory.DefaultAllocator)
		payload, err := EncodeRecord(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		recs, err := DecodeRecords(payload, nil)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		docs, err := Documents(recs[0])
		if err != nil {
			t.Fatalf("Documents(%s): %v", kind, err)
		}
		if docs.Len() != len(sampleDocs) {
			t.Fatalf("%s: Len() = %d", kind, docs.Len())
		}
		for i, s := range sampleDocs {
			if d := docs.Doc(i); !equalDoc(d, s.doc) || docs.ID(i) != s.doc.ID || docs.Text(i) != s.doc.Text {
				t.Errorf("%s: Doc(%d) = %+v, want %+v", kind, i, show(d), show(s.doc))
			}
			if s.doc.Meta == nil && docs.Doc(i).Meta != nil {
				t.Errorf("%s: Doc(%d).Meta = %q, want nil", kind, i, docs.Doc(i).Meta)
			}
			if o := docs.Origin(i); o != s.org {
				t.Errorf("%s: Origin(%d) = %+v, want %+v", kind, i, o, s.org)
			}
		}
		releaseAll(recs)
	}
	for _, kind := range []Kind{KindRouterModel, KindCheckpoint} {
		rec := builders[kind](t, memory.DefaultAllocator)
		if _, err := Documents(rec); ReasonOf(err) != ReasonWrongSchema {
			t.Errorf("Documents(%s record) error %v, want wrong-schema", kind, err)
		}
		rec.Release()
	}
}

func TestDocumentBuilderBytes(t *testing.T) {
	b := NewDocumentBuilder(nil)
	defer b.Release()
	want := 0
	for _, s := range sampleDocs {
		b.Append(s.doc, s.org)
		want += len(s.doc.ID) + len(s.doc.Text) + len(s.doc.Meta) + len(s.org.Topic) + 16
	}
	if b.Bytes() != want {
		t.Errorf("Bytes() = %d, want %d", b.Bytes(), want)
	}
	b.NewRecord().Release()
	b.Append(sampleDocs[0].doc, sampleDocs[0].org)
	rec := b.NewRecord()
	defer rec.Release()
	if rec.NumRows() != 1 {
		t.Errorf("second record has %d rows, want 1", rec.NumRows())
	}
}

// encodeWithSchema encodes the columns of rec under schema s.
func encodeWithSchema(t testing.TB, rec arrow.Record, s *arrow.Schema) []byte {
	t.Helper()
	r := array.NewRecord(s, rec.Columns(), rec.NumRows())
	defer r.Release()
	p, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecodeRecordsErrors(t *testing.T) {
	rec := buildDocuments(t, memory.DefaultAllocator)
	defer rec.Release()
	good, err := EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	v2 := encodeWithSchema(t, rec, arrow.NewSchema(DocumentSchema().Fields(),
		ptr(arrow.NewMetadata([]string{MetaKind, MetaSchemaVersion}, []string{"document", "2"}))))
	golden(t, "arrow/version2.arrows", v2)
	noMeta := encodeWithSchema(t, rec, arrow.NewSchema(DocumentSchema().Fields(), nil))
	// A stream with a schema and no batches.
	var empty bytes.Buffer
	w := ipc.NewWriter(&empty, ipc.WithSchema(DocumentSchema()))
	w.Close()
	// A Document-kind schema that lacks the text column.
	fields := DocumentSchema().Fields()
	short := array.NewRecord(arrow.NewSchema([]arrow.Field{fields[0]}, ptr(DocumentSchema().Metadata())), rec.Columns()[:1], rec.NumRows())
	noText, err := EncodeRecord(short)
	short.Release()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	tests := []struct {
		name    string
		payload []byte
		reason  Reason
	}{
		{"good", good, ""},
		{"without end marker", good[:len(good)-8], ""},
		{"empty", nil, ReasonMalformedArrow},
		{"random bytes", random, ReasonMalformedArrow},
		{"json", []byte(`{"id":"x","text":"t"}`), ReasonMalformedArrow},
		{"truncated", good[:len(good)/2], ReasonMalformedArrow},
		{"schema only", good[:200], ReasonMalformedArrow},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2, 3), ReasonMalformedArrow},
		{"no batches", empty.Bytes(), ReasonMalformedArrow},
		{"huge metadata length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}, ReasonMalformedArrow},
		{"negative metadata length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80, 0, 0, 0, 0}, ReasonMalformedArrow},
		{"version 2", v2, ReasonUnknownSchemaVersion},
		{"no kind", noMeta, ReasonWrongSchema},
		{"missing column", noText, ReasonWrongSchema},
	}
	for _, tt := range tests {
		recs, err := DecodeRecords(tt.payload, nil)
		if ReasonOf(err) != tt.reason {
			t.Errorf("%s: DecodeRecords error %v, want %q", tt.name, err, tt.reason)
		}
		if err == nil && len(recs) == 0 {
			t.Errorf("%s: no records and no error", tt.name)
		}
		releaseAll(recs)
	}
}

// TestDecodeRecordsMutations flips every byte of valid payloads of every kind
// in turn: DecodeRecords must never panic, and a record it accepts must be
// readable in full.
func TestDecodeRecordsMutations(t *testing.T) {
	for kind, build := range builders {
		rec := build(t, memory.DefaultAllocator)
		payload, err := EncodeRecord(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		for i := range payload {
			for _, x := range []byte{0xff, 0x80, 0x01} {
				p := bytes.Clone(payload)
				p[i] ^= x
				checkDecodeRecords(t, p)
			}
		}
		t.Logf("%s: %d bytes mutated", kind, len(payload))
	}
}

// checkDecodeRecords decodes payload and, when it is accepted, reads every
// value of every record; any panic fails the test.
func checkDecodeRecords(t testing.TB, payload []byte) {
	t.Helper()
	recs, err := DecodeRecords(payload, nil)
	if err != nil {
		switch ReasonOf(err) {
		case ReasonMalformedArrow, ReasonWrongSchema, ReasonUnknownSchemaVersion:
		default:
			t.Fatalf("DecodeRecords: unexpected error %v", err)
		}
		return
	}
	defer releaseAll(recs)
	for _, rec := range recs {
		if err := WriteRecordJSON(discard{}, rec); err != nil {
			t.Fatalf("WriteRecordJSON of an accepted record: %v", err)
		}
		readAllValues(t, rec)
		if k, _, _ := KindOf(rec.Schema()); k == KindDocument || k == KindFeatures || k == KindRouted {
			docs, err := Documents(rec)
			if err != nil {
				t.Fatalf("Documents of an accepted %s record: %v", k, err)
			}
			for i := 0; i < docs.Len(); i++ {
				_ = docs.Doc(i)
				_ = docs.Origin(i)
			}
		}
		if _, err := EncodeRecord(rec); err != nil {
			t.Fatalf("EncodeRecord of an accepted record: %v", err)
		}
	}
}

// readAllValues touches every value of rec through the typed accessors.
func readAllValues(t testing.TB, rec arrow.Record) {
	var visit func(a arrow.Array)
	visit = func(a arrow.Array) {
		for i := 0; i < a.Len(); i++ {
			_ = a.IsNull(i)
			switch a := a.(type) {
			case *array.String:
				_ = a.Value(i)
			case *array.Binary:
				_ = a.Value(i)
			case *array.Int32:
				_ = a.Value(i)
			case *array.Int64:
				_ = a.Value(i)
			case *array.Float32:
				_ = a.Value(i)
			case array.ListLike:
				start, end := a.ValueOffsets(i)
				if start < 0 || end < start || end > int64(a.ListValues().Len()) {
					t.Fatalf("list element %d spans [%d, %d) of %d values", i, start, end, a.ListValues().Len())
				}
			}
		}
		if l, ok := a.(array.ListLike); ok {
			visit(l.ListValues())
		}
	}
	for _, c := range rec.Columns() {
		visit(c)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// golden compares data with testdata/schemas/name, or writes it with -update.
// The Arrow payloads are both the wire-format regression check (a change to a
// schema without a Version bump fails here) and fuzz seeds.
func golden(t testing.TB, name string, data []byte) {
	t.Helper()
	p := filepath.Join("..", "testdata", "schemas", name)
	if *update {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("%s differs from the golden file (%d bytes, want %d): the wire format changed; bump Version or rerun with -update", name, len(data), len(want))
	}
}

// writeSeed writes data to testdata/schemas/name with -update. Unlike golden
// files, seeds are not compared: their bytes may change with a dependency.
func writeSeed(t testing.TB, name string, data []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(filepath.Join("..", "testdata", "schemas", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
