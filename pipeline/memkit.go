package pipeline

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/segmentio/kafka-go"
)

// MemSource is an in-memory Source for stage-level tests without Kafka. It
// delivers the messages given to Add in order (so each partition is in
// order), assigning offsets per topic/partition when a message has none.
// Once CloseInput was called and every message was delivered, Fetch returns
// io.EOF, which ends a Runner.
type MemSource struct {
	mu        sync.Mutex
	queue     []kafka.Message
	next      map[string]int64 // next offset per topic\x00partition
	committed map[string]int64 // committed next offset per topic\x00partition
	closed    bool
	notify    chan struct{}
}

var _ Source = (*MemSource)(nil)

// NewMemSource returns a source holding msgs.
func NewMemSource(msgs ...kafka.Message) *MemSource {
	s := &MemSource{next: map[string]int64{}, committed: map[string]int64{}, notify: make(chan struct{})}
	s.Add(msgs...)
	return s
}

func tpKey(topic string, partition int) string {
	return topic + "\x00" + strconv.Itoa(partition)
}

// Add queues messages. A message's Offset is set to the next offset of its
// topic/partition.
func (s *MemSource) Add(msgs ...kafka.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		k := tpKey(m.Topic, m.Partition)
		m.Offset = s.next[k]
		s.next[k]++
		s.queue = append(s.queue, m)
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// CloseInput makes Fetch return io.EOF once the queue is empty.
func (s *MemSource) CloseInput() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	close(s.notify)
	s.notify = make(chan struct{})
}

// Fetch returns the next queued message.
func (s *MemSource) Fetch(ctx context.Context) (kafka.Message, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return m, nil
		}
		closed, wait := s.closed, s.notify
		s.mu.Unlock()
		if closed {
			return kafka.Message{}, io.EOF
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		}
	}
}

// Commit records the offsets after msgs.
func (s *MemSource) Commit(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		k := tpKey(m.Topic, m.Partition)
		if m.Offset+1 > s.committed[k] {
			s.committed[k] = m.Offset + 1
		}
	}
	return nil
}

// Committed returns the committed next offset of topic/partition (0 when
// nothing was committed).
func (s *MemSource) Committed(topic string, partition int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed[tpKey(topic, partition)]
}

// Close does nothing.
func (s *MemSource) Close() error { return nil }

// MemSink is an in-memory Sink that keeps every message written, per topic.
type MemSink struct {
	mu     sync.Mutex
	byTop  map[string][]kafka.Message
	fail   int
	failFn error
}

var _ Sink = (*MemSink)(nil)

// NewMemSink returns an empty sink.
func NewMemSink() *MemSink { return &MemSink{byTop: map[string][]kafka.Message{}} }

// FailNext makes the next n calls to Write fail with err, writing nothing.
func (s *MemSink) FailNext(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failFn = n, err
}

// ErrMemSinkFail is the error FailNext uses when given nil.
var ErrMemSinkFail = errors.New("memsink: injected write failure")

// Write stores msgs.
func (s *MemSink) Write(ctx context.Context, msgs ...kafka.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		if s.failFn != nil {
			return s.failFn
		}
		return ErrMemSinkFail
	}
	for _, m := range msgs {
		m.Offset = int64(len(s.byTop[m.Topic]))
		s.byTop[m.Topic] = append(s.byTop[m.Topic], m)
	}
	return nil
}

// Messages returns a copy of what was written to topic, in write order.
func (s *MemSink) Messages(topic string) []kafka.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byTop[topic])
}

// Close does nothing.
func (s *MemSink) Close() error { return nil }
