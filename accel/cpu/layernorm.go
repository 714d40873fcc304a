package cpu

import "math"

// LayerNormForward: out[N,C] = (inp-mean)·rstd·weight[C] + bias[C] per row,
// eps 1e-5, with mean[N] and rstd[N] saved. Two passes over each row (mean,
// then the variance of the centred values), parallel over rows.
func (b *Backend) LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int) {
	need(N >= 0 && C >= 0 && len(out) >= N*C && len(mean) >= N && len(rstd) >= N && len(inp) >= N*C && len(weight) >= C && len(bias) >= C,
		"cpu: LayerNormForward: slice shorter than its shape")
	if b.chunks(N, rowGrain(C)) == 1 {
		layerNormRows(0, N, out, mean, rstd, inp, weight, bias, C)
		return
	}
	b.parallelFor(N, rowGrain(C), func(lo, hi int) { layerNormRows(lo, hi, out, mean, rstd, inp, weight, bias, C) })
}

// layerNormRows is LayerNormForward for rows [lo, hi).
func layerNormRows(lo, hi int, out, mean, rstd, inp, weight, bias []float32, C int) {
	weight, bias = weight[:C], bias[:C]
	for n := lo; n < hi; n++ {
		x := inp[n*C : n*C+C]
		// mean, then the variance of the centred values
		k, sum, _ := lnStatsVec(x, 0)
		m := (sum + sum4(x[k:])) / float32(C)
		k, _, sq := lnStatsVec(x, m)
		v := (sq + sqdev4(x[k:], m)) / float32(C)
		s := float32(1 / math.Sqrt(float64(v)+1e-5))
		o := out[n*C : n*C+C]
		for i := lnForwardVec(o, x, weight, bias, m, s); i < C; i++ {
			o[i] = (x[i]-m)*s*weight[i] + bias[i]
		}
		mean[n], rstd[n] = m, s
	}
}

// LayerNormBackward accumulates dinp[N,C], dweight[C] and dbias[C]. dinp
// is parallel over rows; dweight and dbias, sums over the rows, are
// parallel over column ranges, each column summed over n in order, so the
// result does not depend on the thread count.
func (b *Backend) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	need(N >= 0 && C >= 0 && len(dinp) >= N*C && len(dweight) >= C && len(dbias) >= C && len(dout) >= N*C && len(inp) >= N*C &&
		len(weight) >= C && len(mean) >= N && len(rstd) >= N, "cpu: LayerNormBackward: slice shorter than its shape")
	if b.chunks(N, rowGrain(C)) == 1 {
		layerNormBackwardRows(0, N, dinp, dout, inp, weight, mean, rstd, C)
	} else {
		b.parallelFor(N, rowGrain(C), func(lo, hi int) { layerNormBackwardRows(lo, hi, dinp, dout, inp, weight, mean, rstd, C) })
	}
	cgrain := max(8, grainRow/max(N, 1))
	if b.chunks(C, cgrain) == 1 {
		layerNormBackwardCols(0, C, dweight, dbias, dout, inp, mean, rstd, N, C)
	} else {
		b.parallelForAligned(C, cgrain, 8, func(lo, hi int) { layerNormBackwardCols(lo, hi, dweight, dbias, dout, inp, mean, rstd, N, C) })
	}
}

// layerNormBackwardRows accumulates dinp for rows [lo, hi).
func layerNormBackwardRows(lo, hi int, dinp, dout, inp, weight, mean, rstd []float32, C int) {
	weight = weight[:C]
	for n := lo; n < hi; n++ {
		d := dout[n*C : n*C+C]
		x := inp[n*C : n*C+C]
		dx := dinp[n*C : n*C+C]
		m, s := mean[n], rstd[n]
		// means of dnorm and of dnorm·norm
		k, a0, b0 := lnBackwardSumsVec(x, d, weight, m, s)
		var a1, b1 float32
		i := k
		for ; i+2 <= C; i += 2 {
			dn0, dn1 := weight[i]*d[i], weight[i+1]*d[i+1]
			a0 += dn0
			a1 += dn1
			b0 += dn0 * ((x[i] - m) * s)
			b1 += dn1 * ((x[i+1] - m) * s)
		}
		for ; i < C; i++ {
			dn := weight[i] * d[i]
			a0 += dn
			b0 += dn * ((x[i] - m) * s)
		}
		dnormMean := (a0 + a1) / float32(C)
		dnormNormMean := (b0 + b1) / float32(C)
		for i := lnBackwardRowVec(dx, x, d, weight, m, s, dnormMean, dnormNormMean); i < C; i++ {
			norm := (x[i] - m) * s
			dx[i] += (weight[i]*d[i] - dnormMean - norm*dnormNormMean) * s
		}
	}
}

// layerNormBackwardCols accumulates dweight and dbias for columns [lo, hi),
// adding the rows in order.
func layerNormBackwardCols(lo, hi int, dweight, dbias, dout, inp, mean, rstd []float32, N, C int) {
	dw, db := dweight[lo:hi], dbias[lo:hi]
	db = db[:len(dw)]
	for n := 0; n < N; n++ {
		d := dout[n*C+lo : n*C+hi]
		x := inp[n*C+lo : n*C+hi]
		m, s := mean[n], rstd[n]
		d, x = d[:len(dw)], x[:len(dw)]
		for i := lnBackwardColsVec(dw, db, x, d, m, s); i < len(dw); i++ {
			dw[i] += (x[i] - m) * s * d[i]
			db[i] += d[i]
		}
	}
}

// sum4 is Σ x[i] with four float32 accumulators.
func sum4(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		q := x[i : i+4 : i+4]
		s0 += q[0]
		s1 += q[1]
		s2 += q[2]
		s3 += q[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sqdev4 is Σ (x[i]-m)² with four float32 accumulators.
func sqdev4(x []float32, m float32) float32 {
	var v0, v1, v2, v3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		q := x[i : i+4 : i+4]
		a, b, c, d := q[0]-m, q[1]-m, q[2]-m, q[3]-m
		v0 += a * a
		v1 += b * b
		v2 += c * c
		v3 += d * d
	}
	for ; i < len(x); i++ {
		a := x[i] - m
		v0 += a * a
	}
	return (v0 + v1) + (v2 + v3)
}
