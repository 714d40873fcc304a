package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/stages/archive"
	"github.com/domainflow/domainflow/stages/cluster"
)

// archiveFlags are the flags of `pipeline archive`.
type archiveFlags struct {
	kafka      kafkaFlags
	domains    string
	out        string
	shardMsgs  int
	exitOnIdle time.Duration
	json       bool
}

// archiveReport is one domain's line of the archive report.
type archiveReport = archive.Report

func (a *app) archiveCmd() *cobra.Command {
	var f archiveFlags
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Archive sink: per-domain Parquet shards of routed documents",
		Long: `Copy the routed documents of docs.domain.<id> topics into rolling Parquet
shards for trainers outside this project:

  --out/archive/<id>/part-PPP-FFFFFFFFFFFF-LLLLLLLLLLLL.parquet

holds the documents of input partition PPP from offset F to offset L (columns
id, text, meta: the same rows 'pipeline replay' and every --in read; then any
extra columns a user stage added to the documents, with their names and
types). A shard closes after --shard-messages messages, before a message
whose extra columns differ from its own, and when the sink stops (idle or
SIGINT/SIGTERM). Shards are written atomically, and a restarted sink continues
after the last offset its shards hold, so names are deterministic and nothing
is archived twice or skipped. While documents come, a line every 10 s says
how far it is: shards written, their documents, and the documents held for
shards not written yet.

--domain all takes the domain ids from the routers on router.models; a
docs.domain.* topic whose id is no router's (docs.domain.007, docs.domain.-1)
is ignored with a warning. Until there is a router with a domain topic it
waits (with --exit-on-idle, that long, then fails), so the sink may start
before the routing stage has fitted its router.`,
		Example: `  pipeline archive --brokers 127.0.0.1:9092 --domain all --out run/
  pipeline archive --brokers 127.0.0.1:9092 --domain 0,3 --out run/ --exit-on-idle 10s --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runArchive(cmd.Context(), &f) },
	}
	fs := cmd.Flags()
	f.kafka.Register(fs)
	fs.StringVar(&f.domains, "domain", "all", "domain `ids` (comma-separated) or all: the domains of the routers on router.models that have a topic")
	fs.StringVar(&f.out, "out", "", "output `dir`: shards go to DIR/archive/<id>/")
	fs.IntVar(&f.shardMsgs, "shard-messages", 1000, "input messages per shard")
	fs.DurationVar(&f.exitOnIdle, "exit-on-idle", 0, "close the shards and exit once no input came for this long (0: until SIGINT/SIGTERM)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object")
	return cmd
}

// archiveProgress is how often archive logs how far it is.
const archiveProgress = 10 * time.Second

func (a *app) runArchive(ctx context.Context, f *archiveFlags) error {
	if f.out == "" {
		return usagef("archive: --out is required")
	}
	if f.shardMsgs < 1 || f.exitOnIdle < 0 {
		return usagef("archive: --shard-messages must be at least 1 and --exit-on-idle not negative")
	}
	log := a.log.With("cmd", "archive")
	cc, err := f.kafka.Connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	var domains archive.DomainSource
	if f.domains == "all" {
		rd := &archiveRouterDomains{cc: cc, log: log, rd: cluster.NewDomains(cc, log), giveUp: f.exitOnIdle}
		defer rd.rd.Close()
		domains = rd
	} else {
		var ids archive.IDs
		for _, s := range process.SplitList(f.domains) {
			id, err := strconv.Atoi(s)
			if err != nil || id < 0 {
				return usagef("archive: --domain %q: want ids like 0,3 or all", s)
			}
			ids = append(ids, id)
		}
		domains = ids
	}
	reps, err := archive.Run(ctx, archive.Config{
		Client:        cc,
		Dir:           filepath.Join(f.out, "archive"),
		ShardMessages: f.shardMsgs,
		ExitOnIdle:    f.exitOnIdle,
		Logger:        log,
		Progress:      archiveProgress,
	}, domains)
	if err != nil {
		if ctx.Err() != nil && reps == nil { // stopped while waiting for a router
			return nil
		}
		return err
	}
	if f.json {
		return writeJSON(a.stdout, struct {
			Domains []archiveReport `json:"domains"`
		}{reps})
	}
	for _, r := range reps {
		fmt.Fprintf(a.stderr, "archive: domain %d: %s in %d new shards\n", r.Domain, plural(r.Docs, "document"), r.Shards)
	}
	return nil
}

// archiveRouterDomains is the archive.DomainSource of --domain all: the
// domains of the routers on router.models that have a topic.
type archiveRouterDomains struct {
	cc     pipeline.ClientConfig
	log    *slog.Logger
	rd     *cluster.Domains
	giveUp time.Duration // --exit-on-idle: how long to wait for a router (0: as long as it takes)
}

// Domains reads the routers published since the last call and returns the
// router domains that have a topic. Until there is a router with such a
// topic it waits, as the trainers do, so that archive may start before the
// routing stage has fitted one; it returns ctx's error when ctx ends first,
// and fails once it waited s.giveUp, when set.
func (s *archiveRouterDomains) Domains(ctx context.Context) ([]int, error) {
	logged, start := false, time.Now()
	for {
		var ids []int
		err := pipeline.Retry(ctx, s.log, "read the router's domains", func(ctx context.Context) (err error) {
			ids, err = s.rd.Current(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		switch {
		case s.rd.Any() && len(ids) > 0:
			return ids, nil
		case s.giveUp > 0 && time.Since(start) >= s.giveUp && !s.rd.Any():
			return nil, fmt.Errorf("--domain all archives the domains of the router, and %s holds no router; give --domain ids", pipeline.TopicRouterModels)
		case s.giveUp > 0 && time.Since(start) >= s.giveUp:
			return nil, fmt.Errorf("no topic of a router domain (%s<id>) on %v", pipeline.DomainTopicPrefix, s.cc.Brokers)
		}
		if !logged {
			s.log.Info("no domain topics of a router yet; waiting for a router on "+pipeline.TopicRouterModels+" and its "+pipeline.DomainTopicPrefix+"<id> topics",
				"router", s.rd.Any())
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(archiveWaitPoll):
		}
	}
}

// archiveWaitPoll is how often `archive --domain all` looks for a router
// while it has none.
const archiveWaitPoll = time.Second
