// Package cluster is the domain stage (docs.features → docs.domain.<d>):
// balanced k-means fitting, streaming balanced routing and the versioned
// router model.
//
// Status: not implemented yet; tracked by issue 4. The package exists so the
// repository has the layout of DESIGN.md from the first commit.
package cluster
