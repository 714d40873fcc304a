package schemas

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

// fixtureLines returns the JSON lines of testdata/mixed-small.jsonl.gz.
func fixtureLines(b *testing.B) ([][]byte, int64) {
	b.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "mixed-small.jsonl.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	var n int64
	br := bufio.NewReaderSize(zr, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lines = append(lines, line)
			n += int64(len(line))
		}
		if err != nil {
			break
		}
	}
	return lines, n
}

func BenchmarkDecodeJSON(b *testing.B) {
	lines, n := fixtureLines(b)
	b.SetBytes(n)
	for b.Loop() {
		for _, l := range lines {
			if _, err := DecodeJSON(l, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodeJSONStdlib is the encoding/json baseline for
// BenchmarkDecodeJSON: a map of raw members, then the text unquoted.
func BenchmarkDecodeJSONStdlib(b *testing.B) {
	lines, n := fixtureLines(b)
	b.SetBytes(n)
	for b.Loop() {
		for _, l := range lines {
			var m map[string]json.RawMessage
			var text string
			if err := json.Unmarshal(l, &m); err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(m["text"], &text); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	lines, n := fixtureLines(b)
	docs := make([]Document, len(lines))
	for i, l := range lines {
		docs[i], _ = DecodeJSON(l, Limits{})
	}
	b.SetBytes(n)
	var buf []byte
	for b.Loop() {
		for _, d := range docs {
			var err error
			if buf, err = AppendJSON(buf[:0], d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkRecordRoundTrip(b *testing.B) {
	lines, n := fixtureLines(b)
	docs := make([]Document, len(lines))
	for i, l := range lines {
		docs[i], _ = DecodeJSON(l, Limits{})
	}
	b.SetBytes(n)
	mem := memory.NewGoAllocator()
	var payload []byte
	for b.Loop() {
		db := NewDocumentBuilder(mem)
		for i, d := range docs {
			db.Append(d, Origin{Topic: "docs.raw", Offset: int64(i)})
		}
		rec := db.NewRecord()
		db.Release()
		var err error
		if payload, err = AppendRecord(payload[:0], rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
		recs, err := DecodeRecords(payload, mem)
		if err != nil {
			b.Fatal(err)
		}
		dc, err := Documents(recs[0])
		if err != nil || dc.Len() != len(docs) {
			b.Fatal(err)
		}
		releaseAll(recs)
	}
}
