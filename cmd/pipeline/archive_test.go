package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/archive"
)

// TestArchiveExtraColumns: `archive` writes the shards of routed documents
// with and without a user stage's extra columns (what the shards hold is
// tested in stages/archive) and reports them; the trainer takes the same
// messages, extra columns ignored.
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
	// Messages 0 and 1 have the extra columns, message 2 has none.
	ents, err := os.ReadDir(filepath.Join(out, "archive", "0"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{archive.ShardName(0, 0, 1), archive.ShardName(0, 2, 2)}; !slices.Equal(names, want) {
		t.Errorf("shards %v, want %v", names, want)
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
