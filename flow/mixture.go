package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // the default backend
	"github.com/domainflow/domainflow/stages/train"
)

// ErrNoDomainExperts is returned by Weights, NextByte and Score when no
// domain of the router has an expert, so there is nothing to mix.
// Evaluate then reports the experts alone and skips the mixtures.
var ErrNoDomainExperts = errors.New("flow: no expert for any domain of the router")

// MixtureConfig configures LoadMixture. Only Out is required.
type MixtureConfig struct {
	// Out is the training output dir: the experts are its
	// experts/<name>/ checkpoints (train.LoadExperts), and the expert of
	// domain id d is the one named d. Required.
	Out string
	// RouterDir is the router dir (featurizer state and router versions;
	// the newest router is used). Default Out/router, where `pipeline run`
	// puts it.
	RouterDir string
	// TopK is how many experts Weights, NextByte and Score keep: the TopK
	// largest weights, renormalized. Default 0: every domain expert.
	TopK int
	// Temperature is T of the routing weights softmax(−d²/T). Default 0.1.
	Temperature float64
	// Backend names the accel backend the experts run on. Default "cpu".
	Backend string
	// Threads is the backend's thread count. Default 0: one per CPU.
	Threads int
	// Logger receives warnings (damaged checkpoints skipped, mixtures
	// skipped). Default slog.Default().
	Logger *slog.Logger
}

// Mixture is a c-BTM mixture of experts: domain experts, each trained on
// the documents of one domain of a router, mixed per chunk with weights
// from routing the text so far.
//
// Text is scored as `pipeline eval` and training see a document: a
// separator byte '\n' followed by the text, cut into chunks of T bytes,
// the experts' context length (Context). Within a chunk an expert sees the
// chunk so far; at each chunk boundary the context restarts and the text
// before the chunk is routed again. The weights of chunk c come from the
// squared distances d² of text[:c·T] to the router's centroids:
// softmax(−d²/Temperature) over the domains that have an expert, the TopK
// largest kept and renormalized. The first chunk has no text to route on:
// every domain expert gets an equal weight.
//
// A Mixture is safe for concurrent use. Routing runs in parallel; the
// experts' forward passes are serialized, since they share one
// accel.Backend (used by one goroutine at a time) and each model keeps its
// activations.
type Mixture struct {
	router *Router
	temp   float64
	topK   int
	log    *slog.Logger

	names    []string       // every expert, in train.ExpertLess order
	models   []*train.Model // models[i] is expert names[i]'s
	centroid []int          // expert i → its centroid row, -1 for a non-domain expert
	domain   []int          // centroid j → its expert's index, -1 when it has none
	avail    []bool         // centroid j has an expert
	nDomain  int            // centroids with an expert
	ctxLen   int            // T: the domain experts' context length

	mu sync.Mutex // guards be and the models' activations
	be accel.Backend
}

// LoadMixture loads the experts of cfg.Out and the router of cfg.RouterDir
// and opens the backend. Domain experts must share one context length.
// Experts that are not domain experts (the dense baseline, merged ones)
// are loaded too: Evaluate reports them alone.
func LoadMixture(ctx context.Context, cfg MixtureConfig) (*Mixture, error) {
	if cfg.Out == "" {
		return nil, errors.New("flow: mixture: no Out dir")
	}
	temp := cfg.Temperature
	if temp == 0 {
		temp = 0.1
	}
	if temp < 0 || math.IsNaN(temp) || math.IsInf(temp, 0) {
		return nil, fmt.Errorf("flow: mixture: temperature %v: want a positive number", cfg.Temperature)
	}
	if cfg.TopK < 0 {
		return nil, fmt.Errorf("flow: mixture: top-k %d: want 0 (all) or more", cfg.TopK)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names, cks, err := train.LoadExperts(cfg.Out, func(expert string, err error) {
		log.Warn("damaged checkpoint skipped", "expert", expert, "err", err)
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no trained experts in %s", cfg.Out)
	}
	rdir := cfg.RouterDir
	if rdir == "" {
		rdir = filepath.Join(cfg.Out, "router")
	}
	r, err := LoadRouter(rdir)
	if err != nil {
		return nil, fmt.Errorf("router %s: %w", rdir, err)
	}
	backend := cfg.Backend
	if backend == "" {
		backend = "cpu"
	}
	be, err := accel.Open(backend, cfg.Threads)
	if err != nil {
		return nil, err
	}
	models := make([]*train.Model, len(cks))
	for i, c := range cks {
		models[i] = c.Model // the optimizer state is not needed
	}
	return newMixture(r, names, models, be, temp, cfg.TopK, log)
}

// newMixture matches the experts to the router's domains.
func newMixture(r *Router, names []string, models []*train.Model, be accel.Backend, temp float64, topK int, log *slog.Logger) (*Mixture, error) {
	k := r.K()
	m := &Mixture{
		router: r, temp: temp, topK: topK, log: log,
		names: names, models: models, be: be,
		centroid: make([]int, len(names)),
		domain:   make([]int, k),
		avail:    make([]bool, k),
	}
	for i := range m.centroid {
		m.centroid[i] = -1
	}
	for j, id := range r.Model.IDs {
		m.domain[j] = -1
		i := slices.Index(names, strconv.Itoa(id))
		if i < 0 {
			continue
		}
		m.domain[j], m.centroid[i], m.avail[j] = i, j, true
		m.nDomain++
		switch T := models[i].Cfg.Ctx; {
		case m.ctxLen == 0:
			m.ctxLen = T
		case T != m.ctxLen:
			return nil, fmt.Errorf("domain experts have different context lengths (%d and %d): a mixture needs one chunking", m.ctxLen, T)
		}
	}
	if m.ctxLen == 0 {
		m.ctxLen = models[0].Cfg.Ctx
	}
	return m, nil
}

// Experts returns the names of the loaded experts, domain experts (named by
// their domain id) first, in train.ExpertLess order.
func (m *Mixture) Experts() []string { return slices.Clone(m.names) }

// Router returns the router the mixture routes with.
func (m *Mixture) Router() *Router { return m.router }

// Context returns T, the chunk length: the domain experts' context length.
func (m *Mixture) Context() int { return m.ctxLen }

// A Weight is one expert's share of a mixture.
type Weight struct {
	Domain int     // the router's domain id
	Expert string  // the expert's name
	Value  float64 // in (0, 1]; the weights of a mixture sum to 1
}

// Weights routes prefix, the text so far, and returns the kept experts'
// weights, the largest first (ties: in the router's centroid order). An
// empty prefix has nothing to route on and gives every domain expert an
// equal weight, whatever TopK.
func (m *Mixture) Weights(ctx context.Context, prefix []byte) ([]Weight, error) {
	w, err := m.weights(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Weight
	for j, v := range w {
		if v > 0 {
			out = append(out, Weight{Domain: m.router.Model.IDs[j], Expert: m.names[m.domain[j]], Value: v})
		}
	}
	slices.SortStableFunc(out, func(a, b Weight) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
	return out, nil
}

// weights is Weights as one weight per centroid.
func (m *Mixture) weights(ctx context.Context, prefix []byte) ([]float64, error) {
	if m.nDomain == 0 {
		return nil, ErrNoDomainExperts
	}
	if len(prefix) == 0 {
		return m.uniform(), nil
	}
	d2, err := m.router.SquaredDistances(ctx, []string{string(prefix)})
	if err != nil {
		return nil, fmt.Errorf("flow: route: %w", err)
	}
	return train.RouteWeights(d2, m.temp, m.topK, m.avail)
}

// uniform is the weight of a chunk with no text before it: equal over the
// domain experts.
func (m *Mixture) uniform() []float64 {
	u := make([]float64, len(m.avail))
	for j, ok := range m.avail {
		if ok {
			u[j] = 1 / float64(m.nDomain)
		}
	}
	return u
}

// NextByte returns the mixture's distribution of the byte that follows
// text: p[b] = Σ_e w_e·p_e(b), over the experts kept for the chunk the
// next byte falls in (see Mixture for the chunking and routing). The
// result has one probability per byte value (the experts' vocabulary).
// Scoring a text byte by byte with NextByte gives Score's figure up to
// rounding.
func (m *Mixture) NextByte(ctx context.Context, text []byte) ([]float64, error) {
	T := m.ctxLen
	lo := len(text) / T * T // the next byte's chunk starts after text[:lo]
	w, err := m.weights(ctx, text[:lo])
	if err != nil {
		return nil, err
	}
	// The chunk's inputs: the byte before it (the separator for the first)
	// and the chunk so far; input t predicts the byte after it.
	inputs := make([]int32, T)
	if lo == 0 {
		inputs[0] = train.DocSeparator
	} else {
		inputs[0] = int32(text[lo-1])
	}
	for i, b := range text[lo:] {
		inputs[i+1] = int32(b)
	}
	t := len(text) - lo
	var out []float64
	m.mu.Lock()
	defer m.mu.Unlock()
	for j, wj := range w {
		if wj == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e := m.models[m.domain[j]]
		V := e.Cfg.Vocab
		if out == nil {
			out = make([]float64, V)
		} else if len(out) != V {
			return nil, fmt.Errorf("flow: next byte: experts with vocabularies of %d and %d", len(out), V)
		}
		e.Forward(m.be, inputs, nil, 1, T)
		for b, p := range e.Probs()[t*V : (t+1)*V] {
			out[b] += wj * float64(p)
		}
	}
	return out, nil
}

// Score returns the bits per byte of text under the mixture, as a document:
// each byte predicted from the separator and the text before it, chunked
// and routed as described at Mixture. It is what Evaluate reports for a
// mixture keeping TopK experts, on this one document.
func (m *Mixture) Score(ctx context.Context, text []byte) (float64, error) {
	if m.nDomain == 0 {
		return 0, ErrNoDomainExperts
	}
	if len(text) == 0 {
		return 0, errors.New("flow: score: empty text (no byte to predict)")
	}
	s := m.newScorer([]int{m.topK}, false)
	if err := s.add(ctx, text); err != nil {
		return 0, err
	}
	return train.BitsPerByte(s.mixSum[0], s.bytes), nil
}

// scorer accumulates the log-probabilities of documents under the experts
// alone and under mixtures, one per entry of ks.
type scorer struct {
	m        *Mixture
	ks       []int       // per mixture: the experts kept (0: all)
	alone    bool        // also every expert alone
	logp     [][]float32 // per expert: the last document's log-probabilities (reused)
	aloneSum []float64   // per expert: Σ log p
	mixSum   []float64   // per mixture: Σ log p
	forwards []int64     // per mixture: chunk forwards
	bytes    int64       // predicted bytes
}

func (m *Mixture) newScorer(ks []int, alone bool) *scorer {
	return &scorer{
		m: m, ks: ks, alone: alone,
		logp:     make([][]float32, len(m.names)),
		aloneSum: make([]float64, len(m.names)),
		mixSum:   make([]float64, len(ks)),
		forwards: make([]int64, len(ks)),
	}
}

// add scores one document. Each expert runs only on the chunks it is
// needed for: all with alone, else those where some mixture keeps it.
func (s *scorer) add(ctx context.Context, text []byte) error {
	m := s.m
	seq := append([]byte{train.DocSeparator}, text...)
	n := len(seq) - 1
	if n < 1 {
		return nil
	}
	T := m.ctxLen
	nc := train.Chunks(len(seq), T)
	weights, err := m.chunkWeights(ctx, seq, nc, s.ks)
	if err != nil {
		return err
	}
	for i, model := range m.models {
		j := m.centroid[i]
		if j < 0 && !s.alone {
			continue
		}
		needed := func(ch int) bool {
			if s.alone {
				return true
			}
			for ci := range s.ks {
				if weights[ci][ch][j] > 0 {
					return true
				}
			}
			return false
		}
		m.mu.Lock()
		s.logp[i] = train.LogProbsChunks(m.be, model, seq, 16, needed, s.logp[i])
		m.mu.Unlock()
		if s.alone {
			for _, v := range s.logp[i] {
				s.aloneSum[i] += float64(v)
			}
		}
	}
	s.bytes += int64(n)
	k := m.router.K()
	lpk := make([]float32, k)
	for ci := range s.ks {
		for c := range nc {
			w := weights[ci][c]
			for j := range k {
				if w[j] > 0 {
					s.forwards[ci]++
				}
			}
			for p := c * T; p < min(c*T+T, n); p++ {
				for j := range k {
					if w[j] > 0 {
						lpk[j] = s.logp[m.domain[j]][p]
					}
				}
				s.mixSum[ci] += train.MixLogProb(w, lpk)
			}
		}
	}
	return nil
}

// chunkWeights returns per mixture (entry of ks) and chunk of seq (a
// separator and the text) the weights over the router's centroids: uniform
// for the first chunk, else those of the text before the chunk. The texts
// before the chunks are featurized in one call.
func (m *Mixture) chunkWeights(ctx context.Context, seq []byte, nc int, ks []int) ([][][]float64, error) {
	out := make([][][]float64, len(ks))
	if len(ks) == 0 {
		return out, nil
	}
	k, T := m.router.K(), m.ctxLen
	var prefixes []string
	for c := 1; c < nc; c++ {
		prefixes = append(prefixes, string(seq[1:c*T+1]))
	}
	var d2 []float32
	if len(prefixes) > 0 {
		var err error
		if d2, err = m.router.SquaredDistances(ctx, prefixes); err != nil {
			return nil, err
		}
	}
	uniform := m.uniform()
	for ci, topk := range ks {
		out[ci] = make([][]float64, nc)
		out[ci][0] = uniform
		for c := 1; c < nc; c++ {
			w, err := train.RouteWeights(d2[(c-1)*k:c*k], m.temp, topk, m.avail)
			if err != nil {
				return nil, err
			}
			out[ci][c] = w
		}
	}
	return out, nil
}
