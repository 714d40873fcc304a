package flow

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// Progress is one report of how far a phase of a Job has come, for
// Job.Progress. Each phase reports zero or more updates and then one report
// with End set, in this order: split, ingest, fit, route, count, then with
// Train: train seed, train experts, train dense, eval (a phase the job
// skips, such as the seed with SeedTokens 0, still ends, with Done 0).
// A resumed run (Run again on the same Out) says what an earlier invocation
// did in Resumed and Before: a phase it finds done ends at once with
// Resumed and Done == Before. The second phase of a continuous job
// (Job.Then) reports its ingest and route as "then: ingest" and
// "then: route".
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
	// Resumed marks a phase (or item) that an earlier invocation of the job
	// began: Before of Done are its work, and Done−Before this
	// invocation's. With End, Done == Before means the phase was done
	// before and this invocation only found it done ("already done"); the
	// phase clock then keeps the earlier invocation's seconds
	// (Summary.Resumed). A phase the job always redoes (split, count) is
	// never Resumed.
	Resumed bool
	Before  int64
	// Elapsed is the wall time since the phase (not the item) began.
	Elapsed time.Duration
	// End marks the last report of the phase or of the item.
	End bool
}

// AlreadyDone reports whether p ends a phase (or item) that an earlier
// invocation did in full.
func (p Progress) AlreadyDone() bool { return p.End && p.Resumed && p.Done == p.Before }

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
// one's end to the progress reporter. A phase that this invocation found
// done (a resumed run) keeps the seconds of the invocation that did it, as
// recorded in the output dir's phases file (saved at each phase's end, so
// that a run killed in a later phase keeps them too); see Summary.Phases.
type phaseClock struct {
	times   map[string]float64 // the job's: of the invocation that did each phase
	here    map[string]float64 // this invocation's own
	prev    map[string]float64 // recorded by earlier invocations
	resumed []string           // the phases found done, in order
	start   time.Time
	prog    *progressReporter
	file    string // the phases file; "" saves none
	log     *slog.Logger
}

// phasesFile is where a job records its phase seconds as each phase ends.
const phasesFile = "phases.json"

// phasesRecord is the content of phasesFile.
type phasesRecord struct {
	Phases map[string]float64 `json:"phases"`
}

// newPhaseClock starts the clock of a job writing to out ("": record
// nothing), with the phase seconds earlier invocations recorded there:
// those of phasesFile, else of summary.json's phases.
func newPhaseClock(prog *progressReporter, out string, log *slog.Logger) *phaseClock {
	c := &phaseClock{times: map[string]float64{}, here: map[string]float64{}, prev: map[string]float64{},
		start: time.Now(), prog: prog, log: log}
	if out == "" {
		return c
	}
	c.file = filepath.Join(out, phasesFile)
	for _, f := range []string{c.file, filepath.Join(out, "summary.json")} {
		var rec phasesRecord
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &rec) == nil && len(rec.Phases) > 0 {
			c.prev = rec.Phases
			break
		}
	}
	return c
}

// end records the wall time of phase key since the previous end (or the
// start), reports the end of the phase p (Phase, Done, Total, Unit,
// Resumed, Before), and starts the clock of the next phase. A phase found
// done (p.AlreadyDone) keeps the seconds recorded for it before, if any;
// one this invocation finished after an earlier one began it (p.Resumed)
// adds its seconds to those recorded for it (an invocation stopped in the
// phase's middle records its part when it stops gracefully, none when it
// is killed).
func (c *phaseClock) end(key string, p Progress) {
	secs := time.Since(c.start).Seconds()
	c.here[key] = secs
	c.times[key] = secs
	p.End = true
	if s, ok := c.prev[key]; ok && p.Resumed {
		if p.AlreadyDone() {
			c.times[key] = s
			c.resumed = append(c.resumed, key)
		} else {
			c.times[key] = s + secs
		}
	}
	c.prog.report(p)
	c.save()
	c.start = time.Now()
	c.prog.begin()
}

// save records the phase seconds so far in the phases file; the phases of
// an earlier invocation that this one has not reached yet are kept.
func (c *phaseClock) save() {
	if c.file == "" {
		return
	}
	all := maps.Clone(c.prev)
	maps.Copy(all, c.times)
	b, err := json.Marshal(phasesRecord{Phases: all})
	if err == nil {
		err = schemas.WriteFileAtomic(c.file, func(f *os.File) error { _, err := f.Write(b); return err })
	}
	if err != nil && c.log != nil {
		c.log.Warn("phase seconds not saved for a resumed run", "file", c.file, "err", err)
	}
}

// job returns the job's seconds: this invocation's (secs), with the phases
// it found done counted at their recorded seconds instead of its own
// (Summary.Seconds).
func (c *phaseClock) job(secs float64) float64 {
	for _, k := range c.resumed {
		secs += c.times[k] - c.here[k]
	}
	return secs
}

// watchTraining reports the training bytes of the experts in budgets (name
// → budget) every progressTick, as the training consumers publish them on
// reg (their domainflow_expert_tokens series), and each expert's end as it
// stops: stopped is to be the consumers' ConsumerConfig.Stopped (nil when r
// is nil). It reports until the returned stop is called; stop reports the
// end of the experts that did not stop (items only: the phase's own end is
// the phase clock's). phase is the Progress.Phase; with one expert only
// the phase is reported, not the item.
func (r *progressReporter) watchTraining(ctx context.Context, phase string, reg *prometheus.Registry, budgets map[string]int64) (stopped func(train.ExpertReport), stop func()) {
	if r == nil {
		return nil, func() {}
	}
	var total int64
	for _, b := range budgets {
		total += b
	}
	items := len(budgets) > 1
	var mu sync.Mutex
	ended := map[string]bool{}
	stopped = func(rep train.ExpertReport) {
		b, ok := budgets[rep.Expert]
		mu.Lock()
		defer mu.Unlock()
		if !items || !ok || ended[rep.Expert] {
			return
		}
		ended[rep.Expert] = true
		r.report(Progress{Phase: phase, Item: rep.Expert, Done: rep.Tokens, Total: b, Unit: "bytes",
			Resumed: rep.TokensAtStart > 0, Before: rep.TokensAtStart, End: true})
	}
	poll := func(final bool) {
		done := trainedBytes(reg)
		var sum int64
		mu.Lock()
		defer mu.Unlock()
		for name, b := range budgets {
			d := min(done[name], b)
			sum += d
			if items && final && !ended[name] {
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
	return stopped, func() {
		cancel()
		wg.Wait()
		poll(true)
	}
}

// trainedBytes reads the domainflow_expert_tokens series of reg: the
// training bytes per expert.
func trainedBytes(reg *prometheus.Registry) map[string]int64 {
	return gaugeValues(reg, "domainflow_expert_tokens", "expert")
}

// routedDocuments reads the domainflow_domain_routed_documents series of
// reg, the routing stage's counts (restored across restarts): the documents
// routed in all.
func routedDocuments(reg *prometheus.Registry) int64 {
	var n int64
	for _, c := range gaugeValues(reg, "domainflow_domain_routed_documents", "domain") {
		n += c
	}
	return n
}

// gaugeValues returns the values of the gauge series name of reg by their
// label's value.
func gaugeValues(reg *prometheus.Registry, name, label string) map[string]int64 {
	out := map[string]int64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
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
