package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// TestCheckpointStepsInsideOneMessage: one input message that holds many
// documents trains dozens of steps, and --checkpoint-steps 5 checkpoints at
// steps 5, 10, 15, ... inside it, not once after it. A trainer restarted
// from a checkpoint taken inside the message (as one killed right after it
// would be) ends bit-identical to the uninterrupted run.
func TestCheckpointStepsInsideOneMessage(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	ctx := context.Background()
	const topic = "docs.big"
	if err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	for i := range 200 {
		text := fmt.Sprintf("document %d: %s", i, strings.Repeat(fmt.Sprintf("word%d ", i%17), 20))
		b.Append(schemas.Document{ID: fmt.Sprint(i), Text: text}, schemas.Origin{Topic: pipeline.TopicRaw, Offset: int64(i)})
	}
	rec := b.NewRecord()
	payload, err := schemas.EncodeRecord(rec)
	rec.Release()
	b.Release()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Write(ctx, kafka.Message{Topic: topic, Partition: 0, Value: payload, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}, {Key: schemas.HeaderSchemaVersion, Value: []byte("1")}}})
	sink.Close()
	if err != nil {
		t.Fatal(err)
	}

	trainOn := func(out string) expertReport {
		t.Helper()
		r := mustCLI(t, "train", "--brokers", addr, "--topic", topic, "--name", "big", "--out", out, "--expert", "tiny",
			"--threads", "1", "--checkpoint-steps", "5", "--keep", "1000", "--exit-on-idle", "200ms", "--json")
		var rep struct{ Experts []expertReport }
		decodeOne(t, r.stdout, &rep)
		if len(rep.Experts) != 1 {
			t.Fatalf("train: %+v", rep)
		}
		return rep.Experts[0]
	}
	whole := t.TempDir()
	final := trainOn(whole)
	if final.Step < 20 || final.Docs != 200 {
		t.Fatalf("the message trained %d steps on %d documents; want at least 20 steps on 200", final.Step, final.Docs)
	}
	steps, err := train.ListCheckpoints(expertDir(whole, "big"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(steps)
	var want []int
	for s := 5; s < final.Step; s += 5 {
		want = append(want, s)
	}
	want = append(want, final.Step) // the checkpoint on exit
	if !slices.Equal(steps, want) {
		t.Fatalf("checkpoints at steps %v, want %v (every 5 steps inside the one message, and on exit)", steps, want)
	}

	// Resume from the checkpoint at step 10, inside the message: its input
	// offset is past the message and the packer holds the rest of it.
	resumed := t.TempDir()
	for _, ext := range []string{".arrow", ".parquet"} {
		src := strings.TrimSuffix(train.CheckpointPath(expertDir(whole, "big"), 10), ".arrow") + ext
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(expertDir(resumed, "big"), filepath.Base(src))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	again := trainOn(resumed)
	if again.ParamsSHA256 != final.ParamsSHA256 || again.Step != final.Step || again.Tokens != final.Tokens || again.Docs != final.Docs {
		t.Fatalf("resumed from step 10: step %d, %d tokens, %d docs, params %s; uninterrupted: step %d, %d tokens, %d docs, params %s",
			again.Step, again.Tokens, again.Docs, again.ParamsSHA256, final.Step, final.Tokens, final.Docs, final.ParamsSHA256)
	}
}
