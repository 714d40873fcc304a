package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/stages/cluster"
)

// TestDomainsDrift: `domains` shows each domain's latest drift from the
// routing history beside the router dir, or from --history; "-" in the
// table and no "drift" in --json when unknown.
func TestDomainsDrift(t *testing.T) {
	t.Parallel()
	run := t.TempDir()
	router := filepath.Join(run, "router")
	rm := &cluster.RouterModel{FeaturizerVersion: 1, Featurizer: "tfidf", IDs: []int{0, 1},
		Model: &cluster.Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}, Sizes: []int{3, 4}}, NextID: 2,
		Origins: []cluster.DomainOrigin{{How: cluster.OriginFit}, {How: cluster.OriginFit}}}
	if _, err := cluster.SaveRouter(router, rm); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(run, "other.jsonl")
	writeFile(t, filepath.Join(run, "routing-history.jsonl"), []byte(`{"router_version":1,"counts":{"0":5,"1":4},"drift":{"0":1.5,"1":0.75}}
{"router_version":1,"counts":{"0":9,"1":8},"drift":{"0":2.25}}
`))
	writeFile(t, other, []byte(`{"router_version":1,"counts":{"0":5,"1":4}}`+"\n"))

	type domain struct {
		ID     int                   `json:"id"`
		Drift  *float64              `json:"drift"`
		Origin *cluster.DomainOrigin `json:"origin"`
	}
	tests := []struct {
		name    string
		args    []string
		history string
		drift   []string // per domain id: "-" for none
	}{
		{"the history beside the router", nil, filepath.Join(run, "routing-history.jsonl"), []string{"2.25", "0.75"}},
		{"--history without drift", []string{"--history", other}, other, []string{"-", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out struct {
				Version int64    `json:"version"`
				History string   `json:"history"`
				Domains []domain `json:"domains"`
			}
			args := append([]string{"domains", "--router", router, "--json"}, tt.args...)
			if err := json.Unmarshal([]byte(mustCLI(t, args...).stdout), &out); err != nil {
				t.Fatal(err)
			}
			if out.History != tt.history || len(out.Domains) != 2 {
				t.Fatalf("domains --json: history %q, %d domains; want %q, 2", out.History, len(out.Domains), tt.history)
			}
			for i, d := range out.Domains {
				got := "-"
				if d.Drift != nil {
					got = strconv.FormatFloat(*d.Drift, 'f', 2, 64)
				}
				if got != tt.drift[i] || d.Origin == nil || d.Origin.How != cluster.OriginFit {
					t.Errorf("domain %d: drift %s, origin %+v; want drift %s beside its origin", d.ID, got, d.Origin, tt.drift[i])
				}
			}
			table := mustCLI(t, append([]string{"domains", "--router", router}, tt.args...)...).stdout
			lines := strings.Split(strings.TrimSpace(table), "\n")
			if len(lines) != 3 || !strings.Contains(lines[0], "DRIFT") {
				t.Fatalf("domains table:\n%s", table)
			}
			for i, l := range lines[1:] {
				if f := strings.Fields(l); len(f) < 3 || f[2] != tt.drift[i] {
					t.Errorf("domains table row %q: drift column %v, want %s", l, f, tt.drift[i])
				}
			}
		})
	}
	if r := cli(t, "domains", "--router", router, "--history", filepath.Join(run, "nope.jsonl")); r.code == 0 || !strings.Contains(r.stderr, "routing history") {
		t.Errorf("domains with a missing --history: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDomainsPublish: the text output of `domains remove` says whether the
// new version was published; a version saved but not published refuses the
// next edit with a broker, pointing at `domains publish`, which publishes
// it; the edit then goes through and is published.
func TestDomainsPublish(t *testing.T) {
	t.Setenv(envBrokers, "")
	addr := startBroker(t)
	router := filepath.Join(t.TempDir(), "router")
	fixture := filepath.Join("..", "..", "testdata", "mixed-small.jsonl.gz")
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "3", "--out", router, "--restarts", "1", "--log-level", "warn")

	steps := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"publish", "--brokers", addr}, 0, "router v1 with ids [0 1 2] published on router.models (it held no router)"},
		{[]string{"publish", "--brokers", addr}, 0, "router v1 is on router.models already"},
		// No broker: saved, not published (as when the broker was down).
		{[]string{"remove", "--domain", "0"}, 0, "router v1 → v2 with ids [1 2], saved in " + router + " only"},
		{[]string{"remove", "--domain", "0", "--brokers", addr}, 1, "'pipeline domains publish --router " + router + "'"},
		{[]string{"publish", "--brokers", addr}, 0, "router v2 with ids [1 2] published on router.models (it held v1)"},
		{[]string{"remove", "--domain", "1", "--brokers", addr}, 0, "router v2 → v3 with ids [2], saved in " + router + " and published on router.models"},
	}
	for _, s := range steps {
		args := append([]string{"domains", s.args[0], "--router", router, "--log-level", "warn"}, s.args[1:]...)
		r := cli(t, args...)
		if r.code != s.code || !strings.Contains(r.stderr, s.want) {
			t.Fatalf("pipeline %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, s.code, s.want)
		}
	}
}
