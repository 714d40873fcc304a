package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

func (a *app) domainsCmd() *cobra.Command {
	var (
		router  string
		history string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "List, split or remove the domains of a router",
		Long: `Print the domains of the latest router version in --router: the stable domain
id, the number of fit documents in it, its drift, its top terms (the terms its
centroid weighs most; none for the hashing and http featurizers) and the ids of
the fit documents nearest its centroid.

The drift comes from the routing history (the routing stage's --history;
--history, by default routing-history.jsonl beside the router dir, as
'pipeline run' writes it, read only when it exists): the mean distance of the
domain's recent documents to its centroid over the mean at fit, as of the last
history line that has one for the domain. About 1 is normal, above 1 the
domain's documents are moving away. "-" (absent from --json) when unknown: no
history, a history written before drift was kept, or no document judged.

'domains split' and 'domains remove' write a new router version into --router
(and, with --brokers, publish it on router.models): a routing stage started
with that --router picks it up while it runs, keeping every other domain id.
'domains publish' publishes a saved version on router.models.`,
		Example: `  pipeline domains --router router/
  pipeline domains --router run/router --json
  pipeline domains --router router/ --history routing-history.jsonl
  pipeline domains split --router router/ --domain 3 --in sample.jsonl.gz
  pipeline domains remove --router router/ --domain 5 --brokers 127.0.0.1:9092
  pipeline domains publish --router router/ --brokers 127.0.0.1:9092`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" {
				return usagef("domains: --router is required")
			}
			l, err := flow.ListDomains(flow.DomainsConfig{RouterDir: router, History: history})
			if err != nil {
				return fmt.Errorf("domains: %w", err)
			}
			if l.Damaged > 0 {
				a.log.Warn("damaged routing history lines skipped", "history", l.History, "lines", l.Damaged)
			}
			rm, ds := l.Router, l.Domains
			if asJSON {
				return writeJSON(a.stdout, struct {
					Version           int64                `json:"version"`
					Featurizer        string               `json:"featurizer"`
					FeaturizerVersion int64                `json:"featurizer_version"`
					History           string               `json:"history,omitempty"`
					Domains           []cluster.DomainInfo `json:"domains"`
				}{rm.Version, rm.Featurizer, rm.FeaturizerVersion, l.History, ds})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "ID\tSIZE\tDRIFT\tTOP TERMS\tEXAMPLES\n")
			for _, d := range ds {
				drift := "-"
				if d.Drift != nil {
					drift = strconv.FormatFloat(*d.Drift, 'f', 2, 64)
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", d.ID, d.Size, drift, strings.Join(d.TopTerms, " "), strings.Join(d.Examples, " "))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&router, "router", "", "router `dir`")
	cmd.Flags().StringVar(&history, "history", "", "routing history `file` to read each domain's drift from (default routing-history.jsonl beside the router dir, when there)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.AddCommand(a.domainsEditCmd("split"), a.domainsEditCmd("remove"), a.domainsPublishCmd())
	return cmd
}

// domainsPublishReport is the --json output of `domains publish`.
type domainsPublishReport struct {
	Version  int64 `json:"version"`
	Previous int64 `json:"previous_version"` // on router.models before; 0 for none
	// Published is false when router.models held the version already.
	Published bool `json:"published"`
}

// domainsPublishCmd is `domains publish`.
func (a *app) domainsPublishCmd() *cobra.Command {
	var (
		router  string
		version int64
		asJSON  bool
		kf      kafkaFlags
	)
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish a saved router version on router.models",
		Long: `Publish the latest router version in --router (or --version) on router.models,
where running routing stages pick it up: a version that 'domains split' or
'domains remove' saved but could not publish (the broker was unreachable).
Nothing is published when router.models holds that version already; a
version older than the one there is refused.`,
		Example: `  pipeline domains publish --router router/ --brokers 127.0.0.1:9092`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if router == "" {
				return usagef("domains publish: --router is required")
			}
			res, err := flow.PublishRouter(cmd.Context(), flow.PublishConfig{RouterDir: router, Version: version, Logger: a.log,
				Connect: func(ctx context.Context) (pipeline.ClientConfig, error) { return kf.Connect(ctx, a.log) }})
			if err != nil {
				return fmt.Errorf("domains publish: %w", err)
			}
			rep := domainsPublishReport{Version: res.Router.Version, Previous: res.Previous, Published: !res.Already}
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			if res.Already {
				fmt.Fprintf(a.stderr, "domains: router v%d is on %s already: nothing published\n", rep.Version, pipeline.TopicRouterModels)
				return nil
			}
			held := "no router"
			if rep.Previous > 0 {
				held = fmt.Sprintf("v%d", rep.Previous)
			}
			fmt.Fprintf(a.stderr, "domains: router v%d with ids %v published on %s (it held %s)\n", rep.Version, res.Router.IDs, pipeline.TopicRouterModels, held)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&router, "router", "", "router `dir`")
	fs.Int64Var(&version, "version", 0, "the router `version` to publish (default the latest)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	kf.Register(fs)
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

With --brokers (or $` + envBrokers + ` set), the new version is also published on
router.models, where running stages pick it up. The broker is checked first:
when it cannot be reached nothing is saved. When the latest version in
--router is newer than the one on router.models (an earlier edit saved it
but could not publish it), the edit is refused: 'pipeline domains publish'
publishes that version.`,
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
			if kf.Given() { // --brokers or $DOMAINFLOW_BROKERS
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
			where := "saved in " + router + " only (no --brokers: not published; a routing stage started with this --router picks it up)"
			if res.Published {
				where = "saved in " + router + " and published on " + pipeline.TopicRouterModels
			}
			fmt.Fprintf(a.stderr, "domains: %s; router v%d → v%d with ids %v, %s\n", what, rm.Version, next.Version, next.IDs, where)
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
