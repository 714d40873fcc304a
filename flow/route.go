package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// RouteFilesConfig configures RouteFiles. The zero value of every field
// but RouterDir and Inputs works.
type RouteFilesConfig struct {
	// RouterDir is the router dir (a FitRouter output): its newest router
	// and the featurizer state it names are used.
	RouterDir string
	// Inputs are the input files, read in order (schemas.DocReader); "-"
	// reads JSON lines from Stdin.
	Inputs []string
	// Stdin is what the input "-" reads. Default: os.Stdin.
	Stdin io.Reader
	// Unbalanced routes each document to its nearest centroid. Default
	// false: under the router's streaming balance constraint, in input
	// order.
	Unbalanced bool
	// KeepMeta keeps each document's metadata (Routed.Metas), as
	// EvalRouting needs. Default false.
	KeepMeta bool
	// Novelty is the rule documents are judged novel by (Routed.Novel).
	// Default: the zero cluster.NoveltyRule, 0.99 and no margin.
	Novelty cluster.NoveltyRule
	// Logger gets a warning for each input record that cannot be read.
	// Default: nothing is logged.
	Logger *slog.Logger
}

// Routed is the result of RouteFiles: document i of the inputs went to
// domain Domains[i] at squared distance Distances[i]; its nearest domain is
// Nearest[i] at NearestDistances[i], and Novel[i] says whether it is novel
// by the rule of RouteFilesConfig.Novelty.
type Routed struct {
	IDs       []string          // the documents' ids, in input order
	Metas     []json.RawMessage // their metadata (RouteFilesConfig.KeepMeta)
	Domains   []int             // stable domain ids
	Distances []float32         // squared Euclidean distance to the domain's centroid
	// Nearest and NearestDistances are each document's nearest domain id
	// (argmin, whatever the balance assigned) and its squared distance.
	Nearest          []int
	NearestDistances []float32
	// Novel marks the novel documents (cluster.NoveltyRule); nil when the
	// router keeps no fit-time distances (saved before novelty scoring).
	Novel    []bool
	Router   *cluster.RouterModel
	Balanced bool // routed under the balance constraint
}

// RouteFiles featurizes the documents of cfg.Inputs with the router dir's
// featurizer and routes them with its router: `pipeline cluster assign`.
// It needs a featurizer state and a router at once, so it lives here.
func RouteFiles(ctx context.Context, cfg RouteFilesConfig) (*Routed, error) {
	r, err := LoadRouter(cfg.RouterDir)
	if err != nil {
		return nil, err
	}
	s, rm := r.State, r.Model
	dr := schemas.NewDocReader(cfg.Inputs, schemas.Limits{}, cfg.Stdin, cfg.Logger)
	dr.KeepMeta = cfg.KeepMeta
	defer dr.Close()
	if err := dr.ReadAll(); err != nil {
		return nil, err
	}
	if len(dr.Texts()) == 0 {
		return nil, fmt.Errorf("no documents in %v", cfg.Inputs)
	}
	v, err := s.Featurizer.Transform(ctx, dr.Texts())
	if err != nil {
		return nil, err
	}
	rc := rm.Route
	rc.Unbalanced = cfg.Unbalanced
	router, err := cluster.NewRouter(rm.Model, rc)
	if err != nil {
		return nil, err
	}
	if err := cfg.Novelty.Validate(); err != nil {
		return nil, err
	}
	a, err := router.RouteAll(RowsOf(v))
	if err != nil {
		return nil, err
	}
	out := &Routed{IDs: dr.IDs(), Metas: dr.Metas(), Domains: make([]int, len(a.Domains)), Distances: a.Distances,
		Nearest: make([]int, len(a.Nearest)), NearestDistances: a.NearestDistances, Router: rm, Balanced: !cfg.Unbalanced}
	for i, j := range a.Domains {
		out.Domains[i] = rm.IDs[j]
		out.Nearest[i] = rm.IDs[a.Nearest[i]]
	}
	if th := cfg.Novelty.Thresholds(rm); th != nil {
		out.Novel = make([]bool, len(a.Nearest))
		oth, fth := cfg.Novelty.OOVThreshold(rm), cfg.Novelty.FineThreshold(rm)
		cov, _ := s.Featurizer.(embed.VocabularyCoverage)
		texts := dr.Texts()
		var fine []float32
		if rm.Fine != nil {
			_, fine = rm.Fine.Model.Assign(RowsOf(v))
		}
		for i, j := range a.Nearest {
			out.Novel[i] = float64(a.NearestDistances[i]) > th[j] || (cov != nil && rm.OOV != nil && cov.OutOfVocabulary(texts[i]) > oth) ||
				(fine != nil && float64(fine[i]) > fth)
		}
	} else if cfg.Logger != nil {
		cfg.Logger.Info("router has no fit-time distances (saved before novelty scoring): documents are not judged for novelty; refit to turn novelty on",
			"router_version", rm.Version)
	}
	return out, nil
}

// RoutingEval scores routed documents against label fields; it is the
// JSON of `pipeline cluster eval`.
type RoutingEval struct {
	Docs           int                `json:"docs"`
	K              int                `json:"k"`
	RouterVersion  int64              `json:"router_version"`
	Balanced       bool               `json:"balanced"`
	NMI            map[string]float64 `json:"nmi"`    // by field
	ARI            map[string]float64 `json:"ari"`    // by field
	Purity         map[string]float64 `json:"purity"` // by field
	Sizes          []int              `json:"sizes"`  // routed, by domain id
	BalanceMaxMin  float64            `json:"balance_max_min"`
	BalanceMaxMean float64            `json:"balance_max_mean"`
	MeanDistance   float64            `json:"mean_distance"`
}

// EvalRouting compares the domains of r (routed with KeepMeta) with each
// of fields, a top-level field of the documents' metadata: normalized
// mutual information, adjusted Rand index and purity over the documents
// that have the field; and the balance of the routed sizes. A field no
// document has is an error.
func EvalRouting(r *Routed, fields []string) (*RoutingEval, error) {
	rep := &RoutingEval{Docs: len(r.Domains), K: r.Router.K(), RouterVersion: r.Router.Version, Balanced: r.Balanced,
		NMI: map[string]float64{}, ARI: map[string]float64{}, Purity: map[string]float64{}}
	for _, field := range fields {
		labels, pred := labelsOf(r, field)
		if len(labels) == 0 {
			return nil, fmt.Errorf("no document has a %q field", field)
		}
		rep.NMI[field], rep.ARI[field], rep.Purity[field] = cluster.NMI(labels, pred), cluster.ARI(labels, pred), cluster.Purity(labels, pred)
	}
	count := map[int]int{}
	var sum float64
	for i, d := range r.Domains {
		count[d]++
		sum += float64(r.Distances[i])
	}
	for _, id := range r.Router.SortedIDs() {
		rep.Sizes = append(rep.Sizes, count[id])
	}
	rep.BalanceMaxMin, rep.BalanceMaxMean = cluster.Balance(rep.Sizes)
	rep.MeanDistance = sum / float64(len(r.Domains))
	return rep, nil
}

// labelsOf maps the values of a metadata field to ints (in order of first
// appearance; a string value is itself, any other its JSON), with the
// routed domains of the documents that have it.
func labelsOf(r *Routed, field string) (labels, pred []int) {
	codes := map[string]int{}
	for i, meta := range r.Metas {
		var m map[string]json.RawMessage
		if len(meta) == 0 || json.Unmarshal(meta, &m) != nil {
			continue
		}
		raw, ok := m[field]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		c, ok := codes[s]
		if !ok {
			c = len(codes)
			codes[s] = c
		}
		labels = append(labels, c)
		pred = append(pred, r.Domains[i])
	}
	return labels, pred
}
