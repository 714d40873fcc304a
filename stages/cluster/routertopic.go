package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Keys and names of the routing stage on router.models. Compaction keeps the
// latest value of each key, so a stage that starts reads the whole topic
// and keeps the last value per key.
const (
	// RouterKey is the key of the router in use (EncodeRouter).
	RouterKey = "router"
	// RoutingStateKeyPrefix + group is the key of the routed counts of a
	// routing stage's consumer group (EncodeRoutingState), so balance
	// survives restarts.
	RoutingStateKeyPrefix = "routing-state/"
	// RoutingStateTopicPrefix + group is the topic of a routing stage
	// group's per-partition snapshots (pipeline.KafkaStateStore).
	RoutingStateTopicPrefix = "router.state."
)

// RouterTopicMaxBytes caps one router.models message (the topic's
// max.message.bytes): a tf-idf router holds k dense centroids of the
// vocabulary size and an LSA state 100 of them, so the topic takes twice the
// pipeline's message limit. A broker that hosts router.models must accept
// messages this large (pipeline.BrokerConfig.MaxMessageBytes).
const RouterTopicMaxBytes = 2 * schemas.MaxMessageBytes

// RoutingStateKey is the router.models key of group's routed counts.
func RoutingStateKey(group string) string { return RoutingStateKeyPrefix + group }

// RoutingStateTopic is the topic of group's per-partition routing state.
func RoutingStateTopic(group string) string { return RoutingStateTopicPrefix + group }

// RouterTopic is the router half of the router.models protocol: the router
// in use under RouterKey, with the routed counts of each routing group under
// RoutingStateKey. (The featurizer state under the key "featurizer" is the
// featurization stage's half.) It is a pipeline.ControlTopic of
// RouterTopicMaxBytes; every method rides out broker outages until its ctx
// ends. Methods may be called concurrently. Close releases its writer.
type RouterTopic struct {
	*pipeline.ControlTopic
	log *slog.Logger
}

// NewRouterTopic returns router.models on the cluster cc reaches; log gets
// the warnings of retried calls and of damaged routers passed over (nil:
// cc.Logger, else slog.Default()). Nothing is contacted until a method is
// called.
func NewRouterTopic(cc pipeline.ClientConfig, log *slog.Logger) (*RouterTopic, error) {
	if log == nil {
		log = cc.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	t, err := pipeline.NewControlTopic(pipeline.ControlTopicConfig{Client: cc, Name: pipeline.TopicRouterModels,
		MaxMessageBytes: RouterTopicMaxBytes, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return &RouterTopic{ControlTopic: t, log: log}, nil
}

// PublishRouter writes rm under RouterKey.
func (t *RouterTopic) PublishRouter(ctx context.Context, rm *RouterModel) error {
	b, err := EncodeRouter(rm)
	if err != nil {
		return err
	}
	if err := t.Publish(ctx, RouterKey, b, pipeline.ContentHeaders(schemas.ContentTypeArrow)...); err != nil {
		return fmt.Errorf("publish router v%d on %s: %w", rm.Version, t.Name(), err)
	}
	return nil
}

// LatestRouter returns the newest router on the topic that verifies (nil
// when there is none), warning about each damaged one it passes: a damaged
// message is ignored, and the router before it serves until a good one is
// published again.
func (t *RouterTopic) LatestRouter(ctx context.Context) (*RouterModel, error) {
	msgs, err := t.All(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if string(m.Key) != RouterKey {
			continue
		}
		rm, err := DecodeRouter(m.Value)
		if err != nil {
			t.log.Warn("damaged router on "+t.Name()+" ignored", "offset", m.Offset, "err", err)
			continue
		}
		return rm, nil
	}
	return nil, nil
}

// Router returns router version v from the topic: the newest message of
// that version that verifies. It fails when the topic holds none.
func (t *RouterTopic) Router(ctx context.Context, v int64) (*RouterModel, error) {
	msgs, err := t.All(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if string(msgs[i].Key) != RouterKey {
			continue
		}
		if rm, err := DecodeRouter(msgs[i].Value); err == nil && rm.Version == v {
			return rm, nil
		}
	}
	return nil, fmt.Errorf("router version %d is not on %s: %w", v, t.Name(), errNoSuchRouter)
}

// errNoSuchRouter: the topic holds no router of the version asked for.
var errNoSuchRouter = errors.New("no such router")

// PublishCounts writes the routed counts of group (with the version of the
// router that routed them) under RoutingStateKey(group).
func (t *RouterTopic) PublishCounts(ctx context.Context, group string, version int64, counts map[int]int64) error {
	return t.Publish(ctx, RoutingStateKey(group), EncodeRoutingState(version, counts))
}

// Counts returns the routed counts group saved last (ok false when none).
func (t *RouterTopic) Counts(ctx context.Context, group string) (counts map[int]int64, ok bool, err error) {
	latest, err := t.Latest(ctx)
	if err != nil {
		return nil, false, err
	}
	m, ok := latest[RoutingStateKey(group)]
	if !ok {
		return nil, false, nil
	}
	counts, err = DecodeRoutingState(m.Value)
	if err != nil {
		return nil, true, fmt.Errorf("routed counts of %s on %s: %w", group, t.Name(), err)
	}
	return counts, true, nil
}

// WatchRouters calls fn with every router published on the topic, from the
// first message on, in order, until ctx ends (pipeline.ControlTopic.Watch);
// a damaged one (it does not verify against its checksums) is ignored with
// a warning. fn runs on WatchRouters' goroutine.
func (t *RouterTopic) WatchRouters(ctx context.Context, fn func(context.Context, *RouterModel)) {
	t.Watch(ctx, func(ctx context.Context, m pipeline.Message) {
		if string(m.Key) != RouterKey {
			return
		}
		rm, err := DecodeRouter(m.Value)
		if err != nil {
			t.log.Warn("damaged router on "+t.Name()+" ignored", "offset", m.Offset, "err", err)
			return
		}
		fn(ctx, rm)
	})
}

// routerVersionOf reads the version of a router message (-1 if it does not
// decode).
func routerVersionOf(m pipeline.Message) int64 {
	rm, err := DecodeRouter(m.Value)
	if err != nil {
		return -1
	}
	return rm.Version
}
