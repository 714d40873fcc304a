package train

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestExpertLess(t *testing.T) {
	names := []string{"dense", "10", "m01", "2", "seed", "0", "1"}
	sort.Slice(names, func(i, j int) bool { return ExpertLess(names[i], names[j]) })
	if want := []string{"0", "1", "2", "10", "dense", "m01", "seed"}; !slices.Equal(names, want) {
		t.Fatalf("sorted by ExpertLess: %v, want %v", names, want)
	}
}

// TestLoadExperts: every expert with a checkpoint, in ExpertLess order;
// hidden (removed) experts and experts with no checkpoint yet left out; a
// damaged newest checkpoint reported and passed over.
func TestLoadExperts(t *testing.T) {
	out := t.TempDir()
	if _, _, err := LoadExperts(out, nil); err == nil || !strings.Contains(err.Error(), "no experts in") {
		t.Fatalf("LoadExperts of a dir without experts/: %v", err)
	}
	tr := newTestTrainer(t)
	for _, name := range []string{"10", "dense", "2", ".removed/3"} {
		if _, err := SaveCheckpoint(ExpertDir(out, name), tr.Checkpoint(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(ExpertDir(out, "4"), 0o755); err != nil { // no checkpoint yet
		t.Fatal(err)
	}
	// Expert 2's newest checkpoint is damaged in both files.
	feed(t, tr, testDocs(40), 0, 40)
	newest, err := SaveCheckpoint(ExpertDir(out, "2"), tr.Checkpoint(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{newest, strings.TrimSuffix(newest, filepath.Ext(newest)) + ".parquet"} {
		if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var warned []string
	names, cks, err := LoadExperts(out, func(expert string, err error) { warned = append(warned, expert) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2", "10", "dense"}; !slices.Equal(names, want) || len(cks) != len(names) {
		t.Fatalf("LoadExperts = %v (%d checkpoints), want %v", names, len(cks), want)
	}
	if cks[0].Meta.Step != 0 || len(warned) != 2 || warned[0] != "2" {
		t.Fatalf("expert 2: step %d loaded, warnings for %v; want step 0 and the two damaged files", cks[0].Meta.Step, warned)
	}
}
