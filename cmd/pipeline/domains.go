package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

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
			ds := rm.Domains()
			if asJSON {
				return writeJSON(a.stdout, struct {
					Version           int64                `json:"version"`
					Featurizer        string               `json:"featurizer"`
					FeaturizerVersion int64                `json:"featurizer_version"`
					Domains           []cluster.DomainInfo `json:"domains"`
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
	Version   int64                `json:"version"`
	Previous  int64                `json:"previous_version"`
	Domain    int                  `json:"domain"`
	NewDomain *int                 `json:"new_domain,omitempty"`
	Domains   []cluster.DomainInfo `json:"domains"`
	Published bool                 `json:"published"`
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
			ecfg := flow.DomainEditConfig{RouterDir: router, Domain: domain, Inputs: in, Stdin: a.stdin, Seed: seed, Logger: a.log}
			if cmd.Flags().Changed("brokers") {
				ecfg.Connect = func(ctx context.Context) (pipeline.ClientConfig, error) { return kf.Connect(ctx, a.log) }
			}
			edit := flow.RemoveDomain
			if op == "split" {
				edit = flow.SplitDomain
			}
			res, err := edit(cmd.Context(), ecfg)
			if err != nil {
				return fmt.Errorf("domains %s: %w", op, err)
			}
			rm, next := res.Previous, res.Router
			rep := domainsEditReport{Version: next.Version, Previous: rm.Version, Domain: domain, Domains: next.Domains(), Published: res.Published}
			if op == "split" {
				rep.NewDomain = &res.NewDomain
			}
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			what := fmt.Sprintf("removed domain %d", domain)
			if rep.NewDomain != nil {
				what = fmt.Sprintf("split domain %d into %d and %d", domain, domain, *rep.NewDomain)
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
	kf.Register(fs)
	return cmd
}
