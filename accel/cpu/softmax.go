package cpu

import "math"

// SoftmaxCrossEntropyForward: probs[N,V] = softmax(logits[N,V]) per row
// (max subtracted, float32 exp) and losses[N] = -log probs[n, target],
// computed as log Σexp - (logit[target] - max) so that it stays exact where
// the probability underflows. Parallel over rows.
func (b *Backend) SoftmaxCrossEntropyForward(losses, probs, logits []float32, targets []int32, N, V int) {
	need(N >= 0 && V >= 0 && len(losses) >= N && len(probs) >= N*V && len(logits) >= N*V && len(targets) >= N,
		"cpu: SoftmaxCrossEntropyForward: slice shorter than its shape")
	checkTargets(targets[:N], V)
	if b.chunks(N, rowGrain(V)) == 1 {
		softmaxCrossEntropyRows(0, N, losses, probs, logits, targets, V)
		return
	}
	b.parallelFor(N, rowGrain(V), func(lo, hi int) { softmaxCrossEntropyRows(lo, hi, losses, probs, logits, targets, V) })
}

func softmaxCrossEntropyRows(lo, hi int, losses, probs, logits []float32, targets []int32, V int) {
	for n := lo; n < hi; n++ {
		l := logits[n*V : n*V+V]
		p := probs[n*V : n*V+V]
		p = p[:len(l)]
		k, maxv := maxVec(l)
		if k == 0 {
			maxv = float32(math.Inf(-1))
		}
		for _, x := range l[k:] {
			if x > maxv { // not the builtin max: its NaN and ±0 handling costs 3x
				maxv = x
			}
		}
		k, sum := expShiftVec(p, l, maxv)
		for i := k; i < len(l); i++ {
			e := expf(l[i] - maxv)
			p[i] = e
			sum += e
		}
		inv := 1 / sum
		for i := scaleVec(p, inv); i < len(p); i++ {
			p[i] *= inv
		}
		losses[n] = float32(math.Log(float64(sum)) - float64(l[targets[n]]-maxv))
	}
}

// SoftmaxCrossEntropyBackward accumulates dlogits[N,V] +=
// dlosses[n]·(probs[n,:] - onehot(targets[n])). Parallel over rows.
func (b *Backend) SoftmaxCrossEntropyBackward(dlogits, probs []float32, targets []int32, dlosses []float32, N, V int) {
	need(N >= 0 && V >= 0 && len(dlogits) >= N*V && len(probs) >= N*V && len(targets) >= N && len(dlosses) >= N,
		"cpu: SoftmaxCrossEntropyBackward: slice shorter than its shape")
	checkTargets(targets[:N], V)
	if b.chunks(N, rowGrain(V)) == 1 {
		softmaxCrossEntropyBackwardRows(0, N, dlogits, probs, targets, dlosses, V)
		return
	}
	b.parallelFor(N, rowGrain(V), func(lo, hi int) { softmaxCrossEntropyBackwardRows(lo, hi, dlogits, probs, targets, dlosses, V) })
}

func softmaxCrossEntropyBackwardRows(lo, hi int, dlogits, probs []float32, targets []int32, dlosses []float32, V int) {
	for n := lo; n < hi; n++ {
		dl := dlogits[n*V : n*V+V]
		p := probs[n*V : n*V+V]
		p = p[:len(dl)]
		d := dlosses[n]
		ix := targets[n]
		at := dl[ix]
		for i := range dl {
			dl[i] += p[i] * d
		}
		dl[ix] = at + (p[ix]-1)*d
	}
}

// checkTargets panics unless every target is a class in [0, V), on the
// calling goroutine.
func checkTargets(targets []int32, V int) {
	for _, t := range targets {
		need(t >= 0 && int(t) < V, "cpu: SoftmaxCrossEntropy: target out of range")
	}
}
