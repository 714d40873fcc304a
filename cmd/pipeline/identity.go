package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
)

// identityFlags are the flags of `pipeline identity`.
type identityFlags struct {
	kafka        kafkaFlags
	in, out      string
	group        string
	batchRecords int
	batchBytes   int
	linger       time.Duration
	json         bool
}

// identityReport is the --json report of `pipeline identity`.
type identityReport struct {
	In      int64 `json:"in"`
	Out     int64 `json:"out"`
	Dead    int64 `json:"dead"`
	Batches int64 `json:"batches"`
}

func (a *app) identityCmd() *cobra.Command {
	var f identityFlags
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Diagnostics stage: copy documents from one topic to another through the stage runtime",
		Long: `Run the identity stage — every input row is published unchanged — through
the stage runtime until SIGINT or SIGTERM. It is a diagnostics stage: tests and
throughput benchmarks use it to measure the runtime (consumer group, micro-
batching, Arrow encoding, dead-lettering, commits) without any stage logic.

It joins consumer group --group on --in (JSON documents or Arrow IPC
document batches), writes Arrow IPC batches of the documents to --out on the
partition number they came from, and sends what cannot be decoded to
docs.deadletter with the reason in headers. Offsets are committed only after
the outputs are acknowledged. The output and dead-letter topics are created
with as many partitions as the input topic, which must exist.

On stop it drains the batch in hand and prints the counts: a line on stderr, or
with --json {"in":N,"out":N,"dead":N,"batches":N} on stdout.`,
		Example: `  pipeline identity --brokers 127.0.0.1:9092 --in docs.raw --out docs.identity
  pipeline identity --batch-records 5000 --linger 50ms --json --metrics-addr :9100`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runIdentity(cmd, f) },
	}
	fs := cmd.Flags()
	f.kafka.register(fs)
	fs.StringVar(&f.in, "in", pipeline.TopicRaw, "input `topic`")
	fs.StringVar(&f.out, "out", "docs.identity", "output `topic`")
	fs.StringVar(&f.group, "group", "identity", "consumer `group` id")
	fs.IntVar(&f.batchRecords, "batch-records", 2000, "most messages in one micro-batch")
	fs.IntVar(&f.batchBytes, "batch-bytes", 8<<20, "most payload `bytes` in one micro-batch")
	fs.DurationVar(&f.linger, "linger", 20*time.Millisecond, "how long a micro-batch waits to fill after its first message")
	fs.BoolVar(&f.json, "json", false, `print {"in","out","dead","batches"} as JSON on stdout when stopped`)
	return cmd
}

func (a *app) runIdentity(cmd *cobra.Command, f identityFlags) error {
	switch {
	case f.in == "" || f.out == "" || f.group == "":
		return usagef("identity: --in, --out and --group must not be empty")
	case f.in == f.out:
		return usagef("identity: --in and --out are both %s", f.in)
	case f.out == pipeline.TopicDeadLetter:
		return usagef("identity: --out %s is the dead-letter topic", f.out)
	case f.batchRecords < 1 || f.batchBytes < 1:
		return usagef("identity: --batch-records and --batch-bytes must be at least 1")
	case f.linger <= 0:
		return usagef("identity: --linger %v: want a positive duration", f.linger)
	}
	ctx := cmd.Context()
	cc, err := f.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	n, err := pipeline.PartitionCount(ctx, cc, f.in)
	if err != nil {
		return fmt.Errorf("identity: input topic %s: %w", f.in, err)
	}
	err = pipeline.EnsureTopics(ctx, cc,
		pipeline.TopicSpec{Name: f.out, Partitions: n},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: n})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{f.in}, GroupID: f.group})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer src.Close()
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer sink.Close()
	log := a.log.With("cmd", "identity")
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name:            "identity",
		Stage:           pipeline.Identity,
		Source:          src,
		Sink:            sink,
		OutputTopic:     f.out,
		BatchMaxRecords: f.batchRecords,
		BatchMaxBytes:   f.batchBytes,
		Linger:          f.linger,
		Metrics:         a.stageMetrics(),
		Logger:          log,
	})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	log.Info("identity stage started", "in", f.in, "out", f.out, "group", f.group, "partitions", n)
	start := time.Now()
	runErr := r.Run(ctx)
	c := r.Counts()
	if runErr != nil {
		return fmt.Errorf("identity: %w (in %d, out %d, dead %d before it failed)", runErr, c.In, c.Out, c.Dead)
	}
	if f.json {
		return writeJSON(a.stdout, identityReport{In: c.In, Out: c.Out, Dead: c.Dead, Batches: c.Batches})
	}
	el := time.Since(start)
	fmt.Fprintf(a.stderr, "identity: %d in, %d out, %d dead letters, %d batches in %.1fs (%.0f rows/s)\n",
		c.In, c.Out, c.Dead, c.Batches, el.Seconds(), rate(c.In, el))
	return nil
}
