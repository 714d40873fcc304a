//go:build reliability

package e2e

import (
	"bufio"
	"context"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// The corpora of TestGrowthKills: A (the router is fitted on it and it
// flows first) and B, whose sources A lacks (it flows second, and grows
// domains).
var (
	growthA = []string{"brown", "sotu", "spam-assassin"}
	growthB = []string{"go-source", "moby-dick"}
)

const (
	growthGroup  = "cluster" // the routing stage's default group
	growthWaves  = 16        // B arrives in this many waves …
	growthCopies = 8         // … of growthCopies copies of B in all, with fresh ids
	// growthBound is how long after the last fault the stages have to
	// commit everything (a few session timeouts and backoffs).
	growthBound = 90 * time.Second
)

// TestGrowthKills tries to break the exactly-once contract of growth
// (issue 15): the documents parked on docs.novel and then moved into grown
// domains are placed exactly once across SIGKILLs of the routing stage
// processes and of the broker process; nothing is counted twice or lost;
// domain ids stay stable.
//
// A broker process, one embedding process and two routing processes in one
// group with --grow (so the mover, consumer group <group>.novel, moves
// between processes) run the rig's pipeline, in small batches. The router
// is fitted on corpus A, A flows, then B (sources A lacks, eight copies with
// fresh ids) flows in 16 waves. Meanwhile, with a seeded choice of victims
// and delays: a routing process (both, one time in four) is SIGKILLed
// every 2–5 s, the moment the group is seen working through a backlog, and
// restarted within 0.8 s; the broker is SIGKILLed once while a backlog is
// worked through and restarted on its data; and the moment a new router
// version appears in the router dir (the mover has just saved a growth and
// is publishing it and moving the pending rows), within 0.3 s, both routing
// processes, the broker, or all three are SIGKILLed. Then a last wave
// flows without faults.
//
// Once every stage (embedding, routing, mover) has committed the end of its
// input, it reads every domain topic the way the trainers do — a row at or
// below the last origin position applied from its origin partition is
// skipped — and asserts:
//   - no row is skipped that is not a duplicate of one applied before (a
//     trainer would lose it), and no origin partition is spread over two
//     partitions of a domain topic (what a trainer skips would then depend
//     on how it interleaves them);
//   - the mover's saved state is at the end of docs.novel;
//   - every input document is in exactly one domain, or pending in the
//     mover's saved state, or dead-lettered; none is in two domains, none
//     both placed and pending, no placed row lacks an input document, no
//     domain topic outside the router holds rows;
//   - ids are stable: each router version keeps the previous one's ids and
//     centroids, a growth's new ids were never used before and are the ones
//     its Growth record names, growth points (Growth.Seen) increase;
//   - the mover's counters match the topics: growths adopted = grown router
//     versions, forwarded + moved = distinct rows in grown domains,
//     read = forwarded + moved + pending + dead;
//   - at least one growth happened and rows were moved.
//
// $DOMAINFLOW_GROWTH_SEED replays a seed's choice of faults (not the
// processes' timing). It prints its figures as one line "RELIABILITY {json}".
func TestGrowthKills(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DOMAINFLOW_GROWTH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DOMAINFLOW_GROWTH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (DOMAINFLOW_GROWTH_SEED=%d replays its faults)", seed, seed)
	r := startRig(t, seed)

	fileA := filepath.Join(r.dir, "a.jsonl")
	writeSourceDocs(t, fileA, sourceDocs(t, growthA), "a", 0, -1)
	fit := r.spawn("cluster fit", "cluster", "fit", "--in", fileA, "--k", "3", "--out", r.router, "--seed", "1", "--log-level", "warn")
	<-fit.done
	if fit.err != nil {
		t.Fatalf("cluster fit: %v\n%s", fit.err, fit.out.String())
	}
	pipetest.CreateTopics(t, r.cc, rigParts, pipeline.TopicRaw, pipeline.TopicFeatures, pipeline.TopicDeadLetter)
	// Small batches: many commits, so that a kill lands between a batch's
	// outputs and its commit now and then.
	r.addRole("embed", 1, "embed", "--brokers", r.addr, "--state", r.router, "--linger", "20ms", "--batch-records", "4",
		"--workers", "1", "--log-level", "warn")
	r.addRole("cluster", 2, "cluster", "--brokers", r.addr, "--router", r.router, "--group", growthGroup, "--linger", "20ms",
		"--batch-records", "2", "--grow", "--grow-min", "40", "--grow-min-size", "15", "--log-level", "info")

	r.ingest("A", true, fileA)
	waitFor(t, growthBound, "A routed and committed", func() bool { return r.growthSettled() })
	v0, err := cluster.LatestRouterVersion(r.router)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s A routed with router v%d", r.elapsed(), v0)

	// B in waves, under the faults.
	ch := &growthChaos{r: r, rng: rand.New(rand.NewPCG(seed, 15)), version: v0}
	ch.arm()
	docsB := sourceDocs(t, growthB)
	total := growthCopies * len(docsB)
	per := (total + growthWaves - 1) / growthWaves
	brokerWave := growthWaves/2 + ch.rng.IntN(growthWaves/2)
	for w := range growthWaves {
		f := filepath.Join(r.dir, fmt.Sprintf("b%02d.jsonl", w))
		writeSourceDocs(t, f, docsB, "b", w*per, min(per, total-w*per))
		r.ingest(filepath.Base(f), true, f)
		if w == brokerWave && !ch.brokerKilled {
			// While the routing stage or the mover works through a
			// backlog, if it is seen doing so within 1.5 s.
			for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end) && !ch.inFlight(); {
				time.Sleep(50 * time.Millisecond)
			}
			ch.killBroker("B flowing")
		}
		ch.run(time.Duration(1500+ch.rng.IntN(1500)) * time.Millisecond)
	}
	ch.run(5 * time.Second)
	t.Logf("%s last fault; %d growths seen during the faults", r.elapsed(), ch.growths)

	// Everything committed: the embedding, routing and mover groups at the
	// ends of their inputs.
	r.settleGrowth()
	settle := time.Since(r.lastFault).Seconds()
	t.Logf("%s everything committed, %.1fs after the last fault", r.elapsed(), settle)
	// The stream goes on: a last wave, without faults. A mover restored
	// from a snapshot older than its group's committed input (one saved
	// late by a process that had lost the parked partition) catches up at
	// its next parked record; until then its saved state is behind.
	tailFile := filepath.Join(r.dir, "tail.jsonl")
	writeSourceDocs(t, tailFile, docsB, "t", 0, 20)
	r.ingest("tail", true, tailFile)
	r.settleGrowth()

	l := r.growthLedger()
	r.stopAll()
	r.panics()
	grownLogs, lateLogs, catchUps := 0, 0, 0
	for _, p := range r.all {
		grownLogs += strings.Count(p.out.String(), "domains grown from novel documents")
		lateLogs += strings.Count(p.out.String(), "adopting a growth past the point")
		catchUps += strings.Count(p.out.String(), "the mover's state is behind its input")
	}
	f := growthFigures{Test: "TestGrowthKills", Date: time.Now().UTC().Format("2006-01-02"), CPU: cpuModel(), Seed: seed,
		Documents: l.documents, Placed: l.placed, Pending: len(l.state.Pending), DeadLettered: l.dead,
		DuplicateRows: l.duplicates, Faults: r.faults, Growths: len(l.growths), GrowthLogs: grownLogs, LateAdoptions: lateLogs, CatchUps: catchUps,
		NewDomains: l.newIDs, Moved: l.state.Stats.Moved, Forwarded: l.state.Stats.Forwarded, ParkedDups: l.state.Stats.Duplicates, InGrown: l.inGrown,
		SettleSeconds: round1(settle), Violations: len(r.violations)}
	for _, n := range r.faults {
		f.FaultsTotal += n
	}
	printReliability(t, f)
	if len(r.violations) > 0 {
		t.Errorf("%d violations of the exactly-once contract of growth:\n- %s", len(r.violations), strings.Join(r.violations, "\n- "))
	}
}

// growthFigures are the numbers of one run of TestGrowthKills.
type growthFigures struct {
	Test          string         `json:"test"`
	Date          string         `json:"date"`
	CPU           string         `json:"cpu"`
	Seed          uint64         `json:"seed"`
	Documents     int            `json:"documents"`      // input documents
	Placed        int            `json:"placed"`         // in one domain (after the trainers' deduplication)
	Pending       int            `json:"pending"`        // in the mover's saved state
	DeadLettered  int            `json:"dead_lettered"`  // distinct input documents
	DuplicateRows int            `json:"duplicate_rows"` // rows on domain topics the deduplication dropped
	FaultsTotal   int            `json:"faults"`
	Faults        map[string]int `json:"faults_by_kind"`
	Growths       int            `json:"growths"`        // grown router versions
	GrowthLogs    int            `json:"growth_logs"`    // "domains grown" log lines (a growth made again after a crash counts twice)
	LateAdoptions int            `json:"late_adoptions"` // growths adopted past the point they were made at
	CatchUps      int            `json:"catch_ups"`      // movers restored from a stale snapshot that replayed the parked records in between
	NewDomains    []int          `json:"new_domains"`
	Moved         int64          `json:"moved"`             // pending rows moved at growths (mover's counter)
	Forwarded     int64          `json:"forwarded"`         // rows forwarded to grown domains as they came
	ParkedDups    int64          `json:"parked_duplicates"` // parked rows the mover dropped as re-sent
	InGrown       int            `json:"in_grown"`          // distinct documents in grown domains
	SettleSeconds float64        `json:"settle_s"`          // last fault → everything committed
	Violations    int            `json:"violations"`
}

// growthChaos injects the faults of TestGrowthKills.
type growthChaos struct {
	r            *rig
	rng          *rand.Rand
	version      int64 // the newest router version seen in the router dir
	growths      int   // new router versions seen
	brokerKilled bool
	atGrowth     []string  // faults not yet used at a growth
	armed        time.Time // when the next routing process may be killed
	progress     int64     // committed offsets of the routing and mover groups, at the last look
}

// arm sets the next kill of a routing process 2–5 s from now: after a
// kill, the group needs a session timeout (6 s) and a rebalance before it
// routes again, and a process killed while its group is stalled has
// nothing in flight.
func (c *growthChaos) arm() {
	c.armed = time.Now().Add(time.Duration(2000+c.rng.IntN(3000)) * time.Millisecond)
}

// run injects faults for d. Once armed, a routing process (both, one time
// in four) is SIGKILLed the moment the group is seen routing or moving a
// backlog (its committed offsets advanced and it still lags), or 3 s
// later, and restarted within 0.8 s. The moment a new router version
// appears in the router dir (the mover has saved a growth and goes on to
// publish it and move the pending rows), within 0.3 s, the next fault of a
// seeded order: both routing processes, the broker, or all three.
func (c *growthChaos) run(d time.Duration) {
	r := c.r
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		if v, err := cluster.LatestRouterVersion(r.router); err == nil && v > c.version {
			c.version = v
			c.growths++
			if len(c.atGrowth) == 0 {
				c.atGrowth = []string{"routing", "broker", "all"}
				c.rng.Shuffle(len(c.atGrowth), func(i, j int) { c.atGrowth[i], c.atGrowth[j] = c.atGrowth[j], c.atGrowth[i] })
			}
			what := c.atGrowth[0]
			c.atGrowth = c.atGrowth[1:]
			time.Sleep(time.Duration(c.rng.IntN(300)) * time.Millisecond)
			r.t.Logf("%s router v%d appeared: SIGKILL %s", r.elapsed(), v, what)
			if what != "broker" {
				c.killRouting(2, "at a growth")
			}
			if what != "routing" {
				c.killBroker("at a growth")
			}
			r.revive()
			c.arm()
			continue
		}
		if now := time.Now(); now.After(c.armed) && (c.inFlight() || now.After(c.armed.Add(3*time.Second))) {
			n := 1
			if c.rng.IntN(4) == 0 {
				n = 2
			}
			c.killRouting(n, "B flowing")
			time.Sleep(time.Duration(c.rng.IntN(800)) * time.Millisecond)
			r.revive()
			c.arm()
		}
	}
	r.revive()
}

// inFlight reports whether the routing or the mover group committed
// something since the last look and still lags: it is working through a
// backlog, so a kill lands between a batch's outputs and its commit.
func (c *growthChaos) inFlight() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var committed, lag int64
	for _, g := range [][2]string{{growthGroup, pipeline.TopicFeatures}, {cluster.MoverGroup(growthGroup), pipeline.TopicNovel}} {
		end, err := pipeline.EndOffsets(ctx, c.r.cc, g[1])
		if err != nil {
			return false
		}
		com, err := pipeline.CommittedOffsets(ctx, c.r.cc, g[0], g[1], len(end))
		if err != nil {
			return false
		}
		for p := range end {
			committed += max(com[p], 0)
			lag += end[p] - max(com[p], 0)
		}
	}
	advanced := committed > c.progress
	c.progress = committed
	return advanced && lag > 0
}

// killRouting SIGKILLs n routing processes (random ones).
func (c *growthChaos) killRouting(n int, when string) {
	ro := c.r.roles["cluster"]
	for _, i := range c.rng.Perm(len(ro.slots))[:n] {
		c.r.kill(ro, i)
	}
	c.r.fault(fmt.Sprintf("sigkill %d routing process(es) %s", n, when))
}

// killBroker SIGKILLs the broker and restarts it on its data.
func (c *growthChaos) killBroker(when string) {
	r := c.r
	r.t.Logf("%s SIGKILL the broker (%s)", r.elapsed(), when)
	r.killed[r.broker.p] = true
	r.broker.p.kill()
	c.brokerKilled = true
	r.fault("sigkill broker " + when)
	r.revive()
}

// settleGrowth waits until growthSettled, reviving what is down, for
// growthBound at most (a liveness violation after that).
func (r *rig) settleGrowth() {
	deadline := time.Now().Add(growthBound)
	for !r.growthSettled() {
		r.revive()
		if time.Now().After(deadline) {
			r.violation("liveness: %v after the last fault the stages have not committed the ends of their inputs", growthBound)
			return
		}
		time.Sleep(time.Second)
	}
}

// growthSettled reports whether the embedding, routing and mover groups
// have committed the ends of their inputs, upstream first.
func (r *rig) growthSettled() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, g := range [][2]string{
		{"embed", pipeline.TopicRaw},
		{growthGroup, pipeline.TopicFeatures},
		{cluster.MoverGroup(growthGroup), pipeline.TopicNovel},
	} {
		end, err := pipeline.EndOffsets(ctx, r.cc, g[1])
		if err != nil {
			return false
		}
		com, err := pipeline.CommittedOffsets(ctx, r.cc, g[0], g[1], len(end))
		if err != nil {
			return false
		}
		for p := range end {
			if end[p] > 0 && com[p] < end[p] {
				return false
			}
		}
	}
	return true
}

// sourceDocs returns the fixture's documents of sources (their field
// "source").
func sourceDocs(t *testing.T, sources []string) []schemas.Document {
	var out []schemas.Document
	for _, d := range fixtureDocs(t) {
		var meta struct {
			Source string `json:"source"`
		}
		if err := json.Unmarshal(d.Meta, &meta); err != nil {
			t.Fatalf("fixture document %s: meta %s: %v", d.ID, d.Meta, err)
		}
		if slices.Contains(sources, meta.Source) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no document of %v in the fixture", sources)
	}
	return out
}

// writeSourceDocs writes n documents (n < 0: len(docs)) of docs from index
// from on, round robin, as JSON lines; the k-th round gets ids
// prefix<k>-<id>.
func writeSourceDocs(t *testing.T, path string, docs []schemas.Document, prefix string, from, n int) {
	t.Helper()
	if n < 0 {
		n = len(docs)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for i := from; i < from+n; i++ {
		d := docs[i%len(docs)]
		d.ID = prefix + strconv.Itoa(i/len(docs)) + "-" + d.ID
		line, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// growthLedger is the accounting of TestGrowthKills's end.
type growthLedger struct {
	documents, placed, dead, duplicates int
	inGrown                             int // distinct documents in grown domains
	growths                             []*cluster.RouterModel
	newIDs                              []int
	state                               cluster.MoverState
}

// growthLedger reads the router versions, every domain topic, the mover's
// saved state and the dead letters, and records each breach of the
// contract (see TestGrowthKills) as a violation.
func (r *rig) growthLedger() growthLedger {
	t := r.t
	ctx, cancel := readCtx()
	defer cancel()
	var l growthLedger

	// Ids stable across router versions.
	latest, err := cluster.LatestRouterVersion(r.router)
	if err != nil {
		t.Fatal(err)
	}
	var final *cluster.RouterModel
	used := map[int]bool{}
	var lastSeen int64 = -1
	for v := int64(1); v <= latest; v++ {
		m, err := cluster.LoadRouter(r.router, v)
		if err != nil {
			r.violation("router v%d: %v", v, err)
			continue
		}
		if final != nil {
			r.checkGrownVersion(final, m, used, &lastSeen)
		}
		for _, id := range m.IDs {
			used[id] = true
		}
		if m.Growth != nil {
			l.growths = append(l.growths, m)
			l.newIDs = append(l.newIDs, m.Growth.IDs...)
		}
		final = m
	}
	if final == nil {
		t.Fatal("no router")
	}
	grown := map[int]bool{}
	for _, id := range l.newIDs {
		grown[id] = true
	}

	// The mover's saved state.
	store, err := pipeline.NewKafkaStateStore(r.cc, cluster.RoutingStateTopic(cluster.MoverGroup(growthGroup)))
	if err != nil {
		t.Fatal(err)
	}
	b, at, err := store.Load(ctx, pipeline.Partition{Topic: pipeline.TopicNovel})
	store.Close()
	if err != nil || b == nil {
		t.Fatalf("the mover's saved state: %v (none: %t)", err, b == nil)
	}
	if l.state, err = cluster.DecodeMoverState(b); err != nil {
		t.Fatal(err)
	}
	if end, err := pipeline.EndOffsets(ctx, r.cc, pipeline.TopicNovel); err != nil {
		t.Fatal(err)
	} else if at != end[0] {
		r.violation("the mover's saved state is at %s offset %d, its end is %d; the last snapshots on %s: %s",
			pipeline.TopicNovel, at, end[0], cluster.RoutingStateTopic(cluster.MoverGroup(growthGroup)), r.moverSnapshots(ctx, 8))
	}
	pending := map[origin]bool{}
	for _, o := range l.state.Pending {
		k := origin{o.Topic, int(o.Partition), o.Offset, int(o.Row)}
		if pending[k] {
			r.violation("%v is pending twice in the mover's state", k)
		}
		pending[k] = true
	}

	// Every domain topic, deduplicated as the trainers do.
	placed := map[origin][]int{}
	topics, err := pipeline.ListTopics(ctx, r.cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		s, ok := strings.CutPrefix(tp.Name, pipeline.DomainTopicPrefix)
		if !ok {
			continue
		}
		id, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		applied, dups, err := r.dedupDomain(ctx, tp.Name)
		if err != nil {
			t.Fatal(err)
		}
		l.duplicates += dups
		if _, ok := final.Index(id); !ok && len(applied) > 0 {
			r.violation("%s holds %d documents, but the router (v%d, ids %v) has no domain %d", tp.Name, len(applied), final.Version, final.IDs, id)
		}
		for _, o := range applied {
			placed[o] = append(placed[o], id)
		}
		if grown[id] {
			l.inGrown += len(applied)
		}
	}

	// Dead letters of input documents.
	dls, err := readDeadLetters(ctx, r.cc)
	if err != nil {
		t.Fatal(err)
	}
	dead := map[origin]bool{}
	for _, dl := range dls {
		if dl.origin.topic != pipeline.TopicRaw {
			r.violation("a message of %s was dead-lettered whole by %s (%s): its rows are out of the accounting", dl.origin.topic, dl.stage, dl.reason)
			continue
		}
		dead[dl.origin] = true
	}

	// Every input document exactly once: in one domain, pending or dead.
	in, err := r.readInputs()
	if err != nil {
		t.Fatal(err)
	}
	expected := map[origin]bool{}
	var lost, doubly, both []string
	for pos, n := range in.rows {
		for row := range n {
			k := origin{pipeline.TopicRaw, int(pos[0]), pos[1], row}
			expected[k] = true
			l.documents++
			ds := placed[k]
			switch {
			case len(ds) > 1:
				doubly = append(doubly, fmt.Sprintf("%v in domains %v", k, ds))
			case len(ds) == 1 && pending[k]:
				both = append(both, fmt.Sprintf("%v in domain %d and pending", k, ds[0]))
			case len(ds) == 1:
				l.placed++
			case pending[k]:
			case dead[k] || dead[origin{k.topic, k.part, k.offset, 0}]:
				l.dead++
			default:
				lost = append(lost, fmt.Sprint(k))
			}
		}
	}
	report := func(what string, ex []string) {
		if len(ex) > 0 {
			slices.Sort(ex)
			r.violation("%d input documents %s, e.g. %v", len(ex), what, ex[:min(5, len(ex))])
		}
	}
	report("in two or more domains", doubly)
	report("both in a domain and pending", both)
	report("neither in a domain, nor pending, nor dead-lettered", lost)
	var phantoms []string
	for k := range placed {
		if !expected[k] {
			phantoms = append(phantoms, fmt.Sprint(k))
		}
	}
	for k := range pending {
		if !expected[k] {
			phantoms = append(phantoms, fmt.Sprintf("pending %v", k))
		}
	}
	report("placed or pending without an input document", phantoms)

	// The mover's counters against the topics.
	st := l.state.Stats
	if int(st.Growths) != len(l.growths) {
		r.violation("the mover adopted %d growths; the router dir holds %d grown versions", st.Growths, len(l.growths))
	}
	if int(st.Moved+st.Forwarded) != l.inGrown {
		r.violation("the mover moved %d and forwarded %d rows; the grown domains hold %d distinct documents", st.Moved, st.Forwarded, l.inGrown)
	}
	if st.Read != st.Moved+st.Forwarded+int64(len(l.state.Pending))+st.Dead {
		r.violation("the mover read %d rows; moved %d + forwarded %d + pending %d + dead %d = %d",
			st.Read, st.Moved, st.Forwarded, len(l.state.Pending), st.Dead, st.Moved+st.Forwarded+int64(len(l.state.Pending))+st.Dead)
	}
	if len(l.growths) == 0 {
		r.violation("no growth: B's documents never grew a domain")
	}
	if st.Moved == 0 {
		r.violation("no pending document was moved at a growth")
	}
	t.Logf("%s %d documents: %d placed (%d in grown domains %v), %d pending, %d dead-lettered; %d duplicate rows dropped; mover: %+v",
		r.elapsed(), l.documents, l.placed, l.inGrown, l.newIDs, len(pending), l.dead, l.duplicates, st)
	return l
}

// checkGrownVersion checks router version m against its predecessor prev:
// prev's domains kept with their ids and centroids; a growth's new domains
// with ids never used before, the ones its Growth record names, made at a
// later point than the previous growth.
func (r *rig) checkGrownVersion(prev, m *cluster.RouterModel, used map[int]bool, lastSeen *int64) {
	for j, id := range prev.IDs {
		k, ok := m.Index(id)
		if !ok {
			r.violation("router v%d dropped domain %d of v%d", m.Version, id, prev.Version)
			continue
		}
		if !slices.Equal(prev.Model.Centroid(j), m.Model.Centroid(k)) {
			r.violation("router v%d changed the centroid of domain %d of v%d", m.Version, id, prev.Version)
		}
	}
	var added []int
	for _, id := range m.IDs {
		if _, ok := prev.Index(id); !ok {
			added = append(added, id)
			if used[id] {
				r.violation("router v%d reuses domain id %d", m.Version, id)
			}
		}
	}
	if m.Growth == nil {
		if len(added) > 0 {
			r.violation("router v%d adds domains %v without a growth record", m.Version, added)
		}
		return
	}
	if !slices.Equal(added, m.Growth.IDs) {
		r.violation("router v%d adds domains %v; its growth record names %v", m.Version, added, m.Growth.IDs)
	}
	if m.Growth.Seen <= *lastSeen {
		r.violation("router v%d grew at parked row %d, not after the previous growth (at %d): a growth made twice", m.Version, m.Growth.Seen, *lastSeen)
	}
	*lastSeen = m.Growth.Seen
}

// dedupDomain reads topic the way a trainer does: a row at or below the
// last origin position applied from its origin partition is skipped. It
// returns the origins applied; a skipped row must be a duplicate of one
// applied before (else a trainer would lose a document), and an origin
// partition must stay in one partition of the topic.
func (r *rig) dedupDomain(ctx context.Context, topic string) (applied []origin, dups int, err error) {
	msgs, err := pipeline.ReadTopic(ctx, r.cc, topic, 0)
	if err != nil {
		return nil, 0, err
	}
	type originPart struct {
		topic string
		part  int
	}
	last := map[originPart]origin{}
	partOf := map[originPart]int{}
	seen := map[origin]bool{}
	var skipped, spread []string
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		for _, rec := range recs {
			docs, err := schemas.Documents(rec)
			if err != nil {
				rec.Release()
				return nil, 0, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
			}
			for i := range docs.Len() {
				o := docs.Origin(i)
				k := origin{o.Topic, int(o.Partition), o.Offset, int(o.Row)}
				op := originPart{o.Topic, int(o.Partition)}
				if p, ok := partOf[op]; ok && p != m.Partition {
					spread = append(spread, fmt.Sprintf("%s/%d in partitions %d and %d", op.topic, op.part, p, m.Partition))
				}
				partOf[op] = m.Partition
				if prev, ok := last[op]; ok && !(prev.offset < k.offset || prev.offset == k.offset && prev.row < k.row) {
					if seen[k] {
						dups++
					} else {
						skipped = append(skipped, fmt.Sprintf("%v at %s/%d@%d after %v", k, m.Topic, m.Partition, m.Offset, prev))
					}
					continue
				}
				last[op] = k
				seen[k] = true
				applied = append(applied, k)
			}
			rec.Release()
		}
	}
	if len(skipped) > 0 {
		r.violation("%d rows of %s arrive after a later row of their origin partition and are not duplicates: a trainer skips them, e.g. %v",
			len(skipped), topic, skipped[:min(5, len(skipped))])
	}
	if len(spread) > 0 {
		r.violation("%s spreads origin partitions over its partitions: %v", topic, spread[:min(5, len(spread))])
	}
	return applied, dups, nil
}

// moverSnapshots describes the last n snapshots on the mover's state topic:
// where each was saved, the parked offset it was taken at, the rows it had
// read and held pending.
func (r *rig) moverSnapshots(ctx context.Context, n int) string {
	msgs, err := pipeline.ReadTopic(ctx, r.cc, cluster.RoutingStateTopic(cluster.MoverGroup(growthGroup)), 0)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, m := range msgs[max(0, len(msgs)-n):] {
		if len(m.Value) < 8 {
			out = append(out, fmt.Sprintf("@%d: %d bytes", m.Offset, len(m.Value)))
			continue
		}
		st, err := cluster.DecodeMoverState(m.Value[8:])
		out = append(out, fmt.Sprintf("@%d (%s): at %d, router v%d, seen %d, pending %d %v",
			m.Offset, m.Time.Format("15:04:05.000"), int64(bin.BigEndian.Uint64(m.Value)), st.RouterVersion, st.Seen, len(st.Pending), err))
	}
	return strings.Join(out, "; ")
}
