package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// routedMessage is an Arrow message of routed rows of domain 0 with the given
// origin offsets in docs.raw partition 0.
func routedMessage(t *testing.T, prefix string, offsets ...int64) kafka.Message {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RoutedSchema())
	defer rb.Release()
	s := schemas.RoutedSchema()
	fi := func(name string) int { return s.FieldIndices(name)[0] }
	for _, off := range offsets {
		schemas.AppendDocument(rb, schemas.Document{ID: prefix + strconv.FormatInt(off, 10), Text: fmt.Sprintf("routed document %d, long enough to train on", off)},
			schemas.Origin{Topic: pipeline.TopicRaw, Partition: 0, Offset: off})
		rb.Field(fi(schemas.ColDomain)).(*array.Int32Builder).Append(0)
		rb.Field(fi(schemas.ColDistance)).(*array.Float32Builder).Append(0.5)
		rb.Field(fi(schemas.ColRouterVersion)).(*array.Int64Builder).Append(1)
	}
	rec := rb.NewRecord()
	defer rec.Release()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: pipeline.DomainTopic(0), Value: b, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
	}}
}

// TestTrainForgedOrigin: a routed row claiming an origin far beyond the end
// of docs.raw is dead-lettered (impossible-origin), and the expert trains on
// every row after it; before, the expert took it as applied and skipped the
// 20 real rows as already seen.
func TestTrainForgedOrigin(t *testing.T) {
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	pipetest.CreateTopics(t, cc, 1, pipeline.TopicRaw, pipeline.DomainTopic(0), pipeline.TopicDeadLetter)
	for i := range 20 {
		pipetest.Produce(t, cc, pipetest.JSONDoc(pipeline.TopicRaw, "d"+strconv.Itoa(i), "text"))
	}
	offsets := make([]int64, 20)
	for i := range offsets {
		offsets[i] = int64(i)
	}
	pipetest.Produce(t, cc, routedMessage(t, "forged", 1_000_000_000), routedMessage(t, "d", offsets...))

	out := t.TempDir()
	r := mustCLI(t, "train", "--brokers", addr, "--topic", pipeline.DomainTopic(0), "--name", "e", "--out", out,
		"--expert", "tiny", "--exit-on-idle", "1s", "--threads", "1", "--json")
	var rep struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &rep)
	if len(rep.Experts) != 1 || rep.Experts[0].Docs != 20 {
		t.Fatalf("experts %+v, want one that trained on the 20 real rows", rep.Experts)
	}
	dl, err := pipeline.ReadTopic(context.Background(), cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || headerValue(dl[0], pipeline.HeaderReason) != string(cluster.ReasonImpossibleOrigin) {
		t.Fatalf("%d dead letters, want one %s", len(dl), cluster.ReasonImpossibleOrigin)
	}
}
