package cluster

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

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// RunConfig configures RunStage, the routing stage docs.features →
// docs.domain.<id> on Kafka. Client is required; every other field has a
// default, so a RunConfig with only Client set fits a router of 8 domains
// on the stream (or takes the one on router.models) and routes with it.
type RunConfig struct {
	Client pipeline.ClientConfig
	// InputTopic is the features topic read. Default: pipeline.TopicFeatures.
	InputTopic string
	// Group is the consumer group; several processes of one group share the
	// input partitions, each partition's routing state moving with it (on
	// RoutingStateTopic(Group)). Default: "cluster".
	Group string
	// RouterDir, when set, is a router dir: its latest router version is
	// used, a router fitted on the stream is saved there, and a newer
	// version saved there while the stage runs is swapped in. Default: "",
	// routers come from router.models or a fit on the stream only.
	RouterDir string
	// Watch is how often RouterDir is looked at for a newer version.
	// Default: 5s.
	Watch time.Duration
	// Fit is the fit on a reservoir sample of the input, used when neither
	// RouterDir nor router.models holds a router.
	Fit StreamFit
	// Rebuild rebuilds the routed counts of a group whose partitions hold
	// no saved routing state by re-routing the input up to the group's
	// committed offsets (exact with one input partition), instead of
	// seeding them from the counts saved on router.models. Default: false.
	Rebuild bool
	// HistoryPath, when set, is a JSON-lines file to which the routed
	// counts are appended once a second while they change (what the HTML
	// report plots). Default: "", none.
	HistoryPath string
	// StateInterval is how often the routed counts are saved on
	// router.models (they are also saved at the start and at the stop).
	// Default: 10s.
	StateInterval time.Duration
	// BatchMaxRecords, BatchMaxBytes and Linger shape the runner's
	// micro-batches. Defaults: pipeline.RunnerConfig's (2000, 8 MiB, 20ms).
	BatchMaxRecords int
	BatchMaxBytes   int
	Linger          time.Duration
	// Featurizer connects the stage to the featurizer lineage, which lives
	// in the featurization stage's package. Default: nil, the featurizer is
	// neither published nor used to name the domains of a fitted router.
	Featurizer Featurizer
	// Novelty is the rule routed rows are judged novel by (see NoveltyRule
	// and Stage). Default: the zero rule, 0.99 and no margin.
	Novelty NoveltyRule
	// Grow, when non-nil, turns growth on (see the comment of grow.go):
	// novel rows are parked on pipeline.TopicNovel, and the process of
	// the group that holds that topic's partition (the mover, group
	// MoverGroup(Group)) grows new domains from them. Every process of a
	// group should run with the same setting. A router that has grown
	// domains runs the mover too, to forward their rows. Default: nil,
	// growth off.
	Grow *GrowConfig
	// Shrink, when non-nil, turns shrinking on (see ShrinkConfig): the
	// process that routes partition 0 of the input removes a domain whose
	// share of its last Window routed documents is below Below, every
	// ShrinkEvery. Default: nil, off.
	Shrink *ShrinkConfig
	// ShrinkEvery is how often shrinking looks. Default: 5s.
	ShrinkEvery time.Duration
	// Metrics, when non-nil, receive the runner's counters. Default: nil.
	Metrics *pipeline.Metrics
	// Registerer, when non-nil, gets the routing gauges
	// (domainflow_domain_routed_documents, domainflow_domain_imbalance,
	// domainflow_router_version) and the novelty metrics (Stage.Collector).
	// Default: nil, none.
	Registerer prometheus.Registerer
	// Logger gets the stage's log lines. Default: Client.Logger, else
	// slog.Default().
	Logger *slog.Logger
}

// StreamFit configures the fit of a router on a reservoir sample of the
// input stream (see RunConfig.Fit).
type StreamFit struct {
	// K is the number of domains. Default: 8.
	K int
	// Unbalanced turns off the exact balance at fit (FitConfig.Unbalanced).
	// Default: false, balanced.
	Unbalanced bool
	// Restarts of k-means++. Default: 3.
	Restarts int
	// Seed of the sample and of k-means. Default: 0 (the CLI's is 1).
	Seed uint64
	// Sample is the reservoir size in documents; at least K. Default: 10000.
	Sample int
	// Window: fit once this many documents were offered to the reservoir,
	// even if more keep coming. Default: 100000.
	Window int64
	// Wait is how long the input must stay quiet (with at least K documents
	// sampled) before the fit. Default: 3s.
	Wait time.Duration
}

// Featurizer is what the routing stage needs of the featurizer lineage. The
// featurizer lives in stages/embed, which this package does not import; a
// program passes an adapter (cmd/pipeline does).
type Featurizer interface {
	// Publish puts featurizer state v of router dir on router.models,
	// where embedding stages pick it up. The stage calls it when its router
	// comes from RunConfig.RouterDir, at the start and before it swaps in a
	// newer version found there; an error only warns.
	Publish(ctx context.Context, dir string, v int64) error
	// OnTopic returns featurizer state v as published on router.models
	// (nil and no error when there is no valid one), to name the domains of
	// a router fitted on the stream.
	OnTopic(ctx context.Context, v int64) (FeaturizerState, error)
	// Verify checks that router dir holds featurizer state v and that it
	// loads: a router dir holds its router's featurizer, and a stage that
	// starts from a dir without it fails.
	Verify(dir string, v int64) error
}

// FeaturizerState is one featurizer state, as a router fitted on the stream
// uses it.
type FeaturizerState interface {
	// Kind names the featurizer (RouterModel.Featurizer).
	Kind() string
	// TopTerms names each centroid of m by its n heaviest terms (nil when
	// the featurizer cannot).
	TopTerms(m *Model, n int) [][]string
	// Save stores the state into router dir under its version, unless dir
	// holds that version already.
	Save(dir string) error
}

// FeaturizerCoverage is a FeaturizerState whose featurizer may have a
// vocabulary: Coverage returns the out-of-vocabulary share of a text (nil
// when it has none). The routing stage judges novelty by it too
// (NoveltyRule.OOVQuantile).
type FeaturizerCoverage interface {
	Coverage() func(text string) float64
}

// coverages holds the out-of-vocabulary functions of featurizer versions,
// loaded outside the stage's lock (at the start and before a swap).
type coverages struct {
	s  *service
	mu sync.Mutex
	m  map[int64]func(string) float64
}

// load finds featurizer version v's out-of-vocabulary function (once).
func (c *coverages) load(ctx context.Context, v int64) {
	c.mu.Lock()
	_, done := c.m[v]
	c.mu.Unlock()
	if done || c.s.cfg.Featurizer == nil {
		return
	}
	var f func(string) float64
	st, err := c.s.cfg.Featurizer.OnTopic(ctx, v)
	if err != nil || st == nil {
		c.s.log.Warn("featurizer not read from "+pipeline.TopicRouterModels+": novelty is judged on distances only", "featurizer_version", v, "err", err)
	} else if fc, ok := st.(FeaturizerCoverage); ok {
		f = fc.Coverage()
	}
	c.mu.Lock()
	c.m[v] = f
	c.mu.Unlock()
}

// get returns featurizer version v's out-of-vocabulary function, nil when
// none was loaded.
func (c *coverages) get(v int64) func(string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[v]
}

// numExamples is how many example document ids a router fitted on the
// stream keeps per domain (as 'cluster fit' does).
const numExamples = 3

func (c *RunConfig) setDefaults() {
	if c.InputTopic == "" {
		c.InputTopic = pipeline.TopicFeatures
	}
	if c.Group == "" {
		c.Group = "cluster"
	}
	if c.Watch <= 0 {
		c.Watch = 5 * time.Second
	}
	if c.StateInterval <= 0 {
		c.StateInterval = 10 * time.Second
	}
	if c.ShrinkEvery <= 0 {
		c.ShrinkEvery = 5 * time.Second
	}
	f := &c.Fit
	if f.K <= 0 {
		f.K = 8
	}
	if f.Restarts <= 0 {
		f.Restarts = 3
	}
	if f.Sample <= 0 {
		f.Sample = 10000
	}
	if f.Window <= 0 {
		f.Window = 100000
	}
	if f.Wait <= 0 {
		f.Wait = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = c.Client.Logger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *RunConfig) validate() error {
	switch {
	case c.Fit.Sample < c.Fit.K:
		return fmt.Errorf("cluster: the fit sample %d is smaller than k %d", c.Fit.Sample, c.Fit.K)
	case c.InputTopic == pipeline.TopicDeadLetter:
		return fmt.Errorf("cluster: the input %s is the dead-letter topic", c.InputTopic)
	}
	if c.Grow != nil {
		if err := c.Grow.Validate(); err != nil {
			return err
		}
	}
	if c.Shrink != nil {
		if err := c.Shrink.Validate(); err != nil {
			return err
		}
	}
	return c.Novelty.Validate()
}

// RunStage runs the routing stage on Kafka until ctx ends, then returns the
// runner's counts.
//
// The router comes from, in this order: the latest version in RouterDir;
// the latest router on router.models (a restart, or another process of the
// group); or a fit on a reservoir sample of the input (Fit), saved into
// RouterDir when set. The router in use is published on router.models, and
// a newer version saved into RouterDir or published on router.models is
// swapped in while the stage runs, keeping the routed counts of the domain
// ids it keeps. Routing state is kept per input partition on the compacted
// topic RoutingStateTopic(Group) and saved with every commit, so a
// partition that moves to another process of the group keeps it: a
// redelivered row gets the domain it got the first time. The routed counts
// are saved on router.models every StateInterval and at the stop.
//
// Errors start with "cluster: ". A stop by ctx is not an error.
func RunStage(ctx context.Context, cfg RunConfig) (pipeline.StageRun, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return pipeline.StageRun{}, err
	}
	rt, err := NewRouterTopic(cfg.Client, cfg.Logger)
	if err != nil {
		return pipeline.StageRun{}, err
	}
	defer rt.Close()
	s := &service{cfg: cfg, cc: cfg.Client, log: cfg.Logger, topic: rt}
	return s.run(ctx)
}

// service is one run of the routing stage.
type service struct {
	cfg   RunConfig
	cc    pipeline.ClientConfig
	log   *slog.Logger
	topic *RouterTopic
	// originCheck checks a row's origin against the broker (the routing
	// stage's and the mover's).
	originCheck func(ctx context.Context, o schemas.Origin) error
}

func (s *service) run(ctx context.Context) (pipeline.StageRun, error) {
	var none pipeline.StageRun
	cc, log, in, group := s.cc, s.log, s.cfg.InputTopic, s.cfg.Group
	n, err := pipeline.WaitPartitions(ctx, cc, in, log)
	if err != nil {
		return none, fmt.Errorf("cluster: input topic %s: %w", in, err)
	}
	rm, fromDir, err := s.router(ctx)
	if err != nil {
		return none, fmt.Errorf("cluster: %w", err)
	}
	stage, err := NewStage(rm)
	if err != nil {
		return none, fmt.Errorf("cluster: %w", err)
	}
	latest, err := s.topic.Latest(ctx)
	if err != nil {
		return none, fmt.Errorf("cluster: read %s: %w", pipeline.TopicRouterModels, err)
	}
	// The routing state of each input partition (router counts, duplicate
	// filter, router version) is saved with every commit on a state topic
	// of the group and moves with the partition to whichever process of the
	// group routes it next.
	stateTopic := RoutingStateTopic(group)
	err = pipeline.Retry(ctx, log, "create "+stateTopic, func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, pipeline.StateTopicSpec(stateTopic, n))
	})
	if err != nil {
		return none, fmt.Errorf("cluster: %w", err)
	}
	store, err := pipeline.NewKafkaStateStore(cc, stateTopic)
	if err != nil {
		return none, fmt.Errorf("cluster: %w", err)
	}
	defer store.Close()
	origins, err := pipeline.NewOriginChecker(cc)
	if err != nil {
		return none, fmt.Errorf("cluster: %w", err)
	}
	defer origins.Close()
	stage.OriginCheck = func(ctx context.Context, o schemas.Origin) error {
		err := origins.Check(ctx, o.Topic, o.Partition, o.Offset)
		if err != nil && !errors.Is(err, pipeline.ErrImpossibleOrigin) {
			return fmt.Errorf("%w: %v", pipeline.ErrRetry, err) // the broker is away: retry the batch
		}
		return err
	}
	s.originCheck = stage.OriginCheck
	stage.Lookup = s.lookup
	stage.Logger = log
	if err := stage.SetNoveltyRule(s.cfg.Novelty); err != nil {
		return none, err
	}
	if err := stage.SetGrowth(s.cfg.Grow); err != nil {
		return none, err
	}
	if err := stage.SetShrink(s.cfg.Shrink); err != nil {
		return none, err
	}
	var restored int
	err = pipeline.Retry(ctx, log, "restore the routing state", func(ctx context.Context) error {
		var err error
		restored, err = stage.RestorePartitions(ctx, store, in, n)
		return err
	})
	if err != nil {
		return none, fmt.Errorf("cluster: restore the routing state: %w", err)
	}
	switch {
	case restored > 0:
		log.Info("routing state restored from "+stateTopic, "partitions", restored, "counts", stage.Counts())
	case s.cfg.Rebuild:
		if err := s.rebuild(ctx, n, stage, store); err != nil {
			return none, fmt.Errorf("cluster: rebuild the routed counts: %w", err)
		}
		stage.resetNovelty() // the rebuilt rows were judged when first routed
	default:
		if m, ok := latest[RoutingStateKey(group)]; ok {
			// A group that ran before routing state was kept per
			// partition: its saved counts seed the balance.
			counts, err := DecodeRoutingState(m.Value)
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
		return none, fmt.Errorf("cluster: %w", err)
	}
	// The counts as of this start (rebuilt, restored or none): whoever waits
	// for this stage's counts sees it is up.
	if err := s.topic.PublishCounts(ctx, group, stage.Model().Version, stage.Counts()); err != nil {
		return none, fmt.Errorf("cluster: save the routed counts: %w", err)
	}
	if fromDir {
		// Embedding stages that share this pipeline's featurizer lineage
		// pick it up here; a state too large for the topic only warns.
		s.publishFeaturizer(ctx, rm.FeaturizerVersion)
	}
	cov := &coverages{s: s, m: map[int64]func(string) float64{}}
	if rm.OOV != nil {
		cov.load(ctx, rm.FeaturizerVersion)
	}
	stage.Coverage = cov.get
	if m, ok := latest[RouterKey]; !ok || routerVersionOf(m) < rm.Version {
		if err := s.topic.PublishRouter(ctx, rm); err != nil {
			return none, fmt.Errorf("cluster: %w", err)
		}
	}
	log.Info("router loaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)

	w := &routerWatch{s: s, stage: stage, partitions: n, cov: cov}
	var runMover func(context.Context) (pipeline.StageRun, error)
	if s.cfg.Grow != nil || rm.hasGrown() {
		if runMover, w.mover, err = s.startMover(ctx, stage, w); err != nil {
			return none, fmt.Errorf("cluster: %w", err)
		}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWatch()
		wg.Wait()
		// The final counts, after the runner drained its last batch.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.topic.PublishCounts(sctx, group, stage.Model().Version, stage.Counts()); err != nil {
			log.Warn("routed counts not saved", "err", err)
		}
	}()
	wg.Add(3) // each ends with wctx
	go func() { defer wg.Done(); w.watchDir(wctx) }()
	go func() { defer wg.Done(); s.topic.WatchRouters(wctx, w.onTopic) }()
	go func() { defer wg.Done(); s.stateLoop(wctx, stage) }()
	if s.cfg.Shrink != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.shrinkLoop(wctx, stage, w) }()
	}
	rctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var moverErr error
	if runMover != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mrun, err := runMover(rctx)
			if err != nil && rctx.Err() == nil {
				moverErr = fmt.Errorf("cluster: mover: %w", err)
				stopRun() // a mover that cannot go on stops the process
			}
			log.Info("mover stopped", "stats", w.mover.Stats(), "in", mrun.In, "out", mrun.Out)
		}()
	}
	run, err := pipeline.RunStage(rctx, pipeline.StageProcessConfig{
		Name:            "cluster",
		Client:          cc,
		InputTopic:      in,
		Group:           group,
		Stage:           stage,
		Accept:          []schemas.Kind{schemas.KindFeatures},
		OneToOne:        true,
		BatchMaxRecords: s.cfg.BatchMaxRecords,
		BatchMaxBytes:   s.cfg.BatchMaxBytes,
		Linger:          s.cfg.Linger,
		States:          store,
		Metrics:         s.cfg.Metrics,
		Logger:          log,
	})
	stopRun()
	stopWatch()
	wg.Wait()
	if err == nil && moverErr != nil {
		err = moverErr
	}
	return run, err
}

// publishFeaturizer publishes featurizer state v of the router dir, if a
// Featurizer is configured; a failure warns.
func (s *service) publishFeaturizer(ctx context.Context, v int64) {
	if s.cfg.Featurizer == nil {
		return
	}
	if err := s.cfg.Featurizer.Publish(ctx, s.cfg.RouterDir, v); err != nil {
		s.log.Warn("featurizer not published on "+pipeline.TopicRouterModels, "version", v, "err", err)
	}
}

// router finds the router to start with: RouterDir's latest version,
// router.models' latest, or a fit on a sample of the input. fromDir says it
// came from RouterDir (whose featurizer state is then published too).
func (s *service) router(ctx context.Context) (rm *RouterModel, fromDir bool, err error) {
	if dir := s.cfg.RouterDir; dir != "" {
		if v, err := LatestRouterVersion(dir); err == nil && v > 0 {
			rm, err := LoadRouter(dir, 0)
			if err == nil && s.cfg.Featurizer != nil {
				// A router dir holds the router's featurizer state too.
				if ferr := s.cfg.Featurizer.Verify(dir, rm.FeaturizerVersion); ferr != nil {
					err = fmt.Errorf("featurizer state v%d of router v%d: %w", rm.FeaturizerVersion, rm.Version, ferr)
				}
			}
			if err != nil {
				return nil, false, fmt.Errorf("router %s: %w", dir, err)
			}
			return rm, true, nil
		}
	}
	rm, err = s.topic.LatestRouter(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
	}
	if rm != nil {
		s.log.Info("router taken from "+pipeline.TopicRouterModels, "version", rm.Version)
		return rm, false, nil
	}
	rm, err = s.fitOnStream(ctx)
	return rm, false, err
}

// lookup finds a router version in RouterDir (when set) or among the
// routers published on router.models, for partitions whose saved state
// names a version this process has not loaded (Stage.Lookup).
func (s *service) lookup(ctx context.Context, v int64) (*RouterModel, error) {
	dir := s.cfg.RouterDir
	if dir != "" {
		if rm, err := LoadRouter(dir, v); err == nil {
			return rm, nil
		}
	}
	if rm, err := s.topic.Router(ctx, v); err == nil {
		return rm, nil
	} else if !errors.Is(err, errNoSuchRouter) {
		return nil, err
	}
	where := pipeline.TopicRouterModels
	if dir != "" {
		where = dir + " nor on " + where
	}
	return nil, fmt.Errorf("router version %d is not in %s", v, where)
}

// rebuild re-routes the input up to the group's committed offsets through
// stage, partition by partition, discarding the output, so that its routing
// state (counts and duplicate filter) is what it was when those offsets
// were committed, and saves that state as each partition's snapshot. It
// serves groups that committed before routing state was saved per
// partition.
func (s *service) rebuild(ctx context.Context, n int, stage *Stage, store pipeline.StateStore) error {
	topic := s.cfg.InputTopic
	committed, err := pipeline.CommittedOffsets(ctx, s.cc, s.cfg.Group, topic, n)
	if err != nil {
		return err
	}
	in, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: s.cc, Topic: topic, MaxWait: 100 * time.Millisecond, Logger: s.log})
	if err != nil {
		return err
	}
	defer in.Close()
	rows := 0
	for p, end := range committed {
		if end <= 0 {
			continue
		}
		part := pipeline.Partition{Topic: topic, Partition: p}
		if err := stage.Restore(ctx, part, nil, -1, end); err != nil {
			return err
		}
		in.Assign(p, pipeline.FirstOffset)
		for {
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			m, err := in.Next(fctx, p)
			cancel()
			if err != nil {
				return fmt.Errorf("re-read %s/%d: %w", topic, p, err)
			}
			if m.Offset >= end {
				break
			}
			d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
			if err == nil {
				pos := pipeline.Position{Partition: part, First: m.Offset, Last: m.Offset}
				for _, rec := range d.Records {
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
		in.Revoke(p)
		state, err := stage.Snapshot(part, end)
		if err == nil {
			err = store.Save(ctx, part, end, state)
		}
		if err != nil {
			return fmt.Errorf("save the rebuilt state of %s: %w", part, err)
		}
	}
	s.log.Info("routed counts rebuilt", "rows", rows, "committed", committed, "counts", stage.Counts())
	return nil
}

// fitOnStream fits a router on a reservoir sample of the input topic: it
// reads from the first offset until the reservoir is full and the input has
// been quiet for Fit.Wait (or until the input stays quiet with at least k
// rows, or until Fit.Window rows were offered), then fits, names domains by
// the featurizer on router.models when there is one, and saves into
// RouterDir when set. Broker outages are ridden out: reads are retried with
// backoff, and the input counts as quiet only once every partition was read
// to its end.
func (s *service) fitOnStream(ctx context.Context) (*RouterModel, error) {
	f, log, topic := s.cfg.Fit, s.log, s.cfg.InputTopic
	res := NewReservoir(f.Sample, f.Seed)
	var n int
	err := pipeline.Retry(ctx, log, "read the partitions of "+topic, func(ctx context.Context) (err error) {
		n, err = pipeline.PartitionCount(ctx, s.cc, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	log.Info("no router yet: sampling the input to fit one", "topic", topic, "k", f.K, "sample", f.Sample)
	in, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: s.cc, Topic: topic, MaxWait: 100 * time.Millisecond, Logger: log})
	if err != nil {
		return nil, err
	}
	defer in.Close()
	for p := range n {
		in.Assign(p, pipeline.FirstOffset)
	}
	lastNew := time.Now()
	backoff := pipeline.RetryBackoffMin
	for p := 0; ; p = (p + 1) % n {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := in.Next(rctx, p)
		cancel()
		if err == nil {
			lastNew = time.Now()
			backoff = pipeline.RetryBackoffMin
			if d, derr := pipeline.DecodeMessage(m, schemas.Limits{}, nil); derr == nil {
				for _, rec := range d.Records {
					_, _ = res.Add(rec) // bad records are the stage's to dead-letter
					rec.Release()
				}
			}
			if res.Seen() >= f.Window && res.Len() >= f.K {
				break
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			if !pipeline.Retryable(err) {
				return nil, fmt.Errorf("sample %s/%d: %w", topic, p, err)
			}
			// The broker is away: the partition's reader starts again.
			log.Warn("sample "+topic+" failed; retrying", "partition", p, "err", err, "backoff", backoff)
			if !pipeline.Sleep(ctx, backoff) {
				return nil, ctx.Err()
			}
			backoff = min(2*backoff, pipeline.RetryBackoffMax)
			continue
		}
		if time.Since(lastNew) >= f.Wait && res.Len() >= f.K {
			// Quiet, unless the broker was away: then some partition still
			// has messages this sample has not read.
			read, err := readToEnd(ctx, in, n, log)
			if err != nil {
				return nil, err
			}
			if read {
				break
			}
			lastNew = time.Now()
		}
		if time.Since(lastNew) >= 10*f.Wait && p == n-1 {
			log.Info("waiting for documents to fit on", "have", res.Len(), "need", f.K)
			lastNew = time.Now().Add(-f.Wait)
		}
	}
	rows, ids := res.Rows()
	fc := FitConfig{K: f.K, Unbalanced: f.Unbalanced, Restarts: f.Restarts, Seed: f.Seed}
	start := time.Now()
	m, labels, err := Fit(ctx, rows, fc)
	if err != nil {
		return nil, fmt.Errorf("fit on the sample: %w", err)
	}
	ids0, nextID := MatchIDs(nil, m)
	rm := &RouterModel{FeaturizerVersion: res.Version(), IDs: ids0, Model: m, Fit: fc, NextID: nextID,
		Examples: Examples(m, rows, ids, labels, numExamples), Distances: FitDistances(m, rows), Origins: FitOrigins(nil, ids0),
		Created: time.Now().UTC()}
	// Name the domains with the featurizer on router.models, if it is the
	// one the sample was featurized with (a damaged one is ignored).
	var state FeaturizerState
	if s.cfg.Featurizer != nil {
		state, err = s.cfg.Featurizer.OnTopic(ctx, res.Version())
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			log.Warn("featurizer on "+pipeline.TopicRouterModels+" not read; the domains get no top terms", "err", err)
		}
		if state == nil && err == nil {
			log.Warn("no valid featurizer of the sample's version on "+pipeline.TopicRouterModels+"; the domains get no top terms", "featurizer_version", res.Version())
		}
	}
	if state != nil {
		rm.Featurizer = state.Kind()
		rm.TopTerms = state.TopTerms(m, 10)
	}
	if dir := s.cfg.RouterDir; dir != "" {
		if state != nil {
			if err := state.Save(dir); err != nil {
				return nil, fmt.Errorf("save the featurizer into %s: %w", dir, err)
			}
		}
		if _, err := SaveRouter(dir, rm); err != nil {
			return nil, err
		}
	} else {
		rm.Version = 1
	}
	log.Info("router fitted on the stream", "version", rm.Version, "k", f.K, "sample", rows.N, "seen", res.Seen(),
		"featurizer_version", rm.FeaturizerVersion, "sizes", m.Sizes, "seconds", time.Since(start).Seconds())
	return rm, nil
}

// readToEnd reports whether in has handed out every message of the topic's
// n partitions up to their end offsets, asking the broker (retried through
// outages).
func readToEnd(ctx context.Context, in *pipeline.PartitionConsumer, n int, log *slog.Logger) (bool, error) {
	var first, end []int64
	err := pipeline.Retry(ctx, log, "read the end offsets of "+in.Topic(), func(ctx context.Context) (err error) {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		first, end, err = in.Offsets(lctx, n)
		return err
	})
	if err != nil {
		return false, err
	}
	for p := range n {
		next, _ := in.Position(p)
		if next < first[p] { // FirstOffset: nothing handed out yet
			next = first[p]
		}
		if next < end[p] {
			return false, nil
		}
	}
	return true, nil
}

// routerWatch swaps newer routers into a running stage, from RouterDir and
// from router.models.
type routerWatch struct {
	s          *service
	stage      *Stage
	partitions int
	mover      *Mover // nil: growth off and no grown domains
	cov        *coverages
	mu         sync.Mutex // one swap at a time
}

// swap installs rm if it is newer than the stage's router; fromDir says
// whether it (and its featurizer) should be published.
func (w *routerWatch) swap(ctx context.Context, rm *RouterModel, fromDir bool) error {
	if w.mover != nil {
		if err := w.mover.Swap(rm); err != nil {
			return err
		}
	}
	return w.swapStage(ctx, rm, fromDir)
}

// swapStage swaps rm into the routing stage (not into the mover: the
// mover's own growths come this way).
func (w *routerWatch) swapStage(ctx context.Context, rm *RouterModel, fromDir bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rm.Version <= w.stage.Model().Version {
		return nil
	}
	if err := ensureDomainTopics(ctx, w.s.cc, rm, w.partitions); err != nil {
		return err
	}
	if fromDir {
		// The featurizer first: embedding stages switch to it and their
		// rows of the new version reach a stage that already routes them.
		w.s.publishFeaturizer(ctx, rm.FeaturizerVersion)
	}
	if rm.OOV != nil && w.cov != nil {
		w.cov.load(ctx, rm.FeaturizerVersion)
	}
	if err := w.stage.Swap(rm); err != nil {
		return err
	}
	log := w.s.log
	log.Info("router reloaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)
	if fromDir {
		if err := w.s.topic.PublishRouter(ctx, rm); err != nil {
			log.Warn("router not published", "version", rm.Version, "err", err)
		}
	}
	return nil
}

// watchDir polls RouterDir every Watch for a newer router version. A
// version that fails is retried at the next poll.
func (w *routerWatch) watchDir(ctx context.Context) {
	dir := w.s.cfg.RouterDir
	if dir == "" {
		return
	}
	t := time.NewTicker(w.s.cfg.Watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := LatestRouterVersion(dir)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				w.s.log.Warn("router not loaded", "err", err)
			}
			continue
		}
		if v <= w.stage.Model().Version {
			continue
		}
		rm, err := LoadRouter(dir, v)
		if err == nil {
			err = w.swap(ctx, rm, true)
		}
		if err != nil && ctx.Err() == nil {
			w.s.log.Warn("router not loaded", "version", v, "err", err)
		}
	}
}

// onTopic swaps in a newer router published on router.models by another
// process (e.g. 'domains split --brokers'); WatchRouters passes over
// damaged ones with a warning.
func (w *routerWatch) onTopic(ctx context.Context, rm *RouterModel) {
	if err := w.swap(ctx, rm, false); err != nil && ctx.Err() == nil {
		w.s.log.Warn("router from "+pipeline.TopicRouterModels+" not loaded", "version", rm.Version, "err", err)
	}
}

// stateLoop saves the routed counts every StateInterval, appends them to
// the history file while they change, and keeps the routing gauges
// current, until ctx ends (the final counts are saved by run).
func (s *service) stateLoop(ctx context.Context, stage *Stage) {
	log := s.log
	var hist *os.File
	if s.cfg.HistoryPath != "" {
		var err error
		if hist, err = os.OpenFile(s.cfg.HistoryPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			log.Warn("routing history not written", "err", err)
		} else {
			defer hist.Close()
		}
	}
	var lastTotal int64 = -1
	var routed *prometheus.GaugeVec
	var imbalance, version prometheus.Gauge
	if reg := s.cfg.Registerer; reg != nil {
		routed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_domain_routed_documents",
			Help: "Documents routed to each domain since the stage's counts began (restored across restarts)."}, []string{"domain"})
		imbalance = prometheus.NewGauge(prometheus.GaugeOpts{Name: "domainflow_domain_imbalance",
			Help: "Largest over smallest routed domain size (1 = perfectly balanced)."})
		version = prometheus.NewGauge(prometheus.GaugeOpts{Name: "domainflow_router_version", Help: "Version of the router in use."})
		for _, c := range []prometheus.Collector{routed, imbalance, version, stage.Collector()} {
			if err := reg.Register(c); err != nil {
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
				parked, _ := stage.Parked()
				line := EncodeRoutingHistory(stage.Model().Version, withParked(counts, stage), stage.Novelty(), parked)
				if _, err := hist.Write(append(line, '\n')); err != nil {
					log.Warn("routing history not written", "err", err)
				}
			}
		}
		if stopping {
			return // the final counts go to router.models from run
		}
		if routed != nil {
			routed.Reset()
			sizes := make([]int, 0, len(counts))
			for id, c := range counts {
				routed.WithLabelValues(strconv.Itoa(id)).Set(float64(c))
				sizes = append(sizes, int(c))
			}
			mm, _ := Balance(sizes)
			imbalance.Set(mm)
			version.Set(float64(stage.Model().Version))
		}
		if time.Since(lastSave) >= s.cfg.StateInterval {
			lastSave = time.Now()
			if err := s.topic.PublishCounts(ctx, s.cfg.Group, stage.Model().Version, counts); err != nil && ctx.Err() == nil {
				log.Warn("routed counts not saved", "err", err)
			}
		}
	}
}

// ensureDomainTopics creates the topic of every domain of rm that has none,
// with n partitions (the input's, so partition order carries over),
// retrying through broker outages (warnings go to cc.Logger).
func ensureDomainTopics(ctx context.Context, cc pipeline.ClientConfig, rm *RouterModel, n int) error {
	specs := make([]pipeline.TopicSpec, len(rm.IDs))
	for j, id := range rm.IDs {
		specs[j] = pipeline.TopicSpec{Name: pipeline.DomainTopic(id), Partitions: n}
	}
	return pipeline.Retry(ctx, cc.Logger, "create the domain topics", func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cc, specs...)
	})
}
