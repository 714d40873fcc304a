//go:build !reliability

package e2e

// walkthroughOrders are the orders `make test` runs TestWalkthrough in.
var walkthroughOrders = []walkthroughOrder{stagesThenIngest}

// walkthroughTrainToEnd: TestWalkthrough trains every expert to the end of
// its domain and checks that each applied its documents exactly once.
const walkthroughTrainToEnd = false
