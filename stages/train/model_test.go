package train

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu"
	"github.com/domainflow/domainflow/accel/ref"
)

// gradConfig is the shape of the gradient checks: small enough that a
// float64 forward per perturbed parameter is cheap, two layers so that the
// gradient crosses a block boundary, two heads so that heads are separated.
var gradConfig = Config{Name: "grad", Vocab: 32, Dim: 8, Layers: 2, Heads: 2, Ctx: 8, Batch: 2}

func openBackend(t testing.TB, name string, threads int) accel.Backend {
	t.Helper()
	be, err := accel.Open(name, threads)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// randomTokens returns n token ids in [0, vocab) from seed.
func randomTokens(n, vocab int, seed uint64) []int32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// perturbedModel is NewModel with every parameter moved by N(0, sd), so
// that biases and LayerNorm parameters are not at their special initial
// values and the network is far from linear.
func perturbedModel(cfg Config, seed uint64, sd float64) *Model {
	m := NewModel(cfg, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range m.Params {
		m.Params[i] += float32(rng.NormFloat64() * sd)
	}
	return m
}

func TestConfigs(t *testing.T) {
	tests := []struct {
		name   string
		params int // the PyTorch anchor's count (anchors/RESULTS.md §4)
	}{
		{"tiny", 120576},
		{"small", 842496},
		{"base", 4870144},
	}
	for _, tt := range tests {
		c, err := ConfigByName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("ConfigByName(%q).Validate() = %v", tt.name, err)
		}
		if got := c.NumParams(); got != tt.params {
			t.Errorf("ConfigByName(%q).NumParams() = %d, want %d", tt.name, got, tt.params)
		}
		ts := tensorTable(c)
		off := 0
		for _, tn := range ts {
			n := 1
			for _, d := range tn.Shape {
				n *= d
			}
			if tn.Offset != off || tn.Len != n {
				t.Fatalf("%s: tensor %s at %d len %d, want %d len %d", tt.name, tn.Name, tn.Offset, tn.Len, off, n)
			}
			if tn.Decay != (len(tn.Shape) == 2 && tn.Name != "pos.weight") {
				t.Errorf("%s: tensor %s Decay = %v", tt.name, tn.Name, tn.Decay)
			}
			off += n
		}
		if off != tt.params {
			t.Errorf("%s: tensors cover %d parameters, want %d", tt.name, off, tt.params)
		}
	}
	if _, err := ConfigByName("huge"); err == nil {
		t.Error(`ConfigByName("huge") = nil error`)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Name: "x", Vocab: 256, Dim: 8, Layers: 1, Heads: 2, Ctx: 4, Batch: 1}
	tests := []struct {
		edit func(*Config)
		want string // substring of the error; "" for none
	}{
		{func(*Config) {}, ""},
		{func(c *Config) { c.Vocab = 0 }, "vocab"},
		{func(c *Config) { c.Vocab = 257 }, "vocab"},
		{func(c *Config) { c.Dim = 0 }, "dim"},
		{func(c *Config) { c.Layers = 0 }, "layers"},
		{func(c *Config) { c.Heads = 3 }, "heads"},
		{func(c *Config) { c.Heads = 0 }, "heads"},
		{func(c *Config) { c.Ctx = 0 }, "ctx"},
		{func(c *Config) { c.Batch = -1 }, "batch"},
	}
	for i, tt := range tests {
		c := ok
		tt.edit(&c)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("case %d: Validate(%+v) = %v, want nil", i, c, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("case %d: Validate(%+v) = %v, want an error about %s", i, c, err, tt.want)
		}
	}
}

func TestNewModelInit(t *testing.T) {
	cfg, _ := ConfigByName("tiny")
	a, b, c := NewModel(cfg, 1), NewModel(cfg, 1), NewModel(cfg, 2)
	if !bytes.Equal(f32bytes(a.Params), f32bytes(b.Params)) {
		t.Error("NewModel with equal seeds differs")
	}
	if bytes.Equal(f32bytes(a.Params), f32bytes(c.Params)) {
		t.Error("NewModel with different seeds is equal")
	}
	for _, tn := range a.Tensors() {
		p := a.Params[tn.Offset : tn.Offset+tn.Len]
		var sum, sq float64
		for _, v := range p {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean, sd := sum/float64(len(p)), math.Sqrt(sq/float64(len(p)))
		switch {
		case len(tn.Shape) == 2:
			if math.Abs(sd-0.02) > 0.002 || math.Abs(mean) > 0.002 {
				t.Errorf("%s: mean %.4f sd %.4f, want N(0, 0.02)", tn.Name, mean, sd)
			}
		case strings.HasSuffix(tn.Name, "weight"): // LayerNorm gains
			if mean != 1 || sd != 1 {
				t.Errorf("%s: mean %g rms %g, want all 1", tn.Name, mean, sd)
			}
		default:
			if sq != 0 {
				t.Errorf("%s: not all zero", tn.Name)
			}
		}
	}
	if got := a.Param("lnf.bias"); len(got) != cfg.Dim {
		t.Errorf(`Param("lnf.bias") has %d values, want %d`, len(got), cfg.Dim)
	}
	if a.Param("nope") != nil {
		t.Error(`Param("nope") != nil`)
	}
	cl := a.Clone()
	cl.Params[0]++
	if a.Params[0] == cl.Params[0] {
		t.Error("Clone shares Params")
	}
}

// forward64 is the oracle of the gradient checks: the model's forward pass
// in float64 with accel/ref's generic kernels, written independently of
// Model.Forward (tensors looked up by name, nothing shared but the layout).
func forward64(cfg Config, ts []Tensor, p []float64, inputs, targets []int32, B, T int) float64 {
	get := map[string][]float64{}
	for _, tn := range ts {
		get[tn.Name] = p[tn.Offset : tn.Offset+tn.Len]
	}
	C, NH, V, BT := cfg.Dim, cfg.Heads, cfg.Vocab, B*T
	x := make([]float64, BT*C)
	wte, wpe := get["tok.weight"], get["pos.weight"]
	for i := range BT {
		tok, pos := int(inputs[i]), i%T
		for j := range C {
			x[i*C+j] = wte[tok*C+j] + wpe[pos*C+j]
		}
	}
	ln := make([]float64, BT*C)
	mean, rstd := make([]float64, BT), make([]float64, BT)
	qkv := make([]float64, BT*3*C)
	y := make([]float64, BT*C)
	pre, att := make([]float64, B*NH*T*T), make([]float64, B*NH*T*T)
	h, hg := make([]float64, BT*4*C), make([]float64, BT*4*C)
	proj := make([]float64, BT*C)
	for l := range cfg.Layers {
		P := func(s string) []float64 { return get[fmt.Sprintf("blocks.%d.%s", l, s)] }
		ref.LayerNormForward(ln, mean, rstd, x, P("ln1.weight"), P("ln1.bias"), BT, C)
		ref.MatmulForward(qkv, ln, P("qkv.weight"), P("qkv.bias"), BT, C, 3*C)
		ref.AttentionForward(y, pre, att, qkv, B, T, C, NH)
		ref.MatmulForward(proj, y, P("proj.weight"), P("proj.bias"), BT, C, C)
		ref.Accumulate(x, proj)
		ref.LayerNormForward(ln, mean, rstd, x, P("ln2.weight"), P("ln2.bias"), BT, C)
		ref.MatmulForward(h, ln, P("fc.weight"), P("fc.bias"), BT, C, 4*C)
		ref.GELUForward(hg, h)
		ref.MatmulForward(proj, hg, P("out.weight"), P("out.bias"), BT, 4*C, C)
		ref.Accumulate(x, proj)
	}
	ref.LayerNormForward(ln, mean, rstd, x, get["lnf.weight"], get["lnf.bias"], BT, C)
	logits, probs, losses := make([]float64, BT*V), make([]float64, BT*V), make([]float64, BT)
	ref.MatmulForward(logits, ln, wte, nil, BT, C, V)
	ref.SoftmaxCrossEntropyForward(losses, probs, logits, targets, BT, V)
	var sum float64
	for _, v := range losses {
		sum += v
	}
	return sum / float64(BT)
}

// TestGradientsFiniteDifference checks Backward against central finite
// differences of the float64 oracle for a sample of every tensor of every
// layer (embeddings, both blocks' attention and MLP, final LayerNorm).
func TestGradientsFiniteDifference(t *testing.T) {
	cfg := gradConfig
	B, T := cfg.Batch, cfg.Ctx
	m := perturbedModel(cfg, 7, 0.2)
	inputs := randomTokens(B*T, cfg.Vocab, 3)
	targets := randomTokens(B*T, cfg.Vocab, 4)
	be := openBackend(t, "ref", 1)

	m.ZeroGrad()
	loss := m.Forward(be, inputs, targets, B, T)
	m.Backward(be)

	p64 := make([]float64, len(m.Params))
	for i, v := range m.Params {
		p64[i] = float64(v)
	}
	ts := m.Tensors()
	want := forward64(cfg, ts, p64, inputs, targets, B, T)
	if d := math.Abs(float64(loss) - want); d > 1e-5*want {
		t.Fatalf("Forward loss = %.7f, float64 oracle %.7f", loss, want)
	}

	const eps = 1e-5
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tn := range ts {
		t.Run(tn.Name, func(t *testing.T) {
			idx := make([]int, 0, 6)
			for range min(6, tn.Len) {
				idx = append(idx, tn.Offset+rng.IntN(tn.Len))
			}
			if tn.Name == "tok.weight" {
				// The rows of tokens in the input get the encoder's
				// gradient on top of the head's.
				tok := int(inputs[0])
				idx = append(idx, tn.Offset+tok*cfg.Dim, tn.Offset+tok*cfg.Dim+cfg.Dim-1)
			}
			for _, i := range idx {
				old := p64[i]
				p64[i] = old + eps
				lp := forward64(cfg, ts, p64, inputs, targets, B, T)
				p64[i] = old - eps
				lm := forward64(cfg, ts, p64, inputs, targets, B, T)
				p64[i] = old
				fd := (lp - lm) / (2 * eps)
				got := float64(m.Grads[i])
				if math.Abs(got-fd) > 2e-5+2e-3*math.Abs(fd) {
					t.Errorf("%s[%d]: Backward %.7g, finite difference %.7g", tn.Name, i-tn.Offset, got, fd)
				}
			}
		})
	}
}

// TestBackwardAccumulates checks that Backward adds to Grads: two
// backward passes of the same batch give twice the gradient.
func TestBackwardAccumulates(t *testing.T) {
	cfg := gradConfig
	B, T := cfg.Batch, cfg.Ctx
	m := perturbedModel(cfg, 1, 0.1)
	be := openBackend(t, "ref", 1)
	in, tg := randomTokens(B*T, cfg.Vocab, 1), randomTokens(B*T, cfg.Vocab, 2)
	m.ZeroGrad()
	m.Forward(be, in, tg, B, T)
	m.Backward(be)
	once := append([]float32(nil), m.Grads...)
	m.Forward(be, in, tg, B, T)
	m.Backward(be)
	for i := range once {
		if d := math.Abs(float64(m.Grads[i] - 2*once[i])); d > 1e-6+1e-5*math.Abs(float64(once[i])) {
			t.Fatalf("Grads[%d] after two Backward = %g, want 2×%g", i, m.Grads[i], once[i])
		}
	}
}

// TestForwardShapes checks Forward without targets, a shorter T than Ctx,
// a change of (B,T) and the panics on bad arguments.
func TestForwardShapes(t *testing.T) {
	cfg := gradConfig
	m := perturbedModel(cfg, 1, 0.1)
	be := openBackend(t, "ref", 1)
	in, tg := randomTokens(3*5, cfg.Vocab, 1), randomTokens(3*5, cfg.Vocab, 2)
	if loss := m.Forward(be, in, nil, 3, 5); !math.IsNaN(float64(loss)) {
		t.Errorf("Forward without targets = %g, want NaN", loss)
	}
	if m.Losses() != nil {
		t.Error("Losses after a Forward without targets != nil")
	}
	probs := append([]float32(nil), m.Probs()...)
	if len(probs) != 3*5*cfg.Vocab {
		t.Fatalf("len(Probs()) = %d, want %d", len(probs), 3*5*cfg.Vocab)
	}
	for r := range 3 * 5 {
		var s float64
		for _, p := range probs[r*cfg.Vocab : (r+1)*cfg.Vocab] {
			s += float64(p)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("row %d of Probs sums to %g", r, s)
		}
	}
	loss := m.Forward(be, in, tg, 3, 5)
	if !bytes.Equal(f32bytes(probs), f32bytes(m.Probs())) {
		t.Error("Probs with and without targets differ")
	}
	var want float64
	for i, l := range m.Losses() {
		want += float64(l)
		if p := -math.Log(float64(probs[i*cfg.Vocab+int(tg[i])])); math.Abs(p-float64(l)) > 1e-4 {
			t.Fatalf("Losses()[%d] = %g, want -log p = %g", i, l, p)
		}
	}
	if math.Abs(want/15-float64(loss)) > 1e-6 {
		t.Errorf("Forward = %g, want mean of Losses %g", loss, want/15)
	}
	// A larger (B,T) and back: the reused buffers give the same result.
	m.Forward(be, randomTokens(2*8, cfg.Vocab, 9), nil, 2, 8)
	m.Forward(be, in, nil, 3, 5)
	if !bytes.Equal(f32bytes(probs), f32bytes(m.Probs())) {
		t.Error("Probs after a Forward of another shape differ")
	}
	// Causality: the first position's prediction ignores later tokens.
	in2 := append([]int32(nil), in...)
	in2[1] = (in2[1] + 1) % int32(cfg.Vocab)
	m.Forward(be, in2, nil, 3, 5)
	if !bytes.Equal(f32bytes(probs[:cfg.Vocab]), f32bytes(m.Probs()[:cfg.Vocab])) {
		t.Error("changing token 1 changed the prediction at position 0")
	}

	for _, bad := range []struct {
		name string
		f    func()
	}{
		{"T > Ctx", func() { m.Forward(be, make([]int32, 2*9), nil, 2, 9) }},
		{"short inputs", func() { m.Forward(be, make([]int32, 3), nil, 2, 2) }},
		{"short targets", func() { m.Forward(be, make([]int32, 4), make([]int32, 3), 2, 2) }},
		{"token ≥ vocab", func() { m.Forward(be, []int32{0, int32(cfg.Vocab)}, nil, 1, 2) }},
		{"backward without targets", func() { m.Forward(be, in, nil, 3, 5); m.Backward(be) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", bad.name)
				}
			}()
			bad.f()
		}()
	}
}

// TestBackendsAgree runs a step of the same model on ref and cpu.
func TestBackendsAgree(t *testing.T) {
	cfg := Config{Name: "agree", Vocab: 256, Dim: 32, Layers: 2, Heads: 4, Ctx: 16, Batch: 3}
	B, T := cfg.Batch, cfg.Ctx
	in, tg := randomTokens(B*T, cfg.Vocab, 1), randomTokens(B*T, cfg.Vocab, 2)
	run := func(be accel.Backend) *Model {
		m := perturbedModel(cfg, 3, 0.05)
		m.ZeroGrad()
		m.Forward(be, in, tg, B, T)
		m.Backward(be)
		return m
	}
	r := run(openBackend(t, "ref", 1))
	for _, threads := range []int{1, 2, 3} {
		c := run(openBackend(t, "cpu", threads))
		if d := maxRelDiff(r.Losses(), c.Losses()); d > 1e-5 {
			t.Errorf("cpu/%d: losses differ from ref by %g (relative to the largest)", threads, d)
		}
		if d := maxRelDiff(r.Probs(), c.Probs()); d > 1e-5 {
			t.Errorf("cpu/%d: probs differ from ref by %g", threads, d)
		}
		for _, tn := range r.Tensors() {
			a, b := r.Grads[tn.Offset:tn.Offset+tn.Len], c.Grads[tn.Offset:tn.Offset+tn.Len]
			if d := maxRelDiff(a, b); d > 1e-3 {
				t.Errorf("cpu/%d: grad of %s differs from ref by %g", threads, tn.Name, d)
			}
		}
	}
}

// maxRelDiff is max|a-b| / max|a|.
func maxRelDiff(a, b []float32) float64 {
	var d, s float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(a[i])))
	}
	if s == 0 {
		return d
	}
	return d / s
}

func f32bytes(x []float32) []byte {
	out := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

// fixtureDocs reads the texts of testdata/mixed-small.jsonl.gz from the
// given sources (all if none).
func fixtureDocs(t testing.TB, sources ...string) [][]byte {
	t.Helper()
	f, err := os.Open("../../testdata/mixed-small.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	var docs [][]byte
	for dec.More() {
		var d struct {
			Text   string `json:"text"`
			Source string `json:"source"`
		}
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if len(sources) == 0 || slices.Contains(sources, d.Source) {
			docs = append(docs, []byte(d.Text))
		}
	}
	return docs
}

// trainSteps trains m for steps batches of the fixture and returns the
// losses.
func trainSteps(t testing.TB, be accel.Backend, m *Model, opt *Optimizer, docs [][]byte, steps int) []float32 {
	t.Helper()
	B, T := m.Cfg.Batch, m.Cfg.Ctx
	pk := NewPacker(T, B, '\n')
	var losses []float32
	for d := 0; len(losses) < steps; d++ {
		in, tg, ok := pk.Next()
		if !ok {
			pk.Add(docs[d%len(docs)])
			continue
		}
		m.ZeroGrad()
		losses = append(losses, m.Forward(be, in, tg, B, T))
		m.Backward(be)
		opt.Update(be, m)
	}
	return losses
}

// TestLossFalls trains the tiny model on the English prose of the fixture
// (one domain, as an expert sees it): the loss starts near ln 256 and must
// fall clearly.
func TestLossFalls(t *testing.T) {
	cfg, _ := ConfigByName("tiny")
	oc := DefaultOptConfig()
	oc.LR, oc.MinLR, oc.WarmupSteps, oc.TotalSteps = 3e-3, 3e-4, 5, 50
	m := NewModel(cfg, 1)
	be := openBackend(t, "cpu", 2)
	losses := trainSteps(t, be, m, NewOptimizer(oc, len(m.Params)), fixtureDocs(t, "brown", "moby-dick"), 50)
	first := losses[0]
	var last float32
	for _, l := range losses[len(losses)-10:] {
		last += l / 10
	}
	t.Logf("loss %.3f → %.3f (mean of the last 10 of %d steps)", first, last, len(losses))
	if math.Abs(float64(first)-math.Log(256)) > 0.1 {
		t.Errorf("first loss %.3f, want ≈ ln 256 = %.3f", first, math.Log(256))
	}
	if last > 3.5 {
		t.Errorf("loss after %d steps %.3f, want < 3.5 nats", len(losses), last)
	}
}

// TestDeterminism: the same seed, documents and backend give bit-identical
// parameters.
func TestDeterminism(t *testing.T) {
	cfg := Config{Name: "det", Vocab: 256, Dim: 32, Layers: 2, Heads: 4, Ctx: 32, Batch: 4}
	docs := fixtureDocs(t)[:20]
	for _, bk := range []struct {
		name    string
		threads int
	}{{"ref", 1}, {"cpu", 1}, {"cpu", 2}} {
		var params [2][]byte
		for r := range params {
			be := openBackend(t, bk.name, bk.threads)
			m := NewModel(cfg, 42)
			trainSteps(t, be, m, NewOptimizer(DefaultOptConfig(), len(m.Params)), docs, 4)
			params[r] = f32bytes(m.Params)
		}
		if !bytes.Equal(params[0], params[1]) {
			t.Errorf("%s/%d: two runs give different parameters", bk.name, bk.threads)
		}
	}
}

// BenchmarkStep times one training step (forward, backward, update) of the
// named sizes on the cpu backend with 2 threads.
func BenchmarkStep(b *testing.B) {
	for _, name := range ConfigNames() {
		b.Run(name, func(b *testing.B) {
			cfg, _ := ConfigByName(name)
			be := openBackend(b, "cpu", 2)
			m := NewModel(cfg, 1)
			opt := NewOptimizer(DefaultOptConfig(), len(m.Params))
			B, T := cfg.Batch, cfg.Ctx
			in, tg := randomTokens(B*T, cfg.Vocab, 1), randomTokens(B*T, cfg.Vocab, 2)
			for b.Loop() {
				m.ZeroGrad()
				m.Forward(be, in, tg, B, T)
				m.Backward(be)
				opt.Update(be, m)
			}
			b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// TestTorchGolden loads the weights of the PyTorch anchor model
// (testdata/make_torch_golden.py: same architecture as
// ../shared/anchors/train_lm.py, random weights) by tensor name and checks
// that Forward gives PyTorch's loss and Backward its gradients: the two
// models are the same function with the same parameter names.
func TestTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Config struct{ Dim, Layers, Heads, Ctx, Batch int }
		Tokens []int32
		Loss   float64
		Params map[string][]byte // base64 little-endian float32
		Grads  map[string][]byte
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: "golden", Vocab: 256, Dim: g.Config.Dim, Layers: g.Config.Layers, Heads: g.Config.Heads, Ctx: g.Config.Ctx, Batch: g.Config.Batch}
	B, T := cfg.Batch, cfg.Ctx
	var in, tg []int32
	for b := range B {
		row := g.Tokens[b*(T+1) : (b+1)*(T+1)]
		in, tg = append(in, row[:T]...), append(tg, row[1:]...)
	}
	decode := func(b []byte) []float32 {
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out
	}
	m := newModel(cfg)
	if len(g.Params) != len(m.Tensors()) {
		t.Fatalf("golden has %d tensors, the model %d", len(g.Params), len(m.Tensors()))
	}
	for _, tn := range m.Tensors() {
		p, ok := g.Params[tn.Name]
		if !ok || len(p) != 4*tn.Len {
			t.Fatalf("tensor %s: golden has %d bytes, want %d", tn.Name, len(p), 4*tn.Len)
		}
		copy(m.Params[tn.Offset:], decode(p))
	}
	for _, name := range []string{"ref", "cpu"} {
		be := openBackend(t, name, 2)
		m.ZeroGrad()
		loss := m.Forward(be, in, tg, B, T)
		if math.Abs(float64(loss)-g.Loss) > 1e-5*g.Loss {
			t.Errorf("%s: loss %.7f, PyTorch %.7f", name, loss, g.Loss)
		}
		t.Logf("%s: loss %.7f, PyTorch %.7f", name, loss, g.Loss)
		m.Backward(be)
		for _, tn := range m.Tensors() {
			if d := maxRelDiff(decode(g.Grads[tn.Name]), m.Grads[tn.Offset:tn.Offset+tn.Len]); d > 1e-4 {
				t.Errorf("%s: gradient of %s differs from PyTorch's by %.2g (relative to its largest)", name, tn.Name, d)
			}
		}
	}
}
