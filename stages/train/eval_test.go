package train

import (
	"math"
	"testing"
)

// TestLogProbs: the per-byte log-probabilities agree with the training loss
// on the same windows, and a ragged last chunk is handled.
func TestLogProbs(t *testing.T) {
	be := refBackend(t)
	m := NewModel(ckptConfig, 3)
	T := ckptConfig.Ctx
	seq := []byte("the quick brown fox jumps over the lazy dog, again and again and again!")[:2*T+1]
	lp := LogProbs(be, m, seq, 4, nil)
	if len(lp) != 2*T {
		t.Fatalf("%d log-probs for %d predictions", len(lp), 2*T)
	}
	in, tg := make([]int32, 2*T), make([]int32, 2*T)
	for i := range in {
		in[i], tg[i] = int32(seq[i]), int32(seq[i+1])
	}
	loss := m.Forward(be, in, tg, 2, T)
	sum := 0.0
	for _, v := range lp {
		sum -= float64(v)
	}
	if got := sum / float64(len(lp)); math.Abs(got-float64(loss)) > 1e-4 {
		t.Fatalf("mean -log p %v, training loss %v", got, loss)
	}
	// Ragged: 2T+6 bytes → 3 chunks, the last of 5 predictions; batch 1.
	seq2 := append(append([]byte{}, seq...), "abcde"...)
	lp2 := LogProbs(be, m, seq2, 1, nil)
	if len(lp2) != 2*T+5 || Chunks(len(seq2), T) != 3 {
		t.Fatalf("ragged: %d log-probs, %d chunks", len(lp2), Chunks(len(seq2), T))
	}
	for i := range lp {
		if lp[i] != lp2[i] {
			t.Fatalf("position %d: %v vs %v: the chunking depends on the batch", i, lp[i], lp2[i])
		}
	}
	if Chunks(1, T) != 0 || len(LogProbs(be, m, []byte("x"), 1, nil)) != 0 {
		t.Fatal("a 1-byte sequence has no prediction")
	}
}

func TestRouteWeights(t *testing.T) {
	d2 := []float32{0.5, 0.1, 0.3, 0.9}
	all, err := RouteWeights(d2, 0.1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	z := math.Exp(-5) + math.Exp(-1) + math.Exp(-3) + math.Exp(-9)
	for j, want := range []float64{math.Exp(-5) / z, math.Exp(-1) / z, math.Exp(-3) / z, math.Exp(-9) / z} {
		if math.Abs(all[j]-want) > 1e-6 {
			t.Fatalf("weights %v", all)
		}
	}
	top2, _ := RouteWeights(d2, 0.1, 2, nil)
	if top2[0] != 0 || top2[3] != 0 || math.Abs(top2[1]+top2[2]-1) > 1e-12 || top2[1] <= top2[2] {
		t.Fatalf("top-2 weights %v", top2)
	}
	top1, _ := RouteWeights(d2, 0.1, 1, []bool{true, false, true, true})
	if top1[2] != 1 {
		t.Fatalf("top-1 without expert 1: %v", top1)
	}
	if _, err := RouteWeights(d2, 0, 1, nil); err == nil {
		t.Fatal("temperature 0 accepted")
	}
	if _, err := RouteWeights(d2, 1, 1, []bool{false, false, false, false}); err == nil {
		t.Fatal("no available expert accepted")
	}
	lp := []float32{-1, -2, -3, -4}
	if got := MixLogProb(top1, lp); got != -3 {
		t.Fatalf("top-1 mixture %v", got)
	}
	half := []float64{0.5, 0.5, 0, 0}
	want := math.Log(0.5*math.Exp(-1) + 0.5*math.Exp(-2))
	if got := MixLogProb(half, lp); math.Abs(got-want) > 1e-12 {
		t.Fatalf("mixture %v, want %v", got, want)
	}
	if bpb := BitsPerByte(-math.Ln2*10, 10); math.Abs(bpb-1) > 1e-12 {
		t.Fatalf("bits per byte %v", bpb)
	}
}
