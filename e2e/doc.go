// Package e2e holds the multi-process tests: they build the pipeline binary,
// run the broker and the stages as separate processes, kill them with SIGKILL
// and check the delivery contract from the outside.
package e2e
