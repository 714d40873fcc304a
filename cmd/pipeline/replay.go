package main

import (
	"os"

	"github.com/parquet-go/parquet-go"
	"github.com/spf13/cobra"
)

// replayFlags are the flags of `pipeline replay`.
type replayFlags struct {
	produceFlags
	rate float64
}

func (a *app) replayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE.parquet...",
		Short: "Replay archived documents from Parquet files to a Kafka topic",
		Long: `Replay archived documents from Parquet files to a Kafka topic (default
docs.raw), at most --rate documents per second (0: as fast as possible), so that
a recorded stream can be played back at its original pace or faster.

Each FILE.parquet has the columns id and text; other columns are kept as
metadata. Rows become messages exactly as with ingest: JSON documents keyed by
id (murmur2 partitioning), headers content-type: application/json and
schema-version: 1; a row without an id gets <file base name>-<row number>.
Bad rows (invalid UTF-8, empty text, text over --max-text-bytes) go to
docs.deadletter with deadletter-reason, deadletter-error,
deadletter-stage=replay, origin-topic (the file) and origin-offset (the row
number) headers. Missing topics are created with --partitions partitions.

The report goes to stderr, or with --json to stdout as
{"docs":N,"bytes":N,"deadletter":N,"seconds":S}. A message that is not
delivered makes the command exit 1; SIGINT stops the replay, delivers what was
read and reports it with "interrupted":true. On a terminal a progress bar
counts rows.`,
		Example: `  pipeline replay archive/2024-05.parquet
  pipeline replay --rate 500 --topic docs.raw day1.parquet day2.parquet
  pipeline replay --json --brokers kafka:9092 archive.parquet`,
		Args: argsBetween(1, -1, "FILE.parquet"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := f.job("replay", args)
			job.docsPerSec, job.parquetOnly = f.rate, true
			return a.runProduce(cmd.Context(), job)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().Float64Var(&f.rate, "rate", 0, "at most this many `docs/s` (0: as fast as possible)")
	return cmd
}

// parquetRows returns the total row count of the Parquet files, or 0 when
// one cannot be read (the progress bar then shows a spinner).
func parquetRows(paths []string) int64 {
	var total int64
	for _, p := range paths {
		n, err := parquetFileRows(p)
		if err != nil {
			return 0
		}
		total += n
	}
	return total
}

func parquetFileRows(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, err
	}
	return pf.NumRows(), nil
}
