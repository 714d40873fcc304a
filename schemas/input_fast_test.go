package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// decodeLine must return what DecodeJSON returns, for every payload.
func TestDecodeLineMatchesDecodeJSON(t *testing.T) {
	cases := []string{
		`{"id": "a", "text": "hello"}`,
		`{"id": "a", "text": "he said \"hi\"\n\tthen left\\ / \/ \b\f\r", "source": "x", "label": "y"}`,
		`{"text": "x\u00e9y", "id": 3}`,
		`{"text": "lone \ud800 surrogate"}`,
		`{"id": "lone \ud800 surrogate", "text": "x"}`,
		`{"id": "\udfff", "text": "x"}`,
		`{"id": "` + strings.Repeat("i", DefaultMaxIDBytes+1) + `", "text": "x"}`,
		`{"id": "` + strings.Repeat("i", 11) + `", "text": "x"}`,
		`{"id": null, "text": "  a  ", "meta": {"k": [1, 2, {"z": "w"}]}}`,
		`{"id": "a", "text": ""}`,
		`{"id": "a", "text": "   "}`,
		`{"id": "a", "text": "x", "text": "y"}`,
		`{"id": "a"}`,
		`{"id": "a", "text": 3}`,
		`{"id": "a", "text": "unterminated`,
		`{"id": "a", "text": "ctl ` + "\x01" + ` char"}`,
		`{"id": "a", "text": "bad \q escape"}`,
		`{"id": "a", "text": "trailing \`,
		`{"id": "a", "text": "x"} extra`,
		`{"id": "a", "text": "x"`,
		`[1, 2]`,
		``,
		`{}`,
		`{"id": "a", "te\u0078t": "escaped key"}`,
		"{\"id\": \"a\", \"text\": \"bad utf8 \xff\"}",
		`{"id": "a", "text": "ünïcödé \"quoted\" 日本語 text"}`,
		`{ "id" : "a" , "text" : "spaces" , "x" : [ 1 , 2 ] }`,
		`{"id": "a", "text": "` + string(bytes.Repeat([]byte("long text with escapes \\n and \\\" quotes "), 200)) + `"}`,
	}
	// Every split of a string with specials at each 8-byte alignment.
	for k := 0; k < 20; k++ {
		cases = append(cases, `{"id": "a", "text": "`+string(bytes.Repeat([]byte("x"), k))+`\"y\\z"}`)
	}
	for _, lim := range []Limits{{}, {MaxTextBytes: 10}, {MaxIDBytes: 10}} {
		for _, c := range cases {
			wd, werr := DecodeJSON([]byte(c), lim)
			gd, gerr := decodeLine([]byte(c), lim)
			if !reflect.DeepEqual(wd, gd) || (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Errorf("%q (lim %v):\n got %#v, %v\nwant %#v, %v", c, lim, gd, gerr, wd, werr)
			}
		}
	}
}

func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"id": "a", "text": "he said \"hi\"\n", "source": "x"}`))
	f.Add([]byte(`{"text": "x\u00e9y", "id": 3}`))
	f.Add([]byte(`{"id": "\ud800", "text": "x"}`))
	f.Add([]byte(`{"id": "\ud83d\ude00\udc00", "text": "\ud800"}`))
	f.Add([]byte("\xef\xbb\xbf{\"id\": \"bom\", \"text\": \"x\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wd, werr := DecodeJSON(b, Limits{})
		gd, gerr := decodeLine(b, Limits{})
		if !reflect.DeepEqual(wd, gd) || (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("%q: got %#v, %v; want %#v, %v", b, gd, gerr, wd, werr)
		}
	})
}

// A gzip input (lines from the readahead's blocks) reads the same records as
// the same lines uncompressed (lines from a bufio.Reader), for lines that
// span blocks, lines longer than a block and lines over the size cap.
func TestGzipLinesMatchPlain(t *testing.T) {
	var plain bytes.Buffer
	r := rand.New(rand.NewSource(1))
	sizes := []int{0, 1, 10, raBlockSize - 40, raBlockSize, raBlockSize + 3, 3 * raBlockSize, 100, 5 << 20}
	for i := 0; i < 300; i++ {
		sizes = append(sizes, r.Intn(40000))
	}
	for i, n := range sizes {
		if i%7 == 3 {
			plain.WriteString("not json\n")
			continue
		}
		fmt.Fprintf(&plain, `{"id": "d%d", "text": "%s\"q\"\n"}`+"\n", i, strings.Repeat("w", n))
	}
	plain.WriteString(`{"id": "last", "text": "no newline at the end"}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	lim := Limits{MaxTextBytes: 1 << 20} // lines over 8 MiB... and texts over 1 MiB are rejected
	read := func(b []byte) []InputRecord {
		in, err := NewLineReader("x", bytes.NewReader(b), lim)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		var recs []InputRecord
		for {
			rec, err := in.Next()
			if err == io.EOF {
				return recs
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Err != nil {
				rec.Err = errors.New(rec.Err.Error())
			}
			recs = append(recs, rec)
		}
	}
	want, got := read(plain.Bytes()), read(gz.Bytes())
	if len(want) != len(sizes)+1 {
		t.Fatalf("%d records from %d lines", len(want), len(sizes)+1)
	}
	if !reflect.DeepEqual(want, got) {
		for i := range min(len(want), len(got)) {
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Fatalf("record %d differs: got %.200v, want %.200v", i, got[i], want[i])
			}
		}
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
}
