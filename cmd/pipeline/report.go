package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// The inputs of a report, relative to the run output dir.
const (
	reportSummaryFile = "summary.json"
	reportRouterDir   = "router"
	reportExpertsDir  = "experts"
	reportHistoryFile = "routing-history.jsonl"
)

// Plot sizes, and the most points a loss curve or a table shows.
const (
	reportPlotW        = 7 * vg.Inch
	reportPlotH        = 3.6 * vg.Inch
	reportMaxLossPts   = 400 // longer curves are averaged into this many windows
	reportMaxTableRows = 40  // longer histories are sampled evenly (last row kept)
)

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

  - the run counts: documents in, routed, dead-lettered, held out
    (summary.json);
  - domain sizes over time, one line per domain (routing-history.jsonl; a bar
    chart of the final routed sizes, or of the sizes at fit, without it);
  - the domains: sizes at fit and routed, and their top terms (router/);
  - the training loss of every expert over training bytes
    (experts/<name>/step-*.arrow);
  - bits per byte of the held-out set for each expert alone, the dense
    baseline and the seed, and for each routing choice (top-1, top-2, all).

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
	d, err := loadReportData(f.out)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for _, m := range d.missing {
		log.Warn("not in the report", "what", m.What, "why", m.Why)
	}
	page, err := buildReportPage(d)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	err = schemas.WriteFileAtomic(f.file, func(fh *os.File) error {
		if err := fh.Chmod(0o644); err != nil { // a page to share, not a secret
			return err
		}
		_, err := fh.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	res := reportResult{File: f.file, Plots: len(page.Figures), Missing: []string{}}
	for _, m := range d.missing {
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

// ---------------------------------------------------------------------------
// Inputs

// reportMissing is an input the page could not show, and why.
type reportMissing struct {
	What string // the file or dir, relative to the run dir
	Why  string
}

// reportExpert is the loss curve of one expert's newest valid checkpoint.
type reportExpert struct {
	Name   string
	Step   int
	Tokens int64
	Losses []train.LossPoint
}

// reportData is everything read from a run output dir; a nil or empty part
// was missing (and is listed in missing).
type reportData struct {
	dir     string
	summary *runSummary
	router  *cluster.RouterModel
	history []cluster.RoutingState
	experts []reportExpert
	missing []reportMissing
}

// loadReportData reads the inputs of a report from dir. A missing or damaged
// input is recorded in missing; it is an error only when dir holds none.
func loadReportData(dir string) (*reportData, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	d := &reportData{dir: dir}
	miss := func(what, format string, args ...any) {
		d.missing = append(d.missing, reportMissing{What: what, Why: fmt.Sprintf(format, args...)})
	}
	notFound := func(err error) bool { return errors.Is(err, os.ErrNotExist) }

	// summary.json
	if b, err := os.ReadFile(filepath.Join(dir, reportSummaryFile)); notFound(err) {
		miss(reportSummaryFile, "not found (written by 'pipeline run'): no run counts, final routed sizes or bits per byte")
	} else if err != nil {
		miss(reportSummaryFile, "%v", err)
	} else {
		var s runSummary
		if err := json.Unmarshal(b, &s); err != nil {
			miss(reportSummaryFile, "damaged: %v", err)
		} else {
			d.summary = &s
		}
	}

	// router/
	if _, err := os.Stat(filepath.Join(dir, reportRouterDir)); notFound(err) {
		miss(reportRouterDir+"/", "not found (written by 'pipeline cluster fit' or 'pipeline run'): no sizes at fit or top terms from the router")
	} else if rm, err := cluster.LoadRouter(filepath.Join(dir, reportRouterDir), 0); err != nil {
		miss(reportRouterDir+"/", "no router loaded: %v", err)
	} else {
		d.router = rm
	}

	// routing-history.jsonl
	h, bad, err := readRoutingHistory(filepath.Join(dir, reportHistoryFile))
	switch {
	case notFound(err):
		miss(reportHistoryFile, "not found (written by the routing stage with --history, as 'pipeline run' does): no domain sizes over time")
	case err != nil:
		miss(reportHistoryFile, "%v", err)
	case len(h) == 0 && bad == 0:
		miss(reportHistoryFile, "empty (routing ended before its first once-a-second record): no domain sizes over time")
	case len(h) == 0:
		miss(reportHistoryFile, "no valid line (%d damaged): no domain sizes over time", bad)
	default:
		d.history = h
		if bad > 0 {
			miss(reportHistoryFile, "%d damaged lines skipped", bad)
		}
	}

	// experts/<name>/
	ents, err := os.ReadDir(filepath.Join(dir, reportExpertsDir))
	switch {
	case notFound(err):
		miss(reportExpertsDir+"/", "not found (written by 'pipeline train' or 'pipeline run'): no loss curves")
	case err != nil:
		miss(reportExpertsDir+"/", "%v", err)
	default:
		var names []string
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Slice(names, func(i, j int) bool { return expertLess(names[i], names[j]) })
		for _, n := range names {
			what := reportExpertsDir + "/" + n + "/"
			c, _, err := train.LoadLatestCheckpoint(filepath.Join(dir, reportExpertsDir, n))
			switch {
			case err != nil:
				miss(what, "no valid checkpoint: %v", err)
			case c == nil:
				miss(what, "no checkpoint")
			default:
				d.experts = append(d.experts, reportExpert{Name: n, Step: c.Meta.Step, Tokens: c.Meta.Tokens, Losses: c.Meta.Losses})
			}
		}
		if len(names) == 0 {
			miss(reportExpertsDir+"/", "no expert in it: no loss curves")
		}
	}

	if d.summary == nil && d.router == nil && d.history == nil && d.experts == nil {
		return nil, fmt.Errorf("%s holds no run output (none of %s, %s/, %s, %s/ with a checkpoint); give the --out of 'pipeline run' or 'pipeline train'",
			dir, reportSummaryFile, reportRouterDir, reportHistoryFile, reportExpertsDir)
	}
	return d, nil
}

// readRoutingHistory reads the JSON lines of a routing history: the valid
// records in order, and the number of lines that were not one.
func readRoutingHistory(path string) ([]cluster.RoutingState, int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	var out []cluster.RoutingState
	bad := 0
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var s cluster.RoutingState
		if err := json.Unmarshal(line, &s); err != nil || s.Counts == nil {
			bad++
			continue
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return out, bad, fmt.Errorf("read %s: %w", path, err)
	}
	return out, bad, nil
}

// ---------------------------------------------------------------------------
// The page

// reportCell is one table cell; Num right-aligns it.
type reportCell struct {
	Text string
	Num  bool
}

// reportTable is the table of numbers under a plot.
type reportTable struct {
	Caption string
	Head    []string
	Rows    [][]reportCell
}

// reportFigure is one plot: an SVG image and its table.
type reportFigure struct {
	ID      string // element id, e.g. "plot-loss"
	Plot    string // data-plot: sizes, domains, loss, bpb-experts, bpb-routing
	Source  string // data-source: the input it was drawn from
	Series  int    // data-series: lines or bar groups drawn
	Title   string
	Caption string
	Alt     string
	// Image is the attribute src="data:image/svg+xml;base64,…": typed as
	// an attribute so that html/template leaves the base64 alphabet as it is
	// (it would write each '+' of a URL as &#43;).
	Image template.HTMLAttr
	Table reportTable
}

// reportCount is one of the run counts of the header.
type reportCount struct {
	Key, Label, Value string
}

// reportPage is what the template renders.
type reportPage struct {
	Dir       string
	Generated string
	Counts    []reportCount
	Figures   []reportFigure
	Missing   []reportMissing
}

func buildReportPage(d *reportData) (*reportPage, error) {
	p := &reportPage{Dir: d.dir, Generated: time.Now().UTC().Format(time.RFC3339), Missing: d.missing}
	if s := d.summary; s != nil {
		p.Counts = []reportCount{
			{"docs_in", "documents in", strconv.FormatInt(s.DocsIn, 10)},
			{"docs_routed", "routed", strconv.FormatInt(s.DocsRouted, 10)},
			{"docs_deadletter", "dead-lettered", strconv.FormatInt(s.DocsDeadletter, 10)},
			{"docs_heldout", "held out", strconv.FormatInt(s.DocsHeldout, 10)},
			{"domains", "domains", strconv.Itoa(len(s.Domains))},
			{"seed_tokens", "seed training bytes", strconv.FormatInt(s.SeedTokens, 10)},
			{"dense_tokens", "dense training bytes", strconv.FormatInt(s.DenseTokens, 10)},
			{"seconds", "run time (s)", strconv.FormatFloat(s.Seconds, 'f', 1, 64)},
		}
	}
	for _, build := range []func(*reportData) (*reportFigure, error){
		sizesFigure, domainsFigure, lossFigure, bpbExpertsFigure, bpbRoutingFigure,
	} {
		fig, err := build(d)
		if err != nil {
			return nil, err
		}
		if fig != nil {
			p.Figures = append(p.Figures, *fig)
		}
	}
	return p, nil
}

// sizesFigure plots the routed documents per domain over time from the
// routing history, or, without one, the final routed sizes (summary) or the
// sizes at fit (router) as bars.
func sizesFigure(d *reportData) (*reportFigure, error) {
	fig := &reportFigure{ID: "plot-sizes", Plot: "sizes", Title: "Domain sizes"}
	p := newReportPlot("Documents routed per domain", "", "documents")
	if len(d.history) > 0 {
		t0 := d.history[0].Saved
		ids := historyIDs(d.history)
		for i, id := range ids {
			var pts plotter.XYs
			for _, h := range d.history {
				if c, ok := h.Counts[id]; ok {
					pts = append(pts, plotter.XY{X: h.Saved.Sub(t0).Seconds(), Y: float64(c)})
				}
			}
			if err := addLine(p, "domain "+id, pts, i); err != nil {
				return nil, err
			}
		}
		p.X.Label.Text = "seconds since the first record"
		p.Legend.Left = true // cumulative counts leave the top left empty
		fig.Source, fig.Series = reportHistoryFile, len(ids)
		fig.Caption = fmt.Sprintf("Documents routed to each domain over time (cumulative, %s of %s).", plural(int64(len(d.history)), "record"), reportHistoryFile)
		fig.Table = reportTable{Caption: "Routed documents per domain at each record", Head: []string{"seconds", "router version"}}
		for _, id := range ids {
			fig.Table.Head = append(fig.Table.Head, "domain "+id)
		}
		for _, i := range sampleIndexes(len(d.history), reportMaxTableRows) {
			h := d.history[i]
			row := []reportCell{num(strconv.FormatFloat(h.Saved.Sub(t0).Seconds(), 'f', 1, 64)), num(strconv.FormatInt(h.RouterVersion, 10))}
			for _, id := range ids {
				if c, ok := h.Counts[id]; ok {
					row = append(row, num(strconv.FormatInt(c, 10)))
				} else {
					row = append(row, num("–"))
				}
			}
			fig.Table.Rows = append(fig.Table.Rows, row)
		}
		if len(d.history) > reportMaxTableRows {
			fig.Table.Caption += fmt.Sprintf(" (%d of %d records, evenly spaced)", reportMaxTableRows, len(d.history))
		}
	} else {
		var labels []string
		var vals plotter.Values
		switch {
		case d.summary != nil && len(d.summary.Domains) > 0:
			for _, dm := range d.summary.Domains {
				labels = append(labels, strconv.Itoa(dm.ID))
				vals = append(vals, float64(dm.Size))
			}
			fig.Source = reportSummaryFile
			fig.Caption = "Final routed documents per domain (from " + reportSummaryFile + "; no routing history to plot over time)."
		case d.router != nil:
			for _, r := range domainRows(d.router) {
				labels = append(labels, strconv.Itoa(r.ID))
				vals = append(vals, float64(r.Size))
			}
			fig.Source = reportRouterDir
			fig.Caption = "Documents per domain at fit (from the router; no routing history or run summary)."
		default:
			return nil, nil
		}
		if err := addBars(p, "", vals, 0, barWidth(len(vals), 1), 0, 0); err != nil {
			return nil, err
		}
		p.NominalX(labels...)
		p.X.Label.Text = "domain"
		fig.Series = 1
		fig.Table = reportTable{Caption: "Documents per domain", Head: []string{"domain", "documents"}}
		for i := range labels {
			fig.Table.Rows = append(fig.Table.Rows, []reportCell{num(labels[i]), num(strconv.FormatFloat(vals[i], 'f', -1, 64))})
		}
	}
	fig.Alt = fig.Caption
	return fig, renderFigure(fig, p)
}

// domainsFigure shows each domain's size at fit and routed as bars, and
// its top terms in the table.
func domainsFigure(d *reportData) (*reportFigure, error) {
	type dom struct {
		id                int
		fit, routed       int64
		hasFit, hasRouted bool
		terms, examples   []string
		tokens            int64
		loss              float64
		hasTrain          bool
	}
	byID := map[int]*dom{}
	get := func(id int) *dom {
		if byID[id] == nil {
			byID[id] = &dom{id: id}
		}
		return byID[id]
	}
	if d.router != nil {
		for _, r := range domainRows(d.router) {
			x := get(r.ID)
			x.fit, x.hasFit, x.terms, x.examples = int64(r.Size), true, r.TopTerms, r.Examples
		}
	}
	if d.summary != nil {
		for _, s := range d.summary.Domains {
			x := get(s.ID)
			x.routed, x.hasRouted = s.Size, true
			x.tokens, x.loss, x.hasTrain = s.Tokens, s.Loss, true
			if len(x.terms) == 0 {
				x.terms = s.TopTerms
			}
		}
	}
	if len(byID) == 0 {
		return nil, nil
	}
	ids := make([]int, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	fig := &reportFigure{ID: "plot-domains", Plot: "domains", Title: "Domains and their top terms"}
	p := newReportPlot("Domain sizes", "domain", "documents")
	labels := make([]string, len(ids))
	var fit, routed plotter.Values
	for i, id := range ids {
		labels[i] = strconv.Itoa(id)
		fit = append(fit, float64(byID[id].fit))
		routed = append(routed, float64(byID[id].routed))
	}
	var sources []string
	series := 0
	w := barWidth(len(ids), 2)
	switch {
	case d.router != nil && d.summary != nil:
		if err := addBars(p, "at fit", fit, 0, w, -w/2, 0); err != nil {
			return nil, err
		}
		if err := addBars(p, "routed", routed, 0, w, w/2, 1); err != nil {
			return nil, err
		}
		sources, series = []string{reportRouterDir, reportSummaryFile}, 2
	case d.router != nil:
		if err := addBars(p, "at fit", fit, 0, barWidth(len(ids), 1), 0, 0); err != nil {
			return nil, err
		}
		sources, series = []string{reportRouterDir}, 1
	default:
		if err := addBars(p, "routed", routed, 0, barWidth(len(ids), 1), 0, 1); err != nil {
			return nil, err
		}
		sources, series = []string{reportSummaryFile}, 1
	}
	p.NominalX(labels...)
	fig.Source, fig.Series = strings.Join(sources, " "), series
	fig.Caption = "Documents per domain (at fit by the router, and routed during the run); the table lists each domain's top terms."
	fig.Alt = "Bar chart of documents per domain"
	fig.Table = reportTable{Caption: "Domains: sizes, training and top terms",
		Head: []string{"domain", "size at fit", "routed", "training bytes", "final loss (nats/byte)", "top terms", "example ids"}}
	opt := func(ok bool, s string) reportCell {
		if !ok {
			return num("–")
		}
		return num(s)
	}
	for _, id := range ids {
		x := byID[id]
		fig.Table.Rows = append(fig.Table.Rows, []reportCell{
			num(strconv.Itoa(id)),
			opt(x.hasFit, strconv.FormatInt(x.fit, 10)),
			opt(x.hasRouted, strconv.FormatInt(x.routed, 10)),
			opt(x.hasTrain, strconv.FormatInt(x.tokens, 10)),
			opt(x.hasTrain, fmtFloat(x.loss)),
			{Text: strings.Join(x.terms, " ")},
			{Text: strings.Join(x.examples, " ")},
		})
	}
	return fig, renderFigure(fig, p)
}

// lossFigure plots every expert's training loss over its training bytes.
func lossFigure(d *reportData) (*reportFigure, error) {
	var experts []reportExpert
	for _, e := range d.experts {
		if len(e.Losses) > 0 {
			experts = append(experts, e)
		}
	}
	if len(experts) == 0 {
		return nil, nil
	}
	fig := &reportFigure{ID: "plot-loss", Plot: "loss", Title: "Training loss", Source: reportExpertsDir, Series: len(experts)}
	p := newReportPlot("Training loss per expert", "training bytes", "loss (nats/byte)")
	smoothed := false
	for i, e := range experts {
		pts := lossCurve(e.Losses, reportMaxLossPts)
		smoothed = smoothed || len(pts) < len(e.Losses)
		if err := addLine(p, expertLabel(e.Name), pts, i); err != nil {
			return nil, err
		}
	}
	fig.Caption = "Mean training loss of each step against the bytes trained on, one line per expert (an expert branched from the seed carries the seed's curve before its own)."
	if smoothed {
		fig.Caption += fmt.Sprintf(" Curves longer than %d steps are averaged over equal windows.", reportMaxLossPts)
	}
	fig.Alt = "Line chart of training loss per expert"
	fig.Table = reportTable{Caption: "Loss per expert (newest checkpoint)",
		Head: []string{"expert", "steps", "training bytes", "first loss", "final loss", "lowest loss"}}
	for _, e := range experts {
		lo := math.Inf(1)
		for _, l := range e.Losses {
			lo = min(lo, float64(l.Loss))
		}
		fig.Table.Rows = append(fig.Table.Rows, []reportCell{
			{Text: e.Name}, num(strconv.Itoa(e.Step)), num(strconv.FormatInt(e.Tokens, 10)),
			num(fmtFloat(float64(e.Losses[0].Loss))), num(fmtFloat(float64(e.Losses[len(e.Losses)-1].Loss))), num(fmtFloat(lo)),
		})
	}
	return fig, renderFigure(fig, p)
}

// bpbExpertsFigure plots the held-out bits per byte of each expert alone,
// the dense baseline and the seed.
func bpbExpertsFigure(d *reportData) (*reportFigure, error) {
	if d.summary == nil {
		return nil, nil
	}
	ev := d.summary.Eval
	type bar struct {
		name string
		bpb  float64
	}
	var experts, baselines []bar
	for _, e := range ev.ExpertBPB {
		experts = append(experts, bar{e.Expert, e.BPB})
	}
	if ev.SeedBPB != nil {
		baselines = append(baselines, bar{"seed", *ev.SeedBPB})
	}
	if ev.DenseBPB != nil {
		baselines = append(baselines, bar{"dense", *ev.DenseBPB})
	}
	if len(experts)+len(baselines) == 0 {
		return nil, nil
	}
	fig := &reportFigure{ID: "plot-bpb-experts", Plot: "bpb-experts", Title: "Bits per byte per expert", Source: reportSummaryFile}
	p := newReportPlot("Held-out bits per byte, each model alone", "model", "bits/byte")
	var labels []string
	var ev1, ev2 plotter.Values
	for _, b := range experts {
		labels = append(labels, expertLabel(b.name))
		ev1 = append(ev1, b.bpb)
	}
	for _, b := range baselines {
		labels = append(labels, b.name)
		ev2 = append(ev2, b.bpb)
	}
	if len(ev1) > 0 {
		if err := addBars(p, "domain experts", ev1, 0, barWidth(len(labels), 1), 0, 0); err != nil {
			return nil, err
		}
		fig.Series++
	}
	if len(ev2) > 0 {
		if err := addBars(p, "dense models", ev2, float64(len(ev1)), barWidth(len(labels), 1), 0, 2); err != nil {
			return nil, err
		}
		fig.Series++
	}
	p.NominalX(labels...)
	fig.Caption = "Bits per byte on the held-out documents of each domain expert alone (every document through that one expert), of the dense baseline trained on the same total bytes, and of the seed the experts branched from. Lower is better."
	fig.Alt = "Bar chart of bits per byte per expert"
	fig.Table = reportTable{Caption: "Held-out bits per byte per model", Head: []string{"model", "bits/byte", "perplexity (per byte)"}}
	for _, b := range append(experts, baselines...) {
		fig.Table.Rows = append(fig.Table.Rows, []reportCell{{Text: b.name}, num(fmtFloat(b.bpb)), num(fmtFloat(math.Exp2(b.bpb)))})
	}
	return fig, renderFigure(fig, p)
}

// routingChoices are the router mixtures of `pipeline eval`, in plot order.
var routingChoices = []string{"top1", "top2", "all"}

// bpbRoutingFigure plots the held-out bits per byte of each routing choice,
// with the dense baseline as a line.
func bpbRoutingFigure(d *reportData) (*reportFigure, error) {
	if d.summary == nil || len(d.summary.Eval.MixtureBPB) == 0 {
		return nil, nil
	}
	mix := d.summary.Eval.MixtureBPB
	var names []string
	for _, c := range routingChoices {
		if _, ok := mix[c]; ok {
			names = append(names, c)
		}
	}
	var rest []string
	for c := range mix {
		if !slices.Contains(routingChoices, c) {
			rest = append(rest, c)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	fig := &reportFigure{ID: "plot-bpb-routing", Plot: "bpb-routing", Title: "Bits per byte per routing choice", Source: reportSummaryFile, Series: 1}
	p := newReportPlot("Held-out bits per byte of the router mixtures", "routing", "bits/byte")
	vals := make(plotter.Values, len(names))
	for i, n := range names {
		vals[i] = mix[n]
	}
	if err := addBars(p, "experts mixed by the router", vals, 0, barWidth(len(vals), 1), 0, 1); err != nil {
		return nil, err
	}
	if dense := d.summary.Eval.DenseBPB; dense != nil {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: *dense}, {X: float64(len(names)) - 0.5, Y: *dense}})
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(2)
		l.Width = vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("dense baseline", l)
		fig.Series++
	}
	p.NominalX(names...)
	fig.Caption = "Bits per byte on the held-out documents when the router picks the experts of each document: the nearest expert (top1), the two nearest (top2) or all experts, mixed by the router's weights. The dashed line is the dense baseline. Lower is better."
	fig.Alt = "Bar chart of bits per byte per routing choice"
	fig.Table = reportTable{Caption: "Held-out bits per byte per routing choice", Head: []string{"routing", "bits/byte", "perplexity (per byte)"}}
	for i, n := range names {
		fig.Table.Rows = append(fig.Table.Rows, []reportCell{{Text: n}, num(fmtFloat(vals[i])), num(fmtFloat(math.Exp2(vals[i])))})
	}
	if dense := d.summary.Eval.DenseBPB; dense != nil {
		fig.Table.Rows = append(fig.Table.Rows, []reportCell{{Text: "dense baseline"}, num(fmtFloat(*dense)), num(fmtFloat(math.Exp2(*dense)))})
	}
	return fig, renderFigure(fig, p)
}

// ---------------------------------------------------------------------------
// Plot helpers

func newReportPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// reportMaxMarked is the most points a line marks with a glyph (so that a
// line of one point still shows).
const reportMaxMarked = 30

// addLine adds a line with a legend entry in the i-th color and dash; a
// short line also marks its points.
func addLine(p *plot.Plot, name string, pts plotter.XYs, i int) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
	l.Width = vg.Points(1.5)
	if len(pts) > reportMaxMarked {
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	s.Color = l.Color
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(2.5)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// addBars adds a bar chart of bars width wide starting at x, shifted by
// offset, in the c-th color; name "" adds no legend entry.
func addBars(p *plot.Plot, name string, vals plotter.Values, x float64, width, offset vg.Length, c int) error {
	b, err := plotter.NewBarChart(vals, width)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	b.Color = plotutil.Color(c)
	b.LineStyle.Width = vg.Points(0.5)
	b.LineStyle.Color = color.Gray{Y: 64}
	b.XMin = x
	b.Offset = offset
	p.Add(b)
	if name != "" {
		p.Legend.Add(name, b)
	}
	return nil
}

// barWidth is the width of one of perGroup bars side by side in each of
// n groups.
func barWidth(n, perGroup int) vg.Length {
	w := reportPlotW * 0.8 / vg.Length(2*max(n, 1)*perGroup)
	return min(max(w, vg.Points(4)), vg.Points(40))
}

// renderFigure renders p as SVG into fig.Image, with headroom above the
// data for the legend.
func renderFigure(fig *reportFigure, p *plot.Plot) error {
	if p.Y.Max > 0 {
		p.Y.Max *= 1.2 // room for the legend above the data
	}
	wt, err := p.WriterTo(reportPlotW, reportPlotH, "svg")
	if err != nil {
		return fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	// Safe unescaped: the base64 alphabet holds no quote, '<' or '&'.
	fig.Image = template.HTMLAttr(`src="data:image/svg+xml;base64,` + base64.StdEncoding.EncodeToString(buf.Bytes()) + `"`)
	return nil
}

// lossCurve returns the loss points as (tokens, loss); more than limit points
// are averaged over limit equal windows of steps.
func lossCurve(ls []train.LossPoint, limit int) plotter.XYs {
	if len(ls) <= limit {
		pts := make(plotter.XYs, len(ls))
		for i, l := range ls {
			pts[i] = plotter.XY{X: float64(l.Tokens), Y: float64(l.Loss)}
		}
		return pts
	}
	pts := make(plotter.XYs, limit)
	for w := range limit {
		lo, hi := w*len(ls)/limit, (w+1)*len(ls)/limit
		var sum float64
		for _, l := range ls[lo:hi] {
			sum += float64(l.Loss)
		}
		pts[w] = plotter.XY{X: float64(ls[hi-1].Tokens), Y: sum / float64(hi-lo)}
	}
	return pts
}

// historyIDs returns the domain ids of a routing history, numerically
// ordered.
func historyIDs(h []cluster.RoutingState) []string {
	seen := map[string]bool{}
	var ids []string
	for _, s := range h {
		for id := range s.Counts {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return expertLess(ids[i], ids[j]) })
	return ids
}

// sampleIndexes returns at most limit indexes of [0, n), evenly spaced,
// with the first and the last.
func sampleIndexes(n, limit int) []int {
	if n <= limit {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, limit)
	for i := range out {
		out[i] = i * (n - 1) / (limit - 1)
	}
	return out
}

// expertLabel names an expert in a plot: "domain 3", or the name.
func expertLabel(name string) string {
	if _, err := strconv.Atoi(name); err == nil {
		return "domain " + name
	}
	return name
}

func num(s string) reportCell { return reportCell{Text: s, Num: true} }

// fmtFloat formats a measurement with 4 decimals.
func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// reportTemplate is the page. It needs no JavaScript; the one script only
// marks each figure whose image the browser decoded (data-rendered="ok"),
// for tests in a real browser.
var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="domainflow pipeline report">
<title>domainflow run report: {{.Dir}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
figure { margin: 2em 0; padding: 1em; border: 1px solid #ddd; border-radius: 6px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { margin: 0.5em 0 1em; color: #444; }
figcaption strong { color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#counts td { text-align: right; }
#missing li { margin: 0.2em 0; }
code { font-size: 0.95em; }
</style>
</head>
<body>
<header>
<h1>domainflow run report</h1>
<p class="meta">Run output <code>{{.Dir}}</code>, report written {{.Generated}}.</p>
{{- if .Counts}}
<table id="counts">
<caption>Documents</caption>
<tr>{{range .Counts}}<th scope="col">{{.Label}}</th>{{end}}</tr>
<tr>{{range .Counts}}<td data-count="{{.Key}}">{{.Value}}</td>{{end}}</tr>
</table>
{{- else}}
<p id="counts-missing">No run counts: this dir has no summary.json.</p>
{{- end}}
</header>
<main>
{{- range .Figures}}
<section>
<h2>{{.Title}}</h2>
<figure id="{{.ID}}" data-plot="{{.Plot}}" data-source="{{.Source}}" data-series="{{.Series}}">
<img {{.Image}} alt="{{.Alt}}">
<figcaption>{{.Caption}}</figcaption>
<table>
<caption>{{.Table.Caption}}</caption>
<thead><tr>{{range .Table.Head}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Table.Rows}}
<tr>{{range .}}<td{{if .Num}} class="num"{{end}}>{{.Text}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
</figure>
</section>
{{- end}}
{{- if .Missing}}
<section id="missing">
<h2>Not shown</h2>
<ul>
{{- range .Missing}}
<li data-missing="{{.What}}"><code>{{.What}}</code>: {{.Why}}</li>
{{- end}}
</ul>
</section>
{{- end}}
</main>
<script>
(function () {
  function mark() {
    var figs = document.querySelectorAll("figure[data-plot]");
    for (var i = 0; i < figs.length; i++) {
      var img = figs[i].querySelector("img");
      var ok = img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0;
      figs[i].setAttribute("data-rendered", ok ? "ok" : "failed");
    }
  }
  if (document.readyState === "complete") { mark(); } else { window.addEventListener("load", mark); }
})();
</script>
</body>
</html>
`))
