package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// numExamples is how many example document ids a router keeps per domain.
const numExamples = 3

// domainRow is one line of `pipeline domains`.
type domainRow struct {
	ID       int      `json:"id"`
	Size     int      `json:"size"`
	TopTerms []string `json:"top_terms"`
	Examples []string `json:"example_ids"`
}

// domainRows lists rm's domains by id.
func domainRows(rm *cluster.RouterModel) []domainRow {
	var ds []domainRow
	for j := range rm.K() {
		d := domainRow{ID: rm.IDs[j], Size: rm.Model.Sizes[j], TopTerms: []string{}, Examples: []string{}}
		if j < len(rm.TopTerms) && rm.TopTerms[j] != nil {
			d.TopTerms = rm.TopTerms[j]
		}
		if j < len(rm.Examples) && rm.Examples[j] != nil {
			d.Examples = rm.Examples[j]
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return ds
}

func (a *app) domainsCmd() *cobra.Command {
	var (
		router string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "List, split or remove the domains of a router",
		Long: `Print the domains of the latest router version in --router: the stable domain
id, the number of fit documents in it, its top terms (the terms its centroid
weighs most; none for the hashing and http featurizers) and the ids of the
fit documents nearest its centroid.

'domains split' and 'domains remove' write a new router version into --router
(and, with --brokers, publish it on router.models): a routing stage started
with that --router picks it up while it runs, keeping every other domain id.`,
		Example: `  pipeline domains --router router/
  pipeline domains --router router/ --json
  pipeline domains split --router router/ --domain 3 --in sample.jsonl.gz
  pipeline domains remove --router router/ --domain 5 --brokers 127.0.0.1:9092`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" {
				return usagef("domains: --router is required")
			}
			rm, err := cluster.LoadRouter(router, 0)
			if err != nil {
				return fmt.Errorf("domains: %w", err)
			}
			ds := domainRows(rm)
			if asJSON {
				return writeJSON(a.stdout, struct {
					Version           int64       `json:"version"`
					Featurizer        string      `json:"featurizer"`
					FeaturizerVersion int64       `json:"featurizer_version"`
					Domains           []domainRow `json:"domains"`
				}{rm.Version, rm.Featurizer, rm.FeaturizerVersion, ds})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "ID\tSIZE\tTOP TERMS\tEXAMPLES\n")
			for _, d := range ds {
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\n", d.ID, d.Size, strings.Join(d.TopTerms, " "), strings.Join(d.Examples, " "))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&router, "router", "", "router `dir`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.AddCommand(a.domainsEditCmd("split"), a.domainsEditCmd("remove"))
	return cmd
}

// domainsEditReport is the --json output of `domains split|remove`.
type domainsEditReport struct {
	Version   int64       `json:"version"`
	Previous  int64       `json:"previous_version"`
	Domain    int         `json:"domain"`
	NewDomain *int        `json:"new_domain,omitempty"`
	Domains   []domainRow `json:"domains"`
	Published bool        `json:"published"`
}

// domainsEditCmd is `domains split` or `domains remove`.
func (a *app) domainsEditCmd(op string) *cobra.Command {
	var (
		router string
		domain int
		in     []string
		seed   uint64
		asJSON bool
		kf     kafkaFlags
	)
	short, long := "Split a domain in two with a balanced 2-means over its documents",
		`Featurize the documents of --in with the router's featurizer, take those the
router puts in --domain (nearest centroid), and split them with a balanced
2-means: the half nearer the old centroid keeps the id, the other half gets a
new id. The new router version is saved into --router.`
	example := `  pipeline domains split --router router/ --domain 3 --in corpus.jsonl.gz`
	if op == "remove" {
		short, long = "Remove a domain: its documents go to their next nearest domain",
			`Write a router version without --domain. Its id is retired (never reused); the
documents it would have received go to their next nearest domain. The new
router version is saved into --router.`
		example = `  pipeline domains remove --router router/ --domain 5`
	}
	cmd := &cobra.Command{
		Use:   op,
		Short: short,
		Long: long + `

With --brokers, the new version is also published on router.models, where
running stages pick it up.`,
		Example: example,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" || !cmd.Flags().Changed("domain") {
				return usagef("domains %s: --router and --domain are required", op)
			}
			if op == "split" && len(in) == 0 {
				return usagef("domains split: --in is required (the documents to split the domain's share of)")
			}
			ctx := cmd.Context()
			s, rm, err := loadRouterDir(router)
			if err != nil {
				return fmt.Errorf("domains %s: %w", op, err)
			}
			var next *cluster.RouterModel
			var added *int
			switch op {
			case "remove":
				if next, err = rm.RemoveDomain(domain); err != nil {
					return fmt.Errorf("domains remove: %w", err)
				}
			case "split":
				if next, err = a.splitDomain(ctx, s, rm, domain, in, seed); err != nil {
					return fmt.Errorf("domains split: %w", err)
				}
				id := next.IDs[len(next.IDs)-1]
				added = &id
			}
			if _, err := cluster.SaveRouter(router, next); err != nil {
				return fmt.Errorf("domains %s: %w", op, err)
			}
			rep := domainsEditReport{Version: next.Version, Previous: rm.Version, Domain: domain, NewDomain: added, Domains: domainRows(next)}
			if cmd.Flags().Changed("brokers") {
				cc, err := kf.connect(ctx, a.log)
				if err != nil {
					return fmt.Errorf("domains %s: %w", op, err)
				}
				rt, err := cluster.NewRouterTopic(cc, a.log)
				if err == nil {
					err = rt.PublishRouter(ctx, next)
					rt.Close()
				}
				if err != nil {
					return fmt.Errorf("domains %s: saved router v%d but could not publish it: %w", op, next.Version, err)
				}
				rep.Published = true
			}
			a.log.Info("router written", "op", op, "domain", domain, "version", next.Version, "ids", next.IDs)
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			what := fmt.Sprintf("removed domain %d", domain)
			if added != nil {
				what = fmt.Sprintf("split domain %d into %d and %d", domain, domain, *added)
			}
			fmt.Fprintf(a.stderr, "domains: %s; router v%d → v%d with ids %v\n", what, rm.Version, next.Version, next.IDs)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&router, "router", "", "router `dir` (a 'cluster fit' output)")
	fs.IntVar(&domain, "domain", 0, "the domain `id`")
	if op == "split" {
		fs.StringSliceVar(&in, "in", nil, "input `files` whose documents of --domain are split")
		fs.Uint64Var(&seed, "seed", 1, "seed of the 2-means")
	}
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	kf.register(fs)
	return cmd
}

// splitDomain featurizes paths with s, keeps the documents rm routes to id
// (plain argmin) and splits id over them; the new version gets top terms and
// examples.
func (a *app) splitDomain(ctx context.Context, s *embed.State, rm *cluster.RouterModel, id int, paths []string, seed uint64) (*cluster.RouterModel, error) {
	j, ok := rm.Index(id)
	if !ok {
		return nil, fmt.Errorf("no domain %d (have %v)", id, rm.IDs)
	}
	dr := &docReader{a: a, paths: paths, lim: schemas.Limits{}, log: a.log}
	defer dr.close()
	if _, err := dr.next(1 << 62); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	v, err := s.Featurizer.Transform(ctx, dr.texts)
	if err != nil {
		return nil, err
	}
	all := rowsOf(v)
	nearest, _ := rm.Model.Assign(all)
	var pick []int
	for i, c := range nearest {
		if c == j {
			pick = append(pick, i)
		}
	}
	if len(pick) < 2 {
		return nil, fmt.Errorf("%d of the %d documents of %v are nearest domain %d: need at least 2 to split it", len(pick), all.N, paths, id)
	}
	members, ids := subRows(all, pick), make([]string, len(pick))
	for i, p := range pick {
		ids[i] = dr.ids[p]
	}
	next, err := rm.SplitDomain(ctx, id, members, seed)
	if err != nil {
		return nil, err
	}
	next.TopTerms = domainTopTerms(s, next.Model, topTermsOf(rm))
	labels, _ := next.Model.Assign(members)
	ex := cluster.Examples(next.Model, members, ids, labels, numExamples)
	if next.Examples == nil {
		next.Examples = make([][]string, next.K())
	}
	next.Examples[j], next.Examples[next.K()-1] = ex[j], ex[next.K()-1]
	return next, nil
}

// topTermsOf is how many top terms rm keeps per domain (10 when unknown).
func topTermsOf(rm *cluster.RouterModel) int {
	n := 0
	for _, t := range rm.TopTerms {
		n = max(n, len(t))
	}
	if n == 0 {
		return 10
	}
	return n
}

// subRows returns the rows pick of x, in that order.
func subRows(x *cluster.Rows, pick []int) *cluster.Rows {
	out := &cluster.Rows{N: len(pick), Dim: x.Dim}
	if !x.Sparse() {
		for _, i := range pick {
			_, v := x.Row(i)
			out.Values = append(out.Values, v...)
		}
		return out
	}
	out.Indptr = []int64{0}
	for _, i := range pick {
		idx, v := x.Row(i)
		out.Indices = append(out.Indices, idx...)
		out.Values = append(out.Values, v...)
		out.Indptr = append(out.Indptr, int64(len(out.Values)))
	}
	return out
}
