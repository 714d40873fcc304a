package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// The featurizer half of the router.models protocol. router.models is a
// compacted control topic (pipeline.ControlTopic) that the stages of one
// pipeline share: the routing stage publishes its router there, and the
// featurizer the routers of the pipeline use is published under
// FeaturizerKey, as the bytes of EncodeState with the header
// HeaderFeaturizerVersion. Every reader verifies a featurizer message
// against its checksums (DecodeFeaturizerMessage) and ignores a damaged one
// with a warning.
const (
	// FeaturizerKey is the key of the featurizer state on router.models.
	FeaturizerKey = "featurizer"
	// HeaderFeaturizerVersion carries the state version of a featurizer
	// message.
	HeaderFeaturizerVersion = "featurizer-version"
	// ControlTopicMaxBytes is router.models' max.message.bytes: a tf-idf
	// router holds k dense centroids of the vocabulary size and an LSA
	// state 100 of them, so the topic takes twice the pipeline's message
	// limit.
	ControlTopicMaxBytes = 2 * schemas.MaxMessageBytes
)

// FeaturizerTopic publishes and reads featurizer states on router.models.
// Its methods retry through broker outages until their ctx ends (warnings
// go to the client's logger); a permanent error (a state too large for the
// topic, no permission) fails at once.
type FeaturizerTopic struct {
	t   *pipeline.ControlTopic
	log *slog.Logger
}

// NewFeaturizerTopic returns the featurizer half of router.models; nothing
// is contacted until a method is called. log gets the warnings about
// damaged messages (nil: cc.Logger, else slog.Default()).
func NewFeaturizerTopic(cc pipeline.ClientConfig, log *slog.Logger) (*FeaturizerTopic, error) {
	t, err := pipeline.NewControlTopic(pipeline.ControlTopicConfig{Client: cc, Name: pipeline.TopicRouterModels, MaxMessageBytes: ControlTopicMaxBytes})
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	if log == nil {
		log = cc.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	return &FeaturizerTopic{t: t, log: log}, nil
}

// Close releases the writer.
func (ft *FeaturizerTopic) Close() error { return ft.t.Close() }

// PublishSaved publishes state v of dir: the state as loaded and verified
// (from the Parquet twin when the Arrow file is damaged), never the file's
// bytes as they are.
func (ft *FeaturizerTopic) PublishSaved(ctx context.Context, dir string, v int64) error {
	s, err := LoadState(dir, v)
	if err != nil {
		return fmt.Errorf("publish featurizer v%d: %w", v, err)
	}
	return ft.Publish(ctx, s)
}

// Publish writes s, a loaded (verified) state, to router.models and waits
// for the acknowledgement.
func (ft *FeaturizerTopic) Publish(ctx context.Context, s *State) error {
	v := s.Settings.Version
	b, err := EncodeState(s)
	if err != nil {
		return fmt.Errorf("publish featurizer v%d: %w", v, err)
	}
	err = ft.t.Publish(ctx, FeaturizerKey, b, pipeline.Header{Key: HeaderFeaturizerVersion, Value: []byte(strconv.FormatInt(v, 10))})
	if err != nil {
		return fmt.Errorf("publish featurizer v%d on %s: %w", v, ft.t.Name(), err)
	}
	return nil
}

// Get returns state v from router.models (nil when it is not there): the
// newest message of that version that verifies. It warns about each
// damaged one it passes.
func (ft *FeaturizerTopic) Get(ctx context.Context, v int64) (*State, error) {
	msgs, err := ft.t.All(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if string(m.Key) != FeaturizerKey || FeaturizerVersionOf(m) != v {
			continue
		}
		_, s, err := DecodeFeaturizerMessage(m)
		if err != nil {
			ft.log.Warn("damaged featurizer on "+ft.t.Name()+" ignored", "offset", m.Offset, "err", err)
			continue
		}
		return s, nil
	}
	return nil, nil
}

// Holds reports whether router.models holds, under FeaturizerKey, a valid
// state of version v or a newer one.
func (ft *FeaturizerTopic) Holds(ctx context.Context, v int64) bool {
	latest, err := ft.t.Latest(ctx)
	if err != nil {
		return false // ctx ended, or a permanent error that a publish reports
	}
	m, ok := latest[FeaturizerKey]
	if !ok || FeaturizerVersionOf(m) < v {
		return false
	}
	if _, _, err := DecodeFeaturizerMessage(m); err != nil {
		ft.log.Warn("damaged featurizer on "+ft.t.Name()+"; publishing this stage's", "offset", m.Offset, "version", v, "err", err)
		return false
	}
	return true
}

// Share connects an embedding stage to router.models: it publishes the
// stage's state s (loaded from dir, so verified) unless the topic holds a
// valid state of its version or a newer one, then mirrors every newer
// state published there into dir, where the stage's WatchStates loads it;
// damaged messages are ignored with a warning. It returns once the first
// publish is done (retrying through broker outages until ctx ends); the
// mirror is a goroutine that runs until ctx ends.
func (ft *FeaturizerTopic) Share(ctx context.Context, dir string, s *State) {
	v := s.Settings.Version
	if ft.Holds(ctx, v) {
		ft.log.Debug("featurizer already on "+ft.t.Name(), "version", v)
	} else if err := ft.Publish(ctx, s); err != nil && ctx.Err() == nil {
		ft.log.Warn("featurizer not published", "version", v, "err", err)
	}
	go ft.t.Watch(ctx, func(_ context.Context, m pipeline.Message) { // owner: ctx
		if string(m.Key) != FeaturizerKey || FeaturizerVersionOf(m) < v {
			return
		}
		mv, got, err := DecodeFeaturizerMessage(m)
		if err != nil {
			ft.log.Warn("damaged featurizer on "+ft.t.Name()+" ignored", "offset", m.Offset, "err", err)
			return
		}
		if _, err := os.Stat(StatePath(dir, mv)); err == nil {
			if local, err := LoadState(dir, mv); err == nil && !SameState(local, got) {
				ft.log.Error("featurizer version conflict: router.models and the state dir hold different states under one version; give the embedding and routing stages the same featurizer lineage (one --state/--router dir, or let the routing stage fit on the stream)",
					"version", mv, "dir", dir)
			}
			return
		}
		if err := SaveReceivedState(dir, got); err != nil {
			ft.log.Warn("featurizer from "+ft.t.Name()+" not saved", "version", mv, "err", err)
		}
	})
}

// DecodeFeaturizerMessage decodes a featurizer message of router.models
// into its version and state, verified against its checksums (DecodeState):
// a damaged or forged message is an error, for the caller to warn about and
// ignore.
func DecodeFeaturizerMessage(m pipeline.Message) (int64, *State, error) {
	v := FeaturizerVersionOf(m)
	if v < 0 {
		return 0, nil, errors.New("featurizer message without a featurizer-version header")
	}
	s, err := DecodeState(m.Value)
	if err != nil {
		return 0, nil, fmt.Errorf("featurizer v%d: %w", v, err)
	}
	if s.Settings.Version != v {
		return 0, nil, fmt.Errorf("featurizer message says v%d, state holds v%d", v, s.Settings.Version)
	}
	return v, s, nil
}

// FeaturizerVersionOf is the featurizer-version header of m (-1 without).
func FeaturizerVersionOf(m pipeline.Message) int64 {
	v, err := strconv.ParseInt(pipeline.HeaderValue(m, HeaderFeaturizerVersion), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// SaveReceivedState stores a state received on router.models (verified by
// DecodeFeaturizerMessage) into dir under its version, both files, unless
// dir has that version already.
func SaveReceivedState(dir string, s *State) error {
	if _, err := os.Stat(StatePath(dir, s.Settings.Version)); err == nil {
		return nil
	}
	return SaveStateVersion(dir, s)
}

// SameState reports whether a and b are one state: the same settings, which
// hold the checksum of the values.
func SameState(a, b *State) bool {
	ja, erra := json.Marshal(a.Settings)
	jb, errb := json.Marshal(b.Settings)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}
