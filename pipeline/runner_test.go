package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
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

// outputRow is one row of an output topic.
type outputRow struct {
	id     string
	origin schemas.Origin
}

// outputDocs decodes every Arrow output message: how often each id came out,
// and every row in topic order.
func outputDocs(t *testing.T, msgs []kafka.Message) (ids map[string]int, rows []outputRow) {
	t.Helper()
	ids = map[string]int{}
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("output message %s/%d@%d does not decode: %v", m.Topic, m.Partition, m.Offset, err)
		}
		for _, rec := range recs {
			docs, err := schemas.Documents(rec)
			if err != nil {
				t.Fatal(err)
			}
			for i := range docs.Len() {
				id := docs.Doc(i).ID
				ids[id]++
				rows = append(rows, outputRow{id, docs.Origin(i)})
			}
			rec.Release()
		}
	}
	return ids, rows
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRunner(t *testing.T, cfg pipeline.RunnerConfig) *pipeline.Runner {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "identity"
	}
	if cfg.Stage == nil {
		cfg.Stage = pipeline.Identity
	}
	if cfg.OutputTopic == "" {
		cfg.OutputTopic = "out"
	}
	cfg.Logger = quietLogger
	cfg.Linger = 5 * time.Millisecond
	cfg.BackoffMin = time.Millisecond
	cfg.BackoffMax = 10 * time.Millisecond
	r, err := pipeline.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunnerMemIdentityKeepsPartitionOrder(t *testing.T) {
	src := pipeline.NewMemSource()
	const n = 3000
	for i := range n {
		m := pipetest.JSONDoc("in", fmt.Sprintf("d%04d", i), fmt.Sprintf("text number %d", i))
		m.Partition = i % 3
		src.Add(m)
	}
	src.CloseInput()
	sink := pipeline.NewMemSink()
	r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, BatchMaxRecords: 500, OutMaxRows: 70})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := sink.Messages("out")
	ids, rows := outputDocs(t, out)
	if len(ids) != n || len(rows) != n {
		t.Fatalf("got %d distinct ids in %d rows, want %d each", len(ids), len(rows), n)
	}
	last := map[int32]int64{0: -1, 1: -1, 2: -1}
	for _, row := range rows {
		o := row.origin
		if o.Offset <= last[o.Partition] {
			t.Fatalf("partition %d out of order: offset %d after %d", o.Partition, o.Offset, last[o.Partition])
		}
		last[o.Partition] = o.Offset
	}
	for _, m := range out {
		recs, _ := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		for _, rec := range recs {
			docs, _ := schemas.Documents(rec)
			if got := int(docs.Origin(0).Partition); got != m.Partition {
				t.Fatalf("row from partition %d written to partition %d", got, m.Partition)
			}
			if rec.NumRows() > 70 {
				t.Fatalf("output message has %d rows, cap is 70", rec.NumRows())
			}
			rec.Release()
		}
	}
	for p := range 3 {
		if got, want := src.Committed("in", p), int64(n/3); got != want {
			t.Errorf("partition %d committed %d, want %d", p, got, want)
		}
	}
	if c := r.Counts(); c.In != n || c.Out != n || c.Dead != 0 {
		t.Errorf("counts = %+v, want in=out=%d dead=0", c, n)
	}
}

// badInputs returns one message per kind of bad input, with the reason it
// must be dead-lettered with, for a runner whose Limits.MaxTextBytes is 1000.
func badInputs(t *testing.T, topic string) ([]kafka.Message, []schemas.Reason) {
	t.Helper()
	jsonMsg := func(v string) kafka.Message {
		m := pipetest.JSONDoc(topic, "x", "x")
		m.Value = []byte(v)
		return m
	}
	wrongCT := pipetest.JSONDoc(topic, "ct", "hello")
	wrongCT.Headers[0].Value = []byte("text/plain")

	// An Arrow payload whose schema says version 2.
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(schemas.Document{ID: "v2", Text: "future"}, schemas.Origin{})
	rec := b.NewRecord()
	md := rec.Schema().Metadata()
	keys, vals := append([]string(nil), md.Keys()...), append([]string(nil), md.Values()...)
	for i, k := range keys {
		if k == schemas.MetaSchemaVersion {
			vals[i] = "2"
		}
	}
	meta := arrow.NewMetadata(keys, vals)
	v2 := array.NewRecord(arrow.NewSchema(rec.Schema().Fields(), &meta), rec.Columns(), rec.NumRows())
	payloadV2, err := schemas.EncodeRecord(v2)
	if err != nil {
		t.Fatal(err)
	}
	rec.Release()
	arrowMsg := func(payload []byte, version string) kafka.Message {
		return kafka.Message{Topic: topic, Value: payload, Headers: []kafka.Header{
			{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
			{Key: schemas.HeaderSchemaVersion, Value: []byte(version)},
		}}
	}
	msgs := []kafka.Message{
		jsonMsg(`{"id":"m1","text":"unterminated`),
		jsonMsg("{\"id\":\"u1\",\"text\":\"bad \xff\xfe bytes\"}"),
		jsonMsg(`{"id":"e1","text":"   "}`),
		jsonMsg(`{"id":"big","text":"` + strings.Repeat("a", 1001) + `"}`),
		arrowMsg(payloadV2, "1"),
		arrowMsg(payloadV2, "2"),
		arrowMsg([]byte("definitely not arrow"), "1"),
		wrongCT,
	}
	reasons := []schemas.Reason{
		schemas.ReasonMalformedJSON, schemas.ReasonInvalidUTF8, schemas.ReasonEmptyText, schemas.ReasonOversize,
		schemas.ReasonUnknownSchemaVersion, schemas.ReasonUnknownSchemaVersion, schemas.ReasonMalformedArrow,
		schemas.ReasonWrongContentType,
	}
	return msgs, reasons
}

// checkDeadLetters asserts that dead holds exactly the bad messages, each
// with its reason and origin.
func checkDeadLetters(t *testing.T, dead []kafka.Message, bad []kafka.Message, reasons []schemas.Reason) {
	t.Helper()
	if len(dead) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(bad))
	}
	want := map[string]schemas.Reason{}
	for i, m := range bad {
		want[string(m.Value)] = reasons[i]
	}
	for _, d := range dead {
		r, ok := want[string(d.Value)]
		if !ok {
			t.Errorf("dead letter with unexpected payload %.40q", d.Value)
			continue
		}
		if got := headerOf(d, pipeline.HeaderReason); got != string(r) {
			t.Errorf("dead letter %.40q: reason %q, want %q", d.Value, got, r)
		}
		for _, h := range []string{pipeline.HeaderError, pipeline.HeaderStage, pipeline.HeaderOriginTopic, pipeline.HeaderOriginPartition, pipeline.HeaderOriginOffset} {
			if headerOf(d, h) == "" {
				t.Errorf("dead letter %.40q has no %s header", d.Value, h)
			}
		}
	}
}

func TestRunnerMemBadInput(t *testing.T) {
	bad, reasons := badInputs(t, "in")
	src := pipeline.NewMemSource()
	good := 0
	for i, m := range bad {
		src.Add(pipetest.JSONDoc("in", fmt.Sprintf("g%d", i), "good text"))
		good++
		src.Add(m)
	}
	src.Add(pipetest.JSONDoc("in", "", "a document without an id"))
	good++
	src.CloseInput()
	sink := pipeline.NewMemSink()
	r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, Limits: schemas.Limits{MaxTextBytes: 1000}})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids, _ := outputDocs(t, sink.Messages("out"))
	if len(ids) != good {
		t.Errorf("%d good documents out, want %d", len(ids), good)
	}
	if ids["in-0-16"] != 1 {
		t.Errorf("document without id did not get id in-0-16: %v", ids)
	}
	checkDeadLetters(t, sink.Messages(pipeline.TopicDeadLetter), bad, reasons)
	c := r.Counts()
	if c.In != c.Out+c.Dead || c.In != int64(good+len(bad)) {
		t.Errorf("counts %+v: want in = out + dead = %d", c, good+len(bad))
	}
}

func TestRunnerRetriesWritesAndStages(t *testing.T) {
	src := pipeline.NewMemSource(pipetest.JSONDoc("in", "a", "alpha"), pipetest.JSONDoc("in", "b", "beta"))
	src.CloseInput()
	sink := pipeline.NewMemSink()
	sink.FailNext(3, nil)
	var calls atomic.Int32
	stage := pipeline.StageFunc(func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
		if calls.Add(1) == 1 {
			return pipeline.Result{}, fmt.Errorf("service away: %w", pipeline.ErrRetry)
		}
		return pipeline.Identity.Process(ctx, in)
	})
	r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, Stage: stage})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids, _ := outputDocs(t, sink.Messages("out")); len(ids) != 2 {
		t.Errorf("got %v, want a and b once", ids)
	}
	if calls.Load() != 2 {
		t.Errorf("stage called %d times, want 2 (one retry)", calls.Load())
	}
	if src.Committed("in", 0) != 2 {
		t.Errorf("committed %d, want 2", src.Committed("in", 0))
	}
}

func TestRunnerStageFailuresDeadLetterRows(t *testing.T) {
	tests := []struct {
		name  string
		stage pipeline.StageFunc
		dead  int
		out   int
	}{
		{"panic", func(context.Context, arrow.Record) (pipeline.Result, error) { panic("boom") }, 3, 0},
		{"error", func(context.Context, arrow.Record) (pipeline.Result, error) {
			return pipeline.Result{}, errors.New("bad")
		}, 3, 0},
		{"one row", func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
			res, err := pipeline.Identity.Process(ctx, in)
			res.Dead = []pipeline.DeadRow{{Row: 1, Reason: "too-short", Err: errors.New("row 1 is too short")}}
			return res, err
		}, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := pipeline.NewMemSource(pipetest.JSONDoc("in", "a", "alpha"), pipetest.JSONDoc("in", "b", "beta"), pipetest.JSONDoc("in", "c", "gamma"))
			src.CloseInput()
			sink := pipeline.NewMemSink()
			r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: sink, Stage: tt.stage})
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			dead := sink.Messages(pipeline.TopicDeadLetter)
			if len(dead) != tt.dead {
				t.Fatalf("%d dead letters, want %d", len(dead), tt.dead)
			}
			for _, d := range dead {
				if headerOf(d, pipeline.HeaderReason) == "" || headerOf(d, pipeline.HeaderOriginOffset) == "" {
					t.Errorf("dead letter without reason or origin: %v", d.Headers)
				}
				if _, err := schemas.DecodeJSON(d.Value, schemas.Limits{}); err != nil {
					t.Errorf("dead row is not a JSON document: %v", err)
				}
			}
			if tt.name == "one row" && headerOf(dead[0], pipeline.HeaderOriginOffset) != "1" {
				t.Errorf("dead row origin offset %q, want 1", headerOf(dead[0], pipeline.HeaderOriginOffset))
			}
			ids, _ := outputDocs(t, sink.Messages("out"))
			if len(ids) != tt.out {
				t.Errorf("%d rows out, want %d", len(ids), tt.out)
			}
		})
	}
}

func TestRunnerOutputWithoutTopic(t *testing.T) {
	src := pipeline.NewMemSource(pipetest.JSONDoc("in", "a", "alpha"))
	src.CloseInput()
	sink := pipeline.NewMemSink()
	// No OutputTopic: outputs that name their topic are fine.
	named := pipeline.StageFunc(func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
		res, err := pipeline.Identity.Process(ctx, in)
		res.Out[0].Topic = "named"
		return res, err
	})
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{Name: "named", Stage: named, Source: src, Sink: sink, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.Messages("named")); n != 1 {
		t.Fatalf("%d messages on the named topic, want 1", n)
	}
	// An output without a topic stops the runner with an error.
	src = pipeline.NewMemSource(pipetest.JSONDoc("in", "a", "alpha"))
	src.CloseInput()
	r, _ = pipeline.NewRunner(pipeline.RunnerConfig{Name: "unnamed", Stage: pipeline.Identity, Source: src, Sink: pipeline.NewMemSink(), Logger: quietLogger})
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "without a topic") {
		t.Fatalf("Run = %v, want an error about the missing topic", err)
	}
}

func TestNewRunnerValidates(t *testing.T) {
	ok := pipeline.RunnerConfig{Name: "x", Stage: pipeline.Identity, Source: pipeline.NewMemSource(), Sink: pipeline.NewMemSink(), OutputTopic: "o"}
	tests := []struct {
		name string
		edit func(*pipeline.RunnerConfig)
		want string
	}{
		{"no name", func(c *pipeline.RunnerConfig) { c.Name = "" }, "name"},
		{"no stage", func(c *pipeline.RunnerConfig) { c.Stage = nil }, "stage is required"},
		{"no source", func(c *pipeline.RunnerConfig) { c.Source = nil }, "source"},
		{"no sink", func(c *pipeline.RunnerConfig) { c.Sink = nil }, "sink"},
		{"backoff", func(c *pipeline.RunnerConfig) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, "Backoff"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.edit(&cfg)
		if _, err := pipeline.NewRunner(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewRunner error = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	if _, err := pipeline.NewRunner(ok); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

// TestRunnerBusyLeavesOutIdleTime: Counts.Busy covers the batches, not the
// time the runner waited for input, so the busy rate is the stage's speed.
func TestRunnerBusyLeavesOutIdleTime(t *testing.T) {
	src := pipeline.NewMemSource()
	for i := range 50 {
		src.Add(pipetest.JSONDoc("in", fmt.Sprintf("d%d", i), "text"))
	}
	// Each batch of one message takes at least 2ms in the stage.
	slow := pipeline.StageFunc(func(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
		time.Sleep(2 * time.Millisecond)
		return pipeline.Identity.Process(ctx, in)
	})
	r := newRunner(t, pipeline.RunnerConfig{Source: src, Sink: pipeline.NewMemSink(), Stage: slow, BatchMaxRecords: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	pipetest.Eventually(t, 10*time.Second, "50 rows processed", func() bool { return r.Counts().Batches == 50 })
	time.Sleep(500 * time.Millisecond) // idle: no input
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	c := r.Counts()
	if c.Busy < 50*2*time.Millisecond || c.Busy > elapsed-400*time.Millisecond {
		t.Fatalf("busy %v of %v: want at least 100ms (50 batches of 2ms) and without the 500ms idle", c.Busy, elapsed)
	}
}
