package cpu

import (
	"math"

	"github.com/domainflow/domainflow/accel/internal/gemm"
)

// attBlock is the row block of the causal attention products: a block of
// rows [r0, r1) only needs keys and values [0, r1), so cutting T into
// blocks skips most of the masked upper triangle (about half of it for
// T >> attBlock).
const attBlock = 128

// attention holds the shape of one attention call. A unit of work is one
// (batch, head) pair u = b·NH + h; within a unit, Q, K and V are [T,hs]
// matrices with row stride 3C inside inp (and dinp), out and dout [T,hs]
// with row stride C, and the unit's preatt, att, dpreatt and datt [T,T].
type attention struct {
	T, C, NH, hs int
	scale        float32
	gt           int // threads per gemm call
}

func newAttention(threads, B, T, C, NH int) attention {
	need(B >= 0 && T >= 0 && NH > 0 && C >= NH && C%NH == 0, "cpu: Attention: C must be a positive multiple of NH")
	hs := C / NH
	return attention{T: T, C: C, NH: NH, hs: hs,
		scale: float32(1 / math.Sqrt(float64(hs))),
		gt:    max(1, threads/max(B*NH, 1))} // the units are few: share the threads in gemm
}

// offsets returns where unit u's query (key at +C, value at +2C), output
// and [T,T] matrices start.
func (a attention) offsets(u int) (q, o, p int) {
	bb, h := u/a.NH, u%a.NH
	return bb*a.T*3*a.C + h*a.hs, bb*a.T*a.C + h*a.hs, u * a.T * a.T
}

// AttentionForward is causal multi-head self-attention; see
// accel.Backend. The (batch, head) units spread over the threads. Per unit
// and per block of attBlock query rows: preatt = scale·Q·Kᵀ by gemm, a
// fused causal softmax row by row (max subtracted, float32 exp, zeros
// above the diagonal in preatt and att), then out = att·V by gemm.
func (b *Backend) AttentionForward(out, preatt, att, inp []float32, B, T, C, NH int) {
	a := newAttention(b.threads, B, T, C, NH)
	need(len(out) >= B*T*C && len(preatt) >= B*NH*T*T && len(att) >= B*NH*T*T && len(inp) >= B*T*3*C,
		"cpu: AttentionForward: slice shorter than its shape")
	units := B * NH
	if b.chunks(units, 1) == 1 {
		a.forward(0, units, out, preatt, att, inp)
		return
	}
	b.parallelFor(units, 1, func(lo, hi int) { a.forward(lo, hi, out, preatt, att, inp) })
}

// forward runs AttentionForward for units [lo, hi).
func (a attention) forward(lo, hi int, out, preatt, att, inp []float32) {
	T, C, C3, hs := a.T, a.C, 3*a.C, a.hs
	for u := lo; u < hi; u++ {
		q, o, p := a.offsets(u)
		k, v := q+C, q+2*C
		for r0 := 0; r0 < T; r0 += attBlock {
			r1 := min(T, r0+attBlock)
			// preatt[r0:r1, 0:r1] = scale·Q[r0:r1]·K[0:r1]ᵀ
			gemm.Sgemm(a.gt, false, true, r1-r0, r1, hs, a.scale, inp[q+r0*C3:], C3, inp[k:], C3, 0, preatt[p+r0*T:], T)
			for t := r0; t < r1; t++ {
				causalSoftmax(att[p+t*T:p+t*T+T], preatt[p+t*T:p+t*T+T], t)
			}
			// out[r0:r1] = att[r0:r1, 0:r1]·V[0:r1]
			gemm.Sgemm(a.gt, false, false, r1-r0, hs, r1, 1, att[p+r0*T:], T, inp[v:], C3, 0, out[o+r0*C:], C)
		}
	}
}

// causalSoftmax sets att[0..t] to the softmax of pre[0..t] and zeroes
// att[t+1:] and pre[t+1:].
func causalSoftmax(att, pre []float32, t int) {
	row := pre[:t+1]
	att = att[:len(pre)]
	k, maxv := maxVec(row)
	if k == 0 {
		maxv = row[0]
	}
	for _, x := range row[k:] {
		if x > maxv { // not the builtin max: its NaN and ±0 handling costs 3x
			maxv = x
		}
	}
	n, sum := expShiftVec(att, row, maxv)
	for i := n; i < len(row); i++ {
		e := expf(row[i] - maxv)
		att[i] = e
		sum += e
	}
	inv := 1 / sum
	w := att[:t+1]
	for i := scaleVec(w, inv); i < len(w); i++ {
		w[i] *= inv
	}
	clear(att[t+1:])
	clear(pre[t+1:])
}

// AttentionBackward accumulates dinp[B,T,3C]; see accel.Backend. Per
// (batch, head) unit: datt = dout·Vᵀ by gemm (row blocks, causal), the
// softmax backward dpreatt = att·(datt - Σ att·datt) row by row, then
// dQ += scale·dpreatt·K, dK += scale·dpreattᵀ·Q and dV += attᵀ·dout by gemm
// over the lower-triangular blocks. Only entries t2 <= t of att are read.
// On return dpreatt holds the gradient of preatt (0 above the diagonal);
// datt holds att with its upper triangle zeroed (scratch for dV), not the
// gradient of att.
func (b *Backend) AttentionBackward(dinp, dpreatt, datt, dout, inp, att []float32, B, T, C, NH int) {
	a := newAttention(b.threads, B, T, C, NH)
	need(len(dinp) >= B*T*3*C && len(dpreatt) >= B*NH*T*T && len(datt) >= B*NH*T*T && len(dout) >= B*T*C &&
		len(inp) >= B*T*3*C && len(att) >= B*NH*T*T, "cpu: AttentionBackward: slice shorter than its shape")
	units := B * NH
	if b.chunks(units, 1) == 1 {
		a.backward(0, units, dinp, dpreatt, datt, dout, inp, att)
		return
	}
	b.parallelFor(units, 1, func(lo, hi int) { a.backward(lo, hi, dinp, dpreatt, datt, dout, inp, att) })
}

// backward runs AttentionBackward for units [lo, hi).
func (a attention) backward(lo, hi int, dinp, dpreatt, datt, dout, inp, att []float32) {
	T, C, C3, hs := a.T, a.C, 3*a.C, a.hs
	for u := lo; u < hi; u++ {
		q, o, p := a.offsets(u)
		k, v := q+C, q+2*C
		// datt, then dpreatt row by row; datt's row becomes the masked att
		for r0 := 0; r0 < T; r0 += attBlock {
			r1 := min(T, r0+attBlock)
			// datt[r0:r1, 0:r1] = dout[r0:r1]·V[0:r1]ᵀ
			gemm.Sgemm(a.gt, false, true, r1-r0, r1, hs, 1, dout[o+r0*C:], C, inp[v:], C3, 0, datt[p+r0*T:], T)
			for t := r0; t < r1; t++ {
				softmaxBackward(dpreatt[p+t*T:p+t*T+T], datt[p+t*T:p+t*T+T], att[p+t*T:p+t*T+T], t)
			}
		}
		for r0 := 0; r0 < T; r0 += attBlock {
			r1 := min(T, r0+attBlock)
			// dQ[r0:r1] += scale·dpreatt[r0:r1, 0:r1]·K[0:r1]
			gemm.Sgemm(a.gt, false, false, r1-r0, hs, r1, a.scale, dpreatt[p+r0*T:], T, inp[k:], C3, 1, dinp[q+r0*C3:], C3)
			// dK[r0:r1] += scale·dpreatt[r0:T, r0:r1]ᵀ·Q[r0:T]
			gemm.Sgemm(a.gt, true, false, r1-r0, hs, T-r0, a.scale, dpreatt[p+r0*T+r0:], T, inp[q+r0*C3:], C3, 1, dinp[k+r0*C3:], C3)
			// dV[r0:r1] += att[r0:T, r0:r1]ᵀ·dout[r0:T]
			gemm.Sgemm(a.gt, true, false, r1-r0, hs, T-r0, 1, datt[p+r0*T+r0:], T, dout[o+r0*C:], C, 1, dinp[v+r0*C3:], C3)
		}
	}
}

// softmaxBackward sets dpre[t2] = att[t2]·(datt[t2] - Σ_{t3<=t} att·datt)
// for t2 <= t and 0 above, then overwrites datt with att[0..t] and zeros.
func softmaxBackward(dpre, datt, att []float32, t int) {
	w, dw := att[:t+1], datt[:t+1]
	k, dot := dotVec(w, dw)
	for i := k; i < len(w); i++ {
		dot += w[i] * dw[i]
	}
	dp := dpre[:t+1]
	for i := softmaxBackwardVec(dp, w, dw, dot); i < len(w); i++ {
		dp[i] = w[i] * (dw[i] - dot)
	}
	clear(dpre[t+1:])
	copy(dw, w)
	clear(datt[t+1:])
}
