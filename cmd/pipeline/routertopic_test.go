package main

import (
	"log/slog"

	"context"
	"github.com/domainflow/domainflow/stages/embed"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

// publishOnRouterTopic writes one keyed message to router.models.
func publishOnRouterTopic(ctx context.Context, cc pipeline.ClientConfig, key string, value []byte, headers ...pipeline.Header) error {
	t, err := cluster.NewRouterTopic(cc, nil)
	if err != nil {
		return err
	}
	defer t.Close()
	return t.Publish(ctx, key, value, headers...)
}

// routerTopicLatest returns the last message of each key on router.models.
func routerTopicLatest(ctx context.Context, cc pipeline.ClientConfig) (map[string]pipeline.Message, error) {
	t, err := cluster.NewRouterTopic(cc, nil)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Latest(ctx)
}

// featurizerOnTopic returns featurizer state v from router.models (nil when
// it is not there).
func featurizerOnTopic(ctx context.Context, cc pipeline.ClientConfig, v int64, log *slog.Logger) (*embed.State, error) {
	ft, err := embed.NewFeaturizerTopic(cc, log)
	if err != nil {
		return nil, err
	}
	defer ft.Close()
	return ft.Get(ctx, v)
}
