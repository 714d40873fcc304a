package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ExpertDir is where expert name keeps its checkpoints under a training
// output dir: out/experts/<name>.
func ExpertDir(out, name string) string { return filepath.Join(out, "experts", name) }

// ExpertLess orders expert names: numbers (domain ids) numerically first,
// then the other names ("dense", merged experts) lexically.
func ExpertLess(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return x < y
	case errA == nil:
		return true
	case errB == nil:
		return false
	}
	return a < b
}

// LoadExperts loads the newest valid checkpoint (LoadLatestCheckpoint) of
// every expert under the training output dir out, that is of every
// directory out/experts/<name> whose name does not start with a dot,
// ordered by ExpertLess. An expert with no checkpoint yet is left out. A
// damaged checkpoint that was skipped for an older one is passed to warn
// with the expert's name; warn may be nil.
//
// It fails when out has no experts directory or when an expert has
// checkpoints but none is valid.
func LoadExperts(out string, warn func(expert string, err error)) (names []string, cks []*Checkpoint, err error) {
	dir := filepath.Join(out, "experts")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no experts in %s (no %s)", out, dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("train: list experts: %w", err)
	}
	var all []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			all = append(all, e.Name())
		}
	}
	sort.Slice(all, func(i, j int) bool { return ExpertLess(all[i], all[j]) })
	for _, n := range all {
		c, skipped, err := LoadLatestCheckpoint(ExpertDir(out, n))
		if warn != nil {
			for _, e := range skipped {
				warn(n, e)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("expert %s: %w", n, err)
		}
		if c == nil {
			continue
		}
		names = append(names, n)
		cks = append(cks, c)
	}
	return names, cks, nil
}
