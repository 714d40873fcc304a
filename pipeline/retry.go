package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// Retry backoff: the first wait after a failure, doubled after each further
// one up to the last (the Runner's defaults).
const (
	RetryBackoffMin = 100 * time.Millisecond
	RetryBackoffMax = 5 * time.Second
)

// Retry calls f until it succeeds, fails with an error that Retryable calls
// permanent, or ctx ends. Between attempts it logs a warning ("WHAT failed;
// retrying") and waits, from RetryBackoffMin doubling to RetryBackoffMax, so
// a phase of a long-running command rides out a broker that is restarting
// or unreachable for a while, as the Runner's fetch and write loops do.
//
// A permanent error is returned as f returned it. When ctx ends, Retry
// returns f's last error joined with the context's error, so that
// errors.Is(err, context.Canceled) tells a stop from a failure. f should
// bound each attempt itself (a per-call timeout), and must be safe to repeat:
// Retry does not know how far a failed attempt got. A nil log logs to
// slog.Default().
func Retry(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	backoff := RetryBackoffMin
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return giveUp(ctx, err, attempt)
		}
		if !Retryable(err) {
			return err
		}
		log.Warn(what+" failed; retrying", "err", err, "attempt", attempt, "backoff", backoff)
		if !Sleep(ctx, backoff) {
			return giveUp(ctx, err, attempt)
		}
		backoff = min(2*backoff, RetryBackoffMax)
	}
}

func giveUp(ctx context.Context, err error, attempts int) error {
	if errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempts, context.Cause(ctx))
}

// transientKafkaErrors are broker error codes that kafka-go's
// Error.Temporary does not count but that pass on their own: a broker that
// is starting or stopping (CreateTopics answers BrokerNotAvailable then), and
// a consumer group that rebalances.
var transientKafkaErrors = []kafka.Error{
	kafka.BrokerNotAvailable,
	kafka.ReplicaNotAvailable,
	kafka.RebalanceInProgress,
	kafka.IllegalGeneration,
	kafka.UnknownMemberId,
	kafka.ReassignmentInProgress,
}

// Retryable reports whether err, from a call to the broker, may pass if the
// call is repeated: the broker is away, restarting or overloaded, a
// connection broke or timed out, a leader or coordinator is moving, or a
// topic is not there yet (kafka-go counts UnknownTopicOrPartition as
// temporary; a topic being created answers it for a while). Errors of
// configuration or permission are permanent: an authentication or
// authorization failure, a TLS or certificate error, an invalid topic or
// replication factor, a message too large, an unsupported version; so is
// any error the classifier does not know, such as a decoding error of the
// caller's own, and the end of the caller's context.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// A produce call fails with one error per message.
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		n := 0
		for _, e := range we {
			if e == nil {
				continue
			}
			if !Retryable(e) {
				return false
			}
			n++
		}
		return n > 0
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return false
	}
	// Before net.Error: kafka.Error has Timeout and Temporary methods too.
	var ke kafka.Error
	if errors.As(err, &ke) {
		if ke.Temporary() {
			return true
		}
		for _, t := range transientKafkaErrors {
			if ke == t {
				return true
			}
		}
		return false
	}
	if tlsConfigError(err) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	// Dial, read and write errors of a connection, and name lookups (a
	// broker's host name may not resolve while its container restarts).
	var ne net.Error
	return errors.As(err, &ne)
}

// tlsConfigError reports whether err is a TLS handshake or certificate
// failure, which no retry mends.
func tlsConfigError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		alert     tls.AlertError
		authority x509.UnknownAuthorityError
		host      x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &authority) || errors.As(err, &host) || errors.As(err, &invalid)
}
