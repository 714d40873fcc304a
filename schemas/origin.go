package schemas

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// StampOrigins returns rec with its origin columns replaced by the place its
// rows were read from: every row gets origin topic and partition, origin
// offset offset (the Kafka message that carried rec) and origin row firstRow
// plus its row number in rec (a message that holds several records numbers
// its rows across them). The other columns are shared with rec, not copied. rec must
// have the document columns (any Document, Features or Routed record).
//
// Origins are what the duplicate filters and the exactly-once training
// consumers key on, so they are never believed from the input: the first
// stage to read a record from an ingress topic stamps it.
func StampOrigins(rec arrow.Record, topic string, partition int32, offset int64, firstRow int32, mem memory.Allocator) (arrow.Record, error) {
	if _, err := Documents(rec); err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	s := rec.Schema()
	n := int(rec.NumRows())
	if int64(firstRow)+int64(n) > 1<<31-1 {
		return nil, fmt.Errorf("schemas: stamp origins: %d rows do not fit an int32 row number", n)
	}
	tb := array.NewStringBuilder(mem)
	defer tb.Release()
	pb := array.NewInt32Builder(mem)
	defer pb.Release()
	ob := array.NewInt64Builder(mem)
	defer ob.Release()
	rb := array.NewInt32Builder(mem)
	defer rb.Release()
	tb.Reserve(n)
	tb.ReserveData(n * len(topic))
	pb.Reserve(n)
	ob.Reserve(n)
	rb.Reserve(n)
	for i := range n {
		tb.Append(topic)
		pb.Append(partition)
		ob.Append(offset)
		rb.Append(firstRow + int32(i))
	}
	stamped := map[string]arrow.Array{
		ColOriginTopic:     tb.NewArray(),
		ColOriginPartition: pb.NewArray(),
		ColOriginOffset:    ob.NewArray(),
		ColOriginRow:       rb.NewArray(),
	}
	defer func() {
		for _, a := range stamped {
			a.Release()
		}
	}()
	cols := make([]arrow.Array, s.NumFields())
	for i, f := range s.Fields() {
		if a, ok := stamped[f.Name]; ok {
			cols[i] = a
		} else {
			cols[i] = rec.Column(i)
		}
	}
	return array.NewRecord(s, cols, int64(n)), nil
}
