// Package accel holds the numeric kernels behind one Backend interface: the
// expert model's forward and backward kernels (matmul, layernorm, GELU,
// attention, softmax + cross-entropy, AdamW) and the dot products k-means
// needs (sparse × dense, distances, row norms, argmin and top-k).
//
// Implementations live in sub-packages and register themselves by name:
//
//	accel/ref  plain Go, one loop per formula; the oracle every other
//	           backend is tested against (accel/conformance)
//	accel/cpu  cache-blocked packed SGEMM with an AVX2/FMA micro-kernel in
//	           Go assembly, goroutine-parallel, fused elementwise kernels;
//	           pure Go under -tags noasm or without AVX2/FMA
//
// Callers import the backends they want for their side effect and call
// Open:
//
//	import _ "github.com/domainflow/domainflow/accel/cpu"
//	b, err := accel.Open("cpu", 2)
//
// A GPU backend plugs in the same way: a package that implements Backend and
// calls Register("cuda", ...) from init. Callers see no change. Because
// every method takes host slices, a device backend would keep device copies
// keyed by the slice's address and mirror them on demand; the natural next
// step (not needed by the CPU backends) is an optional interface such as
// `interface{ Tensor(n int) Buffer }` that callers test for with a type
// assertion, so the model can keep its activations on the device.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel; accel is
// the bottom layer and imports nothing of this module (internal/ aside).
// Training (stages/train) and k-means (stages/cluster) take a Backend.
package accel
