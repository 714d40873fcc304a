// Package train holds the per-domain experts: a byte-level GPT-style
// language model with its forward and backward passes written out layer by
// layer over accel.Backend kernels, AdamW with warm-up, cosine decay and
// gradient clipping, and the packer that turns a document stream into
// batches.
//
// Model is the network of DESIGN.md "Experts" (vocab 256, learned
// positions, pre-LayerNorm blocks, causal multi-head attention, GELU MLP ×4,
// tied embeddings) in the named sizes tiny, small and base (ConfigByName),
// the same architecture and parameter counts as the PyTorch anchor
// ../shared/anchors/train_lm.py. Its parameters and gradients are each one
// flat []float32 with a table of named tensors (Model.Tensors), so a
// checkpoint is the tensors written row by row and merging is arithmetic on
// flat buffers. Optimizer holds AdamW's moments in the same layout.
// Packer spreads a domain's documents, separator after each, over B lanes
// and cuts a row of T bytes from each lane per batch, so a batch mixes B
// documents; its State carries the bytes not yet trained on, so a resumed
// run sees exactly the batches the interrupted one would have.
//
// Given the same seed, documents in the same order and the same backend and
// thread count, training is bit-for-bit reproducible.
//
// The training consumers, checkpoints, branching, evaluation and merging
// build on this API (issue 6).
package train
