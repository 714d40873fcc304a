package pipeline_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

func TestRetryable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	dialRefused := fmt.Errorf("metadata of t: kafka.(*Client).Metadata: %w",
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused (wrapped)", dialRefused, true},
		{"net.OpError", refused, true},
		{"connection reset", syscall.ECONNRESET, true},
		{"EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"per-call deadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), true},
		{"broker not available (CreateTopics while the broker starts)", fmt.Errorf("create topics: %w", kafka.BrokerNotAvailable), true},
		{"leader not available", kafka.LeaderNotAvailable, true},
		{"unknown topic (being created)", kafka.UnknownTopicOrPartition, true},
		{"coordinator moving", kafka.NotCoordinatorForGroup, true},
		{"rebalance", kafka.RebalanceInProgress, true},
		{"write errors, all transient", kafka.WriteErrors{nil, dialRefused, kafka.NotLeaderForPartition}, true},
		{"write errors, one permanent", kafka.WriteErrors{dialRefused, kafka.TopicAuthorizationFailed}, false},
		{"write errors, none", kafka.WriteErrors{nil}, false},
		{"canceled", fmt.Errorf("fetch: %w", context.Canceled), false},
		{"SASL failure", kafka.SASLAuthenticationFailed, false},
		{"topic authorization", fmt.Errorf("produce: %w", kafka.TopicAuthorizationFailed), false},
		{"invalid topic", kafka.InvalidTopic, false},
		{"replication factor", kafka.InvalidReplicationFactor, false},
		{"message too large (broker)", kafka.MessageSizeTooLarge, false},
		{"message too large (client)", kafka.MessageTooLargeError{}, false},
		{"unknown certificate authority", &net.OpError{Op: "remote error", Err: x509.UnknownAuthorityError{}}, false},
		{"TLS to a plaintext port", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false},
		{"TLS alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, false},
		{"a decoding error of the caller", errors.New("router: checksum mismatch"), false},
	}
	for _, tt := range tests {
		if got := pipeline.Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// textLogger logs as text to w.
func textLogger(w *pipetest.LogBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestRetry(t *testing.T) {
	transient := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	permanent := kafka.TopicAuthorizationFailed
	tests := []struct {
		name     string
		errs     []error // f's results, in order; then nil
		want     error   // errors.Is the result; nil: success
		attempts int
		warnings int
	}{
		{"success", nil, nil, 1, 0},
		{"transient then success", []error{transient, transient}, nil, 3, 2},
		{"permanent at once", []error{permanent}, permanent, 1, 0},
		{"transient then permanent", []error{transient, permanent}, permanent, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log pipetest.LogBuffer
			attempts := 0
			err := pipeline.Retry(context.Background(), textLogger(&log), "read t", func(context.Context) error {
				attempts++
				if attempts <= len(tt.errs) {
					return tt.errs[attempts-1]
				}
				return nil
			})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Retry = %v, want %v", err, tt.want)
			}
			if attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", attempts, tt.attempts)
			}
			if n := strings.Count(log.String(), `msg="read t failed; retrying"`); n != tt.warnings {
				t.Errorf("%d warnings, want %d:\n%s", n, tt.warnings, log.String())
			}
		})
	}
}

// TestRetryEndsWithContext: a transient failure is retried until the
// context ends, and the error then says so.
func TestRetryEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	transient := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	err := pipeline.Retry(ctx, slog.New(slog.DiscardHandler), "read t", func(context.Context) error {
		attempts++
		if attempts == 3 {
			cancel()
		}
		return transient
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Retry = %v, want the last error and context.Canceled", err)
	}
	if attempts != 3 {
		t.Fatalf("%d attempts, want 3", attempts)
	}
}

// TestRetryThroughBrokerRestart: calls to a broker that is down are retried
// until it is back.
func TestRetryThroughBrokerRestart(t *testing.T) {
	t.Parallel()
	b := pipetest.StartRestartable(t, pipeline.BrokerConfig{})
	cc := b.Client()
	pipetest.CreateTopics(t, cc, 2, "t")
	b.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log pipetest.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Retry(ctx, textLogger(&log), "count partitions", func(ctx context.Context) error {
			n, err := pipeline.PartitionCount(ctx, cc, "t")
			if err == nil && n != 2 {
				return fmt.Errorf("%d partitions, want 2", n)
			}
			return err
		})
	}()
	for !strings.Contains(log.String(), "count partitions failed; retrying") {
		select {
		case err := <-done:
			t.Fatalf("Retry returned %v while the broker was down", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.Start()
	if err := <-done; err != nil {
		t.Fatalf("Retry after the restart: %v", err)
	}
}
