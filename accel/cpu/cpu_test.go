package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/conformance"
	"github.com/domainflow/domainflow/accel/cpu"
)

// TestConformance runs the suite with more threads than the test machine
// likely has cores (accel/conformance runs 1, 2 and 3).
func TestConformance(t *testing.T) { conformance.Run(t, cpu.New(5)) }

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(2*r.Float64() - 1)
	}
	return s
}

// kernelRuns calls every kernel on fresh copies of fixed inputs, at sizes
// past the parallel grain, and returns all outputs. Which are expected to
// be the same for every thread count is the business of the caller.
type kernelRun struct {
	name string
	run  func(b accel.Backend) [][]float32
}

func kernelRuns() []kernelRun {
	r := rand.New(rand.NewPCG(7, 7))
	const B, T, C, NH, V = 2, 140, 48, 4, 300 // T > attBlock: two row blocks
	N := B * T
	inp := randSlice(r, N*C)
	w := randSlice(r, 4*C*C)
	bias := randSlice(r, 4*C)
	dout := randSlice(r, N*4*C)
	qkv := randSlice(r, B*T*3*C)
	big := randSlice(r, 300007) // chunk bounds fall off multiples of 8
	logits := randSlice(r, N*V)
	targets := make([]int32, N)
	for i := range targets {
		targets[i] = int32(r.IntN(V))
	}
	clone := func(s []float32) []float32 { return append([]float32(nil), s...) }
	// a CSR matrix 500 x 20000 with ~1% entries
	rows, d, k := 500, 20000, 16
	indptr := []int64{0}
	var indices []int32
	var values []float32
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			if r.IntN(100) == 0 {
				indices = append(indices, int32(j))
				values = append(values, float32(r.Float64()))
			}
		}
		indptr = append(indptr, int64(len(indices)))
	}
	dense := randSlice(r, k*d)
	x := randSlice(r, 3068*100)
	y := randSlice(r, k*100)
	return []kernelRun{
		{"MatmulForward", func(b accel.Backend) [][]float32 {
			out := make([]float32, N*4*C)
			b.MatmulForward(out, inp, w, bias, N, C, 4*C)
			return [][]float32{out}
		}},
		{"MatmulBackward", func(b accel.Backend) [][]float32 {
			di, dw, db := clone(inp), clone(w), clone(bias)
			b.MatmulBackward(di, dw, db, dout, inp, w, N, C, 4*C)
			return [][]float32{di, dw, db}
		}},
		{"LayerNorm", func(b accel.Backend) [][]float32 {
			out, mean, rstd := make([]float32, N*C), make([]float32, N), make([]float32, N)
			b.LayerNormForward(out, mean, rstd, inp, w[:C], bias[:C], N, C)
			di, dw, db := clone(inp), clone(w[:C]), clone(bias[:C])
			b.LayerNormBackward(di, dw, db, dout[:N*C], inp, w[:C], mean, rstd, N, C)
			return [][]float32{out, mean, rstd, di, dw, db}
		}},
		{"GELU", func(b accel.Backend) [][]float32 {
			out, di := make([]float32, len(big)), clone(big)
			b.GELUForward(out, big)
			b.GELUBackward(di, big, out)
			return [][]float32{out, di}
		}},
		{"Elementwise", func(b accel.Backend) [][]float32 {
			out, acc, sc := make([]float32, len(big)), clone(big), clone(big)
			b.ResidualForward(out, big, big)
			b.Accumulate(acc, out)
			b.Scale(sc, 0.3)
			p, m, v := clone(big), make([]float32, len(big)), make([]float32, len(big))
			b.AdamW(p, out, m, v, 3, 1e-3, 0.9, 0.999, 1e-8, 0.1)
			ss := float32(b.SumSquares(big)) // compared as float32 bits is weaker; see below
			return [][]float32{out, acc, sc, p, m, v, {ss}}
		}},
		{"Attention", func(b accel.Backend) [][]float32 {
			out, pre, att := make([]float32, B*T*C), make([]float32, B*NH*T*T), make([]float32, B*NH*T*T)
			b.AttentionForward(out, pre, att, qkv, B, T, C, NH)
			di := make([]float32, len(qkv))
			b.AttentionBackward(di, make([]float32, len(pre)), make([]float32, len(pre)), out, qkv, att, B, T, C, NH)
			return [][]float32{out, pre, att, di}
		}},
		{"SoftmaxCrossEntropy", func(b accel.Backend) [][]float32 {
			losses, probs := make([]float32, N), make([]float32, N*V)
			b.SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V)
			dl := clone(logits)
			b.SoftmaxCrossEntropyBackward(dl, probs, targets, losses, N, V)
			return [][]float32{losses, probs, dl}
		}},
		{"SparseDenseT", func(b accel.Backend) [][]float32 {
			out := make([]float32, rows*k)
			b.SparseDenseT(out, indptr, indices, values, rows, dense, k, d)
			return [][]float32{out}
		}},
		{"Distances", func(b accel.Backend) [][]float32 {
			xn, yn := make([]float32, 3068), make([]float32, k)
			b.RowNorms(xn, x, 3068, 100)
			b.RowNorms(yn, y, k, 100)
			dd, sd := make([]float32, 3068*k), make([]float32, 3068*k)
			b.DenseDenseT(dd, x, y, 3068, k, 100)
			b.SquaredDistances(sd, x, xn, y, yn, 3068, k, 100)
			idx, val := make([]int32, 3068), make([]float32, 3068)
			b.ArgminRows(idx, val, sd, 3068, k)
			tidx, tval := make([]int32, 3068*3), make([]float32, 3068*3)
			b.TopKRows(tidx, tval, sd, 3068, k, 3)
			fi := make([]float32, 0, 4*3068)
			for _, i := range idx {
				fi = append(fi, float32(i))
			}
			for _, i := range tidx {
				fi = append(fi, float32(i))
			}
			return [][]float32{xn, yn, dd, sd, val, tval, fi}
		}},
	}
}

// TestThreadInvariance checks that every kernel gives the same bits for 1
// to 7 threads, and for the same call twice.
func TestThreadInvariance(t *testing.T) {
	for _, k := range kernelRuns() {
		t.Run(k.name, func(t *testing.T) {
			want := k.run(cpu.New(1))
			for _, threads := range []int{1, 2, 3, 4, 5, 7} {
				got := k.run(cpu.New(threads))
				for o := range want {
					for i := range want[o] {
						if math.Float32bits(got[o][i]) != math.Float32bits(want[o][i]) {
							t.Errorf("threads=%d: output %d differs at %d: %g, with 1 thread %g", threads, o, i, got[o][i], want[o][i])
							break
						}
					}
				}
			}
		})
	}
}

// TestSumSquaresThreadInvariance checks the float64 result bit for bit.
func TestSumSquaresThreadInvariance(t *testing.T) {
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 1<<20+17)
	want := cpu.New(1).SumSquares(x)
	for _, threads := range []int{2, 3, 4, 7} {
		if got := cpu.New(threads).SumSquares(x); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("threads=%d: SumSquares = %.17g, with 1 thread %.17g", threads, got, want)
		}
	}
}

// TestNoAllocs checks that single-threaded calls allocate nothing once the
// scratch buffers have grown (parallel calls allocate a few small closures
// and goroutines per call).
func TestNoAllocs(t *testing.T) {
	b := cpu.New(1)
	for _, k := range kernelRuns() {
		outs := k.run(b) // grow the scratch
		_ = outs
	}
	r := rand.New(rand.NewPCG(3, 3))
	const B, T, C, NH, V = 2, 16, 32, 4, 50
	N := B * T
	inp, w, bias := randSlice(r, N*C), randSlice(r, C*C), randSlice(r, C)
	out, mean, rstd := make([]float32, N*C), make([]float32, N), make([]float32, N)
	di, dw, db := make([]float32, N*C), make([]float32, C*C), make([]float32, C)
	qkv, pre, att := randSlice(r, N*3*C), make([]float32, B*NH*T*T), make([]float32, B*NH*T*T)
	dqkv, dpre, datt := make([]float32, N*3*C), make([]float32, B*NH*T*T), make([]float32, B*NH*T*T)
	logits, probs, losses := randSlice(r, N*V), make([]float32, N*V), make([]float32, N)
	targets := make([]int32, N)
	big := randSlice(r, 1<<18)
	m, v := make([]float32, len(big)), make([]float32, len(big))
	indptr, indices, values := []int64{0, 2, 2, 3}, []int32{0, 5, 7}, []float32{1, 2, 3}
	xn, idx, tv := make([]float32, N), make([]int32, 2*N), make([]float32, 2*N)
	checks := map[string]func(){
		"Sgemm":            func() { b.Sgemm(false, true, N, C, C, 1, inp, C, w, C, 0, out, C) },
		"MatmulForward":    func() { b.MatmulForward(out, inp, w, bias, N, C, C) },
		"MatmulBackward":   func() { b.MatmulBackward(di, dw, db, out, inp, w, N, C, C) },
		"LayerNormForward": func() { b.LayerNormForward(out, mean, rstd, inp, w[:C], bias, N, C) },
		"LayerNormBackward": func() {
			b.LayerNormBackward(di, dw[:C], db, out, inp, w[:C], mean, rstd, N, C)
		},
		"GELUForward":       func() { b.GELUForward(out, inp) },
		"GELUBackward":      func() { b.GELUBackward(di, inp, out) },
		"ResidualForward":   func() { b.ResidualForward(out, inp, di) },
		"Accumulate":        func() { b.Accumulate(out, inp) },
		"Scale":             func() { b.Scale(out, 0.5) },
		"AttentionForward":  func() { b.AttentionForward(out, pre, att, qkv, B, T, C, NH) },
		"AttentionBackward": func() { b.AttentionBackward(dqkv, dpre, datt, out, qkv, att, B, T, C, NH) },
		"SoftmaxCrossEntropyForward": func() {
			b.SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V)
		},
		"SoftmaxCrossEntropyBackward": func() {
			b.SoftmaxCrossEntropyBackward(logits, probs, targets, losses, N, V)
		},
		"AdamW":            func() { b.AdamW(big, big, m, v, 2, 1e-3, 0.9, 0.999, 1e-8, 0) },
		"SumSquares":       func() { b.SumSquares(big) },
		"SparseDenseT":     func() { b.SparseDenseT(out, indptr, indices, values, 3, inp, 4, 8) },
		"DenseDenseT":      func() { b.DenseDenseT(out, inp, w, N, C, C) },
		"SquaredDistances": func() { b.SquaredDistances(out, inp, xn, w, bias, N, C, C) },
		"RowNorms":         func() { b.RowNorms(xn, inp, N, C) },
		"ArgminRows":       func() { b.ArgminRows(idx, xn, inp, N, C) },
		"TopKRows":         func() { b.TopKRows(idx, tv, inp, N, C, 2) },
	}
	for name, f := range checks {
		f()
		if n := testing.AllocsPerRun(5, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

// TestSparseDenseTBadInput checks that malformed CSR input panics on the
// calling goroutine, for one thread and several.
func TestSparseDenseTBadInput(t *testing.T) {
	dense := make([]float32, 16*10)
	out := make([]float32, 3*16)
	cases := map[string]struct {
		indptr  []int64
		indices []int32
	}{
		"index >= d":        {[]int64{0, 1, 2, 3}, []int32{0, 10, 1}},
		"negative index":    {[]int64{0, 1, 2, 3}, []int32{0, -1, 1}},
		"indptr decreasing": {[]int64{0, 2, 1, 3}, []int32{0, 1, 2}},
		"indptr past nnz":   {[]int64{0, 1, 2, 4}, []int32{0, 1, 2}},
	}
	for name, c := range cases {
		for _, threads := range []int{1, 3} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s, %d threads: no panic", name, threads)
					}
				}()
				cpu.New(threads).SparseDenseT(out, c.indptr, c.indices, []float32{1, 2, 3}, 3, dense, 16, 10)
			}()
		}
	}
}
