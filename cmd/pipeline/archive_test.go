package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// TestArchiveDocsTombstone: a message without a value on a domain topic is
// dead-lettered as an empty message, not as a malformed Arrow batch.
func TestArchiveDocsTombstone(t *testing.T) {
	arrowHeaders := []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte("1")},
	}
	tests := []struct {
		name string
		m    kafka.Message
		want schemas.Reason
	}{
		{"headerless tombstone", kafka.Message{Key: []byte("k")}, schemas.ReasonEmptyMessage},
		{"tombstone with arrow headers", kafka.Message{Headers: arrowHeaders}, schemas.ReasonEmptyMessage},
		{"garbage", kafka.Message{Value: []byte("\x00garbage"), Headers: arrowHeaders}, schemas.ReasonMalformedArrow},
	}
	for _, tt := range tests {
		docs, err := archiveDocs(tt.m)
		if got := schemas.ReasonOf(err); got != tt.want || docs != nil {
			t.Errorf("%s: archiveDocs = %d docs, %v (reason %q); want reason %q", tt.name, len(docs), err, got, tt.want)
		}
	}
}

// TestArchiveExtraColumns: the columns a user stage added reach the archive
// shards as Parquet columns of the same names and types, row for row; a
// message without them starts a shard of its own, in today's format; and
// the trainer takes the same messages, extra columns ignored.
func TestArchiveExtraColumns(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	ctx := context.Background()
	topic := pipeline.DomainTopic(0)
	if err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	routed := func(first, n int, extra bool) []byte {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RoutedSchema())
		defer rb.Release()
		for i := first; i < first+n; i++ {
			schemas.AppendDocument(rb, schemas.Document{ID: fmt.Sprint(i), Text: fmt.Sprintf("document %d about things", i)},
				schemas.Origin{})
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
		return b
	}
	headers := []kafka.Header{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}, {Key: schemas.HeaderSchemaVersion, Value: []byte("1")}}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Write(ctx,
		kafka.Message{Topic: topic, Value: routed(0, 3, true), Headers: headers},
		kafka.Message{Topic: topic, Value: routed(3, 4, true), Headers: headers},
		kafka.Message{Topic: topic, Value: routed(7, 2, false), Headers: headers})
	sink.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	r := mustCLI(t, "archive", "--brokers", addr, "--domain", "0", "--out", out, "--exit-on-idle", "1s", "--json")
	var arch struct{ Domains []archiveReport }
	if err := json.Unmarshal([]byte(r.stdout), &arch); err != nil {
		t.Fatal(err)
	}
	if len(arch.Domains) != 1 || arch.Domains[0].Docs != 9 || arch.Domains[0].Shards != 2 {
		t.Fatalf("archive: %+v, want 9 documents in 2 shards", arch)
	}
	dir := filepath.Join(out, "archive", "0")
	// Messages 0 and 1 have the extra columns.
	type extraRow struct {
		ID    string   `parquet:"id"`
		Text  string   `parquet:"text"`
		Lang  string   `parquet:"lang"`
		N     int64    `parquet:"n"`
		Score float64  `parquet:"score"`
		Tags  []string `parquet:"tags,list"`
		Maybe *int64   `parquet:"maybe,optional"`
	}
	rows, err := parquet.ReadFile[extraRow](filepath.Join(dir, shardName(0, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Fatalf("%d rows in the shard with extra columns, want 7", len(rows))
	}
	for i, row := range rows {
		want := pipetest.ExtraValues(i)
		got := pipetest.ExtraRow{Lang: row.Lang, N: row.N, Score: row.Score, Tags: row.Tags, Maybe: row.Maybe}
		if row.ID != fmt.Sprint(i) || got.String() != want.String() {
			t.Errorf("shard row %d: id %s, %s; want id %d, %s", i, row.ID, got, i, want)
		}
	}
	// Message 2 has none: today's format.
	plain, err := parquet.ReadFile[schemas.DocumentRow](filepath.Join(dir, shardName(0, 2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 2 || plain[0].ID != "7" {
		t.Fatalf("plain shard rows %+v", plain)
	}
	raw, err := os.ReadFile(filepath.Join(dir, shardName(0, 2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	docs := []schemas.Document{{ID: "7", Text: "document 7 about things"}, {ID: "8", Text: "document 8 about things"}}
	if err := schemas.WriteParquetDocuments(&want, docs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, want.Bytes()) {
		t.Error("the shard of documents without extra columns is not the file WriteParquetDocuments writes")
	}

	// The trainer takes the same messages, extra columns ignored.
	tr := mustCLI(t, "train", "--brokers", addr, "--topic", topic, "--name", "x", "--out", t.TempDir(), "--expert", "tiny",
		"--threads", "1", "--exit-on-idle", "500ms", "--json")
	var rep struct{ Experts []expertReport }
	decodeOne(t, tr.stdout, &rep)
	if len(rep.Experts) != 1 || rep.Experts[0].Docs != 9 {
		t.Fatalf("train: %s, want 9 documents trained", tr.stdout)
	}
}
