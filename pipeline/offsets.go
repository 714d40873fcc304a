package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// CommittedOffsets returns the offsets consumer group has committed for each
// of the partitions of topic, -1 where it has none.
func CommittedOffsets(ctx context.Context, cc ClientConfig, group, topic string, partitions int) ([]int64, error) {
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl := cc.Client()
	defer CloseClient(cl)
	res, err := cl.OffsetFetch(cctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, err)
	}
	out := make([]int64, partitions)
	for i := range out {
		out[i] = -1
	}
	if errors.Is(res.Error, kafka.GroupIdNotFound) {
		return out, nil // the group never committed
	}
	if res.Error != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, res.Error)
	}
	for _, p := range res.Topics[topic] {
		if p.Error == nil && p.Partition >= 0 && p.Partition < partitions {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// EndOffsets returns the end offset (the next offset to be written) of each
// partition of topic.
func EndOffsets(ctx context.Context, cc ClientConfig, topic string) ([]int64, error) {
	n, err := PartitionCount(ctx, cc, topic)
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	for p := range n {
		conn, err := cc.Dialer().DialLeader(ctx, "tcp", cc.Brokers[0], topic, p)
		if err != nil {
			return nil, fmt.Errorf("dial leader of %s/%d: %w", topic, p, err)
		}
		out[p], err = conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
	}
	return out, nil
}
