package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// The orders TestWalkthrough starts the processes in, after the broker.
// `make test` runs the first (about 25 s); the reliability tag adds the
// others, and trains every expert to the end of its domain
// (walkthroughTrainToEnd, a minute more per order on 2 cores): see
// walkthrough_orders_*_test.go.
type walkthroughOrder struct {
	name  string
	order []string
}

var (
	stagesThenIngest = walkthroughOrder{"stages then ingest", []string{"embed", "cluster", "train", "archive", "ingest"}}
	moreOrders       = []walkthroughOrder{
		{"ingest then stages", []string{"ingest", "embed", "cluster", "train", "archive"}},
		{"train and cluster before ingest, embed last", []string{"train", "cluster", "archive", "ingest", "embed"}},
	}
)

// TestWalkthrough runs the README's continuous-ingestion walkthrough
// (Deployment) as a user types it: separate processes of the built binary,
// each in the walkthrough's working directory with its relative paths
// (broker/, state/, router/, out/), the brokers given only by
// $DOMAINFLOW_BROKERS (no --brokers anywhere), and the stages started in
// several orders around the ingest. In each order every document reaches
// exactly one domain topic, the trainer checkpoints every domain's expert
// on SIGTERM, and eval scores them; with walkthroughTrainToEnd a rerun of
// the trainer that stops when idle finishes, and every expert applied each
// document of its domain exactly once.
//
// What differs from the README's text: a free port instead of 9092 (tests
// run side by side), the demo corpus as corpus.jsonl.gz and as the
// held-out file, --expert tiny instead of small and eval --max-docs 5 (a
// test's time, not the walkthrough's mechanics). The broker starts first:
// every other command checks within 5 s that the brokers answer and exits 1
// otherwise (a supervisor restarts it).
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	corpus, err := os.ReadFile(filepath.Join("..", "testdata", "mixed-small.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range walkthroughOrders {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"corpus.jsonl.gz", "heldout.jsonl.gz"} {
				if err := os.WriteFile(filepath.Join(dir, f), corpus, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			port := freePort(t)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			env := append(withoutBrokersEnv(os.Environ()), "DOMAINFLOW_BROKERS="+addr)
			// The walkthrough's commands, as the README writes them.
			cmds := map[string][]string{
				"broker":  {"broker", "--listen", addr, "--data-dir", "broker/"},
				"ingest":  {"ingest", "corpus.jsonl.gz"},
				"embed":   {"embed", "--state", "state/"},
				"cluster": {"cluster", "--router", "router/", "--k", "8"},
				"train":   {"train", "--domain", "all", "--out", "out/", "--expert", "tiny"},
				"archive": {"archive", "--out", "out/"},
			}
			w := &walk{t: t, dir: dir, env: env}
			began := time.Now()
			mark := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
			w.start("broker", cmds["broker"]...)
			waitFor(t, 20*time.Second, "the broker to listen", func() bool { return reachable(addr) })
			running := map[string]*proc{}
			for _, name := range tc.order {
				if name == "ingest" {
					w.run("ingest", cmds["ingest"]...)
					continue
				}
				running[name] = w.start(name, cmds[name]...)
				time.Sleep(300 * time.Millisecond) // let it start before the next one
			}

			cc := pipeline.ClientConfig{Brokers: []string{addr}}
			want := countDocs(t, filepath.Join(dir, "corpus.jsonl.gz"))
			var byDomain map[int][]string
			waitFor(t, 90*time.Second, "every document routed", func() bool {
				for name, p := range running {
					select {
					case <-p.done:
						t.Fatalf("%s exited: %v\n%s", name, p.err, p.out.String())
					default:
					}
				}
				var n int
				byDomain, n = routedIDs(t, cc)
				if n > want {
					t.Fatalf("%d documents on the domain topics, only %d went in", n, want)
				}
				return n == want
			})
			mark("every document routed")
			seen := map[string]int{}
			for id, docs := range byDomain {
				for _, d := range docs {
					if prev, ok := seen[d]; ok {
						t.Fatalf("document %q is on docs.domain.%d and docs.domain.%d", d, prev, id)
					}
					seen[d] = id
				}
			}
			if len(seen) != want || len(byDomain) != 8 {
				t.Fatalf("%d distinct documents in %d domains, want %d in 8", len(seen), len(byDomain), want)
			}

			// The trainer checkpoints its experts on SIGTERM (it looks for
			// new domain topics every 2 s: give it two looks); a rerun that
			// stops when idle finishes what is left, and each expert
			// applied its domain's documents exactly once.
			time.Sleep(4 * time.Second)
			running["train"].stop(t)
			mark("train stopped")
			n := 0
			for id := range byDomain {
				if c, _, err := train.LoadLatestCheckpoint(filepath.Join(dir, "out", "experts", strconv.Itoa(id))); err == nil && c != nil {
					n++
				}
			}
			if n != len(byDomain) {
				t.Fatalf("%d of %d experts checkpointed on SIGTERM\n%s", n, len(byDomain), running["train"].out.String())
			}
			if walkthroughTrainToEnd {
				w.run("train (to the end)", append(cmds["train"], "--exit-on-idle", "2s")...)
				mark("train to the end")
				for id, docs := range byDomain {
					c, _, err := train.LoadLatestCheckpoint(filepath.Join(dir, "out", "experts", strconv.Itoa(id)))
					if err != nil || c == nil {
						t.Fatalf("expert %d: no checkpoint: %v", id, err)
					}
					if c.Meta.Docs != int64(len(docs)) {
						t.Fatalf("expert %d applied %d documents; its domain holds %d", id, c.Meta.Docs, len(docs))
					}
				}
			}
			var ev struct {
				MixtureBPB map[string]float64 `json:"mixture_bpb"`
			}
			b := w.run("eval", "eval", "--out", "out/", "--router", "router/", "--in", "heldout.jsonl.gz", "--max-docs", "5", "--json")
			if err := json.Unmarshal(b, &ev); err != nil || len(ev.MixtureBPB) == 0 {
				t.Fatalf("eval: %v %s", err, b)
			}
			mark("eval")
			for _, name := range []string{"archive", "cluster", "embed"} {
				running[name].stop(t)
			}
			mark("stopped")
		})
	}
}

// walk runs the walkthrough's commands in its directory with its
// environment.
type walk struct {
	t   *testing.T
	dir string
	env []string
}

// start starts a long-running command; the test's cleanup kills it.
func (w *walk) start(name string, args ...string) *proc {
	w.t.Helper()
	p := &proc{name: name, out: &pipetest.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(w.t), args...)
	p.cmd.Dir, p.cmd.Env = w.dir, w.env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		w.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	w.t.Cleanup(func() {
		p.kill()
		if w.t.Failed() {
			w.t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// run runs a command to its end and returns its stdout; it must succeed.
func (w *walk) run(name string, args ...string) []byte {
	w.t.Helper()
	cmd := exec.Command(binary(w.t), args...)
	cmd.Dir, cmd.Env = w.dir, w.env
	var stderr pipetest.LogBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return out
}

// withoutBrokersEnv drops the Kafka settings a developer's shell may have.
func withoutBrokersEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "DOMAINFLOW_") {
			out = append(out, e)
		}
	}
	return out
}

// countDocs counts the readable documents of an input file.
func countDocs(t *testing.T, path string) int {
	t.Helper()
	r, err := schemas.OpenInput(path, schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		rec, err := r.Next()
		if err != nil {
			return n
		}
		if rec.Err == nil {
			n++
		}
	}
}

// routedIDs returns the document ids on each domain topic, with
// repetitions, and their total count.
func routedIDs(t *testing.T, cc pipeline.ClientConfig) (map[int][]string, int) {
	t.Helper()
	out, n := map[int][]string{}, 0
	err := forEachRouted(t, cc, func(domain int, docs *schemas.DocumentColumns, i int) {
		out[domain] = append(out[domain], strings.Clone(docs.ID(i)))
		n++
	})
	if err != nil {
		return nil, 0
	}
	return out, n
}

// allExperts reports whether every domain has an expert dir.
func allExperts(dir string, byDomain map[int][]string) bool {
	for id := range byDomain {
		if !fileExists(filepath.Join(dir, "out", "experts", strconv.Itoa(id))) {
			return false
		}
	}
	return true
}
