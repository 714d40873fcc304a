package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// CheckInputs checks that every input path exists ("-", stdin, always
// does). The error names the path: "open corpus.jsonl: no such file or
// directory".
func CheckInputs(paths []string) error {
	for _, in := range paths {
		if in == "-" {
			continue
		}
		if _, err := os.Stat(in); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("open %s: %w", in, pe.Err)
			}
			return err
		}
	}
	return nil
}

// DocReader reads the good documents of input files in order, as OpenInput
// reads each, and keeps what the offline commands need of them: their ids
// (a document without one gets its record's Source), their texts, and
// with KeepMeta their metadata. It counts text bytes and rejected records;
// each rejected record is logged as a warning ("record rejected") and
// skipped. Each path is checked (CheckInputs) and opened when the previous
// one ends; "-" reads JSON lines from the reader given to NewDocReader.
//
// A DocReader is not safe for concurrent use. Close it when done.
type DocReader struct {
	// KeepMeta also keeps each document's metadata (Metas). Default false.
	KeepMeta bool
	// DropTexts makes Next keep none of the texts it returns (Texts stays
	// empty), so that each becomes garbage once the caller is done with
	// it. Default false: Texts holds every text read.
	DropTexts bool

	paths    []string
	lim      Limits
	stdin    io.Reader
	log      *slog.Logger
	docs     int
	cur      InputReader
	curPath  string
	ids      []string
	texts    []string
	metas    []json.RawMessage
	bytes    int64
	rejected int
}

// NewDocReader returns a reader of the documents of paths, validated with
// lim. stdin is what the path "-" reads (nil: os.Stdin); log gets a warning
// for each rejected record (nil: nothing is logged).
func NewDocReader(paths []string, lim Limits, stdin io.Reader, log *slog.Logger) *DocReader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stdin == nil {
		stdin = os.Stdin
	}
	return &DocReader{paths: paths, lim: lim, stdin: stdin, log: log}
}

// Next returns up to n more texts, in input order, and io.EOF once there
// are none left (with no texts). An error other than io.EOF means the
// input cannot be read further: a path that does not exist, or a reader
// that fails.
func (d *DocReader) Next(n int) ([]string, error) {
	if d.DropTexts {
		d.texts = make([]string, 0, min(n, 1024))
	}
	first := len(d.texts)
	for len(d.texts)-first < n {
		if d.cur == nil {
			if len(d.paths) == 0 {
				break
			}
			d.curPath, d.paths = d.paths[0], d.paths[1:]
			if err := CheckInputs([]string{d.curPath}); err != nil {
				return nil, err
			}
			r, err := d.open(d.curPath)
			if err != nil {
				return nil, err
			}
			d.cur = r
		}
		rec, err := d.cur.Next()
		if errors.Is(err, io.EOF) {
			d.cur.Close()
			d.cur = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d.curPath, err)
		}
		if rec.Err != nil {
			d.rejected++
			d.log.Warn("record rejected", "source", rec.Source, "reason", ReasonOf(rec.Err), "err", rec.Err)
			continue
		}
		id := rec.Doc.ID
		if id == "" {
			id = rec.Source
		}
		d.ids = append(d.ids, id)
		d.texts = append(d.texts, rec.Doc.Text)
		if d.KeepMeta {
			d.metas = append(d.metas, rec.Doc.Meta)
		}
		d.bytes += int64(len(rec.Doc.Text))
		d.docs++
	}
	if len(d.texts) == first {
		return nil, io.EOF
	}
	out := d.texts[first:]
	if d.DropTexts {
		d.texts = nil
	}
	return out, nil
}

// open opens one input; "-" reads JSON lines from d.stdin.
func (d *DocReader) open(path string) (InputReader, error) {
	if path == "-" {
		return NewLineReader("stdin", d.stdin, d.lim)
	}
	return OpenInput(path, d.lim)
}

// ReadAll reads every remaining document (Next without a bound). It
// returns nil at the end of the input, not io.EOF.
func (d *DocReader) ReadAll() error {
	if _, err := d.Next(1 << 62); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// IDs returns the ids of the documents read so far, in order. The slice
// is the reader's: it grows as Next reads on.
func (d *DocReader) IDs() []string { return d.ids }

// Texts returns the texts read so far, in order (none with DropTexts).
func (d *DocReader) Texts() []string { return d.texts }

// Metas returns the metadata of the documents read so far, in order (none
// without KeepMeta).
func (d *DocReader) Metas() []json.RawMessage { return d.metas }

// Docs returns the number of documents read so far.
func (d *DocReader) Docs() int { return d.docs }

// Bytes returns the text bytes of the documents read so far.
func (d *DocReader) Bytes() int64 { return d.bytes }

// Rejected returns the number of bad records skipped so far.
func (d *DocReader) Rejected() int { return d.rejected }

// Close closes the input being read, if any.
func (d *DocReader) Close() error {
	if d.cur == nil {
		return nil
	}
	err := d.cur.Close()
	d.cur = nil
	return err
}
