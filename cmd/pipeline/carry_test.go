package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// TestKeysAndHeadersReachDomainTopics: JSON documents produced to
// docs.raw with their own keys and headers (as a Kafka client would) reach
// docs.domain.<id> through the embed and cluster stages with the key and
// headers in the kafka_key, kafka_header_names and kafka_header_values
// columns.
func TestKeysAndHeadersReachDomainTopics(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	router := filepath.Join(t.TempDir(), "router")
	const k = 2
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "2", "--out", router, "--seed", "1")
	mustCLI(t, "ingest", "--brokers", addr, fixture) // keyed by id, no producer headers

	var msgs []pipeline.Message
	for _, id := range []string{"own-1", "own-2", "own-3"} {
		m := pipetest.JSONDoc(pipeline.TopicRaw, id, "cats and dogs play in the garden with the stock market report "+id)
		m.Key = []byte("key-of-" + id)
		m.Headers = append(m.Headers, pipeline.Header{Key: "trace-id", Value: []byte("trace-" + id)})
		msgs = append(msgs, m)
	}
	pipetest.Produce(t, cc, msgs...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb := startCommand(ctx, "embed", "--brokers", addr, "--state", router, "--linger", "5ms")
	clu := startCommand(ctx, "cluster", "--brokers", addr, "--router", router, "--linger", "5ms")

	type carried struct{ key, names, values string }
	got := map[string]carried{}
	rows := 0
	deadline := time.Now().Add(60 * time.Second)
	for rows < 337 {
		if time.Now().After(deadline) {
			t.Fatalf("the domain topics hold %d rows, want 337\nembed:\n%s\ncluster:\n%s", rows, emb.stderr.String(), clu.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
		rows = 0
		eachDomainRecord(ctx, t, cc, k, func(rec arrow.Record) {
			docs, _ := schemas.Documents(rec)
			rows += docs.Len()
			s := rec.Schema()
			if !s.HasField(pipeline.ColKafkaKey) {
				return
			}
			key := rec.Column(s.FieldIndices(pipeline.ColKafkaKey)[0]).(*array.Binary)
			names := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderNames)[0])
			values := rec.Column(s.FieldIndices(pipeline.ColKafkaHeaderValues)[0])
			for i := range docs.Len() {
				if key.IsValid(i) {
					got[docs.ID(i)] = carried{string(key.Value(i)), names.ValueStr(i), values.ValueStr(i)}
				}
			}
		})
	}
	cancel()
	<-emb.done
	<-clu.done
	for _, id := range []string{"own-1", "own-2", "own-3"} {
		want := carried{"key-of-" + id, `["trace-id"]`, ""}
		g := got[id]
		if g.key != want.key || g.names != want.names || g.values == "" {
			t.Errorf("document %s on its domain topic carries %+v, want key %q and header trace-id", id, g, want.key)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d rows carry a key, want 3 (ingest keys by id): %v", len(got), got)
	}
}

// eachDomainRecord calls fn with every record on the topics of domains 0 to
// k-1 (a topic not there yet is skipped), releasing each after; a message
// that is not Arrow fails the test.
func eachDomainRecord(ctx context.Context, t *testing.T, cc pipeline.ClientConfig, k int, fn func(arrow.Record)) {
	t.Helper()
	for id := range k {
		ms, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
		if err != nil {
			continue
		}
		for _, m := range ms {
			recs, err := schemas.DecodeRecords(m.Value, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				fn(rec)
				rec.Release()
			}
		}
	}
}
