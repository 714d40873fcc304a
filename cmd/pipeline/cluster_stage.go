package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
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
}

// addClusterStage makes `pipeline cluster` (no subcommand) run the Kafka
// stage docs.features → docs.domain.<id> when --brokers is given; without it
// the command prints its help, as before.
func (a *app) addClusterStage(cmd *cobra.Command) {
	var f clusterStageFlags
	fs := cmd.Flags()
	// Every output names its domain topic, so the shared stage flags are
	// taken without their output-topic flag and f.stage.out stays empty.
	stageFS := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	f.stage.register(stageFS, "in-topic", pipeline.TopicFeatures, "out-topic", "", "cluster")
	f.stage.perOutputTopic = true
	stageFS.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "out-topic" {
			fs.AddFlag(fl)
		}
	})
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
	cmd.Long += `

On Kafka (--brokers given, no subcommand): run the stage docs.features →
docs.domain.<id> with consumer group --group until SIGINT/SIGTERM. The router
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
re-sent by a restarted upstream stage are dropped and counted (duplicates).`
	cmd.Example += `
  pipeline cluster --brokers 127.0.0.1:9092 --router router/
  pipeline cluster --brokers 127.0.0.1:9092 --k 5 --router router/   # fit on the stream if router/ is empty`
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !cmd.Flags().Changed("brokers") {
			return cmd.Help()
		}
		return a.runClusterStage(cmd, &f)
	}
}

func (a *app) runClusterStage(cmd *cobra.Command, f *clusterStageFlags) error {
	if err := f.stage.validate("cluster"); err != nil {
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
	ctx := cmd.Context()
	log := a.log.With("cmd", "cluster")
	cc, err := f.stage.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n, err := waitPartitions(ctx, cc, f.stage.in, log)
	if err != nil {
		return fmt.Errorf("cluster: input topic %s: %w", f.stage.in, err)
	}
	rm, fromDir, err := a.clusterRouter(ctx, cc, f, log)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	stage, err := cluster.NewStage(rm)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	latest, err := routerTopicLatest(ctx, cc)
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", pipeline.TopicRouterModels, err)
	}
	stateKey := routingStateKeyPrefix + f.stage.group
	// The routing state of each input partition (router counts, duplicate
	// filter, router version) is saved with every commit on a state topic
	// of the group and moves with the partition to whichever process of the
	// group routes it next.
	stateTopic := routingStateTopicPrefix + f.stage.group
	err = pipeline.Retry(ctx, log, "create "+stateTopic, func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, pipeline.StateTopicSpec(stateTopic, n))
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	store, err := pipeline.NewKafkaStateStore(cc, stateTopic)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer store.Close()
	origins, err := pipeline.NewOriginChecker(cc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer origins.Close()
	stage.OriginCheck = func(ctx context.Context, o schemas.Origin) error {
		err := origins.Check(ctx, o.Topic, o.Partition, o.Offset)
		if err != nil && !errors.Is(err, pipeline.ErrImpossibleOrigin) {
			return fmt.Errorf("%w: %v", pipeline.ErrRetry, err) // the broker is away: retry the batch
		}
		return err
	}
	stage.Lookup = routerLookup(cc, f.router)
	stage.Logger = log
	var restored int
	err = pipeline.Retry(ctx, log, "restore the routing state", func(ctx context.Context) error {
		var err error
		restored, err = stage.RestorePartitions(ctx, store, f.stage.in, n)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: restore the routing state: %w", err)
	}
	switch {
	case restored > 0:
		log.Info("routing state restored from "+stateTopic, "partitions", restored, "counts", stage.Counts())
	case f.rebuild:
		if err := rebuildRouting(ctx, cc, f.stage.group, f.stage.in, n, stage, store, log); err != nil {
			return fmt.Errorf("cluster: rebuild the routed counts: %w", err)
		}
	default:
		if m, ok := latest[stateKey]; ok {
			// A group that ran before routing state was kept per
			// partition: its saved counts seed the balance.
			counts, err := cluster.DecodeRoutingState(m.Value)
			if err == nil {
				err = stage.SetCounts(counts)
			}
			if err != nil {
				log.Warn("routed counts not restored", "err", err)
			} else {
				log.Info("routed counts restored", "counts", counts)
			}
		}
	}
	if err := ensureDomainTopics(ctx, cc, rm, n); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The counts as of this start (rebuilt, restored or none): whoever waits
	// for this stage's counts sees it is up.
	if err := publishOnRouterTopic(ctx, cc, stateKey, cluster.EncodeRoutingState(stage.Model().Version, stage.Counts())); err != nil {
		return fmt.Errorf("cluster: save the routed counts: %w", err)
	}
	if fromDir {
		// Embedding stages that share this pipeline's featurizer lineage
		// pick it up here; a state too large for the topic only warns.
		if err := publishFeaturizer(ctx, cc, f.router, rm.FeaturizerVersion); err != nil {
			log.Warn("featurizer not published on "+pipeline.TopicRouterModels, "err", err)
		}
	}
	if m, ok := latest[routerModelKey]; !ok || routerVersionOf(m) < rm.Version {
		if err := publishRouter(ctx, cc, rm); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	log.Info("router loaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)
	rw := &routerWatch{a: a, cc: cc, f: f, stage: stage, partitions: n, log: log}
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWatch()
		wg.Wait()
		// The final counts, after the runner drained its last batch.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := publishOnRouterTopic(sctx, cc, stateKey, cluster.EncodeRoutingState(stage.Model().Version, stage.Counts())); err != nil {
			log.Warn("routed counts not saved", "err", err)
		}
	}()
	wg.Add(3)
	go func() { defer wg.Done(); rw.watchDir(wctx) }()
	go func() { defer wg.Done(); watchRouterTopic(wctx, cc, log, rw.onTopic) }()
	go func() { defer wg.Done(); a.routingStateLoop(wctx, cc, stage, stateKey, f.stateEvery, f.history, log) }()
	return a.runStage(ctx, "cluster", &f.stage, cc, stage, []schemas.Kind{schemas.KindFeatures}, log,
		func(c *pipeline.RunnerConfig) { c.States = store })
}

// rebuildRouting re-routes the input up to the group's committed offsets
// through stage, partition by partition, discarding the output, so that its
// routing state (counts and duplicate filter) is what it was when those
// offsets were committed, and saves that state as each partition's snapshot.
// It serves groups that committed before routing state was saved per
// partition.
func rebuildRouting(ctx context.Context, cc pipeline.ClientConfig, group, topic string, n int, stage *cluster.Stage, store pipeline.StateStore, log *slog.Logger) error {
	committed, err := pipeline.CommittedOffsets(ctx, cc, group, topic, n)
	if err != nil {
		return err
	}
	rows := 0
	for p, end := range committed {
		if end <= 0 {
			continue
		}
		part := pipeline.Partition{Topic: topic, Partition: p}
		if err := stage.Restore(ctx, part, nil, -1, end); err != nil {
			return err
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cc.Brokers, Topic: topic, Partition: p, Dialer: cc.Dialer(),
			MinBytes: 1, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
		for {
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			m, err := r.FetchMessage(fctx)
			cancel()
			if err != nil {
				r.Close()
				return fmt.Errorf("re-read %s/%d: %w", topic, p, err)
			}
			if m.Offset >= end {
				break
			}
			recs, err := schemas.DecodeRecords(m.Value, nil)
			if err == nil {
				pos := pipeline.Position{Partition: part, First: m.Offset, Last: m.Offset}
				for _, rec := range recs {
					if res, err := stage.ProcessAt(ctx, pos, rec); err == nil {
						for _, o := range res.Out {
							rows += int(o.Record.NumRows())
							o.Record.Release()
						}
					}
					rec.Release()
				}
			}
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
		state, err := stage.Snapshot(part, end)
		if err == nil {
			err = store.Save(ctx, part, end, state)
		}
		if err != nil {
			return fmt.Errorf("save the rebuilt state of %s: %w", part, err)
		}
	}
	log.Info("routed counts rebuilt", "rows", rows, "committed", committed, "counts", stage.Counts())
	return nil
}

// routerLookup finds a router version in dir (when given) or among the
// routers published on router.models, for partitions whose saved state names
// a version this process has not loaded.
func routerLookup(cc pipeline.ClientConfig, dir string) func(context.Context, int64) (*cluster.RouterModel, error) {
	return func(ctx context.Context, v int64) (*cluster.RouterModel, error) {
		if dir != "" {
			if rm, err := cluster.LoadRouter(dir, v); err == nil {
				return rm, nil
			}
		}
		var msgs []kafka.Message
		err := pipeline.Retry(ctx, cc.Logger, "read "+pipeline.TopicRouterModels, func(ctx context.Context) error {
			var err error
			msgs, err = pipeline.ReadTopic(ctx, cc, pipeline.TopicRouterModels, 0)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			if string(msgs[i].Key) != routerModelKey {
				continue
			}
			if rm, err := cluster.DecodeRouter(msgs[i].Value); err == nil && rm.Version == v {
				return rm, nil
			}
		}
		where := pipeline.TopicRouterModels
		if dir != "" {
			where = dir + " nor on " + where
		}
		return nil, fmt.Errorf("router version %d is not in %s", v, where)
	}
}

// routerVersionOf reads the version of a router message (-1 if it does not
// decode).
func routerVersionOf(m kafka.Message) int64 {
	rm, err := cluster.DecodeRouter(m.Value)
	if err != nil {
		return -1
	}
	return rm.Version
}

// clusterRouter finds the router to start with: --router's latest version,
// router.models' latest, or a fit on a sample of the input. fromDir says it
// came from --router (whose featurizer state is then published too).
func (a *app) clusterRouter(ctx context.Context, cc pipeline.ClientConfig, f *clusterStageFlags, log *slog.Logger) (*cluster.RouterModel, bool, error) {
	if f.router != "" {
		if v, err := cluster.LatestRouterVersion(f.router); err == nil && v > 0 {
			_, rm, err := loadRouterDir(f.router)
			if err != nil {
				return nil, false, fmt.Errorf("router %s: %w", f.router, err)
			}
			return rm, true, nil
		}
	}
	rm, err := latestRouterOnTopic(ctx, cc, log)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
	}
	if rm != nil {
		log.Info("router taken from "+pipeline.TopicRouterModels, "version", rm.Version)
		return rm, false, nil
	}
	rm, err = a.fitOnStream(ctx, cc, f, log)
	return rm, false, err
}

// fitOnStream fits a router on a reservoir sample of the input topic: it
// reads from the first offset until the reservoir is full and the input has
// been quiet for --fit-wait (or until the input stays quiet with at least k
// rows, or until --fit-window rows were offered), then fits, names domains by the featurizer on router.models when
// there is one, and saves into --router when given. Broker outages are
// ridden out: reads are retried with backoff, and the input counts as
// quiet only once every partition was read to its end.
func (a *app) fitOnStream(ctx context.Context, cc pipeline.ClientConfig, f *clusterStageFlags, log *slog.Logger) (*cluster.RouterModel, error) {
	res := cluster.NewReservoir(f.fitSample, f.seed)
	var n int
	err := pipeline.Retry(ctx, log, "read the partitions of "+f.stage.in, func(ctx context.Context) (err error) {
		n, err = pipeline.PartitionCount(ctx, cc, f.stage.in)
		return err
	})
	if err != nil {
		return nil, err
	}
	log.Info("no router yet: sampling the input to fit one", "topic", f.stage.in, "k", f.k, "sample", f.fitSample)
	readers := make([]*kafka.Reader, n)
	for p := range n {
		readers[p] = kafka.NewReader(kafka.ReaderConfig{Brokers: cc.Brokers, Topic: f.stage.in, Partition: p, Dialer: cc.Dialer(),
			MinBytes: 1, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
		defer readers[p].Close()
	}
	lastNew := time.Now()
	backoff := pipeline.RetryBackoffMin
	for p := 0; ; p = (p + 1) % n {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := readers[p].FetchMessage(rctx)
		cancel()
		if err == nil {
			lastNew = time.Now()
			backoff = pipeline.RetryBackoffMin
			if recs, derr := schemas.DecodeRecords(m.Value, nil); derr == nil {
				for _, rec := range recs {
					_, _ = res.Add(rec) // bad records are the stage's to dead-letter
					rec.Release()
				}
			}
			if res.Seen() >= f.fitWindow && res.Len() >= f.k {
				break
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			if !pipeline.Retryable(err) {
				return nil, fmt.Errorf("sample %s/%d: %w", f.stage.in, p, err)
			}
			// The broker is away: the reader reconnects by itself.
			log.Warn("sample "+f.stage.in+" failed; retrying", "partition", p, "err", err, "backoff", backoff)
			if !sleepCtx(ctx, backoff) {
				return nil, ctx.Err()
			}
			backoff = min(2*backoff, pipeline.RetryBackoffMax)
			continue
		}
		if time.Since(lastNew) >= f.fitWait && res.Len() >= f.k {
			// Quiet, unless the broker was away: then some partition still
			// has messages this sample has not read.
			read, err := readToEnd(ctx, readers, log)
			if err != nil {
				return nil, err
			}
			if read {
				break
			}
			lastNew = time.Now()
		}
		if time.Since(lastNew) >= 10*f.fitWait && p == n-1 {
			log.Info("waiting for documents to fit on", "have", res.Len(), "need", f.k)
			lastNew = time.Now().Add(-f.fitWait)
		}
	}
	rows, ids := res.Rows()
	fc := cluster.FitConfig{K: f.k, Unbalanced: !f.balanced, Restarts: f.restarts, Seed: f.seed}
	start := time.Now()
	m, labels, err := cluster.Fit(ctx, rows, fc)
	if err != nil {
		return nil, fmt.Errorf("fit on the sample: %w", err)
	}
	ids0, nextID := cluster.MatchIDs(nil, m)
	rm := &cluster.RouterModel{FeaturizerVersion: res.Version(), IDs: ids0, Model: m, Fit: fc, NextID: nextID,
		Examples: cluster.Examples(m, rows, ids, labels, numExamples), Created: time.Now().UTC()}
	// Name the domains with the featurizer on router.models, if it is the
	// one the sample was featurized with (a damaged one is ignored).
	state, err := featurizerOnTopic(ctx, cc, res.Version(), log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		log.Warn("featurizer on "+pipeline.TopicRouterModels+" not read; the domains get no top terms", "err", err)
	}
	if state != nil {
		rm.Featurizer = string(state.Settings.Kind)
		rm.TopTerms = domainTopTerms(state, m, 10)
	} else if err == nil {
		log.Warn("no valid featurizer of the sample's version on "+pipeline.TopicRouterModels+"; the domains get no top terms", "featurizer_version", res.Version())
	}
	if f.router != "" {
		if state != nil {
			if err := saveFeaturizer(f.router, state); err != nil {
				return nil, fmt.Errorf("save the featurizer into %s: %w", f.router, err)
			}
		}
		if _, err := cluster.SaveRouter(f.router, rm); err != nil {
			return nil, err
		}
	} else {
		rm.Version = 1
	}
	log.Info("router fitted on the stream", "version", rm.Version, "k", f.k, "sample", rows.N, "seen", res.Seen(),
		"featurizer_version", rm.FeaturizerVersion, "sizes", m.Sizes, "seconds", time.Since(start).Seconds())
	return rm, nil
}

// readToEnd reports whether each partition reader has read up to the end of
// its partition, asking the broker (retried through outages).
func readToEnd(ctx context.Context, readers []*kafka.Reader, log *slog.Logger) (bool, error) {
	for _, r := range readers {
		var lag int64
		err := pipeline.Retry(ctx, log, "read the end offsets of "+r.Config().Topic, func(ctx context.Context) (err error) {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			lag, err = r.ReadLag(lctx)
			return err
		})
		if err != nil {
			return false, err
		}
		if lag > 0 {
			return false, nil
		}
	}
	return true, nil
}

// routerWatch swaps newer routers into a running stage, from --router and
// from router.models.
type routerWatch struct {
	a          *app
	cc         pipeline.ClientConfig
	f          *clusterStageFlags
	stage      *cluster.Stage
	partitions int
	log        *slog.Logger
	mu         sync.Mutex // one swap at a time
}

// swap installs rm if it is newer than the stage's router; fromDir says
// whether it (and its featurizer) should be published.
func (rw *routerWatch) swap(ctx context.Context, rm *cluster.RouterModel, fromDir bool) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rm.Version <= rw.stage.Model().Version {
		return nil
	}
	if err := ensureDomainTopics(ctx, rw.cc, rm, rw.partitions); err != nil {
		return err
	}
	if fromDir {
		// The featurizer first: embedding stages switch to it and their
		// rows of the new version reach a stage that already routes them.
		if err := publishFeaturizer(ctx, rw.cc, rw.f.router, rm.FeaturizerVersion); err != nil {
			rw.log.Warn("featurizer not published on "+pipeline.TopicRouterModels, "version", rm.FeaturizerVersion, "err", err)
		}
	}
	if err := rw.stage.Swap(rm); err != nil {
		return err
	}
	rw.log.Info("router reloaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)
	if fromDir {
		if err := publishRouter(ctx, rw.cc, rm); err != nil {
			rw.log.Warn("router not published", "version", rm.Version, "err", err)
		}
	}
	return nil
}

// watchDir polls --router every --watch for a newer router version. A
// version that fails is retried at the next poll.
func (rw *routerWatch) watchDir(ctx context.Context) {
	if rw.f.router == "" {
		return
	}
	t := time.NewTicker(rw.f.watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := cluster.LatestRouterVersion(rw.f.router)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				rw.log.Warn("router not loaded", "err", err)
			}
			continue
		}
		if v <= rw.stage.Model().Version {
			continue
		}
		rm, err := cluster.LoadRouter(rw.f.router, v)
		if err == nil {
			err = rw.swap(ctx, rm, true)
		}
		if err != nil && ctx.Err() == nil {
			rw.log.Warn("router not loaded", "version", v, "err", err)
		}
	}
}

// onTopic swaps in a newer router published on router.models by another
// process (e.g. 'domains split --brokers'); a damaged one (it does not
// verify against its checksums) is ignored with a warning.
func (rw *routerWatch) onTopic(ctx context.Context, m kafka.Message) {
	if string(m.Key) != routerModelKey {
		return
	}
	rm, err := cluster.DecodeRouter(m.Value)
	if err != nil {
		rw.log.Warn("damaged router on "+pipeline.TopicRouterModels+" ignored", "offset", m.Offset, "err", err)
		return
	}
	if err := rw.swap(ctx, rm, false); err != nil && ctx.Err() == nil {
		rw.log.Warn("router from "+pipeline.TopicRouterModels+" not loaded", "version", rm.Version, "err", err)
	}
}

// routingStateLoop saves the routed counts every interval and keeps the
// routing gauges current.
func (a *app) routingStateLoop(ctx context.Context, cc pipeline.ClientConfig, stage *cluster.Stage, key string, every time.Duration, history string, log *slog.Logger) {
	var hist *os.File
	if history != "" {
		var err error
		if hist, err = os.OpenFile(history, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			log.Warn("routing history not written", "err", err)
		} else {
			defer hist.Close()
		}
	}
	var lastTotal int64 = -1
	var routed *prometheus.GaugeVec
	var imbalance, version prometheus.Gauge
	if a.reg != nil {
		routed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_domain_routed_documents",
			Help: "Documents routed to each domain since the stage's counts began (restored across restarts)."}, []string{"domain"})
		imbalance = prometheus.NewGauge(prometheus.GaugeOpts{Name: "domainflow_domain_imbalance",
			Help: "Largest over smallest routed domain size (1 = perfectly balanced)."})
		version = prometheus.NewGauge(prometheus.GaugeOpts{Name: "domainflow_router_version", Help: "Version of the router in use."})
		for _, c := range []prometheus.Collector{routed, imbalance, version} {
			if err := a.reg.Register(c); err != nil {
				log.Warn("routing metrics not registered", "err", err)
			}
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSave := time.Now()
	for {
		stopping := false
		select {
		case <-ctx.Done():
			stopping = true
		case <-tick.C:
		}
		counts := stage.Counts()
		if hist != nil {
			var total int64
			for _, c := range counts {
				total += c
			}
			if total != lastTotal {
				lastTotal = total
				if _, err := hist.Write(append(cluster.EncodeRoutingState(stage.Model().Version, counts), '\n')); err != nil {
					log.Warn("routing history not written", "err", err)
				}
			}
		}
		if stopping {
			return // the final counts go to router.models from the caller
		}
		if routed != nil {
			routed.Reset()
			sizes := make([]int, 0, len(counts))
			for id, c := range counts {
				routed.WithLabelValues(strconv.Itoa(id)).Set(float64(c))
				sizes = append(sizes, int(c))
			}
			mm, _ := cluster.Balance(sizes)
			imbalance.Set(mm)
			version.Set(float64(stage.Model().Version))
		}
		if time.Since(lastSave) >= every {
			lastSave = time.Now()
			if err := publishOnRouterTopic(ctx, cc, key, cluster.EncodeRoutingState(stage.Model().Version, counts)); err != nil && ctx.Err() == nil {
				log.Warn("routed counts not saved", "err", err)
			}
		}
	}
}

// waitPartitions returns the partition count of topic, waiting for the topic
// to appear (the featurization stage creates it) and riding out broker
// outages (a warning per retry, with backoff) until ctx ends; a permanent
// error (no permission, say) fails at once.
func waitPartitions(ctx context.Context, cc pipeline.ClientConfig, topic string, log *slog.Logger) (int, error) {
	logged := false
	var n int
	err := pipeline.Retry(ctx, log, "read the partitions of "+topic, func(ctx context.Context) error {
		for {
			var err error
			n, err = pipeline.PartitionCount(ctx, cc, topic)
			if err == nil && n > 0 {
				return nil
			}
			if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				return err
			}
			if !logged {
				log.Info("waiting for the input topic", "topic", topic)
				logged = true
			}
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return ctx.Err()
			}
		}
	})
	return n, err
}

// ensureDomainTopics creates the topic of every domain of rm that has none,
// with n partitions (the input's, so partition order carries over),
// retrying through broker outages (warnings go to cc.Logger).
func ensureDomainTopics(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel, n int) error {
	specs := make([]pipeline.TopicSpec, len(rm.IDs))
	for j, id := range rm.IDs {
		specs[j] = pipeline.TopicSpec{Name: pipeline.DomainTopic(id), Partitions: n}
	}
	return pipeline.Retry(ctx, cc.Logger, "create the domain topics", func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, specs...)
	})
}
