package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

func (a *app) clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Discover domains with balanced k-means and route documents to them",
		Long: `Domain discovery, offline:

  cluster fit     fit a featurizer and a k-means router on a corpus → a router dir
  cluster assign  route documents with a router dir → {"id","domain","distance"} lines
  cluster eval    route documents and score the domains against a label field

A router dir holds the featurizer state (featurizer-NNNNNN.arrow/.parquet) and
the router versions (router-NNNNNN.arrow/.parquet: centroids with stable
domain ids, sizes, top terms). 'pipeline domains --router DIR' lists them.`,
		Example: `  pipeline cluster fit --in corpus.jsonl.gz --k 8 --out router/ --json
  pipeline cluster assign --router router/ --in more.jsonl --out routed.jsonl
  pipeline cluster eval --router router/ --in corpus.jsonl.gz --json`,
		Args: noSubcommand,
	}
	cmd.AddCommand(a.clusterFitCmd(), a.clusterAssignCmd(), a.clusterEvalCmd())
	a.addClusterStage(cmd) // `cluster --brokers`: the Kafka stage docs.features → docs.domain.<id>
	return cmd
}

// rowsOf views featurizer output as clustering rows (no copy).
func rowsOf(v embed.Vectors) *cluster.Rows {
	if v.Sparse != nil {
		s := v.Sparse
		return &cluster.Rows{N: s.Rows, Dim: s.Cols, Indptr: s.Indptr, Indices: s.Indices, Values: s.Data}
	}
	d := v.Dense
	return &cluster.Rows{N: d.Rows, Dim: d.Cols, Values: d.Data}
}

// domainTopTerms names each centroid by the terms it weighs most: directly
// for tf-idf centroids, through the SVD basis for LSA ones; none (nil) for
// hashing and embedding services, whose columns have no terms.
func domainTopTerms(s *embed.State, m *cluster.Model, n int) [][]string {
	return embed.CentroidTerms(s.Featurizer, m.Centroids, m.K, n)
}

// clusterFitReport is the --json report of `pipeline cluster fit`.
type clusterFitReport struct {
	K                 int     `json:"k"`
	Sizes             []int   `json:"sizes"` // by domain id
	Seconds           float64 `json:"seconds"`
	Docs              int     `json:"docs"`
	Bytes             int64   `json:"bytes"`
	Version           int64   `json:"version"`
	FeaturizerVersion int64   `json:"featurizer_version"`
	Inertia           float64 `json:"inertia"`
	BalanceMaxMin     float64 `json:"balance_max_min"`
	BalanceMaxMean    float64 `json:"balance_max_mean"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
}

func (a *app) clusterFitCmd() *cobra.Command {
	var (
		feat     featurizerFlags
		in       []string
		out      string
		k        int
		balanced bool
		restarts int
		maxIter  int
		tol      float64
		topN     int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "fit",
		Short: "Fit a featurizer and a balanced k-means router on a corpus",
		Long: `Read the documents of --in, fit the featurizer (--featurizer, default tfidf) on
them, cluster the vectors into --k domains with k-means++ and Lloyd iterations
(best of --restarts), and save both into --out: the featurizer state and a new
router version. With --balanced (the default) every domain gets exactly
⌊n/k⌋ or ⌈n/k⌉ documents at fit time (an exact min-cost assignment in every
iteration); --balanced=false is plain k-means. The fit is deterministic for
--seed. When --out already holds a router, the new centroids keep the ids of
the closest previous ones, so domain ids stay stable across refits.

--json prints {"k","sizes","seconds",...}; sizes are listed by domain id.`,
		Example: `  pipeline cluster fit --in corpus.jsonl.gz --k 8 --out router/
  pipeline cluster fit --in corpus.jsonl.gz --k 5 --featurizer lsa --balanced=false --seed 3 --out router/ --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			switch {
			case len(in) == 0 || out == "":
				return usagef("cluster fit: --in and --out are required")
			case k < 1:
				return usagef("cluster fit: --k must be at least 1")
			case tol < 0 || math.IsNaN(tol):
				return usagef("cluster fit: --tol must be ≥ 0")
			}
			kind, _, err := feat.options()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := a.log.With("cmd", "cluster fit")
			dr := &docReader{a: a, paths: in, lim: feat.limits(), log: log}
			defer dr.close()
			_, opt, err := feat.options()
			if err != nil {
				return err
			}
			if tol == 0 {
				tol = -1 // FitConfig: negative is 0, 0 the default
			}
			res, err := flow.FitRouter(ctx, flow.FitRouterConfig{
				Out: out, K: k, Featurizer: kind, FitOptions: opt, Read: dr.next, IDs: func() []string { return dr.ids },
				Cluster:  cluster.FitConfig{Unbalanced: !balanced, Restarts: restarts, MaxIter: maxIter, Tol: tol, Seed: feat.seed, Workers: feat.workers},
				TopTerms: topN, Logger: log,
			})
			if err != nil {
				return fmt.Errorf("cluster fit: %w", err)
			}
			s, rm, m := res.State, res.Router, res.Router.Model
			v := struct{ n int }{res.Docs}
			rep := clusterFitReport{K: k, Seconds: seconds(time.Since(start)), Docs: v.n, Bytes: dr.bytes, Version: rm.Version,
				FeaturizerVersion: s.Settings.Version, Inertia: m.Inertia, PeakRSSBytes: flow.PeakRSSBytes()}
			rep.Sizes = sizesByID(rm)
			rep.BalanceMaxMin, rep.BalanceMaxMean = cluster.Balance(m.Sizes)
			log.Info("router fitted", "k", k, "version", rm.Version, "featurizer_version", rm.FeaturizerVersion, "sizes", rep.Sizes, "seconds", rep.Seconds)
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stderr, "cluster fit: %s into %d domains (router v%d, featurizer %s v%d) in %.2fs; sizes %v (max/min %.2f)\n",
				plural(int64(rep.Docs), "document"), k, rm.Version, s.Settings.Kind, s.Settings.Version, rep.Seconds, rep.Sizes, rep.BalanceMaxMin)
			return nil
		},
	}
	fs := cmd.Flags()
	feat.register(fs, string(embed.KindTfidf), false)
	fs.StringSliceVar(&in, "in", nil, "input `files` (.jsonl, .jsonl.gz, .parquet, a folder of .txt, - for stdin)")
	fs.StringVar(&out, "out", "", "router `dir`: the featurizer state and the router versions are saved there")
	fs.IntVar(&k, "k", 8, "number of domains")
	fs.BoolVar(&balanced, "balanced", true, "exact balance at fit: every domain gets ⌊n/k⌋ or ⌈n/k⌉ documents")
	fs.IntVar(&restarts, "restarts", 3, "k-means++ restarts; the lowest objective wins")
	fs.IntVar(&maxIter, "max-iter", 100, "most Lloyd iterations per restart")
	fs.Float64Var(&tol, "tol", 1e-4, "stop a restart when the centroids move (total squared shift) by at most this times the features' mean variance, as scikit-learn does (0: only when no assignment changes)")
	fs.IntVar(&topN, "top-terms", 10, "top terms kept per domain")
	fs.BoolVar(&asJSON, "json", false, `print {"k","sizes","seconds",...} as JSON on stdout`)
	return cmd
}

// sizesByID lists the fit sizes in domain-id order.
func sizesByID(rm *cluster.RouterModel) []int {
	type ds struct{ id, size int }
	all := make([]ds, rm.K())
	for j := range all {
		all[j] = ds{rm.IDs[j], rm.Model.Sizes[j]}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	out := make([]int, len(all))
	for i, d := range all {
		out[i] = d.size
	}
	return out
}

// loadRouterDir loads the latest featurizer state and router of dir.
func loadRouterDir(dir string) (*embed.State, *cluster.RouterModel, error) {
	r, err := flow.LoadRouter(dir)
	if err != nil {
		return nil, nil, err
	}
	return r.State, r.Model, nil
}

// routed is the result of routing documents offline.
type routed struct {
	dr      *docReader
	domains []int // domain ids
	dist    []float32
	rm      *cluster.RouterModel
}

// routeFiles featurizes the documents of paths with dir's featurizer and
// routes them with its router, balanced or by plain argmin.
func (a *app) routeFiles(ctx context.Context, dir string, paths []string, balanced bool, keepMeta bool) (*routed, error) {
	s, rm, err := loadRouterDir(dir)
	if err != nil {
		return nil, err
	}
	dr := &docReader{a: a, paths: paths, lim: schemas.Limits{}, log: a.log, keepMeta: keepMeta}
	defer dr.close()
	if _, err := dr.next(1 << 62); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(dr.texts) == 0 {
		return nil, fmt.Errorf("no documents in %v", paths)
	}
	v, err := s.Featurizer.Transform(ctx, dr.texts)
	if err != nil {
		return nil, err
	}
	rc := rm.Route
	rc.Unbalanced = !balanced
	r, err := cluster.NewRouter(rm.Model, rc)
	if err != nil {
		return nil, err
	}
	js, dist, err := r.Route(rowsOf(v))
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(js))
	for i, j := range js {
		ids[i] = rm.IDs[j]
	}
	return &routed{dr: dr, domains: ids, dist: dist, rm: rm}, nil
}

func (a *app) clusterAssignCmd() *cobra.Command {
	var (
		router   string
		in       []string
		out      string
		balanced bool
	)
	cmd := &cobra.Command{
		Use:   "assign",
		Short: "Route documents with a router dir: one {\"id\",\"domain\",\"distance\"} line each",
		Long: `Featurize the documents of --in with the router dir's featurizer state and send
each to a domain: with --balanced (the default) under the streaming capacity
constraint that keeps routed domain sizes within the router's tolerance of equal,
in input order; with --balanced=false to the nearest centroid. Writes one JSON
line per document to --out (- for stdout): {"id","domain","distance"}, where
distance is the squared Euclidean distance to the domain's centroid.`,
		Example: `  pipeline cluster assign --router router/ --in corpus.jsonl.gz --out routed.jsonl
  pipeline cluster assign --router router/ --in new.jsonl --out - --balanced=false`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" || len(in) == 0 || out == "" {
				return usagef("cluster assign: --router, --in and --out are required")
			}
			res, err := a.routeFiles(cmd.Context(), router, in, balanced, false)
			if err != nil {
				return fmt.Errorf("cluster assign: %w", err)
			}
			write := func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				enc := json.NewEncoder(bw)
				enc.SetEscapeHTML(false)
				for i, id := range res.dr.ids {
					if err := enc.Encode(struct {
						ID       string  `json:"id"`
						Domain   int     `json:"domain"`
						Distance float32 `json:"distance"`
					}{id, res.domains[i], res.dist[i]}); err != nil {
						return err
					}
				}
				return bw.Flush()
			}
			if out == "-" {
				return write(a.stdout)
			}
			if err := writeAtomicFile(out, write); err != nil {
				return fmt.Errorf("cluster assign: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&router, "router", "", "router `dir` (a 'cluster fit' output)")
	fs.StringSliceVar(&in, "in", nil, "input `files`")
	fs.StringVar(&out, "out", "", "output `file` of JSON lines (- for stdout)")
	fs.BoolVar(&balanced, "balanced", true, "route under the streaming balance constraint (false: nearest centroid)")
	return cmd
}

// clusterEvalReport is the --json report of `pipeline cluster eval`.
type clusterEvalReport struct {
	Docs           int                `json:"docs"`
	K              int                `json:"k"`
	RouterVersion  int64              `json:"router_version"`
	Balanced       bool               `json:"balanced"`
	NMI            map[string]float64 `json:"nmi"`
	ARI            map[string]float64 `json:"ari"`
	Purity         map[string]float64 `json:"purity"`
	Sizes          []int              `json:"sizes"` // routed, by domain id
	BalanceMaxMin  float64            `json:"balance_max_min"`
	BalanceMaxMean float64            `json:"balance_max_mean"`
	MeanDistance   float64            `json:"mean_distance"`
}

func (a *app) clusterEvalCmd() *cobra.Command {
	var (
		router   string
		in       []string
		fields   []string
		balanced bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score a router's domains against label fields: NMI, adjusted Rand, purity, balance",
		Long: `Route the documents of --in as 'cluster assign' does, then compare the domains
with each --label-fields field of the documents (a top-level field of the input
JSON, e.g. source or label): normalized mutual information (arithmetic mean),
adjusted Rand index and purity; and the balance of the routed sizes (max/min and
max/mean). Documents without the field are left out of that field's scores.`,
		Example: `  pipeline cluster eval --router router/ --in corpus.jsonl.gz
  pipeline cluster eval --router router/ --in corpus.jsonl.gz --label-fields source --balanced=false --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" || len(in) == 0 {
				return usagef("cluster eval: --router and --in are required")
			}
			res, err := a.routeFiles(cmd.Context(), router, in, balanced, true)
			if err != nil {
				return fmt.Errorf("cluster eval: %w", err)
			}
			rep := clusterEvalReport{Docs: len(res.domains), K: res.rm.K(), RouterVersion: res.rm.Version, Balanced: balanced,
				NMI: map[string]float64{}, ARI: map[string]float64{}, Purity: map[string]float64{}}
			for _, field := range fields {
				labels, pred := labelsOf(res, field)
				if len(labels) == 0 {
					return fmt.Errorf("cluster eval: no document has a %q field", field)
				}
				rep.NMI[field], rep.ARI[field], rep.Purity[field] = cluster.NMI(labels, pred), cluster.ARI(labels, pred), cluster.Purity(labels, pred)
			}
			count := map[int]int{}
			var sum float64
			for i, d := range res.domains {
				count[d]++
				sum += float64(res.dist[i])
			}
			for _, id := range sortedIDs(res.rm) {
				rep.Sizes = append(rep.Sizes, count[id])
			}
			rep.BalanceMaxMin, rep.BalanceMaxMean = cluster.Balance(rep.Sizes)
			rep.MeanDistance = sum / float64(len(res.domains))
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "FIELD\tNMI\tARI\tPURITY\n")
			for _, f := range fields {
				fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.3f\n", f, rep.NMI[f], rep.ARI[f], rep.Purity[f])
			}
			w.Flush()
			fmt.Fprintf(a.stdout, "%d documents, %d domains, sizes %v, max/min %.2f, max/mean %.2f, mean distance %.4f\n",
				rep.Docs, rep.K, rep.Sizes, rep.BalanceMaxMin, rep.BalanceMaxMean, rep.MeanDistance)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&router, "router", "", "router `dir` (a 'cluster fit' output)")
	fs.StringSliceVar(&in, "in", nil, "input `files` with label fields")
	fs.StringSliceVar(&fields, "label-fields", []string{"source", "label"}, "document `fields` to score against")
	fs.BoolVar(&balanced, "balanced", true, "route under the streaming balance constraint (false: nearest centroid)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// labelsOf maps the values of a metadata field to ints, with the routed
// domains of the documents that have it.
func labelsOf(res *routed, field string) (labels, pred []int) {
	codes := map[string]int{}
	for i, meta := range res.dr.metas {
		var m map[string]json.RawMessage
		if len(meta) == 0 || json.Unmarshal(meta, &m) != nil {
			continue
		}
		raw, ok := m[field]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		c, ok := codes[s]
		if !ok {
			c = len(codes)
			codes[s] = c
		}
		labels = append(labels, c)
		pred = append(pred, res.domains[i])
	}
	return labels, pred
}

func sortedIDs(rm *cluster.RouterModel) []int {
	ids := append([]int(nil), rm.IDs...)
	sort.Ints(ids)
	return ids
}
