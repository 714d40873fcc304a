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
	cgMu sync.Mutex
	cg   *kafka.ConsumerGroup // replaced by a new member when a partition stalls (see watchStalls)
	cfg  SourceConfig
	mk   func() (*kafka.ConsumerGroup, error)
	log  *slog.Logger
	msgs chan fetched

	gen     atomic.Pointer[kafka.Generation] // the current generation
	genN    atomic.Int64                     // generations joined
	lastGen sync.Map                         // Partition → genN of its last fetched message

	// posMu guards pos: the next offset to consume of each partition of
	// the current generation, as the group sees it (the committed offset,
	// or the start offset kafka-go chose: FirstOffset or LastOffset until
	// the partition's first message is fetched), kept for Lags.
	posMu sync.Mutex
	pos   map[Partition]int64
	posN  int64         // the genN pos belongs to
	offCl *kafka.Client // asks the end offsets for Lags

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
	log := cfg.Client.Logger
	if log == nil {
		log = slog.Default()
	}
	glog := log.With("group", cfg.GroupID)
	mk := func() (*kafka.ConsumerGroup, error) {
		return kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
			ID:                cfg.GroupID,
			Brokers:           cfg.Client.Brokers,
			Dialer:            cfg.Client.Dialer(),
			Topics:            cfg.Topics,
			HeartbeatInterval: orDur(cfg.HeartbeatInterval, 500*time.Millisecond),
			SessionTimeout:    orDur(cfg.SessionTimeout, 6*time.Second),
			RebalanceTimeout:  orDur(cfg.RebalanceTimeout, 10*time.Second),
			// The network timeout of each group request; a join may take
			// this long on top of the rebalance timeout (see KafkaSource).
			Timeout:          orDur(cfg.GroupTimeout, 20*time.Second),
			JoinGroupBackoff: 500 * time.Millisecond,
			StartOffset:      start,
			// Partitions added to a topic (e.g. more domains) are picked up.
			WatchPartitionChanges:  true,
			PartitionWatchInterval: 5 * time.Second,
			Logger: kafka.LoggerFunc(func(msg string, args ...any) {
				glog.Debug("consumer group: " + fmt.Sprintf(msg, args...))
			}),
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				glog.Warn("consumer group: " + fmt.Sprintf(msg, args...))
			}),
		})
	}
	cg, err := mk()
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &KafkaSource{cg: cg, mk: mk, cfg: cfg, log: log, msgs: make(chan fetched, 4096), stop: stop, done: make(chan struct{}),
		offCl: cfg.Client.Client()}
	go s.run(ctx) // owner: the source; ends at Close
	if !cfg.NoStallWatch {
		go s.watchStalls(ctx) // owner: the source; ends at Close
	}
	return s, nil
}

// run joins generation after generation and starts a reader per assigned
// partition in each.
func (s *KafkaSource) run(ctx context.Context) {
	defer close(s.done)
	backoff := RetryBackoffMin
	for {
		s.cgMu.Lock()
		cg := s.cg
		s.cgMu.Unlock()
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafka.ErrGroupClosed) {
				continue // replaced by a new member (watchStalls)
			}
			s.log.Warn("consumer group: no generation yet; retrying", "group", s.cfg.GroupID, "err", err, "backoff", backoff)
			if !Sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, RetryBackoffMax)
			continue
		}
		backoff = RetryBackoffMin
		n := s.genN.Add(1)
		s.gen.Store(gen)
		s.setPositions(n, gen.Assignments)
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
			if !Sleep(ctx, backoff) {
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
			p := Partition{Topic: f.m.Topic, Partition: f.m.Partition}
			s.lastGen.Store(p, f.gen)
			s.fetchedAt(f.gen, p, f.m.Offset)
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
		s.committed(n, offsets)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka source: commit: %w", ctx.Err())
	}
}

// Generation counts the consumer-group generations joined so far.
func (s *KafkaSource) Generation() int64 { return s.genN.Load() }

// Close leaves the group and stops the partition readers.
func (s *KafkaSource) Close() error {
	var err error
	s.closed.Do(func() {
		s.stop()
		s.cgMu.Lock()
		err = s.cg.Close()
		s.cgMu.Unlock()
		<-s.done
		CloseClient(s.offCl)
	})
	return err
}

// watchStalls rejoins the group as a new member when a partition of the
// input has messages but its committed offset has not moved for a while and
// it is not this member's: the coordinator may hold it for a member whose
// process is gone and which it never expires (the embedded broker keeps a
// member that joined but never synced or heartbeated). Joining anew makes
// the coordinator rebalance and drop every member that does not rejoin.
// A partition whose owner is merely slow costs one needless rebalance.
func (s *KafkaSource) watchStalls(ctx context.Context) {
	every := orDur(s.cfg.SessionTimeout, 6*time.Second) + orDur(s.cfg.RebalanceTimeout, 10*time.Second)
	stallAfter := orDur(s.cfg.StallAfter, 2*every)
	cl := s.cfg.Client.Client()
	defer CloseClient(cl)
	type seen struct {
		committed int64
		since     time.Time
	}
	last := map[Partition]seen{}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mine := map[Partition]bool{}
		if gen := s.gen.Load(); gen != nil {
			for topic, as := range gen.Assignments {
				for _, a := range as {
					mine[Partition{Topic: topic, Partition: a.ID}] = true
				}
			}
		}
		stalled, err := s.stalledPartitions(ctx, cl, mine, func(p Partition, committed int64, now time.Time) time.Duration {
			sn, ok := last[p]
			if !ok || sn.committed != committed {
				last[p] = seen{committed: committed, since: now}
				return 0
			}
			return now.Sub(sn.since)
		}, stallAfter)
		if err != nil || len(stalled) == 0 {
			continue
		}
		s.log.Warn("consumer group: partitions with input have not moved; rejoining the group so that the coordinator drops members that are gone",
			"group", s.cfg.GroupID, "partitions", stalled, "after", stallAfter)
		cg, err := s.mk()
		if err != nil {
			s.log.Warn("consumer group: rejoin failed", "err", err)
			continue
		}
		s.cgMu.Lock()
		if ctx.Err() != nil { // Close came first
			s.cgMu.Unlock()
			_ = cg.Close()
			return
		}
		old := s.cg
		s.cg = cg
		s.cgMu.Unlock()
		_ = old.Close()
		clear(last)
	}
}

// stalledPartitions returns the partitions of the source's topics, other than
// mine, that have messages past the group's committed offset and whose
// committed offset has not moved for stallAfter (age tells how long).
func (s *KafkaSource) stalledPartitions(ctx context.Context, cl *kafka.Client, mine map[Partition]bool,
	age func(p Partition, committed int64, now time.Time) time.Duration, stallAfter time.Duration) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := cl.Metadata(cctx, &kafka.MetadataRequest{Topics: s.cfg.Topics})
	if err != nil {
		return nil, err
	}
	want := map[string][]int{}
	lreq := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			want[t.Name] = append(want[t.Name], p.ID)
			lreq[t.Name] = append(lreq[t.Name], kafka.OffsetRequest{Partition: p.ID, Timestamp: kafka.LastOffset})
		}
	}
	committed, err := cl.OffsetFetch(cctx, &kafka.OffsetFetchRequest{GroupID: s.cfg.GroupID, Topics: want})
	if err != nil {
		return nil, err
	}
	ends, err := cl.ListOffsets(cctx, &kafka.ListOffsetsRequest{Topics: lreq})
	if err != nil {
		return nil, err
	}
	end := map[Partition]int64{}
	for topic, ps := range ends.Topics {
		for _, po := range ps {
			if po.Error == nil {
				end[Partition{Topic: topic, Partition: po.Partition}] = po.LastOffset
			}
		}
	}
	now := time.Now()
	var stalled []string
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			part := Partition{Topic: topic, Partition: p.Partition}
			if p.Error != nil || mine[part] {
				continue
			}
			c := max(p.CommittedOffset, 0)
			if e, ok := end[part]; !ok || e <= c {
				age(part, -2, now) // nothing to read: not stalled
				continue
			}
			if age(part, c, now) >= stallAfter {
				stalled = append(stalled, part.String())
			}
		}
	}
	return stalled, nil
}
