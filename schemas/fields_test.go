package schemas

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// firstErr returns the error of the first bad record of in, or nil.
func firstErr(t *testing.T, in InputReader) error {
	t.Helper()
	defer in.Close()
	for {
		rec, err := in.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Err != nil {
			return rec.Err
		}
	}
}

// TestInputFields: Limits.TextField and IDField choose the fields of Parquet
// and JSON-lines inputs; unchosen fields named text or id go to Meta as
// input_text and input_id; binary text columns read as text; a missing named
// field is a wrong-schema (Parquet) or malformed-JSON record whose error
// lists the fields present.
func TestInputFields(t *testing.T) {
	dir := t.TempDir()
	type other struct {
		DocID string `parquet:"doc_id"`
		Body  string `parquet:"body"`
		Text  string `parquet:"text"`
		N     int64  `parquet:"n"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []other{{"d1", "the body", "old text", 3}}); err != nil {
		t.Fatal(err)
	}
	otherPQ := write(t, filepath.Join(dir, "other.parquet"), buf.Bytes())
	type bin struct {
		ID   string `parquet:"id"`
		Text []byte `parquet:"text"`
	}
	buf.Reset()
	if err := parquet.Write(&buf, []bin{{"b1", []byte("binary text")}, {"b2", []byte("caf\xe9")}}); err != nil {
		t.Fatal(err)
	}
	binPQ := write(t, filepath.Join(dir, "binary.parquet"), buf.Bytes())
	otherJSON := write(t, filepath.Join(dir, "other.jsonl"), []byte(
		`{"doc_id":"j1","text":"old","body":"the body","n":3}`+"\n"+
			`{"doc_id":"j2","n":4}`+"\n"+
			`{"body":"no id"}`+"\n"))

	named := Limits{TextField: "body", IDField: "doc_id"}
	for _, tt := range []struct {
		name string
		path string
		lim  Limits
		want []got
	}{
		{"parquet, named fields", otherPQ, named, []got{
			{"d1", "the body", `{"input_text":"old text","n":3}`, otherPQ + "#row=0", ""}}},
		{"parquet, default fields", otherPQ, Limits{}, []got{
			{"", "old text", `{"doc_id":"d1","body":"the body","n":3}`, otherPQ + "#row=0", ""}}},
		{"parquet, binary text", binPQ, Limits{}, []got{
			{"b1", "binary text", "", binPQ + "#row=0", ""},
			{"b2", "caf\xe9", "", binPQ + "#row=1", ReasonInvalidUTF8}}},
		{"parquet, no such text column", otherPQ, Limits{TextField: "content"}, []got{
			{"", "", "", otherPQ + "#row=0", ReasonWrongSchema}}},
		{"parquet, no such id column", otherPQ, Limits{TextField: "body", IDField: "key"}, []got{
			{"", "", "", otherPQ + "#row=0", ReasonWrongSchema}}},
		{"json, named fields", otherJSON, named, []got{
			{"j1", "the body", `{"input_text":"old","n":3}`, otherJSON + ":1", ""},
			{"", "", "", otherJSON + ":2", ReasonMalformedJSON},
			{"", "", "", otherJSON + ":3", ReasonMalformedJSON}}},
	} {
		in, err := OpenInput(tt.path, tt.lim)
		if err != nil {
			t.Fatal(err)
		}
		check(t, tt.name, readInput(t, in), tt.want)
	}

	// The errors name the field and list what the input has.
	for _, tt := range []struct {
		path string
		lim  Limits
		want []string
	}{
		{otherPQ, Limits{TextField: "content"}, []string{"no content column for the text", "columns: doc_id, body, text, n", "--text-field"}},
		{otherPQ, Limits{TextField: "body", IDField: "key"}, []string{"no key column for the id", "--id-field"}},
		{otherJSON, Limits{TextField: "content"}, []string{`no "content" member for the text`, "members: doc_id, text, body, n"}},
	} {
		in, _ := OpenInput(tt.path, tt.lim)
		err := firstErr(t, in)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s with %+v: error %v, want it to say %q", filepath.Base(tt.path), tt.lim, err, w)
			}
		}
	}
}

// TestParquetCodecs: documents compressed with every codec parquet-go
// writes read back, LZ4_RAW (pyarrow's "lz4") included. Document c, 30 kB
// of random words, compresses less than 3:1 as real text does: with
// parquet-go v0.32.0 its LZ4_RAW pages read back as zero bytes.
func TestParquetCodecs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(16, 1))
	var words strings.Builder
	for words.Len() < 30<<10 {
		for range 2 + rnd.IntN(8) {
			words.WriteByte(byte('a' + rnd.IntN(26)))
		}
		words.WriteByte(' ')
	}
	docs := []DocumentRow{{ID: "a", Text: strings.Repeat("alpha beta ", 200)}, {ID: "b", Text: "gamma"}, {ID: "c", Text: words.String()}}
	for _, codec := range []compress.Codec{&parquet.Uncompressed, &parquet.Snappy, &parquet.Gzip, &parquet.Zstd, &parquet.Lz4Raw, &parquet.Brotli} {
		var buf bytes.Buffer
		for _, v := range []int{1, 2} { // data page v1 and v2
			buf.Reset()
			if err := parquet.Write(&buf, docs, parquet.Compression(codec), parquet.DataPageVersion(v)); err != nil {
				t.Fatal(err)
			}
			p := write(t, filepath.Join(t.TempDir(), "docs.parquet"), buf.Bytes())
			in, err := OpenInput(p, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			check(t, codec.String(), readInput(t, in), []got{
				{"a", docs[0].Text, "", p + "#row=0", ""},
				{"b", "gamma", "", p + "#row=1", ""},
				{"c", docs[2].Text, "", p + "#row=2", ""},
			})
		}
	}
}

// TestParquetCorruptLZ4: an LZ4_RAW page that does not decompress, or not
// to the size its header claims, makes the file one unreadable-file record,
// promptly (parquet-go's own decoder would grow its buffer forever on the
// first, and read the second as a shorter page); so does the legacy LZ4
// codec.
func TestParquetCorruptLZ4(t *testing.T) {
	var buf bytes.Buffer
	docs := []DocumentRow{{ID: "a", Text: strings.Repeat("alpha beta ", 200)}}
	if err := parquet.Write(&buf, docs, parquet.Compression(&parquet.Lz4Raw)); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	pf, err := parquet.OpenFile(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var text format.ColumnMetaData
	for _, cc := range pf.Metadata().RowGroups[0].Columns {
		if cc.MetaData.PathInSchema[0] == "text" {
			text = cc.MetaData
		}
	}
	// The text column's first page: its header, then its body, which we
	// overwrite with bytes that are no LZ4 block.
	start := text.DataPageOffset
	if text.DictionaryPageOffset != 0 {
		start = text.DictionaryPageOffset
	}
	var h format.PageHeader
	dec := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(bytes.NewReader(good[start:])))
	if err := dec.Decode(&h); err != nil {
		t.Fatal(err)
	}
	hdrLen := headerLen(t, good[start:])
	bad := bytes.Clone(good)
	body := bad[start+int64(hdrLen) : start+int64(hdrLen)+int64(h.CompressedPageSize)]
	for i := range body {
		body[i] = 0xff
	}
	// The same page with a header that claims one byte more than the page
	// decompresses to (the header keeps its length).
	long := bytes.Clone(good)
	h.UncompressedPageSize++
	hdr, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
	if err != nil || len(hdr) != hdrLen {
		t.Fatalf("page header of %d bytes re-encoded to %d: %v", hdrLen, len(hdr), err)
	}
	copy(long[start:], hdr)
	legacy := legacyLZ4(t, good)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"corrupt page", bad, "does not decompress"},
		{"page shorter than its header says", long, "does not decompress to its"},
		{"legacy codec", legacy, "legacy LZ4"},
	} {
		p := write(t, filepath.Join(t.TempDir(), "bad.parquet"), tt.data)
		done := make(chan error, 1)
		go func() {
			in, err := OpenInput(p, Limits{})
			if err != nil {
				done <- err
				return
			}
			done <- firstErr(t, in)
		}()
		select {
		case err := <-done:
			if ReasonOf(err) != ReasonUnreadableFile || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v, want unreadable-file saying %q", tt.name, err, tt.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: reading did not end", tt.name)
		}
	}
}

// headerLen returns the length of the thrift page header at the start of b.
func headerLen(t *testing.T, b []byte) int {
	t.Helper()
	n, err := walkThriftStruct(b)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// legacyLZ4 returns the Parquet file b with its footer saying LZ4 (the
// legacy codec) where it says LZ4_RAW.
func legacyLZ4(t *testing.T, b []byte) []byte {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	md := *pf.Metadata()
	for g := range md.RowGroups {
		for c := range md.RowGroups[g].Columns {
			md.RowGroups[g].Columns[c].MetaData.Codec = format.Lz4
		}
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	oldLen := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	out := bytes.Clone(b[:len(b)-8-oldLen])
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...)
}
