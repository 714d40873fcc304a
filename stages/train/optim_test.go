package train

import (
	"math"
	"testing"
)

func TestLRAt(t *testing.T) {
	cfg := OptConfig{LR: 1, MinLR: 0.1, WarmupSteps: 10, TotalSteps: 110}
	noDecay := cfg
	noDecay.TotalSteps = 0
	noWarmup := cfg
	noWarmup.WarmupSteps = 0
	tests := []struct {
		name string
		cfg  OptConfig
		step int
		want float64
	}{
		{"warmup first", cfg, 0, 0.1},
		{"warmup mid", cfg, 4, 0.5},
		{"warmup last", cfg, 9, 1},
		{"decay start", cfg, 10, 1},
		{"decay mid", cfg, 60, 0.55},
		{"decay quarter", cfg, 35, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi/4))},
		{"decay end", cfg, 110, 0.1},
		{"after end", cfg, 1000, 0.1},
		{"no decay", noDecay, 500, 1},
		{"no warmup", noWarmup, 0, 1},
		{"no warmup end", noWarmup, 110, 0.1},
	}
	for _, tt := range tests {
		o := NewOptimizer(tt.cfg, 0)
		if got := o.LRAt(tt.step); math.Abs(float64(got)-tt.want) > 1e-6 {
			t.Errorf("%s: LRAt(%d) = %g, want %g", tt.name, tt.step, got, tt.want)
		}
	}
	// Monotone: up during the warm-up, down after it.
	o := NewOptimizer(DefaultOptConfig(), 0)
	for s := 1; s < o.Cfg.TotalSteps+10; s++ {
		prev, cur := o.LRAt(s-1), o.LRAt(s)
		if s < o.Cfg.WarmupSteps && cur <= prev || s > o.Cfg.WarmupSteps && cur > prev {
			t.Fatalf("LRAt(%d) = %g after LRAt(%d) = %g", s, cur, s-1, prev)
		}
	}
}

// TestUpdateWeightDecay: with zero gradients AdamW's step is the decay
// alone, so exactly the Decay tensors move, by lr·wd·p.
func TestUpdateWeightDecay(t *testing.T) {
	be := openBackend(t, "ref", 1)
	m := perturbedModel(gradConfig, 1, 0.1)
	before := append([]float32(nil), m.Params...)
	cfg := DefaultOptConfig()
	cfg.WarmupSteps = 0
	o := NewOptimizer(cfg, len(m.Params))
	m.ZeroGrad()
	lr, norm := o.Update(be, m)
	if lr != cfg.LR || norm != 0 || o.Step != 1 {
		t.Fatalf("Update = (%g, %g), Step %d; want (%g, 0), Step 1", lr, norm, o.Step, cfg.LR)
	}
	for _, tn := range m.Tensors() {
		for i := tn.Offset; i < tn.Offset+tn.Len; i++ {
			want := before[i]
			if tn.Decay {
				want = before[i] - lr*cfg.WeightDecay*before[i]
			}
			if math.Abs(float64(m.Params[i]-want)) > 1e-7 {
				t.Fatalf("%s[%d] = %g after a zero-gradient step, want %g (Decay %v)", tn.Name, i-tn.Offset, m.Params[i], want, tn.Decay)
			}
		}
	}
}

func TestUpdateClip(t *testing.T) {
	be := openBackend(t, "ref", 1)
	m := perturbedModel(gradConfig, 1, 0.1)
	for i := range m.Grads {
		m.Grads[i] = 1
	}
	o := NewOptimizer(DefaultOptConfig(), len(m.Params))
	_, norm := o.Update(be, m)
	if want := math.Sqrt(float64(len(m.Grads))); math.Abs(float64(norm)-want) > 1e-3 {
		t.Errorf("Update gradNorm = %g, want %g (before clipping)", norm, want)
	}
	if got := math.Sqrt(be.SumSquares(m.Grads)); math.Abs(got-1) > 1e-5 {
		t.Errorf("norm of Grads after Update = %g, want ClipNorm 1", got)
	}

	// A non-finite gradient leaves everything as it was.
	before := append([]float32(nil), m.Params...)
	m.Grads[3] = float32(math.NaN())
	step := o.Step
	if _, norm := o.Update(be, m); !math.IsNaN(float64(norm)) || o.Step != step {
		t.Errorf("Update with a NaN gradient = norm %g, Step %d; want NaN, %d", norm, o.Step, step)
	}
	for i := range before {
		if before[i] != m.Params[i] {
			t.Fatalf("Params[%d] changed by an update with a NaN gradient", i)
		}
	}
}
