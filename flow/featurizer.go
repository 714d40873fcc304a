package flow

import (
	"context"
	"log/slog"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// RoutingFeaturizer is the routing stage's view of the featurizer lineage
// (cluster.Featurizer) over stages/embed: it publishes and reads featurizer
// states on router.models (embed.FeaturizerTopic) and names the domains of
// a router fitted on the stream. It joins two stages, so it lives here.
func RoutingFeaturizer(cc pipeline.ClientConfig, log *slog.Logger) cluster.Featurizer {
	return routingFeaturizer{cc: cc, log: log}
}

type routingFeaturizer struct {
	cc  pipeline.ClientConfig
	log *slog.Logger
}

func (c routingFeaturizer) Publish(ctx context.Context, dir string, v int64) error {
	ft, err := embed.NewFeaturizerTopic(c.cc, c.log)
	if err != nil {
		return err
	}
	defer ft.Close()
	return ft.PublishSaved(ctx, dir, v)
}

func (c routingFeaturizer) OnTopic(ctx context.Context, v int64) (cluster.FeaturizerState, error) {
	ft, err := embed.NewFeaturizerTopic(c.cc, c.log)
	if err != nil {
		return nil, err
	}
	defer ft.Close()
	s, err := ft.Get(ctx, v)
	if s == nil {
		return nil, err
	}
	return featurizerState{s}, err
}

func (c routingFeaturizer) Verify(dir string, v int64) error {
	_, err := embed.LoadState(dir, v)
	return err
}

// featurizerState is an embed.State as a cluster.FeaturizerState.
type featurizerState struct{ s *embed.State }

func (f featurizerState) Kind() string { return string(f.s.Settings.Kind) }
func (f featurizerState) TopTerms(m *cluster.Model, n int) [][]string {
	return embed.CentroidTerms(f.s.Featurizer, m.Centroids, m.K, n)
}
func (f featurizerState) Save(dir string) error { return embed.SaveReceivedState(dir, f.s) }
func (f featurizerState) Coverage() func(text string) float64 {
	if c, ok := f.s.Featurizer.(embed.VocabularyCoverage); ok {
		return c.OutOfVocabulary
	}
	return nil
}
