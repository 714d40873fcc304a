package embed

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// loadCorpus reads the "text" fields of a gzipped JSON-lines corpus.
func loadCorpus(tb testing.TB, path string) []string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var texts []string
	sc := bufio.NewScanner(z)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for sc.Scan() {
		var d struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, d.Text)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return texts
}

func smallCorpus(tb testing.TB) []string {
	texts := loadCorpus(tb, filepath.Join("..", "..", "testdata", "mixed-small.jsonl.gz"))
	if len(texts) != 334 {
		tb.Fatalf("mixed-small has %d documents, want 334", len(texts))
	}
	return texts
}

// csrGolden is a tf-idf matrix from scikit-learn (scripts/golden_tfidf.py):
// the first Head rows in full, nnz/sum/dot for all rows.
type csrGolden struct {
	Vocabulary []string  `json:"vocabulary"`
	IDF        []float64 `json:"idf"`
	IDFIndex   []int     `json:"idf_index"`
	IDFValue   []float64 `json:"idf_value"`
	IDFDefault float64   `json:"idf_default"`
	Rows       int       `json:"rows"`
	Cols       int       `json:"cols"`
	Head       int       `json:"head"`
	Indptr     []int64   `json:"indptr"`
	Indices    []int32   `json:"indices"`
	Data       []float64 `json:"data"`
	RowNNZ     []int     `json:"row_nnz"`
	RowSum     []float64 `json:"row_sum"`
	RowDot     []float64 `json:"row_dot"`
}

// colWeight is the golden files' fixed column weight.
func colWeight(j int32) float64 { return float64((int64(j)*2654435761)%1000) / 1000 }

// checkGoldenCSR compares m with g: every value of the head rows within
// 1e-5, and every row's nnz, sum and weighted sum.
func checkGoldenCSR(t *testing.T, m *CSR, g *csrGolden) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.Rows != g.Rows || m.Cols != g.Cols {
		t.Fatalf("shape %dx%d, want %dx%d", m.Rows, m.Cols, g.Rows, g.Cols)
	}
	bad := 0
	for i := range m.Rows {
		idx, val := m.Row(i)
		if len(idx) != g.RowNNZ[i] {
			t.Errorf("row %d: nnz %d, want %d", i, len(idx), g.RowNNZ[i])
			bad++
			continue
		}
		var sum, dot float64
		for k, c := range idx {
			sum += float64(val[k])
			dot += float64(val[k]) * colWeight(c)
		}
		tol := 1e-5 * math.Sqrt(float64(len(idx))+1)
		if math.Abs(sum-g.RowSum[i]) > tol || math.Abs(dot-g.RowDot[i]) > tol {
			t.Errorf("row %d: sum %.7g dot %.7g, want %.7g %.7g", i, sum, dot, g.RowSum[i], g.RowDot[i])
			bad++
		}
		if i >= g.Head {
			continue
		}
		lo := g.Indptr[i]
		for k, c := range idx {
			gc, gv := g.Indices[lo+int64(k)], g.Data[lo+int64(k)]
			if c != gc || math.Abs(float64(val[k])-gv) > 1e-5 {
				t.Errorf("row %d entry %d: (%d, %.7g), want (%d, %.7g)", i, k, c, val[k], gc, gv)
				bad++
				break
			}
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

func checkVocabulary(t *testing.T, f *Tfidf, g *csrGolden) {
	t.Helper()
	if !slices.Equal(f.Vocabulary, g.Vocabulary) {
		n := 0
		for i := 0; i < min(len(f.Vocabulary), len(g.Vocabulary)) && n < 5; i++ {
			if f.Vocabulary[i] != g.Vocabulary[i] {
				t.Errorf("term %d = %q, want %q", i, f.Vocabulary[i], g.Vocabulary[i])
				n++
			}
		}
		t.Fatalf("vocabulary of %d terms differs from scikit-learn's %d", len(f.Vocabulary), len(g.Vocabulary))
	}
	for i, v := range g.IDF {
		if math.Abs(float64(f.IDF[i])-v) > 1e-5 {
			t.Fatalf("idf[%d] (%q) = %v, want %v", i, f.Vocabulary[i], f.IDF[i], v)
		}
	}
}

// TestTfidfGolden checks agreement with scikit-learn's TfidfVectorizer with
// c-BTM's tokenizer: (a) defaults, (b) sublinear_tf with min_df=2,
// max_df=0.9, max_features=5000.
func TestTfidfGolden(t *testing.T) {
	texts := smallCorpus(t)
	ctx := context.Background()
	for _, tc := range []struct {
		file string
		cfg  TfidfConfig
	}{
		{"tfidf_default.json.gz", TfidfConfig{}},
		{"tfidf_sublinear.json.gz", TfidfConfig{SublinearTF: true, MinDF: 2, MaxDF: 0.9, MaxFeatures: 5000}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var g csrGolden
			readGolden(t, tc.file, &g)
			for _, workers := range []int{1, 3} {
				cfg := tc.cfg
				cfg.Workers = workers
				f, err := FitTfidf(ctx, texts, cfg)
				if err != nil {
					t.Fatal(err)
				}
				checkVocabulary(t, f, &g)
				x, err := f.Transform(ctx, texts)
				if err != nil {
					t.Fatal(err)
				}
				checkGoldenCSR(t, x.Sparse, &g)
				ft := Tfidf{Config: cfg}
				y, err := ft.FitTransform(ctx, texts)
				if err != nil {
					t.Fatal(err)
				}
				checkVocabulary(t, &ft, &g)
				if !csrEqual(x.Sparse, y.Sparse) {
					t.Fatal("FitTransform differs from FitTfidf + Transform")
				}
			}
		})
	}
}

func csrEqual(a, b *CSR) bool {
	return a.Rows == b.Rows && a.Cols == b.Cols && slices.Equal(a.Indptr, b.Indptr) &&
		slices.Equal(a.Indices, b.Indices) && slices.Equal(a.Data, b.Data)
}

func TestNumpyArgsortGolden(t *testing.T) {
	var g struct {
		Cases []struct {
			V       []int64 `json:"v"`
			Argsort []int   `json:"argsort"`
		} `json:"cases"`
	}
	readGolden(t, "argsort.json.gz", &g)
	for _, c := range g.Cases {
		if got := numpyArgsort(c.V); !slices.Equal(got, c.Argsort) {
			t.Errorf("numpyArgsort(%d values) differs from numpy", len(c.V))
		}
	}
	// The heapsort fallback is taken only for adversarial inputs; check it
	// sorts.
	v := []int64{5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}
	p := make([]int, len(v))
	for i := range p {
		p[i] = i
	}
	numpyAheapsort(v, p)
	if !sort.SliceIsSorted(p, func(i, j int) bool { return v[p[i]] < v[p[j]] }) {
		t.Errorf("numpyAheapsort: %v", p)
	}
}

// refTfidf is the naive reference: maps and TokenStrings.
func refTfidf(texts []string, cfg TfidfConfig) (vocab []string, idf []float64, rows []map[int]float64) {
	cfg, _ = cfg.validate()
	df := map[string]int64{}
	tf := map[string]int64{}
	counts := make([]map[string]int, len(texts))
	for i, s := range texts {
		counts[i] = map[string]int{}
		for _, w := range cfg.Tokenizer.TokenStrings(s) {
			counts[i][w]++
			tf[w]++
		}
		for w := range counts[i] {
			df[w]++
		}
	}
	var all []string
	for w := range df {
		all = append(all, w)
	}
	sort.Strings(all)
	lo, hi, _ := cfg.docCountLimits(len(texts))
	var kept []string
	for _, w := range all {
		if d := float64(df[w]); d >= lo && d <= hi {
			kept = append(kept, w)
		}
	}
	if cfg.MaxFeatures > 0 && len(kept) > cfg.MaxFeatures {
		neg := make([]int64, len(kept))
		for i, w := range kept {
			neg[i] = -tf[w]
		}
		var sel []string
		for _, j := range numpyArgsort(neg)[:cfg.MaxFeatures] {
			sel = append(sel, kept[j])
		}
		sort.Strings(sel)
		kept = sel
	}
	col := map[string]int{}
	for i, w := range kept {
		col[w] = i
		idf = append(idf, float64(float32(idfValue(len(texts), df[w], !cfg.NoSmoothIDF))))
	}
	for _, c := range counts {
		row := map[int]float64{}
		var ss float64
		for w, n := range c {
			j, ok := col[w]
			if !ok {
				continue
			}
			v := float64(n)
			if cfg.SublinearTF {
				v = 1 + math.Log(v)
			}
			v *= idf[j]
			row[j] = v
			ss += v * v
		}
		if !cfg.NoNorm && ss > 0 {
			for j := range row {
				row[j] /= math.Sqrt(ss)
			}
		}
		rows = append(rows, row)
	}
	return kept, idf, rows
}

func checkRef(t *testing.T, m *CSR, rows []map[int]float64) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.Rows != len(rows) {
		t.Fatalf("%d rows, want %d", m.Rows, len(rows))
	}
	for i, want := range rows {
		idx, val := m.Row(i)
		if len(idx) != len(want) {
			t.Fatalf("row %d: nnz %d, want %d", i, len(idx), len(want))
		}
		for k, c := range idx {
			w, ok := want[int(c)]
			if !ok || math.Abs(float64(val[k])-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Fatalf("row %d col %d: %v, want %v (present %v)", i, c, val[k], w, ok)
			}
		}
	}
}

// TestTfidfReference compares options the golden files do not cover with
// the naive reference.
func TestTfidfReference(t *testing.T) {
	texts := smallCorpus(t)[:120]
	texts = append(texts, "", "the and of", "Σ ΣΑΣ 2nd 2nd 2nd", strings.Repeat("zebra ", 100))
	ctx := context.Background()
	for _, cfg := range []TfidfConfig{
		{},
		{NoNorm: true, NoSmoothIDF: true},
		{SublinearTF: true, MinDF: 0.05, MaxDF: 30, MaxFeatures: 777},
		{MinDF: 3, MaxDF: 0.5, Tokenizer: &Tokenizer{MinLen: 1}},
		{Tokenizer: &Tokenizer{Lowercase: true, MinLen: 3, NumberToken: "", StopWords: map[string]bool{"zebra": true}}},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			vocab, idf, rows := refTfidf(texts, cfg)
			var f Tfidf
			f.Config = cfg
			f.Config.Workers = 2
			x, err := f.FitTransform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Vocabulary, vocab) {
				t.Fatalf("vocabulary: %d terms, want %d", len(f.Vocabulary), len(vocab))
			}
			for i := range idf {
				if float64(f.IDF[i]) != idf[i] {
					t.Fatalf("idf[%d] = %v, want %v", i, f.IDF[i], idf[i])
				}
			}
			checkRef(t, x.Sparse, rows)
			// A rebuilt featurizer gives the same rows.
			g, err := NewTfidf(f.Config, f.Vocabulary, f.IDF)
			if err != nil {
				t.Fatal(err)
			}
			y, err := g.Transform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			if !csrEqual(x.Sparse, y.Sparse) {
				t.Fatal("NewTfidf(...).Transform differs from FitTransform")
			}
		})
	}
}

func TestTfidfDeterministic(t *testing.T) {
	texts := smallCorpus(t)
	ctx := context.Background()
	var first *CSR
	for _, w := range []int{1, 2, 5, 16} {
		f := Tfidf{Config: TfidfConfig{Workers: w, SublinearTF: true}}
		x, err := f.FitTransform(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = x.Sparse
		} else if !csrEqual(first, x.Sparse) {
			t.Fatalf("Workers=%d gives a different matrix", w)
		}
	}
}

func TestTfidfErrors(t *testing.T) {
	ctx := context.Background()
	texts := []string{"alpha beta", "beta gamma", "gamma delta"}
	for _, tc := range []struct {
		cfg  TfidfConfig
		want string
	}{
		{TfidfConfig{MinDF: -1}, "min_df"},
		{TfidfConfig{MinDF: 2.5}, "min_df"},
		{TfidfConfig{MaxDF: math.NaN()}, "max_df"},
		{TfidfConfig{MaxDF: 1.5}, "max_df"},
		{TfidfConfig{MinDF: 3, MaxDF: 2}, "fewer documents"},
		{TfidfConfig{MinDF: 0.6, MaxDF: 0.5}, "fewer documents"},
		{TfidfConfig{MinDF: 3, MaxDF: 0.5}, "fewer documents"}, // 3 > 0.5*3
		{TfidfConfig{MaxFeatures: -1}, "max_features"},
		{TfidfConfig{Workers: -2}, "workers"},
	} {
		_, err := FitTfidf(ctx, texts, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FitTfidf(%+v) error = %v, want one about %s", tc.cfg, err, tc.want)
		}
	}
	for _, in := range [][]string{nil, {}, {"the a of", "", "x y z"}} {
		if _, err := FitTfidf(ctx, in, TfidfConfig{}); !errors.Is(err, ErrEmptyVocabulary) {
			t.Errorf("FitTfidf(%q) error = %v, want ErrEmptyVocabulary", in, err)
		}
	}
	if _, err := FitTfidf(ctx, texts, TfidfConfig{MinDF: 3}); !errors.Is(err, ErrEmptyVocabulary) {
		t.Errorf("FitTfidf(min_df=3) error = %v, want ErrEmptyVocabulary", err)
	}
	if _, err := NewTfidf(TfidfConfig{}, []string{"a", "b"}, []float32{1}); err == nil {
		t.Error("NewTfidf with 2 terms and 1 idf: no error")
	}
	if _, err := NewTfidf(TfidfConfig{}, []string{"a", "b", "a"}, []float32{1, 1, 1}); err == nil {
		t.Error("NewTfidf with a duplicate term: no error")
	}
	var zero Tfidf
	if _, err := zero.Transform(ctx, texts); err == nil {
		t.Error("Transform of an unfitted Tfidf: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := FitTfidf(cctx, texts, TfidfConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("FitTfidf with a cancelled context: %v", err)
	}
	f, err := FitTfidf(ctx, texts, TfidfConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Transform(cctx, texts); !errors.Is(err, context.Canceled) {
		t.Errorf("Transform with a cancelled context: %v", err)
	}
	x, err := f.Transform(ctx, nil)
	if err != nil || x.Len() != 0 || x.Dim() != 4 {
		t.Errorf("Transform(nil) = %d rows, %d cols, %v", x.Len(), x.Dim(), err)
	}
}

func TestNewTfidfStopWordInVocabulary(t *testing.T) {
	// A vocabulary term that the tokenizer removes never gets a value.
	f, err := NewTfidf(TfidfConfig{}, []string{"cat", "the"}, []float32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.Transform(context.Background(), []string{"the cat"})
	if err != nil {
		t.Fatal(err)
	}
	idx, val := x.Sparse.Row(0)
	if !slices.Equal(idx, []int32{0}) || val[0] != 1 {
		t.Errorf("row = %v %v, want [0] [1]", idx, val)
	}
}

func ExampleFitTfidf() {
	texts := []string{
		"The cat sat on the mat.",
		"The dog sat on the log.",
		"Cats and dogs, 2 of each.",
	}
	f, err := FitTfidf(context.Background(), texts, TfidfConfig{})
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Vocabulary)
	x, _ := f.Transform(context.Background(), texts[:1])
	idx, val := x.Sparse.Row(0)
	for k, c := range idx {
		fmt.Printf("%s %.4f\n", f.Vocabulary[c], val[k])
	}
	// Output:
	// [cat cats dog dogs log mat sat]
	// cat 0.6228
	// mat 0.6228
	// sat 0.4736
}
