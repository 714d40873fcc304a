package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/domainflow/domainflow/stages/cluster"
)

// Page is a report page as the HTML template renders it: the run counts,
// the figures and the inputs not shown. Data.Page builds it; WriteTo and
// WriteFile render it.
type Page struct {
	Dir       string    // the run output dir, as given to Load
	Generated string    // when Data.Page built it, RFC 3339 in UTC
	Counts    []Count   // the run counts of the header; none without summary.json
	Figures   []Figure  // in page order: plot-sizes, plot-domains, plot-loss, plot-bpb-experts, plot-bpb-routing
	Missing   []Missing // Data.Missing
}

// Count is one of the run counts of the header.
type Count struct {
	Key   string // data-count attribute: docs_in, docs_routed, ...
	Label string // column head: "documents in", ...
	Value string
}

// Figure is one plot: an SVG image and the table of its numbers.
type Figure struct {
	ID      string // element id, e.g. "plot-loss"
	Plot    string // data-plot: sizes, domains, loss, bpb-experts, bpb-routing
	Source  string // data-source: the inputs it was drawn from, space-separated
	Series  int    // data-series: lines or bar groups drawn
	Title   string
	Caption string
	Alt     string
	// Image is the attribute src="data:image/svg+xml;base64,…": typed as
	// an attribute so that html/template leaves the base64 alphabet as it is
	// (it would write each '+' of a URL as &#43;).
	Image template.HTMLAttr
	Table Table
}

// Table is the table of numbers under a plot.
type Table struct {
	Caption string
	Head    []string
	Rows    [][]Cell
}

// Cell is one table cell; Num right-aligns it.
type Cell struct {
	Text string
	Num  bool
}

// Page draws the figures of d: the domain sizes (over time from the routing
// history, else as bars), the novel fraction of the routed documents over
// time (when the history has the routing stage's novelty counters), the
// domains with their top terms, the training
// loss of every expert, and the held-out bits per byte of each expert and of
// each routing choice. A figure whose inputs are all missing is left out.
func (d *Data) Page() (*Page, error) {
	p := &Page{Dir: d.dir, Generated: time.Now().UTC().Format(time.RFC3339), Missing: d.missing}
	if s := d.summary; s != nil {
		p.Counts = []Count{
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
	for _, build := range []func(*Data) (*Figure, error){
		sizesFigure, noveltyFigure, domainsFigure, lossFigure, bpbExpertsFigure, bpbRoutingFigure,
	} {
		fig, err := build(d)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
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
func sizesFigure(d *Data) (*Figure, error) {
	fig := &Figure{ID: "plot-sizes", Plot: "sizes", Title: "Domain sizes"}
	p := newPlot("Documents routed per domain", "", "documents")
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
		fig.Source, fig.Series = historyFile, len(ids)
		fig.Caption = fmt.Sprintf("Documents routed to each domain over time (cumulative, %s of %s).", plural(len(d.history), "record"), historyFile)
		fig.Table = Table{Caption: "Routed documents per domain at each record", Head: []string{"seconds", "router version"}}
		for _, id := range ids {
			fig.Table.Head = append(fig.Table.Head, "domain "+id)
		}
		for _, i := range sampleIndexes(len(d.history), maxTableRows) {
			h := d.history[i]
			row := []Cell{num(strconv.FormatFloat(h.Saved.Sub(t0).Seconds(), 'f', 1, 64)), num(strconv.FormatInt(h.RouterVersion, 10))}
			for _, id := range ids {
				if c, ok := h.Counts[id]; ok {
					row = append(row, num(strconv.FormatInt(c, 10)))
				} else {
					row = append(row, num("–"))
				}
			}
			fig.Table.Rows = append(fig.Table.Rows, row)
		}
		if len(d.history) > maxTableRows {
			fig.Table.Caption += fmt.Sprintf(" (%d of %d records, evenly spaced)", maxTableRows, len(d.history))
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
			fig.Source = summaryFile
			fig.Caption = "Final routed documents per domain (from " + summaryFile + "; no routing history to plot over time)."
		case d.router != nil:
			for _, r := range d.router.Domains() {
				labels = append(labels, strconv.Itoa(r.ID))
				vals = append(vals, float64(r.Size))
			}
			fig.Source = routerDir
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
		fig.Table = Table{Caption: "Documents per domain", Head: []string{"domain", "documents"}}
		for i := range labels {
			fig.Table.Rows = append(fig.Table.Rows, []Cell{num(labels[i]), num(strconv.FormatFloat(vals[i], 'f', -1, 64))})
		}
	}
	fig.Alt = fig.Caption
	return fig, renderFigure(fig, p)
}

// noveltyFigure plots the novel fraction of the routed documents over
// time (one line per window of the routing stage's novelty counters), from
// the routing history lines that carry them; none without such lines.
func noveltyFigure(d *Data) (*Figure, error) {
	var lines []cluster.RoutingState
	windows := map[string]bool{}
	for _, h := range d.history {
		if h.Judged > 0 {
			lines = append(lines, h)
			for w := range h.NovelFraction {
				windows[w] = true
			}
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	ws := make([]string, 0, len(windows))
	for w := range windows {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool {
		a, _ := strconv.Atoi(ws[i])
		b, _ := strconv.Atoi(ws[j])
		return a < b
	})
	fig := &Figure{ID: "plot-novelty", Plot: "novelty", Title: "Novel documents", Source: historyFile, Series: len(ws)}
	p := newPlot("Novel fraction of the routed documents", "seconds since the first record", "novel fraction")
	t0 := d.history[0].Saved
	for i, w := range ws {
		var pts plotter.XYs
		for _, h := range lines {
			if f, ok := h.NovelFraction[w]; ok {
				pts = append(pts, plotter.XY{X: h.Saved.Sub(t0).Seconds(), Y: f})
			}
		}
		if err := addLine(p, "last "+w+" documents", pts, i); err != nil {
			return nil, err
		}
	}
	fig.Caption = fmt.Sprintf("Share of the routed documents judged novel (beyond their nearest domain's fit-time distances, see the routing stage's --novel-quantile), over the last N documents, from %s of %s.", plural(len(lines), "record"), historyFile)
	fig.Alt = fig.Caption
	fig.Table = Table{Caption: "Novelty at each record", Head: []string{"seconds", "judged", "novel"}}
	for _, w := range ws {
		fig.Table.Head = append(fig.Table.Head, "novel fraction, last "+w)
	}
	for _, i := range sampleIndexes(len(lines), maxTableRows) {
		h := lines[i]
		row := []Cell{num(strconv.FormatFloat(h.Saved.Sub(t0).Seconds(), 'f', 1, 64)), num(strconv.FormatInt(h.Judged, 10)), num(strconv.FormatInt(h.Novel, 10))}
		for _, w := range ws {
			if f, ok := h.NovelFraction[w]; ok {
				row = append(row, num(fmtFloat(f)))
			} else {
				row = append(row, num("–"))
			}
		}
		fig.Table.Rows = append(fig.Table.Rows, row)
	}
	if len(lines) > maxTableRows {
		fig.Table.Caption += fmt.Sprintf(" (%d of %d records, evenly spaced)", maxTableRows, len(lines))
	}
	return fig, renderFigure(fig, p)
}

// domainsFigure shows each domain's size at fit and routed as bars, and
// its top terms in the table.
func domainsFigure(d *Data) (*Figure, error) {
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
		for _, r := range d.router.Domains() {
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
	fig := &Figure{ID: "plot-domains", Plot: "domains", Title: "Domains and their top terms"}
	p := newPlot("Domain sizes", "domain", "documents")
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
		sources, series = []string{routerDir, summaryFile}, 2
	case d.router != nil:
		if err := addBars(p, "at fit", fit, 0, barWidth(len(ids), 1), 0, 0); err != nil {
			return nil, err
		}
		sources, series = []string{routerDir}, 1
	default:
		if err := addBars(p, "routed", routed, 0, barWidth(len(ids), 1), 0, 1); err != nil {
			return nil, err
		}
		sources, series = []string{summaryFile}, 1
	}
	p.NominalX(labels...)
	fig.Source, fig.Series = strings.Join(sources, " "), series
	fig.Caption = "Documents per domain (at fit by the router, and routed during the run); the table lists each domain's top terms."
	fig.Alt = "Bar chart of documents per domain"
	fig.Table = Table{Caption: "Domains: sizes, training and top terms",
		Head: []string{"domain", "size at fit", "routed", "training bytes", "final loss (nats/byte)", "top terms", "example ids"}}
	opt := func(ok bool, s string) Cell {
		if !ok {
			return num("–")
		}
		return num(s)
	}
	for _, id := range ids {
		x := byID[id]
		fig.Table.Rows = append(fig.Table.Rows, []Cell{
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
func lossFigure(d *Data) (*Figure, error) {
	var experts []expert
	for _, e := range d.experts {
		if len(e.Losses) > 0 {
			experts = append(experts, e)
		}
	}
	if len(experts) == 0 {
		return nil, nil
	}
	fig := &Figure{ID: "plot-loss", Plot: "loss", Title: "Training loss", Source: expertsDir, Series: len(experts)}
	p := newPlot("Training loss per expert", "training bytes", "loss (nats/byte)")
	smoothed := false
	for i, e := range experts {
		pts := lossCurve(e.Losses, maxLossPoints)
		smoothed = smoothed || len(pts) < len(e.Losses)
		if err := addLine(p, expertLabel(e.Name), pts, i); err != nil {
			return nil, err
		}
	}
	fig.Caption = "Mean training loss of each step against the bytes trained on, one line per expert (an expert branched from the seed carries the seed's curve before its own)."
	if smoothed {
		fig.Caption += fmt.Sprintf(" Curves longer than %d steps are averaged over equal windows.", maxLossPoints)
	}
	fig.Alt = "Line chart of training loss per expert"
	fig.Table = Table{Caption: "Loss per expert (newest checkpoint)",
		Head: []string{"expert", "steps", "training bytes", "first loss", "final loss", "lowest loss"}}
	for _, e := range experts {
		lo := math.Inf(1)
		for _, l := range e.Losses {
			lo = min(lo, float64(l.Loss))
		}
		fig.Table.Rows = append(fig.Table.Rows, []Cell{
			{Text: e.Name}, num(strconv.Itoa(e.Step)), num(strconv.FormatInt(e.Tokens, 10)),
			num(fmtFloat(float64(e.Losses[0].Loss))), num(fmtFloat(float64(e.Losses[len(e.Losses)-1].Loss))), num(fmtFloat(lo)),
		})
	}
	return fig, renderFigure(fig, p)
}

// bpbExpertsFigure plots the held-out bits per byte of each expert alone,
// the dense baseline and the seed.
func bpbExpertsFigure(d *Data) (*Figure, error) {
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
	fig := &Figure{ID: "plot-bpb-experts", Plot: "bpb-experts", Title: "Bits per byte per expert", Source: summaryFile}
	p := newPlot("Held-out bits per byte, each model alone", "model", "bits/byte")
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
	fig.Table = Table{Caption: "Held-out bits per byte per model", Head: []string{"model", "bits/byte", "perplexity (per byte)"}}
	for _, b := range append(experts, baselines...) {
		fig.Table.Rows = append(fig.Table.Rows, []Cell{{Text: b.name}, num(fmtFloat(b.bpb)), num(fmtFloat(math.Exp2(b.bpb)))})
	}
	return fig, renderFigure(fig, p)
}

// routingChoices are the router mixtures of `pipeline eval`, in plot order.
var routingChoices = []string{"top1", "top2", "all"}

// bpbRoutingFigure plots the held-out bits per byte of each routing choice,
// with the dense baseline as a line.
func bpbRoutingFigure(d *Data) (*Figure, error) {
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
	fig := &Figure{ID: "plot-bpb-routing", Plot: "bpb-routing", Title: "Bits per byte per routing choice", Source: summaryFile, Series: 1}
	p := newPlot("Held-out bits per byte of the router mixtures", "routing", "bits/byte")
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
	fig.Table = Table{Caption: "Held-out bits per byte per routing choice", Head: []string{"routing", "bits/byte", "perplexity (per byte)"}}
	for i, n := range names {
		fig.Table.Rows = append(fig.Table.Rows, []Cell{{Text: n}, num(fmtFloat(vals[i])), num(fmtFloat(math.Exp2(vals[i])))})
	}
	if dense := d.summary.Eval.DenseBPB; dense != nil {
		fig.Table.Rows = append(fig.Table.Rows, []Cell{{Text: "dense baseline"}, num(fmtFloat(*dense)), num(fmtFloat(math.Exp2(*dense)))})
	}
	return fig, renderFigure(fig, p)
}
