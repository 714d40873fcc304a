package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/cluster"
)

// testRouterModel is a router of version v whose domains are ids.
func testRouterModel(v int64, ids ...int) *cluster.RouterModel {
	k := len(ids)
	md := &cluster.Model{K: k, Dim: 2, Centroids: make([]float32, 2*k), Sizes: make([]int, k)}
	next := 0
	for j, id := range ids {
		md.Centroids[2*j] = 1
		md.Sizes[j] = 1
		next = max(next, id+1)
	}
	return &cluster.RouterModel{Version: v, FeaturizerVersion: 1, Featurizer: "tfidf", IDs: ids, Model: md, NextID: next,
		Fit: cluster.FitConfig{K: k}}
}

// ignoredWarnings counts the log lines that say topic is ignored.
func ignoredWarnings(log, topic string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "topic ignored") && slices.Contains(strings.Fields(l), "topic="+topic) {
			n++
		}
	}
	return n
}

// TestDomainsAreTheRouters: `train --domain all` and `archive --domain all`
// take only the domains of the routers on router.models. Topics named like
// domains that no router has (docs.domain.007 is not domain 7, nor is
// docs.domain.-1 a domain; docs.domain.9 is no router's) are ignored with a
// warning, and a domain a later router version adds (a split) is picked up.
func TestDomainsAreTheRouters(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	ctx := context.Background()
	var specs []pipeline.TopicSpec
	for _, name := range []string{"docs.domain.0", "docs.domain.1", "docs.domain.2", "docs.domain.007", "docs.domain.-1", "docs.domain.9"} {
		specs = append(specs, pipeline.TopicSpec{Name: name, Partitions: 1})
	}
	if err := pipeline.EnsureTopics(ctx, cc, specs...); err != nil {
		t.Fatal(err)
	}
	archived := func(want ...int) {
		t.Helper()
		r := mustCLI(t, "archive", "--brokers", addr, "--out", t.TempDir(), "--exit-on-idle", "100ms", "--json")
		var rep struct{ Domains []archiveReport }
		decodeOne(t, r.stdout, &rep)
		var got []int
		for _, d := range rep.Domains {
			got = append(got, d.Domain)
		}
		if !slices.Equal(got, want) {
			t.Errorf("archive --domain all archived domains %v, want %v", got, want)
		}
		for _, topic := range []string{"docs.domain.007", "docs.domain.-1", "docs.domain.9"} {
			if n := ignoredWarnings(r.stderr, topic); n != 1 {
				t.Errorf("%d warnings about %s, want 1: %s", n, topic, r.stderr)
			}
		}
	}

	if r := cli(t, "archive", "--brokers", addr, "--out", t.TempDir(), "--exit-on-idle", "100ms"); r.code != 1 || !strings.Contains(r.stderr, "holds no router") {
		t.Errorf("archive --domain all without a router: exit %d, %s", r.code, r.stderr)
	}
	if err := publishRouter(ctx, cc, testRouterModel(1, 0, 1)); err != nil {
		t.Fatal(err)
	}
	archived(0, 1)
	if err := publishRouter(ctx, cc, testRouterModel(2, 0, 1, 2)); err != nil { // domain 1 split: 2 is new
		t.Fatal(err)
	}
	archived(0, 1, 2)

	r := mustCLI(t, "train", "--brokers", addr, "--domain", "all", "--out", t.TempDir(), "--expert", "tiny", "--threads", "1",
		"--exit-on-idle", "100ms", "--json")
	var rep struct{ Experts []expertReport }
	decodeOne(t, r.stdout, &rep)
	var got []string
	for _, e := range rep.Experts {
		got = append(got, e.Expert)
	}
	if want := []string{"0", "1", "2"}; !slices.Equal(got, want) {
		t.Errorf("train --domain all trained experts %v, want %v\n%s", got, want, r.stderr)
	}
	for _, topic := range []string{"docs.domain.007", "docs.domain.-1", "docs.domain.9"} {
		if n := ignoredWarnings(r.stderr, topic); n != 1 {
			t.Errorf("train: %d warnings about %s, want 1: %s", n, topic, r.stderr)
		}
	}
}
