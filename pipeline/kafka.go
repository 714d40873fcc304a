package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// ClientConfig says how to reach a Kafka cluster. The zero value with Brokers
// set talks plaintext without authentication.
type ClientConfig struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// TLS, when non-nil, encrypts every connection.
	TLS *tls.Config
	// SASL, when non-nil, authenticates every connection.
	SASL sasl.Mechanism
	// ClientID is sent to the brokers. Default: "domainflow".
	ClientID string
	// Logger receives the warnings of calls retried through a broker outage
	// (Retry). Default: slog.Default().
	Logger *slog.Logger
}

func (c ClientConfig) clientID() string {
	if c.ClientID == "" {
		return "domainflow"
	}
	return c.ClientID
}

func (c ClientConfig) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no brokers given")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("broker address %q: %w", b, err)
		}
	}
	return nil
}

// Dialer returns a kafka-go dialer for Readers and Conns.
func (c ClientConfig) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      c.clientID(),
		Timeout:       10 * time.Second,
		DualStack:     true,
		TLS:           c.TLS,
		SASLMechanism: c.SASL,
	}
}

// Transport returns a kafka-go transport for Writers and Clients.
func (c ClientConfig) Transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    c.clientID(),
		DialTimeout: 10 * time.Second,
		IdleTimeout: 60 * time.Second,
		MetadataTTL: 2 * time.Second,
		TLS:         c.TLS,
		SASL:        c.SASL,
	}
}

// Client returns a kafka-go client for admin requests. Its connections
// stay open for reuse; call CloseClient when done with it.
func (c ClientConfig) Client() *kafka.Client {
	return &kafka.Client{
		Addr:      kafka.TCP(c.Brokers...),
		Timeout:   10 * time.Second,
		Transport: c.Transport(),
	}
}

// CloseClient closes the idle connections of a client made by Client.
func CloseClient(cl *kafka.Client) {
	if t, ok := cl.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

// TLSOptions are the TLS settings a user gives on the command line.
type TLSOptions struct {
	Enable             bool   // use TLS
	CAFile             string // PEM bundle of CAs to trust; default: the system pool
	CertFile, KeyFile  string // client certificate for mutual TLS
	ServerName         string // overrides the name checked in the server certificate
	InsecureSkipVerify bool   // do not verify the server certificate (testing only)
}

// Config builds the tls.Config, or returns nil when TLS is off and no TLS
// option was given.
func (o TLSOptions) Config() (*tls.Config, error) {
	if !o.Enable && o.CAFile == "" && o.CertFile == "" && !o.InsecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // the user asked for it
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no PEM certificate in %s", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("tls: a client certificate needs both --tls-cert and --tls-key")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// SASLOptions are the SASL settings a user gives on the command line.
type SASLOptions struct {
	Mechanism string // "", "plain", "scram-sha-256" or "scram-sha-512"
	User      string
	Password  string
}

// Build returns the kafka-go mechanism, or nil when Mechanism is empty.
func (o SASLOptions) Build() (sasl.Mechanism, error) {
	m := strings.ToLower(o.Mechanism)
	if m == "" || m == "none" {
		return nil, nil
	}
	if o.User == "" {
		return nil, fmt.Errorf("sasl %s: a user name is required", m)
	}
	switch m {
	case "plain":
		return plain.Mechanism{Username: o.User, Password: o.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, o.User, o.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, o.User, o.Password)
	default:
		return nil, fmt.Errorf("sasl: unknown mechanism %q (want plain, scram-sha-256 or scram-sha-512)", o.Mechanism)
	}
}

// ---------------------------------------------------------------------------
// Source and Sink

// Source delivers messages of one or more topics, each partition in order,
// and accepts commits. Fetch blocks until a message arrives or ctx ends; a
// finite source returns io.EOF once it is exhausted. Commit records that
// every message up to and including the given ones (per partition) is done.
type Source interface {
	Fetch(ctx context.Context) (kafka.Message, error)
	Commit(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Sink publishes messages. Write returns only when every message is
// acknowledged; on error any subset may have been written. msg.Partition
// selects the partition (modulo the topic's partition count). A Sink over
// Kafka returns kafka-go's errors as they are, so that IsTooLarge and
// kafka.WriteErrors tell which messages were refused for their size (see
// WriteSplitting).
type Sink interface {
	Write(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// SourceConfig configures a consumer-group source on Kafka.
type SourceConfig struct {
	Client  ClientConfig
	Topics  []string
	GroupID string
	// StartAtEnd makes a group with no committed offset start at the end of
	// the topics instead of the beginning. Default: beginning.
	StartAtEnd bool
	// HeartbeatInterval of the group member. Default: 500ms (rebalances take
	// about one interval).
	HeartbeatInterval time.Duration
	// SessionTimeout after which a dead member's partitions move. Default: 6s
	// (the embedded broker's minimum).
	SessionTimeout time.Duration
	// MaxBytes fetched per request; must exceed the largest message.
	// Default: schemas.MaxMessageBytes (32 MiB).
	MaxBytes int
	// MaxWait for a fetch to fill before it returns. Default: 100ms.
	MaxWait time.Duration
	// RebalanceTimeout is how long the coordinator waits for members to
	// rejoin in a rebalance. Default: 10s.
	RebalanceTimeout time.Duration
	// GroupTimeout is the network timeout of each consumer-group request;
	// a join waits this long on top of RebalanceTimeout. Default: 20s (see
	// KafkaSource for why it is long).
	GroupTimeout time.Duration
	// StallAfter is how long a partition of the input that has messages may
	// keep its committed offset, while another member holds it, before this
	// member rejoins the group (see KafkaSource). Default: 2 × (SessionTimeout
	// + RebalanceTimeout).
	StallAfter time.Duration
	// NoStallWatch turns that watch off.
	NoStallWatch bool
}

// SinkConfig configures a Kafka sink.
type SinkConfig struct {
	Client ClientConfig
	// BatchBytes caps one produce batch, and so the largest message (key,
	// value and headers); it must stay below the topics' max.message.bytes
	// by the room the record-batch framing takes. Default:
	// schemas.MaxBatchBytes (31 MiB, for topics of schemas.MaxMessageBytes).
	BatchBytes int64
	// BatchTimeout is how long a partial batch waits. Default: 2ms.
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request. Default: 30s.
	WriteTimeout time.Duration
}

// KafkaSink is the synchronous Sink: a Producer that keeps each message on
// the partition number it names (ProducerConfig.KeepPartition), and a Write
// that waits for every acknowledgement.
type KafkaSink struct {
	p *Producer
}

var _ Sink = (*KafkaSink)(nil)

// NewKafkaSink returns a sink; topics must exist (see EnsureTopics).
func NewKafkaSink(cfg SinkConfig) (*KafkaSink, error) {
	p, err := NewProducer(ProducerConfig{Client: cfg.Client, KeepPartition: true, BatchBytes: cfg.BatchBytes,
		BatchTimeout: cfg.BatchTimeout, WriteTimeout: cfg.WriteTimeout})
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	return &KafkaSink{p: p}, nil
}

// Write produces msgs and waits for every acknowledgement. The messages of
// one call for one partition go in one produce batch as long as they fit in
// BatchBytes and WriteChunkMessages. When some fail, the error is a
// kafka-go WriteErrors with one entry per message (nil for those
// acknowledged); IsTooLarge and Retryable read it.
func (s *KafkaSink) Write(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	res := make(chan []error, 1)
	if err := s.p.Produce(ctx, msgs, func(_ []Message, errs []error) { res <- errs }); err != nil {
		return err
	}
	select {
	case errs := <-res:
		if errs == nil {
			return nil
		}
		return kafka.WriteErrors(errs)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes and closes the writer.
func (s *KafkaSink) Close() error { return s.p.Close() }

// SamePartition is a kafka-go Balancer that sends a message to the partition
// number set in its Partition field (modulo the partition count), so a stage
// writes what it derived from input partition p to output partition p.
type SamePartition struct{}

// Balance implements kafka.Balancer.
func (SamePartition) Balance(msg kafka.Message, partitions ...int) int {
	if len(partitions) == 0 {
		return 0
	}
	p := msg.Partition
	if p < 0 {
		p = -p
	}
	return partitions[p%len(partitions)]
}

// KeyPartition returns the partition, of n, that the Java client,
// librdkafka and a Producer by default (murmur2) send a message keyed key
// to, so that a producer that sets partitions itself (KeepPartition) can
// place a document where its id as key would have put it. key must not be
// empty.
func KeyPartition(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return kafka.Murmur2Balancer{Consistent: true}.Balance(kafka.Message{Key: key}, parts...)
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orInt64(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

func orDur(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
