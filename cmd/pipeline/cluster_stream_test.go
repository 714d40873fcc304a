package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// domainCounts reads every docs.domain.<id> topic for ids below maxID and
// counts routed rows per domain; each row must sit on its own domain's
// topic. Messages that are not Arrow records are not counted.
func domainCounts(t *testing.T, ctx context.Context, cc pipeline.ClientConfig, maxID int) (map[int]int, int) {
	t.Helper()
	counts, total := map[int]int{}, 0
	for id := range maxID {
		msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
		if err != nil {
			continue // no such topic (yet)
		}
		for _, m := range msgs {
			recs, err := schemas.DecodeRecords(m.Value, nil)
			if err != nil {
				continue // not a routed record (a test's planted bad message)
			}
			for _, rec := range recs {
				dom := rec.Column(rec.Schema().FieldIndices(schemas.ColDomain)[0]).(*array.Int32)
				for i := range dom.Len() {
					if int(dom.Value(i)) != id {
						t.Fatalf("a row of domain %d on %s", dom.Value(i), m.Topic)
					}
				}
				counts[id] += dom.Len()
				total += dom.Len()
				rec.Release()
			}
		}
	}
	return counts, total
}

// TestClusterStageFitOnStream: with no router anywhere, the routing stage
// fits one on a reservoir sample of the stream (featurized by an embedding
// stage that fitted its own featurizer on the stream), saves it into
// --router with the featurizer the embedding stage shared on router.models,
// routes every document, and then takes a split and a removal mid-stream:
// the new domain receives documents, the removed one none, domain ids stay
// stable and nothing is lost.
func TestClusterStageFitOnStream(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("multi-stage stream test; skipped with -short")
	}
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	dir := t.TempDir()
	state, router := filepath.Join(dir, "state"), filepath.Join(dir, "router")
	mustCLI(t, "ingest", "--brokers", addr, fixture)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(args ...string) bgCommand { return startCommand(ctx, args...) }
	emb := start("embed", "--brokers", addr, "--state", state, "--watch", "50ms", "--linger", "5ms")
	cl := start("cluster", "--brokers", addr, "--router", router, "--k", "4", "--fit-sample", "300", "--fit-wait", "1s",
		"--watch", "50ms", "--linger", "5ms", "--state-interval", "200ms", "--json")
	waitRows := func(want int, what string) map[int]int {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			counts, total := domainCounts(t, ctx, cc, 8)
			if total >= want {
				if total != want {
					t.Fatalf("%s: %d rows routed, want %d: %v", what, total, want, counts)
				}
				return counts
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rows routed, want %d\nembed:\n%s\ncluster:\n%s", what, total, want, emb.stderr.String(), cl.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := waitRows(334, "first pass")
	if len(first) != 4 {
		t.Fatalf("first pass: domains %v, want ids 0..3", first)
	}
	v1, err := cluster.LoadRouter(router, 1)
	if err != nil {
		t.Fatalf("the router fitted on the stream was not saved: %v\ncluster:\n%s", err, cl.stderr.String())
	}
	if v1.K() != 4 || v1.Examples == nil || v1.TopTerms == nil || v1.Featurizer != "tfidf" {
		t.Fatalf("stream-fitted router: k %d, examples %v, top terms %v, featurizer %q", v1.K(), v1.Examples, v1.TopTerms, v1.Featurizer)
	}
	if rm := publishedRouter(t, ctx, cc); rm.Version != 1 {
		t.Fatalf("router.models holds v%d, want v1", rm.Version)
	}

	// Split domain 0 (published on router.models), then more documents.
	r := mustCLI(t, "domains", "split", "--router", router, "--domain", "0", "--in", fixture, "--brokers", addr, "--json")
	var rep domainsEditReport
	decodeOne(t, r.stdout, &rep)
	if rep.Version != 2 || rep.NewDomain == nil || *rep.NewDomain != 4 || !rep.Published {
		t.Fatalf("split report %+v", rep)
	}
	waitLog := func(p bgCommand, s string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(p.stderr.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in stderr:\n%s", s, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(cl, `version=2`)
	mustCLI(t, "ingest", "--brokers", addr, fixture)
	second := waitRows(668, "after the split")
	if second[4] == 0 {
		t.Fatalf("the new domain 4 received nothing: %v", second)
	}

	// Remove domain 1: later documents go elsewhere.
	r = mustCLI(t, "domains", "remove", "--router", router, "--domain", "1", "--brokers", addr, "--json")
	decodeOne(t, r.stdout, &rep)
	if rep.Version != 3 || !rep.Published {
		t.Fatalf("remove report %+v", rep)
	}
	waitLog(cl, `version=3`)
	mustCLI(t, "ingest", "--brokers", addr, fixture)
	third := waitRows(1002, "after the removal")
	if third[1] != second[1] {
		t.Fatalf("removed domain 1 grew from %d to %d", second[1], third[1])
	}

	cancel()
	if res := <-emb.done; res.code != 0 {
		t.Fatalf("embed stage: exit %d: %s", res.code, res.stderr)
	}
	res := <-cl.done
	if res.code != 0 {
		t.Fatalf("cluster stage: exit %d: %s", res.code, res.stderr)
	}
	var srep stageReport
	decodeOne(t, res.stdout, &srep)
	if srep.In != 1002 || srep.Out != 1002 || srep.Dead != 0 {
		t.Fatalf("cluster stage report = %+v", srep)
	}
	// The routed counts were saved on router.models at exit.
	latest, err := routerTopicLatest(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := latest[cluster.RoutingStateKey("cluster")]
	if !ok {
		t.Fatal("no routing state on router.models")
	}
	counts, err := cluster.DecodeRoutingState(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, c := range counts {
		sum += c
	}
	if _, has1 := counts[1]; has1 || len(counts) != 4 || sum < 900 {
		t.Fatalf("saved routing state %v", counts)
	}
}
