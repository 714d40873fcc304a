package main

import "testing"

// TestBenchTrain: a short `bench train` prints one JSON object with a
// positive throughput and a finite loss; bad flags are usage errors.
func TestBenchTrain(t *testing.T) {
	t.Parallel()
	r := mustCLI(t, "bench", "train", "--in", fixture, "--expert", "tiny", "--steps", "2", "--warmup", "1", "--threads", "1", "--guard=false", "--json")
	var rep map[string]any
	lines := jsonLines(t, r.stdout)
	if len(lines) != 1 {
		t.Fatalf("stdout %q", r.stdout)
	}
	rep = lines[0]
	if tps, _ := rep["tokens_per_s"].(float64); tps <= 0 {
		t.Fatalf("tokens_per_s %v", rep["tokens_per_s"])
	}
	if loss, _ := rep["loss"].(float64); loss <= 0 || loss > 10 {
		t.Fatalf("loss %v", rep["loss"])
	}
	for _, args := range [][]string{{"--expert", "huge"}, {"--steps", "0"}, {"--backend", "nope"}} {
		if r := cli(t, append([]string{"bench", "train"}, args...)...); r.code != 2 {
			t.Errorf("bench train %v: exit %d", args, r.code)
		}
	}
}
