package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// ProducerConfig configures a Producer. The zero value of every field but
// Client works.
type ProducerConfig struct {
	Client ClientConfig
	// KeepPartition sends each message to the partition number in its
	// Partition field (modulo the partition count; see SamePartition), so
	// a stage writes what it derived from input partition p to output
	// partition p. Default: by key, with the murmur2 hash of the Java
	// client, so a document keeps its partition whoever produces it.
	KeepPartition bool
	// BatchBytes caps one produce batch, and so the largest message (key,
	// value and headers); it must stay below the topics' max.message.bytes
	// by the room the record-batch framing takes. Default:
	// schemas.MaxBatchBytes (31 MiB, for topics of schemas.MaxMessageBytes).
	BatchBytes int64
	// BatchSize caps the messages of one produce batch. Default:
	// WriteChunkMessages.
	BatchSize int
	// BatchTimeout is how long a partial batch waits. Default: 2ms.
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request. Default: 30s.
	WriteTimeout time.Duration
	// MaxAttempts is how often a batch is tried before it fails. Default: 3,
	// with backoff from 50ms to 1s.
	MaxAttempts int
	// MaxInFlightBytes caps the bytes produced and not yet acknowledged;
	// Produce waits while they would exceed it. Default: 64 MiB.
	MaxInFlightBytes int64
	// Logger gets the writer's errors at debug level. Default:
	// Client.Logger, else slog.Default().
	Logger *slog.Logger
}

// Producer writes messages asynchronously with acks=all: Produce queues
// them and returns, and a callback reports each call's outcome once the
// broker acknowledged (or finally refused) every message of it. KafkaSink,
// the synchronous Sink, is Produce plus a wait.
//
// A message keeps the WriterData it was given; the callback sees the
// messages as they were produced. Produce may be called from several
// goroutines; the callbacks run on the writer's goroutines and must not
// block for long.
type Producer struct {
	w        *kafka.Writer
	log      *slog.Logger
	maxBytes int64

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int64 // bytes produced and not yet settled
	closed   bool
}

// call is one Produce call waiting for its messages' outcomes.
type call struct {
	msgs []Message
	errs []error
	left atomic.Int64
	done func(msgs []Message, errs []error)
}

// tag is the WriterData the writer carries for each message: its call, its
// index there and the WriterData it was given.
type tag struct {
	c    *call
	i    int
	user any
}

// NewProducer returns a producer; topics must exist (see EnsureTopics).
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.Client.validate(); err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = cfg.Client.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Producer{log: log, maxBytes: orInt64(cfg.MaxInFlightBytes, 64<<20)}
	p.cond = sync.NewCond(&p.mu)
	var bal kafka.Balancer = &kafka.Murmur2Balancer{}
	if cfg.KeepPartition {
		bal = SamePartition{}
	}
	p.w = &kafka.Writer{
		Addr:            kafka.TCP(cfg.Client.Brokers...),
		Balancer:        bal,
		MaxAttempts:     orInt(cfg.MaxAttempts, 3),
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: time.Second,
		BatchSize:       orInt(cfg.BatchSize, WriteChunkMessages),
		BatchBytes:      orInt64(cfg.BatchBytes, schemas.MaxBatchBytes),
		BatchTimeout:    orDur(cfg.BatchTimeout, 2*time.Millisecond),
		ReadTimeout:     orDur(cfg.WriteTimeout, 30*time.Second),
		WriteTimeout:    orDur(cfg.WriteTimeout, 30*time.Second),
		RequiredAcks:    kafka.RequireAll,
		Async:           true,
		Completion:      p.completed,
		Transport:       cfg.Client.Transport(),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
		}),
	}
	return p, nil
}

// Produce queues msgs and returns; done (if not nil) is called once, when
// every message is acknowledged or has failed, with the messages as given
// and errs: nil when all were acknowledged, else one entry per message (nil
// for those acknowledged). While too many bytes are unacknowledged Produce
// waits; it returns ctx's error (without producing) if ctx ends first, and
// ErrClosed after Close.
//
// A message the broker refuses for its size fails with an error for which
// IsTooLarge holds; WriteSplitting writes such a batch again in pieces.
func (p *Producer) Produce(ctx context.Context, msgs []Message, done func(msgs []Message, errs []error)) error {
	if len(msgs) == 0 {
		if done != nil {
			done(msgs, nil)
		}
		return nil
	}
	n := msgBytes(msgs)
	if err := p.reserve(ctx, n); err != nil {
		return err
	}
	c := &call{msgs: msgs, errs: make([]error, len(msgs)), done: done}
	c.left.Store(int64(len(msgs)))
	// kafka-go's Writer sets fields of the messages it is given.
	out := slices.Clone(msgs)
	for i := range out {
		out[i].WriterData = &tag{c: c, i: i, user: msgs[i].WriterData}
	}
	// An async Writer returns at once; errors it finds before queueing
	// (a message over BatchBytes, a closed writer) fail the whole call.
	if err := p.w.WriteMessages(context.Background(), out...); err != nil {
		p.completed(out, err)
	}
	return nil
}

// ErrClosed is returned by Produce after Close.
var ErrClosed = errors.New("producer closed")

// reserve waits until n more bytes may be in flight.
func (p *Producer) reserve(ctx context.Context, n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight > 0 && p.inFlight+n > p.maxBytes && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			p.mu.Lock()
			p.cond.Broadcast()
			p.mu.Unlock()
		})
		defer stop()
	}
	for !p.closed && p.inFlight > 0 && p.inFlight+n > p.maxBytes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.cond.Wait()
	}
	if p.closed {
		return ErrClosed
	}
	p.inFlight += n
	return nil
}

// completed is the Writer's Completion callback: it settles each message
// with err and calls back the Produce calls it completes.
func (p *Producer) completed(msgs []Message, err error) {
	p.mu.Lock()
	p.inFlight -= msgBytes(msgs)
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, m := range msgs {
		t, ok := m.WriterData.(*tag)
		if !ok {
			continue
		}
		// Each message has its own entry: batches of one call may complete
		// on several goroutines at once.
		t.c.errs[t.i] = err
		if t.c.left.Add(-1) == 0 && t.c.done != nil {
			errs := t.c.errs
			if !slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
				errs = nil
			}
			t.c.done(t.c.msgs, errs)
		}
	}
}

// Flush waits until every message produced so far is settled, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inFlight > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.cond.Wait()
	}
	return nil
}

// Close waits for every message produced to be settled and closes the
// writer.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return p.w.Close()
}

func msgBytes(msgs []Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Key) + len(m.Value))
	}
	return n
}
