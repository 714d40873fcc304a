package flow_test

import (
	"context"
	"fmt"
	"os"

	"github.com/domainflow/domainflow/flow"
)

// Load a mixture of two tiny experts, one trained on documents about cats
// and one on documents about markets (tinyRun writes them and their router
// as `pipeline run` would), route texts to them and score one.
func ExampleMixture() {
	out, err := os.MkdirTemp("", "flow-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(out)
	expertOf, err := tinyRun(out, false) // topic → the expert trained on it
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	texts := []struct{ topic, text string }{
		{"cats", "my kitten purred on the mat"},
		{"markets", "bank shares fell"},
	}
	for _, topK := range []int{1, 0} {
		m, err := flow.LoadMixture(ctx, flow.MixtureConfig{Out: out, TopK: topK, Backend: "ref", Threads: 1})
		if err != nil {
			panic(err)
		}
		fmt.Printf("top-k %d: %d experts, chunks of %d bytes\n", topK, len(m.Experts()), m.Context())
		for _, x := range texts {
			w, err := m.Weights(ctx, []byte(x.text))
			if err != nil {
				panic(err)
			}
			fmt.Printf("  %q: %d weight(s), the largest on the %s expert: %v\n", x.text, len(w), x.topic, w[0].Expert == expertOf[x.topic])
		}
		bpb, err := m.Score(ctx, []byte("the cat sat on the mat"))
		if err != nil {
			panic(err)
		}
		fmt.Printf("  below 8 bits per byte: %v\n", bpb < 8)
	}
	// Output:
	// top-k 1: 2 experts, chunks of 16 bytes
	//   "my kitten purred on the mat": 1 weight(s), the largest on the cats expert: true
	//   "bank shares fell": 1 weight(s), the largest on the markets expert: true
	//   below 8 bits per byte: true
	// top-k 0: 2 experts, chunks of 16 bytes
	//   "my kitten purred on the mat": 2 weight(s), the largest on the cats expert: true
	//   "bank shares fell": 2 weight(s), the largest on the markets expert: true
	//   below 8 bits per byte: true
}
