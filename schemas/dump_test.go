package schemas

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

func TestDumpFile(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }

	var pq bytes.Buffer
	if err := WriteParquetDocuments(&pq, []Document{{ID: "1", Text: "one"}, {ID: "2", Text: "two"}}); err != nil {
		t.Fatal(err)
	}
	write(t, at("docs.parquet"), pq.Bytes())
	write(t, at("docs.data"), pq.Bytes()) // recognized by its content

	b := NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(Document{ID: "a1", Text: "arrow one"}, Origin{Topic: "docs.raw", Offset: 7})
	b.Append(Document{ID: "a2", Text: "arrow two"}, Origin{Topic: "docs.raw", Offset: 8})
	rec := b.NewRecord()
	b.Release()
	stream, err := EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	write(t, at("batch.arrows"), stream)
	write(t, at("batch.ipc"), stream)
	write(t, at("batch.bin"), stream)

	write(t, at("x.jsonl"), []byte("{\"id\":1}\r\n\n  \n{\"id\":2}\n{\"id\":3}"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("{\"id\":\"g1\"}\n{\"id\":\"g2\"}\n"))
	_ = zw.Close()
	write(t, at("x.JSONL.GZ"), gz.Bytes())
	write(t, at("bad.jsonl.gz"), []byte("this is not gzip data"))

	txt := at("texts")
	if err := os.Mkdir(txt, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(txt, "a.txt"), []byte("hello"))
	write(t, filepath.Join(txt, "b.txt"), []byte("world"))
	write(t, at("notes.md"), []byte("# not data\n"))

	arrowRows := `{"id":"a1","text":"arrow one","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":7,"origin_row":0}` + "\n" +
		`{"id":"a2","text":"arrow two","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":8,"origin_row":0}` + "\n"
	parquetRows := `{"id":"1","text":"one","meta":null}` + "\n" + `{"id":"2","text":"two","meta":null}` + "\n"
	tests := []struct {
		path    string
		want    string
		wantErr string // a part of the error; "" for none
	}{
		{path: at("docs.parquet"), want: parquetRows},
		{path: at("docs.data"), want: parquetRows},
		{path: at("batch.arrows"), want: arrowRows},
		{path: at("batch.ipc"), want: arrowRows},
		{path: at("batch.bin"), want: arrowRows},
		{path: at("x.jsonl"), want: "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"},
		{path: at("x.JSONL.GZ"), want: "{\"id\":\"g1\"}\n{\"id\":\"g2\"}\n"},
		{path: at("bad.jsonl.gz"), wantErr: at("bad.jsonl.gz") + ": gzip: invalid header"},
		{path: txt, want: `{"id":"a","text":"hello"}` + "\n" + `{"id":"b","text":"world"}` + "\n"},
		{path: at("notes.md"), wantErr: at("notes.md") + ": not a Parquet or Arrow file"},
		{path: at("missing.parquet"), wantErr: "open " + at("missing.parquet") + ": no such file or directory"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := DumpFile(&out, tt.path)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("DumpFile(%s): %v", filepath.Base(tt.path), err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("DumpFile(%s) = %v, want an error with %q", filepath.Base(tt.path), err, tt.wantErr)
		case out.String() != tt.want:
			t.Errorf("DumpFile(%s) wrote\n%s\nwant\n%s", filepath.Base(tt.path), out.String(), tt.want)
		}
	}
	if err := DumpFile(&bytes.Buffer{}, at("notes.md")); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("DumpFile(notes.md) = %v, want ErrUnknownFormat", err)
	}
}

// A writer's error stops the dump and is found with errors.Is, whatever the
// format; a damaged file is named in the error.
func TestDumpFileErrors(t *testing.T) {
	dir := t.TempDir()
	var pq bytes.Buffer
	if err := WriteParquetDocuments(&pq, []Document{{ID: "1", Text: "one"}, {ID: "2", Text: "two"}}); err != nil {
		t.Fatal(err)
	}
	b := NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(Document{ID: "a", Text: "x"}, Origin{})
	b.Append(Document{ID: "b", Text: "y"}, Origin{})
	rec := b.NewRecord()
	b.Release()
	stream, err := EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"d.parquet": pq.Bytes(), "d.pq": pq.Bytes(), "d.arrows": stream,
		"d.jsonl": []byte("1\n2\n"), "texts/a.txt": []byte("a"), "texts/b.txt": []byte("b"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, p, data)
	}
	stop := errors.New("stop")
	for _, name := range []string{"d.parquet", "d.pq", "d.arrows", "d.jsonl", "texts"} {
		w := &stopAfter{err: stop}
		if err := DumpFile(w, filepath.Join(dir, name)); !errors.Is(err, stop) {
			t.Errorf("DumpFile(%s) with a failing writer = %v, want %v", name, err, stop)
		}
	}

	damaged := filepath.Join(dir, "damaged.arrows")
	write(t, damaged, stream[:len(stream)/2])
	if err := DumpFile(&bytes.Buffer{}, damaged); err == nil || !strings.HasPrefix(err.Error(), damaged+": ") || ReasonOf(err) != ReasonMalformedArrow {
		t.Errorf("DumpFile(damaged.arrows) = %v, want %s: ... with reason %s", err, damaged, ReasonMalformedArrow)
	}
}

// stopAfter accepts n writes (none by default), then fails with err.
type stopAfter struct {
	n   int
	err error
}

func (s *stopAfter) Write(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, s.err
	}
	s.n--
	return len(p), nil
}
