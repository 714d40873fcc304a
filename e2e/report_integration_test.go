//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// reportFigureIDs are the figures `pipeline report` draws for a complete
// run output (its routing stage judges novelty: plot-novelty; its summary
// has the sources and the phase times: plot-sources, plot-phases).
var reportFigureIDs = []string{"plot-sizes", "plot-novelty", "plot-domains", "plot-sources", "plot-loss", "plot-bpb-experts", "plot-bpb-routing", "plot-phases"}

// chromium returns the headless browser's path; the integration target
// installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium or chromium-browser on PATH: install it with `apt-get install -y chromium` (Debian; .ci/run does)")
	return ""
}

// runChromium runs headless Chromium with args and a fresh profile and
// returns its stdout.
func runChromium(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, chromium(t), append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

var reRendered = regexp.MustCompile(`<figure id="(plot-[a-z-]+)"[^>]*?data-rendered="([a-z]+)"`)

// renderedFigures returns, per figure id of a dumped DOM, the page script's
// verdict: "ok" when the browser decoded the plot with a non-zero size.
func renderedFigures(dom []byte) map[string]string {
	out := map[string]string{}
	for _, m := range reRendered.FindAllSubmatch(dom, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

// TestReportInChromium runs a small job, writes its report and opens it in
// real headless Chromium: every plot must decode with a non-zero size, a
// damaged plot must be seen as such, and a screenshot must show the page.
func TestReportInChromium(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	run := exec.Command(bin, "run", "--input", "../testdata/mixed-small.jsonl.gz", "--out", out, "--k", "3",
		"--tokens-per-domain", "20000", "--seed-tokens", "10000", "--eval-docs", "5", "--log-level", "warn")
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("pipeline run: %v\n%s", err, b)
	}
	rep := exec.Command(bin, "report", "--out", out, "--json", "--log-level", "error")
	b, err := rep.Output()
	if err != nil {
		t.Fatalf("pipeline report: %v", err)
	}
	var res struct {
		File  string `json:"file"`
		Plots int    `json:"plots"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("report output %q: %v", b, err)
	}
	if res.Plots != len(reportFigureIDs) {
		t.Fatalf("report drew %d plots, want %d", res.Plots, len(reportFigureIDs))
	}
	file, err := filepath.Abs(res.File)
	if err != nil {
		t.Fatal(err)
	}

	// Every figure's image decoded in the browser.
	dom := runChromium(t, "--dump-dom", "file://"+file)
	got := renderedFigures(dom)
	for _, id := range reportFigureIDs {
		if got[id] != "ok" {
			t.Errorf("figure %s: data-rendered=%q in Chromium, want ok", id, got[id])
		}
	}
	if len(got) != len(reportFigureIDs) {
		t.Errorf("Chromium saw figures %v, want %v", got, reportFigureIDs)
	}

	// The check can fail: a page whose loss plot is not an image is marked
	// failed.
	page, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	reLoss := regexp.MustCompile(`(<figure id="plot-loss"[^>]*>\s*<img src="data:image/svg\+xml;base64,)[A-Za-z0-9+/=]+`)
	if !reLoss.Match(page) {
		t.Fatal("no inline SVG image in figure plot-loss")
	}
	broken := reLoss.ReplaceAll(page, []byte("${1}"+base64.StdEncoding.EncodeToString([]byte("<svg"))))
	bad := filepath.Join(dir, "broken.html")
	if err := os.WriteFile(bad, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	if v := renderedFigures(runChromium(t, "--dump-dom", "file://"+bad))["plot-loss"]; v != "failed" {
		t.Errorf("a damaged plot: data-rendered=%q, want failed", v)
	}

	// A screenshot shows more than a blank page.
	shot := filepath.Join(dir, "report.png")
	runChromium(t, "--window-size=1200,2400", "--hide-scrollbars", "--screenshot="+shot, "file://"+file)
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 600 || r.Dy() < 600 {
		t.Fatalf("screenshot is %v", r)
	}
	if n := coloredPixels(img); n < 1000 {
		t.Errorf("screenshot has %d colored pixels: the plots did not draw", n)
	}
}

// coloredPixels counts the pixels whose channels differ (not white, grey or
// black): the plots' lines and bars.
func coloredPixels(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bl), min(r, g, bl)
			if hi-lo > 0x3000 {
				n++
			}
		}
	}
	return n
}
