package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/domainflow/domainflow/flow"
)

// The --progress modes of `pipeline run`.
const (
	progressAuto  = "auto"  // bars on a terminal, lines otherwise
	progressBars  = "bars"  // a bar per phase (needs a terminal to look right)
	progressLines = "lines" // one plain line per phase, and one per 10 s of a long phase
	progressNone  = "none"
)

// progressEvery is how often the lines mode reports a phase still running.
const progressEvery = 10 * time.Second

// runProgress renders flow.Job's progress reports on stderr: one line per
// phase (and per expert) as it ends, with its rate; on a terminal also a
// bar for the phase that runs. Lines mode writes plain lines only, which
// read well in a CI log.
type runProgress struct {
	w     io.Writer
	bars  bool
	bar   *progressbar.ProgressBar
	phase string        // of bar, or of the lines mode's last report
	last  time.Time     // the lines mode's last line of the running phase
	first flow.Progress // the lines mode's first report of the running phase
}

// newRunProgress returns the Progress function for mode, nil for none, and
// a function that clears the bar of a phase that will not end (an
// interrupted job).
func (a *app) newRunProgress(mode string) (report func(flow.Progress), clear func(), err error) {
	r := &runProgress{w: a.stderr}
	switch mode {
	case progressAuto:
		r.bars = isTerminal(a.stderr)
	case progressBars:
		r.bars = true
	case progressLines:
	case progressNone:
		return nil, func() {}, nil
	default:
		return nil, nil, usagef("run: --progress %q: want auto, bars, lines or none", mode)
	}
	return r.report, r.clearBar, nil
}

// report handles one progress report.
func (r *runProgress) report(p flow.Progress) {
	switch {
	case p.End && p.Item != "":
		r.clearBar()
		fmt.Fprintf(r.w, "run:   %s: %s\n", itemWord(p.Phase, p.Item), progressLine(p))
	case p.End:
		r.finishBar()
		fmt.Fprintf(r.w, "run: %s: %s\n", p.Phase, progressLine(p))
		r.phase = ""
	case p.Item != "":
		// Items are reported at their end only.
	case r.bars:
		r.updateBar(p)
	default:
		if p.Phase != r.phase {
			r.phase, r.last, r.first = p.Phase, time.Now(), p
		}
		if time.Since(r.last) >= progressEvery {
			r.last = time.Now()
			// The rate is since the phase's first report: in a resumed
			// phase, that report already holds an earlier invocation's
			// work.
			fmt.Fprintf(r.w, "run: %s: %s so far\n", p.Phase, progressRate(p, p.Done-r.first.Done, p.Elapsed-r.first.Elapsed))
		}
	}
}

// itemWord names an item of a phase: "expert 3" in a training phase.
func itemWord(phase, item string) string {
	if strings.HasSuffix(phase, "train experts") {
		return "expert " + item
	}
	return item
}

// progressLine is "75.0 kB of 150.0 kB (50%) in 4.7s (16.0 kB/s)", or for
// documents "300 documents in 0.3s (1000 documents/s)", or "0.1s". A
// resumed run says what this invocation did: "already done (300
// documents)" for a phase an earlier invocation did, "resumed: +30.0 kB in
// 2.0s (15.0 kB/s); 150.0 kB in all" for one it finished.
func progressLine(p flow.Progress) string {
	n := p.Done
	if p.Resumed {
		n -= p.Before
	}
	return progressRate(p, n, p.Elapsed)
}

// progressRate is progressLine with the rate of n units in el.
func progressRate(p flow.Progress, n int64, el time.Duration) string {
	amount := func(n int64) string {
		if p.Unit == "bytes" {
			return humanBytes(n)
		}
		return fmt.Sprintf("%d %s", n, p.Unit)
	}
	of := func(n int64) string {
		s := amount(n)
		if p.Total > 0 && n < p.Total {
			s += fmt.Sprintf(" of %s (%.0f%%)", amount(p.Total), 100*float64(n)/float64(p.Total))
		}
		return s
	}
	if p.AlreadyDone() {
		if p.Unit == "" {
			return "already done"
		}
		return "already done (" + of(p.Done) + ")"
	}
	secs := fmt.Sprintf("%.1fs", p.Elapsed.Seconds())
	if p.Unit == "" {
		return secs
	}
	s := of(p.Done)
	if p.Resumed {
		s = "+" + amount(p.Done-p.Before)
	}
	s += " in " + secs
	if n > 0 && el > 0 {
		if p.Unit == "bytes" {
			s += fmt.Sprintf(" (%s/s)", humanBytes(int64(rate(n, el))))
		} else {
			s += fmt.Sprintf(" (%.0f %s/s)", rate(n, el), p.Unit)
		}
	}
	if p.Resumed {
		s = "resumed: " + s + "; " + of(p.Done) + " in all"
	}
	return s
}

// updateBar shows p on the phase's bar, starting one for a new phase.
func (r *runProgress) updateBar(p flow.Progress) {
	if r.bar == nil || r.phase != p.Phase {
		r.finishBar()
		n := p.Total
		if n <= 0 {
			n = -1 // a spinner
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(r.w),
			progressbar.OptionSetDescription("run: " + p.Phase),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		}
		if p.Unit == "bytes" {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("docs"))
		}
		r.bar, r.phase = progressbar.NewOptions64(n, opts...), p.Phase
	}
	if p.Total > 0 && p.Total != r.bar.GetMax64() {
		r.bar.ChangeMax64(p.Total)
	}
	_ = r.bar.Set64(p.Done)
}

// clearBar removes the bar from the screen; the next update draws it again.
func (r *runProgress) clearBar() {
	if r.bar != nil {
		_ = r.bar.Clear()
	}
}

// finishBar ends and clears the bar.
func (r *runProgress) finishBar() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}
