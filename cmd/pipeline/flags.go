package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/domainflow/domainflow/pipeline"
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
// command line from the config file at path: a JSON or YAML mapping of flag
// name to value (a list for flags that repeat). A key that is no flag of any
// pipeline command is an error; a key that belongs to another command is
// ignored, so that one file can serve several commands.
func applyConfigFile(cmd *cobra.Command, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &usageError{err: fmt.Errorf("config: %w", err)}
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return &usageError{err: fmt.Errorf("config %s: %w", path, err)}
	}
	known := allFlagNames(cmd.Root())
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fs := cmd.Flags()
	for _, k := range keys {
		switch {
		case k == "config":
			return usagef("config %s: key %q: a config file cannot name another config file", path, k)
		case !known[k]:
			return usagef("config %s: unknown key %q (not a flag of any pipeline command)", path, k)
		}
		f := fs.Lookup(k)
		if f == nil || f.Changed {
			continue // another command's flag, or set on the command line
		}
		vals, err := configValues(values[k])
		if err != nil {
			return usagef("config %s: key %q: %v", path, k, err)
		}
		for _, v := range vals {
			if err := f.Value.Set(v); err != nil {
				return usagef("config %s: key %q: %v", path, k, err)
			}
		}
		f.Changed = true
	}
	return nil
}

// configValues turns one config file value into the strings given to the
// flag's Set: one for a scalar, one per element for a list.
func configValues(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, errors.New("no value")
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := configScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := configScalar(x)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func configScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time: // YAML reads a bare date as a timestamp
		return x.Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("value of type %T, want a string, number, boolean or a list of them", v)
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
type kafkaFlags struct {
	process.KafkaFlags
}

func (k *kafkaFlags) register(fs *pflag.FlagSet) { k.Register(fs) }

// args returns the flags that give another command the same connection
// (the SASL password travels in the environment variable, not in args).
func (k *kafkaFlags) args() []string { return k.Args() }

// client returns the connection settings the flags describe.
func (k *kafkaFlags) client() (pipeline.ClientConfig, error) { return k.Client() }

// connect returns the client settings once the brokers answer.
func (k *kafkaFlags) connect(ctx context.Context, log *slog.Logger) (pipeline.ClientConfig, error) {
	return k.Connect(ctx, log)
}

// ---------------------------------------------------------------------------
// Helpers for flag values

// splitList splits a comma-separated list, dropping empty elements.
func splitList(s string) []string { return process.SplitList(s) }

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
