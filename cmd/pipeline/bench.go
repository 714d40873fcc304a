package main

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

func (a *app) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Built-in benchmarks that print throughput",
		Long: `Built-in micro and macro benchmarks. Each prints a table on stdout, or with
--json one JSON object. They measure this process on this machine; for side-by-side
comparisons with scikit-learn, numpy and PyTorch see the scripts in bench/ and
BENCHMARKS.md.`,
		Example: `  pipeline bench featurize
  pipeline bench featurize --featurizers hashing --workers 1 --json`,
		Args: noSubcommand,
	}
	cmd.AddCommand(a.benchFeaturizeCmd())
	cmd.AddCommand(a.benchTrainCmd())
	cmd.AddCommand(a.benchGemmCmd())
	return cmd
}

// benchFeaturizeResult is one featurizer's figures.
type benchFeaturizeResult struct {
	Featurizer string    `json:"featurizer"`
	Seconds    []float64 `json:"seconds"` // fit + transform of the whole input, per run
	Median     float64   `json:"median_seconds"`
	MBPerS     float64   `json:"mb_per_s"` // text bytes (10^6) / median
	DocsPerS   float64   `json:"docs_per_s"`
	Dim        int       `json:"dim"`
}

type benchFeaturizeReport struct {
	Docs    int                    `json:"docs"`
	Bytes   int64                  `json:"bytes"`
	Workers int                    `json:"workers"`
	Results []benchFeaturizeResult `json:"results"`
}

func (a *app) benchFeaturizeCmd() *cobra.Command {
	var (
		in      string
		kinds   []string
		runs    int
		workers int
		dims    int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "featurize",
		Short: "Time fit + transform of each featurizer on a corpus held in memory",
		Long: `Load a corpus into memory (default: ../shared/corpora/mixed-v1.jsonl.gz when it
exists, else testdata/mixed-small.jsonl.gz), then fit and transform it with each
--featurizers kind --runs times, and print the median time, MB/s of text and
docs/s. Reading the file is not timed here; 'pipeline embed --json' times the
whole process.`,
		Example: `  pipeline bench featurize
  pipeline bench featurize --in corpus.jsonl.gz --featurizers tfidf,hashing --runs 5 --workers 1 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				in = "../shared/corpora/mixed-v1.jsonl.gz"
				if _, err := os.Stat(in); err != nil {
					if in, err = demoCorpus("bench featurize", "--in"); err != nil {
						return err
					}
				}
			}
			if runs < 1 {
				return usagef("bench featurize: --runs must be at least 1")
			}
			var ks []embed.Kind
			for _, k := range kinds {
				kind, err := embed.ParseKind(k)
				if err != nil || kind == embed.KindHTTP {
					return usagef("bench featurize: --featurizers: %q is not tfidf, hashing or lsa", k)
				}
				ks = append(ks, kind)
			}
			texts, bytes, err := a.loadTexts(in)
			if err != nil {
				return fmt.Errorf("bench featurize: %w", err)
			}
			rep := benchFeaturizeReport{Docs: len(texts), Bytes: bytes, Workers: workers}
			ctx := cmd.Context()
			for _, k := range ks {
				res := benchFeaturizeResult{Featurizer: string(k)}
				for range runs {
					start := time.Now()
					f, _, err := embed.Fit(ctx, k, texts, embed.FitOptions{
						Tfidf:   embed.TfidfConfig{Workers: workers},
						Hashing: embed.HashingConfig{Workers: workers},
						LSA:     embed.LSAConfig{Dims: dims, Workers: workers},
					})
					if err != nil {
						return fmt.Errorf("bench featurize: %s: %w", k, err)
					}
					res.Seconds = append(res.Seconds, seconds(time.Since(start)))
					res.Dim = f.Dim()
				}
				sorted := slices.Clone(res.Seconds)
				sort.Float64s(sorted)
				res.Median = sorted[len(sorted)/2]
				res.MBPerS = float64(bytes) / 1e6 / res.Median
				res.DocsPerS = float64(len(texts)) / res.Median
				rep.Results = append(rep.Results, res)
			}
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stdout, "%d documents, %s of text, workers %d (0: one per CPU), median of %d runs\n", rep.Docs, humanBytes(bytes), workers, runs)
			fmt.Fprintf(a.stdout, "%-10s %10s %10s %12s %10s\n", "featurizer", "seconds", "MB/s", "docs/s", "dim")
			for _, r := range rep.Results {
				fmt.Fprintf(a.stdout, "%-10s %10.3f %10.1f %12.0f %10d\n", r.Featurizer, r.Median, r.MBPerS, r.DocsPerS, r.Dim)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&in, "in", "", "corpus `file` (.jsonl, .jsonl.gz, .parquet, a folder of .txt)")
	fs.StringSliceVar(&kinds, "featurizers", []string{"tfidf", "hashing", "lsa"}, "featurizers to time")
	fs.IntVar(&runs, "runs", 3, "runs per featurizer")
	fs.IntVar(&workers, "workers", 0, "goroutines (0: one per CPU)")
	fs.IntVar(&dims, "dims", 100, "lsa: output dimension")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// loadTexts reads the texts of an input file into memory; bad records
// are skipped.
func (a *app) loadTexts(path string) ([]string, int64, error) {
	dr := schemas.NewDocReader([]string{path}, schemas.Limits{MaxTextBytes: 64 << 20}, a.stdin, nil)
	defer dr.Close()
	if err := dr.ReadAll(); err != nil {
		return nil, 0, err
	}
	if len(dr.Texts()) == 0 {
		return nil, 0, fmt.Errorf("no documents in %s", path)
	}
	return dr.Texts(), dr.Bytes(), nil
}
