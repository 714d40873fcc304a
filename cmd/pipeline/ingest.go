package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// produceFlags are the flags ingest and replay share.
type produceFlags struct {
	kafka        kafkaFlags
	topic        string
	partitions   int
	maxTextBytes int
	maxIDBytes   int
	json         bool
}

func (f *produceFlags) register(fs *pflag.FlagSet) {
	f.kafka.register(fs)
	fs.StringVar(&f.topic, "topic", pipeline.TopicRaw, "`topic` to produce the documents to")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the topic and of docs.deadletter when they are created")
	fs.IntVar(&f.maxTextBytes, "max-text-bytes", schemas.DefaultMaxTextBytes, "longest document text in `bytes`; longer ones are dead-lettered as oversize")
	fs.IntVar(&f.maxIDBytes, "max-id-bytes", schemas.DefaultMaxIDBytes, "longest document id in `bytes`; documents with longer ids are dead-lettered as invalid-id")
	fs.BoolVar(&f.json, "json", false, `print {"docs","bytes","deadletter","seconds"} as JSON on stdout`)
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
.parquet file (columns id and text; other columns are kept as metadata), a
folder of .txt files (one document per file), or - for JSON lines on stdin.

Each good document becomes the message {"id","text",<other fields>} keyed by
its id, with headers content-type: application/json and schema-version: 1.
Keys are partitioned with murmur2, as Java and librdkafka clients do. A
document without an id gets <file base name>-<line or row number>.

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
}

// produceReport is the report of ingest and replay.
type produceReport struct {
	Docs        int64   `json:"docs"`
	Bytes       int64   `json:"bytes"`
	DeadLetter  int64   `json:"deadletter"`
	Seconds     float64 `json:"seconds"`
	Failed      int64   `json:"failed,omitempty"`      // messages not delivered (then the exit status is 1)
	Interrupted bool    `json:"interrupted,omitempty"` // stopped by SIGINT/SIGTERM before the end of the input
	// IncompleteFiles are the input files that could not be read to their
	// end (then the exit status is 3, unless it is 1).
	IncompleteFiles []incompleteFile `json:"incomplete_files,omitempty"`
}

// incompleteFile is an input file that could not be read to its end; the
// rest of it was dead-lettered as one record.
type incompleteFile struct {
	File    string `json:"file"`
	Reason  string `json:"reason"` // truncated-input or unreadable-file
	Error   string `json:"error"`
	Records int64  `json:"records"` // records read from it before the failure
}

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

// runProduce reads every input and produces its documents to the topic and
// its bad records to the dead-letter topic.
func (a *app) runProduce(ctx context.Context, job produceJob) error {
	if err := job.validate(); err != nil {
		return err
	}
	for _, in := range job.inputs {
		if err := checkInput(in); err != nil {
			return fmt.Errorf("%s: %w", job.name, err)
		}
	}
	cc, err := job.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("%s: %w", job.name, err)
	}
	err = pipeline.EnsureTopics(ctx, cc,
		pipeline.TopicSpec{Name: job.topic, Partitions: job.partitions},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: job.partitions})
	if err != nil {
		return fmt.Errorf("%s: %w", job.name, err)
	}
	log := a.log.With("cmd", job.name, "topic", job.topic)
	run := &produceRun{
		job:  job,
		p:    newProducer(cc, job.name, job.topic, log, a.stageMetrics()),
		bar:  a.newJobProgress(job),
		pace: newPacer(job.docsPerSec),
		lim:  schemas.Limits{MaxTextBytes: job.maxTextBytes, MaxIDBytes: job.maxIDBytes},
		log:  log,
	}
	if m := a.stageMetrics(); m != nil {
		run.recordsIn = m.RecordsIn.WithLabelValues(job.name)
	}
	p := run.p

	start := time.Now()
	interrupted := false
	for _, in := range job.inputs {
		r, err := a.openInput(in, run.lim)
		if err != nil { // gone since checkInput: the other inputs go on
			run.record(ctx, in, 1, schemas.IncompleteRecord(in, in, 0, err, nil))
			continue
		}
		interrupted = run.input(ctx, in, r)
		r.Close()
		if interrupted {
			break
		}
	}
	closeErr := p.close()
	run.bar.finish()
	elapsed := time.Since(start)

	c := p.counts()
	rep := produceReport{
		Docs:            c.docs,
		Bytes:           c.bytes,
		DeadLetter:      c.dead,
		Seconds:         seconds(elapsed),
		Failed:          c.failed,
		Interrupted:     interrupted,
		IncompleteFiles: run.incomplete,
	}
	log.Debug("done", "docs", rep.Docs, "bytes", rep.Bytes, "deadletter", rep.DeadLetter,
		"failed", rep.Failed, "seconds", rep.Seconds, "interrupted", interrupted, "incomplete_files", len(rep.IncompleteFiles))
	ok := c.failed == 0 && closeErr == nil
	switch {
	case job.json:
		// The report also goes out after a failure, so that a script sees
		// what was delivered.
		if err := writeJSON(a.stdout, rep); err != nil && ok {
			return err
		}
	case ok:
		a.printProduceSummary(job, rep, elapsed)
	}
	switch {
	case c.failed > 0:
		return fmt.Errorf("%s: %d of %d messages were not delivered (delivered: %s, %s): %w",
			job.name, c.failed, c.failed+c.docs+c.dead, plural(c.docs, "document"), plural(c.dead, "dead letter"), c.err)
	case closeErr != nil:
		return fmt.Errorf("%s: %w", job.name, closeErr)
	}
	if interrupted {
		log.Warn("interrupted before the end of the input")
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

// produceRun is what one run of ingest or replay uses for every input.
type produceRun struct {
	job       produceJob
	p         *producer
	bar       *progress
	pace      *pacer
	lim       schemas.Limits
	recordsIn prometheus.Counter // nil without --metrics-addr
	log       *slog.Logger
	// incomplete lists the input files that could not be read to their end.
	incomplete []incompleteFile
	// wrongSchema holds the input files of which a record was wrong-schema
	// (a Parquet file whose text column is not a string), warned about once.
	wrongSchema map[string]bool
}

// input queues the documents and dead letters of input in, read from r. It
// reports interrupted when ctx ended before the end of the input. A file of
// the input that cannot be read to its end is listed in run.incomplete and
// the rest of the input is read.
func (run *produceRun) input(ctx context.Context, in string, r schemas.InputReader) (interrupted bool) {
	run.log.Debug("reading input", "input", in)
	for n := int64(1); ; n++ {
		if ctx.Err() != nil {
			return true
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			// Not from the readers of package schemas (their failures are
			// records): the input cannot go on.
			run.record(ctx, in, n, schemas.IncompleteRecord(in, in, n-1, err, nil))
			return false
		}
		if !run.record(ctx, in, n, rec) {
			return true
		}
	}
}

// record queues the document or dead letter of rec, the nth record of input
// in, and lists the file it ends when it stands for the unread rest of one.
// It reports false when ctx ended while it waited for --rate.
func (run *produceRun) record(ctx context.Context, in string, n int64, rec schemas.InputRecord) bool {
	if run.recordsIn != nil {
		run.recordsIn.Inc()
	}
	if run.job.parquetOnly {
		run.bar.add(1)
	} else { // about the record's bytes in the file
		run.bar.add(int64(len(rec.Raw)+len(rec.Doc.Text)+len(rec.Doc.ID)+len(rec.Doc.Meta)) + 16)
	}
	origin, pos := recordOrigin(in, rec.Source)
	if rec.Err != nil {
		var ie *schemas.IncompleteError
		if errors.As(rec.Err, &ie) {
			f := incompleteFile{File: ie.File, Reason: string(schemas.ReasonOf(rec.Err)), Error: ie.Err.Error(), Records: ie.Records}
			run.incomplete = append(run.incomplete, f)
			run.log.Warn("input file incomplete; the rest of it is dead-lettered", "file", f.File, "reason", f.Reason, "records", f.Records, "err", ie.Err)
		} else if schemas.ReasonOf(rec.Err) == schemas.ReasonWrongSchema && !run.wrongSchema[origin] {
			if run.wrongSchema == nil {
				run.wrongSchema = map[string]bool{}
			}
			run.wrongSchema[origin] = true
			run.log.Warn("input file has records of the wrong schema; they are dead-lettered", "file", origin, "err", rec.Err)
		}
		run.p.deadLetter(rec.Raw, rec.Err, origin, pos)
		return true
	}
	doc := rec.Doc
	if doc.ID == "" {
		if pos == "" {
			pos = strconv.FormatInt(n, 10)
		}
		doc.ID = idBase(in) + "-" + pos
		if max := run.lim.MaxIDBytes; max > 0 && len(doc.ID) > max {
			run.p.deadLetter([]byte(doc.Text), &schemas.DecodeError{Reason: schemas.ReasonInvalidID,
				Err: fmt.Errorf("generated id %q is over --max-id-bytes %d", doc.ID, max)}, origin, pos)
			return true
		}
	}
	value, err := schemas.AppendJSON(nil, doc)
	if err != nil {
		run.p.deadLetter([]byte(doc.Text), err, origin, pos)
		return true
	}
	if !run.pace.wait(ctx, run.p) {
		return false
	}
	run.p.addDoc(kafka.Message{
		Topic:   run.job.topic,
		Key:     []byte(doc.ID),
		Value:   value,
		Headers: docHeaders,
	}, len(doc.Text), origin, pos)
	return true
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

// checkInput fails early, before any message is produced, when an input
// path does not exist.
func checkInput(in string) error {
	if in == "-" {
		return nil
	}
	if _, err := os.Stat(in); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("open %s: %w", in, pe.Err)
		}
		return err
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

// recordOrigin splits an InputRecord.Source ("file.jsonl:17",
// "file.parquet#row=5" or "dir/a.txt") into the file the record came from and
// its line or row number ("" for a whole text file).
func recordOrigin(in, source string) (file, pos string) {
	if source == "" {
		return in, ""
	}
	if i := strings.LastIndex(source, "#row="); i >= 0 && isDigits(source[i+5:]) {
		return source[:i], source[i+5:]
	}
	if i := strings.LastIndexByte(source, ':'); i >= 0 && isDigits(source[i+1:]) {
		return source[:i], source[i+1:]
	}
	return source, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idBase is the prefix of the ids generated for the documents of input in
// that have none: the file name without its input extension.
func idBase(in string) string {
	if in == "-" {
		return "stdin"
	}
	base := filepath.Base(filepath.Clean(in))
	lower := strings.ToLower(base)
	for _, ext := range []string{".jsonl.gz", ".jsonl", ".parquet"} {
		if strings.HasSuffix(lower, ext) && len(base) > len(ext) {
			return base[:len(base)-len(ext)]
		}
	}
	return base
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

func (a *app) printProduceSummary(job produceJob, rep produceReport, elapsed time.Duration) {
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

// docHeaders are the headers of every document message.
var docHeaders = []kafka.Header{
	{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
	{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
}
