package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Versioned artifacts (featurizer states, router models, checkpoints) are
// files named DIR/<prefix>-NNNNNN.arrow (Arrow IPC, what the stages load) with
// a Parquet twin DIR/<prefix>-NNNNNN.parquet (the same table, for any Parquet
// tool), each written atomically.

// ArtifactPath returns the Arrow file of version v of the artifact prefix in
// dir.
func ArtifactPath(dir, prefix string, v int64) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%06d.arrow", prefix, v))
}

// ParquetTwin returns the Parquet file beside an artifact's Arrow file.
func ParquetTwin(arrowPath string) string {
	return strings.TrimSuffix(arrowPath, ".arrow") + ".parquet"
}

// LatestArtifactVersion returns the highest version of prefix saved in dir
// (by the names of its Arrow files), or 0 when there is none or dir does not
// exist.
func LatestArtifactVersion(dir, prefix string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list %s versions in %s: %w", prefix, dir, err)
	}
	var best int64
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix+"-")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".arrow")
		if !ok || len(num) < 6 {
			continue
		}
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && v > best {
			best = v
		}
	}
	return best, nil
}

// WriteFileAtomic writes path through a temp file in the same directory,
// fsyncs it, renames it over path and syncs the directory, so that path is
// either the old file or the whole new one, also after a crash.
func WriteFileAtomic(path string, write func(*os.File) error) error {
	tmp, err := writeTemp(path, write)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return commitTemps(filepath.Dir(path), [][2]string{{tmp, path}})
}

// WriteTwinAtomic writes an artifact's Parquet twin and its Arrow file
// (arrowPath) as WriteFileAtomic does, the two encodings concurrently, then
// renames the Parquet file first and the Arrow file last: the Arrow file is
// what marks a version as present (LatestVersion), so a crash between the
// two leaves no version that lacks its twin. writeParquet and writeArrow run
// on different goroutines and must only read what they share. On error
// neither file is renamed.
func WriteTwinAtomic(arrowPath string, writeParquet, writeArrow func(*os.File) error) error {
	parquetPath := ParquetTwin(arrowPath)
	var ptmp string
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ptmp, perr = writeTemp(parquetPath, writeParquet)
	}()
	atmp, aerr := writeTemp(arrowPath, writeArrow)
	<-done
	for _, t := range []string{ptmp, atmp} {
		if t != "" {
			defer os.Remove(t)
		}
	}
	if err := errors.Join(perr, aerr); err != nil {
		return err
	}
	return commitTemps(filepath.Dir(arrowPath), [][2]string{{ptmp, parquetPath}, {atmp, arrowPath}})
}

// writeTemp writes a temp file beside path with write and fsyncs it; it
// returns the temp file's name, or "" and an error (the temp file removed).
// The file is created with mode 0666 less the process's umask, as os.Create
// makes files (os.CreateTemp's 0600 would keep every artifact from readers
// running as another user).
func writeTemp(path string, write func(*os.File) error) (string, error) {
	tmp, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := write(tmp); err != nil {
		return fail(fmt.Errorf("write %s: %w", path, err))
	}
	if err := tmp.Sync(); err != nil {
		return fail(fmt.Errorf("fsync %s: %w", path, err))
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp.Name(), nil
}

// createTemp creates a new file dir/prefix<random> with mode 0666 (before
// the umask), as os.CreateTemp does with mode 0600.
func createTemp(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// commitTemps renames each {temp, path} pair in order and syncs dir.
func commitTemps(dir string, renames [][2]string) error {
	for _, r := range renames {
		if err := os.Rename(r[0], r[1]); err != nil {
			return fmt.Errorf("write %s: %w", r[1], err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadArtifact loads version v of prefix from dir (v <= 0: the latest) with
// load, trying the Arrow file first and its Parquet twin when the Arrow file
// is missing or damaged. load gets the file's path and reads either format.
func LoadArtifact[T any](dir, prefix string, v int64, load func(path string) (T, error)) (T, error) {
	var zero T
	if v <= 0 {
		latest, err := LatestArtifactVersion(dir, prefix)
		if err != nil {
			return zero, err
		}
		if latest == 0 {
			return zero, fmt.Errorf("no %s in %s", prefix, dir)
		}
		v = latest
	}
	arrowPath := ArtifactPath(dir, prefix, v)
	a, err := load(arrowPath)
	if err == nil {
		return a, nil
	}
	a, perr := load(ParquetTwin(arrowPath))
	if perr != nil {
		return zero, fmt.Errorf("load %s %d: %v; parquet twin: %w", prefix, v, err, perr)
	}
	return a, nil
}

// ReadParquetArtifact reads every row of the Parquet file at path (an
// artifact's twin) and the key-value metadata under key, which must be
// there: without it the file is not a what ("router model", ...).
func ReadParquetArtifact[T any](path, key, what string) (meta string, rows []T, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return "", nil, err
	}
	meta, ok := pf.Lookup(key)
	if !ok {
		return "", nil, fmt.Errorf("not a %s (no %s metadata)", what, key)
	}
	if rows, err = parquet.Read[T](f, st.Size()); err != nil {
		return "", nil, err
	}
	return meta, rows, nil
}

// ParquetRowGroupRows is the most rows in one row group of the Parquet files
// the pipeline writes (features, router models, featurizer states,
// checkpoints, archive shards and document files): a reader can skip, split
// and parallelize by group, and a writer holds one group in memory. 8,192
// feature rows of a few hundred terms each make groups of about 10 MB.
const ParquetRowGroupRows = 8192

// ParquetWriterOptions returns the options of every Parquet file the
// pipeline writes: zstd compression (features shrink about 3.4×), row groups
// of at most ParquetRowGroupRows rows, and then extra (key-value metadata,
// statistics settings). Files written before, uncompressed and in one row
// group, read as before: the codec is per column chunk.
func ParquetWriterOptions(extra ...parquet.WriterOption) []parquet.WriterOption {
	return append([]parquet.WriterOption{
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(ParquetRowGroupRows),
	}, extra...)
}
