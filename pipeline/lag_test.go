package pipeline_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// produceSpread writes per[p] JSON documents to partition p of topic.
func produceSpread(t *testing.T, cc pipeline.ClientConfig, topic string, per []int) {
	t.Helper()
	var msgs []kafka.Message
	for p, n := range per {
		for i := range n {
			m := pipetest.JSONDoc(topic, fmt.Sprintf("p%d-%d", p, i), fmt.Sprintf("document %d of partition %d", i, p))
			m.Partition = p
			msgs = append(msgs, m)
		}
	}
	pipetest.Produce(t, cc, msgs...)
}

// lagsOf maps "topic/partition" to the lag in lags.
func lagsOf(lags []pipeline.PartitionLag) map[string]int64 {
	out := map[string]int64{}
	for _, l := range lags {
		out[l.Partition.String()] = l.Lag
	}
	return out
}

// TestKafkaSourceLags: a group member's lag on each of its partitions is the
// end offset minus the group's next offset to consume: N before anything is
// committed (whatever was fetched), N−M after M are committed, 0 at the end.
func TestKafkaSourceLags(t *testing.T) { forEachBroker(t, testKafkaSourceLags) }

func testKafkaSourceLags(t *testing.T, cc pipeline.ClientConfig) {
	topic, group := uniqueName(t, "lag"), uniqueName(t, "lag.group")
	pipetest.CreateTopics(t, cc, 2, topic)
	per := []int{5, 3}
	produceSpread(t, cc, topic, per)
	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{topic}, GroupID: group})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p0, p1 := topic+"/0", topic+"/1"
	lags := func() map[string]int64 {
		t.Helper()
		l, err := src.Lags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return lagsOf(l)
	}
	// Fetch everything; commit nothing yet.
	byPart := map[int][]kafka.Message{}
	for range per[0] + per[1] {
		m, err := src.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byPart[m.Partition] = append(byPart[m.Partition], m)
	}
	if got, want := lags(), map[string]int64{p0: 5, p1: 3}; !maps.Equal(got, want) {
		t.Fatalf("lags after fetching all, committing none = %v, want %v", got, want)
	}
	// Commit 2 of partition 0 and all of partition 1.
	if err := src.Commit(ctx, byPart[0][1], byPart[1][2]); err != nil {
		t.Fatal(err)
	}
	if got, want := lags(), map[string]int64{p0: 3, p1: 0}; !maps.Equal(got, want) {
		t.Fatalf("lags after committing 2 of 5 and 3 of 3 = %v, want %v", got, want)
	}
	// What Kafka's tools would show: end − committed.
	if got := pipetest.Committed(t, cc, group, topic, 2); got[0] != 2 || got[1] != 3 {
		t.Fatalf("committed %v, want [2 3]", got)
	}
	if err := src.Commit(ctx, byPart[0][4]); err != nil {
		t.Fatal(err)
	}
	if got, want := lags(), map[string]int64{p0: 0, p1: 0}; !maps.Equal(got, want) {
		t.Fatalf("lags after committing everything = %v, want %v", got, want)
	}
	// New input raises the lag of its partition only.
	produceSpread(t, cc, topic, []int{0, 4})
	if got, want := lags(), map[string]int64{p0: 0, p1: 4}; !maps.Equal(got, want) {
		t.Fatalf("lags after 4 more on partition 1 = %v, want %v", got, want)
	}
}

// lagSeries gathers reg's domainflow_consumer_lag series of stage, by
// "topic/partition".
func lagSeries(t *testing.T, reg *prometheus.Registry, stage string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "domainflow_consumer_lag" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["stage"] == stage {
				out[l["topic"]+"/"+l["partition"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestRunnerConsumerLagMetric: the runner publishes
// domainflow_consumer_lag{stage,topic,partition} = end − committed for each
// partition it consumes (N − M after M of N were processed, 0 once all
// were), moves the series with the partitions when another process joins
// the group, and removes them when it stops.
func TestRunnerConsumerLagMetric(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	const in, out, group = "lagm.in", "lagm.out", "lagm"
	pipetest.CreateTopics(t, cc, 2, in, out, pipeline.TopicDeadLetter)
	per := []int{6, 4}
	produceSpread(t, cc, in, per)

	// The stage processes the first batch (one message) and holds the
	// second until release is closed.
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseStage := func() { releaseOnce.Do(func() { close(release) }) }
	var calls atomic.Int64
	stage := pipeline.StageFunc(func(ctx context.Context, rec arrow.Record) (pipeline.Result, error) {
		if calls.Add(1) > 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return pipeline.Result{}, ctx.Err()
			}
		}
		return pipeline.Identity.Process(ctx, rec)
	})
	start := func(name string, reg *prometheus.Registry, st pipeline.Stage) (stop func()) {
		src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{in}, GroupID: group})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
		if err != nil {
			t.Fatal(err)
		}
		r := newRunner(t, pipeline.RunnerConfig{Name: name, Stage: st, Source: src, Sink: sink, OutputTopic: out,
			BatchMaxRecords: 1, Metrics: pipeline.NewMetrics(reg), LagInterval: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			sink.Close()
			src.Close()
		}
	}
	regA := prometheus.NewRegistry()
	stopA := start("a", regA, stage)
	stoppedA := false
	defer func() {
		if !stoppedA {
			releaseStage()
			stopA()
		}
	}()

	// One message processed and committed: its partition's lag is one
	// less; the other's is all of it.
	pipetest.Eventually(t, 30*time.Second, "the first message committed", func() bool {
		c := pipetest.Committed(t, cc, group, in, 2)
		return max(c[0], 0)+max(c[1], 0) == 1
	})
	c := pipetest.Committed(t, cc, group, in, 2)
	want := map[string]float64{}
	for p, n := range per {
		want[in+"/"+strconv.Itoa(p)] = float64(n - int(max(c[p], 0)))
	}
	if want[in+"/0"]+want[in+"/1"] != float64(per[0]+per[1]-1) {
		t.Fatalf("committed %v: not one message", c)
	}
	pipetest.Eventually(t, 10*time.Second, "lag N−1 published", func() bool { return maps.Equal(lagSeries(t, regA, "a"), want) })

	releaseStage()
	zero := map[string]float64{in + "/0": 0, in + "/1": 0}
	pipetest.Eventually(t, 30*time.Second, "lag 0 once all is processed", func() bool { return maps.Equal(lagSeries(t, regA, "a"), zero) })

	// A second process of the group takes a partition: each process shows
	// only its own.
	regB := prometheus.NewRegistry()
	stopB := start("b", regB, pipeline.Identity)
	defer stopB()
	pipetest.Eventually(t, 60*time.Second, "the partitions shared by a and b", func() bool {
		a, b := lagSeries(t, regA, "a"), lagSeries(t, regB, "b")
		if len(a) != 1 || len(b) != 1 {
			return false
		}
		maps.Copy(a, b)
		return maps.Equal(a, zero)
	})

	stoppedA = true
	stopA()
	if got := lagSeries(t, regA, "a"); len(got) != 0 {
		t.Fatalf("lag series left after the runner stopped: %v", got)
	}
}
