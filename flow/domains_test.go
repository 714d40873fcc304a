package flow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/stages/cluster"
)

// TestListDomainsDrift: each domain's drift comes from the last history
// line that has one for it; a missing default history, a history without
// drift and a domain the history does not know leave it unknown.
func TestListDomainsDrift(t *testing.T) {
	const (
		withDrift = `{"router_version":1,"counts":{"0":5,"1":4},"drift":{"0":1.5,"1":0.75}}
{"router_version":1,"counts":{"0":9,"1":8},"drift":{"0":2.25}}
{"router_version":1,"counts":{"0":10,"1":9}}
{"router_version":1,"cou`
		noDrift = `{"router_version":1,"counts":{"0":5,"1":4},"judged":9,"novel":1}` + "\n"
	)
	tests := []struct {
		name    string
		files   map[string]string // relative to the run dir, beside router/
		history string            // DomainsConfig.History, relative to the run dir
		want    map[int]float64   // domains with a drift; the others have none
		read    string            // the history read, relative to the run dir
		damaged int
		err     string
	}{
		{name: "no history beside the router", want: map[int]float64{}},
		{name: "the default history", files: map[string]string{"routing-history.jsonl": withDrift},
			want: map[int]float64{0: 2.25, 1: 0.75}, read: "routing-history.jsonl", damaged: 1},
		{name: "a history without drift", files: map[string]string{"routing-history.jsonl": noDrift},
			want: map[int]float64{}, read: "routing-history.jsonl"},
		{name: "an empty history", files: map[string]string{"routing-history.jsonl": ""},
			want: map[int]float64{}, read: "routing-history.jsonl"},
		{name: "--history wins over the default", files: map[string]string{"routing-history.jsonl": noDrift, "other.jsonl": withDrift},
			history: "other.jsonl", want: map[int]float64{0: 2.25, 1: 0.75}, read: "other.jsonl", damaged: 1},
		{name: "a missing --history is an error", history: "nope.jsonl", err: "routing history: open "},
		{name: "drift of a domain the router lacks is left out", files: map[string]string{"routing-history.jsonl": `{"counts":{},"drift":{"7":3,"1":1}}`}, want: map[int]float64{1: 1}, read: "routing-history.jsonl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := t.TempDir()
			router := filepath.Join(run, "router")
			rm := &cluster.RouterModel{FeaturizerVersion: 1, Featurizer: "tfidf", IDs: []int{1, 0},
				Model: &cluster.Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}, Sizes: []int{3, 4}}, NextID: 2}
			if _, err := cluster.SaveRouter(router, rm); err != nil {
				t.Fatal(err)
			}
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(run, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := flow.DomainsConfig{RouterDir: router + "/"} // a trailing slash, as users type it
			if tt.history != "" {
				cfg.History = filepath.Join(run, tt.history)
			}
			l, err := flow.ListDomains(cfg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ListDomains = %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Router.Version != 1 || len(l.Domains) != 2 || l.Domains[0].ID != 0 || l.Domains[1].Size != 3 {
				t.Fatalf("ListDomains: router v%d, domains %+v", l.Router.Version, l.Domains)
			}
			read := ""
			if tt.read != "" {
				read = filepath.Join(run, tt.read)
			}
			if l.History != read || l.Damaged != tt.damaged {
				t.Errorf("history read %q with %d damaged lines, want %q and %d", l.History, l.Damaged, read, tt.damaged)
			}
			for _, d := range l.Domains {
				want, known := tt.want[d.ID]
				switch {
				case known && (d.Drift == nil || *d.Drift != want):
					t.Errorf("domain %d: drift %v, want %v", d.ID, d.Drift, want)
				case !known && d.Drift != nil:
					t.Errorf("domain %d: drift %v, want none", d.ID, *d.Drift)
				}
			}
		})
	}
}

func TestDefaultHistory(t *testing.T) {
	for _, c := range []struct{ dir, want string }{
		{"run/router", "run/routing-history.jsonl"},
		{"run/router/", "run/routing-history.jsonl"},
		{"router", "routing-history.jsonl"},
		{"/a/b/router", "/a/b/routing-history.jsonl"},
	} {
		if got := flow.DefaultHistory(c.dir); got != c.want {
			t.Errorf("DefaultHistory(%q) = %q, want %q", c.dir, got, c.want)
		}
	}
}
