package archive_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/archive"
)

// docText is the text of document k.
func docText(k int) string { return fmt.Sprintf("document %d about things", k) }

// routed returns a message for topic/p holding the routed documents of keys
// first..first+n-1, with pipetest's extra columns when extra is set.
func routed(t testing.TB, topic string, p, first, n int, extra bool) pipeline.Message {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RoutedSchema())
	defer rb.Release()
	for k := first; k < first+n; k++ {
		schemas.AppendDocument(rb, schemas.Document{ID: strconv.Itoa(k), Text: docText(k)}, schemas.Origin{Topic: "docs.raw", Partition: 2, Offset: int64(100 + k)})
		rb.Field(7).(*array.Int32Builder).Append(0)
		rb.Field(8).(*array.Float32Builder).Append(0.5)
		rb.Field(9).(*array.Int64Builder).Append(1)
	}
	rec := rb.NewRecord()
	defer rec.Release()
	if extra {
		with := pipetest.AddExtraColumns(t, rec, func(i int) int { return first + i })
		defer with.Release()
		rec = with
	}
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Message{Topic: topic, Partition: p, Value: b, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)}
}

// shardSpan is a shard file: its partition and offsets, and the ids of its
// documents.
type shardSpan struct {
	name        string
	p           int
	first, last int64
	ids         []string
}

// readShards returns the shards of dir by partition, in offset order, and
// fails on any other file.
func readShards(t *testing.T, dir string) map[int][]shardSpan {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]shardSpan{}
	for _, e := range ents {
		p, first, last, ok := archive.ParseShardName(e.Name())
		if !ok {
			t.Errorf("%s: not a shard", e.Name())
			continue
		}
		rows, err := parquet.ReadFile[schemas.DocumentRow](filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		s := shardSpan{name: e.Name(), p: p, first: first, last: last}
		for _, r := range rows {
			s.ids = append(s.ids, r.ID)
		}
		out[p] = append(out[p], s)
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b shardSpan) int { return int(a.first - b.first) })
	}
	return out
}

// checkContiguous checks that the shards of each partition hold its offsets
// 0..end-1 once each, without a gap or an overlap.
func checkContiguous(t *testing.T, shards map[int][]shardSpan, end map[int]int64) {
	t.Helper()
	for p, want := range end {
		next := int64(0)
		for _, s := range shards[p] {
			if s.first != next || s.last < s.first {
				t.Errorf("partition %d: shard %s after offset %d", p, s.name, next-1)
			}
			next = s.last + 1
		}
		if next != want {
			t.Errorf("partition %d: shards hold offsets up to %d, want up to %d", p, next-1, want-1)
		}
	}
}

func config(cc pipeline.ClientConfig, dir string) archive.Config {
	return archive.Config{Client: cc, Dir: dir, ShardMessages: 3, ExitOnIdle: 500 * time.Millisecond}
}

func run(t *testing.T, ctx context.Context, cfg archive.Config, src archive.DomainSource) []archive.Report {
	t.Helper()
	reps, err := archive.Run(ctx, cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	return reps
}

// TestResume: every document reaches the shards exactly once across a stop
// in the middle of the input, a kill (the last shards never written, a temp
// file left behind) and the restarts after them.
func TestResume(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	topic := pipeline.DomainTopic(0)
	pipetest.CreateTopics(t, cc, 2, topic)
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicDeadLetter)
	dir := t.TempDir()
	cfg := config(cc, dir)
	cfg.ExitOnIdle = 0

	// Input arrives while the sink runs; the sink is stopped in the middle.
	key := 0
	produce := func(n int) {
		var msgs []pipeline.Message
		for i := range n {
			msgs = append(msgs, routed(t, topic, i%2, key, 2, false))
			key += 2
		}
		pipetest.Produce(t, cc, msgs...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		reps []archive.Report
		rerr error
	)
	wg.Go(func() { reps, rerr = archive.Run(ctx, cfg, archive.IDs{0}) })
	for range 5 {
		produce(4)
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if rerr != nil || len(reps) != 1 || reps[0].Domain != 0 {
		t.Fatalf("stopped run: %+v, %v", reps, rerr)
	}
	stopped := reps[0]

	// A kill: the newest shard of each partition was not written yet, and a
	// temp file of one is left.
	sub := filepath.Join(dir, "0")
	for p, ss := range readShards(t, sub) {
		last := ss[len(ss)-1]
		if err := os.Remove(filepath.Join(sub, last.name)); err != nil {
			t.Fatal(err)
		}
		stopped.Docs -= int64(len(last.ids))
		stopped.Shards--
		if p == 0 {
			if err := os.WriteFile(filepath.Join(sub, "."+last.name+".tmp-123"), []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(6)
	cfg.ExitOnIdle = 500 * time.Millisecond
	resumed := run(t, context.Background(), cfg, archive.IDs{0})[0]

	// The temp file is no shard; what is left must be exactly the input.
	tmps, _ := filepath.Glob(filepath.Join(sub, ".*.tmp-*"))
	for _, f := range tmps {
		os.Remove(f)
	}
	shards := readShards(t, sub)
	checkContiguous(t, shards, map[int]int64{0: 13, 1: 13})
	var ids []int
	for _, ss := range shards {
		for _, s := range ss {
			for _, id := range s.ids {
				k, _ := strconv.Atoi(id)
				ids = append(ids, k)
			}
		}
	}
	slices.Sort(ids)
	for i, k := range ids {
		if k != i {
			t.Fatalf("archived ids %v, want 0..%d once each", ids, key-1)
		}
	}
	if len(ids) != key {
		t.Errorf("%d documents archived, want %d", len(ids), key)
	}
	if got := stopped.Docs + resumed.Docs; got != int64(key) {
		t.Errorf("reports: %d + %d documents, want %d in all", stopped.Docs, resumed.Docs, key)
	}
	if n := len(shards[0]) + len(shards[1]); stopped.Shards+resumed.Shards != n {
		t.Errorf("reports: %d + %d shards, want %d in all", stopped.Shards, resumed.Shards, n)
	}
	if again := run(t, context.Background(), cfg, archive.IDs{0})[0]; again.Docs != 0 || again.Shards != 0 {
		t.Errorf("a rerun without new input archived %+v", again)
	}
}

// extraRow reads a shard with pipetest's extra columns.
type extraRow struct {
	ID              string   `parquet:"id"`
	Text            string   `parquet:"text"`
	OriginTopic     string   `parquet:"origin_topic"`
	OriginPartition int32    `parquet:"origin_partition"`
	OriginOffset    int64    `parquet:"origin_offset"`
	OriginRow       int32    `parquet:"origin_row"`
	Domain          int32    `parquet:"domain"`
	Distance        float32  `parquet:"distance"`
	RouterVersion   int64    `parquet:"router_version"`
	Lang            string   `parquet:"lang"`
	N               int64    `parquet:"n"`
	Score           float64  `parquet:"score"`
	Tags            []string `parquet:"tags,list"`
	Maybe           *int64   `parquet:"maybe,optional"`
}

// TestExtraColumns: the columns a user stage added reach the shards as
// Parquet columns of the same names and types, row for row, after the
// origin and routing columns; a message without them starts a shard of its
// own, with the origin and routing columns, which OpenInput reads back as
// the documents alone.
func TestExtraColumns(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	topic := pipeline.DomainTopic(0)
	pipetest.CreateTopics(t, cc, 1, topic)
	pipetest.Produce(t, cc, routed(t, topic, 0, 0, 3, true), routed(t, topic, 0, 3, 4, true), routed(t, topic, 0, 7, 2, false))
	dir := t.TempDir()
	reps := run(t, context.Background(), config(cc, dir), archive.IDs{0})
	if want := (archive.Report{Domain: 0, Docs: 9, Shards: 2}); len(reps) != 1 || reps[0] != want {
		t.Fatalf("reports %+v, want [%+v]", reps, want)
	}
	sub := filepath.Join(dir, "0")
	rows, err := parquet.ReadFile[extraRow](filepath.Join(sub, archive.ShardName(0, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Fatalf("%d rows in the shard with extra columns, want 7", len(rows))
	}
	for i, row := range rows {
		want := pipetest.ExtraValues(i)
		got := pipetest.ExtraRow{Lang: row.Lang, N: row.N, Score: row.Score, Tags: row.Tags, Maybe: row.Maybe}
		if row.ID != strconv.Itoa(i) || row.Text != docText(i) || got.String() != want.String() {
			t.Errorf("shard row %d: id %s, %s; want id %d, %s", i, row.ID, got, i, want)
		}
		if row.OriginTopic != "docs.raw" || row.OriginPartition != 2 || row.OriginOffset != int64(100+i) || row.RouterVersion != 1 || row.Distance != 0.5 {
			t.Errorf("shard row %d: origin %s/%d@%d, router version %d, distance %v; want docs.raw/2@%d, 1, 0.5",
				i, row.OriginTopic, row.OriginPartition, row.OriginOffset, row.RouterVersion, row.Distance, 100+i)
		}
	}
	plain := filepath.Join(sub, archive.ShardName(0, 2, 2))
	rows, err = parquet.ReadFile[extraRow](plain)
	if err != nil || len(rows) != 2 || rows[1].ID != "8" || rows[1].OriginOffset != 108 || rows[1].RouterVersion != 1 {
		t.Fatalf("the shard without extra columns: %+v, %v", rows, err)
	}
	in, err := schemas.OpenInput(plain, schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for i := 7; i < 9; i++ {
		rec, err := in.Next()
		if err != nil || rec.Err != nil || rec.Doc.ID != strconv.Itoa(i) || rec.Doc.Text != docText(i) || rec.Doc.Meta != nil {
			t.Errorf("OpenInput of the shard: %+v, %v; want document %d without meta", rec, err, i)
		}
	}
}

// TestDeadLetters: a message that does not decode to documents goes to the
// dead-letter topic with its reason and origin, and its offset still
// belongs to a shard, so the shards of a partition have no gap.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	topic := pipeline.DomainTopic(3)
	pipetest.CreateTopics(t, cc, 1, topic, pipeline.TopicDeadLetter)
	arrow := pipeline.ContentHeaders(schemas.ContentTypeArrow)
	pipetest.Produce(t, cc,
		routed(t, topic, 0, 0, 2, false),
		pipeline.Message{Topic: topic, Value: []byte("\x00garbage"), Headers: arrow}, // 1
		pipeline.Message{Topic: topic, Key: []byte("k")},                             // 2: a tombstone
		pipetest.JSONDoc(topic, "j", "a JSON document"),                              // 3
		routed(t, topic, 0, 2, 1, false))
	dir := t.TempDir()
	reps := run(t, context.Background(), config(cc, dir), archive.IDs{3})
	if want := (archive.Report{Domain: 3, Docs: 3, Shards: 2}); len(reps) != 1 || reps[0] != want {
		t.Fatalf("reports %+v, want [%+v]", reps, want)
	}
	shards := readShards(t, filepath.Join(dir, "3"))
	checkContiguous(t, shards, map[int]int64{0: 5})
	dead := pipetest.ReadAll(t, cc, pipeline.TopicDeadLetter)
	want := []struct {
		offset int64
		reason schemas.Reason
	}{{1, schemas.ReasonMalformedArrow}, {2, schemas.ReasonEmptyMessage}, {3, schemas.ReasonMalformedArrow}}
	if len(dead) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(want))
	}
	for i, m := range dead {
		info := pipeline.ParseDeadLetter(m)
		if info.Stage != "archive" || info.Reason != want[i].reason || info.Origin.Topic != topic || info.Origin.Offset != want[i].offset {
			t.Errorf("dead letter %d: %+v, want stage archive, reason %s, origin %s offset %d", i, info, want[i].reason, topic, want[i].offset)
		}
	}
}

// growingDomains is a DomainSource whose list grows: it returns the first
// list until the test calls grow, then the second.
type growingDomains struct {
	mu    sync.Mutex
	grown bool
	calls int
	first []int
	then  []int
}

func (g *growingDomains) Domains(context.Context) ([]int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.grown {
		return g.then, nil
	}
	return g.first, nil
}

func (g *growingDomains) grow() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.grown = true
}

// TestNewDomain: a domain that appears while the sink runs is archived
// from its first message, once Config.Rescan asks for the domains again.
func TestNewDomain(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 1, pipeline.DomainTopic(0), pipeline.DomainTopic(1))
	pipetest.Produce(t, cc, routed(t, pipeline.DomainTopic(0), 0, 0, 2, false), routed(t, pipeline.DomainTopic(1), 0, 10, 3, false))
	src := &growingDomains{first: []int{0}, then: []int{0, 1}}
	cfg := config(cc, t.TempDir())
	cfg.ExitOnIdle, cfg.Rescan = 2*time.Second, 50*time.Millisecond
	done := make(chan []archive.Report)
	go func() { done <- run(t, context.Background(), cfg, src) }()
	time.Sleep(300 * time.Millisecond)
	src.grow()
	reps := <-done
	want := []archive.Report{{Domain: 0, Docs: 2, Shards: 1}, {Domain: 1, Docs: 3, Shards: 1}}
	if !slices.Equal(reps, want) {
		t.Errorf("reports %+v, want %+v", reps, want)
	}
	if src.calls < 2 {
		t.Errorf("the domains were asked for %d times, want a rescan", src.calls)
	}
	// Without Rescan the domains are asked for once.
	src = &growingDomains{first: []int{0}, then: []int{0, 1}}
	cfg = config(cc, t.TempDir())
	src.grow()
	if reps := run(t, context.Background(), cfg, src); len(reps) != 2 || src.calls != 1 {
		t.Errorf("without rescan: reports %+v after %d calls, want 2 domains after 1 call", reps, src.calls)
	}
}

// TestConfig: Run refuses a config without a directory or brokers, and a
// source without domains.
func TestConfig(t *testing.T) {
	cc := pipeline.ClientConfig{Brokers: []string{"127.0.0.1:1"}}
	tests := []struct {
		name string
		cfg  archive.Config
		src  archive.DomainSource
	}{
		{"no dir", archive.Config{Client: cc}, archive.IDs{0}},
		{"no brokers", archive.Config{Dir: t.TempDir()}, archive.IDs{0}},
		{"negative", archive.Config{Client: cc, Dir: t.TempDir(), ShardMessages: -1}, archive.IDs{0}},
		{"no domains", archive.Config{Client: cc, Dir: t.TempDir()}, archive.IDs{}},
		{"source fails", archive.Config{Client: cc, Dir: t.TempDir()},
			archive.DomainsFunc(func(context.Context) ([]int, error) { return nil, fmt.Errorf("no router") })},
	}
	for _, tt := range tests {
		if reps, err := archive.Run(context.Background(), tt.cfg, tt.src); err == nil {
			t.Errorf("%s: Run = %+v, nil; want an error", tt.name, reps)
		}
	}
}

func TestShardName(t *testing.T) {
	tests := []struct {
		name        string
		ok          bool
		p           int
		first, last int64
	}{
		{"part-000-000000000000-000000000009.parquet", true, 0, 0, 9},
		{"part-012-000000001000-000000001999.parquet", true, 12, 1000, 1999},
		{"part-1234-000000000000-000000000009.parquet", true, 1234, 0, 9},
		{"part-0-0-9.parquet", false, 0, 0, 0},
		{".part-000-000000000000-000000000009.parquet.tmp-1", false, 0, 0, 0},
		{"part-000-000000000000-000000000009.parquet.bak", false, 0, 0, 0},
		{"notes.txt", false, 0, 0, 0},
	}
	for _, tt := range tests {
		p, first, last, ok := archive.ParseShardName(tt.name)
		if ok != tt.ok || p != tt.p || first != tt.first || last != tt.last {
			t.Errorf("ParseShardName(%q) = %d, %d, %d, %t; want %d, %d, %d, %t", tt.name, p, first, last, ok, tt.p, tt.first, tt.last, tt.ok)
		}
		if ok && archive.ShardName(p, first, last) != tt.name {
			t.Errorf("ShardName(%d, %d, %d) = %q, want %q", p, first, last, archive.ShardName(p, first, last), tt.name)
		}
	}
}

func TestNextOffsets(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{archive.ShardName(0, 0, 4), archive.ShardName(0, 5, 9), archive.ShardName(2, 7, 7), ".x.tmp-1", "other"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := archive.NextOffsets(dir)
	if err != nil || fmt.Sprint(got) != "map[0:10 2:8]" {
		t.Errorf("NextOffsets = %v, %v; want map[0:10 2:8]", got, err)
	}
	if got, err := archive.NextOffsets(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("NextOffsets of a missing dir = %v, %v; want none", got, err)
	}
}

// TestProgress: with Config.Progress, Run logs what it has archived so far
// while it runs: shards written, their documents, and the documents held
// in shards not written yet.
func TestProgress(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	topic := pipeline.DomainTopic(0)
	pipetest.CreateTopics(t, cc, 1, topic)
	var msgs []pipeline.Message
	for i := range 5 {
		msgs = append(msgs, routed(t, topic, 0, 2*i, 2, false))
	}
	pipetest.Produce(t, cc, msgs...)
	var logs pipetest.LogBuffer
	cfg := config(cc, t.TempDir()) // shards of 3 messages
	cfg.ExitOnIdle, cfg.Progress = time.Second, 20*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	run(t, context.Background(), cfg, archive.IDs{0})
	if want := "msg=archiving domains=1 shards=1 docs_in_shards=6 docs_pending=4"; !strings.Contains(logs.String(), want) {
		t.Errorf("no %q in the log:\n%s", want, logs.String())
	}
	if n := strings.Count(logs.String(), "msg=archiving"); n > 5 {
		t.Errorf("%d progress lines for 5 messages: a line is logged only when documents came", n)
	}
}
