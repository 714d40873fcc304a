// Package cluster is the domain stage (docs.features → docs.domain.<d>):
// balanced k-means fitting, streaming balanced routing and the versioned
// router model.
//
// Status: in progress (issue 4). Rows and Model are the shared types of the
// fitting and routing code.
package cluster
