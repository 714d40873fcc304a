// Package train holds the per-domain training consumers: the byte-level
// expert language model, AdamW, Arrow/Parquet checkpoints with exactly-once
// resume, branching, evaluation and merging.
//
// Status: not implemented yet; tracked by issue 6. The package exists so the
// repository has the layout of DESIGN.md from the first commit.
package train
