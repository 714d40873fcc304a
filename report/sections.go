package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// settingLabels are the settings of summary.json the page names, in page
// order: the key (a `pipeline run` flag in snake_case) and what it is.
var settingLabels = []struct{ key, label string }{
	{"inputs", "input files (--input)"},
	{"then", "second corpus (--then)"},
	{"brokers", "Kafka brokers (--brokers; none: the embedded broker)"},
	{"k", "domains (--k)"},
	{"expert", "expert size (--expert)"},
	{"tokens_per_domain", "training bytes per domain expert (--tokens-per-domain)"},
	{"seed_tokens", "training bytes of the dense seed (--seed-tokens)"},
	{"baseline", "dense baseline (--baseline)"},
	{"skip_seen", "experts skip the seed's documents (--skip-seen)"},
	{"featurizer", "featurizer (--featurizer)"},
	{"balanced", "balanced domains (--balanced)"},
	{"partitions", "partitions (--partitions)"},
	{"heldout", "fraction held out per source (--heldout)"},
	{"eval_docs", "held-out documents evaluated (--eval-docs; 0: all)"},
	{"eval_doc_bytes", "bytes evaluated per document (--eval-doc-bytes; 0: all)"},
	{"threads", "training threads (--threads; 0: all CPUs)"},
	{"seed", "random seed (--seed)"},
}

// tableSections returns the sections with no plot: the run's settings and
// the dead letters by reason, from summary.json; none without it.
func tableSections(d *Data) []TableSection {
	s := d.summary
	if s == nil {
		return nil
	}
	var out []TableSection
	if len(s.Settings) > 0 {
		t := TableSection{ID: "settings", Title: "Run settings",
			Note:  "The settings `pipeline run` ran with (summary.json); byte budgets are training bytes (the experts are byte-level).",
			Table: Table{Caption: "Settings", Head: []string{"setting", "key", "value"}}}
		seen := map[string]bool{}
		add := func(key, label string) {
			raw, ok := s.Settings[key]
			if !ok || seen[key] {
				return
			}
			seen[key] = true
			t.Table.Rows = append(t.Table.Rows, []Cell{{Text: label}, {Text: key}, {Text: settingText(raw)}})
		}
		for _, l := range settingLabels {
			add(l.key, l.label)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Settings)) {
			add(k, k)
		}
		out = append(out, t)
	}
	dl := TableSection{ID: "deadletters", Title: "Dead letters by reason",
		Table: Table{Caption: "Dead-lettered input records by reason", Head: []string{"reason", "documents"}}}
	switch {
	case s.DocsDeadletter == 0:
		dl.Note = "No dead letters: every input record was routed or held out."
	case len(s.DeadletterReasons) == 0:
		dl.Note = fmt.Sprintf("%s dead-lettered; this summary.json does not record their reasons (written by an older version).", plural(int(s.DocsDeadletter), "document"))
	default:
		dl.Note = fmt.Sprintf("%s dead-lettered (on the dead-letter topic, each with its reason and error in its headers; `pipeline inspect` shows them).", plural(int(s.DocsDeadletter), "document"))
		reasons := slices.Collect(maps.Keys(s.DeadletterReasons))
		slices.SortFunc(reasons, func(a, b string) int {
			return cmp.Or(cmp.Compare(s.DeadletterReasons[b], s.DeadletterReasons[a]), cmp.Compare(a, b))
		})
		for _, r := range reasons {
			dl.Table.Rows = append(dl.Table.Rows, []Cell{{Text: r}, num(strconv.FormatInt(s.DeadletterReasons[r], 10))})
		}
	}
	return append(out, dl)
}

// settingText shows a JSON setting value: strings unquoted, lists joined
// with ", ", anything else as JSON.
func settingText(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		if len(list) == 0 {
			return "–"
		}
		return strings.Join(list, ", ")
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "–"
	}
	return string(raw)
}

// sourcesFigure shows which sources each domain holds: the documents
// routed to each domain by their "source" field, as stacked bars (one
// color per source); none when the summary has no sources.
func sourcesFigure(d *Data) (*Figure, error) {
	if d.summary == nil {
		return nil, nil
	}
	doms := d.summary.Domains
	totals := map[string]int64{}
	for _, dm := range doms {
		for src, n := range dm.Sources {
			totals[src] += n
		}
	}
	if len(totals) == 0 {
		return nil, nil
	}
	sources := slices.Collect(maps.Keys(totals))
	slices.SortFunc(sources, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b)) })
	name := func(src string) string { return cmp.Or(src, "(no source)") }
	fig := &Figure{ID: "plot-sources", Plot: "sources", Title: "Sources per domain", Source: summaryFile, Series: len(sources)}
	p := newPlot("Documents per domain by source", "domain", "documents routed")
	labels := make([]string, len(doms))
	for i, dm := range doms {
		labels[i] = strconv.Itoa(dm.ID)
	}
	var below *plotter.BarChart
	for i, src := range sources {
		vals := make(plotter.Values, len(doms))
		for k, dm := range doms {
			vals[k] = float64(dm.Sources[src])
		}
		b, err := plotter.NewBarChart(vals, barWidth(len(doms), 1))
		if err != nil {
			return nil, fmt.Errorf("plot sources: %w", err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = vg.Points(0.5)
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(name(src), b)
	}
	p.NominalX(labels...)
	var tallest float64
	for _, dm := range doms {
		var n int64
		for _, c := range dm.Sources {
			n += c
		}
		tallest = max(tallest, float64(n))
	}
	p.Y.Min, p.Y.Max = 0, tallest*(1+0.07*float64(len(sources))) // room for the legend, one line per source
	fig.Caption = "Which sources each domain holds: the documents routed to each domain during the run, stacked by their \"source\" field (from summary.json). A domain made of one color found one source; colors spread over several domains show a source the router split."
	fig.Alt = "Stacked bar chart of documents per domain by source"
	fig.Table = Table{Caption: "Documents per domain and source", Head: []string{"domain"}}
	for _, src := range sources {
		fig.Table.Head = append(fig.Table.Head, name(src))
	}
	fig.Table.Head = append(fig.Table.Head, "total", "largest source")
	for _, dm := range doms {
		row := []Cell{num(strconv.Itoa(dm.ID))}
		var total, top int64
		topSrc := ""
		for _, src := range sources {
			n := dm.Sources[src]
			row = append(row, num(strconv.FormatInt(n, 10)))
			total += n
			if n > top {
				top, topSrc = n, src
			}
		}
		share := "–"
		if total > 0 {
			share = fmt.Sprintf("%s (%.0f%%)", name(topSrc), 100*float64(top)/float64(total))
		}
		row = append(row, num(strconv.FormatInt(total, 10)), Cell{Text: share})
		fig.Table.Rows = append(fig.Table.Rows, row)
	}
	row := []Cell{{Text: "all"}}
	var all int64
	for _, src := range sources {
		row = append(row, num(strconv.FormatInt(totals[src], 10)))
		all += totals[src]
	}
	fig.Table.Rows = append(fig.Table.Rows, append(row, num(strconv.FormatInt(all, 10)), Cell{Text: ""}))
	return fig, renderFigure(fig, p)
}

// phaseOrder is the order of the job's phases (flow.Summary.Phases).
var phaseOrder = []string{"split", "ingest", "fit", "route", "count", "train_seed", "train_experts", "train_dense",
	"train_new_experts", "train_old_experts", "eval"}

// orderedPhases returns the keys of phases in phaseOrder, the others after,
// sorted.
func orderedPhases(phases map[string]float64) []string {
	var out []string
	for _, k := range phaseOrder {
		if _, ok := phases[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(phases)) {
		if !slices.Contains(phaseOrder, k) {
			out = append(out, k)
		}
	}
	return out
}

// phasesFigure shows the wall time of each phase of the run (and of the
// second phase of a continuous run) as horizontal bars; none without
// phase timings.
func phasesFigure(d *Data) (*Figure, error) {
	if d.summary == nil || len(d.summary.Phases) == 0 {
		return nil, nil
	}
	type ph struct {
		name string
		secs float64
	}
	var phs []ph
	for _, k := range orderedPhases(d.summary.Phases) {
		phs = append(phs, ph{strings.ReplaceAll(k, "_", " "), d.summary.Phases[k]})
	}
	if t := d.summary.Then; t != nil {
		for _, k := range orderedPhases(t.Phases) {
			phs = append(phs, ph{"then: " + strings.ReplaceAll(k, "_", " "), t.Phases[k]})
		}
	}
	fig := &Figure{ID: "plot-phases", Plot: "phases", Title: "Time per phase", Source: summaryFile, Series: 1}
	p := newPlot("Wall time of each phase", "seconds", "")
	// Horizontal bars, the first phase on top.
	vals := make(plotter.Values, len(phs))
	labels := make([]string, len(phs))
	var total float64
	for i, x := range phs {
		vals[len(phs)-1-i], labels[len(phs)-1-i] = x.secs, x.name
		total += x.secs
	}
	b, err := plotter.NewBarChart(vals, min(barWidth(len(phs), 1), vg.Points(14)))
	if err != nil {
		return nil, fmt.Errorf("plot phases: %w", err)
	}
	b.Horizontal = true
	b.Color = plotutil.Color(0)
	b.LineStyle.Width = vg.Points(0.5)
	p.Add(b)
	p.NominalY(labels...)
	p.Legend.Top = false
	fig.Caption = fmt.Sprintf("Wall seconds of each phase, timed by the invocation of pipeline run that did its work (%.1fs in all). Training phases are usually most of it; the training threads are --threads (0: all CPUs).", d.summary.Seconds)
	if r := d.summary.Resumed; len(r) > 0 {
		names := make([]string, len(r))
		for i, k := range r {
			names[i] = strings.ReplaceAll(k, "_", " ")
		}
		fig.Caption += fmt.Sprintf(" summary.json was written by a resumed run (%.1fs) that found %s done: their seconds are those of the earlier invocation that did them.",
			d.summary.InvocationSeconds, strings.Join(names, ", "))
	}
	fig.Alt = "Bar chart of the wall time of each phase"
	fig.Table = Table{Caption: "Wall time per phase", Head: []string{"phase", "seconds", "share"}}
	for _, x := range phs {
		share := "–"
		if total > 0 {
			share = fmt.Sprintf("%.0f%%", 100*x.secs/total)
		}
		fig.Table.Rows = append(fig.Table.Rows, []Cell{{Text: x.name}, num(strconv.FormatFloat(x.secs, 'f', 2, 64)), num(share)})
	}
	return fig, renderFigure(fig, p)
}
