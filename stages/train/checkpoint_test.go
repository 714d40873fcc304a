package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/ref"
	"github.com/domainflow/domainflow/schemas"
)

// ckptConfig is a model small enough to train many steps in a test.
var ckptConfig = Config{Name: "test", Vocab: 256, Dim: 16, Layers: 1, Heads: 2, Ctx: 16, Batch: 2}

func refBackend(t testing.TB) accel.Backend {
	t.Helper()
	be, err := accel.Open("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// testDocs returns n small documents of varied length.
func testDocs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "document %d says %s", i, string(slices.Repeat([]byte("ab"), i%7)))
	}
	return out
}

func newTestTrainer(t testing.TB) *Trainer {
	t.Helper()
	opt := DefaultOptConfig()
	opt.WarmupSteps = 2
	tr, err := NewTrainer(TrainerConfig{Expert: "3", Model: ckptConfig, Opt: opt, Seed: 7, Backend: refBackend(t), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// feed adds docs[lo:hi] as offsets lo..hi-1 of origin partition 0 and
// trains on every full batch.
func feed(t testing.TB, tr *Trainer, docs [][]byte, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		tr.Add("docs.raw/0", Position{Offset: int64(i)}, docs[i])
		tr.SetOffset("docs.domain.3/0", int64(i+1), 0)
		if _, err := tr.Train(context.Background(), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	tr := newTestTrainer(t)
	docs := testDocs(40)
	feed(t, tr, docs, 0, 40)
	if tr.Opt.Step == 0 {
		t.Fatal("no step was trained")
	}
	dir := t.TempDir()
	ck := tr.Checkpoint()
	path, err := SaveCheckpoint(dir, ck, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, schemas.ParquetTwin(path)} {
		got, err := LoadCheckpoint(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !slices.Equal(got.Model.Params, tr.Model.Params) || !slices.Equal(got.Opt.M, tr.Opt.M) || !slices.Equal(got.Opt.V, tr.Opt.V) {
			t.Fatalf("%s: tensors differ after the round trip", p)
		}
		if got.Opt.Step != tr.Opt.Step || got.Meta.Tokens != tr.Meta.Tokens || got.Meta.Docs != 40 ||
			got.Meta.Origins["docs.raw/0"] != (Position{Offset: 39}) || got.Meta.Offsets["docs.domain.3/0"] != 40 ||
			got.Meta.Expert != "3" || got.Model.Cfg != ckptConfig || got.Opt.Cfg != tr.Opt.Cfg {
			t.Fatalf("%s: metadata %+v", p, got.Meta)
		}
		if !slices.Equal(got.Packer, tr.Packer.State()) {
			t.Fatalf("%s: packer state differs", p)
		}
		if got.Meta.ParamsSHA256 != ParamsSHA256(tr.Model) || len(got.Meta.Losses) != tr.Opt.Step {
			t.Fatalf("%s: digest %s, losses %d", p, got.Meta.ParamsSHA256, len(got.Meta.Losses))
		}
	}
}

// TestCheckpointCorruptFallback: a damaged newest checkpoint falls back to
// its Parquet twin, a checkpoint damaged in both files to the previous one;
// partial (truncated) and foreign files are detected; keep prunes.
func TestCheckpointCorruptFallback(t *testing.T) {
	tr := newTestTrainer(t)
	docs := testDocs(60)
	dir := t.TempDir()
	var steps []int
	for _, hi := range []int{20, 40, 60} {
		feed(t, tr, docs, hi-20, hi)
		if _, err := SaveCheckpoint(dir, tr.Checkpoint(), 2); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, tr.Opt.Step)
	}
	got, err := ListCheckpoints(dir)
	if err != nil || !slices.Equal(got, []int{steps[2], steps[1]}) {
		t.Fatalf("kept %v (err %v), want the newest two of %v", got, err, steps)
	}
	flip := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newest := CheckpointPath(dir, steps[2])
	flip(newest)
	c, skipped, err := LoadLatestCheckpoint(dir)
	if err != nil || c.Opt.Step != steps[2] || len(skipped) != 1 {
		t.Fatalf("arrow damaged: step %v, skipped %v, err %v", c, skipped, err)
	}
	// Truncate the Parquet twin too: a partial write.
	pq := schemas.ParquetTwin(newest)
	b, _ := os.ReadFile(pq)
	if err := os.WriteFile(pq, b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	c, skipped, err = LoadLatestCheckpoint(dir)
	if err != nil || c.Opt.Step != steps[1] || len(skipped) != 2 {
		t.Fatalf("both damaged: got %v, skipped %v, err %v", c, skipped, err)
	}
	// Everything damaged: an error, not a silent fresh start.
	flip(CheckpointPath(dir, steps[1]))
	if err := os.WriteFile(schemas.ParquetTwin(CheckpointPath(dir, steps[1])), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _, err := LoadLatestCheckpoint(dir); err == nil {
		t.Fatalf("all checkpoints damaged, but step %d loaded", c.Opt.Step)
	}
	// An empty dir: nothing, no error.
	if c, _, err := LoadLatestCheckpoint(filepath.Join(dir, "none")); c != nil || err != nil {
		t.Fatalf("empty dir: %v, %v", c, err)
	}
}

// TestTrainerResumeBitIdentical: a trainer checkpointed mid-stream, reloaded
// and fed the rest of the input — including documents it already applied —
// ends bit-identical to one that never stopped.
func TestTrainerResumeBitIdentical(t *testing.T) {
	docs := testDocs(80)
	whole := newTestTrainer(t)
	feed(t, whole, docs, 0, 80)

	for _, cut := range []int{1, 13, 41, 79} {
		part := newTestTrainer(t)
		feed(t, part, docs, 0, cut)
		dir := t.TempDir()
		if _, err := SaveCheckpoint(dir, part.Checkpoint(), 0); err != nil {
			t.Fatal(err)
		}
		c, _, err := LoadLatestCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := ResumeTrainer(c, refBackend(t), 1)
		if err != nil {
			t.Fatal(err)
		}
		// Replay from a few documents back: those are skipped.
		feed(t, resumed, docs, max(0, cut-5), 80)
		if resumed.Meta.Skipped != int64(cut-max(0, cut-5)) {
			t.Fatalf("cut %d: %d skipped", cut, resumed.Meta.Skipped)
		}
		if ParamsSHA256(resumed.Model) != ParamsSHA256(whole.Model) || !slices.Equal(resumed.Opt.V, whole.Opt.V) ||
			resumed.Opt.Step != whole.Opt.Step || resumed.Meta.Tokens != whole.Meta.Tokens {
			t.Fatalf("cut %d: resumed run differs from the uninterrupted one (steps %d vs %d)", cut, resumed.Opt.Step, whole.Opt.Step)
		}
	}
}

// TestTrainerBranch: an expert branched from a seed starts from its
// parameters with a fresh optimizer and records the seed's digest.
func TestTrainerBranch(t *testing.T) {
	seed := newTestTrainer(t)
	feed(t, seed, testDocs(30), 0, 30)
	ck := seed.Checkpoint()
	opt := DefaultOptConfig()
	br, err := NewTrainer(TrainerConfig{Expert: "1", Model: ckptConfig, Opt: opt, Init: ck, Backend: refBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(br.Model.Params, seed.Model.Params) || br.Opt.Step != 0 || br.Meta.Init != ParamsSHA256(seed.Model) {
		t.Fatal("branch does not start from the seed's parameters with a fresh optimizer")
	}
	other := ckptConfig
	other.Dim = 32
	if _, err := NewTrainer(TrainerConfig{Expert: "1", Model: other, Opt: opt, Init: ck, Backend: refBackend(t)}); err == nil {
		t.Fatal("a seed of another shape was accepted")
	}
}

// TestTrainerBranchSkipSeen: with SkipSeen a branch skips the documents its
// seed applied (by origin position) and applies the rest; without it, it
// applies them all; neither takes the seed's input offsets.
func TestTrainerBranchSkipSeen(t *testing.T) {
	seed := newTestTrainer(t)
	docs := testDocs(40)
	feed(t, seed, docs, 0, 30)
	ck := seed.Checkpoint()
	for _, skip := range []bool{false, true} {
		br, err := NewTrainer(TrainerConfig{Expert: "1", Model: ckptConfig, Opt: DefaultOptConfig(), Init: ck, SkipSeen: skip, Backend: refBackend(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(br.Meta.Offsets) != 0 {
			t.Fatalf("skip=%v: the branch took the seed's input offsets %v", skip, br.Meta.Offsets)
		}
		applied := 0
		for i := 20; i < 40; i += 2 { // every other document, as a domain sees them
			if br.Add("docs.raw/0", Position{Offset: int64(i)}, docs[i]) {
				applied++
			}
		}
		want := 10
		if skip {
			want = 5 // offsets 30, 32, ..., 38
		}
		if applied != want || br.Meta.Skipped != int64(10-want) {
			t.Fatalf("skip=%v: applied %d, skipped %d; want %d applied", skip, applied, br.Meta.Skipped, want)
		}
	}
	if _, err := NewTrainer(TrainerConfig{Expert: "1", Model: ckptConfig, Opt: DefaultOptConfig(), SkipSeen: true, Backend: refBackend(t)}); err == nil {
		t.Fatal("SkipSeen without a seed was accepted")
	}
}

func TestMerge(t *testing.T) {
	a, b := newTestTrainer(t), newTestTrainer(t)
	feed(t, a, testDocs(30), 0, 30)
	b.Model = NewModel(ckptConfig, 99)
	m, err := Merge([]*Checkpoint{a.Checkpoint(), b.Checkpoint()}, []float64{3, 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Model.Params {
		want := float32(0.75*float64(a.Model.Params[i]) + 0.25*float64(b.Model.Params[i]))
		if d := p - want; d > 1e-6 || d < -1e-6 {
			t.Fatalf("param %d = %v, want %v", i, p, want)
		}
	}
	if m.Opt.Step != 0 || m.Meta.Tokens != a.Meta.Tokens {
		t.Fatalf("merged optimizer step %d tokens %d", m.Opt.Step, m.Meta.Tokens)
	}
	// The merge saves and loads like any checkpoint.
	if _, err := SaveCheckpoint(t.TempDir(), m, 1); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]float64{{1}, {-1, 1}, {0, 0}} {
		if _, err := Merge([]*Checkpoint{a.Checkpoint(), b.Checkpoint()}, bad); err == nil {
			t.Fatalf("weights %v accepted", bad)
		}
	}
	other := ckptConfig
	other.Layers = 2
	c := &Checkpoint{Model: NewModel(other, 1), Opt: NewOptimizer(DefaultOptConfig(), other.NumParams())}
	if _, err := Merge([]*Checkpoint{a.Checkpoint(), c}, []float64{1, 1}); err == nil {
		t.Fatal("experts of different shapes merged")
	}
}

// TestCheckpointArrowByteFlips: a checkpoint's Arrow file with any one byte
// changed either fails to load with an error or loads the identical
// checkpoint; it never crashes the process (the stock Arrow file reader
// allocated whatever a damaged length claimed, up to a fatal out of memory).
func TestCheckpointArrowByteFlips(t *testing.T) {
	tr := newTestTrainer(t)
	feed(t, tr, testDocs(10), 0, 10)
	dir := t.TempDir()
	path, err := SaveCheckpoint(dir, tr.Checkpoint(), 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 5
	}
	// The tensors' bytes are most of the file; the structure (flatbuffers,
	// lengths, offsets) sits in its first and last KiB.
	var positions []int
	for i := 0; i < len(data); i += step {
		if i < 1<<10 || i >= len(data)-1<<10 || i%997 == 0 {
			positions = append(positions, i)
		}
	}
	bad := filepath.Join(t.TempDir(), "step-000001.arrow")
	for _, i := range positions {
		flipped := slices.Clone(data)
		flipped[i] ^= 0x5a
		if err := os.WriteFile(bad, flipped, 0o644); err != nil {
			t.Fatal(err)
		}
		meta, rows, err := readCkptArrow(bad)
		if err != nil {
			continue
		}
		c, err := buildCheckpoint(meta, rows)
		if err != nil {
			continue
		}
		if !slices.Equal(c.Model.Params, tr.Model.Params) {
			t.Fatalf("byte %d flipped: a different checkpoint loaded without an error", i)
		}
	}
}
