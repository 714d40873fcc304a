package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/schemas"
)

// stageFlags are the flags every Kafka stage command shares: the
// connection and process.StageFlags (topics, group, micro-batches, --json).
type stageFlags struct {
	kafka kafkaFlags
	process.StageFlags
}

// register adds the flags; the topic flags are named inFlag and outFlag and
// default to in and out.
func (f *stageFlags) register(fs *pflag.FlagSet, inFlag, in, outFlag, out, group string) {
	f.kafka.Register(fs)
	f.Register(fs, inFlag, in, outFlag, out, group)
}

// stageReport is the --json report of a stage command.
type stageReport = process.Report

// runStage runs stage between f.in and f.out on Kafka until ctx ends, then
// reports its counts (process.RunStage). cc must be connected.
// opts adjust the runner's configuration.
func (a *app) runStage(ctx context.Context, name string, f *stageFlags, cc pipeline.ClientConfig, stage pipeline.Stage, accept []schemas.Kind, log *slog.Logger, opts ...func(*pipeline.RunnerConfig)) error {
	rep, err := process.RunStage(ctx, process.StageConfig{
		Name:  name,
		Flags: &f.StageFlags, Client: cc, Stage: stage, Accept: accept, Metrics: a.stageMetrics(), Logger: log, Options: opts,
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
	if f.JSON {
		return writeJSON(a.stdout, rep)
	}
	fmt.Fprintln(a.stderr, rep.Summary(name))
	return nil
}
