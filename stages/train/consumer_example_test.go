package train_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/domainflow/domainflow/accel/cpu" // the default backend
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/stages/train"
)

// Train one very small expert on a topic of an embedded broker until its
// token budget, then give it a larger budget: it resumes from its
// checkpoint and goes on reading where it stopped.
func ExampleRunExpert() {
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pipeline.EnsureTopics(ctx, b.Client(), pipeline.TopicSpec{Name: "docs.demo", Partitions: 1}); err != nil {
		fmt.Println(err)
		return
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: b.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 40 {
		err = sink.Write(ctx, pipetest.JSONDoc("docs.demo", fmt.Sprint(i), strings.Repeat("the cat sat on the mat. ", 1+i%3)))
	}
	sink.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	out, _ := os.MkdirTemp("", "experts")
	defer os.RemoveAll(out)
	cfg := train.ConsumerConfig{
		Client: b.Client(),
		Out:    out,
		Model:  train.Config{Name: "demo", Vocab: 256, Dim: 16, Layers: 1, Heads: 2, Ctx: 16, Batch: 4},
		Seed:   1,
		// Stop once the topic has had nothing new for this long.
		ExitOnIdle: 200 * time.Millisecond,
	}
	for _, steps := range []int64{10, 20} {
		cfg.Tokens = steps * 4 * 16 // a step trains on Batch×Ctx bytes
		rep, err := train.RunExpert(ctx, cfg, "demo", "docs.demo")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("expert %s: step %d, %d training bytes, %d documents\n", rep.Expert, rep.Step, rep.Tokens, rep.Docs)
	}
	// Output:
	// expert demo: step 10, 640 training bytes, 16 documents
	// expert demo: step 20, 1280 training bytes, 30 documents
}
