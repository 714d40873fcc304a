// Package cluster is the domain stage's logic (docs.features →
// docs.domain.<d>): balanced k-means, streaming balanced routing and the
// versioned router model.
//
// Fit runs k-means++ and Lloyd iterations on sparse or dense unit vectors
// (Rows), keeping the best of several restarts; in balanced mode every
// assignment step is an exact min-cost assignment with capacities ⌊n/k⌋ or
// ⌈n/k⌉ (BalancedAssign), so fit sizes are exactly balanced. The dot products
// of its distance steps run on an accel.Backend, as training's do:
// FitConfig.Backend, by default the "cpu" backend opened with
// FitConfig.Workers threads for each fit; a fit is bit-identical for a seed
// whatever the thread count. The top terms of a domain are named by the
// featurizer (embed.CentroidTerms), since stages do not import each other.
// Router routes a live stream: nearest centroid plus per-domain prices, with
// hard bounds that keep every domain within a tolerance of equal over the
// stream; plain argmin stays available. RouterModel is the versioned artifact
// (Arrow IPC file and Parquet twin, or an Arrow IPC payload for the
// router.models topic) whose domains keep stable ids across refits (MatchIDs)
// and can be split or removed; Domains lists them (DomainInfo). NMI, ARI, Purity and Balance score clusterings.
//
// Novelty: a router keeps per domain the distribution of its fit rows'
// squared distances to their nearest centroid (DistanceStats,
// RouterModel.Distances, computed by FitDistances wherever a router is
// fitted, split or trimmed). A routed row is novel when its distance to its
// nearest centroid exceeds that domain's fit-time quantile times a margin
// (NoveltyRule: 0.99 and no margin by default). The routing stage judges
// every row it routes without changing where it goes, and reports the novel
// count, the novel fraction over sliding windows and each domain's distance
// drift (Stage.Novelty, Stage.Collector, the routing history). A router
// saved before routers kept distances loads and routes with novelty off.
//
// The package also owns the routing stage's life on Kafka, through
// pipeline's types only. RunStage runs it as a process of a consumer group
// (RunConfig: the router dir, the fit on a reservoir sample of the stream
// when no router exists yet, hot reload of newer routers from the dir and
// from router.models, per-partition routing state on router.state.<group>,
// the routed counts saved on router.models). RouterTopic is the router half
// of the router.models protocol (a pipeline.ControlTopic: the router in use
// and each group's routed counts), and Domains tells which docs.domain.<id>
// topics belong to a router. The featurizer lineage lives in stages/embed,
// which this package does not import: a program passes it in as a
// Featurizer.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel; stages
// never import each other, and what spans them lives in flow.
package cluster
