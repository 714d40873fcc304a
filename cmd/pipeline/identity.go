package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
)

func (a *app) identityCmd() *cobra.Command {
	var f stageFlags
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Diagnostics stage: copy documents from one topic to another through the stage runtime",
		Long: `Run the identity stage — every input row is published unchanged — through
the stage runtime until SIGINT or SIGTERM. It is a diagnostics stage: tests and
throughput benchmarks use it to measure the runtime (consumer group, micro-
batching, Arrow encoding, dead-lettering, commits) without any stage logic.

It joins consumer group --group on --in (JSON documents or Arrow IPC
document batches), writes Arrow IPC batches of the documents to --out on the
partition number they came from, and sends what cannot be decoded to
docs.deadletter with the reason in headers. Offsets are committed only after
the outputs are acknowledged. The output and dead-letter topics are created
with as many partitions as the input topic, which must exist.

On stop it drains the batch in hand and prints the counts and the rates (rows
per second while busy, i.e. with a batch in hand, and over the whole run): a
line on stderr, or with --json {"in":N,"out":N,"dead":N,"duplicates":N,
"batches":N,"seconds":S,"busy_seconds":S} on stdout.`,
		Example: `  pipeline identity --brokers 127.0.0.1:9092 --in docs.raw --out docs.identity
  pipeline identity --batch-records 5000 --linger 50ms --json --metrics-addr :9100`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Validate("identity"); err != nil {
				return err
			}
			ctx := cmd.Context()
			cc, err := f.kafka.Connect(ctx, a.log)
			if err != nil {
				return fmt.Errorf("identity: %w", err)
			}
			return a.runStage(ctx, "identity", &f, cc, pipeline.Identity, nil, a.log.With("cmd", "identity"))
		},
	}
	f.register(cmd.Flags(), "in", pipeline.TopicRaw, "out", "docs.identity", "identity")
	return cmd
}
