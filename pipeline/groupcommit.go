package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupCommitter commits offsets to a consumer group without joining it: a
// "simple" commit (generation -1, no member id), which Kafka accepts for a
// group that has no active members. A consumer that keeps its own positions
// (a trainer, in its checkpoints) uses it to show its progress to Kafka's
// tools: kafka-consumer-groups --describe --group G then shows the
// committed offsets and the lag of every partition. Nothing reads these
// offsets back: they are for monitoring only.
//
// Commit commits and waits. Offer hands the latest positions to a goroutine
// that commits them in the background (positions offered while a commit is
// under way replace each other: only the latest is sent), so a slow or
// absent broker never holds up the caller; a failed commit is retried with
// backoff until newer positions come or Close. Close commits what was offered
// last (within CloseTimeout) and stops the goroutine.
//
// Offer and Close may be called from one goroutine at a time; Commit from
// any.
type GroupCommitter struct {
	cc    ClientConfig
	group string
	log   *slog.Logger
	cl    *kafka.Client

	mu      sync.Mutex
	pending map[string]map[int]int64 // offered, not yet committed
	wake    chan struct{}            // 1-buffered: something was offered
	quit    chan struct{}            // closed by Close
	done    chan struct{}            // closed when the goroutine ended
	closed  bool
	failing bool // the last background commit failed (logged once per streak)
}

// GroupCommitterCloseTimeout bounds the last commit Close makes.
const GroupCommitterCloseTimeout = 5 * time.Second

// NewGroupCommitter returns a committer to group; log gets a warning when
// background commits start failing and a line when they work again (nil:
// cc.Logger, else slog.Default()).
func NewGroupCommitter(cc ClientConfig, group string, log *slog.Logger) (*GroupCommitter, error) {
	if group == "" {
		return nil, errors.New("group committer: no group id")
	}
	if err := cc.validate(); err != nil {
		return nil, fmt.Errorf("group committer for %s: %w", group, err)
	}
	if log == nil {
		log = cc.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	c := &GroupCommitter{cc: cc, group: group, log: log.With("group", group), cl: cc.Client(),
		pending: map[string]map[int]int64{}, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run() // owner: c; ends at Close
	return c, nil
}

// Group is the group id committed to.
func (c *GroupCommitter) Group() string { return c.group }

// Commit commits next (partition → the next offset to consume) on topic to
// the group and waits for the broker's answer.
func (c *GroupCommitter) Commit(ctx context.Context, topic string, next map[int]int64) error {
	return c.commit(ctx, map[string]map[int]int64{topic: next})
}

func (c *GroupCommitter) commit(ctx context.Context, offsets map[string]map[int]int64) error {
	req := &kafka.OffsetCommitRequest{GroupID: c.group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for topic, ps := range offsets {
		for p, off := range ps {
			req.Topics[topic] = append(req.Topics[topic], kafka.OffsetCommit{Partition: p, Offset: off})
		}
	}
	if len(req.Topics) == 0 {
		return nil
	}
	res, err := c.cl.OffsetCommit(ctx, req)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", c.group, err)
	}
	var errs []error
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("commit offsets of group %s: %w", c.group, errors.Join(errs...))
	}
	return nil
}

// Offer hands next (partition → the next offset to consume) on topic to the
// background goroutine; it returns at once. Partitions not named keep what
// was offered for them before.
func (c *GroupCommitter) Offer(topic string, next map[int]int64) {
	c.mu.Lock()
	if c.pending[topic] == nil {
		c.pending[topic] = map[int]int64{}
	}
	maps.Copy(c.pending[topic], next)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close commits what was offered and not committed yet (waiting at most
// GroupCommitterCloseTimeout), stops the goroutine and releases the
// connections; it returns the last commit's error.
func (c *GroupCommitter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.quit)
	<-c.done
	defer CloseClient(c.cl)
	ctx, cancel := context.WithTimeout(context.Background(), GroupCommitterCloseTimeout)
	defer cancel()
	return c.flush(ctx)
}

// take returns the pending offsets and clears them.
func (c *GroupCommitter) take() map[string]map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	c.pending = map[string]map[int]int64{}
	return p
}

// putBack returns offsets that failed to pending, under any offered since.
func (c *GroupCommitter) putBack(offsets map[string]map[int]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range offsets {
		if c.pending[topic] == nil {
			c.pending[topic] = map[int]int64{}
		}
		for p, off := range ps {
			if _, newer := c.pending[topic][p]; !newer {
				c.pending[topic][p] = off
			}
		}
	}
}

// flush commits the pending offsets; on failure they stay pending.
func (c *GroupCommitter) flush(ctx context.Context) error {
	offsets := c.take()
	if len(offsets) == 0 {
		return nil
	}
	err := c.commit(ctx, offsets)
	if err != nil {
		c.putBack(offsets)
		if errors.Is(err, context.Canceled) {
			return err // an attempt Close ended: Close commits them again
		}
		if !c.failing {
			c.log.Warn("monitoring offsets not committed; retrying (progress stays in the checkpoints)", "err", err)
		}
		c.failing = true
		return err
	}
	if c.failing {
		c.log.Info("monitoring offsets committed again")
	}
	c.failing = false
	return nil
}

// run commits what is offered until quit is closed.
func (c *GroupCommitter) run() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends an attempt under way at Close; owner: run
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := RetryBackoffMin
	var retry <-chan time.Time
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		case <-retry:
		}
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.flush(actx)
		acancel()
		if err == nil {
			backoff, retry = RetryBackoffMin, nil
			continue
		}
		retry = time.After(backoff)
		backoff = min(2*backoff, RetryBackoffMax)
	}
}
