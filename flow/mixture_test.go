package flow_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/stages/train"
)

var (
	runOnce  sync.Once
	runDir   string
	runTopic map[string]string // topic → its expert
	runErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if runDir != "" {
		os.RemoveAll(runDir)
	}
	os.Exit(code)
}

// sharedRun is one tinyRun (with a dense expert) for the whole package.
func sharedRun(t *testing.T) (string, map[string]string) {
	t.Helper()
	runOnce.Do(func() {
		if runDir, runErr = os.MkdirTemp("", "flow-test"); runErr == nil {
			runTopic, runErr = tinyRun(runDir, true)
		}
	})
	if runErr != nil {
		t.Fatal(runErr)
	}
	return runDir, runTopic
}

func load(t *testing.T, out string, topK int) *flow.Mixture {
	t.Helper()
	m, err := flow.LoadMixture(context.Background(), flow.MixtureConfig{Out: out, TopK: topK, Backend: "ref", Threads: 1})
	if err != nil {
		t.Fatalf("LoadMixture(%s): %v", out, err)
	}
	return m
}

func TestWeightsSumToOne(t *testing.T) {
	out, _ := sharedRun(t)
	ctx := context.Background()
	for _, tc := range []struct {
		topK   int
		prefix string
		want   int // weights kept
	}{
		{0, "the cat sat", 2},
		{0, "bank shares", 2},
		{1, "the cat sat", 1},
		{1, "bank shares", 1},
		{2, "a kitten in the market", 2},
		{5, "a kitten in the market", 2},
		{1, "", 2}, // nothing to route on: every domain expert, equally
		{0, "words in neither topic", 2},
	} {
		w, err := load(t, out, tc.topK).Weights(ctx, []byte(tc.prefix))
		if err != nil {
			t.Fatalf("Weights(top %d, %q): %v", tc.topK, tc.prefix, err)
		}
		sum := 0.0
		for i, x := range w {
			sum += x.Value
			if x.Value <= 0 || x.Value > 1 || (i > 0 && x.Value > w[i-1].Value) {
				t.Errorf("Weights(top %d, %q) = %+v: not in (0, 1] largest first", tc.topK, tc.prefix, w)
			}
		}
		if len(w) != tc.want || math.Abs(sum-1) > 1e-12 {
			t.Errorf("Weights(top %d, %q) = %+v: %d weights summing to %v, want %d summing to 1", tc.topK, tc.prefix, w, len(w), sum, tc.want)
		}
	}
}

func TestTopOneIsNearest(t *testing.T) {
	out, topic := sharedRun(t)
	m := load(t, out, 1)
	ctx := context.Background()
	for _, tc := range []struct{ prefix, topic string }{
		{"my cat purred on the mat", "cats"},
		{"the kitten", "cats"},
		{"bank shares fell", "markets"},
		{"the stock market", "markets"},
	} {
		w, err := m.Weights(ctx, []byte(tc.prefix))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := m.Router().SquaredDistances(ctx, []string{tc.prefix})
		if err != nil {
			t.Fatal(err)
		}
		nearest := m.Router().Model.IDs[slices.Index(d2, slices.Min(d2))]
		if len(w) != 1 || w[0].Value != 1 || w[0].Domain != nearest || w[0].Expert != topic[tc.topic] {
			t.Errorf("Weights(top 1, %q) = %+v, want all on domain %d (nearest), the %s expert %s", tc.prefix, w, nearest, tc.topic, topic[tc.topic])
		}
	}
}

// oneExpertRun is a tinyRun whose other domain expert was removed: every
// mixture is that one expert.
func oneExpertRun(t *testing.T) (out, expert string) {
	t.Helper()
	out = t.TempDir()
	topic, err := tinyRun(out, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(train.ExpertDir(out, topic["markets"])); err != nil {
		t.Fatal(err)
	}
	return out, topic["cats"]
}

// TestOneExpertMixture: a mixture of one expert scores exactly as that
// expert alone (train.LogProbs), whatever the top-k.
func TestOneExpertMixture(t *testing.T) {
	out, expert := oneExpertRun(t)
	c, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, expert))
	if err != nil {
		t.Fatal(err)
	}
	be, err := accel.Open("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, topK := range []int{0, 1, 2} {
		m := load(t, out, topK)
		for _, text := range heldOut {
			seq := append([]byte{train.DocSeparator}, text...)
			sum := 0.0
			for _, v := range train.LogProbs(be, c.Model, seq, 16, nil) {
				sum += float64(v)
			}
			want := train.BitsPerByte(sum, int64(len(text)))
			if got, err := m.Score(ctx, []byte(text)); err != nil || got != want {
				t.Errorf("top %d: Score(%q) = %v, %v; the expert alone: %v", topK, text, got, err, want)
			}
		}
		rep, err := m.Evaluate(ctx, heldOut, flow.EvalConfig{Choices: []flow.Choice{{Name: "top1", K: 1}, {Name: "all"}}, Alone: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.ExpertBPB) != 1 || rep.MixtureBPB["top1"] != rep.ExpertBPB[0].BPB || rep.MixtureBPB["all"] != rep.ExpertBPB[0].BPB {
			t.Errorf("top %d: Evaluate = %+v: mixtures differ from the expert alone", topK, rep)
		}
	}
}

// TestNextByte: scoring a text byte by byte with NextByte gives Score.
func TestNextByte(t *testing.T) {
	out, _ := sharedRun(t)
	ctx := context.Background()
	for _, topK := range []int{0, 1} {
		m := load(t, out, topK)
		for _, text := range heldOut {
			sum := 0.0
			for p := range len(text) {
				dist, err := m.NextByte(ctx, []byte(text[:p]))
				if err != nil {
					t.Fatal(err)
				}
				total := 0.0
				for _, q := range dist {
					total += q
				}
				if len(dist) != 256 || math.Abs(total-1) > 1e-4 {
					t.Fatalf("NextByte(%q): %d probabilities summing to %v", text[:p], len(dist), total)
				}
				sum += math.Log2(dist[text[p]])
			}
			got := -sum / float64(len(text))
			want, err := m.Score(ctx, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-want) > 1e-4 {
				t.Errorf("top %d, %q: NextByte gives %v bits per byte, Score %v", topK, text, got, want)
			}
		}
	}
}

// TestEvaluate: Evaluate's mixtures are Score's, its experts alone
// train.LogProbs', and each mixture runs only the experts it keeps.
func TestEvaluate(t *testing.T) {
	out, _ := sharedRun(t)
	ctx := context.Background()
	m1, mAll := load(t, out, 1), load(t, out, 0)
	choices := []flow.Choice{{Name: "top1", K: 1}, {Name: "all"}}
	for _, tc := range []struct {
		name        string
		maxDocBytes int
		alone       bool
	}{
		{"alone", 0, true},
		{"mixtures only", 0, false},
		{"cut at 20 bytes", 20, true},
	} {
		docs := 0
		rep, err := m1.Evaluate(ctx, heldOut, flow.EvalConfig{Choices: choices, MaxDocBytes: tc.maxDocBytes, Alone: tc.alone,
			Progress: func(done int) { docs = done }})
		if err != nil {
			t.Fatal(err)
		}
		if docs != len(heldOut) || rep.Docs != len(heldOut) {
			t.Errorf("%s: %d documents, progress at %d, want %d", tc.name, rep.Docs, docs, len(heldOut))
		}
		var bytes, chunks, later int64
		var score1, scoreAll float64
		for _, text := range heldOut {
			if tc.maxDocBytes > 0 {
				text = text[:min(len(text), tc.maxDocBytes)]
			}
			bytes += int64(len(text))
			nc := int64(train.Chunks(len(text)+1, m1.Context()))
			chunks += nc
			later += nc - 1
			s1, _ := m1.Score(ctx, []byte(text))
			sa, _ := mAll.Score(ctx, []byte(text))
			score1 += s1 * float64(len(text))
			scoreAll += sa * float64(len(text))
		}
		if rep.Bytes != bytes {
			t.Errorf("%s: %d bytes, want %d", tc.name, rep.Bytes, bytes)
		}
		// Score is per document; Evaluate over all bytes.
		if d := rep.MixtureBPB["top1"] - score1/float64(bytes); math.Abs(d) > 1e-12 {
			t.Errorf("%s: top1 %v, Score's %v", tc.name, rep.MixtureBPB["top1"], score1/float64(bytes))
		}
		if d := rep.MixtureBPB["all"] - scoreAll/float64(bytes); math.Abs(d) > 1e-12 {
			t.Errorf("%s: all %v, Score's %v", tc.name, rep.MixtureBPB["all"], scoreAll/float64(bytes))
		}
		// The first chunk mixes both domain experts; later ones top1 one.
		if rep.ChunkForwards["all"] != 2*chunks || rep.ChunkForwards["top1"] != 2*int64(len(heldOut))+later {
			t.Errorf("%s: chunk forwards %v, want all %d, top1 %d", tc.name, rep.ChunkForwards, 2*chunks, 2*int64(len(heldOut))+later)
		}
		if !tc.alone {
			if rep.ExpertBPB != nil || rep.DenseBPB != nil {
				t.Errorf("%s: experts alone reported: %+v", tc.name, rep.ExpertBPB)
			}
			continue
		}
		if got := len(rep.ExpertBPB); got != 3 || rep.DenseBPB == nil || *rep.DenseBPB != rep.ExpertBPB[2].BPB {
			t.Fatalf("%s: experts %+v, dense %v", tc.name, rep.ExpertBPB, rep.DenseBPB)
		}
	}
}

// TestConcurrent: Score from several goroutines gives the sequential
// figures.
func TestConcurrent(t *testing.T) {
	out, _ := sharedRun(t)
	m := load(t, out, 1)
	ctx := context.Background()
	want := make([]float64, len(heldOut))
	for i, text := range heldOut {
		want[i], _ = m.Score(ctx, []byte(text))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i, text := range heldOut {
				if got, err := m.Score(ctx, []byte(text)); err != nil || got != want[i] {
					t.Errorf("concurrent Score(%q) = %v, %v, want %v", text, got, err, want[i])
				}
			}
		})
	}
	wg.Wait()
}

func TestNoDomainExperts(t *testing.T) {
	src, _ := sharedRun(t)
	out := t.TempDir()
	// Only the dense expert, under the shared run's router.
	if err := os.CopyFS(filepath.Join(out, "experts", "dense"), os.DirFS(train.ExpertDir(src, "dense"))); err != nil {
		t.Fatal(err)
	}
	m, err := flow.LoadMixture(context.Background(), flow.MixtureConfig{Out: out, RouterDir: filepath.Join(src, "router"), Backend: "ref", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Weights(ctx, []byte("cat")); !errors.Is(err, flow.ErrNoDomainExperts) {
		t.Errorf("Weights: %v, want ErrNoDomainExperts", err)
	}
	if _, err := m.Score(ctx, []byte("cat")); !errors.Is(err, flow.ErrNoDomainExperts) {
		t.Errorf("Score: %v, want ErrNoDomainExperts", err)
	}
	rep, err := m.Evaluate(ctx, heldOut, flow.EvalConfig{Choices: []flow.Choice{{Name: "top1", K: 1}}, Alone: true})
	if err != nil || len(rep.MixtureBPB) != 0 || rep.DenseBPB == nil {
		t.Errorf("Evaluate = %+v, %v: want the dense expert alone and no mixture", rep, err)
	}
}

func TestLoadMixtureErrors(t *testing.T) {
	out, _ := sharedRun(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  flow.MixtureConfig
	}{
		{"no out", flow.MixtureConfig{}},
		{"negative temperature", flow.MixtureConfig{Out: out, Temperature: -1}},
		{"negative top-k", flow.MixtureConfig{Out: out, TopK: -1}},
		{"no experts", flow.MixtureConfig{Out: empty}},
		{"no router", flow.MixtureConfig{Out: out, RouterDir: empty}},
		{"unknown backend", flow.MixtureConfig{Out: out, Backend: "nope"}},
	} {
		if m, err := flow.LoadMixture(context.Background(), tc.cfg); err == nil {
			t.Errorf("%s: LoadMixture(%+v) = %v, want an error", tc.name, tc.cfg, m)
		}
	}
}

func TestParseChoice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want flow.Choice
		ok   bool
	}{
		{"all", flow.Choice{Name: "all"}, true},
		{"1", flow.Choice{Name: "top1", K: 1}, true},
		{"12", flow.Choice{Name: "top12", K: 12}, true},
		{"0", flow.Choice{}, false},
		{"-2", flow.Choice{}, false},
		{"top2", flow.Choice{}, false},
	} {
		got, err := flow.ParseChoice(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseChoice(%q) = %+v, %v, want %+v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
