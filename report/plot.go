package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// Plot sizes, and the most points a loss curve or a table shows.
const (
	plotW         = 7 * vg.Inch
	plotH         = 3.6 * vg.Inch
	maxLossPoints = 400 // longer curves are averaged into this many windows
	maxTableRows  = 40  // longer histories are sampled evenly (last row kept)
)

// newPlot returns a plot with a title, axis labels, the legend on top and
// a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// maxMarked is the most points a line marks with a glyph (so that a
// line of one point still shows).
const maxMarked = 30

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
	if len(pts) > maxMarked {
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
	w := plotW * 0.8 / vg.Length(2*max(n, 1)*perGroup)
	return min(max(w, vg.Points(4)), vg.Points(40))
}

// renderFigure renders p as SVG into fig.Image, with headroom above the
// data for the legend.
func renderFigure(fig *Figure, p *plot.Plot) error {
	if p.Y.Max > 0 {
		p.Y.Max *= 1.2 // room for the legend above the data
	}
	wt, err := p.WriterTo(plotW, plotH, "svg")
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
	sort.Slice(ids, func(i, j int) bool { return train.ExpertLess(ids[i], ids[j]) })
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

func num(s string) Cell { return Cell{Text: s, Num: true} }

// fmtFloat formats a measurement with 4 decimals.
func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// plural returns "1 record" or "n records".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
