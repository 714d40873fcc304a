package flow_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/stages/cluster"
)

// TestDomainEditPublish: an edit with a broker that cannot be reached
// saves nothing; a version saved but not on router.models (an earlier edit
// that could not publish it) refuses further edits with ErrUnpublished,
// until PublishRouter publishes it; PublishRouter publishes nothing twice
// and refuses a version older than router.models'.
func TestDomainEditPublish(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	if _, err := tinyRun(out, false); err != nil {
		t.Fatal(err)
	}
	router := out + "/router"
	latest := func() int64 {
		t.Helper()
		v, err := cluster.LatestRouterVersion(router)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	connectTo := func(addr string) func(context.Context) (pipeline.ClientConfig, error) {
		return func(ctx context.Context) (pipeline.ClientConfig, error) {
			cc := pipeline.ClientConfig{Brokers: []string{addr}}
			return cc, pipeline.CheckBrokers(ctx, cc, 2*time.Second)
		}
	}
	log := slog.New(slog.NewTextHandler(&pipetest.LogBuffer{}, nil))

	// The broker is down: nothing is saved.
	_, err := flow.RemoveDomain(ctx, flow.DomainEditConfig{RouterDir: router, Domain: 0, Connect: connectTo(pipetest.ClosedAddr(t)), Logger: log})
	if err == nil {
		t.Fatal("RemoveDomain with an unreachable broker succeeded")
	}
	if v := latest(); v != 1 {
		t.Fatalf("RemoveDomain with an unreachable broker (%v) saved router v%d", err, v)
	}

	b := pipetest.Broker(t)
	connect := connectTo(b.Addr())
	publish := func(v int64) (*flow.Published, error) {
		return flow.PublishRouter(ctx, flow.PublishConfig{RouterDir: router, Version: v, Connect: connect, Logger: log})
	}
	if p, err := publish(0); err != nil || p.Router.Version != 1 || p.Previous != 0 || p.Already {
		t.Fatalf("PublishRouter on an empty router.models = %+v, %v; want v1 published", p, err)
	}
	// An edit saved without publishing (as when the broker was down).
	if _, err := flow.RemoveDomain(ctx, flow.DomainEditConfig{RouterDir: router, Domain: 0, Logger: log}); err != nil {
		t.Fatal(err)
	}
	_, err = flow.RemoveDomain(ctx, flow.DomainEditConfig{RouterDir: router, Domain: 1, Connect: connect, Logger: log})
	if !errors.Is(err, flow.ErrUnpublished) {
		t.Fatalf("an edit over an unpublished v2: %v, want ErrUnpublished", err)
	}
	if v := latest(); v != 2 {
		t.Fatalf("a refused edit left router v%d, want v2", v)
	}
	if p, err := publish(0); err != nil || p.Router.Version != 2 || p.Previous != 1 || p.Already {
		t.Fatalf("PublishRouter = %+v, %v; want v2 published over v1", p, err)
	}
	rt, err := cluster.NewRouterTopic(pipeline.ClientConfig{Brokers: []string{b.Addr()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rm, err := rt.LatestRouter(ctx); err != nil || rm == nil || rm.Version != 2 {
		t.Fatalf("router.models after PublishRouter: %v, %v; want v2", rm, err)
	}
	if p, err := publish(0); err != nil || !p.Already {
		t.Fatalf("PublishRouter of the version router.models holds = %+v, %v; want Already", p, err)
	}
	if _, err := publish(1); err == nil {
		t.Fatal("PublishRouter of v1 over v2 succeeded")
	}
}
