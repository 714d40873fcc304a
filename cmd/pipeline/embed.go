package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// limits are the document limits the flags set.
func (f *featurizerFlags) limits() schemas.Limits {
	return schemas.Limits{MaxTextBytes: f.maxTextBytes, MaxIDBytes: f.maxIDBytes}
}

// featurizerFlags choose and configure a featurizer; embed and cluster fit
// share them.
type featurizerFlags struct {
	kind         string
	state        string
	refit        bool
	fitSample    int
	workers      int
	maxTextBytes int
	maxIDBytes   int

	minDF, maxDF float64
	maxFeatures  int
	sublinearTF  bool
	numberToken  string
	noStopWords  bool

	hashFeatures  int
	alternateSign bool

	dims, powerIters int
	fs               *pflag.FlagSet // the flags, to tell an explicit --dims
	seed             uint64

	httpURL, httpModel      string
	httpDims, httpBatch     int
	httpConcurrency         int
	httpTimeout             time.Duration
	httpNoNormalize, http64 bool
}

// register adds the flags; withState adds --state and --refit (commands
// whose state goes elsewhere leave them out).
func (f *featurizerFlags) register(fs *pflag.FlagSet, defaultKind string, withState bool) {
	f.fs = fs
	d := embed.DefaultFitOptions() // the defaults of the flags below
	fs.StringVar(&f.kind, "featurizer", defaultKind, "`kind` of featurizer: tfidf (c-BTM's tf-idf, sparse), lsa (c-BTM's whole featurization: its tf-idf → truncated SVD → L2; dense), hashing (tf-idf over 2^18 hashed buckets), http (an /v1/embeddings service)")
	if withState {
		fs.StringVar(&f.state, "state", "", "featurizer state `dir`: the latest version there is used; when it has none, the fitted state is saved there")
		fs.BoolVar(&f.refit, "refit", false, "fit anew even when --state holds a state, and save the result as its next version")
	}
	fs.IntVar(&f.fitSample, "fit-sample", 0, "fit on the first `N` documents only (0: all of --in; on Kafka: 10000 from the head of the input topic)")
	fs.IntVar(&f.workers, "workers", d.Tfidf.Workers, "goroutines for featurization (0: one per CPU)")
	process.ByteSizeVar(fs, &f.maxTextBytes, "max-text-bytes", schemas.DefaultMaxTextBytes, "longest document text in `bytes`; longer documents are rejected as oversize")
	process.ByteSizeVar(fs, &f.maxIDBytes, "max-id-bytes", schemas.DefaultMaxIDBytes, "longest document id in `bytes`; documents with longer ids are rejected as invalid-id (keep it equal to ingest's)")
	fs.Float64Var(&f.minDF, "min-df", d.Tfidf.MinDF, "ignore terms in fewer documents than this (a count ≥ 1, or a fraction < 1)")
	fs.Float64Var(&f.maxDF, "max-df", d.Tfidf.MaxDF, "ignore terms in more documents than this (a count > 1, or a fraction ≤ 1)")
	fs.IntVar(&f.maxFeatures, "max-features", d.Tfidf.MaxFeatures, "keep only the `N` most frequent terms (0: all)")
	fs.BoolVar(&f.sublinearTF, "sublinear-tf", d.Tfidf.SublinearTF, "use 1 + ln(tf) instead of the raw term count")
	fs.StringVar(&f.numberToken, "number-token", d.Tfidf.Tokenizer.NumberToken, "replace tokens that start with a digit by this `token` (empty: keep them)")
	fs.BoolVar(&f.noStopWords, "no-stop-words", false, "keep English stop words")
	fs.IntVar(&f.hashFeatures, "hash-features", d.Hashing.Features, "hashing: number of `buckets`")
	fs.BoolVar(&f.alternateSign, "alternate-sign", d.Hashing.AlternateSign, "hashing: sign each token's count by its hash, as scikit-learn's default")
	fs.IntVar(&f.dims, "dims", d.LSA.Dims, "lsa: output dimension (by default at most the fit sample's documents and terms)")
	fs.IntVar(&f.powerIters, "power-iters", d.LSA.PowerIters, "lsa: power iterations of the randomized SVD")
	fs.Uint64Var(&f.seed, "seed", d.LSA.Seed, "lsa: random seed (the fit is deterministic for a seed)")
	fs.StringVar(&f.httpURL, "http-url", d.HTTP.URL, "http: base `URL` of the embedding service (POST URL/v1/embeddings); the API key comes from $DOMAINFLOW_EMBED_API_KEY")
	fs.StringVar(&f.httpModel, "http-model", d.HTTP.Model, "http: model `name` sent with each request")
	fs.IntVar(&f.httpDims, "http-dims", d.HTTP.Dims, "http: expected dimension (0: learn it from the first answer)")
	fs.IntVar(&f.httpBatch, "http-batch", d.HTTP.BatchSize, "http: texts per request")
	fs.IntVar(&f.httpConcurrency, "http-concurrency", d.HTTP.Concurrency, "http: requests in flight")
	fs.DurationVar(&f.httpTimeout, "http-timeout", d.HTTP.Timeout, "http: timeout of one request")
	fs.BoolVar(&f.httpNoNormalize, "http-no-normalize", !d.HTTP.Normalize, "http: keep the service's vectors as they are (default: L2-normalize)")
	fs.BoolVar(&f.http64, "http-base64", d.HTTP.Base64, `http: ask for "encoding_format":"base64"`)
}

func (f *featurizerFlags) options() (embed.Kind, embed.FitOptions, error) {
	k, err := embed.ParseKind(f.kind)
	if err != nil {
		return "", embed.FitOptions{}, usagef("%v", err)
	}
	if k == embed.KindHTTP && f.httpURL == "" {
		return "", embed.FitOptions{}, usagef("--featurizer http needs --http-url")
	}
	// DefaultFitOptions, with what the flags say (their defaults are its
	// values); tfidf and hashing share its tokenizer.
	opt := embed.DefaultFitOptions()
	tok := opt.Tfidf.Tokenizer
	tok.NumberToken = f.numberToken
	if f.noStopWords {
		tok.StopWords = nil
	}
	t := &opt.Tfidf
	t.MinDF, t.MaxDF, t.MaxFeatures, t.SublinearTF, t.Workers = f.minDF, f.maxDF, f.maxFeatures, f.sublinearTF, f.workers
	h := &opt.Hashing
	h.Features, h.AlternateSign, h.SublinearTF, h.Workers = f.hashFeatures, f.alternateSign, f.sublinearTF, f.workers
	l := &opt.LSA
	l.Dims, l.PowerIters, l.Seed, l.Workers = f.dims, f.powerIters, f.seed, f.workers
	// The default --dims shrinks to a sample smaller than it; an explicit
	// one is a requirement.
	l.ClampDims = f.fs == nil || !f.fs.Changed("dims")
	hc := &opt.HTTP
	hc.URL, hc.Model, hc.Dims, hc.BatchSize, hc.Concurrency = f.httpURL, f.httpModel, f.httpDims, f.httpBatch, f.httpConcurrency
	hc.Timeout, hc.Normalize, hc.Base64 = f.httpTimeout, !f.httpNoNormalize, f.http64
	hc.APIKey = os.Getenv("DOMAINFLOW_EMBED_API_KEY")
	return k, opt, nil
}

// existingState loads the latest state of --state unless --refit.
func (f *featurizerFlags) existingState(cmd *cobra.Command) (*embed.State, error) {
	if f.state == "" || f.refit {
		return nil, nil
	}
	v, err := embed.LatestStateVersion(f.state)
	if err != nil || v == 0 {
		return nil, err
	}
	s, err := embed.LoadState(f.state, v)
	if err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("featurizer") && string(s.Settings.Kind) != f.kind {
		return nil, usagef("--state %s holds a %s featurizer, not %s (use --refit to replace it)", f.state, s.Settings.Kind, f.kind)
	}
	return s, nil
}

// embedReport is the --json report of the offline `pipeline embed`.
type embedReport struct {
	Docs         int     `json:"docs"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	ReadSeconds  float64 `json:"read_seconds"`      // until the input was read and decoded
	FeatSeconds  float64 `json:"featurize_seconds"` // until the vectors were ready (fitting overlaps reading)
	Featurizer   string  `json:"featurizer"`
	Dim          int     `json:"dim"`
	NNZ          int64   `json:"nnz"`
	StateVersion int64   `json:"state_version"`
	Fitted       bool    `json:"fitted"`
	Rejected     int     `json:"rejected"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

type embedFlags struct {
	stage stageFlags
	feat  featurizerFlags
	in    []string
	out   string
	watch time.Duration

	fitMin     int           // stage: fewest documents to fit on
	fitTimeout time.Duration // stage: then fit on what there is

	cpuProfile, traceOut string // offline: profile the run
}

func (a *app) embedCmd() *cobra.Command {
	var f embedFlags
	cmd := &cobra.Command{
		Use:   "embed",
		Short: "Featurize documents: offline from files, or as the Kafka stage docs.raw → docs.features",
		Long: `Turn documents into vectors with one of four featurizers:

  tfidf    c-BTM's tf-idf: lowercase, Unicode word tokens of 2+ characters,
           tokens starting with a digit → #NUMBER, English stop words removed,
           vocabulary fitted on a sample, smooth idf, L2-normalized, sparse
  hashing  the same tf-idf over 2^18 hashed buckets (scikit-learn's
           HashingVectorizer hash): an unbounded vocabulary
  lsa      tf-idf → randomized truncated SVD to --dims (100) → L2 normalize:
           c-BTM's document embedding, dense
  http     an embedding service speaking the /v1/embeddings JSON API

Offline (--in given): read the documents of INPUT (.jsonl, .jsonl.gz,
.parquet, a folder of .txt, or - for stdin), fit the featurizer on them (or
on the first --fit-sample) unless --state holds one, and write one Parquet row
per document to --out: id, dim, indices (sparse) and values, and the state
version. Records that cannot be read are reported on stderr and counted as
"rejected". --json prints {"docs","bytes","seconds",...}.

On Kafka (no --in): run the stage docs.raw → docs.features with consumer
group --group until SIGINT/SIGTERM. The featurizer comes from --state; if the
directory holds none, the stage first fits one on the first --fit-sample
(10000) documents of the input topic and saves it there. It waits for them:
until the topic holds --fit-min (300) documents (it may be empty, or not exist
yet: start the stages and ingest in any order), then until their count stays
the same for 2 s or the sample is full, logging what it has and what it needs
("waiting for documents to fit the featurizer on" have=N need=M). A fit on a
handful of documents would give a poor vocabulary and poor domains: with
--fit-timeout D it fits on what has arrived once D has passed, with a warning.
A featurizer saved into --state meanwhile ends the wait. A newer version saved
into --state (e.g. by an offline 'pipeline embed --refit') is picked up while
the stage runs, within --watch.

A featurizer state is a versioned artifact in --state: featurizer-NNNNNN.arrow
(Arrow IPC, what the stage loads) and featurizer-NNNNNN.parquet (the same
table, for inspection: 'pipeline inspect FILE').`,
		Example: `  pipeline embed --in corpus.jsonl.gz --out features.parquet --featurizer tfidf --state state/ --json
  pipeline embed --in corpus.jsonl.gz --out lsa.parquet --featurizer lsa --dims 100 --seed 1
  pipeline embed --brokers 127.0.0.1:9092 --state state/
  pipeline embed --brokers 127.0.0.1:9092 --state state/ --featurizer hashing --fit-sample 5000
  pipeline embed --state state/ --fit-min 1000 --fit-timeout 10m   # brokers from $DOMAINFLOW_BROKERS`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.in) > 0 {
				stop, err := startProfiles(f.cpuProfile, f.traceOut)
				if err != nil {
					return err
				}
				defer stop()
				return a.runEmbedOffline(cmd, &f)
			}
			return a.runEmbedStage(cmd, &f)
		},
	}
	fs := cmd.Flags()
	f.stage.register(fs, "in-topic", pipeline.TopicRaw, "out-topic", pipeline.TopicFeatures, "embed")
	f.feat.register(fs, string(embed.KindTfidf), true)
	fs.StringSliceVar(&f.in, "in", nil, "offline: input `files` (comma-separated or repeated); without --in the command runs as a Kafka stage")
	fs.StringVar(&f.out, "out", "", "offline: output Parquet `file`")
	fs.DurationVar(&f.watch, "watch", 5*time.Second, "stage: how often to look for a newer state in --state")
	fs.IntVar(&f.fitMin, "fit-min", embed.DefaultFitMin, "stage, fit on the input topic: wait until it holds `N` documents (at most --fit-sample)")
	fs.DurationVar(&f.fitTimeout, "fit-timeout", 0, "stage, fit on the input topic: after this long, fit on the documents there are (at least one), with a warning (0: wait for --fit-min)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "offline: write a Go CPU profile of the run to `file` (for go tool pprof)")
	fs.StringVar(&f.traceOut, "trace", "", "offline: write a Go execution trace of the run to `file` (for go tool trace)")
	return cmd
}

func (a *app) runEmbedOffline(cmd *cobra.Command, f *embedFlags) error {
	start := time.Now()
	if f.out == "" {
		return usagef("embed: --in needs --out FILE.parquet")
	}
	k, opt, err := f.feat.options()
	if err != nil {
		return err
	}
	if err := schemas.CheckInputs(f.in); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	s, err := f.feat.existingState(cmd)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	called := time.Since(start)
	res, err := embed.FeaturizeFiles(cmd.Context(), embed.FilesConfig{
		Inputs: f.in, Stdin: a.stdin, Out: f.out, Limits: f.feat.limits(),
		State: s, Kind: k, Options: opt, FitSample: f.feat.fitSample, StateDir: f.feat.state,
		Logger: a.log.With("cmd", "embed"),
	})
	if err != nil {
		return err
	}
	rep := embedReport{
		Docs: res.Docs, Bytes: res.Bytes, Seconds: seconds(time.Since(start)), Featurizer: string(res.State.Settings.Kind),
		ReadSeconds: seconds(called + res.Read), FeatSeconds: seconds(called + res.Featurize),
		Dim: res.Dim, NNZ: res.NNZ, StateVersion: res.State.Settings.Version, Fitted: res.Fitted, Rejected: res.Rejected,
		PeakRSSBytes: flow.PeakRSSBytes(),
	}
	if f.stage.JSON {
		return writeJSON(a.stdout, rep)
	}
	fmt.Fprintf(a.stderr, "embed: %s (%s of text) → %s with %s (dim %d, state v%d) in %.2fs (%.1f MB/s)\n",
		plural(int64(rep.Docs), "document"), humanBytes(rep.Bytes), f.out, rep.Featurizer, rep.Dim, rep.StateVersion, rep.Seconds, float64(rep.Bytes)/1e6/rep.Seconds)
	return nil
}

// runEmbedStage runs the embedding stage on Kafka (embed.RunStage) with the
// runner of the stage commands.
func (a *app) runEmbedStage(cmd *cobra.Command, f *embedFlags) error {
	if err := f.stage.Validate("embed"); err != nil {
		return err
	}
	if f.feat.state == "" {
		return usagef("embed: the Kafka stage needs --state DIR (where its featurizer is, or is saved after fitting)")
	}
	if f.fitMin < 1 || f.fitTimeout < 0 {
		return usagef("embed: --fit-min must be at least 1 and --fit-timeout not negative")
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "embed")
	cc, err := f.stage.kafka.Connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	s, err := f.feat.existingState(cmd)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	cfg := embed.StageConfig{
		Client:     cc,
		StateDir:   f.feat.state,
		State:      s,
		FitSample:  f.feat.fitSample,
		FitMin:     f.fitMin,
		FitTimeout: f.fitTimeout,
		InputTopic: f.stage.In,
		Limits:     f.feat.limits(),
		Watch:      f.watch,
		Logger:     log,
		// The stage validates documents with the same limits as ingest.
		Run: func(ctx context.Context, stage pipeline.Stage) error {
			return a.runStage(ctx, "embed", &f.stage, cc, stage, nil, log,
				func(c *pipeline.RunnerConfig) { c.Limits = f.feat.limits() })
		},
	}
	if s == nil {
		if cfg.Kind, cfg.Options, err = f.feat.options(); err != nil {
			return fmt.Errorf("embed: fit: %w", err)
		}
	}
	return embed.RunStage(ctx, cfg)
}

// startProfiles starts a CPU profile and an execution trace when their files
// are named; stop ends them.
func startProfiles(cpuPath, tracePath string) (stop func(), err error) {
	var closers []func()
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		closers = append(closers, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			stop()
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return nil, err
		}
		closers = append(closers, func() { trace.Stop(); f.Close() })
	}
	return stop, nil
}
