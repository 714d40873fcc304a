// Package flow holds what spans stages: the whole job (flow.Job, in
// job.go) and the c-BTM mixture of experts (Mixture), which needs a
// router from stages/cluster, its featurizer state from stages/embed and
// the experts from stages/train at once.
//
// A Mixture is loaded from a training output dir (the experts'
// checkpoints under DIR/experts/<name>) and a router dir (the featurizer
// state and the router model). It routes text on the text so far: the
// text is featurized with the router's featurizer, the weights are
// softmax(−d²/T) over its squared distances d² to the domain centroids,
// the top k are kept and renormalized, and the kept experts' next-byte
// distributions are mixed with those weights. Score gives a text's bits per
// byte under the mixture, NextByte the mixed next-byte distribution (what
// a server generating text needs), and Evaluate the figures of
// `pipeline eval` over held-out documents: every expert alone, the dense
// baseline and several top-k mixtures at once, each expert run only on the
// chunks some mixture keeps it for.
//
// The offline commands that need a featurizer state and a router at once
// live here too: FitRouter (`pipeline cluster fit`), RouteFiles and
// EvalRouting (`cluster assign`, `cluster eval`: route the documents of
// input files and score the domains against label fields), SplitDomain and
// RemoveDomain (`domains split|remove`: write a router dir's next version
// and publish it on router.models).
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel.
// Stages never import each other; what needs several of them lives here.
// Only cmd and tests import flow.
package flow
