package report_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/domainflow/domainflow/report"
)

// Example reports on a run dir that holds only a run summary and a routing
// history: the figures those inputs allow are drawn, and the inputs that are
// not there are named.
func Example() {
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	summary := `{"docs_in": 10, "docs_routed": 9, "docs_deadletter": 1, "docs_heldout": 2,
		"domains": [{"id": 0, "size": 5, "top_terms": ["go"]}, {"id": 1, "size": 4, "top_terms": ["rust"]}],
		"eval": {"dense_bpb": 4.5, "expert_bpb": [{"expert": "0", "bpb": 4.25}, {"expert": "1", "bpb": 4.75}],
			"mixture_bpb": {"top1": 4.125, "all": 4.375}}}`
	history := `{"router_version": 1, "counts": {"0": 2, "1": 3}, "saved": "2026-11-27T01:00:00Z"}
{"router_version": 1, "counts": {"0": 4, "1": 4}, "saved": "2026-11-27T01:00:01Z"}
{"router_version": 1, "counts": {"0": 5, "1": 4}, "saved": "2026-11-27T01:00:02Z"}
`
	for name, text := range map[string]string{"summary.json": summary, "routing-history.jsonl": history} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}

	d, err := report.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	page, err := d.Page()
	if err != nil {
		log.Fatal(err)
	}
	if err := page.WriteFile(filepath.Join(dir, "report.html")); err != nil {
		log.Fatal(err)
	}
	for _, c := range page.Counts[:4] {
		fmt.Printf("%s: %s\n", c.Label, c.Value)
	}
	for _, f := range page.Figures {
		fmt.Printf("%s (%s): %d series from %s\n", f.Title, f.ID, f.Series, f.Source)
	}
	for _, m := range d.Missing() {
		fmt.Println("not shown:", m.What)
	}
	// Output:
	// documents in: 10
	// routed: 9
	// dead-lettered: 1
	// held out: 2
	// Domain sizes (plot-sizes): 2 series from routing-history.jsonl
	// Domains and their top terms (plot-domains): 1 series from summary.json
	// Bits per byte per expert (plot-bpb-experts): 2 series from summary.json
	// Bits per byte per routing choice (plot-bpb-routing): 2 series from summary.json
	// not shown: router/
	// not shown: experts/
}
