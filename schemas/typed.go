package schemas

import (
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// Typed extra columns of input files.
//
// With Limits.TypedExtras, a Parquet input (OpenInput) gives the columns
// that are not its id, text or meta columns, and whose type an extra column
// can have, as typed values (InputRecord.Extra) instead of Meta members:
// top-level, non-repeated columns of Parquet type BOOLEAN (bool), INT32 and
// INT64 plain or with an INT annotation (int8 to int64, uint8 to uint64),
// FLOAT (float32), DOUBLE (float64), and BYTE_ARRAY with a STRING or ENUM
// annotation (utf8) or none (binary). The other columns (dates, times,
// timestamps, decimals, JSON, INT96, fixed-length byte arrays, lists,
// groups) and columns whose names are reserved (IsReservedColumn) stay in
// Meta as before. Every typed extra column is nullable. An archive shard's
// extra columns, which the archive wrote typed, come back typed. JSON lines
// and text files have no types: their fields stay in Meta.

// TypedInput is an InputReader whose records carry typed extra columns
// (InputRecord.Extra): the Parquet input of OpenInput, with
// Limits.TypedExtras. ExtraFields describes them, the same for every record
// of the input; it is nil when the input has none.
type TypedInput interface {
	InputReader
	ExtraFields() []arrow.Field
}

// parquetExtraType returns the Arrow type of Parquet column f as a typed
// extra column, and false when f stays in Meta.
func parquetExtraType(f parquet.Field) (arrow.DataType, bool) {
	if !f.Leaf() || f.Repeated() {
		return nil, false
	}
	t := f.Type()
	var lt format.LogicalTypeValue
	if l := t.LogicalType(); l != nil {
		lt = l.Value
	}
	var ct *deprecated.ConvertedType
	if c := t.ConvertedType(); c != nil {
		ct = c
	}
	intType := func(bits int, signed bool) arrow.DataType {
		switch {
		case signed && bits == 8:
			return arrow.PrimitiveTypes.Int8
		case signed && bits == 16:
			return arrow.PrimitiveTypes.Int16
		case signed && bits == 32:
			return arrow.PrimitiveTypes.Int32
		case signed && bits == 64:
			return arrow.PrimitiveTypes.Int64
		case bits == 8:
			return arrow.PrimitiveTypes.Uint8
		case bits == 16:
			return arrow.PrimitiveTypes.Uint16
		case bits == 32:
			return arrow.PrimitiveTypes.Uint32
		case bits == 64:
			return arrow.PrimitiveTypes.Uint64
		}
		return nil
	}
	switch t.Kind() {
	case parquet.Boolean:
		if lt == nil && ct == nil {
			return arrow.FixedWidthTypes.Boolean, true
		}
	case parquet.Int32, parquet.Int64:
		width := 32
		if t.Kind() == parquet.Int64 {
			width = 64
		}
		switch {
		case lt != nil:
			if it, ok := lt.(*format.IntType); ok {
				if dt := intType(int(it.BitWidth), it.IsSigned); dt != nil {
					return dt, true
				}
			}
		case ct != nil:
			switch *ct {
			case deprecated.Int8:
				return arrow.PrimitiveTypes.Int8, true
			case deprecated.Int16:
				return arrow.PrimitiveTypes.Int16, true
			case deprecated.Int32:
				return arrow.PrimitiveTypes.Int32, true
			case deprecated.Int64:
				return arrow.PrimitiveTypes.Int64, true
			case deprecated.Uint8:
				return arrow.PrimitiveTypes.Uint8, true
			case deprecated.Uint16:
				return arrow.PrimitiveTypes.Uint16, true
			case deprecated.Uint32:
				return arrow.PrimitiveTypes.Uint32, true
			case deprecated.Uint64:
				return arrow.PrimitiveTypes.Uint64, true
			}
		default:
			return intType(width, true), true
		}
	case parquet.Float:
		if lt == nil && ct == nil {
			return arrow.PrimitiveTypes.Float32, true
		}
	case parquet.Double:
		if lt == nil && ct == nil {
			return arrow.PrimitiveTypes.Float64, true
		}
	case parquet.ByteArray:
		switch lt.(type) {
		case *format.StringType, *format.EnumType:
			return arrow.BinaryTypes.String, true
		case nil:
			if ct == nil {
				return arrow.BinaryTypes.Binary, true
			}
			if *ct == deprecated.UTF8 || *ct == deprecated.Enum {
				return arrow.BinaryTypes.String, true
			}
		}
	}
	return nil, false
}

// extraValue returns v, a value of parquet-go's generic rows, as the value
// of an extra column of type dt: bool, int64 (signed integers), uint64
// (unsigned), float32, float64, string (utf8) or []byte (binary); nil for
// null, and false when v is not of a kind dt takes.
func extraValue(v any, dt arrow.DataType) (any, bool) {
	if v == nil {
		return nil, true
	}
	rv := reflect.ValueOf(v)
	switch dt.ID() {
	case arrow.BOOL:
		b, ok := v.(bool)
		return b, ok
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return rv.Int(), true
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return int64(rv.Uint()), true
		}
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		switch rv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return rv.Uint(), true
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return uint64(rv.Int()), true
		}
	case arrow.FLOAT32:
		f, ok := v.(float32)
		return f, ok
	case arrow.FLOAT64:
		f, ok := v.(float64)
		return f, ok
	case arrow.STRING:
		switch s := v.(type) {
		case string:
			return s, utf8.ValidString(s)
		case []byte:
			return string(s), utf8.Valid(s)
		}
	case arrow.BINARY:
		switch s := v.(type) {
		case string:
			return []byte(s), true
		case []byte:
			return s, true
		}
	}
	return nil, false
}

// NewExtraDocumentBuilder returns a DocumentBuilder whose records have the
// extra columns extra after the document columns (see Extend; its error is
// returned), filled by AppendExtra.
func NewExtraDocumentBuilder(mem memory.Allocator, extra []arrow.Field) (*DocumentBuilder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	schema, err := Extend(KindDocument, extra)
	if err != nil {
		return nil, err
	}
	return &DocumentBuilder{rb: array.NewRecordBuilder(mem, schema)}, nil
}

// AppendExtra adds d, read from o, with the values of its extra columns (in
// the order of the builder's extra fields, as InputRecord.Extra holds them:
// nil for null), as one row. A value of the wrong kind for its column, or
// a count of values other than the builder's extra columns, is an error and
// appends nothing.
func (b *DocumentBuilder) AppendExtra(d Document, o Origin, extra []any) error {
	fields := b.rb.Schema().Fields()[NumDocumentColumns:]
	if len(extra) != len(fields) {
		return fmt.Errorf("schemas: %d extra values for %d extra columns", len(extra), len(fields))
	}
	for i, v := range extra {
		if _, ok := extraValue(v, fields[i].Type); !ok {
			return fmt.Errorf("schemas: extra column %q: value of type %T for a column of type %s", fields[i].Name, v, fields[i].Type)
		}
	}
	AppendDocument(b.rb, d, o)
	n := rowBytes(d, o)
	for i, v := range extra {
		v, _ = extraValue(v, fields[i].Type)
		fb := b.rb.Field(NumDocumentColumns + i)
		if v == nil {
			fb.AppendNull()
			continue
		}
		switch fb := fb.(type) {
		case *array.BooleanBuilder:
			fb.Append(v.(bool))
		case *array.Int8Builder:
			fb.Append(int8(v.(int64)))
		case *array.Int16Builder:
			fb.Append(int16(v.(int64)))
		case *array.Int32Builder:
			fb.Append(int32(v.(int64)))
		case *array.Int64Builder:
			fb.Append(v.(int64))
		case *array.Uint8Builder:
			fb.Append(uint8(v.(uint64)))
		case *array.Uint16Builder:
			fb.Append(uint16(v.(uint64)))
		case *array.Uint32Builder:
			fb.Append(uint32(v.(uint64)))
		case *array.Uint64Builder:
			fb.Append(v.(uint64))
		case *array.Float32Builder:
			fb.Append(v.(float32))
		case *array.Float64Builder:
			fb.Append(v.(float64))
		case *array.StringBuilder:
			s := v.(string)
			fb.Append(s)
			n += len(s)
		case *array.BinaryBuilder:
			s := v.([]byte)
			fb.Append(s)
			n += len(s)
		default: // Extend and extraValue admit no other type
			panic("schemas: AppendExtra: unexpected builder")
		}
		n += 8
	}
	b.bytes += n
	return nil
}

// ExtraFields returns the extra columns of the builder's records.
func (b *DocumentBuilder) ExtraFields() []arrow.Field {
	return b.rb.Schema().Fields()[NumDocumentColumns:]
}
