package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

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
)

// Stage is the routing stage: Features rows in, Routed rows out
// (docs.features → docs.domain.<id>). Each batch is routed in row order by a
// Router over the current RouterModel (balanced unless the model's
// RouteConfig says otherwise), and the rows of each domain are published as
// one record on pipeline.DomainTopic(id), in input order. A routed row keeps
// the document columns of its input — shared without copying when a
// domain's rows are one contiguous run of the batch — and adds the stable
// domain id, the squared distance to its centroid and the router version.
//
// The model can be swapped while the stage runs (Swap); the router's counts
// carry over by domain id, so balance holds across versions. Process and
// Swap may be called from different goroutines.
//
// A refit brings a new featurizer version, and rows featurized by the old
// one are still in flight when the new router arrives. Those rows are not
// dead-lettered: the stage keeps a bridge, the previous router's centroids
// of the domain ids the new router keeps, and routes each such row to the
// nearest of them (plain argmin, counted in the balance). Rows of any other
// version go to the dead-letter topic.
type Stage struct {
	mu     sync.Mutex
	model  *RouterModel
	router *Router
	bridge *bridge
	mem    memory.Allocator
	// last is the last origin position handled per origin partition:
	// rows at or below it are duplicates (a stage upstream re-sent them
	// after a crash) and are dropped.
	last       map[originPartition]position
	duplicated int64
}

// bridge routes rows of a previous featurizer version onto the current
// model's domains.
type bridge struct {
	from  *RouterModel // the last model of that featurizer version
	model *Model       // from's centroids of the ids the current model keeps
	index []int        // bridge centroid → current centroid row
}

// newBridge maps from's domains onto cur's; nil when no id survives or the
// featurizer version is the same.
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

var _ pipeline.Stage = (*Stage)(nil)

// NewStage returns a stage routing with m.
func NewStage(m *RouterModel) (*Stage, error) {
	r, err := stageRouter(m)
	if err != nil {
		return nil, err
	}
	return &Stage{model: m, router: r, mem: memory.DefaultAllocator, last: map[originPartition]position{}}, nil
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

// duplicates marks the rows of in at or below the last origin position
// handled from their origin partition (rows without an origin topic are
// never duplicates), and records the new last positions. Upstream stages
// deliver at least once, so after a crash they may re-send rows; dropping
// them makes routing, and the balance it keeps, a function of the distinct
// rows in order.
func (st *Stage) duplicates(in arrow.Record) ([]bool, error) {
	docs, err := schemas.Documents(in)
	if err != nil {
		return nil, fmt.Errorf("cluster: stage: %w", err)
	}
	var dup []bool
	for i := range docs.Len() {
		o := docs.Origin(i)
		if o.Topic == "" {
			continue
		}
		key, pos := originPartition{o.Topic, o.Partition}, position{o.Offset, o.Row}
		last, ok := st.last[key]
		if ok && !last.less(pos) {
			if dup == nil {
				dup = make([]bool, docs.Len())
			}
			dup[i] = true
			st.duplicated++
			continue
		}
		if !ok {
			// The topic string points into the record's buffers: the
			// map keeps a copy.
			key.topic = strings.Clone(key.topic)
		}
		st.last[key] = pos
	}
	return dup, nil
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

// Model returns the router model in use.
func (st *Stage) Model() *RouterModel {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.model
}

// Counts returns the routed count per domain id since the stage started
// (carried over across swaps; a domain added by a swap starts at the mean).
func (st *Stage) Counts() map[int]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[int]int64, st.model.K())
	for j, c := range st.router.Counts() {
		out[st.model.IDs[j]] = c
	}
	return out
}

// Swap makes the stage route with m from the next batch on. The counts of
// domain ids that m keeps carry over; a new id starts at the current mean
// count; the counts of retired ids are dropped.
func (st *Stage) Swap(m *RouterModel) error {
	r, err := stageRouter(m)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := r.SetState(carryState(st.model, st.router.State(), m, r)); err != nil {
		return fmt.Errorf("cluster: stage: carry router state to v%d: %w", m.Version, err)
	}
	switch {
	case st.model.FeaturizerVersion != m.FeaturizerVersion:
		st.bridge = newBridge(st.model, m)
	case st.bridge != nil: // same featurizer (a split or removal): re-map the bridge's ids
		st.bridge = newBridge(st.bridge.from, m)
	}
	st.model, st.router = m, r
	return nil
}

// SetCounts restores routed counts by domain id (e.g. from a checkpoint of
// Counts): ids the model does not have are ignored, missing ones start at the
// mean of the given counts.
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
	return st.router.SetState(carryState(prev, ps, st.model, st.router))
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

// Process routes one batch of Features rows.
func (st *Stage) Process(_ context.Context, in arrow.Record) (pipeline.Result, error) {
	if err := schemas.CheckSchema(in.Schema(), schemas.KindFeatures); err != nil {
		return pipeline.Result{}, fmt.Errorf("cluster: stage: input: %w", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.model
	dup, err := st.duplicates(in)
	if err != nil {
		return pipeline.Result{}, err
	}
	rows, keep, dead, err := decodeFeatures(in, m.FeaturizerVersion, m.Model.Dim, dup)
	if err != nil {
		return pipeline.Result{}, err
	}
	var domains []int
	var dist []float32
	if len(keep) > 0 {
		if domains, dist, err = st.router.Route(rows); err != nil {
			return pipeline.Result{}, err
		}
	}
	if st.bridge != nil && hasReason(dead, ReasonWrongFeaturizerVersion) {
		if keep, domains, dist, dead, err = st.routeBridged(in, keep, domains, dist, dead); err != nil {
			return pipeline.Result{}, err
		}
	}
	res := pipeline.Result{Dead: dead}
	if len(keep) == 0 {
		return res, nil
	}
	// Group the kept rows by domain id, in input order.
	byID := map[int][]int{} // id → positions in keep
	for i, j := range domains {
		id := m.IDs[j]
		byID[id] = append(byID[id], i)
	}
	ids := make([]int, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		pos := byID[id]
		rec, err := st.routedRecord(in, keep, pos, id, dist, m.Version)
		if err != nil {
			for _, o := range res.Out {
				o.Record.Release()
			}
			return pipeline.Result{}, err
		}
		res.Out = append(res.Out, pipeline.Output{Topic: pipeline.DomainTopic(id), Record: rec})
	}
	return res, nil
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
func (st *Stage) routeBridged(in arrow.Record, keep, domains []int, dist []float32, dead []pipeline.DeadRow) ([]int, []int, []float32, []pipeline.DeadRow, error) {
	b := st.bridge
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
		st.router.routeCommit(cj)
		mk, md, mdist = append(mk, bkeep[j]), append(md, cj), append(mdist, bdist[j])
		j++
	}
	return mk, md, mdist, still, nil
}

// routedRecord builds the Routed record of the kept rows keep[pos[i]].
func (st *Stage) routedRecord(in arrow.Record, keep, pos []int, id int, dist []float32, version int64) (arrow.Record, error) {
	n := len(pos)
	// Runs of consecutive input rows: each becomes a zero-copy slice.
	type run struct{ lo, hi int }
	var runs []run
	for _, p := range pos {
		r := keep[p]
		if len(runs) > 0 && runs[len(runs)-1].hi == r {
			runs[len(runs)-1].hi++
		} else {
			runs = append(runs, run{r, r + 1})
		}
	}
	schema := schemas.RoutedSchema()
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for c := range schemas.NumDocumentColumns {
		src := in.Column(c)
		if len(runs) == 1 {
			cols = append(cols, array.NewSlice(src, int64(runs[0].lo), int64(runs[0].hi)))
			continue
		}
		parts := make([]arrow.Array, len(runs))
		for i, r := range runs {
			parts[i] = array.NewSlice(src, int64(r.lo), int64(r.hi))
		}
		joined, err := array.Concatenate(parts, st.mem)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: stage: gather column %d: %w", c, err)
		}
		cols = append(cols, joined)
	}
	dom := array.NewInt32Builder(st.mem)
	defer dom.Release()
	dis := array.NewFloat32Builder(st.mem)
	defer dis.Release()
	ver := array.NewInt64Builder(st.mem)
	defer ver.Release()
	for _, p := range pos {
		dom.Append(int32(id))
		dis.Append(dist[p])
		ver.Append(version)
	}
	byName := map[string]arrow.Array{schemas.ColDomain: dom.NewArray(), schemas.ColDistance: dis.NewArray(), schemas.ColRouterVersion: ver.NewArray()}
	for _, f := range schema.Fields()[schemas.NumDocumentColumns:] {
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

// validIndices reports whether idx is strictly increasing within [0, dim).
func validIndices(idx []int32, dim int) bool {
	for j, c := range idx {
		if c < 0 || int(c) >= dim || (j > 0 && c <= idx[j-1]) {
			return false
		}
	}
	return true
}
