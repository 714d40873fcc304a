package cluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/schemas"
)

// testRouter returns a router with k unit-norm random centroids of dimension
// dim, ids 3k-1, 3k-4, … (not in order), top terms and sizes.
func testRouter(k, dim int, seed uint64) *RouterModel {
	rng := rand.New(rand.NewPCG(seed, 1))
	md := &Model{K: k, Dim: dim, Centroids: make([]float32, k*dim), Sizes: make([]int, k), Inertia: 12.5}
	for j := range k {
		c := md.Centroid(j)
		s := 0.0
		for d := range c {
			c[d] = float32(rng.NormFloat64())
			s += float64(c[d]) * float64(c[d])
		}
		for d := range c {
			c[d] /= float32(math.Sqrt(s))
		}
		md.Sizes[j] = 100 + j
	}
	m := &RouterModel{
		FeaturizerVersion: 4, Featurizer: "tfidf", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		IDs: make([]int, k), Model: md, TopTerms: make([][]string, k),
		Fit:    FitConfig{K: k, MaxIter: 50, Seed: 9, Restarts: 2},
		Route:  RouteConfig{Tolerance: 0.1, Window: 1000},
		NextID: 3 * k,
	}
	for j := range k {
		m.IDs[j] = 3*k - 1 - 3*j
		if j%2 == 0 {
			m.TopTerms[j] = []string{fmt.Sprintf("term%d", j), "ünïcode", ""}
		}
	}
	return m
}

func sameRouter(t *testing.T, got, want *RouterModel) {
	t.Helper()
	if got.Version != want.Version || got.FeaturizerVersion != want.FeaturizerVersion || got.Featurizer != want.Featurizer || !got.Created.Equal(want.Created) {
		t.Errorf("header: got v%d fv%d %q %v, want v%d fv%d %q %v", got.Version, got.FeaturizerVersion, got.Featurizer, got.Created,
			want.Version, want.FeaturizerVersion, want.Featurizer, want.Created)
	}
	if !slices.Equal(got.IDs, want.IDs) || got.NextID != want.NextID {
		t.Errorf("ids: got %v next %d, want %v next %d", got.IDs, got.NextID, want.IDs, want.NextID)
	}
	if !reflect.DeepEqual(got.Model, want.Model) {
		t.Errorf("model: got %+v, want %+v", got.Model, want.Model)
	}
	if !reflect.DeepEqual(got.TopTerms, want.TopTerms) {
		t.Errorf("top terms: got %q, want %q", got.TopTerms, want.TopTerms)
	}
	if got.Fit != want.Fit || got.Route != want.Route {
		t.Errorf("config: got %+v %+v, want %+v %+v", got.Fit, got.Route, want.Fit, want.Route)
	}
}

func TestRouterSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if v, err := LatestRouterVersion(dir); err != nil || v != 0 {
		t.Fatalf("empty dir: %d, %v", v, err)
	}
	if _, err := LoadRouter(dir, 0); err == nil {
		t.Fatal("load from empty dir: no error")
	}
	m1 := testRouter(5, 7, 1)
	v1, err := SaveRouter(dir, m1)
	if err != nil || v1 != 1 || m1.Version != 1 {
		t.Fatalf("save: %d, %v (m.Version %d)", v1, err, m1.Version)
	}
	m2 := testRouter(3, 4, 2)
	m2.TopTerms = nil
	v2, err := SaveRouter(dir, m2)
	if err != nil || v2 != 2 {
		t.Fatalf("save 2: %d, %v", v2, err)
	}
	for _, name := range []string{"router-000001.arrow", "router-000001.parquet", "router-000002.arrow", "router-000002.parquet"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
	if v, _ := LatestRouterVersion(dir); v != 2 {
		t.Fatalf("latest = %d", v)
	}
	got, err := LoadRouter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, got, m2)
	got, err = LoadRouter(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, got, m1)
	pq, err := LoadRouterFile(filepath.Join(dir, "router-000001.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, pq, m1)
	if _, err := LoadRouter(dir, 3); err == nil {
		t.Error("load of a missing version: no error")
	}

	// Versions: an explicit unused version is kept, a used one is replaced
	// by the next.
	m3 := testRouter(2, 3, 3)
	m3.Version = 10
	if v, err := SaveRouter(dir, m3); err != nil || v != 10 {
		t.Fatalf("explicit version: %d, %v", v, err)
	}
	m3.Version = 5
	if v, err := SaveRouter(dir, m3); err != nil || v != 11 || m3.Version != 11 {
		t.Fatalf("used version: %d, %v", v, err)
	}
	m4 := testRouter(2, 3, 4)
	m4.Created = time.Time{}
	if v, err := SaveRouter(dir, m4); err != nil || v != 12 || m4.Created.IsZero() {
		t.Fatalf("next version: %d, %v, created %v", v, err, m4.Created)
	}
}

func TestRouterParquetFallback(t *testing.T) {
	dir := t.TempDir()
	m := testRouter(6, 5, 7)
	if _, err := SaveRouter(dir, m); err != nil {
		t.Fatal(err)
	}
	arrowPath := RouterPath(dir, 1)
	parquetPath := strings.TrimSuffix(arrowPath, ".arrow") + ".parquet"
	data, err := os.ReadFile(arrowPath)
	if err != nil {
		t.Fatal(err)
	}

	// Damaged in several ways: the Parquet twin is read instead.
	damages := map[string][]byte{
		"truncated": data[:len(data)/2],
		"garbage":   []byte("not an arrow file at all"),
		"empty":     {},
	}
	flipped := slices.Clone(data)
	for i := len(flipped) / 3; i < len(flipped)/3+64; i++ {
		flipped[i] ^= 0xA5
	}
	damages["flipped"] = flipped
	for name, bad := range damages {
		if err := os.WriteFile(arrowPath, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadRouterFile(arrowPath); err == nil && name != "flipped" {
			t.Errorf("%s: arrow file loads", name)
		}
		got, err := LoadRouter(dir, 1)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		sameRouter(t, got, m)
	}

	// Values changed under intact framing: the checksum catches it.
	tampered := m.table()
	tampered.centroids[2] = slices.Clone(tampered.centroids[2])
	tampered.centroids[2][0] += 0.5
	meta, err := m.settings(m.table())
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.WriteFileAtomic(arrowPath, func(f *os.File) error { return writeRouterArrow(f, tampered, meta) }); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRouterFile(arrowPath); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("tampered arrow: %v", err)
	}
	got, err := LoadRouter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, got, m)

	// Arrow file missing: still loads from the twin when asked by version.
	os.Remove(arrowPath)
	if got, err := LoadRouter(dir, 1); err != nil {
		t.Errorf("arrow missing: %v", err)
	} else {
		sameRouter(t, got, m)
	}

	// Both damaged: an error.
	if err := os.WriteFile(arrowPath, data[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	pdata, _ := os.ReadFile(parquetPath)
	if err := os.WriteFile(parquetPath, pdata[:len(pdata)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRouter(dir, 1); err == nil {
		t.Error("both damaged: no error")
	}
	// Parquet twin with tampered values: the checksum catches it too.
	if err := schemas.WriteFileAtomic(parquetPath, func(f *os.File) error { return writeRouterParquet(f, tampered, meta) }); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRouter(dir, 1); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("tampered parquet: %v", err)
	}
}

func TestRouterEncodeDecode(t *testing.T) {
	m := testRouter(4, 6, 3)
	m.Version = 7
	b, err := EncodeRouter(m)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := schemas.DecodeRecords(b, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	kind, ver, err := schemas.KindOf(recs[0].Schema())
	if err != nil || kind != schemas.KindRouterModel || ver != schemas.Version {
		t.Errorf("payload kind %q version %d (%v), want %q %d", kind, ver, err, schemas.KindRouterModel, schemas.Version)
	}
	if err := schemas.CheckSchema(recs[0].Schema(), schemas.KindRouterModel); err != nil {
		t.Error(err)
	}
	if n := recs[0].NumRows(); n != 4 {
		t.Errorf("%d rows, want 4", n)
	}
	for _, r := range recs {
		r.Release()
	}
	got, err := DecodeRouter(b)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, got, m)

	// Errors: garbage, truncation, another kind, tampered values.
	if _, err := DecodeRouter([]byte("junk")); err == nil {
		t.Error("junk decodes")
	}
	if _, err := DecodeRouter(b[:len(b)-20]); err == nil {
		t.Error("truncated payload decodes")
	}
	db := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	db.Append(schemas.Document{ID: "a", Text: "b"}, schemas.Origin{})
	rec := db.NewRecord()
	db.Release()
	docs, err := schemas.EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRouter(docs); err == nil {
		t.Error("document payload decodes as a router")
	}
	tampered := m.table()
	tampered.sizes[1]++
	meta, _ := m.settings(m.table())
	trec := tampered.record(routerSchema(meta))
	tb, err := schemas.EncodeRecord(trec)
	trec.Release()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRouter(tb); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("tampered payload: %v", err)
	}
	// No router metadata.
	prec := m.table().record(schemas.RouterModelSchema())
	pb, _ := schemas.EncodeRecord(prec)
	prec.Release()
	if _, err := DecodeRouter(pb); err == nil {
		t.Error("payload without router metadata decodes")
	}
}

func TestRouterInvalid(t *testing.T) {
	bad := map[string]func(m *RouterModel){
		"nil model":     func(m *RouterModel) { m.Model = nil },
		"few ids":       func(m *RouterModel) { m.IDs = m.IDs[1:] },
		"duplicate id":  func(m *RouterModel) { m.IDs[1] = m.IDs[0] },
		"negative id":   func(m *RouterModel) { m.IDs[0] = -1 },
		"id ≥ next":     func(m *RouterModel) { m.NextID = m.IDs[0] },
		"centroids":     func(m *RouterModel) { m.Model.Centroids = m.Model.Centroids[1:] },
		"sizes":         func(m *RouterModel) { m.Model.Sizes = m.Model.Sizes[1:] },
		"negative size": func(m *RouterModel) { m.Model.Sizes[0] = -1 },
		"top terms":     func(m *RouterModel) { m.TopTerms = m.TopTerms[1:] },
		"nan centroid":  func(m *RouterModel) { m.Model.Centroids[3] = float32(math.NaN()) },
		"zero k": func(m *RouterModel) {
			m.Model.K, m.Model.Centroids, m.Model.Sizes, m.IDs, m.TopTerms = 0, nil, nil, nil, nil
		},
		"nan inertia":    func(m *RouterModel) { m.Model.Inertia = math.NaN() },
		"neg version":    func(m *RouterModel) { m.Version = -2 },
		"id above int32": func(m *RouterModel) { m.IDs[0], m.NextID = math.MaxInt32+1, math.MaxInt32+2 },
	}
	dir := t.TempDir()
	for name, f := range bad {
		m := testRouter(3, 4, 1)
		f(m)
		if _, err := SaveRouter(dir, m); err == nil {
			t.Errorf("%s: saved", name)
		}
		if _, err := EncodeRouter(m); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if _, err := SaveRouter(dir, nil); err == nil {
		t.Error("nil router saved")
	}
	if v, _ := LatestRouterVersion(dir); v != 0 {
		t.Errorf("a failed save left version %d", v)
	}
	// Sizes may be nil: they load as zeros.
	m := testRouter(3, 4, 1)
	m.Model.Sizes = nil
	b, err := EncodeRouter(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRouter(b)
	if err != nil || !slices.Equal(got.Model.Sizes, []int{0, 0, 0}) {
		t.Errorf("nil sizes: %v, %v", got, err)
	}
}

func TestRouterKIndex(t *testing.T) {
	m := testRouter(4, 3, 1)
	if m.K() != 4 {
		t.Errorf("K = %d", m.K())
	}
	for j, id := range m.IDs {
		if got, ok := m.Index(id); !ok || got != j {
			t.Errorf("Index(%d) = %d, %v; want %d", id, got, ok, j)
		}
	}
	if _, ok := m.Index(1000); ok {
		t.Error("Index of a missing id found")
	}
	var nilm *RouterModel
	if nilm.K() != 0 {
		t.Error("nil K")
	}
	if _, ok := nilm.Index(0); ok {
		t.Error("nil Index")
	}
}

// perturbed returns the centroids of m in order perm (row q = m's row
// perm[q]) with noise of size eps.
func perturbed(m *Model, perm []int, eps float64, rng *rand.Rand) *Model {
	out := &Model{K: len(perm), Dim: m.Dim, Centroids: make([]float32, 0, len(perm)*m.Dim), Sizes: make([]int, len(perm))}
	for _, p := range perm {
		for _, v := range m.Centroid(p) {
			out.Centroids = append(out.Centroids, v+float32(eps*rng.NormFloat64()))
		}
	}
	return out
}

func TestMatchIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, k := range []int{1, 2, 8, 40} {
		prev := testRouter(k, 16, uint64(k))
		prev.NextID += 5
		perm := rng.Perm(k)
		next := perturbed(prev.Model, perm, 1e-3, rng)
		ids, nextID := MatchIDs(prev, next)
		if nextID != prev.NextID {
			t.Errorf("k=%d: next id %d, want %d", k, nextID, prev.NextID)
		}
		for q, p := range perm {
			if ids[q] != prev.IDs[p] {
				t.Fatalf("k=%d: centroid %d got id %d, want %d", k, q, ids[q], prev.IDs[p])
			}
		}

		// k grows: previous centroids shuffled plus new ones, interleaved.
		grown := perturbed(prev.Model, perm, 1e-3, rng)
		extra := testRouter(3, 16, 1000+uint64(k)).Model
		pos := []int{0, grown.K/2 + 1, grown.K + 2} // where the new rows go
		var want []int
		cent := []float32{}
		fresh, src := prev.NextID, 0
		for q := range grown.K + 3 {
			if e := slices.Index(pos, q); e >= 0 {
				cent = append(cent, extra.Centroid(e)...)
				want = append(want, fresh)
				fresh++
				continue
			}
			cent = append(cent, grown.Centroid(src)...)
			want = append(want, prev.IDs[perm[src]])
			src++
		}
		g := &Model{K: grown.K + 3, Dim: 16, Centroids: cent, Sizes: make([]int, grown.K+3)}
		ids, nextID = MatchIDs(prev, g)
		if !slices.Equal(ids, want) || nextID != prev.NextID+3 {
			t.Errorf("k=%d grown: ids %v next %d, want %v next %d", k, ids, nextID, want, prev.NextID+3)
		}

		// k shrinks: a shuffled subset keeps its ids; the rest are retired.
		if k > 1 {
			sub := perm[:k/2]
			ids, nextID = MatchIDs(prev, perturbed(prev.Model, sub, 1e-3, rng))
			for q, p := range sub {
				if ids[q] != prev.IDs[p] {
					t.Errorf("k=%d shrunk: centroid %d got id %d, want %d", k, q, ids[q], prev.IDs[p])
				}
			}
			if nextID != prev.NextID {
				t.Errorf("k=%d shrunk: next id %d", k, nextID)
			}
		}
	}

	// No previous router: 0..k-1.
	m := testRouter(5, 3, 1).Model
	if ids, n := MatchIDs(nil, m); !slices.Equal(ids, []int{0, 1, 2, 3, 4}) || n != 5 {
		t.Errorf("nil prev: %v %d", ids, n)
	}
	// Another dimension: all fresh.
	prev := testRouter(2, 4, 1)
	if ids, n := MatchIDs(prev, m); !slices.Equal(ids, []int{6, 7, 8, 9, 10}) || n != 11 {
		t.Errorf("dimension change: %v %d", ids, n)
	}
	// NextID below the ids (inconsistent prev): never reuse an id.
	prev.NextID = 0
	if ids, n := MatchIDs(prev, perturbed(prev.Model, []int{0, 1, 1}, 0.01, rng)); n != 7 || ids[0] != 5 || !slices.Equal(slices.Sorted(slices.Values(ids)), []int{2, 5, 6}) {
		t.Errorf("low next id: %v %d", ids, n)
	}
	if ids, n := MatchIDs(prev, nil); len(ids) != 0 || n != 6 {
		t.Errorf("nil next: %v %d", ids, n)
	}
}

// TestHungarianOptimal checks the assignment against brute force.
func TestHungarianOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rng.IntN(5)
		m := n + rng.IntN(3)
		cost := make([]float64, n*m)
		for i := range cost {
			if trial%3 == 0 {
				cost[i] = float64(rng.IntN(4)) // many ties
			} else {
				cost[i] = rng.Float64()
			}
		}
		got := hungarian(cost, n, m)
		seen := map[int]bool{}
		total := 0.0
		for i, j := range got {
			if j < 0 || j >= m || seen[j] {
				t.Fatalf("trial %d: not an assignment: %v", trial, got)
			}
			seen[j] = true
			total += cost[i*m+j]
		}
		best := math.Inf(1)
		var rec func(i int, used []bool, s float64)
		rec = func(i int, used []bool, s float64) {
			if i == n {
				best = min(best, s)
				return
			}
			for j := range m {
				if !used[j] {
					used[j] = true
					rec(i+1, used, s+cost[i*m+j])
					used[j] = false
				}
			}
		}
		rec(0, make([]bool, m), 0)
		if total > best+1e-9 {
			t.Fatalf("trial %d: cost %v, optimum %v", trial, total, best)
		}
	}
}

func TestRemoveDomain(t *testing.T) {
	m := testRouter(5, 4, 2)
	m.Version = 3
	orig := m.clone()
	id := m.IDs[2]
	r, err := m.RemoveDomain(id)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, m, orig) // m untouched
	if r.K() != 4 || r.Fit.K != 4 || r.Version != 0 || r.NextID != m.NextID {
		t.Errorf("K %d fit.K %d version %d next %d", r.K(), r.Fit.K, r.Version, r.NextID)
	}
	if _, ok := r.Index(id); ok {
		t.Error("removed id still there")
	}
	for _, other := range m.IDs {
		if other == id {
			continue
		}
		j, ok := r.Index(other)
		oj, _ := m.Index(other)
		if !ok || !slices.Equal(r.Model.Centroid(j), m.Model.Centroid(oj)) || r.Model.Sizes[j] != m.Model.Sizes[oj] ||
			!slices.Equal(r.TopTerms[j], m.TopTerms[oj]) {
			t.Errorf("domain %d changed", other)
		}
	}
	if err := r.validate(); err != nil {
		t.Error(err)
	}
	// Documents of the removed domain route to their next nearest.
	x := &Rows{N: 1, Dim: 4, Values: slices.Clone(m.Model.Centroid(2))}
	dom, _ := r.Model.Assign(x)
	d0, _ := (&Model{K: 4, Dim: 4, Centroids: slices.Concat(m.Model.Centroids[:8], m.Model.Centroids[12:])}).Assign(x)
	if dom[0] != d0[0] {
		t.Errorf("routed to row %d, want %d", dom[0], d0[0])
	}
	if _, err := m.RemoveDomain(12345); err == nil {
		t.Error("unknown id removed")
	}
	one := testRouter(1, 3, 1)
	if _, err := one.RemoveDomain(one.IDs[0]); err == nil {
		t.Error("last domain removed")
	}
	// Saved, it becomes the next version.
	dir := t.TempDir()
	if _, err := SaveRouter(dir, m); err != nil {
		t.Fatal(err)
	}
	if v, err := SaveRouter(dir, r); err != nil || v != 4 {
		t.Errorf("save removed: %d, %v", v, err)
	}
}

func TestSplitDomain(t *testing.T) {
	m := testRouter(4, 8, 3)
	orig := m.clone()
	id := m.IDs[1]
	c := m.Model.Centroid(1)
	// Members: two blobs either side of the centroid, 21 + 20 points.
	rng := rand.New(rand.NewPCG(3, 4))
	dir := make([]float32, 8)
	for d := range dir {
		dir[d] = float32(rng.NormFloat64() * 0.3)
	}
	n := 41
	x := &Rows{N: n, Dim: 8, Values: make([]float32, 0, n*8)}
	for i := range n {
		sign := float32(1)
		if i%2 == 1 {
			sign = -1
		}
		if i == n-1 {
			sign = 1.2 // a point nearer one blob
		}
		for d := range 8 {
			x.Values = append(x.Values, c[d]+sign*dir[d]+float32(0.01*rng.NormFloat64()))
		}
	}
	s, err := m.SplitDomain(context.Background(), id, x, 7)
	if err != nil {
		t.Fatal(err)
	}
	sameRouter(t, m, orig)
	if s.K() != 5 || s.Fit.K != 5 || s.NextID != m.NextID+1 || s.IDs[4] != m.NextID || s.Version != 0 {
		t.Fatalf("K %d fit.K %d next %d ids %v version %d", s.K(), s.Fit.K, s.NextID, s.IDs, s.Version)
	}
	if err := s.validate(); err != nil {
		t.Error(err)
	}
	j, ok := s.Index(id)
	if !ok || j != 1 {
		t.Fatalf("kept id at %d, %v", j, ok)
	}
	a, b := s.Model.Sizes[1], s.Model.Sizes[4]
	if a+b != n || max(a, b)-min(a, b) > 1 {
		t.Errorf("halves %d + %d, want balanced %d", a, b, n)
	}
	if s.TopTerms[1] != nil || s.TopTerms[4] != nil {
		t.Errorf("split halves keep top terms %q %q", s.TopTerms[1], s.TopTerms[4])
	}
	for _, other := range []int{0, 2, 3} {
		if !slices.Equal(s.Model.Centroid(other), m.Model.Centroid(other)) || s.IDs[other] != m.IDs[other] ||
			s.Model.Sizes[other] != m.Model.Sizes[other] || !slices.Equal(s.TopTerms[other], m.TopTerms[other]) {
			t.Errorf("row %d changed", other)
		}
	}
	// The halves sit near the blobs, the kept one nearer the old centroid.
	dist := func(p, q []float32) float64 {
		v := 0.0
		for d := range p {
			v += (float64(p[d]) - float64(q[d])) * (float64(p[d]) - float64(q[d]))
		}
		return v
	}
	if dist(s.Model.Centroid(1), c) > dist(s.Model.Centroid(4), c) {
		t.Error("the kept half is the farther one")
	}
	plus, minus := make([]float32, 8), make([]float32, 8)
	for d := range 8 {
		plus[d], minus[d] = c[d]+dir[d], c[d]-dir[d]
	}
	h1, h2 := s.Model.Centroid(1), s.Model.Centroid(4)
	if min(dist(h1, plus)+dist(h2, minus), dist(h1, minus)+dist(h2, plus)) > 0.05 {
		t.Errorf("halves %v %v not at the blobs", h1, h2)
	}
	// Deterministic for a seed.
	s2, err := m.SplitDomain(context.Background(), id, x, 7)
	if err != nil || !reflect.DeepEqual(s2.Model, s.Model) {
		t.Error("split not deterministic")
	}
	// Splitting twice gives distinct fresh ids.
	s3, err := s.SplitDomain(context.Background(), s.IDs[4], x, 1)
	if err != nil || s3.IDs[5] != m.NextID+1 || s3.NextID != m.NextID+2 {
		t.Errorf("second split: %v %v", s3, err)
	}

	// Errors.
	if _, err := m.SplitDomain(context.Background(), 999, x, 1); err == nil {
		t.Error("unknown id split")
	}
	if _, err := m.SplitDomain(context.Background(), id, nil, 1); err == nil {
		t.Error("nil members")
	}
	if _, err := m.SplitDomain(context.Background(), id, &Rows{N: 1, Dim: 8, Values: x.Values[:8]}, 1); err == nil {
		t.Error("one member split")
	}
	if _, err := m.SplitDomain(context.Background(), id, &Rows{N: 2, Dim: 4, Values: x.Values[:8]}, 1); err == nil {
		t.Error("dimension mismatch split")
	}
	if _, err := m.SplitDomain(context.Background(), id, &Rows{N: 2, Dim: 8, Values: x.Values[:8]}, 1); err == nil {
		t.Error("invalid rows split")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.SplitDomain(ctx, id, x, 1); err == nil {
		t.Error("cancelled split")
	}
}

func ExampleMatchIDs() {
	// A refit finds the same two domains in the other order, plus a new one.
	prev := &RouterModel{
		IDs:    []int{4, 9},
		Model:  &Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}, Sizes: []int{10, 10}},
		NextID: 10,
	}
	next := &Model{K: 3, Dim: 2, Centroids: []float32{0, 0.9, -1, 0, 0.95, 0.1}, Sizes: []int{7, 7, 6}}
	ids, nextID := MatchIDs(prev, next)
	fmt.Println(ids, nextID)

	r := &RouterModel{FeaturizerVersion: 1, Featurizer: "tfidf", IDs: ids, Model: next, NextID: nextID,
		TopTerms: [][]string{{"ball", "goal"}, nil, {"vote"}}}
	dir, _ := os.MkdirTemp("", "router")
	defer os.RemoveAll(dir)
	v, err := SaveRouter(dir, r)
	if err != nil {
		fmt.Println(err)
		return
	}
	loaded, err := LoadRouter(dir, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	j, _ := loaded.Index(4)
	fmt.Println(v, loaded.K(), loaded.IDs, loaded.TopTerms[j])

	removed, _ := loaded.RemoveDomain(10)
	fmt.Println(removed.IDs, removed.NextID)
	// Output:
	// [9 10 4] 11
	// 1 3 [9 10 4] [vote]
	// [9 4] 11
}
