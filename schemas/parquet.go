package schemas

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
)

// DocumentRow is the Parquet row of a document. An empty Meta is written as
// null.
type DocumentRow struct {
	ID   string `parquet:"id"`
	Text string `parquet:"text"`
	Meta string `parquet:"meta,optional"`
}

// WriteParquetDocuments writes docs to w as one Parquet file of DocumentRow,
// zstd-compressed. OpenInput reads it back, Meta included.
func WriteParquetDocuments(w io.Writer, docs []Document) error {
	pw := parquet.NewGenericWriter[DocumentRow](w, ParquetWriterOptions()...)
	const batch = 1024
	rows := make([]DocumentRow, 0, min(batch, len(docs)))
	for i := 0; i < len(docs); i += batch {
		rows = rows[:0]
		for _, d := range docs[i:min(i+batch, len(docs))] {
			rows = append(rows, DocumentRow{ID: d.ID, Text: d.Text, Meta: string(d.Meta)})
		}
		if _, err := pw.Write(rows); err != nil {
			pw.Close()
			return fmt.Errorf("schemas: write parquet documents: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("schemas: write parquet documents: %w", err)
	}
	return nil
}

// WriteParquetJSON writes every row of the Parquet file of size bytes read
// from r to w as one JSON object line, columns in schema order. It reads any
// schema through parquet-go's generic rows: groups are objects, lists arrays,
// byte arrays without a string annotation base64 (but in the columns text and
// id, which ingest reads as text), floats numbers (null for NaN and
// infinities).
func WriteParquetJSON(w io.Writer, r io.ReaderAt, size int64) (err error) {
	pr, err := openParquet(r, size)
	if err != nil {
		return fmt.Errorf("schemas: parquet to json: %w", err)
	}
	defer pr.close()
	var buf []byte
	for {
		row, err := pr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("schemas: parquet to json: %w", err)
		}
		buf = pr.appendRow(buf[:0], row, nil)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("schemas: parquet to json: %w", err)
		}
	}
	return nil
}

// ParquetFileRows returns the number of rows of the Parquet file at path,
// from its footer, checked as OpenInput checks it (a corrupt footer is an
// error, not a huge allocation).
func ParquetFileRows(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pr, err := openParquet(f, st.Size())
	if err != nil {
		return 0, fmt.Errorf("schemas: %s: %w", path, err)
	}
	defer pr.close()
	return pr.file.NumRows(), nil
}

// parquetRows reads the rows of a Parquet file as map[string]any, one row
// group after the other, so that a corrupt row group loses only its own rows
// and those after it.
type parquetRows struct {
	file   *parquet.File
	groups []parquet.RowGroup
	rd     *parquet.GenericReader[any] // of groups[0], nil before the first
	fields []parquet.Field
	binary []bool // top-level field i is a byte array without string annotation
	rows   []any
	n, i   int
	err    error // io.EOF or the error that ended reading, after rows[i:n]
}

func openParquet(r io.ReaderAt, size int64) (pr *parquetRows, err error) {
	defer func() {
		if p := recover(); p != nil {
			pr, err = nil, errorf(ReasonProcessing, "malformed parquet file: %v", p)
		}
	}()
	f, err := openParquetFile(r, size)
	if err != nil {
		return nil, err
	}
	pr = &parquetRows{file: f, fields: f.Schema().Fields(), rows: make([]any, 64)}
	pr.binary = make([]bool, len(pr.fields))
	for i, fl := range pr.fields {
		if fl.Leaf() {
			pr.binary[i] = isBinary(fl.Type())
		}
	}
	pr.groups = f.RowGroups()
	return pr, nil
}

func (pr *parquetRows) close() {
	if pr.rd != nil {
		pr.rd.Close()
	}
}

// isBinary reports whether t is a byte array without a string, enum or JSON
// annotation (new or deprecated style): its values are shown as base64.
func isBinary(t parquet.Type) bool {
	if t.Kind() != parquet.ByteArray && t.Kind() != parquet.FixedLenByteArray {
		return false
	}
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		return false
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.UTF8, deprecated.Enum, deprecated.Json:
			return false
		}
	}
	return true
}

// next returns the next row, or io.EOF. The rows read before an error are
// returned before it; after an error, next returns it again.
func (pr *parquetRows) next() (row map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			pr.n, pr.err = 0, fmt.Errorf("malformed parquet file: %v", p)
			row, err = nil, pr.err
		}
	}()
	for pr.i >= pr.n {
		if pr.err != nil {
			return nil, pr.err
		}
		if pr.rd == nil {
			if len(pr.groups) == 0 {
				pr.err = io.EOF
				continue
			}
			pr.rd = parquet.NewGenericRowGroupReader[any](pr.groups[0])
			pr.groups = pr.groups[1:]
		}
		clear(pr.rows)
		var err error
		pr.n, err = pr.rd.Read(pr.rows)
		pr.i = 0
		if err == io.EOF {
			pr.rd.Close()
			pr.rd = nil
		} else if err != nil {
			pr.err = err
		}
	}
	v := pr.rows[pr.i]
	pr.i++
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("row of type %T", v)
	}
	return m, nil
}

// appendRow appends row as a JSON object, fields in schema order, leaving out
// the fields named in skip.
func (pr *parquetRows) appendRow(dst []byte, row map[string]any, skip func(name string) bool) []byte {
	dst = append(dst, '{')
	first := true
	for i, fl := range pr.fields {
		name := fl.Name()
		if skip != nil && skip(name) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONStringLossy(dst, name)
		dst = append(dst, ':')
		v := row[name]
		// The text and id columns are text even without a string
		// annotation: ingest reads them so.
		if s, ok := v.(string); ok && pr.binary[i] && name != ColText && name != ColID {
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, []byte(s))
			dst = append(dst, '"')
			continue
		}
		dst = appendAnyJSON(dst, v)
	}
	return append(dst, '}')
}

// appendAnyJSON appends v, a value of parquet-go's generic rows, as JSON.
func appendAnyJSON(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendJSONStringLossy(dst, v)
	case []byte:
		return appendBase64(dst, v)
	case bool:
		return strconv.AppendBool(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int8:
		return strconv.AppendInt(dst, int64(v), 10)
	case int16:
		return strconv.AppendInt(dst, int64(v), 10)
	case int32:
		return strconv.AppendInt(dst, int64(v), 10)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(dst, v, 10)
	case float32:
		return appendFloat(dst, float64(v), 32)
	case float64:
		return appendFloat(dst, v, 64)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAnyJSON(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONStringLossy(dst, k)
			dst = append(dst, ':')
			dst = appendAnyJSON(dst, v[k])
		}
		return append(dst, '}')
	}
	b, err := json.Marshal(v)
	if err != nil || !utf8.Valid(b) {
		return appendJSONStringLossy(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

// parquetInput reads documents from a Parquet file: columns id and text (or
// those Limits.IDField and TextField name), and every other column into
// Meta. The text column is a string, or a byte array without annotation
// (binary), read as UTF-8 text. A string column named meta that holds JSON
// objects (as WriteParquetDocuments writes) has its members spliced into Meta
// at its place instead of being nested.
//
// A file whose schema does not hold documents (no text column, a text
// column that is not a byte array, an id column that is a list or a group,
// no column of an id field named in Limits) is still read: each of its rows
// is a bad record (ReasonWrongSchema, the error listing the file's columns)
// with the row as JSON in Raw. A file that cannot be read to its end gives a
// bad record for the rows left (see IncompleteRecord).
type parquetInput struct {
	name    string
	closer  io.Closer
	rows    *parquetRows
	lim     Limits
	textCol string // the column holding the text
	idCol   string // the column holding the id
	shard   bool   // an archive shard: its pipeline columns are not Meta
	row     int
	hasExt  bool // any column besides id and text
	// extra are the typed extra columns (Limits.TypedExtras), extraCol
	// their indices in rows.fields and typed whether field i is one.
	extra     []arrow.Field
	extraCol  []int
	typed     []bool
	buf       []byte
	schemaErr error // the file's schema does not hold documents
	done      bool
}

func newParquetInput(name string, r io.ReaderAt, size int64, closer io.Closer, lim Limits) (*parquetInput, error) {
	rows, err := openParquet(r, size)
	if err != nil {
		return nil, fmt.Errorf("schemas: open %s: %w", name, err)
	}
	in := &parquetInput{name: name, closer: closer, rows: rows, lim: lim, textCol: lim.textField(), idCol: lim.idField()}
	_, in.shard = rows.file.Lookup(MetaShard)
	var haveText, haveID bool
	for _, fl := range rows.fields {
		switch fl.Name() {
		case in.textCol:
			if !fl.Leaf() || fl.Repeated() || fl.Type().Kind() != parquet.ByteArray {
				in.schemaErr = errorf(ReasonWrongSchema, "schemas: %s: column %s (the text) is %s, want a string", name, in.textCol, fl.Type())
			}
			haveText = true
		case in.idCol:
			if !fl.Leaf() || fl.Repeated() {
				in.schemaErr = errorf(ReasonWrongSchema, "schemas: %s: column %s (the id) is not a string or a number", name, in.idCol)
			}
			haveID = true
		default:
			in.hasExt = true
		}
	}
	if lim.TypedExtras {
		in.typed = make([]bool, len(rows.fields))
		for i, fl := range rows.fields {
			name := fl.Name()
			if name == in.textCol || name == in.idCol || IsReservedColumn(name) {
				continue
			}
			if dt, ok := parquetExtraType(fl); ok {
				in.typed[i] = true
				in.extra = append(in.extra, arrow.Field{Name: name, Type: dt, Nullable: true})
				in.extraCol = append(in.extraCol, i)
			}
		}
	}
	switch {
	case !haveText:
		in.schemaErr = errorf(ReasonWrongSchema, "schemas: %s: no %s column for the text (columns: %s)%s", name, in.textCol, in.columnNames(), fieldHint("--text-field"))
	case !haveID && in.idCol != ColID:
		in.schemaErr = errorf(ReasonWrongSchema, "schemas: %s: no %s column for the id (columns: %s)%s", name, in.idCol, in.columnNames(), fieldHint("--id-field"))
	}
	return in, nil
}

// columnNames lists the file's top-level columns, for errors.
func (in *parquetInput) columnNames() string {
	names := make([]string, len(in.rows.fields))
	for i, fl := range in.rows.fields {
		names[i] = fl.Name()
	}
	return strings.Join(names, ", ")
}

// fieldHint is the end of an error about a missing input field: how to name
// another one.
func fieldHint(flag string) string {
	return "; " + flag + " names the field to read"
}

func (in *parquetInput) Next() (InputRecord, error) {
	if in.done {
		return InputRecord{}, io.EOF
	}
	row, err := in.rows.next()
	if err == io.EOF {
		in.done = true
		return InputRecord{}, io.EOF
	}
	if err != nil {
		in.done = true
		n := in.rows.file.NumRows()
		if int64(in.row) < n {
			err = fmt.Errorf("rows %d to %d of %d unread: %w", in.row, n-1, n, err)
		}
		return IncompleteRecord(in.name, in.name+"#row="+strconv.Itoa(in.row), int64(in.row), err, nil), nil
	}
	rec := InputRecord{Source: in.name + "#row=" + strconv.Itoa(in.row)}
	in.row++
	if in.schemaErr != nil {
		rec.Err = in.schemaErr
		rec.Raw = in.rows.appendRow(nil, row, nil)
		return rec, nil
	}
	d, err := in.document(row)
	if err == nil {
		err = ValidateDocument(d, in.lim)
	}
	if err == nil && len(in.extra) > 0 {
		rec.Extra, err = in.extraValues(row)
	}
	rec.Doc = d
	if err != nil {
		rec.Err = err
		rec.Raw = in.rows.appendRow(nil, row, nil)
	}
	return rec, nil
}

func (in *parquetInput) document(row map[string]any) (Document, error) {
	var d Document
	switch id := row[in.idCol].(type) {
	case nil:
	case string:
		d.ID = id
	case float32:
		d.ID = strconv.FormatFloat(float64(id), 'g', -1, 32)
	case float64:
		d.ID = strconv.FormatFloat(id, 'g', -1, 64)
	default:
		d.ID = string(appendAnyJSON(nil, id))
	}
	switch text := row[in.textCol].(type) {
	case nil:
	case string:
		d.Text = text
	default:
		return d, errorf(ReasonWrongSchema, "schemas: text of type %T", text)
	}
	if !in.hasExt {
		return d, nil
	}
	b := in.buf[:0]
	b = append(b, '{')
	n := 0
	for i, fl := range in.rows.fields {
		name := fl.Name()
		if name == in.idCol || name == in.textCol || in.shard && name != ColMeta && IsReservedColumn(name) || in.typed != nil && in.typed[i] {
			continue
		}
		v := row[name]
		if s, ok := v.(string); ok && name == ColMeta && !in.rows.binary[i] {
			if members, ok := objectMembers(s); ok {
				if len(members) > 0 {
					if n > 0 {
						b = append(b, ',')
					}
					b = append(b, members...)
					n++
				}
				continue
			}
		}
		if v == nil && name == ColMeta {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendJSONStringLossy(b, inputMetaName(name))
		b = append(b, ':')
		if s, ok := v.(string); ok && in.rows.binary[i] {
			b = appendBase64(b, []byte(s))
		} else {
			b = appendAnyJSON(b, v)
		}
	}
	in.buf = b
	if n > 0 {
		d.Meta = append(json.RawMessage(nil), b...)
		d.Meta = append(d.Meta, '}')
	}
	return d, nil
}

// ExtraFields returns the typed extra columns of the file (see
// TypedInput), nil without Limits.TypedExtras.
func (in *parquetInput) ExtraFields() []arrow.Field { return in.extra }

// extraValues returns the values of row's typed extra columns, in the order
// of in.extra. A string that is not valid UTF-8 is ReasonInvalidUTF8.
func (in *parquetInput) extraValues(row map[string]any) ([]any, error) {
	vals := make([]any, len(in.extra))
	for j, f := range in.extra {
		v, ok := extraValue(row[f.Name], f.Type)
		if !ok {
			if f.Type.ID() == arrow.STRING {
				return nil, errorf(ReasonInvalidUTF8, "schemas: column %s is not valid UTF-8", clip(f.Name))
			}
			return nil, errorf(ReasonWrongSchema, "schemas: column %s: value of type %T, want %s", clip(f.Name), row[f.Name], f.Type)
		}
		vals[j] = v
	}
	return vals, nil
}

// objectMembers returns the compact members of the JSON object s, without
// the braces, when s is one without id or text members.
func objectMembers(s string) ([]byte, bool) {
	if !utf8.ValidString(s) || !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{") {
		return nil, false
	}
	o, err := decodeObject([]byte(s))
	if err != nil || o.haveID || o.haveText {
		return nil, false
	}
	if len(o.meta) < 2 {
		return nil, true
	}
	return o.meta[1 : len(o.meta)-1], true
}

func (in *parquetInput) Close() error {
	in.rows.close()
	if in.closer != nil {
		return in.closer.Close()
	}
	return nil
}
