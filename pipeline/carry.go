package pipeline

import (
	"bytes"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// Kafka keys and producer headers of JSON documents.
//
// A JSON document read from a message becomes a row of an Arrow batch, and
// a batch is one message on the topics after docs.raw: a row cannot keep its
// message's key and headers as Kafka metadata. When a message of a batch
// has a key other than its document's id, or headers its producer set
// (ProducerHeaders), the runner carries them as extra columns of the batch
// (see schemas: extra columns travel row for row through the featurization
// and routing stages onto docs.domain.<id> and into archive shards):
//
//   - kafka_key, binary, null for a message whose key was its id or absent;
//   - kafka_header_names, list<utf8>, and kafka_header_values, list<binary>,
//     the producer's headers in order.
//
// A batch whose messages were all keyed by their ids (as ingest and replay
// key them) and had no producer headers has none of these columns. A row
// dead-lettered by a later stage gets its key and headers back from them
// (the dead letter's key and headers).
//
// An Arrow Document batch produced to the input topic gets the same
// columns from its message when it has none of them and its message has a
// key or producer headers: every row of a message shares its key and
// headers (the key is null in a row whose id it is). A batch that has any of
// the three columns keeps its own.
const (
	ColKafkaKey          = "kafka_key"
	ColKafkaHeaderNames  = "kafka_header_names"
	ColKafkaHeaderValues = "kafka_header_values"
)

// kafkaCarry collects the keys and producer headers of the JSON documents
// of one batch, row for row.
type kafkaCarry struct {
	keys    [][]byte // nil: the key was the id, or none
	headers [][]kafka.Header
	any     bool // some row has a key or headers to carry
}

// add records the key and producer headers of the message of the document
// with id.
func (c *kafkaCarry) add(m kafka.Message, id string) {
	key := m.Key
	if bytes.Equal(key, []byte(id)) {
		key = nil
	}
	hs := ProducerHeaders(m)
	c.keys = append(c.keys, key)
	c.headers = append(c.headers, hs)
	c.any = c.any || key != nil || len(hs) > 0
}

func (c *kafkaCarry) reset() {
	c.keys, c.headers, c.any = c.keys[:0], c.headers[:0], false
}

// kafkaFields are the extra fields of the carried columns.
var kafkaFields = []arrow.Field{
	{Name: ColKafkaKey, Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: ColKafkaHeaderNames, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: ColKafkaHeaderValues, Type: arrow.ListOf(arrow.BinaryTypes.Binary), Nullable: true},
}

// apply returns rec, a Document record of the collected rows, with the
// carried columns appended after its own when some row has something to
// carry; rec itself otherwise. The returned record replaces rec, which it
// releases.
func (c *kafkaCarry) apply(rec arrow.Record, mem memory.Allocator) arrow.Record {
	if !c.any || int(rec.NumRows()) != len(c.keys) {
		return rec
	}
	s := rec.Schema()
	fields := append(append(make([]arrow.Field, 0, s.NumFields()+len(kafkaFields)), s.Fields()...), kafkaFields...)
	md := s.Metadata()
	schema := arrow.NewSchema(fields, &md)
	kb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer kb.Release()
	nb := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	defer nb.Release()
	vb := array.NewListBuilder(mem, arrow.BinaryTypes.Binary)
	defer vb.Release()
	names, values := nb.ValueBuilder().(*array.StringBuilder), vb.ValueBuilder().(*array.BinaryBuilder)
	for i, key := range c.keys {
		if key == nil {
			kb.AppendNull()
		} else {
			kb.Append(key)
		}
		if len(c.headers[i]) == 0 {
			nb.AppendNull()
			vb.AppendNull()
			continue
		}
		nb.Append(true)
		vb.Append(true)
		for _, h := range c.headers[i] {
			names.Append(h.Key)
			values.Append(h.Value)
		}
	}
	cols := append([]arrow.Array(nil), rec.Columns()...)
	k, n, v := kb.NewArray(), nb.NewArray(), vb.NewArray()
	defer k.Release()
	defer n.Release()
	defer v.Release()
	cols = append(cols, k, n, v)
	out := array.NewRecord(schema, cols, rec.NumRows())
	rec.Release()
	return out
}

// carryMessage returns rec, a record of Arrow message m, with the columns
// of kafkaFields holding m's key and producer headers on every row, when
// rec is a Document record that has none of those columns and m has a key
// or producer headers; rec itself otherwise. The returned record replaces
// rec, which it releases.
func carryMessage(rec arrow.Record, m kafka.Message, mem memory.Allocator) arrow.Record {
	if k, _, _ := schemas.KindOf(rec.Schema()); k != schemas.KindDocument {
		return rec
	}
	for _, f := range kafkaFields {
		if rec.Schema().HasField(f.Name) {
			return rec
		}
	}
	hs := ProducerHeaders(m)
	if len(m.Key) == 0 && len(hs) == 0 {
		return rec
	}
	docs, err := schemas.Documents(rec)
	if err != nil { // not a valid Document record: the stage will say so
		return rec
	}
	var c kafkaCarry
	for i := range docs.Len() {
		c.add(kafka.Message{Key: m.Key}, docs.ID(i))
		c.headers[i] = hs
		c.any = c.any || len(hs) > 0
	}
	return c.apply(rec, mem)
}

// carriedKafka returns the key and producer headers that row i of rec
// carries in the columns of kafkaFields (nil and nil when it has none).
func carriedKafka(rec arrow.Record, i int) (key []byte, headers []kafka.Header) {
	s := rec.Schema()
	col := func(name string) arrow.Array {
		if idx := s.FieldIndices(name); len(idx) == 1 {
			return rec.Column(idx[0])
		}
		return nil
	}
	if k, ok := col(ColKafkaKey).(*array.Binary); ok && k.IsValid(i) {
		key = bytes.Clone(k.Value(i))
	}
	names, ok1 := col(ColKafkaHeaderNames).(*array.List)
	values, ok2 := col(ColKafkaHeaderValues).(*array.List)
	if !ok1 || !ok2 || !names.IsValid(i) || !values.IsValid(i) {
		return key, nil
	}
	nv, ok1 := names.ListValues().(*array.String)
	vv, ok2 := values.ListValues().(*array.Binary)
	if !ok1 || !ok2 {
		return key, nil
	}
	lo, hi := names.ValueOffsets(i)
	vlo, vhi := values.ValueOffsets(i)
	if hi-lo != vhi-vlo {
		return key, nil
	}
	for j := range hi - lo {
		headers = append(headers, kafka.Header{Key: nv.Value(int(lo + j)), Value: bytes.Clone(vv.Value(int(vlo + j)))})
	}
	return key, headers
}
