package flow_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/ref"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
	"github.com/domainflow/domainflow/stages/train"
)

// The two topics of the tiny run: documents about cats and about markets.
var topics = map[string][]string{
	"cats": {
		"the cat sat on the mat and purred at the kitten",
		"a kitten chased the cat around the garden mat",
		"my cat likes fish and sleeps on the warm mat",
		"the kitten and the old cat purred in the sun",
		"cats purr, kittens play, and the cat naps on a mat",
		"a tabby cat caught a mouse near the kitten's bowl",
	},
	"markets": {
		"the market rose as bank shares gained in early trading",
		"stocks fell and the bank cut its rate forecast for the market",
		"investors sold shares as the stock market slid on rate fears",
		"the central bank held rates and the shares of lenders rose",
		"bond yields and bank stocks moved as the market priced a rate cut",
		"trading in shares was heavy as the market closed higher",
	},
}

// tinyConfig is an expert small enough to train in a blink.
var tinyConfig = train.Config{Name: "demo", Vocab: 256, Dim: 16, Layers: 1, Heads: 2, Ctx: 16, Batch: 4}

// tinyRun writes what `pipeline run` leaves for evaluation, at toy size,
// into out: a tf-idf router of two domains fitted on the topic documents
// (out/router) and an expert per domain trained for a few steps on the
// documents routed to it (out/experts/<domain id>), plus a "dense" expert
// on all of them when dense is set. It returns the expert trained on each
// topic's documents.
func tinyRun(out string, dense bool) (map[string]string, error) {
	ctx := context.Background()
	var texts, topicOf []string
	for _, t := range []string{"cats", "markets"} {
		for _, d := range topics[t] {
			texts = append(texts, d)
			topicOf = append(topicOf, t)
		}
	}
	// The router: tf-idf, balanced 2-means, both saved in out/router.
	rdir := out + "/router"
	f, err := embed.FitTfidf(ctx, texts, embed.TfidfConfig{})
	if err != nil {
		return nil, err
	}
	st, err := embed.NewState(f, len(texts))
	if err != nil {
		return nil, err
	}
	if _, err := embed.SaveState(rdir, st); err != nil {
		return nil, err
	}
	v, err := f.Transform(ctx, texts)
	if err != nil {
		return nil, err
	}
	s := v.Sparse
	rows := &cluster.Rows{N: s.Rows, Dim: s.Cols, Indptr: s.Indptr, Indices: s.Indices, Values: s.Data}
	fc := cluster.FitConfig{K: 2, Seed: 1, Workers: 1}
	m, labels, err := cluster.Fit(ctx, rows, fc)
	if err != nil {
		return nil, err
	}
	ids, next := cluster.MatchIDs(nil, m)
	rm := &cluster.RouterModel{FeaturizerVersion: st.Settings.Version, Featurizer: string(st.Settings.Kind),
		IDs: ids, Model: m, Fit: fc, NextID: next}
	if _, err := cluster.SaveRouter(rdir, rm); err != nil {
		return nil, err
	}
	// The experts: each domain's documents, repeated, for 20 steps.
	be, err := accel.Open("ref", 1)
	if err != nil {
		return nil, err
	}
	expertOf := map[string]string{}
	docs := map[string][]string{}
	for i, l := range labels {
		name := strconv.Itoa(ids[l])
		docs[name] = append(docs[name], texts[i])
		if e, ok := expertOf[topicOf[i]]; ok && e != name {
			return nil, fmt.Errorf("topic %s split over domains %s and %s", topicOf[i], e, name)
		}
		expertOf[topicOf[i]] = name
	}
	if dense {
		docs["dense"] = texts
	}
	for name, ds := range docs {
		oc := train.DefaultOptConfig()
		oc.LR, oc.WarmupSteps, oc.TotalSteps = 1e-2, 2, 20
		tr, err := train.NewTrainer(train.TrainerConfig{Expert: name, Model: tinyConfig, Opt: oc, Seed: 7, Backend: be, Threads: 1})
		if err != nil {
			return nil, err
		}
		for r := range 8 {
			for i, d := range ds {
				tr.Add("docs/0", train.Position{Offset: int64(r*len(ds) + i)}, []byte(d))
			}
		}
		if _, err := tr.Train(ctx, 20, 0); err != nil {
			return nil, err
		}
		if _, err := train.SaveCheckpoint(train.ExpertDir(out, name), tr.Checkpoint(), 0); err != nil {
			return nil, err
		}
	}
	return expertOf, nil
}

// heldOut are documents none of the experts saw.
var heldOut = []string{
	"the kitten purred while the cat slept on the mat by the fire",
	"bank shares rose as the market cheered the rate decision",
	strings.Repeat("a cat, a kitten and a mat; ", 3),
}
