package conformance_test

import (
	"strconv"
	"testing"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/conformance"
	_ "github.com/domainflow/domainflow/accel/cpu"
	_ "github.com/domainflow/domainflow/accel/ref"
)

// TestBackends runs the conformance suite on every registered backend with
// 1, 2 and 3 threads (once per distinct thread count a backend reports).
func TestBackends(t *testing.T) {
	for _, name := range accel.Names() {
		seen := map[int]bool{}
		for _, threads := range []int{1, 2, 3} {
			b, err := accel.Open(name, threads)
			if err != nil {
				t.Fatalf("Open(%q, %d): %v", name, threads, err)
			}
			if seen[b.Threads()] {
				continue
			}
			seen[b.Threads()] = true
			t.Run(name+"/threads="+strconv.Itoa(b.Threads()), func(t *testing.T) {
				t.Parallel()
				conformance.Run(t, b)
			})
		}
	}
}

// TestGradients checks the reference backward kernels against finite
// differences.
func TestGradients(t *testing.T) { conformance.Gradients(t) }
