package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// routedFixture ingests the fixture on a fresh broker, fits a 4-domain
// router into out/router and runs the embedding and routing stages until
// every document is on its domain topic.
func routedFixture(t *testing.T, out string, before func(pipeline.ClientConfig)) (string, pipeline.ClientConfig) {
	t.Helper()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	router := filepath.Join(out, "router")
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "4", "--out", router, "--seed", "1")
	mustCLI(t, "ingest", "--brokers", addr, fixture)
	if before != nil {
		before(cc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 2)
	for _, args := range [][]string{
		{"embed", "--brokers", addr, "--state", router, "--linger", "5ms"},
		{"cluster", "--brokers", addr, "--router", router, "--linger", "5ms"},
	} {
		go func() { done <- run(ctx, args, strings.NewReader(""), &pipetest.LogBuffer{}, &pipetest.LogBuffer{}) }()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, total := domainCounts(t, ctx, cc, 4); total == 334 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixture was not routed within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
	return addr, cc
}

// TestTrainEvalArchive runs the training side on routed documents: a dense
// seed on docs.raw, experts branched from it per domain (a bad message on a
// domain topic is dead-lettered and training goes on), `experts list`,
// `eval` with router mixtures, `experts merge` and `remove`, and the archive
// sink.
func TestTrainEvalArchive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("trains several models; skipped with -short")
	}
	out := t.TempDir()
	// A message no stage wrote, first on domain 2's partition 0.
	addr, cc := routedFixture(t, out, func(cc pipeline.ClientConfig) {
		n, err := pipeline.PartitionCount(context.Background(), cc, pipeline.TopicRaw)
		if err != nil {
			t.Fatal(err)
		}
		if err := pipeline.EnsureTopics(context.Background(), cc, pipeline.TopicSpec{Name: pipeline.DomainTopic(2), Partitions: n}); err != nil {
			t.Fatal(err)
		}
		sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		err = sink.Write(context.Background(), kafka.Message{Topic: pipeline.DomainTopic(2), Partition: 0, Value: []byte("\x00garbage"), Headers: []kafka.Header{
			{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}, {Key: schemas.HeaderSchemaVersion, Value: []byte("1")}}})
		if err != nil {
			t.Fatal(err)
		}
	})

	common := []string{"--brokers", addr, "--out", out, "--expert", "tiny", "--exit-on-idle", "1s", "--threads", "1", "--json"}
	r := mustCLI(t, append([]string{"train", "--topic", pipeline.TopicRaw, "--name", "dense", "--tokens", "30000"}, common...)...)
	var dense struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &dense)
	if len(dense.Experts) != 1 || dense.Experts[0].Step < 29 || dense.Experts[0].Loss <= 0 {
		t.Fatalf("dense seed: %+v", dense)
	}
	checkMonitorGroup(t, cc, out, "dense", pipeline.TopicRaw)
	r = mustCLI(t, append([]string{"train", "--domain", "all", "--init", filepath.Join(out, "experts", "dense"), "--tokens", "20000"}, common...)...)
	var experts struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &experts)
	if len(experts.Experts) != 4 {
		t.Fatalf("domain experts: %+v", experts)
	}
	for _, e := range experts.Experts {
		if e.Init != dense.Experts[0].ParamsSHA256 || e.Step < 19 || e.RouterVersion != 1 || e.Docs == 0 {
			t.Fatalf("expert %+v: not branched from the seed, or not trained", e)
		}
	}
	checkMonitorGroup(t, cc, out, "0", pipeline.DomainTopic(0))
	dl, err := pipeline.ReadTopic(context.Background(), cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range dl {
		if pipeline.HeaderValue(m, pipeline.HeaderStage) == "train" && pipeline.HeaderValue(m, pipeline.HeaderOriginTopic) == pipeline.DomainTopic(2) && pipeline.HeaderValue(m, pipeline.HeaderReason) != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the bad message was not dead-lettered by train (%d dead letters)", len(dl))
	}

	// A rerun with nothing new applies nothing twice.
	r = mustCLI(t, append([]string{"train", "--domain", "0", "--tokens", "20000"}, common...)...)
	var again struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &again)
	if again.Experts[0].ParamsSHA256 != experts.Experts[0].ParamsSHA256 {
		t.Fatal("a rerun changed expert 0")
	}
	if e := again.Experts[0]; e.Stop != train.StopBudget || e.TokensAtStart != e.Tokens {
		t.Errorf("rerun of expert 0: stop %q, %d bytes at start of %d; want the budget, all of them", e.Stop, e.TokensAtStart, e.Tokens)
	}
	// The text output says bytes: the experts are byte-level.
	text := common[:len(common)-1] // no --json
	r = mustCLI(t, append([]string{"train", "--domain", "0", "--tokens", "20000"}, text...)...)
	if !regexp.MustCompile(`(?m)^train: expert 0: step \d+, [0-9.]+ kB trained, \d+ documents applied, loss [^\n]*$`).MatchString(r.stderr) || strings.Contains(r.stderr, " tokens,") {
		t.Errorf("train's stop line does not give the training bytes: %q", r.stderr)
	}
	r = mustCLI(t, "experts", "list", "--out", out)
	if !strings.Contains(r.stdout, "TRAIN BYTES") || strings.Contains(strings.ToLower(r.stdout), "tokens") {
		t.Errorf("experts list does not give training bytes:\n%s", r.stdout)
	}

	r = mustCLI(t, "experts", "list", "--out", out, "--json")
	var list struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &list)
	if len(list.Experts) != 5 || list.Experts[4].Expert != "dense" {
		t.Fatalf("experts list: %+v", list)
	}

	r = mustCLI(t, "eval", "--out", out, "--in", fixture, "--max-docs", "20", "--max-doc-bytes", "600", "--json")
	var ev evalReport
	decodeOne(t, r.stdout, &ev)
	if ev.Docs != 20 || ev.DenseBPB == nil || len(ev.ExpertBPB) != 5 || len(ev.MixtureBPB) != 3 {
		t.Fatalf("eval: %+v", ev)
	}
	for name, v := range ev.MixtureBPB {
		if v <= 0 || v > 8 {
			t.Fatalf("mixture %s: %v bits per byte", name, v)
		}
	}
	// Top-k runs k experts per chunk, all-k every domain expert; the first
	// chunk of each document has no text to route on and mixes all four.
	F := int64(ev.Docs)
	R := ev.ChunkForwards["all"]/4 - F
	if R <= 0 || ev.ChunkForwards["top1"] != 4*F+R || ev.ChunkForwards["top2"] != 4*F+2*R {
		t.Fatalf("chunk forwards %v", ev.ChunkForwards)
	}

	r = mustCLI(t, "experts", "merge", "--out", out, "--name", "m01", "--experts", "0,1", "--json")
	var m expertReport
	decodeOne(t, r.stdout, &m)
	c0, _, _ := train.LoadLatestCheckpoint(train.ExpertDir(out, "0"))
	c1, _, _ := train.LoadLatestCheckpoint(train.ExpertDir(out, "1"))
	cm, _, _ := train.LoadLatestCheckpoint(train.ExpertDir(out, "m01"))
	for i := range 10 {
		want := (c0.Model.Params[i] + c1.Model.Params[i]) / 2
		if d := cm.Model.Params[i] - want; d > 1e-6 || d < -1e-6 {
			t.Fatalf("merged param %d = %v, want %v", i, cm.Model.Params[i], want)
		}
	}
	mustCLI(t, "experts", "remove", "--out", out, "--name", "m01")
	if _, err := os.Stat(train.ExpertDir(out, "m01")); !os.IsNotExist(err) {
		t.Fatal("removed expert still listed")
	}

	r = mustCLI(t, "archive", "--brokers", addr, "--out", out, "--exit-on-idle", "1s", "--shard-messages", "1", "--json")
	var arch struct{ Domains []archiveReport }
	decodeOne(t, r.stdout, &arch)
	total := int64(0)
	for _, d := range arch.Domains {
		total += d.Docs
	}
	if len(arch.Domains) != 4 || total != 334 {
		t.Fatalf("archive: %+v", arch)
	}
	// The shards replay as input; a rerun archives nothing twice.
	shards, _ := filepath.Glob(filepath.Join(out, "archive", "*", "*.parquet"))
	r = mustCLI(t, append([]string{"inspect"}, shards[0])...)
	if !strings.Contains(r.stdout, `"text"`) {
		t.Fatalf("inspect %s: %s", shards[0], r.stdout)
	}
	r = mustCLI(t, "archive", "--brokers", addr, "--out", out, "--exit-on-idle", "1s", "--json")
	decodeOne(t, r.stdout, &arch)
	for _, d := range arch.Domains {
		if d.Docs != 0 || d.Shards != 0 {
			t.Fatalf("archive rerun: %+v", arch)
		}
	}
}

func TestTrainUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"train", "--domain", "all"},
		{"train", "--out", "x"},
		{"train", "--out", "x", "--domain", "all", "--topic", "t"},
		{"train", "--out", "x", "--domain", "a"},
		{"train", "--out", "x", "--domain", "1", "--expert", "huge"},
		{"train", "--out", "x", "--domain", "1", "--backend", "gpu9"},
		{"train", "--out", "x", "--domain", "1", "--skip-seen"},
		{"eval", "--out", "x"},
		{"eval", "--out", "x", "--in", "y", "--topk", "0"},
		{"experts", "merge", "--out", "x", "--name", "m", "--experts", "0"},
		{"archive"},
	} {
		if r := cli(t, args...); r.code != 2 {
			t.Errorf("pipeline %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// checkMonitorGroup checks that consumer group train.<expert> holds the
// input positions of the expert's newest checkpoint (--monitor-group's
// default).
func checkMonitorGroup(t *testing.T, cc pipeline.ClientConfig, out, expert, topic string) {
	t.Helper()
	ck, _, err := train.LoadLatestCheckpoint(train.ExpertDir(out, expert))
	if err != nil || ck == nil {
		t.Fatalf("checkpoint of expert %s: %v", expert, err)
	}
	n, err := pipeline.PartitionCount(context.Background(), cc, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int64, n)
	for p := range want {
		want[p] = -1
		if off, ok := ck.Meta.Offsets[topic+"/"+strconv.Itoa(p)]; ok {
			want[p] = off
		}
	}
	if got := pipetest.Committed(t, cc, "train."+expert, topic, n); !slices.Equal(got, want) {
		t.Fatalf("group train.%s committed %v on %s, the checkpoint holds %v", expert, got, topic, want)
	}
}

// TestTrainStopLine: the stop line says the bytes trained and the documents
// applied, and, when the expert stopped short of its budget, why, and what
// the packer holds untrained.
func TestTrainStopLine(t *testing.T) {
	r := expertReport{Expert: "0", Step: 138, Tokens: 141312, Docs: 38, Loss: 3.0351, Checkpoint: "out/experts/0/step-000138.arrow"}
	head := "train: expert 0: step 138, 141.3 kB trained, 38 documents applied, loss 3.035 → out/experts/0/step-000138.arrow\n"
	for _, tc := range []struct {
		name    string
		stop    string
		pending int64
		budget  int64
		want    string
	}{
		{"budget reached", train.StopBudget, 500, 141312, head},
		{"idle, no budget, nothing pending", train.StopIdle, 0, 0, head + "  stopped: no input for 10s (--exit-on-idle)\n"},
		{"idle below the budget, bytes in the packer", train.StopIdle, 99500, 500000, head +
			"  stopped: no input for 10s (--exit-on-idle); below the budget (--tokens 500.0 kB); 99.5 kB applied are not trained yet: " +
			"the packer holds them until each of its lanes has a full window (a long document fills one lane while the others wait), and trains them when more input comes\n"},
		{"interrupted", train.StopInterrupted, 0, 500000, head + "  stopped: interrupted; below the budget (--tokens 500.0 kB)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := r
			r.Stop, r.Pending = tc.stop, tc.pending
			if got := trainStopLine(r, tc.budget, 10*time.Second); got != tc.want {
				t.Errorf("trainStopLine = %q\nwant            %q", got, tc.want)
			}
		})
	}
}
