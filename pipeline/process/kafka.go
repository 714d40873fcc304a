package process

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
)

// The environment variables KafkaFlags reads.
const (
	EnvBrokers      = "DOMAINFLOW_BROKERS"       // default of --brokers
	EnvSASLPassword = "DOMAINFLOW_SASL_PASSWORD" // default of --sasl-password, kept out of ps
)

// DefaultBrokers is the default of --brokers when $DOMAINFLOW_BROKERS is
// not set.
const DefaultBrokers = "127.0.0.1:9092"

// ReachTimeout bounds Connect's check that the brokers answer.
const ReachTimeout = 5 * time.Second

// KafkaFlags are the connection flags of every program that talks to Kafka.
type KafkaFlags struct {
	Brokers []string
	TLS     pipeline.TLSOptions
	SASL    pipeline.SASLOptions

	fs  *pflag.FlagSet // where Register put --brokers
	env string         // $DOMAINFLOW_BROKERS when Register ran
}

// Where the brokers of a KafkaFlags come from (KafkaFlags.Source).
const (
	FromFlag    = "--brokers"      // the command line or a --config file
	FromEnv     = "$" + EnvBrokers // the environment
	FromDefault = "default"        // neither: DefaultBrokers
)

// Register adds --brokers, --tls, --tls-ca, --tls-cert, --tls-key,
// --tls-server-name, --tls-insecure-skip-verify, --sasl-mechanism,
// --sasl-user and --sasl-password to fs.
//
// Every command that talks to Kafka registers its connection flags here, so
// that all of them share one default for --brokers: $DOMAINFLOW_BROKERS when
// it is set, else DefaultBrokers. A command decides whether to use Kafka at
// all with Given, never by asking whether --brokers changed, which would
// ignore the environment.
func (k *KafkaFlags) Register(fs *pflag.FlagSet) {
	k.fs = fs
	def := DefaultBrokers
	k.env = strings.TrimSpace(os.Getenv(EnvBrokers))
	if k.env != "" {
		def = k.env
	}
	fs.StringSliceVar(&k.Brokers, "brokers", SplitList(def), "comma-separated Kafka bootstrap brokers, `host:port`; $"+EnvBrokers+" sets the default")
	fs.BoolVar(&k.TLS.Enable, "tls", false, "connect with TLS")
	fs.StringVar(&k.TLS.CAFile, "tls-ca", "", "PEM `file` of CAs to trust (default: the system pool); implies --tls")
	fs.StringVar(&k.TLS.CertFile, "tls-cert", "", "PEM client certificate `file` for mutual TLS; implies --tls")
	fs.StringVar(&k.TLS.KeyFile, "tls-key", "", "PEM client key `file` for mutual TLS")
	fs.StringVar(&k.TLS.ServerName, "tls-server-name", "", "server `name` to verify in the broker certificate (default: the broker host)")
	fs.BoolVar(&k.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only); implies --tls")
	fs.StringVar(&k.SASL.Mechanism, "sasl-mechanism", "", "SASL `mechanism`: plain, scram-sha-256 or scram-sha-512 (default: none)")
	fs.StringVar(&k.SASL.User, "sasl-user", "", "SASL user `name`")
	fs.StringVar(&k.SASL.Password, "sasl-password", "", "SASL `password` (default from $"+EnvSASLPassword+", which keeps it out of ps)")
}

// Source says where the brokers come from: FromFlag (--brokers on the
// command line, or from a --config file), FromEnv ($DOMAINFLOW_BROKERS) or
// FromDefault (DefaultBrokers).
func (k *KafkaFlags) Source() string {
	switch {
	case k.fs != nil && k.fs.Changed("brokers"):
		return FromFlag
	case k.env != "":
		return FromEnv
	}
	return FromDefault
}

// Given reports whether the user named the brokers, with --brokers or with
// $DOMAINFLOW_BROKERS: what a command for which Kafka is optional (it
// publishes when it knows where to) asks before it connects.
func (k *KafkaFlags) Given() bool { return k.Source() != FromDefault }

// Args returns the flags that give another process the same connection.
// The SASL password travels in $DOMAINFLOW_SASL_PASSWORD, which Args sets
// when the password came from the command line, never in the arguments.
func (k *KafkaFlags) Args() []string {
	out := []string{"--brokers", strings.Join(k.Brokers, ",")}
	t := k.TLS
	if t.Enable {
		out = append(out, "--tls")
	}
	for _, kv := range [][2]string{{"--tls-ca", t.CAFile}, {"--tls-cert", t.CertFile}, {"--tls-key", t.KeyFile},
		{"--tls-server-name", t.ServerName}, {"--sasl-mechanism", k.SASL.Mechanism}, {"--sasl-user", k.SASL.User}} {
		if kv[1] != "" {
			out = append(out, kv[0], kv[1])
		}
	}
	if t.InsecureSkipVerify {
		out = append(out, "--tls-insecure-skip-verify")
	}
	if k.SASL.Password != "" && os.Getenv(EnvSASLPassword) == "" {
		os.Setenv(EnvSASLPassword, k.SASL.Password)
	}
	return out
}

// Client returns the connection settings the flags describe; a bad value
// is a UsageError.
func (k *KafkaFlags) Client() (pipeline.ClientConfig, error) {
	var cc pipeline.ClientConfig
	for _, b := range k.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			cc.Brokers = append(cc.Brokers, b)
		}
	}
	if len(cc.Brokers) == 0 {
		return cc, Usagef("--brokers: no broker address given")
	}
	for _, b := range cc.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return cc, Usagef("--brokers: %q is not host:port", b)
		}
	}
	tc, err := k.TLS.Config()
	if err != nil {
		return cc, Usagef("%v", err)
	}
	cc.TLS = tc
	so := k.SASL
	if so.Password == "" {
		so.Password = os.Getenv(EnvSASLPassword)
	}
	mech, err := so.Build()
	if err != nil {
		return cc, Usagef("%v", err)
	}
	cc.SASL = mech
	return cc, nil
}

// Connect returns the client settings and checks, within ReachTimeout, that
// the brokers answer (pipeline.CheckBrokers), so that a wrong address fails
// at once with a clear message instead of after the client's retries. The
// settings log to log.
func (k *KafkaFlags) Connect(ctx context.Context, log *slog.Logger) (pipeline.ClientConfig, error) {
	cc, err := k.Client()
	if err != nil {
		return cc, err
	}
	start := time.Now()
	if err := pipeline.CheckBrokers(ctx, cc, ReachTimeout); err != nil {
		// Say where the address came from: a user who gave none may not
		// know that it was taken from the environment or a default.
		switch k.Source() {
		case FromEnv:
			return cc, fmt.Errorf("%w (the address is $%s)", err, EnvBrokers)
		case FromDefault:
			return cc, fmt.Errorf("%w (the address is the default: give --brokers or set $%s)", err, EnvBrokers)
		}
		return cc, err
	}
	log.Debug("brokers reachable", "brokers", cc.Brokers, "tls", cc.TLS != nil, "sasl", k.SASL.Mechanism, "took", time.Since(start))
	cc.Logger = log
	return cc, nil
}

// SplitList splits a comma-separated list, dropping empty elements.
func SplitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
