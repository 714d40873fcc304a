package cpu

import (
	"math"
	"testing"
)

// TestExpf sweeps expf against math.Exp: relative error within 3 ulp over
// the normal range, 0 below it, NaN for NaN.
func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x < 88.3; x += 0.00731 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3*0x1p-24 {
		t.Errorf("expf: worst relative error %.3g, want <= %.3g", worst, 3*0x1p-24)
	}
	for _, x := range []float32{-88, -100, float32(math.Inf(-1))} {
		if got := expf(x); got != 0 {
			t.Errorf("expf(%g) = %g, want 0", x, got)
		}
	}
	if got := expf(float32(math.NaN())); !math.IsNaN(float64(got)) {
		t.Errorf("expf(NaN) = %g, want NaN", got)
	}
	if got := expf(0); got != 1 {
		t.Errorf("expf(0) = %g, want 1", got)
	}
}
