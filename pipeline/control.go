package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// ControlTopicConfig configures a ControlTopic.
type ControlTopicConfig struct {
	Client ClientConfig
	// Name is the topic, e.g. TopicRouterModels.
	Name string
	// MaxMessageBytes is the topic's max.message.bytes, and so the largest
	// value it takes. Default: schemas.MaxMessageBytes.
	MaxMessageBytes int
	// Logger gets the warnings of retried reads and writes. Default:
	// Client.Logger, else slog.Default().
	Logger *slog.Logger
}

// ControlTopic is a compacted topic of one partition that carries keyed
// control messages: the models and settings the processes of a pipeline
// share (router.models holds the router in use and the featurizer state).
// Compaction keeps the latest value of each key, so the latest message of
// each key is the state; a process that starts reads the whole topic
// (Latest, All) and then follows it (Watch).
//
// Every method rides out broker outages, retrying with backoff until its
// ctx ends; a permanent error (a value too large for the topic, no
// permission) fails at once. The topic is created on first use.
type ControlTopic struct {
	cfg  ControlTopicConfig
	log  *slog.Logger
	sink *KafkaSink
}

// NewControlTopic returns the control topic cfg names; nothing is
// contacted until a method is called.
func NewControlTopic(cfg ControlTopicConfig) (*ControlTopic, error) {
	if cfg.Name == "" {
		return nil, errors.New("control topic: no name")
	}
	if err := cfg.Client.validate(); err != nil {
		return nil, fmt.Errorf("control topic %s: %w", cfg.Name, err)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = schemas.MaxMessageBytes
	}
	log := cfg.Logger
	if log == nil {
		log = cfg.Client.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	// The writer's batch bytes leave the same room for the record-batch
	// framing as every other writer's (schemas.MaxBatchBytes).
	batch := int64(cfg.MaxMessageBytes - (schemas.MaxMessageBytes - schemas.MaxBatchBytes))
	sink, err := NewKafkaSink(SinkConfig{Client: cfg.Client, BatchBytes: batch})
	if err != nil {
		return nil, err
	}
	return &ControlTopic{cfg: cfg, log: log, sink: sink}, nil
}

// Name is the topic's name.
func (t *ControlTopic) Name() string { return t.cfg.Name }

// Close releases the writer.
func (t *ControlTopic) Close() error { return t.sink.Close() }

// Spec is the topic's specification: compacted, one partition.
func (t *ControlTopic) Spec() TopicSpec {
	return TopicSpec{Name: t.cfg.Name, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "max.message.bytes": strconv.Itoa(t.cfg.MaxMessageBytes)}}
}

// Ensure creates the topic when it does not exist.
func (t *ControlTopic) Ensure(ctx context.Context) error {
	return Retry(ctx, t.log, "create "+t.cfg.Name, func(ctx context.Context) error {
		return EnsureTopics(ctx, t.cfg.Client, t.Spec())
	})
}

// Publish writes value under key and waits for the acknowledgement.
func (t *ControlTopic) Publish(ctx context.Context, key string, value []byte, headers ...Header) error {
	if err := t.Ensure(ctx); err != nil {
		return err
	}
	return Retry(ctx, t.log, "publish "+key+" on "+t.cfg.Name, func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return t.sink.Write(wctx, Message{Topic: t.cfg.Name, Key: []byte(key), Value: value, Headers: headers})
	})
}

// All returns every message on the topic in offset order (none when the
// topic does not exist yet). Compaction may have removed older values of
// a key; callers that want the newest value that verifies walk back.
func (t *ControlTopic) All(ctx context.Context) ([]Message, error) {
	var msgs []Message
	err := Retry(ctx, t.log, "read "+t.cfg.Name, func(ctx context.Context) error {
		n, err := PartitionCount(ctx, t.cfg.Client, t.cfg.Name)
		if errors.Is(err, kafka.UnknownTopicOrPartition) || (err == nil && n == 0) {
			msgs = nil // nothing published yet
			return nil
		}
		if err != nil {
			return err
		}
		msgs, err = ReadTopic(ctx, t.cfg.Client, t.cfg.Name, 0)
		return err
	})
	return msgs, err
}

// Latest returns the last message of each key (none when the topic does
// not exist yet).
func (t *ControlTopic) Latest(ctx context.Context) (map[string]Message, error) {
	msgs, err := t.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Message, len(msgs))
	for _, m := range msgs {
		out[string(m.Key)] = m
	}
	return out, nil
}

// Watch calls fn with every message of the topic from the first on, in
// order, until ctx ends. Read errors are logged and retried with backoff,
// from the offset after the last message handed to fn, so fn sees each
// message once. fn runs on Watch's goroutine.
func (t *ControlTopic) Watch(ctx context.Context, fn func(context.Context, Message)) {
	next := kafka.FirstOffset
	backoff := RetryBackoffMin
	wait := func(what string, err error) {
		if ctx.Err() == nil {
			t.log.Warn(t.cfg.Name+" "+what+"; retrying", "err", err, "backoff", backoff)
		}
		Sleep(ctx, backoff)
		backoff = min(2*backoff, RetryBackoffMax)
	}
	for ctx.Err() == nil {
		if err := EnsureTopics(ctx, t.cfg.Client, t.Spec()); err != nil {
			wait("not readable", err)
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: t.cfg.Client.Brokers, Topic: t.cfg.Name, Partition: 0, Dialer: t.cfg.Client.Dialer(),
			MinBytes: 1, MaxBytes: t.cfg.MaxMessageBytes + 1<<20, MaxWait: 500 * time.Millisecond,
		})
		err := r.SetOffset(next)
		for err == nil {
			var m Message
			if m, err = r.FetchMessage(ctx); err == nil {
				backoff = RetryBackoffMin
				next = m.Offset + 1
				fn(ctx, m)
			}
		}
		r.Close()
		if ctx.Err() != nil {
			return
		}
		wait("read failed", err)
	}
}
