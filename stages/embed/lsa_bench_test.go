package embed

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// lsaSyntheticTfidf returns a matrix shaped like the tf-idf of a text corpus
// of `topics` subjects: rows documents over cols terms; each document has a
// topic and draws its terms, with replacement, 60% from a global Zipf law
// (s = 1.1) and 40% from its topic's (the same law over another ranking of
// the terms); between nnzRow/2 and 3·nnzRow/2 distinct terms a row; values
// (1 + ln tf)·idf with scikit-learn's smooth idf; rows L2 normalized. It is
// deterministic for a seed.
func lsaSyntheticTfidf(rows, cols, nnzRow, topics int, seed uint64) *CSR {
	r := rand.New(rand.NewPCG(seed, 13))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(cols-1))
	perms := make([][]int, topics+1) // perms[0]: the global ranking
	for t := range perms {
		perms[t] = r.Perm(cols)
	}
	stamp := make([]int32, cols) // row+1 that last saw the column
	count := make([]int32, cols)
	df := make([]int32, cols)
	x := NewCSR(cols)
	var tfs []int32
	for i := range rows {
		topic := perms[1+r.IntN(topics)]
		want := nnzRow/2 + r.IntN(nnzRow+1)
		var idx []int32
		for draws := 0; len(idx) < want && draws < 50*want; draws++ {
			perm := perms[0]
			if r.IntN(10) < 4 {
				perm = topic
			}
			c := int32(perm[zipf.Uint64()])
			if stamp[c] != int32(i+1) {
				stamp[c], count[c] = int32(i+1), 0
				idx = append(idx, c)
			}
			count[c]++
		}
		slices.Sort(idx)
		for _, c := range idx {
			df[c]++
			tfs = append(tfs, count[c])
		}
		x.AppendRow(idx, make([]float32, len(idx)))
	}
	for p, c := range x.Indices {
		idf := math.Log(float64(1+rows)/float64(1+df[c])) + 1
		x.Data[p] = float32((1 + math.Log(float64(tfs[p]))) * idf)
	}
	for i := range rows {
		_, val := x.Row(i)
		normalizeL2(val)
	}
	return x
}

// The corpus-shaped benchmark matrix: 3068 × 150000, ~500 nonzeros a row in
// 20 topics, like the tf-idf of shared/corpora/mixed-v1 (3068 × 148009,
// 1.53M nonzeros, 20 labels).
var lsaBenchCorpus = sync.OnceValue(func() *CSR { return lsaSyntheticTfidf(3068, 150000, 500, 20, 1) })

// BenchmarkFitLSA fits c-BTM's LSA (Dims 100, PowerIters 5, Oversamples 10)
// on the corpus-shaped matrix; "fit-project" is FitProjectLSA, the
// equivalent of TruncatedSVD.fit_transform + Normalizer.
//
//	go test ./stages/embed/ -run '^$' -bench 'FitLSA|LSAProject' -benchtime 5x
func BenchmarkFitLSA(b *testing.B) {
	ctx := context.Background()
	x := lsaBenchCorpus()
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("fit/%dx%d/workers=%d", x.Rows, x.Cols, w), func(b *testing.B) {
			for b.Loop() {
				if _, err := FitLSA(ctx, x, LSAConfig{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/fit")
		})
		b.Run(fmt.Sprintf("fit-project/%dx%d/workers=%d", x.Rows, x.Cols, w), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := FitProjectLSA(ctx, x, LSAConfig{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
		})
	}
}

// lsaCorpusTfidf is the c-BTM tf-idf (TfidfConfig{}) of the shared corpus
// mixed-v1, or nil when the corpus is absent. Its path is
// EMBED_BENCH_CORPUS, or ../../../shared/corpora/mixed-v1.jsonl.gz as in
// the workspace.
var lsaCorpusTfidf = sync.OnceValues(func() (*CSR, error) {
	path := os.Getenv("EMBED_BENCH_CORPUS")
	if path == "" {
		path = filepath.Join("..", "..", "..", "shared", "corpora", "mixed-v1.jsonl.gz")
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var texts []string
	for dec := json.NewDecoder(z); ; {
		var doc struct {
			Text string `json:"text"`
		}
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		texts = append(texts, doc.Text)
	}
	var t Tfidf
	v, err := t.FitTransform(context.Background(), texts)
	if err != nil {
		return nil, err
	}
	return v.Sparse, nil
})

func lsaCorpus(tb testing.TB) *CSR {
	x, err := lsaCorpusTfidf()
	if err != nil {
		tb.Fatal(err)
	}
	if x == nil {
		tb.Skip("corpus mixed-v1 not found (set EMBED_BENCH_CORPUS)")
	}
	return x
}

// BenchmarkFitLSACorpus is BenchmarkFitLSA on the real tf-idf of mixed-v1
// (the tf-idf is computed once, outside the timing).
func BenchmarkFitLSACorpus(b *testing.B) {
	ctx := context.Background()
	x := lsaCorpus(b)
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("fit/%dx%d/workers=%d", x.Rows, x.Cols, w), func(b *testing.B) {
			for b.Loop() {
				if _, err := FitLSA(ctx, x, LSAConfig{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/fit")
		})
		b.Run(fmt.Sprintf("fit-project/%dx%d/workers=%d", x.Rows, x.Cols, w), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := FitProjectLSA(ctx, x, LSAConfig{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
		})
	}
}

// BenchmarkLSAProject projects the corpus-shaped matrix's rows.
func BenchmarkLSAProject(b *testing.B) {
	ctx := context.Background()
	x := lsaBenchCorpus()
	l, err := FitLSA(ctx, x, LSAConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			l.Config.Workers = w
			for b.Loop() {
				if _, err := l.Project(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(x.Rows)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// The side-by-side with scikit-learn. With LSA_SKLEARN_DIR set,
// TestLSAWriteSklearnBench writes the synthetic benchmark matrix to
// DIR/synthetic and, when the corpus is there, its tf-idf to DIR/corpus,
// with a script that times TruncatedSVD on them and stores an ARPACK
// reference SVD; TestLSAAgainstReference then compares FitLSA with it.
//
//	LSA_SKLEARN_DIR=/tmp/lsa go test ./stages/embed/ -run TestLSAWriteSklearnBench
//	/usr/bin/python3 /tmp/lsa/lsa_sklearn.py /tmp/lsa/synthetic /tmp/lsa/corpus
//	LSA_SKLEARN_DIR=/tmp/lsa go test ./stages/embed/ -run TestLSAAgainstReference -v
const lsaSklearnScript = `"""For each DIR written by TestLSAWriteSklearnBench: time
TruncatedSVD(100, randomized, n_iter=5) + Normalizer (on float64, as
TfidfVectorizer makes, and on float32), then store an ARPACK reference SVD
(svds, k=100) for TestLSAAgainstReference.
Usage: python3 lsa_sklearn.py DIR... (RUNS=3 in the environment)"""
import json, os, sys, time
import numpy as np, scipy, scipy.sparse as sp, sklearn
from scipy.sparse.linalg import svds
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import Normalizer

runs = int(os.environ.get("RUNS", "3"))
for d in sys.argv[1:]:
    m = json.load(open(f"{d}/meta.json"))
    X32 = sp.csr_matrix((np.fromfile(f"{d}/data.f32", np.float32), np.fromfile(f"{d}/indices.i32", np.int32),
                         np.fromfile(f"{d}/indptr.i64", np.int64)), shape=(m["rows"], m["cols"]))
    out = {"dir": d, "shape": X32.shape, "nnz": int(X32.nnz), "versions": [np.__version__, scipy.__version__, sklearn.__version__]}
    try:
        from threadpoolctl import threadpool_info
        out["threads"] = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    except Exception:
        pass
    for name, X in (("float64", X32.astype(np.float64)), ("float32", X32)):
        ts = []
        for seed in range(runs):
            t0 = time.perf_counter()
            svd = TruncatedSVD(100, algorithm="randomized", n_iter=5, random_state=seed)
            Normalizer(copy=False).fit_transform(svd.fit_transform(X))
            ts.append(time.perf_counter() - t0)
        out[name] = {"median_s": float(np.median(ts)), "runs_s": ts}
        if name == "float64":
            svd.singular_values_.astype(np.float64).tofile(f"{d}/sklearn_singular.f64")
    t0 = time.perf_counter()
    _, s, vt = svds(X32.astype(np.float64), k=100, tol=1e-10, random_state=0)
    out["svds_s"] = time.perf_counter() - t0
    order = np.argsort(-s)
    s[order].astype(np.float64).tofile(f"{d}/svds_singular.f64")
    vt[order].astype(np.float32).tofile(f"{d}/svds_vt.f32")
    print(json.dumps(out), flush=True)
`

func lsaSklearnDir(t *testing.T) string {
	dir := os.Getenv("LSA_SKLEARN_DIR")
	if dir == "" {
		t.Skip("LSA_SKLEARN_DIR not set")
	}
	return dir
}

func TestLSAWriteSklearnBench(t *testing.T) {
	dir := lsaSklearnDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lsa_sklearn.py"), []byte(lsaSklearnScript), 0o644); err != nil {
		t.Fatal(err)
	}
	lsaWriteCSR(t, filepath.Join(dir, "synthetic"), lsaBenchCorpus())
	if x, err := lsaCorpusTfidf(); err != nil {
		t.Fatal(err)
	} else if x != nil {
		lsaWriteCSR(t, filepath.Join(dir, "corpus"), x)
	}
}

// lsaWriteCSR writes x as raw little-endian arrays plus meta.json.
func lsaWriteCSR(t *testing.T, dir string, x *CSR) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, v any) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := binary.Write(f, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("data.f32", x.Data)
	write("indices.i32", x.Indices)
	write("indptr.i64", x.Indptr)
	meta, _ := json.Marshal(map[string]int{"rows": x.Rows, "cols": x.Cols, "nnz": x.NNZ()})
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d×%d (%d nonzeros) to %s", x.Rows, x.Cols, x.NNZ(), dir)
}

// lsaReadRaw decodes a file written by lsaWriteCSR or lsa_sklearn.py into
// v; false if the file is absent.
func lsaReadRaw(t *testing.T, path string, v any) bool {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
		t.Fatal(path, err)
	}
	return true
}

// TestLSAAgainstReference compares FitLSA and scikit-learn with an ARPACK
// SVD of each matrix lsa_sklearn.py has processed.
func TestLSAAgainstReference(t *testing.T) {
	root := lsaSklearnDir(t)
	for _, name := range []string{"synthetic", "corpus"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, name)
			var meta struct{ Rows, Cols, NNZ int }
			b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
			if err != nil {
				t.Skip(err)
			}
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			x := &CSR{Rows: meta.Rows, Cols: meta.Cols, Indptr: make([]int64, meta.Rows+1), Indices: make([]int32, meta.NNZ), Data: make([]float32, meta.NNZ)}
			const d = 100
			ref := make([]float64, d)
			refV := make([]float32, d*x.Cols)
			skl := make([]float64, d)
			if !lsaReadRaw(t, filepath.Join(dir, "data.f32"), x.Data) || !lsaReadRaw(t, filepath.Join(dir, "indices.i32"), x.Indices) ||
				!lsaReadRaw(t, filepath.Join(dir, "indptr.i64"), x.Indptr) {
				t.Fatal("matrix files missing")
			}
			if !lsaReadRaw(t, filepath.Join(dir, "svds_singular.f64"), ref) || !lsaReadRaw(t, filepath.Join(dir, "svds_vt.f32"), refV) ||
				!lsaReadRaw(t, filepath.Join(dir, "sklearn_singular.f64"), skl) {
				t.Skip("run lsa_sklearn.py first")
			}
			l, err := FitLSA(context.Background(), x, LSAConfig{})
			if err != nil {
				t.Fatal(err)
			}
			vref := mat.NewDense(x.Cols, d, nil) // columns: reference right singular vectors
			for k := range d {
				for j := range x.Cols {
					vref.Set(j, k, float64(refV[k*x.Cols+j]))
				}
			}
			for _, top := range []int{2, 10, 20, 50, 100} {
				var ours, theirs float64
				for i := range top {
					ours = max(ours, math.Abs(float64(l.Singular[i])-ref[i])/ref[i])
					theirs = max(theirs, math.Abs(skl[i]-ref[i])/ref[i])
				}
				t.Logf("top %3d: cos(largest principal angle) to ARPACK %.6f; worst σ relative error: FitLSA %.2e, scikit-learn %.2e",
					top, lsaMinCos(l.Components, vref, top), ours, theirs)
				// Same algorithm, other random numbers: the errors are alike.
				if ours > 1.5*theirs+1e-4 {
					t.Errorf("top %d: FitLSA's singular values are off by up to %.2g, scikit-learn's by %.2g", top, ours, theirs)
				}
			}
		})
	}
}
