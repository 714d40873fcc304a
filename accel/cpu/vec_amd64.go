//go:build amd64 && !noasm

package cpu

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether the vector kernels of vec_amd64.s can run.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// geluForwardAVX2 is geluForward on n elements, n a multiple of 8, 8 lanes
// at a time (AVX2 + FMA):
//
//	for i := range n { out[i] = inp[i] / (1 + e^(-2u(inp[i]))) }
//
//go:noescape
func geluForwardAVX2(out, inp *float32, n int)

// geluBackwardAVX2 is geluBackward on n elements, n a multiple of 8:
//
//	for i := range n { dinp[i] += gelu'(inp[i])·dout[i] }
//
//go:noescape
func geluBackwardAVX2(dinp, inp, dout *float32, n int)

// expShiftAVX2 sets dst[i] = e^(src[i]-shift) for i < n, n a multiple of
// 8, and returns their sum (8 lane sums, added in a fixed order):
//
//	for i := range n { dst[i] = expf(src[i] - shift); sum += dst[i] }
//
//go:noescape
func expShiftAVX2(dst, src *float32, n int, shift float32) float32

// geluForwardVec runs geluForwardAVX2 on the longest multiple-of-8 prefix
// of inp and returns its length (0 without AVX2).
func geluForwardVec(out, inp []float32) int {
	n := len(inp) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = out[n-1]
	geluForwardAVX2(&out[0], &inp[0], n)
	return n
}

// geluBackwardVec runs geluBackwardAVX2 on the longest multiple-of-8
// prefix of inp and returns its length (0 without AVX2).
func geluBackwardVec(dinp, inp, dout []float32) int {
	n := len(inp) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = dinp[n-1], dout[n-1]
	geluBackwardAVX2(&dinp[0], &inp[0], &dout[0], n)
	return n
}

// expShiftVec runs expShiftAVX2 on the longest multiple-of-8 prefix of src
// and returns its length and sum (0, 0 without AVX2).
func expShiftVec(dst, src []float32, shift float32) (int, float32) {
	n := len(src) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	_ = dst[n-1]
	return n, expShiftAVX2(&dst[0], &src[0], n, shift)
}

// maxAVX2 returns the largest of x[0:n], n a positive multiple of 8 (x
// must hold no NaN):
//
//	m := x[0]; for i := range n { m = max(m, x[i]) }
//
//go:noescape
func maxAVX2(x *float32, n int) float32

// scaleAVX2 multiplies x[0:n] by s, n a multiple of 8:
//
//	for i := range n { x[i] *= s }
//
//go:noescape
func scaleAVX2(x *float32, n int, s float32)

// dotAVX2 returns Σ x[i]·y[i] over n elements, n a multiple of 8 (8 lane
// sums with FMA, added in a fixed order):
//
//	for i := range n { s += x[i] * y[i] }
//
//go:noescape
func dotAVX2(x, y *float32, n int) float32

// softmaxBackwardAVX2 sets dp[i] = a[i]·(da[i] - dot) for i < n, n a
// multiple of 8:
//
//	for i := range n { dp[i] = a[i] * (da[i] - dot) }
//
//go:noescape
func softmaxBackwardAVX2(dp, a, da *float32, n int, dot float32)

// maxVec returns the length of the longest multiple-of-8 prefix of x and
// its maximum (0, 0 without AVX2 or for fewer than 8 elements).
func maxVec(x []float32) (int, float32) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	return n, maxAVX2(&x[0], n)
}

// scaleVec scales the longest multiple-of-8 prefix of x by s and returns
// its length (0 without AVX2).
func scaleVec(x []float32, s float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	scaleAVX2(&x[0], n, s)
	return n
}

// dotVec returns the length of the longest multiple-of-8 prefix of x and
// the dot product of it with y (0, 0 without AVX2).
func dotVec(x, y []float32) (int, float32) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	_ = y[n-1]
	return n, dotAVX2(&x[0], &y[0], n)
}

// softmaxBackwardVec runs softmaxBackwardAVX2 on the longest
// multiple-of-8 prefix of a and returns its length (0 without AVX2).
func softmaxBackwardVec(dp, a, da []float32, dot float32) int {
	n := len(a) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = dp[n-1], da[n-1]
	softmaxBackwardAVX2(&dp[0], &a[0], &da[0], n, dot)
	return n
}

// spmmRow8AVX2 adds to o[0:8] the sum over a CSR row segment's nnz
// entries of val[p] times 8 floats of row idx[p] of dt (row stride n), the
// even and odd entries summed apart:
//
//	for c := range 8 { o[c] += Σ_p val[p] * dt[int(idx[p])*n+c] }
//
//go:noescape
func spmmRow8AVX2(o *float32, idx *int32, val *float32, nnz int, dt *float32, n int)

// spmmRow16AVX2 is spmmRow8AVX2 for 16 columns, o[0:16].
//
//go:noescape
func spmmRow16AVX2(o *float32, idx *int32, val *float32, nnz int, dt *float32, n int)

// spmmRowVec adds Σ_p val[p]·dt[idx[p]*n+c] to o[c] for the columns c below
// n rounded down to a multiple of 8 and returns that count (0 without
// AVX2). dt is [d,n] and every idx[p] < d.
func spmmRowVec(o []float32, idx []int32, val []float32, dt []float32, n int) int {
	n8 := n &^ 7
	if !hasAVX2 || n8 == 0 {
		return 0
	}
	if len(idx) == 0 {
		return n8
	}
	_, _ = o[n8-1], val[len(idx)-1]
	c := 0
	for ; c+16 <= n8; c += 16 {
		spmmRow16AVX2(&o[c], &idx[0], &val[0], len(idx), &dt[c], n)
	}
	if c < n8 {
		spmmRow8AVX2(&o[c], &idx[0], &val[0], len(idx), &dt[c], n)
	}
	return n8
}

// adamwAVX2 is the AdamW update of n elements, n a multiple of 8, with
// the bias corrections as reciprocals ic1 = 1/(1-β1^t), ic2 = 1/(1-β2^t):
//
//	for i := range n {
//		m[i] = β1·m[i] + (1-β1)·gr[i]
//		v[i] = β2·v[i] + (1-β2)·gr[i]²
//		p[i] -= lr·(m[i]·ic1/(sqrt(v[i]·ic2)+eps) + wd·p[i])
//	}
//
//go:noescape
func adamwAVX2(p, gr, m, v *float32, n int, lr, beta1, beta2, eps, wd, ic1, ic2 float32)

// vec runs adamwAVX2 on the longest multiple-of-8 prefix of p and
// returns its length (0 without AVX2).
func (h adamw) vec(p, g, m, v []float32) int {
	n := len(p) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = g[n-1], m[n-1], v[n-1]
	adamwAVX2(&p[0], &g[0], &m[0], &v[0], n, h.lr, h.beta1, h.beta2, h.eps, h.wd, 1/h.c1, 1/h.c2)
	return n
}

// addAVX2 adds src to dst over n elements, n a multiple of 8:
//
//	for i := range n { dst[i] += src[i] }
//
//go:noescape
func addAVX2(dst, src *float32, n int)

// addVec adds the longest multiple-of-8 prefix of src to dst and returns
// its length (0 without AVX2).
func addVec(dst, src []float32) int {
	n := len(src) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = dst[n-1]
	addAVX2(&dst[0], &src[0], n)
	return n
}

// lnStatsAVX2 returns Σ x[i] and Σ (x[i]-m)² over n elements, n a
// multiple of 8 (8 lane sums each, added in a fixed order).
//
//go:noescape
func lnStatsAVX2(x *float32, n int, m float32) (sum, sqdev float32)

// lnForwardAVX2 normalizes n elements of a row, n a multiple of 8:
//
//	for i := range n { out[i] = (x[i]-m)*s*w[i] + b[i] }
//
//go:noescape
func lnForwardAVX2(out, x, w, b *float32, n int, m, s float32)

// lnBackwardSumsAVX2 returns the two reductions of a layernorm backward
// row over n elements, n a multiple of 8:
//
//	for i := range n { dn += w[i]*d[i]; dnNorm += w[i]*d[i]*(x[i]-m)*s }
//
//go:noescape
func lnBackwardSumsAVX2(x, d, w *float32, n int, m, s float32) (dn, dnNorm float32)

// lnBackwardRowAVX2 accumulates a layernorm backward row's dinp over n
// elements, n a multiple of 8, from the means a of w·d and b of w·d·norm:
//
//	for i := range n { dx[i] += (w[i]*d[i] - a - (x[i]-m)*s*b) * s }
//
//go:noescape
func lnBackwardRowAVX2(dx, x, d, w *float32, n int, m, s, a, b float32)

// lnBackwardColsAVX2 accumulates one row's part of dweight and dbias over
// n elements, n a multiple of 8:
//
//	for i := range n { dw[i] += (x[i]-m)*s*d[i]; db[i] += d[i] }
//
//go:noescape
func lnBackwardColsAVX2(dw, db, x, d *float32, n int, m, s float32)

// The ...Vec wrappers run the kernels above on the longest multiple-of-8
// prefix and return its length (0 without AVX2) and the sums.

func lnStatsVec(x []float32, m float32) (int, float32, float32) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0, 0
	}
	sum, sq := lnStatsAVX2(&x[0], n, m)
	return n, sum, sq
}

func lnForwardVec(out, x, w, b []float32, m, s float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = out[n-1], w[n-1], b[n-1]
	lnForwardAVX2(&out[0], &x[0], &w[0], &b[0], n, m, s)
	return n
}

func lnBackwardSumsVec(x, d, w []float32, m, s float32) (int, float32, float32) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0, 0
	}
	_, _ = d[n-1], w[n-1]
	a, b := lnBackwardSumsAVX2(&x[0], &d[0], &w[0], n, m, s)
	return n, a, b
}

func lnBackwardRowVec(dx, x, d, w []float32, m, s, a, b float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = dx[n-1], d[n-1], w[n-1]
	lnBackwardRowAVX2(&dx[0], &x[0], &d[0], &w[0], n, m, s, a, b)
	return n
}

func lnBackwardColsVec(dw, db, x, d []float32, m, s float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = dw[n-1], db[n-1], d[n-1]
	lnBackwardColsAVX2(&dw[0], &db[0], &x[0], &d[0], n, m, s)
	return n
}

// sumSquaresAVX2 returns Σ x[i]² in float64 over n elements, n a multiple
// of 8 (8 lane sums, added in a fixed order):
//
//	for i := range n { s += float64(x[i]) * float64(x[i]) }
//
//go:noescape
func sumSquaresAVX2(x *float32, n int) float64

// sumSquaresVec returns the length of the longest multiple-of-8 prefix of
// x and its sum of squares (0, 0 without AVX2).
func sumSquaresVec(x []float32) (int, float64) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	return n, sumSquaresAVX2(&x[0], n)
}

// transposeAVX2 transposes nb 8×8 blocks lying side by side in src (rows
// lds apart) into blocks stacked in dst (rows ldd apart):
//
//	for b := range nb { for r := range 8 { for c := range 8 {
//		dst[(b*8+r)*ldd+c] = src[c*lds+b*8+r]
//	} } }
//
//go:noescape
func transposeAVX2(dst *float32, ldd int, src *float32, lds int, nb int)

// transposeVec sets dt[j,c] = dense[c,j] ([d,n] from [n,d]) for j in
// [lo, jv) and c in [0, cv), jv-lo and cv the largest multiples of 8, in
// tiles of 256 rows of dt, and returns jv and cv (lo and 0 without AVX2).
func transposeVec(dt, dense []float32, n, d, lo, hi int) (jv, cv int) {
	jv, cv = lo+(hi-lo)&^7, n&^7
	if !hasAVX2 || jv == lo || cv == 0 {
		return lo, 0
	}
	_, _ = dt[(jv-1)*n+cv-1], dense[(cv-1)*d+jv-1]
	for j0 := lo; j0 < jv; j0 += 256 {
		nb := (min(jv, j0+256) - j0) / 8
		for c0 := 0; c0 < cv; c0 += 8 {
			transposeAVX2(&dt[j0*n+c0], n, &dense[c0*d+j0], d, nb)
		}
	}
	return jv, cv
}
