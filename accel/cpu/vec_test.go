package cpu

import (
	"math"
	"testing"
)

// TestVecKernels holds the vector kernels (when this build has them) to
// the scalar Go loops they replace, over a sweep wider than any activation
// and with the special values.
func TestVecKernels(t *testing.T) {
	var x []float32
	for v := float32(-120); v < 120; v += 0.0173 {
		x = append(x, v)
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 88.3, -88.3, 87.4, -87.4,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	for len(x)%8 != 0 {
		x = append(x, 0.5)
	}
	// In the tails the exponent t = -2u is large and its rounding error
	// (|t|·2^-24) shows up relatively in e^t: the tolerance grows with |x|³.
	var x0 float32
	close := func(got, want float32) bool {
		if math.IsNaN(float64(want)) {
			return math.IsNaN(float64(got))
		}
		rel := 4e-7 * max(1, 0.2*math.Abs(float64(x0*x0*x0)))
		return math.Abs(float64(got-want)) <= rel*math.Abs(float64(want))+1e-37 || got == want
	}
	out := make([]float32, len(x))
	if n := geluForwardVec(out, x); n > 0 {
		for i := range n {
			x0 = x[i]
			if want := x[i] * geluSigmoid(x[i]); !close(out[i], want) && !math.IsInf(float64(x[i]), 0) {
				t.Errorf("geluForwardVec(%g) = %g, want %g", x[i], out[i], want)
			}
		}
	} else {
		t.Log("no vector kernels in this build or on this CPU")
		return
	}
	dout := make([]float32, len(x))
	for i := range dout {
		dout[i] = 0.75
	}
	dinp := make([]float32, len(x))
	geluBackwardVec(dinp, x, dout)
	for i, v := range x {
		x0 = v
		if math.IsInf(float64(v), 0) {
			continue
		}
		s := geluSigmoid(v)
		want := (s + 2*v*s*(1-s)*geluScale*(1+3*0.044715*v*v)) * 0.75
		if !(close(dinp[i], want) || math.Abs(float64(dinp[i]-want)) < 1e-6) {
			t.Errorf("geluBackwardVec(%g) = %g, want %g", v, dinp[i], want)
		}
	}
	n, sum := expShiftVec(out, x, 1.5)
	x0 = 0
	for i := range n {
		w := expf(x[i] - 1.5)
		if !close(out[i], w) {
			t.Errorf("expShiftVec(%g) = %g, want %g", x[i]-1.5, out[i], w)
		}
	}
	if !math.IsNaN(float64(sum)) {
		t.Errorf("expShiftVec sum over a NaN = %g, want NaN", sum)
	}
}

// TestVecHelpers holds the other vector kernels to plain Go loops on
// random data, for lengths around multiples of 8.
func TestVecHelpers(t *testing.T) {
	if n, _ := maxVec(make([]float32, 8)); n == 0 {
		t.Skip("no vector kernels in this build or on this CPU")
	}
	r := uint64(1)
	rnd := func() float32 { // xorshift: a few uniform values in [-2, 2)
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		return float32(r>>40)/float32(1<<24)*4 - 2
	}
	vec := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rnd()
		}
		return s
	}
	near := func(name string, n int, got, want float32, scale float64) {
		t.Helper()
		if math.Abs(float64(got-want)) > 1e-5*scale {
			t.Errorf("%s, n=%d: %g, want %g", name, n, got, want)
		}
	}
	// the 8×8 transpose: dt[j,c] = dense[c,j] on the vector part of
	// rows [3, 300) of a [300, 20] dt
	{
		const n, d = 20, 300
		dense := vec(n * d)
		dt := make([]float32, d*n)
		jv, cv := transposeVec(dt, dense, n, d, 3, d)
		if jv != 3+(d-3)&^7 || cv != 16 {
			t.Fatalf("transposeVec: did rows [3, %d) and columns [0, %d)", jv, cv)
		}
		for j := range d {
			for c := range n {
				want := float32(0)
				if j >= 3 && j < jv && c < cv {
					want = dense[c*d+j]
				}
				if dt[j*n+c] != want {
					t.Fatalf("transposeVec: dt[%d,%d] = %g, want %g", j, c, dt[j*n+c], want)
				}
			}
		}
	}
	for _, n := range []int{8, 16, 24, 40, 64, 256, 264} {
		x, y, z, w := vec(n), vec(n), vec(n), vec(n)
		var wmax, wdot, wsum, wsq, wa, wb float32
		wmax = x[0]
		const m, s = 0.25, 1.5
		for i := range n {
			wmax = max(wmax, x[i])
			wdot += x[i] * y[i]
			wsum += x[i]
			wsq += (x[i] - m) * (x[i] - m)
			wa += w[i] * y[i]
			wb += w[i] * y[i] * (x[i] - m) * s
		}
		k, got := maxVec(x)
		near("maxVec", n, got, wmax, 0)
		k2, got := dotVec(x, y)
		near("dotVec", n, got, wdot, float64(n))
		k3, sum, sq := lnStatsVec(x, m)
		near("lnStatsVec sum", n, sum, wsum, float64(n))
		near("lnStatsVec sqdev", n, sq, wsq, float64(n))
		k4, a, b := lnBackwardSumsVec(x, y, w, m, s)
		near("lnBackwardSumsVec a", n, a, wa, float64(n))
		near("lnBackwardSumsVec b", n, b, wb, float64(n))
		if k != n || k2 != n || k3 != n || k4 != n {
			t.Fatalf("n=%d: prefix lengths %d %d %d %d", n, k, k2, k3, k4)
		}
		// elementwise kernels against the Go formulas
		check := func(name string, got []float32, want func(i int) float32) {
			t.Helper()
			for i := range n {
				if wi := want(i); math.Abs(float64(got[i]-wi)) > 1e-6*(1+math.Abs(float64(wi))) {
					t.Errorf("%s, n=%d: [%d] = %g, want %g", name, n, i, got[i], wi)
					return
				}
			}
		}
		o := append([]float32(nil), z...)
		addVec(o, x)
		check("addVec", o, func(i int) float32 { return z[i] + x[i] })
		o = append([]float32(nil), x...)
		scaleVec(o, s)
		check("scaleVec", o, func(i int) float32 { return x[i] * s })
		o = make([]float32, n)
		softmaxBackwardVec(o, x, y, 0.5)
		check("softmaxBackwardVec", o, func(i int) float32 { return x[i] * (y[i] - 0.5) })
		lnForwardVec(o, x, w, z, m, s)
		check("lnForwardVec", o, func(i int) float32 { return (x[i]-m)*s*w[i] + z[i] })
		o = append([]float32(nil), z...)
		lnBackwardRowVec(o, x, y, w, m, s, 0.1, 0.2)
		check("lnBackwardRowVec", o, func(i int) float32 { return z[i] + (w[i]*y[i]-0.1-(x[i]-m)*s*0.2)*s })
		dw, db := append([]float32(nil), z...), append([]float32(nil), w...)
		lnBackwardColsVec(dw, db, x, y, m, s)
		check("lnBackwardColsVec dw", dw, func(i int) float32 { return z[i] + (x[i]-m)*s*y[i] })
		check("lnBackwardColsVec db", db, func(i int) float32 { return w[i] + y[i] })
		p, g, mm, vv := append([]float32(nil), x...), y, append([]float32(nil), z...), make([]float32, n)
		for i := range vv {
			vv[i] = w[i] * w[i]
		}
		h := adamw{lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, wd: 0.1, c1: 0.5, c2: 0.25}
		h.vec(p, g, mm, vv)
		check("adamw m", mm, func(i int) float32 { return 0.9*z[i] + 0.1*g[i] })
		check("adamw p", p, func(i int) float32 {
			mi := 0.9*z[i] + 0.1*g[i]
			vi := 0.99*w[i]*w[i] + 0.01*g[i]*g[i]
			return x[i] - 0.01*(mi/0.5/(float32(math.Sqrt(float64(vi/0.25)))+1e-8)+0.1*x[i])
		})
		// sparse rows: 16 and 8 columns of a [5, n] matrix
		dt := vec(5 * 24)
		idx, val := []int32{4, 0, 2, 2, 1}, vec(5)
		o = make([]float32, 24)
		spmmRowVec(o, idx, val, dt, 24)
		for c := range 24 {
			var acc float32
			for p, j := range idx {
				acc += val[p] * dt[int(j)*24+c]
			}
			near("spmmRowVec", c, o[c], acc, 5)
		}
	}
}
