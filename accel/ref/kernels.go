package ref

// The kernels of this file are generic over the float type so that tests can
// run the very same loops in float64 (the finite-difference and conformance
// oracle) and in float32 (the "ref" backend). Dimension legend, as in llm.c:
// B batch, T time (sequence length), C channels, NH heads, hs = C/NH head
// size, V vocabulary, N rows (usually B*T), OC output channels.

import (
	"math"
	"slices"
)

// Float is the element type of the reference kernels.
type Float interface {
	~float32 | ~float64
}

// ----------------------------------------------------------------------------
// matrix multiply

// Sgemm computes c[m,n] = alpha·op(a)·op(b) + beta·c, row-major; op(a) is
// [m,k] (stored [m,lda], or [k,lda] when transA), op(b) is [k,n] (stored
// [k,ldb], or [n,ldb] when transB), c is stored [m,ldc]. beta == 0 means c
// is not read.
func Sgemm[F Float](transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < k; p++ {
				var av, bv F
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// SgemmStridedBatched runs batch Sgemm calls; matrix i of a, b and c starts
// at i*strideA, i*strideB and i*strideC.
func SgemmStridedBatched[F Float](transA, transB bool, m, n, k int, alpha F, a []F, lda, strideA int, b []F, ldb, strideB int, beta F, c []F, ldc, strideC int, batch int) {
	need(batch >= 0, "ref: SgemmStridedBatched: negative batch")
	for i := 0; i < batch; i++ {
		// an empty matrix may start past the end of its slice
		Sgemm(transA, transB, m, n, k, alpha, a[min(i*strideA, len(a)):], lda, b[min(i*strideB, len(b)):], ldb, beta, c[min(i*strideC, len(c)):], ldc)
	}
}

// MatmulForward: out[N,OC] = inp[N,C] · weight[OC,C]ᵀ + bias[OC]; bias may
// be nil.
func MatmulForward[F Float](out, inp, weight, bias []F, N, C, OC int) {
	need(len(out) >= N*OC && len(inp) >= N*C && len(weight) >= OC*C && (bias == nil || len(bias) >= OC), "ref: MatmulForward: slice shorter than its shape")
	for n := 0; n < N; n++ {
		for o := 0; o < OC; o++ {
			var val F
			if bias != nil {
				val = bias[o]
			}
			for i := 0; i < C; i++ {
				val += inp[n*C+i] * weight[o*C+i]
			}
			out[n*OC+o] = val
		}
	}
}

// MatmulBackward accumulates dinp[N,C] += dout[N,OC]·weight[OC,C],
// dweight[OC,C] += dout[N,OC]ᵀ·inp[N,C] and dbias[OC] += Σ_n dout[n,:];
// dbias may be nil.
func MatmulBackward[F Float](dinp, dweight, dbias, dout, inp, weight []F, N, C, OC int) {
	need(len(dinp) >= N*C && len(dweight) >= OC*C && (dbias == nil || len(dbias) >= OC) && len(dout) >= N*OC && len(inp) >= N*C && len(weight) >= OC*C, "ref: MatmulBackward: slice shorter than its shape")
	// dinp: one row of dout against all of weight
	for n := 0; n < N; n++ {
		for o := 0; o < OC; o++ {
			d := dout[n*OC+o]
			for i := 0; i < C; i++ {
				dinp[n*C+i] += weight[o*C+i] * d
			}
		}
	}
	// dweight and dbias: sum over the rows
	for o := 0; o < OC; o++ {
		for n := 0; n < N; n++ {
			d := dout[n*OC+o]
			if dbias != nil {
				dbias[o] += d
			}
			for i := 0; i < C; i++ {
				dweight[o*C+i] += inp[n*C+i] * d
			}
		}
	}
}

// ----------------------------------------------------------------------------
// layernorm

// LayerNormEps is the epsilon added to the variance.
const LayerNormEps = 1e-5

// LayerNormForward: out[N,C] = (inp-mean)·rstd·weight[C] + bias[C] per row;
// mean[N] and rstd[N] = 1/sqrt(var+eps) are saved for the backward.
func LayerNormForward[F Float](out, mean, rstd, inp, weight, bias []F, N, C int) {
	need(len(out) >= N*C && len(mean) >= N && len(rstd) >= N && len(inp) >= N*C && len(weight) >= C && len(bias) >= C, "ref: LayerNormForward: slice shorter than its shape")
	for n := 0; n < N; n++ {
		x := inp[n*C : n*C+C]
		var m F
		for i := 0; i < C; i++ {
			m += x[i]
		}
		m = m / F(C)
		var v F
		for i := 0; i < C; i++ {
			xshift := x[i] - m
			v += xshift * xshift
		}
		v = v / F(C)
		s := F(1 / math.Sqrt(float64(v+LayerNormEps)))
		o := out[n*C : n*C+C]
		for i := 0; i < C; i++ {
			o[i] = s*(x[i]-m)*weight[i] + bias[i]
		}
		mean[n] = m
		rstd[n] = s
	}
}

// LayerNormBackward accumulates dinp[N,C], dweight[C] and dbias[C] from
// dout[N,C] and the forward's inp[N,C], weight[C], mean[N], rstd[N].
func LayerNormBackward[F Float](dinp, dweight, dbias, dout, inp, weight, mean, rstd []F, N, C int) {
	need(len(dinp) >= N*C && len(dweight) >= C && len(dbias) >= C && len(dout) >= N*C && len(inp) >= N*C && len(weight) >= C && len(mean) >= N && len(rstd) >= N, "ref: LayerNormBackward: slice shorter than its shape")
	for n := 0; n < N; n++ {
		d := dout[n*C : n*C+C]
		x := inp[n*C : n*C+C]
		dx := dinp[n*C : n*C+C]
		m, s := mean[n], rstd[n]
		// two reductions: mean of dnorm and of dnorm·norm
		var dnormMean, dnormNormMean F
		for i := 0; i < C; i++ {
			norm := (x[i] - m) * s
			dnorm := weight[i] * d[i]
			dnormMean += dnorm
			dnormNormMean += dnorm * norm
		}
		dnormMean /= F(C)
		dnormNormMean /= F(C)
		for i := 0; i < C; i++ {
			norm := (x[i] - m) * s
			dnorm := weight[i] * d[i]
			dbias[i] += d[i]
			dweight[i] += norm * d[i]
			dx[i] += (dnorm - dnormMean - norm*dnormNormMean) * s
		}
	}
}

// ----------------------------------------------------------------------------
// GELU (tanh approximation, as GPT-2)

// GELUScale is sqrt(2/π).
const GELUScale = 0.7978845608028654

// GELUForward: out[i] = 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
func GELUForward[F Float](out, inp []F) {
	need(len(out) >= len(inp), "ref: GELUForward: out shorter than inp")
	out = out[:len(inp)]
	for i, x := range inp {
		cube := 0.044715 * x * x * x
		out[i] = 0.5 * x * (1 + F(math.Tanh(float64(GELUScale*(x+cube)))))
	}
}

// GELUBackward accumulates dinp[i] += gelu'(inp[i])·dout[i].
func GELUBackward[F Float](dinp, inp, dout []F) {
	need(len(dinp) >= len(inp) && len(dout) >= len(inp), "ref: GELUBackward: slice shorter than inp")
	dinp = dinp[:len(inp)]
	dout = dout[:len(inp)]
	for i, x := range inp {
		cube := 0.044715 * x * x * x
		th := F(math.Tanh(float64(GELUScale * (x + cube))))
		sech2 := 1 - th*th
		grad := 0.5*(1+th) + x*0.5*sech2*GELUScale*(1+3*0.044715*x*x)
		dinp[i] += grad * dout[i]
	}
}

// ----------------------------------------------------------------------------
// residual

// ResidualForward: out[i] = a[i] + b[i].
func ResidualForward[F Float](out, a, b []F) {
	need(len(out) >= len(a) && len(b) >= len(a), "ref: ResidualForward: slice shorter than a")
	out = out[:len(a)]
	b = b[:len(a)]
	for i := range a {
		out[i] = a[i] + b[i]
	}
}

// Accumulate: dst[i] += src[i].
func Accumulate[F Float](dst, src []F) {
	need(len(dst) >= len(src), "ref: Accumulate: dst shorter than src")
	dst = dst[:len(src)]
	for i := range src {
		dst[i] += src[i]
	}
}

// Scale: x[i] *= s.
func Scale[F Float](x []F, s F) {
	for i := range x {
		x[i] *= s
	}
}

// ----------------------------------------------------------------------------
// attention

// AttentionForward is causal multi-head self-attention as llm.c's
// attention_forward. inp[B,T,3C] holds q, k, v per position; preatt[B,NH,T,T]
// gets the scaled scores q·k/sqrt(hs) and att[B,NH,T,T] their softmax over
// t2 <= t (entries t2 > t are set to 0 in both); out[B,T,C] = Σ_t2 att·v.
func AttentionForward[F Float](out, preatt, att, inp []F, B, T, C, NH int) {
	need(len(out) >= B*T*C && len(preatt) >= B*NH*T*T && len(att) >= B*NH*T*T && len(inp) >= B*T*3*C, "ref: AttentionForward: slice shorter than its shape")
	C3 := 3 * C
	hs := C / NH
	scale := F(1 / math.Sqrt(float64(hs)))
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for h := 0; h < NH; h++ {
				q := inp[b*T*C3+t*C3+h*hs:]
				pre := preatt[b*NH*T*T+h*T*T+t*T : b*NH*T*T+h*T*T+t*T+T]
				at := att[b*NH*T*T+h*T*T+t*T : b*NH*T*T+h*T*T+t*T+T]

				// pass 1: q·k and the max
				maxval := F(math.Inf(-1))
				for t2 := 0; t2 <= t; t2++ {
					k := inp[b*T*C3+t2*C3+h*hs+C:]
					var val F
					for i := 0; i < hs; i++ {
						val += q[i] * k[i]
					}
					val *= scale
					maxval = max(maxval, val)
					pre[t2] = val
				}
				// pass 2: exp and its sum
				var expsum F
				for t2 := 0; t2 <= t; t2++ {
					e := F(math.Exp(float64(pre[t2] - maxval)))
					expsum += e
					at[t2] = e
				}
				// pass 3: normalize; the causal mask is zero
				for t2 := 0; t2 < T; t2++ {
					if t2 <= t {
						at[t2] /= expsum
					} else {
						at[t2] = 0
						pre[t2] = 0
					}
				}
				// pass 4: weighted sum of the values
				o := out[b*T*C+t*C+h*hs : b*T*C+t*C+h*hs+hs]
				for i := range o {
					o[i] = 0
				}
				for t2 := 0; t2 <= t; t2++ {
					v := inp[b*T*C3+t2*C3+h*hs+2*C:]
					for i := 0; i < hs; i++ {
						o[i] += at[t2] * v[i]
					}
				}
			}
		}
	}
}

// AttentionBackward accumulates dinp[B,T,3C] from dout[B,T,C] and the
// forward's inp[B,T,3C] and att[B,NH,T,T] (only entries t2 <= t are read).
// dpreatt and datt [B,NH,T,T] are scratch: they are overwritten with the
// gradients of preatt and att (zero where t2 > t).
func AttentionBackward[F Float](dinp, dpreatt, datt, dout, inp, att []F, B, T, C, NH int) {
	need(len(dinp) >= B*T*3*C && len(dpreatt) >= B*NH*T*T && len(datt) >= B*NH*T*T && len(dout) >= B*T*C && len(inp) >= B*T*3*C && len(att) >= B*NH*T*T, "ref: AttentionBackward: slice shorter than its shape")
	C3 := 3 * C
	hs := C / NH
	scale := F(1 / math.Sqrt(float64(hs)))
	clear(dpreatt[:B*NH*T*T])
	clear(datt[:B*NH*T*T])
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for h := 0; h < NH; h++ {
				row := b*NH*T*T + h*T*T + t*T
				at := att[row : row+T]
				dat := datt[row : row+T]
				dpre := dpreatt[row : row+T]
				q := inp[b*T*C3+t*C3+h*hs:]
				dq := dinp[b*T*C3+t*C3+h*hs:]
				d := dout[b*T*C+t*C+h*hs:]

				// backward of pass 4: out = Σ att·v
				for t2 := 0; t2 <= t; t2++ {
					v := inp[b*T*C3+t2*C3+h*hs+2*C:]
					dv := dinp[b*T*C3+t2*C3+h*hs+2*C:]
					for i := 0; i < hs; i++ {
						dat[t2] += v[i] * d[i]
						dv[i] += at[t2] * d[i]
					}
				}
				// backward of passes 2 and 3: the softmax
				for t2 := 0; t2 <= t; t2++ {
					for t3 := 0; t3 <= t; t3++ {
						var indicator F
						if t2 == t3 {
							indicator = 1
						}
						dpre[t3] += at[t2] * (indicator - at[t3]) * dat[t2]
					}
				}
				// backward of pass 1: preatt = scale·q·k
				for t2 := 0; t2 <= t; t2++ {
					k := inp[b*T*C3+t2*C3+h*hs+C:]
					dk := dinp[b*T*C3+t2*C3+h*hs+C:]
					for i := 0; i < hs; i++ {
						dq[i] += k[i] * dpre[t2] * scale
						dk[i] += q[i] * dpre[t2] * scale
					}
				}
			}
		}
	}
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy

// SoftmaxCrossEntropyForward: probs[N,V] = softmax(logits[N,V]) per row
// (max subtracted) and losses[N] = -log probs[n, targets[n]].
func SoftmaxCrossEntropyForward[F Float](losses, probs, logits []F, targets []int32, N, V int) {
	need(len(losses) >= N && len(probs) >= N*V && len(logits) >= N*V && len(targets) >= N, "ref: SoftmaxCrossEntropyForward: slice shorter than its shape")
	for n := 0; n < N; n++ {
		l := logits[n*V : n*V+V]
		p := probs[n*V : n*V+V]
		maxval := F(math.Inf(-1))
		for i := 0; i < V; i++ {
			maxval = max(maxval, l[i])
		}
		var sum F
		for i := 0; i < V; i++ {
			p[i] = F(math.Exp(float64(l[i] - maxval)))
			sum += p[i]
		}
		for i := 0; i < V; i++ {
			p[i] /= sum
		}
		losses[n] = -F(math.Log(float64(p[targets[n]])))
	}
}

// SoftmaxCrossEntropyBackward accumulates dlogits[N,V] +=
// dlosses[n]·(probs[n,:] - onehot(targets[n])).
func SoftmaxCrossEntropyBackward[F Float](dlogits, probs []F, targets []int32, dlosses []F, N, V int) {
	need(len(dlogits) >= N*V && len(probs) >= N*V && len(targets) >= N && len(dlosses) >= N, "ref: SoftmaxCrossEntropyBackward: slice shorter than its shape")
	for n := 0; n < N; n++ {
		dl := dlogits[n*V : n*V+V]
		p := probs[n*V : n*V+V]
		ix := int(targets[n])
		for i := 0; i < V; i++ {
			var indicator F
			if i == ix {
				indicator = 1
			}
			dl[i] += (p[i] - indicator) * dlosses[n]
		}
	}
}

// ----------------------------------------------------------------------------
// optimizer

// AdamW updates params in place with the 1-based step t:
// m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g², m̂ = m/(1-β1^t),
// v̂ = v/(1-β2^t), p -= lr·(m̂/(sqrt(v̂)+eps) + wd·p).
func AdamW[F Float](params, grads, m, v []F, t int, lr, beta1, beta2, eps, weightDecay F) {
	need(len(grads) >= len(params) && len(m) >= len(params) && len(v) >= len(params), "ref: AdamW: slice shorter than params")
	grads = grads[:len(params)]
	m = m[:len(params)]
	v = v[:len(params)]
	c1 := F(1 - math.Pow(float64(beta1), float64(t)))
	c2 := F(1 - math.Pow(float64(beta2), float64(t)))
	for i := range params {
		g := grads[i]
		m[i] = beta1*m[i] + (1-beta1)*g
		v[i] = beta2*v[i] + (1-beta2)*g*g
		mhat := m[i] / c1
		vhat := v[i] / c2
		params[i] -= lr * (mhat/(F(math.Sqrt(float64(vhat)))+eps) + weightDecay*params[i])
	}
}

// SumSquares returns Σ x[i]², accumulated in float64.
func SumSquares[F Float](x []F) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// ----------------------------------------------------------------------------
// clustering

// SparseDenseT: out[rows,n] = S[rows,d] · D[n,d]ᵀ, S in CSR form (row r's
// entries are indices/values[indptr[r]:indptr[r+1]], column indices < d).
func SparseDenseT[F Float](out []F, indptr []int64, indices []int32, values []F, rows int, dense []F, n, d int) {
	need(len(out) >= rows*n && len(indptr) >= rows+1 && len(dense) >= n*d, "ref: SparseDenseT: slice shorter than its shape")
	need(rows == 0 || (len(indices) >= int(indptr[rows]) && len(values) >= int(indptr[rows])), "ref: SparseDenseT: indices or values shorter than indptr says")
	for r := 0; r < rows; r++ {
		for j := 0; j < n; j++ {
			var s F
			for p := indptr[r]; p < indptr[r+1]; p++ {
				s += values[p] * dense[j*d+int(indices[p])]
			}
			out[r*n+j] = s
		}
	}
}

// SparseDense: out[rows,n] = S[rows,d] · DT[d,n], S in CSR form as for
// SparseDenseT.
func SparseDense[F Float](out []F, indptr []int64, indices []int32, values []F, rows int, denseT []F, d, n int) {
	need(len(out) >= rows*n && len(indptr) >= rows+1 && len(denseT) >= n*d, "ref: SparseDense: slice shorter than its shape")
	need(rows == 0 || (len(indices) >= int(indptr[rows]) && len(values) >= int(indptr[rows])), "ref: SparseDense: indices or values shorter than indptr says")
	for r := 0; r < rows; r++ {
		for j := 0; j < n; j++ {
			var s F
			for p := indptr[r]; p < indptr[r+1]; p++ {
				s += values[p] * denseT[int(indices[p])*n+j]
			}
			out[r*n+j] = s
		}
	}
}

// DenseDenseT: out[m,n] = X[m,d] · Y[n,d]ᵀ.
func DenseDenseT[F Float](out, x, y []F, m, n, d int) {
	need(len(out) >= m*n && len(x) >= m*d && len(y) >= n*d, "ref: DenseDenseT: slice shorter than its shape")
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < d; p++ {
				s += x[i*d+p] * y[j*d+p]
			}
			out[i*n+j] = s
		}
	}
}

// SquaredDistances: out[m,n] = max(0, xnorm[i] + ynorm[j] - 2·X[i]·Y[j])
// for X[m,d], Y[n,d] and their squared row norms xnorm[m], ynorm[n].
func SquaredDistances[F Float](out, x, xnorm, y, ynorm []F, m, n, d int) {
	need(len(out) >= m*n && len(x) >= m*d && len(xnorm) >= m && len(y) >= n*d && len(ynorm) >= n, "ref: SquaredDistances: slice shorter than its shape")
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var dot F
			for p := 0; p < d; p++ {
				dot += x[i*d+p] * y[j*d+p]
			}
			out[i*n+j] = max(0, xnorm[i]+ynorm[j]-2*dot)
		}
	}
}

// RowNorms: out[m] = Σ_j x[i,j]², the squared L2 norm of each row of x[m,d].
func RowNorms[F Float](out, x []F, m, d int) {
	need(len(out) >= m && len(x) >= m*d, "ref: RowNorms: slice shorter than its shape")
	for i := 0; i < m; i++ {
		var s F
		for j := 0; j < d; j++ {
			s += x[i*d+j] * x[i*d+j]
		}
		out[i] = s
	}
}

// ArgminRows: idx[m], val[m] = position and value of the minimum of each row
// of x[m,n]; ties go to the lowest index. A row with n == 0 gives idx -1 and
// val +Inf. x must hold no NaN (the result would depend on where it sits).
func ArgminRows[F Float](idx []int32, val []F, x []F, m, n int) {
	need(len(idx) >= m && len(val) >= m && len(x) >= m*n, "ref: ArgminRows: slice shorter than its shape")
	for i := 0; i < m; i++ {
		best, bestv := -1, F(math.Inf(1))
		for j := 0; j < n; j++ {
			if v := x[i*n+j]; best < 0 || v < bestv {
				best, bestv = j, v
			}
		}
		idx[i], val[i] = int32(best), bestv
	}
}

// TopKRows: idx[m,k], val[m,k] = the k smallest entries of each row of
// x[m,n], ascending by value, ties by lowest index (a stable sort of each
// row, cut at k). k must be <= n and x must hold no NaN. Being the oracle,
// it allocates a permutation per call.
func TopKRows[F Float](idx []int32, val []F, x []F, m, n, k int) {
	need(len(idx) >= m*k && len(val) >= m*k && len(x) >= m*n, "ref: TopKRows: slice shorter than its shape")
	need(k <= n, "ref: TopKRows: k > n")
	order := make([]int32, n)
	for i := 0; i < m; i++ {
		row := x[i*n : i*n+n]
		for j := range order {
			order[j] = int32(j)
		}
		slices.SortStableFunc(order, func(a, b int32) int {
			switch {
			case row[a] < row[b]:
				return -1
			case row[a] > row[b]:
				return 1
			}
			return 0
		})
		for j := 0; j < k; j++ {
			idx[i*k+j] = order[j]
			val[i*k+j] = row[order[j]]
		}
	}
}

// need panics with msg unless ok; a slice shorter than its shape is a bug in
// the caller.
func need(ok bool, msg string) {
	if !ok {
		panic(msg)
	}
}

// checkGemm panics unless the strides cover the rows (BLAS: ld >= max(1,
// cols)) and each matrix holds its shape (its last row need not be padded).
func checkGemm(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	need(m >= 0 && n >= 0 && k >= 0, "ref: Sgemm: negative dimension")
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need(lda >= max(1, ac) && ldb >= max(1, bc) && ldc >= max(1, n), "ref: Sgemm: leading dimension smaller than the row width")
	need(ar == 0 || ac == 0 || lenA >= (ar-1)*lda+ac, "ref: Sgemm: A shorter than its shape")
	need(br == 0 || bc == 0 || lenB >= (br-1)*ldb+bc, "ref: Sgemm: B shorter than its shape")
	need(m == 0 || n == 0 || lenC >= (m-1)*ldc+n, "ref: Sgemm: C shorter than its shape")
}
