package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// NumExamples is how many example document ids a router keeps per domain.
const NumExamples = 3

// FitRouterConfig configures FitRouter. The zero value of every field but
// Out, K and Read works.
type FitRouterConfig struct {
	// Out is the router dir: the featurizer state and the new router
	// version are saved there.
	Out string
	// K is the number of domains.
	K int
	// Featurizer is the featurizer's kind. Default: embed.KindTfidf.
	Featurizer embed.Kind
	// FitOptions configure the featurizer.
	FitOptions embed.FitOptions
	// Read returns up to n more texts of the corpus, and io.EOF (with or
	// after the last ones) at its end. A featurizer that fits on a stream
	// (embed.Factory.Streams) reads in chunks; others read everything
	// first.
	Read func(n int) ([]string, error)
	// IDs returns the ids of every text read so far, in order (for the
	// router's example documents); nil keeps no examples.
	IDs func() []string
	// Cluster configures k-means; its K is set from K. Seed, Workers and
	// Logger default to FitOptions' and the config's.
	Cluster cluster.FitConfig
	// TopTerms is the number of top terms kept per domain. Default: 10.
	TopTerms int
	// Logger gets progress lines. Default: slog.Default().
	Logger *slog.Logger
}

// FitRouterResult is what FitRouter made.
type FitRouterResult struct {
	State  *embed.State
	Router *cluster.RouterModel
	Docs   int // documents the featurizer and k-means were fitted on
}

// FitRouter fits a featurizer on the corpus cfg.Read yields, clusters its
// vectors into cfg.K domains (balanced k-means unless cfg.Cluster.Unbalanced)
// and saves both into cfg.Out as the next featurizer state and router
// version. When cfg.Out already holds a router, the new centroids keep the
// ids of the closest previous ones (cluster.MatchIDs), so domain ids stay
// stable across refits. It is `pipeline cluster fit` and the fit phase of
// Job; it spans two stages (embed and cluster), so it lives in flow.
func FitRouter(ctx context.Context, cfg FitRouterConfig) (*FitRouterResult, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	kind := cfg.Featurizer
	if kind == "" {
		kind = embed.KindTfidf
	}
	if cfg.K < 1 {
		return nil, fmt.Errorf("fit router: k %d: want at least 1", cfg.K)
	}
	fac, ok := embed.Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("fit router: unknown featurizer %q", kind)
	}
	start := time.Now()
	var (
		fz  embed.Featurizer
		v   embed.Vectors
		err error
	)
	calib := &oovSample{}
	if fac.Streams() {
		fz, v, err = embed.FitStream(ctx, kind, func() ([]string, error) {
			t, err := cfg.Read(64)
			calib.add(t)
			return t, err
		}, cfg.FitOptions)
	} else {
		var texts []string
		for {
			t, rerr := cfg.Read(1 << 16)
			calib.add(t)
			texts = append(texts, t...)
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				return nil, fmt.Errorf("fit router: read: %w", rerr)
			}
		}
		fz, v, err = embed.Fit(ctx, kind, texts, cfg.FitOptions)
	}
	if err != nil {
		return nil, fmt.Errorf("featurize: %w", err)
	}
	s, err := embed.NewState(fz, v.Len())
	if err != nil {
		return nil, fmt.Errorf("featurize: %w", err)
	}
	log.Info("featurizer fitted", "featurizer", kind, "docs", v.Len(), "dim", fz.Dim(), "seconds", time.Since(start).Seconds())
	if v.Len() < cfg.K {
		return nil, fmt.Errorf("%d documents for %d domains: need at least as many documents as domains", v.Len(), cfg.K)
	}
	// The featurizer state goes into Out while k-means runs.
	saved := make(chan error, 1)
	go func() {
		_, err := embed.SaveState(cfg.Out, s)
		saved <- err
	}()
	fc := cfg.Cluster
	fc.K = cfg.K
	if fc.Logger == nil {
		fc.Logger = log
	}
	rows := RowsOf(v)
	m, labels, err := cluster.Fit(ctx, rows, fc)
	if serr := <-saved; serr != nil {
		return nil, fmt.Errorf("save the featurizer state: %w", serr)
	}
	if err != nil {
		return nil, err
	}
	var prev *cluster.RouterModel
	if latest, err := cluster.LatestRouterVersion(cfg.Out); err == nil && latest > 0 {
		if prev, err = cluster.LoadRouter(cfg.Out, latest); err != nil {
			log.Warn("previous router not loaded; domain ids start afresh", "err", err)
			prev = nil
		}
	}
	topN := cfg.TopTerms
	if topN == 0 {
		topN = 10
	}
	var ids []string
	if cfg.IDs != nil {
		ids = cfg.IDs()
	}
	dids, nextID := cluster.MatchIDs(prev, m)
	rm := &cluster.RouterModel{
		FeaturizerVersion: s.Settings.Version, Featurizer: string(s.Settings.Kind), Created: time.Now().UTC(),
		IDs: dids, Model: m, TopTerms: embed.CentroidTerms(s.Featurizer, m.Centroids, m.K, topN), Fit: fc, NextID: nextID,
		Origins:   cluster.FitOrigins(prev, dids),
		Distances: cluster.FitDistances(m, rows),
		OOV:       calib.stats(fz, v.Len()),
	}
	if ids != nil {
		rm.Examples = cluster.Examples(m, rows, ids, labels, NumExamples)
	}
	if rm.Fine, err = cluster.FitFine(ctx, rows, cluster.DefaultFineK, fc.Seed); err != nil {
		return nil, err
	}
	if _, err := cluster.SaveRouter(cfg.Out, rm); err != nil {
		return nil, err
	}
	return &FitRouterResult{State: s, Router: rm, Docs: v.Len()}, nil
}

// oovSample keeps every oovStride-th fit text, up to oovMaxTexts of them:
// the documents whose held-out out-of-vocabulary shares calibrate novelty
// (RouterModel.OOV).
type oovSample struct {
	n     int
	texts []string
}

const (
	oovStride   = 1
	oovMaxTexts = 5000
)

func (s *oovSample) add(texts []string) {
	for _, t := range texts {
		if s.n%oovStride == 0 && len(s.texts) < oovMaxTexts {
			s.texts = append(s.texts, t)
		}
		s.n++
	}
}

// stats returns the distribution of the sample's out-of-vocabulary shares
// as if each text had been held out of the fit of fz on fitDocs documents;
// nil when fz has no vocabulary or the sample is empty.
func (s *oovSample) stats(fz embed.Featurizer, fitDocs int) *cluster.DistanceStats {
	c, ok := fz.(embed.HeldOutCoverage)
	if !ok || len(s.texts) == 0 {
		return nil
	}
	shares := make([]float64, len(s.texts))
	for i, t := range s.texts {
		shares[i] = c.HeldOutOutOfVocabulary(t, fitDocs)
	}
	st := cluster.NewDistanceStats(shares)
	return &st
}

// RowsOf views featurized vectors as k-means rows (no copy).
func RowsOf(v embed.Vectors) *cluster.Rows {
	if v.Sparse != nil {
		s := v.Sparse
		return &cluster.Rows{N: s.Rows, Dim: s.Cols, Indptr: s.Indptr, Indices: s.Indices, Values: s.Data}
	}
	d := v.Dense
	return &cluster.Rows{N: d.Rows, Dim: d.Cols, Values: d.Data}
}
