package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/ref" // registers "ref"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// allFigures are the figures of a report on a complete run output, in page
// order.
var allFigures = []string{"plot-sizes", "plot-domains", "plot-sources", "plot-loss", "plot-bpb-experts", "plot-bpb-routing", "plot-phases"}

// ---------------------------------------------------------------------------
// Synthetic run outputs

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeExpert saves a checkpoint of a minimal model with the given loss
// curve as experts/<name>/ under dir.
func writeExpert(t *testing.T, dir, name string, losses []train.LossPoint) {
	t.Helper()
	writeExpertFrom(t, dir, name, losses, 1, "")
}

// writeExpertFrom is writeExpert with the model initialized from seed and
// recorded as branched from the checkpoint whose parameters hash to init
// ("" none); it returns the checkpoint's train.ParamsSHA256.
func writeExpertFrom(t *testing.T, dir, name string, losses []train.LossPoint, seed uint64, init string) string {
	t.Helper()
	be, err := accel.Open("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Name: "test", Vocab: 256, Dim: 8, Layers: 1, Heads: 2, Ctx: 8, Batch: 1}
	tr, err := train.NewTrainer(train.TrainerConfig{Expert: name, Model: cfg, Opt: train.DefaultOptConfig(), Seed: seed, Backend: be, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr.Meta.Init = init
	tr.Meta.Losses = losses
	tr.Meta.Tokens = losses[len(losses)-1].Tokens
	if _, err := train.SaveCheckpoint(filepath.Join(dir, expertsDir, name), tr.Checkpoint(), 1); err != nil {
		t.Fatal(err)
	}
	return train.ParamsSHA256(tr.Model)
}

// lossPoints returns n points of a falling loss curve: step i at 64·i
// bytes, loss from + (to-from)·i/(n-1).
func lossPoints(n int, from, to float32) []train.LossPoint {
	ls := make([]train.LossPoint, n)
	for i := range ls {
		ls[i] = train.LossPoint{Step: i + 1, Tokens: int64(64 * (i + 1)), Loss: from + (to-from)*float32(i)/float32(n-1)}
	}
	return ls
}

func f64(x float64) *float64 { return &x }

// synthSummary is the summary.json of the synthetic run.
func synthSummary() summary {
	return summary{
		DocsIn: 100, DocsRouted: 97, DocsDeadletter: 3, DocsHeldout: 11,
		DeadletterReasons: map[string]int64{"invalid-json": 2, "empty-text": 1},
		Domains: []summaryDomain{
			{ID: 0, Size: 40, SizeAtFit: 35, TopTerms: []string{"alpha", "beta"}, Tokens: 640, Loss: 2.5,
				Sources: map[string]int64{"go": 38, "wiki": 2}},
			{ID: 1, Size: 30, SizeAtFit: 33, TopTerms: []string{"gamma", "<b>&amp</b>"}, Tokens: 640, Loss: 2.25,
				Sources: map[string]int64{"wiki": 25, "mail": 5}},
			{ID: 2, Size: 27, SizeAtFit: 29, TopTerms: []string{"delta"}, Tokens: 640, Loss: 2.75,
				Sources: map[string]int64{"mail": 20, "": 7}},
		},
		Phases: map[string]float64{"split": 0.01, "ingest": 0.1, "fit": 0.05, "route": 0.3, "count": 0.02,
			"train_seed": 0.2, "train_experts": 0.5, "train_dense": 0.25, "eval": 0.07},
		Settings: map[string]json.RawMessage{"inputs": json.RawMessage(`["corpus.jsonl.gz"]`), "k": json.RawMessage(`3`),
			"expert": json.RawMessage(`"tiny"`), "tokens_per_domain": json.RawMessage(`640`), "seed_tokens": json.RawMessage(`320`),
			"new_knob": json.RawMessage(`true`)},
		SeedTokens: 320, DenseTokens: 1920,
		Eval: summaryEval{
			DenseBPB: f64(4.125), SeedBPB: f64(6.5),
			ExpertBPB:  []expertBPB{{Expert: "0", BPB: 4.75}, {Expert: "1", BPB: 4.5}, {Expert: "2", BPB: 5.25}},
			MixtureBPB: map[string]float64{"top1": 4.0625, "top2": 4.03125, "all": 4.5},
		},
		Seconds: 1.5,
	}
}

func writeSummary(t *testing.T, dir string, s summary) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, summaryFile), b)
}

// writeRouter saves a router of three domains (ids 0, 1, 2; sizes at fit
// 35, 33, 29; top terms and examples) into dir/router/.
func writeRouter(t *testing.T, dir string) *cluster.RouterModel {
	t.Helper()
	rm := &cluster.RouterModel{
		FeaturizerVersion: 1, Featurizer: "tfidf", Created: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
		IDs:      []int{2, 0, 1}, // not in order: the table lists domains by id
		Model:    &cluster.Model{K: 3, Dim: 3, Centroids: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, Sizes: []int{29, 35, 33}},
		TopTerms: [][]string{{"river", "delta"}, {"alpha", "beta", "gamma"}, {"omega"}},
		Examples: [][]string{{"d7"}, {"d1", "d2"}, {"d3"}},
		Fit:      cluster.FitConfig{K: 3, MaxIter: 10, Seed: 1, Restarts: 1},
		Route:    cluster.RouteConfig{Tolerance: 0.1, Window: 1000},
		NextID:   3,
	}
	if _, err := cluster.SaveRouter(filepath.Join(dir, routerDir), rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// writeHistory writes routing-history.jsonl from cumulative counts of
// domains 0, 1, 2, one record every 2 s, with a damaged line after the
// second record when damaged is set.
func writeHistory(t *testing.T, dir string, counts [][3]int64, damaged bool) {
	t.Helper()
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	var hist bytes.Buffer
	for i, c := range counts {
		b, _ := json.Marshal(cluster.RoutingState{RouterVersion: 1, Counts: map[string]int64{"0": c[0], "1": c[1], "2": c[2]},
			Saved: t0.Add(time.Duration(i) * 2 * time.Second)})
		hist.Write(append(b, '\n'))
		if i == 1 && damaged {
			hist.WriteString("{not json\n")
		}
	}
	writeFile(t, filepath.Join(dir, historyFile), hist.Bytes())
}

// synthRun writes a complete run output into dir: a router (whose fit sizes
// and top terms win over the summary's), checkpoints with known loss
// curves, summary.json and a routing history with one damaged line.
func synthRun(t *testing.T, dir string) {
	t.Helper()
	writeRouter(t, dir)
	// The seed (5 steps, 320 bytes); the experts and the dense baseline
	// branch from it.
	seed := writeExpertFrom(t, dir, "seed", lossPoints(5, 5.5, 4), 7, "")
	writeExpertFrom(t, dir, "0", lossPoints(10, 5, 2.5), 1, seed)
	writeExpertFrom(t, dir, "1", lossPoints(10, 5, 2.25), 2, seed)
	writeExpertFrom(t, dir, "2", lossPoints(10, 5, 2.75), 3, seed)
	writeExpertFrom(t, dir, "dense", lossPoints(30, 5.5, 2), 4, seed)
	writeSummary(t, dir, synthSummary())
	writeHistory(t, dir, [][3]int64{{10, 8, 9}, {25, 20, 18}, {40, 30, 27}}, true)
}

// ---------------------------------------------------------------------------
// Checks

// figures returns the figures of p by id, and their ids in page order.
func figures(p *Page) (map[string]Figure, []string) {
	m := map[string]Figure{}
	var ids []string
	for _, f := range p.Figures {
		m[f.ID] = f
		ids = append(ids, f.ID)
	}
	return m, ids
}

// whats returns the What of each missing input.
func whats(ms []Missing) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.What)
	}
	return out
}

// svgOf decodes the inline image of f.
func svgOf(t *testing.T, f Figure) []byte {
	t.Helper()
	const pre, post = `src="data:image/svg+xml;base64,`, `"`
	s := string(f.Image)
	if !strings.HasPrefix(s, pre) || !strings.HasSuffix(s, post) {
		t.Fatalf("%s: image attribute %.60q…", f.ID, s)
	}
	b, err := base64.StdEncoding.DecodeString(s[len(pre) : len(s)-len(post)])
	if err != nil {
		t.Fatalf("%s: image: %v", f.ID, err)
	}
	return b
}

// checkSVG parses the image of f as XML and requires an <svg> root with
// drawing elements and a positive size; it returns the texts drawn.
func checkSVG(t *testing.T, f Figure) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svgOf(t, f)))
	var root, width, height string
	drawing := 0
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: SVG is not valid XML: %v", f.ID, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
				for _, a := range e.Attr {
					switch a.Name.Local {
					case "width":
						width = a.Value
					case "height":
						height = a.Value
					}
				}
			}
			switch e.Name.Local {
			case "path", "line", "rect", "polyline", "polygon", "circle":
				drawing++
			case "text":
				inText = true
			}
		case xml.EndElement:
			if e.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", f.ID, root)
	}
	for _, v := range []string{width, height} {
		n, err := strconv.ParseFloat(strings.TrimRight(v, "ptxcmin"), 64)
		if err != nil || n <= 0 {
			t.Fatalf("%s: svg size %q × %q", f.ID, width, height)
		}
	}
	if drawing < 5 {
		t.Fatalf("%s: %d drawing elements, want a plot", f.ID, drawing)
	}
	return texts
}

// rowsByFirst maps the first cell of each table row to the row's texts.
func rowsByFirst(f Figure) map[string][]string {
	m := map[string][]string{}
	for _, r := range f.Table.Rows {
		var cells []string
		for _, c := range r {
			cells = append(cells, c.Text)
		}
		m[cells[0]] = cells
	}
	return m
}

func wantRow(t *testing.T, f Figure, first string, want ...string) {
	t.Helper()
	got, ok := rowsByFirst(f)[first]
	if !ok {
		t.Errorf("%s: no table row %q in %v", f.ID, first, f.Table.Rows)
		return
	}
	if len(got) < len(want)+1 || !slices.Equal(got[1:len(want)+1], want) {
		t.Errorf("%s: row %q = %q, want %q", f.ID, first, got[1:], want)
	}
}

// loadPage loads dir and builds its page.
func loadPage(t *testing.T, dir string) (*Data, *Page) {
	t.Helper()
	d, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	p, err := d.Page()
	if err != nil {
		t.Fatalf("Page: %v", err)
	}
	return d, p
}

// render returns p as HTML and checks that it refers to nothing outside.
func render(t *testing.T, p *Page) string {
	t.Helper()
	var buf bytes.Buffer
	n, err := p.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	page := buf.String()
	for _, bad := range []string{`src="http`, `href="http`, "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to an outside resource: %q", bad)
		}
	}
	return page
}

// ---------------------------------------------------------------------------
// Tests

func TestPage(t *testing.T) {
	dir := t.TempDir()
	synthRun(t, dir)
	d, p := loadPage(t, dir)
	if got := d.Missing(); len(got) != 1 || got[0] != (Missing{historyFile, "1 damaged lines skipped"}) {
		t.Errorf("Missing() = %q, want the damaged history line", got)
	}
	if !slices.Equal(p.Missing, d.Missing()) || p.Dir != dir {
		t.Errorf("page: dir %q, missing %q", p.Dir, p.Missing)
	}
	if _, err := time.Parse(time.RFC3339, p.Generated); err != nil {
		t.Errorf("Generated = %q: %v", p.Generated, err)
	}
	figs, ids := figures(p)
	if !slices.Equal(ids, allFigures) {
		t.Fatalf("figures %q, want %q", ids, allFigures)
	}

	// Header counts.
	wantCounts := map[string]string{"docs_in": "100", "docs_routed": "97", "docs_deadletter": "3", "docs_heldout": "11",
		"domains": "3", "seed_tokens": "320", "dense_tokens": "1920", "seconds": "1.5"}
	if len(p.Counts) != len(wantCounts) {
		t.Errorf("%d counts, want %d", len(p.Counts), len(wantCounts))
	}
	for _, c := range p.Counts {
		if wantCounts[c.Key] != c.Value {
			t.Errorf("count %s = %q, want %q", c.Key, c.Value, wantCounts[c.Key])
		}
	}

	// Figures: source, series, legend entries drawn, rows.
	for _, c := range []struct {
		id, source string
		series     int
		rows       int
		legend     []string
	}{
		{"plot-sizes", historyFile, 3, 3, []string{"domain 0", "domain 2"}},
		{"plot-domains", "router summary.json", 2, 3, []string{"at fit (k-means)", "routed in the run"}},
		{"plot-sources", summaryFile, 4, 4, []string{"mail", "wiki", "go", "(no source)"}},
		{"plot-loss", expertsDir, 5, 5, []string{"domain 0", "domain 2", "seed", "dense", "training loss (nats/byte)"}},
		{"plot-bpb-experts", summaryFile, 2, 5, []string{"domain experts", "dense models", "domain 1"}},
		{"plot-bpb-routing", summaryFile, 2, 4, []string{"dense baseline", "top2"}},
		{"plot-phases", summaryFile, 1, 9, []string{"train experts", "seconds"}},
	} {
		f := figs[c.id]
		if f.Source != c.source || f.Series != c.series || len(f.Table.Rows) != c.rows {
			t.Errorf("%s: source %q, %d series, %d rows; want %q, %d, %d", c.id, f.Source, f.Series, len(f.Table.Rows), c.source, c.series, c.rows)
		}
		texts := checkSVG(t, f)
		for _, l := range c.legend {
			if !slices.Contains(texts, l) {
				t.Errorf("%s: texts %q lack %q", c.id, texts, l)
			}
		}
	}

	for _, c := range []struct {
		fig, first string
		want       []string
	}{
		// Sizes over time: seconds since the first record, router version,
		// then one column per domain.
		{"plot-sizes", "0.0", []string{"1", "10", "8", "9"}},
		{"plot-sizes", "2.0", []string{"1", "25", "20", "18"}},
		{"plot-sizes", "4.0", []string{"1", "40", "30", "27"}},
		// Domains: fit sizes, top terms and examples of the router, routed
		// sizes and training of the summary.
		{"plot-domains", "0", []string{"35", "40", "640", "2.5000", "alpha beta gamma", "d1 d2"}},
		{"plot-domains", "1", []string{"33", "30", "640", "2.2500", "omega", "d3"}},
		{"plot-domains", "2", []string{"29", "27", "640", "2.7500", "river delta", "d7"}},
		// Sources: per source (largest first: mail 25, wiki 27, go 38, none
		// 7 → go, wiki, mail, none), total, largest.
		{"plot-sources", "0", []string{"38", "2", "0", "0", "40", "go (95%)"}},
		{"plot-sources", "2", []string{"0", "0", "20", "7", "27", "mail (74%)"}},
		{"plot-sources", "all", []string{"38", "27", "25", "7", "97"}},
		// Loss: branched from, first byte, steps, bytes, first, final (the
		// mean of the last 50 steps, as the summary's) and lowest loss.
		{"plot-loss", "1", []string{"seed", "320", "0", "640", "5.0000", "3.6250", "2.2500"}},
		{"plot-loss", "dense", []string{"seed", "320", "0", "1920", "5.5000", "3.7500", "2.0000"}},
		{"plot-loss", "seed", []string{"–", "0", "0", "320", "5.5000", "4.7500", "4.0000"}},
		// Phases in job order, seconds and share of 1.5 s.
		{"plot-phases", "train experts", []string{"0.50", "33%"}},
		// Bits per byte and perplexity.
		{"plot-bpb-experts", "1", []string{"4.5000", "22.6274"}},
		{"plot-bpb-experts", "seed", []string{"6.5000"}},
		{"plot-bpb-experts", "dense", []string{"4.1250", "17.4481"}},
		{"plot-bpb-routing", "top1", []string{"4.0625"}},
		{"plot-bpb-routing", "top2", []string{"4.0312"}},
		{"plot-bpb-routing", "all", []string{"4.5000"}},
		{"plot-bpb-routing", "dense baseline", []string{"4.1250"}},
	} {
		wantRow(t, figs[c.fig], c.first, c.want...)
	}
	var order []string
	for _, r := range figs["plot-bpb-routing"].Table.Rows {
		order = append(order, r[0].Text)
	}
	if want := []string{"top1", "top2", "all", "dense baseline"}; !slices.Equal(order, want) {
		t.Errorf("routing choices in order %q, want %q", order, want)
	}
	var experts []string
	for _, r := range figs["plot-loss"].Table.Rows {
		experts = append(experts, r[0].Text)
	}
	if want := []string{"0", "1", "2", "dense", "seed"}; !slices.Equal(experts, want) {
		t.Errorf("experts in order %q, want %q", experts, want)
	}

	// The page: every figure with its attributes and image; the damaged
	// history line named.
	page := render(t, p)
	for _, f := range p.Figures {
		want := `<figure id="` + f.ID + `" data-plot="` + f.Plot + `" data-source="` + f.Source + `" data-series="` + strconv.Itoa(f.Series) + `">` +
			"\n<img " + string(f.Image) + ` alt="`
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %.120q…", want)
		}
	}
	for k, v := range map[string]string{"docs_in": "100", "docs_routed": "97", "docs_deadletter": "3", "docs_heldout": "11"} {
		if !strings.Contains(page, `<td data-count="`+k+`">`+v+`</td>`) {
			t.Errorf("count %s = %s not in the header", k, v)
		}
	}
	if !strings.Contains(page, `data-missing="routing-history.jsonl"`) || !strings.Contains(page, "1 damaged lines skipped") {
		t.Error("the damaged history line is not reported in the page")
	}
	if !strings.Contains(page, "<td>alpha beta gamma</td>") {
		t.Error("the router's top terms of domain 0 are not in the page")
	}

	// The sections without a plot: settings (known keys first, with their
	// flags; unknown ones after) and dead letters by reason (most first).
	var sections []string
	for _, ts := range p.Tables {
		sections = append(sections, ts.ID)
	}
	if want := []string{"settings", "deadletters"}; !slices.Equal(sections, want) {
		t.Fatalf("table sections %q, want %q", sections, want)
	}
	var settings [][]string
	for _, r := range p.Tables[0].Table.Rows {
		settings = append(settings, []string{r[1].Text, r[2].Text})
	}
	wantSettings := [][]string{{"inputs", "corpus.jsonl.gz"}, {"k", "3"}, {"expert", "tiny"}, {"tokens_per_domain", "640"},
		{"seed_tokens", "320"}, {"new_knob", "true"}}
	if !slices.EqualFunc(settings, wantSettings, slices.Equal) {
		t.Errorf("settings %q, want %q", settings, wantSettings)
	}
	if got := p.Tables[0].Table.Rows[1][0].Text; got != "domains (--k)" {
		t.Errorf("setting k labelled %q", got)
	}
	var reasons [][]string
	for _, r := range p.Tables[1].Table.Rows {
		reasons = append(reasons, []string{r[0].Text, r[1].Text})
	}
	if want := [][]string{{"invalid-json", "2"}, {"empty-text", "1"}}; !slices.EqualFunc(reasons, want, slices.Equal) {
		t.Errorf("dead letters by reason %q, want %q", reasons, want)
	}
	for _, want := range []string{`<section id="settings"`, `<section id="deadletters"`, "<td>invalid-json</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// The labels a reader needs: which size is which, bytes not tokens,
	// the units of loss against bits per byte, lower is better, the dense
	// baseline continuing the seed, branched curves starting at the seed's
	// end, and why the mixture loses (here top2 4.03 < dense 4.125: no
	// such line).
	for id, wants := range map[string][]string{
		"plot-domains":     {`"at fit"`, `"routed"`, "nats per byte", "mean of its last 50 steps"},
		"plot-loss":        {"nats per byte", "lower is better", "held-out bits per byte", "continue from the seed", "begin at the seed's last byte"},
		"plot-bpb-experts": {"continues from the seed", "Lower is better"},
		"plot-bpb-routing": {"continued from the seed", "Lower is better"},
	} {
		for _, w := range wants {
			if !strings.Contains(figs[id].Caption, w) {
				t.Errorf("%s: caption %q lacks %q", id, figs[id].Caption, w)
			}
		}
	}
	if strings.Contains(figs["plot-bpb-routing"].Caption, "dense baseline wins") {
		t.Errorf("plot-bpb-routing: says the dense baseline wins, but top2 beats it: %q", figs["plot-bpb-routing"].Caption)
	}
	if strings.Contains(figs["plot-loss"].Caption, "carries the seed's curve") {
		t.Error("plot-loss: the old caption")
	}
	for _, c := range p.Counts {
		if strings.Contains(strings.ToLower(c.Label), "token") {
			t.Errorf("count %s labelled %q: bytes, not tokens", c.Key, c.Label)
		}
	}
	// "tokens" as a word, not in a flag or key (--tokens-per-domain).
	if m := regexp.MustCompile(`(?i)[^-_a-z]tokens?[^-_a-z]`).FindString(page); m != "" {
		t.Errorf("the page calls bytes tokens: %q", m)
	}
}

// TestPageMixtureLoses: when the dense baseline beats every mixture, the
// routing figure says why in one sentence.
func TestPageMixtureLoses(t *testing.T) {
	dir := t.TempDir()
	s := synthSummary()
	s.Eval.DenseBPB = f64(3.5)
	writeSummary(t, dir, s)
	_, p := loadPage(t, dir)
	figs, _ := figures(p)
	if c := figs["plot-bpb-routing"].Caption; !strings.Contains(c, "Here the dense baseline wins: at small compute") {
		t.Errorf("plot-bpb-routing caption %q does not explain the dense model winning", c)
	}
	// It names a command a user can run from the repository, not a script
	// that needs a corpus outside it.
	if c := figs["plot-bpb-routing"].Caption; !strings.Contains(c, "`pipeline run --input CORPUS") || !strings.Contains(c, "BENCHMARKS.md §8") || strings.Contains(c, "cbtm.sh") {
		t.Errorf("plot-bpb-routing caption %q: want the pipeline run command and BENCHMARKS.md §8, not bench/cbtm.sh", c)
	}
}

// TestPageResumed: a summary written by a resumed run keeps the phase
// seconds of the invocations that did the work; the report says so, and
// shows the resumed invocation's own time beside the job's.
func TestPageResumed(t *testing.T) {
	for _, c := range []struct {
		name        string
		resumed     []string
		wantCaption string // in the phases caption; "" for none of the resumed wording
		wantCount   bool   // the header shows invocation_seconds
	}{
		{"fresh", nil, "", false},
		{"resumed", []string{"ingest", "train_experts"}, "found ingest, train experts done", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := synthSummary()
			s.Resumed, s.InvocationSeconds = c.resumed, 0.25
			writeSummary(t, dir, s)
			_, p := loadPage(t, dir)
			figs, _ := figures(p)
			ph := figs["plot-phases"]
			resumedWording := strings.Contains(ph.Caption, "written by a resumed run (0.2s)")
			if c.wantCaption == "" && resumedWording || c.wantCaption != "" && (!resumedWording || !strings.Contains(ph.Caption, c.wantCaption)) {
				t.Errorf("plot-phases caption %q, want resumed wording %v (%q)", ph.Caption, c.wantCaption != "", c.wantCaption)
			}
			// The phases' seconds are the summary's, whoever timed them.
			wantRow(t, ph, "train experts", "0.50", "33%")
			got := false
			for _, k := range p.Counts {
				if k.Key == "invocation_seconds" {
					got = k.Value == "0.2"
				}
			}
			if got != c.wantCount {
				t.Errorf("header invocation_seconds shown %v, want %v (%v)", got, c.wantCount, p.Counts)
			}
		})
	}
}

// TestBranches: each expert's curve starts where the expert it branched
// from ended, through chains, and an expert that has not trained yet (the
// seed's parameters) is not taken for the seed.
func TestBranches(t *testing.T) {
	for _, c := range []struct {
		name    string
		experts []expert
		from    map[string]string
		offset  map[string]int64
	}{{
		name:    "from scratch",
		experts: []expert{{Name: "0", Params: "a", Tokens: 10}, {Name: "1", Params: "b", Tokens: 10}},
		from:    map[string]string{},
		offset:  map[string]int64{"0": 0, "1": 0},
	}, {
		name: "branched from the seed, the dense baseline continuing it",
		experts: []expert{{Name: "0", Params: "a", Init: "s", Tokens: 10}, {Name: "dense", Params: "d", Init: "s", Tokens: 40},
			{Name: "seed", Params: "s", Tokens: 5}},
		from:   map[string]string{"0": "seed", "dense": "seed"},
		offset: map[string]int64{"0": 5, "dense": 5, "seed": 0},
	}, {
		name: "an untrained expert shares the seed's parameters",
		experts: []expert{{Name: "0", Params: "s", Init: "s", Tokens: 0}, {Name: "1", Params: "b", Init: "s", Tokens: 10},
			{Name: "seed", Params: "s", Tokens: 5}},
		from:   map[string]string{"0": "seed", "1": "seed"},
		offset: map[string]int64{"0": 5, "1": 5, "seed": 0},
	}, {
		name: "a chain: a new expert branched from an old one, itself from the seed",
		experts: []expert{{Name: "0", Params: "a", Init: "s", Tokens: 10}, {Name: "5", Params: "n", Init: "a", Tokens: 3},
			{Name: "seed", Params: "s", Tokens: 5}},
		from:   map[string]string{"0": "seed", "5": "0"},
		offset: map[string]int64{"0": 5, "5": 15, "seed": 0},
	}, {
		name:    "branched from a checkpoint not here (an average)",
		experts: []expert{{Name: "5", Params: "n", Init: "avg", InitFrom: "average of 0, 1", Tokens: 3}},
		from:    map[string]string{},
		offset:  map[string]int64{"5": 0},
	}} {
		t.Run(c.name, func(t *testing.T) {
			from, offset := branches(c.experts)
			if !maps.Equal(from, c.from) || !maps.Equal(offset, c.offset) {
				t.Errorf("branches = %v, %v; want %v, %v", from, offset, c.from, c.offset)
			}
		})
	}
}

func TestPageMissingInputs(t *testing.T) {
	for _, c := range []struct {
		name    string
		setup   func(t *testing.T, dir string)
		figures []string
		missing []string
		check   func(t *testing.T, p *Page, figs map[string]Figure)
	}{{
		name: "experts only, as pipeline train leaves",
		setup: func(t *testing.T, dir string) {
			writeExpert(t, dir, "0", lossPoints(4, 4, 3))
			writeExpert(t, dir, "dense", lossPoints(8, 4, 2.5))
		},
		figures: []string{"plot-loss"},
		missing: []string{summaryFile, "router/", historyFile},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			if p.Counts != nil {
				t.Errorf("counts %v without a summary", p.Counts)
			}
			if page := render(t, p); !strings.Contains(page, `id="counts-missing"`) {
				t.Error("page does not say the run counts are missing")
			}
		},
	}, {
		name:    "a summary alone: sizes fall back to bars of the routed sizes",
		setup:   func(t *testing.T, dir string) { writeSummary(t, dir, synthSummary()) },
		figures: []string{"plot-sizes", "plot-domains", "plot-sources", "plot-bpb-experts", "plot-bpb-routing", "plot-phases"},
		missing: []string{"router/", historyFile, "experts/"},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			sz := figs["plot-sizes"]
			if sz.Source != summaryFile || sz.Series != 1 || len(sz.Table.Rows) != 3 {
				t.Errorf("plot-sizes: source %q, %d series, rows %v", sz.Source, sz.Series, sz.Table.Rows)
			}
			wantRow(t, sz, "1", "30")
			dm := figs["plot-domains"]
			if dm.Source != summaryFile || dm.Series != 1 {
				t.Errorf("plot-domains: source %q, %d series", dm.Source, dm.Series)
			}
			// The size at fit from the summary, without a router.
			wantRow(t, dm, "1", "33", "30", "640", "2.2500", "gamma <b>&amp</b>", "")
		},
	}, {
		name:    "a router alone, as pipeline cluster fit leaves",
		setup:   func(t *testing.T, dir string) { writeRouter(t, dir) },
		figures: []string{"plot-sizes", "plot-domains"},
		missing: []string{summaryFile, historyFile, "experts/"},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			if sz := figs["plot-sizes"]; sz.Source != routerDir {
				t.Errorf("plot-sizes: source %q, want the router", sz.Source)
			}
			wantRow(t, figs["plot-sizes"], "0", "35")
			dm := figs["plot-domains"]
			if dm.Source != routerDir || dm.Series != 1 {
				t.Errorf("plot-domains: source %q, %d series", dm.Source, dm.Series)
			}
			wantRow(t, dm, "2", "29", "–", "–", "–", "river delta", "d7")
		},
	}, {
		name: "a damaged summary is reported, not fatal, when something else is there",
		setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, summaryFile), []byte("{"))
			writeExpert(t, dir, "0", lossPoints(4, 4, 3))
		},
		figures: []string{"plot-loss"},
		missing: []string{summaryFile, "router/", historyFile},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			if !strings.HasPrefix(p.Missing[0].Why, "damaged: ") {
				t.Errorf("summary.json: %q", p.Missing[0].Why)
			}
		},
	}, {
		name: "an empty history, a damaged router, an expert without checkpoint",
		setup: func(t *testing.T, dir string) {
			writeSummary(t, dir, synthSummary())
			writeFile(t, filepath.Join(dir, historyFile), nil)
			writeFile(t, filepath.Join(dir, routerDir, "router-000001.arrow"), []byte("not arrow"))
			if err := os.MkdirAll(filepath.Join(dir, expertsDir, "7"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeExpert(t, dir, "3", lossPoints(4, 4, 3))
		},
		figures: []string{"plot-sizes", "plot-domains", "plot-sources", "plot-loss", "plot-bpb-experts", "plot-bpb-routing", "plot-phases"},
		missing: []string{"router/", historyFile, "experts/7/"},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			for i, prefix := range []string{"no router loaded: ", "empty (", "no checkpoint"} {
				if !strings.HasPrefix(p.Missing[i].Why, prefix) {
					t.Errorf("%s: %q, want %q…", p.Missing[i].What, p.Missing[i].Why, prefix)
				}
			}
		},
	}, {
		name: "an experts dir without experts",
		setup: func(t *testing.T, dir string) {
			writeHistory(t, dir, [][3]int64{{1, 2, 3}}, false)
			if err := os.MkdirAll(filepath.Join(dir, expertsDir, ".tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		figures: []string{"plot-sizes"},
		missing: []string{summaryFile, "router/", "experts/"},
		check: func(t *testing.T, p *Page, figs map[string]Figure) {
			if why := p.Missing[2].Why; why != "no expert in it: no loss curves" {
				t.Errorf("experts/: %q", why)
			}
			// One record: too short to draw over time, its counts as bars.
			sz := figs["plot-sizes"]
			wantRow(t, sz, "0", "1")
			wantRow(t, sz, "2", "3")
			if sz.Source != historyFile || !strings.Contains(sz.Caption, "The history holds 1 record: too few to draw over time") {
				t.Errorf("plot-sizes: source %q, caption %q", sz.Source, sz.Caption)
			}
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			d, p := loadPage(t, dir)
			figs, ids := figures(p)
			if !slices.Equal(ids, c.figures) {
				t.Errorf("figures %q, want %q", ids, c.figures)
			}
			if got := whats(d.Missing()); !slices.Equal(got, c.missing) {
				t.Errorf("missing %q, want %q", got, c.missing)
			}
			for _, f := range p.Figures {
				checkSVG(t, f)
			}
			page := render(t, p)
			for _, m := range c.missing {
				if !strings.Contains(page, `data-missing="`+m+`"`) {
					t.Errorf("page does not say %s is missing", m)
				}
			}
			c.check(t, p, figs)
		})
	}
}

// TestPageEscapes: the strings of the inputs are escaped in the page and
// drawn as they are in the plots.
func TestPageEscapes(t *testing.T) {
	dir := t.TempDir()
	s := synthSummary()
	s.Domains[0].TopTerms = []string{"<script>alert(1)</script>"}
	s.Eval.ExpertBPB[0].Expert = `<x&"y">`
	writeSummary(t, dir, s)
	_, p := loadPage(t, dir)
	page := render(t, p)
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a top term is not escaped")
	}
	if !strings.Contains(page, `<td>&lt;x&amp;&#34;y&#34;&gt;</td>`) {
		t.Error("an expert name is not escaped")
	}
	figs, _ := figures(p)
	wantRow(t, figs["plot-bpb-experts"], `<x&"y">`, "4.7500")
	if texts := checkSVG(t, figs["plot-bpb-experts"]); !slices.Contains(texts, `<x&"y">`) {
		t.Errorf("plot-bpb-experts: labels %q", texts)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	writeSummary(t, dir, synthSummary())
	_, p := loadPage(t, dir)
	path := filepath.Join(t.TempDir(), "r.html")
	writeFile(t, path, []byte("old"))
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != render(t, p) {
		t.Error("WriteFile and WriteTo wrote different pages")
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", st.Mode(), err)
	}
	if err := p.WriteFile(filepath.Join(dir, "nope", "r.html")); err == nil || !strings.HasPrefix(err.Error(), "report: ") {
		t.Errorf("WriteFile into a missing dir: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	writeFile(t, file, []byte("x"))
	damaged := filepath.Join(root, "damaged")
	writeFile(t, filepath.Join(damaged, historyFile), []byte("{not json\n[]\n"))
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, want string
	}{
		{filepath.Join(root, "nope"), "no such file or directory"},
		{file, "is not a directory"},
		{empty, "holds no run output"},
		{damaged, "holds no run output"}, // a history of damaged lines only
	} {
		d, err := Load(c.dir)
		if err == nil || d != nil || !strings.HasPrefix(err.Error(), "report: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s) = %v, %v; want an error with %q", c.dir, d, err, c.want)
		}
	}
}

func TestReadHistory(t *testing.T) {
	for _, c := range []struct {
		in       string
		versions []int64
		bad      int
	}{
		{"", nil, 0},
		{"\n  \n", nil, 0},
		{`{"router_version":1,"counts":{"0":1},"saved":"2026-11-27T01:00:00Z"}` + "\n", []int64{1}, 0},
		{`{"router_version":1,"counts":{"0":1}}` + "\n{not json\n" + `{"router_version":2,"counts":{}}`, []int64{1, 2}, 1},
		{`{"router_version":3}` + "\n[1]\n", nil, 2}, // no counts; not an object
	} {
		path := filepath.Join(t.TempDir(), historyFile)
		writeFile(t, path, []byte(c.in))
		h, bad, err := readHistory(path)
		var versions []int64
		for _, s := range h {
			versions = append(versions, s.RouterVersion)
		}
		if err != nil || bad != c.bad || !slices.Equal(versions, c.versions) {
			t.Errorf("readHistory(%q) = versions %v, %d bad, %v; want %v, %d", c.in, versions, bad, err, c.versions, c.bad)
		}
	}
}

func TestLossCurve(t *testing.T) {
	ls := lossPoints(10, 5, 0.5) // losses 5, 4.5, …, 0.5 at 64, 128, … bytes
	for _, c := range []struct {
		limit int
		want  [][2]float64 // (bytes, loss)
	}{
		{10, [][2]float64{{64, 5}, {128, 4.5}, {192, 4}, {256, 3.5}, {320, 3}, {384, 2.5}, {448, 2}, {512, 1.5}, {576, 1}, {640, 0.5}}},
		{5, [][2]float64{{128, 4.75}, {256, 3.75}, {384, 2.75}, {512, 1.75}, {640, 0.75}}},
		{3, [][2]float64{{192, 4.5}, {384, 3}, {640, 1.25}}},
		{1, [][2]float64{{640, 2.75}}},
	} {
		pts := lossCurve(ls, c.limit)
		var got [][2]float64
		for _, p := range pts {
			got = append(got, [2]float64{p.X, float64(float32(p.Y))})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("lossCurve(10 points, %d) = %v, want %v", c.limit, got, c.want)
		}
	}
}

func TestSampleIndexes(t *testing.T) {
	for _, c := range []struct {
		n, limit int
		want     []int
	}{
		{0, 40, []int{}},
		{3, 40, []int{0, 1, 2}},
		{40, 40, nil}, // 0..39
		{100, 5, []int{0, 24, 49, 74, 99}},
		{41, 2, []int{0, 40}},
	} {
		want := c.want
		if want == nil {
			for i := range c.n {
				want = append(want, i)
			}
		}
		if got := sampleIndexes(c.n, c.limit); !slices.Equal(got, want) {
			t.Errorf("sampleIndexes(%d, %d) = %v, want %v", c.n, c.limit, got, want)
		}
	}
}

func TestExpertOrder(t *testing.T) {
	names := []string{"seed", "10", "dense", "2", "0", "b1"}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case train.ExpertLess(a, b):
			return -1
		case train.ExpertLess(b, a):
			return 1
		}
		return 0
	})
	if want := []string{"0", "2", "10", "b1", "dense", "seed"}; !slices.Equal(names, want) {
		t.Errorf("expert order %q, want %q", names, want)
	}
	for _, c := range []struct{ name, want string }{{"3", "domain 3"}, {"seed", "seed"}, {"3a", "3a"}} {
		if got := expertLabel(c.name); got != c.want {
			t.Errorf("expertLabel(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	h := []cluster.RoutingState{{Counts: map[string]int64{"10": 1, "2": 1}}, {Counts: map[string]int64{"0": 1, "2": 3}}}
	if got := historyIDs(h); !slices.Equal(got, []string{"0", "2", "10"}) {
		t.Errorf("historyIDs = %q, want 0 2 10", got)
	}
}

// TestPageNovelty: history lines with novelty counters give a figure of the
// novel fraction per window; lines without them give none.
func TestPageNovelty(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	var hist bytes.Buffer
	for i, st := range []cluster.RoutingState{
		{RouterVersion: 1, Counts: map[string]int64{"0": 5}},
		{RouterVersion: 1, Counts: map[string]int64{"0": 10}, Judged: 10, Novel: 1, NovelFraction: map[string]float64{"1000": 0.1, "10000": 0.1}},
		{RouterVersion: 1, Counts: map[string]int64{"0": 15}, Judged: 15, Novel: 4, NovelFraction: map[string]float64{"1000": 0.3, "10000": 0.3}},
		{RouterVersion: 1, Counts: map[string]int64{"0": 20}, Judged: 20, Novel: 8, NovelFraction: map[string]float64{"1000": 0.4, "10000": 0.4}},
	} {
		st.Saved = t0.Add(time.Duration(i) * time.Second)
		b, _ := json.Marshal(st)
		hist.Write(append(b, '\n'))
	}
	writeFile(t, filepath.Join(dir, historyFile), hist.Bytes())
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Page()
	if err != nil {
		t.Fatal(err)
	}
	var fig *Figure
	for i := range p.Figures {
		if p.Figures[i].ID == "plot-novelty" {
			fig = &p.Figures[i]
		}
	}
	if fig == nil {
		t.Fatal("no novelty figure")
	}
	if fig.Series != 2 || len(fig.Table.Rows) != 3 || strings.Contains(fig.Caption, "too short") {
		t.Fatalf("novelty figure: %d series, %d table rows; want 2 and 3 (the lines without counters are left out)", fig.Series, len(fig.Table.Rows))
	}
	if got := fig.Table.Head; strings.Join(got, "|") != "seconds|judged|novel|novel fraction, last 1000|novel fraction, last 10000" {
		t.Errorf("table head %q", got)
	}
	if last := fig.Table.Rows[2]; last[1].Text != "20" || last[2].Text != "8" || last[3].Text != "0.4000" {
		t.Errorf("last row %+v", last)
	}
	if !strings.Contains(render(t, p), `id="plot-novelty"`) {
		t.Error("the page does not show the novelty figure")
	}

	// One record with counters (a short run): bars of its fractions.
	b, _ := json.Marshal(cluster.RoutingState{RouterVersion: 1, Counts: map[string]int64{"0": 20}, Judged: 20, Novel: 8,
		NovelFraction: map[string]float64{"1000": 0.4, "10000": 0.4}, Saved: t0})
	writeFile(t, filepath.Join(dir, historyFile), append(b, '\n'))
	_, p = loadPage(t, dir)
	figs, _ := figures(p)
	if f := figs["plot-novelty"]; f.Series != 1 || !strings.Contains(f.Caption, "too short to draw over time") {
		t.Errorf("short novelty figure: %d series, caption %q; want bars and why", f.Series, f.Caption)
	} else {
		checkSVG(t, f)
	}

	// Without novelty counters: no figure.
	writeHistory(t, dir, [][3]int64{{1, 2, 3}, {2, 3, 4}}, false)
	if d, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if p, err = d.Page(); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Figures {
		if f.ID == "plot-novelty" {
			t.Error("a novelty figure without novelty counters")
		}
	}
}

// writeEvolvingRun writes the router versions and routing history of a run
// whose domains changed while it streamed: v1 fits domains 0 and 1, v2
// grows domain 2, v3 splits domain 0 (new domain 3), v4 removes domain 1.
// The history has a record a second (all at the same time when sameTime),
// with documents parked before the growth.
func writeEvolvingRun(t *testing.T, dir string, sameTime bool) {
	t.Helper()
	created := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	fit := func(v int64) cluster.DomainOrigin { return cluster.DomainOrigin{How: cluster.OriginFit, Version: v} }
	for i, v := range []struct {
		ids     []int
		sizes   []int
		origins []cluster.DomainOrigin
	}{
		{[]int{0, 1}, []int{20, 18}, []cluster.DomainOrigin{fit(0), fit(0)}},
		{[]int{0, 1, 2}, []int{20, 18, 6}, []cluster.DomainOrigin{fit(1), fit(1), {How: cluster.OriginGrow}}},
		{[]int{0, 1, 2, 3}, []int{11, 18, 6, 9}, []cluster.DomainOrigin{fit(1), fit(1), {How: cluster.OriginGrow, Version: 2}, {How: cluster.OriginSplit}}},
		{[]int{0, 2, 3}, []int{11, 6, 9}, []cluster.DomainOrigin{fit(1), {How: cluster.OriginGrow, Version: 2}, {How: cluster.OriginSplit, Version: 3}}},
	} {
		k := len(v.ids)
		rm := &cluster.RouterModel{FeaturizerVersion: 1, Featurizer: "tfidf", Created: created.Add(time.Duration(i) * time.Minute),
			IDs: v.ids, Model: &cluster.Model{K: k, Dim: 2, Centroids: make([]float32, 2*k), Sizes: v.sizes},
			Origins: v.origins, NextID: 4}
		if _, err := cluster.SaveRouter(filepath.Join(dir, routerDir), rm); err != nil {
			t.Fatal(err)
		}
	}
	var hist bytes.Buffer
	for i, st := range []cluster.RoutingState{
		{RouterVersion: 1, Counts: map[string]int64{"0": 5, "1": 4}},
		{RouterVersion: 1, Counts: map[string]int64{"0": 10, "1": 8}, Parked: 3},
		{RouterVersion: 2, Counts: map[string]int64{"0": 12, "1": 9, "2": 4}, Parked: 1},
		{RouterVersion: 3, Counts: map[string]int64{"0": 14, "1": 10, "2": 6, "3": 2}, Parked: 1},
		{RouterVersion: 4, Counts: map[string]int64{"0": 15, "2": 7, "3": 4}, Parked: 2},
	} {
		if !sameTime {
			st.Saved = created.Add(time.Hour + time.Duration(i)*time.Second)
		}
		b, _ := json.Marshal(st)
		hist.Write(append(b, '\n'))
	}
	writeFile(t, filepath.Join(dir, historyFile), hist.Bytes())
}

// TestPageDomainsOverTime: a run whose domains changed gets the figure of
// the domains over time, with a line per domain and one of the parked
// documents, creation marks labelled with how and the router version, and
// a table of every domain's origin; a run whose domains did not change
// gets none.
func TestPageDomainsOverTime(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		figures []string
		source  string
		series  int
		texts   []string   // drawn in the plot
		rows    [][]string // table rows: domain, origin, version, created, size at fit, routed, first record, removed in
	}{{
		name:    "grown, split and removed domains, documents parked",
		setup:   func(t *testing.T, dir string) { writeEvolvingRun(t, dir, false) },
		figures: []string{"plot-sizes", "plot-domains-time", "plot-domains"},
		source:  historyFile + " " + routerDir, series: 5,
		texts: []string{"domain 0", "domain 3", "parked (novel, pending)", "created by growth", "created by a split",
			"grown v2: domain 2", "split v3: domain 3", "seconds since the first record"},
		rows: [][]string{
			{"0", "fit", "v1", "2026-12-07 01:00:00", "11", "15", "0.0", "–"},
			{"1", "fit", "v1", "2026-12-07 01:00:00", "18", "10", "0.0", "v4"},
			{"2", "grow", "v2", "2026-12-07 01:01:00", "6", "7", "2.0", "–"},
			{"3", "split", "v3", "2026-12-07 01:02:00", "9", "4", "3.0", "–"},
		},
	}, {
		name:    "records saved at the same time: x is the record",
		setup:   func(t *testing.T, dir string) { writeEvolvingRun(t, dir, true) },
		figures: []string{"plot-sizes", "plot-domains-time", "plot-domains"},
		source:  historyFile + " " + routerDir, series: 5,
		texts: []string{"record", "grown v2: domain 2"},
		rows:  [][]string{{"2", "grow", "v2", "2026-12-07 01:01:00", "6", "7", "2", "–"}},
	}, {
		name: "a history alone: a domain appears, origins unknown",
		setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, historyFile), []byte(`{"counts":{"0":1},"saved":"2026-12-07T01:00:00Z"}
{"counts":{"0":2,"5":1},"saved":"2026-12-07T01:00:02Z"}
`))
		},
		figures: []string{"plot-sizes", "plot-domains-time"},
		source:  historyFile, series: 2,
		texts: []string{"domain 5"},
		rows:  [][]string{{"5", "–", "–", "–", "–", "1", "2.0", "–"}},
	}, {
		name: "an older router version damaged",
		setup: func(t *testing.T, dir string) {
			writeEvolvingRun(t, dir, false)
			writeFile(t, cluster.RouterPath(filepath.Join(dir, routerDir), 2), []byte("not arrow"))
			writeFile(t, schemas.ParquetTwin(cluster.RouterPath(filepath.Join(dir, routerDir), 2)), []byte("not parquet"))
		},
		figures: []string{"plot-sizes", "plot-domains-time", "plot-domains"},
		source:  historyFile + " " + routerDir, series: 5,
		texts: []string{"grown v2: domain 2"}, // v3 and v4 still say so
		rows:  [][]string{{"2", "grow", "v2", "–", "6", "7", "2.0", "–"}},
	}, {
		name: "two domains grown by one version: one label",
		setup: func(t *testing.T, dir string) {
			for _, rm := range []*cluster.RouterModel{
				{IDs: []int{0}, Model: &cluster.Model{K: 1, Dim: 1, Centroids: []float32{0}, Sizes: []int{9}},
					Origins: []cluster.DomainOrigin{{How: cluster.OriginFit}}, NextID: 1},
				{IDs: []int{0, 1, 2}, Model: &cluster.Model{K: 3, Dim: 1, Centroids: []float32{0, 1, 2}, Sizes: []int{9, 3, 4}},
					Origins: []cluster.DomainOrigin{{How: cluster.OriginFit, Version: 1}, {How: cluster.OriginGrow}, {How: cluster.OriginGrow}}, NextID: 3},
			} {
				rm.FeaturizerVersion, rm.Featurizer = 1, "tfidf"
				if _, err := cluster.SaveRouter(filepath.Join(dir, routerDir), rm); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, filepath.Join(dir, historyFile), []byte(`{"counts":{"0":1},"saved":"2026-12-07T01:00:00Z"}
{"counts":{"0":2,"1":1,"2":3},"saved":"2026-12-07T01:00:05Z"}
`))
		},
		figures: []string{"plot-sizes", "plot-domains-time", "plot-domains"},
		source:  historyFile + " " + routerDir, series: 3,
		texts: []string{"grown v2: domains 1, 2", "created by growth"},
		rows:  [][]string{{"1", "grow", "v2"}, {"2", "grow", "v2"}, {"0", "fit", "v1"}},
	}, {
		name: "domains that did not change: no figure",
		setup: func(t *testing.T, dir string) {
			writeRouter(t, dir)
			writeHistory(t, dir, [][3]int64{{1, 2, 3}, {2, 3, 4}}, false)
		},
		figures: []string{"plot-sizes", "plot-domains"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			d, p := loadPage(t, dir)
			figs, ids := figures(p)
			if !slices.Equal(ids, tt.figures) {
				t.Fatalf("figures %q, want %q", ids, tt.figures)
			}
			f, ok := figs["plot-domains-time"]
			if !ok {
				return
			}
			if f.Source != tt.source || f.Series != tt.series || f.Plot != "domains-time" || f.Title != "Domains over time" {
				t.Errorf("plot-domains-time: source %q, %d series, plot %q, title %q; want %q, %d", f.Source, f.Series, f.Plot, f.Title, tt.source, tt.series)
			}
			texts := checkSVG(t, f)
			for _, s := range tt.texts {
				if !slices.Contains(texts, s) {
					t.Errorf("plot-domains-time: texts %q lack %q", texts, s)
				}
			}
			for _, r := range tt.rows {
				wantRow(t, f, r[0], r[1:]...)
			}
			if page := render(t, p); !strings.Contains(page, `<figure id="plot-domains-time" data-plot="domains-time"`) {
				t.Error("the page does not show the figure")
			}
			said := slices.Contains(d.Missing(), Missing{"router/", "1 older router version damaged, not loaded: the domains made there have no creation time"})
			if damaged := strings.Contains(tt.name, "damaged"); said != damaged {
				t.Errorf("Missing() = %q; want the damaged router version named: %v", d.Missing(), damaged)
			}
		})
	}
	// The same inputs draw the same figure.
	dir := t.TempDir()
	writeEvolvingRun(t, dir, false)
	_, p1 := loadPage(t, dir)
	_, p2 := loadPage(t, dir)
	f1, _ := figures(p1)
	f2, _ := figures(p2)
	if f1["plot-domains-time"].Image != f2["plot-domains-time"].Image {
		t.Error("plot-domains-time differs between two reports on the same run")
	}
}

// TestPageThen: a continuous run's summary (pipeline run --then) adds its
// counts to the header and the bits-per-byte-by-phase figure, whose table
// holds A before, A after and B per routing choice; without it neither
// shows.
func TestPageThen(t *testing.T) {
	dir := t.TempDir()
	synthRun(t, dir)
	_, p0 := loadPage(t, dir)
	if figs, _ := figures(p0); figs["plot-bpb-phases"].ID != "" {
		t.Fatal("a phase figure without a second phase")
	}
	s := synthSummary()
	s.Then = &summaryThen{DocsIn: 50, InNewDomains: 40, InOldDomains: 7, DocsPending: 3, Growths: 1, NewDomains: make([]struct{}, 2),
		FirstNewSeconds: 1.25, EvalA: summaryEval{MixtureBPB: map[string]float64{"top1": 4.0, "top2": 4.0, "all": 4.25}},
		EvalB: summaryEval{MixtureBPB: map[string]float64{"top1": 3.5, "top2": 3.25, "all": 3.75}}}
	writeSummary(t, dir, s)
	_, p := loadPage(t, dir)
	figs, _ := figures(p)
	f := figs["plot-bpb-phases"]
	if f.Series != 3 || len(f.Table.Rows) != 3 {
		t.Fatalf("phase figure %+v", f)
	}
	if got := f.Table.Rows[1]; got[0].Text != "top2" || got[1].Text != "4.0312" || got[2].Text != "4.0000" || got[3].Text != "3.2500" {
		t.Errorf("top2 row %+v, want A before 4.0312, A after 4.0000, B 3.2500", got)
	}
	counts := map[string]string{}
	for _, c := range p.Counts {
		counts[c.Key] = c.Value
	}
	if counts["then_in_new_domains"] != "40" || counts["then_docs_pending"] != "3" || counts["then_new_domains"] != "2" {
		t.Errorf("header counts %v", counts)
	}
}
