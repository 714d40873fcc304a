package main

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
	"github.com/domainflow/domainflow/stages/train"
	"github.com/spf13/cobra"
)

// defaultRunInput is the demo corpus `pipeline run` (and the benchmarks)
// use without --input (--in), relative to the repository root.
const defaultRunInput = "testdata/mixed-small.jsonl.gz"

// demoCorpus returns defaultRunInput when it is here, else a usage error of
// command cmd saying to give flag.
func demoCorpus(cmd, flag string) (string, error) {
	if _, err := os.Stat(defaultRunInput); err != nil {
		return "", usagef("%s: no %s given and no demo corpus %s here (run from the repository root, or give %s)", cmd, flag, defaultRunInput, flag)
	}
	return defaultRunInput, nil
}

// runFlags are the flags of `pipeline run`.
type runFlags struct {
	input        []string
	fields       fieldFlags
	kafka        kafkaFlags
	k            int
	out          string
	expert       string
	tokens       int64
	seedTokens   int64
	baseline     bool
	skipSeen     bool
	train        bool
	featurizer   string
	balanced     bool
	partitions   int
	heldout      float64
	evalDocs     int
	evalDocBytes int
	threads      int
	seed         uint64
	json         bool
	then         []string
	growCfg      cluster.GrowConfig
	initNew      string
	novelty      cluster.NoveltyRule
	thenGrow     bool
	thenExtra    int64
	progress     string
	untrained    bool
}

// The summary of `pipeline run` (flow.Summary).
type (
	runSummary = flow.Summary
	runDomain  = flow.JobDomain
	runEval    = flow.JobEval
)

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "The whole job: ingest, featurize, discover domains, route, train experts, evaluate",
		Long: `Run every stage against an embedded durable broker (data in --out/broker) unless
--brokers is given:

 1. split the input: 10% of each source (the "source" field, else one group)
    is held out for evaluation (--out/heldout.jsonl.gz), the rest is
    ingested into docs.raw (--out/train.jsonl.gz) in a fixed shuffled order
    (the mixed stream); bad records go to the dead-letter topic with their
    reason;
 2. fit the featurizer and a balanced k-means router on the training
    documents (--out/router);
 3. run the embedding and routing stages until every document is routed to
    docs.domain.<id> or dead-lettered;
 4. train a dense seed on the mixed stream (--seed-tokens), branch one expert
    per domain from it for --tokens-per-domain each, and (unless
    --baseline=false) continue the dense model for k × --tokens-per-domain
    (the same total compute), as c-BTM does;
 5. evaluate on the held-out documents: bits per byte of every expert, the
    dense model and router mixtures (top-1, top-2, all).

Each phase prints a line on stderr when it ends, with its rate (a bar while
it runs on a terminal; --progress). The summary (stdout, and --out/summary.json)
gives each domain's documents routed in the run and at fit, the bytes its
expert trained on (the experts are byte-level: token budgets are bytes),
its training loss (nats per byte, mean of the last 50 steps) and its
held-out bits per byte (lower is better for both), the documents per
source, the dead letters by reason, the settings and the time of each phase.

With --then B: a continuous scenario. After the steps above on --input (A),
B arrives as a new corpus (10% of it held out too) and is ingested after A;
the routing stage runs with growth on (pipeline cluster --grow, thresholds
--grow-*): B's novel documents are parked on docs.novel, new domains are
grown from them, and the parked documents they claim move there. One expert
per new domain is trained with the same --tokens-per-domain, starting as
--init-new says; the old experts are not retrained. Every expert and the
mixtures are then evaluated on A's and on B's held-out documents, and the
summary's "then" part says where B's documents went (by their "source"),
how long until the first document reached a new domain, and both
evaluations.

Every input record is counted and ends routed or dead-lettered. An input
file that cannot be read to its end (a truncated gzip, a corrupt Parquet file)
does not stop the job: its records before the failure go on, the rest of it
counts as one record, dead-lettered as truncated-input or unreadable-file, and
the summary lists it under "incomplete_files" (the exit status stays 0: the job
completed, and a rerun finishes the same way). The job is resumable: run the
same command with the same --out after it was killed at any point and it
completes, ingesting nothing twice, with final experts
bit-identical to an uninterrupted run (same machine and --threads). SIGINT
(Ctrl-C) or SIGTERM stops the job within the phase it is in (the trainers
save a checkpoint) and starts no later phase: it prints "interrupted; run
the same command again to resume" and exits 0, writing no summary. A token
budget larger than a domain's data stops at the end of that data.`,
		Example: `  pipeline run
  pipeline run --input corpus.jsonl.gz --k 8 --out run/ --expert small --tokens-per-domain 2000000 --json
  pipeline run --input a.jsonl.gz --then b.jsonl.gz --grow-min 100 --out run/   # B arrives later: new domains`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runJob(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.input, "input", nil, "input `files` (default "+defaultRunInput+")")
	f.fields.register(fs)
	f.kafka.Register(fs)
	// run brings its own broker: only an explicit --brokers replaces it.
	// $DOMAINFLOW_BROKERS, exported for the stage commands, would otherwise
	// pour the demo into a shared docs.raw.
	bf := fs.Lookup("brokers")
	bf.DefValue, bf.Usage = "[]", "run against these Kafka `brokers` (host:port, comma-separated) instead of the embedded broker; $"+envBrokers+" is not used here"
	fs.IntVar(&f.k, "k", 4, "number of domains")
	fs.StringVar(&f.out, "out", "run", "output `dir` (broker data, router, experts, held-out set, summary)")
	fs.StringVar(&f.expert, "expert", "tiny", "expert size: "+strings.Join(train.ConfigNames(), ", "))
	process.ByteSizeVar(fs, &f.tokens, "tokens-per-domain", 150000, "training bytes per domain expert")
	process.ByteSizeVar(fs, &f.seedTokens, "seed-tokens", 50000, "training bytes of the dense seed the experts branch from (0: no seed)")
	fs.BoolVar(&f.baseline, "baseline", true, "also continue the dense model for k × --tokens-per-domain")
	fs.BoolVar(&f.skipSeen, "skip-seen", false, "experts skip the documents the seed trained on, as the dense baseline does (see pipeline train --skip-seen)")
	fs.BoolVar(&f.train, "train", true, "train and evaluate; --train=false stops once every document is routed")
	fs.StringVar(&f.featurizer, "featurizer", "tfidf", "featurizer: tfidf, lsa (c-BTM's whole featurization: tf-idf → truncated SVD → L2) or hashing")
	fs.BoolVar(&f.balanced, "balanced", true, "balanced domains")
	fs.IntVar(&f.partitions, "partitions", 1, "partitions of the topics (1 keeps the job bit-reproducible after a crash)")
	fs.Float64Var(&f.heldout, "heldout", 0.1, "fraction of each source held out for evaluation")
	fs.IntVar(&f.evalDocs, "eval-docs", 200, "held-out documents evaluated (0: all)")
	process.ByteSizeVar(fs, &f.evalDocBytes, "eval-doc-bytes", 2048, "bytes of each held-out document evaluated (0: all)")
	fs.IntVar(&f.threads, "threads", 0, "training threads (0: all CPUs)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the split-independent randomness (k-means, model init)")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object")
	fs.StringSliceVar(&f.then, "then", nil, "input `files` of a second corpus that arrives after the first, with growth on (see above)")
	growThresholdFlags(fs, &f.growCfg) // the growth's seed is --seed
	noveltyFlags(fs, &f.novelty)
	fs.BoolVar(&f.thenGrow, "then-grow", true, "with --then: grow new domains; false routes B into the old domains (the frozen system) and trains the old experts --then-extra-tokens more")
	process.ByteSizeVar(fs, &f.thenExtra, "then-extra-tokens", 0, "with --then-grow=false: training bytes, in all, the old experts get for B (split evenly)")
	fs.BoolVar(&f.untrained, "allow-untrained", false, "succeed even when a model trained on 0 bytes (its data is smaller than one training step); by default that fails the run")
	fs.StringVar(&f.initNew, "init-new", string(flow.DefaultInit), "with --then: how the new domains' experts start: seed, nearest or average (see pipeline train --init-new)")
	fs.StringVar(&f.progress, "progress", progressAuto, "progress of each phase on stderr: auto (a bar on a terminal, else lines), bars, lines (one per phase, with its rate) or none")
	return cmd
}

// runJob turns the flags into a flow.Job, runs it and prints its summary.
func (a *app) runJob(cmd *cobra.Command, f *runFlags) error {
	if len(f.input) == 0 {
		in, err := demoCorpus("run", "--input")
		if err != nil {
			return err
		}
		f.input = []string{in}
	}
	job := flow.Job{Inputs: f.input, Stdin: a.stdin, TextField: f.fields.text, IDField: f.fields.id, Out: f.out, K: f.k, Expert: f.expert, TokensPerDomain: f.tokens,
		SeedTokens: f.seedTokens, Baseline: f.baseline, SkipSeen: f.skipSeen, Train: f.train, Featurizer: embed.Kind(f.featurizer),
		Balanced: f.balanced, Partitions: f.partitions, Heldout: f.heldout, EvalDocs: f.evalDocs, EvalDocBytes: f.evalDocBytes,
		Threads: f.threads, Seed: f.seed, Logger: a.log.With("cmd", "run"),
		Then: f.then, Grow: f.growCfg, NewExpertInit: flow.InitStrategy(f.initNew), Novelty: f.novelty,
		ThenFrozen: !f.thenGrow, ThenExtraTokens: f.thenExtra, AllowUntrained: f.untrained}
	if err := job.Validate(); err != nil {
		return usagef("run: %v", strings.TrimPrefix(err.Error(), flow.ErrJobConfig.Error()+": "))
	}
	progress, clearProgress, err := a.newRunProgress(f.progress)
	if err != nil {
		return err
	}
	job.Progress = progress
	if f.kafka.Source() == process.FromFlag {
		cc, err := f.kafka.Connect(cmd.Context(), a.log)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		job.Client = &cc
	}
	sum, err := job.Run(cmd.Context())
	if errors.Is(err, flow.ErrInterrupted) {
		// A graceful stop (SIGINT/SIGTERM): exit status 0, as every
		// command's; what was done is kept in --out.
		clearProgress()
		a.log.Debug("run interrupted", "err", err)
		fmt.Fprintln(a.stderr, "pipeline: run: interrupted; run the same command again to resume")
		return nil
	}
	if errors.Is(err, flow.ErrUntrained) && !f.json {
		a.printRunSummary(*sum) // what was trained, then why it fails
	}
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if f.json {
		return writeJSON(a.stdout, sum)
	}
	a.printRunSummary(*sum)
	return nil
}

// printRunSummary prints the summary tables.
func (a *app) printRunSummary(s runSummary) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	dups := ""
	if s.DocsDuplicates > 0 {
		dups = fmt.Sprintf(" (%d re-sent duplicates dropped)", s.DocsDuplicates)
	}
	secs := fmt.Sprintf("%.1fs", s.Seconds)
	if len(s.Resumed) > 0 {
		secs += fmt.Sprintf(" (this resumed run %.1fs)", s.InvocationSeconds)
	}
	fmt.Fprintf(w, "documents: %d in, %d routed, %d dead-lettered, %d held out%s; %s; output in %s\n\n",
		s.DocsIn, s.DocsRouted, s.DocsDeadletter, s.DocsHeldout, dups, secs, s.Out)
	if len(s.IncompleteFiles) > 0 {
		fmt.Fprintln(w, "INCOMPLETE INPUT FILE\tREASON\tRECORDS READ\tERROR")
		for _, f := range s.IncompleteFiles {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", f.File, f.Reason, f.Records, f.Error)
		}
		fmt.Fprintln(w)
	}
	if len(s.DeadletterReasons) > 0 {
		fmt.Fprintln(w, "DEAD-LETTER REASON\tDOCUMENTS")
		for _, r := range slices.Sorted(maps.Keys(s.DeadletterReasons)) {
			fmt.Fprintf(w, "%s\t%d\n", r, s.DeadletterReasons[r])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "DOMAIN\tROUTED\tAT FIT\tTRAIN BYTES\tTRAIN LOSS (nats/B)\tHELD-OUT BITS/BYTE\tSOURCES\tTOP TERMS")
	bpb := map[string]float64{}
	for _, e := range s.Eval.ExpertBPB {
		bpb[e.Expert] = e.BPB
	}
	for _, d := range s.Domains {
		b := "-"
		if v, ok := bpb[strconv.Itoa(d.ID)]; ok {
			b = fmt.Sprintf("%.3f", v)
		}
		fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Size, d.SizeAtFit, humanBytes(d.Tokens), lossText(d.Tokens, d.Loss), b,
			sourcesLine(d.Sources, 3), strings.Join(d.TopTerms[:min(6, len(d.TopTerms))], " "))
	}
	w.Flush()
	fmt.Fprintln(a.stdout, "  routed: documents routed to the domain in this run; at fit: documents k-means gave it when the router was fitted.")
	fmt.Fprintln(a.stdout, "  train loss: nats per byte, mean of the expert's last 50 steps; held-out bits/byte: on documents no model trained on.")
	fmt.Fprintln(a.stdout, "  Lower is better for both (1 nat = 1.443 bits).")
	fmt.Fprintln(a.stdout)
	if s.Eval.SeedBPB == nil && s.Eval.DenseBPB == nil && len(s.Eval.MixtureBPB) == 0 {
		fmt.Fprintln(w, "No model was evaluated: no document was held out (see --heldout).")
	} else {
		fmt.Fprintln(w, "MODEL\tHELD-OUT BITS/BYTE")
	}
	if s.Eval.SeedBPB != nil {
		fmt.Fprintf(w, "dense seed (%s)\t%.4f\n", humanBytes(s.SeedTokens), *s.Eval.SeedBPB)
	}
	if s.Eval.DenseBPB != nil {
		from := "from scratch"
		if s.SeedTokens > 0 {
			from = "continues the seed"
		}
		fmt.Fprintf(w, "dense baseline (%s: +%s)\t%.4f\n", from, humanBytes(s.DenseTokens), *s.Eval.DenseBPB)
	}
	for _, k := range []string{"top1", "top2", "all"} {
		if v, ok := s.Eval.MixtureBPB[k]; ok {
			fmt.Fprintf(w, "experts, router mixture %s\t%.4f\n", k, v)
		}
	}
	w.Flush()
	if line := mixtureVerdict(s); line != "" {
		fmt.Fprintln(a.stdout, "  "+line)
	}
	if t := s.Then; t != nil {
		a.printThenSummary(w, t)
	}
	w.Flush()
}

// lossText is a model's training loss for the summary: "-" for a model
// that trained on no byte (it has no loss).
func lossText(trained int64, loss float64) string {
	if trained == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", loss)
}

// mixtureVerdict is one line when the dense baseline beats the best router
// mixture: why, at small compute, and where the mixture wins.
func mixtureVerdict(s runSummary) string {
	if s.Eval.DenseBPB == nil || len(s.Eval.MixtureBPB) == 0 {
		return ""
	}
	best := math.Inf(1)
	for _, v := range s.Eval.MixtureBPB {
		best = min(best, v)
	}
	if best <= *s.Eval.DenseBPB {
		return "The router mixture beats the dense baseline at the same total compute."
	}
	per := int64(0)
	if len(s.Domains) > 0 {
		per = s.DenseTokens / int64(len(s.Domains))
	}
	return fmt.Sprintf("The dense baseline wins at this small compute: each expert trained on only %s of its domain, while the dense model saw all %s.\n"+
		"  The mixture wins with more bytes per expert: %s (BENCHMARKS.md §8).", humanBytes(per), humanBytes(s.DenseTokens), mixtureWinsAt)
}

// sourcesLine is "spam-assassin 70, brown 5 (+2 more)": the n largest
// sources of a domain.
func sourcesLine(src map[string]int64, n int) string {
	if len(src) == 0 {
		return "-"
	}
	keys := slices.Collect(maps.Keys(src))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(src[b], src[a]), cmp.Compare(a, b)) })
	var parts []string
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %d", cmp.Or(k, "(none)"), src[k]))
	}
	out := strings.Join(parts, ", ")
	if len(keys) > n {
		out += fmt.Sprintf(" (+%d more)", len(keys)-n)
	}
	return out
}

// printThenSummary prints the second phase of a continuous run.
func (a *app) printThenSummary(w *tabwriter.Writer, t *flow.ThenSummary) {
	fmt.Fprintf(w, "\nthen: %d in, %d routed (%d into new domains, %d into old ones), %d pending (novel, in no domain), %d dead-lettered, %d held out\n",
		t.DocsIn, t.DocsRouted, t.InNewDomains, t.InOldDomains, t.DocsPending, t.DocsDeadletter, t.DocsHeldout)
	if t.FirstNewDocs >= 0 {
		fmt.Fprintf(w, "growths: %d (router v%d); first document in a new domain after %.1fs, at document %d of the new corpus\n\n",
			t.Growths, t.RouterVersion, t.FirstNewSeconds, t.FirstNewDocs)
	} else {
		fmt.Fprintf(w, "growths: %d (router v%d); no document reached a new domain\n\n", t.Growths, t.RouterVersion)
	}
	fmt.Fprintln(w, "SOURCE\tNEW DOMAINS\tOLD DOMAINS\tPENDING")
	for _, src := range slices.Sorted(maps.Keys(t.Sources)) {
		p := t.Sources[src]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", cmp.Or(src, "(none)"), p.New, p.Old, p.Pending)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "NEW DOMAIN\tROUTED\tTRAIN BYTES\tTRAIN LOSS (nats/B)\tTOP TERMS")
	for _, d := range t.NewDomains {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", d.ID, d.Size, humanBytes(d.Tokens), lossText(d.Tokens, d.Loss), strings.Join(d.TopTerms[:min(6, len(d.TopTerms))], " "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "MODEL (init %s)\tBITS/BYTE ON A\tBITS/BYTE ON B\n", t.Init)
	for _, k := range []string{"top1", "top2", "all"} {
		va, oka := t.EvalA.MixtureBPB[k]
		vb, okb := t.EvalB.MixtureBPB[k]
		if oka || okb {
			fmt.Fprintf(w, "experts, router mixture %s\t%.4f\t%.4f\n", k, va, vb)
		}
	}
}
