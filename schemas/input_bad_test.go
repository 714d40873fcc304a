package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// jsonLines returns n JSON lines {"id":"<prefix>-i","text":"text i ..."}.
func jsonLines(prefix string, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","text":"text %d of %s, with a few more words"}`+"\n", prefix, i, i, prefix)
	}
	return b.Bytes()
}

// parquetRowGroups writes n documents <prefix>-i as a Parquet file of row
// groups of per rows.
func parquetRowGroups(t *testing.T, prefix string, n, per int) ([]byte, *format.FileMetaData) {
	t.Helper()
	var buf bytes.Buffer
	pw := parquet.NewGenericWriter[DocumentRow](&buf, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(int64(per)))
	for i := 0; i < n; i += per {
		var rows []DocumentRow
		for j := i; j < min(i+per, n); j++ {
			rows = append(rows, DocumentRow{ID: fmt.Sprintf("%s-%d", prefix, j), Text: fmt.Sprintf("text %d of %s", j, prefix)})
		}
		if _, err := pw.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := pw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return data, f.Metadata()
}

// TestBadFileDoesNotStopInput reads, for every kind of bad file, the inputs
// [bad file, good file]: the records of the bad file before the failure
// arrive, the rest of it is one bad record whose error is an
// *IncompleteError (or, for a file of the wrong schema, every row is a bad
// record), and every record of the good file after it arrives.
func TestBadFileDoesNotStopInput(t *testing.T) {
	dir := t.TempDir()
	good := write(t, filepath.Join(dir, "good.jsonl"), jsonLines("good", 3))
	const n = 2000
	full := gz(t, jsonLines("z", n))

	tests := []struct {
		name  string
		input func(t *testing.T, dir string) string // the bad input, in dir
		// good is how many good records (z-0, z-1, ...) come first; -1: at
		// least one.
		good int
		// then the reasons of the remaining records of the bad input.
		want []Reason
		// file is the IncompleteError's File ("": the input) and records
		// its Records (-1: the records before it).
		file    string
		records int64
		errHas  string
		// partial: the last record's Raw is the start of the line that the
		// failure cut.
		partial bool
	}{
		{
			name: "truncated gzip",
			input: func(t *testing.T, dir string) string {
				return write(t, filepath.Join(dir, "cut.jsonl.gz"), full[:len(full)/2])
			},
			good: -1, want: []Reason{ReasonTruncatedInput}, records: -1, errHas: "truncated", partial: true,
		},
		{
			name: "trailing garbage after gzip",
			input: func(t *testing.T, dir string) string {
				return write(t, filepath.Join(dir, "trail.jsonl.gz"), append(bytes.Clone(full), "garbage after the stream"...))
			},
			good: n, want: []Reason{ReasonUnreadableFile}, records: n, errHas: "not a gzip member",
		},
		{
			name: "a few bytes after gzip",
			input: func(t *testing.T, dir string) string {
				return write(t, filepath.Join(dir, "few.jsonl.gz"), append(bytes.Clone(full), "junk"...))
			},
			good: n, want: []Reason{ReasonUnreadableFile}, records: n, errHas: "not a gzip member",
		},
		{
			name: "zero padding after gzip",
			input: func(t *testing.T, dir string) string {
				return write(t, filepath.Join(dir, "pad.jsonl.gz"), append(bytes.Clone(full), make([]byte, 512)...))
			},
			good: n, want: []Reason{ReasonUnreadableFile}, records: n, errHas: "not a gzip member",
		},
		{
			name: "gzip checksum mismatch",
			input: func(t *testing.T, dir string) string {
				bad := bytes.Clone(full)
				bad[len(bad)-8] ^= 1 // the CRC-32 in the trailer
				return write(t, filepath.Join(dir, "crc.jsonl.gz"), bad)
			},
			good: n, want: []Reason{ReasonUnreadableFile}, records: n, errHas: "checksum",
		},
		{
			name: "corrupt gzip header",
			input: func(t *testing.T, dir string) string {
				return write(t, filepath.Join(dir, "hdr.jsonl.gz"), []byte("\x1f\x8b\x07 not deflate"))
			},
			want: []Reason{ReasonUnreadableFile}, records: 0, errHas: "gzip header",
		},
		{
			name: "corrupt parquet footer",
			input: func(t *testing.T, dir string) string {
				data, _ := parquetRowGroups(t, "z", 10, 5)
				data = bytes.Clone(data)
				binary.LittleEndian.PutUint32(data[len(data)-8:], 1<<30) // footer length
				return write(t, filepath.Join(dir, "footer.parquet"), data)
			},
			want: []Reason{ReasonUnreadableFile}, records: 0, errHas: "footer",
		},
		{
			name: "truncated parquet",
			input: func(t *testing.T, dir string) string {
				data, _ := parquetRowGroups(t, "z", 10, 5)
				return write(t, filepath.Join(dir, "short.parquet"), data[:len(data)/2])
			},
			want: []Reason{ReasonUnreadableFile}, records: 0, errHas: "parquet",
		},
		{
			name: "corrupt parquet row group",
			input: func(t *testing.T, dir string) string {
				data, md := parquetRowGroups(t, "z", 10, 5)
				data = bytes.Clone(data)
				c := md.RowGroups[1].Columns[1].MetaData // the second row group's text
				for k := c.DataPageOffset + c.TotalCompressedSize - 8; k < c.DataPageOffset+c.TotalCompressedSize; k++ {
					data[k] ^= 0xff
				}
				return write(t, filepath.Join(dir, "rowgroup.parquet"), data)
			},
			good: 5, want: []Reason{ReasonUnreadableFile}, records: 5, errHas: "rows 5 to 9 of 10 unread",
		},
		{
			name: "parquet int text column",
			input: func(t *testing.T, dir string) string {
				type row struct {
					ID   string `parquet:"id"`
					Text int64  `parquet:"text"`
				}
				var buf bytes.Buffer
				if err := parquet.Write(&buf, []row{{"a", 1}, {"b", 2}, {"c", 3}}); err != nil {
					t.Fatal(err)
				}
				return write(t, filepath.Join(dir, "inttext.parquet"), buf.Bytes())
			},
			want: []Reason{ReasonWrongSchema, ReasonWrongSchema, ReasonWrongSchema},
		},
		{
			name: "folder with a symlink loop",
			input: func(t *testing.T, dir string) string {
				folder := filepath.Join(dir, "loop")
				write(t, filepath.Join(folder, "a.txt"), []byte("first file"))
				write(t, filepath.Join(folder, "z.txt"), []byte("last file"))
				if err := os.Symlink("self.txt", filepath.Join(folder, "self.txt")); err != nil {
					t.Fatal(err)
				}
				return folder
			},
			want: []Reason{"", ReasonUnreadableFile, ""}, file: "self.txt", records: 0, errHas: "too many levels of symbolic links",
		},
		{
			name: "folder with a dangling symlink",
			input: func(t *testing.T, dir string) string {
				folder := filepath.Join(dir, "dangling")
				write(t, filepath.Join(folder, "a.txt"), []byte("first file"))
				write(t, filepath.Join(folder, "z.txt"), []byte("last file"))
				if err := os.Symlink("missing.txt", filepath.Join(folder, "m.txt")); err != nil {
					t.Fatal(err)
				}
				return folder
			},
			want: []Reason{"", ReasonUnreadableFile, ""}, file: "m.txt", records: 0, errHas: "no such file",
		},
		{
			name: "folder with a .txt that is a folder",
			input: func(t *testing.T, dir string) string {
				folder := filepath.Join(dir, "dirtxt")
				write(t, filepath.Join(folder, "a.txt"), []byte("first file"))
				write(t, filepath.Join(folder, "z.txt"), []byte("last file"))
				if err := os.Symlink(folder, filepath.Join(folder, "m.txt")); err != nil {
					t.Fatal(err)
				}
				return folder
			},
			want: []Reason{"", ReasonUnreadableFile, ""}, file: "m.txt", records: 0, errHas: "is a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.input(t, t.TempDir())
			in, err := OpenInputs([]string{bad, good}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var recs []InputRecord
			for {
				rec, err := in.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next after %d records: %v", len(recs), err)
				}
				recs = append(recs, rec)
			}
			if err := in.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			// The good file, whole, at the end.
			if len(recs) < 3 {
				t.Fatalf("%d records, want at least the good file's 3", len(recs))
			}
			for i, rec := range recs[len(recs)-3:] {
				if rec.Err != nil || rec.Doc.ID != fmt.Sprintf("good-%d", i) || rec.Source != fmt.Sprintf("%s:%d", good, i+1) {
					t.Errorf("good file record %d = %+v, %v", i, show(rec.Doc), rec.Err)
				}
			}
			recs = recs[:len(recs)-3]
			// The bad input's good records first.
			ngood := 0
			for ngood < len(recs) && recs[ngood].Err == nil && strings.HasPrefix(recs[ngood].Doc.ID, "z-") {
				if id := fmt.Sprintf("z-%d", ngood); recs[ngood].Doc.ID != id {
					t.Fatalf("record %d: id %q, want %q", ngood, recs[ngood].Doc.ID, id)
				}
				ngood++
			}
			if (tt.good >= 0 && ngood != tt.good) || (tt.good < 0 && ngood == 0) {
				t.Fatalf("%d good records before the failure, want %d (-1: some)", ngood, tt.good)
			}
			rest := recs[ngood:]
			var reasons []Reason
			for _, rec := range rest {
				reasons = append(reasons, ReasonOf(rec.Err))
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tt.want) {
				t.Fatalf("then reasons %q, want %q", reasons, tt.want)
			}
			for i, rec := range rest {
				var ie *IncompleteError
				if !errors.As(rec.Err, &ie) {
					if rec.Err != nil && rec.Raw == nil {
						t.Errorf("bad record %s without Raw", rec.Source)
					}
					continue
				}
				wantFile := bad
				if tt.file != "" {
					wantFile = filepath.Join(bad, tt.file)
				}
				wantRecords := tt.records
				if wantRecords < 0 {
					wantRecords = int64(ngood + i)
				}
				if ie.File != wantFile || ie.Records != wantRecords || rec.Raw == nil || !strings.Contains(rec.Err.Error(), tt.errHas) {
					t.Errorf("incomplete record %s: %+v, raw %d bytes, error %q; want file %s, %d records, an error with %q",
						rec.Source, *ie, len(rec.Raw), rec.Err, wantFile, wantRecords, tt.errHas)
				}
				if tt.partial {
					next := fmt.Sprintf(`{"id":"z-%d",`, ngood)
					if len(rec.Raw) > 0 && !bytes.HasPrefix([]byte(next), rec.Raw[:min(len(rec.Raw), len(next))]) {
						t.Errorf("Raw %.40q is not the start of line %d", rec.Raw, ngood+1)
					}
				}
			}
		})
	}
}

// TestTextFolderThroughSymlink: a folder input given as a symlink to a
// folder is read (filepath.WalkDir alone lists nothing under it).
func TestTextFolderThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "real", "a.txt"), []byte("first"))
	write(t, filepath.Join(dir, "real", "sub", "b.txt"), []byte("second"))
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	in, err := OpenInput(link, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "symlinked folder", readInput(t, in), []got{
		{"a", "first", "", filepath.Join(link, "a.txt"), ""},
		{"sub/b", "second", "", filepath.Join(link, "sub", "b.txt"), ""},
	})
	if n := InputSize(link); n != int64(len("first")+len("second")) {
		t.Errorf("InputSize(symlinked folder) = %d", n)
	}
}

// TestLineReaderReadError: a read error (stdin, a pipe) ends the input with
// a bad record after the lines read before it.
func TestLineReaderReadError(t *testing.T) {
	eio := errors.New("input/output error")
	data := string(jsonLines("z", 2)) + `{"id":"z-2","te`
	in, err := NewLineReader("stdin", io.MultiReader(strings.NewReader(data), iotest.ErrReader(eio)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "read error", readInput(t, in), []got{
		{"z-0", "text 0 of z, with a few more words", "", "stdin:1", ""},
		{"z-1", "text 1 of z, with a few more words", "", "stdin:2", ""},
		{"", "", "", "stdin:3", ReasonUnreadableFile},
	})
	in, _ = NewLineReader("stdin", io.MultiReader(strings.NewReader(data), iotest.ErrReader(eio)), Limits{})
	var last InputRecord
	for {
		rec, err := in.Next()
		if err != nil {
			break
		}
		last = rec
	}
	var ie *IncompleteError
	if !errors.As(last.Err, &ie) || !errors.Is(last.Err, eio) || ie.File != "stdin" || ie.Records != 2 || string(last.Raw) != `{"id":"z-2","te` {
		t.Errorf("last record %+v, raw %q; want an IncompleteError of stdin after 2 records wrapping %v, the partial line as Raw", last.Err, last.Raw, eio)
	}
}

// TestGzipMembers: a gzip input of several members (as cat a.gz b.gz
// makes) is read whole; only what follows the last member is an error.
func TestGzipMembers(t *testing.T) {
	data := append(gz(t, jsonLines("z", 3)), gz(t, jsonLines("y", 2))...)
	in, _ := NewLineReader("cat.gz", bytes.NewReader(data), Limits{})
	recs := readInput(t, in)
	if len(recs) != 5 || recs[2].id != "z-2" || recs[3].id != "y-0" || recs[4].reason != "" {
		t.Errorf("records %+v, want z-0..z-2, y-0, y-1", recs)
	}
}

// TestBOMSkipped: a UTF-8 byte order mark at the start of a file is not
// part of its first document; elsewhere it is kept.
func TestBOMSkipped(t *testing.T) {
	dir := t.TempDir()
	bom := "\xef\xbb\xbf"
	lines := bom + `{"id":"a","text":"first"}` + "\n" + `{"id":"b","text":"second"}` + "\n"
	for _, tt := range []struct {
		name string
		data []byte
		want []got
	}{
		{"a.jsonl", []byte(lines), []got{{"a", "first", "", ":1", ""}, {"b", "second", "", ":2", ""}}},
		{"b.jsonl.gz", gz(t, []byte(lines)), []got{{"a", "first", "", ":1", ""}, {"b", "second", "", ":2", ""}}},
		{"c.jsonl", []byte(bom + "\n" + `{"id":"a","text":"first"}`), []got{{"a", "first", "", ":2", ""}}},
		{"d.jsonl", []byte(`{"id":"a","text":"first"}` + "\n" + bom + `{"id":"b","text":"second"}`), []got{{"a", "first", "", ":1", ""}, {"", "", "", ":2", ReasonMalformedJSON}}},
		{"e.txt", []byte(bom + "text file"), []got{{"e", "text file", "", "", ""}}},
		{"f.txt", []byte("text " + bom + "file"), []got{{"f", "text " + bom + "file", "", "", ""}}},
	} {
		p := write(t, filepath.Join(dir, tt.name), tt.data)
		in, err := OpenInput(p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range tt.want {
			tt.want[i].source = p + tt.want[i].source
		}
		check(t, tt.name, readInput(t, in), tt.want)
	}
}
