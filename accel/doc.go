// Package accel holds the numeric kernels behind one Backend interface: a
// plain-Go reference and optimized CPU kernels (SIMD assembly).
//
// Status: not implemented yet; tracked by issue 5. The package exists so the
// repository has the layout of DESIGN.md from the first commit.
package accel
