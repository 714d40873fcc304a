package flow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

func TestJobValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(j *flow.Job)
		ok   bool
	}{
		{"defaults", func(*flow.Job) {}, true},
		{"no seed, no hold-out", func(j *flow.Job) { j.SeedTokens, j.Heldout = 0, 0 }, true},
		{"k 0", func(j *flow.Job) { j.K = 0 }, false},
		{"no budget", func(j *flow.Job) { j.TokensPerDomain = 0 }, false},
		{"negative seed budget", func(j *flow.Job) { j.SeedTokens = -1 }, false},
		{"no partitions", func(j *flow.Job) { j.Partitions = 0 }, false},
		{"everything held out", func(j *flow.Job) { j.Heldout = 1 }, false},
		{"negative eval docs", func(j *flow.Job) { j.EvalDocs = -1 }, false},
		{"no out", func(j *flow.Job) { j.Out = "" }, false},
		{"no input", func(j *flow.Job) { j.Inputs = nil }, false},
		{"unknown expert", func(j *flow.Job) { j.Expert = "huge" }, false},
		{"unknown featurizer", func(j *flow.Job) { j.Featurizer = "magic" }, false},
		{"other text and id fields", func(j *flow.Job) { j.TextField, j.IDField = "body", "key" }, true},
		{"text field named id", func(j *flow.Job) { j.TextField = "id" }, false},
		{"same text and id field", func(j *flow.Job) { j.TextField, j.IDField = "x", "x" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := flow.DefaultJob()
			tt.edit(&j)
			err := j.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, flow.ErrJobConfig) {
				t.Errorf("Validate() = %v, want an ErrJobConfig", err)
			}
		})
	}
}

// TestJobSmall: a job whose data is smaller than one training step fails
// with ErrUntrained (its models would be reported as trained on nothing)
// unless AllowUntrained; a resumed run with nothing left to do reuses the
// saved evaluation, identical, instead of evaluating again.
func TestJobSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs jobs; run without -short")
	}
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "small.jsonl")
	var lines []string
	for i := range 24 {
		lines = append(lines, fmt.Sprintf(`{"id":"d%d","source":"s","text":"document %d about topic %d and words"}`, i, i, i%3))
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs pipetest.LogBuffer
	job := func(out string, allow bool) (*flow.Summary, error) {
		j := flow.DefaultJob()
		j.Inputs, j.Out, j.K, j.Threads, j.AllowUntrained = []string{in}, filepath.Join(dir, out), 2, 1, allow
		j.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		return j.Run(context.Background())
	}
	if _, err := job("strict", false); !errors.Is(err, flow.ErrUntrained) || !strings.Contains(err.Error(), "--allow-untrained") {
		t.Fatalf("a job on 24 short documents: %v, want ErrUntrained saying what to do", err)
	}
	first, err := job("allowed", true)
	if err != nil {
		t.Fatalf("with AllowUntrained: %v", err)
	}
	if strings.Contains(logs.String(), "evaluation reused") {
		t.Fatal("a first run reused an evaluation")
	}
	again, err := job("allowed", true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first.Eval, again.Eval) || !strings.Contains(logs.String(), "evaluation reused") {
		t.Fatalf("resumed evaluation %+v, want the first one's %+v, reused", again.Eval, first.Eval)
	}
}

// TestJobThenFields: the second corpus of a continuous job (Then) is read
// with the job's TextField and IDField, as the first is: its documents are
// routed, none dead-lettered for a missing text member.
func TestJobThenFields(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a job; run without -short")
	}
	t.Parallel()
	dir := t.TempDir()
	write := func(name, prefix string, n int) string {
		var lines []string
		for i := range n {
			lines = append(lines, fmt.Sprintf(`{"key":"%s%d","body":"%s document %d about topic %d and words"}`, prefix, i, prefix, i, i%3))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("a.jsonl", "a", 40), write("b.jsonl", "b", 20)
	j := flow.DefaultJob()
	j.Inputs, j.Then, j.Out, j.K, j.Train, j.Heldout = []string{a}, []string{b}, filepath.Join(dir, "run"), 2, false, 0
	j.TextField, j.IDField = "body", "key"
	j.Logger = slog.New(slog.NewTextHandler(&pipetest.LogBuffer{}, nil))
	sum, err := j.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Then == nil {
		t.Fatal("no second phase in the summary")
	}
	if th := sum.Then; th.DocsIn != 20 || th.DocsDeadletter != 0 || th.DocsRouted+th.DocsPending != 20 {
		t.Errorf("second corpus: %d in, %d dead letters, %d routed, %d pending; want 20 in, all routed or pending", th.DocsIn, th.DocsDeadletter, th.DocsRouted, th.DocsPending)
	}
	if sum.DocsDeadletter != 0 {
		t.Errorf("%d dead letters in all, want 0", sum.DocsDeadletter)
	}
}
