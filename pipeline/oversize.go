package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// IsTooLarge reports whether err says that messages were refused for their
// size: kafka-go's own check against the writer's BatchBytes
// (kafka.MessageTooLargeError), or the broker's MESSAGE_TOO_LARGE or
// RECORD_LIST_TOO_LARGE for a produce batch, alone or among the per-message
// errors of a kafka.WriteErrors.
func IsTooLarge(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && isSizeError(e) {
				return true
			}
		}
		return false
	}
	return isSizeError(err)
}

func isSizeError(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}

// WriteFunc writes messages and returns once each is acknowledged or has
// failed, as Sink.Write and a synchronous kafka.Writer's WriteMessages do.
type WriteFunc func(ctx context.Context, msgs ...kafka.Message) error

// TooLargeFunc deals with message m, which the broker refused alone for its
// size with err: it writes m in smaller pieces, or dead-letters it.
type TooLargeFunc func(ctx context.Context, m kafka.Message, err error) error

// WriteSplitting writes msgs with write, never letting one message too large
// for its topic fail the others. When write fails with a size refusal
// (IsTooLarge), the messages it did not write are written again in halves,
// in order, until a refused message is alone; that one goes to tooLarge,
// before any message after it is written. So every message is either
// acknowledged or handed to tooLarge, unless write fails otherwise or
// tooLarge fails, whose error is returned.
//
// A partition's messages keep their order when write puts all the messages
// of one call for a partition in one produce batch, as a Runner's write
// chunks do: the broker then refuses or takes them together.
func WriteSplitting(ctx context.Context, msgs []kafka.Message, write WriteFunc, tooLarge TooLargeFunc) error {
	if len(msgs) == 0 {
		return nil
	}
	err := write(ctx, msgs...)
	if err == nil || !IsTooLarge(err) {
		return err
	}
	left := unwritten(msgs, err)
	if len(left) == 1 {
		return tooLarge(ctx, left[0], err)
	}
	h := len(left) / 2
	if err := WriteSplitting(ctx, left[:h], write, tooLarge); err != nil {
		return err
	}
	return WriteSplitting(ctx, left[h:], write, tooLarge)
}

// unwritten returns the messages of msgs that err says were not written:
// those with an error in a kafka.WriteErrors, else all of them.
func unwritten(msgs []kafka.Message, err error) []kafka.Message {
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != len(msgs) {
		return msgs
	}
	var left []kafka.Message
	for i, e := range we {
		if e != nil {
			left = append(left, msgs[i])
		}
	}
	return left
}

// tooLarge deals with an output message the broker refused alone for its
// size, which happens when a topic's limit is below the pipeline's
// (schemas.MaxMessageBytes): an Arrow batch of several rows is written again
// as smaller batches; a single row, or a message that is not an Arrow batch,
// is dead-lettered as oversize; a dead letter is written again with a
// shorter value (ShrinkDeadLetter). st follows: rows that become dead
// letters move from out to dead.
func (r *Runner) tooLarge(ctx context.Context, m kafka.Message, cause error, st *batchStats) error {
	if m.Topic == r.cfg.DeadLetterTopic {
		small, ok := ShrinkDeadLetter(m)
		if !ok {
			return fmt.Errorf("stage %s: %s refuses even a dead letter without value: %w", r.cfg.Name, m.Topic, cause)
		}
		r.log.Warn("dead letter too large for its topic; writing a shorter prefix of its value",
			"topic", m.Topic, "bytes", len(m.Value), "now", len(small.Value))
		return r.writeChunk(ctx, []kafka.Message{small}, st)
	}
	tooBig := fmt.Errorf("a message of %d bytes is too large for topic %s: %w", len(m.Value), m.Topic, cause)
	var recs []arrow.Record
	if HeaderValue(m, schemas.HeaderContentType) == schemas.ContentTypeArrow {
		recs, _ = schemas.DecodeRecords(m.Value, r.cfg.Mem) // undecodable: dead-lettered whole below
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	var rows int64
	for _, rec := range recs {
		rows += rec.NumRows()
	}
	switch {
	case rows > 1:
		pieces, err := splitArrow(m, recs)
		if err != nil {
			return fmt.Errorf("stage %s: split a batch too large for %s: %w", r.cfg.Name, m.Topic, err)
		}
		r.log.Debug("batch too large for its topic; writing it in pieces", "topic", m.Topic, "bytes", len(m.Value), "rows", rows)
		for _, p := range pieces {
			st.bytesOut += int64(len(p.Value))
		}
		st.bytesOut -= int64(len(m.Value))
		return r.writeChunk(ctx, pieces, st)
	case rows == 1:
		st.removeOut(m.Topic, 1)
		st.bytesOut -= int64(len(m.Value))
		var rec arrow.Record
		for _, x := range recs {
			if x.NumRows() == 1 {
				rec = x
			}
		}
		r.log.Warn("row too large for its topic; dead-lettered as oversize", "topic", m.Topic, "bytes", len(m.Value))
		dead := r.deadRows(nil, m.Partition, rec, []DeadRow{{Row: 0, Reason: schemas.ReasonOversize, Err: tooBig}}, st)
		return r.writeChunk(ctx, dead, st)
	default:
		st.removeOut(m.Topic, max(rows, 1))
		st.bytesOut -= int64(len(m.Value))
		st.addDead(schemas.ReasonOversize)
		r.log.Warn("message too large for its topic; dead-lettered as oversize", "topic", m.Topic, "bytes", len(m.Value))
		dead := DeadLetter(r.cfg.DeadLetterTopic, r.cfg.Name, m, &schemas.DecodeError{Reason: schemas.ReasonOversize, Err: tooBig})
		return r.writeChunk(ctx, []kafka.Message{dead}, st)
	}
}

// splitArrow returns Arrow message m, whose records are recs (more than one
// row in all), as two or more messages in the same order: one per record, or
// the halves of its only record.
func splitArrow(m kafka.Message, recs []arrow.Record) ([]kafka.Message, error) {
	var parts []arrow.Record
	if len(recs) > 1 {
		parts = recs
	} else {
		n := recs[0].NumRows()
		a, b := recs[0].NewSlice(0, n/2), recs[0].NewSlice(n/2, n)
		defer a.Release()
		defer b.Release()
		parts = []arrow.Record{a, b}
	}
	out := make([]kafka.Message, 0, len(parts))
	for _, p := range parts {
		if p.NumRows() == 0 {
			continue
		}
		payload, err := schemas.EncodeRecord(p)
		if err != nil {
			return nil, err
		}
		out = append(out, kafka.Message{Topic: m.Topic, Partition: m.Partition, Key: m.Key, Value: payload, Headers: m.Headers})
	}
	return out, nil
}

// removeOut takes n rows written to topic back out of the counts (they
// became dead letters).
func (s *batchStats) removeOut(topic string, n int64) {
	s.out -= n
	if s.outByTopic != nil {
		s.outByTopic[topic] -= n
	}
}
