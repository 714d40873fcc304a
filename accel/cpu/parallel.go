package cpu

import "sync"

// Work sizes below which a loop runs on the calling goroutine: starting a
// goroutine costs about a microsecond, the work of a few thousand flops.
const (
	grainElems = 1 << 15 // elementwise kernels: elements per goroutine
	grainRow   = 1 << 13 // row kernels: row elements (rows·C) per goroutine
)

// chunks is how many goroutines parallelFor(n, grain, ...) uses.
func (b *Backend) chunks(n, grain int) int {
	return max(1, min(b.threads, (n+grain-1)/max(grain, 1)))
}

// parallelFor runs body over [0, n) split into b.chunks(n, grain)
// contiguous chunks; the first chunk runs on the calling goroutine, and
// parallelFor returns when all have. The chunk bounds depend only on n,
// grain and the thread count, and every kernel that uses it computes each
// output from one chunk alone, so results never depend on goroutine
// scheduling. Goroutines live only for the call.
//
// Kernels test b.chunks first and call their range function directly when
// it is 1: a closure handed to parallelFor escapes to the heap, and small
// or single-threaded calls should not allocate.
func (b *Backend) parallelFor(n, grain int, body func(lo, hi int)) {
	b.parallelForAligned(n, grain, 1, body)
}

// parallelForAligned is parallelFor with the inner chunk bounds rounded
// down to multiples of align. Elementwise kernels use align 8: their vector
// kernels take 8 elements at a time and leave the rest of a chunk to Go,
// which rounds differently (no FMA), so an element must land in the vector
// part for every chunking for the result not to depend on the thread count.
func (b *Backend) parallelForAligned(n, grain, align int, body func(lo, hi int)) {
	t := b.chunks(n, grain)
	if n <= 0 {
		return
	}
	if t == 1 {
		body(0, n)
		return
	}
	bound := func(i int) int {
		if i == t {
			return n
		}
		return int(int64(i)*int64(n)/int64(t)) / align * align // int64: no overflow on 32-bit
	}
	var wg sync.WaitGroup
	wg.Add(t - 1)
	for i := 1; i < t; i++ {
		lo, hi := bound(i), bound(i+1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	body(0, bound(1))
	wg.Wait()
}

// rowGrain is the number of rows of width C that make up a goroutine's
// minimum work.
func rowGrain(C int) int { return max(1, grainRow/max(C, 1)) }
