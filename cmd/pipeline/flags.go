package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/domainflow/domainflow/pipeline"
)

// Environment variables that supply flag defaults.
const (
	envBrokers      = "DOMAINFLOW_BROKERS"       // default of --brokers
	envSASLPassword = "DOMAINFLOW_SASL_PASSWORD" // default of --sasl-password, kept out of ps
)

// defaultBrokers is --brokers when neither the flag nor DOMAINFLOW_BROKERS
// is set.
const defaultBrokers = "127.0.0.1:9092"

// reachTimeout bounds the early check that the brokers answer.
const reachTimeout = 5 * time.Second

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
	var level slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", g.logFormat)
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

// kafkaFlags are the connection flags of every command that talks to Kafka.
type kafkaFlags struct {
	brokers []string
	tls     pipeline.TLSOptions
	sasl    pipeline.SASLOptions
}

func (k *kafkaFlags) register(fs *pflag.FlagSet) {
	def := defaultBrokers
	if env := strings.TrimSpace(os.Getenv(envBrokers)); env != "" {
		def = env
	}
	fs.StringSliceVar(&k.brokers, "brokers", splitList(def), "comma-separated Kafka bootstrap brokers, `host:port`; $"+envBrokers+" sets the default")
	fs.BoolVar(&k.tls.Enable, "tls", false, "connect with TLS")
	fs.StringVar(&k.tls.CAFile, "tls-ca", "", "PEM `file` of CAs to trust (default: the system pool); implies --tls")
	fs.StringVar(&k.tls.CertFile, "tls-cert", "", "PEM client certificate `file` for mutual TLS; implies --tls")
	fs.StringVar(&k.tls.KeyFile, "tls-key", "", "PEM client key `file` for mutual TLS")
	fs.StringVar(&k.tls.ServerName, "tls-server-name", "", "server `name` to verify in the broker certificate (default: the broker host)")
	fs.BoolVar(&k.tls.InsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only); implies --tls")
	fs.StringVar(&k.sasl.Mechanism, "sasl-mechanism", "", "SASL `mechanism`: plain, scram-sha-256 or scram-sha-512 (default: none)")
	fs.StringVar(&k.sasl.User, "sasl-user", "", "SASL user `name`")
	fs.StringVar(&k.sasl.Password, "sasl-password", "", "SASL `password` (default from $"+envSASLPassword+", which keeps it out of ps)")
}

// args returns the flags that give another command the same connection
// (the SASL password travels in the environment variable, not in args).
func (k *kafkaFlags) args() []string {
	out := []string{"--brokers", strings.Join(k.brokers, ",")}
	t := k.tls
	if t.Enable {
		out = append(out, "--tls")
	}
	for _, kv := range [][2]string{{"--tls-ca", t.CAFile}, {"--tls-cert", t.CertFile}, {"--tls-key", t.KeyFile},
		{"--tls-server-name", t.ServerName}, {"--sasl-mechanism", k.sasl.Mechanism}, {"--sasl-user", k.sasl.User}} {
		if kv[1] != "" {
			out = append(out, kv[0], kv[1])
		}
	}
	if t.InsecureSkipVerify {
		out = append(out, "--tls-insecure-skip-verify")
	}
	if k.sasl.Password != "" && os.Getenv(envSASLPassword) == "" {
		os.Setenv(envSASLPassword, k.sasl.Password)
	}
	return out
}

// client returns the connection settings the flags describe.
func (k *kafkaFlags) client() (pipeline.ClientConfig, error) {
	var cc pipeline.ClientConfig
	for _, b := range k.brokers {
		if b = strings.TrimSpace(b); b != "" {
			cc.Brokers = append(cc.Brokers, b)
		}
	}
	if len(cc.Brokers) == 0 {
		return cc, usagef("--brokers: no broker address given")
	}
	for _, b := range cc.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return cc, usagef("--brokers: %q is not host:port", b)
		}
	}
	tc, err := k.tls.Config()
	if err != nil {
		return cc, usagef("%v", err)
	}
	cc.TLS = tc
	so := k.sasl
	if so.Password == "" {
		so.Password = os.Getenv(envSASLPassword)
	}
	mech, err := so.Build()
	if err != nil {
		return cc, usagef("%v", err)
	}
	cc.SASL = mech
	return cc, nil
}

// connect returns the client settings and checks, with a short timeout, that
// the brokers answer, so that a wrong address fails at once with a clear
// message instead of after the client's retries.
func (k *kafkaFlags) connect(ctx context.Context, log *slog.Logger) (pipeline.ClientConfig, error) {
	cc, err := k.client()
	if err != nil {
		return cc, err
	}
	start := time.Now()
	if err := checkBrokers(ctx, cc, reachTimeout); err != nil {
		return cc, err
	}
	log.Debug("brokers reachable", "brokers", cc.Brokers, "tls", cc.TLS != nil, "sasl", k.sasl.Mechanism, "took", time.Since(start))
	cc.Logger = log
	return cc, nil
}

// checkBrokers dials every broker until one accepts a TCP connection, then
// asks it for metadata (which also proves TLS and SASL settings), all within
// timeout. Its error tells three failures apart, since each has its own
// remedy: no broker accepts a connection (a wrong address, or none running);
// one accepts but never answers within timeout (a broker that is stopped, e.g.
// SIGSTOP, or overloaded: the kernel accepts connections for a process that
// does not run); one answers with a protocol error at once (what a TLS or SASL
// setting that does not match the listener looks like).
func checkBrokers(ctx context.Context, cc pipeline.ClientConfig, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		d       net.Dialer
		dialErr error
		ok      bool
	)
	for _, b := range cc.Brokers {
		conn, err := d.DialContext(cctx, "tcp", b)
		if err == nil {
			conn.Close()
			ok = true
			break
		}
		dialErr = err
	}
	list := strings.Join(cc.Brokers, ",")
	if !ok {
		if dialErr == nil {
			dialErr = cctx.Err()
		}
		return fmt.Errorf("broker %s unreachable: %w", list, dialErr)
	}
	cl := cc.Client()
	defer pipeline.CloseClient(cl)
	_, err := cl.Metadata(cctx, &kafka.MetadataRequest{})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil: // the command is stopping
		return err
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("broker %s accepts connections but does not answer: no reply to a metadata request within %v; "+
			"it may be stopped (e.g. SIGSTOP) or overloaded; if it is a TLS or SASL listener, check --tls and --sasl-*: %w", list, timeout, err)
	}
	return fmt.Errorf("broker %s accepts connections but a metadata request failed at once, as it does when the client's "+
		"TLS or SASL settings do not match the listener: check --tls, --tls-* and --sasl-*: %w", list, err)
}

// ---------------------------------------------------------------------------
// Helpers for flag values

// splitList splits a comma-separated list, dropping empty elements.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

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
