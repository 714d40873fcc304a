package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Options describe a stage program for Main and Run.
type Options struct {
	// In, Out and Group are the defaults of --in, --out and --group.
	// Default: docs.raw, docs.<name>, <name>.
	In, Out, Group string
	// PerOutputTopic: the stage names the topic of each output, so there
	// is no --out.
	PerOutputTopic bool
	// Accept lists the payload kinds the stage takes. Default: documents
	// (JSON or Arrow), schemas.KindDocument.
	Accept []schemas.Kind
	// About is the paragraph --help prints under the usage line.
	About string
	// Flags, if set, registers the stage's own flags.
	Flags func(fs *pflag.FlagSet)
}

// Main runs stage as a program with the arguments of the process and
// exits: 0 when it stopped on SIGINT or SIGTERM (the first signal stops it
// gracefully: what the sink acknowledged is committed; a second ends it at
// once), 2 on a usage error, 1 when it failed. See Run.
func Main(name string, stage pipeline.Stage, opt Options) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := Run(ctx, name, stage, opt, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run parses args, connects to the brokers and runs stage until ctx ends,
// printing the stop summary on stderr (or the Report as JSON on stdout with
// --json); it returns the exit status Main exits with. Errors are printed
// on stderr as "<name>: <error>".
func Run(ctx context.Context, name string, stage pipeline.Stage, opt Options, args []string, stdout, stderr io.Writer) int {
	var (
		kf KafkaFlags
		sf = StageFlags{PerOutputTopic: opt.PerOutputTopic}
		lf LogFlags
	)
	in, out, group := opt.In, opt.Out, opt.Group
	if in == "" {
		in = pipeline.TopicRaw
	}
	if out == "" && !opt.PerOutputTopic {
		out = "docs." + name
	}
	if group == "" {
		group = name
	}
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	kf.Register(fs)
	sf.Register(fs, "in", in, "out", out, group)
	lf.Register(fs)
	var configFile string
	fs.StringVar(&configFile, "config", "", "JSON or YAML `file` of flag name → value; values apply to flags not set on the command line")
	if opt.Flags != nil {
		opt.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\n", name)
		if opt.About != "" {
			fmt.Fprintf(stderr, "%s\n\n", opt.About)
		}
		fmt.Fprintf(stderr, "Example:\n  %s --brokers 127.0.0.1:9092 --in %s --group %s\n\nFlags:\n%s", name, in, group, fs.FlagUsages())
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if IsUsage(err) {
			return 2
		}
		return 1
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return fail(&UsageError{Err: err})
	}
	if fs.NArg() > 0 {
		return fail(Usagef("unexpected argument %q", fs.Arg(0)))
	}
	if configFile != "" {
		known := func(k string) bool { return fs.Lookup(k) != nil }
		if err := ApplyConfig(fs, configFile, known, name+" flag"); err != nil {
			return fail(err)
		}
	}
	if err := sf.Validate(name); err != nil {
		return fail(err)
	}
	log, err := lf.Logger(stderr)
	if err != nil {
		return fail(err)
	}
	log = log.With("stage", name)
	var met *pipeline.Metrics
	if lf.MetricsAddr != "" {
		ms, err := ServeMetrics(lf.MetricsAddr, log)
		if err != nil {
			return fail(err)
		}
		defer ms.Close()
		met = pipeline.NewMetrics(ms.Registry)
	}
	cc, err := kf.Connect(ctx, log)
	if err != nil {
		return fail(err)
	}
	accept := opt.Accept
	if len(accept) == 0 {
		accept = []schemas.Kind{schemas.KindDocument}
	}
	rep, err := RunStage(ctx, StageConfig{Name: name, Flags: &sf, Client: cc, Stage: stage, Accept: accept, Metrics: met, Logger: log})
	if err != nil {
		return fail(err)
	}
	if sf.JSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintln(stderr, rep.Summary(name))
	}
	return 0
}
