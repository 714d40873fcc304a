package archive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/archive"
)

// Archive a small domain topic on an embedded broker: five messages of two
// documents each, in shards of two messages, until the topic is idle.
func Example() {
	ctx := context.Background()
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	cc := b.Client()
	topic := pipeline.DomainTopic(0)
	if err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		panic(err)
	}
	var msgs []pipeline.Message
	for i := range 5 {
		db := schemas.NewDocumentBuilder(memory.DefaultAllocator)
		for j := range 2 {
			db.Append(schemas.Document{ID: strconv.Itoa(2*i + j), Text: "a document about things"}, schemas.Origin{})
		}
		rec := db.NewRecord()
		payload, err := schemas.EncodeRecord(rec)
		rec.Release()
		db.Release()
		if err != nil {
			panic(err)
		}
		msgs = append(msgs, pipeline.Message{Topic: topic, Value: payload, Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)})
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		panic(err)
	}
	if err := sink.Write(ctx, msgs...); err != nil {
		panic(err)
	}
	sink.Close()

	dir, err := os.MkdirTemp("", "archive-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	reps, err := archive.Run(ctx, archive.Config{Client: cc, Dir: dir, ShardMessages: 2, ExitOnIdle: 300 * time.Millisecond}, archive.IDs{0})
	if err != nil {
		panic(err)
	}
	fmt.Printf("domain %d: %d documents in %d shards\n", reps[0].Domain, reps[0].Docs, reps[0].Shards)
	shards, _ := filepath.Glob(filepath.Join(dir, "0", "*.parquet"))
	for _, s := range shards {
		rows, err := schemas.ParquetFileRows(s)
		if err != nil {
			panic(err)
		}
		fmt.Println(filepath.Base(s), rows, "rows")
	}
	// Output:
	// domain 0: 10 documents in 3 shards
	// part-000-000000000000-000000000001.parquet 4 rows
	// part-000-000000000002-000000000003.parquet 4 rows
	// part-000-000000000004-000000000004.parquet 2 rows
}
