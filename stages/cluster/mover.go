package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Mover is the other half of growth (see the comment of grow.go): a
// pipeline.PartitionStage over the parked topic (pipeline.TopicNovel, one
// partition) that forwards the rows of grown domains to their domain
// topics, keeps the novel rows it cannot place as pending, and grows new
// domains from them.
//
// For each parked record, in order:
//   - rows at or below the last origin position seen from their origin
//     partition are duplicates (the routing stage re-sent them) and are
//     dropped;
//   - a record claimed by a grown domain is forwarded to that domain's
//     topic;
//   - a novel row is judged against the mover's current router: when its
//     nearest domain is grown and it lies within that domain's novelty
//     threshold it is forwarded there, otherwise it becomes pending;
//   - then, if a growth of the router topic was made at this point (its
//     Growth.Seen equals the rows read so far) it is adopted; otherwise,
//     with at least GrowConfig.MinCount rows pending and the record's novel
//     share at least GrowConfig.MinShare, the mover grows
//     (RouterModel.Grow), publishes the grown router (Publish) and adopts
//     it. Adopting moves the pending rows the new domains claim to their
//     topics, in parked order.
//
// Everything the mover does is a function of the parked topic and the
// routers it adopted, so a mover restored from a snapshot and replaying the
// parked topic after a crash writes the same rows to the same topics again
// (duplicates by origin, which the trainers drop) and adopts the growth it
// published before the crash instead of growing twice. A snapshot records
// the parked offset its state reaches; a mover handed records beyond it (a
// snapshot older than the committed input: one saved late by a process
// that had lost the partition, over the newer one of the process that took
// over) first replays the records in between from the parked topic
// (Refetch), without writing their rows again, since their pending rows
// exist nowhere else. Its current router moves on only at its own growths,
// or when a router that is not a growth is swapped in (a split, a refit)
// with no growth of its own pending.
//
// Pending rows of a featurizer version other than the current router's
// cannot be grown in its space: they stay pending (Stats counts them).
type Mover struct {
	// Publish saves a grown router as the next router version and returns
	// it with its version; the routing stage must get it too (the service
	// swaps it in). Required to grow: without it the mover only forwards.
	Publish func(ctx context.Context, m *RouterModel) (*RouterModel, error)
	// Refetch reads the parked records of the partition from offset from
	// up to offset to, in order: how a mover restored from a snapshot gets
	// its pending rows back, and the records its snapshot is behind by.
	// Required for Restore with pending rows and for that catch-up.
	Refetch func(ctx context.Context, from, to int64, fn func(offset int64, rec arrow.Record) error) error
	// Lookup finds router version v: Restore (and a catch-up) looks up
	// every version from the snapshot's current router on, up to the first
	// it cannot find, so that a growth made before a crash, or by another
	// process, is adopted where it was made. Optional.
	Lookup func(ctx context.Context, v int64) (*RouterModel, error)
	// OriginCheck, when set, is asked about every parked row's origin; an
	// error wrapping pipeline.ErrImpossibleOrigin dead-letters the row
	// (ReasonImpossibleOrigin: a forged row on the parked topic must not
	// move the deduplication ahead of the genuine rows), any other error
	// retries the record.
	OriginCheck func(ctx context.Context, o schemas.Origin) error
	// Logger receives the mover's log lines. Default: slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	cfg      GrowConfig
	rule     NoveltyRule
	routers  map[int64]*RouterModel // every router known, by version
	prepared preparedModels         // their centroids in the distance kernel's layout
	applied  int64                  // version of the router in use (current)
	mem      memory.Allocator

	st moverState
}

// moverState is what a snapshot keeps, plus the pending rows' data.
type moverState struct {
	seen int64 // rows read, duplicates excluded
	// next is the parked offset after the last record the state includes
	// (-1: unknown, a fresh state).
	next int64
	// last: the last origin position read per parking class and origin
	// partition. The routing stage writes one record per class (novel,
	// each claimed domain) per batch, so origins increase within a class
	// only; a row re-sent after a crash gets the same class again.
	last    map[classPartition]position
	pending []pendingRow
	stats   MoverStats
}

// classPartition is an origin partition within a parking class (the
// claimed domain id, -1 for novel rows).
type classPartition struct {
	class int
	originPartition
}

// pendingRow is one pending novel row: row Row of a parked record (held)
// that was read at parked offset Offset.
type pendingRow struct {
	rec    arrow.Record
	row    int
	offset int64
	origin schemas.Origin
}

// MoverStats counts what a Mover did since its state began (restored with
// its snapshots).
type MoverStats struct {
	Read       int64 `json:"read"`       // parked rows read, duplicates excluded
	Duplicates int64 `json:"duplicates"` // parked rows dropped as duplicates
	Forwarded  int64 `json:"forwarded"`  // rows forwarded to a grown domain as they came
	Moved      int64 `json:"moved"`      // pending rows moved at a growth
	Pending    int64 `json:"pending"`    // rows pending now
	Growths    int64 `json:"growths"`    // growths adopted
	Dead       int64 `json:"dead"`       // rows dead-lettered (undecodable vectors)
}

var _ pipeline.PartitionStage = (*Mover)(nil)

// NewMover returns a mover that starts from router m, grows by cfg and
// judges novelty by rule.
func NewMover(m *RouterModel, cfg GrowConfig, rule NoveltyRule) (*Mover, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	return &Mover{cfg: cfg.WithDefaults(), rule: rule, routers: map[int64]*RouterModel{m.Version: m}, applied: m.Version,
		mem: memory.DefaultAllocator, st: moverState{next: -1, last: map[classPartition]position{}}}, nil
}

// Swap tells the mover of router m. A growth (m.Growth set) is adopted when
// the mover reaches the row it was made at; another router becomes current
// at once unless a growth newer than the current router is still to be
// adopted.
func (mv *Mover) Swap(m *RouterModel) error {
	if err := m.validate(); err != nil {
		return err
	}
	mv.mu.Lock()
	defer mv.mu.Unlock()
	mv.routers[m.Version] = m
	mv.advance()
	return nil
}

// advance makes the newest known router that is not a growth current,
// unless a growth older than it is still to be adopted.
func (mv *Mover) advance() {
	ng := mv.nextGrowth()
	for v, m := range mv.routers {
		if m.Growth == nil && v > mv.applied && (ng == nil || v < ng.Version) {
			mv.applied = v
		}
	}
}

// nextGrowth returns the oldest known growth newer than the current router
// (nil: none).
func (mv *Mover) nextGrowth() *RouterModel {
	var g *RouterModel
	for v, m := range mv.routers {
		if m.Growth != nil && v > mv.applied && (g == nil || v < g.Version) {
			g = m
		}
	}
	return g
}

// Current returns the router the mover judges with.
func (mv *Mover) Current() *RouterModel {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	return mv.routers[mv.applied]
}

// Stats returns the mover's counters.
func (mv *Mover) Stats() MoverStats {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	s := mv.st.stats
	s.Pending = int64(len(mv.st.pending))
	return s
}

func (mv *Mover) logger() *slog.Logger {
	if mv.Logger != nil {
		return mv.Logger
	}
	return slog.Default()
}

// Process handles one parked record without a partition (tests, files).
func (mv *Mover) Process(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
	return mv.ProcessAt(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: pipeline.TopicNovel}, First: -1, Last: -1}, in)
}

// ProcessAt handles one parked record read at pos (see Mover). When pos is
// beyond the parked offset its state reaches, it first replays the records
// in between (catchUp).
func (mv *Mover) ProcessAt(ctx context.Context, pos pipeline.Position, in arrow.Record) (pipeline.Result, error) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	if pos.First >= 0 && mv.st.next >= 0 && pos.First > mv.st.next {
		if err := mv.catchUp(ctx, pos.First); err != nil {
			return pipeline.Result{}, err
		}
	}
	res, err := mv.apply(ctx, pos, in)
	if err == nil && pos.First >= 0 {
		mv.st.next = max(mv.st.next, pos.Last+1)
	}
	return res, err
}

// catchUp replays the parked records from the offset the state reaches up
// to offset to, discarding their outputs: another process handled them
// and wrote those rows, but the snapshot this mover was restored from is
// older. Growths published meanwhile are looked up first, so that they
// are adopted where they were made instead of grown again.
func (mv *Mover) catchUp(ctx context.Context, to int64) error {
	if mv.Refetch == nil {
		return fmt.Errorf("cluster: mover: the state reaches parked offset %d, the next record is at %d, and there is no way to read the records in between (Refetch)", mv.st.next, to)
	}
	from := mv.st.next
	mv.logger().Warn("the mover's state is behind its input: replaying the parked records in between", "from", from, "to", to)
	mv.discover(ctx)
	err := mv.Refetch(ctx, from, to, func(offset int64, rec arrow.Record) error {
		if offset < mv.st.next {
			return nil // replayed before a failure
		}
		res, err := mv.apply(ctx, pipeline.Position{Partition: pipeline.Partition{Topic: pipeline.TopicNovel}, First: offset, Last: offset}, rec)
		if err != nil && (errors.Is(err, pipeline.ErrRetry) || ctx.Err() != nil) {
			return err
		}
		// Any other error: the record was dead-lettered when it was read
		// (a permanent failure, e.g. not a parked record).
		for _, o := range res.Out {
			o.Record.Release()
		}
		mv.st.next = offset + 1
		return nil
	})
	if err != nil {
		// The replay goes on where it stopped when the runner retries.
		return fmt.Errorf("cluster: mover: replay parked offsets %d to %d: %w: %w", from, to, pipeline.ErrRetry, err)
	}
	mv.st.next = to
	return nil
}

// discover looks up the router versions above the newest the mover knows,
// up to the first it cannot find: growths (or other routers) another
// process published.
func (mv *Mover) discover(ctx context.Context) {
	if mv.Lookup == nil {
		return
	}
	for v := slices.Max(slices.Collect(maps.Keys(mv.routers))) + 1; ; v++ {
		m, err := mv.Lookup(ctx, v)
		if err != nil || m.Version != v {
			return
		}
		mv.routers[v] = m
	}
}

// apply handles one parked record read at pos.
func (mv *Mover) apply(ctx context.Context, pos pipeline.Position, in arrow.Record) (pipeline.Result, error) {
	if err := schemas.CheckSchema(in.Schema(), schemas.KindFeatures); err != nil {
		return pipeline.Result{}, fmt.Errorf("cluster: mover: input: %w", err)
	}
	meta, err := parkedMeta(in.Schema())
	if err != nil {
		return pipeline.Result{}, err
	}
	var res pipeline.Result
	rows, err := mv.fresh(ctx, in, meta.claim, &res)
	if err != nil {
		return pipeline.Result{}, err
	}
	out := map[int]*moveBatch{} // domain id → rows forwarded now
	cur := mv.routers[mv.applied]
	if len(rows) > 0 {
		if err := mv.place(in, pos.First, rows, meta, cur, out, &res); err != nil {
			return pipeline.Result{}, err
		}
	}
	if err := mv.maybeGrow(ctx, meta.share, out); err != nil {
		for _, b := range out {
			b.release()
		}
		return pipeline.Result{}, err
	}
	if err := mv.emit(out, &res); err != nil {
		return pipeline.Result{}, err
	}
	return res, nil
}

// parkMeta is the parking metadata of a record.
type parkMeta struct {
	version int64
	claim   int // -1: novel rows
	share   float64
}

func parkedMeta(s *arrow.Schema) (parkMeta, error) {
	md := s.Metadata()
	get := func(k string) (string, bool) {
		i := md.FindKey(k)
		if i < 0 {
			return "", false
		}
		return md.Values()[i], true
	}
	var pm parkMeta
	v, ok := get(MetaParkedRouterVersion)
	if !ok {
		return pm, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("cluster: mover: a parked record without %s", MetaParkedRouterVersion)}
	}
	var err error
	if pm.version, err = strconv.ParseInt(v, 10, 64); err != nil || pm.version < 0 {
		return pm, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("cluster: mover: parked router version %q", v)}
	}
	pm.claim = -1
	if c, ok := get(MetaParkedClaim); ok {
		if pm.claim, err = strconv.Atoi(c); err != nil || pm.claim < 0 {
			return pm, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("cluster: mover: parked claim %q", c)}
		}
	}
	if s, ok := get(MetaParkedShare); ok {
		if pm.share, err = strconv.ParseFloat(s, 64); err != nil || !(pm.share >= 0 && pm.share <= 1) {
			return pm, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("cluster: mover: parked share %q", s)}
		}
	}
	return pm, nil
}

// fresh returns the rows of in that are not duplicates by origin, records
// the dropped ones in res and counts the others as read.
func (mv *Mover) fresh(ctx context.Context, in arrow.Record, class int, res *pipeline.Result) ([]int, error) {
	docs, err := schemas.Documents(in)
	if err != nil {
		return nil, fmt.Errorf("cluster: mover: %w", err)
	}
	impossible := map[int]error{}
	if mv.OriginCheck != nil { // before any state changes: an error retries the record
		for i := range docs.Len() {
			err := mv.OriginCheck(ctx, docs.Origin(i))
			switch {
			case errors.Is(err, pipeline.ErrImpossibleOrigin):
				impossible[i] = err
			case err != nil:
				return nil, fmt.Errorf("cluster: mover: check origin: %w: %v", pipeline.ErrRetry, err)
			}
		}
	}
	var rows []int
	for i := range docs.Len() {
		if err := impossible[i]; err != nil {
			res.Dead = append(res.Dead, pipeline.DeadRow{Row: i, Reason: ReasonImpossibleOrigin, Err: err})
			mv.st.stats.Dead++
			continue
		}
		o := docs.Origin(i)
		key, p := classPartition{class, originPartition{o.Topic, o.Partition}}, position{o.Offset, o.Row}
		if last, ok := mv.st.last[key]; ok && !last.less(p) {
			res.Dropped = append(res.Dropped, i)
			continue
		}
		key.topic = strings.Clone(o.Topic) // the map outlives the record
		mv.st.last[key] = p
		rows = append(rows, i)
	}
	mv.st.stats.Duplicates += int64(len(res.Dropped))
	mv.st.stats.Read += int64(len(rows))
	mv.st.seen += int64(len(rows))
	return rows, nil
}

// moveBatch gathers the rows forwarded to one domain, in order: single-row
// Features records with their distances.
type moveBatch struct {
	recs    []arrow.Record
	dist    []float32
	version []int64
}

func (b *moveBatch) add(rec arrow.Record, row int, d float32, version int64) {
	b.recs = append(b.recs, rec.NewSlice(int64(row), int64(row+1)))
	b.dist = append(b.dist, d)
	b.version = append(b.version, version)
}

func (b *moveBatch) release() {
	for _, r := range b.recs {
		r.Release()
	}
}

func batchOf(out map[int]*moveBatch, id int) *moveBatch {
	b := out[id]
	if b == nil {
		b = &moveBatch{}
		out[id] = b
	}
	return b
}

// place forwards or holds the fresh rows of in (read at offset).
func (mv *Mover) place(in arrow.Record, offset int64, rows []int, meta parkMeta, cur *RouterModel, out map[int]*moveBatch, res *pipeline.Result) error {
	skip := make([]bool, in.NumRows())
	for i := range skip {
		skip[i] = true
	}
	for _, i := range rows {
		skip[i] = false
	}
	x, keep, dead, err := decodeFeatures(in, cur.FeaturizerVersion, cur.Model.Dim, skip)
	if err != nil {
		return fmt.Errorf("cluster: mover: %w", err)
	}
	docs, err := schemas.Documents(in)
	if err != nil {
		return fmt.Errorf("cluster: mover: %w", err)
	}
	// Rows of another featurizer version stay pending; other undecodable
	// rows are dead.
	for _, d := range dead {
		if d.Reason == ReasonWrongFeaturizerVersion {
			mv.hold(in, d.Row, offset, docs.Origin(d.Row))
			continue
		}
		res.Dead = append(res.Dead, d)
		mv.st.stats.Dead++
	}
	if len(keep) == 0 {
		return nil
	}
	k := cur.K()
	sq := distancesTo(mv.prepared.get(cur.Model), x) // row i: sq[i*k : (i+1)*k]
	if j, ok := cur.Index(meta.claim); ok && meta.claim >= 0 {
		// A claimed record: its rows belong to that grown domain.
		for i, r := range keep {
			batchOf(out, meta.claim).add(in, r, float32(max(sq[i*k+j], 0)), meta.version)
		}
		mv.st.stats.Forwarded += int64(len(keep))
		return nil
	}
	th := mv.rule.Thresholds(cur)
	for i, r := range keep {
		j := argmin(sq[i*k : (i+1)*k])
		d := float32(max(sq[i*k+j], 0))
		if id := cur.claim(th, j, float64(d), false); id >= 0 {
			batchOf(out, id).add(in, r, d, cur.Version)
			mv.st.stats.Forwarded++
			continue
		}
		mv.hold(in, r, offset, docs.Origin(r))
	}
	return nil
}

// hold keeps row r of in as pending.
func (mv *Mover) hold(in arrow.Record, r int, offset int64, o schemas.Origin) {
	in.Retain()
	mv.st.pending = append(mv.st.pending, pendingRow{rec: in, row: r, offset: offset, origin: o})
}

// maybeGrow adopts a growth made at this point, or grows when the trigger
// holds, and moves the pending rows the new domains claim into out.
func (mv *Mover) maybeGrow(ctx context.Context, share float64, out map[int]*moveBatch) error {
	g := mv.nextGrowth()
	switch {
	case g != nil && g.Growth.Seen == mv.st.seen:
		// Made here before a crash: adopt it.
	case g != nil && g.Growth.Seen < mv.st.seen:
		// The mover went past it without adopting it (another process's
		// growth, or a changed configuration): adopt it now, as late as it
		// can be; its claims are made on the rows pending now.
		mv.logger().Warn("adopting a growth past the point it was made at", "router_version", g.Version, "growth_seen", g.Growth.Seen, "seen", mv.st.seen)
	case g == nil && mv.Publish != nil && len(mv.st.pending) >= mv.cfg.MinCount && share >= mv.cfg.MinShare:
		grown, err := mv.grow(ctx)
		if err != nil {
			return err
		}
		if grown == nil {
			return nil
		}
		g = grown
	default:
		return nil
	}
	return mv.adopt(g, out)
}

// grow fits new domains on the pending rows of the current router's
// featurizer version and publishes them; nil when nothing could be grown.
func (mv *Mover) grow(ctx context.Context) (*RouterModel, error) {
	cur := mv.routers[mv.applied]
	x, _, err := mv.pendingRows(cur)
	if err != nil {
		return nil, err
	}
	if x == nil || x.N < mv.cfg.MinCount {
		return nil, nil
	}
	g, _, err := cur.Grow(ctx, x, mv.cfg, mv.rule)
	if err != nil {
		mv.logger().Warn("no growth", "pending", x.N, "err", err)
		return nil, nil
	}
	g.Growth.Seen = mv.st.seen
	g.Growth.Through = mv.st.pending[len(mv.st.pending)-1].origin
	pub, err := mv.Publish(ctx, g)
	if err != nil {
		return nil, fmt.Errorf("cluster: mover: publish the grown router: %w", pipeline.ErrRetry)
	}
	if pub.Growth == nil || pub.Growth.Seen != mv.st.seen {
		return nil, errors.New("cluster: mover: the published router lost its growth record")
	}
	mv.routers[pub.Version] = pub
	mv.logger().Info("domains grown from novel documents", "router_version", pub.Version, "new_ids", pub.Growth.IDs,
		"pending", pub.Growth.Pending, "claimed", pub.Growth.Claimed, "target", pub.Growth.Target, "tightest", pub.Growth.Tightest)
	return pub, nil
}

// pendingRows returns the vectors of the pending rows of cur's featurizer
// version, with their indices in mv.st.pending.
func (mv *Mover) pendingRows(cur *RouterModel) (*Rows, []int, error) {
	var recs []arrow.Record
	var idx []int
	for i, p := range mv.st.pending {
		recs = append(recs, p.rec.NewSlice(int64(p.row), int64(p.row+1)))
		idx = append(idx, i)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if len(recs) == 0 {
		return nil, nil, nil
	}
	var all *Rows
	var which []int
	for k, r := range recs {
		x, keep, _, err := decodeFeatures(r, cur.FeaturizerVersion, cur.Model.Dim, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: mover: %w", err)
		}
		if len(keep) == 0 {
			continue
		}
		all = appendRows(all, x)
		which = append(which, idx[k])
	}
	return all, which, nil
}

// appendRows appends the rows of b to a (nil: a copy of b); a row is sparse
// in the result when either is sparse.
func appendRows(a, b *Rows) *Rows {
	if a == nil {
		a = &Rows{Dim: b.Dim}
		if b.Sparse() {
			a.Indptr = []int64{0}
		}
	}
	if a.Sparse() != b.Sparse() {
		a, b = toSparse(a), toSparse(b)
	}
	if !a.Sparse() {
		a.Values = append(a.Values, b.Values...)
		a.N += b.N
		return a
	}
	for i := range b.N {
		idx, val := b.Row(i)
		a.Indices = append(a.Indices, idx...)
		a.Values = append(a.Values, val...)
		a.Indptr = append(a.Indptr, int64(len(a.Values)))
	}
	a.N += b.N
	return a
}

// toSparse returns r in the sparse layout (r itself when it is).
func toSparse(r *Rows) *Rows {
	if r.Sparse() {
		return r
	}
	s := &Rows{N: r.N, Dim: r.Dim, Indptr: []int64{0}}
	for i := range r.N {
		_, val := r.Row(i)
		for d, v := range val {
			if v != 0 {
				s.Indices = append(s.Indices, int32(d))
				s.Values = append(s.Values, v)
			}
		}
		s.Indptr = append(s.Indptr, int64(len(s.Values)))
	}
	return s
}

// adopt makes growth g the current router and moves the pending rows its
// new domains claim into out, in parked order.
func (mv *Mover) adopt(g *RouterModel, out map[int]*moveBatch) error {
	mv.applied = g.Version
	mv.st.stats.Growths++
	x, which, err := mv.pendingRows(g)
	if err != nil {
		return err
	}
	moved := map[int]bool{}
	if x != nil {
		near, nd := g.Model.assignWith(mv.prepared.get(g.Model), x)
		th := mv.rule.Thresholds(g)
		for k, i := range which {
			if id := g.claim(th, near[k], float64(nd[k]), true); id >= 0 {
				p := mv.st.pending[i]
				batchOf(out, id).add(p.rec, p.row, nd[k], g.Version)
				moved[i] = true
			}
		}
	}
	kept := mv.st.pending[:0]
	for i, p := range mv.st.pending {
		if moved[i] {
			p.rec.Release()
			continue
		}
		kept = append(kept, p)
	}
	clear(mv.st.pending[len(kept):])
	mv.st.pending = kept
	mv.st.stats.Moved += int64(len(moved))
	mv.advance() // routers swapped in while the growth was pending
	return nil
}

// emit turns the forwarded rows into Routed records, one per domain, in
// domain order (within a domain, rows keep their order).
func (mv *Mover) emit(out map[int]*moveBatch, res *pipeline.Result) error {
	defer func() {
		for _, b := range out {
			b.release()
		}
	}()
	for _, id := range slices.Sorted(maps.Keys(out)) {
		b := out[id]
		// Consecutive rows of the same columns (the user's extra columns
		// may differ) go in one record.
		for lo := 0; lo < len(b.recs); {
			hi := lo + 1
			for hi < len(b.recs) && sameFields(b.recs[hi].Schema(), b.recs[lo].Schema()) {
				hi++
			}
			joined, err := concatRecords(b.recs[lo:hi], mv.mem)
			if err != nil {
				return err
			}
			pos := make([]int, hi-lo)
			keep := make([]int, hi-lo)
			for i := range pos {
				pos[i], keep[i] = i, i
			}
			// The router version column holds each row's placing version.
			rec, err := routedRecord(mv.mem, joined, keep, pos, id, b.dist[lo:hi], b.version[lo])
			joined.Release()
			if err != nil {
				return err
			}
			if !sameVersions(b.version[lo:hi]) {
				rec = withVersions(rec, b.version[lo:hi], mv.mem)
			}
			res.Out = append(res.Out, pipeline.Output{Topic: pipeline.DomainTopic(id), Record: rec})
			lo = hi
		}
	}
	return nil
}

func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		if !arrow.TypeEqual(a.Field(i).Type, b.Field(i).Type) || a.Field(i).Name != b.Field(i).Name {
			return false
		}
	}
	return true
}

func sameVersions(v []int64) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

// withVersions returns rec (released) with its router version column set
// to v row by row.
func withVersions(rec arrow.Record, v []int64, mem memory.Allocator) arrow.Record {
	defer rec.Release()
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	col := b.NewArray()
	defer col.Release()
	j := rec.Schema().FieldIndices(schemas.ColRouterVersion)[0]
	cols := slices.Clone(rec.Columns())
	cols[j] = col
	return array.NewRecord(rec.Schema(), cols, rec.NumRows())
}

// concatRecords concatenates records of the same fields column by column
// (the first one's schema).
func concatRecords(recs []arrow.Record, mem memory.Allocator) (arrow.Record, error) {
	s := recs[0].Schema()
	cols := make([]arrow.Array, s.NumFields())
	for c := range cols {
		parts := make([]arrow.Array, len(recs))
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			for _, x := range cols[:c] {
				x.Release()
			}
			return nil, fmt.Errorf("cluster: mover: join rows: %w", err)
		}
		cols[c] = a
	}
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	rec := array.NewRecord(s, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

// moverSnapshot is the saved form of a mover's state (JSON).
type moverSnapshot struct {
	Format  int          `json:"format"`
	Applied int64        `json:"applied"` // the current router version
	Seen    int64        `json:"seen"`
	Next    *int64       `json:"next,omitempty"` // parked offset after the last record the state includes (absent: the snapshot's offset)
	Last    []classEntry `json:"last,omitempty"`
	Low     int64        `json:"low"`               // parked offset of the oldest pending row (-1: none)
	Pending []lastEntry  `json:"pending,omitempty"` // origins of the pending rows, in order
	Stats   MoverStats   `json:"stats"`
}

// classEntry is a last position of a parking class.
type classEntry struct {
	Class int `json:"c"`
	lastEntry
}

const moverSnapshotFormat = 1

// Snapshot returns the mover's state at parked offset next (see
// pipeline.PartitionStage).
func (mv *Mover) Snapshot(p pipeline.Partition, next int64) ([]byte, error) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	sn := moverSnapshot{Format: moverSnapshotFormat, Applied: mv.applied, Seen: mv.st.seen, Low: -1, Stats: mv.st.stats}
	if mv.st.next >= 0 {
		// Below next when the runner labels a restored state with a later
		// offset (a snapshot older than the committed input): the next
		// record handled then replays the records in between.
		n := min(mv.st.next, next)
		sn.Next = &n
	}
	sn.Stats.Pending = int64(len(mv.st.pending))
	for k, p := range mv.st.last {
		sn.Last = append(sn.Last, classEntry{Class: k.class, lastEntry: lastEntry{Topic: k.topic, Partition: k.partition, Offset: p.offset, Row: p.row}})
	}
	slices.SortFunc(sn.Last, func(a, b classEntry) int {
		return cmp.Or(cmp.Compare(a.Class, b.Class), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	for i, r := range mv.st.pending {
		if i == 0 {
			sn.Low = r.offset
		}
		sn.Low = min(sn.Low, r.offset)
		sn.Pending = append(sn.Pending, lastEntry{Topic: r.origin.Topic, Partition: r.origin.Partition, Offset: r.origin.Offset, Row: r.origin.Row})
	}
	return json.Marshal(sn)
}

// Pending reports whether a snapshot would change what the mover does: it
// never does (its router changes inside ProcessAt).
func (mv *Mover) Pending(pipeline.Partition, int64) bool { return false }

// Restore sets the mover's state from a snapshot taken at parked offset at
// (nil: a fresh state), reading its pending rows back with Refetch. The
// state reaches the offset the snapshot records (at, unless the snapshot
// was labelled later than its state: see catchUp).
func (mv *Mover) Restore(ctx context.Context, p pipeline.Partition, state []byte, at, end int64) error {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	for _, r := range mv.st.pending {
		r.rec.Release()
	}
	mv.st = moverState{next: -1, last: map[classPartition]position{}}
	if state == nil {
		// Nothing was committed: the parked topic is read from its start,
		// with the router before any growth made on it (a growth published
		// before the first commit is adopted again where it was made).
		for mv.routers[mv.applied].Growth != nil && mv.Lookup != nil && mv.applied > 0 {
			prev, err := mv.Lookup(ctx, mv.applied-1)
			if err != nil {
				return fmt.Errorf("cluster: mover: router version %d before growth %d: %w", mv.applied-1, mv.applied, err)
			}
			mv.routers[prev.Version] = prev
			mv.applied = prev.Version
		}
		return nil
	}
	var sn moverSnapshot
	if err := json.Unmarshal(state, &sn); err != nil {
		return fmt.Errorf("cluster: mover: snapshot of %s: %w", p, err)
	}
	if sn.Format != moverSnapshotFormat {
		return fmt.Errorf("cluster: mover: snapshot of %s has format %d, this build reads %d", p, sn.Format, moverSnapshotFormat)
	}
	if mv.Lookup != nil {
		newest := slices.Max(slices.Collect(maps.Keys(mv.routers)))
		for v := sn.Applied; v <= newest; v++ {
			if _, ok := mv.routers[v]; ok {
				continue
			}
			if m, err := mv.Lookup(ctx, v); err == nil && m.Version == v {
				mv.routers[v] = m
			}
		}
		mv.discover(ctx)
	}
	if _, ok := mv.routers[sn.Applied]; !ok {
		return fmt.Errorf("cluster: mover: snapshot of %s uses router version %d, unknown here: %w", p, sn.Applied, pipeline.ErrRetry)
	}
	mv.applied = sn.Applied
	mv.st.seen, mv.st.stats = sn.Seen, sn.Stats
	mv.st.next = at
	if sn.Next != nil {
		mv.st.next = *sn.Next
	}
	for _, e := range sn.Last {
		mv.st.last[classPartition{e.Class, originPartition{e.Topic, e.Partition}}] = position{e.Offset, e.Row}
	}
	if len(sn.Pending) == 0 {
		return nil
	}
	if mv.Refetch == nil {
		return errors.New("cluster: mover: a snapshot with pending rows and no way to read them back (Refetch)")
	}
	want := make(map[lastEntry]int, len(sn.Pending))
	for i, e := range sn.Pending {
		want[e] = i
	}
	got := make([]pendingRow, len(sn.Pending))
	found := 0
	err := mv.Refetch(ctx, sn.Low, at, func(offset int64, rec arrow.Record) error {
		docs, err := schemas.Documents(rec)
		if err != nil {
			return nil // not a parked record: the mover dead-lettered it
		}
		for i := range docs.Len() {
			o := docs.Origin(i)
			k, ok := want[lastEntry{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Row: o.Row}]
			if !ok || got[k].rec != nil {
				continue
			}
			rec.Retain()
			got[k] = pendingRow{rec: rec, row: i, offset: offset, origin: o}
			found++
		}
		return nil
	})
	if err == nil && found < len(got) {
		err = fmt.Errorf("%d of %d pending rows not found in %s from offset %d to %d", len(got)-found, len(got), p, sn.Low, at)
	}
	if err != nil {
		for _, r := range got {
			if r.rec != nil {
				r.rec.Release()
			}
		}
		return fmt.Errorf("cluster: mover: restore the pending rows: %w", err)
	}
	mv.st.pending = got
	return nil
}

// lastEntries returns the last positions sorted by origin partition.
func lastEntries(last map[originPartition]position) []lastEntry {
	out := make([]lastEntry, 0, len(last))
	for k, p := range last {
		out = append(out, lastEntry{Topic: k.topic, Partition: k.partition, Offset: p.offset, Row: p.row})
	}
	slices.SortFunc(out, func(a, b lastEntry) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// Close releases the pending rows.
func (mv *Mover) Close() {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	for _, r := range mv.st.pending {
		r.rec.Release()
	}
	mv.st.pending = nil
}

// MoverState is a mover's saved state as others read it (DecodeMoverState):
// what it had read, the origins of its pending rows, its counters.
type MoverState struct {
	RouterVersion int64            // the router it judged with
	Seen          int64            // parked rows read, duplicates excluded
	Pending       []schemas.Origin // the pending rows, in parked order
	Stats         MoverStats
}

// DecodeMoverState decodes a snapshot of a mover (the value saved on its
// state topic, RoutingStateTopic(MoverGroup(group))).
func DecodeMoverState(b []byte) (MoverState, error) {
	var sn moverSnapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return MoverState{}, fmt.Errorf("cluster: mover state: %w", err)
	}
	if sn.Format != moverSnapshotFormat {
		return MoverState{}, fmt.Errorf("cluster: mover state has format %d, this build reads %d", sn.Format, moverSnapshotFormat)
	}
	s := MoverState{RouterVersion: sn.Applied, Seen: sn.Seen, Stats: sn.Stats}
	for _, e := range sn.Pending {
		s.Pending = append(s.Pending, schemas.Origin{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Row: e.Row})
	}
	return s, nil
}
