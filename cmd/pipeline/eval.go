package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
	"github.com/domainflow/domainflow/stages/train"
)

// evalFlags are the flags of `pipeline eval`.
type evalFlags struct {
	out, router string
	in          []string
	topk        []string
	temperature float64
	maxDocs     int
	maxDocBytes int
	alone       bool
	backend     string
	threads     int
	json        bool
}

// evalExpert is one expert's line of the eval report.
type evalExpert struct {
	Expert     string  `json:"expert"`
	BPB        float64 `json:"bpb"`
	Perplexity float64 `json:"perplexity"` // per byte: 2^bpb
}

// evalReport is the --json output of `pipeline eval`.
type evalReport struct {
	Docs        int                `json:"docs"`
	Bytes       int64              `json:"bytes"` // predicted bytes
	Temperature float64            `json:"temperature"`
	DenseBPB    *float64           `json:"dense_bpb"`
	ExpertBPB   []evalExpert       `json:"expert_bpb"`
	MixtureBPB  map[string]float64 `json:"mixture_bpb"`
	// ExpertForwards counts chunk forwards per routing choice: each mixture
	// runs only the experts it keeps.
	ChunkForwards map[string]int64 `json:"chunk_forwards"`
	Seconds       float64          `json:"seconds"`
}

func (a *app) evalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Bits per byte of each expert, the dense baseline and router mixtures on held-out documents",
		Long: `Evaluate the experts of --out on the documents of --in (held-out text).

Each document is '\n' followed by its first --max-doc-bytes bytes, cut into
chunks of the experts' context length; every byte after the first is predicted
from its chunk so far. Reported, in bits per byte (and per-byte perplexity
2^bpb): every expert alone, the dense baseline (the expert named "dense", when
there is one), and router mixtures. A mixture routes on the text so far: at each
chunk boundary the document's text before the chunk is featurized with the
router's featurizer, weights are softmax(−d²/T) over the squared distances d²
to the domain centroids (T = --temperature), the --topk largest are kept and
renormalized, and the kept experts' next-byte probabilities are mixed. The
first chunk has no text so far: every domain expert gets an equal weight. Only
the experts a mixture keeps are run for it (with --alone=false nothing else is
run).

The router is --router (default: --out/router, where 'pipeline run' puts it);
domain experts are the experts named by a domain id of the router.`,
		Example: `  pipeline eval --out run/ --in heldout.jsonl
  pipeline eval --out run/ --in heldout.jsonl --topk 1,2,all --temperature 0.1 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runEval(cmd.Context(), &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.out, "out", "", "training output `dir` (experts in DIR/experts)")
	fs.StringVar(&f.router, "router", "", "router `dir` (default --out/router)")
	fs.StringSliceVar(&f.in, "in", nil, "held-out input `files`")
	fs.StringSliceVar(&f.topk, "topk", []string{"1", "2", "all"}, "mixtures to report: numbers of experts kept, or all")
	fs.Float64Var(&f.temperature, "temperature", 0.1, "routing temperature T of softmax(−d²/T)")
	fs.IntVar(&f.maxDocs, "max-docs", 500, "evaluate at most this many documents (0: all)")
	fs.IntVar(&f.maxDocBytes, "max-doc-bytes", 4096, "bytes of each document evaluated (0: all)")
	fs.BoolVar(&f.alone, "alone", true, "also evaluate every expert alone and the dense baseline")
	fs.StringVar(&f.backend, "backend", "cpu", "accel backend")
	fs.IntVar(&f.threads, "threads", 0, "threads (0: all CPUs)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object")
	return cmd
}

// mixChoice is one routing choice: keep the top k (0: all).
type mixChoice struct {
	name string
	k    int
}

func parseTopK(list []string) ([]mixChoice, error) {
	var out []mixChoice
	for _, s := range list {
		if s == "all" {
			out = append(out, mixChoice{"all", 0})
			continue
		}
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 {
			return nil, fmt.Errorf("--topk %q: want a positive number or all", s)
		}
		out = append(out, mixChoice{"top" + s, k})
	}
	return out, nil
}

func (a *app) runEval(ctx context.Context, f *evalFlags) error {
	if f.out == "" || len(f.in) == 0 {
		return usagef("eval: --out and --in are required")
	}
	choices, err := parseTopK(f.topk)
	if err != nil {
		return usagef("eval: %v", err)
	}
	if f.temperature <= 0 || f.maxDocs < 0 || f.maxDocBytes < 0 {
		return usagef("eval: --temperature must be positive, --max-docs and --max-doc-bytes not negative")
	}
	rep, err := a.evaluate(ctx, f, choices)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if f.json {
		return writeJSON(a.stdout, rep)
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MODEL\tBITS/BYTE\tPERPLEXITY")
	if rep.DenseBPB != nil {
		fmt.Fprintf(w, "dense\t%.4f\t%.3f\n", *rep.DenseBPB, math.Exp2(*rep.DenseBPB))
	}
	for _, e := range rep.ExpertBPB {
		if e.Expert != "dense" {
			fmt.Fprintf(w, "expert %s\t%.4f\t%.3f\n", e.Expert, e.BPB, e.Perplexity)
		}
	}
	for _, c := range choices {
		if v, ok := rep.MixtureBPB[c.name]; ok {
			fmt.Fprintf(w, "mixture %s\t%.4f\t%.3f\n", c.name, v, math.Exp2(v))
		}
	}
	fmt.Fprintf(a.stderr, "eval: %d documents, %s predicted bytes in %.1fs\n", rep.Docs, humanCount(rep.Bytes), rep.Seconds)
	return w.Flush()
}

// evaluate computes the eval report (also used by `pipeline run`).
func (a *app) evaluate(ctx context.Context, f *evalFlags, choices []mixChoice) (*evalReport, error) {
	start := time.Now()
	names, cks, err := a.loadExperts(f.out)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no trained experts in %s", f.out)
	}
	rdir := f.router
	if rdir == "" {
		rdir = filepath.Join(f.out, "router")
	}
	state, rm, err := loadRouterDir(rdir)
	if err != nil {
		return nil, fmt.Errorf("router %s: %w", rdir, err)
	}
	be, err := accel.Open(f.backend, f.threads)
	if err != nil {
		return nil, err
	}
	// Domain experts, in router centroid order.
	k := rm.K()
	domainCk := make([]*train.Checkpoint, k)
	available := make([]bool, k)
	byName := map[string]*train.Checkpoint{}
	for i, n := range names {
		byName[n] = cks[i]
	}
	ctxLen := 0
	for j, id := range rm.IDs {
		if c, ok := byName[strconv.Itoa(id)]; ok {
			domainCk[j], available[j] = c, true
			if ctxLen == 0 {
				ctxLen = c.Model.Cfg.Ctx
			} else if c.Model.Cfg.Ctx != ctxLen {
				return nil, fmt.Errorf("domain experts have different context lengths (%d and %d): a mixture needs one chunking", ctxLen, c.Model.Cfg.Ctx)
			}
		}
	}
	nDomain := 0
	for _, ok := range available {
		if ok {
			nDomain++
		}
	}
	if nDomain == 0 && len(choices) > 0 {
		a.log.Warn("no expert for any domain of the router: mixtures skipped", "router_ids", rm.IDs, "experts", names)
		choices = nil
	}
	if ctxLen == 0 {
		ctxLen = cks[0].Model.Cfg.Ctx
	}
	dr := &docReader{a: a, paths: f.in, lim: schemas.Limits{}, log: a.log}
	defer dr.close()
	want := f.maxDocs
	if want == 0 {
		want = 1 << 62
	}
	if _, err := dr.next(want); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(dr.texts) == 0 {
		return nil, fmt.Errorf("no documents in %v", f.in)
	}
	texts := dr.texts[:min(len(dr.texts), want)]

	rep := &evalReport{Docs: len(texts), Temperature: f.temperature, MixtureBPB: map[string]float64{}, ChunkForwards: map[string]int64{}}
	aloneSum := make([]float64, len(names))
	mixSum := make([]float64, len(choices))
	bar := a.newProgress("eval", int64(len(texts)), false)
	defer bar.finish()
	logp := make([][]float32, len(names))
	domIdx := make([]int, k) // centroid row → index of its expert in names
	for j, c := range domainCk {
		domIdx[j] = slices.Index(cks, c)
	}
	for _, text := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := []byte(text)
		if f.maxDocBytes > 0 && len(b) > f.maxDocBytes {
			b = b[:f.maxDocBytes]
		}
		seq := append([]byte{train.DocSeparator}, b...)
		n := len(seq) - 1
		if n < 1 {
			bar.add(1)
			continue
		}
		nc := train.Chunks(len(seq), ctxLen)
		// Weights per choice and chunk, from the text before each chunk.
		weights, err := chunkWeights(ctx, state, rm, seq, nc, ctxLen, f.temperature, choices, available)
		if err != nil {
			return nil, err
		}
		for i, name := range names {
			c := byName[name]
			j := slices.Index(domainCk, c)
			needed := func(ch int) bool {
				if f.alone {
					return true
				}
				for ci := range choices {
					if j >= 0 && weights[ci][ch][j] > 0 {
						return true
					}
				}
				return false
			}
			if j < 0 && !f.alone {
				continue
			}
			logp[i] = train.LogProbsChunks(be, c.Model, seq, 16, needed, logp[i])
			if f.alone {
				for _, v := range logp[i] {
					aloneSum[i] += float64(v)
				}
			}
		}
		rep.Bytes += int64(n)
		lpk := make([]float32, k)
		for ci, ch := range choices {
			for c := range nc {
				w := weights[ci][c]
				for j := range k {
					if w[j] > 0 {
						rep.ChunkForwards[ch.name]++
					}
				}
				for p := c * ctxLen; p < min(c*ctxLen+ctxLen, n); p++ {
					for j := range k {
						if w[j] > 0 {
							lpk[j] = logp[domIdx[j]][p]
						}
					}
					mixSum[ci] += train.MixLogProb(w, lpk)
				}
			}
		}
		bar.add(1)
	}
	if f.alone {
		for i, n := range names {
			bpb := train.BitsPerByte(aloneSum[i], rep.Bytes)
			rep.ExpertBPB = append(rep.ExpertBPB, evalExpert{Expert: n, BPB: bpb, Perplexity: math.Exp2(bpb)})
			if n == "dense" {
				rep.DenseBPB = &bpb
			}
		}
	}
	for ci, ch := range choices {
		rep.MixtureBPB[ch.name] = train.BitsPerByte(mixSum[ci], rep.Bytes)
	}
	rep.Seconds = seconds(time.Since(start))
	return rep, nil
}

// chunkWeights returns per choice and chunk the mixture weights over the
// router's centroids: uniform over the available experts for the first chunk
// (no text yet), else RouteWeights of the text before the chunk.
func chunkWeights(ctx context.Context, s *embed.State, rm *cluster.RouterModel, seq []byte, nc, T int, temp float64, choices []mixChoice, available []bool) ([][][]float64, error) {
	k := rm.K()
	out := make([][][]float64, len(choices))
	if len(choices) == 0 {
		return out, nil
	}
	var prefixes []string
	for c := 1; c < nc; c++ {
		prefixes = append(prefixes, string(seq[1:c*T+1]))
	}
	var d2 []float32
	if len(prefixes) > 0 {
		v, err := s.Featurizer.Transform(ctx, prefixes)
		if err != nil {
			return nil, fmt.Errorf("featurize: %w", err)
		}
		d2 = rm.Model.SquaredDistances(rowsOf(v))
	}
	uniform := make([]float64, k)
	nAvail := 0
	for _, ok := range available {
		if ok {
			nAvail++
		}
	}
	for j, ok := range available {
		if ok {
			uniform[j] = 1 / float64(nAvail)
		}
	}
	for ci, ch := range choices {
		out[ci] = make([][]float64, nc)
		out[ci][0] = uniform
		for c := 1; c < nc; c++ {
			w, err := train.RouteWeights(d2[(c-1)*k:c*k], temp, ch.k, available)
			if err != nil {
				return nil, err
			}
			out[ci][c] = w
		}
	}
	return out, nil
}
