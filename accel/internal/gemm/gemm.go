package gemm

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// kernel is one register-blocked micro-kernel with the blocking that suits
// it. fn computes the mr×nr tile
//
//	C[r][j] = alpha·Σ_p a[r*rs+p*ps]·b[p*nr+j] + beta·C[r][j]   (r < mr, j < nr, p < kc)
//
// where a is an mr×kc panel of op(A) (packed: rs = 1, ps = mr; rows of a
// row-major A read in place: rs = lda, ps = 1), b a packed kc×nr panel of
// op(B) and c points at C[0][0] with rows ldc floats apart. beta == 0
// (either sign) means C is not read. kc >= 1.
type kernel struct {
	name   string
	mr, nr int
	kc     int // K slab: a kc×nr panel of B plus a kc×mr panel of A stay in L1
	mc     int // rows of op(A) packed at once; a multiple of mr
	nc     int // columns of op(B) packed at once (the L2 block); a multiple of nr
	fn     func(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32)

	// Optional packing helpers in assembly (nil: a Go loop does it).
	// copyA moves n chunks of mr floats from src[q*mr:] to dst[q*stride:];
	// copyB moves n rows of nr floats from src[p*stride:] to dst[p*nr:].
	copyA, copyB func(dst, src *float32, n, stride int)
}

// maxTile bounds mr·nr over all kernels (the edge-tile scratch).
const maxTile = 12 * 32

// kernels lists the micro-kernels this machine can run, fastest first; the
// pure-Go one is always last.
var kernels = append(asmKernels(), &kernel{name: "go", mr: 4, nr: 8, kc: 256, mc: 480, nc: 1024, fn: kernGo})

// active is the kernel Sgemm uses.
var active atomic.Pointer[kernel]

// EnvISA names the environment variable read once at start-up: when set to
// one of ISAs(), Sgemm uses that micro-kernel instead of the fastest.
const EnvISA = "DOMAINFLOW_GEMM_ISA"

func init() {
	active.Store(kernels[0])
	if name := os.Getenv(EnvISA); name != "" {
		if err := SetISA(name); err != nil {
			slog.Warn("gemm: ignoring "+EnvISA, "err", err, "using", kernels[0].name)
		}
	}
}

// ISAs lists the micro-kernels this machine can run, fastest first: a subset
// of "avx512", "avx2" and "go" (always present).
func ISAs() []string {
	names := make([]string, len(kernels))
	for i, k := range kernels {
		names[i] = k.name
	}
	return names
}

// ISA names the micro-kernel Sgemm uses now.
func ISA() string { return active.Load().name }

// SetISA makes Sgemm use the named micro-kernel (one of ISAs(); "" or
// "auto" picks the fastest), for tests and benchmarks. Calls already
// running finish with the kernel they started with.
func SetISA(name string) error {
	if name == "" || name == "auto" {
		active.Store(kernels[0])
		return nil
	}
	for _, k := range kernels {
		if k.name == name {
			active.Store(k)
			return nil
		}
	}
	return fmt.Errorf("micro-kernel %q not available here (have %v)", name, ISAs())
}

// Products with at most directMax multiply-adds take the direct loop: for
// them packing costs more than it saves.
const directMax = 16 * 16 * 16

// Each goroutine beyond the first must get at least minWorkPerThread
// multiply-adds (about 13 µs at 160 GFLOP/s), or handing it the work costs
// more than it saves: 128×128×128 runs on two, 128×128×32 on one. (A
// variable so that tests can split small products.)
var minWorkPerThread = 1 << 20

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, row-major, with the
// argument conventions of accel.Backend.Sgemm, using up to threads
// goroutines (threads <= 0: one). op(A) is [m,k], op(B) is [k,n], C is
// [m,n]; lda, ldb, ldc are the row strides of A, B, C as stored (A stored
// is [m,lda] when !transA and [k,lda] when transA). beta == 0 means C is
// not read. Slices shorter than their shape make it panic.
func Sgemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m*n*k <= directMax {
		direct(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	kern := active.Load()
	t := max(threads, 1)
	t = min(t, max(1, m*n*k/minWorkPerThread))
	// Each goroutine packs what it reads of op(B), and of op(A) when
	// transA, so splitting C's rows makes every goroutine pack all of B and
	// splitting its columns makes each pack all of a transposed A. Split the
	// columns when that packs nothing twice (row-major A, read in place)
	// and leaves at least two nr-wide strips per goroutine; otherwise split
	// the longer side, which duplicates the smaller operand.
	mUnits, nUnits := (m+kern.mr-1)/kern.mr, (n+kern.nr-1)/kern.nr
	splitM := m >= n
	if !transA {
		splitM = nUnits < 2*t
	}
	units := nUnits
	if splitM {
		units = mUnits
	}
	t = min(t, units)
	if t == 1 {
		w := getWorkspace(kern)
		w.run(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		putWorkspace(w)
		return
	}
	// Chunk i is units [i*units/chunks, (i+1)*units/chunks) of mr rows or
	// nr columns of C; see parallel for who runs which.
	chunks := t
	part := func(i int) {
		lo, hi := i*units/chunks, (i+1)*units/chunks
		w := getWorkspace(kern)
		if splitM {
			i0, i1 := lo*kern.mr, min(hi*kern.mr, m)
			var as []float32
			if transA {
				as = a[i0:]
			} else {
				as = a[i0*lda:]
			}
			w.run(kern, transA, transB, i1-i0, n, k, alpha, as, lda, b, ldb, beta, c[i0*ldc:], ldc)
		} else {
			j0, j1 := lo*kern.nr, min(hi*kern.nr, n)
			var bs []float32
			if transB {
				bs = b[j0*ldb:]
			} else {
				bs = b[j0:]
			}
			w.run(kern, transA, transB, m, j1-j0, k, alpha, a, lda, bs, ldb, beta, c[j0:], ldc)
		}
		putWorkspace(w)
	}
	parallel(t, chunks, part)
}

// SgemmStridedBatched runs batch independent Sgemm calls with the arguments
// of Sgemm; matrix i of A, B and C starts at i*strideA, i*strideB and
// i*strideC. The threads goroutines share out whole products when there
// are at least as many products as threads, else each product is split.
func SgemmStridedBatched(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	if batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic("gemm: negative batch or stride")
	}
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	one := func(i, threads int) {
		Sgemm(threads, transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
	}
	t := max(threads, 1)
	t = min(t, batch, max(1, batch*m*n*k/minWorkPerThread))
	if t == 1 || batch < threads {
		for i := range batch {
			one(i, threads)
		}
		return
	}
	parallel(t, batch, func(i int) { one(i, 1) })
}

// checkArgs panics when a stride is too small or a slice too short for its
// shape.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("gemm: negative dimension")
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n) {
		panic("gemm: leading dimension smaller than the row width")
	}
	if ar > 0 && ac > 0 && len(a) < (ar-1)*lda+ac {
		panic("gemm: A shorter than its shape")
	}
	if br > 0 && bc > 0 && len(b) < (br-1)*ldb+bc {
		panic("gemm: B shorter than its shape")
	}
	if m > 0 && n > 0 && len(c) < (m-1)*ldc+n {
		panic("gemm: C shorter than its shape")
	}
}

// scaleC sets C = beta·C (C = 0 when beta == 0, C not read).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(ci)
		case 1:
		default:
			for j := range ci {
				ci[j] *= beta
			}
		}
	}
}

// direct is Sgemm without packing, for small products: row i of C is
// scaled by beta, then gets alpha·A[i,p]·B[p,:] added for each p (or, when
// transB, one dot product per element).
func direct(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		if transB {
			for j := range ci {
				bj := b[j*ldb : j*ldb+k]
				var s float32
				if transA {
					for p, bv := range bj {
						s += a[p*lda+i] * bv
					}
				} else {
					ai := a[i*lda : i*lda+k]
					for p, bv := range bj {
						s += ai[p] * bv
					}
				}
				ci[j] += alpha * s
			}
			continue
		}
		for p := range k {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			bp := b[p*ldb : p*ldb+n]
			for j, bv := range bp {
				ci[j] += av * bv
			}
		}
	}
}

// workspace holds one goroutine's packing buffers, 64-byte aligned.
type workspace struct {
	kern *kernel
	ap   []float32 // mc×kc: micro-panels of mr rows of op(A)
	bp   []float32 // kc×nc: micro-panels of nr columns of op(B)
	tile []float32 // mr×nr scratch for tiles at the edges of C
}

// The free workspaces. Unlike a sync.Pool this list survives garbage
// collections: a workspace is about 1.5 MiB, and allocating (and zeroing)
// one per call would cost more than a small product. It holds at most one
// workspace per goroutine that ever ran Sgemm at the same time.
var (
	freeMu     sync.Mutex
	workspaces []*workspace
)

func getWorkspace(kern *kernel) *workspace {
	freeMu.Lock()
	for i := len(workspaces) - 1; i >= 0; i-- {
		if w := workspaces[i]; w.kern == kern {
			workspaces = append(workspaces[:i], workspaces[i+1:]...)
			freeMu.Unlock()
			return w
		}
	}
	freeMu.Unlock()
	return &workspace{
		kern: kern,
		ap:   aligned(kern.mc * kern.kc),
		bp:   aligned(kern.kc * kern.nc),
		tile: aligned(maxTile),
	}
}

func putWorkspace(w *workspace) {
	if w.kern != active.Load() {
		return // SetISA switched kernels: let it go
	}
	freeMu.Lock()
	workspaces = append(workspaces, w)
	freeMu.Unlock()
}

// aligned returns n zeroed floats starting on a 64-byte boundary.
func aligned(n int) []float32 {
	s := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&s[0])) & 63 / 4)
	if off != 0 {
		off = 16 - off
	}
	return s[off : off+n : off+n]
}

// run is the single-goroutine packed product (the five BLIS loops). A
// row-major op(A) (!transA) is read in place by the micro-kernel, except
// for a last panel of fewer than mr rows, which is packed with zero rows
// below; a transposed one is packed mc×kc at a time.
func (w *workspace) run(kern *kernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mr, nr := kern.mr, kern.nr
	for jc := 0; jc < n; jc += kern.nc {
		nc := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kern.kc {
			kc := min(kern.kc, k-pc)
			bet := beta
			if pc > 0 {
				bet = 1
			}
			packB(kern, w.bp, b, ldb, transB, pc, jc, kc, nc)
			for ic := 0; ic < m; ic += kern.mc {
				mc := min(kern.mc, m-ic)
				if transA {
					packA(kern, w.ap, a, lda, true, ic, pc, mc, kc)
				}
				for ir := 0; ir < mc; ir += mr {
					rows := min(mr, mc-ir)
					ap, rs, ps := &w.ap[0], 1, mr
					switch {
					case transA:
						ap = &w.ap[ir*kc]
					case rows == mr:
						ap, rs, ps = &a[(ic+ir)*lda+pc], lda, 1
					default:
						packA(kern, w.ap, a, lda, false, ic+ir, pc, rows, kc)
					}
					for jr := 0; jr < nc; jr += nr {
						cols := min(nr, nc-jr)
						bp := &w.bp[jr*kc]
						ci := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							kern.fn(kc, ap, rs, ps, bp, &c[ci], ldc, alpha, bet)
							continue
						}
						kern.fn(kc, ap, rs, ps, bp, &w.tile[0], nr, alpha, 0)
						mergeTile(c[ci:], ldc, w.tile, nr, rows, cols, bet)
					}
				}
			}
		}
	}
}

// mergeTile sets C[r][j] = t[r][j] + beta·C[r][j] for r < rows, j < cols
// (C[r][j] = t[r][j] when beta == 0).
func mergeTile(c []float32, ldc int, t []float32, nr, rows, cols int, beta float32) {
	for r := range rows {
		cr := c[r*ldc : r*ldc+cols]
		tr := t[r*nr : r*nr+cols]
		if beta == 0 {
			copy(cr, tr)
			continue
		}
		for j, v := range tr {
			cr[j] = v + beta*cr[j]
		}
	}
}

// packA copies op(A)[i0:i0+mc, p0:p0+kc] into dst as micro-panels of mr
// rows: panel q holds dst[q*mr*kc + p*mr + r] = op(A)[i0+q*mr+r, p0+p],
// zero-padded below the last row.
func packA(kern *kernel, dst, a []float32, lda int, transA bool, i0, p0, mc, kc int) {
	mr := kern.mr
	if transA {
		// op(A)[i,p] = a[p*lda+i]: row p of the stored A holds mc
		// contiguous floats, mr for each panel. Reading it in order keeps
		// the hardware prefetcher on (one page per p otherwise).
		full := mc / mr * mr
		for p := range kc {
			src := a[(p0+p)*lda+i0:]
			src = src[:mc]
			if full > 0 {
				_ = dst[(full-mr)*kc+p*mr+mr-1] // the last full panel's slot
				if kern.copyA != nil {
					kern.copyA(&dst[p*mr], &src[0], full/mr, mr*kc)
				} else {
					copyPanels(&dst[p*mr], &src[0], full/mr, mr, mr*kc)
				}
			}
			if full < mc {
				d := dst[full*kc+p*mr:]
				d = d[:mr]
				copy(d, src[full:])
				clear(d[mc-full:])
			}
		}
		return
	}
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+mr*kc]
		// op(A)[i,p] = a[i*lda+p]: each row is kc contiguous floats.
		for r := range rows {
			src := a[(i0+ir+r)*lda+p0:]
			src = src[:kc]
			for p, v := range src {
				d[p*mr+r] = v
			}
		}
		for r := rows; r < mr; r++ {
			for p := range kc {
				d[p*mr+r] = 0
			}
		}
	}
}

// copyPanels copies n chunks of mr floats (mr even) from src, one after
// the other, to dst with stride floats between chunks: chunk q goes from
// src[q*mr:] to dst[q*stride:]. It moves 8-byte words, a few instructions
// per chunk, where copy would call memmove for each 48 bytes.
func copyPanels(dst, src *float32, n, mr, stride int) {
	words := mr / 2
	s := unsafe.Slice((*uint64)(unsafe.Pointer(src)), n*words)
	d := unsafe.Slice((*uint64)(unsafe.Pointer(dst)), (n-1)*stride/2+words)
	switch mr {
	case 12:
		for q := range n {
			sq := (*[6]uint64)(s[q*6:])
			dq := (*[6]uint64)(d[q*stride/2:])
			dq[0], dq[1], dq[2], dq[3], dq[4], dq[5] = sq[0], sq[1], sq[2], sq[3], sq[4], sq[5]
		}
	default:
		for q := range n {
			copy(d[q*stride/2:q*stride/2+words], s[q*words:q*words+words])
		}
	}
}

// packB copies op(B)[p0:p0+kc, j0:j0+nc] into dst as micro-panels of nr
// columns: panel q holds dst[q*nr*kc + p*nr + j] = op(B)[p0+p, j0+q*nr+j],
// zero-padded right of the last column.
func packB(kern *kernel, dst, b []float32, ldb int, transB bool, p0, j0, kc, nc int) {
	nr := kern.nr
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+nr*kc]
		if !transB && cols == nr && kern.copyB != nil {
			_ = b[(p0+kc-1)*ldb+j0+jr+nr-1] // the last row's end
			kern.copyB(&d[0], &b[p0*ldb+j0+jr], kc, ldb)
			continue
		}
		if !transB {
			// op(B)[p,j] = b[p*ldb+j]: each p is cols contiguous floats.
			for p := range kc {
				dp := d[p*nr : p*nr+nr]
				copy(dp, b[(p0+p)*ldb+j0+jr:][:cols])
				clear(dp[cols:])
			}
			continue
		}
		// op(B)[p,j] = b[j*ldb+p]: each column j is kc contiguous floats.
		for j := range cols {
			src := b[(j0+jr+j)*ldb+p0:]
			src = src[:kc]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
		for j := cols; j < nr; j++ {
			for p := range kc {
				d[p*nr+j] = 0
			}
		}
	}
}
