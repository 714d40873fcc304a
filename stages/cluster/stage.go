package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Dead-letter reasons of the routing stage.
const (
	// ReasonWrongFeaturizerVersion: the row was featurized by another
	// featurizer state than the one the router's centroids live in.
	ReasonWrongFeaturizerVersion schemas.Reason = "wrong-featurizer-version"
	// ReasonWrongDimension: the row's vector does not have the router's
	// dimension (or its layout does not match its dim column).
	ReasonWrongDimension schemas.Reason = "wrong-dimension"
	// ReasonNonFiniteFeatures: the row's vector holds NaN or ±Inf.
	ReasonNonFiniteFeatures schemas.Reason = "non-finite-features"
	// ReasonImpossibleOrigin: the row claims an origin that cannot exist
	// (beyond the end of its partition, a partition or topic that is not
	// there): a forged or corrupted row.
	ReasonImpossibleOrigin = pipeline.ReasonImpossibleOrigin
	// ReasonOutOfOrderOrigin: the row's origin does not come after the
	// previous row's of the same origin partition in the same record; the
	// stages upstream write rows in origin order.
	ReasonOutOfOrderOrigin schemas.Reason = "out-of-order-origin"
)

// Stage is the routing stage: Features rows in, Routed rows out
// (docs.features → docs.domain.<id>). Each batch is routed in row order by a
// Router over a RouterModel (balanced unless the model's RouteConfig says
// otherwise), and the rows of each domain are published as one record on
// pipeline.DomainTopic(id), in input order. A routed row keeps the document
// columns of its input — shared without copying when a domain's rows are one
// contiguous run of the batch — and adds the stable domain id, the squared
// distance to its centroid and the router version.
//
// Routing state is kept per input partition. On Kafka the stage is a
// pipeline.PartitionStage: each partition of docs.features has its own
// router counts (so balance holds per partition, and so over all of them),
// its own duplicate filter and its own router version, and the runner saves
// that state with every commit and restores it in whichever process takes
// the partition over. A row's domain is therefore a function of the rows
// before it in its partition and of the state saved at the last commit: a
// row redelivered after a crash or a rebalance gets the same domain in any
// process. The router version changes only where a snapshot records it:
// Swap makes the newest model the one a partition switches to at its next
// snapshot, except below the end offset the partition had when this process
// restored it (rows there may have been routed by another process under the
// snapshot's version). Process, without a partition, routes with one shared
// state and switches at the next batch, as an offline router would.
//
// A refit brings a new featurizer version, and rows featurized by the old
// one are still in flight when the new router arrives. Those rows are not
// dead-lettered: the stage keeps a bridge, the previous router's centroids
// of the domain ids the new router keeps, and routes each such row to the
// nearest of them (plain argmin, counted in the balance). Rows of any other
// version go to the dead-letter topic.
//
// Every row the current router routes is also judged for novelty
// (NoveltyRule, set with SetNoveltyRule): whether it lies farther from its
// nearest centroid than that domain's fit rows did. Judging changes no
// routing — a novel row goes to the domain the router assigns — and is not
// written into the routed rows (the Routed schema has no column for it, and
// a new one would change the schema every reader checks); it is counted
// (Novelty, Collector). A router without fit-time distances (saved before
// routers kept them) judges nothing; the stage logs that once per version.
//
// Rows whose origin is impossible (OriginCheck), out of order within a
// record, or whose vector holds NaN or Inf are dead-lettered; rows at or
// below the last origin position seen from their origin partition are
// duplicates (an upstream stage re-sent them) and are dropped and counted.
//
// Process, ProcessAt, Swap and the readers may be called from different
// goroutines.
type Stage struct {
	// OriginCheck, when set, is asked about every row's origin before it is
	// routed; an error marks the origin impossible (e.g. an offset beyond
	// the end of its partition, a topic that is not the ingress topic) and
	// the row is dead-lettered with ReasonImpossibleOrigin. Set it before
	// the first batch.
	OriginCheck func(ctx context.Context, o schemas.Origin) error
	// Lookup, when set, finds a router version this process has not seen
	// (a restored snapshot may name one). Set it before the first batch.
	Lookup func(ctx context.Context, version int64) (*RouterModel, error)
	// Logger receives warnings (a snapshot naming an unknown router
	// version). Default: slog.Default().
	Logger *slog.Logger
	// Coverage, when set, returns the out-of-vocabulary share function of
	// featurizer version v (nil when unknown or the featurizer has no
	// vocabulary): with it, rows of a router with OOV stats are also
	// judged by their text's out-of-vocabulary share (NoveltyRule). Set it
	// before the first batch.
	Coverage func(v int64) func(text string) float64

	mu     sync.Mutex
	latest *RouterModel
	models map[int64]*RouterModel
	def    *partState // Process's state
	parts  map[pipeline.Partition]*partState
	mem    memory.Allocator

	duplicated int64

	rule       NoveltyRule
	thresholds map[*RouterModel][]float64 // per model: NoveltyRule.Thresholds
	novelty    *noveltyTracker

	prepared  preparedModels // the models' centroids in the distance kernel's layout
	grow      *GrowConfig    // nil: growth off (SetGrowth)
	shrink    *shrinkWindow  // nil: shrinking off (SetShrink)
	shrinkCfg *ShrinkConfig
	lastBatch map[pipeline.Partition]time.Time
	views     map[*RouterModel]*RouterModel // per model: its routeView
	parked    parkCounts
}

// parkCounts counts the rows the stage parked on pipeline.TopicNovel.
type parkCounts struct {
	novel   int64         // novel rows, no domain yet
	claimed map[int]int64 // rows of grown domains, by id
}

// partState is the routing state of one input partition.
type partState struct {
	model  *RouterModel
	view   *RouterModel // model's domains that the router routes (routeView)
	router *Router      // over view
	bridge *bridge
	// last is the last origin position handled per origin partition:
	// rows at or below it are duplicates (a stage upstream re-sent them
	// after a crash) and are dropped.
	last map[originPartition]position
	// pin: no version switch for input offsets below it.
	pin int64
	// share: the novel share over the last judged rows (growth only; not
	// saved in snapshots).
	share *shareRing
}

func (st *Stage) newPartState(m *RouterModel) (*partState, error) {
	if m == nil {
		return nil, errors.New("cluster: stage: nil router model")
	}
	v := st.viewOf(m)
	r, err := stageRouter(v)
	if err != nil {
		return nil, err
	}
	return &partState{model: m, view: v, router: r, last: map[originPartition]position{}}, nil
}

// viewOf returns m's routeView, the same one for every partition.
func (st *Stage) viewOf(m *RouterModel) *RouterModel {
	v, ok := st.views[m]
	if !ok {
		v = m.routeView()
		st.views[m] = v
	}
	return v
}

// switchTo makes ps route with m, carrying its counts over by domain id.
func (st *Stage) switchTo(ps *partState, m *RouterModel) error {
	v := st.viewOf(m)
	r, err := stageRouter(v)
	if err != nil {
		return err
	}
	if err := r.SetState(carryState(ps.view, ps.router.State(), v, r)); err != nil {
		return fmt.Errorf("cluster: stage: carry router state to v%d: %w", m.Version, err)
	}
	switch {
	case ps.model.FeaturizerVersion != m.FeaturizerVersion:
		ps.bridge = newBridge(ps.model, v)
	case ps.bridge != nil: // same featurizer (a split or removal): re-map the bridge's ids
		ps.bridge = newBridge(ps.bridge.from, v)
	}
	ps.model, ps.view, ps.router = m, v, r
	return nil
}

// shareRing keeps the novel share over the last len(v) judged rows.
type shareRing struct {
	v     []bool
	n     int64 // rows observed
	novel int   // novel rows among the last min(n, len(v))
}

func (r *shareRing) observe(novel bool) {
	i := int(r.n % int64(len(r.v)))
	if r.n >= int64(len(r.v)) && r.v[i] {
		r.novel--
	}
	r.v[i] = novel
	if novel {
		r.novel++
	}
	r.n++
}

// fraction is the novel share over the rows in the ring (0 when empty).
func (r *shareRing) fraction() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.novel) / float64(min(r.n, int64(len(r.v))))
}

// bridge routes rows of a previous featurizer version onto the current
// model's domains.
type bridge struct {
	from  *RouterModel // the last model of that featurizer version
	model *Model       // from's centroids of the ids the current model keeps
	index []int        // bridge centroid → current centroid row
}

// newBridge maps from's domains onto cur's (the routed view of the current
// model); nil when no id survives or the featurizer version is the same.
func newBridge(from, cur *RouterModel) *bridge {
	if from == nil || from.FeaturizerVersion == cur.FeaturizerVersion {
		return nil
	}
	b := &bridge{from: from, model: &Model{Dim: from.Model.Dim}}
	for j, id := range from.IDs {
		if cj, ok := cur.Index(id); ok {
			b.model.Centroids = append(b.model.Centroids, from.Model.Centroid(j)...)
			b.index = append(b.index, cj)
			b.model.K++
		}
	}
	if b.model.K == 0 {
		return nil
	}
	return b
}

var (
	_ pipeline.Stage          = (*Stage)(nil)
	_ pipeline.PartitionStage = (*Stage)(nil)
)

// NewStage returns a stage routing with m.
func NewStage(m *RouterModel) (*Stage, error) {
	if _, err := stageRouter(m); err != nil {
		return nil, err
	}
	st := &Stage{latest: m, models: map[int64]*RouterModel{m.Version: m}, parts: map[pipeline.Partition]*partState{},
		mem: memory.DefaultAllocator, thresholds: map[*RouterModel][]float64{}, novelty: newNoveltyTracker(),
		views: map[*RouterModel]*RouterModel{}, parked: parkCounts{claimed: map[int]int64{}},
		lastBatch: map[pipeline.Partition]time.Time{}}
	def, err := st.newPartState(m)
	if err != nil {
		return nil, err
	}
	st.def = def
	return st, nil
}

// SetGrowth turns growth on (cfg non-nil) or off (nil) from the next batch
// on. With growth on, a novel row (NoveltyRule) is parked on
// pipeline.TopicNovel instead of being routed into an existing domain, and
// the parked records carry the novel share over the last cfg.Window rows
// each partition judged (what the mover's growth trigger reads). With
// growth off novel rows are routed as any other row (the behaviour before
// growth). Whatever the setting, the rows whose nearest domain is a grown
// one are parked for the mover to forward (see the comment of grow.go).
func (st *Stage) SetGrowth(cfg *GrowConfig) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cfg == nil {
		st.grow = nil
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	c := cfg.WithDefaults()
	st.grow = &c
	return nil
}

// Parked returns how many rows the stage parked on pipeline.TopicNovel in
// this process: novel rows, and the rows of each grown domain.
func (st *Stage) Parked() (novel int64, claimed map[int]int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.parked.novel, maps.Clone(st.parked.claimed)
}

// SetNoveltyRule sets the rule rows are judged novel by from the next batch
// on (default: the zero NoveltyRule, 0.99 and no margin).
func (st *Stage) SetNoveltyRule(r NoveltyRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rule = r
	clear(st.thresholds)
	return nil
}

// thresholdsOf returns m's novelty thresholds under the stage's rule (nil:
// m has no fit-time distances, novelty off).
func (st *Stage) thresholdsOf(m *RouterModel) []float64 {
	th, ok := st.thresholds[m]
	if !ok {
		th = st.rule.Thresholds(m)
		st.thresholds[m] = th
		if th == nil {
			st.logger().Info("router has no fit-time distances (saved before novelty scoring): its rows are not judged for novelty; refit to turn novelty on",
				"router_version", m.Version)
		}
	}
	return th
}

// judge judges the rows of a batch routed by m (see NoveltyRule) and
// records them in the novelty counters: row i's nearest centroid of m is
// near[i] at squared distance nd[i], and it went to centroid assigned[i] of
// m (whose drift it counts in). It returns the verdicts (nil: novelty off).
// oov[i], when oov is not nil, is row i's out-of-vocabulary share, novel
// beyond the rule's OOVThreshold; fine[i], when fine is not nil, its
// distance to m's nearest fine centroid, novel beyond FineThreshold.
func (st *Stage) judge(m *RouterModel, near []int, nd []float32, assigned []int, oov []float64, fine []float32) []bool {
	th := st.thresholdsOf(m)
	if th == nil {
		return nil
	}
	oth, fth := st.rule.OOVThreshold(m), st.rule.FineThreshold(m)
	novel := make([]bool, len(near))
	for i, j := range near {
		d := float64(nd[i])
		dom := assigned[i]
		ratio := math.NaN()
		if mean := m.Distances[dom].Mean; mean > 0 {
			ratio = d / mean
		}
		novel[i] = d > th[j] || (oov != nil && oov[i] > oth) || (fine != nil && float64(fine[i]) > fth)
		st.novelty.observe(m.IDs[dom], novel[i], ratio)
	}
	return novel
}

// oovShares returns the out-of-vocabulary share of the texts of rows keep
// of in, or nil when m has no OOV stats, the featurizer's vocabulary is not
// known, or growth is off: the test tokenizes every text a second time
// (about a third of the routing stage's time on tf-idf, BENCHMARKS.md §9),
// so it runs where it decides what is parked.
func (st *Stage) oovShares(m *RouterModel, in arrow.Record, keep []int) []float64 {
	if m.OOV == nil || st.Coverage == nil || st.grow == nil {
		return nil
	}
	f := st.Coverage(m.FeaturizerVersion)
	if f == nil {
		return nil
	}
	docs, err := schemas.Documents(in)
	if err != nil {
		return nil
	}
	out := make([]float64, len(keep))
	for i, r := range keep {
		out[i] = f(docs.Text(r))
	}
	return out
}

// originPartition names a partition rows came from; position is a row's
// place in it.
type originPartition struct {
	topic     string
	partition int32
}

type position struct {
	offset int64
	row    int32
}

func (p position) less(q position) bool {
	return p.offset < q.offset || (p.offset == q.offset && p.row < q.row)
}

// Duplicates is how many rows were dropped as already handled.
func (st *Stage) Duplicates() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.duplicated
}

// checkOrigins sorts the rows of in by their origin: dead (an impossible
// origin, or one not after the previous row of its origin partition in the
// same record), dropped (at or below the last origin position ps handled from
// their origin partition: duplicates) or to be routed. It records the new
// last positions, and changes nothing when it fails (an OriginCheck error
// wrapping pipeline.ErrRetry has the batch retried). Rows without an origin
// topic are never duplicates (records read from files); with OriginCheck set
// they are impossible.
func (st *Stage) checkOrigins(ctx context.Context, ps *partState, in arrow.Record) (skip []bool, dead []pipeline.DeadRow, dropped []int, err error) {
	docs, err := schemas.Documents(in)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cluster: stage: %w", err)
	}
	n := docs.Len()
	skip = make([]bool, n)
	seen := map[originPartition]position{} // last positions of this record
	for i := range n {
		o := docs.Origin(i)
		key, pos := originPartition{o.Topic, o.Partition}, position{o.Offset, o.Row}
		if st.OriginCheck != nil {
			if err := st.OriginCheck(ctx, o); err != nil {
				if errors.Is(err, pipeline.ErrRetry) {
					return nil, nil, nil, fmt.Errorf("cluster: stage: check origin: %w", err)
				}
				skip[i] = true
				dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonImpossibleOrigin, Err: err})
				continue
			}
		}
		if o.Topic == "" {
			continue
		}
		if p, ok := seen[key]; ok && !p.less(pos) {
			skip[i] = true
			dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonOutOfOrderOrigin,
				Err: fmt.Errorf("origin %s/%d@%d.%d does not follow %d.%d, the previous row of its partition in the same record", o.Topic, o.Partition, o.Offset, o.Row, p.offset, p.row)})
			continue
		}
		seen[key] = pos
		if last, ok := ps.last[key]; ok && !last.less(pos) {
			skip[i] = true
			dropped = append(dropped, i)
		}
	}
	for key, pos := range seen {
		if last, ok := ps.last[key]; !ok || last.less(pos) {
			// The topic string points into the record's buffers: the
			// map keeps a copy.
			key.topic = strings.Clone(key.topic)
			ps.last[key] = pos
		}
	}
	st.duplicated += int64(len(dropped))
	return skip, dead, dropped, nil
}

func stageRouter(m *RouterModel) (*Router, error) {
	if m == nil {
		return nil, errors.New("cluster: stage: nil router model")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return NewRouter(m.Model, m.Route)
}

// Model returns the newest router model the stage has (the one partitions
// switch to).
func (st *Stage) Model() *RouterModel {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.latest
}

// Counts returns the routed count per domain id since the stage's state
// began, over every partition (carried over across swaps and restored with
// the partitions' snapshots; a domain added by a swap starts at the mean).
func (st *Stage) Counts() map[int]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[int]int64, st.latest.K())
	add := func(ps *partState) {
		for j, c := range ps.router.Counts() {
			out[ps.view.IDs[j]] += c
		}
	}
	add(st.def)
	for _, ps := range st.parts {
		add(ps)
	}
	for _, id := range st.latest.IDs {
		out[id] += 0
	}
	return out
}

// Swap makes m the newest model: Process routes with it from the next batch
// on, and each partition switches to it at its next snapshot that is not
// pinned (see Stage). The counts of domain ids that m keeps carry over; a
// new id starts at the current mean count; the counts of retired ids are
// dropped.
func (st *Stage) Swap(m *RouterModel) error {
	if _, err := stageRouter(m); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.models[m.Version] = m
	if err := st.switchTo(st.def, m); err != nil {
		return err
	}
	st.latest = m
	if st.shrink != nil {
		st.shrink.known(m)
	}
	return nil
}

// SetCounts restores routed counts by domain id of Process's state (e.g. from
// a checkpoint of Counts): ids the model does not have are ignored, missing
// ones start at the mean of the given counts.
func (st *Stage) SetCounts(counts map[int]int64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	prev := &RouterModel{Model: &Model{K: len(counts)}}
	ps := RouterState{}
	for id, c := range counts {
		prev.IDs = append(prev.IDs, id)
		ps.Counts = append(ps.Counts, c)
		ps.Total += c
	}
	return st.def.router.SetState(carryState(prev, ps, st.def.view, st.def.router))
}

// carryState maps a router state of model prev onto the domains of next.
func carryState(prev *RouterModel, ps RouterState, next *RouterModel, nr *Router) RouterState {
	k := next.K()
	var mean int64
	if pk := prev.K(); pk > 0 {
		mean = int64(math.Round(float64(ps.Total) / float64(pk)))
	}
	old := make(map[int]int, prev.K()) // id → old index
	for j, id := range prev.IDs {
		old[id] = j
	}
	ns := RouterState{Counts: make([]int64, k)}
	for j, id := range next.IDs {
		if oj, ok := old[id]; ok {
			ns.Counts[j] = ps.Counts[oj]
		} else {
			ns.Counts[j] = mean
		}
		ns.Total += ns.Counts[j]
	}
	if nr.ring != nil {
		want := int(min(ns.Total, int64(len(nr.ring))))
		idx := make(map[int]int32, k)
		for j, id := range next.IDs {
			idx[id] = int32(j)
		}
		var recent []int32
		for _, oj := range ps.Recent {
			if j, ok := idx[prev.IDs[oj]]; ok {
				recent = append(recent, j)
			}
		}
		if len(recent) > want {
			recent = recent[len(recent)-want:]
		}
		// Too few known recent domains (a new window, retired ids): pad the
		// oldest end round-robin.
		pad := make([]int32, 0, want-len(recent))
		for i := 0; len(pad)+len(recent) < want; i++ {
			pad = append(pad, int32(i%k))
		}
		ns.Recent = append(pad, recent...)
	}
	return ns
}

// Process routes one batch of Features rows with the stage's shared state
// (no partition: files, tests, an offline replay).
func (st *Stage) Process(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.process(ctx, st.def, in)
}

// ProcessAt routes one batch of Features rows of input position pos with
// that partition's state (see pipeline.PartitionStage).
func (st *Stage) ProcessAt(ctx context.Context, pos pipeline.Position, in arrow.Record) (pipeline.Result, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ps, err := st.part(pos.Partition)
	if err != nil {
		return pipeline.Result{}, err
	}
	st.lastBatch[pos.Partition] = time.Now()
	return st.process(ctx, ps, in)
}

// part returns p's state, a fresh one on the newest model if p has none.
func (st *Stage) part(p pipeline.Partition) (*partState, error) {
	if ps := st.parts[p]; ps != nil {
		return ps, nil
	}
	ps, err := st.newPartState(st.latest)
	if err != nil {
		return nil, err
	}
	st.parts[p] = ps
	return ps, nil
}

// process routes in with ps.
func (st *Stage) process(ctx context.Context, ps *partState, in arrow.Record) (pipeline.Result, error) {
	if err := schemas.CheckSchema(in.Schema(), schemas.KindFeatures); err != nil {
		return pipeline.Result{}, fmt.Errorf("cluster: stage: input: %w", err)
	}
	m := ps.model
	skip, odead, dropped, err := st.checkOrigins(ctx, ps, in)
	if err != nil {
		return pipeline.Result{}, err
	}
	rows, keep, dead, err := decodeFeatures(in, m.FeaturizerVersion, m.Model.Dim, skip)
	if err != nil {
		return pipeline.Result{}, err
	}
	// domains[i]: the view's centroid of kept row i, or a parking mark
	// (parkNovel, parkClaim).
	var domains []int
	var dist []float32
	var share float64
	if len(keep) > 0 {
		if st.grow == nil && ps.view == m {
			a, err := ps.router.RouteAll(rows)
			if err != nil {
				return pipeline.Result{}, err
			}
			domains, dist = a.Domains, a.Distances
			st.judge(m, a.Nearest, a.NearestDistances, a.Domains, st.oovShares(m, in, keep), m.fineDistances(rows))
		} else if domains, dist, share, err = st.routeParking(ps, rows, st.oovShares(m, in, keep)); err != nil {
			return pipeline.Result{}, err
		}
	}
	if ps.bridge != nil && hasReason(dead, ReasonWrongFeaturizerVersion) {
		if keep, domains, dist, dead, err = routeBridged(ps, in, keep, domains, dist, dead); err != nil {
			return pipeline.Result{}, err
		}
	}
	res := pipeline.Result{Dead: append(odead, dead...), Dropped: dropped}
	if len(keep) == 0 {
		return res, nil
	}
	// Group the kept rows by domain id, in input order, and the parked
	// rows by their claim (parkNovel first).
	byID := map[int][]int{}   // id → positions in keep
	parked := map[int][]int{} // claim (-1: novel) → positions in keep
	for i, j := range domains {
		if j < 0 {
			c := parkedClaim(j)
			parked[c] = append(parked[c], i)
			continue
		}
		id := ps.view.IDs[j]
		byID[id] = append(byID[id], i)
	}
	if st.shrink != nil {
		for _, j := range domains {
			switch {
			case j >= 0:
				st.shrink.observe(ps.view.IDs[j])
			case j != parkNovel:
				st.shrink.observe(parkedClaim(j))
			}
		}
	}
	fail := func(err error) (pipeline.Result, error) {
		for _, o := range res.Out {
			o.Record.Release()
		}
		return pipeline.Result{}, err
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		rec, err := routedRecord(st.mem, in, keep, byID[id], id, dist, m.Version)
		if err != nil {
			return fail(err)
		}
		res.Out = append(res.Out, pipeline.Output{Topic: pipeline.DomainTopic(id), Record: rec})
	}
	for _, c := range slices.Sorted(maps.Keys(parked)) {
		pos := parked[c]
		rec, err := st.parkedRecord(in, keep, pos, c, m.Version, share)
		if err != nil {
			return fail(err)
		}
		if c < 0 {
			st.parked.novel += int64(len(pos))
		} else {
			st.parked.claimed[c] += int64(len(pos))
		}
		res.Out = append(res.Out, pipeline.Output{Topic: pipeline.TopicNovel, Record: rec, PartitionSet: true})
	}
	return res, nil
}

// Parking marks in the domains of routeParking: parkNovel for a novel row,
// parkClaim(id) for a row of grown domain id.
const parkNovel = -1

func parkClaim(id int) int { return -2 - id }

// parkedClaim returns the claim of a parking mark: -1 for parkNovel, else
// the grown domain id.
func parkedClaim(mark int) int {
	if mark == parkNovel {
		return -1
	}
	return -2 - mark
}

// routeParking routes rows with ps when rows may be parked (growth on, or
// a router with grown domains): a row whose nearest centroid of the whole
// model is a grown domain, within its novelty threshold, is parked with
// that domain's claim; with growth on, a novel row is parked without one;
// every other row is routed by ps's router over the view (the domains that
// are not grown), balanced among them only. It returns the view's centroid
// or parking mark of each row, the distance to the assigned centroid (0
// for parked rows) and the novel share of ps's window after the batch.
func (st *Stage) routeParking(ps *partState, rows *Rows, oov []float64) ([]int, []float32, float64, error) {
	m, v := ps.model, ps.view
	near, nd := m.Model.assignWith(st.prepared.get(m.Model), rows)
	th := st.thresholdsOf(m)
	oth, fth := st.rule.OOVThreshold(m), st.rule.FineThreshold(m)
	fine := m.fineDistances(rows)
	marks := make([]int, rows.N)
	skip := make([]bool, rows.N)
	for i, j := range near {
		d := float64(nd[i])
		if c := m.claim(th, j, d, false); c >= 0 {
			marks[i], skip[i] = parkClaim(c), true
		} else if st.grow != nil && th != nil && (d > th[j] || (oov != nil && oov[i] > oth) || (fine != nil && float64(fine[i]) > fth)) {
			marks[i], skip[i] = parkNovel, true
		}
	}
	a, err := ps.router.routeSkip(rows, skip)
	if err != nil {
		return nil, nil, 0, err
	}
	assigned := make([]int, rows.N) // in m's centroids, for the drift
	for i := range marks {
		if skip[i] {
			assigned[i] = near[i]
			continue
		}
		marks[i] = a.Domains[i]
		assigned[i], _ = m.Index(v.IDs[a.Domains[i]])
	}
	novel := st.judge(m, near, nd, assigned, oov, fine)
	var share float64
	if st.grow != nil && novel != nil {
		if ps.share == nil || len(ps.share.v) != st.grow.Window {
			ps.share = &shareRing{v: make([]bool, st.grow.Window)}
		}
		for _, n := range novel {
			ps.share.observe(n)
		}
		share = ps.share.fraction()
	}
	return marks, a.Distances, share, nil
}

// Metadata keys of a parked record (pipeline.TopicNovel): the router version
// that parked it, the grown domain its rows belong to (absent: novel rows)
// and the novel share of the routing window when it was parked.
const (
	MetaParkedRouterVersion = "domainflow.parked.router_version"
	MetaParkedClaim         = "domainflow.parked.claim"
	MetaParkedShare         = "domainflow.parked.share"
)

// parkedRecord builds the parked record of the kept rows keep[pos[i]]: the
// input's columns (Features and its extra columns), with the parking
// metadata (claim -1: novel rows).
func (st *Stage) parkedRecord(in arrow.Record, keep, pos []int, claim int, version int64, share float64) (arrow.Record, error) {
	rows := make([]int, len(pos))
	for i, p := range pos {
		rows[i] = keep[p]
	}
	gather := gatherRows(in, rows, st.mem)
	s := in.Schema()
	keys, vals := []string{MetaParkedRouterVersion, MetaParkedShare}, []string{strconv.FormatInt(version, 10), strconv.FormatFloat(share, 'g', -1, 64)}
	if claim >= 0 {
		keys, vals = append(keys, MetaParkedClaim), append(vals, strconv.Itoa(claim))
	}
	md := s.Metadata()
	for i, k := range md.Keys() {
		if !slices.Contains(keys, k) {
			keys, vals = append(keys, k), append(vals, md.Values()[i])
		}
	}
	meta := arrow.NewMetadata(keys, vals)
	cols := make([]arrow.Array, 0, s.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for c := range s.NumFields() {
		a, err := gather(c)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	return array.NewRecord(arrow.NewSchema(s.Fields(), &meta), cols, int64(len(rows))), nil
}

// gatherRows returns a function that gathers rows (increasing input row
// numbers) of column c of in: a zero-copy slice when they are one run of
// consecutive rows, else the runs concatenated.
func gatherRows(in arrow.Record, rows []int, mem memory.Allocator) func(c int) (arrow.Array, error) {
	type run struct{ lo, hi int }
	var runs []run
	for _, r := range rows {
		if len(runs) > 0 && runs[len(runs)-1].hi == r {
			runs[len(runs)-1].hi++
		} else {
			runs = append(runs, run{r, r + 1})
		}
	}
	return func(c int) (arrow.Array, error) {
		src := in.Column(c)
		if len(runs) == 1 {
			return array.NewSlice(src, int64(runs[0].lo), int64(runs[0].hi)), nil
		}
		parts := make([]arrow.Array, len(runs))
		for i, r := range runs {
			parts[i] = array.NewSlice(src, int64(r.lo), int64(r.hi))
		}
		joined, err := array.Concatenate(parts, mem)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: stage: gather column %q: %w", in.Schema().Field(c).Name, err)
		}
		return joined, nil
	}
}

// partSnapshot is the saved form of a partState (JSON).
type partSnapshot struct {
	Format        int         `json:"format"`
	RouterVersion int64       `json:"router_version"`
	BridgeFrom    int64       `json:"bridge_from,omitempty"` // router version the bridge maps from; 0: none
	Counts        []int64     `json:"counts"`                // by the router's domain index
	Total         int64       `json:"total"`
	Recent        []int32     `json:"recent,omitempty"`
	Last          []lastEntry `json:"last,omitempty"`
	Pin           int64       `json:"pin"`
}

type lastEntry struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	Offset    int64  `json:"o"`
	Row       int32  `json:"r"`
}

const snapshotFormat = 1

// Snapshot returns partition p's routing state at input offset next (see
// pipeline.PartitionStage). This is where a partition switches to the newest
// router: when next is at or past its pin, the snapshot records the newest
// version, and rows from next on are routed with it.
func (st *Stage) Snapshot(p pipeline.Partition, next int64) ([]byte, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ps, err := st.part(p)
	if err != nil {
		return nil, err
	}
	if ps.model != st.latest && next >= ps.pin {
		if err := st.switchTo(ps, st.latest); err != nil {
			return nil, err
		}
	}
	rs := ps.router.State()
	sn := partSnapshot{Format: snapshotFormat, RouterVersion: ps.model.Version, Counts: rs.Counts, Total: rs.Total,
		Recent: rs.Recent, Pin: ps.pin}
	if ps.bridge != nil {
		sn.BridgeFrom = ps.bridge.from.Version
	}
	sn.Last = lastEntries(ps.last)
	return json.Marshal(sn)
}

// RestorePartitions restores the routing state of every partition of topic
// (n partitions) that has a snapshot in store, so that the stage's counts are
// those of the whole group at start; it returns how many had one. The
// runner restores each partition again when it takes it up.
func (st *Stage) RestorePartitions(ctx context.Context, store pipeline.StateStore, topic string, n int) (int, error) {
	restored := 0
	for p := range n {
		part := pipeline.Partition{Topic: topic, Partition: p}
		state, at, err := store.Load(ctx, part)
		if err != nil {
			return restored, err
		}
		if state == nil {
			continue
		}
		end, err := store.End(ctx, part)
		if err != nil {
			return restored, err
		}
		if err := st.Restore(ctx, part, state, at, end); err != nil {
			return restored, err
		}
		restored++
	}
	return restored, nil
}

// Pending reports whether partition p would switch to a newer router at a
// snapshot taken at input offset next (see pipeline.PartitionStage).
func (st *Stage) Pending(p pipeline.Partition, next int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	ps := st.parts[p]
	return ps != nil && ps.model != st.latest && next >= ps.pin
}

// Restore sets partition p's routing state from a snapshot taken at input
// offset at (nil: a fresh state on the newest router), and pins its router
// version up to end: rows below end may have been routed by another process
// under the snapshot's version without a newer snapshot.
func (st *Stage) Restore(ctx context.Context, p pipeline.Partition, state []byte, at, end int64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if state == nil {
		ps, err := st.newPartState(st.latest)
		if err != nil {
			return err
		}
		ps.pin = end
		st.parts[p] = ps
		return nil
	}
	var sn partSnapshot
	if err := json.Unmarshal(state, &sn); err != nil {
		return fmt.Errorf("cluster: stage: snapshot of %s: %w", p, err)
	}
	if sn.Format != snapshotFormat {
		return fmt.Errorf("cluster: stage: snapshot of %s has format %d, this build reads %d", p, sn.Format, snapshotFormat)
	}
	m, err := st.model(ctx, sn.RouterVersion)
	if err != nil {
		// Without the model its counts cannot be mapped to domain ids:
		// start the partition afresh, and say what that costs.
		st.logger().Warn("routing state of a partition not restored: its router version is not available; the partition starts afresh on the newest router, and rows redelivered from before the snapshot may be routed differently",
			"partition", p.String(), "snapshot_offset", at, "err", err)
		ps, err := st.newPartState(st.latest)
		if err != nil {
			return err
		}
		ps.pin = end
		st.parts[p] = ps
		return nil
	}
	ps, err := st.newPartState(m)
	if err != nil {
		return err
	}
	if err := ps.router.SetState(RouterState{Counts: sn.Counts, Total: sn.Total, Recent: sn.Recent}); err != nil {
		return fmt.Errorf("cluster: stage: snapshot of %s: %w", p, err)
	}
	if sn.BridgeFrom != 0 {
		if from, err := st.model(ctx, sn.BridgeFrom); err != nil {
			st.logger().Warn("refit bridge of a partition not restored: rows of the previous featurizer version will be dead-lettered",
				"partition", p.String(), "bridge_from", sn.BridgeFrom, "err", err)
		} else {
			ps.bridge = newBridge(from, ps.view)
		}
	}
	for _, e := range sn.Last {
		ps.last[originPartition{e.Topic, e.Partition}] = position{e.Offset, e.Row}
	}
	ps.pin = max(end, sn.Pin)
	st.parts[p] = ps
	return nil
}

func (st *Stage) logger() *slog.Logger {
	if st.Logger != nil {
		return st.Logger
	}
	return slog.Default()
}

// model returns router version v: one this stage has seen, else one Lookup
// finds.
func (st *Stage) model(ctx context.Context, v int64) (*RouterModel, error) {
	if m, ok := st.models[v]; ok {
		return m, nil
	}
	if st.Lookup == nil {
		return nil, fmt.Errorf("router version %d is unknown to this process", v)
	}
	m, err := st.Lookup(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("router version %d: %w", v, err)
	}
	if m.Version != v {
		return nil, fmt.Errorf("router version %d: lookup returned version %d", v, m.Version)
	}
	st.models[v] = m
	return m, nil
}

// hasReason reports whether any dead row has reason r.
func hasReason(dead []pipeline.DeadRow, r schemas.Reason) bool {
	for _, d := range dead {
		if d.Reason == r {
			return true
		}
	}
	return false
}

// routeBridged routes the rows of the bridge's featurizer version (dead so
// far) to the nearest of its centroids and merges them, in input order, with
// the rows routed by the current router (keep, domains, dist).
func routeBridged(ps *partState, in arrow.Record, keep, domains []int, dist []float32, dead []pipeline.DeadRow) ([]int, []int, []float32, []pipeline.DeadRow, error) {
	b := ps.bridge
	rows, bkeep, _, err := decodeFeatures(in, b.from.FeaturizerVersion, b.model.Dim, nil)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(bkeep) == 0 {
		return keep, domains, dist, dead, nil
	}
	bdom, bdist := b.model.Assign(rows)
	bridged := make(map[int]bool, len(bkeep))
	for _, r := range bkeep {
		bridged[r] = true
	}
	var still []pipeline.DeadRow
	for _, d := range dead {
		if !bridged[d.Row] {
			still = append(still, d)
		}
	}
	n := len(keep) + len(bkeep)
	mk, md, mdist := make([]int, 0, n), make([]int, 0, n), make([]float32, 0, n)
	i, j := 0, 0
	for i < len(keep) || j < len(bkeep) {
		if j == len(bkeep) || (i < len(keep) && keep[i] < bkeep[j]) {
			mk, md, mdist = append(mk, keep[i]), append(md, domains[i]), append(mdist, dist[i])
			i++
			continue
		}
		cj := b.index[bdom[j]]
		ps.router.routeCommit(cj)
		mk, md, mdist = append(mk, bkeep[j]), append(md, cj), append(mdist, bdist[j])
		j++
	}
	return mk, md, mdist, still, nil
}

// routedRecord builds the Routed record of the kept rows keep[pos[i]]: the
// document columns of in, the routing columns, then the extra columns of in
// (see schemas.ExtraIndices), each gathered row for row.
func routedRecord(mem memory.Allocator, in arrow.Record, keep, pos []int, id int, dist []float32, version int64) (arrow.Record, error) {
	n := len(pos)
	rows := make([]int, n)
	for i, p := range pos {
		rows[i] = keep[p]
	}
	gather := gatherRows(in, rows, mem)
	inSchema := in.Schema()
	extra := schemas.ExtraIndices(inSchema, schemas.KindFeatures)
	schema := schemas.RoutedSchema()
	if extra != nil {
		fs := make([]arrow.Field, len(extra))
		for i, j := range extra {
			fs[i] = inSchema.Field(j)
		}
		var err error
		if schema, err = schemas.Extend(schemas.KindRouted, fs); err != nil {
			return nil, fmt.Errorf("cluster: stage: input: %w", err)
		}
	}
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	// The document columns, found by name: a stage may have put its own
	// columns anywhere.
	for i := range schemas.NumDocumentColumns {
		a, err := gather(inSchema.FieldIndices(schema.Field(i).Name)[0])
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	dom := array.NewInt32Builder(mem)
	defer dom.Release()
	dis := array.NewFloat32Builder(mem)
	defer dis.Release()
	ver := array.NewInt64Builder(mem)
	defer ver.Release()
	for _, p := range pos {
		dom.Append(int32(id))
		dis.Append(dist[p])
		ver.Append(version)
	}
	byName := map[string]arrow.Array{schemas.ColDomain: dom.NewArray(), schemas.ColDistance: dis.NewArray(), schemas.ColRouterVersion: ver.NewArray()}
	for _, f := range schema.Fields()[schemas.NumDocumentColumns : schema.NumFields()-len(extra)] {
		a, ok := byName[f.Name]
		if !ok {
			for _, a := range byName {
				a.Release()
			}
			return nil, fmt.Errorf("cluster: stage: routed schema has an unknown column %q", f.Name)
		}
		cols = append(cols, a)
		delete(byName, f.Name)
	}
	for _, c := range extra {
		a, err := gather(c)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	return array.NewRecord(schema, cols, int64(n)), nil
}

// decodeFeatures reads the vectors of a Features record: the rows of
// featurizer version version and dimension dim, as Rows (sparse when any of
// them is sparse, else dense), with their input row numbers in keep; the
// other rows are dead.
func decodeFeatures(rec arrow.Record, version int64, dim int, skip []bool) (rows *Rows, keep []int, dead []pipeline.DeadRow, err error) {
	s := rec.Schema()
	col := func(name string) arrow.Array { return rec.Column(s.FieldIndices(name)[0]) }
	dims, ok1 := col(schemas.ColDim).(*array.Int32)
	vers, ok2 := col(schemas.ColFeaturizerVersion).(*array.Int64)
	idx, ok3 := col(schemas.ColIndices).(*array.List)
	val, ok4 := col(schemas.ColValues).(*array.List)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, nil, nil, errors.New("cluster: stage: features columns have unexpected types")
	}
	valv, _ := val.ListValues().(*array.Float32)
	idxv, _ := idx.ListValues().(*array.Int32)
	if valv == nil || (idx.NullN() < idx.Len() && idxv == nil) {
		return nil, nil, nil, errors.New("cluster: stage: features list values have unexpected types")
	}
	n := int(rec.NumRows())
	sparse := false
	for i := range n {
		if skip != nil && skip[i] {
			continue
		}
		if vers.IsNull(i) || vers.Value(i) != version {
			got := "null"
			if !vers.IsNull(i) {
				got = fmt.Sprint(vers.Value(i))
			}
			dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonWrongFeaturizerVersion,
				Err: fmt.Errorf("featurizer version %s, router needs %d", got, version)})
			continue
		}
		if dims.IsNull(i) || int(dims.Value(i)) != dim || val.IsNull(i) {
			dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonWrongDimension,
				Err: fmt.Errorf("vector of dimension %d, router needs %d", dims.Value(i), dim)})
			continue
		}
		vlo, vhi := val.ValueOffsets(i)
		if !allFinite(valv.Float32Values()[vlo:vhi]) {
			dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonNonFiniteFeatures,
				Err: errors.New("vector holds NaN or Inf")})
			continue
		}
		if idx.IsNull(i) {
			if int(vhi-vlo) != dim {
				dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonWrongDimension,
					Err: fmt.Errorf("dense vector of %d values, router needs %d", vhi-vlo, dim)})
				continue
			}
		} else {
			ilo, ihi := idx.ValueOffsets(i)
			if ihi-ilo != vhi-vlo || !validIndices(idxv.Int32Values()[ilo:ihi], dim) {
				dead = append(dead, pipeline.DeadRow{Row: i, Reason: ReasonWrongDimension,
					Err: fmt.Errorf("sparse vector is not a valid %d-dim vector", dim)})
				continue
			}
			sparse = true
		}
		keep = append(keep, i)
	}
	rows = &Rows{N: len(keep), Dim: dim}
	vals := valv.Float32Values()
	if !sparse {
		rows.Values = make([]float32, 0, len(keep)*dim)
		for _, i := range keep {
			lo, hi := val.ValueOffsets(i)
			rows.Values = append(rows.Values, vals[lo:hi]...)
		}
		return rows, keep, dead, nil
	}
	rows.Indptr = make([]int64, 1, len(keep)+1)
	for _, i := range keep {
		lo, hi := val.ValueOffsets(i)
		if idx.IsNull(i) { // a dense row among sparse ones: every column
			for c := range dim {
				rows.Indices = append(rows.Indices, int32(c))
			}
		} else {
			ilo, ihi := idx.ValueOffsets(i)
			rows.Indices = append(rows.Indices, idxv.Int32Values()[ilo:ihi]...)
		}
		rows.Values = append(rows.Values, vals[lo:hi]...)
		rows.Indptr = append(rows.Indptr, int64(len(rows.Values)))
	}
	return rows, keep, dead, nil
}

// allFinite reports whether no value of v is NaN or ±Inf.
func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// validIndices reports whether idx is strictly increasing within [0, dim).
func validIndices(idx []int32, dim int) bool {
	for j, c := range idx {
		if c < 0 || int(c) >= dim || (j > 0 && c <= idx[j-1]) {
			return false
		}
	}
	return true
}
