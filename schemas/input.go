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
	// Extra holds the values of the typed extra columns of a good record of
	// a TypedInput, in the order of its ExtraFields: bool, int64 (signed
	// integer columns), uint64 (unsigned), float32, float64, string (utf8),
	// []byte (binary), or nil for null. Nil when the input has none.
	Extra []any
}

// InputReader reads the records of an input.
type InputReader interface {
	// Next returns the next record or io.EOF at the end. Bad records are
	// not errors: see InputRecord.Err. Nor is a file that cannot be read to
	// its end (an I/O error, a truncated or corrupt gzip stream, trailing
	// data after one, a corrupt Parquet file, a file that cannot be
	// opened): the readers of this package return the records read from it
	// before the failure, then one bad record for the rest, whose Err is an
	// *IncompleteError under ReasonTruncatedInput or ReasonUnreadableFile
	// (see IncompleteRecord), and go on with the input's next file. Another
	// error means that the input cannot be read further.
	Next() (InputRecord, error)
	// Close releases the input's files.
	Close() error
}

// IncompleteError says that a file of an input could not be read to its
// end. It is the cause, under a *DecodeError, of the bad record that stands
// for the unread rest of the file; see InputReader.Next.
type IncompleteError struct {
	// File is the file that could not be read to its end: an input path, a
	// file or folder inside a folder input, or "stdin".
	File string
	// Records is how many records (good and bad, this one not included)
	// were read from File before the failure.
	Records int64
	// Err is the cause: io.ErrUnexpectedEOF (wrapped) for a file that ends
	// too early, an I/O error, a gzip or Parquet decoding error.
	Err error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("%s: incomplete after %d records: %v", e.File, e.Records, e.Err)
}

// Unwrap returns the cause.
func (e *IncompleteError) Unwrap() error { return e.Err }

// IncompleteRecord returns the bad record that stands for the unread rest
// of file after records records: Source is source (where the rest begins:
// "f.jsonl:18", "f.parquet#row=500", or the file when nothing of it was
// read), Raw is raw (the bytes of a record read only in part; empty when
// nil), and Err is a *DecodeError wrapping an *IncompleteError, with
// ReasonTruncatedInput when cause is io.ErrUnexpectedEOF (the file ends
// inside a record) and ReasonUnreadableFile otherwise.
func IncompleteRecord(file, source string, records int64, cause error, raw []byte) InputRecord {
	reason := ReasonUnreadableFile
	if errors.Is(cause, io.ErrUnexpectedEOF) {
		reason = ReasonTruncatedInput
	}
	if raw == nil {
		raw = []byte{}
	}
	return InputRecord{
		Raw:    raw,
		Source: source,
		Err:    &DecodeError{Reason: reason, Err: &IncompleteError{File: file, Records: records, Err: cause}},
	}
}

// utf8BOM is the byte order mark some tools write at the start of a UTF-8
// file; the readers skip it.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

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
//   - a .parquet file: columns id (string or number) and text (string, or
//     binary read as UTF-8), or those lim.IDField and lim.TextField name;
//     every other column goes into Meta as a JSON object member; the codecs
//     are those of parquet-go (zstd, snappy, gzip, brotli, LZ4_RAW), not the
//     legacy LZ4 (Hadoop) codec;
//   - a .txt file: one document, id = the file name without extension;
//   - any other file (.jsonl, .jsonl.gz, .json.gz, .ndjson, ...): JSON lines,
//     gzip-compressed or not (detected from the content), one object per line
//     decoded with DecodeJSON (its members lim.TextField and lim.IDField
//     first renamed text and id); blank lines are skipped. A line longer than
//     max(MaxLineBytes, 8 × lim.MaxTextBytes) is a record with ReasonOversize.
//
// A UTF-8 byte order mark at the start of a JSON-lines input (compressed
// or not) or of a text file is skipped. Every document is checked with
// ValidateDocument.
//
// OpenInput fails only when path cannot be found (os.Stat fails). A file
// that exists but cannot be opened or read to its end gives a bad record for
// its unread part; see InputReader.Next.
func OpenInput(path string, lim Limits) (InputReader, error) {
	if path == "-" {
		return newLineInput("stdin", os.Stdin, nil, lim), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("schemas: open input: %w", err)
	}
	if st.IsDir() {
		return newTextDirInput(path, lim), nil
	}
	lower := strings.ToLower(path)
	if strings.HasSuffix(lower, ".txt") {
		return &textInput{files: []textFile{{path: path, id: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))}}, lim: lim}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return &failedInput{rec: IncompleteRecord(path, path, 0, err, nil)}, nil
	}
	if strings.HasSuffix(lower, ".parquet") {
		in, err := newParquetInput(path, f, st.Size(), f, lim)
		if err != nil {
			return &failedInput{rec: IncompleteRecord(path, path, 0, err, nil), closer: f}, nil
		}
		return in, nil
	}
	return newLineInput(path, f, f, lim), nil
}

// failedInput is the input of a file that cannot be read at all: one bad
// record.
type failedInput struct {
	rec    InputRecord
	done   bool
	closer io.Closer
}

func (in *failedInput) Next() (InputRecord, error) {
	if in.done {
		return InputRecord{}, io.EOF
	}
	in.done = true
	return in.rec, nil
}

func (in *failedInput) Close() error {
	if in.closer == nil {
		return nil
	}
	err := in.closer.Close()
	in.closer = nil
	return err
}

// OpenInputs reads the inputs at paths one after the other, as OpenInput
// opens each. Every path must exist when OpenInputs is called; each is opened
// when the previous one ends, and one that no longer exists then gives a bad
// record (ReasonUnreadableFile).
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
			p := m.paths[0]
			m.paths = m.paths[1:]
			in, err := OpenInput(p, m.lim)
			if err != nil {
				in = &failedInput{rec: IncompleteRecord(p, p, 0, err, nil)}
			}
			m.cur = in
		}
		rec, err := m.cur.Next()
		if err != io.EOF {
			return rec, err
		}
		// A file's failures were records; closing a read-only file has
		// nothing more to say.
		_ = m.cur.Close()
		m.cur = nil
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
		for _, f := range listTextFiles(p) {
			if f.err != nil {
				continue
			}
			if st, err := os.Stat(f.path); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// NewLineReader returns an InputReader of JSON lines read from r, named name
// in InputRecord.Source ("name:line"). Gzip input is detected and
// decompressed. A read error, a truncated or corrupt gzip stream or data
// after one ends the input with a bad record; see InputReader.Next. The
// error is always nil. Close does not close r.
func NewLineReader(name string, r io.Reader, lim Limits) (InputReader, error) {
	return newLineInput(name, r, nil, lim), nil
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
	records int64  // records returned
	long    []byte // accumulates a line longer than the bufio buffer
	openErr error  // a gzip header that does not parse
	done    bool   // the input ended, at its end or on a failure
	gzip    bool
}

func newLineInput(name string, r io.Reader, closer io.Closer, lim Limits) *lineInput {
	in := &lineInput{name: name, lim: lim, maxLine: maxLineBytes(lim)}
	if closer != nil {
		in.closers = append(in.closers, closer)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	in.br = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		in.gzip = true
		zr, err := inflate.NewReader(br)
		if err != nil {
			in.openErr = fmt.Errorf("gzip header: %w", err)
			return in
		}
		// Decompress in a goroutine of its own, overlapping with parsing;
		// lines come straight from its blocks. zr is not closed: it holds
		// nothing, and its Close would only repeat the error that ended the
		// input, already returned as a record.
		ra := newReadahead(zr)
		in.closers = append([]io.Closer{ra}, in.closers...)
		in.br = ra
	}
	return in
}

func (in *lineInput) Next() (InputRecord, error) {
	if in.done {
		return InputRecord{}, io.EOF
	}
	if in.openErr != nil {
		in.done = true
		return IncompleteRecord(in.name, in.name, 0, in.openErr, nil), nil
	}
	for {
		line, tooLong, err := in.readLine()
		if err != nil && err != io.EOF {
			in.done = true
			return in.incomplete(line, err), nil
		}
		if err == io.EOF && len(line) == 0 && !tooLong {
			in.done = true
			return InputRecord{}, io.EOF
		}
		if in.line == 0 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		in.line++
		src := in.name + ":" + strconv.Itoa(in.line)
		if tooLong {
			in.records++
			return InputRecord{
				Raw:    line,
				Source: src,
				Err:    errorf(ReasonOversize, "schemas: %s: line longer than %d bytes", src, in.maxLine),
			}, nil
		}
		if len(bytes.TrimLeft(line, " \t\r\n")) == 0 {
			continue
		}
		var d Document
		if in.lim.renamedFields() {
			var renamed []byte
			if renamed, err = renameMembers(line, in.lim); err == nil {
				d, err = decodeLine(renamed, in.lim)
			}
		} else {
			d, err = decodeLine(line, in.lim)
		}
		rec := InputRecord{Doc: d, Source: src}
		if err != nil {
			rec.Err = fmt.Errorf("%s: %w", src, err)
			rec.Raw = bytes.Clone(line)
		}
		in.records++
		return rec, nil
	}
}

// incomplete returns the bad record for the rest of the input after the
// read error err, with part, the start of the line being read, as Raw.
func (in *lineInput) incomplete(part []byte, err error) InputRecord {
	n := in.line + 1
	var cause error
	switch {
	case in.gzip && errors.Is(err, inflate.ErrHeader):
		// The first member's header was read at open: this is what follows
		// a complete member.
		cause = fmt.Errorf("data after the end of the gzip stream, at line %d, is not a gzip member: %w", n, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		cause = fmt.Errorf("the file ends early (truncated), inside line %d: %w", n, err)
	default:
		cause = fmt.Errorf("read line %d: %w", n, err)
	}
	raw := bytes.Clone(part[:min(len(part), RawPrefixBytes)])
	return IncompleteRecord(in.name, in.name+":"+strconv.Itoa(n), in.records, cause, raw)
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
	err  error // a folder that could not be listed (in full)
}

// textInput reads one document per text file.
type textInput struct {
	files []textFile
	lim   Limits
}

func newTextDirInput(dir string, lim Limits) *textInput {
	return &textInput{files: listTextFiles(dir), lim: lim}
}

// listTextFiles returns the .txt files under dir, sorted by their
// slash-separated relative path, skipping names that start with '.'. A
// folder that cannot be listed is an entry with err set, in its place.
func listTextFiles(dir string) []textFile {
	var files []textFile
	if st, err := os.Lstat(dir); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		// WalkDir does not follow a root that is a symlink (it would list
		// nothing); with a trailing separator the root is the folder.
		dir += string(filepath.Separator)
	}
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			// A folder that cannot be read (or the root, gone): keep what
			// was listed of it and go on with the rest.
			rel, _ := filepath.Rel(dir, p)
			files = append(files, textFile{path: p, id: filepath.ToSlash(rel), err: err})
			return nil
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
			files = append(files, textFile{path: p, id: p, err: err})
			return nil
		}
		rel = filepath.ToSlash(rel)
		files = append(files, textFile{path: p, id: strings.TrimSuffix(rel, filepath.Ext(rel))})
		return nil
	})
	sort.SliceStable(files, func(i, j int) bool { return files[i].id < files[j].id })
	return files
}

func (in *textInput) Next() (InputRecord, error) {
	if len(in.files) == 0 {
		return InputRecord{}, io.EOF
	}
	tf := in.files[0]
	in.files = in.files[1:]
	if tf.err != nil {
		return IncompleteRecord(tf.path, tf.path, 0, fmt.Errorf("list folder: %w", tf.err), nil), nil
	}
	f, err := os.Open(tf.path)
	if err != nil { // permissions, a symlink loop, a dangling symlink
		rec := IncompleteRecord(tf.path, tf.path, 0, err, nil)
		rec.Doc.ID = tf.id
		return rec, nil
	}
	defer f.Close()
	limit := maxLineBytes(in.lim)
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil { // an I/O error, a symlink to a folder
		rec := IncompleteRecord(tf.path, tf.path, 0, err, data[:min(len(data), RawPrefixBytes)])
		rec.Doc.ID = tf.id
		return rec, nil
	}
	rec := InputRecord{Source: tf.path}
	if len(data) > limit {
		rec.Doc.ID = tf.id
		rec.Raw = data[:RawPrefixBytes:RawPrefixBytes]
		rec.Err = errorf(ReasonOversize, "schemas: %s: file larger than %d bytes", tf.path, limit)
		return rec, nil
	}
	data = bytes.TrimPrefix(data, utf8BOM)
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
