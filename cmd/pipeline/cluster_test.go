package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/stages/cluster"
)

// TestClusterFitAssignEvalDomains fits a balanced router on the fixture,
// lists its domains, routes the fixture with it, scores it against the
// sources, and refits with the same seed: ids and sizes stay the same.
func TestClusterFitAssignEvalDomains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	router := filepath.Join(dir, "router")
	var fit clusterFitReport
	decodeOne(t, mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "5", "--out", router, "--json", "--seed", "1").stdout, &fit)
	if fit.K != 5 || fit.Docs != 334 || fit.Version != 1 || fit.FeaturizerVersion != 1 || len(fit.Sizes) != 5 {
		t.Fatalf("fit report = %+v", fit)
	}
	for _, s := range fit.Sizes {
		if s != 66 && s != 67 { // 334 = 4·67 + 66
			t.Fatalf("balanced fit sizes %v, want 66 or 67 each", fit.Sizes)
		}
	}

	var doms struct {
		Version int64 `json:"version"`
		Domains []struct {
			ID       int      `json:"id"`
			Size     int      `json:"size"`
			TopTerms []string `json:"top_terms"`
			Dist     *struct {
				Count     int64     `json:"count"`
				Mean      float64   `json:"mean"`
				Max       float64   `json:"max"`
				Levels    []float64 `json:"levels"`
				Quantiles []float64 `json:"quantiles"`
			} `json:"distances"`
		} `json:"domains"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "domains", "--router", router, "--json").stdout), &doms); err != nil {
		t.Fatal(err)
	}
	if len(doms.Domains) != 5 {
		t.Fatalf("domains = %+v", doms)
	}
	var docs int64
	for i, d := range doms.Domains {
		if d.ID != i || d.Size != fit.Sizes[i] || len(d.TopTerms) != 10 {
			t.Fatalf("domain %d = %+v (fit sizes %v)", i, d, fit.Sizes)
		}
		if d.Dist == nil || d.Dist.Count < 1 || len(d.Dist.Quantiles) != len(cluster.DistanceLevels) || d.Dist.Max < d.Dist.Mean {
			t.Fatalf("domain %d: fit-time distances %+v", i, d.Dist)
		}
		docs += d.Dist.Count
	}
	if docs != 334 {
		t.Fatalf("the domains' fit-time distances count %d documents, want 334", docs)
	}
	if out := mustCLI(t, "domains", "--router", router).stdout; !strings.Contains(out, "TOP TERMS") {
		t.Errorf("domains table:\n%s", out)
	}

	routed := filepath.Join(dir, "routed.jsonl")
	mustCLI(t, "cluster", "assign", "--router", router, "--in", fixture, "--out", routed)
	f, err := os.Open(routed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, counts, novel := 0, map[int]int{}, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			ID              string
			Domain          int
			Distance        float64
			Nearest         int
			NearestDistance float64 `json:"nearest_distance"`
			Novel           *bool
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" || r.Domain < 0 || r.Domain > 4 || r.Distance < 0 ||
			r.Novel == nil || r.NearestDistance > r.Distance || r.Nearest < 0 || r.Nearest > 4 {
			t.Fatalf("routed line %q: %v", sc.Text(), err)
		}
		if *r.Novel {
			novel++
		}
		counts[r.Domain]++
		lines++
	}
	if lines != 334 {
		t.Fatalf("%d routed lines, want 334", lines)
	}
	// The fit documents themselves: about 1% beyond their domain's 0.99
	// quantile (at most one per domain here), none beyond the maximum (give
	// or take rounding).
	if novel > 5 {
		t.Errorf("%d of the fit documents novel at the default rule", novel)
	}
	if out := mustCLI(t, "cluster", "assign", "--router", router, "--in", fixture, "--out", "-", "--balanced=false", "--novel-quantile", "1", "--novel-margin", "0.001").stdout; strings.Contains(out, `"novel":true`) {
		t.Errorf("a fit document beyond its domain's largest fit distance:\n%s", out)
	}

	var ev clusterEvalReport
	decodeOne(t, mustCLI(t, "cluster", "eval", "--router", router, "--in", fixture, "--json").stdout, &ev)
	if ev.Docs != 334 || ev.K != 5 || !ev.Balanced {
		t.Fatalf("eval report = %+v", ev)
	}
	if ev.NMI["source"] < 0.3 || ev.Purity["source"] < 0.5 || ev.NMI["label"] <= 0 {
		t.Errorf("domains barely related to the sources: %+v", ev)
	}
	if ev.BalanceMaxMin > 1.2 {
		t.Errorf("balanced routing max/min = %.2f", ev.BalanceMaxMin)
	}
	var plain clusterEvalReport
	decodeOne(t, mustCLI(t, "cluster", "eval", "--router", router, "--in", fixture, "--json", "--balanced=false").stdout, &plain)
	if plain.MeanDistance > ev.MeanDistance+1e-9 {
		t.Errorf("argmin mean distance %.4f above balanced %.4f", plain.MeanDistance, ev.MeanDistance)
	}

	// Refit with the same seed: a new version with the same ids and sizes.
	var refit clusterFitReport
	decodeOne(t, mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "5", "--out", router, "--json", "--seed", "1").stdout, &refit)
	if refit.Version != 2 || refit.FeaturizerVersion != 2 || !reflect.DeepEqual(refit.Sizes, fit.Sizes) {
		t.Fatalf("refit report = %+v, first fit %+v", refit, fit)
	}
}

func TestClusterErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cluster", "fit", "--in", fixture}, 2, "--out"},
		{[]string{"cluster", "fit", "--in", fixture, "--out", dir, "--k", "0"}, 2, "--k"},
		{[]string{"cluster", "fit", "--in", fixture, "--out", dir, "--k", "1000"}, 1, "at least as many documents"},
		{[]string{"cluster", "fit", "--in", fixture, "--out", dir, "--tol", "-1"}, 2, "--tol"},
		{[]string{"cluster", "assign", "--router", filepath.Join(dir, "none"), "--in", fixture, "--out", "-"}, 1, "router"},
		{[]string{"cluster", "assign", "--router", dir, "--in", fixture, "--out", "-", "--novel-quantile", "2"}, 2, "novelty quantile 2 outside (0, 1]"},
		{[]string{"cluster", "assign", "--router", dir, "--in", fixture, "--out", "-", "--novel-margin", "-1"}, 2, "novelty margin -1"},
		{[]string{"cluster", "--brokers", "127.0.0.1:1", "--novel-quantile", "0.2", "--novel-margin", "-0.5"}, 2, "novelty margin -0.5"},
		{[]string{"domains"}, 2, "--router"},
	}
	for _, tt := range tests {
		r := cli(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("pipeline %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.want)
		}
	}
}
