package flow_test

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// grownRouter adds to the tiny run's router a third domain whose centroid
// lies at fraction f of the way from the cats centroid to the markets one,
// as a new router version; it returns the new domain's id.
func grownRouter(t *testing.T, out string, expertOf map[string]string, f float32) int {
	t.Helper()
	dir := out + "/router"
	v, err := cluster.LatestRouterVersion(dir)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := cluster.LoadRouter(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	m := rm.Model
	row := func(name string) []float32 {
		id, _ := strconv.Atoi(name)
		for j, x := range rm.IDs {
			if x == id {
				return m.Centroids[j*m.Dim : (j+1)*m.Dim]
			}
		}
		t.Fatalf("no domain %s", name)
		return nil
	}
	cats, markets := row(expertOf["cats"]), row(expertOf["markets"])
	c := make([]float32, m.Dim)
	for k := range c {
		c[k] = cats[k] + f*(markets[k]-cats[k])
	}
	grown := &cluster.Model{K: m.K + 1, Dim: m.Dim, Centroids: append(append([]float32(nil), m.Centroids...), c...),
		Sizes: append(append([]int(nil), m.Sizes...), 1)}
	id := rm.NextID
	next := &cluster.RouterModel{FeaturizerVersion: rm.FeaturizerVersion, Featurizer: rm.Featurizer,
		IDs: append(append([]int(nil), rm.IDs...), id), Model: grown, Fit: rm.Fit, NextID: id + 1}
	for range rm.IDs {
		next.Origins = append(next.Origins, cluster.DomainOrigin{How: cluster.OriginFit, Version: rm.Version})
	}
	next.Origins = append(next.Origins, cluster.DomainOrigin{How: cluster.OriginGrow})
	if _, err := cluster.SaveRouter(dir, next); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNewExpertInit(t *testing.T) {
	out := t.TempDir()
	expertOf, err := tinyRun(out, false)
	if err != nil {
		t.Fatal(err)
	}
	id := grownRouter(t, out, expertOf, 0.25) // nearer the cats
	load := func(name string) *train.Checkpoint {
		ck, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, name))
		if err != nil || ck == nil {
			t.Fatalf("expert %s: %v", name, err)
		}
		return ck
	}
	cats, markets := load(expertOf["cats"]), load(expertOf["markets"])
	ctx := context.Background()
	tests := []struct {
		strategy flow.InitStrategy
		expert   string
		want     func(t *testing.T, ck *train.Checkpoint, how string)
	}{
		{flow.InitSeed, strconv.Itoa(id), func(t *testing.T, ck *train.Checkpoint, how string) {
			if ck != nil || how != "" {
				t.Errorf("seed: got a checkpoint (%q); the trainer's seed must be used", how)
			}
		}},
		{flow.InitNearest, expertOf["markets"], func(t *testing.T, ck *train.Checkpoint, how string) {
			if ck != nil || how != "" {
				t.Errorf("a domain of the fit got %q; it must start from the seed", how)
			}
		}},
		{flow.InitNearest, "dense", func(t *testing.T, ck *train.Checkpoint, how string) {
			if ck != nil {
				t.Errorf("an expert that is no domain got %q", how)
			}
		}},
		{flow.InitNearest, strconv.Itoa(id), func(t *testing.T, ck *train.Checkpoint, how string) {
			if ck == nil || train.ParamsSHA256(ck.Model) != train.ParamsSHA256(cats.Model) {
				t.Errorf("nearest: %q, want the cats expert's parameters", how)
			}
			if how != "nearest "+expertOf["cats"] {
				t.Errorf("nearest: how %q", how)
			}
		}},
		{flow.InitAverage, strconv.Itoa(id), func(t *testing.T, ck *train.Checkpoint, how string) {
			if ck == nil || !strings.HasPrefix(how, "average "+expertOf["cats"]+":") {
				t.Fatalf("average: %q, want the cats expert first", how)
			}
			// Every parameter is w·cats + (1−w)·markets for one w > 0.5.
			var w float64
			for k := range ck.Model.Params {
				c, m, p := float64(cats.Model.Params[k]), float64(markets.Model.Params[k]), float64(ck.Model.Params[k])
				if math.Abs(c-m) > 1e-3 {
					w = (p - m) / (c - m)
					break
				}
			}
			if w <= 0.5 || w > 1 {
				t.Fatalf("average: weight of the nearest expert %v, want in (0.5, 1]", w)
			}
			for k := range ck.Model.Params {
				c, m, p := float64(cats.Model.Params[k]), float64(markets.Model.Params[k]), float64(ck.Model.Params[k])
				if d := math.Abs(p - (w*c + (1-w)*m)); d > 1e-5 {
					t.Fatalf("average: parameter %d is %v, want %v", k, p, w*c+(1-w)*m)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy)+"/"+tt.expert, func(t *testing.T) {
			initFor, err := flow.NewExpertInit(flow.ExpertInitConfig{Out: out, Strategy: tt.strategy, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ck, how, err := initFor(ctx, tt.expert)
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, ck, how)
		})
	}
	// The experts it read from are unchanged.
	if train.ParamsSHA256(load(expertOf["cats"]).Model) != train.ParamsSHA256(cats.Model) {
		t.Error("the parent expert changed")
	}
	if _, err := flow.NewExpertInit(flow.ExpertInitConfig{Out: out, Strategy: "magic"}); err == nil {
		t.Error("an unknown strategy was accepted")
	}
}
