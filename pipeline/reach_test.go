package pipeline_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// fakeListener accepts TCP connections on loopback and hands each to
// handle; it closes the listener and every connection when the test ends.
func fakeListener(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			handle(c)
		}
	})
	return ln.Addr().String()
}

// TestCheckBrokers: the early connection check tells a broker that is not
// there, one that accepts connections but never answers (stopped with
// SIGSTOP: the kernel still accepts), and one whose protocol does not match
// the client's TLS setting apart, each with its own advice.
func TestCheckBrokers(t *testing.T) {
	t.Parallel()
	closed := pipetest.ClosedAddr(t)                          // a port nothing listens on
	frozen := fakeListener(t, func(net.Conn) {})              // accepts, never reads nor writes
	hangUp := fakeListener(t, func(c net.Conn) { c.Close() }) // a TLS listener hangs up on a plaintext client
	notTLS := fakeListener(t, func(c net.Conn) {              // a plaintext listener answering a TLS client
		c.Write([]byte("\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00"))
		c.Close()
	})
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name     string
		cc       pipeline.ClientConfig
		want     []string
		not      []string
		quick    bool // fails well before the timeout
		wantNone bool
	}{
		{name: "real broker", cc: pipeline.ClientConfig{Brokers: []string{pipetest.Broker(t).Client().Brokers[0]}}, wantNone: true},
		{name: "nothing listening", cc: pipeline.ClientConfig{Brokers: []string{closed}}, want: []string{"unreachable"}, quick: true},
		{name: "frozen", cc: pipeline.ClientConfig{Brokers: []string{frozen}},
			want: []string{"accepts connections but does not answer", "within 500ms", "stopped", "overloaded"}},
		{name: "frozen, with TLS", cc: pipeline.ClientConfig{Brokers: []string{frozen}, TLS: &tls.Config{InsecureSkipVerify: true}},
			want: []string{"does not answer", "stopped"}},
		{name: "hangs up", cc: pipeline.ClientConfig{Brokers: []string{hangUp}},
			want: []string{"failed at once", "--tls", "--sasl-*"}, not: []string{"does not answer", "stopped"}, quick: true},
		{name: "TLS client, plaintext listener", cc: pipeline.ClientConfig{Brokers: []string{notTLS}, TLS: &tls.Config{InsecureSkipVerify: true}},
			want: []string{"failed at once", "--tls", "tls:"}, not: []string{"does not answer", "stopped"}, quick: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := pipeline.CheckBrokers(context.Background(), tt.cc, timeout)
			took := time.Since(start)
			if tt.wantNone {
				if err != nil {
					t.Fatalf("CheckBrokers = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckBrokers = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckBrokers = %q, want it to say %q", err, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("CheckBrokers = %q, must not say %q", err, w)
				}
			}
			if tt.quick && took >= timeout {
				t.Errorf("took %v, want a failure before the %v timeout", took, timeout)
			}
			if took > 5*timeout {
				t.Errorf("took %v with a %v timeout", took, timeout)
			}
		})
	}
}
