package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// roundRobinFetchTimeout bounds one wait for a partition's message that the
// end offsets said is there; past it the partition's reader is started
// again and the read retried.
const roundRobinFetchTimeout = time.Minute

// roundRobinLookEvery is how long RoundRobin.Next goes by the end offsets
// it read last before it looks again when no partition has a message.
const roundRobinLookEvery = 100 * time.Millisecond

// RoundRobin reads the partitions of one topic one message at a time in a
// deterministic round-robin order, over a PartitionConsumer.
//
// Next(ctx, cursor) returns the next message of the first partition at or
// after cursor (counting round) that has one, where a partition is skipped
// only when it has no message past the reader's position at the last look at
// the end offsets. So input that is already in the topic is always read in
// the same order, however fast the partitions are fetched: a consumer that
// keeps its positions and its cursor (a trainer, in its checkpoint) and
// starts again from them reads exactly what an uninterrupted one would have.
// A position that retention has removed moves to the first offset kept.
//
// Like PartitionConsumer it commits nothing: Seek sets where a partition
// starts, Position says where it is. A RoundRobin is used by one goroutine
// at a time; Close releases it.
type RoundRobin struct {
	c      *PartitionConsumer
	next   []int64 // next offset to read; FirstOffset: from the first kept
	end    []int64 // end offsets at the last look
	on     []bool  // assigned to c at next
	looked time.Time
}

// NewRoundRobin returns a reader of cfg.Topic's partitions 0 to
// partitions-1, each at its first offset kept until Seek says otherwise.
func NewRoundRobin(cfg ConsumerConfig, partitions int) (*RoundRobin, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("round robin of %s: %d partitions", cfg.Topic, partitions)
	}
	c, err := NewPartitionConsumer(cfg)
	if err != nil {
		return nil, err
	}
	r := &RoundRobin{c: c, next: make([]int64, partitions), end: make([]int64, partitions), on: make([]bool, partitions)}
	for p := range r.next {
		r.next[p] = FirstOffset
	}
	return r, nil
}

// Partitions is the number of partitions read.
func (r *RoundRobin) Partitions() int { return len(r.next) }

// Seek makes partition p go on at offset next (FirstOffset: at the first
// message kept).
func (r *RoundRobin) Seek(p int, next int64) {
	if r.on[p] {
		r.c.Revoke(p)
		r.on[p] = false
	}
	r.next[p] = next
}

// Position is the offset of the next message Next reads from partition p:
// the one after the last it returned, or where Seek put p (FirstOffset
// before the first look at the offsets).
func (r *RoundRobin) Position(p int) int64 { return r.next[p] }

// Close stops every partition's reader.
func (r *RoundRobin) Close() error { return r.c.Close() }

// refresh reads every partition's first and end offsets, moving a position
// that retention removed to the first offset kept.
func (r *RoundRobin) refresh(ctx context.Context) error {
	first, end, err := r.c.Offsets(ctx, len(r.next))
	if err != nil {
		return err
	}
	for p := range r.next {
		if r.next[p] < first[p] {
			r.Seek(p, first[p])
		}
		r.end[p] = end[p]
	}
	r.looked = time.Now()
	return nil
}

// Next returns the next message of the first partition at or after cursor
// (round robin) that has one, and its partition; ok is false when none has
// one right now. It looks at the end offsets on its first call, and again
// when no partition has a message by the last look and that look is older
// than 100ms. After an error (ctx's end included) the partition that failed
// is read again from its position, after a fresh look at the offsets.
func (r *RoundRobin) Next(ctx context.Context, cursor int) (m Message, p int, ok bool, err error) {
	n := len(r.next)
	for pass := range 2 {
		if pass == 1 || r.looked.IsZero() {
			if pass == 1 && time.Since(r.looked) < roundRobinLookEvery {
				return Message{}, 0, false, nil
			}
			if err := r.refresh(ctx); err != nil {
				return Message{}, 0, false, err
			}
		}
		for i := range n {
			p := (cursor + i) % n
			if r.next[p] >= r.end[p] {
				continue
			}
			if !r.on[p] {
				r.c.Assign(p, r.next[p])
				r.on[p] = true
			}
			fctx, cancel := context.WithTimeout(ctx, roundRobinFetchTimeout)
			m, err := r.c.Next(fctx, p)
			cancel()
			if err != nil {
				// A fresh reader at next[p] and a fresh look at the offsets
				// for the next try.
				r.Seek(p, r.next[p])
				r.looked = time.Time{}
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					err = fmt.Errorf("read %s/%d at %d: no message within %v: %w", r.c.Topic(), p, r.next[p], roundRobinFetchTimeout, err)
				}
				return Message{}, 0, false, err
			}
			r.next[p] = m.Offset + 1
			return m, p, true, nil
		}
	}
	return Message{}, 0, false, nil
}

// NextRetrying is Next riding out broker outages: a retryable error (the
// broker away, restarting or overloaded; see Retryable) is logged and the
// read tried again with backoff until it succeeds or ctx ends. The positions
// stay where they were, so nothing is skipped or read twice.
func (r *RoundRobin) NextRetrying(ctx context.Context, cursor int, log *slog.Logger) (m Message, p int, ok bool, err error) {
	err = Retry(ctx, log, "read "+r.c.Topic(), func(ctx context.Context) error {
		var err error
		m, p, ok, err = r.Next(ctx, cursor)
		return err
	})
	return m, p, ok, err
}

// WaitPartitions returns the partition count of topic, waiting for the
// topic to appear (another stage may create it) and riding out broker
// outages (a warning per retry, with backoff) until ctx ends; a permanent
// error (no permission, say) fails at once. It logs once, at info level,
// that it waits. A nil log logs to slog.Default().
func WaitPartitions(ctx context.Context, cc ClientConfig, topic string, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.Default()
	}
	logged := false
	var n int
	err := Retry(ctx, log, "read the partitions of "+topic, func(ctx context.Context) error {
		for {
			var err error
			n, err = PartitionCount(ctx, cc, topic)
			if err == nil && n > 0 {
				return nil
			}
			if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				return err
			}
			if !logged {
				log.Info("waiting for the input topic", "topic", topic)
				logged = true
			}
			if !Sleep(ctx, 200*time.Millisecond) {
				return ctx.Err()
			}
		}
	})
	return n, err
}
