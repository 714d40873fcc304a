package schemas

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// DocumentBuilder builds records of DocumentSchema, one row per Append.
// It is not safe for concurrent use.
type DocumentBuilder struct {
	rb    *array.RecordBuilder
	bytes int
}

// NewDocumentBuilder returns a builder that allocates from mem (nil means
// memory.DefaultAllocator). Release it when done.
func NewDocumentBuilder(mem memory.Allocator) *DocumentBuilder {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &DocumentBuilder{rb: array.NewRecordBuilder(mem, documentSchema)}
}

// Append adds d, read from o, as one row. An empty Meta is written as null.
func (b *DocumentBuilder) Append(d Document, o Origin) {
	AppendDocument(b.rb, d, o)
	b.bytes += rowBytes(d, o)
}

// Len returns the number of rows appended since the last NewRecord.
func (b *DocumentBuilder) Len() int { return b.rb.Field(0).Len() }

// Bytes returns about how many payload bytes the rows appended since the last
// NewRecord take (text, id, meta, topic and 16 bytes of fixed-size columns
// per row), for capping micro-batches by size.
func (b *DocumentBuilder) Bytes() int { return b.bytes }

// NewRecord returns the rows appended so far as a record and resets the
// builder. The caller releases the record.
func (b *DocumentBuilder) NewRecord() arrow.Record {
	b.bytes = 0
	return b.rb.NewRecord()
}

// Release releases the builder's memory.
func (b *DocumentBuilder) Release() { b.rb.Release() }

func rowBytes(d Document, o Origin) int {
	return len(d.ID) + len(d.Text) + len(d.Meta) + len(o.Topic) + 16
}

// AppendDocument appends d and o to the first NumDocumentColumns fields of rb,
// whose schema must start with the document columns (DocumentSchema,
// FeaturesSchema, RoutedSchema); the caller appends the remaining fields. It
// panics if rb has another layout, which is a programming error.
func AppendDocument(rb *array.RecordBuilder, d Document, o Origin) {
	rb.Field(0).(*array.StringBuilder).Append(d.ID)
	rb.Field(1).(*array.StringBuilder).Append(d.Text)
	meta := rb.Field(2).(*array.StringBuilder)
	if len(d.Meta) == 0 {
		meta.AppendNull()
	} else {
		meta.BinaryBuilder.Append(d.Meta)
	}
	rb.Field(3).(*array.StringBuilder).Append(o.Topic)
	rb.Field(4).(*array.Int32Builder).Append(o.Partition)
	rb.Field(5).(*array.Int64Builder).Append(o.Offset)
	rb.Field(6).(*array.Int32Builder).Append(o.Row)
}

// DocumentColumns is a read-only view of the document columns of a record.
// Its strings and Meta slices point into the record's buffers: they are valid
// while the record is retained and must not be modified (strings.Clone or
// copy them to keep them longer).
type DocumentColumns struct {
	n                     int
	id, text, meta, topic *array.String
	partition, row        *array.Int32
	offset                *array.Int64
}

// Documents returns a view of the document columns of rec, found by name, so
// any record that has them (Document, Features or Routed kinds) can be read.
// A missing column or one of the wrong type is a *DecodeError with
// ReasonWrongSchema.
func Documents(rec arrow.Record) (*DocumentColumns, error) {
	s := rec.Schema()
	if err := checkFields(s, documentFields()); err != nil {
		return nil, fmt.Errorf("schemas: document columns: %w", err)
	}
	col := func(name string) arrow.Array { return rec.Column(s.FieldIndices(name)[0]) }
	c := &DocumentColumns{n: int(rec.NumRows())}
	var ok [7]bool
	c.id, ok[0] = col(ColID).(*array.String)
	c.text, ok[1] = col(ColText).(*array.String)
	c.meta, ok[2] = col(ColMeta).(*array.String)
	c.topic, ok[3] = col(ColOriginTopic).(*array.String)
	c.partition, ok[4] = col(ColOriginPartition).(*array.Int32)
	c.offset, ok[5] = col(ColOriginOffset).(*array.Int64)
	c.row, ok[6] = col(ColOriginRow).(*array.Int32)
	for i, good := range ok {
		if !good {
			return nil, errorf(ReasonWrongSchema, "schemas: document columns: column %d has an unexpected array type", i)
		}
	}
	for _, a := range []arrow.Array{c.id, c.text, c.meta, c.topic, c.partition, c.offset, c.row} {
		if a.Len() != c.n {
			return nil, errorf(ReasonMalformedArrow, "schemas: document columns: column of %d rows in a record of %d", a.Len(), c.n)
		}
	}
	return c, nil
}

// Len returns the number of rows.
func (c *DocumentColumns) Len() int { return c.n }

// Doc returns row i as a Document. A null id or text reads as "", a null meta
// as nil.
func (c *DocumentColumns) Doc(i int) Document {
	d := Document{ID: c.id.Value(i), Text: c.text.Value(i)}
	if c.meta.IsValid(i) {
		d.Meta = stringBytes(c.meta, i)
	}
	return d
}

// ID returns the id of row i (cheaper than Doc(i).ID).
func (c *DocumentColumns) ID(i int) string { return c.id.Value(i) }

// Text returns the text of row i (cheaper than Doc(i).Text).
func (c *DocumentColumns) Text(i int) string { return c.text.Value(i) }

// Origin returns where row i came from.
func (c *DocumentColumns) Origin(i int) Origin {
	return Origin{
		Topic:     c.topic.Value(i),
		Partition: c.partition.Value(i),
		Offset:    c.offset.Value(i),
		Row:       c.row.Value(i),
	}
}

// stringBytes returns the bytes of a.Value(i) without copying them. The
// result is nil for an empty value.
func stringBytes(a *array.String, i int) json.RawMessage {
	offs := a.ValueOffsets()
	lo, hi := offs[i]-offs[0], offs[i+1]-offs[0]
	if lo == hi {
		return nil
	}
	b := a.ValueBytes()[lo:hi:hi]
	return b
}
