//go:build !linux

package main

func peakRSSBytes() int64 { return 0 }
