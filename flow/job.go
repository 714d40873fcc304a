package flow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
	"github.com/domainflow/domainflow/stages/ingest"
	"github.com/domainflow/domainflow/stages/train"
)

// The consumer groups of the job's in-process stages.
const (
	jobEmbedGroup   = "run-embed"
	jobClusterGroup = "run-cluster"
	jobStage        = "run" // the dead-letter stage of rejected input records
)

// Job is the whole job of `pipeline run`, in process: split the input into
// training and held-out documents, ingest the training ones into docs.raw,
// fit a featurizer and a balanced k-means router on them, run the embedding
// and routing stages until every document is routed to its domain topic or
// dead-lettered, train a dense seed on the mixed stream, branch one expert per
// domain from it, continue the dense model for the same total compute (the
// c-BTM baseline), and evaluate every expert, the dense model and router
// mixtures on the held-out documents.
//
// The job is resumable: Run with the same Out after a kill at any point
// completes it, ingesting nothing twice, with final experts bit-identical to
// an uninterrupted run (same machine and Threads; Partitions 1 keeps the
// routing order fixed).
//
// Start from DefaultJob: several fields take 0 or false as a setting of
// their own (no seed, no hold-out, no baseline), so the zero Job is not
// `pipeline run`'s defaults.
type Job struct {
	// Inputs are the input files (see schemas.OpenInput); "-" reads JSON
	// lines from Stdin.
	Inputs []string
	Stdin  io.Reader
	// TextField and IDField name the input fields that hold the text and
	// the id (Parquet columns, JSON members; see schemas.Limits). Default
	// "text" and "id".
	TextField, IDField string
	// Out is the output dir: broker data, router, experts, held-out set,
	// summary.json.
	Out string
	// Client reaches the Kafka cluster to run on; nil starts an embedded
	// durable broker with its data in Out/broker.
	Client *pipeline.ClientConfig
	// K is the number of domains.
	K int
	// Expert names the expert size (train.ConfigNames).
	Expert string
	// TokensPerDomain is each domain expert's training budget in bytes.
	TokensPerDomain int64
	// SeedTokens is the dense seed's budget; 0 trains no seed (the experts
	// start from scratch).
	SeedTokens int64
	// Baseline also continues the dense model for K × TokensPerDomain.
	Baseline bool
	// SkipSeen: the experts skip the documents the seed trained on.
	SkipSeen bool
	// Train trains and evaluates; false stops once every document is routed.
	Train bool
	// Featurizer is the featurizer kind.
	Featurizer embed.Kind
	// Balanced domains (exact balance at fit, balanced streaming routing).
	Balanced bool
	// Partitions of the topics.
	Partitions int
	// Heldout is the fraction of each source held out for evaluation.
	Heldout float64
	// EvalDocs is how many held-out documents are evaluated (0: all), and
	// EvalDocBytes how many leading bytes of each (0: all).
	EvalDocs, EvalDocBytes int
	// Threads of the training (0: all CPUs).
	Threads int
	// Seed of the split-independent randomness (k-means, model init).
	Seed uint64
	// Then, when set, are the input files of a second corpus that arrives
	// after the first is routed and trained on, with growth on (Grow): new
	// domains grow from its novel documents, new experts are trained for
	// them (the old ones are not retrained), and every expert and the
	// mixture are evaluated on the held-out documents of both corpora
	// (Summary.Then). They are read with the same TextField and IDField as
	// Inputs.
	Then []string
	// Grow configures the growth of the second phase (Seed is the job's).
	Grow cluster.GrowConfig
	// Novelty is the routing stage's novelty rule (default: the zero
	// rule, see cluster.NoveltyRule): what the second phase parks.
	Novelty cluster.NoveltyRule
	// NewExpertInit is how the new domains' experts are initialized.
	// Default (""): InitSeed.
	NewExpertInit InitStrategy
	// ThenFrozen routes the second corpus without growth (its novel
	// documents go to the nearest old domains, as before growth existed),
	// and the old experts go on training on their topics for
	// ThenExtraTokens more bytes in all, split evenly: the frozen system
	// growth is measured against.
	ThenFrozen      bool
	ThenExtraTokens int64
	// AllowUntrained lets Run succeed when a model (the seed, an expert,
	// the dense baseline) trained on 0 bytes: its data is smaller than one
	// training step. By default Run then returns ErrUntrained, once the
	// summary is written.
	AllowUntrained bool
	// Logger gets the job's and its stages' log lines. Default:
	// slog.Default().
	Logger *slog.Logger
	// Progress, when set, is told how far each phase has come (see
	// Progress): a few times a second while a phase runs, and once at its
	// end. It is called from one goroutine at a time and should return
	// quickly. Default: nil, no reports.
	Progress func(Progress)

	prog   *progressReporter // Progress, while Run runs
	phases *jobPhases        // while Run runs
}

// DefaultJob is `pipeline run` with no flags: the demo corpus
// testdata/mixed-small.jsonl.gz (relative to the working directory), k = 4,
// tiny experts, a 50,000-byte seed, 150,000 bytes per domain, the dense
// baseline, tf-idf, balanced domains, 1 partition, 10% held out, 200
// documents of 2048 bytes evaluated, output in run/.
func DefaultJob() Job {
	return Job{
		Inputs: []string{DefaultJobInput}, Out: "run", K: 4, Expert: "tiny", TokensPerDomain: 150000, SeedTokens: 50000,
		Baseline: true, Train: true, Featurizer: embed.KindTfidf, Balanced: true, Partitions: 1, Heldout: 0.1,
		EvalDocs: 200, EvalDocBytes: 2048, Seed: 1,
	}
}

// DefaultJobInput is the demo corpus DefaultJob reads.
const DefaultJobInput = "testdata/mixed-small.jsonl.gz"

// ErrJobConfig marks a Job that cannot run as configured.
var ErrJobConfig = errors.New("job configuration")

// ErrUntrained marks a Job whose models trained on nothing (see
// Job.AllowUntrained): a summary with such experts would report them as
// trained.
var ErrUntrained = errors.New("trained on 0 bytes")

// ErrInterrupted marks a Job whose ctx ended before it completed: Run
// stops at the end of the phase it was in (the trainers checkpoint) and
// starts no later phase. What the job did is kept in Out; Run with the same
// Out resumes it. The error also wraps the ctx's cause (context.Canceled
// when ctx was cancelled).
var ErrInterrupted = errors.New("interrupted")

// interruptedError is Run's error when its ctx ended: after phase, or
// with the error err of the phase that ctx's end broke off.
type interruptedError struct {
	phase string // the last phase that ended, "" before the first
	cause error  // context.Cause of the job's ctx
	err   error  // the error the interrupted phase returned; nil when it ended
}

func (e *interruptedError) Error() string {
	msg := "interrupted"
	if e.phase != "" {
		msg += " after " + e.phase
	}
	if e.err != nil {
		return msg + ": " + e.err.Error()
	}
	return msg
}

func (e *interruptedError) Is(target error) bool { return target == ErrInterrupted }

func (e *interruptedError) Unwrap() []error {
	if e.err == nil {
		return []error{e.cause}
	}
	return []error{e.cause, e.err}
}

// jobPhases tracks the phases of a Run for its interruption: the last one
// that ended.
type jobPhases struct {
	ctx  context.Context
	last string
}

// ended records the end of phase and returns the interruption when ctx has
// ended: the job then starts no later phase.
func (p *jobPhases) ended(phase string) error {
	p.last = phase
	return p.interrupted(nil)
}

// interrupted returns the interruption, wrapping err, when ctx has ended,
// else nil.
func (p *jobPhases) interrupted(err error) error {
	if p.ctx.Err() == nil {
		return nil
	}
	return &interruptedError{phase: p.last, cause: context.Cause(p.ctx), err: err}
}

// Validate checks the settings; its errors wrap ErrJobConfig.
func (j *Job) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrJobConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case j.K < 1 || j.TokensPerDomain < 1 || j.SeedTokens < 0 || j.Partitions < 1 || j.Heldout < 0 || j.Heldout >= 1 || j.EvalDocs < 0:
		return bad("--k, --tokens-per-domain and --partitions must be at least 1, --seed-tokens not negative, --heldout in [0, 1)")
	case j.Out == "":
		return bad("no output dir")
	case len(j.Inputs) == 0:
		return bad("no input")
	case cmp.Or(j.TextField, schemas.ColText) == cmp.Or(j.IDField, schemas.ColID):
		return bad("--text-field and --id-field both name %q", cmp.Or(j.TextField, schemas.ColText))
	}
	if _, err := train.ConfigByName(j.Expert); err != nil {
		return bad("--expert: %v", err)
	}
	if _, ok := embed.Lookup(j.Featurizer); !ok {
		return bad("--featurizer: unknown featurizer %q", j.Featurizer)
	}
	if err := j.Novelty.Validate(); err != nil {
		return bad("%v", err)
	}
	if len(j.Then) > 0 {
		if err := j.Grow.Validate(); err != nil {
			return bad("%v", err)
		}
		if j.NewExpertInit != "" && !slices.Contains(InitStrategies, j.NewExpertInit) {
			return bad("--init-new %q: want seed, nearest or average", j.NewExpertInit)
		}
		if j.ThenExtraTokens < 0 {
			return bad("--then-extra-tokens must not be negative")
		}
	}
	return nil
}

// JobDomain is one domain of the job's summary.
type JobDomain struct {
	ID int `json:"id"`
	// Size is the number of documents routed to the domain during the run
	// (each input document once), and SizeAtFit the number of documents the
	// router's k-means gave it when it was fitted (0 for a domain the
	// router did not have at fit, such as one grown later). The two differ:
	// the stream is routed with balanced streaming routing, not the fit's
	// exact assignment.
	Size      int64    `json:"size"`
	SizeAtFit int64    `json:"size_at_fit"`
	TopTerms  []string `json:"top_terms"`
	// Tokens is the number of bytes the domain's expert trained on (the
	// experts are byte-level: one token is one byte; the name is kept for
	// compatibility).
	Tokens int64 `json:"tokens"`
	// Loss is the expert's training loss in nats per byte, the mean of
	// its last (up to) 50 steps (train.RecentLoss); lower is better. It
	// is not the held-out bits per byte of JobEval: 1 nat is 1.4427 bits,
	// and training text is not held-out text.
	Loss float64 `json:"loss"`
	// Sources counts the documents routed to the domain by their "source"
	// field ("" for documents without one): which sources the domain holds.
	// Absent when the domain topics could not be read.
	Sources map[string]int64 `json:"sources,omitempty"`
}

// JobSettings are the settings a Job ran with (Summary.Settings), named as
// the flags of `pipeline run`.
type JobSettings struct {
	Inputs []string `json:"inputs"`
	Then   []string `json:"then,omitempty"`
	// Brokers is empty for the embedded broker.
	Brokers []string `json:"brokers,omitempty"`
	K       int      `json:"k"`
	Expert  string   `json:"expert"`
	// TokensPerDomain and SeedTokens are training bytes.
	TokensPerDomain int64   `json:"tokens_per_domain"`
	SeedTokens      int64   `json:"seed_tokens"`
	Baseline        bool    `json:"baseline"`
	SkipSeen        bool    `json:"skip_seen"`
	Featurizer      string  `json:"featurizer"`
	Balanced        bool    `json:"balanced"`
	Partitions      int     `json:"partitions"`
	Heldout         float64 `json:"heldout"`
	EvalDocs        int     `json:"eval_docs"`
	EvalDocBytes    int     `json:"eval_doc_bytes"`
	Threads         int     `json:"threads"`
	Seed            uint64  `json:"seed"`
}

// settings returns j's JobSettings.
func (j *Job) settings() JobSettings {
	s := JobSettings{Inputs: j.Inputs, Then: j.Then, K: j.K, Expert: j.Expert, TokensPerDomain: j.TokensPerDomain,
		SeedTokens: j.SeedTokens, Baseline: j.Baseline, SkipSeen: j.SkipSeen, Featurizer: string(j.Featurizer),
		Balanced: j.Balanced, Partitions: j.Partitions, Heldout: j.Heldout, EvalDocs: j.EvalDocs,
		EvalDocBytes: j.EvalDocBytes, Threads: j.Threads, Seed: j.Seed}
	if j.Client != nil {
		s.Brokers = j.Client.Brokers
	}
	return s
}

// JobEval is the evaluation part of the job's summary: bits per byte on
// the held-out documents (lower is better).
type JobEval struct {
	DenseBPB   *float64           `json:"dense_bpb"`
	SeedBPB    *float64           `json:"seed_bpb,omitempty"`
	ExpertBPB  []ExpertBPB        `json:"expert_bpb"`
	MixtureBPB map[string]float64 `json:"mixture_bpb"`
}

// Summary is what a Job did: `pipeline run --json` prints it, and Run
// writes it to Out/summary.json.
type Summary struct {
	DocsIn         int64 `json:"docs_in"`
	DocsRouted     int64 `json:"docs_routed"`
	DocsDeadletter int64 `json:"docs_deadletter"`
	DocsHeldout    int64 `json:"docs_heldout"`
	// DocsDuplicates are the rows the embed and routing stages dropped in
	// this invocation as re-sent copies of rows they had handled (after a
	// crash): each is counted once in docs_in and routed once.
	DocsDuplicates int64 `json:"docs_duplicates"`
	// IncompleteFiles are the input files that could not be read to their
	// end: each one's records before the failure are in the run, and the
	// rest of it is one record of docs_in, dead-lettered (reason
	// truncated-input or unreadable-file).
	IncompleteFiles []ingest.IncompleteFile `json:"incomplete_files,omitempty"`
	// DeadletterReasons counts the distinct dead letters of DocsDeadletter
	// by their reason (schemas.Reason: "invalid-json", "empty-text", ...).
	DeadletterReasons map[string]int64 `json:"deadletter_reasons,omitempty"`
	// RawMessages is the number of messages on docs.raw: the documents
	// ingested, each once even when the run was killed and resumed.
	RawMessages int64       `json:"raw_messages"`
	Domains     []JobDomain `json:"domains"`
	// SeedTokens is the bytes the dense seed trained on, and DenseTokens
	// the bytes the dense baseline trained on after it (it continues from
	// the seed, on the mixed stream where the seed stopped): bytes, not
	// tokens (the names are kept for compatibility).
	SeedTokens  int64   `json:"seed_tokens"`
	DenseTokens int64   `json:"dense_tokens"`
	Eval        JobEval `json:"eval"`
	// Seconds is the job's wall seconds: InvocationSeconds, with each
	// phase this invocation found done (Resumed) counted at its Phases
	// seconds instead of the time this invocation took to find it done.
	// InvocationSeconds is the wall time of the invocation that wrote the
	// summary.
	Seconds           float64 `json:"seconds"`
	InvocationSeconds float64 `json:"invocation_seconds"`
	// Phases holds the wall seconds of each phase (split, ingest, fit,
	// route, count, train_seed, train_experts, train_dense, eval), as
	// the invocation that did its work took: a resumed run that finds a
	// phase done keeps the seconds an earlier invocation recorded for it
	// (Out/phases.json, saved as each phase ends) and lists it in Resumed.
	// A phase a resumed run finishes sums the seconds of the invocations
	// that worked on it as far as they were recorded: one stopped
	// gracefully (SIGINT) in the phase's middle records its part, one
	// killed there records nothing. Split and count, which every
	// invocation redoes, are the last invocation's.
	Phases map[string]float64 `json:"phases"`
	// Resumed lists the phases this invocation found done (their Phases
	// seconds are an earlier invocation's); empty for a run that did every
	// phase itself.
	Resumed []string `json:"resumed,omitempty"`
	// Settings are the settings of the job.
	Settings     JobSettings `json:"settings"`
	PeakRSSBytes int64       `json:"peak_rss_bytes"`
	Out          string      `json:"out"`
	// Then is the second phase (Job.Then); absent without one.
	Then *ThenSummary `json:"then,omitempty"`
}

// Run runs the job until it is done or ctx ends; see Job. When ctx ends
// first, Run stops at the end of the phase it is in, starts no later one
// and returns an error wrapping ErrInterrupted: Run with the same Out
// resumes the job.
func (j *Job) Run(ctx context.Context) (*Summary, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	j.phases = &jobPhases{ctx: ctx}
	defer func() { j.phases = nil }()
	sum, err := j.run(ctx)
	if err != nil && !errors.Is(err, ErrInterrupted) && !errors.Is(err, ErrUntrained) {
		// A phase that ctx's end broke off fails with what broke
		// (a read cancelled, ...): that is the interruption.
		if ierr := j.phases.interrupted(err); ierr != nil {
			return nil, ierr
		}
	}
	return sum, err
}

// run is Run after the validation.
func (j *Job) run(ctx context.Context) (*Summary, error) {
	if err := schemas.CheckInputs(j.Inputs); err != nil {
		return nil, err
	}
	log := j.Logger
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	j.prog = newProgressReporter(j.Progress)
	defer func() { j.prog = nil }()
	clock := newPhaseClock(j.prog, j.Out, log)
	if err := os.MkdirAll(j.Out, 0o777); err != nil {
		return nil, err
	}

	// 1. Split.
	split, err := SplitInputs(SplitConfig{Inputs: j.Inputs, Stdin: j.Stdin, Dir: j.Out, Heldout: j.Heldout,
		TextField: j.TextField, IDField: j.IDField, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("split the input: %w", err)
	}
	log.Info("input split", "train", len(split.Train), "heldout", split.Heldout, "rejected", len(split.Rejected))
	nIn := int64(len(split.Train) + len(split.Rejected))
	clock.end("split", Progress{Phase: "split", Done: nIn + int64(split.Heldout), Unit: "documents"})
	if err := j.phases.ended("split"); err != nil {
		return nil, err
	}

	// The broker.
	var cc pipeline.ClientConfig
	if j.Client != nil {
		cc = *j.Client
		if err := pipeline.CheckBrokers(ctx, cc, 5*time.Second); err != nil {
			return nil, err
		}
	} else {
		b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0", DataDir: filepath.Join(j.Out, "broker"),
			Partitions: j.Partitions, MaxMessageBytes: cluster.RouterTopicMaxBytes + 1<<20})
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		defer b.Close()
		cc = b.Client()
		log.Info("embedded broker", "addr", b.Addr(), "data", filepath.Join(j.Out, "broker"))
	}
	cc.Logger = log

	// 2. Ingest, resuming where a killed run stopped.
	ingested, err := j.ingest(ctx, cc, split, nil, 0, log)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	clock.end("ingest", Progress{Phase: "ingest", Done: nIn, Total: nIn, Unit: "documents", Resumed: ingested < nIn, Before: nIn - ingested})
	if err := j.phases.ended("ingest"); err != nil {
		return nil, err
	}

	// 3. Featurizer and router.
	router := filepath.Join(j.Out, "router")
	fitted := false
	if v, _ := cluster.LatestRouterVersion(router); v == 0 {
		fitted = true
		if n := len(split.Train); n < embed.DefaultFitMin {
			log.Warn("few documents: the featurizer and the domains are fitted on them all the same, and will be poor", "docs", n, "advised", embed.DefaultFitMin)
		}
		if err := j.fit(ctx, split, router, log); err != nil {
			return nil, fmt.Errorf("fit: %w", err)
		}
	}
	r, err := LoadRouter(router)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	rm := r.Model
	nTrain := int64(len(split.Train))
	fit := Progress{Phase: "fit", Done: nTrain, Unit: "documents"}
	if !fitted {
		fit.Resumed, fit.Before = true, nTrain
	}
	clock.end("fit", fit)
	if err := j.phases.ended("fit"); err != nil {
		return nil, err
	}

	// 4. Route everything.
	var dups atomic.Int64
	routedBefore, err := j.route(ctx, cc, r.State, router, nil, &dups, log)
	if err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	routedBefore = min(routedBefore, nTrain)
	clock.end("route", Progress{Phase: "route", Done: nTrain, Total: nTrain, Unit: "documents", Resumed: routedBefore > 0, Before: routedBefore})
	if err := j.phases.ended("route"); err != nil {
		return nil, err
	}
	counts, dead, reasons, err := jobCounts(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	sources, err := domainSources(ctx, cc, rm.IDs, split.Train)
	if err != nil {
		log.Warn("the domains' sources not counted", "err", err)
	}
	clock.end("count", Progress{Phase: "count"})
	if err := j.phases.ended("count"); err != nil {
		return nil, err
	}

	// 5 and 6. Train (seed, experts, dense baseline) and evaluate.
	var tr jobTraining
	if j.Train {
		if tr, err = j.trainEval(ctx, cc, rm, split, router, clock, log); err != nil {
			return nil, err
		}
	}

	// Summary.
	sum := &Summary{DocsIn: nIn, DocsDeadletter: dead, DocsHeldout: int64(split.Heldout),
		SeedTokens: tr.seed.Tokens, DenseTokens: tr.dense.Tokens, Out: j.Out, Phases: clock.times, Resumed: clock.resumed,
		Eval: jobEval(&tr.eval), IncompleteFiles: split.Incomplete, DocsDuplicates: dups.Load(),
		DeadletterReasons: reasons, Settings: j.settings()}
	fitSizes := map[int]int64{}
	for _, dm := range rm.Domains() {
		fitSizes[dm.ID] = int64(dm.Size)
	}
	byExpert := map[string]train.ExpertReport{}
	for _, r := range tr.experts {
		byExpert[r.Expert] = r
	}
	for i, id := range rm.IDs {
		d := JobDomain{ID: id, Size: counts[id], SizeAtFit: fitSizes[id], TopTerms: []string{}, Sources: sources[id]}
		if rm.TopTerms != nil && rm.TopTerms[i] != nil {
			d.TopTerms = rm.TopTerms[i]
		}
		if r, ok := byExpert[strconv.Itoa(id)]; ok {
			d.Tokens, d.Loss = r.Tokens, r.Loss
		}
		sum.DocsRouted += d.Size
		sum.Domains = append(sum.Domains, d)
	}
	if len(j.Then) > 0 {
		if err := j.phases.ended("eval"); err != nil {
			return nil, err
		}
		j.prog.setPrefix("then: ")
		if sum.Then, err = j.then(ctx, cc, split, rm, log); err != nil {
			return nil, err
		}
	}
	if end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw); err == nil {
		for _, e := range end {
			sum.RawMessages += e
		}
	}
	// The summary is written only for a job that completed.
	if err := j.phases.interrupted(nil); err != nil {
		return nil, err
	}
	sum.InvocationSeconds = time.Since(start).Seconds()
	sum.Seconds = clock.job(sum.InvocationSeconds)
	sum.PeakRSSBytes = PeakRSSBytes()
	if b, err := json.MarshalIndent(sum, "", "  "); err == nil {
		_ = schemas.WriteFileAtomic(filepath.Join(j.Out, "summary.json"), func(fh *os.File) error { _, err := fh.Write(b); return err })
	}
	if sum.DocsRouted+sum.DocsDeadletter != sum.DocsIn {
		log.Error("documents unaccounted for", "in", sum.DocsIn, "routed", sum.DocsRouted, "deadletter", sum.DocsDeadletter)
	}
	if j.Train {
		if err := j.checkTrained(tr, split, log); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// checkTrained returns ErrUntrained, saying what to do, when a model of tr
// trained on 0 bytes, unless j.AllowUntrained (then it warns); it warns
// when nothing was held out to evaluate on.
func (j *Job) checkTrained(tr jobTraining, split *Split, log *slog.Logger) error {
	if split.Heldout == 0 {
		log.Warn("no document was held out: nothing is evaluated (give more documents per source, or a larger --heldout)", "heldout", j.Heldout)
	}
	var none []string
	if j.SeedTokens > 0 && tr.seed.Tokens == 0 {
		none = append(none, "the seed")
	}
	for _, e := range tr.experts {
		if e.Tokens == 0 {
			none = append(none, "expert "+e.Expert)
		}
	}
	if j.Baseline && tr.dense.Tokens == 0 {
		none = append(none, "the dense baseline")
	}
	if len(none) == 0 {
		return nil
	}
	m, _ := train.ConfigByName(j.Expert)
	why := fmt.Sprintf("%d training documents, and a training step of the %s expert takes %d sequences of %d bytes", len(split.Train), j.Expert, m.Batch, m.Ctx)
	if j.AllowUntrained {
		log.Warn("models trained on 0 bytes (allowed)", "models", strings.Join(none, ", "), "docs", len(split.Train))
		return nil
	}
	return fmt.Errorf("%s %w: %s; give more documents (a few hundred at least), fewer domains (--k) or a smaller expert, or --allow-untrained to accept untrained models", strings.Join(none, ", "), ErrUntrained, why)
}

// ingest produces the training documents to docs.raw (document i to
// partition i mod P) and the rejected records to the dead-letter topic,
// skipping what a killed run already delivered: per partition, its end
// offset is base (nil: 0) plus the number of its documents already there,
// and the job's dead letters are deadBase plus the rejected records already
// there (base and deadBase: what an earlier phase delivered). It returns
// how many records (documents and dead letters) it delivered itself.
func (j *Job) ingest(ctx context.Context, cc pipeline.ClientConfig, s *Split, base []int64, deadBase int, log *slog.Logger) (delivered int64, err error) {
	err = pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: j.Partitions},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: j.Partitions})
	if err != nil {
		return 0, err
	}
	n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return 0, err
	}
	end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return 0, err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	var batch []pipeline.Message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := sink.Write(ctx, batch...)
		batch = batch[:0]
		return err
	}
	headers := pipeline.ContentHeaders(schemas.ContentTypeJSON)
	seen := make([]int64, n)
	if base != nil {
		copy(seen, base)
	}
	sent := 0
	for i, d := range s.Train {
		p := i % n
		seen[p]++
		if seen[p] <= end[p] {
			continue
		}
		v, err := schemas.AppendJSON(nil, d)
		if err != nil {
			return 0, err
		}
		batch = append(batch, pipeline.Message{Topic: pipeline.TopicRaw, Partition: p, Key: []byte(d.ID), Value: v, Headers: headers})
		sent++
		if len(batch) >= 1024 {
			if err := flush(); err != nil {
				return 0, err
			}
			j.prog.report(Progress{Phase: "ingest", Done: int64(i + 1), Total: int64(len(s.Train)), Unit: "documents"})
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	// Rejected records: those not dead-lettered yet (counted by stage).
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return 0, err
	}
	already := 0
	for _, m := range msgs {
		if pipeline.HeaderValue(m, pipeline.HeaderStage) == jobStage {
			already++
		}
	}
	rejected := s.Rejected[min(max(already-deadBase, 0), len(s.Rejected)):]
	for i, rec := range rejected {
		batch = append(batch, pipeline.DeadLetterSpec{Topic: pipeline.TopicDeadLetter, Partition: i % n, Value: rec.Raw,
			Reason: schemas.ReasonOf(rec.Err), Err: rec.Err.Error(), Stage: jobStage, OriginTopic: rec.Source}.Message())
	}
	if err := flush(); err != nil {
		return 0, err
	}
	log.Info("ingested", "sent", sent, "already", len(s.Train)-sent, "dead_letters", len(s.Rejected))
	return int64(sent + len(rejected)), nil
}

// fit fits the featurizer and the router on the training documents (as
// `pipeline cluster fit` with its defaults does on Out/train.jsonl.gz).
func (j *Job) fit(ctx context.Context, s *Split, router string, log *slog.Logger) error {
	texts := make([]string, len(s.Train))
	ids := make([]string, len(s.Train))
	for i, d := range s.Train {
		texts[i], ids[i] = d.Text, d.ID
	}
	read := 0
	opt := embed.DefaultFitOptions()
	opt.LSA.Seed = j.Seed
	_, err := FitRouter(ctx, FitRouterConfig{
		Out: router, K: j.K, Featurizer: j.Featurizer, FitOptions: opt,
		Read: func(n int) ([]string, error) {
			if read >= len(texts) {
				return nil, io.EOF
			}
			chunk := texts[read:min(len(texts), read+n)]
			read += len(chunk)
			return chunk, nil
		},
		IDs:     func() []string { return ids[:read] },
		Cluster: cluster.FitConfig{Unbalanced: !j.Balanced, Restarts: 3, MaxIter: 100, Tol: 1e-4, Seed: j.Seed},
		Logger:  log.With("cmd", "cluster fit"),
	})
	return err
}

// route runs the embedding and routing stages in process until every
// document of docs.raw has been featurized and every feature row routed
// (their groups' committed offsets reach the topics' ends).
//
// It adds the duplicates the two stages dropped (rows re-sent after a
// crash of this run, handled once) to dups, and returns how many documents
// were routed before it began (by an earlier invocation of a resumed run).
// With grow set the routing stage grows (cluster.RunConfig.Grow), and the
// mover must also have committed every parked row.
func (j *Job) route(ctx context.Context, cc pipeline.ClientConfig, state *embed.State, router string, grow *cluster.GrowConfig, dups *atomic.Int64, log *slog.Logger) (before int64, err error) {
	sctx, stop := context.WithCancel(ctx)
	// The routing stage's gauges: its routed counts for the progress.
	reg := prometheus.NewRegistry()
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	errs := make(chan error, 2)
	rt, err := cluster.NewRouterTopic(cc, log)
	if err != nil {
		return before, err
	}
	defer rt.Close()
	stageLog := log
	startStages := func() {
		elog := stageLog.With("cmd", "embed")
		wg.Go(func() {
			err := embed.RunStage(sctx, embed.StageConfig{Client: cc, StateDir: router, State: state, Logger: elog,
				Run: func(ctx context.Context, st pipeline.Stage) error {
					run, err := pipeline.RunStage(ctx, pipeline.StageProcessConfig{Name: "embed", Client: cc, InputTopic: pipeline.TopicRaw,
						Group: jobEmbedGroup, OutputTopic: pipeline.TopicFeatures, Stage: st, OneToOne: true,
						Linger: 20 * time.Millisecond, Logger: elog})
					dups.Add(run.Dropped)
					return err
				}})
			if err != nil && sctx.Err() == nil {
				errs <- fmt.Errorf("embed stage: %w", err)
			}
		})
		clog := stageLog.With("cmd", "cluster")
		wg.Go(func() {
			run, err := cluster.RunStage(sctx, cluster.RunConfig{Client: cc, InputTopic: pipeline.TopicFeatures, Group: jobClusterGroup,
				RouterDir: router, Rebuild: true, HistoryPath: filepath.Join(j.Out, HistoryFile), Registerer: reg,
				Linger: 20 * time.Millisecond, Featurizer: RoutingFeaturizer(cc, clog), Logger: clog, Grow: grow, Novelty: j.Novelty})
			dups.Add(run.Dropped)
			if err != nil && sctx.Err() == nil {
				errs <- fmt.Errorf("cluster stage: %w", err)
			}
		})
	}
	done := func(group, topic string) (bool, error) {
		end, err := pipeline.EndOffsets(ctx, cc, topic)
		if err != nil {
			return false, nil //nolint:nilerr // the topic may not exist yet
		}
		com, err := pipeline.CommittedOffsets(ctx, cc, group, topic, len(end))
		if err != nil {
			return false, err
		}
		for p := range end {
			if end[p] > 0 && com[p] < end[p] {
				return false, nil
			}
		}
		return true, nil
	}
	// The routing stage rebuilds its counts when it starts and publishes
	// them at once, then again when it stops. Counts on router.models from
	// before this start may be stale (a run killed between a periodic save
	// and its final one), so the stages run until the routing stage has
	// published from this start, even when a resumed run has nothing left to
	// route.
	stateKey := cluster.RoutingStateKey(jobClusterGroup)
	stateOffset := func() int64 { // of the latest counts; -1 for none
		latest, err := rt.Latest(ctx)
		if err != nil {
			return -1
		}
		if m, ok := latest[stateKey]; ok {
			return m.Offset
		}
		return -1
	}
	countsBefore := stateOffset()
	// A resumed run whose routing finished still runs the stages (above),
	// but they have nothing to report: their start and stop lines (in=0)
	// are kept below Info.
	//
	// What was routed before: all of docs.raw then, else the counts the
	// routing stage saved last (a lower bound: it saves them periodically).
	if counts, ok, err := rt.Counts(ctx, jobClusterGroup); err == nil && ok {
		for _, n := range counts {
			before += n
		}
	}
	if e, err := done(jobEmbedGroup, pipeline.TopicRaw); err == nil && e {
		if c, err := done(jobClusterGroup, pipeline.TopicFeatures); err == nil && c {
			log.Info("every document was routed before: the stages only refresh the routed counts")
			stageLog = slog.New(minLevel{slog.LevelWarn, log.Handler()})
			if end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw); err == nil {
				before = 0
				for _, e := range end {
					before += e
				}
			}
		}
	}
	startStages()
	last := time.Now()
	for {
		select {
		case err := <-errs:
			return before, err
		case <-ctx.Done():
			return before, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		e, err := done(jobEmbedGroup, pipeline.TopicRaw)
		if err != nil {
			return before, err
		}
		if e {
			c, err := done(jobClusterGroup, pipeline.TopicFeatures)
			if err != nil {
				return before, err
			}
			if c && grow != nil {
				c, err = done(cluster.MoverGroup(jobClusterGroup), pipeline.TopicNovel)
				if err != nil {
					return before, err
				}
			}
			if c {
				// The embed stage committed everything, so the features
				// topic is complete; check it once more after the routing
				// stage's commit.
				if e2, _ := done(jobEmbedGroup, pipeline.TopicRaw); !e2 {
					continue
				}
				// Stop once the routing stage has published counts since
				// it started, then check that it saved its final ones.
				if atStop := stateOffset(); atStop > countsBefore {
					stop()
					wg.Wait()
					if stateOffset() <= atStop {
						return before, errors.New("the routing stage stopped without saving its final counts on " + pipeline.TopicRouterModels)
					}
					return before, nil
				}
			}
		}
		if j.prog != nil {
			if end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw); err == nil {
				var total int64
				for _, e := range end {
					total += e
				}
				j.prog.report(Progress{Phase: "route", Done: min(routedDocuments(reg), total), Total: total, Unit: "documents"})
			}
		}
		if time.Since(last) > 10*time.Second {
			log.Info("routing…")
			last = time.Now()
		}
	}
}

// jobCounts returns the documents routed per domain id — the routing
// stage's counts, saved on router.models when it stopped: it drops
// duplicates and rebuilds its counts exactly after a restart, so they count
// distinct input records — and the distinct dead letters of the job's
// ingest and stages, in all and by reason.
func jobCounts(ctx context.Context, cc pipeline.ClientConfig) (map[int]int64, int64, map[string]int64, error) {
	rt, err := cluster.NewRouterTopic(cc, nil)
	if err != nil {
		return nil, 0, nil, err
	}
	defer rt.Close()
	counts, ok, err := rt.Counts(ctx, jobClusterGroup)
	if err != nil {
		return nil, 0, nil, err
	}
	if !ok {
		return nil, 0, nil, errors.New("the routing stage saved no counts on " + pipeline.TopicRouterModels)
	}
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return nil, 0, nil, err
	}
	reasons := map[string]int64{}
	type pos struct {
		origin schemas.Origin
		stage  string
	}
	var dead int64
	seen := map[pos]bool{}
	for i, m := range msgs {
		dl := pipeline.ParseDeadLetter(m)
		if dl.Stage == "train" || dl.Stage == "archive" {
			continue // dead letters of routed messages, not of input records
		}
		k := pos{origin: dl.Origin, stage: dl.Stage}
		// An absent header reads as 0, as it always has here.
		k.origin.Partition, k.origin.Offset, k.origin.Row = max(k.origin.Partition, 0), max(k.origin.Offset, 0), max(k.origin.Row, 0)
		if dl.Stage == jobStage {
			k.origin.Offset = int64(i) // input records: each dead letter is one record
		}
		if !seen[k] {
			seen[k] = true
			dead++
			reasons[string(cmp.Or(dl.Reason, "unknown"))]++
		}
	}
	return counts, dead, reasons, nil
}

// jobTraining is what the training and evaluation phases report.
type jobTraining struct {
	seed, dense train.ExpertReport
	experts     []train.ExpertReport
	eval        EvalReport
}

// trainConfig is the job's training consumer configuration with a budget
// of tokens bytes per expert (the schedule follows the budget).
func (j *Job) trainConfig(cc pipeline.ClientConfig, tokens int64, log *slog.Logger) (train.ConsumerConfig, error) {
	model, err := train.ConfigByName(j.Expert)
	if err != nil {
		return train.ConsumerConfig{}, err
	}
	opt := train.DefaultOptConfig()
	opt.TotalSteps = 0 // from the token budget
	// The experts' positions also go to consumer groups train.<expert>, for
	// Kafka's tools (as pipeline train's default --monitor-group).
	return train.ConsumerConfig{Client: cc, Out: j.Out, Model: model, Opt: opt, Seed: j.Seed, ExitOnIdle: time.Second,
		Threads: j.Threads, Tokens: tokens, MonitorGroup: "train", Logger: log.With("cmd", "train")}, nil
}

// trainEval trains the dense seed, the domain experts branched from it and
// the dense baseline, then evaluates them on the held-out documents.
func (j *Job) trainEval(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel, split *Split, router string, clock *phaseClock, log *slog.Logger) (jobTraining, error) {
	var r jobTraining
	base, err := j.trainConfig(cc, 0, log)
	if err != nil {
		return r, err
	}
	// Progress: the consumers' training bytes, read from their metrics,
	// and each expert's end.
	watch := func(phase string, cfg *train.ConsumerConfig, budgets map[string]int64) func() {
		if j.prog == nil {
			return func() {}
		}
		reg := prometheus.NewRegistry()
		cfg.Registerer = reg
		var stop func()
		cfg.Stopped, stop = j.prog.watchTraining(ctx, phase, reg, budgets)
		return stop
	}
	// trained is the end of a training phase: reps' bytes of budget.
	trained := func(phase string, budget int64, reps ...train.ExpertReport) Progress {
		p := Progress{Phase: phase, Total: budget, Unit: "bytes"}
		for _, e := range reps {
			p.Done += e.Tokens
			p.Before += e.TokensAtStart
		}
		p.Resumed = p.Before > 0
		return p
	}
	one := func(name, topic string, tokens int64, cfg train.ConsumerConfig) (train.ExpertReport, error) {
		cfg.Tokens = tokens
		stop := watch("train "+name, &cfg, map[string]int64{name: tokens})
		defer stop()
		return train.RunExpert(ctx, cfg, name, topic)
	}
	cfg := base
	if j.SeedTokens > 0 {
		if r.seed, err = one("seed", pipeline.TopicRaw, j.SeedTokens, base); err != nil {
			return r, fmt.Errorf("seed: %w", err)
		}
		init, err := train.LoadSeed(train.ExpertDir(j.Out, "seed"))
		if err != nil {
			return r, fmt.Errorf("seed: %w", err)
		}
		cfg.Init = init
		clock.end("train_seed", trained("train seed", j.SeedTokens, r.seed))
		if err := j.phases.ended("train seed"); err != nil {
			return r, err
		}
	}
	ecfg := cfg
	ecfg.Tokens = j.TokensPerDomain
	ecfg.SkipSeen = j.SkipSeen && cfg.Init != nil
	stop := watch("train experts", &ecfg, expertBudgets(rm.IDs, j.TokensPerDomain))
	r.experts, err = train.RunDomains(ctx, ecfg, rm.IDs)
	stop()
	if err != nil {
		return r, fmt.Errorf("experts: %w", err)
	}
	clock.end("train_experts", trained("train experts", int64(len(rm.IDs))*j.TokensPerDomain, r.experts...))
	if err := j.phases.ended("train experts"); err != nil {
		return r, err
	}
	if j.Baseline {
		dcfg := cfg
		dcfg.Continue = cfg.Init != nil
		budget := int64(rm.K()) * j.TokensPerDomain
		if r.dense, err = one("dense", pipeline.TopicRaw, budget, dcfg); err != nil {
			return r, fmt.Errorf("dense baseline: %w", err)
		}
		clock.end("train_dense", trained("train dense", budget, r.dense))
		if err := j.phases.ended("train dense"); err != nil {
			return r, err
		}
	}

	// 6. Evaluate, unless a resumed run's models and held-out set are
	// those of the evaluation saved last time.
	if split.Heldout > 0 {
		key := j.evalKey(r, router, split.HeldoutTexts)
		if rep, ok := loadEval(j.Out, key); ok {
			r.eval = *rep
			log.Info("evaluation reused: no model changed since it ran", "file", filepath.Join(j.Out, evalCacheFile))
			n := int64(rep.Docs)
			clock.end("eval", Progress{Phase: "eval", Done: n, Total: n, Unit: "documents", Resumed: true, Before: n})
			return r, nil
		}
		rep, err := j.evaluate(ctx, router, split.HeldoutTexts, log)
		if err != nil {
			return r, err
		}
		r.eval = *rep
		if err := saveEval(j.Out, key, rep); err != nil {
			log.Warn("evaluation not saved for a resumed run", "err", err)
		}
		clock.end("eval", Progress{Phase: "eval", Done: int64(rep.Docs), Total: int64(rep.Docs), Unit: "documents"})
	}
	return r, nil
}

// evalCacheFile holds the job's last evaluation with the key of what it
// evaluated (evalKey), so that a resumed run with nothing left to train
// does not evaluate again.
const evalCacheFile = "eval-cache.json"

// evalKey identifies what an evaluation of the job depends on: every
// model's parameters, the router version, the held-out texts and the
// evaluation settings.
func (j *Job) evalKey(r jobTraining, router string, texts []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "seed %s\ndense %s\n", r.seed.ParamsSHA256, r.dense.ParamsSHA256)
	for _, e := range r.experts {
		fmt.Fprintf(h, "expert %s %s\n", e.Expert, e.ParamsSHA256)
	}
	v, _ := cluster.LatestRouterVersion(router)
	fmt.Fprintf(h, "router %d docs %d bytes %d texts %d\n", v, j.EvalDocs, j.EvalDocBytes, len(texts))
	for _, t := range texts {
		fmt.Fprintf(h, "%d:%s", len(t), t)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type evalCache struct {
	Key  string      `json:"key"`
	Eval *EvalReport `json:"eval"`
}

// loadEval returns the saved evaluation of key, if there is one.
func loadEval(out, key string) (*EvalReport, bool) {
	b, err := os.ReadFile(filepath.Join(out, evalCacheFile))
	if err != nil {
		return nil, false
	}
	var c evalCache
	if json.Unmarshal(b, &c) != nil || c.Key != key || c.Eval == nil {
		return nil, false
	}
	return c.Eval, true
}

// saveEval saves rep as the evaluation of key.
func saveEval(out, key string, rep *EvalReport) error {
	b, err := json.Marshal(evalCache{Key: key, Eval: rep})
	if err != nil {
		return err
	}
	return schemas.WriteFileAtomic(filepath.Join(out, evalCacheFile), func(f *os.File) error { _, err := f.Write(b); return err })
}

// minLevel is a slog.Handler that drops the records below level.
type minLevel struct {
	level slog.Level
	slog.Handler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}
func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.level, h.Handler.WithAttrs(as)}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.level, h.Handler.WithGroup(g)} }
