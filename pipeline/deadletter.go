package pipeline

import (
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// Dead-letter headers. A dead letter's value is the original message payload
// (when the whole message was bad) or the row as a JSON document (when one row
// was rejected); its headers say why and where it came from.
const (
	HeaderReason          = "deadletter-reason"
	HeaderError           = "deadletter-error"
	HeaderStage           = "deadletter-stage"
	HeaderOriginTopic     = "origin-topic"
	HeaderOriginPartition = "origin-partition"
	HeaderOriginOffset    = "origin-offset"
	HeaderOriginRow       = "origin-row"
)

// deadMessage dead-letters a whole input message.
func (r *Runner) deadMessage(out []kafka.Message, m kafka.Message, err error, st *batchStats) []kafka.Message {
	st.addDead(schemas.ReasonOf(err))
	r.log.Debug("dead letter", "reason", schemas.ReasonOf(err), "err", err, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
	return append(out, DeadLetter(r.cfg.DeadLetterTopic, r.cfg.Name, m, err))
}

// DeadLetter returns the dead letter of a whole input message m rejected by
// stage with err: m's key and value on topic (same partition number), with
// the reason (schemas.ReasonOf(err)), the error, the stage and m's origin in
// headers, and m's content type when it had one.
func DeadLetter(topic, stage string, m kafka.Message, err error) kafka.Message {
	h := make([]kafka.Header, 0, 8)
	if ct := header(m, schemas.HeaderContentType); ct != "" {
		h = append(h, kafka.Header{Key: schemas.HeaderContentType, Value: []byte(ct)})
	}
	h = append(h,
		kafka.Header{Key: HeaderReason, Value: []byte(schemas.ReasonOf(err))},
		kafka.Header{Key: HeaderError, Value: []byte(truncate(err.Error(), 1024))},
		kafka.Header{Key: HeaderStage, Value: []byte(stage)},
		kafka.Header{Key: HeaderOriginTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Topic: topic, Partition: m.Partition, Key: m.Key, Value: m.Value, Headers: h}
}

// deadRows dead-letters rows of rec, each as a JSON document.
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
			value  []byte
			origin schemas.Origin
		)
		if derr == nil && d.Row >= 0 && d.Row < docs.Len() {
			origin = docs.Origin(d.Row)
			value, _ = schemas.EncodeJSON(docs.Doc(d.Row))
		}
		st.addDead(reason)
		out = append(out, kafka.Message{
			Topic:     r.cfg.DeadLetterTopic,
			Partition: partition,
			Value:     value,
			Headers: []kafka.Header{
				{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
				{Key: HeaderReason, Value: []byte(reason)},
				{Key: HeaderError, Value: []byte(truncate(msg, 1024))},
				{Key: HeaderStage, Value: []byte(r.cfg.Name)},
				{Key: HeaderOriginTopic, Value: []byte(origin.Topic)},
				{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(int(origin.Partition)))},
				{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(origin.Offset, 10))},
				{Key: HeaderOriginRow, Value: []byte(strconv.Itoa(int(origin.Row)))},
			},
		})
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
