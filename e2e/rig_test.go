//go:build reliability

package e2e

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// A rig is the pipeline as separate processes on one broker process, with
// several processes per stage, under the faults of the reliability suite:
// `pipeline broker --data-dir`, embedSlots `pipeline embed` and
// clusterSlots `pipeline cluster` processes (one consumer group each), one
// `pipeline train --domain all` whose --out may sit on a small tmpfs, and
// `pipeline ingest` runs. Every process it starts is watched: one that exits
// without being killed by the rig is an unexpected exit (a violation), and
// is restarted by revive.
type rig struct {
	t      *testing.T
	rng    *rand.Rand
	dir    string
	broker *kfakeProc
	addr   string
	cc     pipeline.ClientConfig
	router string // cluster fit output: featurizer state and router
	out    string // trainer output
	disk   *tmpfs // nil when no tmpfs could be mounted

	roles   map[string]*role
	killed  map[*proc]bool // processes the rig killed or stopped on purpose
	all     []*proc        // every process started, for the panic scan
	started time.Time

	faults     map[string]int // faults injected, by kind
	lastFault  time.Time      // when the last fault ended
	violations []string       // contract violations seen so far
	exits      int            // unexpected exits
	waves      int            // good waves ingested
	good       map[string]bool
	advNext    int64    // next unused offset of advRawTopic
	deadFiles  []string // inputs of which a record must be dead-lettered by ingest
}

// role is one stage run as several processes (slots) with the same args.
type role struct {
	name  string
	args  []string
	slots []*proc
	gens  []int
}

const (
	embedSlots   = 2
	clusterSlots = 3
	rigParts     = 3 // partitions of docs.raw, docs.features and the domain topics
	rigK         = 3 // domains
	// livenessBound is how long after the last fault every input record must
	// be routed or dead-lettered: a few consumer-group session timeouts (6 s)
	// and backoffs (5 s at most) on a loaded two-core machine.
	livenessBound = 60 * time.Second
	// maxTextBytes is the document limit of ingest and the embed stage in
	// the rig; the corpus's over-size lines are above it.
	rigMaxText = 100000
)

// newRig starts the broker, fits a router on a first corpus and starts the
// stages. The trainer's output goes to a 64 MiB tmpfs when one can be
// mounted (for the full-disk attack).
func newRig(t *testing.T, seed uint64) *rig {
	r := startRig(t, seed)
	if d, err := mountTmpfs(t, r.out, 64<<20); err != nil {
		t.Logf("full-disk attack off: cannot mount a tmpfs for the trainer's output: %v", err)
		if err := os.MkdirAll(r.out, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		r.disk = d
	}

	first := filepath.Join(r.dir, "fit.jsonl")
	writeGoodWave(t, first, "fit", 0, 90)
	fit := r.spawn("cluster fit", "cluster", "fit", "--in", first, "--k", strconv.Itoa(rigK), "--out", r.router, "--log-level", "warn")
	<-fit.done
	if fit.err != nil {
		t.Fatalf("cluster fit: %v\n%s", fit.err, fit.out.String())
	}
	pipetest.CreateTopics(t, r.cc, rigParts, pipeline.TopicRaw, pipeline.TopicFeatures, pipeline.TopicDeadLetter, advRawTopic)
	for d := range rigK {
		pipetest.CreateTopics(t, r.cc, rigParts, pipeline.DomainTopic(d))
	}
	// Topics that look like domain topics and are none (the broker creates
	// no topic on a produce).
	pipetest.CreateTopics(t, r.cc, 1, bogusDomainTopics...)
	// Records forged feature rows may claim as their origin.
	adv := make([]kafka.Message, 2000)
	for i := range adv {
		adv[i] = pipetest.JSONDoc(advRawTopic, "adv-"+strconv.Itoa(i), "a record of a raw topic no stage reads")
	}
	pipetest.Produce(t, r.cc, adv...)

	r.addRole("embed", embedSlots, "embed", "--brokers", r.addr, "--state", r.router, "--linger", "20ms",
		"--max-text-bytes", strconv.Itoa(rigMaxText), "--workers", "1", "--log-level", "warn")
	r.addRole("cluster", clusterSlots, "cluster", "--brokers", r.addr, "--router", r.router, "--linger", "20ms", "--log-level", "warn")
	r.addRole("train", 1, r.trainArgs()...)
	return r
}

// startRig starts the broker of a rig, and nothing else: the caller fits
// the router into r.router and adds the roles.
func startRig(t *testing.T, seed uint64) *rig {
	r := &rig{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, 13)),
		dir:     t.TempDir(),
		roles:   map[string]*role{},
		killed:  map[*proc]bool{},
		faults:  map[string]int{},
		good:    map[string]bool{},
		started: time.Now(),
	}
	r.broker = startKfake(t)
	r.all = append(r.all, r.broker.p)
	r.addr = r.broker.addr()
	r.cc = pipeline.ClientConfig{Brokers: []string{r.addr}}
	r.router = filepath.Join(r.dir, "router")
	r.out = filepath.Join(r.dir, "out")
	return r
}

func (r *rig) trainArgs() []string {
	return []string{"train", "--brokers", r.addr, "--domain", "all", "--out", r.out, "--expert", "tiny", "--threads", "1",
		"--checkpoint-steps", "20", "--keep", "2", "--log-level", "warn"}
}

func (r *rig) addRole(name string, n int, args ...string) {
	ro := &role{name: name, args: args, slots: make([]*proc, n), gens: make([]int, n)}
	r.roles[name] = ro
	for i := range n {
		r.launch(ro, i)
	}
}

func (r *rig) launch(ro *role, slot int) {
	ro.gens[slot]++
	ro.slots[slot] = r.spawn(fmt.Sprintf("%s-%d#%d", ro.name, slot, ro.gens[slot]), ro.args...)
}

// spawn starts the binary with args. Its output is kept; when the test
// fails, the tail of it is logged (all of it goes to
// $DOMAINFLOW_RELIABILITY_LOGS/<name>.log when that is set).
func (r *rig) spawn(name string, args ...string) *proc {
	t := r.t
	t.Helper()
	p := launch(t, name, args...)
	r.all = append(r.all, p)
	t.Cleanup(func() {
		p.kill()
		if dir := os.Getenv("DOMAINFLOW_RELIABILITY_LOGS"); dir != "" {
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name)+".log"), []byte(p.out.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("--- tail of %s ---\n%s", name, tail(p.out.String(), 3000))
		}
	})
	return p
}

// tail returns the last n bytes of s, from a line start when that leaves
// something.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && strings.TrimSpace(s[i+1:]) != "" {
		s = s[i+1:]
	}
	return "…" + s
}

// fault records one injected fault of kind and that faults went on until now.
func (r *rig) fault(kind string) {
	r.faults[kind]++
	r.lastFault = time.Now()
}

// violation records a breach of the contract; the test fails at its end,
// after the figures are printed.
func (r *rig) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.t.Log("VIOLATION: " + msg)
	r.violations = append(r.violations, msg)
}

// elapsed is the time since the rig started, for log lines.
func (r *rig) elapsed() string { return time.Since(r.started).Round(100 * time.Millisecond).String() }

// kill SIGKILLs slot of a role (a no-op when it is already down).
func (r *rig) kill(ro *role, slot int) {
	p := ro.slots[slot]
	r.killed[p] = true
	p.kill()
}

// pause SIGSTOPs p for d, running during (when not nil) meanwhile, then
// SIGCONTs it.
func (r *rig) pause(p *proc, d time.Duration, during func()) {
	select {
	case <-p.done:
		return
	default:
	}
	end := time.Now().Add(d)
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	if during != nil {
		during()
	}
	time.Sleep(time.Until(end))
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}

// revive restarts every stage process that is down. One that exited without
// being killed by the rig is an unexpected exit, except a trainer that
// stopped with a clear error on a full disk.
func (r *rig) revive() {
	select {
	case <-r.broker.p.done:
		if !r.killed[r.broker.p] {
			r.exits++
			r.violation("the broker exited on its own (%v); last lines:\n%s", r.broker.p.err, tail(r.broker.p.out.String(), 1500))
		}
		r.broker.restart(r.t)
		r.all = append(r.all, r.broker.p)
	default:
	}
	for _, name := range slices.Sorted(maps.Keys(r.roles)) {
		ro := r.roles[name]
		for i, p := range ro.slots {
			select {
			case <-p.done:
			default:
				continue
			}
			if !r.killed[p] {
				out := p.out.String()
				if name == "train" && strings.Contains(out, "no space left on device") {
					r.t.Logf("%s %s stopped on the full disk with a clear error; restarting", r.elapsed(), p.name)
				} else {
					r.exits++
					r.violation("%s exited on its own (%v); last lines:\n%s", p.name, p.err, tail(out, 1500))
				}
			}
			r.launch(ro, i)
		}
	}
}

// stopAll sends SIGTERM to every stage process and checks that each stops
// cleanly.
func (r *rig) stopAll() {
	for _, ro := range r.roles {
		for _, p := range ro.slots {
			select {
			case <-p.done:
				continue
			default:
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, ro := range r.roles {
		for _, p := range ro.slots {
			select {
			case <-p.done:
				if p.err != nil && !r.killed[p] {
					r.violation("%s exited with %v after SIGTERM", p.name, p.err)
				}
			case <-time.After(45 * time.Second):
				r.violation("%s did not stop within 45 s of SIGTERM", p.name)
				p.kill()
			}
		}
	}
}

// panics reports the processes whose output holds a Go panic.
func (r *rig) panics() {
	for _, p := range r.all {
		if s := p.out.String(); strings.Contains(s, "panic:") || strings.Contains(s, "fatal error:") {
			i := max(strings.Index(s, "panic:"), strings.Index(s, "fatal error:"))
			r.violation("%s panicked: %s", p.name, tail(s[i:min(len(s), i+1500)], 1500))
		}
	}
}

// ingest runs `pipeline ingest` with args (flags, then files) to the end
// and returns its output. wantOK makes a failing exit status a violation.
func (r *rig) ingest(what string, wantOK bool, args ...string) string {
	args = append([]string{"ingest", "--brokers", r.addr, "--partitions", strconv.Itoa(rigParts),
		"--max-text-bytes", strconv.Itoa(rigMaxText), "--log-level", "warn"}, args...)
	p := r.spawn("ingest "+what, args...)
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		r.violation("ingest %s did not finish within 3 min", what)
		p.kill()
	}
	if wantOK && p.err != nil {
		r.violation("ingest %s: %v\n%s", what, p.err, tail(p.out.String(), 1500))
	}
	return p.out.String()
}

// goodWave writes and ingests n good documents with fresh ids.
func (r *rig) goodWave(n int) {
	f := filepath.Join(r.dir, fmt.Sprintf("wave%03d.jsonl", r.waves))
	for _, id := range writeGoodWave(r.t, f, "w"+strconv.Itoa(r.waves), r.waves*n, n) {
		r.good[id] = true
	}
	r.waves++
	r.ingest(filepath.Base(f), true, f)
}

// tmpfs is a small tmpfs mounted for the full-disk attack.
type tmpfs struct{ dir string }

// mountTmpfs mounts a tmpfs of size bytes on dir (needs root, or
// CAP_SYS_ADMIN) and unmounts it when the test ends.
func mountTmpfs(t *testing.T, dir string, size int) (*tmpfs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return &tmpfs{dir: dir}, nil
}

// fill writes a file until the file system is full.
func (d *tmpfs) fill() error {
	f, err := os.Create(d.filler())
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

func (d *tmpfs) free() error { return os.Remove(d.filler()) }

func (d *tmpfs) filler() string { return filepath.Join(d.dir, ".filler") }
