package flow

import (
	"context"
	"fmt"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// Router is what routing a text needs from a router dir: the newest router
// model and the featurizer state its centroids live in. It is safe for
// concurrent use.
type Router struct {
	State *embed.State
	Model *cluster.RouterModel
}

// LoadRouter loads the newest router version of dir and the featurizer
// state version it names.
func LoadRouter(dir string) (*Router, error) {
	rm, err := cluster.LoadRouter(dir, 0)
	if err != nil {
		return nil, err
	}
	s, err := embed.LoadState(dir, rm.FeaturizerVersion)
	if err != nil {
		return nil, fmt.Errorf("featurizer state v%d of router v%d: %w", rm.FeaturizerVersion, rm.Version, err)
	}
	return &Router{State: s, Model: rm}, nil
}

// K is the number of domains (centroids).
func (r *Router) K() int { return r.Model.K() }

// SquaredDistances featurizes texts and returns their squared distances to
// the centroids, row-major [len(texts), K]: d2[i*K+j] is text i's to
// centroid j (domain Model.IDs[j]).
func (r *Router) SquaredDistances(ctx context.Context, texts []string) ([]float32, error) {
	v, err := r.State.Featurizer.Transform(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("featurize: %w", err)
	}
	return r.Model.Model.SquaredDistances(RowsOf(v)), nil
}
