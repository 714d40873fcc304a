package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// KafkaSource is a Source over a Kafka consumer group: kafka-go's
// ConsumerGroup runs the group protocol, and each partition of a generation
// is read by a goroutine of its own (started by the generation, ended when
// the generation ends). Commits are explicit and synchronous, never
// automatic.
//
// Why not kafka-go's group Reader: it joins with a fixed 5 s network timeout
// on top of the rebalance timeout. A coordinator that restarts its join
// barrier whenever a member arrives (the embedded broker does) keeps a
// rebalance open for longer than that while members crash and restart; the
// waiting members then time out, rejoin as new members, restart the barrier
// themselves, and the group never settles (a rebalance storm in which
// nothing is routed). KafkaSource waits for a join as long as a rebalance
// can take (GroupTimeout), so a group settles once members stop coming and
// going.
type KafkaSource struct {
	cg   *kafka.ConsumerGroup
	cfg  SourceConfig
	log  *slog.Logger
	msgs chan fetched

	gen     atomic.Pointer[kafka.Generation] // the current generation
	genN    atomic.Int64                     // generations joined
	lastGen sync.Map                         // Partition → genN of its last fetched message
	lag     atomic.Int64

	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

// fetched is a message read for generation gen.
type fetched struct {
	m   kafka.Message
	gen int64
}

var (
	_ Source       = (*KafkaSource)(nil)
	_ generationer = (*KafkaSource)(nil)
)

// errGenerationEnded is the error of a commit for messages of a generation
// that has ended: another member may own their partitions now; they will be
// redelivered.
var errGenerationEnded = errors.New("kafka source: the consumer-group generation that delivered these messages has ended")

// NewKafkaSource joins the consumer group cfg.GroupID on cfg.Topics.
func NewKafkaSource(cfg SourceConfig) (*KafkaSource, error) {
	if err := cfg.Client.validate(); err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	if cfg.GroupID == "" {
		return nil, errors.New("kafka source: a consumer group id is required")
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("kafka source: no topics given")
	}
	start := kafka.FirstOffset
	if cfg.StartAtEnd {
		start = kafka.LastOffset
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                cfg.GroupID,
		Brokers:           cfg.Client.Brokers,
		Dialer:            cfg.Client.Dialer(),
		Topics:            cfg.Topics,
		HeartbeatInterval: orDur(cfg.HeartbeatInterval, 500*time.Millisecond),
		SessionTimeout:    orDur(cfg.SessionTimeout, 6*time.Second),
		RebalanceTimeout:  orDur(cfg.RebalanceTimeout, 10*time.Second),
		// The network timeout of each group request; a join may take
		// this long on top of the rebalance timeout (see KafkaSource).
		Timeout:          orDur(cfg.GroupTimeout, time.Minute),
		JoinGroupBackoff: 500 * time.Millisecond,
		StartOffset:      start,
		// Partitions added to a topic (e.g. more domains) are picked up.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	log := cfg.Client.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &KafkaSource{cg: cg, cfg: cfg, log: log, msgs: make(chan fetched, 4096), stop: stop, done: make(chan struct{})}
	go s.run(ctx) // owner: the source; ends at Close
	return s, nil
}

// run joins generation after generation and starts a reader per assigned
// partition in each.
func (s *KafkaSource) run(ctx context.Context) {
	defer close(s.done)
	backoff := RetryBackoffMin
	for {
		gen, err := s.cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			s.log.Warn("consumer group: no generation yet; retrying", "group", s.cfg.GroupID, "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, RetryBackoffMax)
			continue
		}
		backoff = RetryBackoffMin
		n := s.genN.Add(1)
		s.gen.Store(gen)
		var parts []string
		for topic, assigned := range gen.Assignments {
			for _, pa := range assigned {
				parts = append(parts, Partition{Topic: topic, Partition: pa.ID}.String())
				gen.Start(func(gctx context.Context) { s.readPartition(gctx, n, topic, pa) })
			}
		}
		s.log.Debug("consumer group: generation joined", "group", s.cfg.GroupID, "generation", gen.ID, "member", gen.MemberID, "partitions", parts)
	}
}

// readPartition feeds the messages of one assigned partition to s.msgs until
// the generation ends, retrying through broker outages.
func (s *KafkaSource) readPartition(ctx context.Context, n int64, topic string, pa kafka.PartitionAssignment) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          s.cfg.Client.Brokers,
		Topic:            topic,
		Partition:        pa.ID,
		Dialer:           s.cfg.Client.Dialer(),
		MinBytes:         1,
		MaxBytes:         orInt(s.cfg.MaxBytes, schemas.MaxMessageBytes),
		MaxWait:          orDur(s.cfg.MaxWait, 100*time.Millisecond),
		ReadBatchTimeout: 10 * time.Second,
		ReadBackoffMin:   50 * time.Millisecond,
		ReadBackoffMax:   time.Second,
		MaxAttempts:      5,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		s.log.Error("consumer group: partition not read", "topic", topic, "partition", pa.ID, "offset", pa.Offset, "err", err)
		return
	}
	backoff := RetryBackoffMin
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			s.log.Warn("fetch failed; retrying", "topic", topic, "partition", pa.ID, "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, RetryBackoffMax)
			continue
		}
		backoff = RetryBackoffMin
		select {
		case s.msgs <- fetched{m: m, gen: n}:
		case <-ctx.Done():
			return
		}
	}
}

// Fetch returns the next message of the current generation (messages still
// queued from an ended one are dropped: they are redelivered to whoever owns
// their partition now).
func (s *KafkaSource) Fetch(ctx context.Context) (kafka.Message, error) {
	for {
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-s.done:
			return kafka.Message{}, io.EOF
		case f := <-s.msgs:
			if f.gen != s.genN.Load() {
				continue
			}
			s.lastGen.Store(Partition{Topic: f.m.Topic, Partition: f.m.Partition}, f.gen)
			if f.m.HighWaterMark > 0 {
				s.lag.Store(max(f.m.HighWaterMark-f.m.Offset-1, 0))
			}
			return f.m, nil
		}
	}
}

// Commit commits, for each partition, the offset after the last of msgs, in
// the generation that delivered them. If that generation has ended it
// commits nothing and returns an error: the messages will be redelivered.
func (s *KafkaSource) Commit(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	gen := s.gen.Load()
	n := s.genN.Load()
	offsets := map[string]map[int]int64{}
	for _, m := range msgs {
		if g, ok := s.lastGen.Load(Partition{Topic: m.Topic, Partition: m.Partition}); !ok || g.(int64) != n || gen == nil {
			return errGenerationEnded
		}
		if offsets[m.Topic] == nil {
			offsets[m.Topic] = map[int]int64{}
		}
		offsets[m.Topic][m.Partition] = max(offsets[m.Topic][m.Partition], m.Offset+1)
	}
	done := make(chan error, 1)
	go func() { done <- gen.CommitOffsets(offsets) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka source: commit: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka source: commit: %w", ctx.Err())
	}
}

// Generation counts the consumer-group generations joined so far.
func (s *KafkaSource) Generation() int64 { return s.genN.Load() }

// Lag is the number of messages behind the end of the partition last read.
func (s *KafkaSource) Lag() int64 { return s.lag.Load() }

// Close leaves the group and stops the partition readers.
func (s *KafkaSource) Close() error {
	var err error
	s.closed.Do(func() {
		err = s.cg.Close()
		s.stop()
		<-s.done
	})
	return err
}
