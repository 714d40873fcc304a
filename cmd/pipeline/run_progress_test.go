package main

import (
	"testing"
	"time"

	"github.com/domainflow/domainflow/flow"
)

// TestProgressLine: a phase line says what this invocation did: the work
// and its rate, "already done" for a phase an earlier invocation did, and
// the part it added to a phase an earlier one began.
func TestProgressLine(t *testing.T) {
	s := 2 * time.Second
	tests := []struct {
		p    flow.Progress
		want string
	}{
		{flow.Progress{Phase: "ingest", Done: 300, Total: 300, Unit: "documents", Elapsed: s, End: true}, "300 documents in 2.0s (150 documents/s)"},
		{flow.Progress{Phase: "train seed", Done: 25000, Total: 50000, Unit: "bytes", Elapsed: s, End: true}, "25.0 kB of 50.0 kB (50%) in 2.0s (12.5 kB/s)"},
		{flow.Progress{Phase: "count", Elapsed: s, End: true}, "2.0s"},
		{flow.Progress{Phase: "ingest", Done: 300, Total: 300, Unit: "documents", Resumed: true, Before: 300, Elapsed: s, End: true}, "already done (300 documents)"},
		{flow.Progress{Phase: "train seed", Done: 50200, Total: 50000, Unit: "bytes", Resumed: true, Before: 50200, Elapsed: s, End: true}, "already done (50.2 kB)"},
		{flow.Progress{Phase: "fit", Unit: "", Resumed: true, Elapsed: s, End: true}, "already done"},
		{flow.Progress{Phase: "train experts", Done: 150000, Total: 150000, Unit: "bytes", Resumed: true, Before: 120000, Elapsed: s, End: true},
			"resumed: +30.0 kB in 2.0s (15.0 kB/s); 150.0 kB in all"},
		{flow.Progress{Phase: "train experts", Done: 140000, Total: 150000, Unit: "bytes", Resumed: true, Before: 120000, Elapsed: s, End: true},
			"resumed: +20.0 kB in 2.0s (10.0 kB/s); 140.0 kB of 150.0 kB (93%) in all"},
	}
	for _, tc := range tests {
		if got := progressLine(tc.p); got != tc.want {
			t.Errorf("progressLine(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
