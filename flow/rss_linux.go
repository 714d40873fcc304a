//go:build linux

package flow

import "syscall"

// PeakRSSBytes is the process's peak resident set size, from getrusage (kilobytes on Linux).
func PeakRSSBytes() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
