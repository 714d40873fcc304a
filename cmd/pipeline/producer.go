package main

import (
	"context"
	"fmt"
	"log/slog"
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
type producer struct {
	w     *kafka.Writer
	stage string
	topic string
	log   *slog.Logger
	met   *pipeline.Metrics

	pending      []kafka.Message
	pendingBytes int
	pendingSince time.Time

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int   // bytes written but not yet acknowledged or failed
	docs     int64 // documents acknowledged on topic
	bytes    int64 // their text bytes
	dead     int64 // dead letters acknowledged
	failed   int64 // messages not delivered
	err      error // first delivery error
}

func newProducer(cc pipeline.ClientConfig, stage, topic string, log *slog.Logger, met *pipeline.Metrics) *producer {
	p := &producer{stage: stage, topic: topic, log: log, met: met}
	p.cond = sync.NewCond(&p.mu)
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(cc.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: flushAge,
		BatchBytes:   32 << 20,
		BatchSize:    10000,
		WriteTimeout: 30 * time.Second,
		ReadTimeout:  30 * time.Second,
		Async:        true,
		Completion:   p.completed,
		Transport:    cc.Transport(),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
		}),
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

// deadLetter queues a dead letter for a bad input record.
// origin is the input file and pos the record's line or row number ("" when
// the record is a whole file).
func (p *producer) deadLetter(raw []byte, cause error, origin, pos string) {
	reason := schemas.ReasonOf(cause)
	p.log.Debug("dead letter", "reason", reason, "err", cause, "input", origin, "position", pos)
	if raw == nil {
		raw = []byte{}
	}
	h := []kafka.Header{
		{Key: pipeline.HeaderReason, Value: []byte(reason)},
		{Key: pipeline.HeaderError, Value: []byte(clipError(cause.Error(), 1024))},
		{Key: pipeline.HeaderStage, Value: []byte(p.stage)},
		{Key: pipeline.HeaderOriginTopic, Value: []byte(origin)},
	}
	if pos != "" {
		h = append(h, kafka.Header{Key: pipeline.HeaderOriginOffset, Value: []byte(pos)})
	}
	p.add(kafka.Message{
		Topic:      pipeline.TopicDeadLetter,
		Value:      raw,
		Headers:    h,
		WriterData: reason,
	})
}

// flush hands the queue to the writer, first waiting while too many bytes
// are unacknowledged.
func (p *producer) flush() {
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

// completed is the Writer's Completion callback.
func (p *producer) completed(msgs []kafka.Message, err error) {
	var docs, bytes, dead, size int64
	for _, m := range msgs {
		size += int64(len(m.Key) + len(m.Value))
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
		if n, ok := m.WriterData.(int); ok {
			bytes += int64(n)
		}
	}
	if err != nil {
		p.log.Warn("delivery failed", "messages", len(msgs), "err", err)
	}
	if p.met != nil && err == nil {
		p.met.RecordsOut.WithLabelValues(p.stage, p.topic).Add(float64(docs))
		p.met.Bytes.WithLabelValues(p.stage, "out").Add(float64(size))
	}
	p.mu.Lock()
	p.inFlight -= int(size)
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

// close flushes the queue and waits until every message is acknowledged or
// failed.
func (p *producer) close() error {
	p.flush()
	return p.w.Close()
}

// clipError shortens an error message for a header.
func clipError(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
