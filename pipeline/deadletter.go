package pipeline

import (
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// Dead-letter headers. A dead letter's value is the original message payload
// (when the whole message was bad) or the row as a JSON document (when one row
// was rejected; a one-row Arrow Document batch when the row has extra
// columns, which it keeps: see deadRows); its headers say why and where it
// came from.
const (
	HeaderReason          = "deadletter-reason"
	HeaderError           = "deadletter-error"
	HeaderStage           = "deadletter-stage"
	HeaderOriginTopic     = "origin-topic"
	HeaderOriginPartition = "origin-partition"
	HeaderOriginOffset    = "origin-offset"
	HeaderOriginRow       = "origin-row"
	// HeaderTruncated is present when the value is only a prefix of the
	// rejected payload (see schemas.MaxDeadLetterValueBytes); it holds the
	// payload's length in bytes.
	HeaderTruncated = "deadletter-truncated"
)

// maxHeaderBytes caps the error text and the origin topic of a dead letter.
const maxHeaderBytes = 1 << 10

// maxCarriedHeaderBytes caps the producer headers a dead letter carries
// (names and values); the headers past it are left out.
const maxCarriedHeaderBytes = 16 << 10

// ProducerHeaders returns the headers of m that its producer set: all but
// the content headers and the dead-letter and origin headers of the
// pipeline, which a dead letter sets anew.
func ProducerHeaders(m kafka.Message) []kafka.Header {
	var out []kafka.Header
	for _, h := range m.Headers {
		switch h.Key {
		case schemas.HeaderContentType, schemas.HeaderSchemaVersion, HeaderReason, HeaderError, HeaderStage,
			HeaderOriginTopic, HeaderOriginPartition, HeaderOriginOffset, HeaderOriginRow, HeaderTruncated:
			continue
		}
		out = append(out, h)
	}
	return out
}

// DeadLetterSpec describes a dead letter; Message builds it. Every dead
// letter of the pipeline is built here, so that each one fits in a message:
// the value is cut to schemas.MaxDeadLetterValueBytes (HeaderTruncated then
// says how long it was), the key to schemas.MaxDeadLetterKeyBytes, the error
// and the origin topic to 1 KiB.
type DeadLetterSpec struct {
	Topic     string // the dead-letter topic
	Partition int    // the partition, for a Sink that keeps it (SamePartition)
	Key       []byte // the key of the rejected message, if any
	// Value is the rejected payload: the whole input message, or a row as
	// a JSON document.
	Value       []byte
	ContentType string // of Value; "" leaves the header out
	Reason      schemas.Reason
	Err         string // what went wrong, for people
	Stage       string // the stage (or command) that rejected it
	// The origin of the payload; an empty field leaves its header out.
	OriginTopic, OriginPartition, OriginOffset, OriginRow string
	// Headers are the producer's headers of the rejected message, carried
	// after ours (see ProducerHeaders), up to maxCarriedHeaderBytes in all.
	Headers []kafka.Header
	// WriterData is passed on to the message (see kafka.Message).
	WriterData any
}

// Message returns the dead letter.
func (s DeadLetterSpec) Message() kafka.Message {
	h := make([]kafka.Header, 0, 10)
	add := func(k, v string) {
		if v != "" {
			h = append(h, kafka.Header{Key: k, Value: []byte(v)})
		}
	}
	add(schemas.HeaderContentType, s.ContentType)
	add(HeaderReason, string(s.Reason))
	add(HeaderError, truncate(s.Err, maxHeaderBytes))
	add(HeaderStage, s.Stage)
	add(HeaderOriginTopic, truncate(s.OriginTopic, maxHeaderBytes))
	add(HeaderOriginPartition, s.OriginPartition)
	add(HeaderOriginOffset, s.OriginOffset)
	add(HeaderOriginRow, s.OriginRow)
	value := s.Value
	if value == nil {
		value = []byte{} // a nil value would be a tombstone
	}
	if len(value) > schemas.MaxDeadLetterValueBytes {
		add(HeaderTruncated, strconv.Itoa(len(value)))
		value = value[:prefixLen(value, schemas.MaxDeadLetterValueBytes)]
	}
	carried := 0
	for _, x := range s.Headers {
		if carried += len(x.Key) + len(x.Value); carried > maxCarriedHeaderBytes {
			break
		}
		h = append(h, x)
	}
	key := s.Key
	if len(key) > schemas.MaxDeadLetterKeyBytes {
		key = key[:prefixLen(key, schemas.MaxDeadLetterKeyBytes)]
	}
	return kafka.Message{Topic: s.Topic, Partition: s.Partition, Key: key, Value: value, Headers: h, WriterData: s.WriterData}
}

// ShrinkDeadLetter returns dead letter m with its value cut to a quarter, for
// a dead-letter topic whose size limit is below the pipeline's (the broker
// refused m alone); HeaderTruncated then holds the length of the original
// payload. It reports false when m's value is already empty.
func ShrinkDeadLetter(m kafka.Message) (kafka.Message, bool) {
	if len(m.Value) == 0 {
		return m, false
	}
	h := make([]kafka.Header, 0, len(m.Headers)+1)
	truncated := false
	for _, x := range m.Headers {
		truncated = truncated || x.Key == HeaderTruncated
		h = append(h, x)
	}
	if !truncated {
		h = append(h, kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(m.Value)))})
	}
	m.Headers = h
	m.Value = m.Value[:prefixLen(m.Value, len(m.Value)/4)]
	return m, true
}

// prefixLen is n, moved back to the start of a UTF-8 sequence when b[n]
// falls inside one (at most 3 bytes back), so a text value stays valid.
func prefixLen[T string | []byte](b T, n int) int {
	if n >= len(b) {
		return len(b)
	}
	for k := 0; k < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(b[n]); k++ {
		n--
	}
	return n
}

// deadMessage dead-letters a whole input message.
func (r *Runner) deadMessage(out []kafka.Message, m kafka.Message, err error, st *batchStats) []kafka.Message {
	st.addDead(schemas.ReasonOf(err))
	r.log.Debug("dead letter", "reason", schemas.ReasonOf(err), "err", err, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
	return append(out, DeadLetter(r.cfg.DeadLetterTopic, r.cfg.Name, m, err))
}

// DeadLetter returns the dead letter of a whole input message m rejected by
// stage with err: m's key and value (see DeadLetterSpec for the caps) on
// topic (same partition number), with the reason (schemas.ReasonOf(err)), the
// error, the stage and m's origin in headers, m's content type when it had
// one, and m's producer headers (ProducerHeaders).
func DeadLetter(topic, stage string, m kafka.Message, err error) kafka.Message {
	return DeadLetterSpec{
		Topic:           topic,
		Partition:       m.Partition,
		Key:             m.Key,
		Value:           m.Value,
		ContentType:     HeaderValue(m, schemas.HeaderContentType),
		Reason:          schemas.ReasonOf(err),
		Err:             err.Error(),
		Stage:           stage,
		OriginTopic:     m.Topic,
		OriginPartition: strconv.Itoa(m.Partition),
		OriginOffset:    strconv.FormatInt(m.Offset, 10),
		Headers:         ProducerHeaders(m),
	}.Message()
}

// deadRows dead-letters rows of rec, each as a JSON document, or, when rec
// has extra columns besides the carried Kafka key and headers, as a one-row
// Arrow Document batch that keeps them, typed (see rowRecord). A row's
// carried key and headers become the dead letter's.
func (r *Runner) deadRows(out []kafka.Message, partition int, rec arrow.Record, dead []DeadRow, st *batchStats) []kafka.Message {
	docs, derr := schemas.Documents(rec)
	for _, d := range dead {
		reason := d.Reason
		if reason == "" {
			reason = schemas.ReasonOf(d.Err)
		}
		msg := "rejected by stage"
		if d.Err != nil {
			msg = d.Err.Error()
		}
		var (
			value       []byte
			contentType = schemas.ContentTypeJSON
			origin      schemas.Origin
			key         []byte
			headers     []kafka.Header
		)
		if derr == nil && d.Row >= 0 && d.Row < docs.Len() {
			origin = docs.Origin(d.Row)
			if row := rowRecord(rec, d.Row); row != nil {
				value, _ = schemas.EncodeRecord(row)
				row.Release()
				contentType = schemas.ContentTypeArrow
			}
			if value == nil {
				value, _ = schemas.EncodeJSON(docs.Doc(d.Row))
				contentType = schemas.ContentTypeJSON
			}
			key, headers = carriedKafka(rec, d.Row)
		}
		st.addDead(reason)
		out = append(out, DeadLetterSpec{
			Topic:           r.cfg.DeadLetterTopic,
			Partition:       partition,
			Value:           value,
			ContentType:     contentType,
			Reason:          reason,
			Err:             msg,
			Stage:           r.cfg.Name,
			OriginTopic:     origin.Topic,
			OriginPartition: strconv.Itoa(int(origin.Partition)),
			OriginOffset:    strconv.FormatInt(origin.Offset, 10),
			OriginRow:       strconv.Itoa(int(origin.Row)),
			Key:             key,
			Headers:         headers,
		}.Message())
	}
	return out
}

// truncate cuts s to n bytes (at a UTF-8 boundary) and marks the cut with
// an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:prefixLen(s, n)] + "…"
}

// rowRecord returns row i of rec, a Document, Features or Routed record, as
// a one-row Document record of the document columns and rec's extra
// columns (but the carried Kafka key and headers, which a dead letter
// carries as its key and headers), in rec's order; nil when rec has no
// other extra columns or they cannot be carried (schemas.Extend). Its
// columns are slices of rec's. The caller releases it.
func rowRecord(rec arrow.Record, i int) arrow.Record {
	s := rec.Schema()
	kind, _, err := schemas.KindOf(s)
	if err != nil {
		return nil
	}
	var extra []arrow.Field
	var extraIdx []int
	for _, j := range schemas.ExtraIndices(s, kind) {
		switch f := s.Field(j); f.Name {
		case ColKafkaKey, ColKafkaHeaderNames, ColKafkaHeaderValues:
		default:
			extra = append(extra, f)
			extraIdx = append(extraIdx, j)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	schema, err := schemas.Extend(schemas.KindDocument, extra)
	if err != nil {
		return nil
	}
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, f := range schemas.DocumentSchema().Fields() {
		idx := s.FieldIndices(f.Name)
		if len(idx) != 1 {
			return nil
		}
		cols = append(cols, array.NewSlice(rec.Column(idx[0]), int64(i), int64(i)+1))
	}
	for _, j := range extraIdx {
		cols = append(cols, array.NewSlice(rec.Column(j), int64(i), int64(i)+1))
	}
	return array.NewRecord(schema, cols, 1)
}
