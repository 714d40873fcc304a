package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/domainflow/domainflow/schemas"
)

// BrokerConfig configures the embedded Kafka-protocol broker.
type BrokerConfig struct {
	// Listen is the host:port to listen on. Default: 127.0.0.1:9092; port 0
	// picks a free port (see Broker.Addr).
	Listen string
	// DataDir makes the broker durable: topics, records and committed offsets
	// are written there and reloaded on start. Empty: in memory only.
	DataDir string
	// SyncWrites fsyncs every produced batch (survives power loss, not only
	// a killed process). Only with DataDir.
	SyncWrites bool
	// Partitions is the partition count of auto-created topics. Default: 4.
	Partitions int
	// MaxMessageBytes is the broker's message.max.bytes, the limit of topics
	// without a max.message.bytes of their own. Default:
	// schemas.MaxMessageBytes (32 MiB).
	MaxMessageBytes int
	// RetentionMs, when positive, sets log.retention.ms so a long-running
	// in-memory broker does not grow without bound. Default: keep everything.
	RetentionMs int64
	// Logger receives the broker's warnings and errors. Default: discard.
	Logger *slog.Logger
}

// Broker is a running embedded broker (github.com/twmb/franz-go/pkg/kfake):
// one node speaking the Kafka wire protocol on loopback.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// StartBroker starts an embedded broker.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:9092"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker: listen address %q: bad port", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if cfg.SyncWrites && cfg.DataDir == "" {
		return nil, errors.New("broker: sync writes need a data dir")
	}
	configs := map[string]string{
		"message.max.bytes": strconv.Itoa(orInt(cfg.MaxMessageBytes, schemas.MaxMessageBytes)),
	}
	if cfg.RetentionMs > 0 {
		configs["log.retention.ms"] = strconv.FormatInt(cfg.RetentionMs, 10)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return nil, err
			}
			// Answers Kafka's own CLI tools can take (brokerfix.go).
			return fixListener{l}, nil
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(orInt(cfg.Partitions, 4)),
		kfake.BrokerConfigs(configs),
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogKfake{cfg.Logger}))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start on %s: %w", listen, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, errors.New("broker: started without a listener")
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Client returns the client configuration that reaches this broker.
func (b *Broker) Client() ClientConfig { return ClientConfig{Brokers: []string{b.addr}} }

// Close stops the broker; with a data dir, its state is flushed to disk.
func (b *Broker) Close() { b.c.Close() }

// slogKfake adapts slog to kfake's Logger; kfake's info and debug lines (one
// per request) are dropped below slog's debug level.
type slogKfake struct{ l *slog.Logger }

func (s slogKfake) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelDebug
	default:
		lv = slog.LevelDebug - 4
	}
	if !s.l.Enabled(context.Background(), lv) {
		return
	}
	s.l.Log(context.Background(), lv, fmt.Sprintf(format, args...), "component", "broker")
}
