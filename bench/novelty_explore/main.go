package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

func read(p string) []string {
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<20), 64<<20)
	for sc.Scan() {
		var d struct{ Text string }
		json.Unmarshal(sc.Bytes(), &d)
		out = append(out, d.Text)
	}
	return out
}

// detect: fraction of b above the threshold that flags fpr of a.
func detect(a, b []float64, fpr float64) (float64, float64) {
	s := append([]float64(nil), a...)
	sort.Float64s(s)
	th := s[int(math.Min(float64(len(s)-1), math.Ceil(float64(len(s))*(1-fpr))))]
	n := 0
	for _, x := range b {
		if x > th {
			n++
		}
	}
	// AUROC
	auc := 0.0
	for _, x := range b {
		for _, y := range a {
			if x > y {
				auc++
			} else if x == y {
				auc += 0.5
			}
		}
	}
	return float64(n) / float64(len(b)), auc / float64(len(a)*len(b))
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/novelty_explore SPLITDIR...  (dirs written by bench/novelty_split.py)")
	}
	flag.Parse()
	ctx := context.Background()
	for _, dir := range flag.Args() {
		sp := filepath.Base(dir)
		tr, held, b := read(dir+"/a_train.jsonl"), read(dir+"/a_held.jsonl"), read(dir+"/b.jsonl")
		for _, kind := range []embed.Kind{embed.KindTfidf, embed.KindLSA} {
			opt := embed.DefaultFitOptions()
			fz, v, err := embed.Fit(ctx, kind, tr, opt)
			if err != nil {
				log.Fatal(err)
			}
			rows := flow.RowsOf(v)
			m, _, err := cluster.Fit(ctx, rows, cluster.FitConfig{K: 5, Seed: 1})
			if err != nil {
				log.Fatal(err)
			}
			vh, _ := fz.Transform(ctx, held)
			vb, _ := fz.Transform(ctx, b)
			dense := func(v embed.Vectors) [][]float32 {
				r := flow.RowsOf(v)
				out := make([][]float32, r.N)
				for i := range r.N {
					x := make([]float32, r.Dim)
					if r.Indptr != nil {
						for k := r.Indptr[i]; k < r.Indptr[i+1]; k++ {
							x[r.Indices[k]] = r.Values[k]
						}
					} else {
						copy(x, r.Values[i*r.Dim:(i+1)*r.Dim])
					}
					out[i] = x
				}
				return out
			}
			type spv struct {
				idx []int32
				val []float32
			}
			sparse := func(v embed.Vectors) []spv {
				r := flow.RowsOf(v)
				out := make([]spv, r.N)
				for i := range r.N {
					if r.Indptr != nil {
						out[i] = spv{r.Indices[r.Indptr[i]:r.Indptr[i+1]], r.Values[r.Indptr[i]:r.Indptr[i+1]]}
					} else {
						idx := make([]int32, r.Dim)
						for k := range idx {
							idx[k] = int32(k)
						}
						out[i] = spv{idx, r.Values[i*r.Dim : (i+1)*r.Dim]}
					}
				}
				return out
			}
			Ts := sparse(v)
			dim := flow.RowsOf(v).Dim
			scratch := make([]float32, dim)
			_ = dense
			T, H, B := Ts, sparse(vh), sparse(vb)
			cn := make([]float64, m.K)
			for j := range m.K {
				for _, c := range m.Centroids[j*m.Dim : (j+1)*m.Dim] {
					cn[j] += float64(c) * float64(c)
				}
			}
			cent := func(x spv) float64 {
				xn := 0.0
				for _, v := range x.val {
					xn += float64(v) * float64(v)
				}
				best := math.Inf(1)
				for j := range m.K {
					c := m.Centroids[j*m.Dim : (j+1)*m.Dim]
					dot := 0.0
					for k, i := range x.idx {
						dot += float64(x.val[k]) * float64(c[i])
					}
					best = math.Min(best, xn+cn[j]-2*dot)
				}
				return best
			}
			knn := func(x spv, kk int) float64 { // 1 - mean of top-kk cosine to train docs
				for k, i := range x.idx {
					scratch[i] = x.val[k]
				}
				sims := make([]float64, len(T))
				for i, y := range T {
					s := 0.0
					for k, j := range y.idx {
						s += float64(y.val[k] * scratch[j])
					}
					sims[i] = s
				}
				for _, i := range x.idx {
					scratch[i] = 0
				}
				sort.Float64s(sims)
				s := 0.0
				for i := range kk {
					s += sims[len(sims)-1-i]
				}
				return 1 - s/float64(kk)
			}
			score := func(f func(spv) float64, X []spv) []float64 {
				out := make([]float64, len(X))
				for i, x := range X {
					out[i] = f(x)
				}
				return out
			}
			if cov, ok := fz.(embed.VocabularyCoverage); ok && kind == embed.KindTfidf {
				oov := func(texts []string) []float64 {
					out := make([]float64, len(texts))
					for i, tx := range texts {
						out[i] = cov.OutOfVocabulary(tx)
					}
					return out
				}
				a, bb := oov(held), oov(b)
				d2, auc := detect(a, bb, 0.02)
				d5, _ := detect(a, bb, 0.05)
				fmt.Printf("%s %-6s %-12s AUROC %.3f  detect@FPR2%% %.1f%%  @FPR5%% %.1f%%\n", sp, kind, "OOV share", auc, 100*d2, 100*d5)
				// Both at once: each score as its rank among A's held-out
				// documents' scores, and the larger of the two ranks.
				nnA, nnB := make([]float64, len(H)), make([]float64, len(B))
				for i, x := range H {
					nnA[i] = knn(x, 1)
				}
				for i, x := range B {
					nnB[i] = knn(x, 1)
				}
				rank := func(ref []float64, x float64) float64 {
					n := 0
					for _, r := range ref {
						if r < x {
							n++
						}
					}
					return float64(n) / float64(len(ref))
				}
				comb := func(o, n []float64) []float64 {
					out := make([]float64, len(o))
					for i := range o {
						out[i] = math.Max(rank(a, o[i]), rank(nnA, n[i]))
					}
					return out
				}
				ca, cb := comb(a, nnA), comb(bb, nnB)
				d2, auc = detect(ca, cb, 0.02)
				d5, _ = detect(ca, cb, 0.05)
				fmt.Printf("%s %-6s %-12s AUROC %.3f  detect@FPR2%% %.1f%%  @FPR5%% %.1f%%\n", sp, kind, "max(OOV,1nn)", auc, 100*d2, 100*d5)
			}
			for _, sc := range []struct {
				name string
				f    func(spv) float64
			}{{"centroid d2", cent}, {"1-nn cos", func(x spv) float64 { return knn(x, 1) }}, {"5-nn cos", func(x spv) float64 { return knn(x, 5) }}} {
				a, bb := score(sc.f, H), score(sc.f, B)
				d2, auc := detect(a, bb, 0.02)
				d5, _ := detect(a, bb, 0.05)
				fmt.Printf("%s %-6s %-12s AUROC %.3f  detect@FPR2%% %.1f%%  @FPR5%% %.1f%%\n", sp, kind, sc.name, auc, 100*d2, 100*d5)
			}
		}
	}
}
