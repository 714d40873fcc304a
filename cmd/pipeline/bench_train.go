package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // registers "cpu"
	_ "github.com/domainflow/domainflow/accel/ref" // registers "ref"
	"github.com/domainflow/domainflow/stages/train"
)

// benchTrainReport is the --json output of bench train.
type benchTrainReport struct {
	TokensPerS float64   `json:"tokens_per_s"` // median over runs
	Expert     string    `json:"expert"`
	Threads    int       `json:"threads"`
	Steps      int       `json:"steps"` // timed steps per run
	Loss       float32   `json:"loss"`  // of the last step of the last run
	Backend    string    `json:"backend"`
	Warmup     int       `json:"warmup"`
	Params     int       `json:"params"`
	Batch      int       `json:"batch"`
	Ctx        int       `json:"ctx"`
	MsPerStep  float64   `json:"ms_per_step"` // median
	Runs       []float64 `json:"runs_tokens_per_s"`
	// OtherCores is, per run, the CPU other processes used during it, in
	// cores (-1: unknown, no /proc); Discarded counts the runs retried
	// because it was 0.1 or more (--guard).
	OtherCores []float64 `json:"other_cores"`
	Discarded  int       `json:"discarded_runs"`
}

func (a *app) benchTrainCmd() *cobra.Command {
	var (
		in, expert, backend, cpuprofile string
		threads, steps, warmup, runs    int
		seed                            uint64
		asJSON, guard                   bool
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Time training steps of an expert language model",
		Long: `Train a fresh expert of size --expert (tiny, small or base) on documents of a
corpus (--in; default testdata/mixed-small.jsonl.gz, from the repository root) packed into batches, and print
tokens per second: --warmup steps first, untimed, then --steps timed steps, --runs
times with a fresh model each. A step is forward, backward and the AdamW update
(with gradient clipping), the same work as a step of the PyTorch anchor
(bench/train.sh runs both side by side). Tokens per step are batch × ctx.`,
		Example: `  pipeline bench train --expert small
  pipeline bench train --expert base --threads 2 --steps 30 --json
  pipeline bench train --expert tiny --backend ref --steps 5 --cpuprofile cpu.pprof
  pipeline bench train --expert tiny --in corpus.jsonl.gz`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := train.ConfigByName(expert)
			if err != nil {
				return usagef("bench train: --expert: %q is not one of %s", expert, strings.Join(train.ConfigNames(), ", "))
			}
			switch {
			case steps < 1:
				return usagef("bench train: --steps must be at least 1")
			case warmup < 0:
				return usagef("bench train: --warmup must not be negative")
			case runs < 1:
				return usagef("bench train: --runs must be at least 1")
			case threads < 0:
				return usagef("bench train: --threads must not be negative")
			case !slices.Contains(accel.Names(), backend):
				return usagef("bench train: --backend: %q is not one of %s", backend, strings.Join(accel.Names(), ", "))
			}
			be, err := accel.Open(backend, threads)
			if err != nil {
				return fmt.Errorf("bench train: %w", err)
			}
			if in == "" {
				if in, err = demoCorpus("bench train", "--in"); err != nil {
					return err
				}
			}
			texts, _, err := a.loadTexts(in)
			if err != nil {
				return fmt.Errorf("bench train: %w", err)
			}
			var prof *os.File
			if cpuprofile != "" {
				if prof, err = os.Create(cpuprofile); err != nil {
					return fmt.Errorf("bench train: %w", err)
				}
				defer prof.Close()
			}

			rep := benchTrainReport{
				Expert: cfg.Name, Threads: be.Threads(), Steps: steps, Backend: be.Name(), Warmup: warmup,
				Params: cfg.NumParams(), Batch: cfg.Batch, Ctx: cfg.Ctx,
			}
			B, T := cfg.Batch, cfg.Ctx
			oc := train.DefaultOptConfig()
			oc.WarmupSteps, oc.TotalSteps = max(warmup, 1), 0
			for r, tries := 0, 0; r < runs; tries++ {
				m := train.NewModel(cfg, seed+uint64(r))
				opt := train.NewOptimizer(oc, len(m.Params))
				pk := train.NewPacker(T, B, '\n')
				next := 0
				step := func() float32 {
					for {
						inputs, targets, ok := pk.Next()
						if ok {
							m.ZeroGrad()
							loss := m.Forward(be, inputs, targets, B, T)
							m.Backward(be)
							opt.Update(be, m)
							return loss
						}
						pk.Add([]byte(texts[next%len(texts)]))
						next++
					}
				}
				for range warmup {
					step()
				}
				if guard {
					waitIdle(cmd.Context(), 3*time.Minute)
				}
				profiling := prof != nil && len(rep.Runs) == 0
				if profiling {
					if err := pprof.StartCPUProfile(prof); err != nil {
						return fmt.Errorf("bench train: %w", err)
					}
				}
				c0, ok0 := readCPU()
				start := time.Now()
				for range steps {
					rep.Loss = step()
				}
				el := time.Since(start)
				c1, ok1 := readCPU()
				if profiling {
					pprof.StopCPUProfile()
				}
				other := -1.0
				if ok0 && ok1 {
					other = max(0, (c1.machine-c0.machine)-(c1.self-c0.self)) / el.Seconds()
				}
				// The anchor's rule: 0.1 cores, plus 0.03 CPU-s of tick
				// granularity; at most runs+4 tries.
				if guard && other >= 0.1+0.03/el.Seconds() && tries < runs+4 {
					rep.Discarded++
					a.log.Info("bench train: run discarded, the machine was busy", "other_cores", other)
					continue
				}
				rep.Runs = append(rep.Runs, float64(B*T*steps)/el.Seconds())
				rep.OtherCores = append(rep.OtherCores, other)
				r++
			}
			sorted := slices.Clone(rep.Runs)
			sort.Float64s(sorted)
			rep.TokensPerS = (sorted[(len(sorted)-1)/2] + sorted[len(sorted)/2]) / 2
			rep.MsPerStep = 1000 * float64(B*T) / rep.TokensPerS
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stdout, "expert %s: %d parameters, batch %d × ctx %d; backend %s, threads %d; %d warm-up + %d timed steps\n",
				rep.Expert, rep.Params, B, T, rep.Backend, rep.Threads, warmup, steps)
			fmt.Fprintf(a.stdout, "%-4s %10s %10s %12s\n", "run", "tok/s", "ms/step", "other cores")
			for i, r := range rep.Runs {
				fmt.Fprintf(a.stdout, "%-4d %10.0f %10.1f %12.2f\n", i, r, 1000*float64(B*T)/r, rep.OtherCores[i])
			}
			fmt.Fprintf(a.stdout, "median %.0f tok/s, %.1f ms/step, last loss %.3f\n", rep.TokensPerS, rep.MsPerStep, rep.Loss)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&in, "in", "", "corpus `file` (.jsonl, .jsonl.gz, .parquet, a folder of .txt)")
	fs.StringVar(&expert, "expert", "small", "model size: tiny, small or base")
	fs.StringVar(&backend, "backend", "cpu", "accel backend: cpu or ref")
	fs.IntVar(&threads, "threads", 0, "goroutines per kernel call (0: one per CPU)")
	fs.IntVar(&steps, "steps", 30, "timed steps per run")
	fs.IntVar(&warmup, "warmup", 5, "untimed steps before the timed ones")
	fs.IntVar(&runs, "runs", 1, "runs, each with a fresh model; the median is reported")
	fs.Uint64Var(&seed, "seed", 0, "seed of the first run's model (run r uses seed+r)")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a pprof CPU profile of the first run's timed steps to `file`")
	fs.BoolVar(&guard, "guard", true, "wait for an idle machine before each run and retry runs during which other processes used 0.1 cores or more (Linux; as the PyTorch anchor)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// cpuTimes are busy CPU seconds of the whole machine and of this process.
type cpuTimes struct{ machine, self float64 }

// clockTick is USER_HZ, the unit of /proc/stat and /proc/self/stat: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// readCPU reads the machine's busy time (user, nice, system, irq, softirq
// of /proc/stat) and this process's (utime + stime of /proc/self/stat); ok
// is false where /proc is missing.
func readCPU() (cpuTimes, bool) {
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	line, _, _ := strings.Cut(string(st), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return cpuTimes{}, false
		}
		busy += v
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	s := string(self)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(rest) < 13 {
		return cpuTimes{}, false
	}
	ut, err1 := strconv.ParseFloat(rest[11], 64)
	stime, err2 := strconv.ParseFloat(rest[12], 64)
	if err1 != nil || err2 != nil {
		return cpuTimes{}, false
	}
	return cpuTimes{machine: busy / clockTick, self: (ut + stime) / clockTick}, true
}

// waitIdle returns once other processes used less than 0.1 cores over one
// second, after maxWait, when ctx ends or at once without /proc.
func waitIdle(ctx context.Context, maxWait time.Duration) {
	end := time.Now().Add(maxWait)
	for time.Now().Before(end) {
		c0, ok := readCPU()
		if !ok {
			return
		}
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		c1, ok := readCPU()
		if !ok || ((c1.machine-c0.machine)-(c1.self-c0.self))/time.Since(t0).Seconds() < 0.1 {
			return
		}
	}
}
