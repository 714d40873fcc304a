package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// A stage that keeps only documents longer than 10 bytes runs between an
// in-memory source and sink; short ones are dead-lettered with a reason.
func ExampleRunner() {
	long := pipeline.StageFunc(func(_ context.Context, in arrow.Record) (pipeline.Result, error) {
		text := in.Column(in.Schema().FieldIndices("text")[0]).(*array.String)
		var res pipeline.Result
		keep := make([]int, 0, in.NumRows())
		for i := range text.Len() {
			if len(text.Value(i)) > 10 {
				keep = append(keep, i)
			} else {
				res.Dead = append(res.Dead, pipeline.DeadRow{Row: i, Reason: "too-short", Err: fmt.Errorf("%d bytes", len(text.Value(i)))})
			}
		}
		// Publish the kept rows: here each kept row is one slice.
		for _, i := range keep {
			res.Out = append(res.Out, pipeline.Output{Record: in.NewSlice(int64(i), int64(i+1))})
		}
		return res, nil
	})

	src := pipeline.NewMemSource(
		pipetest.JSONDoc("docs.raw", "a", "a document long enough"),
		pipetest.JSONDoc("docs.raw", "b", "tiny"),
		pipetest.JSONDoc("docs.raw", "c", "another long document"),
	)
	src.CloseInput() // the runner stops once these are done
	sink := pipeline.NewMemSink()
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "long", Stage: long, Source: src, Sink: sink, OutputTopic: "docs.long",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Run(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range sink.Messages("docs.long") {
		recs, _ := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
		for _, rec := range recs {
			docs, _ := schemas.Documents(rec)
			fmt.Printf("out: %s (origin offset %d)\n", docs.Doc(0).ID, docs.Origin(0).Offset)
			rec.Release()
		}
	}
	for _, m := range sink.Messages(pipeline.TopicDeadLetter) {
		for _, h := range m.Headers {
			if h.Key == pipeline.HeaderReason || h.Key == pipeline.HeaderError {
				fmt.Printf("dead: %s=%s\n", h.Key, h.Value)
			}
		}
	}
	c := r.Counts()
	fmt.Printf("in %d, out %d, dead %d, dropped %d, unaccounted %d, batches %d\n", c.In, c.Out, c.Dead, c.Dropped, c.Unaccounted, c.Batches)
	// Output:
	// out: a (origin offset 0)
	// out: c (origin offset 2)
	// dead: deadletter-reason=too-short
	// dead: deadletter-error=4 bytes
	// in 3, out 2, dead 1, dropped 0, unaccounted 0, batches 1
}
