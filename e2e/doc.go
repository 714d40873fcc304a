// Package e2e holds the multi-process tests: they build the pipeline binary,
// run the broker and the stages as separate processes, kill them with SIGKILL
// and check the delivery contract from the outside.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. e2e sits
// above everything: it drives the built binary and the library as a user would.
package e2e
