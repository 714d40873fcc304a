package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// defaultRunInput is the demo corpus `pipeline run` uses without --input.
const defaultRunInput = "testdata/mixed-small.jsonl.gz"

// runFlags are the flags of `pipeline run`.
type runFlags struct {
	input        []string
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
}

// runDomain is one domain of the run summary.
type runDomain struct {
	ID       int      `json:"id"`
	Size     int64    `json:"size"` // documents routed to it
	TopTerms []string `json:"top_terms"`
	Tokens   int64    `json:"tokens"`
	Loss     float64  `json:"loss"`
}

// runEval is the evaluation part of the run summary.
type runEval struct {
	DenseBPB   *float64           `json:"dense_bpb"`
	SeedBPB    *float64           `json:"seed_bpb,omitempty"`
	ExpertBPB  []evalExpert       `json:"expert_bpb"`
	MixtureBPB map[string]float64 `json:"mixture_bpb"`
}

// runSummary is the --json output of `pipeline run`.
type runSummary struct {
	DocsIn         int64 `json:"docs_in"`
	DocsRouted     int64 `json:"docs_routed"`
	DocsDeadletter int64 `json:"docs_deadletter"`
	DocsHeldout    int64 `json:"docs_heldout"`
	// IncompleteFiles are the input files that could not be read to their
	// end: each one's records before the failure are in the run, and the
	// rest of it is one record of docs_in, dead-lettered (reason
	// truncated-input or unreadable-file).
	IncompleteFiles []incompleteFile `json:"incomplete_files,omitempty"`
	// RawMessages is the number of messages on docs.raw: the documents
	// ingested, each once even when the run was killed and resumed.
	RawMessages int64       `json:"raw_messages"`
	Domains     []runDomain `json:"domains"`
	SeedTokens  int64       `json:"seed_tokens"`
	DenseTokens int64       `json:"dense_tokens"`
	Eval        runEval     `json:"eval"`
	Seconds     float64     `json:"seconds"`
	// Phases holds the wall seconds of each phase of this invocation
	// (a resumed run only times what it redid).
	Phases       map[string]float64 `json:"phases"`
	PeakRSSBytes int64              `json:"peak_rss_bytes"`
	Out          string             `json:"out"`
}

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

Every input record is counted and ends routed or dead-lettered. An input
file that cannot be read to its end (a truncated gzip, a corrupt Parquet file)
does not stop the job: its records before the failure go on, the rest of it
counts as one record, dead-lettered as truncated-input or unreadable-file, and
the summary lists it under "incomplete_files" (the exit status stays 0: the job
completed, and a rerun finishes the same way). The job is resumable: run the
same command with the same --out after it was killed at any point and it
completes, ingesting nothing twice, with final experts
bit-identical to an uninterrupted run (same machine and --threads). A token
budget larger than a domain's data stops at the end of that data.`,
		Example: `  pipeline run
  pipeline run --input corpus.jsonl.gz --k 8 --out run/ --expert small --tokens-per-domain 2000000 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runJob(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.input, "input", nil, "input `files` (default "+defaultRunInput+")")
	f.kafka.register(fs)
	fs.IntVar(&f.k, "k", 4, "number of domains")
	fs.StringVar(&f.out, "out", "run", "output `dir` (broker data, router, experts, held-out set, summary)")
	fs.StringVar(&f.expert, "expert", "tiny", "expert size: "+strings.Join(train.ConfigNames(), ", "))
	fs.Int64Var(&f.tokens, "tokens-per-domain", 150000, "training bytes per domain expert")
	fs.Int64Var(&f.seedTokens, "seed-tokens", 50000, "training bytes of the dense seed the experts branch from (0: no seed)")
	fs.BoolVar(&f.baseline, "baseline", true, "also continue the dense model for k × --tokens-per-domain")
	fs.BoolVar(&f.skipSeen, "skip-seen", false, "experts skip the documents the seed trained on, as the dense baseline does (see pipeline train --skip-seen)")
	fs.BoolVar(&f.train, "train", true, "train and evaluate; --train=false stops once every document is routed")
	fs.StringVar(&f.featurizer, "featurizer", "tfidf", "featurizer: tfidf, lsa (c-BTM's whole featurization: tf-idf → truncated SVD → L2) or hashing")
	fs.BoolVar(&f.balanced, "balanced", true, "balanced domains")
	fs.IntVar(&f.partitions, "partitions", 1, "partitions of the topics (1 keeps the job bit-reproducible after a crash)")
	fs.Float64Var(&f.heldout, "heldout", 0.1, "fraction of each source held out for evaluation")
	fs.IntVar(&f.evalDocs, "eval-docs", 200, "held-out documents evaluated (0: all)")
	fs.IntVar(&f.evalDocBytes, "eval-doc-bytes", 2048, "bytes of each held-out document evaluated (0: all)")
	fs.IntVar(&f.threads, "threads", 0, "training threads (0: all CPUs)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the split-independent randomness (k-means, model init)")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object")
	return cmd
}

// sub runs another pipeline command in this process, with this run's log
// level, and returns its stdout.
func (a *app) sub(ctx context.Context, args ...string) ([]byte, error) {
	var out bytes.Buffer
	full := append([]string{"--log-level", a.global.logLevel}, args...)
	if code := run(ctx, full, strings.NewReader(""), &out, a.stderr); code != 0 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pipeline %s: exit status %d", strings.Join(args, " "), code)
	}
	return out.Bytes(), nil
}

func (a *app) runJob(cmd *cobra.Command, f *runFlags) error {
	ctx := cmd.Context()
	if f.k < 1 || f.tokens < 1 || f.seedTokens < 0 || f.partitions < 1 || f.heldout < 0 || f.heldout >= 1 || f.evalDocs < 0 {
		return usagef("run: --k, --tokens-per-domain and --partitions must be at least 1, --seed-tokens not negative, --heldout in [0, 1)")
	}
	if _, err := train.ConfigByName(f.expert); err != nil {
		return usagef("run: --expert: %v", err)
	}
	if len(f.input) == 0 {
		if _, err := os.Stat(defaultRunInput); err != nil {
			return usagef("run: no --input given and no demo corpus %s here (run from the repository root, or give --input)", defaultRunInput)
		}
		f.input = []string{defaultRunInput}
	}
	for _, in := range f.input {
		if err := checkInput(in); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	}
	start := time.Now()
	phases := map[string]float64{}
	phaseStart := time.Now()
	phase := func(name string) {
		phases[name] = seconds(time.Since(phaseStart))
		phaseStart = time.Now()
	}
	log := a.log.With("cmd", "run")
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("run: %w", err)
	}

	// 1. Split.
	split, err := a.runSplit(f)
	if err != nil {
		return fmt.Errorf("run: split the input: %w", err)
	}
	log.Info("input split", "train", len(split.train), "heldout", split.heldout, "rejected", len(split.rejected))
	phase("split")

	// The broker.
	var addr string
	if cmd.Flags().Changed("brokers") {
		addr = strings.Join(f.kafka.Brokers, ",")
	} else {
		b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0", DataDir: filepath.Join(f.out, "broker"),
			Partitions: f.partitions, MaxMessageBytes: cluster.RouterTopicMaxBytes + 1<<20})
		if err != nil {
			return fmt.Errorf("run: embedded broker: %w", err)
		}
		defer b.Close()
		addr = b.Addr()
		f.kafka.Brokers = []string{addr}
		log.Info("embedded broker", "addr", addr, "data", filepath.Join(f.out, "broker"))
	}
	cc, err := f.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	kargs := f.kafka.args()

	// 2. Ingest, resuming where a killed run stopped.
	if err := a.runIngest(ctx, cc, f, split); err != nil {
		return fmt.Errorf("run: ingest: %w", err)
	}
	phase("ingest")

	// 3. Featurizer and router.
	router := filepath.Join(f.out, "router")
	if v, _ := cluster.LatestRouterVersion(router); v == 0 {
		_, err := a.sub(ctx, "cluster", "fit", "--in", split.trainPath, "--k", strconv.Itoa(f.k), "--out", router,
			"--featurizer", f.featurizer, "--balanced="+strconv.FormatBool(f.balanced), "--seed", strconv.FormatUint(f.seed, 10), "--json")
		if err != nil {
			return fmt.Errorf("run: fit: %w", err)
		}
	}
	_, rm, err := loadRouterDir(router)
	if err != nil {
		return fmt.Errorf("run: router: %w", err)
	}
	phase("fit")

	// 4. Route everything.
	if err := a.runRouting(ctx, cc, f, kargs, router); err != nil {
		return fmt.Errorf("run: route: %w", err)
	}
	phase("route")
	counts, dead, err := a.runCounts(ctx, cc, rm)
	if err != nil {
		return fmt.Errorf("run: count: %w", err)
	}
	phase("count")

	// 5 and 6. Train (seed, experts, dense baseline) and evaluate.
	var tr runTraining
	if f.train {
		if tr, err = a.runTrainEval(ctx, f, kargs, rm, split, router, phase); err != nil {
			return err
		}
	}
	seedRep, expReps, denseRep, ev := tr.seed, tr.experts, tr.dense, tr.eval

	// Summary.
	sum := runSummary{DocsIn: int64(len(split.train) + len(split.rejected)), DocsDeadletter: dead, DocsHeldout: int64(split.heldout),
		SeedTokens: seedRep.Tokens, DenseTokens: denseRep.Tokens, Out: f.out, Phases: phases,
		Eval: runEval{MixtureBPB: ev.MixtureBPB}}
	sum.IncompleteFiles = split.incomplete
	byExpert := map[string]expertReport{}
	for _, r := range expReps {
		byExpert[r.Expert] = r
	}
	for j, id := range rm.IDs {
		d := runDomain{ID: id, Size: counts[id], TopTerms: []string{}}
		if rm.TopTerms != nil && rm.TopTerms[j] != nil {
			d.TopTerms = rm.TopTerms[j]
		}
		if r, ok := byExpert[strconv.Itoa(id)]; ok {
			d.Tokens, d.Loss = r.Tokens, r.Loss
		}
		sum.DocsRouted += d.Size
		sum.Domains = append(sum.Domains, d)
	}
	for _, e := range ev.ExpertBPB {
		switch e.Expert {
		case "dense":
			v := e.BPB
			sum.Eval.DenseBPB = &v
		case "seed":
			v := e.BPB
			sum.Eval.SeedBPB = &v
		default:
			sum.Eval.ExpertBPB = append(sum.Eval.ExpertBPB, e)
		}
	}
	if end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw); err == nil {
		for _, e := range end {
			sum.RawMessages += e
		}
	}
	sum.Seconds = seconds(time.Since(start))
	sum.PeakRSSBytes = peakRSSBytes()
	if b, err := json.MarshalIndent(sum, "", "  "); err == nil {
		_ = schemas.WriteFileAtomic(filepath.Join(f.out, "summary.json"), func(fh *os.File) error { _, err := fh.Write(b); return err })
	}
	if sum.DocsRouted+sum.DocsDeadletter != sum.DocsIn {
		log.Error("documents unaccounted for", "in", sum.DocsIn, "routed", sum.DocsRouted, "deadletter", sum.DocsDeadletter)
	}
	if f.json {
		return writeJSON(a.stdout, sum)
	}
	a.printRunSummary(sum)
	return nil
}

// printRunSummary prints the summary tables.
func (a *app) printRunSummary(s runSummary) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "documents: %d in, %d routed, %d dead-lettered, %d held out; %.1fs; output in %s\n\n",
		s.DocsIn, s.DocsRouted, s.DocsDeadletter, s.DocsHeldout, s.Seconds, s.Out)
	if len(s.IncompleteFiles) > 0 {
		fmt.Fprintln(w, "INCOMPLETE INPUT FILE\tREASON\tRECORDS READ\tERROR")
		for _, f := range s.IncompleteFiles {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", f.File, f.Reason, f.Records, f.Error)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "DOMAIN\tSIZE\tTOKENS\tLOSS\tBITS/BYTE\tTOP TERMS")
	bpb := map[string]float64{}
	for _, e := range s.Eval.ExpertBPB {
		bpb[e.Expert] = e.BPB
	}
	for _, d := range s.Domains {
		b := "-"
		if v, ok := bpb[strconv.Itoa(d.ID)]; ok {
			b = fmt.Sprintf("%.3f", v)
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%.3f\t%s\t%s\n", d.ID, d.Size, humanCount(d.Tokens), d.Loss, b, strings.Join(d.TopTerms[:min(6, len(d.TopTerms))], " "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "MODEL\tBITS/BYTE")
	if s.Eval.SeedBPB != nil {
		fmt.Fprintf(w, "dense seed (%s tokens)\t%.4f\n", humanCount(s.SeedTokens), *s.Eval.SeedBPB)
	}
	if s.Eval.DenseBPB != nil {
		fmt.Fprintf(w, "dense (%s tokens)\t%.4f\n", humanCount(s.DenseTokens), *s.Eval.DenseBPB)
	}
	for _, k := range []string{"top1", "top2", "all"} {
		if v, ok := s.Eval.MixtureBPB[k]; ok {
			fmt.Fprintf(w, "experts, router mixture %s\t%.4f\n", k, v)
		}
	}
	w.Flush()
}

// joinIDs is "0,1,2".
func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

// subTrain runs `pipeline train … --json` in process and returns its
// experts.
func (a *app) subTrain(ctx context.Context, args ...string) ([]expertReport, error) {
	out, err := a.sub(ctx, args...)
	if err != nil {
		return nil, err
	}
	var rep struct {
		Experts []expertReport `json:"experts"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("train output: %w", err)
	}
	if len(rep.Experts) == 0 {
		return nil, errors.New("train reported no expert")
	}
	return rep.Experts, nil
}

// runSplitResult is the input split into training and held-out documents.
type runSplitResult struct {
	train    []schemas.Document
	rejected []schemas.InputRecord
	// incomplete are the input files that could not be read to their end;
	// the rest of each is one of the rejected records.
	incomplete  []incompleteFile
	heldout     int
	trainPath   string
	heldoutPath string
}

// runSplit reads the input and holds out a fraction of each source: per
// source, the documents whose SHA-256 of the id ranks in the lowest
// fraction. The split is written once (train.jsonl.gz, heldout.jsonl.gz)
// and reused by a resumed run.
func (a *app) runSplit(f *runFlags) (*runSplitResult, error) {
	res := &runSplitResult{trainPath: filepath.Join(f.out, "train.jsonl.gz"), heldoutPath: filepath.Join(f.out, "heldout.jsonl.gz")}
	var docs []schemas.Document
	// reject keeps a bad record; one that stands for the unread rest of a
	// file (a truncated gzip, a corrupt Parquet file) also lists the file.
	// Neither stops the split, so that a rerun does not fail on it again.
	reject := func(rec schemas.InputRecord) {
		res.rejected = append(res.rejected, rec)
		var ie *schemas.IncompleteError
		if errors.As(rec.Err, &ie) {
			res.incomplete = append(res.incomplete, incompleteFile{File: ie.File, Reason: string(schemas.ReasonOf(rec.Err)), Error: ie.Err.Error(), Records: ie.Records})
			a.log.Warn("input file incomplete; the rest of it is dead-lettered", "cmd", "run", "file", ie.File,
				"reason", schemas.ReasonOf(rec.Err), "records", ie.Records, "err", ie.Err)
		}
	}
	for _, in := range f.input {
		r, err := a.openInput(in, schemas.Limits{})
		if err != nil { // gone since it was checked
			reject(schemas.IncompleteRecord(in, in, 0, err, nil))
			continue
		}
		base := idBase(in)
		for n := 1; ; n++ {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil { // not from package schemas' readers, whose failures are records
				reject(schemas.IncompleteRecord(in, in, int64(n-1), err, nil))
				break
			}
			if rec.Err != nil {
				reject(rec)
				continue
			}
			if rec.Doc.ID == "" {
				rec.Doc.ID = base + "-" + strconv.Itoa(n)
			}
			docs = append(docs, rec.Doc)
		}
		r.Close()
	}
	groups := map[string][]int{}
	for i, d := range docs {
		var m struct {
			Source string `json:"source"`
		}
		_ = json.Unmarshal(d.Meta, &m)
		groups[m.Source] = append(groups[m.Source], i)
	}
	held := make([]bool, len(docs))
	for _, idx := range groups {
		sort.Slice(idx, func(x, y int) bool {
			hx, hy := sha256.Sum256([]byte(docs[idx[x]].ID)), sha256.Sum256([]byte(docs[idx[y]].ID))
			return bytes.Compare(hx[:], hy[:]) < 0
		})
		nh := int(float64(len(idx))*f.heldout + 0.5)
		for _, i := range idx[:nh] {
			held[i] = true
		}
	}
	var heldDocs []schemas.Document
	for i, d := range docs {
		if held[i] {
			heldDocs = append(heldDocs, d)
		} else {
			res.train = append(res.train, d)
		}
	}
	res.heldout = len(heldDocs)
	// The mixed stream: the training documents in a fixed pseudo-random
	// order (by the hash of their ids), so that a corpus stored source by
	// source does not reach the dense model one source at a time.
	sort.SliceStable(res.train, func(x, y int) bool {
		hx, hy := sha256.Sum256([]byte("order:"+res.train[x].ID)), sha256.Sum256([]byte("order:"+res.train[y].ID))
		return bytes.Compare(hx[:], hy[:]) < 0
	})
	for path, ds := range map[string][]schemas.Document{res.trainPath: res.train, res.heldoutPath: heldDocs} {
		if _, err := os.Stat(path); err == nil {
			continue
		}
		err := schemas.WriteFileAtomic(path, func(fh *os.File) error {
			zw := gzip.NewWriter(fh)
			for _, d := range ds {
				b, err := schemas.AppendJSON(nil, d)
				if err != nil {
					return err
				}
				if _, err := zw.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			return zw.Close()
		})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runIngest produces the training documents to docs.raw (document i to
// partition i mod P) and the rejected records to the dead-letter topic,
// skipping what a killed run already delivered: per partition, its end
// offset is the number of its documents already there.
func (a *app) runIngest(ctx context.Context, cc pipeline.ClientConfig, f *runFlags, s *runSplitResult) error {
	err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: f.partitions},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: f.partitions})
	if err != nil {
		return err
	}
	n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return err
	}
	end, err := pipeline.EndOffsets(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return err
	}
	defer sink.Close()
	var batch []pipeline.Message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := sink.Write(ctx, batch...)
		batch = batch[:0]
		return err
	}
	seen := make([]int64, n)
	sent := 0
	for i, d := range s.train {
		p := i % n
		seen[p]++
		if seen[p] <= end[p] {
			continue
		}
		v, err := schemas.AppendJSON(nil, d)
		if err != nil {
			return err
		}
		batch = append(batch, pipeline.Message{Topic: pipeline.TopicRaw, Partition: p, Key: []byte(d.ID), Value: v, Headers: docHeaders})
		sent++
		if len(batch) >= 1024 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// Rejected records: those not dead-lettered yet (counted by header).
	already, err := deadLetterCount(ctx, cc, func(m pipeline.Message) bool { return pipeline.HeaderValue(m, pipeline.HeaderStage) == "run" })
	if err != nil {
		return err
	}
	for i, rec := range s.rejected[min(int(already), len(s.rejected)):] {
		batch = append(batch, pipeline.DeadLetterSpec{Topic: pipeline.TopicDeadLetter, Partition: i % n, Value: rec.Raw,
			Reason: schemas.ReasonOf(rec.Err), Err: rec.Err.Error(), Stage: "run", OriginTopic: rec.Source}.Message())
	}
	if err := flush(); err != nil {
		return err
	}
	a.log.Info("ingested", "sent", sent, "already", len(s.train)-sent, "dead_letters", len(s.rejected))
	return nil
}

// deadLetterCount counts the dead letters that keep selects.
func deadLetterCount(ctx context.Context, cc pipeline.ClientConfig, keep func(pipeline.Message) bool) (int64, error) {
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, m := range msgs {
		if keep(m) {
			n++
		}
	}
	return n, nil
}

// runRouting runs the embedding and routing stages in process until every
// document of docs.raw has been featurized and every feature row routed
// (their groups' committed offsets reach the topics' ends).
func (a *app) runRouting(ctx context.Context, cc pipeline.ClientConfig, f *runFlags, kargs []string, router string) error {
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	errs := make(chan error, 2)
	startStages := func() {
		for _, args := range [][]string{
			{"embed", "--state", router, "--group", "run-embed", "--linger", "20ms"},
			{"cluster", "--router", router, "--group", "run-cluster", "--rebuild-state", "--linger", "20ms",
				"--history", filepath.Join(f.out, "routing-history.jsonl")},
		} {
			wg.Go(func() {
				if _, err := a.sub(sctx, append(args, kargs...)...); err != nil && sctx.Err() == nil {
					errs <- fmt.Errorf("%s stage: %w", args[0], err)
				}
			})
		}
	}
	done := func(group, topic string) (bool, error) {
		end, err := pipeline.EndOffsets(ctx, cc, topic)
		if err != nil {
			return false, nil //nolint:nilerr // the topic may not exist yet
		}
		com, err := pipeline.CommittedOffsets(ctx, cc, group, topic, len(end))
		if err != nil {
			return false, err
		}
		for p := range end {
			if end[p] > 0 && com[p] < end[p] {
				return false, nil
			}
		}
		return true, nil
	}
	// The routing stage rebuilds its counts when it starts and publishes
	// them at once, then again when it stops. Counts on router.models from
	// before this start may be stale (a run killed between a periodic save
	// and its final one), so the stages run until the routing stage has
	// published from this start, even when a resumed run has nothing left to
	// route.
	stateKey := cluster.RoutingStateKey("run-cluster")
	stateOffset := func() int64 { // of the latest counts; -1 for none
		latest, err := routerTopicLatest(ctx, cc)
		if err != nil {
			return -1
		}
		if m, ok := latest[stateKey]; ok {
			return m.Offset
		}
		return -1
	}
	before := stateOffset()
	startStages()
	last := time.Now()
	for {
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		e, err := done("run-embed", pipeline.TopicRaw)
		if err != nil {
			return err
		}
		if e {
			c, err := done("run-cluster", pipeline.TopicFeatures)
			if err != nil {
				return err
			}
			if c {
				// The embed stage committed everything, so the features
				// topic is complete; check it once more after the routing
				// stage's commit.
				if e2, _ := done("run-embed", pipeline.TopicRaw); !e2 {
					continue
				}
				// Stop once the routing stage has published counts since
				// it started, then check that it saved its final ones.
				if atStop := stateOffset(); atStop > before {
					stop()
					wg.Wait()
					if stateOffset() <= atStop {
						return errors.New("the routing stage stopped without saving its final counts on " + pipeline.TopicRouterModels)
					}
					return nil
				}
			}
		}
		if time.Since(last) > 10*time.Second {
			a.log.Info("routing…")
			last = time.Now()
		}
	}
}

// runCounts returns the documents routed per domain id — the routing
// stage's counts, saved on router.models when it stopped: it drops
// duplicates and rebuilds its counts exactly after a restart, so they count
// distinct input records — and the distinct dead letters of the run's ingest
// and stages.
func (a *app) runCounts(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel) (map[int]int64, int64, error) {
	type pos struct {
		topic  string
		p      int32
		off    int64
		row    int32
		reason string
	}
	latest, err := routerTopicLatest(ctx, cc)
	if err != nil {
		return nil, 0, err
	}
	m, ok := latest[cluster.RoutingStateKey("run-cluster")]
	if !ok {
		return nil, 0, errors.New("the routing stage saved no counts on " + pipeline.TopicRouterModels)
	}
	counts, err := cluster.DecodeRoutingState(m.Value)
	if err != nil {
		return nil, 0, err
	}
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return nil, 0, err
	}
	var dead int64
	deadSeen := map[pos]bool{}
	for i, m := range msgs {
		stage := pipeline.HeaderValue(m, pipeline.HeaderStage)
		if stage == "train" || stage == "archive" {
			continue // dead letters of routed messages, not of input records
		}
		p, _ := strconv.Atoi(pipeline.HeaderValue(m, pipeline.HeaderOriginPartition))
		off, _ := strconv.ParseInt(pipeline.HeaderValue(m, pipeline.HeaderOriginOffset), 10, 64)
		row, _ := strconv.Atoi(pipeline.HeaderValue(m, pipeline.HeaderOriginRow))
		k := pos{topic: pipeline.HeaderValue(m, pipeline.HeaderOriginTopic), p: int32(p), off: off, row: int32(row), reason: stage}
		if stage == "run" {
			k.off = int64(i) // input records: each dead letter is one record
		}
		if !deadSeen[k] {
			deadSeen[k] = true
			dead++
		}
	}
	return counts, dead, nil
}

// runTraining is what the training and evaluation phases of a run report.
type runTraining struct {
	seed, dense expertReport
	experts     []expertReport
	eval        evalReport
}

// runTrainEval trains the dense seed, the domain experts branched from it
// and the dense baseline, then evaluates them on the held-out documents.
func (a *app) runTrainEval(ctx context.Context, f *runFlags, kargs []string, rm *cluster.RouterModel, split *runSplitResult, router string, phase func(string)) (runTraining, error) {
	// 5. Train: seed, experts, dense baseline.
	targs := append(slices.Clone(kargs), "--out", f.out, "--expert", f.expert, "--exit-on-idle", "1s", "--json",
		"--seed", strconv.FormatUint(f.seed, 10))
	if f.threads > 0 {
		targs = append(targs, "--threads", strconv.Itoa(f.threads))
	}
	var r runTraining
	var initArgs []string
	if f.seedTokens > 0 {
		reps, err := a.subTrain(ctx, append([]string{"train", "--topic", pipeline.TopicRaw, "--name", "seed", "--tokens", strconv.FormatInt(f.seedTokens, 10)}, targs...)...)
		if err != nil {
			return r, fmt.Errorf("run: seed: %w", err)
		}
		r.seed = reps[0]
		initArgs = []string{"--init", expertDir(f.out, "seed")}
		phase("train_seed")
	}
	domArgs := []string{"train", "--domain", joinIDs(rm.IDs), "--tokens", strconv.FormatInt(f.tokens, 10)}
	if f.skipSeen && initArgs != nil {
		domArgs = append(domArgs, "--skip-seen")
	}
	var err error
	r.experts, err = a.subTrain(ctx, append(append(domArgs, initArgs...), targs...)...)
	if err != nil {
		return r, fmt.Errorf("run: experts: %w", err)
	}
	phase("train_experts")
	if f.baseline {
		args := []string{"train", "--topic", pipeline.TopicRaw, "--name", "dense", "--tokens", strconv.FormatInt(int64(rm.K())*f.tokens, 10)}
		if initArgs != nil {
			args = append(args, append(initArgs, "--continue")...)
		}
		reps, err := a.subTrain(ctx, append(args, targs...)...)
		if err != nil {
			return r, fmt.Errorf("run: dense baseline: %w", err)
		}
		r.dense = reps[0]
		phase("train_dense")
	}

	// 6. Evaluate.
	if split.heldout > 0 {
		out, err := a.sub(ctx, "eval", "--out", f.out, "--in", split.heldoutPath, "--router", router,
			"--max-docs", strconv.Itoa(f.evalDocs), "--max-doc-bytes", strconv.Itoa(f.evalDocBytes), "--json")
		if err != nil {
			return r, fmt.Errorf("run: eval: %w", err)
		}
		if err := json.Unmarshal(out, &r.eval); err != nil {
			return r, fmt.Errorf("run: eval output: %w", err)
		}
		phase("eval")
	}
	return r, nil
}

// routerTopicLatest returns the last message of each key on router.models.
func routerTopicLatest(ctx context.Context, cc pipeline.ClientConfig) (map[string]pipeline.Message, error) {
	t, err := cluster.NewRouterTopic(cc, nil)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Latest(ctx)
}
