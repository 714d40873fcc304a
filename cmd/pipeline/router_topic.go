package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// Keys of the compacted router.models topic. Compaction keeps the latest
// value of each key, so a stage that starts reads the whole topic and keeps
// the last value per key.
const (
	// routerModelKey: the router in use (cluster.EncodeRouter).
	routerModelKey = "router"
	// routingStateKeyPrefix + group: the routed counts of a cluster stage's
	// consumer group, so balance survives restarts.
	routingStateKeyPrefix = "routing-state/"
	// routingStateTopicPrefix + group: the topic of a cluster stage group's
	// per-partition routing snapshots (pipeline.KafkaStateStore).
	routingStateTopicPrefix = "router.state."
)

// routerTopicMaxBytes caps one router.models message (the topic's
// max.message.bytes): a tf-idf router holds k dense centroids of the
// vocabulary size and an LSA state 100 of them, so the topic takes twice the
// pipeline's message limit. Its writer's batch bytes leave the same room for
// the record-batch framing as every other writer's (schemas.MaxBatchBytes).
const (
	routerTopicMaxBytes   = 2 * schemas.MaxMessageBytes
	routerTopicBatchBytes = routerTopicMaxBytes - (schemas.MaxMessageBytes - schemas.MaxBatchBytes)
)

// ensureRouterTopic creates the compacted router.models topic, retrying
// through broker outages (warnings go to cc.Logger).
func ensureRouterTopic(ctx context.Context, cc pipeline.ClientConfig) error {
	return pipeline.Retry(ctx, cc.Logger, "create "+pipeline.TopicRouterModels, func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRouterModels, Partitions: 1,
			Configs: map[string]string{"cleanup.policy": "compact", "max.message.bytes": strconv.Itoa(routerTopicMaxBytes)}})
	})
}

// publishOnRouterTopic writes one keyed message to router.models, retrying
// through broker outages until ctx ends; a permanent error (a message too
// large for the topic, no permission) fails at once.
func publishOnRouterTopic(ctx context.Context, cc pipeline.ClientConfig, key string, value []byte, headers ...kafka.Header) error {
	if err := ensureRouterTopic(ctx, cc); err != nil {
		return err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc, BatchBytes: routerTopicBatchBytes})
	if err != nil {
		return err
	}
	defer sink.Close()
	return pipeline.Retry(ctx, cc.Logger, "publish "+key+" on "+pipeline.TopicRouterModels, func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return sink.Write(wctx, kafka.Message{Topic: pipeline.TopicRouterModels, Key: []byte(key), Value: value, Headers: headers})
	})
}

// publishRouter writes rm to router.models.
func publishRouter(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel) error {
	b, err := cluster.EncodeRouter(rm)
	if err != nil {
		return err
	}
	err = publishOnRouterTopic(ctx, cc, routerModelKey, b,
		kafka.Header{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		kafka.Header{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))})
	if err != nil {
		return fmt.Errorf("publish router v%d on %s: %w", rm.Version, pipeline.TopicRouterModels, err)
	}
	return nil
}

// readRouterTopic returns every message of router.models in offset order
// (none when the topic does not exist yet), retrying through broker
// outages.
func readRouterTopic(ctx context.Context, cc pipeline.ClientConfig) ([]kafka.Message, error) {
	var msgs []kafka.Message
	err := pipeline.Retry(ctx, cc.Logger, "read "+pipeline.TopicRouterModels, func(ctx context.Context) error {
		n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRouterModels)
		if errors.Is(err, kafka.UnknownTopicOrPartition) || (err == nil && n == 0) {
			msgs = nil // nothing published yet
			return nil
		}
		if err != nil {
			return err
		}
		msgs, err = pipeline.ReadTopic(ctx, cc, pipeline.TopicRouterModels, 0)
		return err
	})
	return msgs, err
}

// routerTopicLatest returns the last message of each key on router.models
// (none when the topic does not exist yet), retrying through broker
// outages.
func routerTopicLatest(ctx context.Context, cc pipeline.ClientConfig) (map[string]kafka.Message, error) {
	msgs, err := readRouterTopic(ctx, cc)
	if err != nil {
		return nil, err
	}
	out := map[string]kafka.Message{}
	for _, m := range msgs {
		out[string(m.Key)] = m
	}
	return out, nil
}

// latestRouterOnTopic returns the newest router on router.models that
// verifies (nil when there is none), warning about each damaged one it
// passes: a damaged message is ignored, and the router before it serves
// until a good one is published again.
func latestRouterOnTopic(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger) (*cluster.RouterModel, error) {
	msgs, err := readRouterTopic(ctx, cc)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if string(m.Key) != routerModelKey {
			continue
		}
		rm, err := cluster.DecodeRouter(m.Value)
		if err != nil {
			log.Warn("damaged router on "+pipeline.TopicRouterModels+" ignored", "offset", m.Offset, "err", err)
			continue
		}
		return rm, nil
	}
	return nil, nil
}

// watchRouterTopic calls fn with every message of router.models from the
// first on, in order, until ctx ends. Read errors are logged and retried
// with backoff, from the offset after the last message handed to fn.
func watchRouterTopic(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger, fn func(context.Context, kafka.Message)) {
	next := kafka.FirstOffset
	backoff := pipeline.RetryBackoffMin
	for ctx.Err() == nil {
		if err := ensureRouterTopic(ctx, cc); err != nil {
			if ctx.Err() == nil {
				log.Warn(pipeline.TopicRouterModels+" not readable; retrying", "err", err, "backoff", backoff)
			}
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, pipeline.RetryBackoffMax)
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: cc.Brokers, Topic: pipeline.TopicRouterModels, Partition: 0, Dialer: cc.Dialer(),
			MinBytes: 1, MaxBytes: routerTopicMaxBytes + 1<<20, MaxWait: 500 * time.Millisecond,
		})
		err := r.SetOffset(next)
		for err == nil {
			var m kafka.Message
			if m, err = r.FetchMessage(ctx); err == nil {
				backoff = pipeline.RetryBackoffMin
				next = m.Offset + 1
				fn(ctx, m)
			}
		}
		r.Close()
		if ctx.Err() != nil {
			return
		}
		log.Warn(pipeline.TopicRouterModels+" read failed; retrying", "err", err, "backoff", backoff)
		sleepCtx(ctx, backoff)
		backoff = min(2*backoff, pipeline.RetryBackoffMax)
	}
}
