package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// seconds rounds d to milliseconds, in seconds, for reports.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// humanBytes formats n as B, KB, MB or GB (powers of 1000).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGT"[exp])
}

// rate returns n per second over d, 0 for an empty duration.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// plural returns "1 document" or "n documents".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a progress bar on stderr, or nothing when stderr is not a
// terminal. Its methods are safe on a nil *progress.
type progress struct {
	bar *progressbar.ProgressBar
	max int64
	cur int64
}

// newProgress returns a bar counting to max (bytes when asBytes, else rows);
// nil when stderr is not a terminal. max <= 0 shows a spinner.
func (a *app) newProgress(desc string, max int64, asBytes bool) *progress {
	if !isTerminal(a.stderr) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	}
	if asBytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"))
	}
	if max <= 0 {
		max = -1
	}
	return &progress{bar: progressbar.NewOptions64(max, opts...), max: max}
}

// add advances the bar by n, growing its end when an estimate was short.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.cur += n
	if p.max > 0 && p.cur > p.max {
		p.max = p.cur
		p.bar.ChangeMax64(p.max)
	}
	_ = p.bar.Add64(n)
}

// finish completes and clears the bar.
func (p *progress) finish() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
}
