//go:build !linux

package embed

// prefault is a Linux hint (MADV_POPULATE_WRITE); elsewhere it does nothing.
func prefault[T any](b []T) {}
