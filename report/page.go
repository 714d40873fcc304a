package report

import (
	"fmt"
	"html/template"
	"image/color"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// Page is a report page as the HTML template renders it: the run counts,
// the figures and the inputs not shown. Data.Page builds it; WriteTo and
// WriteFile render it.
type Page struct {
	Dir       string  // the run output dir, as given to Load
	Generated string  // when Data.Page built it, RFC 3339 in UTC
	Counts    []Count // the run counts of the header; none without summary.json
	// Tables are the sections with a table and no plot, after the header:
	// the run's settings and the dead letters by reason (summary.json).
	Tables []TableSection
	// Figures in page order: plot-sizes, plot-novelty, plot-domains-time,
	// plot-domains, plot-sources, plot-loss, plot-bpb-experts,
	// plot-bpb-routing, plot-bpb-phases, plot-phases.
	Figures []Figure
	Missing []Missing // Data.Missing
}

// TableSection is a section of the page with a table and no plot.
type TableSection struct {
	ID    string // element id: "settings", "deadletters"
	Title string
	Note  string // a sentence under the title; may be empty
	Table Table
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
	Plot    string // data-plot: sizes, novelty, domains-time, domains, sources, loss, bpb-experts, bpb-routing, bpb-phases, phases
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
// domains over time with the creation of each domain grown or split while
// the run streamed (when the domains changed), the domains with their top
// terms, the training
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
			{"dense_tokens", "dense baseline training bytes (after the seed)", strconv.FormatInt(s.DenseTokens, 10)},
			{"seconds", "run time (s)", strconv.FormatFloat(s.Seconds, 'f', 1, 64)},
		}
		if len(s.Resumed) > 0 {
			p.Counts = append(p.Counts, Count{"invocation_seconds", "resumed: the last invocation's time (s)", strconv.FormatFloat(s.InvocationSeconds, 'f', 1, 64)})
		}
		if t := s.Then; t != nil {
			p.Counts = append(p.Counts,
				Count{"then_docs_in", "then: documents in", strconv.FormatInt(t.DocsIn, 10)},
				Count{"then_in_new_domains", "then: in new domains", strconv.FormatInt(t.InNewDomains, 10)},
				Count{"then_in_old_domains", "then: in old domains", strconv.FormatInt(t.InOldDomains, 10)},
				Count{"then_docs_pending", "then: pending (novel, no domain)", strconv.FormatInt(t.DocsPending, 10)},
				Count{"then_growths", "then: growths", strconv.Itoa(t.Growths)},
				Count{"then_new_domains", "then: new domains", strconv.Itoa(len(t.NewDomains))},
				Count{"then_first_new_seconds", "then: seconds to the first document in a new domain", strconv.FormatFloat(t.FirstNewSeconds, 'f', 1, 64)},
			)
		}
	}
	p.Tables = tableSections(d)
	for _, build := range []func(*Data) (*Figure, error){
		sizesFigure, noveltyFigure, domainsTimeFigure, domainsFigure, sourcesFigure, lossFigure, bpbExpertsFigure, bpbRoutingFigure,
		bpbPhasesFigure, phasesFigure,
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

// minHistoryRecords is the fewest routing history records (at distinct
// times) plotted over time; fewer are drawn as bars of the last record.
const minHistoryRecords = 3

// historyTimes returns the number of distinct times of the history records.
func historyTimes(h []cluster.RoutingState) int {
	seen := map[int64]bool{}
	for _, s := range h {
		seen[s.Saved.UnixNano()] = true
	}
	return len(seen)
}

// sizesFigure plots the routed documents per domain over time from the
// routing history; when the history is too short to draw over time (a run
// that routed in a second or two: fewer than minHistoryRecords records),
// its last record's counts as bars; without one, the final routed sizes
// (summary) or the sizes at fit (router) as bars.
func sizesFigure(d *Data) (*Figure, error) {
	fig := &Figure{ID: "plot-sizes", Plot: "sizes", Title: "Domain sizes"}
	p := newPlot("Documents routed per domain", "", "documents")
	if historyTimes(d.history) >= minHistoryRecords {
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
		case len(d.history) > 0:
			last := d.history[len(d.history)-1]
			for _, id := range historyIDs(d.history) {
				labels = append(labels, id)
				vals = append(vals, float64(last.Counts[id]))
			}
			fig.Source = historyFile
			// The records may come from several invocations (a resumed
			// run's routing stage records once more when it starts and
			// stops), so their time span says nothing of how long routing
			// took.
			fig.Caption = fmt.Sprintf("Documents routed to each domain at the last record of %s. The history holds %s: too few to draw over time (the routing stage records about once a second while it routes, and again each time it starts and stops, as in a resumed run), so these are the counts at its end.",
				historyFile, plural(len(d.history), "record"))
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
	short := historyTimes(lines) < minHistoryRecords
	if short {
		// Too short to draw over time: the last record's fractions as bars.
		last := lines[len(lines)-1]
		vals := make(plotter.Values, len(ws))
		labels := make([]string, len(ws))
		for i, w := range ws {
			vals[i], labels[i] = last.NovelFraction[w], "last "+w+" documents"
		}
		if err := addBars(p, "", vals, 0, barWidth(len(ws), 1), 0, 0); err != nil {
			return nil, err
		}
		p.NominalX(labels...)
		p.X.Label.Text = "window"
		fig.Series = 1
	}
	for i, w := range ws {
		if short {
			break
		}
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
	if short {
		fig.Caption += " Routing was too short to draw over time (the routing stage records once a second): the bars are the fractions at its last record."
	}
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
			if !x.hasFit && s.SizeAtFit > 0 { // no router dir: the summary's size at fit
				x.fit, x.hasFit = s.SizeAtFit, true
			}
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
		if err := addBars(p, "at fit (k-means)", fit, 0, w, -w/2, 0); err != nil {
			return nil, err
		}
		if err := addBars(p, "routed in the run", routed, 0, w, w/2, 1); err != nil {
			return nil, err
		}
		sources, series = []string{routerDir, summaryFile}, 2
	case d.router != nil:
		if err := addBars(p, "at fit (k-means)", fit, 0, barWidth(len(ids), 1), 0, 0); err != nil {
			return nil, err
		}
		sources, series = []string{routerDir}, 1
	default:
		if err := addBars(p, "routed in the run", routed, 0, barWidth(len(ids), 1), 0, 1); err != nil {
			return nil, err
		}
		sources, series = []string{summaryFile}, 1
	}
	p.NominalX(labels...)
	fig.Source, fig.Series = strings.Join(sources, " "), series
	fig.Caption = "Documents per domain: \"at fit\" is the number of documents k-means put in the domain when the router was fitted; \"routed\" is how many documents the routing stage sent to it during the run (each input document once, by balanced streaming routing, so the two differ). The table lists each domain's expert: the bytes it trained on and its training loss in nats per byte, the mean of its last 50 steps (lower is better; the same number as the loss table below), and the domain's top terms."
	fig.Alt = "Bar chart of documents per domain"
	fig.Table = Table{Caption: "Domains: sizes, training and top terms",
		Head: []string{"domain", "size at fit", "routed", "training bytes", "training loss (nats/byte, last 50 steps)", "top terms", "example ids"}}
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

// branches returns, per expert name, the expert it branched from (its
// Init is that one's Params) and the training bytes before its own: those
// of the expert it branched from and of that one's own branch point. An
// expert from scratch, or branched from a checkpoint that is not among
// experts (an average of experts, an older checkpoint), starts at 0.
func branches(experts []expert) (from map[string]string, offset map[string]int64) {
	// Experts with the same parameters (one that has not trained yet has
	// those of the model it branched from): the one trained from scratch,
	// else the one that trained on more bytes.
	byParams := map[string]*expert{}
	for i := range experts {
		e := &experts[i]
		if o := byParams[e.Params]; o == nil || (o.Init != "" && (e.Init == "" || e.Tokens > o.Tokens)) {
			byParams[e.Params] = e
		}
	}
	from, offset = map[string]string{}, map[string]int64{}
	var resolve func(e *expert, depth int) int64
	resolve = func(e *expert, depth int) int64 {
		if v, ok := offset[e.Name]; ok {
			return v
		}
		parent := byParams[e.Init]
		if e.Init == "" || parent == nil || parent == e || depth > len(experts) {
			offset[e.Name] = 0
			return 0
		}
		v := resolve(parent, depth+1) + parent.Tokens
		from[e.Name], offset[e.Name] = parent.Name, v
		return v
	}
	for i := range experts {
		resolve(&experts[i], 0)
	}
	return from, offset
}

// lossFigure plots every expert's training loss over the training bytes,
// each branched expert starting where the expert it branched from ended.
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
	from, offset := branches(experts)
	fig := &Figure{ID: "plot-loss", Plot: "loss", Title: "Training loss", Source: expertsDir, Series: len(experts)}
	xlabel := "training bytes"
	if len(from) > 0 {
		xlabel = "training bytes, counting those of the model branched from"
	}
	p := newPlot("Training loss per expert (lower is better)", xlabel, "training loss (nats/byte)")
	smoothed := false
	for i, e := range experts {
		pts := lossCurve(e.Losses, maxLossPoints)
		smoothed = smoothed || len(pts) < len(e.Losses)
		for k := range pts {
			pts[k].X += float64(offset[e.Name])
		}
		if err := addLine(p, expertLabel(e.Name), pts, i); err != nil {
			return nil, err
		}
	}
	fig.Caption = fmt.Sprintf("Training loss in nats per byte (the mean over each step's batch; lower is better) against the bytes trained on, one line per model. It is measured on the training text, unlike the held-out bits per byte below (1 nat = 1.443 bits). The final loss in the table is the mean of the last %d steps, as in the run summary.", train.RecentLossSteps)
	if len(from) > 0 {
		fig.Caption += " A model branched from another starts where that one ended: the domain experts and the dense baseline continue from the seed, so their lines begin at the seed's last byte and loss."
	}
	if smoothed {
		fig.Caption += fmt.Sprintf(" Curves longer than %d steps are averaged over equal windows.", maxLossPoints)
	}
	fig.Alt = "Line chart of training loss per expert"
	fig.Table = Table{Caption: "Training loss per expert (newest checkpoint; nats per byte)",
		Head: []string{"expert", "branched from", "starts at byte", "steps", "training bytes", "first loss", fmt.Sprintf("final loss (mean of last %d steps)", train.RecentLossSteps), "lowest loss"}}
	for _, e := range experts {
		lo := math.Inf(1)
		for _, l := range e.Losses {
			lo = min(lo, float64(l.Loss))
		}
		parent := "–"
		switch {
		case from[e.Name] != "":
			parent = from[e.Name]
		case e.Init != "" && e.InitFrom != "":
			parent = e.InitFrom
		case e.Init != "":
			parent = "a checkpoint not in " + expertsDir + "/"
		}
		fig.Table.Rows = append(fig.Table.Rows, []Cell{
			{Text: e.Name}, {Text: parent}, num(strconv.FormatInt(offset[e.Name], 10)),
			num(strconv.Itoa(e.Step)), num(strconv.FormatInt(e.Tokens, 10)),
			num(fmtFloat(float64(e.Losses[0].Loss))), num(fmtFloat(train.RecentLoss(e.Losses))), num(fmtFloat(lo)),
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
	p := newPlot("Held-out bits per byte, each model alone (lower is better)", "model", "held-out bits/byte")
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
	fig.Caption = "Bits per byte on the held-out documents (text no model trained on) of each domain expert alone (every document through that one expert), of the seed the experts branched from, and of the dense baseline, which continues from the seed on the mixed stream for as many bytes as all the experts together. Lower is better."
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
	p := newPlot("Held-out bits per byte of the router mixtures (lower is better)", "routing", "held-out bits/byte")
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
	fig.Caption = "Bits per byte on the held-out documents when the router picks the experts of each document: the nearest expert (top1), the two nearest (top2) or all experts, mixed by the router's weights. The dashed line is the dense baseline (continued from the seed for the experts' total bytes). Lower is better."
	if dense := d.summary.Eval.DenseBPB; dense != nil && slices.Min(vals) > *dense {
		fig.Caption += " Here the dense baseline wins: at small compute each expert has trained on only its share of the bytes, while the dense model saw them all; the mixture overtakes it with more bytes per expert (c-BTM): " + MixtureWinsAt + " (BENCHMARKS.md §8)."
	}
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

// MixtureWinsAt says where the router mixture was measured to beat the
// dense baseline, with a command a user can run on a corpus of their own
// (BENCHMARKS.md §8, bench/cbtm.sh's k = 5, S = T = 8M configuration).
const MixtureWinsAt = "on a 35 MB corpus, `pipeline run --input CORPUS --featurizer lsa --k 5 --seed-tokens 8000000 --tokens-per-domain 1600000` " +
	"(about 4 minutes; each domain needs at least 1.6 MB of text) reached 0.92× the dense model's bits per byte"

// bpbPhasesFigure plots, for a continuous run (`pipeline run --then`), the
// held-out bits per byte of each routing choice on the first corpus before
// the second arrived, on the first corpus after it (with the grown domains
// and their experts), and on the second corpus.
func bpbPhasesFigure(d *Data) (*Figure, error) {
	if d.summary == nil || d.summary.Then == nil {
		return nil, nil
	}
	t := d.summary.Then
	phases := []struct {
		name string
		mix  map[string]float64
	}{{"A before B", d.summary.Eval.MixtureBPB}, {"A after B", t.EvalA.MixtureBPB}, {"B", t.EvalB.MixtureBPB}}
	var names []string
	for _, c := range routingChoices {
		if _, ok := t.EvalB.MixtureBPB[c]; ok {
			names = append(names, c)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	fig := &Figure{ID: "plot-bpb-phases", Plot: "bpb-phases", Title: "Bits per byte before and after the new corpus", Source: summaryFile}
	p := newPlot("Held-out bits per byte by phase (lower is better)", "routing", "held-out bits/byte")
	w := barWidth(len(names), len(phases))
	fig.Table = Table{Caption: "Held-out bits per byte by phase and routing choice", Head: []string{"routing"}}
	for i, ph := range phases {
		fig.Table.Head = append(fig.Table.Head, ph.name)
		vals := make(plotter.Values, len(names))
		for k, n := range names {
			vals[k] = ph.mix[n]
		}
		if err := addBars(p, ph.name, vals, 0, w, w*vg.Length(i-len(phases)/2), i); err != nil {
			return nil, err
		}
		fig.Series++
	}
	for _, n := range names {
		row := []Cell{{Text: n}}
		for _, ph := range phases {
			if v, ok := ph.mix[n]; ok {
				row = append(row, num(fmtFloat(v)))
			} else {
				row = append(row, Cell{Text: "-"})
			}
		}
		fig.Table.Rows = append(fig.Table.Rows, row)
	}
	p.NominalX(names...)
	fig.Caption = "A continuous run: bits per byte of the router mixtures on the first corpus's held-out documents before the second corpus arrived and after (with the domains grown from it and their experts), and on the second corpus's held-out documents. Lower is better; A after B should stay at A before B."
	fig.Alt = "Grouped bar chart of bits per byte per routing choice, before and after the new corpus"
	return fig, renderFigure(fig, p)
}

// created is how a domain came to be, from the router versions.
type created struct {
	origin  *cluster.DomainOrigin // nil: unknown (no router has it, or none kept origins)
	when    time.Time             // Created of the router version that made it; zero when not loaded
	fitSize int                   // documents at fit in the newest router version holding it
	hasFit  bool
	removed int64 // the first router version without it after one with it; 0: in the newest
}

// domainOrigins returns how each domain id of the router versions came to
// be: its origin in the oldest version that records one, its size in the
// newest holding it, and the version that removed it.
func domainOrigins(routers []routerVersion) map[int]*created {
	out := map[int]*created{}
	for i, rv := range routers {
		in := map[int]bool{}
		for _, dm := range rv.Domains {
			in[dm.ID] = true
			c := out[dm.ID]
			if c == nil {
				c = &created{}
				out[dm.ID] = c
			}
			c.fitSize, c.hasFit, c.removed = dm.Size, true, 0
			if c.origin == nil && dm.Origin != nil {
				o := *dm.Origin
				c.origin = &o
				for _, made := range routers[:i+1] {
					if made.Version == o.Version {
						c.when = made.Created
					}
				}
			}
		}
		for id, c := range out {
			if !in[id] && c.removed == 0 {
				c.removed = rv.Version
			}
		}
	}
	return out
}

// evolved reports whether the domains changed while the history ran: a
// domain made by growth or a split, one that appears after the first
// record, or documents parked.
func evolved(h []cluster.RoutingState, origins map[int]*created) bool {
	for _, c := range origins {
		if c.origin != nil && (c.origin.How == cluster.OriginGrow || c.origin.How == cluster.OriginSplit) {
			return true
		}
	}
	for _, s := range h {
		if s.Parked > 0 {
			return true
		}
		for id := range s.Counts {
			if _, ok := h[0].Counts[id]; !ok {
				return true
			}
		}
	}
	return false
}

// historyX returns the x of each history record, seconds since the first,
// or the record's index when all were saved at the same time; and the
// axis label.
func historyX(h []cluster.RoutingState) ([]float64, string) {
	xs := make([]float64, len(h))
	same := true
	for _, s := range h {
		same = same && s.Saved.Equal(h[0].Saved)
	}
	for i, s := range h {
		if same {
			xs[i] = float64(i)
		} else {
			xs[i] = s.Saved.Sub(h[0].Saved).Seconds()
		}
	}
	if same {
		return xs, "record"
	}
	return xs, "seconds since the first record"
}

// originWords names how a domain came to be in a plot label: "grown",
// "split", "fit".
func originWords(how string) string {
	if how == cluster.OriginGrow {
		return "grown"
	}
	return how
}

// domainsTimeFigure plots the domains over time from the routing history:
// one line per domain of its routed documents, starting at the record it
// first appears in, the documents parked as novel (growth on, no domain
// yet), and a mark where each domain made by growth or a split begins,
// labelled with how and the router version ("grown v2"). Its table lists
// every domain with its origin and sizes. None without a history, nor when
// the domains did not change while it ran (plot-sizes shows that).
func domainsTimeFigure(d *Data) (*Figure, error) {
	if len(d.history) == 0 {
		return nil, nil
	}
	origins := domainOrigins(d.routers)
	if !evolved(d.history, origins) {
		return nil, nil
	}
	xs, xlabel := historyX(d.history)
	ids := historyIDs(d.history)
	fig := &Figure{ID: "plot-domains-time", Plot: "domains-time", Title: "Domains over time", Source: historyFile}
	if len(d.routers) > 0 {
		fig.Source += " " + routerDir
	}
	p := newPlot("Domains over time: documents routed, domains created", xlabel, "documents")
	p.Legend.Left = true // cumulative counts leave the top left empty
	first := map[string]plotter.XY{}
	for i, id := range ids {
		var pts plotter.XYs
		for k, h := range d.history {
			if c, ok := h.Counts[id]; ok {
				pts = append(pts, plotter.XY{X: xs[k], Y: float64(c)})
			}
		}
		first[id] = pts[0]
		if err := addLine(p, "domain "+id, pts, i); err != nil {
			return nil, err
		}
	}
	fig.Series = len(ids)
	var lastParked int64
	parked := false
	for _, h := range d.history {
		parked = parked || h.Parked > 0
		lastParked = h.Parked
	}
	if parked {
		pts := make(plotter.XYs, len(d.history))
		for k, h := range d.history {
			pts[k] = plotter.XY{X: xs[k], Y: float64(h.Parked)}
		}
		if err := addLine(p, "parked (novel, pending)", pts, len(ids)); err != nil {
			return nil, err
		}
		fig.Series++
	}

	// Creation marks: one glyph per kind, one label per (kind, version) at
	// the first point of its lowest domain id.
	type group struct {
		how     string
		version int64
		ids     []string
	}
	var groups []*group
	for _, id := range ids {
		n, _ := strconv.Atoi(id)
		c := origins[n]
		if c == nil || c.origin == nil || (c.origin.How != cluster.OriginGrow && c.origin.How != cluster.OriginSplit) {
			continue
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.how == c.origin.How && g.version == c.origin.Version })
		if i < 0 {
			groups = append(groups, &group{how: c.origin.How, version: c.origin.Version})
			i = len(groups) - 1
		}
		groups[i].ids = append(groups[i].ids, id)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		if groups[i].version != groups[j].version {
			return groups[i].version < groups[j].version
		}
		return groups[i].how < groups[j].how
	})
	var labels plotter.XYLabels
	for _, kind := range []struct {
		how, legend string
		glyph       draw.GlyphDrawer // filled, unlike the lines' first glyphs
	}{
		{cluster.OriginGrow, "created by growth", draw.PyramidGlyph{}},
		{cluster.OriginSplit, "created by a split", draw.BoxGlyph{}},
	} {
		var pts plotter.XYs
		for _, g := range groups {
			if g.how != kind.how {
				continue
			}
			for _, id := range g.ids {
				pts = append(pts, first[id])
			}
			labels.XYs = append(labels.XYs, first[g.ids[0]])
			noun := "domain"
			if len(g.ids) > 1 {
				noun = "domains"
			}
			labels.Labels = append(labels.Labels, fmt.Sprintf("%s v%d: %s %s", originWords(g.how), g.version, noun, strings.Join(g.ids, ", ")))
		}
		if len(pts) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("plot creation marks: %w", err)
		}
		s.Shape, s.Radius, s.Color = kind.glyph, vg.Points(5), color.Black
		p.Add(s)
		p.Legend.Add(kind.legend, s)
	}
	if len(labels.Labels) > 0 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, fmt.Errorf("plot creation labels: %w", err)
		}
		l.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(4)}
		p.Add(l)
	}

	fig.Caption = fmt.Sprintf("Documents routed to each domain over time (cumulative, %s of %s), each line starting at the record its domain first appears in.", plural(len(d.history), "record"), historyFile)
	if len(groups) > 0 {
		fig.Caption += " A mark at a line's first point shows a domain created while the run streamed, labelled with how (grown from novel documents, or split from a domain) and the router version that created it."
	}
	if parked {
		fig.Caption += fmt.Sprintf(" The parked line counts the novel documents parked with no domain yet, waiting for growth (%d at the last record).", lastParked)
	}
	fig.Alt = fig.Caption

	// The table: every domain of the routers or the history, with its origin.
	all := map[int]bool{}
	for id := range origins {
		all[id] = true
	}
	firstX, last := map[int]float64{}, map[int]int64{}
	for k, h := range d.history {
		for s, c := range h.Counts {
			n, err := strconv.Atoi(s)
			if err != nil {
				continue
			}
			all[n] = true
			if _, ok := firstX[n]; !ok {
				firstX[n] = xs[k]
			}
			last[n] = c
		}
	}
	sorted := slices.Sorted(maps.Keys(all))
	firstHead := "first record (s)"
	if xlabel == "record" {
		firstHead = "first record"
	}
	fig.Table = Table{Caption: "Domains and their origins",
		Head: []string{"domain", "origin", "router version", "created (UTC)", "size at fit", "routed (last record)", firstHead, "removed in"}}
	dash := num("–")
	for _, id := range sorted {
		row := []Cell{num(strconv.Itoa(id))}
		c := origins[id]
		if c != nil && c.origin != nil {
			row = append(row, Cell{Text: c.origin.How}, num("v"+strconv.FormatInt(c.origin.Version, 10)))
		} else {
			row = append(row, Cell{Text: "–"}, dash)
		}
		if c != nil && !c.when.IsZero() {
			row = append(row, Cell{Text: c.when.UTC().Format(time.DateTime)})
		} else {
			row = append(row, Cell{Text: "–"})
		}
		if c != nil && c.hasFit {
			row = append(row, num(strconv.Itoa(c.fitSize)))
		} else {
			row = append(row, dash)
		}
		if n, ok := last[id]; ok {
			x := strconv.FormatFloat(firstX[id], 'f', 1, 64)
			if xlabel == "record" {
				x = strconv.Itoa(int(firstX[id]))
			}
			row = append(row, num(strconv.FormatInt(n, 10)), num(x))
		} else {
			row = append(row, dash, dash)
		}
		if c != nil && c.removed > 0 {
			row = append(row, num("v"+strconv.FormatInt(c.removed, 10)))
		} else {
			row = append(row, dash)
		}
		fig.Table.Rows = append(fig.Table.Rows, row)
	}
	return fig, renderFigure(fig, p)
}
