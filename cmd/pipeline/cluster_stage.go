package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// clusterStageFlags are the flags of `pipeline cluster --brokers …`.
type clusterStageFlags struct {
	stage  stageFlags
	router string
	watch  time.Duration
}

// routerModelKey is the key of router versions on the compacted
// router.models topic: the latest one is what a consumer keeps.
const routerModelKey = "router"

// addClusterStage makes `pipeline cluster` (no subcommand) run the Kafka
// stage docs.features → docs.domain.<id> when --brokers is given; without it
// the command prints its help, as before.
func (a *app) addClusterStage(cmd *cobra.Command) {
	var f clusterStageFlags
	fs := cmd.Flags()
	// Every output names its domain topic, so the shared stage flags are
	// taken without their output-topic flag and f.stage.out stays empty.
	stageFS := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	f.stage.register(stageFS, "in-topic", pipeline.TopicFeatures, "out-topic", "", "cluster")
	f.stage.perOutputTopic = true
	stageFS.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "out-topic" {
			fs.AddFlag(fl)
		}
	})
	fs.StringVar(&f.router, "router", "", "stage: router `dir` (a 'cluster fit' output); its latest router version is used")
	fs.DurationVar(&f.watch, "watch", 5*time.Second, "stage: how often to look for a newer router version in --router")
	cmd.Long += `

On Kafka (--brokers given, no subcommand): run the stage docs.features →
docs.domain.<id> with consumer group --group until SIGINT/SIGTERM. Each
document is routed by the latest router of --router (balanced streaming
assignment unless the router says otherwise) and published on its domain's
topic; rows of another featurizer version or dimension go to the dead-letter
topic. The router in use is published on router.models (key "router"); a
newer version saved into --router (e.g. by 'cluster fit' again) is picked up
within --watch, keeping the routed counts of the domain ids it keeps.`
	cmd.Example += `
  pipeline cluster --brokers 127.0.0.1:9092 --router router/`
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !cmd.Flags().Changed("brokers") {
			return cmd.Help()
		}
		return a.runClusterStage(cmd, &f)
	}
}

func (a *app) runClusterStage(cmd *cobra.Command, f *clusterStageFlags) error {
	if err := f.stage.validate("cluster"); err != nil {
		return err
	}
	if f.router == "" {
		return usagef("cluster: the Kafka stage needs --router DIR (a 'cluster fit' output)")
	}
	if f.watch <= 0 {
		return usagef("cluster: --watch %v: want a positive duration", f.watch)
	}
	ctx := cmd.Context()
	log := a.log.With("cmd", "cluster")
	_, rm, err := loadRouterDir(f.router)
	if err != nil {
		return fmt.Errorf("cluster: router %s: %w", f.router, err)
	}
	stage, err := cluster.NewStage(rm)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cc, err := f.stage.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n, err := waitPartitions(ctx, cc, f.stage.in, log)
	if err != nil {
		return fmt.Errorf("cluster: input topic %s: %w", f.stage.in, err)
	}
	if err := ensureDomainTopics(ctx, cc, rm, n); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := publishRouter(ctx, cc, rm); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	log.Info("router loaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go a.watchRouters(wctx, cc, f, stage, n, log)
	return a.runStage(ctx, "cluster", &f.stage, cc, stage, []schemas.Kind{schemas.KindFeatures}, log)
}

// waitPartitions returns the partition count of topic, waiting for the topic
// to appear (the featurization stage creates it) until ctx ends.
func waitPartitions(ctx context.Context, cc pipeline.ClientConfig, topic string, log *slog.Logger) (int, error) {
	logged := false
	for {
		n, err := pipeline.PartitionCount(ctx, cc, topic)
		if err == nil && n > 0 {
			return n, nil
		}
		if !logged {
			log.Info("waiting for the input topic", "topic", topic, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureDomainTopics creates the topic of every domain of rm that has none,
// with n partitions (the input's, so partition order carries over).
func ensureDomainTopics(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel, n int) error {
	specs := make([]pipeline.TopicSpec, len(rm.IDs))
	for j, id := range rm.IDs {
		specs[j] = pipeline.TopicSpec{Name: pipeline.DomainTopic(id), Partitions: n}
	}
	return pipeline.EnsureTopics(ctx, cc, specs...)
}

// publishRouter writes rm to the compacted router.models topic.
func publishRouter(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel) error {
	b, err := cluster.EncodeRouter(rm)
	if err != nil {
		return err
	}
	err = pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: pipeline.TopicRouterModels, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact"}})
	if err != nil {
		return err
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return err
	}
	defer sink.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = sink.Write(wctx, kafka.Message{Topic: pipeline.TopicRouterModels, Key: []byte(routerModelKey), Value: b, Headers: []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
	}})
	if err != nil {
		return fmt.Errorf("publish router v%d on %s: %w", rm.Version, pipeline.TopicRouterModels, err)
	}
	return nil
}

// watchRouters polls --router every --watch for a newer router version: it
// creates the topics of new domain ids, swaps the router into the stage and
// publishes it. A version that fails is retried at the next poll.
func (a *app) watchRouters(ctx context.Context, cc pipeline.ClientConfig, f *clusterStageFlags, stage *cluster.Stage, n int, log *slog.Logger) {
	t := time.NewTicker(f.watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := stage.Model().Version
		v, err := cluster.LatestRouterVersion(f.router)
		if err != nil {
			log.Warn("router not loaded", "err", err)
			continue
		}
		if v <= cur {
			continue
		}
		rm, err := cluster.LoadRouter(f.router, v)
		if err == nil {
			err = ensureDomainTopics(ctx, cc, rm, n)
		}
		if err == nil {
			err = stage.Swap(rm)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("router not loaded", "version", v, "err", err)
			}
			continue
		}
		log.Info("router reloaded", "version", rm.Version, "k", rm.K(), "ids", rm.IDs, "featurizer_version", rm.FeaturizerVersion, "dim", rm.Model.Dim)
		if err := publishRouter(ctx, cc, rm); err != nil && ctx.Err() == nil {
			log.Warn("router not published", "version", rm.Version, "err", err)
		}
	}
}
