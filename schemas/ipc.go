package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/bitutil"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// EncodeRecord returns rec as an Arrow IPC stream: its schema, one record
// batch and the end-of-stream marker, uncompressed.
func EncodeRecord(rec arrow.Record) ([]byte, error) {
	return AppendRecords(nil, rec)
}

// AppendRecord appends the IPC stream of rec to dst, as EncodeRecord does,
// so that a caller can reuse a buffer.
func AppendRecord(dst []byte, rec arrow.Record) ([]byte, error) {
	return AppendRecords(dst, rec)
}

// AppendRecords appends one IPC stream holding recs, which must share one
// schema, to dst.
func AppendRecords(dst []byte, recs ...arrow.Record) ([]byte, error) {
	if len(recs) == 0 {
		return dst, errors.New("schemas: encode arrow: no records")
	}
	n0 := len(dst)
	buf := bytes.NewBuffer(dst)
	w := ipc.NewWriter(buf, ipc.WithSchema(recs[0].Schema()))
	for i, rec := range recs {
		rec, err := unsliceNested(rec)
		if err != nil {
			w.Close()
			return dst[:n0], fmt.Errorf("schemas: encode arrow: record %d: %w", i, err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return dst[:n0], fmt.Errorf("schemas: encode arrow: record %d: %w", i, err)
		}
	}
	if err := w.Close(); err != nil {
		return dst[:n0], fmt.Errorf("schemas: encode arrow: %w", err)
	}
	return buf.Bytes(), nil
}

// unsliceNested returns rec (retained) or, when a list column is a slice
// of a larger list (its rows do not span all of its values), a copy of rec
// whose such columns are copies. The arrow IPC writer (arrow/go v15) panics
// with "arrow/array: index out of range" on a slice of a list of strings or
// binaries whose rows hold no values at all (e.g. a null row) while the
// list's values do not end there: it slices the values to length 0 and then
// asks that empty slice for its first offset. A one-row gather of a null
// kafka_header_names makes one (TestAppendRecordsSlicedNullList). A copy has
// values of its own. Other columns, and lists that span their values (what
// builders make), are shared. The caller releases the result.
func unsliceNested(rec arrow.Record) (arrow.Record, error) {
	var cols []arrow.Array
	for j, c := range rec.Columns() {
		if !slicedList(c) {
			continue
		}
		if cols == nil {
			cols = slices.Clone(rec.Columns())
			for _, a := range cols {
				a.Retain()
			}
		}
		cp, err := array.Concatenate([]arrow.Array{c}, memory.DefaultAllocator)
		if err != nil {
			for _, a := range cols {
				a.Release()
			}
			return nil, fmt.Errorf("copy sliced column %q: %w", rec.Schema().Field(j).Name, err)
		}
		cols[j].Release()
		cols[j] = cp
	}
	if cols == nil {
		rec.Retain()
		return rec, nil
	}
	out := array.NewRecord(rec.Schema(), cols, rec.NumRows())
	for _, a := range cols {
		a.Release()
	}
	return out, nil
}

// slicedList reports whether c is a list-like array whose rows do not span
// all of its values (a slice).
func slicedList(c arrow.Array) bool {
	l, ok := c.(array.ListLike)
	if !ok {
		return false
	}
	if c.Data().Offset() != 0 {
		return true
	}
	n := int64(l.ListValues().Len())
	if c.Len() == 0 {
		return n != 0
	}
	start, _ := l.ValueOffsets(0)
	_, end := l.ValueOffsets(c.Len() - 1)
	return start != 0 || end != n
}

// DecodeRecords decodes an Arrow IPC stream payload: exactly one schema, of
// one of our kinds at the current Version (see CheckSchema for the columns it
// must have), then one or more record batches. The caller releases the
// returned records; they do not alias payload. mem nil means
// memory.DefaultAllocator.
//
// Errors are *DecodeError: ReasonMalformedArrow for anything that is not a
// well-formed stream (DecodeRecords checks the message framing, bounds what
// the arrow reader may allocate, recovers from its panics and validates every
// buffer and offset of the decoded arrays, so a bad payload cannot crash the
// caller later), ReasonWrongSchema and ReasonUnknownSchemaVersion from the
// schema's metadata.
func DecodeRecords(payload []byte, mem memory.Allocator) ([]arrow.Record, error) {
	recs, err := readStream(payload, mem, true, false)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: stream has no record batches")
	}
	return recs, nil
}

// readStream reads the IPC stream in data. With checkKind the schema must be
// one of ours; with trailing, bytes after the end-of-stream marker are
// ignored (the footer of the IPC file format).
func readStream(data []byte, mem memory.Allocator, checkKind, trailing bool) (recs []arrow.Record, err error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	defer func() {
		if p := recover(); p != nil {
			releaseAll(recs)
			recs, err = nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: %v", p)
		}
	}()
	budget := &budgetAllocator{mem: mem, left: decodeBudget(len(data))}
	mr := &messageReader{data: data, refs: 1}
	rd, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(budget))
	if err != nil {
		mr.Release()
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: %v", err)
	}
	defer rd.Release()
	schema := rd.Schema()
	if checkKind {
		kind, _, err := KindOf(schema)
		if err != nil {
			return nil, fmt.Errorf("schemas: decode arrow: %w", err)
		}
		if err := CheckSchema(schema, kind); err != nil {
			return nil, fmt.Errorf("schemas: decode arrow: %w", err)
		}
	}
	for _, f := range schema.Fields() {
		if err := supportedType(f.Type, 0); err != nil {
			return nil, errorf(ReasonWrongSchema, "schemas: decode arrow: column %q: %v", f.Name, err)
		}
	}
	for rd.Next() {
		rec := rd.Record()
		if err := validateRecord(rec); err != nil {
			releaseAll(recs)
			return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: record batch %d: %v", len(recs), err)
		}
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := rd.Err(); err != nil {
		releaseAll(recs)
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: %v", err)
	}
	if mr.err != nil {
		releaseAll(recs)
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: %v", mr.err)
	}
	if !trailing && mr.pos != len(data) {
		releaseAll(recs)
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow: %d bytes after the end of the stream", len(data)-mr.pos)
	}
	return recs, nil
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// decodeBudget is how many bytes the arrow reader may allocate for a payload
// of n bytes: enough for any uncompressed stream and for compression ratios up
// to 64, and never so much that a forged buffer length exhausts memory.
func decodeBudget(n int) int64 {
	return max(64<<20, 64*int64(n))
}

// errBudget is the panic value of budgetAllocator.
var errBudget = errors.New("buffer sizes exceed what the payload can hold")

// budgetAllocator passes allocations to mem until left bytes have been
// allocated, then panics with errBudget (the arrow reader turns panics into
// errors; readStream recovers the rest).
type budgetAllocator struct {
	mem  memory.Allocator
	left int64
}

func (a *budgetAllocator) take(n int) {
	if n < 0 || atomic.AddInt64(&a.left, -int64(n)) < 0 {
		panic(errBudget)
	}
}

func (a *budgetAllocator) Allocate(size int) []byte {
	a.take(size)
	return a.mem.Allocate(size)
}

func (a *budgetAllocator) Reallocate(size int, b []byte) []byte {
	a.take(size - len(b))
	return a.mem.Reallocate(size, b)
}

func (a *budgetAllocator) Free(b []byte) { a.mem.Free(b) }

// messageReader is an ipc.MessageReader over a byte slice that checks every
// length against the bytes that are left before anything is allocated (the
// stock reader allocates whatever a message header claims). Message bodies
// alias data; the arrow reader copies array buffers out of them.
type messageReader struct {
	data []byte
	pos  int  // start of the next message
	eos  bool // end-of-stream marker or end of data reached
	err  error
	msg  *ipc.Message
	refs int64
}

const ipcContinuation = 0xFFFFFFFF

func (r *messageReader) fail(format string, args ...any) (*ipc.Message, error) {
	r.err = fmt.Errorf(format, args...)
	r.eos = true
	return nil, r.err
}

// Message returns the next message, valid until the next call, or io.EOF.
func (r *messageReader) Message() (*ipc.Message, error) {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
	if r.eos {
		return nil, io.EOF
	}
	rest := r.data[r.pos:]
	if len(rest) == 0 { // a stream may end without the marker
		r.eos = true
		return nil, io.EOF
	}
	if len(rest) < 4 {
		return r.fail("truncated message header at offset %d", r.pos)
	}
	var n int64
	hdr := 4
	switch cid := binary.LittleEndian.Uint32(rest); cid {
	case 0:
		r.pos += 4
		r.eos = true
		return nil, io.EOF
	case ipcContinuation:
		if len(rest) < 8 {
			return r.fail("truncated message header at offset %d", r.pos)
		}
		n = int64(int32(binary.LittleEndian.Uint32(rest[4:])))
		hdr = 8
	default: // pre-0.15 framing: the length alone
		n = int64(int32(cid))
	}
	if n == 0 {
		r.pos += hdr
		r.eos = true
		return nil, io.EOF
	}
	if n < 8 || n > int64(len(rest)-hdr) {
		return r.fail("message metadata of %d bytes at offset %d, %d bytes left", n, r.pos, len(rest)-hdr)
	}
	metaStart := r.pos + hdr
	metaBytes := r.data[metaStart : metaStart+int(n)]
	if err := verifyMessage(metaBytes); err != nil {
		return r.fail("message metadata at offset %d: %v", metaStart, err)
	}
	meta := memory.NewBufferBytes(metaBytes)
	probe := ipc.NewMessage(meta, memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	bodyStart := metaStart + int(n)
	if bodyLen < 0 || bodyLen > int64(len(r.data)-bodyStart) {
		return r.fail("message body of %d bytes at offset %d, %d bytes left", bodyLen, bodyStart, len(r.data)-bodyStart)
	}
	body := memory.NewBufferBytes(r.data[bodyStart : bodyStart+int(bodyLen)])
	r.msg = ipc.NewMessage(meta, body)
	r.pos = bodyStart + int(bodyLen)
	return r.msg, nil
}

func (r *messageReader) Retain() { atomic.AddInt64(&r.refs, 1) }

func (r *messageReader) Release() {
	if atomic.AddInt64(&r.refs, -1) == 0 && r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

// maxRows bounds array lengths and offsets before any arithmetic on them.
const maxRows = 1 << 40

// supportedType reports whether validateData can check arrays of type t.
func supportedType(t arrow.DataType, depth int) error {
	if depth > 32 {
		return errors.New("nesting too deep")
	}
	switch t := t.(type) {
	case *arrow.NullType, *arrow.StringType, *arrow.BinaryType, *arrow.LargeStringType, *arrow.LargeBinaryType:
		return nil
	case *arrow.ListType:
		return supportedType(t.Elem(), depth+1)
	case *arrow.LargeListType:
		return supportedType(t.Elem(), depth+1)
	case *arrow.FixedSizeListType:
		return supportedType(t.Elem(), depth+1)
	case *arrow.StructType:
		for _, f := range t.Fields() {
			if err := supportedType(f.Type, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *arrow.DictionaryType, *arrow.MapType:
		return fmt.Errorf("unsupported type %s", t)
	case arrow.FixedWidthDataType:
		if t.BitWidth() <= 0 {
			return fmt.Errorf("unsupported type %s", t)
		}
		return nil
	}
	return fmt.Errorf("unsupported type %s", t)
}

// validateRecord checks every column of rec with validateData.
func validateRecord(rec arrow.Record) error {
	rows := rec.NumRows()
	if rows < 0 || rows > maxRows {
		return fmt.Errorf("%d rows", rows)
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rows {
			return fmt.Errorf("column %d has %d rows, want %d", i, col.Len(), rows)
		}
		if err := validateData(col.Data(), 0); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

// validateData checks that every buffer of d is large enough for its length
// and offset and that variable-size offsets are in bounds and do not
// decrease, so that reading any element cannot go out of range.
func validateData(d arrow.ArrayData, depth int) error {
	if depth > 32 {
		return errors.New("nesting too deep")
	}
	n, off := int64(d.Len()), int64(d.Offset())
	if n < 0 || off < 0 || n > maxRows || off > maxRows {
		return fmt.Errorf("length %d, offset %d", n, off)
	}
	end := off + n
	bufs := d.Buffers()
	need := func(i int, nbytes int64) error {
		if nbytes == 0 {
			return nil
		}
		if i >= len(bufs) || bufs[i] == nil || int64(bufs[i].Len()) < nbytes {
			have := 0
			if i < len(bufs) && bufs[i] != nil {
				have = bufs[i].Len()
			}
			return fmt.Errorf("buffer %d has %d bytes, want %d", i, have, nbytes)
		}
		return nil
	}
	if _, ok := d.DataType().(*arrow.NullType); ok {
		return nil
	}
	nulls := int64(d.NullN())
	if nulls < 0 || nulls > n {
		return fmt.Errorf("%d nulls in %d values", nulls, n)
	}
	if len(bufs) > 0 && bufs[0] != nil && bufs[0].Len() > 0 {
		if err := need(0, (end+7)/8); err != nil {
			return fmt.Errorf("validity bitmap: %w", err)
		}
		if set := int64(bitutil.CountSetBits(bufs[0].Bytes(), int(off), int(n))); n-set != nulls {
			return fmt.Errorf("null count %d, validity bitmap has %d", nulls, n-set)
		}
	} else if nulls > 0 {
		return fmt.Errorf("%d nulls without a validity bitmap", nulls)
	}
	children := d.Children()
	switch t := d.DataType().(type) {
	case *arrow.StringType, *arrow.BinaryType:
		if n == 0 {
			return nil
		}
		if err := need(1, (end+1)*4); err != nil {
			return err
		}
		offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[off : end+1]
		return checkOffsets32(offs, bufLen(bufs, 2))
	case *arrow.LargeStringType, *arrow.LargeBinaryType:
		if n == 0 {
			return nil
		}
		if err := need(1, (end+1)*8); err != nil {
			return err
		}
		offs := arrow.Int64Traits.CastFromBytes(bufs[1].Bytes())[off : end+1]
		return checkOffsets64(offs, bufLen(bufs, 2))
	case *arrow.ListType, *arrow.LargeListType:
		if len(children) != 1 {
			return fmt.Errorf("list with %d children", len(children))
		}
		if err := validateData(children[0], depth+1); err != nil {
			return fmt.Errorf("list values: %w", err)
		}
		if n == 0 {
			return nil
		}
		if _, ok := t.(*arrow.ListType); ok {
			if err := need(1, (end+1)*4); err != nil {
				return err
			}
			return checkOffsets32(arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[off:end+1], int64(children[0].Len()))
		}
		if err := need(1, (end+1)*8); err != nil {
			return err
		}
		return checkOffsets64(arrow.Int64Traits.CastFromBytes(bufs[1].Bytes())[off:end+1], int64(children[0].Len()))
	case *arrow.FixedSizeListType:
		if len(children) != 1 {
			return fmt.Errorf("list with %d children", len(children))
		}
		if size := int64(t.Len()); size < 0 || int64(children[0].Len()) < end*size {
			return fmt.Errorf("fixed-size list of %d rows of %d needs %d values, has %d", end, size, end*size, children[0].Len())
		}
		return validateData(children[0], depth+1)
	case *arrow.StructType:
		if len(children) != t.NumFields() {
			return fmt.Errorf("struct with %d children, want %d", len(children), t.NumFields())
		}
		for i, c := range children {
			if int64(c.Len()) < end {
				return fmt.Errorf("struct field %d has %d rows, want %d", i, c.Len(), end)
			}
			if err := validateData(c, depth+1); err != nil {
				return fmt.Errorf("struct field %d: %w", i, err)
			}
		}
		return nil
	case *arrow.DictionaryType, *arrow.MapType:
		return fmt.Errorf("unsupported type %s", t)
	case arrow.FixedWidthDataType:
		bw := int64(t.BitWidth())
		if bw <= 0 || bw > 1<<16 {
			return fmt.Errorf("unsupported type %s", t)
		}
		return need(1, (end*bw+7)/8)
	}
	return fmt.Errorf("unsupported type %s", d.DataType())
}

func bufLen(bufs []*memory.Buffer, i int) int64 {
	if i >= len(bufs) || bufs[i] == nil {
		return 0
	}
	return int64(bufs[i].Len())
}

func checkOffsets32(offs []int32, limit int64) error {
	prev := offs[0]
	if prev < 0 {
		return fmt.Errorf("negative offset %d", prev)
	}
	for _, o := range offs[1:] {
		if o < prev {
			return fmt.Errorf("offsets decrease from %d to %d", prev, o)
		}
		prev = o
	}
	if int64(prev) > limit {
		return fmt.Errorf("offset %d beyond %d values", prev, limit)
	}
	return nil
}

func checkOffsets64(offs []int64, limit int64) error {
	prev := offs[0]
	if prev < 0 {
		return fmt.Errorf("negative offset %d", prev)
	}
	for _, o := range offs[1:] {
		if o < prev {
			return fmt.Errorf("offsets decrease from %d to %d", prev, o)
		}
		prev = o
	}
	if prev > limit || prev > math.MaxInt {
		return fmt.Errorf("offset %d beyond %d values", prev, limit)
	}
	return nil
}
