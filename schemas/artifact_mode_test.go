//go:build unix

package schemas

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestArtifactModeHonoursUmask: the atomic writers create files as
// os.Create does, 0666 less the umask, so readers running as another user
// (a Spark job, a DuckDB service, a web server) can read artifacts.
func TestArtifactModeHonoursUmask(t *testing.T) {
	put := func(f *os.File) error { _, err := f.WriteString("x"); return err }
	for _, tt := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}, {0o002, 0o664}} {
		old := syscall.Umask(tt.umask)
		dir := t.TempDir()
		one := filepath.Join(dir, "summary.json")
		errOne := WriteFileAtomic(one, put)
		twin := ArtifactPath(dir, "step", 1)
		errTwin := WriteTwinAtomic(twin, put, put)
		syscall.Umask(old)
		if errOne != nil || errTwin != nil {
			t.Fatalf("umask %03o: %v, %v", tt.umask, errOne, errTwin)
		}
		for _, p := range []string{one, twin, ParquetTwin(twin)} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != tt.want {
				t.Errorf("umask %03o: %s has mode %03o, want %03o", tt.umask, filepath.Base(p), got, tt.want)
			}
		}
	}
}
