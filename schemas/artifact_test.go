package schemas

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
