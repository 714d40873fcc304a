package main

import (
	"context"
	"github.com/domainflow/domainflow/pipeline/process"
	"net"
	"strings"
	"testing"
)

func TestListenAddr(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: ":9100", want: "127.0.0.1:9100"},
		{in: ":0", want: "127.0.0.1:0"},
		{in: "127.0.0.1:9092", want: "127.0.0.1:9092"},
		{in: "0.0.0.0:9100", want: "0.0.0.0:9100"},
		{in: "[::]:9100", want: "[::]:9100"},
		{in: "localhost:9100", want: "localhost:9100"},
		{in: "10.1.2.3:80", want: "10.1.2.3:80"},
		{in: "9100", bad: true},
		{in: "", bad: true},
		{in: ":http", bad: true},
		{in: ":70000", bad: true},
		{in: ":-1", bad: true},
	}
	for _, tt := range tests {
		got, err := process.ListenAddr(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("process.ListenAddr(%q) = %q, %v; want %q (error: %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// TestListenLoopbackByDefault: --metrics-addr and --listen treat a bare
// :PORT alike, as loopback; an address with a host is taken as given.
func TestListenLoopbackByDefault(t *testing.T) {
	t.Parallel()
	hostOf := func(t *testing.T, addr string) string {
		t.Helper()
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
		return h
	}
	metricsHost := func(t *testing.T, flag string) string {
		t.Helper()
		r := cli(t, "version", "--metrics-addr", flag)
		if r.code != 0 {
			t.Fatalf("version --metrics-addr %s: exit %d: %s", flag, r.code, r.stderr)
		}
		_, rest, ok := strings.Cut(r.stderr, "url=http://")
		if !ok {
			t.Fatalf("no metrics url logged: %s", r.stderr)
		}
		addr, _, _ := strings.Cut(rest, "/metrics")
		return hostOf(t, addr)
	}
	if h := metricsHost(t, ":0"); h != "127.0.0.1" {
		t.Errorf("--metrics-addr :0 listens on %s, want 127.0.0.1", h)
	}
	if h := metricsHost(t, "0.0.0.0:0"); h != "0.0.0.0" && h != "::" { // Go listens dual-stack on [::]
		t.Errorf("--metrics-addr 0.0.0.0:0 listens on %s, want every interface, as asked", h)
	}
	if r := cli(t, "version", "--metrics-addr", "9100"); r.code != 2 {
		t.Errorf("--metrics-addr 9100: exit %d, want 2 (usage): %s", r.code, r.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := runBrokerCommand(t, ctx, ":0", "1")
	if h := hostOf(t, addr); h != "127.0.0.1" {
		t.Errorf("broker --listen :0 listens on %s, want 127.0.0.1", h)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("broker exit %d: %s", code, stderr.String())
	}
}
