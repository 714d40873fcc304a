package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestHashingGolden checks agreement with scikit-learn's
// HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None) +
// TfidfTransformer(sublinear_tf=True), c-BTM's tokenizer.
func TestHashingGolden(t *testing.T) {
	texts := smallCorpus(t)
	var g csrGolden
	readGolden(t, "hashing_sublinear.json.gz", &g)
	ctx := context.Background()
	for _, workers := range []int{1, 3} {
		cfg := HashingConfig{SublinearTF: true, Workers: workers}
		h, err := FitHashing(ctx, texts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if h.Dim() != 1<<18 || len(h.IDF) != 1<<18 {
			t.Fatalf("Dim() = %d, %d idf values", h.Dim(), len(h.IDF))
		}
		seen := make(map[int]bool, len(g.IDFIndex))
		for k, i := range g.IDFIndex {
			seen[i] = true
			if math.Abs(float64(h.IDF[i])-g.IDFValue[k]) > 1e-5 {
				t.Fatalf("idf[%d] = %v, want %v", i, h.IDF[i], g.IDFValue[k])
			}
		}
		for i, v := range h.IDF {
			if !seen[i] && math.Abs(float64(v)-g.IDFDefault) > 1e-5 {
				t.Fatalf("idf[%d] of an unseen column = %v, want %v", i, v, g.IDFDefault)
			}
		}
		x, err := h.Transform(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		checkGoldenCSR(t, x.Sparse, &g)
		ft := Hashing{Config: cfg}
		y, err := ft.FitTransform(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		if !csrEqual(x.Sparse, y.Sparse) {
			t.Fatal("FitTransform differs from FitHashing + Transform")
		}
	}
}

// refHashing is the naive reference: TokenStrings, murmur3 and maps.
func refHashing(texts []string, cfg HashingConfig) (idf []float64, rows []map[int]float64) {
	cfg, _ = cfg.validate()
	hs := newHasher(cfg.Features, cfg.AlternateSign)
	df := make([]int64, cfg.Features)
	counts := make([]map[int]int32, len(texts))
	for i, s := range texts {
		counts[i] = map[int]int32{}
		for _, w := range cfg.Tokenizer.TokenStrings(s) {
			c, sign := hs.column(murmur3([]byte(w)))
			counts[i][int(c)] += sign
		}
		for c, n := range counts[i] {
			if n == 0 {
				delete(counts[i], c)
				continue
			}
			df[c]++
		}
	}
	idf = make([]float64, cfg.Features)
	for c := range idf {
		idf[c] = float64(float32(idfValue(len(texts), df[c], !cfg.NoSmoothIDF)))
	}
	for _, cnt := range counts {
		row := map[int]float64{}
		var ss float64
		for c, n := range cnt {
			v := float64(n)
			if cfg.SublinearTF {
				v = math.Copysign(1+math.Log(math.Abs(v)), v)
			}
			v *= idf[c]
			row[c] = v
			ss += v * v
		}
		if !cfg.NoNorm && ss > 0 {
			for c := range row {
				row[c] /= math.Sqrt(ss)
			}
		}
		rows = append(rows, row)
	}
	return idf, rows
}

func TestHashingReference(t *testing.T) {
	texts := smallCorpus(t)[:100]
	texts = append(texts, "", "the of and", "ab ab ab ba ba", strings.Repeat("x1 ", 3000))
	ctx := context.Background()
	for _, cfg := range []HashingConfig{
		{},
		{Features: 1000, AlternateSign: true, SublinearTF: true},
		{Features: 7, AlternateSign: true, NoNorm: true, NoSmoothIDF: true},
		{Features: 1 << 20, Tokenizer: &Tokenizer{MinLen: 1}},
	} {
		t.Run(fmt.Sprintf("features=%d,alt=%v,sub=%v", cfg.Features, cfg.AlternateSign, cfg.SublinearTF), func(t *testing.T) {
			idf, rows := refHashing(texts, cfg)
			var h Hashing
			h.Config = cfg
			h.Config.Workers = 2
			x, err := h.FitTransform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range idf {
				if float64(h.IDF[i]) != idf[i] {
					t.Fatalf("idf[%d] = %v, want %v", i, h.IDF[i], idf[i])
				}
			}
			checkRef(t, x.Sparse, rows)
			g, err := NewHashing(h.Config, h.IDF)
			if err != nil {
				t.Fatal(err)
			}
			y, err := g.Transform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			if !csrEqual(x.Sparse, y.Sparse) {
				t.Fatal("NewHashing(...).Transform differs from FitTransform")
			}
		})
	}
}

func TestHashingDeterministic(t *testing.T) {
	texts := smallCorpus(t)
	ctx := context.Background()
	var first *CSR
	for _, w := range []int{1, 2, 5, 16} {
		h := Hashing{Config: HashingConfig{Workers: w, SublinearTF: true}}
		x, err := h.FitTransform(ctx, texts)
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

func TestHashingErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []HashingConfig{{Features: -1}, {Features: 1 << 31}, {Workers: -1}} {
		if _, err := FitHashing(ctx, []string{"a b"}, cfg); err == nil {
			t.Errorf("FitHashing(%+v): no error", cfg)
		}
	}
	if _, err := NewHashing(HashingConfig{Features: 8}, make([]float32, 7)); err == nil {
		t.Error("NewHashing with 7 idf values for 8 features: no error")
	}
	var zero Hashing
	if _, err := zero.Transform(ctx, []string{"x"}); err == nil {
		t.Error("Transform of an unfitted Hashing: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := FitHashing(cctx, []string{"alpha beta"}, HashingConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("FitHashing with a cancelled context: %v", err)
	}
	// Fitting on nothing is allowed: every column gets the idf of df = 0.
	h, err := FitHashing(ctx, nil, HashingConfig{Features: 16})
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.Transform(ctx, []string{"alpha beta", ""})
	if err != nil || x.Len() != 2 || x.Dim() != 16 {
		t.Fatalf("Transform: %d rows, %d cols, %v", x.Len(), x.Dim(), err)
	}
	if idx, _ := x.Sparse.Row(1); len(idx) != 0 {
		t.Errorf("empty text has %d values", len(idx))
	}
}

func ExampleHashing_FitTransform() {
	var h Hashing // c-BTM's tokenizer, 2^18 columns, smooth idf, L2 norm
	x, err := h.FitTransform(context.Background(), []string{"The cat sat.", "The cat ran and ran."})
	if err != nil {
		panic(err)
	}
	for i := range x.Len() {
		idx, val := x.Sparse.Row(i)
		fmt.Printf("%v %.4f\n", idx, val)
	}
	// Output:
	// [38695 122804] [0.5797 0.8148]
	// [38695 116402] [0.3352 0.9422]
}
