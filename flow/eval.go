package flow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/domainflow/domainflow/stages/train"
)

// A Choice is one mixture Evaluate reports: the K experts of largest
// weight kept per chunk (K 0: all domain experts), under Name.
type Choice struct {
	Name string // "top<K>", or "all"
	K    int
}

// ParseChoice reads "all" (every domain expert) or a positive number n
// (the top n) as a Choice named "all" or "top<n>".
func ParseChoice(s string) (Choice, error) {
	if s == "all" {
		return Choice{Name: "all"}, nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 {
		return Choice{}, fmt.Errorf("flow: mixture choice %q: want a positive number or all", s)
	}
	return Choice{Name: "top" + s, K: k}, nil
}

// EvalConfig configures Evaluate.
type EvalConfig struct {
	// Choices are the mixtures reported. None: only the experts alone.
	Choices []Choice
	// MaxDocBytes is how many leading bytes of each document are
	// evaluated. Default 0: all.
	MaxDocBytes int
	// Alone also reports every expert alone, and the dense baseline (the
	// expert named "dense") when there is one. Without it only the experts
	// some mixture keeps are run, and only on the chunks it keeps them for.
	Alone bool
	// Progress, when set, is called after each document with the number
	// of documents done.
	Progress func(done int)
}

// ExpertBPB is one expert's line of an EvalReport.
type ExpertBPB struct {
	Expert     string  `json:"expert"`
	BPB        float64 `json:"bpb"`
	Perplexity float64 `json:"perplexity"` // per byte: 2^bpb
}

// EvalReport is what Evaluate measured; it is the JSON of `pipeline eval`.
type EvalReport struct {
	Docs        int         `json:"docs"`
	Bytes       int64       `json:"bytes"` // predicted bytes
	Temperature float64     `json:"temperature"`
	DenseBPB    *float64    `json:"dense_bpb"` // nil without Alone or a "dense" expert
	ExpertBPB   []ExpertBPB `json:"expert_bpb"`
	// MixtureBPB is keyed by Choice.Name.
	MixtureBPB map[string]float64 `json:"mixture_bpb"`
	// ChunkForwards counts chunk forwards per choice: each mixture runs
	// only the experts it keeps.
	ChunkForwards map[string]int64 `json:"chunk_forwards"`
	// Seconds is the wall time of Evaluate (the CLI reports its whole
	// command's).
	Seconds float64 `json:"seconds"`
}

// Evaluate scores the documents texts, each as a separator followed by
// its first cfg.MaxDocBytes bytes: the bits per byte of every expert alone
// (with cfg.Alone) and of each mixture of cfg.Choices, over all predicted
// bytes. When no domain of the router has an expert, the mixtures are
// skipped with a warning.
func (m *Mixture) Evaluate(ctx context.Context, texts []string, cfg EvalConfig) (*EvalReport, error) {
	start := time.Now()
	if len(texts) == 0 {
		return nil, errors.New("flow: evaluate: no documents")
	}
	choices := cfg.Choices
	if m.nDomain == 0 && len(choices) > 0 {
		router := m.router.Model.IDs
		m.log.Warn("no expert for any domain of the router: mixtures skipped", "router_ids", router, "experts", m.names)
		choices = nil
	}
	ks := make([]int, len(choices))
	for i, c := range choices {
		ks[i] = c.K
	}
	s := m.newScorer(ks, cfg.Alone)
	for d, text := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := []byte(text)
		if cfg.MaxDocBytes > 0 && len(b) > cfg.MaxDocBytes {
			b = b[:cfg.MaxDocBytes]
		}
		if err := s.add(ctx, b); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(d + 1)
		}
	}
	rep := &EvalReport{
		Docs: len(texts), Bytes: s.bytes, Temperature: m.temp,
		MixtureBPB: map[string]float64{}, ChunkForwards: map[string]int64{},
	}
	if cfg.Alone {
		for i, n := range m.names {
			bpb := train.BitsPerByte(s.aloneSum[i], s.bytes)
			rep.ExpertBPB = append(rep.ExpertBPB, ExpertBPB{Expert: n, BPB: bpb, Perplexity: math.Exp2(bpb)})
			if n == "dense" {
				rep.DenseBPB = &bpb
			}
		}
	}
	for ci, c := range choices {
		rep.MixtureBPB[c.Name] = train.BitsPerByte(s.mixSum[ci], s.bytes)
		if s.forwards[ci] > 0 {
			rep.ChunkForwards[c.Name] += s.forwards[ci]
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}
