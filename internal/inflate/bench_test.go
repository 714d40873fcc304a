package inflate

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

const corpusPath = "/work/shared/corpora/mixed-v1.jsonl.gz"

// BenchmarkGunzip compares klauspost's gzip reader with this package on the
// corpus, interleaved in one run.
func BenchmarkGunzip(b *testing.B) {
	comp, err := os.ReadFile(corpusPath)
	if err != nil {
		b.Skipf("corpus not available: %v", err)
	}
	zr, err := kgzip.NewReader(bytes.NewReader(comp))
	if err != nil {
		b.Fatal(err)
	}
	size, err := io.Copy(io.Discard, zr)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(size)
		zr := new(kgzip.Reader)
		defer reportCPU(b, size)()
		for b.Loop() {
			if err := zr.Reset(bytes.NewReader(comp)); err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, zr)
			if err != nil || n != size {
				b.Fatalf("n=%d err=%v", n, err)
			}
		}
	})
	b.Run("inflate", func(b *testing.B) {
		b.SetBytes(size)
		defer reportCPU(b, size)()
		for b.Loop() {
			zr, err := NewReader(bytes.NewReader(comp))
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, zr)
			if err != nil || n != size {
				b.Fatalf("n=%d err=%v", n, err)
			}
		}
	})
}

// reportCPU returns a function that reports the process CPU time (user +
// system) per operation as decompressed MB per CPU-second, which is less
// disturbed than wall time when other jobs share the machine.
func reportCPU(b *testing.B, size int64) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "MB/cpu-s")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
