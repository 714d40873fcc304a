//go:build !unix

package pipetest

import "testing"

// ClosedAddr returns a loopback address where a connection is refused:
// port 1 (tcpmux), which nothing listens on in practice.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:1"
}
