package schemas

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/domainflow/domainflow/internal/inflate"
)

// InputRecord is one record read from an input file.
type InputRecord struct {
	Doc Document
	// Raw holds the input bytes of a bad record (Err != nil) so that a caller
	// can dead-letter it: the JSON line, the file's content, or the Parquet
	// row as JSON. For a line or file over the size cap it holds only the
	// first RawPrefixBytes.
	Raw []byte
	// Source says where the record came from: "file.jsonl:17" (1-based
	// line), "dir/a.txt" or "file.parquet#row=5" (0-based row).
	Source string
	// Err is a *DecodeError when this record is bad; reading continues after
	// it.
	Err error
}

// InputReader reads the records of an input.
type InputReader interface {
	// Next returns the next record, io.EOF at the end, or another error when
	// the input cannot be read further (an I/O error, a corrupt gzip or
	// Parquet file). Bad records are not errors: see InputRecord.Err.
	Next() (InputRecord, error)
	// Close releases the input's files.
	Close() error
}

// RawPrefixBytes is how much of an over-size line or file InputRecord.Raw
// keeps.
const RawPrefixBytes = 64 << 10

// OpenInput opens one input:
//
//   - "-": JSON lines from stdin;
//   - a folder: its .txt files, recursively, in order of their slash-separated
//     path relative to the folder; id = that path without the extension (the
//     file name for files at the top), text = the content; names starting
//     with '.' are skipped;
//   - a .parquet file: columns id (string or number) and text (string); every
//     other column goes into Meta as a JSON object member;
//   - a .txt file: one document, id = the file name without extension;
//   - any other file (.jsonl, .jsonl.gz, .json.gz, .ndjson, ...): JSON lines,
//     gzip-compressed or not (detected from the content), one object per line
//     decoded with DecodeJSON; blank lines are skipped. A line longer than
//     max(MaxLineBytes, 8 × lim.MaxTextBytes) is a record with ReasonOversize.
//
// Every document is checked with ValidateDocument.
func OpenInput(path string, lim Limits) (InputReader, error) {
	if path == "-" {
		return newLineInput("stdin", os.Stdin, nil, lim)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("schemas: open input: %w", err)
	}
	if st.IsDir() {
		return newTextDirInput(path, lim)
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".txt"):
		return &textInput{files: []textFile{{path: path, id: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))}}, lim: lim}, nil
	case strings.HasSuffix(lower, ".parquet"):
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("schemas: open input: %w", err)
		}
		in, err := newParquetInput(path, f, st.Size(), f, lim)
		if err != nil {
			f.Close()
			return nil, err
		}
		return in, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("schemas: open input: %w", err)
	}
	in, err := newLineInput(path, f, f, lim)
	if err != nil {
		f.Close()
		return nil, err
	}
	return in, nil
}

// OpenInputs reads the inputs at paths one after the other, as OpenInput
// opens each. Every path must exist when OpenInputs is called; each is opened
// when the previous one ends.
func OpenInputs(paths []string, lim Limits) (InputReader, error) {
	for _, p := range paths {
		if p == "-" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("schemas: open input: %w", err)
		}
	}
	return &multiInput{paths: paths, lim: lim}, nil
}

type multiInput struct {
	paths []string
	lim   Limits
	cur   InputReader
}

func (m *multiInput) Next() (InputRecord, error) {
	for {
		if m.cur == nil {
			if len(m.paths) == 0 {
				return InputRecord{}, io.EOF
			}
			in, err := OpenInput(m.paths[0], m.lim)
			if err != nil {
				return InputRecord{}, err
			}
			m.cur, m.paths = in, m.paths[1:]
		}
		rec, err := m.cur.Next()
		if err != io.EOF {
			return rec, err
		}
		err = m.cur.Close()
		m.cur = nil
		if err != nil {
			return InputRecord{}, err
		}
	}
}

func (m *multiInput) Close() error {
	m.paths = nil
	if m.cur != nil {
		err := m.cur.Close()
		m.cur = nil
		return err
	}
	return nil
}

// InputSize returns the total bytes on disk of the inputs at paths (the .txt
// files of a folder), for a progress bar; stdin and paths that cannot be read
// count 0.
func InputSize(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if p == "-" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			n += st.Size()
			continue
		}
		files, err := listTextFiles(p)
		if err != nil {
			continue
		}
		for _, f := range files {
			if st, err := os.Stat(f.path); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// NewLineReader returns an InputReader of JSON lines read from r, named name
// in InputRecord.Source ("name:line"). Gzip input is detected and
// decompressed. Close does not close r.
func NewLineReader(name string, r io.Reader, lim Limits) (InputReader, error) {
	return newLineInput(name, r, nil, lim)
}

// sliceReader is what lineInput reads lines from: a *bufio.Reader, or the
// readahead of a gzip input, which hands out lines from its blocks without
// another copy.
type sliceReader interface {
	ReadSlice(delim byte) ([]byte, error)
}

// lineInput reads JSON lines.
type lineInput struct {
	name    string
	br      sliceReader
	closers []io.Closer
	lim     Limits
	maxLine int
	line    int
	long    []byte // accumulates a line longer than the bufio buffer
}

func newLineInput(name string, r io.Reader, closer io.Closer, lim Limits) (*lineInput, error) {
	in := &lineInput{name: name, lim: lim, maxLine: maxLineBytes(lim)}
	if closer != nil {
		in.closers = append(in.closers, closer)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := inflate.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("schemas: open %s: %w", name, err)
		}
		// Decompress in a goroutine of its own, overlapping with parsing;
		// lines come straight from its blocks.
		ra := newReadahead(zr)
		in.closers = append([]io.Closer{ra, zr}, in.closers...)
		in.br = ra
		return in, nil
	}
	in.br = br
	return in, nil
}

func (in *lineInput) Next() (InputRecord, error) {
	for {
		line, tooLong, err := in.readLine()
		if err != nil && (err != io.EOF || (len(line) == 0 && !tooLong)) {
			if err != io.EOF {
				err = fmt.Errorf("schemas: read %s line %d: %w", in.name, in.line+1, err)
			}
			return InputRecord{}, err
		}
		in.line++
		src := in.name + ":" + strconv.Itoa(in.line)
		if tooLong {
			return InputRecord{
				Raw:    line,
				Source: src,
				Err:    errorf(ReasonOversize, "schemas: %s: line longer than %d bytes", src, in.maxLine),
			}, nil
		}
		if len(bytes.TrimLeft(line, " \t\r\n")) == 0 {
			continue
		}
		d, err := decodeLine(line, in.lim)
		rec := InputRecord{Doc: d, Source: src}
		if err != nil {
			rec.Err = fmt.Errorf("%s: %w", src, err)
			rec.Raw = bytes.Clone(line)
		}
		return rec, nil
	}
}

// readLine returns the next line without its '\n'. The line is valid until
// the next call. A line over maxLine is skipped to its end and only its first
// RawPrefixBytes (a copy) are returned, with tooLong. At the end of input it
// returns the last unterminated line, if any, with io.EOF.
func (in *lineInput) readLine() (line []byte, tooLong bool, err error) {
	line, err = in.br.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], false, nil
	}
	if err != bufio.ErrBufferFull {
		return line, false, err
	}
	in.long = append(in.long[:0], line...)
	for {
		line, err = in.br.ReadSlice('\n')
		if !tooLong {
			if len(in.long)+len(line) > in.maxLine {
				tooLong = true
				in.long = bytes.Clone(in.long[:min(len(in.long), RawPrefixBytes)])
			} else {
				in.long = append(in.long, line...)
			}
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			if !tooLong {
				return in.long[:len(in.long)-1], false, nil
			}
		}
		if tooLong { // the caller keeps this one: detach it from in.long
			line, in.long = in.long, nil
			return line, true, err
		}
		return in.long, false, err
	}
}

func (in *lineInput) Close() error {
	var errs []error
	for _, c := range in.closers {
		errs = append(errs, c.Close())
	}
	in.closers = nil
	return errors.Join(errs...)
}

type textFile struct {
	path string // on disk
	id   string
}

// textInput reads one document per text file.
type textInput struct {
	files []textFile
	lim   Limits
}

func newTextDirInput(dir string, lim Limits) (*textInput, error) {
	files, err := listTextFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("schemas: open input: %w", err)
	}
	return &textInput{files: files, lim: lim}, nil
}

// listTextFiles returns the .txt files under dir, sorted by their
// slash-separated relative path, skipping names that start with '.'.
func listTextFiles(dir string) ([]textFile, error) {
	var files []textFile
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() || !strings.EqualFold(filepath.Ext(p), ".txt") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files = append(files, textFile{path: p, id: strings.TrimSuffix(rel, filepath.Ext(rel))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].id < files[j].id })
	return files, nil
}

func (in *textInput) Next() (InputRecord, error) {
	if len(in.files) == 0 {
		return InputRecord{}, io.EOF
	}
	tf := in.files[0]
	in.files = in.files[1:]
	f, err := os.Open(tf.path)
	if err != nil {
		return InputRecord{}, fmt.Errorf("schemas: read input: %w", err)
	}
	defer f.Close()
	limit := maxLineBytes(in.lim)
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return InputRecord{}, fmt.Errorf("schemas: read %s: %w", tf.path, err)
	}
	rec := InputRecord{Source: tf.path}
	if len(data) > limit {
		rec.Doc.ID = tf.id
		rec.Raw = data[:RawPrefixBytes:RawPrefixBytes]
		rec.Err = errorf(ReasonOversize, "schemas: %s: file larger than %d bytes", tf.path, limit)
		return rec, nil
	}
	rec.Doc = Document{ID: tf.id, Text: string(data)}
	if err := ValidateDocument(rec.Doc, in.lim); err != nil {
		rec.Err = fmt.Errorf("%s: %w", tf.path, err)
		rec.Raw = data
	}
	return rec, nil
}

func (in *textInput) Close() error {
	in.files = nil
	return nil
}
