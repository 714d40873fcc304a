package pipetest

import (
	"sync"
	"testing"

	"github.com/domainflow/domainflow/pipeline"
)

// RestartableBroker is an embedded broker with a data dir that a test stops
// and starts again on the same address, keeping its topics, records and
// committed offsets: a broker outage as clients see it.
type RestartableBroker struct {
	tb   testing.TB
	cfg  pipeline.BrokerConfig
	addr string

	mu sync.Mutex
	b  *pipeline.Broker // nil while stopped
}

// StartRestartable starts a durable embedded broker on a free loopback port
// (cfg.Listen and cfg.DataDir default to that and a temp dir) and closes it
// when the test ends.
func StartRestartable(tb testing.TB, cfg pipeline.BrokerConfig) *RestartableBroker {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	b, err := pipeline.StartBroker(cfg)
	if err != nil {
		tb.Fatalf("start embedded broker: %v", err)
	}
	cfg.Listen = b.Addr()
	r := &RestartableBroker{tb: tb, cfg: cfg, addr: b.Addr(), b: b}
	tb.Cleanup(r.Stop)
	return r
}

// Addr is the host:port clients connect to, the same across restarts.
func (r *RestartableBroker) Addr() string { return r.addr }

// Client returns the client configuration that reaches the broker.
func (r *RestartableBroker) Client() pipeline.ClientConfig {
	return pipeline.ClientConfig{Brokers: []string{r.addr}}
}

// Stop closes the broker (its state stays in the data dir); connections are
// refused until Start. Stopping a stopped broker does nothing.
func (r *RestartableBroker) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b != nil {
		r.b.Close()
		r.b = nil
	}
}

// Start starts the broker again on its address and data dir. Starting a
// running broker does nothing.
func (r *RestartableBroker) Start() {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b != nil {
		return
	}
	b, err := pipeline.StartBroker(r.cfg)
	if err != nil {
		r.tb.Fatalf("restart embedded broker on %s: %v", r.addr, err)
	}
	r.b = b
}
