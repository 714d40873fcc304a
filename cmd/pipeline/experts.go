package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/stages/train"
)

func (a *app) expertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experts",
		Short: "List, merge and remove trained experts",
		Long: `Work with the experts of a training output dir (--out of 'pipeline train' or
'pipeline run'): each is DIR/experts/<name>/ with its checkpoints.`,
		Example: `  pipeline experts list --out run/ --json
  pipeline experts merge --out run/ --name merged --experts 0,1 --weights 0.7,0.3
  pipeline experts remove --out run/ --name 3`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.expertsListCmd(), a.expertsMergeCmd(), a.expertsRemoveCmd())
	return cmd
}

// loadExperts loads the newest valid checkpoint of every expert under out,
// sorted by name; damaged checkpoints are skipped with a warning.
func (a *app) loadExperts(out string) ([]string, []*train.Checkpoint, error) {
	return train.LoadExperts(out, func(expert string, err error) {
		a.log.Warn("damaged checkpoint skipped", "expert", expert, "err", err)
	})
}

func (a *app) expertsListCmd() *cobra.Command {
	var (
		out    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Per expert: step, training bytes, loss, checkpoint file and params_sha256",
		Long: `List the experts of --out with their newest valid checkpoint: step, training
bytes (--json: "tokens"; the experts are byte-level), documents, mean loss of the last 50 steps (nats per byte), the
checkpoint file and params_sha256, the SHA-256 of all parameter bytes (equal
digests mean bit-identical models).`,
		Example: `  pipeline experts list --out run/
  pipeline experts list --out run/ --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("experts list: --out is required")
			}
			names, cks, err := a.loadExperts(out)
			if err != nil {
				return fmt.Errorf("experts list: %w", err)
			}
			reps := make([]expertReport, len(names))
			for i, n := range names {
				reps[i] = train.ReportOf(n, train.ExpertDir(out, n), cks[i])
			}
			if asJSON {
				return writeJSON(a.stdout, struct {
					Experts []expertReport `json:"experts"`
				}{reps})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EXPERT\tSIZE\tSTEP\tTRAIN BYTES\tDOCS\tLOSS\tPARAMS_SHA256\tCHECKPOINT")
			for _, r := range reps {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%.3f\t%s\t%s\n", r.Expert, r.Size, r.Step, humanBytes(r.Tokens), r.Docs, r.Loss, r.ParamsSHA256[:16], r.Checkpoint)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "training output `dir`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func (a *app) expertsMergeCmd() *cobra.Command {
	var (
		out, name string
		experts   []string
		weights   []float64
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Average experts' parameters into a new expert",
		Long: `Write a new expert --name whose parameters are the weighted average of the
--experts' (same shape required; weights default to equal and are normalized to
sum 1). Its optimizer state starts fresh, so it can be trained on further.`,
		Example: `  pipeline experts merge --out run/ --name merged --experts 0,1,2
  pipeline experts merge --out run/ --name m01 --experts 0,1 --weights 3,1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || name == "" || len(experts) < 2 {
				return usagef("experts merge: --out, --name and at least two --experts are required")
			}
			if weights != nil && len(weights) != len(experts) {
				return usagef("experts merge: %d weights for %d experts", len(weights), len(experts))
			}
			if _, err := os.Stat(train.ExpertDir(out, name)); err == nil {
				return usagef("experts merge: expert %q exists already", name)
			}
			var cks []*train.Checkpoint
			for _, e := range experts {
				c, err := train.LoadSeed(train.ExpertDir(out, e))
				if err != nil {
					return fmt.Errorf("experts merge: expert %s: %w", e, err)
				}
				cks = append(cks, c)
			}
			if weights == nil {
				weights = make([]float64, len(experts))
				for i := range weights {
					weights[i] = 1
				}
			}
			merged, err := train.Merge(cks, weights)
			if err != nil {
				return fmt.Errorf("experts merge: %w", err)
			}
			merged.Meta.Expert = name
			path, err := train.SaveCheckpoint(train.ExpertDir(out, name), merged, 0)
			if err != nil {
				return fmt.Errorf("experts merge: %w", err)
			}
			rep := train.ReportOf(name, train.ExpertDir(out, name), merged)
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stderr, "experts merge: %s = %v weighted %v → %s (params_sha256 %s)\n", name, experts, weights, path, rep.ParamsSHA256[:16])
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&out, "out", "", "training output `dir`")
	fs.StringVar(&name, "name", "", "the new expert's `name`")
	fs.StringSliceVar(&experts, "experts", nil, "expert `names` to merge")
	fs.Float64SliceVar(&weights, "weights", nil, "one weight per expert (default equal)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func (a *app) expertsRemoveCmd() *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Retire an expert (its checkpoints move to DIR/experts/.removed/)",
		Long: `Retire expert --name: its directory moves to DIR/experts/.removed/<name>-<time>,
so evaluation and mixtures no longer use it and nothing is lost. The other
experts are untouched. To stop routing documents to its domain, remove the
domain from the router too ('pipeline domains remove').`,
		Example: `  pipeline experts remove --out run/ --name 3`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || name == "" {
				return usagef("experts remove: --out and --name are required")
			}
			src := train.ExpertDir(out, name)
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("experts remove: no expert %q in %s", name, out)
			}
			dst := filepath.Join(out, "experts", ".removed", name+"-"+strconv.FormatInt(time.Now().Unix(), 10))
			if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
				return fmt.Errorf("experts remove: %w", err)
			}
			if err := os.Rename(src, dst); err != nil {
				return fmt.Errorf("experts remove: %w", err)
			}
			fmt.Fprintf(a.stderr, "experts remove: %s moved to %s\n", name, dst)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "training output `dir`")
	cmd.Flags().StringVar(&name, "name", "", "the expert's `name`")
	return cmd
}
