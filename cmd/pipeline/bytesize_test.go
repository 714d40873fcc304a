package main

import (
	"strings"
	"testing"

	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// TestByteSizeFlags: the size flags take units (as the README writes
// `identity --batch-bytes 8MiB`) and plain numbers; a bad size is a usage
// error (exit 2) naming the units.
func TestByteSizeFlags(t *testing.T) {
	closed := pipetest.ClosedAddr(t)
	tests := []struct {
		args    []string
		badSize bool
	}{
		{[]string{"identity", "--batch-bytes", "8MiB", "--brokers", closed}, false},
		{[]string{"identity", "--batch-bytes", "8388608", "--brokers", closed}, false},
		{[]string{"ingest", "--max-text-bytes", "1MB", "--brokers", closed, "x.jsonl"}, false},
		{[]string{"train", "--tokens", "150kB", "--domain", "all", "--out", t.TempDir(), "--brokers", closed}, false},
		{[]string{"identity", "--batch-bytes", "8 parsecs", "--brokers", closed}, true},
		{[]string{"run", "--tokens-per-domain", "lots"}, true},
	}
	for _, tt := range tests {
		r := cli(t, tt.args...)
		parseErr := strings.Contains(r.stderr, "invalid argument")
		if tt.badSize {
			if r.code != 2 || !parseErr || !strings.Contains(r.stderr, "MiB") {
				t.Errorf("pipeline %s: exit %d, stderr %q; want a usage error naming the units", strings.Join(tt.args, " "), r.code, r.stderr)
			}
			continue
		}
		if r.code == 2 || parseErr {
			t.Errorf("pipeline %s: exit %d, stderr %q; want the size accepted", strings.Join(tt.args, " "), r.code, r.stderr)
		}
	}
}
