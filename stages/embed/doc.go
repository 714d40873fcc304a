// Package embed is the featurization stage (docs.raw → docs.features):
// c-BTM-compatible tokenization, tf-idf with a fitted vocabulary or hashing,
// LSA (randomized truncated SVD) and a client for /v1/embeddings services.
//
// Status: not implemented yet; tracked by issue 3. The package exists so the
// repository has the layout of DESIGN.md from the first commit.
package embed
