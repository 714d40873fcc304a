package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// stageModel is a 4-domain router over unit vectors of dimension 2 with ids
// that are not 0..k-1.
func stageModel(version int64, ids []int) *RouterModel {
	next := 0
	for _, id := range ids {
		next = max(next, id+1)
	}
	return &RouterModel{
		Version: version, FeaturizerVersion: 1, Featurizer: "test",
		IDs: ids, NextID: next,
		Model: &Model{K: 4, Dim: 2, Centroids: []float32{1, 0, 0, 1, -1, 0, 0, -1}, Sizes: []int{1, 1, 1, 1}},
	}
}

// featVec is one test vector: dense when idx is nil.
type featVec struct {
	idx     []int32
	val     []float32
	dim     int32
	version int64
}

// featuresRecord builds a Features record of vs; row i has id prefix+i and
// origin offset first+i.
func featuresRecord(t testing.TB, prefix string, first int, vs []featVec) arrow.Record {
	t.Helper()
	return featuresRecordAt(t, prefix, first, 0, vs)
}

// featuresRecordAt is featuresRecord with rows from origin partition part.
func featuresRecordAt(t testing.TB, prefix string, first, part int, vs []featVec) arrow.Record {
	t.Helper()
	offsets := make([]int, len(vs))
	for i := range offsets {
		offsets[i] = first + i
	}
	return featuresRecordOffsets(t, prefix, offsets, part, vs)
}

// featuresRecordOffsets builds a Features record of vs whose row i has id
// prefix+offsets[i] and origin offset offsets[i] in origin partition part.
func featuresRecordOffsets(t testing.TB, prefix string, offsets []int, part int, vs []featVec) arrow.Record {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.FeaturesSchema())
	defer rb.Release()
	s := schemas.FeaturesSchema()
	fi := func(name string) int { return s.FieldIndices(name)[0] }
	dim := rb.Field(fi(schemas.ColDim)).(*array.Int32Builder)
	idx := rb.Field(fi(schemas.ColIndices)).(*array.ListBuilder)
	val := rb.Field(fi(schemas.ColValues)).(*array.ListBuilder)
	ver := rb.Field(fi(schemas.ColFeaturizerVersion)).(*array.Int64Builder)
	for i, v := range vs {
		off := offsets[i]
		schemas.AppendDocument(rb, schemas.Document{ID: prefix + strconv.Itoa(off), Text: "text " + strconv.Itoa(off)},
			schemas.Origin{Topic: pipeline.TopicRaw, Partition: int32(part), Offset: int64(off)})
		dim.Append(v.dim)
		if v.idx == nil {
			idx.AppendNull()
		} else {
			idx.Append(true)
			idx.ValueBuilder().(*array.Int32Builder).AppendValues(v.idx, nil)
		}
		val.Append(true)
		val.ValueBuilder().(*array.Float32Builder).AppendValues(v.val, nil)
		ver.Append(v.version)
	}
	return rb.NewRecord()
}

// skewed returns n unit vectors, 70% of them near (1, 0).
func skewed(n int, seed uint64) []featVec {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]featVec, n)
	for i := range out {
		var x, y float32
		if rng.Float64() < 0.7 {
			x, y = 1, float32(rng.NormFloat64()*0.1)
		} else {
			x, y = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		out[i] = featVec{val: []float32{x, y}, dim: 2, version: 1}
	}
	return out
}

func arrowMessage(t testing.TB, topic string, rec arrow.Record) kafka.Message {
	t.Helper()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: topic, Value: b, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
	}}
}

// routedRow is one decoded output row.
type routedRow struct {
	id      string
	offset  int64
	domain  int32
	dist    float32
	version int64
}

func decodeRouted(t testing.TB, msgs []kafka.Message) []routedRow {
	t.Helper()
	var out []routedRow
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		for _, rec := range recs {
			if err := schemas.CheckSchema(rec.Schema(), schemas.KindRouted); err != nil {
				t.Fatal(err)
			}
			docs, err := schemas.Documents(rec)
			if err != nil {
				t.Fatal(err)
			}
			s := rec.Schema()
			dom := rec.Column(s.FieldIndices(schemas.ColDomain)[0]).(*array.Int32)
			dis := rec.Column(s.FieldIndices(schemas.ColDistance)[0]).(*array.Float32)
			ver := rec.Column(s.FieldIndices(schemas.ColRouterVersion)[0]).(*array.Int64)
			for i := range docs.Len() {
				r := routedRow{docs.ID(i), docs.Origin(i).Offset, dom.Value(i), dis.Value(i), ver.Value(i)}
				if m.Topic != "" && m.Topic != pipeline.DomainTopic(int(r.domain)) {
					t.Fatalf("row %s of domain %d on topic %s", r.id, r.domain, m.Topic)
				}
				out = append(out, r)
			}
			rec.Release()
		}
	}
	return out
}

// TestStageRunner runs the stage under the runtime with in-memory Kafka: every
// row comes out exactly once, on its domain's topic, in input order, and the
// counts are balanced on a skewed input.
func TestStageRunner(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	const n, per = 2000, 100
	vs := skewed(n, 1)
	src := pipeline.NewMemSource()
	for lo := 0; lo < n; lo += per {
		rec := featuresRecord(t, "d", lo, vs[lo:lo+per])
		src.Add(arrowMessage(t, pipeline.TopicFeatures, rec))
		rec.Release()
	}
	src.CloseInput()
	sink := pipeline.NewMemSink()
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "cluster", Stage: st, Source: src, Sink: sink, OutputTopic: "docs.domain",
		Accept: []schemas.Kind{schemas.KindFeatures}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if c := r.Counts(); c.In != n || c.Out != n || c.Dead != 0 {
		t.Fatalf("counts %+v", c)
	}
	if m := sink.Messages("docs.domain"); len(m) != 0 {
		t.Fatalf("%d messages on the placeholder topic", len(m))
	}
	seen := map[string]int{}
	counts := map[int32]int{}
	for _, id := range []int{3, 5, 7, 9} {
		rows := decodeRouted(t, sink.Messages(pipeline.DomainTopic(id)))
		last := int64(-1)
		for _, row := range rows {
			if int(row.domain) != id || row.version != 1 || row.dist < 0 {
				t.Fatalf("row %+v on domain %d", row, id)
			}
			if row.offset <= last {
				t.Fatalf("domain %d: offset %d after %d", id, row.offset, last)
			}
			last = row.offset
			seen[row.id]++
			counts[row.domain]++
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct rows routed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("row %s routed %d times", id, c)
		}
	}
	mean := float64(n) / 4
	for d, c := range counts {
		if float64(c) < mean*0.95-2 || float64(c) > mean*1.05+2 {
			t.Fatalf("domain %d holds %d rows, mean %.0f: counts %v", d, c, mean, counts)
		}
	}
	if got := st.Counts(); got[3] != int64(counts[3]) || got[9] != int64(counts[9]) {
		t.Fatalf("stage counts %v, routed %v", got, counts)
	}
}

// TestStageUnbalanced: a model with RouteConfig.Unbalanced routes by argmin.
func TestStageUnbalanced(t *testing.T) {
	m := stageModel(1, []int{0, 1, 2, 3})
	m.Route.Unbalanced = true
	st, err := NewStage(m)
	if err != nil {
		t.Fatal(err)
	}
	rec := featuresRecord(t, "d", 0, []featVec{
		{val: []float32{1, 0}, dim: 2, version: 1},
		{val: []float32{0.9, 0.1}, dim: 2, version: 1},
		{val: []float32{0, -1}, dim: 2, version: 1},
	})
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Out) != 2 || res.Out[0].Topic != pipeline.DomainTopic(0) || res.Out[0].Record.NumRows() != 2 ||
		res.Out[1].Topic != pipeline.DomainTopic(3) || res.Out[1].Record.NumRows() != 1 {
		t.Fatalf("outputs %v", res.Out)
	}
	// One contiguous run: the document columns are shared with the input.
	if res.Out[0].Record.Column(0).Data().Buffers()[2] != rec.Column(0).Data().Buffers()[2] {
		t.Errorf("document column was copied")
	}
	for _, o := range res.Out {
		o.Record.Release()
	}
}

// TestStageDeadRows: rows of another featurizer version or dimension are
// dead; sparse and dense rows are both routed.
func TestStageDeadRows(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{0, 1, 2, 3}))
	if err != nil {
		t.Fatal(err)
	}
	rec := featuresRecord(t, "d", 0, []featVec{
		{val: []float32{1, 0}, dim: 2, version: 1},
		{val: []float32{1, 0}, dim: 2, version: 2},
		{idx: []int32{1}, val: []float32{1}, dim: 2, version: 1},
		{val: []float32{1, 0, 0}, dim: 3, version: 1},
		{val: []float32{1}, dim: 2, version: 1},
		{idx: []int32{1, 0}, val: []float32{1, 1}, dim: 2, version: 1},
	})
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]schemas.Reason{1: ReasonWrongFeaturizerVersion, 3: ReasonWrongDimension, 4: ReasonWrongDimension, 5: ReasonWrongDimension}
	if len(res.Dead) != len(want) {
		t.Fatalf("dead %+v", res.Dead)
	}
	for _, d := range res.Dead {
		if want[d.Row] != d.Reason || d.Err == nil {
			t.Fatalf("dead row %+v, want reason %q", d, want[d.Row])
		}
	}
	var rows []routedRow
	for _, o := range res.Out {
		rs := decodeRouted(t, []kafka.Message{{Topic: o.Topic, Value: mustEncode(t, o.Record)}})
		rows = append(rows, rs...)
		o.Record.Release()
	}
	if len(rows) != 2 {
		t.Fatalf("routed %+v", rows)
	}
	for _, r := range rows {
		if (r.id == "d0" && r.domain != 0) || (r.id == "d2" && r.domain != 1) {
			t.Fatalf("row %+v", r)
		}
	}
	// A record of another kind is an error (the runner dead-letters it).
	bad := array.NewRecord(schemas.DocumentSchema(), rec.Columns()[:schemas.NumDocumentColumns], rec.NumRows())
	defer bad.Release()
	if _, err := st.Process(context.Background(), bad); err == nil {
		t.Fatal("a document record was routed")
	}
}

func mustEncode(t testing.TB, rec arrow.Record) []byte {
	t.Helper()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStageSwap: a new version keeps the counts of surviving ids, starts a
// new id at the mean, drops a retired one, and stamps its version.
func TestStageSwap(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	rec := featuresRecord(t, "d", 0, skewed(400, 2))
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Out {
		o.Record.Release()
	}
	before := st.Counts()
	m2 := stageModel(2, []int{5, 3, 7, 11}) // 9 retired, 11 new, 3 and 5 swap centroids
	if err := st.Swap(m2); err != nil {
		t.Fatal(err)
	}
	if st.Model() != m2 {
		t.Fatal("Model() is not the swapped model")
	}
	after := st.Counts()
	if len(after) != 4 || after[3] != before[3] || after[5] != before[5] || after[7] != before[7] || after[11] != 100 {
		t.Fatalf("counts before %v, after swap %v", before, after)
	}
	if _, ok := after[9]; ok {
		t.Fatalf("retired id 9 still counted: %v", after)
	}
	rec2 := featuresRecord(t, "d", 400, skewed(400, 2))
	defer rec2.Release()
	res, err = st.Process(context.Background(), rec2)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range res.Out {
		rows := decodeRouted(t, []kafka.Message{{Topic: o.Topic, Value: mustEncode(t, o.Record)}})
		for _, r := range rows {
			if r.version != 2 || r.domain == 9 {
				t.Fatalf("row %+v after the swap", r)
			}
		}
		n += len(rows)
		o.Record.Release()
	}
	if n != 400 {
		t.Fatalf("%d rows routed after the swap", n)
	}
	// Balance holds across the versions: 800 rows over 4 domains (the new
	// one started at the mean).
	for id, c := range st.Counts() {
		if c < 190 || c > 210 {
			t.Fatalf("domain %d holds %d after the swap: %v", id, c, st.Counts())
		}
	}
	if err := st.Swap(&RouterModel{}); err == nil {
		t.Fatal("an invalid model was swapped in")
	}
	// With a window cap, the recent domains carry over by id.
	mw := stageModel(3, []int{3, 5, 7, 11})
	mw.Route.Window = 50
	if err := st.Swap(mw); err != nil {
		t.Fatal(err)
	}
	mw2 := stageModel(4, []int{3, 5, 12, 11})
	mw2.Route.Window = 50
	if err := st.Swap(mw2); err != nil {
		t.Fatal(err)
	}
}

// TestStageKafka runs the stage on the embedded broker end to end.
func TestStageKafka(t *testing.T) {
	b := pipetest.Broker(t)
	cc := b.Client()
	ids := []int{3, 5, 7, 9}
	topics := []string{pipeline.TopicFeatures, pipeline.TopicDeadLetter, "docs.domain"}
	for _, id := range ids {
		topics = append(topics, pipeline.DomainTopic(id))
	}
	pipetest.CreateTopics(t, cc, 2, topics...)
	const n, per = 600, 50
	vs := skewed(n, 3)
	var msgs []kafka.Message
	for lo := 0; lo < n; lo += per {
		rec := featuresRecordAt(t, "d", lo, (lo/per)%2, vs[lo:lo+per])
		m := arrowMessage(t, pipeline.TopicFeatures, rec)
		m.Partition = (lo / per) % 2
		msgs = append(msgs, m)
		rec.Release()
	}
	pipetest.Produce(t, cc, msgs...)

	st, err := NewStage(stageModel(1, ids))
	if err != nil {
		t.Fatal(err)
	}
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{pipeline.TopicFeatures}, GroupID: "cluster"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "cluster", Stage: st, Source: src, Sink: sink, OutputTopic: "docs.domain",
		Accept: []schemas.Kind{schemas.KindFeatures}, Linger: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for r.Counts().Out < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, id := range ids {
		for _, row := range decodeRouted(t, pipetest.ReadAll(t, cc, pipeline.DomainTopic(id))) {
			if int(row.domain) != id {
				t.Fatalf("row %+v on %s", row, pipeline.DomainTopic(id))
			}
			seen[row.id]++
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d rows routed (runner counts %+v)", len(seen), n, r.Counts())
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("row %s routed %d times", id, c)
		}
	}
	if got := pipetest.ReadAll(t, cc, "docs.domain"); len(got) != 0 {
		t.Fatalf("%d messages on the placeholder topic", len(got))
	}
}

// TestStageRefitBridge: after a swap to a router of a new featurizer
// version, rows still featurized by the old version are routed through the
// old centroids to the nearest domain the new router keeps; rows of any
// other version are dead; nothing is lost and input order holds.
func TestStageRefitBridge(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	// The refit lives in another space (featurizer v2, dimension 3) and
	// drops id 9 (the (0,-1) centroid of v1).
	m2 := &RouterModel{Version: 2, FeaturizerVersion: 2, Featurizer: "test", IDs: []int{3, 5, 7}, NextID: 10,
		Model: &Model{K: 3, Dim: 3, Centroids: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, Sizes: []int{1, 1, 1}}}
	if err := st.Swap(m2); err != nil {
		t.Fatal(err)
	}
	vs := []featVec{
		{val: []float32{1, 0}, dim: 2, version: 1},       // old: nearest id 3
		{val: []float32{0, 0, 1}, dim: 3, version: 2},    // new: id 7
		{val: []float32{0, -1}, dim: 2, version: 1},      // old: nearest 9 is gone → 3, 5 or 7 (all at √2): lowest row, id 3
		{val: []float32{0.1, 0.9}, dim: 2, version: 1},   // old: id 5
		{val: []float32{1, 0, 0, 0}, dim: 4, version: 7}, // unknown version: dead
		{val: []float32{0, 1, 0}, dim: 3, version: 2},    // new: id 5
	}
	rec := featuresRecord(t, "d", 0, vs)
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dead) != 1 || res.Dead[0].Row != 4 || res.Dead[0].Reason != ReasonWrongFeaturizerVersion {
		t.Fatalf("dead rows %+v, want row 4 only", res.Dead)
	}
	got := map[string]int32{}
	for _, o := range res.Out {
		rows := decodeRouted(t, []kafka.Message{{Topic: o.Topic, Value: mustEncode(t, o.Record)}})
		last := int64(-1)
		for _, r := range rows {
			if r.offset <= last {
				t.Fatalf("rows out of order on %s: %+v", o.Topic, rows)
			}
			last = r.offset
			got[r.id] = r.domain
		}
		o.Record.Release()
	}
	want := map[string]int32{"d0": 3, "d1": 7, "d2": 3, "d3": 5, "d5": 5}
	if len(got) != len(want) {
		t.Fatalf("routed %v, want %v", got, want)
	}
	for id, d := range want {
		if got[id] != d {
			t.Fatalf("routed %v, want %v", got, want)
		}
	}
	var total int64
	for _, c := range st.Counts() {
		total += c
	}
	if total != 5 {
		t.Fatalf("counts %v: bridged rows not counted", st.Counts())
	}
	// A removal on the new featurizer keeps the bridge, re-mapped: id 3 is
	// gone, so an old row nearest it goes to the next nearest kept id.
	m3, err := m2.RemoveDomain(3)
	if err != nil {
		t.Fatal(err)
	}
	m3.Version = 3
	if err := st.Swap(m3); err != nil {
		t.Fatal(err)
	}
	rec2 := featuresRecord(t, "e", 100, []featVec{{val: []float32{0.9, 0.2}, dim: 2, version: 1}})
	defer rec2.Release()
	res, err = st.Process(context.Background(), rec2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dead) != 0 || len(res.Out) != 1 || res.Out[0].Topic != pipeline.DomainTopic(5) {
		t.Fatalf("after removing 3: out %v dead %v, want the row on domain 5", res.Out, res.Dead)
	}
	res.Out[0].Record.Release()
}

// TestStageSetCounts: restored counts by id drive the balance from the
// first row on.
func TestStageSetCounts(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetCounts(map[int]int64{3: 500, 5: 100, 7: 100, 42: 7}); err != nil {
		t.Fatal(err)
	}
	c := st.Counts()
	// 9 is missing: it starts at the mean of the given counts (707/4).
	if c[3] != 500 || c[5] != 100 || c[7] != 100 || c[9] != 177 || len(c) != 4 {
		t.Fatalf("counts %v", c)
	}
	rec := featuresRecord(t, "d", 0, skewed(400, 3))
	defer rec.Release()
	res, err := st.Process(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Out {
		if o.Topic == pipeline.DomainTopic(3) {
			t.Fatalf("domain 3 is far over its share but got rows")
		}
		o.Record.Release()
	}
}

// TestReservoir: the sample is uniform-ish, bounded, restarts on a newer
// featurizer version, skips bad rows and is deterministic for a seed.
func TestReservoir(t *testing.T) {
	fill := func(seed uint64) (*Reservoir, []string) {
		r := NewReservoir(100, seed)
		for b := range 20 {
			vs := skewed(50, uint64(b))
			vs[0].dim = 3 // wrong dimension: skipped
			rec := featuresRecord(t, "d", b*50, vs)
			skipped, err := r.Add(rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
			if skipped != 1 {
				t.Fatalf("batch %d: %d skipped, want 1", b, skipped)
			}
		}
		_, ids := r.Rows()
		return r, ids
	}
	r, ids := fill(7)
	if r.Len() != 100 || r.Seen() != 20*49 || r.Version() != 1 {
		t.Fatalf("len %d seen %d version %d", r.Len(), r.Seen(), r.Version())
	}
	// Uniform over the stream: the sample reaches into its second half.
	late := 0
	for _, id := range ids {
		n, _ := strconv.Atoi(id[1:])
		if n >= 500 {
			late++
		}
	}
	if late < 25 || late > 75 {
		t.Fatalf("%d of 100 sampled rows from the second half", late)
	}
	_, ids2 := fill(7)
	if !slices.Equal(ids, ids2) {
		t.Fatal("same seed, different sample")
	}
	x, _ := r.Rows()
	if err := x.Validate(); err != nil || x.N != 100 || x.Dim != 2 {
		t.Fatalf("rows: %v (n %d dim %d)", err, x.N, x.Dim)
	}
	// A newer featurizer version restarts the sample.
	vs := skewed(10, 99)
	for i := range vs {
		vs[i] = featVec{idx: []int32{0, 4}, val: []float32{0.6, 0.8}, dim: 5, version: 2}
	}
	rec := featuresRecord(t, "n", 0, vs)
	defer rec.Release()
	if _, err := r.Add(rec); err != nil {
		t.Fatal(err)
	}
	x, ids = r.Rows()
	if r.Version() != 2 || x.N != 10 || !x.Sparse() || x.Dim != 5 || ids[0] != "n0" {
		t.Fatalf("after v2: version %d n %d sparse %v dim %d", r.Version(), x.N, x.Sparse(), x.Dim)
	}
}

// TestStageDropsDuplicates: rows re-sent by an upstream stage after a crash
// (at or below the last origin position seen) are dropped, so the routing
// and the balance are those of the distinct rows.
func TestStageDropsDuplicates(t *testing.T) {
	st, err := NewStage(stageModel(1, []int{3, 5, 7, 9}))
	if err != nil {
		t.Fatal(err)
	}
	route := func(first, n int) int {
		rec := featuresRecord(t, "d", first, skewed(n, uint64(first)))
		defer rec.Release()
		res, err := st.Process(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		out := 0
		for _, o := range res.Out {
			out += int(o.Record.NumRows())
			o.Record.Release()
		}
		if len(res.Dead) != 0 {
			t.Fatalf("dead rows %v", res.Dead)
		}
		return out
	}
	if got := route(0, 100); got != 100 {
		t.Fatalf("first batch: %d routed", got)
	}
	if got := route(0, 100); got != 0 || st.Duplicates() != 100 {
		t.Fatalf("re-sent batch: %d routed, %d duplicates", got, st.Duplicates())
	}
	if got := route(50, 100); got != 50 || st.Duplicates() != 150 {
		t.Fatalf("overlapping batch: %d routed, %d duplicates", got, st.Duplicates())
	}
	var total int64
	for _, c := range st.Counts() {
		total += c
	}
	if total != 150 {
		t.Fatalf("counts %v: duplicates were counted", st.Counts())
	}
}
