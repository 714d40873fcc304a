package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// PartitionLag is how far a consumer is behind on one partition: End, the
// partition's end offset (its high watermark: the offset the next message
// written to it will get), minus Next, the next offset the consumer will
// consume (the group's committed offset, for a consumer group). Lag is End −
// Next, never negative.
type PartitionLag struct {
	Partition
	Next, End, Lag int64
}

// LagReporter is the optional capability of a Source to report its lag on
// each partition it consumes now. A Runner with Metrics asks it every
// RunnerConfig.LagInterval and sets domainflow_consumer_lag from it.
type LagReporter interface {
	// Lags returns the lag of each partition the source is assigned now,
	// ordered by topic and partition.
	Lags(ctx context.Context) ([]PartitionLag, error)
}

var _ LagReporter = (*KafkaSource)(nil)

// setPositions starts the positions of generation n: the offsets the
// coordinator assigned (committed, or kafka-go's start offset).
func (s *KafkaSource) setPositions(n int64, assigned map[string][]kafka.PartitionAssignment) {
	pos := map[Partition]int64{}
	for topic, as := range assigned {
		for _, a := range as {
			pos[Partition{Topic: topic, Partition: a.ID}] = a.Offset
		}
	}
	s.posMu.Lock()
	defer s.posMu.Unlock()
	s.pos, s.posN = pos, n
}

// fetchedAt records that the first message fetched of p in generation n is
// at offset: a partition that started at FirstOffset or LastOffset (no
// committed offset) started there.
func (s *KafkaSource) fetchedAt(n int64, p Partition, offset int64) {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	if s.posN == n {
		if at, ok := s.pos[p]; ok && at < 0 {
			s.pos[p] = offset
		}
	}
}

// committed records the offsets committed in generation n.
func (s *KafkaSource) committed(n int64, offsets map[string]map[int]int64) {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	if s.posN != n {
		return
	}
	for topic, ps := range offsets {
		for p, next := range ps {
			part := Partition{Topic: topic, Partition: p}
			if at, ok := s.pos[part]; ok && next > at {
				s.pos[part] = next
			}
		}
	}
}

// Lags implements LagReporter: for each partition of the current
// generation's assignment, the end offset (asked of the broker) minus the
// next offset to consume, which is what this member committed last, or the
// group's committed offset when it was assigned the partition. That is the
// lag Kafka's own tools show for the group (kafka-consumer-groups
// --describe), limited to this member's partitions. A partition without a
// committed offset counts from the first offset kept (StartAtEnd: from where
// it started reading; 0 until it has read a message).
func (s *KafkaSource) Lags(ctx context.Context) ([]PartitionLag, error) {
	s.posMu.Lock()
	pos := maps.Clone(s.pos)
	s.posMu.Unlock()
	if len(pos) == 0 {
		return nil, nil
	}
	req := map[string][]kafka.OffsetRequest{}
	for p := range pos {
		req[p.Topic] = append(req[p.Topic], kafka.OffsetRequest{Partition: p.Partition, Timestamp: kafka.LastOffset})
	}
	ends, err := s.listOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	firsts := map[Partition]int64{}
	if hasFirst(pos) { // nothing committed, nothing read yet: from the first offset kept
		clear(req)
		for p, next := range pos {
			if next == kafka.FirstOffset {
				req[p.Topic] = append(req[p.Topic], kafka.OffsetRequest{Partition: p.Partition, Timestamp: kafka.FirstOffset})
			}
		}
		if firsts, err = s.listOffsets(ctx, req); err != nil {
			return nil, err
		}
	}
	out := make([]PartitionLag, 0, len(pos))
	for p, next := range pos {
		end, ok := ends[p]
		if !ok {
			continue
		}
		switch next {
		case kafka.FirstOffset:
			next = firsts[p]
		case kafka.LastOffset: // StartAtEnd, nothing read yet
			next = end
		}
		out = append(out, PartitionLag{Partition: p, Next: next, End: end, Lag: max(end-next, 0)})
	}
	slices.SortFunc(out, func(a, b PartitionLag) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return a.Partition.Partition - b.Partition.Partition
	})
	return out, nil
}

func hasFirst(pos map[Partition]int64) bool {
	for _, next := range pos {
		if next == kafka.FirstOffset {
			return true
		}
	}
	return false
}

// listOffsets answers req (one timestamp per partition) with the offset of
// each partition: LastOffset for kafka.LastOffset, FirstOffset for
// kafka.FirstOffset.
func (s *KafkaSource) listOffsets(ctx context.Context, req map[string][]kafka.OffsetRequest) (map[Partition]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.offCl.ListOffsets(cctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("kafka source: offsets: %w", err)
	}
	first := map[Partition]bool{}
	for topic, rs := range req {
		for _, r := range rs {
			first[Partition{Topic: topic, Partition: r.Partition}] = r.Timestamp == kafka.FirstOffset
		}
	}
	out := map[Partition]int64{}
	for topic, ps := range res.Topics {
		for _, po := range ps {
			if po.Error != nil {
				return nil, fmt.Errorf("kafka source: offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			p := Partition{Topic: topic, Partition: po.Partition}
			if first[p] {
				out[p] = po.FirstOffset
			} else {
				out[p] = po.LastOffset
			}
		}
	}
	return out, nil
}

// lagGauges keeps domainflow_consumer_lag of one runner: the series of the
// partitions its source consumes now, and none of those it gave up.
type lagGauges struct {
	m     *Metrics
	stage string
	shown map[Partition]bool
}

// set sets the series of lags and deletes those of partitions not in lags
// (moved to another process of the group).
func (g *lagGauges) set(lags []PartitionLag) {
	now := map[Partition]bool{}
	for _, l := range lags {
		g.m.Lag.WithLabelValues(g.stage, l.Topic, strconv.Itoa(l.Partition.Partition)).Set(float64(l.Lag))
		now[l.Partition] = true
	}
	for p := range g.shown {
		if !now[p] {
			g.m.Lag.DeleteLabelValues(g.stage, p.Topic, strconv.Itoa(p.Partition))
		}
	}
	g.shown = now
}

// reportLag sets the runner's lag series from its source every
// LagInterval until ctx ends, then deletes them: a stopped runner consumes
// nothing. A failed look (the broker away) keeps the last values.
func (r *Runner) reportLag(ctx context.Context, src LagReporter) {
	g := &lagGauges{m: r.cfg.Metrics, stage: r.cfg.Name}
	defer g.set(nil)
	t := time.NewTicker(r.cfg.LagInterval)
	defer t.Stop()
	for {
		lags, err := src.Lags(ctx)
		switch {
		case err == nil:
			g.set(lags)
		case ctx.Err() == nil:
			r.log.Debug("consumer lag not read", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
