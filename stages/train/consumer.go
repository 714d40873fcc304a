package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// ConsumerConfig configures the training consumers: RunExpert, RunDomains
// and Run. Its zero value trains small experts from seed 0 with the
// defaults below; Client and Out are required.
type ConsumerConfig struct {
	// Client reaches the broker the input topics, the dead-letter topic and
	// the origin topics of routed rows are on. Required.
	Client pipeline.ClientConfig
	// Out is the output dir: expert name checkpoints into
	// Out/experts/<name> (ExpertDir). Required.
	Out string

	// Model is the size of new experts. Default: ConfigByName("small").
	// With Init, the seed's size wins but for Batch and Name.
	Model Config
	// Opt is the optimizer of new experts. Default: DefaultOptConfig()
	// with TotalSteps 0. A TotalSteps of 0 with Tokens set becomes
	// Tokens/(Model.Batch·Model.Ctx): the decay ends with the budget.
	Opt OptConfig
	// Seed is the initialization seed of new experts without Init; 0 is a
	// seed like any other (the CLI's default is 1).
	Seed uint64
	// Init, when set, is the seed checkpoint new experts branch from (see
	// LoadSeed), as Branch-Train-Merge does. Default: none.
	Init *Checkpoint
	// InitFor, when set, chooses the checkpoint a new expert (one without a
	// checkpoint of its own) branches from, and says how in a few words
	// (recorded as CheckpointMeta.InitFrom and in the report); a nil
	// checkpoint falls back to Init. An expert that branches from what
	// InitFor gives takes neither Continue nor SkipSeen, which are about
	// the seed's input positions. flow.NewExpertInit gives the nearest
	// existing expert or a router-weighted average of the nearest ones.
	// Default: nil, every new expert branches from Init.
	InitFor func(ctx context.Context, expert string) (init *Checkpoint, how string, err error)
	// Continue (with Init) makes a new expert go on reading its topic
	// where the seed stopped; see TrainerConfig.Continue.
	Continue bool
	// SkipSeen (with Init) makes a new expert skip the documents the seed
	// already trained on; see TrainerConfig.SkipSeen.
	SkipSeen bool

	// Tokens is each expert's token budget: it checkpoints and stops at
	// this many training bytes. Default 0: no limit.
	Tokens int64
	// CheckpointSteps: an expert checkpoints at every multiple of this many
	// steps, even inside one large message. Default 200.
	CheckpointSteps int
	// CheckpointEvery: an expert with unsaved progress checkpoints at
	// least this often. Default one minute.
	CheckpointEvery time.Duration
	// Keep is the number of checkpoints kept per expert. Default 3.
	Keep int
	// ExitOnIdle: an expert checkpoints and stops once no new input came
	// for this long (and Run stops once every expert stopped and no new
	// domain appeared). Default 0: run until ctx ends.
	ExitOnIdle time.Duration

	// Limits bound the JSON documents read. Default: the schemas defaults.
	Limits schemas.Limits
	// DeadLetterTopic is where undecodable input messages, and routed rows
	// whose origin cannot exist, go. Default pipeline.TopicDeadLetter.
	DeadLetterTopic string
	// Backend names the accel backend each expert opens; it must be
	// registered (import its package). Default "cpu" (accel/cpu).
	Backend string
	// Threads is the thread count per expert. Default 0: all CPUs.
	// Bit-identical resumes need the same backend and thread count.
	Threads int

	// MonitorGroup, when set, names the consumer groups the experts commit
	// their input positions to, for monitoring only: expert name commits to
	// group MonitorGroup + "." + name (MonitorGroupOf) the positions of
	// every checkpoint it saves (and of the checkpoint it resumes from), so
	// Kafka's tools show each expert's progress and lag
	// (kafka-consumer-groups --describe --group train.3). The commits join
	// no group and nothing reads them back: a resume starts from the
	// checkpoint whatever the group holds. A commit that fails is retried
	// in the background and never stops training. Default: "" (none).
	MonitorGroup string

	// DomainScanEvery is how often Run asks its DomainSource for new
	// domains. Default 2s.
	DomainScanEvery time.Duration
	// Registerer, when set, gets the Prometheus series
	// domainflow_expert_loss, _step, _tokens and _deadletters (label
	// "expert"). Default: no metrics.
	Registerer prometheus.Registerer
	// Logger gets the consumers' log lines, each with "expert". Default:
	// none.
	Logger *slog.Logger
	// Stopped, when set, is called with each expert's report as it stops
	// (not when it fails), from the expert's goroutine: RunDomains and Run
	// call it concurrently, before they return. Default: nil.
	Stopped func(ExpertReport)
}

// withDefaults returns cfg with its defaults filled in, or an error for a
// configuration that cannot run.
func (cfg ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	if len(cfg.Client.Brokers) == 0 {
		return cfg, errors.New("train: consumer: no brokers")
	}
	if cfg.Out == "" {
		return cfg, errors.New("train: consumer: no output dir")
	}
	if cfg.Tokens < 0 || cfg.CheckpointSteps < 0 || cfg.CheckpointEvery < 0 || cfg.Keep < 0 || cfg.ExitOnIdle < 0 || cfg.Threads < 0 || cfg.DomainScanEvery < 0 {
		return cfg, errors.New("train: consumer: negative token budget, checkpoint interval, keep, idle time, thread count or scan interval")
	}
	if (cfg.Continue || cfg.SkipSeen) && cfg.Init == nil {
		return cfg, errors.New("train: consumer: Continue and SkipSeen need Init")
	}
	if cfg.Model == (Config{}) {
		cfg.Model, _ = ConfigByName("small")
	}
	if err := cfg.Model.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Opt == (OptConfig{}) {
		cfg.Opt = DefaultOptConfig()
		cfg.Opt.TotalSteps = 0
	}
	if cfg.Opt.TotalSteps == 0 && cfg.Tokens > 0 {
		cfg.Opt.TotalSteps = int(cfg.Tokens / int64(cfg.Model.Batch*cfg.Model.Ctx))
	}
	if cfg.CheckpointSteps == 0 {
		cfg.CheckpointSteps = 200
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = time.Minute
	}
	if cfg.Keep == 0 {
		cfg.Keep = 3
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = pipeline.TopicDeadLetter
	}
	if cfg.Backend == "" {
		cfg.Backend = "cpu"
	}
	if cfg.DomainScanEvery == 0 {
		cfg.DomainScanEvery = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// DomainSource names the domains Run trains an expert for: one per id, on
// topic pipeline.DomainTopic(id), named by the id in decimal.
type DomainSource interface {
	// Domains returns the ids of the domains known now. Run calls it from
	// one goroutine, every ConsumerConfig.DomainScanEvery; an id it
	// returned once stays trained even if a later call leaves it out, and
	// an error is logged and the call tried again at the next scan.
	Domains(ctx context.Context) ([]int, error)
}

// DomainSourceFunc adapts a function to DomainSource.
type DomainSourceFunc func(ctx context.Context) ([]int, error)

// Domains calls f.
func (f DomainSourceFunc) Domains(ctx context.Context) ([]int, error) { return f(ctx) }

// consumer is what the experts of one Run share.
type consumer struct {
	cfg     ConsumerConfig // with its defaults
	log     *slog.Logger
	metrics *metrics
	dead    *pipeline.KafkaSink
	origins *pipeline.OriginChecker
}

func newConsumer(cfg ConsumerConfig) (*consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &consumer{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registerer, cfg.Logger)}
	if c.dead, err = pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cfg.Client}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if c.origins, err = pipeline.NewOriginChecker(cfg.Client); err != nil {
		c.dead.Close()
		return nil, fmt.Errorf("train: %w", err)
	}
	return c, nil
}

func (c *consumer) close() {
	c.origins.Close()
	c.dead.Close()
}

// RunExpert trains expert name on topic until it is idle for
// cfg.ExitOnIdle, reaches the token budget or ctx ends, checkpointing into
// ExpertDir(cfg.Out, name) as it goes, and reports its final state. It
// resumes from the expert's newest valid checkpoint when there is one.
//
// Every document is applied exactly once: a checkpoint carries the next
// input offset of each partition, the read cursor, the last origin position
// applied per origin partition and the packer's pending bytes, and the
// partitions are read in a deterministic round robin (pipeline.RoundRobin),
// so an expert killed at any point and run again ends bit-identical to an
// uninterrupted one on the same input (same backend and thread count).
//
// A message that does not decode, and a routed row whose origin cannot
// exist (pipeline.ReasonImpossibleOrigin), go to cfg.DeadLetterTopic; broker
// outages are ridden out. The end of ctx is a stop, not an error: the
// expert checkpoints and reports.
func RunExpert(ctx context.Context, cfg ConsumerConfig, name, topic string) (ExpertReport, error) {
	c, err := newConsumer(cfg)
	if err != nil {
		return ExpertReport{}, err
	}
	defer c.close()
	rep, err := c.runExpert(ctx, name, topic)
	if err != nil {
		return ExpertReport{}, fmt.Errorf("expert %s: %w", name, err)
	}
	return rep, nil
}

// RunDomains trains the experts of domains side by side (RunExpert, topic
// pipeline.DomainTopic(d), name d in decimal) until each one stops, and
// returns their reports ordered by ExpertLess. One expert that fails stops
// the others (they checkpoint and stop as at the end of ctx), and the
// failures are returned joined.
func RunDomains(ctx context.Context, cfg ConsumerConfig, domains []int) ([]ExpertReport, error) {
	c, err := newConsumer(cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	g := c.newGroup(ctx)
	defer g.stop()
	for _, d := range domains {
		g.start(strconv.Itoa(d), pipeline.DomainTopic(d))
	}
	return g.wait()
}

// Run trains one expert per domain that src names (as RunDomains), starting
// the experts of domains that appear later, e.g. by a split, as src names
// them. It returns when ctx ends, or, with cfg.ExitOnIdle, once every
// expert stopped and no new domain appeared for a scan; and as RunDomains
// when an expert fails.
func Run(ctx context.Context, cfg ConsumerConfig, src DomainSource) ([]ExpertReport, error) {
	c, err := newConsumer(cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	g := c.newGroup(ctx)
	defer g.stop()
	scan := func() { // a failure is retried at the next scan
		ids, err := src.Domains(g.ctx)
		if err != nil {
			if g.ctx.Err() == nil {
				c.log.Warn("domain topics not listed; retrying", "err", err)
			}
			return
		}
		for _, id := range ids {
			g.start(strconv.Itoa(id), pipeline.DomainTopic(id))
		}
	}
	scan()
	if n, _ := g.counts(); n == 0 {
		c.log.Info("no domain topics of a router yet; waiting for a router on " + pipeline.TopicRouterModels + " and its " + pipeline.DomainTopicPrefix + "<id> topics")
	}
	t := time.NewTicker(c.cfg.DomainScanEvery)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return g.wait()
		case <-t.C:
		}
		before, _ := g.counts()
		scan()
		n, finished := g.counts()
		// With ExitOnIdle, finish once every expert finished and no new
		// domain appeared for a scan.
		if c.cfg.ExitOnIdle > 0 && finished == n && n == before && n > 0 {
			return g.wait()
		}
	}
}

// group runs experts side by side; the first failure stops them all.
type group struct {
	c      *consumer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started map[string]bool
	reports []ExpertReport
	errs    []error
}

func (c *consumer) newGroup(ctx context.Context) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{c: c, ctx: ctx, cancel: cancel, started: map[string]bool{}}
}

// start starts expert name on topic unless it was started already.
func (g *group) start(name, topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started[name] {
		return
	}
	g.started[name] = true
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		rep, err := g.c.runExpert(g.ctx, name, topic)
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.errs = append(g.errs, fmt.Errorf("expert %s: %w", name, err))
			// One expert that cannot go on (a full disk, a dead letter
			// that cannot be written) stops the others, so that it is
			// seen and restarted from the checkpoints: the other experts
			// checkpoint and stop as at the end of ctx.
			g.c.log.Error("expert failed; stopping the other experts", "expert", name, "err", err)
			g.cancel()
			return
		}
		g.reports = append(g.reports, rep)
	}()
}

// counts returns how many experts were started and how many have ended.
func (g *group) counts() (started, finished int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.started), len(g.reports) + len(g.errs)
}

// wait waits for every expert and returns their reports in ExpertLess
// order, or their errors joined.
func (g *group) wait() ([]ExpertReport, error) {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		return nil, errors.Join(g.errs...)
	}
	sort.Slice(g.reports, func(i, j int) bool { return ExpertLess(g.reports[i].Expert, g.reports[j].Expert) })
	return g.reports, nil
}

// stop stops every expert and waits for them.
func (g *group) stop() {
	g.cancel()
	g.wg.Wait()
}

// runExpert is RunExpert on c.
func (c *consumer) runExpert(ctx context.Context, name, topic string) (ExpertReport, error) {
	cfg := c.cfg
	log := c.log.With("expert", name)
	dir := ExpertDir(cfg.Out, name)
	be, err := accel.Open(cfg.Backend, cfg.Threads)
	if err != nil {
		return ExpertReport{}, err
	}
	ck, skipped, err := LoadLatestCheckpoint(dir)
	for _, e := range skipped {
		log.Warn("damaged checkpoint skipped", "err", e)
	}
	if err != nil {
		return ExpertReport{}, err
	}
	var tr *Trainer
	if ck != nil {
		if tr, err = ResumeTrainer(ck, be, be.Threads()); err != nil {
			return ExpertReport{}, err
		}
		log.Info("resumed", "step", ck.Meta.Step, "tokens", ck.Meta.Tokens, "docs", ck.Meta.Docs)
	} else {
		// how stays "" for Init itself, so that checkpoints branched from
		// the seed are what they always were.
		init, how, cont, skip := cfg.Init, "", cfg.Continue, cfg.SkipSeen
		if cfg.InitFor != nil {
			ck, h, err := cfg.InitFor(ctx, name)
			if err != nil {
				return ExpertReport{}, fmt.Errorf("train: initialization of expert %s: %w", name, err)
			}
			if ck != nil && ck != cfg.Init {
				init, how, cont, skip = ck, h, false, false
			}
		}
		mc := cfg.Model
		if init != nil {
			mc = init.Model.Cfg
			mc.Batch = cfg.Model.Batch
			mc.Name = cfg.Model.Name
			if mc.Dim != cfg.Model.Dim || mc.Layers != cfg.Model.Layers || mc.Ctx != cfg.Model.Ctx {
				log.Info("the seed's size wins over --expert", "seed", init.Model.Cfg.Name)
			}
			if how != "" {
				log.Info("new expert branches", "from", how, "params_sha256", ParamsSHA256(init.Model))
			}
		}
		tr, err = NewTrainer(TrainerConfig{Expert: name, Model: mc, Opt: cfg.Opt, Seed: cfg.Seed, Init: init, InitFrom: how,
			Continue: cont, SkipSeen: skip, Backend: be, Threads: be.Threads()})
		if err != nil {
			return ExpertReport{}, err
		}
	}
	if ck != nil {
		c.metrics.observe(name, tr) // a resumed expert's gauges start at its checkpoint
	}
	n, err := pipeline.WaitPartitions(ctx, cfg.Client, topic, log)
	if err != nil {
		return ExpertReport{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	in, err := pipeline.NewRoundRobin(pipeline.ConsumerConfig{Client: cfg.Client, Topic: topic, Logger: log}, n)
	if err != nil {
		return ExpertReport{}, err
	}
	defer in.Close()
	for p := range n {
		if off, ok := tr.Meta.Offsets[partKey(topic, p)]; ok {
			in.Seek(p, off)
		}
	}
	cursor := tr.Meta.Cursor % n
	// The monitoring group gets the positions of every checkpoint.
	monitor := func() {}
	if cfg.MonitorGroup != "" {
		gc, err := pipeline.NewGroupCommitter(cfg.Client, MonitorGroupOf(cfg.MonitorGroup, name), log)
		if err != nil {
			return ExpertReport{}, err
		}
		defer gc.Close()
		monitor = func() {
			if next := checkpointPositions(tr.Meta.Offsets, topic, n); len(next) > 0 {
				gc.Offer(topic, next)
			}
		}
		if ck != nil {
			monitor() // the group shows where the resume starts, whatever it held
		}
	}
	lastSave, dirty := time.Now(), ck == nil
	save := func() error {
		if !dirty {
			return nil
		}
		path, err := SaveCheckpoint(dir, tr.Checkpoint(), cfg.Keep)
		if err != nil {
			return err
		}
		lastSave, dirty = time.Now(), false
		log.Debug("checkpoint", "path", path, "step", tr.Opt.Step)
		monitor()
		return nil
	}
	// trainPending runs the steps the packer holds the bytes for, and
	// checkpoints at every multiple of CheckpointSteps on the way, even
	// inside one large message: the input offset is already past the
	// message, and the rest of its bytes are in the packer, which the
	// checkpoint carries, so a restart from there goes on exactly where the
	// uninterrupted run does. done is false when ctx ended.
	trainPending := func() (done bool, err error) {
		for {
			chunk := cfg.CheckpointSteps - tr.Opt.Step%cfg.CheckpointSteps // steps to the next checkpoint
			ran, err := tr.Train(ctx, chunk, cfg.Tokens)
			if ran > 0 {
				dirty = true
				c.metrics.observe(name, tr)
			}
			if err != nil {
				if ctx.Err() != nil {
					return false, nil
				}
				return false, err
			}
			if (ran > 0 && tr.Opt.Step%cfg.CheckpointSteps == 0) || time.Since(lastSave) >= cfg.CheckpointEvery {
				if err := save(); err != nil {
					return false, err
				}
			}
			if ran < chunk {
				return true, nil
			}
		}
	}
	// A resumed trainer first trains what its checkpoint left in the
	// packer (the rest of a message it was checkpointed inside of).
	if _, err := trainPending(); err != nil {
		return ExpertReport{}, err
	}
	// The progress line's rate is over the time spent on input and
	// training since the last line (busy), not the time spent waiting for
	// input.
	lastInput, lastLog, tokensAtLog := time.Now(), time.Now(), tr.Meta.Tokens
	var busy time.Duration
	budget := func() bool { return cfg.Tokens > 0 && tr.Meta.Tokens >= cfg.Tokens }
	for !budget() && ctx.Err() == nil {
		m, p, ok, err := in.NextRetrying(ctx, cursor, log)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return ExpertReport{}, err
		}
		if !ok { // nothing to read right now
			if cfg.ExitOnIdle > 0 && time.Since(lastInput) >= cfg.ExitOnIdle {
				log.Info("idle: stopping", "idle", cfg.ExitOnIdle)
				break
			}
			if dirty && time.Since(lastSave) >= cfg.CheckpointEvery {
				if err := save(); err != nil {
					return ExpertReport{}, err
				}
			}
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		lastInput = time.Now()
		cursor = (p + 1) % n
		busyFrom := lastInput
		if err := c.apply(ctx, tr, m, log); err != nil {
			if ctx.Err() != nil {
				break // the message is read again on restart
			}
			return ExpertReport{}, err
		}
		tr.SetOffset(partKey(topic, p), m.Offset+1, cursor)
		dirty = true
		if ok, err := trainPending(); err != nil {
			return ExpertReport{}, err
		} else if !ok {
			break
		}
		busy += time.Since(busyFrom)
		if time.Since(lastLog) >= 10*time.Second {
			log.Info("training", "step", tr.Opt.Step, "tokens", tr.Meta.Tokens, "loss", tr.LastLoss(),
				"tokens_per_s", int(pipeline.PerSecond(tr.Meta.Tokens-tokensAtLog, busy)),
				"busy_s", math.Round(busy.Seconds()*10)/10, "of_s", math.Round(time.Since(lastLog).Seconds()*10)/10)
			lastLog, tokensAtLog, busy = time.Now(), tr.Meta.Tokens, 0
		}
	}
	stop := StopInterrupted
	switch {
	case budget():
		stop = StopBudget
		log.Info("token budget reached", "tokens", tr.Meta.Tokens)
	case ctx.Err() == nil:
		stop = StopIdle
	}
	if err := save(); err != nil {
		return ExpertReport{}, err
	}
	rep := ReportOf(name, dir, tr.Checkpoint())
	rep.Stop = stop
	if ck != nil {
		rep.TokensAtStart = ck.Meta.Tokens
	}
	if cfg.Stopped != nil {
		cfg.Stopped(rep)
	}
	return rep, nil
}

// partKey names a partition in checkpoints: "topic/partition".
func partKey(topic string, p int) string { return topic + "/" + strconv.Itoa(p) }

// MonitorGroupOf is the consumer group expert name commits its checkpointed
// positions to with ConsumerConfig.MonitorGroup prefix: "prefix.name".
func MonitorGroupOf(prefix, name string) string { return prefix + "." + name }

// checkpointPositions returns the next input offset of each of topic's n
// partitions that offsets (a checkpoint's) holds.
func checkpointPositions(offsets map[string]int64, topic string, n int) map[int]int64 {
	next := map[int]int64{}
	for p := range n {
		if off, ok := offsets[partKey(topic, p)]; ok && off >= 0 {
			next[p] = off
		}
	}
	return next
}

// apply feeds the documents of one input message to the trainer; a message
// that does not decode is dead-lettered. The dead letter is retried through
// broker outages; apply returns an error only when it could not be written
// (ctx ended, or a permanent error), and the message must then not count as
// consumed.
func (c *consumer) apply(ctx context.Context, tr *Trainer, m pipeline.Message, log *slog.Logger) error {
	d, err := pipeline.DecodeMessage(m, c.cfg.Limits, nil)
	if err == nil {
		defer d.Release()
		if d.ContentType == schemas.ContentTypeJSON {
			tr.Add(partKey(m.Topic, m.Partition), Position{Offset: m.Offset}, []byte(d.Doc.Text))
			return nil
		}
		if err = c.applyRecords(ctx, tr, m, d, log); err == nil {
			return nil
		}
		var dl deadLetterError
		if errors.As(err, &dl) {
			return dl.err
		}
	}
	log.Warn("input message dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", schemas.ReasonOf(err), "err", err)
	if werr := c.deadLetter(ctx, pipeline.DeadLetter(c.cfg.DeadLetterTopic, "train", m, err), log); werr != nil {
		return fmt.Errorf("dead letter of %s/%d at %d: %w", m.Topic, m.Partition, m.Offset, werr)
	}
	c.metrics.dead(tr.Meta.Expert)
	return nil
}

// deadLetterError is a failure to check a row's origin or to dead-letter
// the row: not a fault of the message, which must not count as consumed.
type deadLetterError struct{ err error }

func (e deadLetterError) Error() string { return e.err.Error() }

// applyRecords feeds the rows of an Arrow message's records to the
// trainer. An error that is not a deadLetterError is the message's: the
// rows of the records before the one that failed were applied, and the
// message goes to the dead-letter topic.
func (c *consumer) applyRecords(ctx context.Context, tr *Trainer, m pipeline.Message, d *pipeline.Decoded, log *slog.Logger) error {
	var row int32 // of the message, across its records
	for _, rec := range d.Records {
		// The document columns are found by name: a stage's extra
		// columns are carried and ignored.
		docs, err := schemas.Documents(rec)
		if err != nil {
			return err
		}
		if c := rec.Schema().FieldIndices(schemas.ColRouterVersion); len(c) == 1 {
			if v, ok := rec.Column(c[0]).(*array.Int64); ok && v.Len() > 0 {
				tr.Meta.RouterVersion = max(tr.Meta.RouterVersion, v.Value(v.Len()-1))
			}
		}
		// Document rows (an ingress topic, e.g. the dense seed on docs.raw)
		// get the position they were read from: their origin columns are
		// never believed. Rows routed by a stage keep theirs, once checked:
		// an origin far ahead would make the expert skip every later row.
		ingress := false
		if k, _, _ := schemas.KindOf(rec.Schema()); k == schemas.KindDocument {
			ingress = true
		}
		for i := range docs.Len() {
			o := docs.Origin(i)
			if ingress || o.Topic == "" {
				o = schemas.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Row: row}
			} else if impossible, cerr := c.checkOrigin(ctx, o, log); cerr != nil || impossible != nil {
				if cerr == nil {
					cerr = c.deadRow(ctx, m, docs.Doc(i), o, i, impossible, tr.Meta.Expert, log)
				}
				if cerr != nil {
					return deadLetterError{cerr}
				}
				row++
				continue
			}
			row++
			tr.Add(partKey(o.Topic, int(o.Partition)), Position{Offset: o.Offset, Row: o.Row}, []byte(docs.Text(i)))
		}
	}
	return nil
}

// checkOrigin returns impossible, an error wrapping
// pipeline.ErrImpossibleOrigin, for a routed row whose origin cannot exist
// (see pipeline.OriginChecker); while the broker cannot be asked it retries,
// and err is ctx's end.
func (c *consumer) checkOrigin(ctx context.Context, o schemas.Origin, log *slog.Logger) (impossible, err error) {
	err = pipeline.Retry(ctx, log, "check a row's origin", func(ctx context.Context) error {
		err := c.origins.Check(ctx, o.Topic, o.Partition, o.Offset)
		if errors.Is(err, pipeline.ErrImpossibleOrigin) {
			impossible = err
			return nil
		}
		return err
	})
	return impossible, err
}

// deadRow dead-letters row i, doc from origin o, of routed message m (its
// origin is impossible).
func (c *consumer) deadRow(ctx context.Context, m pipeline.Message, doc schemas.Document, o schemas.Origin, i int, cause error, expert string, log *slog.Logger) error {
	value, _ := schemas.EncodeJSON(doc)
	log.Warn("row with an impossible origin dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "row", i, "err", cause)
	dl := pipeline.DeadLetterSpec{Topic: c.cfg.DeadLetterTopic, Partition: m.Partition, Value: value, ContentType: schemas.ContentTypeJSON,
		Reason: pipeline.ReasonImpossibleOrigin, Err: cause.Error(), Stage: "train",
		OriginTopic: o.Topic, OriginPartition: strconv.Itoa(int(o.Partition)), OriginOffset: strconv.FormatInt(o.Offset, 10),
		OriginRow: strconv.Itoa(int(o.Row))}.Message()
	if werr := c.deadLetter(ctx, dl, log); werr != nil {
		return fmt.Errorf("dead letter of %s/%d at %d row %d: %w", m.Topic, m.Partition, m.Offset, i, werr)
	}
	c.metrics.dead(expert)
	return nil
}

// deadLetter writes dl, retrying through broker outages; the first attempt
// outlives a stop by its own timeout.
func (c *consumer) deadLetter(ctx context.Context, dl pipeline.Message, log *slog.Logger) error {
	return pipeline.Retry(ctx, log, "write a dead letter", func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return c.dead.Write(wctx, dl)
	})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// metrics are the Prometheus series of the training consumers.
type metrics struct {
	loss, step    *prometheus.GaugeVec
	tokens, deadN *prometheus.GaugeVec
}

// newMetrics registers the series with reg (nil: none); series already
// registered by an earlier consumer are shared.
func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		loss:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_loss", Help: "Training loss (nats per byte) of each expert's last step."}, []string{"expert"}),
		step:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_step", Help: "Optimizer steps applied to each expert."}, []string{"expert"}),
		tokens: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_tokens", Help: "Training bytes seen by each expert."}, []string{"expert"}),
		deadN:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_deadletters", Help: "Input messages of each expert sent to the dead-letter topic."}, []string{"expert"}),
	}
	for _, g := range []**prometheus.GaugeVec{&m.loss, &m.step, &m.tokens, &m.deadN} {
		err := reg.Register(*g)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				*g = old
				continue
			}
		}
		if err != nil {
			log.Warn("training metrics not registered", "err", err)
		}
	}
	return m
}

func (m *metrics) observe(name string, tr *Trainer) {
	if m == nil {
		return
	}
	m.loss.WithLabelValues(name).Set(float64(tr.LastLoss()))
	m.step.WithLabelValues(name).Set(float64(tr.Opt.Step))
	m.tokens.WithLabelValues(name).Set(float64(tr.Meta.Tokens))
}

func (m *metrics) dead(name string) {
	if m != nil {
		m.deadN.WithLabelValues(name).Inc()
	}
}
