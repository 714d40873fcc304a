package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List and create Kafka topics",
		Long: `List and create Kafka topics.

"topics list" prints every non-internal topic with its partition count;
"topics create" creates topics with a partition count and topic configs.`,
		Example: `  pipeline topics list
  pipeline topics create docs.raw docs.deadletter --partitions 8`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.topicsListCmd(), a.topicsCreateCmd())
	return cmd
}

func (a *app) topicsListCmd() *cobra.Command {
	var (
		kf     kafkaFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the topics of the cluster with their partition counts",
		Long: `List every non-internal topic of the cluster with its partition count, sorted
by name: a table on stdout, or with --json one object
{"topics":[{"name":"docs.raw","partitions":4},...]}.`,
		Example: `  pipeline topics list
  pipeline topics list --brokers kafka:9092 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cc, err := kf.Connect(ctx, a.log)
			if err != nil {
				return fmt.Errorf("topics list: %w", err)
			}
			topics, err := pipeline.ListTopics(ctx, cc)
			if err != nil {
				return fmt.Errorf("topics: %w", err)
			}
			if topics == nil {
				topics = []pipeline.TopicInfo{}
			}
			if asJSON {
				return writeJSON(a.stdout, struct {
					Topics []pipeline.TopicInfo `json:"topics"`
				}{topics})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPARTITIONS")
			for _, t := range topics {
				fmt.Fprintf(tw, "%s\t%d\n", t.Name, t.Partitions)
			}
			return tw.Flush()
		},
	}
	fs := cmd.Flags()
	kf.Register(fs)
	fs.BoolVar(&asJSON, "json", false, `print {"topics":[{"name","partitions"}]} as JSON on stdout`)
	return cmd
}

func (a *app) topicsCreateCmd() *cobra.Command {
	var (
		kf         kafkaFlags
		partitions int
		replicas   int
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME... [flags]",
		Short: "Create topics",
		Long: `Create the named topics with --partitions partitions, --replication-factor
replicas and the topic configs given with --config key=value (repeatable), then
wait until the cluster reports each of them. Topics that exist already are
left as they are (their partitions and configs are not changed): each one is
logged with its own partition count, and the command fails (exit status 1,
the other topics created) when --partitions was given and an existing topic
has another count. Kafka can only add partitions, and adding them sends keys
to other partitions, so this command never does it.

Here --config names a topic config, not a config file: this command takes its
flags from the command line only.`,
		Example: `  pipeline topics create docs.raw --partitions 8
  pipeline topics create router.models --partitions 1 --config cleanup.policy=compact
  pipeline topics create docs.features --config retention.ms=86400000 --config max.message.bytes=33554432`,
		Args: argsBetween(1, -1, "topic NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if partitions < 1 {
				return usagef("topics create: --partitions %d: want at least 1", partitions)
			}
			if replicas < 1 {
				return usagef("topics create: --replication-factor %d: want at least 1", replicas)
			}
			cfg, err := parseKeyValues("config", configs)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cc, err := kf.Connect(ctx, a.log)
			if err != nil {
				return fmt.Errorf("topics create: %w", err)
			}
			specs := make([]pipeline.TopicSpec, len(args))
			for i, name := range args {
				specs[i] = pipeline.TopicSpec{Name: name, Partitions: partitions, Replicas: replicas, Configs: cfg}
			}
			res, err := pipeline.CreateTopics(ctx, cc, specs...)
			if err != nil {
				return fmt.Errorf("topics: %w", err)
			}
			var differ []string
			for _, t := range res {
				if !t.Existed {
					a.log.Info("topic created", "topic", t.Name, "partitions", t.Partitions)
					continue
				}
				a.log.Info("topic exists: left as it was", "topic", t.Name, "partitions", t.Partitions)
				if len(cfg) > 0 {
					a.log.Warn("--config not applied to a topic that exists", "topic", t.Name)
				}
				if cmd.Flags().Changed("partitions") && t.Partitions != partitions {
					differ = append(differ, fmt.Sprintf("%s has %d", t.Name, t.Partitions))
				}
			}
			if len(differ) > 0 {
				return fmt.Errorf("topics create: --partitions %d, but existing topics keep theirs: %s (Kafka can only add partitions, "+
					"and adding them sends keys to other partitions; kafka-topics --alter --partitions does it)", partitions, strings.Join(differ, ", "))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	kf.Register(fs)
	fs.IntVar(&partitions, "partitions", 4, "partitions of each new topic")
	fs.IntVar(&replicas, "replication-factor", 1, "replicas of each partition")
	fs.StringArrayVar(&configs, "config", nil, "topic config `key=value` (repeatable), e.g. cleanup.policy=compact")
	return cmd
}
