package ingest

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Arrow batches (Config.Arrow). The documents of one input are grouped by
// the partition their id as key would go to (pipeline.KeyPartition, the
// murmur2 partitioning of JSON messages), so every document lands on the
// partition it would have as a JSON message, in the same order within it.
// A partition's batch is sent when it reaches batchRows rows or about
// batchBytes bytes, at the end of each input (each input has its own extra
// columns), and before the pacer of Config.Rate waits.
const (
	batchRows  = 1000
	batchBytes = 1 << 20
)

// batcher builds the Arrow Document batches of one input, one builder per
// partition of the topic.
type batcher struct {
	p      *producer
	topic  string
	n      int           // partitions of topic
	fields []arrow.Field // the input's typed extra columns
	parts  []*partBatch  // by partition, nil until used
	mem    memory.Allocator
}

// partBatch is the batch being built for one partition.
type partBatch struct {
	b         *schemas.DocumentBuilder
	textBytes int
	origin    string
	pos       []string // the line or row number of each row
}

func newBatcher(p *producer, topic string, n int) *batcher {
	return &batcher{p: p, topic: topic, n: max(n, 1), mem: memory.DefaultAllocator}
}

// start begins an input whose typed extra columns are fields, after the
// batches of the previous one are sent.
func (bt *batcher) start(fields []arrow.Field) {
	bt.flush()
	bt.fields = fields
}

// add queues document d, with the values of its extra columns, read from
// origin at pos. Its error (a value that does not fit its column) leaves
// nothing queued.
func (bt *batcher) add(d schemas.Document, extra []any, origin, pos string) error {
	part := pipeline.KeyPartition([]byte(d.ID), bt.n)
	if bt.parts == nil {
		bt.parts = make([]*partBatch, bt.n)
	}
	pb := bt.parts[part]
	size := len(d.ID) + len(d.Text) + len(d.Meta) + 16 + 8*len(extra)
	if pb != nil && pb.b.Len() > 0 && pb.b.Bytes()+size > batchBytes {
		bt.send(part)
	}
	if pb == nil {
		b, err := schemas.NewExtraDocumentBuilder(bt.mem, bt.fields)
		if err != nil {
			return err
		}
		pb = &partBatch{b: b}
		bt.parts[part] = pb
	}
	if err := pb.b.AppendExtra(d, schemas.Origin{}, extra); err != nil {
		return err
	}
	pb.textBytes += len(d.Text)
	pb.origin = origin
	pb.pos = append(pb.pos, pos)
	if pb.b.Len() >= batchRows || pb.b.Bytes() >= batchBytes {
		bt.send(part)
	}
	return nil
}

// send queues the batch of partition part on the producer.
func (bt *batcher) send(part int) {
	pb := bt.parts[part]
	if pb == nil || pb.b.Len() == 0 {
		return
	}
	rec := pb.b.NewRecord()
	defer rec.Release()
	payload, err := schemas.EncodeRecord(rec)
	if err != nil { // our own builder's record: a bug
		panic(fmt.Sprintf("ingest: encode a batch: %v", err))
	}
	bt.p.addDoc(pipeline.Message{
		Topic:     bt.topic,
		Partition: part,
		Value:     payload,
		Headers:   batchHeaders,
	}, docData{textBytes: pb.textBytes, rows: len(pb.pos), origin: pb.origin, pos: pb.pos[0], rowPos: pb.pos})
	pb.textBytes, pb.pos = 0, nil
}

// flush sends every partition's batch and releases the builders (the next
// input may have other columns).
func (bt *batcher) flush() {
	for part, pb := range bt.parts {
		if pb == nil {
			continue
		}
		bt.send(part)
		pb.b.Release()
		bt.parts[part] = nil
	}
}

// sendAll sends every partition's batch, keeping the builders.
func (bt *batcher) sendAll() {
	for part := range bt.parts {
		bt.send(part)
	}
}

// batchHeaders are the headers of every Arrow batch.
var batchHeaders = pipeline.ContentHeaders(schemas.ContentTypeArrow)
