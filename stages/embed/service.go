package embed

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// The defaults of the stage's wait for a fit sample (StageConfig.FitMin,
// FitQuiet).
const (
	// DefaultFitMin is the fewest documents the stage fits a featurizer on
	// when it has none: a tf-idf vocabulary fitted on a handful of documents
	// (3 gave 578 terms) makes poor vectors and worse domains for
	// everything that follows.
	DefaultFitMin = 300
	// DefaultFitQuiet is how long the input must stay unchanged, once
	// FitMin documents are there, before the fit: documents still arriving
	// fill the sample.
	DefaultFitQuiet = 2 * time.Second
)

// StageConfig configures the embedding stage's life on Kafka (RunStage).
// The zero value of every field but Client and StateDir works.
type StageConfig struct {
	// Client is the Kafka connection; it must name brokers.
	Client pipeline.ClientConfig
	// StateDir holds the featurizer states: the stage saves the state it
	// fits there, mirrors newer states published on router.models into it,
	// and loads each newer version saved there while it runs. Required.
	StateDir string
	// State is the featurizer to start with (e.g. the latest of StateDir,
	// loaded by the caller). Default: nil, and the stage fits one on the
	// first FitSample documents of InputTopic and saves it in StateDir.
	State *State
	// Kind and Options describe the featurizer to fit when State is nil.
	// Default: KindTfidf with the zero FitOptions.
	Kind    Kind
	Options FitOptions
	// FitSample is how many documents from the head of InputTopic the fit
	// sees. Default: 10000.
	FitSample int
	// FitMin is the fewest documents the fit waits for: until InputTopic
	// holds that many (it may be empty or not exist yet), the stage waits,
	// logging what it has and what it needs. Default: DefaultFitMin; never
	// more than FitSample.
	FitMin int
	// FitTimeout bounds that wait: once it has passed and at least one
	// document is there, the stage fits on what it has, with a warning.
	// Default: 0, wait as long as it takes.
	FitTimeout time.Duration
	// FitQuiet is how long the document count must stay the same, once
	// FitMin is reached but the sample is not full, before the fit.
	// Default: DefaultFitQuiet.
	FitQuiet time.Duration
	// InputTopic is the stage's input, sampled for the fit. Default:
	// pipeline.TopicRaw.
	InputTopic string
	// Limits validate the sampled documents (and, with the default Run, the
	// stage's input). Default: the schemas defaults.
	Limits schemas.Limits
	// Watch is how often StateDir is looked at for a newer state. Default: 5s.
	Watch time.Duration
	// Run runs the stage (a *Stage, which swaps in newer states by itself)
	// on Kafka until ctx ends. It is the hook through which a program gives
	// the stage its own runner: `pipeline embed` runs it with the runner of
	// its stage commands (flags for batches, metrics, the --json report).
	// Default: a pipeline.Runner from InputTopic to OutputTopic in consumer
	// group Group, which creates OutputTopic and docs.deadletter with the
	// partitions of InputTopic.
	Run func(ctx context.Context, st pipeline.Stage) error
	// OutputTopic and Group serve the default Run. Defaults:
	// pipeline.TopicFeatures and "embed".
	OutputTopic, Group string
	// Logger gets the stage's life: sampling, fitting, loading and
	// reloading featurizers, router.models warnings. Default: Client.Logger,
	// else slog.Default().
	Logger *slog.Logger
}

func (c *StageConfig) logger() *slog.Logger {
	switch {
	case c.Logger != nil:
		return c.Logger
	case c.Client.Logger != nil:
		return c.Client.Logger
	}
	return slog.Default()
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RunStage runs the embedding stage on Kafka until ctx ends: it takes
// cfg.State, or fits a featurizer on a sample of the input topic and saves
// it in cfg.StateDir, first waiting for cfg.FitMin documents there
// (waitSample; a state saved into StateDir meanwhile ends the wait, and so
// does ctx, with a nil error); shares the state on router.models (publishing it
// unless a valid one of its version or newer is there, and mirroring newer
// ones into StateDir: FeaturizerTopic.Share); reloads each newer state that
// appears in StateDir (WatchStates, Stage.Swap); and runs the stage with
// cfg.Run. The goroutines it starts end with it.
func RunStage(ctx context.Context, cfg StageConfig) error {
	if cfg.StateDir == "" {
		return fmt.Errorf("embed: the Kafka stage needs a state dir (where its featurizer is, or is saved after fitting)")
	}
	log := cfg.logger()
	in := orString(cfg.InputTopic, pipeline.TopicRaw)
	s := cfg.State
	if s == nil {
		n := cfg.FitSample
		if n <= 0 {
			n = 10000
		}
		texts, found, err := waitSample(ctx, &cfg, in, n, log)
		switch {
		case ctx.Err() != nil:
			log.Info("stopped while waiting for documents to fit the featurizer on", "topic", in)
			return nil
		case err != nil:
			return fmt.Errorf("embed: sample %s: %w", in, err)
		case found != nil:
			s = found
		default:
			if s, err = fitAndSave(ctx, &cfg, texts, log); err != nil {
				return fmt.Errorf("embed: fit: %w", err)
			}
		}
	}
	stage := NewStage(s)
	log.Info("featurizer loaded", "featurizer", s.Settings.Kind, "version", s.Settings.Version, "dim", s.Featurizer.Dim())

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ft, err := NewFeaturizerTopic(cfg.Client, log)
	if err != nil {
		return err
	}
	defer ft.Close()
	ft.Share(wctx, cfg.StateDir, s)
	watch := cfg.Watch
	if watch <= 0 {
		watch = 5 * time.Second
	}
	go WatchStates(wctx, cfg.StateDir, s.Settings.Version, watch, func(ns *State) { // owner: RunStage, which ends wctx
		stage.Swap(ns)
		log.Info("featurizer reloaded", "featurizer", ns.Settings.Kind, "version", ns.Settings.Version, "dim", ns.Featurizer.Dim())
	}, func(err error) { log.Warn("featurizer state not loaded", "err", err) })

	run := cfg.Run
	if run == nil {
		run = func(ctx context.Context, st pipeline.Stage) error { return runOnKafka(ctx, &cfg, in, st, log) }
	}
	return run(ctx, stage)
}

// waitSample returns the texts to fit a featurizer on: the first n
// documents of topic in, once there are n of them, or at least cfg.FitMin
// and their count has not changed for cfg.FitQuiet, or, after
// cfg.FitTimeout, at least one (with a warning when fewer than FitMin). It
// polls the topic until then, logging what it has and needs. A state that
// appears in cfg.StateDir meanwhile (an offline fit, another process of
// the group) is returned as found instead. It returns ctx's error when ctx
// ends first.
func waitSample(ctx context.Context, cfg *StageConfig, in string, n int, log *slog.Logger) (texts []string, found *State, err error) {
	need := cfg.FitMin
	if need <= 0 {
		need = DefaultFitMin
	}
	need = min(need, n)
	quiet := cfg.FitQuiet
	if quiet <= 0 {
		quiet = DefaultFitQuiet
	}
	poll := min(time.Second, max(quiet/4, 10*time.Millisecond))
	start := time.Now()
	last, lastChange := -1, start
	var lastLog time.Time
	log.Info("no featurizer yet: sampling the input to fit one", "topic", in, "sample", n, "min", need)
	for {
		if v, err := LatestStateVersion(cfg.StateDir); err == nil && v > 0 {
			if s, err := LoadState(cfg.StateDir, v); err == nil {
				log.Info("a featurizer appeared in the state dir while waiting: using it", "dir", cfg.StateDir, "version", v)
				return nil, s, nil
			}
		}
		texts, err := SampleTexts(ctx, cfg.Client, in, n, cfg.Limits, log)
		if err != nil {
			return nil, nil, err
		}
		now, have := time.Now(), len(texts)
		if have != last {
			last, lastChange = have, now
		}
		waited := now.Sub(start)
		switch {
		case have >= n:
			return texts, nil, nil
		case have >= need && now.Sub(lastChange) >= quiet:
			return texts, nil, nil
		case cfg.FitTimeout > 0 && waited >= cfg.FitTimeout && have > 0:
			if have < need {
				log.Warn("fitting the featurizer on fewer documents than the minimum: its vocabulary, the vectors and the domains will be poor; refit once more documents are in",
					"topic", in, "have", have, "min", need, "waited", waited.Round(time.Second))
			}
			return texts, nil, nil
		}
		// Say what it waits for: at once, then when the count moved (at
		// most every 2 s) and every 30 s.
		if since := now.Sub(lastLog); lastLog.IsZero() || since >= 30*time.Second || (lastChange.After(lastLog) && since >= 2*time.Second) {
			lastLog = now
			if have < need {
				log.Info("waiting for documents to fit the featurizer on", "topic", in, "have", have, "need", need, "waited", waited.Round(time.Second))
			} else {
				log.Info("waiting for the input to settle before fitting the featurizer", "topic", in, "have", have, "sample", n, "quiet", quiet)
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// fitAndSave fits a featurizer of cfg.Kind on texts and saves it in
// cfg.StateDir as its next version.
func fitAndSave(ctx context.Context, cfg *StageConfig, texts []string, log *slog.Logger) (*State, error) {
	k := cfg.Kind
	if k == "" {
		k = KindTfidf
	}
	start := time.Now()
	fz, v, err := Fit(ctx, k, texts, cfg.Options)
	if err != nil {
		return nil, err
	}
	s, err := NewState(fz, v.Len())
	if err != nil {
		return nil, err
	}
	if _, err := SaveState(cfg.StateDir, s); err != nil {
		return nil, err
	}
	log.Info("featurizer fitted", "featurizer", k, "docs", v.Len(), "dim", fz.Dim(), "version", s.Settings.Version,
		"seconds", float64(time.Since(start).Milliseconds())/1000)
	return s, nil
}

// runOnKafka is the default StageConfig.Run: a pipeline.Runner from topic
// in to the output topic, in the consumer group.
func runOnKafka(ctx context.Context, cfg *StageConfig, in string, st pipeline.Stage, log *slog.Logger) error {
	out := orString(cfg.OutputTopic, pipeline.TopicFeatures)
	var n int
	err := pipeline.Retry(ctx, log, "read the partitions of "+in, func(ctx context.Context) (err error) {
		n, err = pipeline.PartitionCount(ctx, cfg.Client, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("embed: input topic %s: %w", in, err)
	}
	err = pipeline.Retry(ctx, log, "create the output topics", func(ctx context.Context) error {
		return pipeline.EnsureTopics(ctx, cfg.Client, pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: n},
			pipeline.TopicSpec{Name: out, Partitions: n})
	})
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cfg.Client, Topics: []string{in}, GroupID: orString(cfg.Group, "embed")})
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	defer src.Close()
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cfg.Client})
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	defer sink.Close()
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{Name: "embed", Stage: st, Source: src, Sink: sink, OutputTopic: out,
		OneToOne: true, Limits: cfg.Limits, Logger: log})
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	if err := r.Run(ctx); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	return nil
}

// SampleTexts returns the texts of the documents among the first n
// messages of topic, taken evenly from its partitions (none when there is
// no such topic); messages that are not valid documents within lim are
// skipped (the stage dead-letters them when it reaches them). Reads are
// retried through broker outages until ctx ends.
func SampleTexts(ctx context.Context, cc pipeline.ClientConfig, topic string, n int, lim schemas.Limits, log *slog.Logger) ([]string, error) {
	var msgs []pipeline.Message
	err := pipeline.Retry(ctx, log, "sample "+topic, func(ctx context.Context) (err error) {
		msgs, err = pipeline.ReadTopic(ctx, cc, topic, n)
		if pipeline.IsUnknownTopic(err) {
			msgs, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, m := range msgs {
		d, err := pipeline.DecodeMessage(m, lim, nil)
		if err != nil {
			continue
		}
		// A record that is not of documents adds none.
		_ = d.EachDocument(func(doc schemas.Document, _ schemas.Origin) error {
			texts = append(texts, doc.Text)
			return nil
		})
		d.Release()
	}
	return texts, nil
}
