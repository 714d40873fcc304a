package flow

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Progress is one report of how far a phase of a Job has come, for
// Job.Progress. Each phase reports zero or more updates and then one report
// with End set, in this order: split, ingest, fit, route, count, then with
// Train: train seed, train experts, train dense, eval (a phase the job
// skips, such as the seed with SeedTokens 0 or one a resumed run finds
// done, still ends, with Done 0 or what is on disk). The second phase of a
// continuous job (Job.Then) reports its ingest and route as "then: ingest"
// and "then: route".
type Progress struct {
	// Phase names the phase: "split", "ingest", "fit", "route", "count",
	// "train seed", "train experts", "train dense", "eval".
	Phase string
	// Item names one part of a phase that has several: the expert (a
	// domain id) within "train experts". "" is the whole phase: its Done
	// and Total sum over the items.
	Item string
	// Done of Total units so far (Total 0: unknown). Unit is "documents"
	// or "bytes" (training bytes; the experts are byte-level, a token is a
	// byte), "" for a phase with nothing to count (fit, count).
	Done, Total int64
	Unit        string
	// Elapsed is the wall time since the phase (not the item) began.
	Elapsed time.Duration
	// End marks the last report of the phase or of the item.
	End bool
}

// progressTick is how often the phases that poll (route, training) report.
const progressTick = 250 * time.Millisecond

// progressReporter calls a Job's Progress function one call at a time.
// Its methods are safe on a nil *progressReporter (no Progress set).
type progressReporter struct {
	mu     sync.Mutex
	fn     func(Progress)
	prefix string    // "then: " in the second phase of a continuous job
	start  time.Time // of the current phase
}

func newProgressReporter(fn func(Progress)) *progressReporter {
	if fn == nil {
		return nil
	}
	return &progressReporter{fn: fn, start: time.Now()}
}

// begin marks the start of a phase (Elapsed counts from here).
func (r *progressReporter) begin() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.start = time.Now()
	r.mu.Unlock()
}

// report sends p, stamped with the phase's elapsed time.
func (r *progressReporter) report(p Progress) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p.Phase = r.prefix + p.Phase
	p.Elapsed = time.Since(r.start)
	r.fn(p)
}

// setPrefix names the phases reported from now on prefix + name.
func (r *progressReporter) setPrefix(prefix string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.prefix = prefix
	r.mu.Unlock()
}

// phaseClock times the phases of a job (Summary.Phases) and reports each
// one's end to the progress reporter.
type phaseClock struct {
	times map[string]float64
	start time.Time
	prog  *progressReporter
}

func newPhaseClock(prog *progressReporter) *phaseClock {
	return &phaseClock{times: map[string]float64{}, start: time.Now(), prog: prog}
}

// end records the wall time of phase key since the previous end (or the
// start), reports the end of the phase named name with done of total units,
// and starts the clock of the next phase.
func (c *phaseClock) end(key, name string, done, total int64, unit string) {
	c.times[key] = time.Since(c.start).Seconds()
	c.prog.report(Progress{Phase: name, Done: done, Total: total, Unit: unit, End: true})
	c.start = time.Now()
	c.prog.begin()
}

// watchTraining reports the training bytes of the experts in budgets (name
// → budget) every progressTick, as the training consumers publish them on
// reg (their domainflow_expert_tokens series), until the returned stop is
// called; stop reports each expert's end (items only: the phase's own end
// is the phase clock's). phase is the Progress.Phase; with one expert
// only the phase is reported, not the item.
func (r *progressReporter) watchTraining(ctx context.Context, phase string, reg *prometheus.Registry, budgets map[string]int64) (stop func()) {
	if r == nil {
		return func() {}
	}
	var total int64
	for _, b := range budgets {
		total += b
	}
	items := len(budgets) > 1
	ended := map[string]bool{}
	poll := func(final bool) {
		done := trainedBytes(reg)
		var sum int64
		for name, b := range budgets {
			d := min(done[name], b)
			sum += d
			if items && !ended[name] && (d >= b || final) {
				ended[name] = true
				r.report(Progress{Phase: phase, Item: name, Done: d, Total: b, Unit: "bytes", End: true})
			}
		}
		if !final {
			r.report(Progress{Phase: phase, Done: sum, Total: total, Unit: "bytes"})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				poll(false)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		poll(true)
	}
}

// trainedBytes reads the domainflow_expert_tokens series of reg: the
// training bytes per expert.
func trainedBytes(reg *prometheus.Registry) map[string]int64 {
	out := map[string]int64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "domainflow_expert_tokens" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "expert" {
					out[l.GetValue()] = int64(m.GetGauge().GetValue())
				}
			}
		}
	}
	return out
}

// expertBudgets is the budget map of watchTraining for domain experts.
func expertBudgets(ids []int, budget int64) map[string]int64 {
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		out[strconv.Itoa(id)] = budget
	}
	return out
}
