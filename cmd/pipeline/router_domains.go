package main

import (
	"context"
	"log/slog"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

// routerDomains is cluster.Domains under the names train.go and archive.go
// use: which ids are domains (only the routers' on router.models).
type routerDomains struct{ d *cluster.Domains }

func newRouterDomains(cc pipeline.ClientConfig, log *slog.Logger) routerDomains {
	return routerDomains{cluster.NewDomains(cc, log)}
}

func (r routerDomains) close()            { r.d.Close() }
func (r routerDomains) known(id int) bool { return r.d.Known(id) }
func (r routerDomains) any() bool         { return r.d.Any() }

func (r routerDomains) refresh(ctx context.Context, topics []pipeline.TopicInfo) error {
	return r.d.Refresh(ctx, topics)
}

func (r routerDomains) domains(topics []pipeline.TopicInfo) []int { return r.d.IDs(topics) }
