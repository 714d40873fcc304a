package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// poll is how long a partition's goroutine waits for a message before it
// looks whether its domain has been idle for Config.ExitOnIdle.
const poll = 100 * time.Millisecond

// deadLetterTimeout bounds the first attempt to write a dead letter, which
// outlives a stop by this much.
const deadLetterTimeout = 30 * time.Second

// archiver is what the domains of one Run share: the configuration and the
// dead-letter sink.
type archiver struct {
	cfg  Config
	log  *slog.Logger
	dead *pipeline.KafkaSink

	// For Config.Progress, over every domain: documents taken into
	// shards, documents of the shards written, and shards written.
	taken, written, shards atomic.Int64
}

func newArchiver(cfg Config) (*archiver, error) {
	dead, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cfg.Client})
	if err != nil {
		return nil, fmt.Errorf("archive: dead letters: %w", err)
	}
	return &archiver{cfg: cfg, log: cfg.logger(), dead: dead}, nil
}

func (a *archiver) close() { a.dead.Close() }

// domain archives docs.domain.<id> into Dir/<id>/, one goroutine per
// partition, until the domain is idle or ctx ends. The goroutines end
// together: at the domain's idle time, at the end of ctx, or at the first
// failure of one of them; each writes its open shard unless it failed.
func (a *archiver) domain(ctx context.Context, id int) (Report, error) {
	rep := Report{Domain: id}
	log := a.log.With("domain", id)
	topic := pipeline.DomainTopic(id)
	dir := filepath.Join(a.cfg.Dir, strconv.Itoa(id))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return rep, err
	}
	next, err := NextOffsets(dir)
	if err != nil {
		return rep, err
	}
	var n int
	err = pipeline.Retry(ctx, log, "read the partitions of "+topic, func(ctx context.Context) error {
		var err error
		n, err = pipeline.PartitionCount(ctx, a.cfg.Client, topic)
		return err
	})
	if err != nil {
		return rep, err
	}
	c, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: a.cfg.Client, Topic: topic, Logger: log})
	if err != nil {
		return rep, err
	}
	defer c.Close()

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	act := &activity{last: time.Now()}
	parts := make([]*partition, n)
	var wg sync.WaitGroup
	for p := range parts {
		// A partition without shards starts at its first message kept; one
		// whose next offset is no longer kept, at its first one too.
		start := pipeline.FirstOffset
		if off, ok := next[p]; ok {
			start = off
		}
		c.Assign(p, start)
		pt := &partition{a: a, c: c, p: p, dir: dir, log: log, act: act}
		parts[p] = pt
		wg.Go(func() { pt.run(ctx, stopCtx, stop) })
	}
	wg.Wait()
	var errs []error
	for _, pt := range parts {
		rep.Docs += pt.docs
		rep.Shards += pt.shards
		if pt.err != nil {
			errs = append(errs, pt.err)
		}
	}
	if len(errs) == 1 {
		return rep, errs[0]
	}
	return rep, errors.Join(errs...)
}

// activity is a domain's clock of input, shared by its partitions: the
// domain is idle when none of them is taking a message and none took one
// for a while.
type activity struct {
	mu   sync.Mutex
	last time.Time
	busy int
}

func (a *activity) begin() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy++
	a.last = time.Now()
}

func (a *activity) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy--
	a.last = time.Now()
}

func (a *activity) idleFor(d time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busy == 0 && time.Since(a.last) >= d
}

// partition is one partition's goroutine: it owns the partition's open
// shard and counts what it wrote.
type partition struct {
	a   *archiver
	c   *pipeline.PartitionConsumer
	p   int
	dir string
	log *slog.Logger
	act *activity

	open   *shard // nil when no message was taken since the last shard
	docs   int64  // documents of the shards written (and of the open one at the end)
	shards int
	err    error // why the goroutine failed
}

// run takes the partition's messages until stopCtx ends (ctx ended, the
// domain is idle, or another partition failed), then writes the open shard.
// Dead letters are written under ctx, so an idle stop never cuts one short.
func (pt *partition) run(ctx, stopCtx context.Context, stop context.CancelFunc) {
	defer func() { pt.open.release() }()
	fail := func(err error) {
		pt.err = err
		stop()
	}
	idle := pt.a.cfg.ExitOnIdle
	for stopCtx.Err() == nil {
		m, ok, err := pt.next(stopCtx)
		if err != nil {
			if stopCtx.Err() != nil {
				break
			}
			fail(err)
			return
		}
		if !ok {
			if idle > 0 && pt.act.idleFor(idle) {
				stop()
				break
			}
			continue
		}
		pt.act.begin()
		stopped, err := pt.take(ctx, m)
		pt.act.end()
		if err != nil {
			fail(err)
			return
		}
		if stopped {
			break
		}
	}
	if pt.open != nil {
		pt.docs += pt.open.rows
	}
	if err := pt.flush(); err != nil {
		fail(err)
	}
}

// next returns the partition's next message; ok is false when none came
// within poll. A failed read (the broker away) is retried until it
// succeeds or ctx ends: the consumer starts again after the last message it
// handed out, so nothing is skipped or read twice.
func (pt *partition) next(ctx context.Context) (m pipeline.Message, ok bool, err error) {
	err = pipeline.Retry(ctx, pt.log, "read "+pt.c.Topic(), func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, poll)
		defer cancel()
		var err error
		m, err = pt.c.Next(wctx, pt.p)
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil && ctx.Err() == nil:
			return nil // no message within poll
		}
		return err
	})
	return m, ok, err
}

// take adds message m to the open shard. It writes the open shard first
// when m's documents have other extra columns than the shard's, and after m
// when the shard is full. A message that does not decode is dead-lettered
// and still taken (its offset is the shard's). stopped reports that ctx
// ended while the dead letter was written: m is not taken, the shard ends
// before it, and a restarted sink reads it again.
func (pt *partition) take(ctx context.Context, m pipeline.Message) (stopped bool, err error) {
	recs, derr := documents(m)
	key := ""
	if len(recs) > 0 {
		key = schemas.ExtraKey(recs[0])
	}
	if s := pt.open; s != nil && len(recs) > 0 && s.rows > 0 && s.key != key {
		pt.docs += s.rows
		if err := pt.flush(); err != nil {
			releaseRecords(recs)
			return false, err
		}
	}
	if pt.open == nil {
		pt.open = &shard{first: m.Offset, key: key}
	}
	s := pt.open
	if s.rows == 0 {
		s.key = key
	}
	if derr != nil {
		pt.log.Warn("message dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", derr)
		dl := pipeline.DeadLetter(pipeline.TopicDeadLetter, "archive", m, derr)
		werr := pipeline.Retry(ctx, pt.log, "write a dead letter", func(ctx context.Context) error {
			// The first attempt outlives a stop by its own timeout.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterTimeout)
			defer cancel()
			return pt.a.dead.Write(wctx, dl)
		})
		if werr != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return false, fmt.Errorf("dead letter: %w", werr)
		}
	}
	s.recs = append(s.recs, recs...)
	for _, rec := range recs {
		s.rows += rec.NumRows()
		pt.a.taken.Add(rec.NumRows())
	}
	s.last = m.Offset
	s.msgs++
	if s.msgs >= pt.a.cfg.shardMessages() {
		pt.docs += s.rows
		return false, pt.flush()
	}
	return false, nil
}

// flush writes the open shard, if it took a message, atomically.
func (pt *partition) flush() error {
	s := pt.open
	if s == nil || s.msgs == 0 {
		return nil
	}
	path := filepath.Join(pt.dir, ShardName(pt.p, s.first, s.last))
	if err := schemas.WriteFileAtomic(path, func(f *os.File) error { return schemas.WriteParquetShard(f, s.recs) }); err != nil {
		return fmt.Errorf("write shard %s: %w", path, err)
	}
	pt.shards++
	pt.a.shards.Add(1)
	pt.a.written.Add(s.rows)
	s.release()
	pt.open = nil
	return nil
}
