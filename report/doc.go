// Package report writes the HTML report of a run: it reads what a run left
// in its output dir and draws one self-contained page (no external
// resources, no JavaScript needed) with the run counts, the domain sizes
// over time, the novel fraction, the domains over time with the creation of
// each domain grown or split during the run, the domains and their top
// terms, the training loss of every expert, and the held-out bits per byte
// of each expert and each routing choice. Each plot is an SVG inlined in the
// page with a table of the same numbers below it.
//
// It takes three steps: Load reads the run dir (summary.json, every router
// version in router/, routing-history.jsonl, experts/<name>/) into a Data,
// listing the inputs it could not read in Missing rather than failing;
// Data.Page draws the figures; Page.WriteFile (or WriteTo) renders the
// HTML. `pipeline report` is these three calls between its flags and its
// output.
//
// In the layering (cmd → flow, report → stages/* → pipeline → schemas,
// accel) report sits beside flow, above the stages: it reads the artifacts
// of stages/cluster (the router, the routing history) and stages/train (the
// checkpoints) through their own loaders, and decodes summary.json, the
// output of the whole job, itself. It does no Kafka I/O: it imports neither
// pipeline nor cmd, and only cmd imports it.
package report
