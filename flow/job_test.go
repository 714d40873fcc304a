package flow_test

import (
	"errors"
	"testing"

	"github.com/domainflow/domainflow/flow"
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
