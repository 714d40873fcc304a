package schemas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func TestLatestArtifactVersion(t *testing.T) {
	dir := t.TempDir()
	if v, err := LatestArtifactVersion(filepath.Join(dir, "missing"), "router"); v != 0 || err != nil {
		t.Fatalf("missing dir: %d, %v", v, err)
	}
	for _, name := range []string{"router-000001.arrow", "router-000012.arrow", "router-000099.parquet", "router-7.arrow",
		"featurizer-000050.arrow", "routers-000060.arrow", ".router-000070.arrow.tmp-1", "router-00000x.arrow"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   int64
	}{{"router", 12}, {"featurizer", 50}, {"checkpoint", 0}}
	for _, tt := range tests {
		if v, err := LatestArtifactVersion(dir, tt.prefix); v != tt.want || err != nil {
			t.Errorf("LatestArtifactVersion(%q) = %d, %v; want %d", tt.prefix, v, err, tt.want)
		}
	}
	if got, want := ArtifactPath(dir, "router", 3), filepath.Join(dir, "router-000003.arrow"); got != want {
		t.Errorf("ArtifactPath = %s, want %s", got, want)
	}
	if got := ParquetTwin("/x/router-000003.arrow"); got != "/x/router-000003.parquet" {
		t.Errorf("ParquetTwin = %s", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.bin")
	if err := WriteFileAtomic(path, func(f *os.File) error { _, err := f.WriteString("one"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := WriteFileAtomic(path, func(f *os.File) error { f.WriteString("half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write returned %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("a failed write changed the file to %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

func TestWriteTwinAtomic(t *testing.T) {
	dir := t.TempDir()
	arrow := ArtifactPath(dir, "router", 1)
	put := func(s string) func(*os.File) error {
		return func(f *os.File) error { _, err := f.WriteString(s); return err }
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	if err := WriteTwinAtomic(arrow, put("pq1"), put("ar1")); err != nil {
		t.Fatal(err)
	}
	if read(ParquetTwin(arrow)) != "pq1" || read(arrow) != "ar1" {
		t.Fatalf("files hold %q and %q", read(ParquetTwin(arrow)), read(arrow))
	}
	boom := errors.New("boom")
	fail := func(f *os.File) error { f.WriteString("half"); return boom }
	for _, tt := range []struct {
		name      string
		pq, arrow func(*os.File) error
	}{{"parquet fails", fail, put("ar2")}, {"arrow fails", put("pq2"), fail}, {"both fail", fail, fail}} {
		if err := WriteTwinAtomic(arrow, tt.pq, tt.arrow); !errors.Is(err, boom) {
			t.Errorf("%s: returned %v", tt.name, err)
		}
		if read(ParquetTwin(arrow)) != "pq1" || read(arrow) != "ar1" {
			t.Errorf("%s: a failed write changed the files to %q and %q", tt.name, read(ParquetTwin(arrow)), read(arrow))
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Errorf("%s: temp files left behind: %v", tt.name, ents)
		}
	}
	if err := WriteTwinAtomic(filepath.Join(dir, "missing", "router-000001.arrow"), put("x"), put("y")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestReadParquetArtifactLayouts: the artifact reader reads files written
// the old way (uncompressed, one row group) and the new way (zstd, row
// groups of ParquetRowGroupRows), and the new way has several groups on a
// file large enough.
func TestReadParquetArtifactLayouts(t *testing.T) {
	type row struct {
		Name string    `parquet:"name"`
		Vec  []float32 `parquet:"vec,list"`
	}
	rows := make([]row, 3*ParquetRowGroupRows+5)
	for i := range rows {
		rows[i] = row{Name: fmt.Sprintf("r%d", i), Vec: []float32{float32(i), 1}}
	}
	meta := parquet.KeyValueMetadata("domainflow.test", `{"format":1}`)
	for _, tt := range []struct {
		name   string
		opts   []parquet.WriterOption
		codec  format.CompressionCodec
		groups int
	}{
		{"old", []parquet.WriterOption{meta}, format.Uncompressed, 1},
		{"new", ParquetWriterOptions(meta), format.Zstd, 4},
	} {
		path := filepath.Join(t.TempDir(), tt.name+".parquet")
		if err := WriteFileAtomic(path, func(f *os.File) error {
			w := parquet.NewGenericWriter[row](f, tt.opts...)
			if _, err := w.Write(rows); err != nil {
				return err
			}
			return w.Close()
		}); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(path)
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		md := pf.Metadata()
		f.Close()
		if len(md.RowGroups) != tt.groups || md.RowGroups[0].Columns[0].MetaData.Codec != tt.codec {
			t.Errorf("%s: %d row groups of %s, want %d of %s", tt.name, len(md.RowGroups), md.RowGroups[0].Columns[0].MetaData.Codec, tt.groups, tt.codec)
		}
		m, got, err := ReadParquetArtifact[row](path, "domainflow.test", "test artifact")
		if err != nil || m != `{"format":1}` || len(got) != len(rows) || got[len(got)-1].Name != rows[len(rows)-1].Name || got[9000].Vec[0] != 9000 {
			t.Errorf("%s: read %d rows, meta %q, %v", tt.name, len(got), m, err)
		}
	}
}
