package cpu

import "math"

// Each kernel below is a range function over a chunk of its slices (the
// serial kernel) and a method that checks the shapes and runs the range
// function inline or over parallelFor.

// ----------------------------------------------------------------------------
// GELU

// geluScale is sqrt(2/π).
const geluScale = 0.7978845608028654

// geluSigmoid returns σ(2u) for u = sqrt(2/π)·(x + 0.044715·x³), the form of
// 0.5·(1 + tanh(u)) that loses no digits in the negative tail.
func geluSigmoid(x float32) float32 {
	u := geluScale * (x + 0.044715*x*x*x)
	return 1 / (1 + expf(-2*u))
}

// GELUForward: out[i] = gelu(inp[i]) = 0.5·x·(1 + tanh(u)) = x·σ(2u), with
// u = sqrt(2/π)·(x + 0.044715·x³). Parallel over chunks of the slice.
func (b *Backend) GELUForward(out, inp []float32) {
	need(len(out) >= len(inp), "cpu: GELUForward: out shorter than inp")
	const grain = grainElems / 8
	if b.chunks(len(inp), grain) == 1 {
		geluForward(out, inp)
		return
	}
	b.parallelForAligned(len(inp), grain, 8, func(lo, hi int) { geluForward(out[lo:hi], inp[lo:hi]) })
}

func geluForward(out, inp []float32) {
	out = out[:len(inp)]
	for i := geluForwardVec(out, inp); i < len(inp); i++ {
		v := inp[i]
		out[i] = v * geluSigmoid(v)
	}
}

// GELUBackward accumulates dinp[i] += gelu'(x)·dout[i], where with s = σ(2u)
// gelu'(x) = s + 2·x·s·(1-s)·sqrt(2/π)·(1 + 3·0.044715·x²)
// (0.5·(1+tanh u) = s and 0.5·sech²u = 2·s·(1-s)).
func (b *Backend) GELUBackward(dinp, inp, dout []float32) {
	need(len(dinp) >= len(inp) && len(dout) >= len(inp), "cpu: GELUBackward: slice shorter than inp")
	const grain = grainElems / 8
	if b.chunks(len(inp), grain) == 1 {
		geluBackward(dinp, inp, dout)
		return
	}
	b.parallelForAligned(len(inp), grain, 8, func(lo, hi int) { geluBackward(dinp[lo:hi], inp[lo:hi], dout[lo:hi]) })
}

func geluBackward(dinp, inp, dout []float32) {
	dinp, dout = dinp[:len(inp)], dout[:len(inp)]
	for i := geluBackwardVec(dinp, inp, dout); i < len(inp); i++ {
		v := inp[i]
		s := geluSigmoid(v)
		grad := s + 2*v*s*(1-s)*geluScale*(1+3*0.044715*v*v)
		dinp[i] += grad * dout[i]
	}
}

// ----------------------------------------------------------------------------
// residual, accumulate, scale

// ResidualForward: out[i] = a[i] + b[i].
func (b *Backend) ResidualForward(out, x, y []float32) {
	need(len(out) >= len(x) && len(y) >= len(x), "cpu: ResidualForward: slice shorter than a")
	if b.chunks(len(x), grainElems) == 1 {
		residual(out, x, y)
		return
	}
	b.parallelForAligned(len(x), grainElems, 8, func(lo, hi int) { residual(out[lo:hi], x[lo:hi], y[lo:hi]) })
}

func residual(out, x, y []float32) {
	out, y = out[:len(x)], y[:len(x)]
	for i := range x {
		out[i] = x[i] + y[i]
	}
}

// Accumulate: dst[i] += src[i].
func (b *Backend) Accumulate(dst, src []float32) {
	need(len(dst) >= len(src), "cpu: Accumulate: dst shorter than src")
	if b.chunks(len(src), grainElems) == 1 {
		accumulate(dst, src)
		return
	}
	b.parallelForAligned(len(src), grainElems, 8, func(lo, hi int) { accumulate(dst[lo:hi], src[lo:hi]) })
}

func accumulate(dst, src []float32) {
	dst = dst[:len(src)]
	for i := addVec(dst, src); i < len(src); i++ {
		dst[i] += src[i]
	}
}

// Scale: x[i] *= s.
func (b *Backend) Scale(x []float32, s float32) {
	if b.chunks(len(x), grainElems) == 1 {
		scale(x, s)
		return
	}
	b.parallelForAligned(len(x), grainElems, 8, func(lo, hi int) { scale(x[lo:hi], s) })
}

func scale(x []float32, s float32) {
	for i := scaleVec(x, s); i < len(x); i++ {
		x[i] *= s
	}
}

// ----------------------------------------------------------------------------
// AdamW

// adamw holds AdamW's hyperparameters and bias corrections for one step.
type adamw struct {
	lr, beta1, beta2, eps, wd float32
	c1, c2                    float32 // 1-β1^t, 1-β2^t
}

// AdamW: m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g², then
// p -= lr·(m̂/(sqrt(v̂)+eps) + wd·p) with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t).
// Elementwise, parallel over chunks.
func (b *Backend) AdamW(params, grads, m, v []float32, t int, lr, beta1, beta2, eps, weightDecay float32) {
	need(len(grads) >= len(params) && len(m) >= len(params) && len(v) >= len(params), "cpu: AdamW: slice shorter than params")
	h := adamw{lr: lr, beta1: beta1, beta2: beta2, eps: eps, wd: weightDecay,
		c1: float32(1 - math.Pow(float64(beta1), float64(t))),
		c2: float32(1 - math.Pow(float64(beta2), float64(t)))}
	const grain = grainElems / 4
	if b.chunks(len(params), grain) == 1 {
		h.update(params, grads, m, v)
		return
	}
	b.parallelForAligned(len(params), grain, 8, func(lo, hi int) { h.update(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi]) })
}

func (h adamw) update(p, g, m, v []float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	beta1, beta2, c1, c2 := h.beta1, h.beta2, h.c1, h.c2
	for i := h.vec(p, g, m, v); i < len(p); i++ {
		gi := g[i]
		mi := beta1*m[i] + (1-beta1)*gi
		vi := beta2*v[i] + (1-beta2)*gi*gi
		m[i], v[i] = mi, vi
		mhat := mi / c1
		vhat := vi / c2
		p[i] -= h.lr * (mhat/(float32(math.Sqrt(float64(vhat)))+h.eps) + h.wd*p[i])
	}
}

// ----------------------------------------------------------------------------
// SumSquares

// sumBlock is the length of the fixed blocks SumSquares sums separately:
// the partial sums, and so the result, do not depend on the thread count.
const sumBlock = 1 << 14

// SumSquares returns Σ x[i]² in float64. x is cut into fixed blocks of
// sumBlock elements, each summed on its own (8 float64 lanes with AVX2,
// four accumulators in Go), and the block sums are added in order: the
// result is the same for every thread count.
func (b *Backend) SumSquares(x []float32) float64 {
	nb := (len(x) + sumBlock - 1) / sumBlock
	if nb <= 1 {
		return sumSquares(x)
	}
	if cap(b.partial) < nb {
		b.partial = make([]float64, nb)
	}
	partial := b.partial[:nb]
	if b.chunks(nb, 2) == 1 {
		sumBlocks(partial, x, 0, nb)
	} else {
		b.parallelFor(nb, 2, func(lo, hi int) { sumBlocks(partial, x, lo, hi) })
	}
	var s float64
	for _, p := range partial {
		s += p
	}
	return s
}

// sumBlocks sets partial[k] to the sum of squares of block k of x, for k
// in [lo, hi).
func sumBlocks(partial []float64, x []float32, lo, hi int) {
	for k := lo; k < hi; k++ {
		partial[k] = sumSquares(x[k*sumBlock : min(len(x), (k+1)*sumBlock)])
	}
}

// sumSquares is Σ x[i]², the vector kernel on the multiple-of-8 prefix and
// four float64 accumulators on the rest.
func sumSquares(x []float32) float64 {
	i, s0 := sumSquaresVec(x)
	var s1, s2, s3 float64
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		a, b, c, d := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}
