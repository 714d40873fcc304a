package conformance

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/ref"
)

// Tolerances of a float32 kernel against the float64 oracle, in the sense of
// near: |got-want| <= tol·(|want| + max|want|).
const (
	tolExact = 1e-7 // one rounding per element (add, multiply)
	tolElem  = 2e-6 // elementwise with transcendentals (GELU, AdamW)
	tolDot   = 2e-5 // sums of products: gemm, attention, layernorm, softmax
)

// Run checks every method of b against the reference kernels of accel/ref
// instantiated in float64 on the same float32 inputs. Each kernel runs as a
// subtest over odd and edge sizes; every output sits between guard
// sentinels that must survive, "accumulates" outputs start non-zero, inputs
// must come back unmodified, and each call runs twice to check that the
// same inputs give bit-identical outputs. A final subtest checks that
// too-short slices panic on the calling goroutine.
func Run(t *testing.T, b accel.Backend) {
	if b.Name() == "" || b.Threads() < 1 {
		t.Errorf("Name() = %q, Threads() = %d; want a name and at least one thread", b.Name(), b.Threads())
	}
	t.Run("Sgemm", func(t *testing.T) { testSgemm(t, b) })
	t.Run("SgemmStridedBatched", func(t *testing.T) { testSgemmStridedBatched(t, b) })
	t.Run("MatmulForward", func(t *testing.T) { testMatmulForward(t, b) })
	t.Run("MatmulBackward", func(t *testing.T) { testMatmulBackward(t, b) })
	t.Run("LayerNormForward", func(t *testing.T) { testLayerNormForward(t, b) })
	t.Run("LayerNormBackward", func(t *testing.T) { testLayerNormBackward(t, b) })
	t.Run("GELUForward", func(t *testing.T) { testGELUForward(t, b) })
	t.Run("GELUBackward", func(t *testing.T) { testGELUBackward(t, b) })
	t.Run("ResidualForward", func(t *testing.T) { testResidualForward(t, b) })
	t.Run("Accumulate", func(t *testing.T) { testAccumulate(t, b) })
	t.Run("Scale", func(t *testing.T) { testScale(t, b) })
	t.Run("AttentionForward", func(t *testing.T) { testAttentionForward(t, b) })
	t.Run("AttentionBackward", func(t *testing.T) { testAttentionBackward(t, b) })
	t.Run("SoftmaxCrossEntropyForward", func(t *testing.T) { testSoftmaxCrossEntropyForward(t, b) })
	t.Run("SoftmaxCrossEntropyBackward", func(t *testing.T) { testSoftmaxCrossEntropyBackward(t, b) })
	t.Run("AdamW", func(t *testing.T) { testAdamW(t, b) })
	t.Run("SumSquares", func(t *testing.T) { testSumSquares(t, b) })
	t.Run("SparseDenseT", func(t *testing.T) { testSparseDenseT(t, b) })
	t.Run("SparseDense", func(t *testing.T) { testSparseDense(t, b) })
	t.Run("DenseDenseT", func(t *testing.T) { testDenseDenseT(t, b) })
	t.Run("SquaredDistances", func(t *testing.T) { testSquaredDistances(t, b) })
	t.Run("RowNorms", func(t *testing.T) { testRowNorms(t, b) })
	t.Run("ArgminRows", func(t *testing.T) { testArgminRows(t, b) })
	t.Run("TopKRows", func(t *testing.T) { testTopKRows(t, b) })
	t.Run("ShortInputs", func(t *testing.T) { testShortInputs(t, b) })
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func dims(xs ...int) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += "x"
		}
		s += strconv.Itoa(x)
	}
	return s
}

// span is the minimal length of a row-major [rows,cols] matrix stored with
// row stride ld: the last row need not be padded.
func span(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// ----------------------------------------------------------------------------
// gemm

func testSgemm(t *testing.T, b accel.Backend) {
	r := newRand(1)
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {2, 3, 1}, {3, 2, 5}, {7, 17, 3}, {17, 33, 65}, {65, 7, 33},
		{1, 65, 17}, {33, 1, 7}, {3, 5, 0}, {0, 4, 3}, {4, 0, 3}, {64, 64, 64},
		{100, 130, 260},
	}
	scalars := [][2]float32{{1, 0}, {0.5, 1}, {-1.5, 0.25}}
	for si, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for ab, s := range scalars {
					if ab > 0 && m*n*k > 100000 && (ta || tb) {
						continue // the big shape once per transpose, all scalars plain
					}
					pad := (si + ab) % 3 // row-stride padding 0, 1 or 2
					name := dims(m, n, k) + "/tA=" + strconv.FormatBool(ta) + "/tB=" + strconv.FormatBool(tb) +
						"/alpha=" + strconv.FormatFloat(float64(s[0]), 'g', -1, 32) + "/beta=" + strconv.FormatFloat(float64(s[1]), 'g', -1, 32)
					sgemmCase(t, b, r, name, ta, tb, m, n, k, s[0], s[1], pad, 1, 0)
				}
			}
		}
	}
}

func testSgemmStridedBatched(t *testing.T, b accel.Backend) {
	r := newRand(2)
	for _, sh := range [][4]int{{1, 1, 1, 1}, {5, 7, 9, 3}, {17, 3, 33, 2}, {2, 2, 2, 5}, {4, 4, 4, 0}, {3, 2, 0, 3}, {40, 50, 60, 4}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				name := dims(sh[0], sh[1], sh[2]) + "/batch=" + strconv.Itoa(sh[3]) + "/tA=" + strconv.FormatBool(ta) + "/tB=" + strconv.FormatBool(tb)
				sgemmCase(t, b, r, name, ta, tb, sh[0], sh[1], sh[2], 0.75, 0.5, 1, sh[3], 3)
			}
		}
	}
}

// sgemmCase checks one Sgemm (batch 1, gap 0) or SgemmStridedBatched call.
// Every row has pad extra elements and consecutive matrices gap extra
// elements; those of C must keep their sentinel. beta == 0 fills C with NaN.
func sgemmCase(t *testing.T, b accel.Backend, r *rand.Rand, name string, ta, tb bool, m, n, k int, alpha, beta float32, pad, batch, gap int) {
	t.Helper()
	ra, ca := m, k
	if ta {
		ra, ca = k, m
	}
	rb, cb := k, n
	if tb {
		rb, cb = n, k
	}
	lda, ldb, ldc := max(1, ca)+pad, max(1, cb)+pad, max(1, n)+pad // BLAS: ld >= max(1, cols)
	sa, sb, sc := span(ra, ca, lda)+gap, span(rb, cb, ldb)+gap, span(m, n, ldc)+gap
	a := uniform(r, max(0, batch*sa-gap), -1, 1)
	bm := uniform(r, max(0, batch*sb-gap), -1, 1)
	// C: outputs random (NaN when beta == 0), row padding and gaps sentinel
	cinit := filled(max(0, batch*sc-gap), math.Float32frombits(sentinel32))
	isOut := make([]bool, len(cinit))
	for p := 0; p < batch; p++ {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				at := p*sc + i*ldc + j
				isOut[at] = true
				if beta == 0 {
					cinit[at] = nan32()
				} else {
					cinit[at] = float32(2*r.Float64() - 1)
				}
			}
		}
	}
	var in frozen
	in.add("a", a)
	in.add("b", bm)
	c1, c2 := newBuf(cinit), newBuf(cinit)
	for _, c := range []buf[float32]{c1, c2} {
		if batch == 1 && gap == 0 {
			b.Sgemm(ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c.s(), ldc)
		} else {
			b.SgemmStridedBatched(ta, tb, m, n, k, alpha, a, lda, sa, bm, ldb, sb, beta, c.s(), ldc, sc, batch)
		}
	}
	in.check(t, name)
	if !checkTwin(t, name, c1, c2) {
		return
	}
	want := to64(cinit)
	if batch == 1 && gap == 0 {
		ref.Sgemm(ta, tb, m, n, k, float64(alpha), to64(a), lda, to64(bm), ldb, float64(beta), want, ldc)
	} else {
		ref.SgemmStridedBatched(ta, tb, m, n, k, float64(alpha), to64(a), lda, sa, to64(bm), ldb, sb, float64(beta), want, ldc, sc, batch)
	}
	var got []float32
	var w []float64
	for i, out := range isOut {
		if out {
			got = append(got, c1.s()[i])
			w = append(w, want[i])
		} else if math.Float32bits(c1.s()[i]) != sentinel32 {
			t.Errorf("%s: C[%d] is row padding or a gap between matrices, but was written", name, i)
			return
		}
	}
	near(t, name, got, w, tolDot)
}

// ----------------------------------------------------------------------------
// matmul

var matmulShapes = [][3]int{ // N, C, OC
	{1, 1, 1}, {2, 3, 1}, {1, 7, 17}, {3, 17, 33}, {33, 65, 7}, {17, 64, 192}, {65, 128, 96},
}

func testMatmulForward(t *testing.T, b accel.Backend) {
	r := newRand(3)
	for i, sh := range matmulShapes {
		N, C, OC := sh[0], sh[1], sh[2]
		for _, withBias := range []bool{true, false} {
			name := dims(N, C, OC) + "/bias=" + strconv.FormatBool(withBias)
			var in frozen
			inp := in.add("inp", uniform(r, N*C, -1, 1))
			weight := in.add("weight", uniform(r, OC*C, -1, 1))
			var bias []float32
			if withBias {
				bias = in.add("bias", uniform(r, OC, -1, 1))
			}
			init := filled(N*OC, float32(i+1)) // overwritten, not accumulated
			o1, o2 := newBuf(init), newBuf(init)
			b.MatmulForward(o1.s(), inp, weight, bias, N, C, OC)
			b.MatmulForward(o2.s(), inp, weight, bias, N, C, OC)
			in.check(t, name)
			if !checkTwin(t, name, o1, o2) {
				continue
			}
			want := make([]float64, N*OC)
			var bias64 []float64
			if withBias {
				bias64 = to64(bias)
			}
			ref.MatmulForward(want, to64(inp), to64(weight), bias64, N, C, OC)
			near(t, name+"/out", o1.s(), want, tolDot)
		}
	}
}

func testMatmulBackward(t *testing.T, b accel.Backend) {
	r := newRand(4)
	for _, sh := range matmulShapes {
		N, C, OC := sh[0], sh[1], sh[2]
		for _, withBias := range []bool{true, false} {
			name := dims(N, C, OC) + "/bias=" + strconv.FormatBool(withBias)
			var in frozen
			dout := in.add("dout", uniform(r, N*OC, -1, 1))
			inp := in.add("inp", uniform(r, N*C, -1, 1))
			weight := in.add("weight", uniform(r, OC*C, -1, 1))
			dinp0 := uniform(r, N*C, -1, 1) // accumulates
			dw0 := uniform(r, OC*C, -1, 1)
			db0 := uniform(r, OC, -1, 1)
			di1, di2 := newBuf(dinp0), newBuf(dinp0)
			dw1, dw2 := newBuf(dw0), newBuf(dw0)
			db1, db2 := newBuf(db0), newBuf(db0)
			if withBias {
				b.MatmulBackward(di1.s(), dw1.s(), db1.s(), dout, inp, weight, N, C, OC)
				b.MatmulBackward(di2.s(), dw2.s(), db2.s(), dout, inp, weight, N, C, OC)
			} else {
				b.MatmulBackward(di1.s(), dw1.s(), nil, dout, inp, weight, N, C, OC)
				b.MatmulBackward(di2.s(), dw2.s(), nil, dout, inp, weight, N, C, OC)
			}
			in.check(t, name)
			if !checkTwin(t, name+"/dinp", di1, di2) || !checkTwin(t, name+"/dweight", dw1, dw2) || !checkTwin(t, name+"/dbias", db1, db2) {
				continue
			}
			wdi, wdw, wdb := to64(dinp0), to64(dw0), to64(db0)
			if withBias {
				ref.MatmulBackward(wdi, wdw, wdb, to64(dout), to64(inp), to64(weight), N, C, OC)
			} else {
				ref.MatmulBackward(wdi, wdw, nil, to64(dout), to64(inp), to64(weight), N, C, OC)
			}
			near(t, name+"/dinp", di1.s(), wdi, tolDot)
			near(t, name+"/dweight", dw1.s(), wdw, tolDot)
			near(t, name+"/dbias", db1.s(), wdb, tolDot)
		}
	}
}

// ----------------------------------------------------------------------------
// layernorm

var layerNormShapes = [][2]int{{1, 1}, {2, 3}, {3, 7}, {17, 33}, {7, 65}, {5, 768}, {64, 256}}

// layerNormInput has rows with a large mean (a one-pass variance would lose
// its digits) and a constant row (variance 0).
func layerNormInput(r *rand.Rand, N, C int) []float32 {
	inp := uniform(r, N*C, -2, 2)
	for n := 0; n < N; n++ {
		switch n % 3 {
		case 1:
			for i := 0; i < C; i++ {
				inp[n*C+i] += 30
			}
		case 2:
			if n == 2 {
				for i := 0; i < C; i++ {
					inp[n*C+i] = 0.5
				}
			}
		}
	}
	return inp
}

func testLayerNormForward(t *testing.T, b accel.Backend) {
	r := newRand(5)
	for _, sh := range layerNormShapes {
		N, C := sh[0], sh[1]
		name := dims(N, C)
		var in frozen
		inp := in.add("inp", layerNormInput(r, N, C))
		weight := in.add("weight", uniform(r, C, -1.5, 1.5))
		bias := in.add("bias", uniform(r, C, -1, 1))
		o1, o2 := newBuf(filled(N*C, 7)), newBuf(filled(N*C, 7))
		m1, m2 := newBuf(filled(N, 7)), newBuf(filled(N, 7))
		s1, s2 := newBuf(filled(N, 7)), newBuf(filled(N, 7))
		b.LayerNormForward(o1.s(), m1.s(), s1.s(), inp, weight, bias, N, C)
		b.LayerNormForward(o2.s(), m2.s(), s2.s(), inp, weight, bias, N, C)
		in.check(t, name)
		if !checkTwin(t, name+"/out", o1, o2) || !checkTwin(t, name+"/mean", m1, m2) || !checkTwin(t, name+"/rstd", s1, s2) {
			continue
		}
		out, mean, rstd := make([]float64, N*C), make([]float64, N), make([]float64, N)
		ref.LayerNormForward(out, mean, rstd, to64(inp), to64(weight), to64(bias), N, C)
		near(t, name+"/out", o1.s(), out, tolDot)
		near(t, name+"/mean", m1.s(), mean, tolDot)
		near(t, name+"/rstd", s1.s(), rstd, tolDot)
	}
}

func testLayerNormBackward(t *testing.T, b accel.Backend) {
	r := newRand(6)
	for _, sh := range layerNormShapes {
		N, C := sh[0], sh[1]
		name := dims(N, C)
		var in frozen
		inp := in.add("inp", layerNormInput(r, N, C))
		weight := in.add("weight", uniform(r, C, -1.5, 1.5))
		mean, rstd := make([]float32, N), make([]float32, N)
		ref.LayerNormForward(make([]float32, N*C), mean, rstd, inp, weight, make([]float32, C), N, C)
		in.add("mean", mean)
		in.add("rstd", rstd)
		dout := in.add("dout", uniform(r, N*C, -1, 1))
		di0, dw0, db0 := uniform(r, N*C, -1, 1), uniform(r, C, -1, 1), uniform(r, C, -1, 1)
		di1, di2 := newBuf(di0), newBuf(di0)
		dw1, dw2 := newBuf(dw0), newBuf(dw0)
		db1, db2 := newBuf(db0), newBuf(db0)
		b.LayerNormBackward(di1.s(), dw1.s(), db1.s(), dout, inp, weight, mean, rstd, N, C)
		b.LayerNormBackward(di2.s(), dw2.s(), db2.s(), dout, inp, weight, mean, rstd, N, C)
		in.check(t, name)
		if !checkTwin(t, name+"/dinp", di1, di2) || !checkTwin(t, name+"/dweight", dw1, dw2) || !checkTwin(t, name+"/dbias", db1, db2) {
			continue
		}
		wdi, wdw, wdb := to64(di0), to64(dw0), to64(db0)
		ref.LayerNormBackward(wdi, wdw, wdb, to64(dout), to64(inp), to64(weight), to64(mean), to64(rstd), N, C)
		// dinp is a difference of terms of the size of rstd·|dout| (316 for
		// a constant row): compare it at that scale.
		near(t, name+"/dinp", di1.s(), wdi, 4*tolDot)
		near(t, name+"/dweight", dw1.s(), wdw, tolDot)
		near(t, name+"/dbias", db1.s(), wdb, tolDot)
	}
}

// ----------------------------------------------------------------------------
// elementwise

var elemSizes = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 33, 65, 1000, 4099}

// geluInput covers the flat tails, zero and the bend of the curve.
func geluInput(r *rand.Rand, n int) []float32 {
	x := uniform(r, n, -6, 6)
	special := []float32{0, -0.0, 30, -30, 1e-4, -1e-4, 3, -3, 10, -10, 0.5, -0.5, 100, -100}
	for i := 0; i < n && i < len(special); i++ {
		x[(i*7)%n] = special[i]
	}
	return x
}

func testGELUForward(t *testing.T, b accel.Backend) {
	r := newRand(7)
	for _, n := range elemSizes {
		name := dims(n)
		var in frozen
		inp := in.add("inp", geluInput(r, n))
		o1, o2 := newBuf(filled(n, 3)), newBuf(filled(n, 3))
		b.GELUForward(o1.s(), inp)
		b.GELUForward(o2.s(), inp)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, n)
		ref.GELUForward(want, to64(inp))
		near(t, name, o1.s(), want, tolElem)
	}
}

func testGELUBackward(t *testing.T, b accel.Backend) {
	r := newRand(8)
	for _, n := range elemSizes {
		name := dims(n)
		var in frozen
		inp := in.add("inp", geluInput(r, n))
		dout := in.add("dout", uniform(r, n, -1, 1))
		d0 := uniform(r, n, -1, 1)
		d1, d2 := newBuf(d0), newBuf(d0)
		b.GELUBackward(d1.s(), inp, dout)
		b.GELUBackward(d2.s(), inp, dout)
		in.check(t, name)
		if !checkTwin(t, name, d1, d2) {
			continue
		}
		want := to64(d0)
		ref.GELUBackward(want, to64(inp), to64(dout))
		near(t, name, d1.s(), want, tolElem)
	}
}

func testResidualForward(t *testing.T, b accel.Backend) {
	r := newRand(9)
	for _, n := range elemSizes {
		name := dims(n)
		var in frozen
		x := in.add("a", uniform(r, n, -1, 1))
		y := in.add("b", uniform(r, n, -1, 1))
		o1, o2 := newBuf(filled(n, 5)), newBuf(filled(n, 5))
		b.ResidualForward(o1.s(), x, y)
		b.ResidualForward(o2.s(), x, y)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, n)
		ref.ResidualForward(want, to64(x), to64(y))
		near(t, name, o1.s(), want, tolExact)
	}
}

func testAccumulate(t *testing.T, b accel.Backend) {
	r := newRand(10)
	for _, n := range elemSizes {
		name := dims(n)
		var in frozen
		src := in.add("src", uniform(r, n, -1, 1))
		d0 := uniform(r, n, -1, 1)
		d1, d2 := newBuf(d0), newBuf(d0)
		b.Accumulate(d1.s(), src)
		b.Accumulate(d2.s(), src)
		in.check(t, name)
		if !checkTwin(t, name, d1, d2) {
			continue
		}
		want := to64(d0)
		ref.Accumulate(want, to64(src))
		near(t, name, d1.s(), want, tolExact)
	}
}

func testScale(t *testing.T, b accel.Backend) {
	r := newRand(11)
	for _, n := range elemSizes {
		for _, s := range []float32{0.37, -2, 0} {
			name := dims(n) + "/s=" + strconv.FormatFloat(float64(s), 'g', -1, 32)
			x0 := uniform(r, n, -1, 1)
			x1, x2 := newBuf(x0), newBuf(x0)
			b.Scale(x1.s(), s)
			b.Scale(x2.s(), s)
			if !checkTwin(t, name, x1, x2) {
				continue
			}
			want := to64(x0)
			ref.Scale(want, float64(s))
			near(t, name, x1.s(), want, tolExact)
		}
	}
}

// ----------------------------------------------------------------------------
// attention

var attentionShapes = [][4]int{ // B, T, C, NH
	{1, 1, 1, 1}, {1, 2, 2, 1}, {2, 3, 4, 2}, {1, 7, 6, 3}, {2, 17, 8, 8},
	{1, 33, 16, 2}, {2, 65, 32, 4}, {1, 1, 12, 3}, {3, 5, 7, 1}, {1, 130, 8, 2}, {1, 257, 3, 1},
}

// lower picks the entries t2 <= t of a [B,NH,T,T] tensor, the only ones
// the interface gives a meaning.
func lower[F float32 | float64](x []F, BNH, T int) []F {
	var s []F
	for bh := 0; bh < BNH; bh++ {
		for t := 0; t < T; t++ {
			s = append(s, x[bh*T*T+t*T:bh*T*T+t*T+t+1]...)
		}
	}
	return s
}

func testAttentionForward(t *testing.T, b accel.Backend) {
	r := newRand(12)
	for _, sh := range attentionShapes {
		B, T, C, NH := sh[0], sh[1], sh[2], sh[3]
		name := dims(B, T, C, NH)
		var in frozen
		inp := in.add("inp", uniform(r, B*T*3*C, -2, 2))
		o1, o2 := newBuf(filled(B*T*C, 9)), newBuf(filled(B*T*C, 9))
		p1, p2 := newBuf(filled(B*NH*T*T, 9)), newBuf(filled(B*NH*T*T, 9))
		a1, a2 := newBuf(filled(B*NH*T*T, 9)), newBuf(filled(B*NH*T*T, 9))
		b.AttentionForward(o1.s(), p1.s(), a1.s(), inp, B, T, C, NH)
		b.AttentionForward(o2.s(), p2.s(), a2.s(), inp, B, T, C, NH)
		in.check(t, name)
		if !checkTwin(t, name+"/out", o1, o2) || !checkTwin(t, name+"/preatt", p1, p2) || !checkTwin(t, name+"/att", a1, a2) {
			continue
		}
		out, preatt, att := make([]float64, B*T*C), make([]float64, B*NH*T*T), make([]float64, B*NH*T*T)
		ref.AttentionForward(out, preatt, att, to64(inp), B, T, C, NH)
		near(t, name+"/out", o1.s(), out, tolDot)
		near(t, name+"/preatt", lower(p1.s(), B*NH, T), lower(preatt, B*NH, T), tolDot)
		near(t, name+"/att", lower(a1.s(), B*NH, T), lower(att, B*NH, T), tolDot)
	}
}

func testAttentionBackward(t *testing.T, b accel.Backend) {
	r := newRand(13)
	for _, sh := range attentionShapes {
		B, T, C, NH := sh[0], sh[1], sh[2], sh[3]
		name := dims(B, T, C, NH)
		var in frozen
		inp := in.add("inp", uniform(r, B*T*3*C, -2, 2))
		att := make([]float32, B*NH*T*T)
		ref.AttentionForward(make([]float32, B*T*C), make([]float32, B*NH*T*T), att, inp, B, T, C, NH)
		// Only t2 <= t of att has a meaning: poison the rest.
		for bh := 0; bh < B*NH; bh++ {
			for t1 := 0; t1 < T; t1++ {
				for t2 := t1 + 1; t2 < T; t2++ {
					att[bh*T*T+t1*T+t2] = nan32()
				}
			}
		}
		in.add("att", att)
		dout := in.add("dout", uniform(r, B*T*C, -1, 1))
		di0 := uniform(r, B*T*3*C, -1, 1)
		di1, di2 := newBuf(di0), newBuf(di0)
		// dpreatt and datt are scratch: NaN must not leak out of them.
		scratch := filled(B*NH*T*T, nan32())
		dp1, dp2 := newBuf(scratch), newBuf(scratch)
		da1, da2 := newBuf(scratch), newBuf(scratch)
		b.AttentionBackward(di1.s(), dp1.s(), da1.s(), dout, inp, att, B, T, C, NH)
		b.AttentionBackward(di2.s(), dp2.s(), da2.s(), dout, inp, att, B, T, C, NH)
		in.check(t, name)
		if !checkTwin(t, name+"/dinp", di1, di2) || !dp1.intact() || !da1.intact() {
			t.Errorf("%s: scratch guards overwritten or dinp not deterministic", name)
			continue
		}
		want := to64(di0)
		ref.AttentionBackward(want, make([]float64, B*NH*T*T), make([]float64, B*NH*T*T), to64(dout), to64(inp), to64(att), B, T, C, NH)
		near(t, name+"/dinp", di1.s(), want, tolDot)
	}
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy

var softmaxShapes = [][2]int{{1, 1}, {1, 2}, {3, 7}, {7, 17}, {5, 256}, {2, 1000}, {64, 256}}

// logitsInput shifts some rows by ±100 so that exp without the max
// subtracted would overflow or underflow float32.
func logitsInput(r *rand.Rand, N, V int) ([]float32, []int32) {
	logits := uniform(r, N*V, -8, 8)
	targets := make([]int32, N)
	for n := 0; n < N; n++ {
		shift := float32([]float32{0, 100, -100}[n%3])
		for i := 0; i < V; i++ {
			logits[n*V+i] += shift
		}
		targets[n] = int32(r.IntN(V))
	}
	return logits, targets
}

func testSoftmaxCrossEntropyForward(t *testing.T, b accel.Backend) {
	r := newRand(14)
	for _, sh := range softmaxShapes {
		N, V := sh[0], sh[1]
		name := dims(N, V)
		var in frozen
		logits, targets := logitsInput(r, N, V)
		in.add("logits", logits)
		l1, l2 := newBuf(filled(N, 4)), newBuf(filled(N, 4))
		p1, p2 := newBuf(filled(N*V, 4)), newBuf(filled(N*V, 4))
		b.SoftmaxCrossEntropyForward(l1.s(), p1.s(), logits, targets, N, V)
		b.SoftmaxCrossEntropyForward(l2.s(), p2.s(), logits, targets, N, V)
		in.check(t, name)
		if !checkTwin(t, name+"/losses", l1, l2) || !checkTwin(t, name+"/probs", p1, p2) {
			continue
		}
		losses, probs := make([]float64, N), make([]float64, N*V)
		ref.SoftmaxCrossEntropyForward(losses, probs, to64(logits), targets, N, V)
		near(t, name+"/losses", l1.s(), losses, tolDot)
		near(t, name+"/probs", p1.s(), probs, tolDot)
	}
}

func testSoftmaxCrossEntropyBackward(t *testing.T, b accel.Backend) {
	r := newRand(15)
	for _, sh := range softmaxShapes {
		N, V := sh[0], sh[1]
		name := dims(N, V)
		var in frozen
		logits, targets := logitsInput(r, N, V)
		probs := make([]float32, N*V)
		ref.SoftmaxCrossEntropyForward(make([]float32, N), probs, logits, targets, N, V)
		in.add("probs", probs)
		dlosses := in.add("dlosses", uniform(r, N, -1, 1))
		d0 := uniform(r, N*V, -1, 1)
		d1, d2 := newBuf(d0), newBuf(d0)
		b.SoftmaxCrossEntropyBackward(d1.s(), probs, targets, dlosses, N, V)
		b.SoftmaxCrossEntropyBackward(d2.s(), probs, targets, dlosses, N, V)
		in.check(t, name)
		if !checkTwin(t, name, d1, d2) {
			continue
		}
		want := to64(d0)
		ref.SoftmaxCrossEntropyBackward(want, to64(probs), targets, to64(dlosses), N, V)
		near(t, name, d1.s(), want, tolElem)
	}
}

// ----------------------------------------------------------------------------
// optimizer

func testAdamW(t *testing.T, b accel.Backend) {
	r := newRand(16)
	for _, n := range elemSizes {
		for _, step := range []int{1, 7} {
			for _, wd := range []float32{0, 0.1} {
				name := dims(n) + "/t=" + strconv.Itoa(step) + "/wd=" + strconv.FormatFloat(float64(wd), 'g', -1, 32)
				var in frozen
				grads := in.add("grads", uniform(r, n, -1, 1))
				p0, m0, v0 := uniform(r, n, -1, 1), uniform(r, n, -0.1, 0.1), uniform(r, n, 0, 0.01)
				p1, p2 := newBuf(p0), newBuf(p0)
				m1, m2 := newBuf(m0), newBuf(m0)
				v1, v2 := newBuf(v0), newBuf(v0)
				const lr, b1, b2, eps = 0.05, 0.9, 0.95, 1e-8
				b.AdamW(p1.s(), grads, m1.s(), v1.s(), step, lr, b1, b2, eps, wd)
				b.AdamW(p2.s(), grads, m2.s(), v2.s(), step, lr, b1, b2, eps, wd)
				in.check(t, name)
				if !checkTwin(t, name+"/params", p1, p2) || !checkTwin(t, name+"/m", m1, m2) || !checkTwin(t, name+"/v", v1, v2) {
					continue
				}
				// the oracle starts from the same float32 hyperparameters
				wp, wm, wv := to64(p0), to64(m0), to64(v0)
				ref.AdamW(wp, to64(grads), wm, wv, step, float64(float32(lr)), float64(float32(b1)), float64(float32(b2)), float64(float32(eps)), float64(wd))
				near(t, name+"/params", p1.s(), wp, tolElem)
				near(t, name+"/m", m1.s(), wm, tolElem)
				near(t, name+"/v", v1.s(), wv, tolElem)
			}
		}
	}
}

func testSumSquares(t *testing.T, b accel.Backend) {
	r := newRand(17)
	for _, n := range append(elemSizes, 100003, 1<<20+5) {
		name := dims(n)
		var in frozen
		x := in.add("x", uniform(r, n, -3, 3))
		s1, s2 := b.SumSquares(x), b.SumSquares(x)
		in.check(t, name)
		if math.Float64bits(s1) != math.Float64bits(s2) {
			t.Errorf("%s: not deterministic: %v, then %v", name, s1, s2)
		}
		if want := ref.SumSquares(to64(x)); math.Abs(s1-want) > 1e-12*want {
			t.Errorf("%s: SumSquares = %.17g, want %.17g", name, s1, want)
		}
	}
}

// ----------------------------------------------------------------------------
// clustering

// csr makes a random CSR matrix [rows,d] with sorted column indices, about
// density·d entries per row, and empty first and last rows (and some more).
func csr(r *rand.Rand, rows, d int, density float64) ([]int64, []int32, []float32) {
	indptr := make([]int64, rows+1)
	var indices []int32
	var values []float32
	for i := 0; i < rows; i++ {
		if i > 0 && i < rows-1 && r.IntN(5) > 0 {
			for j := 0; j < d; j++ {
				if r.Float64() < density {
					indices = append(indices, int32(j))
					values = append(values, float32(2*r.Float64()-1))
				}
			}
		}
		indptr[i+1] = int64(len(indices))
	}
	return indptr, indices, values
}

// sparseKernel is a sparse × dense product under test: out[rows,n] from a
// CSR matrix of d columns and a dense matrix of n·d values (laid out as the
// kernel wants), with its float64 oracle.
type sparseKernel struct {
	run    func(out []float32, indptr []int64, indices []int32, values []float32, rows int, dense []float32, d, n int)
	oracle func(want []float64, indptr []int64, indices []int32, values []float64, rows int, dense []float64, d, n int)
	// extra, when set, checks the output against a second oracle.
	extra func(t *testing.T, name string, got []float32, indptr []int64, indices []int32, values, dense []float32, rows, d, n int)
}

// checkSparse runs k twice per shape {rows, d, n} and compares it with its
// oracle; inputs must stay untouched and both calls agree bit for bit.
func checkSparse(t *testing.T, seed uint64, shapes [][3]int, k sparseKernel) {
	r := newRand(seed)
	for _, sh := range shapes {
		rows, d, n := sh[0], sh[1], sh[2]
		name := dims(rows, d, n)
		indptr, indices, values := csr(r, rows, d, 0.1)
		var in frozen
		in.add("values", values)
		dense := in.add("dense", uniform(r, n*d, -1, 1))
		o1, o2 := newBuf(filled(rows*n, 6)), newBuf(filled(rows*n, 6))
		k.run(o1.s(), indptr, indices, values, rows, dense, d, n)
		k.run(o2.s(), indptr, indices, values, rows, dense, d, n)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, rows*n)
		k.oracle(want, indptr, indices, to64(values), rows, to64(dense), d, n)
		near(t, name, o1.s(), want, tolDot)
		if k.extra != nil {
			k.extra(t, name, o1.s(), indptr, indices, values, dense, rows, d, n)
		}
	}
}

func testSparseDenseT(t *testing.T, b accel.Backend) {
	checkSparse(t, 18, [][3]int{{0, 5, 3}, {1, 1, 1}, {3, 7, 2}, {17, 100, 16}, {65, 1000, 17}, {33, 33, 1}, {200, 5000, 16}, {9, 50, 8}, {40, 300, 24}, {7, 3000, 33}}, sparseKernel{
		run: func(out []float32, indptr []int64, indices []int32, values []float32, rows int, dense []float32, d, n int) {
			b.SparseDenseT(out, indptr, indices, values, rows, dense, n, d)
		},
		oracle: func(want []float64, indptr []int64, indices []int32, values []float64, rows int, dense []float64, d, n int) {
			ref.SparseDenseT(want, indptr, indices, values, rows, dense, n, d)
		},
	})
}

func testSparseDense(t *testing.T, b accel.Backend) {
	checkSparse(t, 20, [][3]int{{0, 5, 3}, {1, 1, 1}, {3, 7, 2}, {17, 100, 16}, {65, 1000, 17}, {33, 33, 1}, {200, 5000, 16}, {9, 50, 8}, {7, 3000, 33}}, sparseKernel{
		run:    b.SparseDense,
		oracle: ref.SparseDense[float64],
		// The same product as SparseDenseT of the transposed matrix.
		extra: func(t *testing.T, name string, got []float32, indptr []int64, indices []int32, values, denseT []float32, rows, d, n int) {
			dense := make([]float64, n*d)
			for j := range d {
				for c := range n {
					dense[c*d+j] = float64(denseT[j*n+c])
				}
			}
			want := make([]float64, rows*n)
			ref.SparseDenseT(want, indptr, indices, to64(values), rows, dense, n, d)
			near(t, name+"/vs-SparseDenseT", got, want, tolDot)
		},
	})
}

var denseShapes = [][3]int{{0, 3, 2}, {1, 1, 1}, {3, 2, 7}, {17, 16, 100}, {65, 17, 33}, {200, 16, 100}, {5, 3, 1}}

func testDenseDenseT(t *testing.T, b accel.Backend) {
	r := newRand(19)
	for _, sh := range denseShapes {
		m, n, d := sh[0], sh[1], sh[2]
		name := dims(m, n, d)
		var in frozen
		x := in.add("x", uniform(r, m*d, -1, 1))
		y := in.add("y", uniform(r, n*d, -1, 1))
		o1, o2 := newBuf(filled(m*n, nan32())), newBuf(filled(m*n, nan32()))
		b.DenseDenseT(o1.s(), x, y, m, n, d)
		b.DenseDenseT(o2.s(), x, y, m, n, d)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, m*n)
		ref.DenseDenseT(want, to64(x), to64(y), m, n, d)
		near(t, name, o1.s(), want, tolDot)
	}
}

func testSquaredDistances(t *testing.T, b accel.Backend) {
	r := newRand(20)
	for _, sh := range denseShapes {
		m, n, d := sh[0], sh[1], sh[2]
		name := dims(m, n, d)
		var in frozen
		x := uniform(r, m*d, -1, 1)
		for i := range x {
			x[i] += 5 // far from the origin: the norms dwarf the distances
		}
		y := uniform(r, n*d, -1, 1)
		for i := range y {
			y[i] += 5
		}
		for j := 0; j < n && j < m; j += 2 {
			copy(y[j*d:j*d+d], x[j*d:j*d+d]) // exact matches: distance 0
		}
		in.add("x", x)
		in.add("y", y)
		xnorm, ynorm := make([]float32, m), make([]float32, n)
		ref.RowNorms(xnorm, x, m, d)
		ref.RowNorms(ynorm, y, n, d)
		in.add("xnorm", xnorm)
		in.add("ynorm", ynorm)
		o1, o2 := newBuf(filled(m*n, nan32())), newBuf(filled(m*n, nan32()))
		b.SquaredDistances(o1.s(), x, xnorm, y, ynorm, m, n, d)
		b.SquaredDistances(o2.s(), x, xnorm, y, ynorm, m, n, d)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, m*n)
		ref.SquaredDistances(want, to64(x), to64(xnorm), to64(y), to64(ynorm), m, n, d)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				g, w := float64(o1.s()[i*n+j]), want[i*n+j]
				// the error of a difference of norms is relative to the norms
				if !(g >= 0) || math.Abs(g-w) > tolDot*(float64(xnorm[i])+float64(ynorm[j])) {
					t.Errorf("%s: out[%d,%d] = %g, want %g", name, i, j, g, w)
					return
				}
			}
		}
	}
}

func testRowNorms(t *testing.T, b accel.Backend) {
	r := newRand(21)
	for _, sh := range denseShapes {
		m, d := sh[0], sh[2]
		name := dims(m, d)
		var in frozen
		x := in.add("x", uniform(r, m*d, -1, 1))
		o1, o2 := newBuf(filled(m, nan32())), newBuf(filled(m, nan32()))
		b.RowNorms(o1.s(), x, m, d)
		b.RowNorms(o2.s(), x, m, d)
		in.check(t, name)
		if !checkTwin(t, name, o1, o2) {
			continue
		}
		want := make([]float64, m)
		ref.RowNorms(want, to64(x), m, d)
		near(t, name, o1.s(), want, tolDot)
	}
}

// rowsInput is uniform, or with few distinct values (many ties) when ties.
func rowsInput(r *rand.Rand, m, n int, ties bool) []float32 {
	x := uniform(r, m*n, -1, 1)
	if ties {
		for i := range x {
			x[i] = float32(r.IntN(4))
		}
	}
	return x
}

func testArgminRows(t *testing.T, b accel.Backend) {
	r := newRand(22)
	for _, sh := range [][2]int{{1, 1}, {3, 2}, {5, 7}, {17, 16}, {33, 65}, {4, 1000}, {3068, 16}} {
		for _, ties := range []bool{false, true} {
			m, n := sh[0], sh[1]
			name := dims(m, n) + "/ties=" + strconv.FormatBool(ties)
			var in frozen
			x := in.add("x", rowsInput(r, m, n, ties))
			i1, i2 := newBuf(make([]int32, m)), newBuf(make([]int32, m))
			v1, v2 := newBuf(filled(m, 8)), newBuf(filled(m, 8))
			b.ArgminRows(i1.s(), v1.s(), x, m, n)
			b.ArgminRows(i2.s(), v2.s(), x, m, n)
			in.check(t, name)
			if !checkTwin(t, name+"/idx", i1, i2) || !checkTwin(t, name+"/val", v1, v2) {
				continue
			}
			wi, wv := make([]int32, m), make([]float32, m)
			ref.ArgminRows(wi, wv, x, m, n)
			for i := 0; i < m; i++ {
				if i1.s()[i] != wi[i] || v1.s()[i] != wv[i] {
					t.Errorf("%s: row %d: (%d, %g), want (%d, %g)", name, i, i1.s()[i], v1.s()[i], wi[i], wv[i])
					break
				}
			}
		}
	}
}

func testTopKRows(t *testing.T, b accel.Backend) {
	r := newRand(23)
	for _, sh := range [][3]int{{1, 1, 1}, {3, 2, 1}, {3, 2, 2}, {5, 7, 3}, {17, 16, 16}, {33, 65, 5}, {4, 1000, 10}, {4, 17, 17}, {300, 16, 2}} {
		for _, ties := range []bool{false, true} {
			m, n, k := sh[0], sh[1], sh[2]
			name := dims(m, n, k) + "/ties=" + strconv.FormatBool(ties)
			var in frozen
			x := in.add("x", rowsInput(r, m, n, ties))
			i1, i2 := newBuf(make([]int32, m*k)), newBuf(make([]int32, m*k))
			v1, v2 := newBuf(filled(m*k, 8)), newBuf(filled(m*k, 8))
			b.TopKRows(i1.s(), v1.s(), x, m, n, k)
			b.TopKRows(i2.s(), v2.s(), x, m, n, k)
			in.check(t, name)
			if !checkTwin(t, name+"/idx", i1, i2) || !checkTwin(t, name+"/val", v1, v2) {
				continue
			}
			wi, wv := make([]int32, m*k), make([]float32, m*k)
			ref.TopKRows(wi, wv, x, m, n, k)
			for i := 0; i < m*k; i++ {
				if i1.s()[i] != wi[i] || v1.s()[i] != wv[i] {
					t.Errorf("%s: row %d, rank %d: (%d, %g), want (%d, %g)", name, i/k, i%k, i1.s()[i], v1.s()[i], wi[i], wv[i])
					break
				}
			}
		}
	}
}
