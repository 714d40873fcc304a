package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunInterrupted: SIGINT during `pipeline run` (Ctrl-C) is a graceful
// stop: exit status 0, one line saying how to resume, no later phase and no
// summary; the same command then completes the job.
func TestRunInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--input", "../testdata/mixed-small.jsonl.gz", "--out", out, "--k", "3", "--progress", "lines",
		"--tokens-per-domain", "40000", "--seed-tokens", "20000", "--threads", "2", "--eval-docs", "10", "--log-level", "warn"}
	p := start(t, "run (interrupted)", args...)
	waitFor(t, 60*time.Second, "the fit phase to end", func() bool { return strings.Contains(p.out.String(), "run: fit:") })
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop within 30s of SIGINT:\n%s", p.out.String())
	}
	got := p.out.String()
	if p.err != nil {
		t.Fatalf("run after SIGINT: %v, want exit status 0:\n%s", p.err, got)
	}
	if !strings.Contains(got, "interrupted; run the same command again to resume") {
		t.Errorf("run after SIGINT does not say how to resume:\n%s", got)
	}
	for _, later := range []string{"run: train dense:", "run: eval:", "context canceled"} {
		if strings.Contains(got, later) {
			t.Errorf("run after SIGINT printed %q:\n%s", later, got)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
		t.Error("an interrupted run wrote summary.json")
	}

	again := start(t, "run (resumed)", args...)
	<-again.done
	if again.err != nil {
		t.Fatalf("resumed run: %v\n%s", again.err, again.out.String())
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Fatalf("the resumed run wrote no summary: %v", err)
	}
}
