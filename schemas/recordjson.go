package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// WriteRecordJSON writes each row of rec to w as one JSON object followed by
// '\n': column name → value, in column order. Lists are arrays, structs are
// objects, binary is base64, floats are numbers (null for NaN and
// infinities), strings that are not valid UTF-8 have the bad bytes replaced
// by U+FFFD. It reports an error instead of panicking on a malformed record.
func WriteRecordJSON(w io.Writer, rec arrow.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("schemas: record to json: malformed record: %v", p)
		}
	}()
	names := make([][]byte, rec.NumCols())
	for i := range names {
		names[i] = appendJSONStringLossy(nil, rec.ColumnName(i))
	}
	var buf []byte
	cols := rec.Columns()
	for row := 0; row < int(rec.NumRows()); row++ {
		buf = append(buf, '{')
		for c, col := range cols {
			if c > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, names[c]...)
			buf = append(buf, ':')
			if buf, err = appendArrowJSON(buf, col, row); err != nil {
				return fmt.Errorf("schemas: record to json: row %d column %s: %w", row, names[c], err)
			}
		}
		buf = append(buf, '}', '\n')
		if len(buf) >= 64<<10 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("schemas: record to json: %w", err)
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("schemas: record to json: %w", err)
		}
	}
	return nil
}

// appendArrowJSON appends element i of a as a JSON value.
func appendArrowJSON(dst []byte, a arrow.Array, i int) ([]byte, error) {
	if a.IsNull(i) {
		return append(dst, "null"...), nil
	}
	switch a := a.(type) {
	case *array.Null:
		return append(dst, "null"...), nil
	case *array.Boolean:
		return strconv.AppendBool(dst, a.Value(i)), nil
	case *array.Int8:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.AppendInt(dst, a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.AppendUint(dst, a.Value(i), 10), nil
	case *array.Float16:
		return appendFloat(dst, float64(a.Value(i).Float32()), 32), nil
	case *array.Float32:
		return appendFloat(dst, float64(a.Value(i)), 32), nil
	case *array.Float64:
		return appendFloat(dst, a.Value(i), 64), nil
	case *array.String:
		return appendJSONStringLossy(dst, a.Value(i)), nil
	case *array.LargeString:
		return appendJSONStringLossy(dst, a.Value(i)), nil
	case *array.Binary:
		return appendBase64(dst, a.Value(i)), nil
	case *array.LargeBinary:
		return appendBase64(dst, a.Value(i)), nil
	case *array.FixedSizeBinary:
		return appendBase64(dst, a.Value(i)), nil
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		dst = append(dst, '{')
		for f := 0; f < a.NumField(); f++ {
			if f > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONStringLossy(dst, st.Field(f).Name)
			dst = append(dst, ':')
			var err error
			if dst, err = appendArrowJSON(dst, a.Field(f), i); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case array.ListLike:
		if _, isMap := a.(*array.Map); !isMap {
			start, end := a.ValueOffsets(i)
			vals := a.ListValues()
			dst = append(dst, '[')
			for j := start; j < end; j++ {
				if j > start {
					dst = append(dst, ',')
				}
				var err error
				if dst, err = appendArrowJSON(dst, vals, int(j)); err != nil {
					return dst, err
				}
			}
			return append(dst, ']'), nil
		}
	}
	b, err := json.Marshal(a.GetOneForMarshal(i))
	if err != nil {
		return dst, fmt.Errorf("%s value: %w", a.DataType(), err)
	}
	return append(dst, b...), nil
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSONStringLossy is appendJSONString for strings that may not be
// valid UTF-8: bad bytes become U+FFFD.
func appendJSONStringLossy(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return appendJSONString(dst, s)
}

// arrowFileMagic starts and ends an Arrow IPC file.
const arrowFileMagic = "ARROW1"

// WriteArrowFileJSON writes every row of an Arrow IPC file or stream (the
// format is detected) of size bytes read from r to w as JSON lines, like
// WriteRecordJSON. Any schema is accepted. The whole input is read into
// memory. A malformed input is a *DecodeError with ReasonMalformedArrow.
func WriteArrowFileJSON(w io.Writer, r io.ReaderAt, size int64) error {
	data, err := readAll(r, size)
	if err != nil {
		return fmt.Errorf("schemas: arrow to json: %w", err)
	}
	stream, trailing := data, false
	if bytes.HasPrefix(data, []byte(arrowFileMagic)) {
		// File format: magic, padding, a stream of messages, the footer, its
		// int32 length and the magic again. The messages are read in order;
		// the footer only indexes them.
		const head = 8
		tail := len(arrowFileMagic) + 4
		if len(data) < head+tail || string(data[len(data)-len(arrowFileMagic):]) != arrowFileMagic {
			return errorf(ReasonMalformedArrow, "schemas: arrow to json: truncated arrow file")
		}
		footer := int64(int32(binary.LittleEndian.Uint32(data[len(data)-tail:])))
		if footer < 0 || footer > int64(len(data)-head-tail) {
			return errorf(ReasonMalformedArrow, "schemas: arrow to json: footer of %d bytes in a file of %d", footer, len(data))
		}
		stream, trailing = data[head:len(data)-tail-int(footer)], true
	}
	recs, err := readStream(stream, memory.DefaultAllocator, false, trailing)
	if err != nil {
		return fmt.Errorf("schemas: arrow to json: %w", err)
	}
	defer releaseAll(recs)
	for _, rec := range recs {
		if err := WriteRecordJSON(w, rec); err != nil {
			return err
		}
	}
	return nil
}

// readAll reads size bytes from r.
func readAll(r io.ReaderAt, size int64) ([]byte, error) {
	if size < 0 || size > math.MaxInt32*64 {
		return nil, fmt.Errorf("bad size %d", size)
	}
	data := make([]byte, size)
	n, err := r.ReadAt(data, 0)
	if int64(n) == size {
		return data, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// WriteFileJSON writes every row of the Parquet file or Arrow IPC file or
// stream at path to w as JSON lines, detecting the format from the content
// (for `pipeline inspect FILE`).
func WriteFileJSON(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("schemas: inspect: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("schemas: inspect: %w", err)
	}
	var magic [6]byte
	n, _ := f.ReadAt(magic[:], 0)
	switch {
	case n >= 4 && string(magic[:4]) == "PAR1":
		return WriteParquetJSON(w, f, st.Size())
	case n == 6 && string(magic[:6]) == arrowFileMagic,
		n >= 4 && binary.LittleEndian.Uint32(magic[:4]) == ipcContinuation:
		return WriteArrowFileJSON(w, f, st.Size())
	}
	return fmt.Errorf("schemas: inspect %s: not a Parquet or Arrow file", path)
}
