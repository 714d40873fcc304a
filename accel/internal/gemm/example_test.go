package gemm_test

import (
	"fmt"

	"github.com/domainflow/domainflow/accel/internal/gemm"
)

// C = A·Bᵀ for a 2×3 A and a 2×3 B (so op(B) = Bᵀ is 3×2), on 2 goroutines.
func ExampleSgemm() {
	a := []float32{
		1, 2, 3,
		4, 5, 6,
	}
	b := []float32{
		1, 0, 1,
		0, 1, 0,
	}
	c := make([]float32, 2*2)
	gemm.Sgemm(2, false, true, 2, 2, 3, 1, a, 3, b, 3, 0, c, 2)
	fmt.Println(c)
	// Output: [4 2 10 5]
}
