package cluster

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// NoveltyWindows are the sizes, in judged rows, of the sliding windows over
// which a Stage keeps the novel fraction (domainflow_novel_fraction).
var NoveltyWindows = []int{1000, 10000}

// DriftWindow is the number of most recent judged rows per domain over which
// a Stage keeps the domain's distance drift (domainflow_domain_drift).
const DriftWindow = 1000

// NoveltyStats is a snapshot of a Stage's novelty counters since the stage
// began (in this process: they are not restored across restarts).
type NoveltyStats struct {
	// Judged counts the rows judged: those routed by a router with fit-time
	// distances. Rows routed by a router without them, and rows of the
	// previous featurizer version routed across a refit's bridge, are not
	// judged.
	Judged int64
	// Novel counts the judged rows that were novel.
	Novel int64
	// Windows holds the novel fraction over the last judged rows, one
	// entry per NoveltyWindows size, in that order.
	Windows []NoveltyWindow
	// Drift maps a domain id to the mean, over the last DriftWindow judged
	// rows assigned to it, of each row's squared distance to its nearest
	// centroid divided by the fit-time mean distance of its domain
	// (DistanceStats.Mean): about 1 while the stream looks like the fit
	// sample, above 1 when the domain's documents move away. Domains
	// without judged rows, or with a zero fit-time mean, are absent.
	Drift map[int]float64
}

// NoveltyWindow is the novel fraction over the last Rows judged rows (at
// most Size).
type NoveltyWindow struct {
	Size  int // the window's size in rows
	Rows  int // rows in it so far: Size once that many were judged
	Novel int // novel rows among them
}

// Fraction returns Novel/Rows, 0 for an empty window.
func (w NoveltyWindow) Fraction() float64 {
	if w.Rows == 0 {
		return 0
	}
	return float64(w.Novel) / float64(w.Rows)
}

// noveltyTracker keeps the counters of NoveltyStats. Not safe for
// concurrent use: the Stage holds it under its mutex.
type noveltyTracker struct {
	judged, novel int64
	ring          []bool // the last len(ring) judgements; ring[(judged-1)%len] is the newest
	wnovel        []int  // novel rows per NoveltyWindows window
	drift         map[int]*driftRing
}

// driftRing holds the last DriftWindow distance ratios of one domain.
type driftRing struct {
	v   []float64
	n   int // rows observed
	sum float64
}

func newNoveltyTracker() *noveltyTracker {
	return &noveltyTracker{ring: make([]bool, slices.Max(NoveltyWindows)), wnovel: make([]int, len(NoveltyWindows)),
		drift: map[int]*driftRing{}}
}

// observe records one judged row assigned to domain id: novel or not, and
// its nearest distance over its domain's fit-time mean (ratio; NaN: none).
func (t *noveltyTracker) observe(id int, novel bool, ratio float64) {
	n := len(t.ring)
	for w, size := range NoveltyWindows {
		if t.judged >= int64(size) && t.ring[(t.judged-int64(size))%int64(n)] {
			t.wnovel[w]-- // the row leaving this window
		}
		if novel {
			t.wnovel[w]++
		}
	}
	t.ring[t.judged%int64(n)] = novel
	t.judged++
	if novel {
		t.novel++
	}
	if ratio != ratio { // NaN
		return
	}
	d := t.drift[id]
	if d == nil {
		d = &driftRing{v: make([]float64, DriftWindow)}
		t.drift[id] = d
	}
	i := d.n % DriftWindow
	if d.n >= DriftWindow {
		d.sum -= d.v[i]
	}
	d.v[i] = ratio
	d.sum += ratio
	d.n++
	if i == DriftWindow-1 { // resum once per lap: no rounding creeps in
		d.sum = 0
		for _, x := range d.v {
			d.sum += x
		}
	}
}

func (t *noveltyTracker) stats() NoveltyStats {
	s := NoveltyStats{Judged: t.judged, Novel: t.novel, Drift: map[int]float64{}}
	for w, size := range NoveltyWindows {
		s.Windows = append(s.Windows, NoveltyWindow{Size: size, Rows: int(min(t.judged, int64(size))), Novel: t.wnovel[w]})
	}
	for id, d := range t.drift {
		s.Drift[id] = d.sum / float64(min(d.n, DriftWindow))
	}
	return s
}

// resetNovelty zeroes the novelty counters.
func (st *Stage) resetNovelty() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.novelty = newNoveltyTracker()
}

// Novelty returns the stage's novelty counters (see NoveltyStats).
func (st *Stage) Novelty() NoveltyStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.novelty.stats()
}

// Collector returns a Prometheus collector of the stage's novelty metrics,
// read from Novelty at every scrape:
//
//	domainflow_novel_rows_total              counter: novel rows
//	domainflow_novelty_judged_rows_total     counter: rows judged
//	domainflow_novel_fraction{window="1000"} gauge: novel fraction over the last rows (NoveltyWindows)
//	domainflow_domain_drift{domain="3"}      gauge: recent nearest distance over fit-time mean (DriftWindow)
//
// RunStage registers it on RunConfig.Registerer.
func (st *Stage) Collector() prometheus.Collector { return noveltyCollector{st} }

var (
	descNovel    = prometheus.NewDesc("domainflow_novel_rows_total", "Rows judged novel: farther from their nearest centroid than the novelty rule allows.", nil, nil)
	descJudged   = prometheus.NewDesc("domainflow_novelty_judged_rows_total", "Rows judged for novelty (routed by a router with fit-time distances).", nil, nil)
	descFraction = prometheus.NewDesc("domainflow_novel_fraction", "Fraction of novel rows among the last judged rows (window: their number).", []string{"window"}, nil)
	descDrift    = prometheus.NewDesc("domainflow_domain_drift", "Mean squared distance to the nearest centroid of the domain's recent rows over its fit-time mean (1: like the fit sample).", []string{"domain"}, nil)
)

type noveltyCollector struct{ st *Stage }

func (c noveltyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNovel, descJudged, descFraction, descDrift} {
		ch <- d
	}
}

func (c noveltyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Novelty()
	ch <- prometheus.MustNewConstMetric(descNovel, prometheus.CounterValue, float64(s.Novel))
	ch <- prometheus.MustNewConstMetric(descJudged, prometheus.CounterValue, float64(s.Judged))
	for _, w := range s.Windows {
		ch <- prometheus.MustNewConstMetric(descFraction, prometheus.GaugeValue, w.Fraction(), strconv.Itoa(w.Size))
	}
	for id, v := range s.Drift {
		ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, v, strconv.Itoa(id))
	}
}
