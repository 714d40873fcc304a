package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/domainflow/domainflow/accel/ref"
)

// Gradients checks every backward kernel of accel/ref, in float64, against
// central finite differences of the float64 forward: for a fixed random
// dout, the loss is L = Σ dout·out and each input's gradient must match
// (L(x+h) - L(x-h)) / 2h. The backends' backward kernels are in turn held
// to ref's by Run, so this anchors the whole chain to calculus.
func Gradients(t *testing.T) {
	r := newRand(100)
	t.Run("Matmul", func(t *testing.T) { gradMatmul(t, r) })
	t.Run("LayerNorm", func(t *testing.T) { gradLayerNorm(t, r) })
	t.Run("GELU", func(t *testing.T) { gradGELU(t, r) })
	t.Run("Residual", func(t *testing.T) { gradResidual(t, r) })
	t.Run("Attention", func(t *testing.T) { gradAttention(t, r) })
	t.Run("SoftmaxCrossEntropy", func(t *testing.T) { gradSoftmaxCrossEntropy(t, r) })
}

func uniform64(r *rand.Rand, n int, lo, hi float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = lo + (hi-lo)*r.Float64()
	}
	return s
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// fdCheck compares the analytic gradient grad of loss with respect to x
// against central differences, perturbing x in place (and restoring it).
func fdCheck(t *testing.T, name string, x, grad []float64, loss func() float64) {
	t.Helper()
	const h = 1e-5
	scale := 0.0
	for _, g := range grad {
		scale = max(scale, math.Abs(g))
	}
	worst, at := 0.0, -1
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		lp := loss()
		x[i] = orig - h
		lm := loss()
		x[i] = orig
		num := (lp - lm) / (2 * h)
		// relative error, with an absolute floor at 1e-3 of the largest
		// gradient for entries that are (near) zero
		rel := math.Abs(grad[i]-num) / max(math.Abs(grad[i])+math.Abs(num), 1e-3*scale, 1e-300)
		if rel > worst {
			worst, at = rel, i
		}
	}
	if worst > 1e-6 {
		t.Errorf("%s: gradient vs finite differences: relative error %.3g at %d", name, worst, at)
	} else if testing.Verbose() {
		t.Logf("%s: worst relative error %.3g", name, worst)
	}
}

func gradMatmul(t *testing.T, r *rand.Rand) {
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 4}, {7, 3, 9}} {
		N, C, OC := sh[0], sh[1], sh[2]
		name := dims(N, C, OC)
		inp, weight, bias := uniform64(r, N*C, -1, 1), uniform64(r, OC*C, -1, 1), uniform64(r, OC, -1, 1)
		dout := uniform64(r, N*OC, -1, 1)
		out := make([]float64, N*OC)
		loss := func() float64 {
			ref.MatmulForward(out, inp, weight, bias, N, C, OC)
			return dot64(out, dout)
		}
		dinp, dweight, dbias := make([]float64, N*C), make([]float64, OC*C), make([]float64, OC)
		ref.MatmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
		fdCheck(t, name+"/dinp", inp, dinp, loss)
		fdCheck(t, name+"/dweight", weight, dweight, loss)
		fdCheck(t, name+"/dbias", bias, dbias, loss)
	}
}

func gradLayerNorm(t *testing.T, r *rand.Rand) {
	for _, sh := range [][2]int{{1, 2}, {3, 5}, {4, 16}} {
		N, C := sh[0], sh[1]
		name := dims(N, C)
		inp, weight, bias := uniform64(r, N*C, -2, 2), uniform64(r, C, -1, 1), uniform64(r, C, -1, 1)
		dout := uniform64(r, N*C, -1, 1)
		out, mean, rstd := make([]float64, N*C), make([]float64, N), make([]float64, N)
		loss := func() float64 {
			ref.LayerNormForward(out, mean, rstd, inp, weight, bias, N, C)
			return dot64(out, dout)
		}
		loss() // mean and rstd at the unperturbed point
		m0, s0 := append([]float64(nil), mean...), append([]float64(nil), rstd...)
		dinp, dweight, dbias := make([]float64, N*C), make([]float64, C), make([]float64, C)
		ref.LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, m0, s0, N, C)
		fdCheck(t, name+"/dinp", inp, dinp, loss)
		fdCheck(t, name+"/dweight", weight, dweight, loss)
		fdCheck(t, name+"/dbias", bias, dbias, loss)
	}
}

func gradGELU(t *testing.T, r *rand.Rand) {
	inp := uniform64(r, 64, -5, 5)
	inp[0], inp[1], inp[2] = 0, 12, -12
	dout := uniform64(r, len(inp), -1, 1)
	out := make([]float64, len(inp))
	loss := func() float64 {
		ref.GELUForward(out, inp)
		return dot64(out, dout)
	}
	dinp := make([]float64, len(inp))
	ref.GELUBackward(dinp, inp, dout)
	fdCheck(t, "dinp", inp, dinp, loss)
}

// gradResidual checks the residual's backward, which is Accumulate of dout
// into both inputs' gradients.
func gradResidual(t *testing.T, r *rand.Rand) {
	a, b := uniform64(r, 9, -1, 1), uniform64(r, 9, -1, 1)
	dout := uniform64(r, 9, -1, 1)
	out := make([]float64, 9)
	loss := func() float64 {
		ref.ResidualForward(out, a, b)
		return dot64(out, dout)
	}
	da, db := make([]float64, 9), make([]float64, 9)
	ref.Accumulate(da, dout)
	ref.Accumulate(db, dout)
	fdCheck(t, "da", a, da, loss)
	fdCheck(t, "db", b, db, loss)
}

func gradAttention(t *testing.T, r *rand.Rand) {
	for _, sh := range [][4]int{{1, 1, 2, 1}, {1, 4, 3, 1}, {2, 5, 6, 2}, {1, 3, 4, 4}} {
		B, T, C, NH := sh[0], sh[1], sh[2], sh[3]
		name := dims(B, T, C, NH)
		inp := uniform64(r, B*T*3*C, -1.5, 1.5)
		dout := uniform64(r, B*T*C, -1, 1)
		out, preatt, att := make([]float64, B*T*C), make([]float64, B*NH*T*T), make([]float64, B*NH*T*T)
		loss := func() float64 {
			ref.AttentionForward(out, preatt, att, inp, B, T, C, NH)
			return dot64(out, dout)
		}
		loss()
		att0 := append([]float64(nil), att...)
		dinp := make([]float64, B*T*3*C)
		ref.AttentionBackward(dinp, make([]float64, B*NH*T*T), make([]float64, B*NH*T*T), dout, inp, att0, B, T, C, NH)
		fdCheck(t, name+"/dinp", inp, dinp, loss)
	}
}

func gradSoftmaxCrossEntropy(t *testing.T, r *rand.Rand) {
	for _, sh := range [][2]int{{1, 1}, {1, 2}, {3, 7}, {4, 33}} {
		N, V := sh[0], sh[1]
		name := fmt.Sprintf("%dx%d", N, V)
		logits := uniform64(r, N*V, -3, 3)
		targets := make([]int32, N)
		for n := range targets {
			targets[n] = int32(r.IntN(V))
		}
		dlosses := uniform64(r, N, -1, 1)
		losses, probs := make([]float64, N), make([]float64, N*V)
		loss := func() float64 {
			ref.SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V)
			return dot64(losses, dlosses)
		}
		loss()
		probs0 := append([]float64(nil), probs...)
		dlogits := make([]float64, N*V)
		ref.SoftmaxCrossEntropyBackward(dlogits, probs0, targets, dlosses, N, V)
		fdCheck(t, name+"/dlogits", logits, dlogits, loss)
	}
}
