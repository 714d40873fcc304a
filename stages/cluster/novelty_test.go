package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

func TestNewDistanceStats(t *testing.T) {
	hundred := make([]float64, 101) // 0, 1, ..., 100: the q quantile is 100q
	for i := range hundred {
		hundred[100-i] = float64(i)
	}
	tests := []struct {
		name            string
		d               []float64
		count           int64
		mean, min, max  float64
		p50, p99, p9999 float64 // Quantile(0.5), (0.99), (0.9999)
	}{
		{"none", nil, 0, 0, 0, 0, math.NaN(), math.NaN(), math.NaN()},
		{"one", []float64{2}, 1, 2, 2, 2, 2, 2, 2},
		{"0 to 100", hundred, 101, 50, 0, 100, 50, 99, 99.99},
		{"non-finite ignored, negative clamped", []float64{math.NaN(), 1, math.Inf(1), -1, 3}, 3, 4.0 / 3, 0, 3, 1, 2.96, 2.9996},
	}
	same := func(a, b float64) bool { return (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-9 }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.d...)
			s := NewDistanceStats(tt.d)
			if !slices.EqualFunc(in, tt.d, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }) {
				t.Errorf("NewDistanceStats changed its input")
			}
			if s.Count != tt.count || !same(s.Mean, tt.mean) || !same(s.Min, tt.min) || !same(s.Max, tt.max) {
				t.Errorf("stats = %+v, want count %d mean %v min %v max %v", s, tt.count, tt.mean, tt.min, tt.max)
			}
			for _, c := range []struct{ q, want float64 }{{0.5, tt.p50}, {0.99, tt.p99}, {0.9999, tt.p9999}} {
				if got := s.Quantile(c.q); !same(got, c.want) {
					t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
				}
			}
			if err := s.validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestDistanceStatsQuantile(t *testing.T) {
	s := DistanceStats{Count: 10, Mean: 1, Min: 0.5, Max: 4, Levels: []float64{0.5, 0.9}, Quantiles: []float64{1, 2}}
	tests := []struct{ q, want float64 }{
		{0, 0.5}, {0.25, 0.75}, {0.5, 1}, {0.7, 1.5}, {0.9, 2}, {0.95, 3}, {1, 4},
		{-0.1, math.NaN()}, {1.1, math.NaN()}, {math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		got := s.Quantile(tt.q)
		if !(math.Abs(got-tt.want) < 1e-12 || (math.IsNaN(got) && math.IsNaN(tt.want))) {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	bad := []DistanceStats{
		{Count: -1},
		{Count: 1, Levels: []float64{0.5}, Quantiles: nil},
		{Count: 1, Levels: []float64{0.9, 0.5}, Quantiles: []float64{1, 1}},
		{Count: 1, Min: 2, Max: 1},
		{Count: 1, Max: math.Inf(1)},
		{Count: 2, Min: 0, Max: 3, Levels: []float64{0.5, 0.9}, Quantiles: []float64{2, 1}},
	}
	for i, b := range bad {
		if b.validate() == nil {
			t.Errorf("bad stats %d (%+v) validate", i, b)
		}
	}
}

func TestNoveltyRule(t *testing.T) {
	m := testRouter(3, 4, 5)
	m.Distances = []DistanceStats{
		{Count: 100, Mean: 1, Min: 0, Max: 10, Levels: []float64{0.5, 0.9, 0.99}, Quantiles: []float64{1, 2, 4}},
		{}, // nothing known: never novel
		{Count: 5, Mean: 2, Min: 1, Max: 3, Levels: []float64{0.5, 0.9, 0.99}, Quantiles: []float64{2, 2.5, 2.9}},
	}
	inf := math.Inf(1)
	tests := []struct {
		name    string
		rule    NoveltyRule
		want    []float64
		wantErr string
	}{
		{"default", NoveltyRule{}, []float64{4, inf, 2.9}, ""},
		{"p90 with 10% margin", NoveltyRule{Quantile: 0.9, Margin: 0.1}, []float64{2.2, inf, 2.75}, ""},
		{"max", NoveltyRule{Quantile: 1}, []float64{10, inf, 3}, ""},
		{"quantile above 1", NoveltyRule{Quantile: 1.5}, nil, "novelty quantile 1.5 outside (0, 1]"},
		{"negative margin", NoveltyRule{Margin: -0.1}, nil, "novelty margin -0.1"},
		{"NaN quantile", NoveltyRule{Quantile: math.NaN()}, nil, "novelty quantile NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := tt.rule.Thresholds(m)
			for j := range got {
				if !(math.Abs(got[j]-tt.want[j]) < 1e-12 || got[j] == tt.want[j]) {
					t.Fatalf("Thresholds = %v, want %v", got, tt.want)
				}
			}
		})
	}
	old := testRouter(3, 4, 5) // saved before novelty scoring: no distances
	if th := (NoveltyRule{}).Thresholds(old); th != nil {
		t.Errorf("Thresholds of a router without distances = %v, want nil (novelty off)", th)
	}
}

// plantedBlobs returns n rows per center, Gaussian with deviation sigma around
// it, in the center order repeated (row i from center i%len(centers)).
func plantedBlobs(centers [][]float32, n int, sigma float64, seed uint64) []featVec {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]featVec, 0, n*len(centers))
	for i := range n * len(centers) {
		c := centers[i%len(centers)]
		v := make([]float32, len(c))
		for d := range v {
			v[d] = c[d] + float32(rng.NormFloat64()*sigma)
		}
		out = append(out, featVec{val: v, dim: int32(len(c)), version: 1})
	}
	return out
}

// denseRows returns vs (dense, one dimension) as Rows.
func denseRows(vs []featVec) *Rows {
	x := &Rows{N: len(vs), Dim: int(vs[0].dim)}
	for _, v := range vs {
		x.Values = append(x.Values, v.val...)
	}
	return x
}

// plantedCenters are three far-apart centers in 8 dimensions: the router
// is fitted on the first two; the third is a new corpus.
func plantedCenters() (fit [][]float32, novel [][]float32) {
	c := func(d int) []float32 {
		v := make([]float32, 8)
		v[d] = 5
		return v
	}
	return [][]float32{c(0), c(1)}, [][]float32{c(2)}
}

// plantedRouter fits a balanced 2-means router on 1000 rows of each of the
// two fit blobs, with its fit-time distances.
func plantedRouter(t testing.TB) *RouterModel {
	t.Helper()
	fit, _ := plantedCenters()
	x := denseRows(plantedBlobs(fit, 1000, 0.3, 1))
	m, _, err := Fit(context.Background(), x, FitConfig{K: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids, next := MatchIDs(nil, m)
	return &RouterModel{FeaturizerVersion: 1, Featurizer: "test", IDs: ids, Model: m, NextID: next,
		Fit: FitConfig{K: 2, Seed: 1}, Distances: FitDistances(m, x)}
}

// TestStageNovelty fits a router on two planted blobs, then feeds the
// stage fresh rows of those blobs and rows of a third, far blob: the third
// blob's rows are novel (≥ 90%), the original blobs' are not (≤ 2% at the
// default rule), routing is unchanged, and the metrics say so.
func TestStageNovelty(t *testing.T) {
	rm := plantedRouter(t)
	fit, novel := plantedCenters()
	old := plantedBlobs(fit, 1000, 0.3, 2) // 2000 rows
	fresh := plantedBlobs(novel, 500, 0.3, 3)
	st, err := NewStage(rm)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewStage(rm)
	ctx := context.Background()
	feed := func(prefix string, first int, vs []featVec) (judged, nov int64) {
		t.Helper()
		before := st.Novelty()
		for lo := 0; lo < len(vs); lo += 250 {
			hi := min(lo+250, len(vs))
			rec := featuresRecord(t, prefix, first+lo, vs[lo:hi])
			res, err := st.Process(ctx, rec)
			if err != nil {
				t.Fatal(err)
			}
			want, err := plain.Process(ctx, rec)
			if err != nil {
				t.Fatal(err)
			}
			if got, w := routedIDs(t, res), routedIDs(t, want); !reflect.DeepEqual(got, w) {
				t.Fatalf("novelty changed routing: %v, want %v", got, w)
			}
			rec.Release()
		}
		after := st.Novelty()
		return after.Judged - before.Judged, after.Novel - before.Novel
	}
	j, n := feed("old", 0, old)
	if j != 2000 || float64(n) > 0.02*2000 {
		t.Errorf("fit-blob rows: %d novel of %d judged, want at most 2%% of 2000", n, j)
	}
	oldNovel := n
	t.Logf("fit-blob rows: %d novel of %d", n, j)
	j, n = feed("new", 2000, fresh)
	t.Logf("far-blob rows: %d novel of %d", n, j)
	if j != 500 || float64(n) < 0.9*500 {
		t.Errorf("far-blob rows: %d novel of %d judged, want at least 90%% of 500", n, j)
	}
	s := st.Novelty()
	if s.Judged != 2500 || s.Novel != oldNovel+n {
		t.Fatalf("Novelty() = %+v", s)
	}
	// The window of 1000 holds the 500 far rows and 500 fit-blob rows.
	if w := s.Windows[0]; w.Size != 1000 || w.Rows != 1000 || w.Fraction() < 0.45 || w.Fraction() > 0.52 {
		t.Errorf("window %+v: fraction %.3f, want about 0.5", w, w.Fraction())
	}
	if w := s.Windows[1]; w.Size != 10000 || w.Rows != 2500 || w.Novel != int(s.Novel) {
		t.Errorf("window %+v, want all 2500 rows", w)
	}
	// Drift: the far rows went to both domains (balanced routing) and
	// moved each domain's recent mean distance far above its fit-time mean.
	for _, id := range rm.IDs {
		if d := s.Drift[id]; d < 10 {
			t.Errorf("drift of domain %d = %.2f, want far above 1 (%v)", id, d, s.Drift)
		}
	}
	checkNoveltyMetrics(t, st, s)
}

// routedIDs returns each routed row's id with its domain, releasing the
// outputs of res.
func routedIDs(t *testing.T, res pipeline.Result) map[string]int32 {
	t.Helper()
	out := map[string]int32{}
	for _, o := range res.Out {
		s := o.Record.Schema()
		docs, err := schemas.Documents(o.Record)
		if err != nil {
			t.Fatal(err)
		}
		dom := o.Record.Column(s.FieldIndices(schemas.ColDomain)[0]).(*array.Int32)
		for i := range docs.Len() {
			out[docs.ID(i)] = dom.Value(i)
		}
		o.Record.Release()
	}
	return out
}

// gatherMetrics returns the counters and gauges of g by name and label
// values ("domainflow_novel_fraction/1000").
func gatherMetrics(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// checkNoveltyMetrics checks that st's collector reports s.
func checkNoveltyMetrics(t *testing.T, st *Stage, s NoveltyStats) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(st.Collector()); err != nil {
		t.Fatal(err)
	}
	got := gatherMetrics(t, reg)
	want := map[string]float64{
		"domainflow_novel_rows_total":          float64(s.Novel),
		"domainflow_novelty_judged_rows_total": float64(s.Judged),
	}
	for _, w := range s.Windows {
		want["domainflow_novel_fraction/"+strconv.Itoa(w.Size)] = w.Fraction()
	}
	for id, d := range s.Drift {
		want["domainflow_domain_drift/"+strconv.Itoa(id)] = d
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("novelty metrics = %v, want %v", got, want)
	}
}

// TestNoveltyTracker checks the sliding windows and the drift means.
func TestNoveltyTracker(t *testing.T) {
	tests := []struct {
		name       string
		novel      []bool // per row, in order
		wantNovel  int64
		wantWindow []int // novel rows per NoveltyWindows window
	}{
		{"empty", nil, 0, []int{0, 0}},
		{"one novel", []bool{true}, 1, []int{1, 1}},
		{"novel first, then 1000 plain: out of the small window", append([]bool{true}, make([]bool, 1000)...), 1, []int{0, 1}},
		{"novel at the window's edge stays", append([]bool{true}, make([]bool, 999)...), 1, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newNoveltyTracker()
			for _, n := range tt.novel {
				tr.observe(1, n, math.NaN())
			}
			s := tr.stats()
			if s.Judged != int64(len(tt.novel)) || s.Novel != tt.wantNovel {
				t.Fatalf("judged %d novel %d, want %d, %d", s.Judged, s.Novel, len(tt.novel), tt.wantNovel)
			}
			for w, want := range tt.wantWindow {
				if s.Windows[w].Novel != want || s.Windows[w].Rows != min(len(tt.novel), NoveltyWindows[w]) {
					t.Errorf("window %+v, want %d novel", s.Windows[w], want)
				}
			}
			if len(s.Drift) != 0 {
				t.Errorf("drift %v without ratios", s.Drift)
			}
		})
	}
	// Drift: the mean ratio over the last DriftWindow rows of each domain.
	tr := newNoveltyTracker()
	for i := range 3 * DriftWindow {
		r := 1.0
		if i >= 2*DriftWindow {
			r = 3
		}
		tr.observe(7, false, r)
		tr.observe(8, false, 0.5)
	}
	if d := tr.stats().Drift; math.Abs(d[7]-3) > 1e-9 || math.Abs(d[8]-0.5) > 1e-9 {
		t.Errorf("drift %v, want 7: 3, 8: 0.5", d)
	}
}

// TestOldRouterNovelty: a router saved before novelty scoring (a file
// written by the previous build) loads, routes, and judges nothing, with
// one log line saying so.
func TestOldRouterNovelty(t *testing.T) {
	for _, file := range []string{"testdata/router-pre-novelty/router-000001.arrow", "testdata/router-pre-novelty/router-000001.parquet"} {
		m, err := LoadRouterFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if m.Distances != nil || m.K() != 3 {
			t.Fatalf("%s: distances %v, k %d", file, m.Distances, m.K())
		}
		b, err := EncodeRouter(m)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"distances"`)) {
			t.Errorf("a router without distances encodes a distances field")
		}
	}
	m, err := LoadRouter("testdata/router-pre-novelty", 0)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st, err := NewStage(m)
	if err != nil {
		t.Fatal(err)
	}
	st.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	vs := plantedBlobs([][]float32{{1, 0, 0, 0}, {0, 0, 9, 9}}, 50, 0.1, 1)
	for i := range vs {
		vs[i].version = m.FeaturizerVersion
	}
	for b := range 2 {
		rec := featuresRecord(t, "d", b*100, vs)
		res, err := st.Process(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if ids := routedIDs(t, res); len(ids) != 100 || len(res.Dead) != 0 {
			t.Fatalf("batch %d: %d routed, %d dead; want 100, 0", b, len(ids), len(res.Dead))
		}
	}
	if s := st.Novelty(); s.Judged != 0 || s.Novel != 0 {
		t.Errorf("old router judged rows: %+v", s)
	}
	if n := strings.Count(logs.String(), "no fit-time distances"); n != 1 {
		t.Errorf("%d log lines about novelty being off, want 1:\n%s", n, logs.String())
	}
}

// TestRouterDistances: a router's fit-time distances survive its files and
// its topic payload; split gives the two halves their own, remove drops
// the removed domain's, and the others keep theirs.
func TestRouterDistances(t *testing.T) {
	rm := plantedRouter(t)
	rm.Version = 3
	dir := t.TempDir()
	if _, err := SaveRouter(dir, rm); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".arrow", ".parquet"} {
		got, err := LoadRouterFile(strings.TrimSuffix(RouterPath(dir, 3), ".arrow") + ext)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Distances, rm.Distances) {
			t.Errorf("%s: distances %v, want %v", ext, got.Distances, rm.Distances)
		}
	}
	b, err := EncodeRouter(rm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRouter(b)
	if err != nil || !reflect.DeepEqual(got.Distances, rm.Distances) {
		t.Fatalf("DecodeRouter: %v; distances %v, want %v", err, got.Distances, rm.Distances)
	}
	for j, d := range rm.Distances {
		// 1000 rows of a blob of σ 0.3 in 8 dimensions: ‖noise‖² ≈ 0.09·χ²(8).
		if d.Count != 1000 || d.Mean < 0.6 || d.Mean > 0.85 || d.Quantile(0.99) < d.Quantile(0.5) {
			t.Errorf("distances of centroid %d = %+v", j, d)
		}
	}
	// Damaged distances are refused.
	bad := rm.clone()
	bad.Distances[0].Quantiles[0] = math.NaN()
	if _, err := EncodeRouter(bad); err == nil || !strings.Contains(err.Error(), "distances of centroid 0") {
		t.Errorf("EncodeRouter with a NaN quantile: %v", err)
	}

	// Split domain 0 over its members: two halves with their own stats.
	fit, _ := plantedCenters()
	x := denseRows(plantedBlobs(fit, 1000, 0.3, 1))
	near, _ := rm.Model.Assign(x)
	var pick []int
	for i, j := range near {
		if j == 0 {
			pick = append(pick, i)
		}
	}
	members := x.Subset(pick)
	split, err := rm.SplitDomain(context.Background(), rm.IDs[0], members, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(split.Distances) != 3 || !reflect.DeepEqual(split.Distances[1], rm.Distances[1]) {
		t.Fatalf("split distances %v: the kept domain changed", split.Distances)
	}
	if c := split.Distances[0].Count + split.Distances[2].Count; c != int64(len(pick)) {
		t.Errorf("split halves hold %d rows, want %d", c, len(pick))
	}
	if split.Distances[0].Mean >= rm.Distances[0].Mean || split.Distances[2].Mean >= rm.Distances[0].Mean {
		t.Errorf("split halves' mean distances %.3f, %.3f not below the whole's %.3f",
			split.Distances[0].Mean, split.Distances[2].Mean, rm.Distances[0].Mean)
	}
	removed, err := split.RemoveDomain(split.IDs[2])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(removed.Distances, split.Distances[:2]) {
		t.Errorf("remove: distances %v, want %v", removed.Distances, split.Distances[:2])
	}
	// A router without distances stays without through split and remove.
	old := testRouter(3, 4, 5)
	oldSplit, err := old.SplitDomain(context.Background(), old.IDs[0], denseRows(plantedBlobs([][]float32{{1, 0, 0, 0}}, 10, 0.1, 1)), 1)
	if err != nil || oldSplit.Distances != nil {
		t.Errorf("split of a router without distances: %v, distances %v", err, oldSplit.Distances)
	}
}

// TestRouteAll: RouteAll routes as Route does and reports the argmin.
func TestRouteAll(t *testing.T) {
	m := stageModel(1, []int{0, 1, 2, 3}).Model
	x := denseRows(skewed(500, 4))
	for _, unbalanced := range []bool{false, true} {
		r1, _ := NewRouter(m, RouteConfig{Unbalanced: unbalanced})
		r2, _ := NewRouter(m, RouteConfig{Unbalanced: unbalanced})
		d, dist, err := r1.Route(x)
		if err != nil {
			t.Fatal(err)
		}
		a, err := r2.RouteAll(x)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Domains, d) || !reflect.DeepEqual(a.Distances, dist) {
			t.Fatalf("unbalanced=%v: RouteAll routed differently from Route", unbalanced)
		}
		near, ndist := m.Assign(x)
		if !reflect.DeepEqual(a.Nearest, near) {
			t.Fatalf("unbalanced=%v: Nearest differs from Assign", unbalanced)
		}
		moved := 0
		for i := range ndist {
			if math.Abs(float64(a.NearestDistances[i]-ndist[i])) > 1e-5 || a.NearestDistances[i] > a.Distances[i] {
				t.Fatalf("row %d: nearest distance %v (assigned %v), Assign says %v", i, a.NearestDistances[i], a.Distances[i], ndist[i])
			}
			if a.Nearest[i] != a.Domains[i] {
				moved++
			}
		}
		if unbalanced != (moved == 0) {
			t.Errorf("unbalanced=%v: %d rows routed away from their nearest centroid", unbalanced, moved)
		}
	}
}

// TestRunStageNovelty is TestStageNovelty on Kafka: RunStage routes the
// planted rows from docs.features with a router from a dir, and its
// metrics and history lines report the novel rows.
func TestRunStageNovelty(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	dir := t.TempDir()
	rm := plantedRouter(t)
	if _, err := SaveRouter(dir, rm); err != nil {
		t.Fatal(err)
	}
	fit, novel := plantedCenters()
	vs := append(plantedBlobs(fit, 1000, 0.3, 2), plantedBlobs(novel, 500, 0.3, 3)...)
	n := len(vs)
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicFeatures)
	produceRaw(t, cc, 1, n)
	var msgs []pipeline.Message
	for lo := 0; lo < n; lo += 250 {
		rec := featuresRecord(t, "p", lo, vs[lo:lo+250])
		msgs = append(msgs, arrowMessage(t, pipeline.TopicFeatures, rec))
		rec.Release()
	}
	pipetest.Produce(t, cc, msgs...)
	reg := prometheus.NewPedanticRegistry()
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	stop := runInBackground(t, RunConfig{Client: cc, RouterDir: dir, Linger: 5 * time.Millisecond, Registerer: reg,
		HistoryPath: hist, Logger: slog.New(slog.DiscardHandler)})
	pipetest.Eventually(t, 60*time.Second, "every row routed", func() bool { return rowCount(routedOn(t, cc, rm.IDs)) >= n })

	got := gatherMetrics(t, reg)
	judged, nov := got["domainflow_novelty_judged_rows_total"], got["domainflow_novel_rows_total"]
	if judged != float64(n) || nov < 0.9*500 || nov > 500+0.02*2000 {
		t.Errorf("metrics: %v novel of %v judged; want %d judged, at least 450 and at most 540 novel", nov, judged, n)
	}
	if f := got["domainflow_novel_fraction/1000"]; f < 0.45 || f > 0.52 {
		t.Errorf("novel fraction over the last 1000 rows = %v, want about 0.5 (%v)", f, got)
	}
	for _, id := range rm.IDs {
		if d := got["domainflow_domain_drift/"+strconv.Itoa(id)]; d < 10 {
			t.Errorf("drift of domain %d = %v, want far above 1", id, d)
		}
	}
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last RoutingState
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Judged != int64(n) || float64(last.Novel) != nov || last.NovelFraction["1000"] != got["domainflow_novel_fraction/1000"] {
		t.Errorf("last history line %+v; want %d judged, %v novel", last, n, nov)
	}
}

// A router keeps the fit-time distances of its domains; a row beyond the
// 0.99 quantile of its nearest domain's is novel.
func ExampleNoveltyRule() {
	// Two fit blobs on the axes: 100 rows each at squared distance 0.01·i
	// from their centroid.
	m := &Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}}
	var fit []float32
	for i := range 100 {
		d := float32(math.Sqrt(0.01 * float64(i)))
		fit = append(fit, 1+d, 0, 0, 1+d)
	}
	rm := &RouterModel{IDs: []int{0, 1}, NextID: 2, Model: m, Distances: FitDistances(m, &Rows{N: 200, Dim: 2, Values: fit})}
	q99 := rm.Distances[0].Quantile(0.99)
	fmt.Printf("domain 0: %d fit rows, p50 %.3f, p99 %.4f, max %.2f\n", rm.Distances[0].Count, rm.Distances[0].Quantile(0.5), q99, rm.Distances[0].Max)

	th := NoveltyRule{}.Thresholds(rm) // the default rule: above the 0.99 quantile
	r, _ := NewRouter(m, RouteConfig{Unbalanced: true})
	a, _ := r.RouteAll(&Rows{N: 2, Dim: 2, Values: []float32{1.5, 0, 3, 3}})
	for i := range 2 {
		fmt.Printf("row %d: nearest %d at %.2f, novel %v\n", i, a.Nearest[i], a.NearestDistances[i], float64(a.NearestDistances[i]) > th[a.Nearest[i]])
	}
	fmt.Println(NoveltyRule{Margin: 0.1})
	// Output:
	// domain 0: 100 fit rows, p50 0.495, p99 0.9801, max 0.99
	// row 0: nearest 0 at 0.25, novel false
	// row 1: nearest 0 at 13.00, novel true
	// distance > 1.1 × q0.99 of the nearest domain's fit distances, or out-of-vocabulary share > 1.1 × q0.99 of the fit documents' (held out)
}
