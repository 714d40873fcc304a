package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// MoverGroup returns the consumer group of the mover of routing group
// group: one process of the routing group at a time holds the parked
// topic's only partition.
func MoverGroup(group string) string { return group + ".novel" }

// moverRun is the mover of one routing stage process, with what it needs
// of the service.
type moverRun struct {
	s     *service
	stage *Stage
	mv    *Mover
	mu    sync.Mutex // one publication at a time
}

// startMover sets up the mover over pipeline.TopicNovel (creating the
// topic) and returns a function that runs it until ctx ends.
func (s *service) startMover(ctx context.Context, stage *Stage, w *routerWatch) (func(context.Context) (pipeline.StageRun, error), *Mover, error) {
	cc := s.cc
	err := pipeline.Retry(ctx, s.log, "create "+pipeline.TopicNovel, func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicNovel, Partitions: 1})
	})
	if err != nil {
		return nil, nil, err
	}
	var cfg GrowConfig
	if s.cfg.Grow != nil {
		cfg = *s.cfg.Grow
	}
	mv, err := NewMover(stage.Model(), cfg, s.cfg.Novelty)
	if err != nil {
		return nil, nil, err
	}
	mv.Logger = s.log.With("part", "mover")
	r := &moverRun{s: s, stage: stage, mv: mv}
	if s.cfg.Grow != nil {
		mv.Publish = func(ctx context.Context, m *RouterModel) (*RouterModel, error) { return r.publish(ctx, m, w) }
	}
	mv.Refetch = r.refetch
	mv.Lookup = s.lookup
	mv.OriginCheck = s.originCheck
	group := MoverGroup(s.cfg.Group)
	stateTopic := RoutingStateTopic(group)
	err = pipeline.Retry(ctx, s.log, "create "+stateTopic, func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, pipeline.StateTopicSpec(stateTopic, 1))
	})
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context) (pipeline.StageRun, error) {
		store, err := pipeline.NewKafkaStateStore(cc, stateTopic)
		if err != nil {
			return pipeline.StageRun{}, err
		}
		defer store.Close()
		defer mv.Close()
		return pipeline.RunStage(ctx, pipeline.StageProcessConfig{
			Name:       "cluster-mover",
			Client:     cc,
			InputTopic: pipeline.TopicNovel,
			Group:      group,
			Stage:      mv,
			Accept:     []schemas.Kind{schemas.KindFeatures},
			States:     store,
			Logger:     mv.Logger,
		})
	}
	return run, mv, nil
}

// publish gives a grown router the next version, names its new domains,
// creates their topics, publishes it on router.models (and saves it into
// the router dir) and swaps it into the routing stage.
func (r *moverRun) publish(ctx context.Context, m *RouterModel, w *routerWatch) (*RouterModel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	if s.cfg.Featurizer != nil && m.Growth != nil {
		if state, err := s.cfg.Featurizer.OnTopic(ctx, m.FeaturizerVersion); err == nil && state != nil {
			terms := state.TopTerms(m.Model, 10)
			if terms != nil {
				if m.TopTerms == nil {
					m.TopTerms = make([][]string, m.K())
				}
				for j, id := range m.IDs {
					if slices.Contains(m.Growth.IDs, id) {
						m.TopTerms[j] = terms[j]
					}
				}
			}
		}
	}
	return s.publishNext(ctx, m, w, false)
}

// publishNext gives m (a growth, a shrink) the next router version, saves
// it into the router dir (if any), creates its domain topics, publishes it
// on router.models and swaps it into the routing stage, and into the mover
// too when tellMover is set (not for the mover's own growths: it has them).
func (s *service) publishNext(ctx context.Context, m *RouterModel, w *routerWatch, tellMover bool) (*RouterModel, error) {
	if dir := s.cfg.RouterDir; dir != "" {
		if _, err := SaveRouter(dir, m); err != nil {
			return nil, err
		}
	} else {
		latest, err := s.topic.LatestRouter(ctx)
		if err != nil && !errors.Is(err, errNoSuchRouter) {
			return nil, err
		}
		v := w.stage.Model().Version
		if latest != nil {
			v = max(v, latest.Version)
		}
		m.Version = v + 1
	}
	if err := ensureDomainTopics(ctx, s.cc, m, w.partitions); err != nil {
		return nil, err
	}
	if err := s.topic.PublishRouter(ctx, m); err != nil {
		return nil, err
	}
	swap := w.swapStage
	if tellMover {
		swap = w.swap
	}
	if err := swap(ctx, m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// shrinkLoop removes, every few seconds, the domain the routing stage
// finds below the shrink threshold (Stage.ShrinkCandidate), while this
// process routes partition 0 of the input (one process of the group
// shrinks). The removed domain's documents then go to their next nearest
// domain; its expert is retired (mixtures use the latest router).
func (s *service) shrinkLoop(ctx context.Context, stage *Stage, w *routerWatch) {
	t := time.NewTicker(s.cfg.ShrinkEvery)
	defer t.Stop()
	p0 := pipeline.Partition{Topic: s.cfg.InputTopic}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !stage.Holds(p0, 30*time.Second) {
			continue
		}
		id, share, ok := stage.ShrinkCandidate()
		if !ok {
			continue
		}
		cur := stage.Model()
		if newer, err := s.newerRouter(ctx, cur.Version); err != nil || newer {
			// A router newer than the stage's is saved or published (e.g.
			// this loop's last removal, whose publishing failed after the
			// save): the stage loads it first, so the same domain is not
			// removed twice.
			continue
		}
		m, err := cur.RemoveDomain(id)
		if err == nil {
			m, err = s.publishNext(ctx, m, w, true)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("domain not removed", "domain", id, "err", err)
			}
			continue
		}
		s.log.Info("domain removed: its share stayed below the shrink threshold; its documents go to their next nearest domain, its expert is retired",
			"domain", id, "share", share, "below", s.cfg.Shrink.Below, "window", s.cfg.Shrink.window(), "router_version", m.Version)
	}
}

// newerRouter reports whether a router version above v is saved in
// RouterDir, or (without one) published on router.models.
func (s *service) newerRouter(ctx context.Context, v int64) (bool, error) {
	if dir := s.cfg.RouterDir; dir != "" {
		latest, err := LatestRouterVersion(dir)
		return latest > v, err
	}
	latest, err := s.topic.LatestRouter(ctx)
	switch {
	case errors.Is(err, errNoSuchRouter):
		return false, nil
	case err != nil:
		return false, err
	}
	return latest.Version > v, nil
}

// refetch reads the parked records from offset from up to to.
func (r *moverRun) refetch(ctx context.Context, from, to int64, fn func(int64, arrow.Record) error) error {
	from = max(from, 0)
	if from >= to {
		return nil
	}
	in, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: r.s.cc, Topic: pipeline.TopicNovel, Logger: r.s.log})
	if err != nil {
		return err
	}
	defer in.Close()
	in.Assign(0, from)
	for {
		m, err := in.Next(ctx, 0)
		if err != nil {
			return fmt.Errorf("read back %s: %w", pipeline.TopicNovel, err)
		}
		if m.Offset >= to {
			return nil
		}
		d, err := pipeline.DecodeMessage(m, schemas.Limits{}, memory.DefaultAllocator)
		if err != nil {
			if m.Offset == to-1 {
				return nil
			}
			continue // dead-lettered when first read
		}
		for _, rec := range d.Records {
			if err := fn(m.Offset, rec); err != nil {
				d.Release()
				return err
			}
		}
		d.Release()
		if m.Offset == to-1 {
			return nil
		}
	}
}
