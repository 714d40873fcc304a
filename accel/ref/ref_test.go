package ref_test

import (
	"testing"

	"github.com/domainflow/domainflow/accel/conformance"
	"github.com/domainflow/domainflow/accel/ref"
)

// TestConformance holds the float32 instantiation to the float64 one.
func TestConformance(t *testing.T) { conformance.Run(t, ref.New()) }

// TestGradients checks the float64 backward kernels against finite
// differences of the forward kernels.
func TestGradients(t *testing.T) { conformance.Gradients(t) }
