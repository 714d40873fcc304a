package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// The inputs of a report, relative to the run output dir.
const (
	summaryFile = "summary.json"
	routerDir   = "router"
	expertsDir  = "experts"
	historyFile = "routing-history.jsonl"
)

// Missing is an input of a run dir the page cannot show, and why.
type Missing struct {
	What string // the file or dir, relative to the run dir: "summary.json", "router/", "experts/3/"
	Why  string // a sentence: "not found (written by ...): no loss curves"
}

// Data is everything a report reads from a run output dir. Load fills it;
// Page draws it.
type Data struct {
	dir     string
	summary *summary               // summary.json, or nil
	router  *cluster.RouterModel   // the newest valid router in router/, or nil
	routers []routerVersion        // the valid router versions up to router, oldest first
	history []cluster.RoutingState // the valid lines of routing-history.jsonl
	experts []expert               // in expert order (numbers first)
	missing []Missing
}

// Missing returns the inputs that are not in the report, in the order Load
// looked for them: summary.json, router/, routing-history.jsonl, experts/.
// An input that was read with damaged parts skipped is listed too.
func (d *Data) Missing() []Missing { return d.missing }

// routerVersion is what the report keeps of one router version: when it
// was made and its domains (with their origins).
type routerVersion struct {
	Version int64
	Created time.Time
	Domains []cluster.DomainInfo
}

func versionOf(rm *cluster.RouterModel) routerVersion {
	return routerVersion{Version: rm.Version, Created: rm.Created, Domains: rm.Domains()}
}

// summary is the part of summary.json (the --json output of `pipeline run`)
// that a report shows.
type summary struct {
	DocsIn         int64 `json:"docs_in"`
	DocsRouted     int64 `json:"docs_routed"`
	DocsDeadletter int64 `json:"docs_deadletter"`
	DocsHeldout    int64 `json:"docs_heldout"`
	// DeadletterReasons: reason → dead letters; nil in a summary written
	// before it was kept.
	DeadletterReasons map[string]int64 `json:"deadletter_reasons"`
	Domains           []summaryDomain  `json:"domains"`
	SeedTokens        int64            `json:"seed_tokens"`  // bytes
	DenseTokens       int64            `json:"dense_tokens"` // bytes, after the seed
	Eval              summaryEval      `json:"eval"`
	// Seconds: the job's wall seconds, the phases a resumed run found
	// done counted at their recorded seconds; InvocationSeconds: the
	// invocation that wrote the summary (0 in a summary written before it
	// was kept).
	Seconds           float64 `json:"seconds"`
	InvocationSeconds float64 `json:"invocation_seconds"`
	// Phases: phase → wall seconds of the invocation that did the phase's
	// work; Resumed: the phases the invocation that wrote the summary
	// found done (their seconds are an earlier invocation's). In a summary
	// written before Resumed was kept, Phases are those of the invocation
	// that wrote it.
	Phases  map[string]float64 `json:"phases"`
	Resumed []string           `json:"resumed"`
	// Settings: the job's settings, flag name (snake_case) → value; nil
	// in a summary written before they were kept.
	Settings map[string]json.RawMessage `json:"settings"`
	Then     *summaryThen               `json:"then"` // the second phase of `pipeline run --then`
}

// summaryThen is the second phase of a continuous run (flow.ThenSummary).
type summaryThen struct {
	DocsIn          int64       `json:"docs_in"`
	DocsPending     int64       `json:"docs_pending"`
	InNewDomains    int64       `json:"in_new_domains"`
	InOldDomains    int64       `json:"in_old_domains"`
	Growths         int         `json:"growths"`
	NewDomains      []struct{}  `json:"new_domains"`
	FirstNewSeconds float64     `json:"first_new_seconds"`
	FirstNewDocs    int64       `json:"first_new_docs"`
	EvalA           summaryEval `json:"eval_a"`
	EvalB           summaryEval `json:"eval_b"`
	// Phases: phase → wall seconds of the second phase's phases.
	Phases map[string]float64 `json:"phases"`
}

// summaryDomain is one domain of the run summary.
type summaryDomain struct {
	ID        int              `json:"id"`
	Size      int64            `json:"size"`        // documents routed to it in the run
	SizeAtFit int64            `json:"size_at_fit"` // documents k-means gave it at fit
	TopTerms  []string         `json:"top_terms"`
	Tokens    int64            `json:"tokens"` // training bytes of its expert
	Loss      float64          `json:"loss"`   // training loss, nats/byte, mean of the last 50 steps
	Sources   map[string]int64 `json:"sources"`
}

// summaryEval is the evaluation part of the run summary: held-out bits per
// byte.
type summaryEval struct {
	DenseBPB   *float64           `json:"dense_bpb"`
	SeedBPB    *float64           `json:"seed_bpb,omitempty"`
	ExpertBPB  []expertBPB        `json:"expert_bpb"`
	MixtureBPB map[string]float64 `json:"mixture_bpb"` // routing choice (top1, top2, all) → bits per byte
}

// expertBPB is one expert alone on the held-out set.
type expertBPB struct {
	Expert string  `json:"expert"`
	BPB    float64 `json:"bpb"`
}

// expert is the loss curve of one expert's newest valid checkpoint.
type expert struct {
	Name   string
	Step   int
	Tokens int64
	Losses []train.LossPoint
	// Params is the checkpoint's train.ParamsSHA256, Init that of the
	// checkpoint it branched from ("" from scratch) and InitFrom how that
	// one was chosen (CheckpointMeta.InitFrom).
	Params, Init, InitFrom string
}

// Load reads the inputs of a report from dir, the --out of `pipeline run`
// (or of `pipeline train`, `pipeline cluster fit`): summary.json, router/
// (the newest version, and the older ones for when each domain was
// created), routing-history.jsonl and experts/<name>/. An input that is
// missing or damaged is listed in Missing; it is an error only when dir
// holds none.
func Load(dir string) (*Data, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("report: %s is not a directory", dir)
	}
	d := &Data{dir: dir}
	miss := func(what, format string, args ...any) {
		d.missing = append(d.missing, Missing{What: what, Why: fmt.Sprintf(format, args...)})
	}
	notFound := func(err error) bool { return errors.Is(err, os.ErrNotExist) }

	// summary.json
	if b, err := os.ReadFile(filepath.Join(dir, summaryFile)); notFound(err) {
		miss(summaryFile, "not found (written by 'pipeline run'): no run counts, final routed sizes or bits per byte")
	} else if err != nil {
		miss(summaryFile, "%v", err)
	} else {
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			miss(summaryFile, "damaged: %v", err)
		} else {
			d.summary = &s
		}
	}

	// router/
	if _, err := os.Stat(filepath.Join(dir, routerDir)); notFound(err) {
		miss(routerDir+"/", "not found (written by 'pipeline cluster fit' or 'pipeline run'): no sizes at fit or top terms from the router")
	} else if rm, err := cluster.LoadRouter(filepath.Join(dir, routerDir), 0); err != nil {
		miss(routerDir+"/", "no router loaded: %v", err)
	} else {
		d.router = rm
		// The older versions, for when each domain was created: one at a
		// time, keeping only their domains.
		damaged := 0
		for v := int64(1); v < rm.Version; v++ {
			old, err := cluster.LoadRouter(filepath.Join(dir, routerDir), v)
			switch {
			case err == nil:
				d.routers = append(d.routers, versionOf(old))
			case !notFound(err): // a version not there was never saved or was removed
				damaged++
			}
		}
		d.routers = append(d.routers, versionOf(rm))
		if damaged > 0 {
			miss(routerDir+"/", "%s damaged, not loaded: the domains made there have no creation time", plural(damaged, "older router version"))
		}
	}

	// routing-history.jsonl
	h, bad, err := readHistory(filepath.Join(dir, historyFile))
	switch {
	case notFound(err):
		miss(historyFile, "not found (written by the routing stage with --history, as 'pipeline run' does): no domain sizes over time")
	case err != nil:
		miss(historyFile, "%v", err)
	case len(h) == 0 && bad == 0:
		miss(historyFile, "empty (routing ended before its first once-a-second record): no domain sizes over time")
	case len(h) == 0:
		miss(historyFile, "no valid line (%d damaged): no domain sizes over time", bad)
	default:
		d.history = h
		if bad > 0 {
			miss(historyFile, "%d damaged lines skipped", bad)
		}
	}

	// experts/<name>/
	ents, err := os.ReadDir(filepath.Join(dir, expertsDir))
	switch {
	case notFound(err):
		miss(expertsDir+"/", "not found (written by 'pipeline train' or 'pipeline run'): no loss curves")
	case err != nil:
		miss(expertsDir+"/", "%v", err)
	default:
		var names []string
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Slice(names, func(i, j int) bool { return train.ExpertLess(names[i], names[j]) })
		for _, n := range names {
			what := expertsDir + "/" + n + "/"
			c, _, err := train.LoadLatestCheckpoint(filepath.Join(dir, expertsDir, n))
			switch {
			case err != nil:
				miss(what, "no valid checkpoint: %v", err)
			case c == nil:
				miss(what, "no checkpoint")
			default:
				d.experts = append(d.experts, expert{Name: n, Step: c.Meta.Step, Tokens: c.Meta.Tokens, Losses: c.Meta.Losses,
					Params: train.ParamsSHA256(c.Model), Init: c.Meta.Init, InitFrom: c.Meta.InitFrom})
			}
		}
		if len(names) == 0 {
			miss(expertsDir+"/", "no expert in it: no loss curves")
		}
	}

	if d.summary == nil && d.router == nil && d.history == nil && d.experts == nil {
		return nil, fmt.Errorf("report: %s holds no run output (none of %s, %s/, %s, %s/ with a checkpoint); give the --out of 'pipeline run' or 'pipeline train'",
			dir, summaryFile, routerDir, historyFile, expertsDir)
	}
	return d, nil
}

// readHistory reads the JSON lines of a routing history: the valid records
// in order, and the number of lines that were not one.
func readHistory(path string) ([]cluster.RoutingState, int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	h, bad, err := cluster.ReadRoutingHistory(fh)
	if err != nil {
		return h, bad, fmt.Errorf("%s: %w", path, err)
	}
	return h, bad, nil
}
