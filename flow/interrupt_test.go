package flow_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// cancelOnLog is a slog.Handler that calls cancel when a record with
// message msg is logged.
type cancelOnLog struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (h cancelOnLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return h.Handler.Handle(ctx, r)
}

func (h cancelOnLog) WithAttrs(as []slog.Attr) slog.Handler {
	return cancelOnLog{h.Handler.WithAttrs(as), h.msg, h.cancel}
}

func (h cancelOnLog) WithGroup(g string) slog.Handler {
	return cancelOnLog{h.Handler.WithGroup(g), h.msg, h.cancel}
}

// TestJobInterrupted: a job whose ctx is cancelled, between two phases or
// within one, returns an error wrapping ErrInterrupted and context.Canceled,
// starts no later phase and writes no summary.
func TestJobInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs jobs; run without -short")
	}
	tests := []struct {
		name string
		// cancelAt says whether to cancel at progress report p; logMsg,
		// when set, cancels at that log message instead.
		cancelAt func(p flow.Progress) bool
		logMsg   string
		// lastPhase is the last phase the job may report.
		lastPhase string
	}{
		{name: "after split", cancelAt: func(p flow.Progress) bool { return p.Phase == "split" && p.End }, lastPhase: "split"},
		// The broker is up: ingest starts with ctx cancelled and fails.
		{name: "during ingest", logMsg: "embedded broker", lastPhase: "split"},
		{name: "after fit", cancelAt: func(p flow.Progress) bool { return p.Phase == "fit" && p.End }, lastPhase: "fit"},
		// The trainers stop gracefully (a checkpoint): the phase ends, the
		// dense baseline does not start.
		{name: "during training", cancelAt: func(p flow.Progress) bool { return p.Phase == "train experts" && !p.End }, lastPhase: "train experts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var (
				mu        sync.Mutex
				phases    []string // in the order of their first report
				cancelled atomic.Bool
			)
			j := flow.DefaultJob()
			j.Inputs = []string{"../testdata/mixed-small.jsonl.gz"}
			j.Out, j.K, j.Threads, j.SeedTokens = filepath.Join(t.TempDir(), "run"), 2, 1, 0
			var h slog.Handler = slog.NewTextHandler(&pipetest.LogBuffer{}, nil)
			if tt.logMsg != "" {
				h = cancelOnLog{h, tt.logMsg, func() { cancelled.Store(true); cancel() }}
			}
			j.Logger = slog.New(h)
			j.Progress = func(p flow.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if !slices.Contains(phases, p.Phase) {
					phases = append(phases, p.Phase)
				}
				if tt.cancelAt != nil && !cancelled.Load() && tt.cancelAt(p) {
					cancelled.Store(true)
					cancel()
				}
			}
			sum, err := j.Run(ctx)
			mu.Lock()
			defer mu.Unlock()
			if !cancelled.Load() {
				t.Fatalf("the job ended (%v) before the point of cancellation; phases %q", err, phases)
			}
			if !errors.Is(err, flow.ErrInterrupted) || !errors.Is(err, context.Canceled) {
				t.Fatalf("Run() = %v, want ErrInterrupted wrapping context.Canceled", err)
			}
			if sum != nil {
				t.Errorf("an interrupted job returned a summary: %+v", sum)
			}
			if len(phases) == 0 || phases[len(phases)-1] != tt.lastPhase {
				t.Errorf("phases reported %q, want none after %q", phases, tt.lastPhase)
			}
			if _, err := os.Stat(filepath.Join(j.Out, "summary.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("an interrupted job wrote summary.json (stat: %v)", err)
			}
			t.Logf("Run() = %v", err)
		})
	}
}
