package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
)

// HistoryFile is the name of the routing history `pipeline run` writes
// beside its router dir (the routing stage's --history).
const HistoryFile = "routing-history.jsonl"

// DefaultHistory returns the routing history beside router dir routerDir:
// routing-history.jsonl in its parent dir, where `pipeline run --out OUT`
// writes it next to OUT/router.
func DefaultHistory(routerDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(routerDir)), HistoryFile)
}

// DomainsConfig configures ListDomains.
type DomainsConfig struct {
	// RouterDir is the router dir whose latest version is listed.
	RouterDir string
	// History is a routing history (the routing stage's --history) whose
	// latest drift per domain the list shows; it must exist. Default "":
	// DefaultHistory(RouterDir), read only when it exists.
	History string
}

// DomainList is what ListDomains found.
type DomainList struct {
	Router *cluster.RouterModel // the latest router version
	// Domains are the router's domains by id (RouterModel.Domains), each
	// with its latest drift from the history when the history has one.
	Domains []cluster.DomainInfo
	// History is the routing history read ("" for none) and Damaged the
	// number of its lines that were not a routing state and were skipped.
	History string
	Damaged int
}

// ListDomains lists the domains of the latest router version of
// cfg.RouterDir with their latest drift (cluster.LatestDrift) from a routing
// history: cfg.History, or the one beside the router dir when there is one.
// A domain the history has no drift for has none (DomainInfo.Drift nil), as
// every domain has without a history.
func ListDomains(cfg DomainsConfig) (*DomainList, error) {
	rm, err := cluster.LoadRouter(cfg.RouterDir, 0)
	if err != nil {
		return nil, err
	}
	l := &DomainList{Router: rm, Domains: rm.Domains()}
	path, must := cfg.History, true
	if path == "" {
		path, must = DefaultHistory(cfg.RouterDir), false
	}
	fh, err := os.Open(path)
	switch {
	case err == nil:
	case !must && errors.Is(err, os.ErrNotExist):
		return l, nil
	default:
		return nil, fmt.Errorf("routing history: %w", err)
	}
	defer fh.Close()
	lines, bad, err := cluster.ReadRoutingHistory(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.History, l.Damaged = path, bad
	drift := cluster.LatestDrift(lines)
	for i := range l.Domains {
		if v, ok := drift[l.Domains[i].ID]; ok {
			l.Domains[i].Drift = &v
		}
	}
	return l, nil
}

// DomainEditConfig configures SplitDomain and RemoveDomain. The zero value
// of every field but RouterDir (and, to split, Inputs) works.
type DomainEditConfig struct {
	// RouterDir is the router dir (a FitRouter output). The new router
	// version is saved there.
	RouterDir string
	// Domain is the stable id of the domain split or removed.
	Domain int
	// Inputs are the documents whose share of Domain (nearest centroid)
	// SplitDomain splits, read in order (schemas.DocReader); "-" reads
	// JSON lines from Stdin. RemoveDomain reads none.
	Inputs []string
	// Stdin is what the input "-" reads. Default: os.Stdin.
	Stdin io.Reader
	// Seed seeds SplitDomain's 2-means. Default 0.
	Seed uint64
	// Connect, when set, is called first, before anything is saved (an
	// unreachable broker fails the edit and leaves the router dir as it
	// was); the new version is then published on router.models through the
	// client it returns (cluster.RouterTopic), where running routing stages
	// pick it up. When the router dir's latest version is newer than the
	// latest on router.models (an earlier edit saved it but could not
	// publish it), the edit fails with ErrUnpublished, changing nothing:
	// PublishRouter publishes that version. Default nil: the version is
	// only saved.
	Connect func(ctx context.Context) (pipeline.ClientConfig, error)
	// Logger gets a warning for each input record that cannot be read and
	// a line for the router written. Default: nothing is logged.
	Logger *slog.Logger
}

// DomainEdit is what SplitDomain or RemoveDomain did.
type DomainEdit struct {
	Previous *cluster.RouterModel // the router version edited
	Router   *cluster.RouterModel // the new version, saved in the router dir
	// NewDomain is the id of the domain a split added (-1 for a removal).
	NewDomain int
	// Published reports that the new version was published on
	// router.models (DomainEditConfig.Connect).
	Published bool
}

// SplitDomain splits domain cfg.Domain of the router dir in two: it
// featurizes the documents of cfg.Inputs with the router's featurizer,
// keeps those the router puts in the domain (nearest centroid) and splits
// them with a balanced 2-means (cluster.RouterModel.SplitDomain): the half
// nearer the old centroid keeps the id, the other gets a new one. The new
// version names both halves by their top terms and example documents; it
// is saved into the router dir and, with cfg.Connect, published.
func SplitDomain(ctx context.Context, cfg DomainEditConfig) (*DomainEdit, error) {
	return editDomains(ctx, cfg, "split", func(r *Router) (*cluster.RouterModel, error) {
		return splitDomain(ctx, r.State, r.Model, cfg)
	})
}

// RemoveDomain writes a router version without domain cfg.Domain: its id
// is retired (never reused), and the documents it would have received go
// to their next nearest domain (cluster.RouterModel.RemoveDomain). The new
// version is saved into the router dir and, with cfg.Connect, published.
func RemoveDomain(ctx context.Context, cfg DomainEditConfig) (*DomainEdit, error) {
	return editDomains(ctx, cfg, "remove", func(r *Router) (*cluster.RouterModel, error) {
		return r.Model.RemoveDomain(cfg.Domain)
	})
}

// ErrUnpublished marks an edit refused because the router dir's latest
// version is not on router.models although a newer one than there is (see
// DomainEditConfig.Connect): PublishRouter publishes it.
var ErrUnpublished = errors.New("router version saved but not published")

// editDomains loads the router dir, makes its next version with edit,
// saves it and publishes it when cfg.Connect is set. With cfg.Connect, the
// broker is reached and router.models read before anything is saved.
func editDomains(ctx context.Context, cfg DomainEditConfig, op string, edit func(*Router) (*cluster.RouterModel, error)) (*DomainEdit, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := LoadRouter(cfg.RouterDir)
	if err != nil {
		return nil, err
	}
	var rt *cluster.RouterTopic
	if cfg.Connect != nil {
		if rt, err = connectRouterTopic(ctx, cfg.Connect, log); err != nil {
			return nil, err
		}
		defer rt.Close()
		pub, err := rt.LatestRouter(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
		}
		if pub != nil && pub.Version < r.Model.Version {
			return nil, fmt.Errorf("%w: router v%d in %s is newer than v%d on %s (an earlier edit saved it but could not publish it); "+
				"publish it with 'pipeline domains publish --router %s', then edit again", ErrUnpublished,
				r.Model.Version, cfg.RouterDir, pub.Version, pipeline.TopicRouterModels, cfg.RouterDir)
		}
	}
	next, err := edit(r)
	if err != nil {
		return nil, err
	}
	res := &DomainEdit{Previous: r.Model, Router: next, NewDomain: -1}
	if op == "split" {
		res.NewDomain = next.IDs[len(next.IDs)-1]
	}
	if _, err := cluster.SaveRouter(cfg.RouterDir, next); err != nil {
		return nil, err
	}
	if rt != nil {
		if err := rt.PublishRouter(ctx, next); err != nil {
			return nil, fmt.Errorf("saved router v%d but could not publish it (publish it with 'pipeline domains publish --router %s'): %w", next.Version, cfg.RouterDir, err)
		}
		res.Published = true
	}
	log.Info("router written", "op", op, "domain", cfg.Domain, "version", next.Version, "ids", next.IDs, "published", res.Published)
	return res, nil
}

// connectRouterTopic calls connect and opens router.models on the cluster
// it reaches.
func connectRouterTopic(ctx context.Context, connect func(context.Context) (pipeline.ClientConfig, error), log *slog.Logger) (*cluster.RouterTopic, error) {
	cc, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	return cluster.NewRouterTopic(cc, log)
}

// PublishConfig configures PublishRouter.
type PublishConfig struct {
	// RouterDir is the router dir whose version is published.
	RouterDir string
	// Version is the version published. Default 0: the latest.
	Version int64
	// Connect returns the client of the cluster whose router.models gets
	// the version. Required.
	Connect func(ctx context.Context) (pipeline.ClientConfig, error)
	// Logger gets a line for the router published. Default: nothing is
	// logged.
	Logger *slog.Logger
}

// Published is what PublishRouter did.
type Published struct {
	Router *cluster.RouterModel // the version of the router dir
	// Previous is the version router.models held before (0: none), and
	// Already reports that it was this version: nothing was published.
	Previous int64
	Already  bool
}

// PublishRouter publishes a saved router version on router.models, where
// running routing stages pick it up: a version whose edit (SplitDomain,
// RemoveDomain) was saved but could not be published. It refuses a version
// older than the one router.models holds (the stages would route with an
// older router) and publishes nothing when router.models holds it already.
func PublishRouter(ctx context.Context, cfg PublishConfig) (*Published, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Connect == nil {
		return nil, errors.New("publish router: no broker (PublishConfig.Connect)")
	}
	rm, err := cluster.LoadRouter(cfg.RouterDir, cfg.Version)
	if err != nil {
		return nil, err
	}
	rt, err := connectRouterTopic(ctx, cfg.Connect, log)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	pub, err := rt.LatestRouter(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pipeline.TopicRouterModels, err)
	}
	res := &Published{Router: rm}
	if pub != nil {
		res.Previous = pub.Version
		switch {
		case pub.Version == rm.Version:
			res.Already = true
			return res, nil
		case pub.Version > rm.Version:
			return nil, fmt.Errorf("%s holds router v%d, newer than v%d of %s: publishing it would route with an older router",
				pipeline.TopicRouterModels, pub.Version, rm.Version, cfg.RouterDir)
		}
	}
	if err := rt.PublishRouter(ctx, rm); err != nil {
		return nil, err
	}
	log.Info("router published", "version", rm.Version, "previous", res.Previous, "ids", rm.IDs)
	return res, nil
}

// splitDomain featurizes cfg.Inputs with s, keeps the documents rm routes
// to cfg.Domain (plain argmin) and splits the domain over them; the new
// version gets top terms and examples.
func splitDomain(ctx context.Context, s *embed.State, rm *cluster.RouterModel, cfg DomainEditConfig) (*cluster.RouterModel, error) {
	id := cfg.Domain
	j, ok := rm.Index(id)
	if !ok {
		return nil, fmt.Errorf("no domain %d (have %v)", id, rm.IDs)
	}
	dr := schemas.NewDocReader(cfg.Inputs, schemas.Limits{}, cfg.Stdin, cfg.Logger)
	defer dr.Close()
	if err := dr.ReadAll(); err != nil {
		return nil, err
	}
	v, err := s.Featurizer.Transform(ctx, dr.Texts())
	if err != nil {
		return nil, err
	}
	all := RowsOf(v)
	nearest, _ := rm.Model.Assign(all)
	var pick []int
	for i, c := range nearest {
		if c == j {
			pick = append(pick, i)
		}
	}
	if len(pick) < 2 {
		return nil, fmt.Errorf("%d of the %d documents of %v are nearest domain %d: need at least 2 to split it", len(pick), all.N, cfg.Inputs, id)
	}
	members, ids := all.Subset(pick), make([]string, len(pick))
	for i, p := range pick {
		ids[i] = dr.IDs()[p]
	}
	next, err := rm.SplitDomain(ctx, id, members, cfg.Seed)
	if err != nil {
		return nil, err
	}
	next.TopTerms = embed.CentroidTerms(s.Featurizer, next.Model.Centroids, next.Model.K, rm.TopTermCount())
	labels, _ := next.Model.Assign(members)
	ex := cluster.Examples(next.Model, members, ids, labels, NumExamples)
	if next.Examples == nil {
		next.Examples = make([][]string, next.K())
	}
	next.Examples[j], next.Examples[next.K()-1] = ex[j], ex[next.K()-1]
	return next, nil
}
