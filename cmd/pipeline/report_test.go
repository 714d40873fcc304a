package main

// Tests of `pipeline report`, the command: flags, the file it writes, its
// output and exit codes, and the page it draws from what `pipeline run`,
// `pipeline cluster fit` and `pipeline train` leave. The page itself (every
// figure, table and fallback, escaping, the SVGs) is tested in report/.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// reportFigureIDs are the figures of a report on a complete run output.
var reportFigureIDs = []string{"plot-sizes", "plot-domains", "plot-loss", "plot-bpb-experts", "plot-bpb-routing"}

// runFigureIDs are the figures of a report on the output of `pipeline run`:
// its routing stage judges novelty, so the history holds the novel fraction.
// Its summary also has the documents' sources and the phases' times.
var runFigureIDs = append(slices.Clone(reportFigureIDs), "plot-novelty", "plot-sources", "plot-phases")

// parsedFigure is one <figure> of a report page.
type parsedFigure struct {
	id, plot, source string
	series           int
	rows             [][]string // table cells, unescaped
}

var (
	reFigure = regexp.MustCompile(`(?s)<figure id="([^"]+)" data-plot="([^"]*)" data-source="([^"]*)" data-series="(\d+)">(.*?)</figure>`)
	reImg    = regexp.MustCompile(`<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"`)
	reRow    = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	reCell   = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
)

// parseReport returns the figures of a report page by id; each must hold
// an inline SVG image.
func parseReport(t *testing.T, page string) map[string]parsedFigure {
	t.Helper()
	figs := map[string]parsedFigure{}
	for _, m := range reFigure.FindAllStringSubmatch(page, -1) {
		f := parsedFigure{id: m[1], plot: m[2], source: m[3]}
		f.series, _ = strconv.Atoi(m[4])
		img := reImg.FindStringSubmatch(m[5])
		if img == nil {
			t.Fatalf("figure %s: no inline SVG image", f.id)
		}
		svg, err := base64.StdEncoding.DecodeString(img[1])
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Fatalf("figure %s: image is no SVG: %v", f.id, err)
		}
		for _, r := range reRow.FindAllStringSubmatch(m[5], -1) {
			var cells []string
			for _, c := range reCell.FindAllStringSubmatch(r[1], -1) {
				cells = append(cells, html.UnescapeString(c[1]))
			}
			if cells != nil {
				f.rows = append(f.rows, cells)
			}
		}
		if _, dup := figs[f.id]; dup {
			t.Fatalf("figure id %s twice", f.id)
		}
		figs[f.id] = f
	}
	return figs
}

// reportOn runs `pipeline report --out dir --json` and returns the result
// and the page.
func reportOn(t *testing.T, dir string) (reportResult, string) {
	t.Helper()
	r := mustCLI(t, "report", "--out", dir, "--json", "--log-level", "error")
	var res reportResult
	decodeOne(t, r.stdout, &res)
	b, err := os.ReadFile(res.File)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// ---------------------------------------------------------------------------
// Synthetic run outputs

// writeExpert saves a checkpoint of a minimal model with the given loss
// curve as experts/<name>/ under dir.
func writeExpert(t *testing.T, dir, name string, losses []train.LossPoint) {
	t.Helper()
	be, err := accel.Open("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Name: "test", Vocab: 256, Dim: 8, Layers: 1, Heads: 2, Ctx: 8, Batch: 1}
	tr, err := train.NewTrainer(train.TrainerConfig{Expert: name, Model: cfg, Opt: train.DefaultOptConfig(), Seed: 1, Backend: be, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr.Meta.Losses = losses
	tr.Meta.Tokens = losses[len(losses)-1].Tokens
	if _, err := train.SaveCheckpoint(train.ExpertDir(dir, name), tr.Checkpoint(), 1); err != nil {
		t.Fatal(err)
	}
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

// synthSummary is the summary.json of the synthetic run, as `pipeline run`
// writes it (runSummary): the report reads it with its own decoder.
func synthSummary() runSummary {
	return runSummary{
		DocsIn: 100, DocsRouted: 97, DocsDeadletter: 3, DocsHeldout: 11, RawMessages: 97,
		Domains: []runDomain{
			{ID: 0, Size: 40, TopTerms: []string{"alpha", "beta"}, Tokens: 640, Loss: 2.5},
			{ID: 1, Size: 30, TopTerms: []string{"gamma", "<b>&amp</b>"}, Tokens: 640, Loss: 2.25},
			{ID: 2, Size: 27, TopTerms: []string{"delta"}, Tokens: 640, Loss: 2.75},
		},
		SeedTokens: 320, DenseTokens: 1920,
		Eval: runEval{
			DenseBPB: f64(4.125), SeedBPB: f64(6.5),
			ExpertBPB: []evalExpert{
				{Expert: "0", BPB: 4.75, Perplexity: 26.9087}, {Expert: "1", BPB: 4.5, Perplexity: 22.6274},
				{Expert: "2", BPB: 5.25, Perplexity: 38.0546},
			},
			MixtureBPB: map[string]float64{"top1": 4.0625, "top2": 4.03125, "all": 4.5},
		},
		Seconds: 1.5,
	}
}

// synthRun writes a complete run output into dir: a router fitted by
// `cluster fit` (whose fit sizes and top terms win over the summary's),
// checkpoints with known loss curves, summary.json and a routing history
// with one damaged line.
func synthRun(t *testing.T, dir string) {
	t.Helper()
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "3", "--out", filepath.Join(dir, "router"), "--log-level", "warn")
	writeExpert(t, dir, "0", lossPoints(10, 5, 2.5))
	writeExpert(t, dir, "1", lossPoints(10, 5, 2.25))
	writeExpert(t, dir, "2", lossPoints(10, 5, 2.75))
	writeExpert(t, dir, "seed", lossPoints(5, 5.5, 4))
	writeExpert(t, dir, "dense", lossPoints(30, 5.5, 2))
	b, err := json.MarshalIndent(synthSummary(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "summary.json"), b)
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	var hist bytes.Buffer
	for i, c := range [][3]int64{{10, 8, 9}, {25, 20, 18}, {40, 30, 27}} {
		b, _ := json.Marshal(cluster.RoutingState{RouterVersion: 1, Counts: map[string]int64{"0": c[0], "1": c[1], "2": c[2]},
			Saved: t0.Add(time.Duration(i) * 2 * time.Second)})
		hist.Write(append(b, '\n'))
		if i == 1 {
			hist.WriteString("{not json\n")
		}
	}
	writeFile(t, filepath.Join(dir, "routing-history.jsonl"), hist.Bytes())
}

// rowsByFirst maps the first cell of each table row to the row.
func rowsByFirst(f parsedFigure) map[string][]string {
	m := map[string][]string{}
	for _, r := range f.rows {
		m[r[0]] = r
	}
	return m
}

func wantRow(t *testing.T, f parsedFigure, first string, want ...string) {
	t.Helper()
	got, ok := rowsByFirst(f)[first]
	if !ok {
		t.Errorf("%s: no table row %q in %q", f.id, first, f.rows)
		return
	}
	if !slices.Equal(got[1:len(want)+1], want) {
		t.Errorf("%s: row %q = %q, want %q", f.id, first, got[1:], want)
	}
}

// fmt4 formats a measurement as the page does.
func fmt4(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// ---------------------------------------------------------------------------
// Tests

func TestReportSynthetic(t *testing.T) {
	dir := t.TempDir()
	synthRun(t, dir)
	res, page := reportOn(t, dir)
	if res.File != filepath.Join(dir, "report.html") || res.Plots != len(reportFigureIDs) {
		t.Fatalf("report = %+v, want %d plots in %s", res, len(reportFigureIDs), filepath.Join(dir, "report.html"))
	}
	if !slices.Equal(res.Missing, []string{"routing-history.jsonl"}) {
		t.Errorf("missing = %q, want the damaged history line reported", res.Missing)
	}
	figs := parseReport(t, page)
	for _, id := range reportFigureIDs {
		if f, ok := figs[id]; !ok || f.series < 1 {
			t.Fatalf("figure %s: %+v, in the page %t", id, f, ok)
		}
	}
	if len(figs) != len(reportFigureIDs) {
		t.Errorf("%d figures, want %d", len(figs), len(reportFigureIDs))
	}

	// The run summary as `pipeline run` writes it reaches the page.
	for k, v := range map[string]string{"docs_in": "100", "docs_routed": "97", "docs_deadletter": "3", "docs_heldout": "11"} {
		if !strings.Contains(page, `<td data-count="`+k+`">`+v+`</td>`) {
			t.Errorf("count %s = %s not in the header", k, v)
		}
	}
	wantRow(t, figs["plot-bpb-experts"], "1", "4.5000")
	wantRow(t, figs["plot-bpb-routing"], "top2", "4.0312")
	if sz := figs["plot-sizes"]; sz.source != "routing-history.jsonl" || sz.series != 3 {
		t.Errorf("plot-sizes: source %q, %d series", sz.source, sz.series)
	}

	// Domains: fit sizes and top terms of the router `cluster fit` wrote,
	// routed sizes of the summary.
	dm := figs["plot-domains"]
	if dm.series != 2 || len(dm.rows) != 3 {
		t.Fatalf("plot-domains: %d series, rows %q", dm.series, dm.rows)
	}
	rm, err := cluster.LoadRouter(filepath.Join(dir, "router"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rm.Domains() {
		id := strconv.Itoa(d.ID)
		wantRow(t, dm, id, strconv.Itoa(d.Size), strconv.FormatInt(synthSummary().Domains[d.ID].Size, 10), "640")
		if len(d.TopTerms) == 0 || rowsByFirst(dm)[id][5] != strings.Join(d.TopTerms, " ") {
			t.Errorf("domain %s: top terms %q, want %q", id, rowsByFirst(dm)[id][5], d.TopTerms)
		}
	}
	if ls := figs["plot-loss"]; ls.series != 5 {
		t.Errorf("plot-loss: %d series, want 5", ls.series)
	}

	// A second report replaces the file atomically; --file goes elsewhere.
	other := filepath.Join(t.TempDir(), "r.html")
	r := mustCLI(t, "report", "--out", dir, "--file", other, "--log-level", "error")
	if want := "report: " + other + " (5 plots; not shown: routing-history.jsonl)\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if st, err := os.Stat(other); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v %v", other, st, err)
	}
}

func TestReportMissingInputs(t *testing.T) {
	// Experts only, as `pipeline train` leaves.
	dir := t.TempDir()
	writeExpert(t, dir, "0", lossPoints(4, 4, 3))
	writeExpert(t, dir, "dense", lossPoints(8, 4, 2.5))
	res, page := reportOn(t, dir)
	if res.Plots != 1 || !slices.Equal(res.Missing, []string{"summary.json", "router/", "routing-history.jsonl"}) {
		t.Fatalf("report = %+v, want 1 plot (loss) and the summary, router and history missing", res)
	}
	if figs := parseReport(t, page); len(figs) != 1 || figs["plot-loss"].series != 2 {
		t.Fatalf("figures %v, want plot-loss only", figs)
	}
	for _, m := range res.Missing {
		if !strings.Contains(page, `data-missing="`+m+`"`) {
			t.Errorf("page does not say %s is missing", m)
		}
	}
	r := mustCLI(t, "report", "--out", dir, "--log-level", "error")
	if want := "report: " + filepath.Join(dir, "report.html") + " (1 plot; not shown: summary.json, router/, routing-history.jsonl)\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}

	// A summary alone: sizes fall back to bars of the routed sizes; a
	// damaged one is reported, not fatal, when something else is there.
	dir = t.TempDir()
	b, _ := json.Marshal(synthSummary())
	writeFile(t, filepath.Join(dir, "summary.json"), b)
	res, page = reportOn(t, dir)
	if res.Plots != 4 {
		t.Errorf("plots = %d, want 4 (no loss)", res.Plots)
	}
	if sz := parseReport(t, page)["plot-sizes"]; sz.source != "summary.json" || len(sz.rows) != 3 {
		t.Errorf("plot-sizes fallback: source %q rows %q", sz.source, sz.rows)
	}
	writeFile(t, filepath.Join(dir, "summary.json"), []byte("{"))
	writeExpert(t, dir, "0", lossPoints(4, 4, 3))
	_, page = reportOn(t, dir)
	if !strings.Contains(page, "damaged") {
		t.Error("the damaged summary.json is not reported")
	}
}

func TestReportErrors(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, 2, "--out is required"},
		{[]string{"report", "--out", empty, "extra"}, 2, "takes no arguments"},
		{[]string{"report", "--out", empty}, 1, "holds no run output"},
		{[]string{"report", "--out", filepath.Join(empty, "nope")}, 1, "no such file or directory"},
	} {
		r := cli(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "report") {
			t.Errorf("pipeline %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "report.html")); err == nil {
		t.Error("a report was written for an empty dir")
	}
}

// TestReportRun reports on the output of a small real `pipeline run`.
func TestReportRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole job (about 5 s)")
	}
	dir := t.TempDir()
	r := mustCLI(t, "run", "--input", fixture, "--out", dir, "--k", "3", "--tokens-per-domain", "20000",
		"--seed-tokens", "10000", "--eval-docs", "5", "--log-level", "warn", "--json")
	var sum runSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	res, page := reportOn(t, dir)
	if res.Plots != len(runFigureIDs) {
		t.Fatalf("plots = %d, want %d; missing %q", res.Plots, len(runFigureIDs), res.Missing)
	}
	figs := parseReport(t, page)
	for _, id := range runFigureIDs {
		if _, ok := figs[id]; !ok {
			t.Fatalf("no figure %s", id)
		}
	}
	if !strings.Contains(page, `<td data-count="docs_in">`+strconv.FormatInt(sum.DocsIn, 10)+`</td>`) {
		t.Error("docs in not in the header")
	}
	dm := figs["plot-domains"]
	for _, d := range sum.Domains {
		row := rowsByFirst(dm)[strconv.Itoa(d.ID)]
		if row == nil || row[2] != strconv.FormatInt(d.Size, 10) || row[5] != strings.Join(d.TopTerms, " ") || len(d.TopTerms) == 0 {
			t.Errorf("domain %d: row %q, want routed %d and terms %q", d.ID, row, d.Size, d.TopTerms)
		}
	}
	if ls := figs["plot-loss"]; ls.series != len(sum.Domains)+2 {
		t.Errorf("plot-loss: %d series, want %d experts + seed + dense", ls.series, len(sum.Domains))
	}
	for _, e := range sum.Eval.ExpertBPB {
		wantRow(t, figs["plot-bpb-experts"], e.Expert, fmt4(e.BPB))
	}
	wantRow(t, figs["plot-bpb-experts"], "dense", fmt4(*sum.Eval.DenseBPB))
	for _, c := range []string{"top1", "top2", "all"} {
		wantRow(t, figs["plot-bpb-routing"], c, fmt4(sum.Eval.MixtureBPB[c]))
	}

	// Progress on stderr (not a terminal: plain lines, no bar), one line
	// per phase in order, one per expert.
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("progress on a non-terminal has carriage returns or escapes: %q", r.stderr)
	}
	last := -1
	for _, ph := range []string{"split", "ingest", "fit", "route", "count", "train seed", "train experts", "train dense", "eval"} {
		line := "run: " + ph + ": "
		i := strings.Index(r.stderr, line)
		if i < 0 || strings.Count(r.stderr, line) != 1 || i < last {
			t.Errorf("stderr: phase line %q missing, repeated or out of order:\n%s", line, r.stderr)
		}
		last = i
	}
	for _, d := range sum.Domains {
		if !strings.Contains(r.stderr, fmt.Sprintf("run:   expert %d: ", d.ID)) {
			t.Errorf("stderr: no line for expert %d:\n%s", d.ID, r.stderr)
		}
	}
	if !regexp.MustCompile(`run: train experts: [0-9.]+ kB in [0-9.]+s \([0-9.]+ kB/s\)`).MatchString(r.stderr) {
		t.Errorf("stderr: no rate on the training line:\n%s", r.stderr)
	}

	// Sizes at fit, sources, branch points, phases, settings and dead
	// letters from the real run.
	src := figs["plot-sources"]
	var all int64
	for _, d := range sum.Domains {
		var n int64
		for _, c := range d.Sources {
			n += c
		}
		all += n
		row := rowsByFirst(dm)[strconv.Itoa(d.ID)]
		if n != d.Size || d.SizeAtFit <= 0 || row == nil || row[1] != strconv.FormatInt(d.SizeAtFit, 10) {
			t.Errorf("domain %d: sources %v (sum %d), size %d, at fit %d, row %q", d.ID, d.Sources, n, d.Size, d.SizeAtFit, row)
		}
		if srow := rowsByFirst(src)[strconv.Itoa(d.ID)]; srow == nil || srow[len(srow)-2] != strconv.FormatInt(d.Size, 10) {
			t.Errorf("plot-sources: domain %d row %q, want total %d", d.ID, srow, d.Size)
		}
		wantRow(t, figs["plot-loss"], strconv.Itoa(d.ID), "seed", strconv.FormatInt(sum.SeedTokens, 10))
	}
	if all != sum.DocsRouted || src.series < 2 {
		t.Errorf("sources: %d documents in %d series, want %d routed from several sources", all, src.series, sum.DocsRouted)
	}
	wantRow(t, figs["plot-loss"], "dense", "seed", strconv.FormatInt(sum.SeedTokens, 10))
	wantRow(t, figs["plot-loss"], "seed", "–", "0")
	if ph := figs["plot-phases"]; rowsByFirst(ph)["train experts"] == nil || len(ph.rows) != len(sum.Phases) {
		t.Errorf("plot-phases rows %q, want the %d phases %v", ph.rows, len(sum.Phases), sum.Phases)
	}
	for _, want := range []string{`<section id="settings"`, "<td>k</td><td>3</td>", "<td>tokens_per_domain</td><td>20000</td>",
		`<section id="deadletters"`, "No dead letters"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if len(sum.Resumed) != 0 || sum.InvocationSeconds != sum.Seconds {
		t.Errorf("a fresh run: resumed %q, seconds %v of the job and %v of the invocation", sum.Resumed, sum.Seconds, sum.InvocationSeconds)
	}

	// The same command again resumes a finished job: its progress lines
	// say that each phase was done before, and the summary keeps the
	// phase seconds of the first run for the phases it did not redo.
	r2 := mustCLI(t, "run", "--input", fixture, "--out", dir, "--k", "3", "--tokens-per-domain", "20000",
		"--seed-tokens", "10000", "--eval-docs", "5", "--log-level", "warn", "--json")
	var sum2 runSummary
	if err := json.Unmarshal([]byte(r2.stdout), &sum2); err != nil {
		t.Fatal(err)
	}
	wantResumed := []string{"ingest", "fit", "route", "train_seed", "train_experts", "train_dense", "eval"}
	if !slices.Equal(sum2.Resumed, wantResumed) {
		t.Errorf("resumed %q, want %q", sum2.Resumed, wantResumed)
	}
	for _, k := range wantResumed {
		if sum2.Phases[k] != sum.Phases[k] {
			t.Errorf("phase %s: %v s after the resume, %v s in the run that did it", k, sum2.Phases[k], sum.Phases[k])
		}
	}
	if sum2.InvocationSeconds >= sum2.Seconds || sum2.Seconds < sum.Phases["train_experts"] {
		t.Errorf("after the resume: %v s of the job, %v s of the invocation; the first run trained the experts for %v s",
			sum2.Seconds, sum2.InvocationSeconds, sum.Phases["train_experts"])
	}
	for _, line := range []string{"run: ingest: already done (", "run: fit: already done (", "run: route: already done (",
		"run: train seed: already done (" + humanBytes(sum.SeedTokens) + ")", "run: train experts: already done (", "run: train dense: already done (",
		"run: eval: already done (5 documents)"} {
		if !strings.Contains(r2.stderr, line) {
			t.Errorf("resumed run's stderr lacks %q:\n%s", line, r2.stderr)
		}
	}
	for _, d := range sum.Domains {
		if !strings.Contains(r2.stderr, fmt.Sprintf("run:   expert %d: already done (", d.ID)) {
			t.Errorf("resumed run's stderr: expert %d not already done:\n%s", d.ID, r2.stderr)
		}
	}
	if regexp.MustCompile(`run: (ingest|train \w+): [0-9.]+ (documents|kB) in`).MatchString(r2.stderr) {
		t.Errorf("the resumed run reports work it did not do:\n%s", r2.stderr)
	}
	_, page2 := reportOn(t, dir)
	figs2 := parseReport(t, page2)
	if row := rowsByFirst(figs2["plot-phases"])["train experts"]; row == nil || row[1] != strconv.FormatFloat(sum.Phases["train_experts"], 'f', 2, 64) {
		t.Errorf("plot-phases after the resume: train experts row %q, want the first run's %.2f s", row, sum.Phases["train_experts"])
	}
}

// TestPrintRunSummary: the text summary names its sizes, calls bytes
// bytes, labels the units of loss against bits per byte, says the dense
// baseline continues the seed and, when the dense model wins, why.
func TestPrintRunSummary(t *testing.T) {
	s := synthSummary()
	s.Domains[0].SizeAtFit, s.Domains[0].Sources = 35, map[string]int64{"go": 38, "wiki": 2}
	s.DeadletterReasons = map[string]int64{"invalid-json": 3}
	for _, c := range []struct {
		name   string
		dense  float64
		wants  []string
		absent []string
	}{
		{"the mixture wins", 4.125, []string{"ROUTED", "AT FIT", "TRAIN BYTES", "TRAIN LOSS (nats/B)", "HELD-OUT BITS/BYTE",
			"Lower is better", "dense baseline (continues the seed: +1.9 kB)", "dense seed (320 B)", "go 38, wiki 2",
			"0       40      35", "invalid-json        3", "The router mixture beats the dense baseline"}, []string{"TOKENS", "tokens"}},
		{"the dense model wins", 3.5, []string{"The dense baseline wins at this small compute: each expert trained on only 640 B",
			"pipeline run --input CORPUS --featurizer lsa --k 5 --seed-tokens 8000000 --tokens-per-domain 1600000", "BENCHMARKS.md §8"}, []string{"beats", "cbtm.sh"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.Eval.DenseBPB = f64(c.dense)
			var out bytes.Buffer
			(&app{stdout: &out}).printRunSummary(s)
			for _, w := range c.wants {
				if !strings.Contains(out.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.absent {
				if strings.Contains(out.String(), w) {
					t.Errorf("summary has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestPrintRunSummaryUntrained: a model that trained on no byte shows its
// loss as "-", not 0.000, and with nothing held out there is no empty
// held-out table, but a line saying why.
func TestPrintRunSummaryUntrained(t *testing.T) {
	s := synthSummary()
	s.Domains[1].Tokens, s.Domains[1].Loss = 0, 0
	s.Eval = runEval{}
	var out bytes.Buffer
	(&app{stdout: &out}).printRunSummary(s)
	got := out.String()
	if !regexp.MustCompile(`(?m)^1 +30 +0 +0 B +- +- `).MatchString(got) {
		t.Errorf("the untrained domain 1 has no \"-\" loss:\n%s", got)
	}
	if !regexp.MustCompile(`(?m)^0 +40 +0 +640 B +2\.500 `).MatchString(got) {
		t.Errorf("the trained domain 0 lost its loss:\n%s", got)
	}
	if strings.Contains(got, "MODEL") || !strings.Contains(got, "no document was held out") {
		t.Errorf("with nothing evaluated, the held-out table:\n%s", got)
	}
}
