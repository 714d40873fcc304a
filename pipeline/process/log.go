package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
)

// LogFlags are the logging and metrics flags of a program.
type LogFlags struct {
	Level       string // debug, info, warn or error
	Format      string // text or json
	MetricsAddr string // serve Prometheus metrics here ("": off)
}

// Register adds --log-level, --log-format and --metrics-addr to fs.
func (g *LogFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&g.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&g.Format, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&g.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`host:port`/metrics; a bare :PORT listens on loopback (127.0.0.1) only, 0.0.0.0:PORT or [::]:PORT on every interface (default: off)")
}

// Logger returns the logger the flags describe, writing to w.
func (g *LogFlags) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(g.Level) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, Usagef("--log-level %q: want debug, info, warn or error", g.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.Format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format %q: want text or json", g.Format)
}

// MetricsServer serves a Prometheus registry at /metrics.
type MetricsServer struct {
	URL      string // http://host:port/metrics
	Registry *prometheus.Registry
	srv      *http.Server
}

// ServeMetrics serves a new registry (pipeline.NewRegistry) at
// http://addr/metrics until Close; a host-less addr (":9100") listens on
// loopback only (ListenAddr). Errors of the server after it started go to
// log.
func ServeMetrics(addr string, log *slog.Logger) (*MetricsServer, error) {
	addr, err := ListenAddr(addr)
	if err != nil {
		return nil, Usagef("--metrics-addr: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := &MetricsServer{URL: "http://" + ln.Addr().String() + "/metrics", Registry: pipeline.NewRegistry()}
	mux := http.NewServeMux()
	mux.Handle("/metrics", pipeline.MetricsHandler(m.Registry))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { // owner: m; ends when Close shuts the server down
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "url", m.URL)
	return m, nil
}

// Close shuts the server down, waiting up to 2 s for requests in flight.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}

// ListenAddr is the address a server listens on for the host:port the user
// gave. Every server of domainflow follows one rule: a host-less ":PORT"
// means loopback, 127.0.0.1:PORT, so that nothing is exposed to the network
// unless an address says so; "0.0.0.0:PORT" or "[::]:PORT" listens on every
// interface, and any other host as given.
func ListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q: bad port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
