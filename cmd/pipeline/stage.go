package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
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
type stageReport = process.Report

// runStage runs stage between f.in and f.out on Kafka until ctx ends, then
// reports its counts (process.RunStage). cc must be connected.
// opts adjust the runner's configuration.
func (a *app) runStage(ctx context.Context, name string, f *stageFlags, cc pipeline.ClientConfig, stage pipeline.Stage, accept []schemas.Kind, log *slog.Logger, opts ...func(*pipeline.RunnerConfig)) error {
	rep, err := process.RunStage(ctx, process.StageConfig{
		Name: name,
		Flags: &process.StageFlags{In: f.in, Out: f.out, PerOutputTopic: f.perOutputTopic, Group: f.group,
			BatchRecords: f.batchRecords, BatchBytes: f.batchBytes, Linger: f.linger},
		Client: cc, Stage: stage, Accept: accept, Metrics: a.stageMetrics(), Logger: log, Options: opts,
	})
	if err != nil {
		return err
	}
	return a.printReport(name, f, rep)
}

// printStageRun prints the stop summary of a stage run.
func (a *app) printStageRun(name string, f *stageFlags, run pipeline.StageRun) error {
	return a.printReport(name, f, process.ReportOf(run))
}

// printReport prints the stop summary of a stage command: the --json
// report on stdout, or a line on stderr.
func (a *app) printReport(name string, f *stageFlags, rep process.Report) error {
	if f.json {
		return writeJSON(a.stdout, rep)
	}
	fmt.Fprintln(a.stderr, rep.Summary(name))
	return nil
}
