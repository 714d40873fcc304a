package main

import (
	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/schemas"
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

Each FILE.parquet has the columns id and text (or those --id-field and
--text-field name); other columns are kept as metadata. Rows become messages exactly as with ingest: JSON documents keyed by
id (murmur2 partitioning), headers content-type: application/json and
schema-version: 1; a row without an id gets <file base name>-<row number>.
Bad rows (invalid UTF-8, empty text, text over --max-text-bytes, an id over
--max-id-bytes, every row of a file whose text column is not a string) go to
docs.deadletter with deadletter-reason, deadletter-error,
deadletter-stage=replay, origin-topic (the file) and origin-offset (the row
number) headers. Missing topics are created with --partitions partitions.
With --arrow the rows go as Arrow batches that keep the typed columns of the
files (an archive shard's extra columns, as the archive wrote them); see
pipeline ingest --help.

A file that cannot be read to its end (not Parquet, a corrupt footer or row
group) does not stop the others: its rows before the failure are replayed, the
rest becomes one dead letter (reason unreadable-file or truncated-input,
origin-offset the first row not read), and the report lists it under
"incomplete_files":[{"file","reason","error","records"}].

The report goes to stderr, or with --json to stdout as
{"docs":N,"bytes":N,"deadletter":N,"seconds":S}. Exit status: 1 when a
message is not delivered; 3 when every message was delivered but files were
incomplete (do not replay the same files again: their readable rows were
delivered). SIGINT stops the replay, delivers what was read and reports it
with "interrupted":true. On a terminal a progress bar counts rows.`,
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
		n, err := schemas.ParquetFileRows(p)
		if err != nil {
			return 0
		}
		total += n
	}
	return total
}
