package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx: the command stops gracefully.
	// Then the default handling is back, so a second one ends the process at
	// once (e.g. when it waits on a read from stdin).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	// DOMAINFLOW_CPUPROFILE=FILE profiles the whole command (for
	// benchmarking; see BENCHMARKS.md).
	if path := os.Getenv("DOMAINFLOW_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if code != 0 {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}

// run executes the command line args and returns the exit status. Cancelling
// ctx asks the running command to stop gracefully.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "pipeline: %s\n", oneLine(err.Error()))
	if isUsage(err) {
		return 2
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// usageError marks an error in how the command was called: exit status 2.
type usageError struct {
	err error
	cmd string // command path for the --help hint; "" for none
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.cmd)
}

func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue) || process.IsUsage(err)
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// app holds what every command shares: the standard streams, the global
// flags and what the root command sets up from them (logger, metrics).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	global globalFlags
	log    *slog.Logger

	reg        *prometheus.Registry // non-nil when --metrics-addr is set
	metrics    *pipeline.Metrics    // created on first use
	metricsSrv *process.MetricsServer
	metricsURL string // where metricsSrv serves
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
		log:    slog.New(slog.NewTextHandler(stderr, nil)),
	}
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pipeline",
		Short: "Stream documents through Kafka into per-domain expert models",
		Long: `pipeline is the command line of domainflow, which turns a stream of documents
into domain experts: documents arrive on Kafka (or are replayed from Parquet),
are featurized, assigned to a discovered domain and pushed to per-domain
training consumers.

The commands here run the embedded Kafka-protocol broker, move documents into
Kafka, show what is on a topic or in a file, manage topics and run stages.

Every flag may also come from a JSON or YAML file given with --config (flag
name → value); flags on the command line win. Kafka commands take --brokers
(default $` + envBrokers + `, else ` + defaultBrokers + `) and the --tls-* and --sasl-*
flags. Logs go to stderr; reports go to stdout, as exactly one JSON object with
--json.

Exit status: 0 on success or a graceful stop (SIGINT/SIGTERM; 'pipeline run'
then says how to resume), 1 on an error, 2 on a usage error, 3 when ingest or
replay delivered everything it read but input files were incomplete (see
'pipeline ingest --help').`,
		Example: `  pipeline broker --listen 127.0.0.1:9092 &
  pipeline ingest corpus.jsonl.gz
  pipeline inspect --topic docs.raw --max 5
  pipeline topics list`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              noSubcommand,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: a.setup,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: err, cmd: c.CommandPath()}
	})
	a.global.register(root.PersistentFlags())
	root.AddCommand(
		a.brokerCmd(),
		a.ingestCmd(),
		a.replayCmd(),
		a.inspectCmd(),
		a.topicsCmd(),
		a.identityCmd(),
		a.embedCmd(),
		a.benchCmd(),
		a.clusterCmd(),
		a.domainsCmd(),
		a.trainCmd(),
		a.expertsCmd(),
		a.evalCmd(),
		a.archiveCmd(),
		a.runCmd(),
		a.reportCmd(),
		a.versionCmd(),
	)
	return root
}

// noSubcommand rejects arguments of a command that only groups subcommands.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()), cmd: cmd.CommandPath()}
	}
	return nil
}

// noArgs rejects positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{err: fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args), cmd: cmd.CommandPath()}
	}
	return nil
}

// argsBetween requires lo to hi positional arguments (hi < 0: no upper
// bound), called what in the error message.
func argsBetween(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		var err error
		switch {
		case len(args) < lo:
			err = fmt.Errorf("%s: no %s given", cmd.Name(), what)
		case hi >= 0 && len(args) > hi:
			err = fmt.Errorf("%s: at most %d %s, got %d", cmd.Name(), hi, what, len(args))
		}
		if err != nil {
			return &usageError{err: err, cmd: cmd.CommandPath()}
		}
		return nil
	}
}

// setup runs before every command: it applies the config file, then sets up
// logging and the metrics endpoint.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	if a.global.configFile != "" {
		if err := applyConfigFile(cmd, a.global.configFile); err != nil {
			return err
		}
	}
	log, err := a.global.newLogger(a)
	if err != nil {
		return err
	}
	a.log = log
	if addr := a.global.metricsAddr; addr != "" {
		if err := a.serveMetrics(addr); err != nil {
			return err
		}
	}
	return nil
}

// serveMetrics serves the Prometheus registry at http://addr/metrics until
// close (process.ServeMetrics).
func (a *app) serveMetrics(addr string) error {
	ms, err := process.ServeMetrics(addr, a.log)
	if err != nil {
		return err
	}
	a.metricsSrv, a.metricsURL, a.reg = ms, ms.URL, ms.Registry
	return nil
}

// stageMetrics returns the runtime's metrics registered on the served
// registry, or nil when --metrics-addr is not set.
func (a *app) stageMetrics() *pipeline.Metrics {
	if a.reg == nil {
		return nil
	}
	if a.metrics == nil {
		a.metrics = pipeline.NewMetrics(a.reg)
	}
	return a.metrics
}

// close releases what setup started.
func (a *app) close() {
	if a.metricsSrv != nil {
		_ = a.metricsSrv.Close()
	}
}
