package cpu_test

import (
	"fmt"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu"
)

// Open the cpu backend by name and run one layer's matmul:
// out[N,OC] = inp[N,C] · weight[OC,C]ᵀ + bias[OC].
func Example() {
	b, err := accel.Open("cpu", 2)
	if err != nil {
		panic(err)
	}
	inp := []float32{1, 2, 3, 4, 5, 6}    // [N=2, C=3]
	weight := []float32{1, 0, 0, 0, 1, 1} // [OC=2, C=3]
	bias := []float32{0.5, -1}            // [OC=2]
	out := make([]float32, 2*2)           // [N=2, OC=2]
	b.MatmulForward(out, inp, weight, bias, 2, 3, 2)
	fmt.Println(b.Name(), b.Threads(), out)
	// Output: cpu 2 [1.5 4 4.5 10]
}
