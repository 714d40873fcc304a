package train

import (
	"encoding/json"
	"math"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/schemas"
)

// OptConfig sets AdamW, its learning-rate schedule and gradient clipping.
type OptConfig struct {
	LR          float32 `json:"lr"`           // peak learning rate, reached at the end of the warm-up; default 1e-3
	MinLR       float32 `json:"min_lr"`       // learning rate at and after TotalSteps; default 1e-4
	WarmupSteps int     `json:"warmup_steps"` // steps of linear warm-up from LR/WarmupSteps to LR; default 100
	// TotalSteps is where the cosine decay from LR reaches MinLR; after it
	// the rate stays MinLR. 0 or less: no decay, LR after the warm-up (an
	// expert trained on an endless stream). Default 10,000.
	TotalSteps  int     `json:"total_steps"`
	Beta1       float32 `json:"beta1"`        // default 0.9
	Beta2       float32 `json:"beta2"`        // default 0.95
	Eps         float32 `json:"eps"`          // default 1e-8
	WeightDecay float32 `json:"weight_decay"` // decoupled, on Tensor.Decay tensors only; default 0.1
	ClipNorm    float32 `json:"clip_norm"`    // global gradient-norm clip; 0 or less: none; default 1
}

// UnmarshalJSON reads the snake_case keys OptConfig is written with, and
// the Go field names checkpoints of format 1 have.
func (c *OptConfig) UnmarshalJSON(b []byte) error {
	b, err := schemas.SnakeCaseKeys(b)
	if err != nil {
		return err
	}
	type plain OptConfig
	return json.Unmarshal(b, (*plain)(c))
}

// DefaultOptConfig returns the defaults documented on OptConfig (those of
// llm.c / nanoGPT, with a shorter schedule for small byte-level models).
func DefaultOptConfig() OptConfig {
	return OptConfig{
		LR:          1e-3,
		MinLR:       1e-4,
		WarmupSteps: 100,
		TotalSteps:  10000,
		Beta1:       0.9,
		Beta2:       0.95,
		Eps:         1e-8,
		WeightDecay: 0.1,
		ClipNorm:    1,
	}
}

// Optimizer is AdamW with global-norm gradient clipping. M and V are the
// first and second moments, in the layout of Model.Params; Step is the
// number of updates applied so far. A checkpoint that stores Cfg, M, V and
// Step resumes the optimizer exactly.
//
// Weight decay applies to the tensors whose Tensor.Decay is set: the 2-D
// weight matrices, including the token embedding because it is also the
// output head. Biases, LayerNorm parameters and the position embedding are
// not decayed: pulling a LayerNorm gain or a bias towards 0 is not a
// regularizer of the function's complexity, and the position rows of long
// offsets are seen rarely, so decay would erase them between their uses.
type Optimizer struct {
	Cfg  OptConfig
	M, V []float32
	Step int
}

// NewOptimizer returns an optimizer at step 0 for a model of nparams
// parameters.
func NewOptimizer(cfg OptConfig, nparams int) *Optimizer {
	return &Optimizer{Cfg: cfg, M: make([]float32, nparams), V: make([]float32, nparams)}
}

// LRAt returns the learning rate of the update with 0-based index step:
// LR·(step+1)/WarmupSteps during the warm-up, then a cosine decay from LR at
// step WarmupSteps to MinLR at TotalSteps, and MinLR from then on (LR if
// TotalSteps <= 0).
func (o *Optimizer) LRAt(step int) float32 {
	c := o.Cfg
	if step < c.WarmupSteps {
		return c.LR * float32(step+1) / float32(c.WarmupSteps)
	}
	if c.TotalSteps <= 0 {
		return c.LR
	}
	if step >= c.TotalSteps {
		return c.MinLR
	}
	ratio := float64(step-c.WarmupSteps) / float64(c.TotalSteps-c.WarmupSteps)
	coeff := 0.5 * (1 + math.Cos(math.Pi*ratio))
	return c.MinLR + float32(coeff)*(c.LR-c.MinLR)
}

// Update applies one AdamW step to m.Params from m.Grads and returns the
// learning rate it used and the global gradient norm before clipping. When
// ClipNorm > 0 and the norm exceeds it, Grads are first scaled down to norm
// ClipNorm. A non-finite norm (NaN or ±Inf) leaves Params, M, V and Step
// untouched: the caller decides whether to stop or skip the batch.
func (o *Optimizer) Update(be accel.Backend, m *Model) (lr, gradNorm float32) {
	if len(o.M) != len(m.Params) || len(o.V) != len(m.Params) {
		panic("train: optimizer state does not match the model's parameter count")
	}
	c := o.Cfg
	lr = o.LRAt(o.Step)
	norm := math.Sqrt(be.SumSquares(m.Grads))
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return lr, float32(norm)
	}
	if c.ClipNorm > 0 && norm > float64(c.ClipNorm) {
		be.Scale(m.Grads, float32(float64(c.ClipNorm)/norm))
	}
	o.Step++
	ts := m.Tensors()
	for i := 0; i < len(ts); {
		// One AdamW call per maximal run of tensors with the same Decay.
		j := i + 1
		for j < len(ts) && ts[j].Decay == ts[i].Decay {
			j++
		}
		lo, hi := ts[i].Offset, ts[j-1].Offset+ts[j-1].Len
		wd := float32(0)
		if ts[i].Decay {
			wd = c.WeightDecay
		}
		be.AdamW(m.Params[lo:hi], m.Grads[lo:hi], o.M[lo:hi], o.V[lo:hi], o.Step, lr, c.Beta1, c.Beta2, c.Eps, wd)
		i = j
	}
	return lr, float32(norm)
}
