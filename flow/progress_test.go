package flow

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPhaseClockResume: a phase a resumed run finds done keeps the seconds
// recorded by the invocation that did it; a phase it finishes adds its
// seconds to those recorded; a phase it does itself, or one it always
// redoes, has its own. The phases file carries them across invocations,
// and summary.json's phases serve when there is no phases file.
func TestPhaseClockResume(t *testing.T) {
	tests := []struct {
		name    string
		prev    string // the phases file; "" for none
		summary string // summary.json; "" for none
		ends    []Progress
		want    map[string]float64 // the seconds, for the phases with a recorded value; others must be this run's (< 1 s)
		resumed []string
	}{
		{
			name: "first run",
			ends: []Progress{{Phase: "ingest", Done: 5, Total: 5}, {Phase: "fit", Done: 5}},
		},
		{
			name:    "done before",
			prev:    `{"phases":{"ingest":7,"fit":8,"count":9}}`,
			ends:    []Progress{{Phase: "ingest", Done: 5, Total: 5, Resumed: true, Before: 5}, {Phase: "fit", Done: 5, Resumed: true, Before: 5}, {Phase: "count"}},
			want:    map[string]float64{"ingest": 7, "fit": 8},
			resumed: []string{"ingest", "fit"},
		},
		{
			name: "finished after a graceful stop",
			prev: `{"phases":{"train_experts":4}}`,
			ends: []Progress{{Phase: "train_experts", Done: 10, Total: 10, Resumed: true, Before: 3}},
			want: map[string]float64{"train_experts": 4}, // plus this run's: checked below
		},
		{
			name:    "from summary.json",
			summary: `{"phases":{"ingest":6}}`,
			ends:    []Progress{{Phase: "ingest", Done: 5, Total: 5, Resumed: true, Before: 5}},
			want:    map[string]float64{"ingest": 6},
			resumed: []string{"ingest"},
		},
		{
			name: "done before, never recorded",
			ends: []Progress{{Phase: "ingest", Done: 5, Total: 5, Resumed: true, Before: 5}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, b := range map[string]string{phasesFile: tc.prev, "summary.json": tc.summary} {
				if b != "" {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(b), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got []Progress
			c := newPhaseClock(newProgressReporter(func(p Progress) { got = append(got, p) }), dir, nil)
			for _, p := range tc.ends {
				time.Sleep(time.Millisecond)
				c.end(p.Phase, p)
			}
			if len(got) != len(tc.ends) || !got[len(got)-1].End {
				t.Fatalf("reports %+v, want %d ends", got, len(tc.ends))
			}
			for _, p := range tc.ends {
				p.End = true
				secs, own := c.times[p.Phase], c.here[p.Phase]
				want, recorded := tc.want[p.Phase]
				switch {
				case own <= 0 || own > 1:
					t.Errorf("%s: this run's seconds %v", p.Phase, own)
				case !recorded && secs != own:
					t.Errorf("%s: %v s, want this run's %v", p.Phase, secs, own)
				case recorded && p.AlreadyDone() && secs != want:
					t.Errorf("%s: %v s, want the recorded %v", p.Phase, secs, want)
				case recorded && !p.AlreadyDone() && secs != want+own:
					t.Errorf("%s: %v s, want the recorded %v plus this run's %v", p.Phase, secs, want, own)
				}
			}
			if !slices.Equal(c.resumed, tc.resumed) {
				t.Errorf("resumed %q, want %q", c.resumed, tc.resumed)
			}
			// The next invocation reads what this one recorded, and the
			// phases it did not reach are kept.
			next := newPhaseClock(nil, dir, nil)
			for k, v := range c.times {
				if next.prev[k] != v {
					t.Errorf("phases file: %s = %v, want %v", k, next.prev[k], v)
				}
			}
			if tc.prev != "" && len(next.prev) < len(c.times) {
				t.Errorf("phases file %v lost phases of %v", next.prev, c.times)
			}
			if s := c.job(10); len(tc.resumed) == 0 && s != 10 {
				t.Errorf("job seconds %v, want this run's 10", s)
			}
		})
	}
}

// TestRoutedDocuments: the route phase's progress counts documents, the sum
// of the routing stage's per-domain gauges (it counted Arrow batches of the
// features topic before).
func TestRoutedDocuments(t *testing.T) {
	reg := prometheus.NewRegistry()
	if n := routedDocuments(reg); n != 0 {
		t.Errorf("no gauges: %d documents", n)
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_domain_routed_documents"}, []string{"domain"})
	reg.MustRegister(g)
	g.WithLabelValues("0").Set(120)
	g.WithLabelValues("3").Set(95)
	other := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainflow_expert_tokens"}, []string{"expert"})
	reg.MustRegister(other)
	other.WithLabelValues("0").Set(1e6)
	if n := routedDocuments(reg); n != 215 {
		t.Errorf("routed documents %d, want 215", n)
	}
	if b := trainedBytes(reg); b["0"] != 1e6 || len(b) != 1 {
		t.Errorf("trained bytes %v", b)
	}
}
