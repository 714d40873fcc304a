package ref_test

import (
	"fmt"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/ref"
)

// The reference backend behind the accel.Backend interface.
func Example() {
	b, err := accel.Open("ref", 0)
	if err != nil {
		panic(err)
	}
	losses, probs := make([]float32, 1), make([]float32, 3)
	b.SoftmaxCrossEntropyForward(losses, probs, []float32{1, 2, 3}, []int32{2}, 1, 3)
	fmt.Printf("%s: probs %.4f, loss %.4f\n", b.Name(), probs, losses[0])
	// Output: ref: probs [0.0900 0.2447 0.6652], loss 0.4076
}

// The kernels are generic: the float64 instantiation is the oracle of the
// conformance suite and of the finite-difference gradient checks.
func ExampleLayerNormForward() {
	inp := []float64{1, 2, 3, 4} // [N=1, C=4]
	weight, bias := []float64{1, 1, 1, 1}, []float64{0, 0, 0, 0}
	out, mean, rstd := make([]float64, 4), make([]float64, 1), make([]float64, 1)
	ref.LayerNormForward(out, mean, rstd, inp, weight, bias, 1, 4)
	fmt.Printf("mean %.2f, rstd %.4f, out %.4f\n", mean[0], rstd[0], out)
	// Output: mean 2.50, rstd 0.8944, out [-1.3416 -0.4472 0.4472 1.3416]
}
