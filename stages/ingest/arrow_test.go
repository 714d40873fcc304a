package ingest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

type typedRow struct {
	ID   string    `parquet:"id"`
	Text string    `parquet:"text"`
	N    int64     `parquet:"n"`
	OK   bool      `parquet:"ok"`
	When time.Time `parquet:"when,timestamp"`
}

func typedParquet(t *testing.T, name string, rows []typedRow) string {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, buf.Bytes())
}

// arrowRow is a row read back from an Arrow batch on a topic.
type arrowRow struct {
	partition int
	meta      string
	n         int64
	ok        bool
}

// readBatches reads the Arrow batches of topic: every row by id, and the
// size of each batch. It fails on a JSON message, a keyed batch, or a batch
// without the typed columns n and ok.
func readBatches(t *testing.T, cc pipeline.ClientConfig, topic string) (map[string]arrowRow, []int) {
	t.Helper()
	rows := map[string]arrowRow{}
	var sizes []int
	for _, m := range pipetest.ReadAll(t, cc, topic) {
		if ct := pipeline.HeaderValue(m, schemas.HeaderContentType); ct != schemas.ContentTypeArrow || m.Key != nil {
			t.Fatalf("%s@%d/%d: content type %q, key %q; want an Arrow batch without a key", topic, m.Partition, m.Offset, ct, m.Key)
		}
		recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if err := schemas.CheckSchema(rec.Schema(), schemas.KindDocument); err != nil {
				t.Fatal(err)
			}
			s := rec.Schema()
			ni, oki := s.FieldIndices("n"), s.FieldIndices("ok")
			if len(ni) != 1 || len(oki) != 1 || s.HasField("when") {
				t.Fatalf("batch schema %v: want typed n and ok, no when", s)
			}
			n, ok1 := rec.Column(ni[0]).(*array.Int64)
			okc, ok2 := rec.Column(oki[0]).(*array.Boolean)
			if !ok1 || !ok2 {
				t.Fatalf("columns n %s and ok %s, want int64 and bool", s.Field(ni[0]).Type, s.Field(oki[0]).Type)
			}
			docs, _ := schemas.Documents(rec)
			for i := range docs.Len() {
				d := docs.Doc(i)
				rows[d.ID] = arrowRow{partition: m.Partition, meta: string(d.Meta), n: n.Value(i), ok: okc.Value(i)}
			}
			sizes = append(sizes, int(rec.NumRows()))
			rec.Release()
		}
	}
	return rows, sizes
}

// TestRunArrow: with Config.Arrow a Parquet input is produced as Arrow
// Document batches without a key, its int64 and bool columns typed extra
// columns (a timestamp stays in meta), each document on the partition its
// id as key puts it in JSON, batches of at most batchRows rows; a bad row is
// a dead letter as in JSON, and the report counts documents, not batches.
func TestRunArrow(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 3, "docs.json", "docs.arrow", pipeline.TopicDeadLetter)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 2600
	rows := make([]typedRow, n)
	for i := range rows {
		rows[i] = typedRow{ID: fmt.Sprintf("doc-%04d", i), Text: fmt.Sprintf("text %d", i), N: int64(i) * 1_000_000_007, OK: i%3 == 0, When: at}
	}
	rows[5].Text = " " // empty: a dead letter
	in := typedParquet(t, "typed.parquet", rows)

	jrep, err := Run(context.Background(), Config{Client: cc, Inputs: []string{in}, Topic: "docs.json", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	arep, err := Run(context.Background(), Config{Client: cc, Inputs: []string{in}, Topic: "docs.arrow", Arrow: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if arep.Docs != n-1 || arep.DeadLetter != 1 || arep.Docs != jrep.Docs || arep.Bytes != jrep.Bytes {
		t.Fatalf("Arrow report %+v, JSON report %+v: want %d documents and 1 dead letter in both", arep, jrep, n-1)
	}
	jsonPart := map[string]int{}
	for _, m := range pipetest.ReadAll(t, cc, "docs.json") {
		jsonPart[string(m.Key)] = m.Partition
	}
	got, sizes := readBatches(t, cc, "docs.arrow")
	if len(got) != n-1 {
		t.Fatalf("%d rows in batches, want %d", len(got), n-1)
	}
	for i, r := range rows {
		g, ok := got[r.ID]
		if i == 5 {
			if ok {
				t.Error("the empty document was produced")
			}
			continue
		}
		if !ok || g.partition != jsonPart[r.ID] || g.n != r.N || g.ok != r.OK || g.meta != `{"when":1767323045000}` {
			t.Fatalf("row %s = %+v, want partition %d (as JSON), n %d, ok %v, the timestamp in meta", r.ID, g, jsonPart[r.ID], r.N, r.OK)
		}
	}
	for _, s := range sizes {
		if s > batchRows {
			t.Errorf("a batch of %d rows, limit %d", s, batchRows)
		}
	}
	if len(sizes) < n/batchRows+1 {
		t.Errorf("%d batches for %d rows: want them bounded", len(sizes), n)
	}
}

// TestRunArrowOversize: a batch the topic refuses for its size is written
// again in halves, and a row refused alone is dead-lettered as oversize (its
// value a prefix of its one-row Arrow batch, content type Arrow); the others
// are delivered.
func TestRunArrowOversize(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	err := pipeline.EnsureTopics(context.Background(), cc,
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: 1},
		pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 1, Configs: map[string]string{"max.message.bytes": "100000"}})
	if err != nil {
		t.Fatal(err)
	}
	const good, big = 40, 7
	var rows []typedRow
	for i := range good + 1 {
		r := typedRow{ID: fmt.Sprintf("good-%02d", i), Text: strings.Repeat(fmt.Sprintf("w%d ", i), 3000), N: int64(i), OK: true}
		if i == big {
			r.ID, r.Text = "big", strings.Repeat("big ", 200_000)
		}
		rows = append(rows, r)
	}
	in := typedParquet(t, "corpus.parquet", rows)
	rep, err := Run(context.Background(), Config{Client: cc, Inputs: []string{in}, Arrow: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Docs != good || rep.DeadLetter != 1 || rep.Failed != 0 {
		t.Fatalf("report %+v: want %d documents and 1 dead letter", rep, good)
	}
	got, sizes := readBatches(t, cc, pipeline.TopicRaw)
	if len(got) != good || len(sizes) < 2 {
		t.Fatalf("docs.raw holds %d rows in %d batches, want %d in several", len(got), len(sizes), good)
	}
	dead := pipetest.ReadAll(t, cc, pipeline.TopicDeadLetter)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	info := pipeline.ParseDeadLetter(dead[0])
	if info.Reason != schemas.ReasonOversize || info.Origin.Topic != in || info.Origin.Offset != big {
		t.Fatalf("dead letter %+v: want oversize from %s row %d", info, in, big)
	}
	if ct := pipeline.HeaderValue(dead[0], schemas.HeaderContentType); ct != schemas.ContentTypeArrow {
		t.Errorf("dead letter of content type %q, want an Arrow batch", ct)
	}
}
