package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// Keys of the compacted router.models topic. Compaction keeps the latest
// value of each key, so a stage that starts reads the whole topic and keeps
// the last value per key. The router half of the protocol (the router in
// use, the routed counts) is stages/cluster's RouterTopic.
const (
	// featurizerKey: the featurizer state routers of this pipeline use, as
	// the bytes of its Arrow artifact (header featurizer-version).
	featurizerKey = "featurizer"
)

// headerFeaturizerVersion carries the version of a featurizer message.
const headerFeaturizerVersion = "featurizer-version"

// routerTopicMaxBytes caps one router.models message (the topic's
// max.message.bytes): a tf-idf router holds k dense centroids of the
// vocabulary size and an LSA state 100 of them, so the topic takes twice the
// pipeline's message limit. Its writer's batch bytes leave the same room for
// the record-batch framing as every other writer's (schemas.MaxBatchBytes).
const (
	routerTopicMaxBytes   = cluster.RouterTopicMaxBytes
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

// publishFeaturizer writes featurizer state v of dir to router.models: the
// state as loaded and verified (from the Parquet twin when the Arrow file
// is damaged), never the file's bytes as they are.
func publishFeaturizer(ctx context.Context, cc pipeline.ClientConfig, dir string, v int64) error {
	s, err := embed.LoadState(dir, v)
	if err != nil {
		return fmt.Errorf("publish featurizer v%d: %w", v, err)
	}
	return publishFeaturizerState(ctx, cc, s)
}

// publishFeaturizerState writes s, a loaded (verified) state, to
// router.models.
func publishFeaturizerState(ctx context.Context, cc pipeline.ClientConfig, s *embed.State) error {
	v := s.Settings.Version
	b, err := embed.EncodeState(s)
	if err != nil {
		return fmt.Errorf("publish featurizer v%d: %w", v, err)
	}
	err = publishOnRouterTopic(ctx, cc, featurizerKey, b,
		kafka.Header{Key: headerFeaturizerVersion, Value: []byte(strconv.FormatInt(v, 10))})
	if err != nil {
		return fmt.Errorf("publish featurizer v%d on %s: %w", v, pipeline.TopicRouterModels, err)
	}
	return nil
}

// featurizerMessage decodes a featurizer message into its version and
// state, verified against its checksums (embed.DecodeState): a damaged or
// forged message is an error, for the caller to warn about and ignore.
func featurizerMessage(m kafka.Message) (int64, *embed.State, error) {
	v := featurizerVersionOf(m)
	if v < 0 {
		return 0, nil, errors.New("featurizer message without a featurizer-version header")
	}
	s, err := embed.DecodeState(m.Value)
	if err != nil {
		return 0, nil, fmt.Errorf("featurizer v%d: %w", v, err)
	}
	if s.Settings.Version != v {
		return 0, nil, fmt.Errorf("featurizer message says v%d, state holds v%d", v, s.Settings.Version)
	}
	return v, s, nil
}

// saveFeaturizer stores a featurizer state received on the topic (verified
// by featurizerMessage) into dir under its version, both files, unless dir
// has that version already.
func saveFeaturizer(dir string, s *embed.State) error {
	if _, err := os.Stat(embed.StatePath(dir, s.Settings.Version)); err == nil {
		return nil
	}
	return embed.SaveStateVersion(dir, s)
}

// sameFeaturizer reports whether a and b are one state: the same settings,
// which hold the checksum of the values.
func sameFeaturizer(a, b *embed.State) bool {
	ja, erra := json.Marshal(a.Settings)
	jb, errb := json.Marshal(b.Settings)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
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

// featurizerOnTopic returns featurizer state v from router.models (nil when
// it is not there), the newest message of that version that verifies; it
// warns about each damaged one it passes.
func featurizerOnTopic(ctx context.Context, cc pipeline.ClientConfig, v int64, log *slog.Logger) (*embed.State, error) {
	msgs, err := readRouterTopic(ctx, cc)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if string(m.Key) != featurizerKey || featurizerVersionOf(m) != v {
			continue
		}
		_, s, err := featurizerMessage(m)
		if err != nil {
			log.Warn("damaged featurizer on "+pipeline.TopicRouterModels+" ignored", "offset", m.Offset, "err", err)
			continue
		}
		return s, nil
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

// shareFeaturizer connects an embedding stage to router.models: it
// publishes the stage's featurizer state s (loaded from dir, so verified)
// when the topic holds no valid state of its version or a newer one, then
// mirrors every newer featurizer published there into dir, where the
// stage's state watcher loads it; damaged messages are ignored with a
// warning. It returns once the first publish is done (retrying through
// broker outages until ctx ends); the mirror runs until ctx ends.
func (a *app) shareFeaturizer(ctx context.Context, cc pipeline.ClientConfig, dir string, s *embed.State, log *slog.Logger) {
	v := s.Settings.Version
	if a.topicHoldsFeaturizer(ctx, cc, v, log) {
		log.Debug("featurizer already on "+pipeline.TopicRouterModels, "version", v)
	} else if err := publishFeaturizerState(ctx, cc, s); err != nil && ctx.Err() == nil {
		log.Warn("featurizer not published", "version", v, "err", err)
	}
	go watchRouterTopic(ctx, cc, log, func(_ context.Context, m kafka.Message) { // owner: the stage's ctx
		if string(m.Key) != featurizerKey || featurizerVersionOf(m) < v {
			return
		}
		mv, got, err := featurizerMessage(m)
		if err != nil {
			log.Warn("damaged featurizer on "+pipeline.TopicRouterModels+" ignored", "offset", m.Offset, "err", err)
			return
		}
		if _, err := os.Stat(embed.StatePath(dir, mv)); err == nil {
			if local, err := embed.LoadState(dir, mv); err == nil && !sameFeaturizer(local, got) {
				log.Error("featurizer version conflict: router.models and the state dir hold different states under one version; give the embedding and routing stages the same featurizer lineage (one --state/--router dir, or let the routing stage fit on the stream)",
					"version", mv, "dir", dir)
			}
			return
		}
		if err := saveFeaturizer(dir, got); err != nil {
			log.Warn("featurizer from "+pipeline.TopicRouterModels+" not saved", "version", mv, "err", err)
		}
	})
}

// topicHoldsFeaturizer reports whether router.models holds, under the key
// featurizer, a valid state of version v or a newer one (a newer one is
// mirrored into the state dir by shareFeaturizer).
func (a *app) topicHoldsFeaturizer(ctx context.Context, cc pipeline.ClientConfig, v int64, log *slog.Logger) bool {
	latest, err := routerTopicLatest(ctx, cc)
	if err != nil {
		return false // ctx ended, or a permanent error that the publish reports
	}
	m, ok := latest[featurizerKey]
	if !ok || featurizerVersionOf(m) < v {
		return false
	}
	if _, _, err := featurizerMessage(m); err != nil {
		log.Warn("damaged featurizer on "+pipeline.TopicRouterModels+"; publishing this stage's", "offset", m.Offset, "version", v, "err", err)
		return false
	}
	return true
}

// featurizerVersionOf is the featurizer-version header of m (-1 without).
func featurizerVersionOf(m kafka.Message) int64 {
	for _, h := range m.Headers {
		if h.Key == headerFeaturizerVersion {
			if v, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				return v
			}
		}
	}
	return -1
}
