package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
			dr := schemas.NewDocReader(in, feat.limits(), a.stdin, log)
			defer dr.Close()
			_, opt, err := feat.options()
			if err != nil {
				return err
			}
			if tol == 0 {
				tol = -1 // FitConfig: negative is 0, 0 the default
			}
			res, err := flow.FitRouter(ctx, flow.FitRouterConfig{
				Out: out, K: k, Featurizer: kind, FitOptions: opt, Read: dr.Next, IDs: dr.IDs,
				Cluster:  cluster.FitConfig{Unbalanced: !balanced, Restarts: restarts, MaxIter: maxIter, Tol: tol, Seed: feat.seed, Workers: feat.workers},
				TopTerms: topN, Logger: log,
			})
			if err != nil {
				return fmt.Errorf("cluster fit: %w", err)
			}
			s, rm, m := res.State, res.Router, res.Router.Model
			v := struct{ n int }{res.Docs}
			rep := clusterFitReport{K: k, Seconds: seconds(time.Since(start)), Docs: v.n, Bytes: dr.Bytes(), Version: rm.Version,
				FeaturizerVersion: s.Settings.Version, Inertia: m.Inertia, PeakRSSBytes: flow.PeakRSSBytes()}
			rep.Sizes = rm.SizesByID()
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

func (a *app) clusterAssignCmd() *cobra.Command {
	var (
		router   string
		in       []string
		out      string
		balanced bool
		novelty  cluster.NoveltyRule
	)
	cmd := &cobra.Command{
		Use:   "assign",
		Short: "Route documents with a router dir: one {\"id\",\"domain\",\"distance\"} line each",
		Long: `Featurize the documents of --in with the router dir's featurizer state and send
each to a domain: with --balanced (the default) under the streaming capacity
constraint that keeps routed domain sizes within the router's tolerance of equal,
in input order; with --balanced=false to the nearest centroid. Writes one JSON
line per document to --out (- for stdout): {"id","domain","distance"}, where
distance is the squared Euclidean distance to the domain's centroid, followed
by "nearest" and "nearest_distance" (the nearest domain, whatever the balance
assigned, and the squared distance to it) and "novel": whether the document
lies farther from its nearest domain than --novel-quantile of that domain's
fit documents, times 1 + --novel-margin. "novel" is absent when the router
was saved before routers kept their fit-time distances.`,
		Example: `  pipeline cluster assign --router router/ --in corpus.jsonl.gz --out routed.jsonl
  pipeline cluster assign --router router/ --in new.jsonl --out - --balanced=false`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" || len(in) == 0 || out == "" {
				return usagef("cluster assign: --router, --in and --out are required")
			}
			if err := novelty.Validate(); err != nil {
				return usagef("cluster assign: %v", err)
			}
			res, err := flow.RouteFiles(cmd.Context(), flow.RouteFilesConfig{RouterDir: router, Inputs: in, Stdin: a.stdin, Unbalanced: !balanced,
				Novelty: novelty, Logger: a.log})
			if err != nil {
				return fmt.Errorf("cluster assign: %w", err)
			}
			write := func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				enc := json.NewEncoder(bw)
				enc.SetEscapeHTML(false)
				for i, id := range res.IDs {
					var novel *bool
					if res.Novel != nil {
						novel = &res.Novel[i]
					}
					if err := enc.Encode(struct {
						ID              string  `json:"id"`
						Domain          int     `json:"domain"`
						Distance        float32 `json:"distance"`
						Nearest         int     `json:"nearest"`
						NearestDistance float32 `json:"nearest_distance"`
						Novel           *bool   `json:"novel,omitempty"`
					}{id, res.Domains[i], res.Distances[i], res.Nearest[i], res.NearestDistances[i], novel}); err != nil {
						return err
					}
				}
				return bw.Flush()
			}
			if out == "-" {
				return write(a.stdout)
			}
			if err := schemas.WriteFileAtomic(out, func(f *os.File) error { return write(f) }); err != nil {
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
	noveltyFlags(fs, &novelty)
	return cmd
}

// noveltyFlags binds --novel-quantile and --novel-margin to r.
func noveltyFlags(fs *pflag.FlagSet, r *cluster.NoveltyRule) {
	fs.Float64Var(&r.Quantile, "novel-quantile", cluster.DefaultNoveltyQuantile,
		"a document is novel beyond this quantile of its nearest domain's fit-time distances, in (0, 1] (1: the largest)")
	fs.Float64Var(&r.Margin, "novel-margin", 0, "multiplicative slack on that quantile (0.1: 10% farther)")
	fs.Float64Var(&r.OOVQuantile, "novel-oov-quantile", cluster.DefaultNoveltyQuantile,
		"a document is also novel when its out-of-vocabulary share exceeds this quantile of the fit documents' (held out), in (0, 1]; routers fitted before this have no such shares")
}

// growFlags binds --grow, its thresholds and --grow-seed.
func growFlags(fs *pflag.FlagSet, on *bool, c *cluster.GrowConfig) {
	fs.BoolVar(on, "grow", false, "stage: park novel documents on docs.novel and grow new domains from them")
	growThresholdFlags(fs, c)
	fs.Uint64Var(&c.Seed, "grow-seed", 1, "stage, --grow: seed of the growth's k-means")
}

// growThresholdFlags binds the thresholds of growth.
func growThresholdFlags(fs *pflag.FlagSet, c *cluster.GrowConfig) {
	fs.IntVar(&c.MinCount, "grow-min", cluster.DefaultGrowMinCount, "stage, --grow: pending novel documents needed for a growth")
	fs.Float64Var(&c.MinShare, "grow-share", cluster.DefaultGrowMinShare, "stage, --grow: novel share of the routing window needed for a growth, in [0, 1]")
	fs.IntVar(&c.Window, "grow-window", cluster.DefaultGrowWindow, "stage, --grow: routed documents per partition over which the novel share is measured")
	fs.IntVar(&c.MaxNew, "grow-max-new", cluster.DefaultGrowMaxNew, "stage, --grow: most new domains per growth")
	fs.IntVar(&c.MinSize, "grow-min-size", cluster.DefaultGrowMinSize, "stage, --grow: smallest cluster of pending documents that becomes a domain")
	fs.Float64Var(&c.Tightness, "grow-tightness", cluster.DefaultGrowTightness, "stage, --grow: a new domain may be this many times looser than the median old domain")
}

// clusterEvalReport is the --json report of `pipeline cluster eval`.
type clusterEvalReport = flow.RoutingEval

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
			res, err := flow.RouteFiles(cmd.Context(), flow.RouteFilesConfig{RouterDir: router, Inputs: in, Stdin: a.stdin, Unbalanced: !balanced, KeepMeta: true, Logger: a.log})
			if err != nil {
				return fmt.Errorf("cluster eval: %w", err)
			}
			rep, err := flow.EvalRouting(res, fields)
			if err != nil {
				return fmt.Errorf("cluster eval: %w", err)
			}
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
