package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/domainflow/domainflow/pipeline"
)

// Domains knows which ids are domains: only the routers'. A topic named
// docs.domain.X is a domain topic only when X is exactly the decimal form of
// an id of a router published on router.models; any other topic of that
// prefix (docs.domain.007, docs.domain.-1, docs.domain.99 that no router
// knows) is ignored with one warning, so that a stray or forged topic never
// becomes an expert or an archive.
//
// The ids of every router version on the topic count, and so does every id
// below the highest NextID seen: router ids are handed out in order from
// NextID and never reused, so an id below it was a domain of some version
// even after compaction dropped that version (a retired domain's topic keeps
// its documents). A domain added later (a split, a refit) is picked up by the
// next Refresh, which reads on from where the last one ended.
//
// A Domains is used by one goroutine at a time; Close releases it.
type Domains struct {
	cc  pipeline.ClientConfig
	log *slog.Logger

	ids     map[int]bool
	nextID  int                         // the highest NextID of a router seen
	in      *pipeline.PartitionConsumer // router.models, read on from where the last refresh ended
	parts   int
	ignored map[string]bool // topics warned about
}

// NewDomains returns a Domains that knows no router yet; log gets its
// warnings (nil: cc.Logger, else slog.Default()).
func NewDomains(cc pipeline.ClientConfig, log *slog.Logger) *Domains {
	if log == nil {
		log = cc.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	return &Domains{cc: cc, log: log, ids: map[int]bool{}, ignored: map[string]bool{}}
}

// Close stops the reader of router.models.
func (d *Domains) Close() error {
	if d.in != nil {
		return d.in.Close()
	}
	return nil
}

// Known reports whether id is a domain of a router seen so far.
func (d *Domains) Known(id int) bool { return d.ids[id] || id < d.nextID }

// Any reports whether a router was seen.
func (d *Domains) Any() bool { return len(d.ids) > 0 || d.nextID > 0 }

// Refresh reads the messages published on router.models since the last
// refresh; topics is the broker's list of topics (pipeline.ListTopics), and
// without router.models in it no router was published yet. It does not
// retry: callers wrap it in pipeline.Retry or try again later.
func (d *Domains) Refresh(ctx context.Context, topics []pipeline.TopicInfo) error {
	if d.in == nil {
		i := slices.IndexFunc(topics, func(t pipeline.TopicInfo) bool { return t.Name == pipeline.TopicRouterModels })
		if i < 0 || topics[i].Partitions == 0 {
			return nil
		}
		in, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: d.cc, Topic: pipeline.TopicRouterModels, Logger: d.log})
		if err != nil {
			return fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
		}
		d.in, d.parts = in, topics[i].Partitions
		for p := range d.parts {
			in.Assign(p, pipeline.FirstOffset)
		}
	}
	first, end, err := d.in.Offsets(ctx, d.parts)
	if err != nil {
		return fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
	}
	for p := range d.parts {
		for {
			next, _ := d.in.Position(p)
			if next < first[p] { // FirstOffset, or below what retention kept
				next = first[p]
			}
			if next >= end[p] {
				break
			}
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			m, err := d.in.Next(fctx, p)
			cancel()
			if err != nil {
				if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("no message at offset %d of %s/%d within a minute", next, pipeline.TopicRouterModels, p)
				}
				return fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
			}
			d.add(m)
		}
	}
	return nil
}

// add takes the domains of a router message.
func (d *Domains) add(m pipeline.Message) {
	if string(m.Key) != RouterKey {
		return
	}
	rm, err := DecodeRouter(m.Value)
	if err != nil {
		d.log.Warn("a router on "+pipeline.TopicRouterModels+" does not decode; its domains are not known from it", "offset", m.Offset, "err", err)
		return
	}
	for _, id := range rm.IDs {
		d.ids[id] = true
	}
	d.nextID = max(d.nextID, rm.NextID)
}

// IDs returns the ids of the domain topics among topics, in their order, and
// warns once about each docs.domain.* topic that is not one. Without any
// router seen it returns none and warns about nothing: the topics are not
// known yet.
func (d *Domains) IDs(topics []pipeline.TopicInfo) []int {
	var out []int
	for _, t := range topics {
		if !strings.HasPrefix(t.Name, pipeline.DomainTopicPrefix) {
			continue
		}
		id, ok := pipeline.ParseDomainTopic(t.Name)
		switch {
		case ok && d.Known(id):
			out = append(out, id)
		case !d.Any() || d.ignored[t.Name]:
		case !ok:
			d.ignored[t.Name] = true
			d.log.Warn("topic ignored: not a domain topic name (docs.domain.<id>, the id in plain decimal)", "topic", t.Name)
		default:
			d.ignored[t.Name] = true
			d.log.Warn("topic ignored: its id is not a domain of any router on "+pipeline.TopicRouterModels, "topic", t.Name, "domain", id)
		}
	}
	return out
}

// Current lists the broker's topics, reads the routers published since the
// last call and returns the ids of the router domains that have a topic
// (IDs). It does not retry. Its signature is that of the DomainSource of
// stages/train and stages/archive, so d.Current serves both.
func (d *Domains) Current(ctx context.Context) ([]int, error) {
	ts, err := pipeline.ListTopics(ctx, d.cc)
	if err != nil {
		return nil, err
	}
	if err := d.Refresh(ctx, ts); err != nil {
		return nil, err
	}
	return d.IDs(ts), nil
}
