package gemm

import "unsafe"

// kernGo is the pure-Go 4×8 micro-kernel (see kernel):
//
//	C[r][j] = alpha·Σ_p a[r*rs+p*ps]·b[p*8+j] + beta·C[r][j]   (r < 4, j < 8, p < kc)
//
// with C not read when beta == 0.
func kernGo(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32) {
	as := unsafe.Slice(a, 3*rs+(kc-1)*ps+1)
	bp := unsafe.Slice(b, kc*8)
	var c0, c1, c2, c3 [8]float32
	for p := range kc {
		bv := (*[8]float32)(bp[p*8 : p*8+8])
		a0, a1, a2, a3 := as[p*ps], as[rs+p*ps], as[2*rs+p*ps], as[3*rs+p*ps]
		for j, x := range bv {
			c0[j] += a0 * x
			c1[j] += a1 * x
			c2[j] += a2 * x
			c3[j] += a3 * x
		}
	}
	cs := unsafe.Slice(c, 3*ldc+8)
	for r, acc := range [4]*[8]float32{&c0, &c1, &c2, &c3} {
		cr := (*[8]float32)(cs[r*ldc : r*ldc+8])
		if beta == 0 {
			for j, v := range acc {
				cr[j] = alpha * v
			}
			continue
		}
		for j, v := range acc {
			cr[j] = alpha*v + beta*cr[j]
		}
	}
}
