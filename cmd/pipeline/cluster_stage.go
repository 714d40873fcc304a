package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/stages/cluster"
)

// clusterStageFlags are the flags of `pipeline cluster --brokers …`.
type clusterStageFlags struct {
	stage      stageFlags
	router     string
	watch      time.Duration
	k          int
	balanced   bool
	seed       uint64
	restarts   int
	fitSample  int
	fitWindow  int64
	fitWait    time.Duration
	stateEvery time.Duration
	rebuild    bool
	history    string
	novelty    cluster.NoveltyRule
	grow       bool
	growCfg    cluster.GrowConfig
	shrink     cluster.ShrinkConfig
}

// addClusterStage makes `pipeline cluster` (no subcommand) run the Kafka
// stage docs.features → docs.domain.<id>, on the brokers of --brokers,
// $DOMAINFLOW_BROKERS or the default, as every stage command does.
func (a *app) addClusterStage(cmd *cobra.Command) {
	var f clusterStageFlags
	fs := cmd.Flags()
	// Every output names its domain topic: no output-topic flag, and
	// f.stage.Out stays empty.
	f.stage.PerOutputTopic = true
	f.stage.register(fs, "in-topic", pipeline.TopicFeatures, "out-topic", "", "cluster")
	fs.StringVar(&f.router, "router", "", "stage: router `dir`: its latest router version is used, and a router fitted by the stage is saved there")
	fs.DurationVar(&f.watch, "watch", 5*time.Second, "stage: how often to look for a newer router version in --router")
	fs.IntVar(&f.k, "k", 8, "stage, fit on a sample: number of domains")
	fs.BoolVar(&f.balanced, "balanced", true, "stage, fit on a sample: exact balance at fit")
	fs.Uint64Var(&f.seed, "seed", 1, "stage, fit on a sample: seed of the sample and of k-means")
	fs.IntVar(&f.restarts, "restarts", 3, "stage, fit on a sample: k-means++ restarts")
	fs.IntVar(&f.fitSample, "fit-sample", 10000, "stage, fit on a sample: reservoir size (documents)")
	fs.Int64Var(&f.fitWindow, "fit-window", 100000, "stage, fit on a sample: fit once this many documents were offered to the reservoir, even if more keep coming")
	fs.DurationVar(&f.fitWait, "fit-wait", 3*time.Second, "stage, fit on a sample: how long the input must stay quiet (or the reservoir full) before fitting")
	fs.BoolVar(&f.rebuild, "rebuild-state", false, "stage: rebuild the routed counts by re-routing the input up to the group's committed offsets (exact with one input partition; what 'pipeline run' uses) instead of loading the saved counts")
	fs.StringVar(&f.history, "history", "", "stage: append the routed counts once a second to this JSON-lines `file` (what 'pipeline report' plots)")
	fs.DurationVar(&f.stateEvery, "state-interval", 10*time.Second, "stage: how often the routed counts are saved on router.models (and at exit)")
	noveltyFlags(fs, &f.novelty)
	growFlags(fs, &f.grow, &f.growCfg)
	fs.Float64Var(&f.shrink.Below, "shrink-below", 0, "stage: remove a domain whose share of the last --shrink-window routed documents is below this, in (0, 1) (0: never); its documents go to their next nearest domain and its expert is retired. Balanced routing keeps every share near 1/k: this is for unbalanced routers and grown domains")
	fs.IntVar(&f.shrink.Window, "shrink-window", cluster.DefaultShrinkWindow, "stage, --shrink-below: routed documents the share is measured over (a domain is judged once it has existed that long)")
	cmd.Long += `

On Kafka (no subcommand): run the stage docs.features → docs.domain.<id>
with consumer group --group until SIGINT/SIGTERM, on the brokers of --brokers
(default $` + envBrokers + `, else ` + defaultBrokers + `), as every stage command does;
it exits 1 when they cannot be reached. The router
comes from, in this order: the latest version in --router; the latest router
on router.models (a restart, or another process of the group); or a fit on a
reservoir sample of docs.features (--k, --fit-sample, --balanced), which is
saved into --router when given. Each document is routed by the router
(balanced streaming assignment unless the router says otherwise) and
published on its domain's topic; rows of another featurizer version or
dimension go to the dead-letter topic, except rows of the previous router's
featurizer version while a refit takes over, which are routed through the
previous centroids onto the domains that remain.

The router in use is published on router.models (key "router") with its
featurizer state (key "featurizer"), where embedding stages pick it up. A newer
version saved into --router (a refit with 'cluster fit', 'domains split' or
'domains remove') or published on router.models is picked up while the stage
runs, keeping domain ids and the routed counts of the ids it keeps. The
routed counts are saved on router.models so balance holds across restarts.

Routing state is kept per input partition (router counts, duplicate filter,
router version) and saved on the compacted topic router.state.<group> with
every commit. Several processes may run with one --group: whichever takes a
partition over (a crash, a kill, a rebalance) restores its state, so a
redelivered row gets the domain it got the first time and no document is
ever placed in two domains. Rows whose origin cannot exist
(impossible-origin), goes back within a message (out-of-order-origin) or
whose vector holds NaN or Inf (non-finite-features) are dead-lettered; rows
re-sent by a restarted upstream stage are dropped and counted (duplicates).

Each routed document is also judged for novelty: it is novel when its squared
distance to its nearest centroid exceeds --novel-quantile (default 0.99) of
that domain's fit-time distances, times 1 + --novel-margin. Novel documents are
still routed as above; they are counted (domainflow_novel_rows_total,
domainflow_novel_fraction{window}, domainflow_domain_drift{domain} on
--metrics-addr, and "novel" in the --history lines). A router saved before
routers kept their fit-time distances judges nothing.

With --grow, novel documents are parked on docs.novel instead (pending, not
lost). The process of the group that holds docs.novel (consumer group
<group>.novel) grows new domains once --grow-min documents are pending and
the novel share of the last --grow-window routed documents is at least
--grow-share: it fits new centroids on them (as many as keeps each new domain
about as tight as the old ones, at most --grow-max-new), publishes them with
new ids in a new router version, creates their topics and moves the pending
documents they claim there, exactly once and in the order they were parked.
Documents no new domain claims stay pending. From then on the documents
nearest a grown domain reach it through docs.novel too (that keeps each
domain's documents in origin order, which is what makes the moves exactly
once), and balanced routing balances the old domains among themselves only:
it neither fills a new domain with old documents nor pushes novel documents
into old ones. Run every process of a group with the same --grow flags.

With --shrink-below S (off by default), the process that routes partition 0 of
docs.features removes a domain whose share of its last --shrink-window routed
documents stayed below S (once the domain has existed that long): a new router
version without it is published, its documents go to their next nearest
domain, and its expert is retired (mixtures use the latest router's domains).`
	cmd.Example += `
  pipeline cluster --brokers 127.0.0.1:9092 --router router/
  pipeline cluster --brokers 127.0.0.1:9092 --k 5 --router router/   # fit on the stream if router/ is empty
  pipeline cluster --brokers 127.0.0.1:9092 --router router/ --grow --grow-min 300   # new domains for new corpora`
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		err := a.runClusterStage(cmd, &f)
		if err != nil && f.stage.kafka.Source() != process.FromFlag {
			// `pipeline cluster` alone used to print its help: say what it
			// is now, for whoever typed it to see the subcommands.
			err = fmt.Errorf("%w; without a subcommand, 'pipeline cluster' runs the Kafka routing stage; 'pipeline cluster --help' lists fit, assign and eval", err)
		}
		return err
	}
}

func (a *app) runClusterStage(cmd *cobra.Command, f *clusterStageFlags) error {
	if err := f.stage.Validate("cluster"); err != nil {
		return err
	}
	if f.watch <= 0 || f.stateEvery <= 0 || f.fitWait <= 0 {
		return usagef("cluster: --watch, --state-interval and --fit-wait must be positive durations")
	}
	if f.k < 1 || f.fitSample < 1 {
		return usagef("cluster: --k and --fit-sample must be at least 1")
	}
	if f.fitSample < f.k {
		return usagef("cluster: --fit-sample %d is smaller than --k %d", f.fitSample, f.k)
	}
	if err := f.novelty.Validate(); err != nil {
		return usagef("%v", err)
	}
	var shrink *cluster.ShrinkConfig
	if f.shrink.Below != 0 {
		if err := f.shrink.Validate(); err != nil {
			return usagef("%v", err)
		}
		shrink = &f.shrink
	}
	var grow *cluster.GrowConfig
	if f.grow {
		if err := f.growCfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		grow = &f.growCfg
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "cluster")
	cc, err := f.stage.kafka.Connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cfg := cluster.RunConfig{
		Client:     cc,
		InputTopic: f.stage.In,
		Group:      f.stage.Group,
		RouterDir:  f.router,
		Watch:      f.watch,
		Fit: cluster.StreamFit{K: f.k, Unbalanced: !f.balanced, Restarts: f.restarts, Seed: f.seed,
			Sample: f.fitSample, Window: f.fitWindow, Wait: f.fitWait},
		Rebuild:         f.rebuild,
		Novelty:         f.novelty,
		Grow:            grow,
		Shrink:          shrink,
		HistoryPath:     f.history,
		StateInterval:   f.stateEvery,
		BatchMaxRecords: f.stage.BatchRecords,
		BatchMaxBytes:   f.stage.BatchBytes,
		Linger:          f.stage.Linger,
		Featurizer:      flow.RoutingFeaturizer(cc, log),
		Metrics:         a.stageMetrics(),
		Logger:          log,
	}
	if a.reg != nil { // a nil *Registry in the interface would not be nil
		cfg.Registerer = a.reg
	}
	run, err := cluster.RunStage(ctx, cfg)
	if err != nil {
		return err
	}
	return a.printStageRun("cluster", &f.stage, run)
}
