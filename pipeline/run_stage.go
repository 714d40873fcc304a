package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/domainflow/domainflow/schemas"
)

// StageProcessConfig configures RunStage: one stage run as a process of a
// consumer group between Kafka topics. Client, InputTopic, Group and Stage
// are required; every other field has a default.
type StageProcessConfig struct {
	// Name of the stage in logs, metrics and dead-letter headers, and the
	// prefix of RunStage's errors. Default: "stage".
	Name   string
	Client ClientConfig
	// InputTopic is read with consumer group Group.
	InputTopic string
	Group      string
	// OutputTopic receives the outputs that name no topic. Empty for a
	// stage that names the topic of every output (the routing stage: one
	// topic per domain); that stage creates its own output topics. Default:
	// "".
	OutputTopic string
	Stage       Stage
	// Accept lists the record kinds the stage takes. Default: [document].
	Accept []schemas.Kind
	// OneToOne: see RunnerConfig.OneToOne. Default: false.
	OneToOne bool
	// BatchMaxRecords, BatchMaxBytes and Linger shape the micro-batches.
	// Defaults: RunnerConfig's (2000 messages, 8 MiB, 20ms).
	BatchMaxRecords int
	BatchMaxBytes   int
	Linger          time.Duration
	// States keeps a PartitionStage's per-partition snapshots (see
	// RunnerConfig.States). Default: nil, no snapshots.
	States StateStore
	// Metrics, when non-nil, receive the runner's counters. Default: nil.
	Metrics *Metrics
	// Logger gets the stage's log lines. Default: Client.Logger, else
	// slog.Default().
	Logger *slog.Logger
	// Configure, when non-nil, adjusts the runner's configuration last,
	// for the settings this struct does not name. Default: nil.
	Configure func(*RunnerConfig)
}

// StageRun is what RunStage reports when the stage stopped.
type StageRun struct {
	Counts
	// Partitions is the input topic's partition count at the start.
	Partitions int
	// Elapsed is how long the runner ran (from after the topics were
	// ready to the end of its graceful stop).
	Elapsed time.Duration
}

// RunStage runs cfg.Stage on Kafka until ctx ends: it reads the input
// topic's partition count, creates the dead-letter topic (and the output
// topic, when named) with as many partitions, joins the consumer group with
// a KafkaSource, writes through a KafkaSink and runs a Runner. Broker
// outages are ridden out (Retry). It returns the runner's counts; an error
// of the runner carries the counts it reached in its text. Its errors start
// with cfg.Name.
func RunStage(ctx context.Context, cfg StageProcessConfig) (StageRun, error) {
	name := cfg.Name
	if name == "" {
		name = "stage"
	}
	log := cfg.Logger
	if log == nil {
		log = cfg.Client.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	var run StageRun
	// Both retried through broker outages, as the runner's loop is.
	err := Retry(ctx, log, "read the partitions of "+cfg.InputTopic, func(ctx context.Context) (err error) {
		run.Partitions, err = PartitionCount(ctx, cfg.Client, cfg.InputTopic)
		return err
	})
	if err != nil {
		return run, fmt.Errorf("%s: input topic %s: %w", name, cfg.InputTopic, err)
	}
	n := run.Partitions
	specs := []TopicSpec{{Name: TopicDeadLetter, Partitions: n}}
	if cfg.OutputTopic != "" {
		specs = append(specs, TopicSpec{Name: cfg.OutputTopic, Partitions: n})
	}
	err = Retry(ctx, log, "create the output topics", func(ctx context.Context) error {
		return EnsureTopics(ctx, cfg.Client, specs...)
	})
	if err != nil {
		return run, fmt.Errorf("%s: %w", name, err)
	}
	src, err := NewKafkaSource(SourceConfig{Client: cfg.Client, Topics: []string{cfg.InputTopic}, GroupID: cfg.Group})
	if err != nil {
		return run, fmt.Errorf("%s: %w", name, err)
	}
	defer src.Close()
	sink, err := NewKafkaSink(SinkConfig{Client: cfg.Client})
	if err != nil {
		return run, fmt.Errorf("%s: %w", name, err)
	}
	defer sink.Close()
	rc := RunnerConfig{
		Name:            name,
		Stage:           cfg.Stage,
		Source:          src,
		Sink:            sink,
		OutputTopic:     cfg.OutputTopic,
		Accept:          cfg.Accept,
		OneToOne:        cfg.OneToOne,
		BatchMaxRecords: cfg.BatchMaxRecords,
		BatchMaxBytes:   cfg.BatchMaxBytes,
		Linger:          cfg.Linger,
		States:          cfg.States,
		Metrics:         cfg.Metrics,
		Logger:          log,
	}
	if cfg.Configure != nil {
		cfg.Configure(&rc)
	}
	r, err := NewRunner(rc)
	if err != nil {
		return run, fmt.Errorf("%s: %w", name, err)
	}
	log.Info(name+" stage started", "in", cfg.InputTopic, "out", cfg.OutputTopic, "group", cfg.Group, "partitions", n)
	start := time.Now()
	runErr := r.Run(ctx)
	run.Counts, run.Elapsed = r.Counts(), time.Since(start)
	if runErr != nil {
		c := run.Counts
		return run, fmt.Errorf("%s: %w (in %d, out %d, dead %d before it failed)", name, runErr, c.In, c.Out, c.Dead)
	}
	return run, nil
}
