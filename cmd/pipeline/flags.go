package main

import (
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline/process"
)

// Environment variables that supply flag defaults, and --brokers when
// neither the flag nor DOMAINFLOW_BROKERS is set.
const (
	envBrokers     = process.EnvBrokers
	defaultBrokers = process.DefaultBrokers
)

// ---------------------------------------------------------------------------
// Global flags: config file, logging, metrics

// globalFlags are the persistent flags of the root command.
type globalFlags struct {
	configFile  string
	logLevel    string
	logFormat   string
	metricsAddr string
}

func (g *globalFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&g.configFile, "config", "", "JSON or YAML `file` of flag name → value; values apply to flags not set on the command line")
	fs.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&g.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`host:port`/metrics; a bare :PORT listens on loopback (127.0.0.1) only, 0.0.0.0:PORT or [::]:PORT on every interface (default: off)")
}

// newLogger returns the stderr logger the flags ask for.
func (g *globalFlags) newLogger(a *app) (*slog.Logger, error) {
	lf := process.LogFlags{Level: g.logLevel, Format: g.logFormat}
	return lf.Logger(a.stderr)
}

// applyConfigFile sets the flags of cmd that the user did not set on the
// command line from the config file at path (process.ApplyConfig); a key
// that is no flag of any pipeline command is an error, one of another
// command is ignored, so that one file can serve several commands.
func applyConfigFile(cmd *cobra.Command, path string) error {
	known := allFlagNames(cmd.Root())
	return process.ApplyConfig(cmd.Flags(), path, func(k string) bool { return known[k] }, "pipeline command")
}

// allFlagNames returns the names of every flag of every command under root.
func allFlagNames(root *cobra.Command) map[string]bool {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { names[f.Name] = true }
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return names
}

// ---------------------------------------------------------------------------
// Kafka connection flags

// kafkaFlags are the connection flags of every command that talks to Kafka
// (process.KafkaFlags, which a user's own stage program shares).
type kafkaFlags = process.KafkaFlags

// ---------------------------------------------------------------------------
// Helpers for flag values

// parseKeyValues parses key=value pairs (topic configs).
func parseKeyValues(flag string, pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--%s %q: want key=value", flag, p)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}
