package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/schemas"
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

// evalExpert and evalReport are the --json output of `pipeline eval` (and
// the eval part of `pipeline run`'s summary).
type (
	evalExpert = flow.ExpertBPB
	evalReport = flow.EvalReport
)

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
	process.ByteSizeVar(fs, &f.maxDocBytes, "max-doc-bytes", 4096, "bytes of each document evaluated (0: all)")
	fs.BoolVar(&f.alone, "alone", true, "also evaluate every expert alone and the dense baseline")
	fs.StringVar(&f.backend, "backend", "cpu", "accel backend")
	fs.IntVar(&f.threads, "threads", 0, "threads (0: all CPUs)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object")
	return cmd
}

func parseTopK(list []string) ([]flow.Choice, error) {
	var out []flow.Choice
	for _, s := range list {
		c, err := flow.ParseChoice(s)
		if err != nil {
			return nil, fmt.Errorf("--topk %q: want a positive number or all", s)
		}
		out = append(out, c)
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
		if v, ok := rep.MixtureBPB[c.Name]; ok {
			fmt.Fprintf(w, "mixture %s\t%.4f\t%.3f\n", c.Name, v, math.Exp2(v))
		}
	}
	fmt.Fprintf(a.stderr, "eval: %d documents, %s predicted bytes in %.1fs\n", rep.Docs, humanCount(rep.Bytes), rep.Seconds)
	return w.Flush()
}

// evaluate loads the mixture of f.out and f.router, reads the held-out
// documents of f.in and evaluates them with flow.
func (a *app) evaluate(ctx context.Context, f *evalFlags, choices []flow.Choice) (*evalReport, error) {
	start := time.Now()
	m, err := flow.LoadMixture(ctx, flow.MixtureConfig{
		Out: f.out, RouterDir: f.router, Temperature: f.temperature,
		Backend: f.backend, Threads: f.threads, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	dr := schemas.NewDocReader(f.in, schemas.Limits{}, a.stdin, a.log)
	defer dr.Close()
	want := f.maxDocs
	if want == 0 {
		want = 1 << 62
	}
	if _, err := dr.Next(want); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(dr.Texts()) == 0 {
		return nil, fmt.Errorf("no documents in %v", f.in)
	}
	texts := dr.Texts()[:min(len(dr.Texts()), want)]
	bar := a.newProgress("eval", int64(len(texts)), false)
	defer bar.finish()
	rep, err := m.Evaluate(ctx, texts, flow.EvalConfig{
		Choices: choices, MaxDocBytes: f.maxDocBytes, Alone: f.alone,
		Progress: func(int) { bar.add(1) },
	})
	if err != nil {
		return nil, err
	}
	rep.Seconds = seconds(time.Since(start))
	return rep, nil
}
