package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
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
	fs.StringVar(&f.kind, "featurizer", defaultKind, "`kind` of featurizer: tfidf (c-BTM's tf-idf, sparse), lsa (c-BTM's whole featurization: its tf-idf → truncated SVD → L2; dense), hashing (tf-idf over 2^18 hashed buckets), http (an /v1/embeddings service)")
	if withState {
		fs.StringVar(&f.state, "state", "", "featurizer state `dir`: the latest version there is used; when it has none, the fitted state is saved there")
		fs.BoolVar(&f.refit, "refit", false, "fit anew even when --state holds a state, and save the result as its next version")
	}
	fs.IntVar(&f.fitSample, "fit-sample", 0, "fit on the first `N` documents only (0: all of --in; on Kafka: 10000 from the head of the input topic)")
	fs.IntVar(&f.workers, "workers", 0, "goroutines for featurization (0: one per CPU)")
	fs.IntVar(&f.maxTextBytes, "max-text-bytes", schemas.DefaultMaxTextBytes, "longest document text in `bytes`; longer documents are rejected as oversize")
	fs.IntVar(&f.maxIDBytes, "max-id-bytes", schemas.DefaultMaxIDBytes, "longest document id in `bytes`; documents with longer ids are rejected as invalid-id (keep it equal to ingest's)")
	fs.Float64Var(&f.minDF, "min-df", 1, "ignore terms in fewer documents than this (a count ≥ 1, or a fraction < 1)")
	fs.Float64Var(&f.maxDF, "max-df", 1, "ignore terms in more documents than this (a count > 1, or a fraction ≤ 1)")
	fs.IntVar(&f.maxFeatures, "max-features", 0, "keep only the `N` most frequent terms (0: all)")
	fs.BoolVar(&f.sublinearTF, "sublinear-tf", false, "use 1 + ln(tf) instead of the raw term count")
	fs.StringVar(&f.numberToken, "number-token", "#NUMBER", "replace tokens that start with a digit by this `token` (empty: keep them)")
	fs.BoolVar(&f.noStopWords, "no-stop-words", false, "keep English stop words")
	fs.IntVar(&f.hashFeatures, "hash-features", 1<<18, "hashing: number of `buckets`")
	fs.BoolVar(&f.alternateSign, "alternate-sign", false, "hashing: sign each token's count by its hash, as scikit-learn's default")
	fs.IntVar(&f.dims, "dims", 100, "lsa: output dimension (by default at most the fit sample's documents and terms)")
	fs.IntVar(&f.powerIters, "power-iters", 5, "lsa: power iterations of the randomized SVD")
	fs.Uint64Var(&f.seed, "seed", 0, "lsa: random seed (the fit is deterministic for a seed)")
	fs.StringVar(&f.httpURL, "http-url", "", "http: base `URL` of the embedding service (POST URL/v1/embeddings); the API key comes from $DOMAINFLOW_EMBED_API_KEY")
	fs.StringVar(&f.httpModel, "http-model", "", "http: model `name` sent with each request")
	fs.IntVar(&f.httpDims, "http-dims", 0, "http: expected dimension (0: learn it from the first answer)")
	fs.IntVar(&f.httpBatch, "http-batch", 64, "http: texts per request")
	fs.IntVar(&f.httpConcurrency, "http-concurrency", 4, "http: requests in flight")
	fs.DurationVar(&f.httpTimeout, "http-timeout", 30*time.Second, "http: timeout of one request")
	fs.BoolVar(&f.httpNoNormalize, "http-no-normalize", false, "http: keep the service's vectors as they are (default: L2-normalize)")
	fs.BoolVar(&f.http64, "http-base64", false, `http: ask for "encoding_format":"base64"`)
}

func (f *featurizerFlags) options() (embed.Kind, embed.FitOptions, error) {
	k, err := embed.ParseKind(f.kind)
	if err != nil {
		return "", embed.FitOptions{}, usagef("%v", err)
	}
	if k == embed.KindHTTP && f.httpURL == "" {
		return "", embed.FitOptions{}, usagef("--featurizer http needs --http-url")
	}
	tok := embed.DefaultTokenizer()
	tok.NumberToken = f.numberToken
	if f.noStopWords {
		tok.StopWords = nil
	}
	return k, embed.FitOptions{
		Tfidf: embed.TfidfConfig{Tokenizer: tok, MinDF: f.minDF, MaxDF: f.maxDF, MaxFeatures: f.maxFeatures, SublinearTF: f.sublinearTF, Workers: f.workers},
		Hashing: embed.HashingConfig{Tokenizer: tok, Features: f.hashFeatures, AlternateSign: f.alternateSign, SublinearTF: f.sublinearTF,
			Workers: f.workers},
		// The default --dims shrinks to a sample smaller than it; an explicit
		// one is a requirement.
		LSA: embed.LSAConfig{Dims: f.dims, PowerIters: f.powerIters, Seed: f.seed, Workers: f.workers,
			ClampDims: f.fs == nil || !f.fs.Changed("dims")},
		HTTP: embed.HTTPConfig{URL: f.httpURL, Model: f.httpModel, Dims: f.httpDims, BatchSize: f.httpBatch, Concurrency: f.httpConcurrency,
			Timeout: f.httpTimeout, Normalize: !f.httpNoNormalize, Base64: f.http64, APIKey: os.Getenv("DOMAINFLOW_EMBED_API_KEY")},
	}, nil
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

// fit fits a featurizer on texts, saves it to --state when given, and
// returns it with the vectors of texts.
func (f *featurizerFlags) fit(ctx context.Context, texts []string, log *slog.Logger) (*embed.State, embed.Vectors, error) {
	return f.fitWith(log, func(k embed.Kind, opt embed.FitOptions) (embed.Featurizer, embed.Vectors, error) {
		return embed.Fit(ctx, k, texts, opt)
	})
}

// fitWith fits with fitFn (embed.Fit or embed.FitStream), saves the state to
// --state when given, and returns it with the vectors of the fitted texts.
func (f *featurizerFlags) fitWith(log *slog.Logger, fitFn func(embed.Kind, embed.FitOptions) (embed.Featurizer, embed.Vectors, error)) (*embed.State, embed.Vectors, error) {
	k, opt, err := f.options()
	if err != nil {
		return nil, embed.Vectors{}, err
	}
	start := time.Now()
	fz, v, err := fitFn(k, opt)
	if err != nil {
		return nil, embed.Vectors{}, err
	}
	s, err := embed.NewState(fz, v.Len())
	if err != nil {
		return nil, embed.Vectors{}, err
	}
	attrs := []any{"featurizer", k, "docs", v.Len(), "dim", fz.Dim()}
	if f.state != "" {
		if _, err := embed.SaveState(f.state, s); err != nil {
			return nil, embed.Vectors{}, err
		}
		attrs = append(attrs, "version", s.Settings.Version)
	}
	log.Info("featurizer fitted", append(attrs, "seconds", seconds(time.Since(start)))...)
	return s, v, nil
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
(10000) documents of the input topic and saves it there. A newer version saved
into --state (e.g. by an offline 'pipeline embed --refit') is picked up while
the stage runs, within --watch.

A featurizer state is a versioned artifact in --state: featurizer-NNNNNN.arrow
(Arrow IPC, what the stage loads) and featurizer-NNNNNN.parquet (the same
table, for inspection: 'pipeline inspect FILE').`,
		Example: `  pipeline embed --in corpus.jsonl.gz --out features.parquet --featurizer tfidf --state state/ --json
  pipeline embed --in corpus.jsonl.gz --out lsa.parquet --featurizer lsa --dims 100 --seed 1
  pipeline embed --brokers 127.0.0.1:9092 --state state/
  pipeline embed --brokers 127.0.0.1:9092 --state state/ --featurizer hashing --fit-sample 5000`,
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
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "offline: write a Go CPU profile of the run to `file` (for go tool pprof)")
	fs.StringVar(&f.traceOut, "trace", "", "offline: write a Go execution trace of the run to `file` (for go tool trace)")
	return cmd
}

// docReader reads the documents of the input files in order, keeping their
// ids and counting text bytes and rejected records.
type docReader struct {
	a        *app
	paths    []string
	lim      schemas.Limits
	log      *slog.Logger
	keepMeta bool // also keep each document's metadata
	// dropTexts: next does not keep the texts it returns (texts stays
	// empty), so that each becomes garbage once the caller is done with it.
	dropTexts bool
	docs      int // documents read
	cur       schemas.InputReader
	curPath   string
	ids       []string
	texts     []string
	metas     []json.RawMessage
	bytes     int64
	rejected  int
}

// next returns up to n more texts, or io.EOF after the last.
func (d *docReader) next(n int) ([]string, error) {
	if d.dropTexts {
		d.texts = make([]string, 0, min(n, 1024))
	}
	first := len(d.texts)
	for len(d.texts)-first < n {
		if d.cur == nil {
			if len(d.paths) == 0 {
				break
			}
			d.curPath, d.paths = d.paths[0], d.paths[1:]
			if err := checkInput(d.curPath); err != nil {
				return nil, err
			}
			r, err := d.a.openInput(d.curPath, d.lim)
			if err != nil {
				return nil, err
			}
			d.cur = r
		}
		rec, err := d.cur.Next()
		if errors.Is(err, io.EOF) {
			d.cur.Close()
			d.cur = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d.curPath, err)
		}
		if rec.Err != nil {
			d.rejected++
			d.log.Warn("record rejected", "source", rec.Source, "reason", schemas.ReasonOf(rec.Err), "err", rec.Err)
			continue
		}
		id := rec.Doc.ID
		if id == "" {
			id = rec.Source
		}
		d.ids = append(d.ids, id)
		d.texts = append(d.texts, rec.Doc.Text)
		if d.keepMeta {
			d.metas = append(d.metas, rec.Doc.Meta)
		}
		d.bytes += int64(len(rec.Doc.Text))
		d.docs++
	}
	if len(d.texts) == first {
		return nil, io.EOF
	}
	out := d.texts[first:]
	if d.dropTexts {
		d.texts = nil
	}
	return out, nil
}

func (d *docReader) close() {
	if d.cur != nil {
		d.cur.Close()
	}
}

func (a *app) runEmbedOffline(cmd *cobra.Command, f *embedFlags) error {
	start := time.Now()
	if f.out == "" {
		return usagef("embed: --in needs --out FILE.parquet")
	}
	k, _, err := f.feat.options()
	if err != nil {
		return err
	}
	for _, path := range f.in {
		if err := checkInput(path); err != nil {
			return fmt.Errorf("embed: %w", err)
		}
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "embed")
	s, err := f.feat.existingState(cmd)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	dr := &docReader{a: a, paths: f.in, lim: f.feat.limits(), log: log}
	defer dr.close()
	var (
		v        embed.Vectors
		fitted   = s == nil
		readDone time.Time
	)
	// With no --state (rows of state version 0), a fit on everything of a
	// kind that hands its rows over as they are weighed (tfidf, hashing)
	// has a goroutine write them meanwhile.
	fac, _ := embed.Lookup(k)
	var feed *rowFeed
	if fitted && f.feat.fitSample <= 0 && f.feat.state == "" && fac.RowsProgress {
		feed = newRowFeed()
		go feed.write(f.out, func() []string { return dr.ids }) // owner: runEmbedOffline, which waits on feed.errc
	}
	if fitted && f.feat.fitSample <= 0 && fac.Streams() {
		// Fit on everything while reading: tokenization overlaps decoding.
		// The vectors come out of the fit, so the texts are not kept.
		dr.dropTexts = true
		const chunk = 64
		s, v, err = f.feat.fitWith(log, func(k embed.Kind, opt embed.FitOptions) (embed.Featurizer, embed.Vectors, error) {
			if feed != nil {
				opt.Rows = feed.rows
			}
			return embed.FitStream(ctx, k, func() ([]string, error) {
				texts, err := dr.next(chunk)
				if errors.Is(err, io.EOF) && readDone.IsZero() {
					readDone = time.Now()
				}
				return texts, err
			}, opt)
		})
		if err == nil && feed != nil && (v.Sparse == nil || s.Settings.Version != 0) {
			err = errors.New("fit gave no sparse rows of state version 0") // cannot happen
		}
		if err != nil {
			if feed != nil {
				feed.abort()
				<-feed.errc
			}
			return fmt.Errorf("embed: fit: %w", err)
		}
	} else {
		if _, err := dr.next(math.MaxInt); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("embed: %w", err)
		}
		readDone = time.Now()
		if len(dr.texts) > 0 && fitted {
			sample := dr.texts
			if f.feat.fitSample > 0 && f.feat.fitSample < len(sample) {
				sample = sample[:f.feat.fitSample]
			}
			if s, v, err = f.feat.fit(ctx, sample, log); err != nil {
				return fmt.Errorf("embed: fit: %w", err)
			}
			if len(sample) < len(dr.texts) {
				v = embed.Vectors{}
			}
		}
	}
	if dr.docs == 0 {
		return fmt.Errorf("embed: no documents in %v", f.in)
	}
	if v.Len() == 0 {
		if v, err = s.Featurizer.Transform(ctx, dr.texts); err != nil {
			return fmt.Errorf("embed: %w", err)
		}
	}
	featDone := time.Now()
	ids, docs, bytes, rejected := dr.ids, dr.docs, dr.bytes, dr.rejected
	log.Debug("featurized", "docs", docs, "bytes", bytes, "read_seconds", seconds(readDone.Sub(start)), "seconds", seconds(featDone.Sub(start)))
	settings, _ := json.Marshal(s.Settings)
	if feed != nil {
		feed.finish(v.Sparse, string(settings))
		err = <-feed.errc
	} else {
		err = writeAtomicFile(f.out, func(w io.Writer) error {
			fw := embed.NewFeaturesWriter(w, string(settings))
			if err := fw.Write(ids, v, s.Settings.Version); err != nil {
				return err
			}
			return fw.Close()
		})
	}
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	rep := embedReport{
		Docs: docs, Bytes: bytes, Seconds: seconds(time.Since(start)), Featurizer: string(s.Settings.Kind),
		ReadSeconds: seconds(readDone.Sub(start)), FeatSeconds: seconds(featDone.Sub(start)),
		Dim: v.Dim(), StateVersion: s.Settings.Version, Fitted: fitted, Rejected: rejected, PeakRSSBytes: flow.PeakRSSBytes(),
	}
	if v.Sparse != nil {
		rep.NNZ = int64(v.Sparse.NNZ())
	} else {
		rep.NNZ = int64(len(v.Dense.Data))
	}
	if f.stage.json {
		return writeJSON(a.stdout, rep)
	}
	fmt.Fprintf(a.stderr, "embed: %s (%s of text) → %s with %s (dim %d, state v%d) in %.2fs (%.1f MB/s)\n",
		plural(int64(rep.Docs), "document"), humanBytes(bytes), f.out, rep.Featurizer, rep.Dim, rep.StateVersion, rep.Seconds, float64(bytes)/1e6/rep.Seconds)
	return nil
}

// runEmbedStage runs the embedding stage on Kafka (embed.RunStage) with the
// runner of the stage commands.
func (a *app) runEmbedStage(cmd *cobra.Command, f *embedFlags) error {
	if err := f.stage.validate("embed"); err != nil {
		return err
	}
	if f.feat.state == "" {
		return usagef("embed: the Kafka stage needs --state DIR (where its featurizer is, or is saved after fitting)")
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "embed")
	cc, err := f.stage.kafka.connect(ctx, a.log)
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
		InputTopic: f.stage.in,
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

// rowFeed hands the rows of a fit (embed.FitOptions.Rows) to a goroutine
// that writes them to the output file while the rest are weighed.
type rowFeed struct {
	mu       sync.Mutex
	cond     *sync.Cond
	m        *embed.CSR
	done     int     // leading rows of m that are final
	settings *string // the state's settings JSON, once the fit is done
	aborted  bool
	errc     chan error // write's result
}

func newRowFeed() *rowFeed {
	r := &rowFeed{errc: make(chan error, 1)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// rows is the fit's embed.FitOptions.Rows.
func (r *rowFeed) rows(m *embed.CSR, done int) {
	r.mu.Lock()
	r.m, r.done = m, done
	r.cond.Broadcast()
	r.mu.Unlock()
}

// finish gives the fitted rows, all final, and the settings for the file's
// metadata.
func (r *rowFeed) finish(m *embed.CSR, settings string) {
	r.mu.Lock()
	r.m, r.done, r.settings = m, m.Rows, &settings
	r.cond.Broadcast()
	r.mu.Unlock()
}

// abort stops the writer, which then removes its file.
func (r *rowFeed) abort() {
	r.mu.Lock()
	r.aborted = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

var errFeedAborted = errors.New("embed: the fit failed")

// write writes the rows to path as they come (ids() names them; it is
// called once rows came, when reading is over), in runs of multiples of 64
// rows so that the file is the same as one written at once (see
// embed.FeaturesWriter.WriteRows), then the settings, and sends the result
// to errc.
func (r *rowFeed) write(path string, ids func() []string) {
	r.errc <- writeAtomicFile(path, func(w io.Writer) error {
		fw := embed.NewFeaturesWriter(w, "")
		written := 0
		var names []string
		for {
			r.mu.Lock()
			for !r.aborted && (r.m == nil || (r.done < r.m.Rows && r.done-written < 64)) {
				r.cond.Wait()
			}
			aborted, m, done := r.aborted, r.m, r.done
			r.mu.Unlock()
			if aborted {
				return errFeedAborted
			}
			if names == nil {
				names = ids()
			}
			upto := done
			if done < m.Rows {
				upto = written + (done-written)/64*64
			}
			if err := fw.WriteRows(names, m, written, upto, 0); err != nil {
				return err
			}
			written = upto
			if written == m.Rows {
				break
			}
		}
		r.mu.Lock()
		for !r.aborted && r.settings == nil {
			r.cond.Wait()
		}
		aborted, settings := r.aborted, r.settings
		r.mu.Unlock()
		if aborted {
			return errFeedAborted
		}
		fw.SetSettings(*settings)
		return fw.Close()
	})
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

// writeAtomicFile writes path atomically (schemas.WriteFileAtomic).
func writeAtomicFile(path string, write func(io.Writer) error) error {
	return schemas.WriteFileAtomic(path, func(f *os.File) error { return write(f) })
}

// The routing stage (cluster_stage.go) publishes and reads featurizer states
// on router.models through these bridges to embed.FeaturizerTopic, which
// holds the featurizer half of the protocol; they go when the routing stage
// takes the topic as a hook of its own.
