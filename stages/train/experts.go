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

// ExpertReport is one expert's final state, as the training consumers
// return it and `pipeline train --json` and `pipeline experts list --json`
// print it.
type ExpertReport struct {
	Expert string `json:"expert"`
	Step   int    `json:"step"`
	// Tokens is the bytes trained on (a token is a byte), and Docs the
	// documents applied: added to the packer, whether or not all their
	// bytes have been trained on yet (see Pending).
	Tokens int64 `json:"tokens"`
	Docs   int64 `json:"docs"`
	// Pending is the bytes applied and not trained on yet: the packer
	// holds them (documents and separators) until every one of its Batch
	// lanes has a window of Ctx+1 bytes, so that a long document waits in
	// its lane for more input to fill the others. They train when more
	// input arrives (and are in the checkpoint).
	Pending int64 `json:"pending_bytes"`
	// TokensAtStart is the bytes the expert had trained on when this run
	// of it began: those of the checkpoint it resumed from (0 for a new
	// expert). Tokens − TokensAtStart is this run's work.
	TokensAtStart int64 `json:"tokens_at_start,omitempty"`
	// Stop says why the expert stopped (StopBudget, StopIdle,
	// StopInterrupted); "" for a report not made at a stop (ReportOf).
	Stop          string  `json:"stop,omitempty"`
	Skipped       int64   `json:"skipped,omitempty"`
	Loss          float64 `json:"loss"` // the mean of the last (up to) 50 steps
	Checkpoint    string  `json:"checkpoint"`
	ParamsSHA256  string  `json:"params_sha256"`
	Size          string  `json:"size"`
	Init          string  `json:"init,omitempty"`
	InitFrom      string  `json:"init_from,omitempty"`
	RouterVersion int64   `json:"router_version,omitempty"`
}

// ReportOf summarizes checkpoint c of expert name, kept in dir.
func ReportOf(name, dir string, c *Checkpoint) ExpertReport {
	r := ExpertReport{Expert: name, Step: c.Meta.Step, Tokens: c.Meta.Tokens, Docs: c.Meta.Docs, Skipped: c.Meta.Skipped,
		Checkpoint: CheckpointPath(dir, c.Meta.Step), ParamsSHA256: ParamsSHA256(c.Model),
		Size: c.Model.Cfg.Name, Init: c.Meta.Init, InitFrom: c.Meta.InitFrom, RouterVersion: c.Meta.RouterVersion}
	r.Loss = RecentLoss(c.Meta.Losses)
	r.Pending = packerPending(c.Packer)
	return r
}

// Why an expert stopped (ExpertReport.Stop).
const (
	StopBudget      = "budget"      // it reached its token budget (ConsumerConfig.Tokens)
	StopIdle        = "idle"        // no input came for ConsumerConfig.ExitOnIdle
	StopInterrupted = "interrupted" // its context ended (a signal, or another expert failed)
)

// packerPending is the pending bytes of a packer state (Packer.State);
// 0 for one that does not decode.
func packerPending(state []byte) int64 {
	p := NewPacker(1, 1, DocSeparator)
	if p.Restore(state) != nil {
		return 0
	}
	return int64(p.Pending())
}

// RecentLossSteps is the window of RecentLoss.
const RecentLossSteps = 50

// RecentLoss is the loss an ExpertReport gives: the mean training loss
// (nats per byte) of the last (up to) RecentLossSteps steps of ls, since
// one step's loss is noisy; 0 for no steps.
func RecentLoss(ls []LossPoint) float64 {
	if len(ls) == 0 {
		return 0
	}
	ls = ls[max(0, len(ls)-RecentLossSteps):]
	s := 0.0
	for _, l := range ls {
		s += float64(l.Loss)
	}
	return s / float64(len(ls))
}

// LoadSeed loads a seed checkpoint for ConsumerConfig.Init: path is a
// checkpoint file (.arrow or .parquet), or an expert dir whose newest valid
// checkpoint is taken.
func LoadSeed(path string) (*Checkpoint, error) {
	if strings.HasSuffix(path, ".arrow") || strings.HasSuffix(path, ".parquet") {
		return LoadCheckpoint(path)
	}
	c, _, err := LoadLatestCheckpoint(path)
	if err == nil && c == nil {
		err = fmt.Errorf("no checkpoint in %s", path)
	}
	return c, err
}
