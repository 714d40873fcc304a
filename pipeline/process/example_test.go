package process_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/schemas"
)

// upper is a user's stage: it upper-cases the text of each document and
// keeps every other column (id, meta, origin) as it is.
func upper(_ context.Context, in arrow.Record) (pipeline.Result, error) {
	col := in.Schema().FieldIndices(schemas.ColText)[0]
	text := in.Column(col).(*array.String)
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := range text.Len() {
		b.Append(strings.ToUpper(text.Value(i)))
	}
	cols := append([]arrow.Array(nil), in.Columns()...)
	cols[col] = b.NewArray()
	defer cols[col].Release()
	return pipeline.Result{Out: []pipeline.Output{{Record: array.NewRecord(in.Schema(), cols, in.NumRows())}}}, nil
}

// A user's own stage as a process: process.Run is what process.Main runs
// with the program's arguments. Here it runs against an embedded broker
// until the output is there, then stops as it would on SIGTERM.
func ExampleRun() {
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc := b.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 1}); err != nil {
		fmt.Println(err)
		return
	}
	sink, _ := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	for _, d := range []string{"hello", "kafka", "world"} {
		v, _ := schemas.EncodeJSON(schemas.Document{ID: d, Text: d})
		m := pipeline.Message{Topic: pipeline.TopicRaw, Key: []byte(d), Value: v, Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)}
		if err := sink.Write(ctx, m); err != nil {
			fmt.Println(err)
			return
		}
	}
	sink.Close()

	runCtx, stop := context.WithCancel(ctx)
	var stdout bytes.Buffer
	code := make(chan int)
	go func() {
		code <- process.Run(runCtx, "upper", pipeline.StageFunc(upper), process.Options{},
			[]string{"--brokers", cc.Brokers[0], "--json", "--log-level", "error"}, &stdout, io.Discard)
	}()
	var texts []string
	for len(texts) < 3 && ctx.Err() == nil {
		texts = texts[:0]
		msgs, _ := pipetest.ReadTopic(ctx, cc, "docs.upper")
		for _, m := range msgs {
			d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
			if err != nil {
				continue
			}
			_ = d.EachDocument(func(doc schemas.Document, _ schemas.Origin) error {
				texts = append(texts, doc.ID+"="+doc.Text)
				return nil
			})
			d.Release()
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop() // as SIGTERM would
	fmt.Println("exit", <-code)
	var rep process.Report
	_ = json.Unmarshal(stdout.Bytes(), &rep)
	fmt.Printf("in %d, out %d, dead %d\n", rep.In, rep.Out, rep.Dead)
	fmt.Println(texts)
	// Output:
	// exit 0
	// in 3, out 3, dead 0
	// [hello=HELLO kafka=KAFKA world=WORLD]
}
