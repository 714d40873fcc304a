package train

import (
	"errors"
	"fmt"
	"math"
)

// Merge returns a checkpoint whose parameters are the weighted average of
// the checkpoints' parameters (weights are normalized to sum 1; every model
// must have the same shape but the batch size). The optimizer starts fresh
// (step 0, zero moments, the first checkpoint's settings), the packer empty;
// tokens and documents are the sums, and Init records nothing (several
// parents).
func Merge(cks []*Checkpoint, weights []float64) (*Checkpoint, error) {
	if len(cks) == 0 || len(cks) != len(weights) {
		return nil, fmt.Errorf("train: merge: %d checkpoints, %d weights", len(cks), len(weights))
	}
	sum := 0.0
	for _, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("train: merge: weight %v is not a finite non-negative number", w)
		}
		sum += w
	}
	if sum == 0 {
		return nil, errors.New("train: merge: the weights sum to 0")
	}
	base := cks[0].Model.Cfg
	shape := func(c Config) Config { c.Batch, c.Name = 0, ""; return c }
	acc := make([]float64, len(cks[0].Model.Params))
	var tokens, docs int64
	for i, c := range cks {
		if shape(c.Model.Cfg) != shape(base) {
			return nil, fmt.Errorf("train: merge: checkpoint %d is %+v, the first is %+v", i, c.Model.Cfg, base)
		}
		w := weights[i] / sum
		for j, p := range c.Model.Params {
			acc[j] += w * float64(p)
		}
		tokens += c.Meta.Tokens
		docs += c.Meta.Docs
	}
	m := newModel(base)
	for j, v := range acc {
		m.Params[j] = float32(v)
	}
	opt := NewOptimizer(cks[0].Opt.Cfg, len(m.Params))
	p := NewPacker(base.Ctx, base.Batch, DocSeparator)
	meta := CheckpointMeta{Config: base, Opt: opt.Cfg, Tokens: tokens, Docs: docs,
		Backend: cks[0].Meta.Backend, Threads: cks[0].Meta.Threads,
		Origins: map[string]Position{}, Offsets: map[string]int64{}}
	return &Checkpoint{Meta: meta, Model: m, Opt: opt, Packer: p.State()}, nil
}
