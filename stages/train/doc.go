// Package train holds the per-domain experts: a byte-level GPT-style
// language model with its forward and backward passes written out layer by
// layer over accel.Backend kernels, AdamW with warm-up, cosine decay and
// gradient clipping, and the packer that turns a document stream into
// batches.
//
// Model is the network of ARCHITECTURE.md "Experts" (vocab 256, learned
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
// Trainer is the exactly-once state machine over that model: documents in
// with their origin positions, steps out, checkpoints (SaveCheckpoint,
// LoadLatestCheckpoint) that carry the tensors, the AdamW moments, the
// pending bytes, the origin positions applied and the input offsets.
// Branching (TrainerConfig.Init) starts an expert from a seed's parameters,
// as Branch-Train-Merge does; Merge averages experts.
//
// The training consumers run trainers on Kafka through the pipeline
// package's types: RunExpert trains one expert on one topic, RunDomains one
// per domain topic, and Run one per domain a DomainSource names, starting
// the experts of domains that appear later (the source is injected so that
// this package does not depend on the routing stage). The input partitions
// are read in a deterministic round robin (pipeline.RoundRobin) from the
// offsets and cursor the checkpoint carries, so an expert killed at any
// point and run again ends bit-identical to an uninterrupted one; messages
// that do not decode and routed rows whose origin cannot exist are
// dead-lettered, broker outages are ridden out, and the end of the context
// is a stop (checkpoint and report), not an error. With
// ConsumerConfig.MonitorGroup each expert also commits its checkpointed
// positions to a consumer group of its own (pipeline.GroupCommitter), only
// so that Kafka's tools show its progress; resumes never read them.
// `pipeline train` is flags over ConsumerConfig and one of these calls.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel; stages
// never import each other: the domains of --domain all come in through
// DomainSource, which cmd fills from stages/cluster.
package train
