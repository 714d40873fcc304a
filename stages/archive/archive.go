package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/domainflow/domainflow/pipeline"
)

// Config configures the archive sink. Its zero value, given a Client and a
// Dir, archives in shards of 1000 messages until ctx ends.
type Config struct {
	// Client reaches the brokers of the domain topics and of the dead-letter
	// topic. Required.
	Client pipeline.ClientConfig
	// Dir is the archive: the shards of domain id go to Dir/<id>/. Required.
	// (The CLI's --out DIR archives to DIR/archive.)
	Dir string
	// ShardMessages is the number of input messages after which a shard
	// closes. Default: 1000.
	ShardMessages int
	// ExitOnIdle, when positive, ends a domain's archiving, its open shards
	// written, once none of its partitions had a message for this long.
	// Default: 0, archive until ctx ends.
	ExitOnIdle time.Duration
	// Rescan, when positive, is how often Run asks its DomainSource again
	// while it runs, and starts archiving the domains that appeared since.
	// Default: 0, the domains are asked for once, at the start.
	Rescan time.Duration
	// Logger receives the sink's warnings (dead letters, retried reads),
	// with the domain as an attribute. Default: none, nothing is logged.
	Logger *slog.Logger
	// Progress, when positive, is how often Run logs a line of progress on
	// Logger (Info, "archiving"): the domains archived, the shards written
	// and their documents, and the documents taken into shards not written
	// yet (a shard is written at ShardMessages or at the stop). A line is
	// logged only when documents came since the previous one (the first
	// line always). Default: 0, no progress lines.
	Progress time.Duration
}

// shardMessages is ShardMessages or its default.
func (c *Config) shardMessages() int {
	if c.ShardMessages > 0 {
		return c.ShardMessages
	}
	return 1000
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Config) validate() error {
	switch {
	case c.Dir == "":
		return errors.New("archive: no directory (Config.Dir)")
	case len(c.Client.Brokers) == 0:
		return errors.New("archive: no brokers (Config.Client)")
	case c.ShardMessages < 0 || c.ExitOnIdle < 0 || c.Rescan < 0 || c.Progress < 0:
		return errors.New("archive: ShardMessages, ExitOnIdle, Rescan and Progress must not be negative")
	}
	return nil
}

// Report is what one domain's archiving did: the documents it wrote to new
// shards and how many shards it wrote. Its JSON form is a line of the CLI's
// --json report.
type Report struct {
	Domain int   `json:"domain"`
	Docs   int64 `json:"docs"`
	Shards int   `json:"shards"`
}

// DomainSource tells Run which domains to archive.
type DomainSource interface {
	// Domains returns the ids of the domains to archive now, each with a
	// topic pipeline.DomainTopic(id). It is called once at the start of
	// Run, and every Config.Rescan after, from one goroutine at a time; an
	// id it stops returning keeps being archived. An error at the start
	// ends Run with that error (so Domains should ride out a broker outage
	// itself, as pipeline.Retry does); a later one is logged and the next
	// rescan tries again.
	Domains(ctx context.Context) ([]int, error)
}

// DomainsFunc adapts a function to a DomainSource.
type DomainsFunc func(ctx context.Context) ([]int, error)

// Domains calls f.
func (f DomainsFunc) Domains(ctx context.Context) ([]int, error) { return f(ctx) }

// IDs is a fixed list of domains.
type IDs []int

// Domains returns the ids.
func (ids IDs) Domains(context.Context) ([]int, error) { return ids, nil }

// Run archives the domains that domains names, each on its own goroutine,
// until every one has ended: at its idle time (Config.ExitOnIdle) or when
// ctx ends, its open shards written either way. It returns the domains'
// reports in the order of their ids. A stop through ctx is not an error;
// the failure of a domain is, after the others have ended.
func Run(ctx context.Context, cfg Config, domains DomainSource) ([]Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ids, err := domains.Domains(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("archive: no domain to archive")
	}
	a, err := newArchiver(cfg)
	if err != nil {
		return nil, err
	}
	defer a.close()

	type result struct {
		rep Report
		err error
	}
	var (
		started = map[int]bool{}
		running int
		ended   = make(chan result)
		reps    []Report
		failed  []result
	)
	start := func(ids []int) {
		for _, id := range ids {
			if started[id] {
				continue
			}
			started[id] = true
			running++
			go func() {
				rep, err := a.domain(ctx, id)
				ended <- result{rep, err}
			}()
		}
	}
	start(ids)
	var tick <-chan time.Time
	if cfg.Rescan > 0 {
		t := time.NewTicker(cfg.Rescan)
		defer t.Stop()
		tick = t.C
	}
	var progress <-chan time.Time
	if cfg.Progress > 0 {
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		progress = t.C
	}
	lastTaken := int64(-1)
	for running > 0 {
		select {
		case <-progress:
			if taken := a.taken.Load(); taken != lastTaken {
				lastTaken = taken
				written := a.written.Load()
				a.log.Info("archiving", "domains", running, "shards", a.shards.Load(), "docs_in_shards", written, "docs_pending", taken-written)
			}
		case r := <-ended:
			running--
			if r.err != nil {
				failed = append(failed, r)
				continue
			}
			reps = append(reps, r.rep)
		case <-tick:
			if ctx.Err() != nil {
				tick = nil
				continue
			}
			ids, err := domains.Domains(ctx)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("the domains to archive were not read; trying again at the next rescan", "err", err)
				}
				continue
			}
			start(ids)
		}
	}
	slices.SortFunc(reps, func(x, y Report) int { return x.Domain - y.Domain })
	if len(failed) > 0 {
		slices.SortFunc(failed, func(x, y result) int { return x.rep.Domain - y.rep.Domain })
		errs := make([]error, len(failed))
		for i, r := range failed {
			errs[i] = fmt.Errorf("domain %d: %w", r.rep.Domain, r.err)
		}
		return reps, fmt.Errorf("archive: %w", errors.Join(errs...))
	}
	return reps, nil
}

// Domain archives one domain until its idle time (Config.ExitOnIdle) or
// the end of ctx, as Run does for each of its domains.
func Domain(ctx context.Context, cfg Config, id int) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{Domain: id}, err
	}
	a, err := newArchiver(cfg)
	if err != nil {
		return Report{Domain: id}, err
	}
	defer a.close()
	rep, err := a.domain(ctx, id)
	if err != nil {
		return rep, fmt.Errorf("archive: domain %d: %w", id, err)
	}
	return rep, nil
}
