package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// FirstOffset, given to PartitionConsumer.Assign, starts a partition at its
// first message still kept.
const FirstOffset = kafka.FirstOffset

// ConsumerConfig configures a PartitionConsumer.
type ConsumerConfig struct {
	Client ClientConfig
	// Topic is the topic whose partitions are read.
	Topic string
	// MaxWait is how long a fetch waits for new messages. Default: 200ms.
	MaxWait time.Duration
	// Logger gets debug lines of restarted readers. Default: Client.Logger,
	// else slog.Default().
	Logger *slog.Logger
}

// PartitionConsumer reads chosen partitions of one topic, one goroutine per
// partition, from offsets its user chose. It joins no consumer group and
// commits nothing: the handler owns its offsets (a trainer keeps them in its
// checkpoint, the archive sink in its shard names), which is what makes a
// resumed consumer carry on exactly where it stopped.
//
// Assign starts a partition's goroutine; it fetches ahead while the handler
// works. Next hands out the partition's messages in offset order. Revoke
// (or Close, for all) stops a goroutine: it closes the partition's quit
// channel and waits for its done channel, so no goroutine outlives the
// consumer. A read error is returned by Next; the Next after it starts the
// partition again after the last message Next handed out, so nothing is
// skipped or handed out twice.
//
// Methods for different partitions may be called concurrently; Next for one
// partition from one goroutine at a time.
type PartitionConsumer struct {
	cfg ConsumerConfig
	log *slog.Logger

	mu    sync.Mutex
	parts map[int]*partitionReader
}

// partitionReader is one partition's goroutine and what it fetchItem.
type partitionReader struct {
	next  int64          // the offset after the last message handed out (or the start)
	items chan fetchItem // what the goroutine fetchItem, in order
	quit  chan struct{}  // closed to stop the goroutine
	done  chan struct{}  // closed when the goroutine has ended
}

type fetchItem struct {
	m   Message
	err error // the goroutine ended with err after the messages before
}

// NewPartitionConsumer returns a consumer of cfg.Topic with no partition
// assigned.
func NewPartitionConsumer(cfg ConsumerConfig) (*PartitionConsumer, error) {
	if cfg.Topic == "" {
		return nil, errors.New("partition consumer: no topic")
	}
	if err := cfg.Client.validate(); err != nil {
		return nil, fmt.Errorf("partition consumer of %s: %w", cfg.Topic, err)
	}
	log := cfg.Logger
	if log == nil {
		log = cfg.Client.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	return &PartitionConsumer{cfg: cfg, log: log.With("topic", cfg.Topic), parts: map[int]*partitionReader{}}, nil
}

// Topic is the topic read.
func (c *PartitionConsumer) Topic() string { return c.cfg.Topic }

// Assign starts reading partition p at offset next (FirstOffset: at the
// first message kept). A partition already assigned is revoked first.
func (c *PartitionConsumer) Assign(p int, next int64) {
	c.Revoke(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts[p] = c.start(p, next)
}

// Revoke stops reading partition p: it closes the goroutine's quit channel
// and waits for it to end. Messages fetchItem and not handed out are dropped.
func (c *PartitionConsumer) Revoke(p int) {
	c.mu.Lock()
	pr := c.parts[p]
	delete(c.parts, p)
	c.mu.Unlock()
	if pr != nil {
		close(pr.quit)
		<-pr.done
	}
}

// Close revokes every partition.
func (c *PartitionConsumer) Close() error {
	c.mu.Lock()
	ps := make([]int, 0, len(c.parts))
	for p := range c.parts {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	for _, p := range ps {
		c.Revoke(p)
	}
	return nil
}

// Position is the offset after the last message Next handed out for p (or
// where p was assigned to start); ok is false when p is not assigned.
func (c *PartitionConsumer) Position(p int) (next int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pr := c.parts[p]
	if pr == nil {
		return 0, false
	}
	return pr.next, true
}

// Next returns partition p's next message, waiting until one is fetchItem or
// ctx ends. A read error ends the wait; the next call reads on from the
// message after the last one returned.
func (c *PartitionConsumer) Next(ctx context.Context, p int) (Message, error) {
	c.mu.Lock()
	pr := c.parts[p]
	c.mu.Unlock()
	if pr == nil {
		return Message{}, fmt.Errorf("partition consumer: %s/%d is not assigned", c.cfg.Topic, p)
	}
	select {
	case f, ok := <-pr.items:
		if !ok || f.err != nil {
			err := errors.New("reader stopped")
			if f.err != nil {
				err = f.err
			}
			// Start again after the last message handed out.
			c.mu.Lock()
			if c.parts[p] == pr {
				<-pr.done
				c.parts[p] = c.start(p, pr.next)
			}
			c.mu.Unlock()
			return Message{}, fmt.Errorf("read %s/%d at %d: %w", c.cfg.Topic, p, pr.next, err)
		}
		pr.next = f.m.Offset + 1
		return f.m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Offsets returns the first offset kept and the end offset (the offset the
// next message will get) of each of the topic's n partitions.
func (c *PartitionConsumer) Offsets(ctx context.Context, n int) (first, end []int64, err error) {
	first, end = make([]int64, n), make([]int64, n)
	for p := range n {
		conn, err := c.cfg.Client.Dialer().DialLeader(ctx, "tcp", c.cfg.Client.Brokers[0], c.cfg.Topic, p)
		if err != nil {
			return nil, nil, fmt.Errorf("dial leader of %s/%d: %w", c.cfg.Topic, p, err)
		}
		first[p], end[p], err = conn.ReadOffsets()
		conn.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("offsets of %s/%d: %w", c.cfg.Topic, p, err)
		}
	}
	return first, end, nil
}

// start starts p's goroutine at next; c.mu is held.
func (c *PartitionConsumer) start(p int, next int64) *partitionReader {
	pr := &partitionReader{next: next, items: make(chan fetchItem, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.read(p, pr)
	return pr
}

// read is p's goroutine: it fetches from pr.next on until quit is closed or
// a read fails, which it hands on as the last item.
func (c *PartitionConsumer) read(p int, pr *partitionReader) {
	defer close(pr.done)
	defer close(pr.items)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-pr.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.cfg.Client.Brokers, Topic: c.cfg.Topic, Partition: p,
		Dialer: c.cfg.Client.Dialer(), MinBytes: 1, MaxBytes: schemas.MaxMessageBytes,
		MaxWait: orDur(c.cfg.MaxWait, 200*time.Millisecond)})
	defer r.Close()
	if err := r.SetOffset(pr.next); err != nil {
		pr.items <- fetchItem{err: err}
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case pr.items <- fetchItem{m: m, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			c.log.Debug("partition reader stopped", "partition", p, "err", err)
			return
		}
	}
}
