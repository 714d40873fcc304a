package embed

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14).
const madvPopulateWrite = 23

// prefault asks the kernel to map all of b's pages at once: a term table of
// several MiB, written at random places, otherwise takes one page fault per
// page as it is first touched, and faults are expensive in a virtual
// machine. A hint only: an older kernel's EINVAL is ignored.
func prefault[T any](b []T) {
	const page = 4 << 10
	if len(b) == 0 {
		return
	}
	size := uintptr(len(b)) * unsafe.Sizeof(b[0])
	if size < 16*page {
		return
	}
	p := unsafe.Pointer(&b[0])
	start := uintptr(p)
	lo := (start + page - 1) &^ (page - 1)
	hi := (start + size) &^ (page - 1)
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-start)), hi-lo), madvPopulateWrite)
}
