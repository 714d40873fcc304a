package train

import (
	"errors"
	"math"
	"sort"

	"github.com/domainflow/domainflow/accel"
)

// Chunks returns how many chunks of up to T predictions a sequence of n
// bytes has (n-1 predictions).
func Chunks(n, T int) int {
	if n < 2 {
		return 0
	}
	return (n - 1 + T - 1) / T
}

// LogProbs returns the natural log-probability the model gives each
// predicted byte of seq: out[i] = log p(seq[i+1] | chunk context), for
// i in [0, len(seq)-1). The sequence is cut into chunks of up to T =
// m.Cfg.Ctx predictions; chunk c feeds seq[c·T : c·T+T] and predicts the
// byte after each, so the context restarts at every chunk boundary (where a
// router re-routes). Chunks run batch at a time. out is reused when large
// enough.
func LogProbs(be accel.Backend, m *Model, seq []byte, batch int, out []float32) []float32 {
	return LogProbsChunks(be, m, seq, batch, nil, out)
}

// LogProbsChunks is LogProbs computing only the chunks c with want(c)
// (want nil: all); the positions of the other chunks are NaN.
func LogProbsChunks(be accel.Backend, m *Model, seq []byte, batch int, want func(c int) bool, out []float32) []float32 {
	T, V := m.Cfg.Ctx, m.Cfg.Vocab
	n := len(seq) - 1
	if n < 1 {
		return out[:0]
	}
	if cap(out) < n {
		out = make([]float32, n)
	}
	out = out[:n]
	batch = max(batch, 1)
	var chunks []int
	for c := range Chunks(len(seq), T) {
		if want == nil || want(c) {
			chunks = append(chunks, c)
			continue
		}
		for i := c * T; i < min(c*T+T, n); i++ {
			out[i] = float32(math.NaN())
		}
	}
	inputs := make([]int32, batch*T)
	for c0 := 0; c0 < len(chunks); c0 += batch {
		b := min(batch, len(chunks)-c0)
		clear(inputs)
		for r := range b {
			lo := chunks[c0+r] * T
			for t := 0; t < T && lo+t < n; t++ {
				inputs[r*T+t] = int32(seq[lo+t])
			}
		}
		m.Forward(be, inputs, nil, b, T)
		probs := m.Probs()
		for r := range b {
			lo := chunks[c0+r] * T
			for t := 0; t < T && lo+t < n; t++ {
				p := probs[(r*T+t)*V+int(seq[lo+t+1])]
				out[lo+t] = float32(math.Log(math.Max(float64(p), 1e-30)))
			}
		}
	}
	return out
}

// RouteWeights turns squared distances of a text to k centroids into
// mixture weights: softmax(−d²/temperature), then only the topk largest kept
// and renormalized (topk <= 0 or >= k keeps all). Ties keep the lower index.
// available[j] false excludes centroid j (no expert for it); nil means all.
func RouteWeights(d2 []float32, temperature float64, topk int, available []bool) ([]float64, error) {
	k := len(d2)
	if temperature <= 0 {
		return nil, errors.New("train: route weights: temperature must be positive")
	}
	w := make([]float64, k)
	idx := make([]int, 0, k)
	best := math.Inf(1)
	for j, d := range d2 {
		if available != nil && !available[j] {
			continue
		}
		idx = append(idx, j)
		best = math.Min(best, float64(d))
	}
	if len(idx) == 0 {
		return nil, errors.New("train: route weights: no available expert")
	}
	sort.SliceStable(idx, func(a, b int) bool { return d2[idx[a]] < d2[idx[b]] })
	if topk > 0 && topk < len(idx) {
		idx = idx[:topk]
	}
	sum := 0.0
	for _, j := range idx {
		w[j] = math.Exp(-(float64(d2[j]) - best) / temperature)
		sum += w[j]
	}
	for _, j := range idx {
		w[j] /= sum
	}
	return w, nil
}

// MixLogProb is log Σ_e w[e]·exp(logp[e]) over the experts with w[e] > 0.
func MixLogProb(w []float64, logp []float32) float64 {
	hi := math.Inf(-1)
	for e, we := range w {
		if we > 0 {
			hi = math.Max(hi, float64(logp[e]))
		}
	}
	if math.IsInf(hi, -1) {
		return hi
	}
	s := 0.0
	for e, we := range w {
		if we > 0 {
			s += we * math.Exp(float64(logp[e])-hi)
		}
	}
	return hi + math.Log(s)
}

// BitsPerByte converts a sum of natural log-probabilities over n bytes.
func BitsPerByte(sumLogProb float64, n int64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return -sumLogProb / float64(n) / math.Ln2
}
