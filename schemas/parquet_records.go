package schemas

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// ExtraKey returns a key that two records share when they have the same
// extra columns (names, types and nullability, in order; see ExtraIndices
// for the record's kind), and "" when rec has none. Records of one key can
// go into one WriteParquetRecords file.
func ExtraKey(rec arrow.Record) string {
	k, _, err := KindOf(rec.Schema())
	if err != nil || !carriesExtras(k) {
		return ""
	}
	idx := ExtraIndices(rec.Schema(), k)
	if idx == nil {
		return ""
	}
	var b strings.Builder
	for _, i := range idx {
		f := rec.Schema().Field(i)
		fmt.Fprintf(&b, "%q:%s:%t;", f.Name, f.Type, f.Nullable)
	}
	return b.String()
}

// WriteParquetRecords writes the documents of recs — records of any kind
// that has the document columns (Document, Features, Routed) — to w as one
// zstd-compressed Parquet file: the columns id, text and meta (optional) of
// DocumentRow, then the extra columns of the records, with their names and
// types (see ExtraTypeSupported: a list is a Parquet LIST; a nullable column
// or element is optional). Every record must have the same extra columns
// (ExtraKey). Without extra columns the file is the one WriteParquetDocuments
// writes for the same documents. OpenInput reads either back, the extra
// columns into Meta as it does any column but id and text.
func WriteParquetRecords(w io.Writer, recs []arrow.Record) error {
	key := ""
	for i, rec := range recs {
		k := ExtraKey(rec)
		if i > 0 && k != key {
			return fmt.Errorf("schemas: write parquet records: record %d has other extra columns than record 0", i)
		}
		key = k
	}
	if key == "" {
		var docs []Document
		for _, rec := range recs {
			c, err := Documents(rec)
			if err != nil {
				return fmt.Errorf("schemas: write parquet records: %w", err)
			}
			for i := range c.Len() {
				docs = append(docs, c.Doc(i))
			}
		}
		return WriteParquetDocuments(w, docs)
	}
	return writeParquetColumns(w, recs, nil)
}

// MetaShard is the Parquet key-value metadata key of an archive shard
// (WriteParquetShard); its value is the kind of the records it holds.
const MetaShard = MetaPrefix + "shard"

// WriteParquetShard writes recs as WriteParquetRecords does, with the
// columns that say where each document has been after meta: origin_topic,
// origin_partition, origin_offset and origin_row, and when every record is
// Routed also domain, distance and router_version; then the extra columns.
// The file's key-value metadata MetaShard holds the records' kind. OpenInput
// reads a shard back as documents without those columns in Meta: a replayed
// document gets new origins.
func WriteParquetShard(w io.Writer, recs []arrow.Record) error {
	carried := []string{ColOriginTopic, ColOriginPartition, ColOriginOffset, ColOriginRow}
	kind := KindDocument
	if len(recs) > 0 {
		kind, _, _ = KindOf(recs[0].Schema())
	}
	for _, rec := range recs {
		if k, _, _ := KindOf(rec.Schema()); k != kind {
			kind = KindDocument // mixed kinds: the columns all of them have
		}
	}
	if kind == KindRouted {
		carried = append(carried, ColDomain, ColDistance, ColRouterVersion)
	}
	for i, rec := range recs {
		if i > 0 && ExtraKey(rec) != ExtraKey(recs[0]) {
			return fmt.Errorf("schemas: write parquet shard: record %d has other extra columns than record 0", i)
		}
	}
	return writeParquetColumns(w, recs, carried, parquet.KeyValueMetadata(MetaShard, string(kind)))
}

// writeParquetColumns writes recs, which all have the same extra columns:
// id, text, meta, the columns named in carried (of each record's kind),
// then the extra columns.
func writeParquetColumns(w io.Writer, recs []arrow.Record, carried []string, opts ...parquet.WriterOption) error {
	if len(recs) == 0 {
		return WriteParquetDocuments(w, nil)
	}
	s0 := recs[0].Schema()
	root := orderedGroup{
		{parquet.String(), ColID},
		{parquet.String(), ColText},
		{parquet.Optional(parquet.String()), ColMeta},
	}
	// indices returns the columns of rec written after meta, in order.
	indices := func(rec arrow.Record) ([]int, error) {
		s := rec.Schema()
		var idx []int
		for _, name := range carried {
			is := s.FieldIndices(name)
			if len(is) != 1 {
				return nil, fmt.Errorf("no column %q", name)
			}
			idx = append(idx, is[0])
		}
		kr, _, _ := KindOf(s)
		return append(idx, ExtraIndices(s, kr)...), nil
	}
	idx0, err := indices(recs[0])
	if err != nil {
		return fmt.Errorf("schemas: write parquet records: %w", err)
	}
	var emit []emitFunc
	for j, i := range idx0 {
		f := s0.Field(i)
		node, e, err := parquetColumn(f.Type, f.Nullable, 3+j, 0, 0) // after id, text, meta
		if err != nil {
			return fmt.Errorf("schemas: write parquet records: column %q: %w", f.Name, err)
		}
		root = append(root, namedNode{node, f.Name})
		emit = append(emit, e)
	}
	pw := parquet.NewWriter(w, ParquetWriterOptions(append([]parquet.WriterOption{parquet.NewSchema("DocumentRow", root)}, opts...)...)...)
	const batch = 1024
	rows := make([]parquet.Row, 0, batch)
	flush := func() error {
		if _, err := pw.WriteRows(rows); err != nil {
			return err
		}
		rows = rows[:0]
		return nil
	}
	for _, rec := range recs {
		docs, err := Documents(rec)
		if err != nil {
			pw.Close()
			return fmt.Errorf("schemas: write parquet records: %w", err)
		}
		idx, err := indices(rec)
		if err != nil {
			pw.Close()
			return fmt.Errorf("schemas: write parquet records: %w", err)
		}
		cols := make([]arrow.Array, len(idx))
		for j, i := range idx {
			cols[j] = rec.Column(i)
		}
		for i := range docs.Len() {
			d := docs.Doc(i)
			row := make(parquet.Row, 0, len(root))
			row = append(row,
				parquet.ByteArrayValue([]byte(d.ID)).Level(0, 0, 0),
				parquet.ByteArrayValue([]byte(d.Text)).Level(0, 0, 1))
			if len(d.Meta) == 0 {
				row = append(row, parquet.NullValue().Level(0, 0, 2))
			} else {
				row = append(row, parquet.ByteArrayValue(d.Meta).Level(0, 1, 2))
			}
			for j, e := range emit {
				row = e(row, cols[j], i, 0)
			}
			rows = append(rows, row)
			if len(rows) == batch {
				if err := flush(); err != nil {
					pw.Close()
					return fmt.Errorf("schemas: write parquet records: %w", err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		pw.Close()
		return fmt.Errorf("schemas: write parquet records: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("schemas: write parquet records: %w", err)
	}
	return nil
}

// emitFunc appends to row the Parquet values of element i of a, the first
// at repetition level rep.
type emitFunc func(row parquet.Row, a arrow.Array, i, rep int) parquet.Row

// parquetColumn returns the Parquet node of an Arrow column of type t
// (nullable or not) that is leaf column col, whose ancestors hold depth
// repeated and def optional-or-repeated levels, and the function that emits
// its values.
func parquetColumn(t arrow.DataType, nullable bool, col, depth, def int) (parquet.Node, emitFunc, error) {
	if nullable {
		def++
	}
	opt := func(n parquet.Node) parquet.Node {
		if nullable {
			return parquet.Optional(n)
		}
		return n
	}
	// null emits a null at this node's level when a[i] is null.
	null := func(row parquet.Row, a arrow.Array, i, rep int) (parquet.Row, bool) {
		if nullable && a.IsNull(i) {
			return append(row, parquet.NullValue().Level(rep, def-1, col)), true
		}
		return row, false
	}
	leaf := func(node parquet.Node, value func(a arrow.Array, i int) parquet.Value) (parquet.Node, emitFunc, error) {
		return opt(node), func(row parquet.Row, a arrow.Array, i, rep int) parquet.Row {
			if row, ok := null(row, a, i, rep); ok {
				return row
			}
			return append(row, value(a, i).Level(rep, def, col))
		}, nil
	}
	switch t.ID() {
	case arrow.BOOL:
		return leaf(parquet.Leaf(parquet.BooleanType), func(a arrow.Array, i int) parquet.Value {
			return parquet.BooleanValue(a.(*array.Boolean).Value(i))
		})
	case arrow.INT8:
		return leaf(parquet.Int(8), func(a arrow.Array, i int) parquet.Value { return parquet.Int32Value(int32(a.(*array.Int8).Value(i))) })
	case arrow.INT16:
		return leaf(parquet.Int(16), func(a arrow.Array, i int) parquet.Value { return parquet.Int32Value(int32(a.(*array.Int16).Value(i))) })
	case arrow.INT32:
		return leaf(parquet.Int(32), func(a arrow.Array, i int) parquet.Value { return parquet.Int32Value(a.(*array.Int32).Value(i)) })
	case arrow.INT64:
		return leaf(parquet.Int(64), func(a arrow.Array, i int) parquet.Value { return parquet.Int64Value(a.(*array.Int64).Value(i)) })
	case arrow.UINT8:
		return leaf(parquet.Uint(8), func(a arrow.Array, i int) parquet.Value { return parquet.Int32Value(int32(a.(*array.Uint8).Value(i))) })
	case arrow.UINT16:
		return leaf(parquet.Uint(16), func(a arrow.Array, i int) parquet.Value { return parquet.Int32Value(int32(a.(*array.Uint16).Value(i))) })
	case arrow.UINT32:
		return leaf(parquet.Uint(32), func(a arrow.Array, i int) parquet.Value {
			return parquet.Int32Value(int32(a.(*array.Uint32).Value(i)))
		})
	case arrow.UINT64:
		return leaf(parquet.Uint(64), func(a arrow.Array, i int) parquet.Value {
			return parquet.Int64Value(int64(a.(*array.Uint64).Value(i)))
		})
	case arrow.FLOAT32:
		return leaf(parquet.Leaf(parquet.FloatType), func(a arrow.Array, i int) parquet.Value { return parquet.FloatValue(a.(*array.Float32).Value(i)) })
	case arrow.FLOAT64:
		return leaf(parquet.Leaf(parquet.DoubleType), func(a arrow.Array, i int) parquet.Value { return parquet.DoubleValue(a.(*array.Float64).Value(i)) })
	case arrow.STRING:
		return leaf(parquet.String(), func(a arrow.Array, i int) parquet.Value {
			return parquet.ByteArrayValue([]byte(a.(*array.String).Value(i)))
		})
	case arrow.LARGE_STRING:
		return leaf(parquet.String(), func(a arrow.Array, i int) parquet.Value {
			return parquet.ByteArrayValue([]byte(a.(*array.LargeString).Value(i)))
		})
	case arrow.BINARY:
		return leaf(parquet.Leaf(parquet.ByteArrayType), func(a arrow.Array, i int) parquet.Value { return parquet.ByteArrayValue(a.(*array.Binary).Value(i)) })
	case arrow.LARGE_BINARY:
		return leaf(parquet.Leaf(parquet.ByteArrayType), func(a arrow.Array, i int) parquet.Value {
			return parquet.ByteArrayValue(a.(*array.LargeBinary).Value(i))
		})
	case arrow.LIST, arrow.LARGE_LIST:
		if depth >= 8 {
			return nil, nil, fmt.Errorf("lists nested deeper than 8")
		}
		ef := t.(arrow.ListLikeType).ElemField()
		// The LIST group (def), its repeated group (def+1), the element.
		elem, emitElem, err := parquetColumn(ef.Type, ef.Nullable, col, depth+1, def+1)
		if err != nil {
			return nil, nil, err
		}
		listDef, elemRep := def, depth+1
		return opt(parquet.List(elem)), func(row parquet.Row, a arrow.Array, i, rep int) parquet.Row {
			if row, ok := null(row, a, i, rep); ok {
				return row
			}
			l := a.(array.ListLike)
			lo, hi := l.ValueOffsets(i)
			if lo == hi {
				return append(row, parquet.NullValue().Level(rep, listDef, col))
			}
			values := l.ListValues()
			for j := lo; j < hi; j++ {
				row = emitElem(row, values, int(j), rep)
				rep = elemRep
			}
			return row
		}, nil
	}
	return nil, nil, fmt.Errorf("type %s has no Parquet form here (see ExtraTypeSupported)", t)
}

// orderedGroup is a Parquet group whose fields keep their order
// (parquet.Group sorts them by name).
type orderedGroup []namedNode

// namedNode is a field of an orderedGroup.
type namedNode struct {
	parquet.Node
	name string
}

func (f namedNode) Name() string { return f.name }

func (f namedNode) Value(base reflect.Value) reflect.Value {
	return base.MapIndex(reflect.ValueOf(f.name))
}

func (g orderedGroup) ID() int { return 0 }

func (g orderedGroup) String() string {
	var b strings.Builder
	b.WriteString("message DocumentRow {")
	for _, f := range g {
		fmt.Fprintf(&b, " %s %s;", f.name, f.Node)
	}
	b.WriteString(" }")
	return b.String()
}

func (g orderedGroup) Type() parquet.Type { return parquet.Group{}.Type() }

func (g orderedGroup) Optional() bool { return false }

func (g orderedGroup) Repeated() bool { return false }

func (g orderedGroup) Required() bool { return true }

func (g orderedGroup) Leaf() bool { return false }

func (g orderedGroup) Fields() []parquet.Field {
	fs := make([]parquet.Field, len(g))
	for i := range g {
		fs[i] = g[i]
	}
	return fs
}

func (g orderedGroup) Encoding() encoding.Encoding { return nil }

func (g orderedGroup) Compression() compress.Codec { return nil }

func (g orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }
