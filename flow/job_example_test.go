package flow_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/domainflow/domainflow/flow"
)

// The whole job in process, on the demo corpus, with small training
// budgets: the same as `pipeline run --tokens-per-domain 4000
// --seed-tokens 2000 --eval-docs 5`, on an embedded broker.
func ExampleJob() {
	out, err := os.MkdirTemp("", "flow-job")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(out)
	job := flow.DefaultJob()
	job.Inputs = []string{"../testdata/mixed-small.jsonl.gz"}
	job.Out = out
	job.TokensPerDomain, job.SeedTokens, job.EvalDocs = 4000, 2000, 5
	job.Threads = 1
	job.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	sum, err := job.Run(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Printf("documents: %d in = %d routed + %d dead-lettered; %d held out; %d on docs.raw\n",
		sum.DocsIn, sum.DocsRouted, sum.DocsDeadletter, sum.DocsHeldout, sum.RawMessages)
	for _, d := range sum.Domains {
		// The sizes are balanced to within a few documents; which document
		// lands where depends on floating-point sums, so they are not
		// printed.
		fmt.Printf("domain %d: more than 60 documents: %v; expert trained on %d bytes\n", d.ID, d.Size > 60, d.Tokens)
	}
	fmt.Printf("evaluated: %d experts alone, mixtures %d, dense baseline %v\n",
		len(sum.Eval.ExpertBPB), len(sum.Eval.MixtureBPB), sum.Eval.DenseBPB != nil)
	// Output:
	// documents: 300 in = 300 routed + 0 dead-lettered; 34 held out; 300 on docs.raw
	// domain 0: more than 60 documents: true; expert trained on 4096 bytes
	// domain 1: more than 60 documents: true; expert trained on 4096 bytes
	// domain 2: more than 60 documents: true; expert trained on 4096 bytes
	// domain 3: more than 60 documents: true; expert trained on 4096 bytes
	// evaluated: 4 experts alone, mixtures 3, dense baseline true
}
