package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/cpu"
	"github.com/domainflow/domainflow/accel/ref"
)

// The expert model's sizes: B batch, T time, C channels, NH heads; V is the
// vocabulary of the softmax + cross-entropy benchmarks.
type size struct {
	name        string
	B, T, C, NH int
}

var sizes = []size{
	{"tiny", 16, 64, 64, 4},
	{"small", 16, 128, 128, 4},
	{"base", 8, 256, 256, 8},
}

const vocab = 256

// threadCounts is 1 and GOMAXPROCS.
func threadCounts() []int {
	if n := runtime.GOMAXPROCS(0); n > 1 {
		return []int{1, n}
	}
	return []int{1}
}

// forSizes runs f as a sub-benchmark per model size and thread count of
// the cpu backend, plus the ref backend at the tiny size as the naive
// baseline (size/ref).
func forSizes(b *testing.B, f func(b *testing.B, be accel.Backend, s size)) {
	for _, s := range sizes {
		if s.name == "tiny" {
			b.Run(s.name+"/ref", func(b *testing.B) { f(b, ref.New(), s) })
		}
		for _, t := range threadCounts() {
			b.Run(fmt.Sprintf("%s/t%d", s.name, t), func(b *testing.B) { f(b, cpu.New(t), s) })
		}
	}
}

// forThreads runs f as a sub-benchmark per thread count of the cpu
// backend, plus the ref backend as the naive baseline (ref).
func forThreads(b *testing.B, f func(b *testing.B, be accel.Backend)) {
	b.Run("ref", func(b *testing.B) { f(b, ref.New()) })
	for _, t := range threadCounts() {
		b.Run(fmt.Sprintf("t%d", t), func(b *testing.B) { f(b, cpu.New(t)) })
	}
}

func gflops(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func benchRand() *rand.Rand { return rand.New(rand.NewPCG(42, 42)) }

// BenchmarkMatmulForward is the MLP's up projection: [B·T, C] → [B·T, 4C].
func BenchmarkMatmulForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N, C, OC := s.B*s.T, s.C, 4*s.C
		inp, w, bias, out := randSlice(r, N*C), randSlice(r, OC*C), randSlice(r, OC), make([]float32, N*OC)
		for b.Loop() {
			be.MatmulForward(out, inp, w, bias, N, C, OC)
		}
		gflops(b, 2*float64(N*C*OC))
	})
}

func BenchmarkMatmulBackward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N, C, OC := s.B*s.T, s.C, 4*s.C
		inp, w, dout := randSlice(r, N*C), randSlice(r, OC*C), randSlice(r, N*OC)
		dinp, dw, db := make([]float32, N*C), make([]float32, OC*C), make([]float32, OC)
		for b.Loop() {
			be.MatmulBackward(dinp, dw, db, dout, inp, w, N, C, OC)
		}
		gflops(b, 4*float64(N*C*OC))
	})
}

// BenchmarkSgemmStridedBatched is the attention-sized batch: B·NH products
// [T,hs]·[hs,T].
func BenchmarkSgemmStridedBatched(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		hs, batch := s.C/s.NH, s.B*s.NH
		q, k, c := randSlice(r, batch*s.T*hs), randSlice(r, batch*s.T*hs), make([]float32, batch*s.T*s.T)
		for b.Loop() {
			be.SgemmStridedBatched(false, true, s.T, s.T, hs, 1, q, hs, s.T*hs, k, hs, s.T*hs, 0, c, s.T, s.T*s.T, batch)
		}
		gflops(b, 2*float64(batch*s.T*s.T*hs))
	})
}

func BenchmarkAttentionForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		inp := randSlice(r, s.B*s.T*3*s.C)
		out, pre, att := make([]float32, s.B*s.T*s.C), make([]float32, s.B*s.NH*s.T*s.T), make([]float32, s.B*s.NH*s.T*s.T)
		for b.Loop() {
			be.AttentionForward(out, pre, att, inp, s.B, s.T, s.C, s.NH)
		}
	})
}

func BenchmarkAttentionBackward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		inp, dout := randSlice(r, s.B*s.T*3*s.C), randSlice(r, s.B*s.T*s.C)
		out, pre, att := make([]float32, s.B*s.T*s.C), make([]float32, s.B*s.NH*s.T*s.T), make([]float32, s.B*s.NH*s.T*s.T)
		be.AttentionForward(out, pre, att, inp, s.B, s.T, s.C, s.NH)
		dinp, dpre, datt := make([]float32, len(inp)), make([]float32, len(pre)), make([]float32, len(att))
		for b.Loop() {
			be.AttentionBackward(dinp, dpre, datt, dout, inp, att, s.B, s.T, s.C, s.NH)
		}
	})
}

func BenchmarkLayerNormForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N, C := s.B*s.T, s.C
		inp, w, bias := randSlice(r, N*C), randSlice(r, C), randSlice(r, C)
		out, mean, rstd := make([]float32, N*C), make([]float32, N), make([]float32, N)
		b.SetBytes(int64(8 * N * C))
		for b.Loop() {
			be.LayerNormForward(out, mean, rstd, inp, w, bias, N, C)
		}
	})
}

func BenchmarkLayerNormBackward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N, C := s.B*s.T, s.C
		inp, w, dout := randSlice(r, N*C), randSlice(r, C), randSlice(r, N*C)
		out, mean, rstd := make([]float32, N*C), make([]float32, N), make([]float32, N)
		be.LayerNormForward(out, mean, rstd, inp, w, w, N, C)
		dinp, dw, db := make([]float32, N*C), make([]float32, C), make([]float32, C)
		b.SetBytes(int64(12 * N * C))
		for b.Loop() {
			be.LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd, N, C)
		}
	})
}

// BenchmarkGELUForward runs over the MLP's hidden activations [B·T, 4C].
func BenchmarkGELUForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		n := s.B * s.T * 4 * s.C
		inp, out := randSlice(benchRand(), n), make([]float32, n)
		b.SetBytes(int64(8 * n))
		for b.Loop() {
			be.GELUForward(out, inp)
		}
	})
}

func BenchmarkGELUBackward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		n := s.B * s.T * 4 * s.C
		inp, dout, dinp := randSlice(r, n), randSlice(r, n), make([]float32, n)
		b.SetBytes(int64(16 * n))
		for b.Loop() {
			be.GELUBackward(dinp, inp, dout)
		}
	})
}

func BenchmarkResidualForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		n := s.B * s.T * s.C
		x, y, out := randSlice(r, n), randSlice(r, n), make([]float32, n)
		b.SetBytes(int64(12 * n))
		for b.Loop() {
			be.ResidualForward(out, x, y)
		}
	})
}

func BenchmarkAccumulate(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		n := s.B * s.T * s.C
		src, dst := randSlice(r, n), randSlice(r, n)
		b.SetBytes(int64(12 * n))
		for b.Loop() {
			be.Accumulate(dst, src)
		}
	})
}

func BenchmarkScale(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		x := randSlice(benchRand(), params(s))
		b.SetBytes(int64(8 * len(x)))
		for b.Loop() {
			be.Scale(x, 1)
		}
	})
}

func BenchmarkSoftmaxCrossEntropyForward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N := s.B * s.T
		logits, probs, losses, targets := randSlice(r, N*vocab), make([]float32, N*vocab), make([]float32, N), make([]int32, N)
		b.SetBytes(int64(8 * N * vocab))
		for b.Loop() {
			be.SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, vocab)
		}
	})
}

func BenchmarkSoftmaxCrossEntropyBackward(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		N := s.B * s.T
		dlogits, probs, dlosses, targets := randSlice(r, N*vocab), randSlice(r, N*vocab), randSlice(r, N), make([]int32, N)
		b.SetBytes(int64(12 * N * vocab))
		for b.Loop() {
			be.SoftmaxCrossEntropyBackward(dlogits, probs, targets, dlosses, N, vocab)
		}
	})
}

// params is the parameter count of a 2-layer GPT of size s with the
// benchmark vocabulary: embeddings plus 12·C² per layer.
func params(s size) int { return vocab*s.C + s.T*s.C + 2*12*s.C*s.C }

func BenchmarkAdamW(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		r := benchRand()
		n := params(s)
		p, g, m, v := randSlice(r, n), randSlice(r, n), make([]float32, n), make([]float32, n)
		b.SetBytes(int64(24 * n))
		for b.Loop() {
			be.AdamW(p, g, m, v, 10, 1e-3, 0.9, 0.999, 1e-8, 0.1)
		}
	})
}

func BenchmarkSumSquares(b *testing.B) {
	forSizes(b, func(b *testing.B, be accel.Backend, s size) {
		x := randSlice(benchRand(), params(s))
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			be.SumSquares(x)
		}
	})
}

// ----------------------------------------------------------------------------
// k-means sizes: 3068 documents, k = 16 centroids; dense 100 dims, sparse
// 150k TF-IDF columns with about 1.2M entries.

const (
	kmRows  = 3068
	kmK     = 16
	kmDense = 100
	kmCols  = 150000
	kmNNZ   = 1200000
)

func BenchmarkSparseDenseT(b *testing.B) {
	r := benchRand()
	indptr := make([]int64, kmRows+1)
	indices := make([]int32, 0, kmNNZ)
	per := kmNNZ / kmRows
	for i := 0; i < kmRows; i++ {
		row := make([]int32, 0, per)
		seen := map[int32]bool{}
		for len(row) < per {
			j := int32(r.IntN(kmCols))
			if !seen[j] {
				seen[j] = true
				row = append(row, j)
			}
		}
		slices.Sort(row)
		indices = append(indices, row...)
		indptr[i+1] = int64(len(indices))
	}
	values := randSlice(r, len(indices))
	dense := randSlice(r, kmK*kmCols)
	out := make([]float32, kmRows*kmK)
	forThreads(b, func(b *testing.B, be accel.Backend) {
		for b.Loop() {
			be.SparseDenseT(out, indptr, indices, values, kmRows, dense, kmK, kmCols)
		}
		gflops(b, 2*float64(len(indices)*kmK))
	})
}

func BenchmarkDenseDenseT(b *testing.B) {
	r := benchRand()
	x, y, out := randSlice(r, kmRows*kmDense), randSlice(r, kmK*kmDense), make([]float32, kmRows*kmK)
	forThreads(b, func(b *testing.B, be accel.Backend) {
		for b.Loop() {
			be.DenseDenseT(out, x, y, kmRows, kmK, kmDense)
		}
		gflops(b, 2*float64(kmRows*kmK*kmDense))
	})
}

func BenchmarkSquaredDistances(b *testing.B) {
	r := benchRand()
	x, y, out := randSlice(r, kmRows*kmDense), randSlice(r, kmK*kmDense), make([]float32, kmRows*kmK)
	xn, yn := make([]float32, kmRows), make([]float32, kmK)
	forThreads(b, func(b *testing.B, be accel.Backend) {
		be.RowNorms(xn, x, kmRows, kmDense)
		be.RowNorms(yn, y, kmK, kmDense)
		for b.Loop() {
			be.SquaredDistances(out, x, xn, y, yn, kmRows, kmK, kmDense)
		}
	})
}

func BenchmarkRowNorms(b *testing.B) {
	x, out := randSlice(benchRand(), kmRows*kmDense), make([]float32, kmRows)
	forThreads(b, func(b *testing.B, be accel.Backend) {
		b.SetBytes(4 * kmRows * kmDense)
		for b.Loop() {
			be.RowNorms(out, x, kmRows, kmDense)
		}
	})
}

func BenchmarkArgminRows(b *testing.B) {
	x := randSlice(benchRand(), kmRows*kmK)
	idx, val := make([]int32, kmRows), make([]float32, kmRows)
	forThreads(b, func(b *testing.B, be accel.Backend) {
		for b.Loop() {
			be.ArgminRows(idx, val, x, kmRows, kmK)
		}
	})
}

func BenchmarkTopKRows(b *testing.B) {
	x := randSlice(benchRand(), kmRows*kmK)
	for _, k := range []int{2, kmK} {
		idx, val := make([]int32, kmRows*k), make([]float32, kmRows*k)
		b.Run(fmt.Sprintf("k%d", k), func(b *testing.B) {
			forThreads(b, func(b *testing.B, be accel.Backend) {
				for b.Loop() {
					be.TopKRows(idx, val, x, kmRows, kmK, k)
				}
			})
		})
	}
}
