//go:build reliability

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// TestReliability is the adversarial suite (RELIABILITY.md). It runs the
// pipeline as separate processes (a broker, two embed, three cluster
// processes in one group, a trainer) and, while good documents keep
// arriving, injects every attack of the catalog once in the seed's order,
// then a random mix of them until $DOMAINFLOW_SOAK (a duration, default 0)
// has passed since the first: SIGKILLs and SIGSTOPs of every process, a
// rebalance storm, forged, malformed and over-size messages on every topic,
// damaged files of every input format, a full disk under the trainer.
//
// After the last attack it asserts
//   - liveness: within livenessBound every input record is routed or
//     dead-lettered;
//   - the accounting identity: inputs = routed + dead letters, with repeats
//     only as counted duplicate rows; no input record lost; every good
//     document routed; no record routed to two domains; no routed row without
//     an input record; no forged row routed; every injected message
//     dead-lettered;
//   - exactly once per expert: each expert applied each of its domain's
//     documents once, and no expert exists for a topic that is not a domain;
//   - no stage process exited on its own, none panicked, each stops cleanly.
//
// It prints the run's figures as one line "RELIABILITY {json}" (appended to
// $DOMAINFLOW_RELIABILITY_OUT when set). $DOMAINFLOW_SOAK_SEED replays a
// seed's order of attacks (the timing of the processes is not replayed).
func TestReliability(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DOMAINFLOW_SOAK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DOMAINFLOW_SOAK_SEED=%q: %v", s, err)
		}
		seed = v
	}
	var soak time.Duration
	if s := os.Getenv("DOMAINFLOW_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("DOMAINFLOW_SOAK=%q: %v", s, err)
		}
		soak = d
	}
	t.Logf("seed %d (DOMAINFLOW_SOAK_SEED=%d replays its attacks), soak %v", seed, seed, soak)

	r := newRig(t, seed)
	r.goodWave(60)
	in0, err := r.readInputs()
	if err != nil {
		t.Fatal(err)
	}
	ids := r.domainIDs()
	waitFor(t, 3*time.Minute, "the first wave to be routed, before any attack", func() bool {
		o, err := r.readOutcome(ids)
		return err == nil && settle(in0, o, r.good).lost == 0
	})

	catalog := r.attacks()
	order := rand.New(rand.NewPCG(seed, 8)).Perm(len(catalog))
	chaos := time.Now()
	for i := 0; ; i++ {
		var a attack
		switch {
		case i < len(order):
			a = catalog[order[i]]
		case time.Since(chaos) < soak:
			a = catalog[r.rng.IntN(len(catalog))]
		default:
		}
		if a.run == nil {
			break
		}
		t.Logf("%s attack %d: %s", r.elapsed(), i+1, a.name)
		a.run(r)
		r.revive()
		r.goodWave(40)
		r.revive()
	}
	chaosSeconds := time.Since(chaos).Seconds()
	t.Logf("%s last attack done; liveness bound %v", r.elapsed(), livenessBound)

	// Liveness: every input record routed or dead-lettered within the bound.
	in, err := r.readInputs()
	if err != nil {
		t.Fatal(err)
	}
	var (
		o        *outcome
		b        balance
		liveness = -1.0
	)
	for {
		r.revive()
		var err error
		o, err = r.readOutcome(ids)
		if err == nil {
			b = settle(in, o, r.good)
			if b.lost == 0 && len(b.goodMissing) == 0 {
				liveness = time.Since(r.lastFault).Seconds()
				break
			}
		}
		if time.Since(r.lastFault) > livenessBound {
			r.violation("liveness: %v after the last fault, %d of %d input records are neither routed nor dead-lettered and %d good documents are not routed (read error %v)",
				livenessBound, b.lost, b.documents, len(b.goodMissing), err)
			break
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%s accounted: %d documents, %d routed, %d dead-lettered, %d lost, liveness %.1fs", r.elapsed(), b.documents, b.routed, b.dead, b.lost, liveness)

	// The identity and the no-double-placement half.
	if b.lost > 0 {
		r.violation("%d input records lost (neither routed nor dead-lettered), e.g. %v", b.lost, b.lostEx)
	}
	if len(b.goodMissing) > 0 {
		r.violation("%d good documents not routed, e.g. %v", len(b.goodMissing), b.goodMissing[:min(8, len(b.goodMissing))])
	}
	if b.doubly > 0 {
		r.violation("%d input records routed to two or more domains, e.g. %v", b.doubly, b.doublyEx)
	}
	if b.phantoms > 0 {
		r.violation("%d routed rows have an origin no input record has, e.g. %v", b.phantoms, b.phantomEx)
	}
	if len(b.mislabelled) > 0 {
		r.violation("%d messages without a value were dead-lettered under another reason than %s: %v", len(b.mislabelled), schemas.ReasonEmptyMessage, b.mislabelled)
	}
	if len(o.forgedRouted) > 0 {
		r.violation("%d forged rows (impossible origin or non-finite features) were routed: %v", len(o.forgedRouted), o.forgedRouted[:min(8, len(o.forgedRouted))])
	}
	if o.garbage > 0 {
		r.violation("%d messages the routing stage wrote to domain topics do not decode as routed rows", o.garbage)
	}
	deadFiles := map[string]bool{}
	for _, dl := range o.dead {
		if dl.reason == "" {
			r.violation("a dead letter from %s has no reason (origin %+v)", dl.stage, dl.origin)
		}
		deadFiles[dl.origin.topic] = true
	}
	for _, f := range r.deadFiles {
		if !deadFiles[f] {
			r.violation("no record of %s was dead-lettered", f)
		}
	}

	// Exactly once per expert.
	mismatch := r.checkExperts(o, b, ids)

	// Every message injected on docs.features or a domain topic was
	// dead-lettered (or, on docs.features, routed), now that the last
	// trainer has read everything.
	if o2, err := r.readOutcome(ids); err != nil {
		t.Fatal(err)
	} else {
		o.dead = o2.dead
	}
	unaccounted := 0
	for _, topic := range append([]string{pipeline.TopicFeatures}, domainTopics(ids)...) {
		n, ex, err := r.injected(topic, o)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		if n > 0 {
			r.violation("%d injected messages on %s were silently dropped, e.g. %v", n, topic, ex)
		}
		unaccounted += n
	}

	r.stopAll()
	r.panics()
	recovered := 0
	for _, p := range r.all {
		recovered += strings.Count(p.out.String(), "stage panicked")
	}

	f := figures{
		Test: "TestReliability", Date: time.Now().UTC().Format("2006-01-02"), CPU: cpuModel(), Seed: seed,
		ChaosSeconds: round1(chaosSeconds), Documents: b.documents, Good: len(r.good), Routed: b.routed, DeadLettered: b.dead,
		Faults: r.faults, Lost: b.lost, GoodNotRouted: len(b.goodMissing), Duplicated: b.duplicated, DoublyPlaced: b.doubly,
		Phantoms: b.phantoms, ForgedRouted: len(o.forgedRouted), Unaccounted: unaccounted, ExpertMismatch: mismatch,
		UnexpectedExits: r.exits, RecoveredPanics: recovered, LivenessSeconds: round1(liveness), DeadByReason: b.deadByReason,
		Violations: len(r.violations),
	}
	for _, n := range r.faults {
		f.FaultsTotal += n
	}
	f.print(t)
	if len(r.violations) > 0 {
		t.Errorf("%d violations of the delivery contract:\n- %s", len(r.violations), strings.Join(r.violations, "\n- "))
	}
}

// checkExperts stops the trainer, lets one trainer consume the rest and
// exit, and checks that each expert applied each of its domain's input
// records exactly once and that no expert exists but the router's domains.
// It returns the number of experts that differ.
func (r *rig) checkExperts(o *outcome, b balance, ids []int) int {
	for _, p := range r.roles["train"].slots {
		r.killed[p] = true // stopped on purpose from here on
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				// E.g. an expert that stopped on the full disk while
				// the process ran on: its error only shows now.
				r.violation("%s exited with %v after SIGTERM:\n%s", p.name, p.err, tail(p.out.String(), 1000))
			}
		case <-time.After(45 * time.Second):
			r.violation("%s did not stop within 45 s of SIGTERM", p.name)
			p.kill()
		}
	}
	delete(r.roles, "train")
	if r.disk != nil {
		_ = r.disk.free()
	}
	final := r.spawn("train (final)", append(r.trainArgs(), "--exit-on-idle", "3s")...)
	select {
	case <-final.done:
		if final.err != nil {
			r.violation("final train: %v\n%s", final.err, tail(final.out.String(), 1500))
		}
	case <-time.After(4 * time.Minute):
		r.violation("the final trainer did not finish within 4 min")
		final.kill()
	}
	want := map[int]int64{}
	for k, domains := range o.routed {
		if !b.expected[k] {
			continue
		}
		for d := range domains {
			want[d]++
		}
	}
	mismatch := 0
	for _, d := range ids {
		c, _, err := train.LoadLatestCheckpoint(filepath.Join(r.out, "experts", strconv.Itoa(d)))
		switch {
		case err != nil || c == nil:
			if want[d] > 0 {
				mismatch++
				r.violation("expert %d has no valid checkpoint (%v) though its domain holds %d documents", d, err, want[d])
			}
		case c.Meta.Docs != want[d]:
			mismatch++
			r.violation("expert %d applied %d documents; its domain holds %d distinct input records", d, c.Meta.Docs, want[d])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(r.out, "experts"))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // experts remove moves experts to .removed/
		}
		if d, err := strconv.Atoi(name); err != nil || strconv.Itoa(d) != name || !slices.Contains(ids, d) {
			r.violation("an expert %q exists, but the router's domains are %v", name, ids)
		}
	}
	return mismatch
}

// domainIDs returns the domain ids of the router the stages use.
func (r *rig) domainIDs() []int {
	v, err := cluster.LatestRouterVersion(r.router)
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := cluster.LoadRouter(r.router, v)
	if err != nil {
		r.t.Fatal(err)
	}
	return slices.Sorted(slices.Values(m.IDs))
}

func domainTopics(ids []int) []string {
	var out []string
	for _, d := range ids {
		out = append(out, pipeline.DomainTopic(d))
	}
	return out
}

func (f figures) print(t *testing.T) { printReliability(t, f) }

// printReliability prints v as one line "RELIABILITY {json}", appended to
// $DOMAINFLOW_RELIABILITY_OUT when set.
func printReliability(t *testing.T, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	line := "RELIABILITY " + string(b)
	fmt.Println(line)
	if path := os.Getenv("DOMAINFLOW_RELIABILITY_OUT"); path != "" {
		fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("DOMAINFLOW_RELIABILITY_OUT: %v", err)
			return
		}
		defer fh.Close()
		fmt.Fprintln(fh, line)
	}
}

// cpuModel is the first "model name" of /proc/cpuinfo with the CPU count.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	model, n := "unknown", 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			if n == 0 {
				model = strings.TrimSpace(v)
			}
			n++
		}
	}
	return fmt.Sprintf("%s (%d CPUs)", model, n)
}

func round1(x float64) float64 { return float64(int64(x*10+0.5*sign(x))) / 10 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}
