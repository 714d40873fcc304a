//go:build reliability

package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// advRawTopic is a raw topic no stage reads: forged feature rows claim
// origins in it that exist (offsets below its end) and are new, so that
// only their features make them bad.
const advRawTopic = "adv.raw"

// bogusDomainTopics look like domain topics, but no router has their ids.
var bogusDomainTopics = []string{pipeline.DomainTopicPrefix + "007", pipeline.DomainTopicPrefix + "-1"}

// farAhead is an origin offset no raw topic of a test reaches.
const farAhead = int64(1) << 40

// An attack is one kind of fault the suite injects. run injects it and
// records it with rig.fault.
type attack struct {
	name string
	run  func(r *rig)
}

// bigAttacks caps how often a soak repeats the attacks that leave tens of
// MiB in the broker's memory each time.
const bigAttacks = 3

// tooOften reports whether a big attack of kind ran bigAttacks times.
func (r *rig) tooOften(kind string) bool {
	if r.faults[kind] < bigAttacks {
		return false
	}
	r.t.Logf("%s %s: ran %d times already", r.elapsed(), kind, bigAttacks)
	return true
}

// attacks is the catalog: every kind runs once per run of the suite, in
// the seed's order, then a random mix of them until the soak time is spent.
func (r *rig) attacks() []attack {
	as := []attack{
		// Processes: SIGKILL and restart, SIGSTOP past the session timeout
		// (a zombie group member), the broker, a rebalance storm of the
		// routing group, a killed ingest.
		{"kill embed", func(r *rig) { r.killRestart("embed") }},
		{"kill cluster", func(r *rig) { r.killRestart("cluster") }},
		{"kill train", func(r *rig) { r.killRestart("train") }},
		{"stop embed", func(r *rig) { r.stopSlot("embed", 8*time.Second) }},
		{"stop cluster", func(r *rig) { r.stopSlot("cluster", 8*time.Second) }},
		{"stop train", func(r *rig) { r.stopSlot("train", 5*time.Second) }},
		{"kill broker", (*rig).killBroker},
		{"stop broker", (*rig).stopBroker},
		{"rebalance storm", (*rig).storm},
		{"kill ingest", (*rig).killIngest},
		// Messages on every topic.
		{"forged origins docs.raw", (*rig).forgedRaw},
		{"malformed docs.raw", (*rig).malformedRaw},
		{"oversize docs.raw", func(r *rig) { r.oversize(pipeline.TopicRaw) }},
		{"forged origins docs.features", (*rig).forgedFeatures},
		{"non-finite docs.features", (*rig).nonFiniteFeatures},
		{"malformed docs.features", (*rig).malformedFeatures},
		{"oversize docs.features", func(r *rig) { r.oversize(pipeline.TopicFeatures) }},
		{"forged origins docs.domain", (*rig).forgedDomain},
		{"malformed docs.domain", (*rig).malformedDomain},
		{"oversize docs.domain", func(r *rig) { r.oversize(pipeline.DomainTopic(r.rng.IntN(rigK))) }},
		{"damaged router.models", (*rig).damagedRouterModels},
		// Files.
		{"damaged files", (*rig).damagedFiles},
		{"huge document", (*rig).hugeDocument},
	}
	if r.disk != nil {
		as = append(as, attack{"full disk", (*rig).fullDisk})
	}
	return as
}

// ---- processes ----

// killRestart SIGKILLs one process of a stage, ingests a wave while it is
// down, and restarts it.
func (r *rig) killRestart(name string) {
	ro := r.roles[name]
	slot := r.rng.IntN(len(ro.slots))
	r.t.Logf("%s SIGKILL %s", r.elapsed(), ro.slots[slot].name)
	r.kill(ro, slot)
	r.goodWave(40)
	r.launch(ro, slot)
	r.fault("kill " + name)
}

// stopSlot SIGSTOPs one process of a stage for d, ingesting a wave
// meanwhile. For a group member d is longer than the session timeout: the
// group moves on without it, and it comes back a zombie that still thinks
// it owns its partitions and holds a batch.
func (r *rig) stopSlot(name string, d time.Duration) {
	ro := r.roles[name]
	p := ro.slots[r.rng.IntN(len(ro.slots))]
	r.t.Logf("%s SIGSTOP %s for %v", r.elapsed(), p.name, d)
	r.pause(p, d, func() { r.goodWave(40) })
	r.fault("stop " + name)
}

func (r *rig) killBroker() {
	r.t.Logf("%s SIGKILL broker, restart on its data dir", r.elapsed())
	r.killed[r.broker.p] = true
	r.broker.kill(r.t)
	time.Sleep(time.Duration(500+r.rng.IntN(1500)) * time.Millisecond)
	r.broker.restart(r.t)
	r.all = append(r.all, r.broker.p)
	r.fault("kill broker")
}

func (r *rig) stopBroker() {
	r.t.Logf("%s SIGSTOP broker for 10s", r.elapsed())
	r.pause(r.broker.p, 10*time.Second, nil)
	r.fault("stop broker")
}

// storm kills the routing group's processes 1–3 s apart, restarting each
// killed one at once or after the next kill, so the group rebalances over
// and over with zero to three members, while documents keep arriving.
func (r *rig) storm() {
	ro := r.roles["cluster"]
	kills := 6 + r.rng.IntN(5)
	r.t.Logf("%s rebalance storm: %d SIGKILLs of the %d routing processes, 1-3 s apart", r.elapsed(), kills, len(ro.slots))
	r.goodWave(200)
	down := map[int]bool{}
	for range kills {
		next := time.Now().Add(time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond)
		r.goodWave(40)
		time.Sleep(time.Until(next))
		slot := r.rng.IntN(len(ro.slots))
		if down[slot] {
			r.launch(ro, slot)
			delete(down, slot)
			continue
		}
		r.kill(ro, slot)
		r.faults["storm: kill cluster"]++
		if r.rng.IntN(2) == 0 {
			r.launch(ro, slot)
		} else {
			down[slot] = true
		}
	}
	for slot := range down {
		time.Sleep(time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond)
		r.launch(ro, slot)
	}
	r.fault("rebalance storm")
}

// killIngest SIGKILLs an ingest run part way and runs it again whole
// (ingest is at-least-once: what the first run delivered comes twice, as
// separate input records).
func (r *rig) killIngest() {
	f := filepath.Join(r.dir, fmt.Sprintf("killed%03d.jsonl", r.waves))
	for _, id := range writeGoodWave(r.t, f, "k"+strconv.Itoa(r.waves), 3*r.waves, 200) {
		r.good[id] = true
	}
	r.waves++
	p := r.spawn("ingest (killed) "+filepath.Base(f), "ingest", "--brokers", r.addr, "--partitions", strconv.Itoa(rigParts),
		"--max-text-bytes", strconv.Itoa(rigMaxText), "--log-level", "warn", f)
	time.Sleep(time.Duration(50+r.rng.IntN(400)) * time.Millisecond)
	r.killed[p] = true
	p.kill()
	r.fault("kill ingest")
	r.ingest(filepath.Base(f)+" (again)", true, f)
}

// fullDisk fills the trainer's file system for a few seconds while a wave
// of documents makes its experts train and checkpoint, then frees it. The
// trainer may stop with a clear error (revive restarts it) or wait and go
// on; either way its last checkpoint must stay valid, exactly-once must
// hold, and no expert may stop while its process runs on.
func (r *rig) fullDisk() {
	r.t.Logf("%s full disk under the trainer's --out", r.elapsed())
	end := time.Now().Add(time.Duration(3000+r.rng.IntN(3000)) * time.Millisecond)
	if err := r.disk.fill(); err != nil {
		r.t.Logf("full disk: %v", err)
		return
	}
	r.goodWave(150)
	time.Sleep(time.Until(end))
	r.revive()
	if err := r.disk.free(); err != nil {
		r.t.Fatalf("free the disk: %v", err)
	}
	r.fault("full disk")
}

// ---- messages ----

// inject produces msgs, each marked with the attack header; it logs and
// returns false when the broker refuses them.
func (r *rig) inject(kind string, msgs ...kafka.Message) bool {
	limit := 0
	for _, m := range msgs {
		limit = max(limit, len(m.Value))
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: r.cc, BatchBytes: int64(limit + 1<<20)})
	if err != nil {
		r.t.Fatal(err)
	}
	defer sink.Close()
	for i := range msgs {
		msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: attackHeader, Value: []byte(kind)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One message per call: a call puts a partition's messages in one
	// produce batch, which the broker measures against its limit.
	for _, m := range msgs {
		if err := sink.Write(ctx, m); err != nil {
			r.t.Logf("%s: the broker refused an injected message of %d bytes on %s: %v", kind, len(m.Value), m.Topic, err)
			return false
		}
	}
	return true
}

// maxMessageBytes is topic's max.message.bytes when the topic sets one,
// else the broker's message.max.bytes, as the broker reports them (32 MiB
// when it does not say).
func (r *rig) maxMessageBytes(topic string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := r.cc.Client().DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"max.message.bytes", "message.max.bytes"}}}})
	if err != nil {
		return 32 << 20
	}
	const dynamicTopicConfig = 1 // Kafka's ConfigSource DYNAMIC_TOPIC_CONFIG
	topicV, brokerV := 0, 0
	for _, res := range res.Resources {
		for _, e := range res.ConfigEntries {
			n, err := strconv.Atoi(e.ConfigValue)
			switch {
			case err != nil || n <= 0:
			case e.ConfigName == "max.message.bytes" && e.ConfigSource == dynamicTopicConfig:
				topicV = n
			case e.ConfigName == "message.max.bytes":
				brokerV = n
			}
		}
	}
	switch {
	case topicV > 0:
		return topicV
	case brokerV > 0:
		return brokerV
	}
	return 32 << 20
}

func arrowHeaders(version string) []kafka.Header {
	return []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(version)},
	}
}

func jsonHeaders() []kafka.Header {
	return []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte("1")},
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// encode encodes rec and releases it.
func (r *rig) encode(rec arrow.Record) []byte {
	defer rec.Release()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func documentRecord(docs []schemas.Document, origins []schemas.Origin) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DocumentSchema())
	defer b.Release()
	for i, d := range docs {
		schemas.AppendDocument(b, d, origins[i])
	}
	return b.NewRecord()
}

// forgedRaw sends Arrow document batches to docs.raw whose origin columns
// lie: offsets far ahead of the partition, and offsets of records already
// there. Origins are stamped at ingress, so the rows must be routed (or
// dead-lettered) as the records they are, where they are.
func (r *rig) forgedRaw() {
	n := r.faults["forged origins docs.raw"]
	p := r.rng.IntN(rigParts)
	docs := goodDocs(r.t, fmt.Sprintf("rawforged%02d", n), 13*n, 6)
	origins := make([]schemas.Origin, len(docs))
	for i := range origins {
		off := farAhead + int64(i)
		if i >= 3 {
			off = int64(5 - i) // records that exist, in the wrong order
		}
		origins[i] = schemas.Origin{Topic: pipeline.TopicRaw, Partition: int32(p), Offset: off}
	}
	if r.inject("forged origins docs.raw", kafka.Message{Topic: pipeline.TopicRaw, Partition: p,
		Value: r.encode(documentRecord(docs, origins)), Headers: arrowHeaders("1")}) {
		r.fault("forged origins docs.raw")
	}
}

// badMessages are messages no producer of ours writes, for topic: random
// bytes as JSON and as Arrow, an unknown content type, a wrong schema
// version in the header and in the schema, an Arrow record of the wrong
// kind, headerless random bytes, a headerless tombstone and an empty value.
func (r *rig) badMessages(topic string) []kafka.Message {
	rng := r.rng
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DocumentSchema())
	schemas.AppendDocument(b, schemas.Document{ID: "v99", Text: "future schema"}, schemas.Origin{})
	good := r.encode(b.NewRecord())
	b.Release()
	// The same record under a schema whose metadata says version 2.
	md := arrow.NewMetadata([]string{schemas.MetaKind, schemas.MetaSchemaVersion}, []string{string(schemas.KindDocument), "2"})
	v2 := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(schemas.DocumentSchema().Fields(), &md))
	schemas.AppendDocument(v2, schemas.Document{ID: "v2", Text: "schema metadata says version 2"}, schemas.Origin{})
	future := r.encode(v2.NewRecord())
	v2.Release()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.CheckpointSchema())
	rb.Field(0).(*array.StringBuilder).Append("x")
	rb.Field(1).(*array.ListBuilder).Append(true)
	rb.Field(2).(*array.StringBuilder).Append("float32")
	rb.Field(3).(*array.BinaryBuilder).Append([]byte{1, 2, 3, 4})
	wrongKind := r.encode(rb.NewRecord())
	rb.Release()
	p := func() int { return rng.IntN(rigParts) }
	h := func(ct, ver string) []kafka.Header {
		out := []kafka.Header{{Key: schemas.HeaderContentType, Value: []byte(ct)}}
		if ver != "" {
			out = append(out, kafka.Header{Key: schemas.HeaderSchemaVersion, Value: []byte(ver)})
		}
		return out
	}
	return []kafka.Message{
		{Topic: topic, Partition: p(), Value: randomBytes(rng, 200), Headers: h(schemas.ContentTypeJSON, "")},
		{Topic: topic, Partition: p(), Value: randomBytes(rng, 500), Headers: h(schemas.ContentTypeArrow, "1")},
		{Topic: topic, Partition: p(), Value: []byte(`{"id":"x","text":"y"}`), Headers: h("text/csv", "")},
		{Topic: topic, Partition: p(), Value: good, Headers: h(schemas.ContentTypeArrow, "99")},
		{Topic: topic, Partition: p(), Value: future, Headers: h(schemas.ContentTypeArrow, "1")},
		{Topic: topic, Partition: p(), Value: wrongKind, Headers: h(schemas.ContentTypeArrow, "1")},
		{Topic: topic, Partition: p(), Value: randomBytes(rng, 64<<10)},
		{Topic: topic, Partition: p()},                                          // a headerless tombstone
		{Topic: topic, Partition: p(), Value: []byte{}, Headers: jsonHeaders()}, // an empty value
		{Topic: topic, Partition: p(), Value: good[:len(good)/2], Headers: h(schemas.ContentTypeArrow, "1")},
	}
}

// malformedRaw sends bad messages to docs.raw, and documents the contract
// rejects: a 5 MB id, ids with lone UTF-16 surrogate escapes, an Arrow
// document whose text is not UTF-8.
func (r *rig) malformedRaw() {
	msgs := r.badMessages(pipeline.TopicRaw)
	p := func() int { return r.rng.IntN(rigParts) }
	msgs = append(msgs,
		kafka.Message{Topic: pipeline.TopicRaw, Partition: p(), Headers: jsonHeaders(),
			Value: []byte(`{"id":"` + strings.Repeat("i", 5<<20) + `","text":"a document with a 5 MB id"}`)},
		kafka.Message{Topic: pipeline.TopicRaw, Partition: p(), Headers: jsonHeaders(),
			Value: []byte(`{"id":"surrogate-\ud800","text":"a lone high surrogate in the id"}`)},
		kafka.Message{Topic: pipeline.TopicRaw, Partition: p(), Headers: jsonHeaders(),
			Value: []byte(`{"id":"surrogate-\udbff","text":"another lone high surrogate in the id"}`)},
		kafka.Message{Topic: pipeline.TopicRaw, Partition: p(), Headers: arrowHeaders("1"),
			Value: r.encode(documentRecord([]schemas.Document{{ID: "latin1-arrow", Text: "caf\xe9 \xff"}}, []schemas.Origin{{}}))},
	)
	if r.inject("malformed docs.raw", msgs...) {
		r.fault("malformed docs.raw")
	}
}

// oversize sends, among good documents on the same partition, a message
// just under the limit of topic: whatever a stage derives from it (a dead
// letter with headers) is over the limit.
func (r *rig) oversize(topic string) {
	kind := "oversize " + topic
	if strings.HasPrefix(topic, pipeline.DomainTopicPrefix) {
		kind = "oversize docs.domain"
	}
	if r.tooOften(kind) {
		return
	}
	limit := r.maxMessageBytes(topic)
	p := r.rng.IntN(rigParts)
	hdr := arrowHeaders("1")
	if topic == pipeline.TopicRaw {
		hdr = jsonHeaders()
	}
	// The record batch and record framing, and the headers with the one
	// inject adds.
	over := 61 + 24 + 2 + len(attackHeader) + len(kind)
	for _, h := range hdr {
		over += 2 + len(h.Key) + len(h.Value)
	}
	big := func(size int) kafka.Message {
		m := kafka.Message{Topic: topic, Partition: p, Headers: hdr}
		if topic != pipeline.TopicRaw {
			m.Value = randomBytes(r.rng, size)
			return m
		}
		// {"id":"big-N","text":"xxxx"} filling the message.
		m.Value = []byte(fmt.Sprintf(`{"id":"big-%d","text":"`, r.faults[kind]))
		m.Value = append(m.Value, strings.Repeat("x", size-len(m.Value)-2)...)
		m.Value = append(m.Value, `"}`...)
		return m
	}
	var before, after []kafka.Message
	if topic == pipeline.TopicRaw {
		for i, d := range goodDocs(r.t, fmt.Sprintf("ovn%02d", r.faults[kind]), 17*r.faults[kind], 6) {
			m := kafka.Message{Topic: topic, Partition: p, Headers: jsonHeaders()}
			m.Value, _ = schemas.EncodeJSON(d)
			if i < 3 {
				before = append(before, m)
			} else {
				after = append(after, m)
			}
			r.good[d.ID] = true
		}
	}
	r.t.Logf("%s %s: a message of %d bytes (limit %d) on %s/%d", r.elapsed(), kind, limit-over, limit, topic, p)
	// The broker may count more framing than we think: then a little less.
	if !r.inject(kind, before...) || !r.inject(kind, big(limit-over)) && !r.inject(kind, big(limit-over-4096)) || !r.inject(kind, after...) {
		return
	}
	r.fault(kind)
}

// featureSample is the feature part of one genuine docs.features row.
type featureSample struct {
	dim     int32
	indices []int32 // nil for a dense row
	values  []float32
	version int64
}

// sampleFeatures returns the features of a genuine docs.features row.
func (r *rig) sampleFeatures() (featureSample, bool) {
	ctx, cancel := readCtx()
	defer cancel()
	msgs, err := pipeline.ReadTopic(ctx, r.cc, pipeline.TopicFeatures, 30)
	if err != nil {
		return featureSample{}, false
	}
	for _, m := range msgs {
		if headerOf(m, attackHeader) != "" {
			continue
		}
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			continue
		}
		defer func() {
			for _, rec := range recs {
				rec.Release()
			}
		}()
		for _, rec := range recs {
			if k, _, _ := schemas.KindOf(rec.Schema()); k != schemas.KindFeatures || rec.NumRows() == 0 {
				continue
			}
			col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
			s := featureSample{dim: col(schemas.ColDim).(*array.Int32).Value(0), version: col(schemas.ColFeaturizerVersion).(*array.Int64).Value(0)}
			if l := col(schemas.ColIndices).(*array.List); l.IsValid(0) {
				lo, hi := l.ValueOffsets(0)
				s.indices = append([]int32(nil), l.ListValues().(*array.Int32).Int32Values()[lo:hi]...)
			}
			l := col(schemas.ColValues).(*array.List)
			lo, hi := l.ValueOffsets(0)
			s.values = append([]float32(nil), l.ListValues().(*array.Float32).Float32Values()[lo:hi]...)
			return s, true
		}
	}
	return featureSample{}, false
}

type featureRow struct {
	id      string
	origin  schemas.Origin
	dim     int32
	indices []int32
	values  []float32
	version int64
}

func featuresRecord(rows []featureRow) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.FeaturesSchema())
	defer b.Release()
	for _, fr := range rows {
		schemas.AppendDocument(b, schemas.Document{ID: fr.id, Text: "a forged row of features"}, fr.origin)
		b.Field(7).(*array.Int32Builder).Append(fr.dim)
		il := b.Field(8).(*array.ListBuilder)
		if fr.indices == nil {
			il.AppendNull()
		} else {
			il.Append(true)
			il.ValueBuilder().(*array.Int32Builder).AppendValues(fr.indices, nil)
		}
		vl := b.Field(9).(*array.ListBuilder)
		vl.Append(true)
		vl.ValueBuilder().(*array.Float32Builder).AppendValues(fr.values, nil)
		b.Field(10).(*array.Int64Builder).Append(fr.version)
	}
	return b.NewRecord()
}

// forgedFeatures sends docs.features rows that claim origins no raw record
// has: far ahead of a docs.raw partition, and on a partition docs.raw does
// not have. They must be dead-lettered; before the fix one such row made the
// routing stage's duplicate filter drop every later row of that partition.
func (r *rig) forgedFeatures() {
	s, ok := r.sampleFeatures()
	if !ok {
		r.t.Logf("forged origins docs.features: no genuine row to copy yet")
		return
	}
	n := r.faults["forged origins docs.features"]
	p := r.rng.IntN(rigParts)
	var rows []featureRow
	for i, o := range []schemas.Origin{
		{Topic: pipeline.TopicRaw, Partition: int32(p), Offset: farAhead},
		{Topic: pipeline.TopicRaw, Partition: int32(p), Offset: farAhead + 1},
		{Topic: pipeline.TopicRaw, Partition: int32((p + 1) % rigParts), Offset: farAhead},
		{Topic: pipeline.TopicRaw, Partition: 97, Offset: 3},
	} {
		rows = append(rows, featureRow{id: fmt.Sprintf("%sorigin-%02d-%d", forgedFeaturesPrefix, n, i), origin: o,
			dim: s.dim, indices: s.indices, values: s.values, version: s.version})
	}
	if r.inject("forged origins docs.features", kafka.Message{Topic: pipeline.TopicFeatures, Partition: p,
		Value: r.encode(featuresRecord(rows)), Headers: arrowHeaders("1")}) {
		r.fault("forged origins docs.features")
	}
}

// advOrigin returns a fresh origin in advRawTopic below its end.
func (r *rig) advOrigin() schemas.Origin {
	r.advNext++
	return schemas.Origin{Topic: advRawTopic, Partition: 0, Offset: r.advNext - 1}
}

// nonFiniteFeatures sends docs.features rows with NaN, +Inf and -Inf
// values, and rows whose shape is wrong (an index past the dimension, a
// negative index, indices and values of different lengths, another
// dimension), each in a message of its own, with new and possible origins.
// They must be dead-lettered.
func (r *rig) nonFiniteFeatures() {
	s, ok := r.sampleFeatures()
	if !ok {
		r.t.Logf("non-finite docs.features: no genuine row to copy yet")
		return
	}
	n := r.faults["non-finite docs.features"]
	with := func(v float32) []float32 {
		out := append([]float32(nil), s.values...)
		out[len(out)/2] = v
		return out
	}
	rows := []featureRow{
		{values: with(float32(math.NaN()))},
		{values: with(float32(math.Inf(1)))},
		{values: with(float32(math.Inf(-1)))},
	}
	if s.indices != nil {
		bad := append([]int32(nil), s.indices...)
		bad[len(bad)-1] = s.dim + 1000
		neg := append([]int32(nil), s.indices...)
		neg[0] = -5
		rows = append(rows,
			featureRow{indices: bad, values: s.values},
			featureRow{indices: neg, values: s.values},
			featureRow{indices: s.indices[:len(s.indices)/2], values: s.values},
		)
	}
	rows = append(rows, featureRow{dim: s.dim + 5, values: s.values})
	p := r.rng.IntN(rigParts)
	var msgs []kafka.Message
	for i, fr := range rows {
		fr.id = fmt.Sprintf("%sshape-%02d-%d", forgedFeaturesPrefix, n, i)
		fr.origin = r.advOrigin()
		fr.version = s.version
		if fr.dim == 0 {
			fr.dim = s.dim
		}
		if fr.indices == nil && i < 3 {
			fr.indices = s.indices
		}
		msgs = append(msgs, kafka.Message{Topic: pipeline.TopicFeatures, Partition: p,
			Value: r.encode(featuresRecord([]featureRow{fr})), Headers: arrowHeaders("1")})
	}
	if r.inject("non-finite docs.features", msgs...) {
		r.fault("non-finite docs.features")
	}
}

// malformedFeatures sends bad messages, a JSON document and a document
// batch (not features) to docs.features.
func (r *rig) malformedFeatures() {
	msgs := r.badMessages(pipeline.TopicFeatures)
	n := r.faults["malformed docs.features"]
	d := schemas.Document{ID: fmt.Sprintf("%sjson-%02d", forgedFeaturesPrefix, n), Text: "a JSON document on docs.features"}
	v, _ := schemas.EncodeJSON(d)
	msgs = append(msgs,
		kafka.Message{Topic: pipeline.TopicFeatures, Value: v, Headers: jsonHeaders()},
		kafka.Message{Topic: pipeline.TopicFeatures, Headers: arrowHeaders("1"), Value: r.encode(documentRecord(
			[]schemas.Document{{ID: fmt.Sprintf("%sdoc-%02d", forgedFeaturesPrefix, n), Text: "a document batch on docs.features"}},
			[]schemas.Origin{r.advOrigin()}))},
	)
	if r.inject("malformed docs.features", msgs...) {
		r.fault("malformed docs.features")
	}
}

// routedRecord is one Routed row.
func routedRecord(id string, o schemas.Origin, domain int32, version int64) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RoutedSchema())
	defer b.Release()
	schemas.AppendDocument(b, schemas.Document{ID: id, Text: "a forged routed row: no expert may learn from it"}, o)
	b.Field(7).(*array.Int32Builder).Append(domain)
	b.Field(8).(*array.Float32Builder).Append(0.5)
	b.Field(9).(*array.Int64Builder).Append(version)
	return b.NewRecord()
}

// forgedDomain sends to a domain topic a routed row whose origin is far
// ahead of a docs.raw partition: before the fix the trainer skipped every
// later document of that partition as already applied.
func (r *rig) forgedDomain() {
	n := r.faults["forged origins docs.domain"]
	d, p := r.rng.IntN(rigK), r.rng.IntN(rigParts)
	o := schemas.Origin{Topic: pipeline.TopicRaw, Partition: int32(p), Offset: farAhead}
	if r.inject("forged origins docs.domain", kafka.Message{Topic: pipeline.DomainTopic(d), Partition: p, Headers: arrowHeaders("1"),
		Value: r.encode(routedRecord(fmt.Sprintf("%sorigin-%02d", forgedDomainPrefix, n), o, int32(d), 1))}) {
		r.fault("forged origins docs.domain")
	}
}

// malformedDomain sends bad messages to a domain topic, and routed rows to
// topics that look like domain topics but are none of the router's
// (docs.domain.007, docs.domain.-1): no expert may start for them.
func (r *rig) malformedDomain() {
	d := r.rng.IntN(rigK)
	var msgs []kafka.Message
	for _, m := range r.badMessages(pipeline.DomainTopic(d)) {
		// A JSON document is something a trainer takes (train --topic);
		// only the undecodable ones are bad here.
		if len(m.Value) > 0 && m.Value[0] == '{' {
			continue
		}
		msgs = append(msgs, m)
	}
	n := r.faults["malformed docs.domain"]
	for _, topic := range bogusDomainTopics {
		msgs = append(msgs, kafka.Message{Topic: topic, Headers: arrowHeaders("1"),
			Value: r.encode(routedRecord(fmt.Sprintf("%sbogus-%02d", forgedDomainPrefix, n), r.advOrigin(), 7, 1))})
	}
	if r.inject("malformed docs.domain", msgs...) {
		r.fault("malformed docs.domain")
	}
}

// damagedRouterModels sends to router.models what no stage may take: random
// bytes and a truncated copy of the router, a damaged featurizer artifact
// under the next version, garbage routing state, headerless tombstones, a
// router under an unknown schema version, and one message near the topic's
// size limit.
func (r *rig) damagedRouterModels() {
	if r.tooOften("damaged router.models") {
		return
	}
	ctx, cancel := readCtx()
	defer cancel()
	latest := map[string]kafka.Message{}
	if msgs, err := pipeline.ReadTopic(ctx, r.cc, pipeline.TopicRouterModels, 0); err == nil {
		for _, m := range msgs {
			if headerOf(m, attackHeader) == "" {
				latest[string(m.Key)] = m
			}
		}
	}
	t := pipeline.TopicRouterModels
	msgs := []kafka.Message{
		{Topic: t, Key: []byte("router"), Value: randomBytes(r.rng, 4096), Headers: arrowHeaders("1")},
		{Topic: t, Key: []byte("routing-state/cluster"), Value: []byte(`{"counts": [1, 2`)},
		{Topic: t, Key: []byte("router")}, // headerless tombstone of the router
		{Topic: t},                        // headerless, keyless tombstone
		{Topic: t, Key: []byte("junk"), Value: randomBytes(r.rng, r.maxMessageBytes(t)-4096)},
	}
	if m, ok := latest["router"]; ok && len(m.Value) > 0 {
		msgs = append(msgs,
			kafka.Message{Topic: t, Key: []byte("router"), Value: m.Value[:len(m.Value)/2], Headers: m.Headers},
			kafka.Message{Topic: t, Key: []byte("router"), Value: m.Value, Headers: arrowHeaders("99")},
		)
	}
	// The featurizer the stages use, damaged, under the next version.
	if v, err := embed.LatestStateVersion(r.router); err == nil && v > 0 {
		if b, err := os.ReadFile(embed.StatePath(r.router, v)); err == nil {
			b = append([]byte(nil), b...)
			for i := len(b) / 2; i < len(b)/2+256 && i < len(b); i++ {
				b[i] ^= 0x5a
			}
			msgs = append(msgs, kafka.Message{Topic: t, Key: []byte("featurizer"), Value: b,
				Headers: []kafka.Header{{Key: "featurizer-version", Value: []byte(strconv.FormatInt(v+1, 10))}}})
		}
	}
	if r.inject("damaged router.models", msgs...) {
		r.fault("damaged router.models")
	}
	// Put the real router back as the latest of its key: a tombstone on
	// the router key is an attack, and so is what comes after it.
	if m, ok := latest["router"]; ok {
		m.Topic, m.Partition, m.Offset = t, 0, 0
		r.inject("restore router.models", m)
	}
}

// ---- files ----

func (r *rig) damagedFiles() {
	n := r.faults["damaged files"]
	df := writeDamagedFiles(r.t, r.dir, n)
	for _, id := range df.good {
		r.good[id] = true
	}
	r.deadFiles = append(r.deadFiles, df.dead...)
	out := r.ingest(fmt.Sprintf("damaged files %d", n), false, df.paths...)
	for _, name := range df.named {
		if !strings.Contains(out, name) {
			r.violation("ingest of damaged files does not name %s; its output:\n%s", name, tail(out, 1500))
		}
	}
	r.fault("damaged files")
}

// hugeDocument ingests, with a document limit above the broker's message
// limit, a document between the two among good ones: it must be
// dead-lettered as over-size, and its neighbours delivered.
func (r *rig) hugeDocument() {
	if r.tooOften("huge document") {
		return
	}
	n := r.faults["huge document"]
	limit := r.maxMessageBytes(pipeline.TopicRaw)
	path, good := writeHugeLine(r.t, r.dir, n, limit+8<<20)
	for _, id := range good {
		r.good[id] = true
	}
	r.deadFiles = append(r.deadFiles, path)
	r.ingest(filepath.Base(path), false, "--max-text-bytes", strconv.Itoa(2*limit), path)
	r.fault("huge document")
}
