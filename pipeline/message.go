package pipeline

import (
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// Message is one Kafka message as the pipeline reads and writes it. It is
// kafka-go's message type under our name, so that packages above pipeline
// build and read messages without importing the client: nothing outside
// this package imports kafka-go.
type Message = kafka.Message

// Header is one message header (see Message).
type Header = kafka.Header

// HeaderValue returns the value of m's first header named key ("" when m
// has none).
func HeaderValue(m Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ContentHeaders are the headers every payload of the pipeline carries: its
// content type (schemas.ContentTypeJSON or schemas.ContentTypeArrow) and the
// schema version it was written with.
func ContentHeaders(contentType string) []Header {
	return []Header{
		{Key: schemas.HeaderContentType, Value: []byte(contentType)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
	}
}

// Decoded is the content of one message: a JSON document, or the Arrow
// records of an IPC stream. Release it when done with the records.
type Decoded struct {
	// ContentType is schemas.ContentTypeJSON or schemas.ContentTypeArrow.
	ContentType string
	// Doc is the document of a JSON message.
	Doc schemas.Document
	// Records are the batches of an Arrow message; each has passed
	// schemas.KindOf (its kind metadata is known).
	Records []arrow.Record
}

// Release releases the records.
func (d *Decoded) Release() {
	for _, r := range d.Records {
		r.Release()
	}
	d.Records = nil
}

// Rows is the number of rows: 1 for a JSON document.
func (d *Decoded) Rows() int64 {
	if d.ContentType == schemas.ContentTypeJSON {
		return 1
	}
	var n int64
	for _, r := range d.Records {
		n += r.NumRows()
	}
	return n
}

// EachDocument calls fn with each document of the message in order, and
// the origin its row names: the zero Origin for a JSON document, whose
// origin is where it was read. It fails on records that are not documents
// (see schemas.Documents), and stops at fn's first error.
func (d *Decoded) EachDocument(fn func(doc schemas.Document, o schemas.Origin) error) error {
	if d.ContentType == schemas.ContentTypeJSON {
		return fn(d.Doc, schemas.Origin{})
	}
	for _, rec := range d.Records {
		docs, err := schemas.Documents(rec)
		if err != nil {
			return err
		}
		for i := range docs.Len() {
			if err := fn(docs.Doc(i), docs.Origin(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeMessage checks m's content headers against its value
// (schemas.CheckMessage) and decodes it: a JSON document within lim, or
// Arrow records allocated from mem (nil: the default allocator). Its errors
// are *schemas.DecodeError, whose reason names the dead letter.
func DecodeMessage(m Message, lim schemas.Limits, mem memory.Allocator) (*Decoded, error) {
	ct, err := schemas.CheckMessage(HeaderValue(m, schemas.HeaderContentType), HeaderValue(m, schemas.HeaderSchemaVersion), m.Value)
	if err != nil {
		return nil, err
	}
	if ct == schemas.ContentTypeJSON {
		doc, err := schemas.DecodeJSON(m.Value, lim)
		if err != nil {
			return nil, err
		}
		return &Decoded{ContentType: ct, Doc: doc}, nil
	}
	recs, err := schemas.DecodeRecords(m.Value, mem)
	if err != nil {
		return nil, err
	}
	return &Decoded{ContentType: ct, Records: recs}, nil
}

// DeadLetterInfo is what a dead letter's headers say (see DeadLetterSpec).
type DeadLetterInfo struct {
	Reason    schemas.Reason
	Err       string
	Stage     string
	Origin    schemas.Origin // Partition, Offset, Row are -1 when absent
	Truncated bool           // the value is a prefix of the rejected payload
}

// ParseDeadLetter reads the headers of dead letter m.
func ParseDeadLetter(m Message) DeadLetterInfo {
	num := func(key string) int64 {
		v, err := strconv.ParseInt(HeaderValue(m, key), 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
	return DeadLetterInfo{
		Reason: schemas.Reason(HeaderValue(m, HeaderReason)),
		Err:    HeaderValue(m, HeaderError),
		Stage:  HeaderValue(m, HeaderStage),
		Origin: schemas.Origin{Topic: HeaderValue(m, HeaderOriginTopic), Partition: int32(num(HeaderOriginPartition)),
			Offset: num(HeaderOriginOffset), Row: int32(num(HeaderOriginRow))},
		Truncated: HeaderValue(m, HeaderTruncated) != "",
	}
}

// partitionKey names a partition of a topic: "topic/partition".
func partitionKey(topic string, p int) string { return topic + "/" + strconv.Itoa(p) }
