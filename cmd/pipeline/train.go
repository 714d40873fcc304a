package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // the default backend
	_ "github.com/domainflow/domainflow/accel/ref" // the reference backend
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// trainFlags are the flags of `pipeline train`.
type trainFlags struct {
	kafka       kafkaFlags
	domains     string
	topic       string
	name        string
	out         string
	expert      string
	exitOnIdle  time.Duration
	init        string
	cont        bool
	skipSeen    bool
	tokens      int64
	ckptSteps   int
	ckptEvery   time.Duration
	keep        int
	backend     string
	threads     int
	seed        uint64
	lr          float64
	minLR       float64
	warmup      int
	totalSteps  int
	maxText     int
	deadLetters string
	json        bool
}

// expertReport is one expert's line of the `train` and `experts list`
// reports.
type expertReport struct {
	Expert        string  `json:"expert"`
	Step          int     `json:"step"`
	Tokens        int64   `json:"tokens"`
	Docs          int64   `json:"docs"`
	Skipped       int64   `json:"skipped,omitempty"`
	Loss          float64 `json:"loss"`
	Checkpoint    string  `json:"checkpoint"`
	ParamsSHA256  string  `json:"params_sha256"`
	Size          string  `json:"size"`
	Init          string  `json:"init,omitempty"`
	RouterVersion int64   `json:"router_version,omitempty"`
}

// expertDir is where expert name keeps its checkpoints under out.
func expertDir(out, name string) string { return filepath.Join(out, "experts", name) }

func (a *app) trainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Training consumers: one expert language model per domain topic",
		Long: `Train expert language models (byte-level GPT) on Kafka topics, one expert per
domain: --domain D reads docs.domain.D, --domain all the topic of every domain
of the routers on router.models (and those added later, e.g. by a split; a
docs.domain.* topic whose id is no router's is ignored with a warning),
--topic T --name N any topic of documents (e.g. --topic docs.raw --name dense
for the dense seed on the mixed stream). Documents are packed into byte
sequences separated by '\n'.

Each expert checkpoints into --out/experts/<name>/step-NNNNNN.arrow (+ .parquet)
every --checkpoint-steps steps or --checkpoint-every, and on exit; the last
--keep are kept. A checkpoint holds the tensors, the AdamW moments, the
pending bytes, step and tokens, the last origin position applied per origin
partition and the next input offset per partition. A restarted trainer loads
its newest valid checkpoint (a damaged one is detected by its checksum and the
previous one used), seeks past its offsets and skips documents at or below its
origin positions: every document is applied exactly once, and a run killed at
any point and restarted ends bit-identical to an uninterrupted one on the same
input (same backend and --threads).

--init CKPT branches new experts from a seed checkpoint (a file, or an expert
dir whose newest checkpoint is used), as Branch-Train-Merge does.`,
		Example: `  pipeline train --brokers 127.0.0.1:9092 --domain all --out run/ --expert small
  pipeline train --brokers 127.0.0.1:9092 --topic docs.raw --name dense --out run/ --tokens 2000000 --exit-on-idle 10s
  pipeline train --brokers 127.0.0.1:9092 --domain 3 --out run/ --init run/experts/dense --exit-on-idle 5s --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runTrain(cmd, &f) },
	}
	fs := cmd.Flags()
	f.kafka.register(fs)
	fs.StringVar(&f.domains, "domain", "", "domain `ids` to train (comma-separated) or all: the domains of the routers on router.models")
	fs.StringVar(&f.topic, "topic", "", "train one expert on this `topic` instead of domain topics (with --name)")
	fs.StringVar(&f.name, "name", "dense", "expert `name` with --topic")
	fs.StringVar(&f.out, "out", "", "output `dir`: checkpoints go to DIR/experts/<name>/")
	fs.StringVar(&f.expert, "expert", "small", "model size: "+strings.Join(train.ConfigNames(), ", "))
	fs.DurationVar(&f.exitOnIdle, "exit-on-idle", 0, "checkpoint and exit once no new input came for this long (0: run until SIGINT/SIGTERM)")
	fs.StringVar(&f.init, "init", "", "seed checkpoint `file or expert dir` new experts branch from")
	fs.BoolVar(&f.skipSeen, "skip-seen", false, "with --init: skip the documents the seed already trained on (its origin positions), so that each branch trains only on documents new to it")
	fs.BoolVar(&f.cont, "continue", false, "with --init and --topic: go on reading the topic where the seed stopped (a dense model continuing its training)")
	fs.Int64Var(&f.tokens, "tokens", 0, "token budget per expert: checkpoint and stop at this many training bytes (0: no limit)")
	fs.IntVar(&f.ckptSteps, "checkpoint-steps", 200, "checkpoint every this many steps")
	fs.DurationVar(&f.ckptEvery, "checkpoint-every", time.Minute, "checkpoint at least this often while training")
	fs.IntVar(&f.keep, "keep", 3, "checkpoints kept per expert")
	fs.StringVar(&f.backend, "backend", "cpu", "accel backend: "+strings.Join(accel.Names(), ", "))
	fs.IntVar(&f.threads, "threads", 0, "threads per expert (0: all CPUs)")
	fs.Uint64Var(&f.seed, "seed", 1, "initialization seed of experts without --init")
	fs.Float64Var(&f.lr, "lr", float64(train.DefaultOptConfig().LR), "peak learning rate")
	fs.Float64Var(&f.minLR, "min-lr", float64(train.DefaultOptConfig().MinLR), "final learning rate of the cosine decay")
	fs.IntVar(&f.warmup, "warmup", 100, "warm-up steps")
	fs.IntVar(&f.totalSteps, "total-steps", 0, "steps of the cosine decay (0: from --tokens when set, else constant after the warm-up)")
	fs.IntVar(&f.maxText, "max-text-bytes", 0, "per-document text cap for JSON input (0: the schemas default)")
	fs.StringVar(&f.deadLetters, "deadletter-topic", pipeline.TopicDeadLetter, "where undecodable input messages go")
	fs.BoolVar(&f.json, "json", false, "print one JSON object with every expert's final state")
	return cmd
}

// trainJob is what every expert of one `train` invocation shares.
type trainJob struct {
	a       *app
	f       *trainFlags
	cc      pipeline.ClientConfig
	cfg     train.Config
	opt     train.OptConfig
	init    *train.Checkpoint
	log     *slog.Logger
	metrics *trainMetrics
	dead    *pipeline.KafkaSink
	origins *pipeline.OriginChecker
}

func (a *app) runTrain(cmd *cobra.Command, f *trainFlags) error {
	if f.out == "" {
		return usagef("train: --out is required")
	}
	if (f.domains == "") == (f.topic == "") {
		return usagef("train: give --domain D|all or --topic T (not both)")
	}
	if f.cont && (f.init == "" || f.topic == "") {
		return usagef("train: --continue goes with --init and --topic")
	}
	if f.skipSeen && f.init == "" {
		return usagef("train: --skip-seen goes with --init")
	}
	cfg, err := train.ConfigByName(f.expert)
	if err != nil {
		return usagef("train: --expert: %v", err)
	}
	if f.ckptSteps < 1 || f.keep < 1 || f.ckptEvery <= 0 || f.tokens < 0 || f.exitOnIdle < 0 {
		return usagef("train: --checkpoint-steps and --keep must be at least 1, --checkpoint-every positive, --tokens and --exit-on-idle not negative")
	}
	if !slices.Contains(accel.Names(), f.backend) {
		return usagef("train: --backend %q: have %v", f.backend, accel.Names())
	}
	var domains []int
	if f.domains != "" && f.domains != "all" {
		for _, s := range splitList(f.domains) {
			d, err := strconv.Atoi(s)
			if err != nil || d < 0 {
				return usagef("train: --domain %q: want ids like 0,3 or all", s)
			}
			domains = append(domains, d)
		}
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "train")
	opt := train.DefaultOptConfig()
	opt.LR, opt.MinLR, opt.WarmupSteps = float32(f.lr), float32(f.minLR), f.warmup
	opt.TotalSteps = f.totalSteps
	if opt.TotalSteps == 0 && f.tokens > 0 {
		opt.TotalSteps = int(f.tokens / int64(cfg.Batch*cfg.Ctx))
	}
	job := &trainJob{a: a, f: f, cfg: cfg, opt: opt, log: log, metrics: newTrainMetrics(a.reg, log)}
	if f.init != "" {
		if job.init, err = loadSeed(f.init); err != nil {
			return fmt.Errorf("train: --init: %w", err)
		}
		log.Info("experts branch from a seed", "seed", f.init, "step", job.init.Meta.Step, "params_sha256", job.init.Meta.ParamsSHA256)
	}
	if job.cc, err = f.kafka.connect(ctx, a.log); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if job.dead, err = pipeline.NewKafkaSink(pipeline.SinkConfig{Client: job.cc}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer job.dead.Close()
	if job.origins, err = pipeline.NewOriginChecker(job.cc); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer job.origins.Close()

	var (
		mu      sync.Mutex
		reports []expertReport
		errs    []error
		wg      sync.WaitGroup
		started = map[string]bool{}
	)
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	startExpert := func(name, topic string) {
		if started[name] {
			return
		}
		started[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := job.runExpert(ctx, name, topic)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("expert %s: %w", name, err))
				// One expert that cannot go on (a full disk, a dead
				// letter that cannot be written) stops the command, so
				// that it is seen and restarted from the checkpoints:
				// the other experts checkpoint and stop as on SIGTERM.
				log.Error("expert failed; stopping the other experts", "expert", name, "err", err)
				stopAll()
				return
			}
			reports = append(reports, rep)
		}()
	}
	switch {
	case f.topic != "":
		startExpert(f.name, f.topic)
	case domains != nil:
		for _, d := range domains {
			startExpert(strconv.Itoa(d), pipeline.DomainTopic(d))
		}
	default: // all: the router's domains with a topic, and those that appear
		rd := newRouterDomains(job.cc, log)
		defer rd.close()
		scan := func() { // a failure is retried at the next scan
			ts, err := pipeline.ListTopics(ctx, job.cc)
			if err == nil {
				err = rd.refresh(ctx, ts)
			}
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("domain topics not listed; retrying", "err", err)
				}
				return
			}
			ids := rd.domains(ts)
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				startExpert(strconv.Itoa(id), pipeline.DomainTopic(id))
			}
		}
		scan()
		if len(started) == 0 {
			log.Info("no domain topics of a router yet; waiting for a router on " + pipeline.TopicRouterModels + " and its " + pipeline.DomainTopicPrefix + "<id> topics")
		}
		allDone := make(chan struct{})
		go func() {
			// With --exit-on-idle, finish once every expert finished and no
			// new domain topic appeared for that long.
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					close(allDone)
					return
				case <-t.C:
				}
				mu.Lock()
				n := len(started)
				mu.Unlock()
				scan()
				mu.Lock()
				grew := len(started) > n
				finished := len(reports)+len(errs) == len(started)
				mu.Unlock()
				if f.exitOnIdle > 0 && finished && !grew && len(started) > 0 {
					close(allDone)
					return
				}
			}
		}()
		<-allDone
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	sort.Slice(reports, func(i, j int) bool { return expertLess(reports[i].Expert, reports[j].Expert) })
	if f.json {
		return writeJSON(a.stdout, struct {
			Experts []expertReport `json:"experts"`
		}{reports})
	}
	for _, r := range reports {
		fmt.Fprintf(a.stderr, "train: expert %s: step %d, %s tokens, %s, loss %.3f → %s\n",
			r.Expert, r.Step, humanCount(r.Tokens), plural(r.Docs, "document"), r.Loss, r.Checkpoint)
	}
	return nil
}

// expertLess orders expert names: numbers numerically first, then names.
func expertLess(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return x < y
	case errA == nil:
		return true
	case errB == nil:
		return false
	}
	return a < b
}

func humanCount(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// loadSeed loads a seed checkpoint: a file, or an expert dir's newest.
func loadSeed(path string) (*train.Checkpoint, error) {
	if strings.HasSuffix(path, ".arrow") || strings.HasSuffix(path, ".parquet") {
		return train.LoadCheckpoint(path)
	}
	c, _, err := train.LoadLatestCheckpoint(path)
	if err == nil && c == nil {
		err = fmt.Errorf("no checkpoint in %s", path)
	}
	return c, err
}

// runExpert trains expert name on topic until idle, the token budget or ctx
// ends, checkpointing as it goes, and reports its final state.
func (j *trainJob) runExpert(ctx context.Context, name, topic string) (expertReport, error) {
	f := j.f
	log := j.log.With("expert", name)
	dir := expertDir(f.out, name)
	be, err := accel.Open(f.backend, f.threads)
	if err != nil {
		return expertReport{}, err
	}
	ck, skipped, err := train.LoadLatestCheckpoint(dir)
	for _, e := range skipped {
		log.Warn("damaged checkpoint skipped", "err", e)
	}
	if err != nil {
		return expertReport{}, err
	}
	var tr *train.Trainer
	if ck != nil {
		if tr, err = train.ResumeTrainer(ck, be, be.Threads()); err != nil {
			return expertReport{}, err
		}
		log.Info("resumed", "step", ck.Meta.Step, "tokens", ck.Meta.Tokens, "docs", ck.Meta.Docs)
	} else {
		cfg := j.cfg
		if j.init != nil {
			cfg = j.init.Model.Cfg
			cfg.Batch = j.cfg.Batch
			cfg.Name = j.cfg.Name
			if cfg.Dim != j.cfg.Dim || cfg.Layers != j.cfg.Layers || cfg.Ctx != j.cfg.Ctx {
				log.Info("the seed's size wins over --expert", "seed", j.init.Model.Cfg.Name)
			}
		}
		tr, err = train.NewTrainer(train.TrainerConfig{Expert: name, Model: cfg, Opt: j.opt, Seed: j.f.seed, Init: j.init, Continue: j.f.cont, SkipSeen: j.f.skipSeen, Backend: be, Threads: be.Threads()})
		if err != nil {
			return expertReport{}, err
		}
	}
	n, err := waitPartitions(ctx, j.cc, topic, log)
	if err != nil {
		return expertReport{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	in := newPartitionReaders(j.cc, topic, n)
	defer in.close()
	for p := range n {
		if off, ok := tr.Meta.Offsets[partKey(topic, p)]; ok {
			in.next[p] = off
		}
	}
	cursor := tr.Meta.Cursor % n
	lastSave, dirty := time.Now(), ck == nil
	save := func() error {
		if !dirty {
			return nil
		}
		path, err := train.SaveCheckpoint(dir, tr.Checkpoint(), f.keep)
		if err != nil {
			return err
		}
		lastSave, dirty = time.Now(), false
		log.Debug("checkpoint", "path", path, "step", tr.Opt.Step)
		return nil
	}
	// trainPending runs the steps the packer holds the bytes for, and
	// checkpoints at every multiple of --checkpoint-steps on the way, even
	// inside one large message: the input offset is already past the
	// message, and the rest of its bytes are in the packer, which the
	// checkpoint carries, so a restart from there goes on exactly where the
	// uninterrupted run does. done is false when ctx ended.
	trainPending := func() (done bool, err error) {
		for {
			chunk := f.ckptSteps - tr.Opt.Step%f.ckptSteps // steps to the next checkpoint
			ran, err := tr.Train(ctx, chunk, f.tokens)
			if ran > 0 {
				dirty = true
				j.metrics.observe(name, tr)
			}
			if err != nil {
				if ctx.Err() != nil {
					return false, nil
				}
				return false, err
			}
			if (ran > 0 && tr.Opt.Step%f.ckptSteps == 0) || time.Since(lastSave) >= f.ckptEvery {
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
		return expertReport{}, err
	}
	lastInput, lastLog, tokensAtLog := time.Now(), time.Now(), tr.Meta.Tokens
	budget := func() bool { return f.tokens > 0 && tr.Meta.Tokens >= f.tokens }
	for !budget() && ctx.Err() == nil {
		m, p, ok, err := in.nextMessageRetrying(ctx, cursor, log)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return expertReport{}, err
		}
		if !ok { // nothing to read right now
			if f.exitOnIdle > 0 && time.Since(lastInput) >= f.exitOnIdle {
				log.Info("idle: stopping", "idle", f.exitOnIdle)
				break
			}
			if dirty && time.Since(lastSave) >= f.ckptEvery {
				if err := save(); err != nil {
					return expertReport{}, err
				}
			}
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		lastInput = time.Now()
		cursor = (p + 1) % n
		if err := j.apply(ctx, tr, m, log); err != nil {
			if ctx.Err() != nil {
				break // the message is read again on restart
			}
			return expertReport{}, err
		}
		tr.SetOffset(partKey(topic, p), m.Offset+1, cursor)
		dirty = true
		if ok, err := trainPending(); err != nil {
			return expertReport{}, err
		} else if !ok {
			break
		}
		if time.Since(lastLog) >= 10*time.Second {
			log.Info("training", "step", tr.Opt.Step, "tokens", tr.Meta.Tokens, "loss", tr.LastLoss(),
				"tokens_per_s", int(float64(tr.Meta.Tokens-tokensAtLog)/time.Since(lastLog).Seconds()))
			lastLog, tokensAtLog = time.Now(), tr.Meta.Tokens
		}
	}
	if budget() {
		log.Info("token budget reached", "tokens", tr.Meta.Tokens)
	}
	if err := save(); err != nil {
		return expertReport{}, err
	}
	return reportOf(name, dir, tr.Checkpoint()), nil
}

// reportOf summarizes an expert's checkpoint.
func reportOf(name, dir string, c *train.Checkpoint) expertReport {
	r := expertReport{Expert: name, Step: c.Meta.Step, Tokens: c.Meta.Tokens, Docs: c.Meta.Docs, Skipped: c.Meta.Skipped,
		Checkpoint: train.CheckpointPath(dir, c.Meta.Step), ParamsSHA256: train.ParamsSHA256(c.Model),
		Size: c.Model.Cfg.Name, Init: c.Meta.Init, RouterVersion: c.Meta.RouterVersion}
	if len(c.Meta.Losses) > 0 {
		// The mean over the last (up to) 50 steps: one step's loss is noisy.
		ls := c.Meta.Losses[max(0, len(c.Meta.Losses)-50):]
		s := 0.0
		for _, l := range ls {
			s += float64(l.Loss)
		}
		r.Loss = s / float64(len(ls))
	}
	return r
}

// partKey names a partition in checkpoints: "topic/partition".
func partKey(topic string, p int) string { return topic + "/" + strconv.Itoa(p) }

// apply feeds the documents of one input message to the trainer; a message
// that does not decode is dead-lettered. The dead letter is retried through
// broker outages; apply returns an error only when it could not be written
// (ctx ended, or a permanent error), and the message must then not count as
// consumed.
func (j *trainJob) apply(ctx context.Context, tr *train.Trainer, m kafka.Message, log *slog.Logger) error {
	ct, err := schemas.CheckMessage(headerValue(m, schemas.HeaderContentType), headerValue(m, schemas.HeaderSchemaVersion), m.Value)
	if err == nil && ct == schemas.ContentTypeJSON {
		var d schemas.Document
		if d, err = schemas.DecodeJSON(m.Value, schemas.Limits{MaxTextBytes: j.f.maxText}); err == nil {
			tr.Add(partKey(m.Topic, m.Partition), train.Position{Offset: m.Offset}, []byte(d.Text))
			return nil
		}
	}
	if err == nil {
		var recs []arrow.Record
		var row int32 // of the message, across its records
		if recs, err = schemas.DecodeRecords(m.Value, nil); err == nil {
			for _, rec := range recs {
				docs, derr := schemas.Documents(rec)
				if derr != nil {
					err = derr
					break
				}
				if c := rec.Schema().FieldIndices(schemas.ColRouterVersion); len(c) == 1 {
					if v, ok := rec.Column(c[0]).(*array.Int64); ok && v.Len() > 0 {
						tr.Meta.RouterVersion = max(tr.Meta.RouterVersion, v.Value(v.Len()-1))
					}
				}
				// Document rows (an ingress topic, e.g. the dense seed
				// on docs.raw) get the position they were read from:
				// their origin columns are never believed. Rows routed
				// by a stage keep theirs, once checked: an origin far
				// ahead would make the expert skip every later row.
				ingress := false
				if k, _, _ := schemas.KindOf(rec.Schema()); k == schemas.KindDocument {
					ingress = true
				}
				for i := range docs.Len() {
					o := docs.Origin(i)
					if ingress || o.Topic == "" {
						o = schemas.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Row: row}
					} else if impossible, cerr := j.checkOrigin(ctx, o, log); cerr != nil || impossible != nil {
						if cerr == nil {
							cerr = j.deadRow(ctx, m, docs, i, impossible, tr.Meta.Expert, log)
						}
						if cerr != nil {
							for _, rec := range recs {
								rec.Release()
							}
							return cerr
						}
						row++
						continue
					}
					row++
					tr.Add(partKey(o.Topic, int(o.Partition)), train.Position{Offset: o.Offset, Row: o.Row}, []byte(docs.Text(i)))
				}
			}
			for _, rec := range recs {
				rec.Release()
			}
		}
	}
	if err == nil {
		return nil
	}
	log.Warn("input message dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", schemas.ReasonOf(err), "err", err)
	dl := pipeline.DeadLetter(j.f.deadLetters, "train", m, err)
	werr := pipeline.Retry(ctx, log, "write a dead letter", func(ctx context.Context) error {
		// The first attempt outlives a stop by its own timeout.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return j.dead.Write(wctx, dl)
	})
	if werr != nil {
		return fmt.Errorf("dead letter of %s/%d at %d: %w", m.Topic, m.Partition, m.Offset, werr)
	}
	j.metrics.dead(tr.Meta.Expert)
	return nil
}

// checkOrigin returns impossible, an error wrapping
// pipeline.ErrImpossibleOrigin, for a routed row whose origin cannot exist
// (see pipeline.OriginChecker); while the broker cannot be asked it retries,
// and err is ctx's end.
func (j *trainJob) checkOrigin(ctx context.Context, o schemas.Origin, log *slog.Logger) (impossible, err error) {
	err = pipeline.Retry(ctx, log, "check a row's origin", func(ctx context.Context) error {
		err := j.origins.Check(ctx, o.Topic, o.Partition, o.Offset)
		if errors.Is(err, pipeline.ErrImpossibleOrigin) {
			impossible = err
			return nil
		}
		return err
	})
	return impossible, err
}

// deadRow dead-letters row i of routed message m (its origin is impossible).
func (j *trainJob) deadRow(ctx context.Context, m kafka.Message, docs *schemas.DocumentColumns, i int, cause error, expert string, log *slog.Logger) error {
	o := docs.Origin(i)
	value, _ := schemas.EncodeJSON(docs.Doc(i))
	log.Warn("row with an impossible origin dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "row", i, "err", cause)
	dl := pipeline.DeadLetterSpec{Topic: j.f.deadLetters, Partition: m.Partition, Value: value, ContentType: schemas.ContentTypeJSON,
		Reason: cluster.ReasonImpossibleOrigin, Err: cause.Error(), Stage: "train",
		OriginTopic: o.Topic, OriginPartition: strconv.Itoa(int(o.Partition)), OriginOffset: strconv.FormatInt(o.Offset, 10),
		OriginRow: strconv.Itoa(int(o.Row))}.Message()
	werr := pipeline.Retry(ctx, log, "write a dead letter", func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return j.dead.Write(wctx, dl)
	})
	if werr != nil {
		return fmt.Errorf("dead letter of %s/%d at %d row %d: %w", m.Topic, m.Partition, m.Offset, i, werr)
	}
	j.metrics.dead(expert)
	return nil
}

// headerValue is the value of m's header key ("" when absent).
func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// partitionReaders reads one topic's partitions round robin in a
// deterministic order: a partition is skipped only when it has no message
// past the reader's position at the last look at its end offset, so input
// that is already in the topic is always read in the same order.
type partitionReaders struct {
	cc      pipeline.ClientConfig
	topic   string
	readers []*kafka.Reader
	next    []int64 // next offset to read; -1: from the first
	end     []int64 // end offsets at the last look
	looked  time.Time
}

func newPartitionReaders(cc pipeline.ClientConfig, topic string, n int) *partitionReaders {
	r := &partitionReaders{cc: cc, topic: topic, readers: make([]*kafka.Reader, n), next: make([]int64, n), end: make([]int64, n)}
	for p := range n {
		r.next[p] = -1
	}
	return r
}

func (r *partitionReaders) close() {
	for _, rd := range r.readers {
		if rd != nil {
			rd.Close()
		}
	}
}

// refresh reads every partition's first and end offsets.
func (r *partitionReaders) refresh(ctx context.Context) error {
	for p := range r.readers {
		conn, err := r.cc.Dialer().DialLeader(ctx, "tcp", r.cc.Brokers[0], r.topic, p)
		if err != nil {
			return fmt.Errorf("dial leader of %s/%d: %w", r.topic, p, err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			return fmt.Errorf("offsets of %s/%d: %w", r.topic, p, err)
		}
		if r.next[p] < first {
			r.next[p] = first
			if r.readers[p] != nil {
				r.readers[p].Close()
				r.readers[p] = nil
			}
		}
		r.end[p] = last
	}
	r.looked = time.Now()
	return nil
}

// nextMessage returns the next message from the first partition at or after
// cursor (round robin) that has one; ok is false when none has.
func (r *partitionReaders) nextMessage(ctx context.Context, cursor int) (kafka.Message, int, bool, error) {
	n := len(r.readers)
	for pass := range 2 {
		if pass == 1 || r.looked.IsZero() {
			if pass == 1 && time.Since(r.looked) < 100*time.Millisecond {
				return kafka.Message{}, 0, false, nil
			}
			if err := r.refresh(ctx); err != nil {
				return kafka.Message{}, 0, false, err
			}
		}
		for i := range n {
			p := (cursor + i) % n
			if r.next[p] >= r.end[p] {
				continue
			}
			if r.readers[p] == nil {
				r.readers[p] = kafka.NewReader(kafka.ReaderConfig{Brokers: r.cc.Brokers, Topic: r.topic, Partition: p,
					Dialer: r.cc.Dialer(), MinBytes: 1, MaxBytes: 32 << 20, MaxWait: 200 * time.Millisecond})
				if err := r.readers[p].SetOffset(r.next[p]); err != nil {
					r.readers[p].Close()
					r.readers[p] = nil
					return kafka.Message{}, 0, false, err
				}
			}
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			m, err := r.readers[p].FetchMessage(fctx)
			cancel()
			if err != nil {
				// A fresh reader at next[p] and a fresh look at the offsets
				// for the next try.
				r.readers[p].Close()
				r.readers[p], r.looked = nil, time.Time{}
				return kafka.Message{}, 0, false, fmt.Errorf("read %s/%d at %d: %w", r.topic, p, r.next[p], err)
			}
			r.next[p] = m.Offset + 1
			return m, p, true, nil
		}
	}
	return kafka.Message{}, 0, false, nil
}

// nextMessageRetrying is nextMessage riding out broker outages: a
// retryable error (the broker away, restarting or overloaded) is logged and
// the read is tried again with backoff until it succeeds or ctx ends. The
// readers stay at the offsets they had, so nothing is skipped or read twice.
func (r *partitionReaders) nextMessageRetrying(ctx context.Context, cursor int, log *slog.Logger) (kafka.Message, int, bool, error) {
	var (
		m  kafka.Message
		p  int
		ok bool
	)
	err := pipeline.Retry(ctx, log, "read "+r.topic, func(ctx context.Context) error {
		var err error
		m, p, ok, err = r.nextMessage(ctx, cursor)
		return err
	})
	return m, p, ok, err
}

// trainMetrics are the Prometheus series of the training consumers.
type trainMetrics struct {
	loss, step    *prometheus.GaugeVec
	tokens, deadN *prometheus.GaugeVec
}

func newTrainMetrics(reg *prometheus.Registry, log *slog.Logger) *trainMetrics {
	if reg == nil {
		return nil
	}
	m := &trainMetrics{
		loss:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_loss", Help: "Training loss (nats per byte) of each expert's last step."}, []string{"expert"}),
		step:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_step", Help: "Optimizer steps applied to each expert."}, []string{"expert"}),
		tokens: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_tokens", Help: "Training bytes seen by each expert."}, []string{"expert"}),
		deadN:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_deadletters", Help: "Input messages of each expert sent to the dead-letter topic."}, []string{"expert"}),
	}
	for _, c := range []prometheus.Collector{m.loss, m.step, m.tokens, m.deadN} {
		if err := reg.Register(c); err != nil {
			log.Warn("training metrics not registered", "err", err)
		}
	}
	return m
}

func (m *trainMetrics) observe(name string, tr *train.Trainer) {
	if m == nil {
		return
	}
	m.loss.WithLabelValues(name).Set(float64(tr.LastLoss()))
	m.step.WithLabelValues(name).Set(float64(tr.Opt.Step))
	m.tokens.WithLabelValues(name).Set(float64(tr.Meta.Tokens))
}

func (m *trainMetrics) dead(name string) {
	if m != nil {
		m.deadN.WithLabelValues(name).Inc()
	}
}
