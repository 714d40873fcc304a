package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/flow"
	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
)

// topicCorpus writes the topic documents as JSON lines, each with its
// topic in "source" (and, for the cats, a numeric "n"), and returns the
// path.
func topicCorpus(dir string) (string, error) {
	var b strings.Builder
	for _, t := range []string{"cats", "markets"} {
		for i, d := range topics[t] {
			doc := map[string]any{"id": fmt.Sprintf("%s-%d", t, i), "text": d, "source": t}
			if t == "cats" {
				doc["n"] = i % 2
			}
			line, _ := json.Marshal(doc)
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	path := filepath.Join(dir, "topics.jsonl")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// topicRouter fits a tf-idf router of two domains on the topic documents
// into dir/router, as `pipeline cluster fit --k 2` does.
func topicRouter(ctx context.Context, dir, corpus string) (string, error) {
	out := filepath.Join(dir, "router")
	dr := schemas.NewDocReader([]string{corpus}, schemas.Limits{}, nil, nil)
	defer dr.Close()
	_, err := flow.FitRouter(ctx, flow.FitRouterConfig{Out: out, K: 2, Read: dr.Next, IDs: dr.IDs,
		Cluster: cluster.FitConfig{Seed: 1, Workers: 1}, Logger: slog.New(slog.DiscardHandler)})
	return out, err
}

// Fit a router of two domains on documents about cats and markets, route
// the documents with it (each to its nearest centroid) and score the
// domains against their source field.
func ExampleRouteFiles() {
	dir, err := os.MkdirTemp("", "route-files")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	corpus, err := topicCorpus(dir)
	if err != nil {
		panic(err)
	}
	router, err := topicRouter(ctx, dir, corpus)
	if err != nil {
		panic(err)
	}
	r, err := flow.RouteFiles(ctx, flow.RouteFilesConfig{RouterDir: router, Inputs: []string{corpus}, Unbalanced: true, KeepMeta: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(r.IDs), "documents routed to domains", r.Router.SortedIDs())
	ev, err := flow.EvalRouting(r, []string{"source"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("sizes %v, NMI %.2f, purity %.2f\n", ev.Sizes, ev.NMI["source"], ev.Purity["source"])
	// Output:
	// 12 documents routed to domains [0 1]
	// sizes [6 6], NMI 1.00, purity 1.00
}

func TestRouteFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	corpus, err := topicCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	router, err := topicRouter(ctx, dir, corpus)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin := `{"id":"s","text":"the kitten purred at the cat"}` + "\n"
	tests := []struct {
		name       string
		cfg        flow.RouteFilesConfig
		wantIDs    int
		wantMetas  int
		wantErr    string
		sameDomain [][2]string // pairs of ids routed together
	}{
		{name: "balanced", cfg: flow.RouteFilesConfig{Inputs: []string{corpus}}, wantIDs: 12,
			sameDomain: [][2]string{{"cats-0", "cats-5"}, {"markets-0", "markets-5"}}},
		{name: "nearest, with metas and stdin", cfg: flow.RouteFilesConfig{Inputs: []string{corpus, "-"}, Unbalanced: true, KeepMeta: true,
			Stdin: strings.NewReader(stdin)}, wantIDs: 13, wantMetas: 13, sameDomain: [][2]string{{"cats-1", "s"}}},
		{name: "no documents", cfg: flow.RouteFilesConfig{Inputs: []string{empty}}, wantErr: "no documents in [" + empty + "]"},
		{name: "missing input", cfg: flow.RouteFilesConfig{Inputs: []string{filepath.Join(dir, "nope")}}, wantErr: "open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{name: "no router", cfg: flow.RouteFilesConfig{RouterDir: dir, Inputs: []string{corpus}}, wantErr: "cluster: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.RouterDir == "" {
				tt.cfg.RouterDir = router
			}
			r, err := flow.RouteFiles(ctx, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("RouteFiles: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.IDs) != tt.wantIDs || len(r.Domains) != tt.wantIDs || len(r.Distances) != tt.wantIDs || len(r.Metas) != tt.wantMetas {
				t.Fatalf("%d ids, %d domains, %d distances, %d metas; want %d, %d, %d, %d",
					len(r.IDs), len(r.Domains), len(r.Distances), len(r.Metas), tt.wantIDs, tt.wantIDs, tt.wantIDs, tt.wantMetas)
			}
			if len(r.Novel) != tt.wantIDs || len(r.Nearest) != tt.wantIDs || len(r.NearestDistances) != tt.wantIDs {
				t.Fatalf("%d novel flags, %d nearest, %d nearest distances; want %d each", len(r.Novel), len(r.Nearest), len(r.NearestDistances), tt.wantIDs)
			}
			for i := range r.IDs {
				if r.NearestDistances[i] > r.Distances[i] || (tt.cfg.Unbalanced && r.Nearest[i] != r.Domains[i]) {
					t.Fatalf("%s: nearest %d at %v, routed to %d at %v", r.IDs[i], r.Nearest[i], r.NearestDistances[i], r.Domains[i], r.Distances[i])
				}
			}
			if r.Balanced == tt.cfg.Unbalanced || r.Router.Version != 1 {
				t.Errorf("Balanced %v, router v%d; want %v, v1", r.Balanced, r.Router.Version, !tt.cfg.Unbalanced)
			}
			domain := map[string]int{}
			for i, id := range r.IDs {
				domain[id] = r.Domains[i]
			}
			for _, p := range tt.sameDomain {
				if domain[p[0]] != domain[p[1]] {
					t.Errorf("%s went to domain %d, %s to %d", p[0], domain[p[0]], p[1], domain[p[1]])
				}
			}
			if domain["cats-0"] == domain["markets-0"] {
				t.Errorf("cats and markets both in domain %d", domain["cats-0"])
			}
		})
	}
}

func TestEvalRouting(t *testing.T) {
	rm := &cluster.RouterModel{Version: 3, IDs: []int{7, 2}, Model: &cluster.Model{K: 2, Dim: 1, Centroids: []float32{0, 1}, Sizes: []int{1, 1}}}
	metas := func(ms ...string) []json.RawMessage {
		var out []json.RawMessage
		for _, m := range ms {
			out = append(out, json.RawMessage(m))
		}
		return out
	}
	tests := []struct {
		name    string
		r       *flow.Routed
		fields  []string
		want    flow.RoutingEval
		wantErr string
	}{
		{
			name: "perfect",
			r: &flow.Routed{Domains: []int{7, 7, 2, 2}, Distances: []float32{1, 2, 3, 4}, Router: rm, Balanced: true,
				Metas: metas(`{"source":"a"}`, `{"source":"a"}`, `{"source":"b"}`, `{"source":"b"}`)},
			fields: []string{"source"},
			want: flow.RoutingEval{Docs: 4, K: 2, RouterVersion: 3, Balanced: true, NMI: map[string]float64{"source": 1},
				ARI: map[string]float64{"source": 1}, Purity: map[string]float64{"source": 1}, Sizes: []int{2, 2},
				BalanceMaxMin: 1, BalanceMaxMean: 1, MeanDistance: 2.5},
		},
		{
			name: "numbers, missing fields and bad metadata",
			r: &flow.Routed{Domains: []int{7, 7, 7, 2}, Distances: []float32{1, 1, 1, 1}, Router: rm,
				Metas: metas(`{"label":1}`, `{"label":"1"}`, `not json`, `{}`)},
			fields: []string{"label"},
			// One label (1 and "1" read the same), one domain: a perfect score.
			want: flow.RoutingEval{Docs: 4, K: 2, RouterVersion: 3, NMI: map[string]float64{"label": 1},
				ARI: map[string]float64{"label": 1}, Purity: map[string]float64{"label": 1}, Sizes: []int{1, 3},
				BalanceMaxMin: 3, BalanceMaxMean: 1.5, MeanDistance: 1},
		},
		{
			name:    "no such field",
			r:       &flow.Routed{Domains: []int{7}, Distances: []float32{1}, Router: rm, Metas: metas(`{"source":"a"}`)},
			fields:  []string{"source", "label"},
			wantErr: `no document has a "label" field`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := flow.EvalRouting(tt.r, tt.fields)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("EvalRouting: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("EvalRouting = %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestEditDomains(t *testing.T) {
	ctx := context.Background()
	corpusDir := t.TempDir()
	corpus, err := topicCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(corpusDir, "one.jsonl")
	if err := os.WriteFile(one, []byte(`{"id":"x","text":"the cat sat on the mat"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	connectErr := errors.New("no broker")
	tests := []struct {
		name    string
		split   bool
		cfg     flow.DomainEditConfig
		wantIDs int // domains of the new version
		wantNew int
		wantErr string
	}{
		{name: "remove", cfg: flow.DomainEditConfig{Domain: 0}, wantIDs: 1, wantNew: -1},
		{name: "split", split: true, cfg: flow.DomainEditConfig{Domain: 1, Inputs: []string{corpus}, Seed: 1}, wantIDs: 3, wantNew: 2},
		{name: "remove unknown", cfg: flow.DomainEditConfig{Domain: 9}, wantErr: "cluster: remove domain: no domain 9"},
		{name: "split unknown", split: true, cfg: flow.DomainEditConfig{Domain: 9, Inputs: []string{corpus}}, wantErr: "no domain 9 (have [0 1])"},
		{name: "split too few", split: true, cfg: flow.DomainEditConfig{Domain: 0, Inputs: []string{one}},
			wantErr: "of the 1 documents of [" + one + "] are nearest domain 0: need at least 2 to split it"},
		// The broker is reached first: without it nothing is saved.
		{name: "no broker, not saved", cfg: flow.DomainEditConfig{Domain: 1,
			Connect: func(context.Context) (pipeline.ClientConfig, error) { return pipeline.ClientConfig{}, connectErr }},
			wantErr: "no broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			router, err := topicRouter(ctx, t.TempDir(), corpus)
			if err != nil {
				t.Fatal(err)
			}
			tt.cfg.RouterDir = router
			edit := flow.RemoveDomain
			if tt.split {
				edit = flow.SplitDomain
			}
			res, err := edit(ctx, tt.cfg)
			latest, lerr := cluster.LatestRouterVersion(router)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("edit: %v, want %q", err, tt.wantErr)
				}
				if latest != 1 {
					t.Errorf("latest router v%d after a failed edit, want v1", latest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Previous.Version != 1 || res.Router.Version != 2 || latest != 2 || res.Published {
				t.Errorf("v%d → v%d (latest v%d), published %v; want v1 → v2, not published", res.Previous.Version, res.Router.Version, latest, res.Published)
			}
			if res.Router.K() != tt.wantIDs || res.NewDomain != tt.wantNew {
				t.Errorf("ids %v, new domain %d; want %d domains, new %d", res.Router.IDs, res.NewDomain, tt.wantIDs, tt.wantNew)
			}
			if tt.split {
				j, _ := res.Router.Index(tt.wantNew)
				if len(res.Router.TopTerms[j]) == 0 || len(res.Router.Examples[j]) == 0 {
					t.Errorf("new domain: top terms %q, examples %q", res.Router.TopTerms[j], res.Router.Examples[j])
				}
			}
			saved, err := cluster.LoadRouter(router, 0)
			if err != nil || fmt.Sprint(saved.IDs) != fmt.Sprint(res.Router.IDs) {
				t.Errorf("saved router: ids %v, %v; want %v", saved.IDs, err, res.Router.IDs)
			}
		})
	}
}

// Split a domain of a router in two over the documents routed to it, then
// remove the other domain: each edit saves a new router version.
func ExampleSplitDomain() {
	dir, err := os.MkdirTemp("", "split-domain")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	corpus, err := topicCorpus(dir)
	if err != nil {
		panic(err)
	}
	router, err := topicRouter(ctx, dir, corpus)
	if err != nil {
		panic(err)
	}
	split, err := flow.SplitDomain(ctx, flow.DomainEditConfig{RouterDir: router, Domain: 1, Inputs: []string{corpus}, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("split 1: v%d → v%d, new domain %d, ids %v\n", split.Previous.Version, split.Router.Version, split.NewDomain, split.Router.IDs)
	removed, err := flow.RemoveDomain(ctx, flow.DomainEditConfig{RouterDir: router, Domain: 0})
	if err != nil {
		panic(err)
	}
	fmt.Printf("remove 0: v%d → v%d, ids %v\n", removed.Previous.Version, removed.Router.Version, removed.Router.IDs)
	// Output:
	// split 1: v1 → v2, new domain 2, ids [0 1 2]
	// remove 0: v2 → v3, ids [1 2]
}

// TestFitRouterOrigins: a first fit makes every domain a fit of version 1;
// a refit into the same dir keeps the origin of every id it keeps.
func TestFitRouterOrigins(t *testing.T) {
	dir := t.TempDir()
	corpus, err := topicCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := topicRouter(context.Background(), dir, corpus)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topicRouter(context.Background(), dir, corpus); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 2; v++ {
		rm, err := cluster.LoadRouter(out, v)
		if err != nil {
			t.Fatal(err)
		}
		for j, o := range rm.Origins {
			if o != (cluster.DomainOrigin{How: cluster.OriginFit, Version: 1}) {
				t.Errorf("router v%d, domain %d: origin %+v, want fit v1", v, rm.IDs[j], o)
			}
		}
		if len(rm.Origins) != rm.K() {
			t.Errorf("router v%d: %d origins for %d domains", v, len(rm.Origins), rm.K())
		}
	}
}
