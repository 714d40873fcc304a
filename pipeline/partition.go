package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/segmentio/kafka-go"
)

// Partition names one partition of an input topic.
type Partition struct {
	Topic     string
	Partition int
}

func (p Partition) String() string { return p.Topic + "/" + strconv.Itoa(p.Partition) }

// Position says where a record handed to a PartitionStage comes from: the
// input partition and the offsets of the first and last messages whose rows
// it holds.
type Position struct {
	Partition
	First, Last int64
}

// PartitionStage is a Stage whose state is kept per input partition and has
// to move with the partition when another process of the consumer group
// takes it over, so that rows redelivered after a crash or a rebalance are
// processed exactly as they were the first time (the routing stage: the same
// row must get the same domain whichever process routes it).
//
// The runner calls ProcessAt instead of Process, with the position of the
// record. After the last record of a partition in a micro-batch it calls
// Snapshot with the offset of the next message; with a StateStore it saves
// the snapshot once the batch's outputs are acknowledged and before it
// commits the input, so a saved snapshot never runs ahead of the outputs.
// Before it processes a partition it did not process last (the first batch,
// after a rebalance, or after redelivery) it loads the partition's latest
// snapshot and calls Restore; messages below the snapshot's offset were
// handled already (their outputs were acknowledged before the snapshot was
// saved) and are dropped as duplicates.
type PartitionStage interface {
	Stage
	// ProcessAt is Process for a record of input position pos.
	ProcessAt(ctx context.Context, pos Position, in arrow.Record) (Result, error)
	// Snapshot returns the state of partition p after every record handed
	// to ProcessAt so far, taken at input offset next (the offset of the
	// next message of p). The stage may change what it does from next on
	// (e.g. switch to a newer model) only as recorded in the snapshot it
	// returns here.
	Snapshot(p Partition, next int64) ([]byte, error)
	// Pending reports whether a snapshot of p taken at input offset next
	// would record a change of what the stage does (e.g. a newer model).
	// The runner then takes and saves that snapshot before it processes
	// the message at next, once every earlier batch is finished, so the
	// change applies from next on instead of after one more batch.
	Pending(p Partition, next int64) bool
	// Restore sets the state of partition p from a snapshot taken at input
	// offset at (state is nil, and at -1, when none was ever saved). end is
	// the partition's end offset now: every message another process may have
	// handled without saving a snapshot lies below it.
	Restore(ctx context.Context, p Partition, state []byte, at, end int64) error
}

// StateStore keeps the latest snapshot of each input partition of a
// PartitionStage.
type StateStore interface {
	// Load returns the latest snapshot saved for p and the input offset it
	// was taken at; nil and -1 when there is none.
	Load(ctx context.Context, p Partition) (state []byte, at int64, err error)
	// Save stores state as p's snapshot at input offset at.
	Save(ctx context.Context, p Partition, at int64, state []byte) error
	// End returns the end offset of input partition p: the offset the next
	// message written to it will get.
	End(ctx context.Context, p Partition) (int64, error)
}

// MemStateStore is an in-memory StateStore for tests. EndFunc, when set,
// answers End; otherwise End returns 1<<62.
type MemStateStore struct {
	EndFunc func(p Partition) int64

	mu    sync.Mutex
	saved map[Partition]memSnapshot
	saves int
}

type memSnapshot struct {
	at    int64
	state []byte
}

var _ StateStore = (*MemStateStore)(nil)

// Load implements StateStore.
func (s *MemStateStore) Load(_ context.Context, p Partition) ([]byte, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.saved[p]
	if !ok {
		return nil, -1, nil
	}
	return bytes.Clone(sn.state), sn.at, nil
}

// Save implements StateStore.
func (s *MemStateStore) Save(_ context.Context, p Partition, at int64, state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saved == nil {
		s.saved = map[Partition]memSnapshot{}
	}
	s.saved[p] = memSnapshot{at: at, state: bytes.Clone(state)}
	s.saves++
	return nil
}

// End implements StateStore.
func (s *MemStateStore) End(_ context.Context, p Partition) (int64, error) {
	if s.EndFunc != nil {
		return s.EndFunc(p), nil
	}
	return 1 << 62, nil
}

// Saves returns how many snapshots were saved.
func (s *MemStateStore) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// KafkaStateStore keeps snapshots on a Kafka topic with as many partitions
// as the input topic: the snapshot of input partition p is appended to
// partition p, so the latest one is the last message there. Each message's
// key is the input topic and partition; its value is the input offset (8
// bytes, big-endian) followed by the state. Create the topic with
// EnsureTopics (StateTopicSpec) before use.
type KafkaStateStore struct {
	cc    ClientConfig
	topic string
	cl    *kafka.Client
}

var _ StateStore = (*KafkaStateStore)(nil)

// StateTopicSpec is the spec of a state topic for an input topic of n
// partitions: compacted, so a real Kafka keeps the latest snapshot of every
// partition and drops the rest.
func StateTopicSpec(name string, n int) TopicSpec {
	return TopicSpec{Name: name, Partitions: n, Configs: map[string]string{"cleanup.policy": "compact"}}
}

// NewKafkaStateStore returns a store on topic; close it with Close.
func NewKafkaStateStore(cc ClientConfig, topic string) (*KafkaStateStore, error) {
	if err := cc.validate(); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return &KafkaStateStore{cc: cc, topic: topic, cl: cc.Client()}, nil
}

// Close releases the store's connections.
func (s *KafkaStateStore) Close() { CloseClient(s.cl) }

func (s *KafkaStateStore) key(p Partition) []byte { return []byte(p.String()) }

// Load implements StateStore: it reads the last message of the state
// topic's partition p.
func (s *KafkaStateStore) Load(ctx context.Context, p Partition) ([]byte, int64, error) {
	end, err := s.listOffset(ctx, s.topic, p.Partition, kafka.LastOffset)
	if err != nil {
		return nil, -1, err
	}
	if end <= 0 {
		return nil, -1, nil
	}
	res, err := s.cl.Fetch(ctx, &kafka.FetchRequest{Topic: s.topic, Partition: p.Partition, Offset: end - 1,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	if err != nil {
		return nil, -1, fmt.Errorf("state store: read %s/%d: %w", s.topic, p.Partition, err)
	}
	if res.Error != nil {
		return nil, -1, fmt.Errorf("state store: read %s/%d: %w", s.topic, p.Partition, res.Error)
	}
	var last []byte
	for {
		rec, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, -1, fmt.Errorf("state store: read %s/%d: %w", s.topic, p.Partition, err)
		}
		key, _ := readAll(rec.Key)
		val, err := readAll(rec.Value)
		if err != nil {
			return nil, -1, fmt.Errorf("state store: read %s/%d: %w", s.topic, p.Partition, err)
		}
		if rec.Offset == end-1 && bytes.Equal(key, s.key(p)) {
			last = val
		}
	}
	if last == nil {
		return nil, -1, fmt.Errorf("state store: the last message of %s/%d is not a snapshot of %s", s.topic, p.Partition, p)
	}
	if len(last) < 8 {
		return nil, -1, fmt.Errorf("state store: snapshot of %s on %s/%d is %d bytes, too short", p, s.topic, p.Partition, len(last))
	}
	return last[8:], int64(binary.BigEndian.Uint64(last)), nil
}

// Save implements StateStore; it returns once the broker acknowledged the
// snapshot (acks=all).
func (s *KafkaStateStore) Save(ctx context.Context, p Partition, at int64, state []byte) error {
	val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(state)), uint64(at))
	val = append(val, state...)
	res, err := s.cl.Produce(ctx, &kafka.ProduceRequest{Topic: s.topic, Partition: p.Partition, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes(s.key(p)), Value: kafka.NewBytes(val)})})
	if err != nil {
		return fmt.Errorf("state store: save %s: %w", p, err)
	}
	if res.Error != nil {
		return fmt.Errorf("state store: save %s: %w", p, res.Error)
	}
	return nil
}

// End implements StateStore.
func (s *KafkaStateStore) End(ctx context.Context, p Partition) (int64, error) {
	return s.listOffset(ctx, p.Topic, p.Partition, kafka.LastOffset)
}

func (s *KafkaStateStore) listOffset(ctx context.Context, topic string, partition int, ts int64) (int64, error) {
	res, err := s.cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {{Partition: partition, Timestamp: ts}}}})
	if err != nil {
		return 0, fmt.Errorf("state store: offsets of %s/%d: %w", topic, partition, err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return 0, fmt.Errorf("state store: offsets of %s/%d: %w", topic, partition, po.Error)
		}
		return po.LastOffset, nil
	}
	return 0, fmt.Errorf("state store: no offsets for %s/%d", topic, partition)
}

func readAll(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return io.ReadAll(b)
}
