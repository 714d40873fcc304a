package process_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"--help"}, 0, "Usage: upper [flags]"},
		{"unknown flag", []string{"--nope"}, 2, "unknown flag: --nope"},
		{"argument", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"same topics", []string{"--in", "a", "--out", "a"}, 2, "input and output are both a"},
		{"dead-letter output", []string{"--out", pipeline.TopicDeadLetter}, 2, "is the dead-letter topic"},
		{"bad linger", []string{"--linger", "0s"}, 2, "--linger"},
		{"bad log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"bad broker", []string{"--brokers", "nohost"}, 2, `"nohost" is not host:port`},
		{"no broker", []string{"--brokers", "127.0.0.1:1"}, 1, "unreachable"},
		{"config sets a flag", []string{"--config", writeConfig(t, "brokers: nohost\n")}, 2, `"nohost" is not host:port`},
		{"config with an unknown key", []string{"--config", writeConfig(t, "nope: 1\n")}, 2, `unknown key "nope" (not a flag of any upper flag)`},
		{"command line wins over config", []string{"--config", writeConfig(t, "brokers: nohost\n"), "--brokers", "127.0.0.1:1"}, 1, "unreachable"},
		{"missing config", []string{"--config", "/nonexistent/x.yaml"}, 2, "config:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := process.Run(context.Background(), "upper", pipeline.Identity, process.Options{}, tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("Run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.stderr)
			}
		})
	}
}

func TestKafkaFlagsEnvironment(t *testing.T) {
	t.Setenv(process.EnvBrokers, "b1:9092, b2:9093")
	var k process.KafkaFlags
	fs := newFlagSet()
	k.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cc, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cc.Brokers, ","); got != "b1:9092,b2:9093" {
		t.Errorf("brokers from $%s = %s", process.EnvBrokers, got)
	}
	if got := strings.Join(k.Args(), " "); got != "--brokers b1:9092,b2:9093" {
		t.Errorf("Args() = %s", got)
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{":9100": "127.0.0.1:9100", "0.0.0.0:1": "0.0.0.0:1", "[::]:2": "[::]:2"} {
		if got, err := process.ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"9100", ":http", ":70000"} {
		if _, err := process.ListenAddr(in); err == nil {
			t.Errorf("ListenAddr(%q) succeeded", in)
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReportRates: the stop summary names both rates, over the busy time
// and over the run, and --json carries both times.
func TestReportRates(t *testing.T) {
	rep := process.Report{In: 1000, Out: 990, Dead: 10, Batches: 5, Elapsed: 100 * time.Second, Busy: 2 * time.Second}
	got := rep.Summary("embed")
	want := "embed: 1000 in, 990 out, 10 dead letters, 0 duplicates dropped, 5 batches in 100.0s, busy 2.0s (500 rows/s while busy, 10 rows/s over the run)"
	if got != want {
		t.Errorf("Summary =\n%s\nwant\n%s", got, want)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"in":1000,"out":990,"dead":10,"duplicates":0,"batches":5,"seconds":100,"busy_seconds":2}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back process.Report
	if err := json.Unmarshal(b, &back); err != nil || back != rep {
		t.Errorf("JSON read back = %+v (%v), want %+v", back, err, rep)
	}
}
