//go:build !linux

package flow

// PeakRSSBytes is the process's peak resident set size; 0 where it is not known.
func PeakRSSBytes() int64 { return 0 }
