package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"
)

// OriginChecker tells whether an origin a row claims can exist on the
// broker: its topic exists, its partition is one of the topic's, and its
// offset lies below the partition's end offset. Stages use it to reject rows
// with forged origins (an offset far ahead would make duplicate filters drop
// every later row of that partition). End offsets are cached and read again
// only when a row claims an offset at or beyond the cached one, so a stream
// of legitimate rows costs one lookup per origin partition and batch.
// Methods are safe for concurrent use.
type OriginChecker struct {
	cl *kafka.Client

	mu         sync.Mutex
	partitions map[string]int // partition count per topic; 0: no such topic
	ends       map[Partition]int64
}

// NewOriginChecker returns a checker over cc's brokers; Close it after use.
func NewOriginChecker(cc ClientConfig) (*OriginChecker, error) {
	if err := cc.validate(); err != nil {
		return nil, fmt.Errorf("origin checker: %w", err)
	}
	return &OriginChecker{cl: cc.Client(), partitions: map[string]int{}, ends: map[Partition]int64{}}, nil
}

// Close releases the checker's connections.
func (c *OriginChecker) Close() { CloseClient(c.cl) }

// ErrImpossibleOrigin is wrapped by Check's errors about origins that cannot
// exist (as opposed to errors reaching the broker).
var ErrImpossibleOrigin = errors.New("impossible origin")

// Check returns nil when topic/partition@offset can exist, an error wrapping
// ErrImpossibleOrigin when it cannot, and another error when the broker could
// not be asked (the caller should retry).
func (c *OriginChecker) Check(ctx context.Context, topic string, partition int32, offset int64) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: no origin topic", ErrImpossibleOrigin)
	case partition < 0 || offset < 0:
		return fmt.Errorf("%w: %s/%d@%d: negative partition or offset", ErrImpossibleOrigin, topic, partition, offset)
	}
	p := Partition{Topic: topic, Partition: int(partition)}
	c.mu.Lock()
	end, ok := c.ends[p]
	c.mu.Unlock()
	if ok && offset < end {
		return nil
	}
	n, err := c.partitionCount(ctx, topic)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: topic %s does not exist", ErrImpossibleOrigin, topic)
	}
	if int(partition) >= n {
		return fmt.Errorf("%w: %s has %d partitions, not partition %d", ErrImpossibleOrigin, topic, n, partition)
	}
	res, err := c.cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {{Partition: int(partition), Timestamp: kafka.LastOffset}}}})
	if err != nil {
		return fmt.Errorf("origin checker: end offset of %s: %w", p, err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition != int(partition) {
			continue
		}
		if po.Error != nil {
			return fmt.Errorf("origin checker: end offset of %s: %w", p, po.Error)
		}
		c.mu.Lock()
		c.ends[p] = max(c.ends[p], po.LastOffset)
		c.mu.Unlock()
		if offset >= po.LastOffset {
			return fmt.Errorf("%w: offset %d of %s is at or beyond the partition's end offset %d", ErrImpossibleOrigin, offset, p, po.LastOffset)
		}
		return nil
	}
	return fmt.Errorf("origin checker: no end offset for %s", p)
}

// partitionCount returns topic's partition count, 0 when it does not exist.
// Counts are cached; a topic not found (or a partition beyond the count) is
// asked about again, since topics and partitions can be created.
func (c *OriginChecker) partitionCount(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	n, ok := c.partitions[topic]
	c.mu.Unlock()
	if ok && n > 0 {
		return n, nil
	}
	md, err := c.cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("origin checker: metadata of %s: %w", topic, err)
	}
	n = 0
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil && !errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("origin checker: metadata of %s: %w", topic, t.Error)
		}
		n = len(t.Partitions)
	}
	c.mu.Lock()
	c.partitions[topic] = n
	c.mu.Unlock()
	return n, nil
}
