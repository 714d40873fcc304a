package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// stageFlags are the flags every Kafka stage command shares.
type stageFlags struct {
	kafka   kafkaFlags
	in, out string
	// perOutputTopic marks a stage that names the topic of each output: it
	// has no output topic flag and out stays "".
	perOutputTopic bool
	group          string
	batchRecords   int
	batchBytes     int
	linger         time.Duration
	json           bool
}

// register adds the flags; the topic flags are named inFlag and outFlag and
// default to in and out.
func (f *stageFlags) register(fs *pflag.FlagSet, inFlag, in, outFlag, out, group string) {
	f.kafka.register(fs)
	fs.StringVar(&f.in, inFlag, in, "input `topic`")
	fs.StringVar(&f.out, outFlag, out, "output `topic`")
	fs.StringVar(&f.group, "group", group, "consumer `group` id")
	fs.IntVar(&f.batchRecords, "batch-records", 2000, "most messages in one micro-batch")
	fs.IntVar(&f.batchBytes, "batch-bytes", 8<<20, "most payload `bytes` in one micro-batch")
	fs.DurationVar(&f.linger, "linger", 20*time.Millisecond, "how long a micro-batch waits to fill after its first message")
	fs.BoolVar(&f.json, "json", false, `print {"in","out","dead","batches"} as JSON on stdout when stopped`)
}

func (f *stageFlags) validate(name string) error {
	switch {
	case f.in == "" || f.group == "" || (f.out == "" && !f.perOutputTopic):
		return usagef("%s: the input and output topics and --group must not be empty", name)
	case f.in == f.out:
		return usagef("%s: input and output are both %s", name, f.in)
	case f.out == pipeline.TopicDeadLetter:
		return usagef("%s: the output %s is the dead-letter topic", name, f.out)
	case f.batchRecords < 1 || f.batchBytes < 1:
		return usagef("%s: --batch-records and --batch-bytes must be at least 1", name)
	case f.linger <= 0:
		return usagef("%s: --linger %v: want a positive duration", name, f.linger)
	}
	return nil
}

// stageReport is the --json report of a stage command.
type stageReport struct {
	In   int64 `json:"in"`
	Out  int64 `json:"out"`
	Dead int64 `json:"dead"`
	// Duplicates are input rows dropped as re-sent copies of rows already
	// handled: in = out + dead + duplicates.
	Duplicates int64 `json:"duplicates"`
	Batches    int64 `json:"batches"`
}

// runStage runs stage between f.in and f.out on Kafka until ctx ends
// (pipeline.RunStage), then reports its counts. cc must be connected.
// opts adjust the runner's configuration.
func (a *app) runStage(ctx context.Context, name string, f *stageFlags, cc pipeline.ClientConfig, stage pipeline.Stage, accept []schemas.Kind, log *slog.Logger, opts ...func(*pipeline.RunnerConfig)) error {
	run, err := pipeline.RunStage(ctx, a.stageProcess(name, f, cc, stage, accept, log, opts...))
	if err != nil {
		return err
	}
	return a.printStageRun(name, f, run)
}

// stageProcess is the pipeline.RunStage configuration of a stage command.
func (a *app) stageProcess(name string, f *stageFlags, cc pipeline.ClientConfig, stage pipeline.Stage, accept []schemas.Kind, log *slog.Logger, opts ...func(*pipeline.RunnerConfig)) pipeline.StageProcessConfig {
	return pipeline.StageProcessConfig{
		Name:            name,
		Client:          cc,
		InputTopic:      f.in,
		Group:           f.group,
		OutputTopic:     f.out,
		Stage:           stage,
		Accept:          accept,
		OneToOne:        true, // identity, embed and cluster: each input row ends in one place
		BatchMaxRecords: f.batchRecords,
		BatchMaxBytes:   f.batchBytes,
		Linger:          f.linger,
		Metrics:         a.stageMetrics(),
		Logger:          log,
		Configure: func(c *pipeline.RunnerConfig) {
			for _, o := range opts {
				o(c)
			}
		},
	}
}

// printStageRun prints the stop summary of a stage command: the --json
// report on stdout, or a line on stderr.
func (a *app) printStageRun(name string, f *stageFlags, run pipeline.StageRun) error {
	c := run.Counts
	if f.json {
		return writeJSON(a.stdout, stageReport{In: c.In, Out: c.Out, Dead: c.Dead, Duplicates: c.Dropped, Batches: c.Batches})
	}
	el := run.Elapsed
	fmt.Fprintf(a.stderr, "%s: %d in, %d out, %d dead letters, %d duplicates dropped, %d batches in %.1fs (%.0f rows/s)\n",
		name, c.In, c.Out, c.Dead, c.Dropped, c.Batches, el.Seconds(), rate(c.In, el))
	return nil
}
