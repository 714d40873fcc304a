package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

// routerDomains knows which ids are domains: only the router's. A topic
// named docs.domain.X is a domain topic only when X is exactly the decimal
// form of an id of a router published on router.models; any other topic of
// that prefix (docs.domain.007, docs.domain.-1, docs.domain.99 that no router
// knows) is ignored with one warning, so that a stray or forged topic never
// becomes an expert or an archive.
//
// The ids of every router version on the topic count, and so does every id
// below the highest NextID seen: router ids are handed out in order from
// NextID and never reused, so an id below it was a domain of some version
// even after compaction dropped that version (a retired domain's topic keeps
// its documents). A domain added later (a split, a refit) is picked up by the
// next refresh.
//
// A routerDomains is used by one goroutine at a time; close releases it.
type routerDomains struct {
	cc  pipeline.ClientConfig
	log *slog.Logger

	ids     map[int]bool
	nextID  int                  // the highest NextID of a router seen
	in      *pipeline.RoundRobin // router.models, read on from where the last refresh ended
	ignored map[string]bool      // topics warned about
}

func newRouterDomains(cc pipeline.ClientConfig, log *slog.Logger) *routerDomains {
	return &routerDomains{cc: cc, log: log, ids: map[int]bool{}, ignored: map[string]bool{}}
}

func (r *routerDomains) close() {
	if r.in != nil {
		r.in.Close()
	}
}

// known reports whether id is a domain of a router seen so far.
func (r *routerDomains) known(id int) bool { return r.ids[id] || id < r.nextID }

// any reports whether a router was seen.
func (r *routerDomains) any() bool { return len(r.ids) > 0 || r.nextID > 0 }

// refresh reads the messages published on router.models since the last
// refresh; topics is the broker's list of topics (ListTopics), and without
// router.models in it no router was published yet.
func (r *routerDomains) refresh(ctx context.Context, topics []pipeline.TopicInfo) error {
	if r.in == nil {
		i := slices.IndexFunc(topics, func(t pipeline.TopicInfo) bool { return t.Name == pipeline.TopicRouterModels })
		if i < 0 || topics[i].Partitions == 0 {
			return nil
		}
		in, err := pipeline.NewRoundRobin(pipeline.ConsumerConfig{Client: r.cc, Topic: pipeline.TopicRouterModels, Logger: r.log}, topics[i].Partitions)
		if err != nil {
			return fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
		}
		r.in = in
	}
	for p := 0; ; p = (p + 1) % r.in.Partitions() {
		m, _, ok, err := r.in.Next(ctx, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
		}
		if !ok {
			return nil
		}
		if string(m.Key) != routerModelKey {
			continue
		}
		rm, err := cluster.DecodeRouter(m.Value)
		if err != nil {
			r.log.Warn("a router on "+pipeline.TopicRouterModels+" does not decode; its domains are not known from it", "offset", m.Offset, "err", err)
			continue
		}
		for _, id := range rm.IDs {
			r.ids[id] = true
		}
		r.nextID = max(r.nextID, rm.NextID)
	}
}

// domains returns the ids of the domain topics among topics, in their
// order, and warns once about each docs.domain.* topic that is not one.
// Without any router seen it returns none and warns about nothing: the
// topics are not known yet.
func (r *routerDomains) domains(topics []pipeline.TopicInfo) []int {
	var out []int
	for _, t := range topics {
		if !strings.HasPrefix(t.Name, pipeline.DomainTopicPrefix) {
			continue
		}
		id, ok := pipeline.ParseDomainTopic(t.Name)
		switch {
		case ok && r.known(id):
			out = append(out, id)
		case !r.any() || r.ignored[t.Name]:
		case !ok:
			r.ignored[t.Name] = true
			r.log.Warn("topic ignored: not a domain topic name (docs.domain.<id>, the id in plain decimal)", "topic", t.Name)
		default:
			r.ignored[t.Name] = true
			r.log.Warn("topic ignored: its id is not a domain of any router on "+pipeline.TopicRouterModels, "topic", t.Name, "domain", id)
		}
	}
	return out
}
