package main

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// TestClusterStage runs `pipeline embed` and `pipeline cluster` on Kafka
// together with a router fitted offline: every document of the fixture lands
// exactly once on its domain's topic, the router is published on
// router.models, and a refit saved into the router dir is picked up.
func TestClusterStage(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	router := filepath.Join(t.TempDir(), "router")
	const k = 4
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "4", "--out", router, "--seed", "1")
	mustCLI(t, "ingest", "--brokers", addr, fixture)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(args ...string) bgCommand { return startCommand(ctx, args...) }
	emb := start("embed", "--brokers", addr, "--state", router, "--watch", "50ms", "--linger", "5ms")
	cl := start("cluster", "--brokers", addr, "--router", router, "--watch", "50ms", "--linger", "5ms", "--json")

	// routedDocs counts each document id over the domain topics.
	routedDocs := func() (map[string]int, int) {
		ids, rows := map[string]int{}, 0
		for id := range k {
			msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
			if err != nil {
				return nil, 0
			}
			for _, m := range msgs {
				recs, err := schemas.DecodeRecords(m.Value, nil)
				if err != nil {
					t.Fatalf("%s: %v", m.Topic, err)
				}
				for _, rec := range recs {
					docs, err := schemas.Documents(rec)
					if err != nil {
						t.Fatal(err)
					}
					dom := rec.Column(rec.Schema().FieldIndices(schemas.ColDomain)[0]).(*array.Int32)
					for i := range docs.Len() {
						if int(dom.Value(i)) != id {
							t.Fatalf("document %s of domain %d on %s", docs.ID(i), dom.Value(i), m.Topic)
						}
						ids[docs.ID(i)]++
						rows++
					}
					rec.Release()
				}
			}
		}
		return ids, rows
	}
	var (
		ids  map[string]int
		rows int
	)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids, rows = routedDocs()
		if rows >= 334 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the domain topics hold %d rows, want 334\nembed:\n%s\ncluster:\n%s", rows, emb.stderr.String(), cl.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows != 334 || len(ids) != 334 {
		t.Fatalf("%d rows of %d distinct documents routed, want 334 each", rows, len(ids))
	}

	// router.models holds the router in use.
	latestPublished := func() *cluster.RouterModel {
		return publishedRouter(t, ctx, cc)
	}
	v1, err := cluster.LoadRouter(router, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rm := latestPublished(); rm.Version != 1 || !slices.Equal(rm.IDs, v1.IDs) {
		t.Fatalf("router.models holds v%d with ids %v, want v1 with %v", rm.Version, rm.IDs, v1.IDs)
	}

	// A refit into the same dir is version 2 with the same ids; the stage
	// reloads and republishes it.
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "4", "--out", router, "--seed", "1")
	v2, err := cluster.LoadRouter(router, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := slices.Sorted(slices.Values(v1.IDs)), slices.Sorted(slices.Values(v2.IDs))
	if !slices.Equal(a, b) {
		t.Fatalf("refit ids %v, first fit %v", b, a)
	}
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(cl.stderr.String(), "router reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the stage did not reload router v2; stderr:\n%s", cl.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for latestPublished().Version != 2 {
		if time.Now().After(deadline) {
			t.Fatal("router v2 was not published on router.models")
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	if res := <-emb.done; res.code != 0 {
		t.Fatalf("embed stage: exit %d: %s", res.code, res.stderr)
	}
	res := <-cl.done
	if res.code != 0 {
		t.Fatalf("cluster stage: exit %d: %s", res.code, res.stderr)
	}
	var rep stageReport
	decodeOne(t, res.stdout, &rep)
	if rep.In != 334 || rep.Out != 334 || rep.Dead != 0 {
		t.Fatalf("cluster stage report = %+v", rep)
	}
}

// bgCommand is a command running in the background of a test.
type bgCommand struct {
	done           chan result
	stdout, stderr *pipetest.LogBuffer
}

// startCommand runs args in process in the background until ctx ends.
func startCommand(ctx context.Context, args ...string) bgCommand {
	r := bgCommand{done: make(chan result, 1), stdout: &pipetest.LogBuffer{}, stderr: &pipetest.LogBuffer{}}
	go func() {
		code := run(ctx, args, strings.NewReader(""), r.stdout, r.stderr)
		r.done <- result{code: code, stdout: r.stdout.String(), stderr: r.stderr.String()}
	}()
	return r
}

// publishedRouter is the last router on router.models.
func publishedRouter(t *testing.T, ctx context.Context, cc pipeline.ClientConfig) *cluster.RouterModel {
	t.Helper()
	latest, err := routerTopicLatest(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := latest[cluster.RouterKey]
	if !ok {
		t.Fatalf("router.models holds no router (keys %v)", slices.Collect(maps.Keys(latest)))
	}
	rm, err := cluster.DecodeRouter(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	return rm
}

// publishRouter publishes rm on router.models.
func publishRouter(ctx context.Context, cc pipeline.ClientConfig, rm *cluster.RouterModel) error {
	rt, err := cluster.NewRouterTopic(cc, nil)
	if err != nil {
		return err
	}
	defer rt.Close()
	return rt.PublishRouter(ctx, rm)
}

// TestClusterStageUsage: without a subcommand `cluster` is the stage, on
// the brokers of $DOMAINFLOW_BROKERS when --brokers is not given: it fails
// (exit 1, with a hint at the subcommands) when nothing answers there,
// instead of printing its help and exiting 0; bad fit flags are usage
// errors.
func TestClusterStageUsage(t *testing.T) {
	t.Setenv(envBrokers, pipetest.ClosedAddr(t))
	if r := cli(t, "cluster"); r.code != 1 || strings.Contains(r.stdout, "Available Commands") || !strings.Contains(r.stderr, "'pipeline cluster --help' lists fit, assign and eval") {
		t.Errorf("pipeline cluster (nothing listening): exit %d, stdout %q, stderr %q; want 1 and the hint", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"--k", "0"},
		{"--fit-sample", "2", "--k", "4"},
		{"--watch", "0s"},
	} {
		r := cli(t, append([]string{"cluster", "--brokers", "127.0.0.1:1"}, args...)...)
		if r.code != 2 {
			t.Errorf("pipeline cluster --brokers … %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := cli(t, "cluster", "bogus"); r.code != 2 {
		t.Errorf("pipeline cluster bogus: exit %d", r.code)
	}
}
