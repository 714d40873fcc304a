package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/stages/cluster"
)

// brokerFlags are the flags of `pipeline broker`.
type brokerFlags struct {
	listen     string
	dataDir    string
	syncWrites bool
	partitions int
	retention  time.Duration
}

func (a *app) brokerCmd() *cobra.Command {
	var f brokerFlags
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker until SIGINT/SIGTERM",
		Long: `Run the embedded Kafka-protocol broker (franz-go's kfake, one node) until
SIGINT or SIGTERM, for multi-process runs and tests without a real Kafka.

It listens on --listen (a bare :PORT means loopback, 127.0.0.1:PORT, as for
--metrics-addr; 0.0.0.0:PORT or [::]:PORT listens on every interface), creates the standard topics (docs.raw and
docs.deadletter with --partitions partitions, router.models compacted with one
partition), prints "broker listening on ADDR" on stderr and serves until it is
stopped. Other topics are created on first use with --partitions partitions.

Without --data-dir everything is kept in memory and lost on exit; set
--retention so that a long-running in-memory broker does not grow without
bound. With --data-dir, topics, records and committed consumer offsets are
written there and reloaded on the next start; --sync-writes also fsyncs every
produced batch, so that the data survives a power loss, not only a killed
process.`,
		Example: `  # in-memory broker for a test run
  pipeline broker

  # durable broker on another port, keeping one day of records
  pipeline broker --listen 127.0.0.1:19092 --data-dir /var/lib/domainflow/broker --retention 24h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBroker(cmd, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9092", "`host:port` to listen on; a bare :PORT listens on loopback (127.0.0.1) only, 0.0.0.0:PORT or [::]:PORT on every interface; port 0 picks a free port")
	fs.StringVar(&f.dataDir, "data-dir", "", "`directory` that makes the broker durable (default: in memory)")
	fs.BoolVar(&f.syncWrites, "sync-writes", false, "fsync every produced batch (needs --data-dir)")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the standard topics and of auto-created topics")
	fs.DurationVar(&f.retention, "retention", 0, "drop records older than this `duration` (default: keep everything)")
	return cmd
}

func (a *app) runBroker(cmd *cobra.Command, f brokerFlags) error {
	switch {
	case f.partitions < 1:
		return usagef("broker: --partitions %d: want at least 1", f.partitions)
	case f.retention < 0:
		return usagef("broker: --retention %v: want a positive duration", f.retention)
	case f.syncWrites && f.dataDir == "":
		return usagef("broker: --sync-writes needs --data-dir")
	}
	listen, err := process.ListenAddr(f.listen)
	if err != nil {
		return usagef("broker: --listen: %v", err)
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "broker")
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{
		Listen:      listen,
		DataDir:     f.dataDir,
		SyncWrites:  f.syncWrites,
		Partitions:  f.partitions,
		RetentionMs: f.retention.Milliseconds(),
		Logger:      log,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	err = pipeline.EnsureTopics(ctx, b.Client(), standardTopics(f.partitions)...)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	log.Info("broker started", "addr", b.Addr(), "data_dir", f.dataDir, "partitions", f.partitions)
	fmt.Fprintf(a.stderr, "broker listening on %s\n", b.Addr())
	<-ctx.Done()
	log.Info("broker stopping", "addr", b.Addr())
	return nil
}

// standardTopics are the topics every deployment has: raw documents and dead
// letters with the given partitions, and the compacted router model topic
// with one partition, so that router versions have one order, and the
// message size the stages give it when they create it
// (cluster.RouterTopicMaxBytes, 64 MiB: featurizer states are large).
func standardTopics(partitions int) []pipeline.TopicSpec {
	return []pipeline.TopicSpec{
		{Name: pipeline.TopicRaw, Partitions: partitions},
		{Name: pipeline.TopicDeadLetter, Partitions: partitions},
		{Name: pipeline.TopicRouterModels, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact",
			"max.message.bytes": strconv.Itoa(cluster.RouterTopicMaxBytes)}},
	}
}
