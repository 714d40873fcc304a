package accel

import (
	"fmt"
	"sort"
	"sync"
)

// Backend is the one interface the expert model and k-means call. Every
// tensor is a flat, row-major []float32; shapes are given in each method's
// comment in llm.c style ([B,T,C] means B*T*C contiguous floats, the last
// index fastest). Methods never allocate on the hot path and never keep a
// slice after they return. Unless a comment says "accumulates", an output is
// overwritten. Inputs shorter than their shape make the method panic (a bug in
// the caller, as with the built-in copy of a too-short slice).
//
// A Backend is safe for use by one goroutine at a time; it may use several
// goroutines inside a call (the cpu backend does, up to its thread count).
type Backend interface {
	// Name is the registered name: "ref", "cpu", ...
	Name() string
	// Threads is how many goroutines a call may use.
	Threads() int

	// Sgemm computes C = alpha·op(A)·op(B) + beta·C, row-major, where op(X)
	// is X or Xᵀ. op(A) is [m,k], op(B) is [k,n], C is [m,n]; lda, ldb, ldc
	// are the row strides of A, B, C as stored (A stored is [m,lda] when
	// !transA and [k,lda] when transA). beta == 0 means C is not read.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// SgemmStridedBatched runs batch independent Sgemm calls; matrix i of
	// A, B and C starts at i*strideA, i*strideB and i*strideC.
	SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int)

	// MatmulForward: out[N,OC] = inp[N,C] · weight[OC,C]ᵀ + bias[OC].
	// bias may be nil.
	MatmulForward(out, inp, weight, bias []float32, N, C, OC int)
	// MatmulBackward accumulates dinp[N,C] += dout[N,OC]·weight[OC,C],
	// dweight[OC,C] += dout[N,OC]ᵀ·inp[N,C] and dbias[OC] += Σ_n dout[n,:].
	// dbias may be nil.
	MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)

	// LayerNormForward: out[N,C] = (inp-mean)·rstd·weight[C] + bias[C],
	// per row, eps 1e-5; mean[N] and rstd[N] are saved for the backward.
	LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int)
	// LayerNormBackward accumulates dinp[N,C], dweight[C] and dbias[C].
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int)

	// GELUForward: out[i] = gelu(inp[i]), the tanh approximation (GPT-2).
	GELUForward(out, inp []float32)
	// GELUBackward accumulates dinp[i] += gelu'(inp[i])·dout[i].
	GELUBackward(dinp, inp, dout []float32)

	// ResidualForward: out[i] = a[i] + b[i].
	ResidualForward(out, a, b []float32)
	// Accumulate: dst[i] += src[i] (the residual backward).
	Accumulate(dst, src []float32)

	// AttentionForward is causal multi-head self-attention. inp[B,T,3C]
	// holds q, k, v side by side per position (each C = NH heads of C/NH).
	// preatt[B,NH,T,T] and att[B,NH,T,T] are saved for the backward (only
	// entries t2 <= t1 are meaningful); out[B,T,C] is the heads'
	// attention-weighted values. Scale 1/sqrt(C/NH).
	AttentionForward(out, preatt, att, inp []float32, B, T, C, NH int)
	// AttentionBackward accumulates dinp[B,T,3C]; dpreatt and datt
	// [B,NH,T,T] are scratch, overwritten.
	AttentionBackward(dinp, dpreatt, datt, dout, inp, att []float32, B, T, C, NH int)

	// SoftmaxCrossEntropyForward: probs[N,V] = softmax(logits[N,V]) per
	// row and losses[N] = -log probs[n, targets[n]].
	SoftmaxCrossEntropyForward(losses, probs, logits []float32, targets []int32, N, V int)
	// SoftmaxCrossEntropyBackward accumulates dlogits[N,V] +=
	// dlosses[n]·(probs[n,:] - onehot(targets[n])).
	SoftmaxCrossEntropyBackward(dlogits, probs []float32, targets []int32, dlosses []float32, N, V int)

	// AdamW updates params in place (decoupled weight decay, bias
	// correction with the 1-based step t): m = β1·m + (1-β1)·g,
	// v = β2·v + (1-β2)·g², p -= lr·(m̂/(sqrt(v̂)+eps) + wd·p).
	AdamW(params, grads, m, v []float32, t int, lr, beta1, beta2, eps, weightDecay float32)
	// SumSquares returns Σ x[i]² in float64 (gradient clipping).
	SumSquares(x []float32) float64
	// Scale: x[i] *= s.
	Scale(x []float32, s float32)

	// SparseDenseT: out[rows,n] = S[rows,d] · D[n,d]ᵀ where S is CSR
	// (indptr[rows+1] into indices/values; column indices < d).
	SparseDenseT(out []float32, indptr []int64, indices []int32, values []float32, rows int, dense []float32, n, d int)
	// SparseDense: out[rows,n] = S[rows,d] · DT[d,n], S in CSR as for
	// SparseDenseT, the dense matrix given transposed (k-means keeps its
	// centroids that way, so no call pays for a transpose).
	SparseDense(out []float32, indptr []int64, indices []int32, values []float32, rows int, denseT []float32, d, n int)
	// DenseDenseT: out[m,n] = X[m,d] · Y[n,d]ᵀ.
	DenseDenseT(out, x, y []float32, m, n, d int)
	// SquaredDistances: out[m,n] = ‖X[i]-Y[j]‖², clamped at 0, from
	// xnorm[m] and ynorm[n] (squared row norms, see RowNorms).
	SquaredDistances(out, x, xnorm, y, ynorm []float32, m, n, d int)
	// RowNorms: out[m] = Σ_j x[i,j]² (squared L2 norm per row).
	RowNorms(out, x []float32, m, d int)
	// ArgminRows: idx[m], val[m] = position and value of the minimum of
	// each row of x[m,n]; ties go to the lowest index.
	ArgminRows(idx []int32, val []float32, x []float32, m, n int)
	// TopKRows: idx[m,k], val[m,k] = the k smallest entries of each row of
	// x[m,n], ascending by value, ties by lowest index.
	TopKRows(idx []int32, val []float32, x []float32, m, n, k int)
}

// Factory makes a backend that may use up to threads goroutines per call
// (threads <= 0 means one per CPU).
type Factory func(threads int) (Backend, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a backend available to Open under name. Backends register
// themselves from an init function; registering a name twice panics.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("accel: Register called twice for " + name)
	}
	registry[name] = f
}

// Open returns the backend registered under name.
func Open(name string, threads int) (Backend, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("accel: unknown backend %q (have %v)", name, Names())
	}
	return f(threads)
}

// Names lists the registered backends, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
