package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // registers "cpu"
	_ "github.com/domainflow/domainflow/accel/ref" // registers "ref"
)

// benchGemmReport is the result of 'pipeline bench gemm'.
type benchGemmReport struct {
	Backend    string    `json:"backend"`
	Threads    int       `json:"threads"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	ISAEnv     string    `json:"gemm_isa_env,omitempty"` // DOMAINFLOW_GEMM_ISA as set, if set
	N          int       `json:"n"`
	M          int       `json:"m"`
	K          int       `json:"k"`
	TransA     bool      `json:"trans_a"`
	TransB     bool      `json:"trans_b"`
	GFLOPS     float64   `json:"gflops"`        // median over batches, 2·m·n·k per call
	MsPerCall  float64   `json:"ms_per_call"`   // at the median rate
	Batches    []float64 `json:"batch_gflops"`  // every batch
	Calls      int       `json:"calls"`         // timed calls, all batches
	Seconds    float64   `json:"timed_seconds"` // all batches
}

func (a *app) benchGemmCmd() *cobra.Command {
	var (
		n, m, k        int
		threads        int
		backend        string
		transA, transB bool
		batches        int
		minTime        time.Duration
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "gemm",
		Short: "Time one accel backend's Sgemm and print GFLOP/s",
		Long: `Time C = op(A)·op(B) (alpha 1, beta 0, float32, row-major) through the
accel backend --backend, opened with --threads goroutines. op(A) is m×k, op(B)
is k×n; --m and --k default to --n. After one warm-up call the product runs in
--batches batches of at least --min-time/--batches each; the figure is the
median batch rate, 2·m·n·k flops per call. For side-by-side numbers with
OpenBLAS and gonum see bench/gemm.sh.`,
		Example: `  pipeline bench gemm --n 512 --threads 1
  pipeline bench gemm --m 2048 --n 128 --k 512 --threads 2 --json
  pipeline bench gemm --m 512 --n 128 --k 2048 --trans-a --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if m == 0 {
				m = n
			}
			if k == 0 {
				k = n
			}
			if n < 1 || m < 1 || k < 1 {
				return usagef("bench gemm: --n, --m and --k must be at least 1")
			}
			if threads < 0 {
				return usagef("bench gemm: --threads must be 0 (one per CPU) or more")
			}
			if batches < 1 {
				return usagef("bench gemm: --batches must be at least 1")
			}
			if minTime <= 0 {
				return usagef("bench gemm: --min-time must be positive")
			}
			be, err := accel.Open(backend, threads)
			if err != nil {
				return usagef("bench gemm: --backend: %v", err)
			}
			lda, ldb := k, n
			if transA {
				lda = m
			}
			if transB {
				ldb = k
			}
			r := rand.New(rand.NewPCG(1, 2))
			am, bm, cm := randFloats(r, m*k), randFloats(r, k*n), make([]float32, m*n)
			call := func() { be.Sgemm(transA, transB, m, n, k, 1, am, lda, bm, ldb, 0, cm, n) }
			call() // warm-up: packing buffers, page faults
			flops := 2 * float64(m) * float64(n) * float64(k)
			rep := benchGemmReport{
				Backend: be.Name(), Threads: be.Threads(), GOMAXPROCS: runtime.GOMAXPROCS(0),
				ISAEnv: os.Getenv("DOMAINFLOW_GEMM_ISA"),
				N:      n, M: m, K: k, TransA: transA, TransB: transB,
			}
			per := minTime / time.Duration(batches)
			for range batches {
				calls, start := 0, time.Now()
				for calls == 0 || time.Since(start) < per {
					call()
					calls++
				}
				el := time.Since(start).Seconds()
				rep.Batches = append(rep.Batches, flops*float64(calls)/el/1e9)
				rep.Calls += calls
				rep.Seconds += el
			}
			sorted := slices.Clone(rep.Batches)
			slices.Sort(sorted)
			rep.GFLOPS = sorted[len(sorted)/2]
			rep.MsPerCall = flops / rep.GFLOPS / 1e6
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stdout, "backend %s, threads %d, C[%d×%d] = op(A)[%d×%d]·op(B)[%d×%d], transA %v, transB %v\n",
				rep.Backend, rep.Threads, m, n, m, k, k, n, transA, transB)
			fmt.Fprintf(a.stdout, "%-8s %10s\n", "batch", "GFLOP/s")
			for i, g := range rep.Batches {
				fmt.Fprintf(a.stdout, "%-8d %10.1f\n", i+1, g)
			}
			fmt.Fprintf(a.stdout, "%-8s %10.1f   (%.3f ms per call, %d calls in %.2f s)\n", "median", rep.GFLOPS, rep.MsPerCall, rep.Calls, rep.Seconds)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&n, "n", 512, "columns of C (and m, k unless given)")
	fs.IntVar(&m, "m", 0, "rows of C (0: --n)")
	fs.IntVar(&k, "k", 0, "inner dimension (0: --n)")
	fs.IntVar(&threads, "threads", 1, "goroutines per call (0: one per CPU)")
	fs.StringVar(&backend, "backend", "cpu", "accel backend `name` (see accel.Names)")
	fs.BoolVar(&transA, "trans-a", false, "A is stored k×m and used transposed")
	fs.BoolVar(&transB, "trans-b", false, "B is stored n×k and used transposed")
	fs.IntVar(&batches, "batches", 5, "timed batches; the median is reported")
	fs.DurationVar(&minTime, "min-time", time.Second, "least total timed time, split evenly over the batches")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// randFloats returns n floats uniform in [-1, 1).
func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = 2*r.Float32() - 1
	}
	return x
}
