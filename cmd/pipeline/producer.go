package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// ---------------------------------------------------------------------------
// producer

// Producer tuning. One produce call carries up to flushMessages messages or
// flushBytes bytes; at most maxInFlightBytes are unacknowledged at a time.
const (
	flushMessages    = 1000
	flushBytes       = 1 << 20
	flushAge         = 5 * time.Millisecond
	maxInFlightBytes = 64 << 20
)

// producer writes messages with an asynchronous kafka-go Writer and counts
// what the broker acknowledged. Its methods other than completed are called
// from one goroutine; completed runs on the Writer's goroutines.
//
// A batch the broker refuses for its size (a topic with a smaller
// max.message.bytes than the pipeline's, or a message over the writer's
// batch bytes) is not lost: completed hands its messages back, and the
// producing goroutine writes them again synchronously, splitting them until
// the refused message is alone (pipeline.WriteSplitting). A document refused
// alone becomes a dead letter with reason oversize, its value a prefix of
// the document (see pipeline.DeadLetterSpec); a dead letter refused alone is
// written again with a shorter prefix.
type producer struct {
	w     *kafka.Writer // asynchronous
	sync  *kafka.Writer // synchronous: writes again what w's broker refused for its size
	stage string
	topic string
	log   *slog.Logger
	met   *pipeline.Metrics

	pending      []kafka.Message
	pendingBytes int
	pendingSince time.Time

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int             // bytes written but not yet acknowledged or failed
	refused  []kafka.Message // refused for their size, to write again
	docs     int64           // documents acknowledged on topic
	bytes    int64           // their text bytes
	dead     int64           // dead letters acknowledged
	failed   int64           // messages not delivered
	err      error           // first delivery error
}

// docData is the WriterData of a document message: its text bytes (for the
// report) and where it came from (for a dead letter, should it be too large
// for the topic).
type docData struct {
	textBytes   int
	origin, pos string
}

func newProducer(cc pipeline.ClientConfig, stage, topic string, log *slog.Logger, met *pipeline.Metrics) *producer {
	p := &producer{stage: stage, topic: topic, log: log, met: met}
	p.cond = sync.NewCond(&p.mu)
	errLog := kafka.LoggerFunc(func(msg string, args ...any) {
		log.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
	})
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(cc.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: flushAge,
		BatchBytes:   schemas.MaxBatchBytes,
		BatchSize:    10000,
		WriteTimeout: 30 * time.Second,
		ReadTimeout:  30 * time.Second,
		Async:        true,
		Completion:   p.completed,
		Transport:    cc.Transport(),
		ErrorLogger:  errLog,
	}
	p.sync = &kafka.Writer{
		Addr:         kafka.TCP(cc.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		BatchBytes:   schemas.MaxBatchBytes,
		BatchSize:    10000,
		WriteTimeout: 30 * time.Second,
		ReadTimeout:  30 * time.Second,
		Transport:    cc.Transport(),
		ErrorLogger:  errLog,
	}
	return p
}

// add queues msg; a full or old queue is handed to the writer.
func (p *producer) add(msg kafka.Message) {
	if len(p.pending) == 0 {
		p.pendingSince = time.Now()
	}
	p.pending = append(p.pending, msg)
	p.pendingBytes += len(msg.Key) + len(msg.Value)
	if len(p.pending) >= flushMessages || p.pendingBytes >= flushBytes || time.Since(p.pendingSince) >= flushAge {
		p.flush()
	}
}

// addDoc queues a document message; textBytes is the length of its text,
// origin the input file and pos the record's line or row number.
func (p *producer) addDoc(msg kafka.Message, textBytes int, origin, pos string) {
	msg.WriterData = docData{textBytes: textBytes, origin: origin, pos: pos}
	p.add(msg)
}

// deadLetter queues a dead letter for a bad input record.
// origin is the input file and pos the record's line or row number ("" when
// the record is a whole file).
func (p *producer) deadLetter(raw []byte, cause error, origin, pos string) {
	reason := schemas.ReasonOf(cause)
	p.log.Debug("dead letter", "reason", reason, "err", cause, "input", origin, "position", pos)
	p.add(pipeline.DeadLetterSpec{
		Topic:        pipeline.TopicDeadLetter,
		Value:        raw,
		Reason:       reason,
		Err:          cause.Error(),
		Stage:        p.stage,
		OriginTopic:  origin,
		OriginOffset: pos,
		WriterData:   reason,
	}.Message())
}

// flush writes again what the broker refused for its size, then hands the
// queue to the writer, first waiting while too many bytes are
// unacknowledged.
func (p *producer) flush() {
	p.writeRefused()
	if len(p.pending) == 0 {
		return
	}
	batch, n := p.pending, p.pendingBytes
	p.pending, p.pendingBytes = make([]kafka.Message, 0, flushMessages), 0
	p.mu.Lock()
	for p.inFlight > 0 && p.inFlight+n > maxInFlightBytes {
		p.cond.Wait()
	}
	p.inFlight += n
	p.mu.Unlock()
	// An async Writer returns at once; errors it finds before queueing
	// (message too large, unknown topic) fail the whole call.
	if err := p.w.WriteMessages(context.Background(), batch...); err != nil {
		p.completed(batch, err)
	}
}

// completed is the Writer's Completion callback. Messages refused for
// their size go back to the producing goroutine (writeRefused).
func (p *producer) completed(msgs []kafka.Message, err error) {
	if err != nil && pipeline.IsTooLarge(err) {
		p.log.Debug("batch too large for its topic; writing it again in pieces", "messages", len(msgs), "err", err)
		p.mu.Lock()
		p.inFlight -= int(msgBytes(msgs))
		p.refused = append(p.refused, msgs...)
		p.cond.Broadcast()
		p.mu.Unlock()
		return
	}
	p.settle(msgs, err, true)
}

// settle counts msgs as delivered, or as failed with err; inFlight says
// whether their bytes are counted in flight.
func (p *producer) settle(msgs []kafka.Message, err error, inFlight bool) {
	var docs, bytes, dead int64
	for _, m := range msgs {
		if err != nil {
			continue
		}
		if m.Topic == pipeline.TopicDeadLetter {
			dead++
			if p.met != nil {
				reason, _ := m.WriterData.(schemas.Reason)
				p.met.DeadLetters.WithLabelValues(p.stage, string(reason)).Inc()
			}
			continue
		}
		docs++
		switch d := m.WriterData.(type) {
		case docData:
			bytes += int64(d.textBytes)
		case int:
			bytes += int64(d)
		}
	}
	size := msgBytes(msgs)
	if err != nil {
		p.log.Warn("delivery failed", "messages", len(msgs), "err", err)
	}
	if p.met != nil && err == nil {
		p.met.RecordsOut.WithLabelValues(p.stage, p.topic).Add(float64(docs))
		p.met.Bytes.WithLabelValues(p.stage, "out").Add(float64(size))
	}
	p.mu.Lock()
	if inFlight {
		p.inFlight -= int(size)
	}
	p.docs += docs
	p.bytes += bytes
	p.dead += dead
	if err != nil {
		p.failed += int64(len(msgs))
		if p.err == nil {
			p.err = err
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

func msgBytes(msgs []kafka.Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Key) + len(m.Value))
	}
	return n
}

// writeRefused writes again, synchronously, the messages the broker refused
// for their size.
func (p *producer) writeRefused() {
	p.mu.Lock()
	refused := p.refused
	p.refused = nil
	p.mu.Unlock()
	if len(refused) == 0 {
		return
	}
	// writeSync and tooLarge settle every message, so no error is left.
	_ = pipeline.WriteSplitting(context.Background(), refused, p.writeSync, p.tooLarge)
}

// writeSync writes msgs with the synchronous writer and settles them, but
// for a size refusal, which it returns (with the messages it refused) to
// pipeline.WriteSplitting.
func (p *producer) writeSync(ctx context.Context, msgs ...kafka.Message) error {
	// kafka-go's Writer sets fields of the messages it is given.
	err := p.sync.WriteMessages(ctx, slices.Clone(msgs)...)
	if err == nil || !pipeline.IsTooLarge(err) {
		p.settle(msgs, err, false)
		return nil
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == len(msgs) {
		var ok []kafka.Message
		for i, e := range we {
			if e == nil {
				ok = append(ok, msgs[i])
			}
		}
		p.settle(ok, nil, false)
	}
	return err
}

// tooLarge deals with message m that the broker refused alone for its size:
// a document becomes a dead letter with reason oversize; a dead letter is
// written again with a shorter value, or counted as failed when it has none
// left.
func (p *producer) tooLarge(ctx context.Context, m kafka.Message, err error) error {
	if m.Topic == pipeline.TopicDeadLetter {
		small, ok := pipeline.ShrinkDeadLetter(m)
		if !ok {
			p.settle([]kafka.Message{m}, fmt.Errorf("%s refuses even a dead letter without value: %w", m.Topic, err), false)
			return nil
		}
		p.log.Warn("dead letter too large for its topic; writing a shorter prefix of its value", "bytes", len(m.Value), "now", len(small.Value))
		return pipeline.WriteSplitting(ctx, []kafka.Message{small}, p.writeSync, p.tooLarge)
	}
	d, _ := m.WriterData.(docData)
	cause := &schemas.DecodeError{Reason: schemas.ReasonOversize,
		Err: fmt.Errorf("document %q: a message of %d bytes is too large for topic %s: %w", m.Key, len(m.Key)+len(m.Value), m.Topic, err)}
	p.log.Warn("document too large for its topic; dead-lettered as oversize", "id", string(m.Key), "bytes", len(m.Value), "topic", m.Topic)
	dead := pipeline.DeadLetterSpec{
		Topic:        pipeline.TopicDeadLetter,
		Key:          m.Key,
		Value:        m.Value,
		ContentType:  schemas.ContentTypeJSON,
		Reason:       schemas.ReasonOversize,
		Err:          cause.Error(),
		Stage:        p.stage,
		OriginTopic:  d.origin,
		OriginOffset: d.pos,
		WriterData:   schemas.ReasonOversize,
	}.Message()
	return pipeline.WriteSplitting(ctx, []kafka.Message{dead}, p.writeSync, p.tooLarge)
}

// produceCounts are a producer's totals.
type produceCounts struct {
	docs, bytes, dead, failed int64
	err                       error // first delivery error
}

// counts returns the totals so far.
func (p *producer) counts() produceCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return produceCounts{docs: p.docs, bytes: p.bytes, dead: p.dead, failed: p.failed, err: p.err}
}

// close flushes the queue and waits until every message is acknowledged,
// dead-lettered in its place, or failed.
func (p *producer) close() error {
	p.flush()
	for {
		p.mu.Lock()
		for p.inFlight > 0 && len(p.refused) == 0 {
			p.cond.Wait()
		}
		done := p.inFlight == 0 && len(p.refused) == 0
		p.mu.Unlock()
		if done {
			break
		}
		p.writeRefused()
	}
	err := p.w.Close()
	if serr := p.sync.Close(); err == nil {
		err = serr
	}
	return err
}

// ---------------------------------------------------------------------------
// pacer: the --rate limit of replay

// pacer spaces documents to a rate; the zero rate lets everything through.
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(docsPerSec float64) *pacer {
	if docsPerSec <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / docsPerSec)}
}

// wait blocks until the next document may go, flushing p first so that
// nothing waits in the queue while the pacer sleeps. It reports false when
// ctx ended.
func (pc *pacer) wait(ctx context.Context, p *producer) bool {
	if pc.every <= 0 {
		return true
	}
	now := time.Now()
	if pc.next.IsZero() {
		pc.next = now
	}
	// Sleeps shorter than a millisecond are not worth a timer (nor a flush);
	// the deficit is made up at the next longer sleep.
	if d := pc.next.Sub(now); d > time.Millisecond {
		p.flush()
		if !sleepCtx(ctx, d) {
			return false
		}
	} else if pc.next.Before(now.Add(-time.Second)) {
		pc.next = now.Add(-time.Second) // allow at most one second of catch-up
	}
	pc.next = pc.next.Add(pc.every)
	return true
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
