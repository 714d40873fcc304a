package embed_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// featuresOut decodes Features messages: vectors and document ids by id.
func featuresOut(t *testing.T, msgs []kafka.Message) (ids []string, rows map[string]embed.Vectors, versions map[string]int64) {
	t.Helper()
	rows, versions = map[string]embed.Vectors{}, map[string]int64{}
	for _, m := range msgs {
		recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if k, _, _ := schemas.KindOf(rec.Schema()); k != schemas.KindFeatures {
				t.Fatalf("output kind %q, want features", k)
			}
			docs, _ := schemas.Documents(rec)
			v, err := embed.FeatureVectors(rec)
			if err != nil {
				t.Fatal(err)
			}
			ver := rec.Column(rec.Schema().FieldIndices(schemas.ColFeaturizerVersion)[0])
			for i := range docs.Len() {
				id := docs.Doc(i).ID
				ids = append(ids, id)
				rows[id] = rowOf(v, i)
				versions[id] = ver.(interface{ Value(int) int64 }).Value(i)
			}
			rec.Release()
		}
	}
	return ids, rows, versions
}

// rowOf returns row i of v as a one-row Vectors.
func rowOf(v embed.Vectors, i int) embed.Vectors {
	if v.Sparse != nil {
		m := embed.NewCSR(v.Sparse.Cols)
		idx, val := v.Sparse.Row(i)
		m.AppendRow(append([]int32{}, idx...), append([]float32{}, val...))
		return embed.Vectors{Sparse: m}
	}
	d := embed.NewDense(1, v.Dense.Cols)
	copy(d.Data, v.Dense.Row(i))
	return embed.Vectors{Dense: d}
}

func docMessages(topic string, ids, texts []string, parts int) []kafka.Message {
	msgs := make([]kafka.Message, len(ids))
	for i := range ids {
		msgs[i] = pipetest.JSONDoc(topic, ids[i], texts[i])
		msgs[i].Partition = i % parts
	}
	return msgs
}

// checkFeatures compares every output row with the featurizer applied
// directly.
func checkFeatures(t *testing.T, f embed.Featurizer, ids, texts []string, rows map[string]embed.Vectors) {
	t.Helper()
	if len(rows) != len(ids) {
		t.Fatalf("%d documents featurized, want %d", len(rows), len(ids))
	}
	for i, id := range ids {
		want, err := f.Transform(context.Background(), texts[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		sameVectors(t, "document "+id, want, rows[id])
	}
}

func TestStageMem(t *testing.T) {
	ids, texts := fixtureTexts(t, 90)
	for _, k := range []embed.Kind{embed.KindTfidf, embed.KindLSA} {
		t.Run(string(k), func(t *testing.T) {
			f := fitKind(t, k, texts)
			s, _ := embed.NewState(f, len(texts))
			s.Settings.Version = 7
			src := pipeline.NewMemSource(docMessages("docs.raw", ids, texts, 3)...)
			src.CloseInput()
			sink := pipeline.NewMemSink()
			r, err := pipeline.NewRunner(pipeline.RunnerConfig{Name: "embed", Stage: embed.NewStage(s), Source: src, Sink: sink,
				OutputTopic: pipeline.TopicFeatures, Logger: quiet, BatchMaxRecords: 25})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, rows, versions := featuresOut(t, sink.Messages(pipeline.TopicFeatures))
			checkFeatures(t, f, ids, texts, rows)
			for id, v := range versions {
				if v != 7 {
					t.Fatalf("document %s has featurizer_version %d, want 7", id, v)
				}
			}
		})
	}
}

// TestStageKafkaHotReload runs the stage on the embedded broker, swaps in a
// new featurizer version mid-stream, and checks every document is featurized
// by the version its batch saw.
func TestStageKafkaHotReload(t *testing.T) {
	ids, texts := fixtureTexts(t, 120)
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 2, pipeline.TopicRaw, pipeline.TopicFeatures, pipeline.TopicDeadLetter)
	f1, f2 := fitKind(t, embed.KindTfidf, texts[:60]), fitKind(t, embed.KindHashing, texts)
	s1, _ := embed.NewState(f1, 60)
	s1.Settings.Version = 1
	s2, _ := embed.NewState(f2, len(texts))
	s2.Settings.Version = 2
	stage := embed.NewStage(s1)

	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{pipeline.TopicRaw}, GroupID: "embed"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, _ := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	defer sink.Close()
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{Name: "embed", Stage: stage, Source: src, Sink: sink,
		OutputTopic: pipeline.TopicFeatures, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wait := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for r.Counts().In < n {
			if time.Now().After(deadline) {
				t.Fatalf("stage took in %d of %d rows", r.Counts().In, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pipetest.Produce(t, cc, docMessages(pipeline.TopicRaw, ids[:60], texts[:60], 2)...)
	wait(60)
	stage.Swap(s2)
	pipetest.Produce(t, cc, docMessages(pipeline.TopicRaw, ids[60:], texts[60:], 2)...)
	wait(120)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, rows, versions := featuresOut(t, pipetest.ReadAll(t, cc, pipeline.TopicFeatures))
	checkFeatures(t, f1, ids[:60], texts[:60], subset(rows, ids[:60]))
	checkFeatures(t, f2, ids[60:], texts[60:], subset(rows, ids[60:]))
	for i, id := range ids {
		want := int64(1)
		if i >= 60 {
			want = 2
		}
		if versions[id] != want {
			t.Fatalf("document %s: featurizer_version %d, want %d", id, versions[id], want)
		}
	}
}

func subset(rows map[string]embed.Vectors, ids []string) map[string]embed.Vectors {
	out := map[string]embed.Vectors{}
	for _, id := range ids {
		out[id] = rows[id]
	}
	return out
}

func TestFeaturesRecordRejectsMismatch(t *testing.T) {
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(schemas.Document{ID: "a", Text: "alpha beta"}, schemas.Origin{})
	rec := b.NewRecord()
	defer rec.Release()
	_, err := embed.FeaturesRecord(memory.DefaultAllocator, rec, embed.Vectors{Dense: embed.NewDense(2, 3)}, 1)
	if err == nil {
		t.Fatal("2 vectors for 1 document accepted")
	}
}
