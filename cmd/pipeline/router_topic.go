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
// the last value per key.
const (
	// routerModelKey: the router in use (cluster.EncodeRouter).
	routerModelKey = "router"
	// featurizerKey: the featurizer state routers of this pipeline use, as
	// the bytes of its Arrow artifact (header featurizer-version).
	featurizerKey = "featurizer"
	// routingStateKeyPrefix + group: the routed counts of a cluster stage's
	// consumer group, so balance survives restarts.
	routingStateKeyPrefix = "routing-state/"
	// routingStateTopicPrefix + group: the topic of a cluster stage group's
	// per-partition routing snapshots (pipeline.KafkaStateStore).
	routingStateTopicPrefix = "router.state."
)

// headerFeaturizerVersion carries the version of a featurizer message.
const headerFeaturizerVersion = "featurizer-version"

// routerTopicMaxBytes caps one router.models message (the topic's
// max.message.bytes): a tf-idf router holds k dense centroids of the
// vocabulary size and an LSA state 100 of them, so the topic takes twice the
// pipeline's message limit. Its writer's batch bytes leave the same room for
// the record-batch framing as every other writer's (schemas.MaxBatchBytes).
const (
	routerTopicMaxBytes   = 2 * schemas.MaxMessageBytes
	routerTopicBatchBytes = routerTopicMaxBytes - (schemas.MaxMessageBytes - schemas.MaxBatchBytes)
)

// ensureRouterTopic creates the compacted router.models topic.
func ensureRouterTopic(ctx context.Context, cc pipeline.ClientConfig) error {
	return pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRouterModels, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "max.message.bytes": strconv.Itoa(routerTopicMaxBytes)}})
}

// publishOnRouterTopic writes one keyed message to router.models.
func publishOnRouterTopic(ctx context.Context, cc pipeline.ClientConfig, key string, value []byte, headers ...kafka.Header) error {
	if err := ensureRouterTopic(ctx, cc); err != nil {
		return err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc, BatchBytes: routerTopicBatchBytes})
	if err != nil {
		return err
	}
	defer sink.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return sink.Write(wctx, kafka.Message{Topic: pipeline.TopicRouterModels, Key: []byte(key), Value: value, Headers: headers})
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

// publishFeaturizer writes featurizer state v of dir to router.models.
func publishFeaturizer(ctx context.Context, cc pipeline.ClientConfig, dir string, v int64) error {
	b, err := os.ReadFile(embed.StatePath(dir, v))
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

// featurizerMessage decodes a featurizer message: its version and the
// Arrow artifact bytes, checked by loading them.
func featurizerMessage(m kafka.Message) (int64, *embed.State, []byte, error) {
	v := featurizerVersionOf(m)
	if v < 0 {
		return 0, nil, nil, errors.New("featurizer message without a featurizer-version header")
	}
	f, err := os.CreateTemp("", "featurizer-*.arrow")
	if err != nil {
		return 0, nil, nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(m.Value); err != nil {
		f.Close()
		return 0, nil, nil, err
	}
	if err := f.Close(); err != nil {
		return 0, nil, nil, err
	}
	s, err := embed.LoadStateFile(f.Name())
	if err != nil {
		return 0, nil, nil, fmt.Errorf("featurizer v%d: %w", v, err)
	}
	if s.Settings.Version != v {
		return 0, nil, nil, fmt.Errorf("featurizer message says v%d, state holds v%d", v, s.Settings.Version)
	}
	return v, s, m.Value, nil
}

// saveFeaturizerBytes stores a featurizer artifact received on the topic
// into dir as version v (atomically), unless dir has it already.
func saveFeaturizerBytes(dir string, v int64, b []byte) error {
	path := embed.StatePath(dir, v)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return schemas.WriteFileAtomic(path, func(f *os.File) error { _, err := f.Write(b); return err })
}

// routerTopicLatest returns the last message of each key on router.models
// (none when the topic does not exist yet).
func routerTopicLatest(ctx context.Context, cc pipeline.ClientConfig) (map[string]kafka.Message, error) {
	out := map[string]kafka.Message{}
	n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRouterModels)
	if err != nil || n == 0 {
		return out, nil //nolint:nilerr // no topic: nothing published yet
	}
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicRouterModels, 0)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		out[string(m.Key)] = m
	}
	return out, nil
}

// watchRouterTopic calls fn with every message of router.models from the
// first on, until ctx ends; read errors are logged and retried.
func watchRouterTopic(ctx context.Context, cc pipeline.ClientConfig, log *slog.Logger, fn func(kafka.Message)) {
	for ctx.Err() == nil {
		if err := ensureRouterTopic(ctx, cc); err != nil {
			if ctx.Err() == nil {
				log.Warn("router.models not readable", "err", err)
			}
			sleepCtx(ctx, time.Second)
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: cc.Brokers, Topic: pipeline.TopicRouterModels, Partition: 0, Dialer: cc.Dialer(),
			MinBytes: 1, MaxBytes: routerTopicMaxBytes + 1<<20, MaxWait: 500 * time.Millisecond,
			StartOffset: kafka.FirstOffset,
		})
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("router.models read failed; retrying", "err", err)
				}
				break
			}
			fn(m)
		}
		r.Close()
		sleepCtx(ctx, time.Second)
	}
}

// routingState is the routed counts of a cluster stage's group.
type routingState struct {
	RouterVersion int64            `json:"router_version"`
	Counts        map[string]int64 `json:"counts"` // domain id → documents routed
	Saved         time.Time        `json:"saved"`
}

func encodeRoutingState(version int64, counts map[int]int64) []byte {
	s := routingState{RouterVersion: version, Counts: map[string]int64{}, Saved: time.Now().UTC()}
	for id, c := range counts {
		s.Counts[strconv.Itoa(id)] = c
	}
	b, _ := json.Marshal(s)
	return b
}

func decodeRoutingState(b []byte) (map[int]int64, error) {
	var s routingState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(s.Counts))
	for k, c := range s.Counts {
		id, err := strconv.Atoi(k)
		if err != nil || c < 0 {
			return nil, fmt.Errorf("bad routing state entry %q: %d", k, c)
		}
		out[id] = c
	}
	return out, nil
}

// shareFeaturizer connects an embedding stage to router.models: it
// publishes the stage's featurizer state s (saved in dir) when the topic
// holds none or an older version, then mirrors every newer featurizer
// published there into dir, where the stage's state watcher loads it. It
// returns once the first publish is done; the mirror runs until ctx ends.
func (a *app) shareFeaturizer(ctx context.Context, cc pipeline.ClientConfig, dir string, s *embed.State, log *slog.Logger) {
	v := s.Settings.Version
	latest, err := routerTopicLatest(ctx, cc)
	if err != nil {
		log.Warn("router.models not read", "err", err)
	}
	if m, ok := latest[featurizerKey]; !ok || featurizerVersionOf(m) < v {
		if err := publishFeaturizer(ctx, cc, dir, v); err != nil {
			log.Warn("featurizer not published", "version", v, "err", err)
		}
	}
	go watchRouterTopic(ctx, cc, log, func(m kafka.Message) {
		if string(m.Key) != featurizerKey || featurizerVersionOf(m) < v {
			return
		}
		mv, _, b, err := featurizerMessage(m)
		if err != nil {
			log.Warn("featurizer on "+pipeline.TopicRouterModels+" not loaded", "offset", m.Offset, "err", err)
			return
		}
		if local, err := os.ReadFile(embed.StatePath(dir, mv)); err == nil {
			if !bytes.Equal(local, b) {
				log.Error("featurizer version conflict: router.models and the state dir hold different states under one version; give the embedding and routing stages the same featurizer lineage (one --state/--router dir, or let the routing stage fit on the stream)",
					"version", mv, "dir", dir)
			}
			return
		}
		if err := saveFeaturizerBytes(dir, mv, b); err != nil {
			log.Warn("featurizer from "+pipeline.TopicRouterModels+" not saved", "version", mv, "err", err)
		}
	})
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
