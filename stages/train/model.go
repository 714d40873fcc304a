// The expert language model: a byte-level GPT-2-style causal transformer with
// its forward and backward passes written out layer by layer in the manner of
// llm.c's train_gpt2.c. It is the same network as
// ../shared/anchors/train_lm.py (same parameter count for every named size):
// learned positions, pre-LayerNorm blocks, causal multi-head attention with a
// fused qkv projection, a GELU(tanh) MLP of width 4C, a final LayerNorm and an
// output head tied to the token embedding.
//
// This file is the model only: no optimizer (optim.go), no data (data.go), no
// checkpoints or Kafka (the training stage builds those on top of Model).
//
// Dimension legend: B batch, T time (≤ Ctx), C channels (Dim), NH heads,
// V vocabulary (256 bytes), L layers.
package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/schemas"
)

// ----------------------------------------------------------------------------
// Configuration

// Config is the shape of an expert model. The named sizes of ARCHITECTURE.md ("Experts") are
// returned by ConfigByName; any other shape that passes Validate works too.
type Config struct {
	Name   string `json:"name"`   // a label: "tiny", "small", "base" or anything for a custom shape
	Vocab  int    `json:"vocab"`  // V: token ids are in [0, Vocab); 256 for bytes
	Dim    int    `json:"dim"`    // C: channels of the residual stream
	Layers int    `json:"layers"` // L: transformer blocks
	Heads  int    `json:"heads"`  // NH: attention heads; Dim must be a multiple of Heads
	Ctx    int    `json:"ctx"`    // maximum sequence length (rows of the position embedding)
	Batch  int    `json:"batch"`  // B: sequences per training step
}

// UnmarshalJSON reads the snake_case keys Config is written with, and the
// Go field names checkpoints of format 1 have.
func (c *Config) UnmarshalJSON(b []byte) error {
	b, err := schemas.SnakeCaseKeys(b)
	if err != nil {
		return err
	}
	type plain Config
	return json.Unmarshal(b, (*plain)(c))
}

// The named sizes. Their parameter counts (NumParams) are 120,576, 842,496
// and 4,870,144, as the PyTorch anchor reports.
var namedConfigs = []Config{
	{Name: "tiny", Vocab: 256, Dim: 64, Layers: 2, Heads: 4, Ctx: 64, Batch: 16},
	{Name: "small", Vocab: 256, Dim: 128, Layers: 4, Heads: 4, Ctx: 128, Batch: 16},
	{Name: "base", Vocab: 256, Dim: 256, Layers: 6, Heads: 8, Ctx: 256, Batch: 8},
}

// ConfigNames lists the named sizes in increasing size.
func ConfigNames() []string {
	names := make([]string, len(namedConfigs))
	for i, c := range namedConfigs {
		names[i] = c.Name
	}
	return names
}

// ConfigByName returns the named size "tiny", "small" or "base".
func ConfigByName(name string) (Config, error) {
	for _, c := range namedConfigs {
		if c.Name == name {
			return c, nil
		}
	}
	return Config{}, fmt.Errorf("train: unknown model size %q (have %v)", name, ConfigNames())
}

// Validate reports the first field of c that cannot make a model.
func (c Config) Validate() error {
	switch {
	case c.Vocab < 1 || c.Vocab > 256:
		return fmt.Errorf("train: config %s: vocab %d is not in [1, 256]", c.Name, c.Vocab)
	case c.Dim < 1:
		return fmt.Errorf("train: config %s: dim %d is not positive", c.Name, c.Dim)
	case c.Layers < 1:
		return fmt.Errorf("train: config %s: layers %d is not positive", c.Name, c.Layers)
	case c.Heads < 1 || c.Dim%c.Heads != 0:
		return fmt.Errorf("train: config %s: dim %d is not a multiple of heads %d", c.Name, c.Dim, c.Heads)
	case c.Ctx < 1:
		return fmt.Errorf("train: config %s: ctx %d is not positive", c.Name, c.Ctx)
	case c.Batch < 1:
		return fmt.Errorf("train: config %s: batch %d is not positive", c.Name, c.Batch)
	}
	return nil
}

// NumParams is the number of float32 parameters: V·C + Ctx·C +
// L·(12C² + 13C) + 2C (the tied head is counted once).
func (c Config) NumParams() int {
	C := c.Dim
	return c.Vocab*C + c.Ctx*C + c.Layers*(12*C*C+13*C) + 2*C
}

// ----------------------------------------------------------------------------
// Parameters

// Tensor names one parameter tensor: Params[Offset:Offset+Len] (and the same
// span of Grads) viewed as a row-major array of Shape.
type Tensor struct {
	Name   string // PyTorch-style: "tok.weight", "blocks.0.qkv.bias", "lnf.weight", ...
	Shape  []int
	Offset int
	Len    int
	// Decay is whether AdamW applies weight decay to it: true for the 2-D
	// weight matrices (the four Linear weights of every block and the token
	// embedding, which is also the output head), false for biases,
	// LayerNorm gains and offsets and the position embedding.
	Decay bool
}

// tensorTable lays out the parameters. Inside a block the four matrices come
// first and the vectors after, so that the decayed and the undecayed
// parameters form few contiguous spans (one AdamW call each).
func tensorTable(c Config) []Tensor {
	C, V := c.Dim, c.Vocab
	var ts []Tensor
	off := 0
	add := func(name string, decay bool, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		ts = append(ts, Tensor{Name: name, Shape: shape, Offset: off, Len: n, Decay: decay})
		off += n
	}
	add("tok.weight", true, V, C)
	add("pos.weight", false, c.Ctx, C)
	for l := range c.Layers {
		p := fmt.Sprintf("blocks.%d.", l)
		add(p+"qkv.weight", true, 3*C, C)
		add(p+"proj.weight", true, C, C)
		add(p+"fc.weight", true, 4*C, C)
		add(p+"out.weight", true, C, 4*C)
		add(p+"ln1.weight", false, C)
		add(p+"ln1.bias", false, C)
		add(p+"qkv.bias", false, 3*C)
		add(p+"proj.bias", false, C)
		add(p+"ln2.weight", false, C)
		add(p+"ln2.bias", false, C)
		add(p+"fc.bias", false, 4*C)
		add(p+"out.bias", false, C)
	}
	add("lnf.weight", false, C)
	add("lnf.bias", false, C)
	return ts
}

// blockWeights are the views of one block's tensors into a flat buffer
// (parameters or gradients).
type blockWeights struct {
	qkvw, projw, fcw, outw  []float32 // [3C,C] [C,C] [4C,C] [C,4C]
	ln1w, ln1b, qkvb, projb []float32 // [C] [C] [3C] [C]
	ln2w, ln2b, fcb, outb   []float32 // [C] [C] [4C] [C]
}

// weights are the named views of a flat buffer laid out by tensorTable.
type weights struct {
	wte, wpe   []float32 // [V,C] [Ctx,C]
	blocks     []blockWeights
	lnfw, lnfb []float32 // [C] [C]
}

func viewWeights(buf []float32, ts []Tensor, layers int) weights {
	v := func(i int) []float32 { t := ts[i]; return buf[t.Offset : t.Offset+t.Len : t.Offset+t.Len] }
	w := weights{wte: v(0), wpe: v(1), blocks: make([]blockWeights, layers)}
	for l := range layers {
		i := 2 + 12*l
		w.blocks[l] = blockWeights{
			qkvw: v(i), projw: v(i + 1), fcw: v(i + 2), outw: v(i + 3),
			ln1w: v(i + 4), ln1b: v(i + 5), qkvb: v(i + 6), projb: v(i + 7),
			ln2w: v(i + 8), ln2b: v(i + 9), fcb: v(i + 10), outb: v(i + 11),
		}
	}
	n := len(ts)
	w.lnfw, w.lnfb = v(n-2), v(n-1)
	return w
}

// ----------------------------------------------------------------------------
// Activations

// blockActs are what one block's forward saves for its backward.
type blockActs struct {
	ln1          []float32 // [B,T,C]
	ln1m, ln1r   []float32 // [B,T] mean, rstd
	qkv          []float32 // [B,T,3C]
	atty         []float32 // [B,T,C]
	att          []float32 // [B,NH,T,T]
	res2         []float32 // [B,T,C] residual after attention
	ln2          []float32 // [B,T,C]
	ln2m, ln2r   []float32 // [B,T]
	fch, fchGelu []float32 // [B,T,4C]
	res3         []float32 // [B,T,C] the block's output
}

// acts are the activations of one (B,T) shape and the scratch of the
// backward, all views of one allocation.
type acts struct {
	B, T    int
	buf     []float32
	encoded []float32 // [B,T,C] token + position embedding
	blocks  []blockActs
	lnf     []float32 // [B,T,C]
	lnfm    []float32 // [B,T]
	lnfr    []float32 // [B,T]
	logits  []float32 // [B,T,V]; dlogits in the backward
	probs   []float32 // [B,T,V]
	losses  []float32 // [B,T]
	dlosses []float32 // [B,T] all 1/(B·T)

	// Scratch shared by the blocks.
	proj    []float32 // [B,T,C] attention / MLP projection before the residual add
	preatt  []float32 // [B,NH,T,T] forward pre-softmax scores; dpreatt in the backward
	datt    []float32 // [B,NH,T,T]
	dres    []float32 // [B,T,C] gradient of the residual stream
	dC      []float32 // [B,T,C]
	d4C     []float32 // [B,T,4C] (also dqkv)
	d4Cgelu []float32 // [B,T,4C]

	targets []int32 // [B,T] copy of the last Forward's targets (valid when Model.hasLoss)
	zeros   []int32 // [B,T] dummy targets for a Forward without targets
	inputs  []int32 // [B,T] copy of the last Forward's inputs
}

// newActs lays out the activations of shape (B,T), in the storage of old
// when it is large enough.
func newActs(c Config, B, T int, old *acts) *acts {
	C, NH, V, L := c.Dim, c.Heads, c.Vocab, c.Layers
	BT := B * T
	att := B * NH * T * T
	perBlock := 16*BT*C + 4*BT + att
	n := BT*C + L*perBlock + BT*C + 2*BT + 2*BT*V + 2*BT +
		BT*C + 2*att + 2*BT*C + 2*BT*4*C
	a := &acts{B: B, T: T}
	if old != nil && cap(old.buf) >= n && cap(old.zeros) >= BT {
		a.buf = old.buf[:n]
		a.zeros, a.inputs, a.targets = old.zeros[:BT], old.inputs[:BT], old.targets[:BT]
	} else {
		a.buf = make([]float32, n)
		a.zeros, a.inputs, a.targets = make([]int32, BT), make([]int32, BT), make([]int32, BT)
	}
	off := 0
	take := func(k int) []float32 {
		s := a.buf[off : off+k : off+k]
		off += k
		return s
	}
	a.encoded = take(BT * C)
	a.blocks = make([]blockActs, L)
	for l := range a.blocks {
		a.blocks[l] = blockActs{
			ln1: take(BT * C), ln1m: take(BT), ln1r: take(BT),
			qkv: take(BT * 3 * C), atty: take(BT * C), att: take(att),
			res2: take(BT * C), ln2: take(BT * C), ln2m: take(BT), ln2r: take(BT),
			fch: take(BT * 4 * C), fchGelu: take(BT * 4 * C), res3: take(BT * C),
		}
	}
	a.lnf, a.lnfm, a.lnfr = take(BT*C), take(BT), take(BT)
	a.logits, a.probs = take(BT*V), take(BT*V)
	a.losses, a.dlosses = take(BT), take(BT)
	a.proj = take(BT * C)
	a.preatt, a.datt = take(att), take(att)
	a.dres, a.dC = take(BT*C), take(BT*C)
	a.d4C, a.d4Cgelu = take(BT*4*C), take(BT*4*C)
	if off != n {
		panic("train: activation layout size mismatch")
	}
	for i := range a.dlosses {
		a.dlosses[i] = 1 / float32(BT)
	}
	return a
}

// ----------------------------------------------------------------------------
// Model

// Model is an expert language model: its parameters, their gradients and
// the activations of its last Forward.
//
// Params and Grads are single flat buffers with the layout of Tensors; a
// checkpoint is Params (plus the optimizer's M and V) written tensor by
// tensor. A Model is used by one goroutine at a time.
//
// A training step is
//
//	m.ZeroGrad()
//	loss := m.Forward(be, inputs, targets, B, T)
//	m.Backward(be)
//	opt.Update(be, m)
type Model struct {
	Cfg    Config
	Params []float32 // all parameters, laid out as Tensors
	Grads  []float32 // ∂loss/∂Params, same layout; Backward accumulates

	tensors []Tensor
	w, g    weights // views of Params and Grads
	a       *acts   // activations of the last Forward's (B,T); nil before
	hasLoss bool    // the last Forward had targets
}

// NewModel returns a model of shape cfg initialized from seed: weight
// matrices and embeddings N(0, 0.02), biases 0, LayerNorm gains 1 and
// offsets 0, drawn in the order of Tensors from a PCG generator, so equal
// seeds give bit-identical models. It panics if cfg is invalid.
func NewModel(cfg Config, seed uint64) *Model {
	m := newModel(cfg)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for _, t := range m.tensors {
		p := m.Params[t.Offset : t.Offset+t.Len]
		switch {
		case len(t.Shape) == 2:
			for i := range p {
				p[i] = float32(rng.NormFloat64() * 0.02)
			}
		case isLayerNormGain(t.Name):
			for i := range p {
				p[i] = 1
			}
		}
	}
	return m
}

// newModel allocates a zeroed model of shape cfg.
func newModel(cfg Config) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	n := cfg.NumParams()
	m := &Model{
		Cfg:     cfg,
		Params:  make([]float32, n),
		Grads:   make([]float32, n),
		tensors: tensorTable(cfg),
	}
	if last := m.tensors[len(m.tensors)-1]; last.Offset+last.Len != n {
		panic("train: tensor table does not cover NumParams")
	}
	m.w = viewWeights(m.Params, m.tensors, cfg.Layers)
	m.g = viewWeights(m.Grads, m.tensors, cfg.Layers)
	return m
}

func isLayerNormGain(name string) bool {
	return strings.HasSuffix(name, "ln1.weight") || strings.HasSuffix(name, "ln2.weight") ||
		strings.HasSuffix(name, "lnf.weight")
}

// Tensors returns the table of named parameter tensors, in layout order.
// The caller must not modify it.
func (m *Model) Tensors() []Tensor { return m.tensors }

// Param returns the parameters of the tensor called name (a view into
// Params), or nil if there is none.
func (m *Model) Param(name string) []float32 {
	for _, t := range m.tensors {
		if t.Name == name {
			return m.Params[t.Offset : t.Offset+t.Len : t.Offset+t.Len]
		}
	}
	return nil
}

// Clone returns a deep copy of m's parameters and gradients with no
// activations.
func (m *Model) Clone() *Model {
	c := newModel(m.Cfg)
	copy(c.Params, m.Params)
	copy(c.Grads, m.Grads)
	return c
}

// ZeroGrad sets Grads to zero.
func (m *Model) ZeroGrad() { clear(m.Grads) }

// Probs returns the next-token probabilities [B,T,V] of the last Forward
// (row b·T+t is the distribution of the token after inputs[b,t]). It is a
// view that the next Forward overwrites; nil before the first Forward.
func (m *Model) Probs() []float32 {
	if m.a == nil {
		return nil
	}
	return m.a.probs[:m.a.B*m.a.T*m.Cfg.Vocab]
}

// Losses returns the per-position cross-entropy [B,T] (nats) of the last
// Forward with targets; a view that the next Forward overwrites; nil when
// the last Forward had no targets.
func (m *Model) Losses() []float32 {
	if m.a == nil || !m.hasLoss {
		return nil
	}
	return m.a.losses
}

// errShape is the panic value of Forward for bad arguments.
var errShape = errors.New("train: Forward: inputs/targets shorter than B*T or T > Ctx")

// Forward runs the model on inputs [B,T] (token ids < Vocab) and returns the
// mean cross-entropy (nats per token) against targets [B,T]. With targets
// nil it computes only the probabilities (see Probs) and returns NaN.
// Activations are allocated on the first call and again when (B,T) grows
// beyond what they hold.
// It panics if T > Ctx, a slice is shorter than B*T or a token is out of
// range.
func (m *Model) Forward(be accel.Backend, inputs, targets []int32, B, T int) float32 {
	c := m.Cfg
	if B < 1 || T < 1 || T > c.Ctx || len(inputs) < B*T || (targets != nil && len(targets) < B*T) {
		panic(errShape)
	}
	if m.a == nil || m.a.B != B || m.a.T != T {
		m.a = newActs(c, B, T, m.a)
	}
	a := m.a
	C, NH, V, BT := c.Dim, c.Heads, c.Vocab, B*T
	copy(a.inputs, inputs[:BT])
	m.hasLoss = targets != nil
	if m.hasLoss {
		copy(a.targets, targets[:BT])
	}

	encoderForward(a.encoded, a.inputs, m.w.wte, m.w.wpe, B, T, C, V)
	res := a.encoded
	for l := range c.Layers {
		w, s := &m.w.blocks[l], &a.blocks[l]
		be.LayerNormForward(s.ln1, s.ln1m, s.ln1r, res, w.ln1w, w.ln1b, BT, C)
		be.MatmulForward(s.qkv, s.ln1, w.qkvw, w.qkvb, BT, C, 3*C)
		be.AttentionForward(s.atty, a.preatt, s.att, s.qkv, B, T, C, NH)
		be.MatmulForward(a.proj, s.atty, w.projw, w.projb, BT, C, C)
		be.ResidualForward(s.res2, res, a.proj)
		be.LayerNormForward(s.ln2, s.ln2m, s.ln2r, s.res2, w.ln2w, w.ln2b, BT, C)
		be.MatmulForward(s.fch, s.ln2, w.fcw, w.fcb, BT, C, 4*C)
		be.GELUForward(s.fchGelu, s.fch)
		be.MatmulForward(a.proj, s.fchGelu, w.outw, w.outb, BT, 4*C, C)
		be.ResidualForward(s.res3, s.res2, a.proj)
		res = s.res3
	}
	be.LayerNormForward(a.lnf, a.lnfm, a.lnfr, res, m.w.lnfw, m.w.lnfb, BT, C)
	be.MatmulForward(a.logits, a.lnf, m.w.wte, nil, BT, C, V) // tied head, no bias
	tg := a.zeros
	if m.hasLoss {
		tg = a.targets
	}
	be.SoftmaxCrossEntropyForward(a.losses, a.probs, a.logits, tg, BT, V)
	if !m.hasLoss {
		return float32(math.NaN())
	}
	var sum float64
	for _, l := range a.losses {
		sum += float64(l)
	}
	return float32(sum / float64(BT))
}

// Backward accumulates into Grads the gradient of the mean loss of the last
// Forward, which must have had targets. Call ZeroGrad first unless
// gradients are meant to add up over several batches.
func (m *Model) Backward(be accel.Backend) {
	if m.a == nil || !m.hasLoss {
		panic("train: Backward without a Forward with targets")
	}
	c, a := m.Cfg, m.a
	B, T := a.B, a.T
	C, NH, V, BT := c.Dim, c.Heads, c.Vocab, B*T

	// Loss and tied head. The logits are not needed any more: their buffer
	// becomes dlogits.
	dlogits := a.logits
	clear(dlogits)
	be.SoftmaxCrossEntropyBackward(dlogits, a.probs, a.targets, a.dlosses, BT, V)
	dlnf := a.dC
	clear(dlnf)
	be.MatmulBackward(dlnf, m.g.wte, nil, dlogits, a.lnf, m.w.wte, BT, C, V)
	res := a.blocks[c.Layers-1].res3
	dres := a.dres
	clear(dres)
	be.LayerNormBackward(dres, m.g.lnfw, m.g.lnfb, dlnf, res, m.w.lnfw, a.lnfm, a.lnfr, BT, C)

	// Blocks, last to first. dres holds ∂loss/∂(block output) on entry and
	// ∂loss/∂(block input) on exit: each branch's LayerNorm backward
	// accumulates into it on top of the residual path's identity.
	for l := c.Layers - 1; l >= 0; l-- {
		w, g, s := &m.w.blocks[l], &m.g.blocks[l], &a.blocks[l]
		in := a.encoded
		if l > 0 {
			in = a.blocks[l-1].res3
		}
		// MLP: res3 = res2 + out(gelu(fc(ln2(res2)))).
		dfchGelu, dfch := a.d4Cgelu, a.d4C
		clear(dfchGelu)
		be.MatmulBackward(dfchGelu, g.outw, g.outb, dres, s.fchGelu, w.outw, BT, 4*C, C)
		clear(dfch)
		be.GELUBackward(dfch, s.fch, dfchGelu)
		dln2 := a.dC
		clear(dln2)
		be.MatmulBackward(dln2, g.fcw, g.fcb, dfch, s.ln2, w.fcw, BT, C, 4*C)
		be.LayerNormBackward(dres, g.ln2w, g.ln2b, dln2, s.res2, w.ln2w, s.ln2m, s.ln2r, BT, C)

		// Attention: res2 = in + proj(attn(qkv(ln1(in)))).
		datty := a.dC
		clear(datty)
		be.MatmulBackward(datty, g.projw, g.projb, dres, s.atty, w.projw, BT, C, C)
		dqkv := a.d4C[:BT*3*C]
		clear(dqkv)
		be.AttentionBackward(dqkv, a.preatt, a.datt, datty, s.qkv, s.att, B, T, C, NH)
		dln1 := a.dC
		clear(dln1)
		be.MatmulBackward(dln1, g.qkvw, g.qkvb, dqkv, s.ln1, w.qkvw, BT, C, 3*C)
		be.LayerNormBackward(dres, g.ln1w, g.ln1b, dln1, in, w.ln1w, s.ln1m, s.ln1r, BT, C)
	}
	encoderBackward(m.g.wte, m.g.wpe, dres, a.inputs, B, T, C)
}

// ----------------------------------------------------------------------------
// Encoder (plain Go: a gather and a scatter-add, no arithmetic to speak of)

// encoderForward: out[B,T,C] = wte[inp[b,t],:] + wpe[t,:].
func encoderForward(out []float32, inp []int32, wte, wpe []float32, B, T, C, V int) {
	for b := range B {
		for t := range T {
			tok := int(inp[b*T+t])
			if tok < 0 || tok >= V {
				panic("train: token id out of range")
			}
			o := out[(b*T+t)*C : (b*T+t+1)*C]
			e := wte[tok*C : (tok+1)*C]
			p := wpe[t*C : (t+1)*C]
			for i := range o {
				o[i] = e[i] + p[i]
			}
		}
	}
}

// encoderBackward accumulates dwte[inp[b,t],:] += dout[b,t,:] and
// dwpe[t,:] += dout[b,t,:].
func encoderBackward(dwte, dwpe, dout []float32, inp []int32, B, T, C int) {
	for b := range B {
		for t := range T {
			tok := int(inp[b*T+t])
			d := dout[(b*T+t)*C : (b*T+t+1)*C]
			e := dwte[tok*C : (tok+1)*C]
			p := dwpe[t*C : (t+1)*C]
			for i, v := range d {
				e[i] += v
				p[i] += v
			}
		}
	}
}
