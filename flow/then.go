package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// ThenSummary is the second phase of a continuous job (Job.Then): a new
// corpus B arrives after A, with growth on.
type ThenSummary struct {
	DocsIn         int64 `json:"docs_in"`
	DocsRouted     int64 `json:"docs_routed"`  // B's documents placed in a domain
	DocsPending    int64 `json:"docs_pending"` // parked as novel, in no domain (yet)
	DocsDeadletter int64 `json:"docs_deadletter"`
	DocsHeldout    int64 `json:"docs_heldout"`
	// InNewDomains and InOldDomains split DocsRouted.
	InNewDomains int64 `json:"in_new_domains"`
	InOldDomains int64 `json:"in_old_domains"`
	// Sources counts B's documents by their "source" field (documents
	// without one under ""): where each source's documents went.
	Sources map[string]*SourcePlacement `json:"sources"`
	// RouterVersion is the router after B; Growths how many growths B
	// caused; NewDomains the domains they added, with their experts.
	RouterVersion int64       `json:"router_version"`
	Growths       int         `json:"growths"`
	NewDomains    []JobDomain `json:"new_domains"`
	// Init is how the new experts were initialized (train --init-new).
	Init InitStrategy `json:"init"`
	// FirstNewSeconds is the time from B's first document on docs.raw to
	// the first document on a new domain's topic (broker timestamps), and
	// FirstNewDocs how many of B's documents the stream had brought when
	// the first growth was made (the position of the last document it was
	// fitted on, plus one): the latency of growth. Both are -1 when nothing
	// reached a new domain.
	FirstNewSeconds float64 `json:"first_new_seconds"`
	FirstNewDocs    int64   `json:"first_new_docs"`
	// EvalA and EvalB evaluate every expert and the mixture after B on the
	// held-out documents of A and of B.
	EvalA JobEval `json:"eval_a"`
	EvalB JobEval `json:"eval_b"`
	// Phases holds the wall seconds of B's phases.
	Phases map[string]float64 `json:"phases"`
}

// SourcePlacement counts where one source's documents went.
type SourcePlacement struct {
	New     int64 `json:"new"`     // in a domain grown from novel documents
	Old     int64 `json:"old"`     // in a domain of the router before B
	Pending int64 `json:"pending"` // in none (parked)
}

// then runs the second phase: B ingested after A with growth on, new
// experts for the new domains, and the evaluation on A's and B's held-out
// documents.
func (j *Job) then(ctx context.Context, cc pipeline.ClientConfig, a *Split, before *cluster.RouterModel, log *slog.Logger) (*ThenSummary, error) {
	log = log.With("phase", "then")
	ts := &ThenSummary{Phases: map[string]float64{}, Sources: map[string]*SourcePlacement{}, Init: j.NewExpertInit}
	phaseStart := time.Now()
	phase := func(name string) error {
		ts.Phases[name] = time.Since(phaseStart).Seconds()
		phaseStart = time.Now()
		return j.phases.ended("then: " + strings.ReplaceAll(name, "_", " "))
	}
	dir := filepath.Join(j.Out, "then")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := SplitInputs(SplitConfig{Inputs: j.Then, Dir: dir, Heldout: j.Heldout,
		TextField: j.TextField, IDField: j.IDField, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("split the second input: %w", err)
	}
	ts.DocsIn, ts.DocsHeldout = int64(len(b.Train)+len(b.Rejected)), int64(b.Heldout)
	if err := phase("split"); err != nil {
		return nil, err
	}
	n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return nil, err
	}
	base := make([]int64, n) // A's documents per partition: B starts there
	for i := range a.Train {
		base[i%n]++
	}
	if _, err := j.ingest(ctx, cc, b, base, len(a.Rejected), log); err != nil {
		return nil, fmt.Errorf("ingest the second input: %w", err)
	}
	if err := phase("ingest"); err != nil {
		return nil, err
	}

	router := filepath.Join(j.Out, "router")
	r, err := LoadRouter(router)
	if err != nil {
		return nil, err
	}
	var grow *cluster.GrowConfig
	if !j.ThenFrozen {
		g := j.Grow
		g.Seed = j.Seed
		grow = &g
	}
	var dups atomic.Int64
	if _, err := j.route(ctx, cc, r.State, router, grow, &dups, log); err != nil {
		return nil, fmt.Errorf("route the second input: %w", err)
	}
	if err := phase("route"); err != nil {
		return nil, err
	}
	after, err := LoadRouter(router)
	if err != nil {
		return nil, err
	}
	rm := after.Model
	ts.RouterVersion = rm.Version
	var first *cluster.Growth
	for v := before.Version + 1; v <= rm.Version; v++ {
		if g, err := cluster.LoadRouter(router, v); err == nil && g.Growth != nil {
			ts.Growths++
			if first == nil {
				first = g.Growth
			}
		}
	}
	if err := j.placeB(ctx, cc, b, base, before, rm, ts); err != nil {
		return nil, err
	}
	ts.FirstNewDocs = -1
	if first != nil && ts.InNewDomains > 0 {
		if o := first.Through; o.Topic == pipeline.TopicRaw && int(o.Partition) < n {
			ts.FirstNewDocs = (o.Offset-base[o.Partition])*int64(n) + int64(o.Partition) + 1
		}
	}
	if err := phase("count"); err != nil {
		return nil, err
	}

	// New experts, same per-domain budget; the old experts are at their
	// budget and stop at once (they are not retrained).
	if j.Train {
		var newIDs []int
		for _, id := range rm.IDs {
			if _, ok := before.Index(id); !ok {
				newIDs = append(newIDs, id)
			}
		}
		var reports []train.ExpertReport
		name := "train_new_experts"
		if j.ThenFrozen {
			reports, err = j.trainMore(ctx, cc, rm.IDs, log)
			name = "train_old_experts"
		} else {
			reports, err = j.trainNew(ctx, cc, router, newIDs, log)
		}
		if err != nil {
			return nil, err
		}
		if err := phase(name); err != nil {
			return nil, err
		}
		byExpert := map[string]train.ExpertReport{}
		for _, r := range reports {
			byExpert[r.Expert] = r
		}
		for i := range ts.NewDomains {
			if r, ok := byExpert[strconv.Itoa(ts.NewDomains[i].ID)]; ok {
				ts.NewDomains[i].Tokens, ts.NewDomains[i].Loss = r.Tokens, r.Loss
			}
		}
		for _, e := range []struct {
			texts []string
			into  *JobEval
		}{{a.HeldoutTexts, &ts.EvalA}, {b.HeldoutTexts, &ts.EvalB}} {
			if len(e.texts) == 0 {
				continue
			}
			rep, err := j.evaluate(ctx, router, e.texts, log)
			if err != nil {
				return nil, err
			}
			*e.into = jobEval(rep)
		}
		if err := phase("eval"); err != nil {
			return nil, err
		}
	}
	if ts.DocsRouted+ts.DocsPending+ts.DocsDeadletter != ts.DocsIn {
		log.Error("documents of the second input unaccounted for", "in", ts.DocsIn, "routed", ts.DocsRouted,
			"pending", ts.DocsPending, "deadletter", ts.DocsDeadletter)
	}
	return ts, nil
}

// placeB reads where B's documents went: the domain topics (deduplicated by
// origin, as the trainers read them) and the dead letters; the rest are
// pending. It also finds the first document of a new domain.
func (j *Job) placeB(ctx context.Context, cc pipeline.ClientConfig, b *Split, base []int64, before, rm *cluster.RouterModel, ts *ThenSummary) error {
	n := int64(len(base))
	// B's i-th training document is at partition i%n, offset base+i/n.
	pos := func(o schemas.Origin) (int64, bool) {
		if o.Topic != pipeline.TopicRaw || int64(o.Partition) >= n || o.Offset < base[o.Partition] {
			return 0, false
		}
		return (o.Offset-base[o.Partition])*n + int64(o.Partition), true
	}
	source := func(i int64) string {
		var meta struct {
			Source string `json:"source"`
		}
		if i < int64(len(b.Train)) && b.Train[i].Meta != nil {
			_ = json.Unmarshal(b.Train[i].Meta, &meta) // no source: ""

		}
		return meta.Source
	}
	placement := func(s string) *SourcePlacement {
		p := ts.Sources[s]
		if p == nil {
			p = &SourcePlacement{}
			ts.Sources[s] = p
		}
		return p
	}
	placed := map[int64]bool{}
	var firstNew time.Time
	for jx, id := range rm.IDs {
		_, old := before.Index(id)
		msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
		if err != nil {
			return fmt.Errorf("read %s: %w", pipeline.DomainTopic(id), err)
		}
		var size int64
		last := map[int32]int64{}
		for _, m := range msgs {
			d, err := pipeline.DecodeMessage(m, schemas.Limits{}, memory.DefaultAllocator)
			if err != nil {
				continue
			}
			_ = d.EachDocument(func(_ schemas.Document, o schemas.Origin) error {
				if l, ok := last[o.Partition]; ok && o.Offset <= l {
					return nil // a duplicate, skipped by the trainers too
				}
				last[o.Partition] = o.Offset
				size++
				i, ok := pos(o)
				if !ok || placed[i] {
					return nil
				}
				placed[i] = true
				ts.DocsRouted++
				if old {
					ts.InOldDomains++
					placement(source(i)).Old++
					return nil
				}
				ts.InNewDomains++
				placement(source(i)).New++
				if firstNew.IsZero() || m.Time.Before(firstNew) {
					firstNew = m.Time
				}
				return nil
			})
			d.Release()
		}
		if !old {
			dom := JobDomain{ID: id, Size: size, TopTerms: []string{}}
			if rm.TopTerms != nil && rm.TopTerms[jx] != nil {
				dom.TopTerms = rm.TopTerms[jx]
			}
			ts.NewDomains = append(ts.NewDomains, dom)
		}
	}
	// Dead letters of B's documents (by origin), then the pending rest.
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return err
	}
	dead := map[int64]bool{}
	for _, m := range msgs {
		dl := pipeline.ParseDeadLetter(m)
		if dl.Stage == "train" || dl.Stage == "archive" || dl.Stage == jobStage {
			continue
		}
		if i, ok := pos(dl.Origin); ok && !placed[i] {
			dead[i] = true
		}
	}
	ts.DocsDeadletter = int64(len(dead)) + int64(len(b.Rejected))
	// Pending: the mover's pending rows, as it saved them (none without
	// growth: nothing is parked).
	var pending []schemas.Origin
	if !j.ThenFrozen {
		var err error
		if pending, err = moverPending(ctx, cc); err != nil {
			return err
		}
	}
	for _, o := range pending {
		if i, ok := pos(o); ok && !placed[i] && !dead[i] {
			ts.DocsPending++
			placement(source(i)).Pending++
		}
	}
	ts.FirstNewSeconds = -1
	if !firstNew.IsZero() {
		raw, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicRaw, 0)
		if err != nil {
			return err
		}
		var startB time.Time
		for _, m := range raw {
			if m.Offset >= base[m.Partition] && (startB.IsZero() || m.Time.Before(startB)) {
				startB = m.Time
			}
		}
		if !startB.IsZero() {
			ts.FirstNewSeconds = firstNew.Sub(startB).Seconds()
		}
	}
	return nil
}

// moverPending returns the origins of the rows the job's mover holds as
// pending, as its last saved state says.
func moverPending(ctx context.Context, cc pipeline.ClientConfig) ([]schemas.Origin, error) {
	store, err := pipeline.NewKafkaStateStore(cc, cluster.RoutingStateTopic(cluster.MoverGroup(jobClusterGroup)))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	b, _, err := store.Load(ctx, pipeline.Partition{Topic: pipeline.TopicNovel})
	if err != nil || b == nil {
		return nil, err
	}
	s, err := cluster.DecodeMoverState(b)
	if err != nil {
		return nil, err
	}
	return s.Pending, nil
}

// trainNew trains the experts of the new domains ids with the job's
// per-domain budget, initialized by j.NewExpertInit (the seed when there is
// one, for InitSeed).
func (j *Job) trainNew(ctx context.Context, cc pipeline.ClientConfig, router string, ids []int, log *slog.Logger) ([]train.ExpertReport, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cfg, err := j.trainConfig(cc, j.TokensPerDomain, log)
	if err != nil {
		return nil, err
	}
	if j.SeedTokens > 0 {
		if cfg.Init, err = train.LoadSeed(train.ExpertDir(j.Out, "seed")); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	if cfg.InitFor, err = NewExpertInit(ExpertInitConfig{Out: j.Out, RouterDir: router, Strategy: j.NewExpertInit, Logger: log}); err != nil {
		return nil, err
	}
	reps, err := train.RunDomains(ctx, cfg, ids)
	if err != nil {
		return nil, fmt.Errorf("new experts: %w", err)
	}
	return reps, nil
}

// trainMore goes on training the experts of ids for j.ThenExtraTokens
// more bytes in all, split evenly (the frozen system).
func (j *Job) trainMore(ctx context.Context, cc pipeline.ClientConfig, ids []int, log *slog.Logger) ([]train.ExpertReport, error) {
	if len(ids) == 0 || j.ThenExtraTokens <= 0 {
		return nil, nil
	}
	cfg, err := j.trainConfig(cc, j.TokensPerDomain+j.ThenExtraTokens/int64(len(ids)), log)
	if err != nil {
		return nil, err
	}
	reps, err := train.RunDomains(ctx, cfg, ids)
	if err != nil {
		return nil, fmt.Errorf("old experts: %w", err)
	}
	return reps, nil
}

// evaluate evaluates every expert and the mixture on texts (the job's
// EvalDocs and EvalDocBytes).
func (j *Job) evaluate(ctx context.Context, router string, texts []string, log *slog.Logger) (*EvalReport, error) {
	start := time.Now()
	m, err := LoadMixture(ctx, MixtureConfig{Out: j.Out, RouterDir: router, Temperature: 0.1, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if j.EvalDocs > 0 {
		texts = texts[:min(len(texts), j.EvalDocs)]
	}
	choices := []Choice{{Name: "top1", K: 1}, {Name: "top2", K: 2}, {Name: "all"}}
	progress := func(done int) {
		j.prog.report(Progress{Phase: "eval", Done: int64(done), Total: int64(len(texts)), Unit: "documents"})
	}
	rep, err := m.Evaluate(ctx, texts, EvalConfig{Choices: choices, MaxDocBytes: j.EvalDocBytes, Alone: true, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// jobEval is the summary form of an evaluation.
func jobEval(rep *EvalReport) JobEval {
	e := JobEval{MixtureBPB: maps.Clone(rep.MixtureBPB)}
	for _, x := range rep.ExpertBPB {
		switch x.Expert {
		case "dense":
			v := x.BPB
			e.DenseBPB = &v
		case "seed":
			v := x.BPB
			e.SeedBPB = &v
		default:
			e.ExpertBPB = append(e.ExpertBPB, x)
		}
	}
	return e
}
