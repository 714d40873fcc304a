package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/ingest"
)

// produceFlags are the flags ingest and replay share.
type produceFlags struct {
	kafka        kafkaFlags
	topic        string
	partitions   int
	maxTextBytes int
	maxIDBytes   int
	json         bool
	fields       fieldFlags
	arrow        bool
}

func (f *produceFlags) register(fs *pflag.FlagSet) {
	f.kafka.Register(fs)
	fs.StringVar(&f.topic, "topic", pipeline.TopicRaw, "`topic` to produce the documents to")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the topic and of docs.deadletter when they are created")
	process.ByteSizeVar(fs, &f.maxTextBytes, "max-text-bytes", schemas.DefaultMaxTextBytes, "longest document text in `bytes`; longer ones are dead-lettered as oversize")
	process.ByteSizeVar(fs, &f.maxIDBytes, "max-id-bytes", schemas.DefaultMaxIDBytes, "longest document id in `bytes`; documents with longer ids are dead-lettered as invalid-id")
	fs.BoolVar(&f.json, "json", false, `print {"docs","bytes","deadletter","seconds"} as JSON on stdout`)
	f.fields.register(fs)
	fs.BoolVar(&f.arrow, "arrow", false, "produce Arrow batches (one input's documents of one partition, at most 1000 each) instead of JSON messages; a Parquet input's boolean, integer, float, string and binary columns become typed columns instead of meta members")
}

// fieldFlags name the input fields of the text and id (schemas.Limits).
type fieldFlags struct {
	text, id string
}

func (f *fieldFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.text, "text-field", "text", "input `field` (Parquet column or JSON member) that holds the text")
	fs.StringVar(&f.id, "id-field", "id", "input `field` (Parquet column or JSON member) that holds the id")
}

// job returns the produce job these flags describe.
func (f *produceFlags) job(name string, inputs []string) produceJob {
	return produceJob{
		name:         name,
		kafka:        &f.kafka,
		topic:        f.topic,
		partitions:   f.partitions,
		maxTextBytes: f.maxTextBytes,
		maxIDBytes:   f.maxIDBytes,
		json:         f.json,
		inputs:       inputs,
		fields:       f.fields,
		arrow:        f.arrow,
	}
}

func (a *app) ingestCmd() *cobra.Command {
	var f produceFlags
	cmd := &cobra.Command{
		Use:   "ingest [flags] INPUT...",
		Short: "Produce documents from files to a Kafka topic",
		Long: `Produce documents from files to a Kafka topic (default docs.raw), one JSON
message per document.

INPUT is a .jsonl or .jsonl.gz file (one {"id","text",...} object per line), a
.parquet file (columns id and text; other columns are kept as metadata; any
codec but the legacy Hadoop LZ4, a binary text column read as UTF-8), a
folder of .txt files (one document per file), or - for JSON lines on stdin.
--text-field and --id-field read the text and id from fields with other names
(a file without them is dead-lettered as wrong-schema, the error listing its
columns); a field named text or id that is not chosen is kept as input_text or
input_id.

Each good document becomes the message {"id","text",<other fields>} keyed by
its id, with headers content-type: application/json and schema-version: 1.
Keys are partitioned with murmur2, as Java and librdkafka clients do. A
document without an id gets <file base name>-<line or row number>.

With --arrow the documents go as Arrow Document batches instead (content-type
application/vnd.apache.arrow.stream, no key), each holding documents of one
input and one partition (the partition its id as key picks, so every
document lands where it would as JSON), at most 1000 rows or about 1 MiB. A
Parquet input's columns of type boolean, integer, float, string or binary
become typed columns of the batches, which the stages carry onto the domain
topics and into archive shards; its other columns (timestamps, dates,
decimals, lists, groups) and every field of JSON lines or text files stay in
meta. Running ingest again produces the documents again, as with JSON.

Bad records — malformed JSON, invalid UTF-8, empty text, text over
--max-text-bytes, an id over --max-id-bytes or with a lone UTF-16 surrogate
escape (invalid-id) — go to docs.deadletter instead, with the raw bytes as
value and headers deadletter-reason, deadletter-error, deadletter-stage=ingest,
origin-topic (the input path) and origin-offset (the line or row number). A
UTF-8 byte order mark at the start of a file is skipped.

A file that cannot be read to its end — a truncated gzip stream, data after
one, a corrupt Parquet file, a file that cannot be opened (permissions, a
symlink loop in a folder) — does not stop the others: its records before the
failure are produced, the rest of it becomes one dead letter (reason
truncated-input or unreadable-file, origin-offset the line or row where it
stops, value the part of a record read), and the report lists it under
"incomplete_files":[{"file","reason","error","records"}] (records: read from
it before the failure).

Both topics are created when missing (--partitions partitions). Every message
is acknowledged by all in-sync replicas. The report goes to stderr, or with
--json to stdout as {"docs":N,"bytes":N,"deadletter":N,"seconds":S} (docs:
documents written to the topic, bytes: their text bytes), plus "failed":N
when messages were not delivered. SIGINT stops reading, delivers what was read
and reports it with "interrupted":true.

Exit status: 0 when every input was read to its end and every message
delivered; 1 when messages were not delivered (or the broker cannot be
reached); 2 for a usage error; 3 when every message was delivered but input
files were incomplete: everything that could be read was produced, so do not
run the same command again (that would produce it twice); repair or replace
the listed files and ingest those.`,
		Example: `  pipeline ingest corpus.jsonl.gz
  pipeline ingest --brokers kafka-1:9092,kafka-2:9092 --tls --topic docs.raw archive.parquet notes/
  zcat dump.jsonl.gz | pipeline ingest --json -`,
		Args: argsBetween(1, -1, "INPUT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runProduce(cmd.Context(), f.job("ingest", args))
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// produceJob is one run of ingest or replay.
type produceJob struct {
	name         string // command name: "ingest" or "replay"
	kafka        *kafkaFlags
	topic        string
	partitions   int
	maxTextBytes int
	maxIDBytes   int
	json         bool
	inputs       []string
	docsPerSec   float64 // replay: rate limit; 0 = none
	parquetOnly  bool    // replay
	fields       fieldFlags
	arrow        bool // Arrow batches (ingest.Config.Arrow)
}

// produceReport is the report of ingest and replay (their --json output).
type produceReport = ingest.Report

// incompleteFile is an input file that could not be read to its end (run
// lists them as ingest does).
type incompleteFile = ingest.IncompleteFile

// exitIncomplete is the exit status of ingest and replay when every message
// was delivered but input files were incomplete.
const exitIncomplete = 3

// exitError is an error with an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// runProduce runs the ingress stage (ingest.Run) on the job's inputs and
// prints its report.
func (a *app) runProduce(ctx context.Context, job produceJob) error {
	if err := job.validate(); err != nil {
		return err
	}
	if err := ingest.CheckInputs(job.inputs); err != nil {
		return fmt.Errorf("%s: %w", job.name, err)
	}
	cc, err := job.kafka.Connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("%s: %w", job.name, err)
	}
	bar := a.newJobProgress(job)
	var progress func(int64)
	if bar != nil {
		progress = bar.add
	}
	rep, err := ingest.Run(ctx, ingest.Config{
		Client:      cc,
		Inputs:      job.inputs,
		Stdin:       a.stdin,
		Name:        job.name,
		Topic:       job.topic,
		Partitions:  job.partitions,
		Limits:      schemas.Limits{MaxTextBytes: job.maxTextBytes, MaxIDBytes: job.maxIDBytes, TextField: job.fields.text, IDField: job.fields.id},
		Rate:        job.docsPerSec,
		ParquetOnly: job.parquetOnly,
		Arrow:       job.arrow,
		Progress:    progress,
		Metrics:     a.stageMetrics(),
		Logger:      a.log,
	})
	bar.finish()
	if rep == nil {
		return err
	}
	switch {
	case job.json:
		// The report also goes out after a failure, so that a script sees
		// what was delivered.
		if werr := writeJSON(a.stdout, rep); werr != nil && err == nil {
			return werr
		}
	case err == nil:
		a.printProduceSummary(job, rep)
	}
	if err != nil {
		return err
	}
	if n := len(rep.IncompleteFiles); n > 0 {
		return &exitError{code: exitIncomplete, err: fmt.Errorf("%s: %s could not be read to the end (%s); everything read was delivered, the unread rest of each file dead-lettered",
			job.name, plural(int64(n), "input file"), incompleteNames(rep.IncompleteFiles))}
	}
	return nil
}

// incompleteNames lists the files, the first few.
func incompleteNames(files []incompleteFile) string {
	const show = 3
	var names []string
	for _, f := range files[:min(len(files), show)] {
		names = append(names, f.File)
	}
	s := strings.Join(names, ", ")
	if len(files) > show {
		s += fmt.Sprintf(" and %d more", len(files)-show)
	}
	return s
}

func (job produceJob) validate() error {
	switch {
	case job.topic == "":
		return usagef("%s: --topic is empty", job.name)
	case job.topic == pipeline.TopicDeadLetter:
		return usagef("%s: --topic %s is the dead-letter topic", job.name, job.topic)
	case job.partitions < 1:
		return usagef("%s: --partitions %d: want at least 1", job.name, job.partitions)
	case job.maxTextBytes < 1:
		return usagef("%s: --max-text-bytes %d: want at least 1", job.name, job.maxTextBytes)
	case job.maxIDBytes < 1:
		return usagef("%s: --max-id-bytes %d: want at least 1", job.name, job.maxIDBytes)
	case job.docsPerSec < 0:
		return usagef("%s: --rate %v: want 0 (no limit) or more", job.name, job.docsPerSec)
	case job.fields.text == "" || job.fields.id == "":
		return usagef("%s: --text-field and --id-field must not be empty", job.name)
	case job.fields.text == job.fields.id:
		return usagef("%s: --text-field and --id-field both name %q", job.name, job.fields.text)
	}
	stdin := 0
	for _, in := range job.inputs {
		if in == "-" {
			if stdin++; stdin > 1 {
				return usagef("%s: - (stdin) given twice", job.name)
			}
			if job.parquetOnly {
				return usagef("%s: %s reads .parquet files, not stdin", job.name, job.name)
			}
			continue
		}
		if job.parquetOnly && !strings.HasSuffix(strings.ToLower(in), ".parquet") {
			return usagef("%s: %s is not a .parquet file", job.name, in)
		}
	}
	return nil
}

// openInput opens one input; "-" reads JSON lines from the app's stdin.
func (a *app) openInput(in string, lim schemas.Limits) (schemas.InputReader, error) {
	if in == "-" {
		return schemas.NewLineReader("stdin", a.stdin, lim)
	}
	return schemas.OpenInput(in, lim)
}

func (a *app) newJobProgress(job produceJob) *progress {
	if !isTerminal(a.stderr) {
		return nil
	}
	if job.parquetOnly {
		return a.newProgress(job.name, parquetRows(job.inputs), false)
	}
	var paths []string
	for _, in := range job.inputs {
		if in != "-" {
			paths = append(paths, in)
		}
	}
	total := int64(0)
	if len(paths) == len(job.inputs) {
		total = schemas.InputSize(paths...)
	}
	return a.newProgress(job.name, total, true)
}

func (a *app) printProduceSummary(job produceJob, rep *produceReport) {
	elapsed := time.Duration(rep.Seconds * float64(time.Second))
	msg := fmt.Sprintf("%s: %s (%s of text) to %s", job.name, plural(rep.Docs, "document"), humanBytes(rep.Bytes), job.topic)
	if rep.DeadLetter > 0 {
		msg += fmt.Sprintf(", %s to %s", plural(rep.DeadLetter, "dead letter"), pipeline.TopicDeadLetter)
	}
	msg += fmt.Sprintf(" in %.2fs (%.0f docs/s)", elapsed.Seconds(), rate(rep.Docs, elapsed))
	if rep.Interrupted {
		msg += "; interrupted before the end of the input"
	}
	fmt.Fprintln(a.stderr, msg)
	for _, f := range rep.IncompleteFiles {
		fmt.Fprintf(a.stderr, "%s: incomplete input %s (%s): %s read, then: %s\n", job.name, f.File, f.Reason, plural(f.Records, "record"), f.Error)
	}
}
