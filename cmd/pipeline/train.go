package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // the default backend
	_ "github.com/domainflow/domainflow/accel/ref" // the reference backend
	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
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
	initNew     string
	initRouter  string
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
	monitor     string
	json        bool
}

// expertReport is one expert's line of the `train` and `experts list`
// reports.
type expertReport = train.ExpertReport

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
pending bytes, step and training bytes, the last origin position applied per origin
partition and the next input offset per partition. A restarted trainer loads
its newest valid checkpoint (a damaged one is detected by its checksum and the
previous one used), seeks past its offsets and skips documents at or below its
origin positions: every document is applied exactly once, and a run killed at
any point and restarted ends bit-identical to an uninterrupted one on the same
input (same backend and --threads).

--init CKPT branches new experts from a seed checkpoint (a file, or an expert
dir whose newest checkpoint is used), as Branch-Train-Merge does. An expert
that starts while other domains of the router already have experts (a domain
added to a running pipeline) can instead branch from them: --init-new nearest
takes the expert whose centroid is nearest its own, --init-new average the
average of the 2 nearest weighted by the router's softmax(−d²/T); the other
experts are only read. Such an expert takes neither --continue nor
--skip-seen (they are about the seed's input), and its checkpoint records how
it was initialized (init_from in --json).

A trainer reads its partitions without a consumer group, from its
checkpoint's positions. For monitoring, each expert also commits the positions
of every checkpoint it saves to consumer group --monitor-group.<name> (e.g.
train.3, train.dense), so Kafka's tools show its progress and lag
(kafka-consumer-groups --describe --group train.3). Nothing reads these
offsets back: a restart resumes from the checkpoint whatever the group holds.
--monitor-group '' commits nothing.`,
		Example: `  pipeline train --brokers 127.0.0.1:9092 --domain all --out run/ --expert small
  pipeline train --brokers 127.0.0.1:9092 --topic docs.raw --name dense --out run/ --tokens 2000000 --exit-on-idle 10s
  pipeline train --brokers 127.0.0.1:9092 --domain 3 --out run/ --init run/experts/dense --exit-on-idle 5s --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runTrain(cmd, &f) },
	}
	fs := cmd.Flags()
	f.kafka.Register(fs)
	fs.StringVar(&f.domains, "domain", "", "domain `ids` to train (comma-separated) or all: the domains of the routers on router.models")
	fs.StringVar(&f.topic, "topic", "", "train one expert on this `topic` instead of domain topics (with --name)")
	fs.StringVar(&f.name, "name", "dense", "expert `name` with --topic")
	fs.StringVar(&f.out, "out", "", "output `dir`: checkpoints go to DIR/experts/<name>/")
	fs.StringVar(&f.expert, "expert", "small", "model size: "+strings.Join(train.ConfigNames(), ", "))
	fs.DurationVar(&f.exitOnIdle, "exit-on-idle", 0, "checkpoint and exit once no new input came for this long (0: run until SIGINT/SIGTERM)")
	fs.StringVar(&f.init, "init", "", "seed checkpoint `file or expert dir` new experts branch from")
	fs.StringVar(&f.initNew, "init-new", string(flow.DefaultInit), "how the expert of a domain created later (a growth, a split) starts: nearest (the expert of the nearest centroid), average (the router-weighted average of the 2 nearest experts) or seed (--init, or from scratch); domains of a fit always start from --init")
	fs.StringVar(&f.initRouter, "init-router", "", "router `dir` whose centroids --init-new nearest|average measures (default --out/router)")
	fs.BoolVar(&f.skipSeen, "skip-seen", false, "with --init: skip the documents the seed already trained on (its origin positions), so that each branch trains only on documents new to it")
	fs.BoolVar(&f.cont, "continue", false, "with --init and --topic: go on reading the topic where the seed stopped (a dense model continuing its training)")
	process.ByteSizeVar(fs, &f.tokens, "tokens", 0, "token budget per expert: checkpoint and stop at this many training bytes (0: no limit)")
	fs.IntVar(&f.ckptSteps, "checkpoint-steps", 200, "checkpoint every this many steps")
	fs.DurationVar(&f.ckptEvery, "checkpoint-every", time.Minute, "checkpoint at least this often while training")
	fs.IntVar(&f.keep, "keep", 3, "checkpoints kept per expert")
	fs.StringVar(&f.backend, "backend", "cpu", "accel backend: "+strings.Join(accel.Names(), ", "))
	fs.IntVar(&f.threads, "threads", 0, "threads per expert (0: all CPUs)")
	fs.Uint64Var(&f.seed, "seed", 1, "initialization seed of experts without --init")
	fs.Float64Var(&f.lr, "lr", shortFloat(train.DefaultOptConfig().LR), "peak learning rate")
	fs.Float64Var(&f.minLR, "min-lr", shortFloat(train.DefaultOptConfig().MinLR), "final learning rate of the cosine decay")
	fs.IntVar(&f.warmup, "warmup", 100, "warm-up steps")
	fs.IntVar(&f.totalSteps, "total-steps", 0, "steps of the cosine decay (0: from --tokens when set, else constant after the warm-up)")
	process.ByteSizeVar(fs, &f.maxText, "max-text-bytes", 0, "per-document text cap for JSON input (0: the schemas default)")
	fs.StringVar(&f.deadLetters, "deadletter-topic", pipeline.TopicDeadLetter, "where undecodable input messages go")
	fs.StringVar(&f.monitor, "monitor-group", "train", "`prefix` of the consumer groups the experts commit their checkpointed positions to, for monitoring only: expert N commits to PREFIX.N ('': none)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object with every expert's final state")
	return cmd
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
	model, err := train.ConfigByName(f.expert)
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
		for _, s := range process.SplitList(f.domains) {
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
	opt.TotalSteps = f.totalSteps // 0 with --tokens: the budget's steps (train.ConsumerConfig.Opt)
	cfg := train.ConsumerConfig{Out: f.out, Model: model, Opt: opt, Seed: f.seed, Continue: f.cont, SkipSeen: f.skipSeen,
		Tokens: f.tokens, CheckpointSteps: f.ckptSteps, CheckpointEvery: f.ckptEvery, Keep: f.keep, ExitOnIdle: f.exitOnIdle,
		Limits: schemas.Limits{MaxTextBytes: f.maxText}, DeadLetterTopic: f.deadLetters, Backend: f.backend, Threads: f.threads,
		MonitorGroup: f.monitor, Logger: log}
	if a.reg != nil {
		cfg.Registerer = a.reg
	}
	if f.init != "" {
		if cfg.Init, err = train.LoadSeed(f.init); err != nil {
			return fmt.Errorf("train: --init: %w", err)
		}
		log.Info("experts branch from a seed", "seed", f.init, "step", cfg.Init.Meta.Step, "params_sha256", cfg.Init.Meta.ParamsSHA256)
	}
	if cfg.InitFor, err = flow.NewExpertInit(flow.ExpertInitConfig{Out: f.out, RouterDir: f.initRouter,
		Strategy: flow.InitStrategy(f.initNew), Logger: log}); err != nil {
		return usagef("train: --init-new: %v", err)
	}
	if cfg.Client, err = f.kafka.Connect(ctx, a.log); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var reports []expertReport
	switch {
	case f.topic != "":
		var r expertReport
		if r, err = train.RunExpert(ctx, cfg, f.name, f.topic); err == nil {
			reports = []expertReport{r}
		}
	case domains != nil:
		reports, err = train.RunDomains(ctx, cfg, domains)
	default: // all: the router's domains with a topic, and those that appear
		rd := cluster.NewDomains(cfg.Client, log)
		defer rd.Close()
		reports, err = train.Run(ctx, cfg, train.DomainSourceFunc(rd.Current))
	}
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(a.stdout, struct {
			Experts []expertReport `json:"experts"`
		}{reports})
	}
	for _, r := range reports {
		fmt.Fprint(a.stderr, trainStopLine(r, f.tokens, f.exitOnIdle))
	}
	return nil
}

// trainStopLine is an expert's stop line: the step, the bytes it trained
// on and the documents it applied, its loss and checkpoint; then, unless it
// stopped at its budget, why it stopped and what it holds untrained:
//
//	train: expert 0: step 138, 141.3 kB trained, 38 documents applied, loss 3.035 → out/experts/0/step-000138.arrow
//	  stopped: no input for 10s (--exit-on-idle), below the budget (--tokens 500.0 kB); 99.5 kB applied are not trained yet: …
func trainStopLine(r expertReport, budget int64, idle time.Duration) string {
	line := fmt.Sprintf("train: expert %s: step %d, %s trained, %s applied, loss %.3f → %s\n",
		r.Expert, r.Step, humanBytes(r.Tokens), plural(r.Docs, "document"), r.Loss, r.Checkpoint)
	var why []string
	switch r.Stop {
	case train.StopBudget:
		return line
	case train.StopIdle:
		why = append(why, fmt.Sprintf("no input for %s (--exit-on-idle)", idle))
	case train.StopInterrupted:
		why = append(why, "interrupted")
	}
	if budget > 0 {
		why = append(why, fmt.Sprintf("below the budget (--tokens %s)", humanBytes(budget)))
	}
	if r.Pending > 0 {
		why = append(why, fmt.Sprintf("%s applied are not trained yet: the packer holds them until each of its lanes has a "+
			"full window (a long document fills one lane while the others wait), and trains them when more input comes", humanBytes(r.Pending)))
	}
	if len(why) == 0 {
		return line
	}
	return line + "  stopped: " + strings.Join(why, "; ") + "\n"
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

// shortFloat returns the float64 that prints as the shortest decimal of x
// (0.001, not float64(float32(0.001)) = 0.0010000000474974513), for the
// default of a float64 flag whose value ends up a float32: converted back,
// it is x again.
func shortFloat(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}
