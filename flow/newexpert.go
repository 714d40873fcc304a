package flow

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// InitStrategy names how a new domain's expert is initialized.
type InitStrategy string

// The strategies of NewExpertInit.
const (
	// InitSeed branches from the dense seed (train.ConsumerConfig.Init),
	// as c-BTM branches every expert; with no seed the expert starts from
	// scratch.
	InitSeed InitStrategy = "seed"
	// InitNearest branches from the expert of the domain whose centroid is
	// nearest the new domain's centroid.
	InitNearest InitStrategy = "nearest"
	// InitAverage branches from the parameter average of the TopK nearest
	// experts, weighted by the router's weights softmax(−d²/T) of the new
	// centroid against theirs (train.Merge).
	InitAverage InitStrategy = "average"
)

// DefaultInit is the strategy of an empty ExpertInitConfig.Strategy and of
// the CLI: on the growth benchmark (BENCHMARKS.md §11) a grown domain's
// expert branched from the nearest expert reaches lower bits per byte on
// the new corpus than one branched from the seed or from the average.
const DefaultInit = InitNearest

// InitStrategies lists the strategies.
var InitStrategies = []InitStrategy{InitSeed, InitNearest, InitAverage}

// ExpertInitConfig configures NewExpertInit.
type ExpertInitConfig struct {
	// Out is the training output dir: the experts' checkpoints are under
	// Out/experts/<name>.
	Out string
	// RouterDir holds the router whose centroids place the domains.
	// Default: Out/router.
	RouterDir string
	// Strategy is the initialization. Default: DefaultInit. Domains of a
	// fit (origin fit) always start from the seed; nearest and average
	// apply to domains created later (a growth, a split).
	Strategy InitStrategy
	// TopK is how many nearest experts InitAverage averages. Default: 2.
	TopK int
	// Temperature is T of InitAverage's weights softmax(−d²/T). Default:
	// 0.1, the temperature of the router's mixtures.
	Temperature float64
	// Logger gets a line per initialization. Default: slog.Default().
	Logger *slog.Logger
}

// NewExpertInit returns the train.ConsumerConfig.InitFor of a strategy. For
// an expert named by a domain id of the latest router in RouterDir, it finds
// the other domains of that router that have an expert with a checkpoint,
// orders them by the squared distance of their centroids to the new domain's
// (ties by id), and branches from the nearest one's newest checkpoint
// (InitNearest) or from the weighted average of the TopK nearest
// (InitAverage). It gives no checkpoint — the trainer then branches from its
// seed — with InitSeed, for an expert that is not a domain of the router,
// and when no other domain has an expert yet (the first experts of a run
// all start from the seed). The experts it reads from are not changed.
//
// The parents are their newest checkpoints when the new expert starts, so
// in a live stream the initialization depends on how far they have come;
// the new expert's checkpoint records which parameters it branched from
// (CheckpointMeta.Init, a digest) and how (CheckpointMeta.InitFrom).
func NewExpertInit(cfg ExpertInitConfig) (func(ctx context.Context, expert string) (*train.Checkpoint, string, error), error) {
	switch cfg.Strategy {
	case "":
		cfg.Strategy = DefaultInit
	case InitSeed, InitNearest, InitAverage:
	default:
		return nil, fmt.Errorf("flow: expert initialization %q: want seed, nearest or average", cfg.Strategy)
	}
	if cfg.RouterDir == "" {
		cfg.RouterDir = filepath.Join(cfg.Out, "router")
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 2
	}
	if cfg.Temperature <= 0 {
		cfg.Temperature = 0.1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, expert string) (*train.Checkpoint, string, error) {
		if cfg.Strategy == InitSeed {
			return nil, "", nil
		}
		id, err := strconv.Atoi(expert)
		if err != nil {
			return nil, "", nil // not a domain expert
		}
		v, err := cluster.LatestRouterVersion(cfg.RouterDir)
		if err != nil || v == 0 {
			return nil, "", err
		}
		rm, err := cluster.LoadRouter(cfg.RouterDir, v)
		if err != nil {
			return nil, "", err
		}
		if j, ok := rm.Index(id); ok && j < len(rm.Origins) && rm.Origins[j].How == cluster.OriginFit {
			// A domain of a fit starts from the seed like its siblings:
			// which of them checkpointed first must not matter (a
			// resumed run stays bit-identical).
			return nil, "", nil
		}
		parents, err := nearestExperts(cfg.Out, rm, id)
		if err != nil || len(parents) == 0 {
			return nil, "", err
		}
		if cfg.Strategy == InitNearest {
			p := parents[0]
			how := fmt.Sprintf("nearest %d", p.id)
			log.Info("new expert branches from the nearest expert", "expert", expert, "from", p.id, "distance2", p.d2)
			return p.ck, how, nil
		}
		parents = parents[:min(cfg.TopK, len(parents))]
		w := make([]float64, len(parents))
		cks := make([]*train.Checkpoint, len(parents))
		sum := 0.0
		for i, p := range parents {
			// The nearest first: d2 - parents[0].d2 ≥ 0 keeps exp in range.
			w[i] = math.Exp(-(p.d2 - parents[0].d2) / cfg.Temperature)
			sum += w[i]
			cks[i] = p.ck
		}
		parts := make([]string, len(parents))
		for i, p := range parents {
			w[i] /= sum
			parts[i] = fmt.Sprintf("%d:%.2f", p.id, w[i])
		}
		m, err := train.Merge(cks, w)
		if err != nil {
			return nil, "", err
		}
		how := "average " + strings.Join(parts, ",")
		log.Info("new expert branches from an average of the nearest experts", "expert", expert, "from", how)
		return m, how, nil
	}, nil
}

// parent is an existing expert a new one may branch from.
type parent struct {
	id int
	d2 float64 // squared distance of its centroid to the new domain's
	ck *train.Checkpoint
}

// nearestExperts lists the domains of rm other than id that have an expert
// with a checkpoint under out, nearest centroid first (ties by id).
func nearestExperts(out string, rm *cluster.RouterModel, id int) ([]parent, error) {
	m := rm.Model
	j := -1
	for i, x := range rm.IDs {
		if x == id {
			j = i
		}
	}
	if j < 0 {
		return nil, nil
	}
	c := m.Centroids[j*m.Dim : (j+1)*m.Dim]
	var ps []parent
	for i, x := range rm.IDs {
		if i == j {
			continue
		}
		ck, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, strconv.Itoa(x)))
		if err != nil || ck == nil {
			continue // no expert (yet) for this domain
		}
		d2 := 0.0
		for k, v := range m.Centroids[i*m.Dim : (i+1)*m.Dim] {
			d := float64(v) - float64(c[k])
			d2 += d * d
		}
		ps = append(ps, parent{id: x, d2: d2, ck: ck})
	}
	sort.Slice(ps, func(a, b int) bool {
		if ps[a].d2 != ps[b].d2 {
			return ps[a].d2 < ps[b].d2
		}
		return ps[a].id < ps[b].id
	})
	return ps, nil
}
