//go:build !amd64 || noasm

package cpu

// Without amd64, or under -tags noasm, there are no vector kernels: each
// ...Vec function does nothing and returns 0, and the pure-Go loops do all
// the work.

func geluForwardVec(out, inp []float32) int { return 0 }

func geluBackwardVec(dinp, inp, dout []float32) int { return 0 }

func expShiftVec(dst, src []float32, shift float32) (int, float32) { return 0, 0 }

func maxVec(x []float32) (int, float32) { return 0, 0 }

func scaleVec(x []float32, s float32) int { return 0 }

func dotVec(x, y []float32) (int, float32) { return 0, 0 }

func softmaxBackwardVec(dp, a, da []float32, dot float32) int { return 0 }

func spmmRowVec(o []float32, idx []int32, val []float32, dt []float32, n int) int { return 0 }

func (h adamw) vec(p, g, m, v []float32) int { return 0 }

func addVec(dst, src []float32) int { return 0 }

func lnStatsVec(x []float32, m float32) (int, float32, float32) { return 0, 0, 0 }

func lnForwardVec(out, x, w, b []float32, m, s float32) int { return 0 }

func lnBackwardSumsVec(x, d, w []float32, m, s float32) (int, float32, float32) { return 0, 0, 0 }

func lnBackwardRowVec(dx, x, d, w []float32, m, s, a, b float32) int { return 0 }

func lnBackwardColsVec(dw, db, x, d []float32, m, s float32) int { return 0 }

func sumSquaresVec(x []float32) (int, float64) { return 0, 0 }

func transposeVec(dt, dense []float32, n, d, lo, hi int) (int, int) { return lo, 0 }
