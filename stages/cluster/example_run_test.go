package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// ExampleRunStage runs the routing stage against an embedded broker: 40
// feature rows on docs.features are routed by a router of two domains
// (saved into a router dir) onto docs.domain.0 and docs.domain.1.
func ExampleRunStage() {
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0", Partitions: 1,
		MaxMessageBytes: cluster.RouterTopicMaxBytes + 1<<20})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc := b.Client()
	ctx := context.Background()

	// The router: two domains, x and y.
	dir, _ := os.MkdirTemp("", "router")
	defer os.RemoveAll(dir)
	rm := &cluster.RouterModel{FeaturizerVersion: 1, IDs: []int{0, 1}, NextID: 2,
		Model: &cluster.Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}, Sizes: []int{1, 1}}}
	if _, err := cluster.SaveRouter(dir, rm); err != nil {
		fmt.Println(err)
		return
	}
	// The input: 40 documents on docs.raw and their features.
	const n = 40
	if err := produceExampleInput(ctx, cc, n); err != nil {
		fmt.Println(err)
		return
	}

	sctx, stop := context.WithCancel(ctx)
	done := make(chan pipeline.StageRun, 1)
	go func() {
		run, err := cluster.RunStage(sctx, cluster.RunConfig{Client: cc, RouterDir: dir, Linger: 5 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			fmt.Println(err)
		}
		done <- run
	}()
	routed := map[int]int64{}
	for deadline := time.Now().Add(time.Minute); routed[0]+routed[1] < n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		for _, id := range rm.IDs {
			routed[id] = domainRows(ctx, cc, id)
		}
	}
	stop()
	run := <-done
	fmt.Printf("in %d, out %d, dead %d\n", run.In, run.Out, run.Dead)
	fmt.Printf("docs.domain.0: %d rows, docs.domain.1: %d rows\n", routed[0], routed[1])
	// Output:
	// in 40, out 40, dead 0
	// docs.domain.0: 20 rows, docs.domain.1: 20 rows
}

// produceExampleInput writes n documents to docs.raw and their features,
// half near x and half near y, to docs.features in one Arrow message.
func produceExampleInput(ctx context.Context, cc pipeline.ClientConfig, n int) error {
	err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 1},
		pipeline.TopicSpec{Name: pipeline.TopicFeatures, Partitions: 1})
	if err != nil {
		return err
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.FeaturesSchema())
	defer rb.Release()
	s := schemas.FeaturesSchema()
	field := func(name string) array.Builder { return rb.Field(s.FieldIndices(name)[0]) }
	var raw []pipeline.Message
	for i := range n {
		doc := schemas.Document{ID: fmt.Sprint("doc-", i), Text: "text"}
		raw = append(raw, pipeline.Message{Topic: pipeline.TopicRaw, Value: []byte(`{"id":"` + doc.ID + `","text":"text"}`),
			Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)})
		schemas.AppendDocument(rb, doc, schemas.Origin{Topic: pipeline.TopicRaw, Offset: int64(i)})
		field(schemas.ColDim).(*array.Int32Builder).Append(2)
		field(schemas.ColIndices).(*array.ListBuilder).AppendNull() // dense
		vals := field(schemas.ColValues).(*array.ListBuilder)
		vals.Append(true)
		x, y := float32(1), float32(0.1)
		if i%2 == 1 {
			x, y = y, x
		}
		vals.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{x, y}, nil)
		field(schemas.ColFeaturizerVersion).(*array.Int64Builder).Append(1)
	}
	rec := rb.NewRecord()
	defer rec.Release()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		return err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return err
	}
	defer sink.Close()
	if err := sink.Write(ctx, raw...); err != nil {
		return err
	}
	return sink.Write(ctx, pipeline.Message{Topic: pipeline.TopicFeatures, Value: b,
		Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow)})
}

// domainRows counts the rows on domain id's topic.
func domainRows(ctx context.Context, cc pipeline.ClientConfig, id int) int64 {
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
	if err != nil {
		return 0
	}
	var rows int64
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			continue
		}
		for _, r := range recs {
			rows += r.NumRows()
			r.Release()
		}
	}
	return rows
}
