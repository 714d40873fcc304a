package main

import (
	"context"

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
