//go:build reliability

package e2e

// walkthroughOrders are the orders `make reliability` runs TestWalkthrough
// in: every one.
var walkthroughOrders = append([]walkthroughOrder{stagesThenIngest}, moreOrders...)

// walkthroughTrainToEnd: TestWalkthrough trains every expert to the end of
// its domain and checks that each applied its documents exactly once.
const walkthroughTrainToEnd = true
