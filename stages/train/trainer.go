package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/domainflow/domainflow/accel"
)

// DocSeparator ends every document in the byte stream an expert trains on.
const DocSeparator = '\n'

// TrainerConfig configures a new expert's trainer.
type TrainerConfig struct {
	Expert string // domain id or name ("dense")
	Model  Config
	Opt    OptConfig
	Seed   uint64      // initialization seed (ignored with Init)
	Init   *Checkpoint // branch: start from these parameters (fresh optimizer)
	// Continue also takes Init's input position (origin positions, offsets
	// and read cursor) and pending bytes: the expert goes on reading the
	// same topic where the seed stopped (a dense model continuing).
	Continue bool
	// SkipSeen (with Init, without Continue) also takes Init's origin
	// positions: the branch skips every document its seed already applied
	// and trains only on documents new to its lineage, as the dense model
	// continuing the seed does.
	SkipSeen bool
	Backend  accel.Backend // required
	Threads  int           // recorded in checkpoints
	// InitFrom says how Init was chosen (recorded in checkpoints).
	InitFrom string
}

// Trainer is one expert's training state machine: documents in (with their
// origin positions), optimizer steps out, checkpoints on demand. It does no
// I/O; the training consumer feeds it from Kafka and saves its checkpoints.
//
// Exactly-once: Add skips a document whose origin position is at or below
// the last one applied from that origin partition, and a checkpoint carries
// those positions, the input offsets, the packer's pending bytes and the
// optimizer, so a trainer resumed from a checkpoint and fed the same input
// from its offsets continues bit-identically.
type Trainer struct {
	Meta   CheckpointMeta
	Model  *Model
	Opt    *Optimizer
	Packer *Packer
	be     accel.Backend
}

// NewTrainer returns a trainer at step 0.
func NewTrainer(cfg TrainerConfig) (*Trainer, error) {
	if cfg.Backend == nil {
		return nil, errors.New("train: trainer: no backend")
	}
	if err := cfg.Model.Validate(); err != nil {
		return nil, err
	}
	var m *Model
	init := ""
	if cfg.Init != nil {
		if cfg.Init.Model.Cfg != cfg.Model {
			// Only the batch may differ from the seed's shape.
			a, b := cfg.Init.Model.Cfg, cfg.Model
			a.Batch, b.Batch, a.Name, b.Name = 0, 0, "", ""
			if a != b {
				return nil, fmt.Errorf("train: trainer: seed checkpoint is %+v, expert is %+v", cfg.Init.Model.Cfg, cfg.Model)
			}
		}
		m = cfg.Init.Model.Clone()
		m.Cfg = cfg.Model
		init = ParamsSHA256(m)
	} else {
		m = NewModel(cfg.Model, cfg.Seed)
	}
	t := &Trainer{
		Model:  m,
		Opt:    NewOptimizer(cfg.Opt, len(m.Params)),
		Packer: NewPacker(cfg.Model.Ctx, cfg.Model.Batch, DocSeparator),
		be:     cfg.Backend,
		Meta: CheckpointMeta{
			Expert: cfg.Expert, Config: cfg.Model, Opt: cfg.Opt, Seed: cfg.Seed, Init: init, InitFrom: cfg.InitFrom,
			Backend: cfg.Backend.Name(), Threads: cfg.Threads,
			Origins: map[string]Position{}, Offsets: map[string]int64{},
		},
	}
	if cfg.SkipSeen && !cfg.Continue {
		if cfg.Init == nil {
			return nil, errors.New("train: trainer: SkipSeen needs Init")
		}
		t.Meta.Origins = maps.Clone(cfg.Init.Meta.Origins)
	}
	if cfg.Continue {
		if cfg.Init == nil {
			return nil, errors.New("train: trainer: Continue needs Init")
		}
		t.Meta.Origins = maps.Clone(cfg.Init.Meta.Origins)
		t.Meta.Offsets = maps.Clone(cfg.Init.Meta.Offsets)
		t.Meta.Cursor = cfg.Init.Meta.Cursor
		if err := t.Packer.Restore(cfg.Init.Packer); err != nil {
			return nil, fmt.Errorf("train: trainer: seed's pending bytes: %w", err)
		}
	}
	return t, nil
}

// ResumeTrainer continues from a checkpoint.
func ResumeTrainer(c *Checkpoint, be accel.Backend, threads int) (*Trainer, error) {
	if be == nil {
		return nil, errors.New("train: trainer: no backend")
	}
	p := NewPacker(c.Model.Cfg.Ctx, c.Model.Cfg.Batch, DocSeparator)
	if err := p.Restore(c.Packer); err != nil {
		return nil, fmt.Errorf("train: resume: %w", err)
	}
	meta := c.Meta
	meta.Origins = maps.Clone(c.Meta.Origins)
	meta.Offsets = maps.Clone(c.Meta.Offsets)
	meta.Losses = slices.Clone(c.Meta.Losses)
	if meta.Backend != be.Name() || meta.Threads != threads {
		// Allowed, but bit-identical resume holds only on the same backend
		// and thread count.
		meta.Backend, meta.Threads = be.Name(), threads
	}
	return &Trainer{Meta: meta, Model: c.Model, Opt: c.Opt, Packer: p, be: be}, nil
}

// Add feeds one document from origin partition key (e.g. "docs.raw/3") at
// pos. It returns false, and changes nothing, when pos is at or below the
// last position applied from that partition.
func (t *Trainer) Add(key string, pos Position, text []byte) bool {
	if last, ok := t.Meta.Origins[key]; ok && !last.Less(pos) {
		t.Meta.Skipped++
		return false
	}
	t.Meta.Origins[key] = pos
	t.Packer.Add(text)
	t.Meta.Docs++
	return true
}

// SetOffset records that input partition key is consumed up to offset next
// (exclusive), and where the round-robin reader goes next.
func (t *Trainer) SetOffset(key string, next int64, cursor int) {
	t.Meta.Offsets[key] = next
	t.Meta.Cursor = cursor
}

// ErrNonFinite is returned by Train when a step's loss or gradient is not
// finite; the step is not applied.
var ErrNonFinite = errors.New("train: non-finite loss or gradient")

// Train runs optimizer steps on every full batch the packer holds, at most
// maxSteps (<= 0: no limit) and while Meta.Tokens < maxTokens (<= 0: no
// limit). It returns the number of steps run.
func (t *Trainer) Train(ctx context.Context, maxSteps int, maxTokens int64) (int, error) {
	c := t.Model.Cfg
	steps := 0
	for (maxSteps <= 0 || steps < maxSteps) && (maxTokens <= 0 || t.Meta.Tokens < maxTokens) {
		if err := ctx.Err(); err != nil {
			return steps, err
		}
		in, tg, ok := t.Packer.Next()
		if !ok {
			break
		}
		t.Model.ZeroGrad()
		loss := t.Model.Forward(t.be, in, tg, c.Batch, c.Ctx)
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			return steps, fmt.Errorf("%w at step %d (loss %v)", ErrNonFinite, t.Opt.Step, loss)
		}
		t.Model.Backward(t.be)
		_, norm := t.Opt.Update(t.be, t.Model)
		if math.IsNaN(float64(norm)) || math.IsInf(float64(norm), 0) {
			return steps, fmt.Errorf("%w at step %d (gradient norm %v)", ErrNonFinite, t.Opt.Step, norm)
		}
		t.Meta.Tokens += int64(c.Batch * c.Ctx)
		t.Meta.Losses = append(t.Meta.Losses, LossPoint{Step: t.Opt.Step, Tokens: t.Meta.Tokens, Loss: loss})
		if len(t.Meta.Losses) > 2*maxLossPoints {
			t.Meta.Losses = slices.Clone(t.Meta.Losses[len(t.Meta.Losses)-maxLossPoints:])
		}
		steps++
	}
	return steps, nil
}

// Checkpoint returns the trainer's state as a checkpoint sharing the
// trainer's model and optimizer (save it before training on).
func (t *Trainer) Checkpoint() *Checkpoint {
	meta := t.Meta
	meta.Step, meta.Config, meta.Opt = t.Opt.Step, t.Model.Cfg, t.Opt.Cfg
	meta.Origins = maps.Clone(t.Meta.Origins)
	meta.Offsets = maps.Clone(t.Meta.Offsets)
	meta.Losses = slices.Clone(t.Meta.Losses)
	return &Checkpoint{Meta: meta, Model: t.Model, Opt: t.Opt, Packer: t.Packer.State()}
}

// LastLoss is the loss of the last step (NaN before any).
func (t *Trainer) LastLoss() float32 {
	if len(t.Meta.Losses) == 0 {
		return float32(math.NaN())
	}
	return t.Meta.Losses[len(t.Meta.Losses)-1].Loss
}
