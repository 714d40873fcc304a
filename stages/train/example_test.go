package train_test

import (
	"fmt"
	"math"
	"strings"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/ref"
	"github.com/domainflow/domainflow/stages/train"
)

// Train a very small expert for a few steps on a repeated sentence: pack
// the documents into batches, then forward, backward and update.
func Example() {
	be, err := accel.Open("ref", 1)
	if err != nil {
		panic(err)
	}
	cfg := train.Config{Name: "demo", Vocab: 256, Dim: 16, Layers: 1, Heads: 2, Ctx: 16, Batch: 4}
	m := train.NewModel(cfg, 1)
	oc := train.DefaultOptConfig()
	oc.LR, oc.WarmupSteps, oc.TotalSteps = 1e-2, 2, 30
	opt := train.NewOptimizer(oc, len(m.Params))
	pk := train.NewPacker(cfg.Ctx, cfg.Batch, '\n')

	var first, last float32
	for step := 0; step < 30; {
		inputs, targets, ok := pk.Next()
		if !ok {
			pk.Add([]byte(strings.Repeat("the cat sat on the mat. ", 4)))
			continue
		}
		m.ZeroGrad()
		loss := m.Forward(be, inputs, targets, cfg.Batch, cfg.Ctx)
		m.Backward(be)
		opt.Update(be, m)
		if step == 0 {
			first = loss
		}
		last = loss
		step++
	}
	fmt.Printf("%d parameters; loss at the start ≈ ln 256: %v, after 30 steps below 2.5: %v\n",
		cfg.NumParams(), math.Abs(float64(first)-math.Log(256)) < 0.1, last < 2.5)
	// Output: 7664 parameters; loss at the start ≈ ln 256: true, after 30 steps below 2.5: true
}

// The named sizes and their parameter counts.
func ExampleConfigByName() {
	for _, name := range train.ConfigNames() {
		c, _ := train.ConfigByName(name)
		fmt.Printf("%-5s d%d L%d H%d ctx%d batch %d: %d parameters\n", c.Name, c.Dim, c.Layers, c.Heads, c.Ctx, c.Batch, c.NumParams())
	}
	// Output:
	// tiny  d64 L2 H4 ctx64 batch 16: 120576 parameters
	// small d128 L4 H4 ctx128 batch 16: 842496 parameters
	// base  d256 L6 H8 ctx256 batch 8: 4870144 parameters
}

// Documents, each ended by a separator, go to the lane (row) with the
// fewest pending bytes; row b of a batch is lane b's next T bytes, its
// targets the same bytes shifted by one, so the last target of a row is the
// lane's next input.
func ExamplePacker() {
	p := train.NewPacker(4, 2, '|')
	p.Add([]byte("hello"))
	p.Add([]byte("world"))
	for {
		in, tg, ok := p.Next()
		if !ok {
			break
		}
		fmt.Printf("inputs %q targets %q\n", bytesOf(in), bytesOf(tg))
	}
	fmt.Println("pending", p.Pending())
	// Output:
	// inputs "hellworl" targets "elloorld"
	// pending 4
}

func bytesOf(x []int32) string {
	b := make([]byte, len(x))
	for i, v := range x {
		b[i] = byte(v)
	}
	return string(b)
}
