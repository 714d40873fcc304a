package conformance

import (
	"testing"

	"github.com/domainflow/domainflow/accel"
)

// cutter hands a call its slices and shortens the target-th one by one
// element (keeping its capacity, so only an explicit length check catches
// it).
type cutter struct{ target, seen int }

func cut[E float32 | int32 | int64](c *cutter, x []E) []E {
	defer func() { c.seen++ }()
	if c.seen == c.target && len(x) > 0 {
		return x[:len(x)-1]
	}
	return x
}

func (c *cutter) f(x []float32) []float32 { return cut(c, x) }
func (c *cutter) i(x []int32) []int32     { return cut(c, x) }
func (c *cutter) p(x []int64) []int64     { return cut(c, x) }

// testShortInputs calls each method with one slice at a time one element
// too short and expects a panic on the calling goroutine (a panic inside a
// worker goroutine would crash the test binary instead).
func testShortInputs(t *testing.T, b accel.Backend) {
	f := func(n int) []float32 { return make([]float32, n, n+8) }
	i32 := func(n int) []int32 { return make([]int32, n, n+8) }
	const N, C, OC, V = 3, 4, 5, 6
	const B, T, NH = 2, 3, 2
	calls := map[string]func(c *cutter){
		"Sgemm": func(c *cutter) {
			b.Sgemm(false, true, 3, 4, 5, 1, c.f(f(3*5)), 5, c.f(f(4*5)), 5, 0, c.f(f(3*4)), 4)
		},
		"Sgemm/transA": func(c *cutter) {
			b.Sgemm(true, false, 3, 4, 5, 1, c.f(f(5*3)), 3, c.f(f(5*4)), 4, 1, c.f(f(3*4)), 4)
		},
		"SgemmStridedBatched": func(c *cutter) {
			b.SgemmStridedBatched(false, false, 2, 2, 2, 1, c.f(f(2*4)), 2, 4, c.f(f(2*4)), 2, 4, 0, c.f(f(2*4)), 2, 4, 2)
		},
		"MatmulForward": func(c *cutter) {
			b.MatmulForward(c.f(f(N*OC)), c.f(f(N*C)), c.f(f(OC*C)), c.f(f(OC)), N, C, OC)
		},
		"MatmulBackward": func(c *cutter) {
			b.MatmulBackward(c.f(f(N*C)), c.f(f(OC*C)), c.f(f(OC)), c.f(f(N*OC)), c.f(f(N*C)), c.f(f(OC*C)), N, C, OC)
		},
		"LayerNormForward": func(c *cutter) {
			b.LayerNormForward(c.f(f(N*C)), c.f(f(N)), c.f(f(N)), c.f(f(N*C)), c.f(f(C)), c.f(f(C)), N, C)
		},
		"LayerNormBackward": func(c *cutter) {
			b.LayerNormBackward(c.f(f(N*C)), c.f(f(C)), c.f(f(C)), c.f(f(N*C)), c.f(f(N*C)), c.f(f(C)), c.f(f(N)), c.f(f(N)), N, C)
		},
		"GELUForward": func(c *cutter) {
			in := f(7)
			b.GELUForward(c.f(f(7)), in)
		},
		"GELUBackward": func(c *cutter) {
			in := f(7)
			b.GELUBackward(c.f(f(7)), in, c.f(f(7)))
		},
		"ResidualForward": func(c *cutter) {
			in := f(7)
			b.ResidualForward(c.f(f(7)), in, c.f(f(7)))
		},
		"Accumulate": func(c *cutter) {
			in := f(7)
			b.Accumulate(c.f(f(7)), in)
		},
		"AttentionForward": func(c *cutter) {
			b.AttentionForward(c.f(f(B*T*C)), c.f(f(B*NH*T*T)), c.f(f(B*NH*T*T)), c.f(f(B*T*3*C)), B, T, C, NH)
		},
		"AttentionBackward": func(c *cutter) {
			b.AttentionBackward(c.f(f(B*T*3*C)), c.f(f(B*NH*T*T)), c.f(f(B*NH*T*T)), c.f(f(B*T*C)), c.f(f(B*T*3*C)), c.f(f(B*NH*T*T)), B, T, C, NH)
		},
		"SoftmaxCrossEntropyForward": func(c *cutter) {
			b.SoftmaxCrossEntropyForward(c.f(f(N)), c.f(f(N*V)), c.f(f(N*V)), c.i(i32(N)), N, V)
		},
		"SoftmaxCrossEntropyBackward": func(c *cutter) {
			b.SoftmaxCrossEntropyBackward(c.f(f(N*V)), c.f(f(N*V)), c.i(i32(N)), c.f(f(N)), N, V)
		},
		"AdamW": func(c *cutter) {
			p := f(7)
			b.AdamW(p, c.f(f(7)), c.f(f(7)), c.f(f(7)), 1, 1e-3, 0.9, 0.999, 1e-8, 0)
		},
		"SparseDenseT": func(c *cutter) {
			indptr := []int64{0, 1, 1, 2}
			b.SparseDenseT(c.f(f(3*2)), c.p(indptr), c.i([]int32{0, 3}), c.f([]float32{1, 2}), 3, c.f(f(2*4)), 2, 4)
		},
		"SparseDense": func(c *cutter) {
			indptr := []int64{0, 1, 1, 2}
			b.SparseDense(c.f(f(3*2)), c.p(indptr), c.i([]int32{0, 3}), c.f([]float32{1, 2}), 3, c.f(f(4*2)), 4, 2)
		},
		"DenseDenseT": func(c *cutter) {
			b.DenseDenseT(c.f(f(3*2)), c.f(f(3*4)), c.f(f(2*4)), 3, 2, 4)
		},
		"SquaredDistances": func(c *cutter) {
			b.SquaredDistances(c.f(f(3*2)), c.f(f(3*4)), c.f(f(3)), c.f(f(2*4)), c.f(f(2)), 3, 2, 4)
		},
		"RowNorms": func(c *cutter) {
			b.RowNorms(c.f(f(3)), c.f(f(3*4)), 3, 4)
		},
		"ArgminRows": func(c *cutter) {
			b.ArgminRows(c.i(i32(3)), c.f(f(3)), c.f(f(3*4)), 3, 4)
		},
		"TopKRows": func(c *cutter) {
			b.TopKRows(c.i(i32(3*2)), c.f(f(3*2)), c.f(f(3*4)), 3, 4, 2)
		},
	}
	for name, call := range calls {
		// a dry run counts the slices and must not panic
		dry := &cutter{target: -1}
		call(dry)
		for k := 0; k < dry.seen; k++ {
			mustPanic(t, name+"/slice"+string(rune('0'+k)), func() { call(&cutter{target: k}) })
		}
	}
}
