package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/report"
)

// mixtureWinsAt says where the router mixture beats the dense baseline,
// with a command to run (the run summary's verdict line).
const mixtureWinsAt = report.MixtureWinsAt

// reportFlags are the flags of `pipeline report`.
type reportFlags struct {
	out  string
	file string
	json bool
}

// reportResult is the --json output of `pipeline report`.
type reportResult struct {
	File    string   `json:"file"`
	Plots   int      `json:"plots"`
	Missing []string `json:"missing"`
}

func (a *app) reportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write an HTML page with plots of a run: domain sizes, top terms, loss curves, bits per byte",
		Long: `Read what 'pipeline run' (or 'pipeline train', 'pipeline cluster fit') left in
--out and write one self-contained HTML file (no external resources, no
JavaScript needed) with:

  - the run counts: documents in, routed, dead-lettered, held out; the
    run's settings and its dead letters by reason (summary.json);
  - domain sizes over time, one line per domain (routing-history.jsonl; a bar
    chart of the final routed sizes, or of the sizes at fit, without it);
  - the novel fraction of the routed documents over time, when the routing
    stage judged novelty (routing-history.jsonl);
  - the domains over time when they changed during the run: a line per
    domain from its first record, the documents parked for growth, a mark
    where each domain grown or split begins ("grown v2"), and a table of
    every domain's origin (routing-history.jsonl, every version in router/);
  - the domains: sizes at fit (k-means) and routed in the run, and their
    top terms (router/);
  - the sources each domain holds, as stacked bars (summary.json);
  - the training loss (nats per byte) of every expert over training bytes,
    a branched expert starting where the seed ended
    (experts/<name>/step-*.arrow);
  - bits per byte of the held-out set for each expert alone, the dense
    baseline (continued from the seed) and the seed, and for each routing
    choice (top-1, top-2, all); lower is better;
  - the wall time of each phase of the run (summary.json).

Each plot is an SVG inlined in the page, with a table of the same numbers
below it. Inputs that are missing are named in the page; only a dir that holds
none of them is an error. The file is written atomically.`,
		Example: `  pipeline run --out run/ && pipeline report --out run/
  pipeline report --out run/ --file /tmp/run.html --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.report(&f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.out, "out", "", "run output `dir` to report on (required)")
	fs.StringVar(&f.file, "file", "", "HTML `file` to write (default DIR/report.html)")
	fs.BoolVar(&f.json, "json", false, `print {"file","plots","missing"} as one JSON object`)
	return cmd
}

func (a *app) report(f *reportFlags) error {
	if f.out == "" {
		return usagef("report: --out is required")
	}
	if f.file == "" {
		f.file = filepath.Join(f.out, "report.html")
	}
	log := a.log.With("cmd", "report")
	d, err := report.Load(f.out)
	if err != nil {
		return err
	}
	for _, m := range d.Missing() {
		log.Warn("not in the report", "what", m.What, "why", m.Why)
	}
	page, err := d.Page()
	if err != nil {
		return err
	}
	if err := page.WriteFile(f.file); err != nil {
		return err
	}
	res := reportResult{File: f.file, Plots: len(page.Figures), Missing: []string{}}
	for _, m := range page.Missing {
		res.Missing = append(res.Missing, m.What)
	}
	if f.json {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "report: %s (%s", f.file, plural(int64(res.Plots), "plot"))
	if len(res.Missing) > 0 {
		fmt.Fprintf(a.stdout, "; not shown: %s", strings.Join(res.Missing, ", "))
	}
	fmt.Fprintln(a.stdout, ")")
	return nil
}
