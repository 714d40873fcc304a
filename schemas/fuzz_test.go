package schemas

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
)

// Fuzz tests for every decoder, seeded from testdata/schemas. Run one with
//
//	go test -run='^$' -fuzz=FuzzDecodeJSON -fuzztime=20s ./schemas/

func addSeedFiles(f *testing.F, pattern string) {
	for _, p := range seedFiles(f, pattern) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	addSeedFiles(f, "json/*.json")
	addSeedFiles(f, "jsonl/*.jsonl")
	// Lone surrogate escapes: U+FFFD in text, invalid in ids.
	f.Add([]byte(`{"id":"\ud800","text":"t"}`))
	f.Add([]byte(`{"id":"\ud83d\ude00","text":"\udc00\ud800"}`))
	f.Add([]byte("\xef\xbb\xbf{\"id\":\"bom\",\"text\":\"t\"}"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := DecodeJSON(payload, Limits{MaxTextBytes: 1 << 10})
		checkAgainstEncodingJSON(t, payload, d, err)
		if err != nil {
			return
		}
		enc, err := EncodeJSON(d)
		if err != nil {
			t.Fatalf("EncodeJSON(DecodeJSON(%q)): %v", payload, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("EncodeJSON output %q is not valid JSON", enc)
		}
		d2, err := DecodeJSON(enc, Limits{MaxTextBytes: 1 << 10})
		if err != nil || !equalDoc(d, d2) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", payload, show(d2), err, show(d))
		}
		if enc2, _ := EncodeJSON(d2); !bytes.Equal(enc, enc2) {
			t.Fatalf("EncodeJSON is not stable: %q then %q", enc, enc2)
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	addSeedFiles(f, "arrow/*.arrows")
	addSeedFiles(f, "interop/*.arrow*")
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecodeRecords(t, payload)
		recs, err := DecodeRecords(payload, nil)
		if err != nil {
			return
		}
		defer releaseAll(recs)
		// An accepted payload re-encodes to one that decodes to equal records.
		again, err := AppendRecords(nil, recs...)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		recs2, err := DecodeRecords(again, nil)
		if err != nil {
			t.Fatalf("decode of re-encoded payload: %v", err)
		}
		defer releaseAll(recs2)
		if len(recs2) != len(recs) {
			t.Fatalf("%d records, then %d", len(recs), len(recs2))
		}
		for i := range recs {
			if !array.RecordApproxEqual(recs[i], recs2[i], array.WithNaNsEqual(true)) {
				t.Fatalf("record %d changed on re-encoding", i)
			}
		}
	})
}

func FuzzArrowFileJSON(f *testing.F) {
	addSeedFiles(f, "arrow/*.arrows")
	addSeedFiles(f, "interop/*.arrow*")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, append(append([]byte("ARROW1\x00\x00"), data...), 0, 0, 0, 0, 'A', 'R', 'R', 'O', 'W', '1')} {
			err := WriteArrowFileJSON(io.Discard, bytes.NewReader(in), int64(len(in)))
			if err != nil && ReasonOf(err) != ReasonMalformedArrow && ReasonOf(err) != ReasonWrongSchema {
				t.Fatalf("WriteArrowFileJSON: unexpected error %v", err)
			}
		}
	})
}

// FuzzLineReader reads fuzzed bytes as a JSON-lines input file.
func FuzzLineReader(f *testing.F) {
	addSeedFiles(f, "jsonl/*.jsonl")
	addSeedFiles(f, "json/*.json")
	// A byte order mark, lone surrogates in ids, and gzip streams that are
	// cut short or followed by other bytes.
	lines := []byte("\xef\xbb\xbf{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"\\ud800\",\"text\":\"y\"}\n{\"id\":\"b\",\"text\":\"\\udc00\"}\n")
	f.Add(lines)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(bytes.Repeat(lines, 20))
	zw.Close()
	f.Add(zb.Bytes())
	f.Add(zb.Bytes()[:zb.Len()/2])
	f.Add(append(bytes.Clone(zb.Bytes()), "trailing"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := NewLineReader("fuzz", bytes.NewReader(data), Limits{MaxTextBytes: 64})
		if err != nil {
			t.Fatalf("NewLineReader: %v", err)
		}
		defer in.Close()
		lines := bytes.Count(data, []byte("\n")) + 1
		n := 0
		ended := false // an IncompleteError record was read: it must be the last
		for {
			rec, err := in.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v; a damaged input must end with a record, not an error", err)
			}
			if ended {
				t.Fatalf("record %s after the one for the unread rest of the input", rec.Source)
			}
			var ie *IncompleteError
			ended = errors.As(rec.Err, &ie)
			n++
			if n > lines && (len(data) < 2 || data[0] != 0x1f) {
				t.Fatalf("%d records from %d lines", n, lines)
			}
			if rec.Err != nil {
				if rec.Raw == nil || ReasonOf(rec.Err) == ReasonProcessing {
					t.Fatalf("bad record %s without raw bytes or reason: %v", rec.Source, rec.Err)
				}
				continue
			}
			if err := ValidateDocument(rec.Doc, Limits{MaxTextBytes: 64}); err != nil {
				t.Fatalf("record %s passed but does not validate: %v", rec.Source, err)
			}
		}
	})
}

// FuzzParquetFooter reads Parquet files whose metadata (footer) is fuzzed,
// over the data pages of the seed files. Fuzzing the pages themselves would
// test parquet-go's page decoders, which can be made to allocate without
// bound (see TestParquetMutations).
func FuzzParquetFooter(f *testing.F) {
	if raceEnabled {
		f.Skip("under -race, checkptr turns parquet-go's unsafe slicing of corrupt files into a fatal error")
	}
	var bodies [][]byte
	for _, p := range append(seedFiles(f, "parquet/*.parquet"), seedFiles(f, "interop/*.parquet")...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		n := len(data) - 8 - int(binary.LittleEndian.Uint32(data[len(data)-8:]))
		f.Add(uint8(len(bodies)), data[n:len(data)-8])
		bodies = append(bodies, data[:n])
	}
	f.Fuzz(func(t *testing.T, which uint8, footer []byte) {
		body := bodies[int(which)%len(bodies)]
		data := make([]byte, 0, len(body)+len(footer)+8)
		data = append(data, body...)
		data = append(data, footer...)
		data = binary.LittleEndian.AppendUint32(data, uint32(len(footer)))
		data = append(data, "PAR1"...)
		checkParquetBytes(data)
	})
}
