package cpu

import "math"

// expf is e^x in float32, within about 2 ulp of the correctly rounded
// value for x in [-87.3, 88.3]: Cody–Waite reduction x = k·ln2 + r with
// |r| <= ln2/2, the degree-6 polynomial of Cephes' expf for e^r, and 2^k
// built in the exponent bits. Below -87.33 (where e^x leaves the normal
// range) it returns 0; above 88.3 it returns e^88.3 ≈ 2.2e38. NaN gives
// NaN.
func expf(x float32) float32 {
	if x < -87.33654 {
		return 0
	}
	x = min(x, 88.3) // keeps 2^k finite; min(NaN, c) is NaN
	const (
		log2e  = 1.44269504088896341
		magic  = 12582912 // 1.5·2^23: adding it rounds a float32 to an integer
		ln2Hi  = 0.693359375
		ln2Lo  = -2.12194440e-4
		p0, p1 = 1.9875691500e-4, 1.3981999507e-3
		p2, p3 = 8.3334519073e-3, 4.1665795894e-2
		p4, p5 = 1.6666665459e-1, 5.0000001201e-1
	)
	k := x*log2e + magic
	k -= magic
	r := x - k*ln2Hi
	r -= k * ln2Lo
	p := ((((p0*r+p1)*r+p2)*r+p3)*r+p4)*r + p5
	e := p*(r*r) + r + 1
	return e * math.Float32frombits(uint32(int32(k)+127)<<23)
}
