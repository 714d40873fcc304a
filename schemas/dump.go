package schemas

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrUnknownFormat is returned, wrapped with the path, by DumpFile for a
// file it cannot read: neither named as one of its formats nor starting like
// a Parquet or Arrow file.
var ErrUnknownFormat = errors.New("not a Parquet or Arrow file, and not named .parquet, .arrow, .arrows, .ipc, .jsonl, .jsonl.gz or .txt")

// DumpFile writes the rows of the file or folder at path to w as JSON lines
// (for `pipeline inspect FILE`). The format comes from the name:
//
//   - .parquet: every row, any schema (WriteParquetJSON);
//   - .arrow, .arrows, .ipc: every row of an Arrow IPC file or stream, any
//     schema (WriteArrowFileJSON);
//   - .jsonl, .jsonl.gz, .json: the non-empty lines, as they are;
//   - .txt, or a folder: the documents OpenInput reads (a folder of .txt
//     files), one JSON document a line, and {"error","source"} for a record
//     it could not read;
//   - any other name: a Parquet or Arrow file recognized by its first bytes
//     (WriteFileJSON), else an error wrapping ErrUnknownFormat.
//
// A path that does not exist is an error "open PATH: ...". Errors of w
// stop the dump and are returned as they are or wrapped with %w, so a
// writer may end the output early with a sentinel of its own and find it
// with errors.Is.
func DumpFile(w io.Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("open %s: %w", path, pe.Err)
		}
		return err
	}
	if st.IsDir() {
		return dumpInput(w, path)
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".parquet"):
		return dumpColumnar(w, path, st.Size(), WriteParquetJSON)
	case strings.HasSuffix(lower, ".arrow"), strings.HasSuffix(lower, ".arrows"), strings.HasSuffix(lower, ".ipc"):
		return dumpColumnar(w, path, st.Size(), WriteArrowFileJSON)
	case strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".jsonl.gz"), strings.HasSuffix(lower, ".json"):
		return dumpLines(w, path)
	case strings.HasSuffix(lower, ".txt"):
		return dumpInput(w, path)
	}
	if !looksColumnar(path) {
		return fmt.Errorf("%s: %w", path, ErrUnknownFormat)
	}
	if err := WriteFileJSON(w, path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// dumpColumnar opens the file at path and writes it with write, which
// reads size bytes.
func dumpColumnar(w io.Writer, path string, size int64, write func(io.Writer, io.ReaderAt, int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := write(w, f, size); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// looksColumnar reports whether the file at path starts like a Parquet
// file, an Arrow IPC file or an Arrow IPC stream.
func looksColumnar(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [6]byte
	n, _ := io.ReadFull(f, magic[:])
	switch {
	case n >= 4 && string(magic[:4]) == "PAR1":
		return true
	case n == 6 && string(magic[:]) == arrowFileMagic:
		return true
	case n >= 4 && binary.LittleEndian.Uint32(magic[:4]) == ipcContinuation:
		return true
	}
	return false
}

// dumpLines writes the non-empty lines of a .jsonl or .jsonl.gz file,
// without their line ends, each followed by "\n".
func dumpLines(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(t)) > 0 {
			if _, werr := w.Write(append(t, '\n')); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// dumpInput writes the documents OpenInput reads at path as JSON lines; a
// bad record becomes {"error","source"}.
func dumpInput(w io.Writer, path string) error {
	r, err := OpenInput(path, Limits{})
	if err != nil {
		return err
	}
	defer r.Close()
	var buf []byte
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if rec.Err != nil {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(map[string]string{"source": rec.Source, "error": rec.Err.Error()}); err != nil {
				return err
			}
			continue
		}
		buf, err = AppendJSON(buf[:0], rec.Doc)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.Source, err)
		}
		if _, err := w.Write(append(buf, '\n')); err != nil {
			return err
		}
	}
}
