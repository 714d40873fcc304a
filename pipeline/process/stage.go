package process

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// StageFlags are the flags of a stage process: its topics, consumer group
// and micro-batch sizes.
type StageFlags struct {
	In, Out string
	// PerOutputTopic marks a stage that names the topic of each output
	// (Result.Outputs): it has no output topic flag and Out stays "".
	PerOutputTopic bool
	Group          string
	BatchRecords   int
	BatchBytes     int
	Linger         time.Duration
	JSON           bool
}

// Register adds the flags to fs; the topic flags are named inFlag and
// outFlag (usually "in" and "out") and default to in and out. With
// PerOutputTopic set there is no outFlag.
func (f *StageFlags) Register(fs *pflag.FlagSet, inFlag, in, outFlag, out, group string) {
	fs.StringVar(&f.In, inFlag, in, "input `topic`")
	if !f.PerOutputTopic {
		fs.StringVar(&f.Out, outFlag, out, "output `topic`")
	}
	fs.StringVar(&f.Group, "group", group, "consumer `group` id")
	fs.IntVar(&f.BatchRecords, "batch-records", 2000, "most messages in one micro-batch")
	ByteSizeVar(fs, &f.BatchBytes, "batch-bytes", 8<<20, "most payload `bytes` in one micro-batch")
	fs.DurationVar(&f.Linger, "linger", 20*time.Millisecond, "how long a micro-batch waits to fill after its first message")
	fs.BoolVar(&f.JSON, "json", false, `print {"in","out","dead","duplicates","batches","seconds","busy_seconds"} as JSON on stdout when stopped`)
}

// Validate checks the flags of stage name; its errors are UsageErrors.
func (f *StageFlags) Validate(name string) error {
	switch {
	case f.In == "" || f.Group == "" || (f.Out == "" && !f.PerOutputTopic):
		return Usagef("%s: the input and output topics and --group must not be empty", name)
	case f.In == f.Out:
		return Usagef("%s: input and output are both %s", name, f.In)
	case f.Out == pipeline.TopicDeadLetter:
		return Usagef("%s: the output %s is the dead-letter topic", name, f.Out)
	case f.BatchRecords < 1 || f.BatchBytes < 1:
		return Usagef("%s: --batch-records and --batch-bytes must be at least 1", name)
	case f.Linger <= 0:
		return Usagef("%s: --linger %v: want a positive duration", name, f.Linger)
	}
	return nil
}

// Report is what a stage did, printed when it stops (--json prints it as
// JSON).
type Report struct {
	In   int64 `json:"in"`
	Out  int64 `json:"out"`
	Dead int64 `json:"dead"`
	// Duplicates are input rows dropped as re-sent copies of rows already
	// handled: in = out + dead + duplicates.
	Duplicates int64 `json:"duplicates"`
	Batches    int64 `json:"batches"`
	// Elapsed is how long the stage ran (JSON "seconds"), Busy the part of
	// it during which it had a batch in hand (JSON "busy_seconds"; see
	// pipeline.Counts.Busy): the rest it waited for input.
	Elapsed time.Duration `json:"-"`
	Busy    time.Duration `json:"-"`
}

// MarshalJSON writes the counts with "seconds" and "busy_seconds".
func (r Report) MarshalJSON() ([]byte, error) {
	type counts Report // without this method
	return json.Marshal(struct {
		counts
		Seconds     float64 `json:"seconds"`
		BusySeconds float64 `json:"busy_seconds"`
	}{counts(r), roundSeconds(r.Elapsed), roundSeconds(r.Busy)})
}

// Summary is the one-line stop summary of stage name. It gives two rates:
// rows per second while busy (the stage's speed) and over the whole run
// (which counts the time spent waiting for input).
func (r Report) Summary(name string) string {
	return fmt.Sprintf("%s: %d in, %d out, %d dead letters, %d duplicates dropped, %d batches in %.1fs, busy %.1fs (%.0f rows/s while busy, %.0f rows/s over the run)",
		name, r.In, r.Out, r.Dead, r.Duplicates, r.Batches, r.Elapsed.Seconds(), r.Busy.Seconds(),
		pipeline.PerSecond(r.In, r.Busy), pipeline.PerSecond(r.In, r.Elapsed))
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	type counts Report // without this method
	var v struct {
		counts
		Seconds     float64 `json:"seconds"`
		BusySeconds float64 `json:"busy_seconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report(v.counts)
	r.Elapsed = time.Duration(v.Seconds * float64(time.Second))
	r.Busy = time.Duration(v.BusySeconds * float64(time.Second))
	return nil
}

func roundSeconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// StageConfig is one stage process: a Stage between two topics.
type StageConfig struct {
	Name   string // the stage's name in logs, metrics and dead letters
	Flags  *StageFlags
	Client pipeline.ClientConfig // connected (KafkaFlags.Connect)
	Stage  pipeline.Stage
	// Accept lists the payload kinds the stage takes (see
	// pipeline.RunnerConfig.Accept).
	Accept  []schemas.Kind
	Metrics *pipeline.Metrics // nil: none
	Logger  *slog.Logger      // default slog.Default()
	// Options adjust the runner's configuration before it starts.
	Options []func(*pipeline.RunnerConfig)
}

// RunStage runs cfg.Stage between its input and output topics on Kafka
// until ctx ends (pipeline.RunStage: it waits for the input topic, riding
// out broker outages, creates the output and dead-letter topics with the
// input's partition count, joins the consumer group and runs a
// pipeline.Runner, OneToOne: every input row ends in one place), then
// reports its counts. The source and sink it opens it closes.
func RunStage(ctx context.Context, cfg StageConfig) (Report, error) {
	f := cfg.Flags
	run, err := pipeline.RunStage(ctx, pipeline.StageProcessConfig{
		Name: cfg.Name, Client: cfg.Client, InputTopic: f.In, Group: f.Group, OutputTopic: f.Out,
		Stage: cfg.Stage, Accept: cfg.Accept, OneToOne: true,
		BatchMaxRecords: f.BatchRecords, BatchMaxBytes: f.BatchBytes, Linger: f.Linger,
		Metrics: cfg.Metrics, Logger: cfg.Logger,
		Configure: func(c *pipeline.RunnerConfig) {
			for _, o := range cfg.Options {
				o(c)
			}
		},
	})
	return ReportOf(run), err
}

// ReportOf is the Report of a stage run.
func ReportOf(run pipeline.StageRun) Report {
	c := run.Counts
	return Report{In: c.In, Out: c.Out, Dead: c.Dead, Duplicates: c.Dropped, Batches: c.Batches, Elapsed: run.Elapsed, Busy: c.Busy}
}
