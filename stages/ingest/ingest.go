package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Config configures one run of the ingress stage. The zero value of every
// field but Client and Inputs works.
type Config struct {
	// Client is the Kafka connection; it must name brokers.
	Client pipeline.ClientConfig
	// Inputs are the files to read, in order: .jsonl, .jsonl.gz, .parquet,
	// a folder of .txt files, or "-" for JSON lines from Stdin (once).
	Inputs []string
	// Stdin is what the input "-" reads. Default: nil, and "-" is an error.
	Stdin io.Reader
	// Name is the stage name the dead letters (deadletter-stage), metrics,
	// logs and errors carry. Default: "ingest".
	Name string
	// Topic is where the documents go. Default: pipeline.TopicRaw.
	Topic string
	// Partitions of Topic and of docs.deadletter when Run creates them.
	// Default: 4.
	Partitions int
	// Limits on a document's text and id; longer ones are dead-lettered as
	// oversize and invalid-id. Default: schemas.DefaultMaxTextBytes and
	// schemas.DefaultMaxIDBytes.
	Limits schemas.Limits
	// Rate caps the documents per second (a pacer that flushes before it
	// waits). Default: 0, as fast as possible.
	Rate float64
	// Arrow produces the documents as Arrow Document batches instead of one
	// JSON message each: the typed columns of a Parquet input (see
	// schemas.Limits.TypedExtras: booleans, integers, floats, strings,
	// binary) become typed extra columns of its batches, which the stages
	// carry onto docs.domain.<id> and into archive shards, instead of
	// members of meta; other inputs' fields stay in meta. Each document goes
	// to the partition its id as key would (murmur2), so a document's
	// partition is the same as in JSON; a batch holds one input's documents
	// of one partition, at most 1000 rows or about 1 MiB, and has no key.
	// Default: false, JSON messages keyed by id.
	Arrow bool
	// ParquetOnly accepts only .parquet inputs (what replay reads), and
	// makes Progress count records instead of bytes. Default: false.
	ParquetOnly bool
	// Progress, when set, is called on Run's goroutine after each record
	// with how far the input advanced: about the record's bytes in its file,
	// or 1 with ParquetOnly. Default: none.
	Progress func(n int64)
	// Metrics, when set, counts records in and out, bytes out and dead
	// letters under the stage Name. Default: none.
	Metrics *pipeline.Metrics
	// Logger gets the warnings (incomplete files, oversize documents,
	// failed deliveries) and debug lines. Default: Client.Logger, else
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) name() string    { return cmp(c.Name, "ingest") }
func (c *Config) topic() string   { return cmp(c.Topic, pipeline.TopicRaw) }
func (c *Config) partitions() int { return cmpInt(c.Partitions, 4) }
func (c *Config) logger() *slog.Logger {
	switch {
	case c.Logger != nil:
		return c.Logger
	case c.Client.Logger != nil:
		return c.Client.Logger
	}
	return slog.Default()
}

func (c *Config) limits() schemas.Limits {
	return schemas.Limits{
		MaxTextBytes: cmpInt(c.Limits.MaxTextBytes, schemas.DefaultMaxTextBytes),
		MaxIDBytes:   cmpInt(c.Limits.MaxIDBytes, schemas.DefaultMaxIDBytes),
		TextField:    c.Limits.TextField,
		IDField:      c.Limits.IDField,
		TypedExtras:  c.Arrow,
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cmpInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// validate rejects a configuration Run cannot carry out, with a sentence
// naming the field.
func (c *Config) validate() error {
	switch {
	case len(c.Inputs) == 0:
		return errors.New("no inputs")
	case c.topic() == pipeline.TopicDeadLetter:
		return fmt.Errorf("topic %s is the dead-letter topic", c.topic())
	case c.Rate < 0:
		return fmt.Errorf("rate %v: want 0 (no limit) or more", c.Rate)
	case c.Partitions < 0 || c.Limits.MaxTextBytes < 0 || c.Limits.MaxIDBytes < 0:
		return errors.New("partitions and limits must not be negative")
	}
	stdin := 0
	for _, in := range c.Inputs {
		if in == "-" {
			switch stdin++; {
			case stdin > 1:
				return errors.New("- (stdin) given twice")
			case c.ParquetOnly:
				return errors.New("reads .parquet files, not stdin")
			case c.Stdin == nil:
				return errors.New("input - (stdin) without a Stdin reader")
			}
			continue
		}
		if c.ParquetOnly && !strings.HasSuffix(strings.ToLower(in), ".parquet") {
			return fmt.Errorf("%s is not a .parquet file", in)
		}
	}
	return nil
}

// Report is what a run delivered. Its JSON form is the --json report of
// `pipeline ingest` and `pipeline replay`.
type Report struct {
	// Docs is the documents acknowledged on the topic, Bytes their text
	// bytes.
	Docs  int64 `json:"docs"`
	Bytes int64 `json:"bytes"`
	// DeadLetter is the dead letters acknowledged on docs.deadletter: bad
	// records, oversize documents and the unread rests of incomplete files.
	DeadLetter int64   `json:"deadletter"`
	Seconds    float64 `json:"seconds"`
	// Failed is the messages not delivered (Run then returns an error).
	Failed int64 `json:"failed,omitempty"`
	// Interrupted: ctx ended before the end of the input; what was read was
	// delivered.
	Interrupted bool `json:"interrupted,omitempty"`
	// IncompleteFiles are the input files that could not be read to their
	// end; the rest of each was dead-lettered as one record.
	IncompleteFiles []IncompleteFile `json:"incomplete_files,omitempty"`
}

// IncompleteFile is an input file that could not be read to its end.
type IncompleteFile struct {
	File    string `json:"file"`
	Reason  string `json:"reason"` // truncated-input or unreadable-file
	Error   string `json:"error"`
	Records int64  `json:"records"` // records read from it before the failure
}

// CheckInputs fails when an input path does not exist, so that a caller can
// refuse a run before it contacts the broker. Run checks them too.
func CheckInputs(inputs []string) error { return schemas.CheckInputs(inputs) }

// Run reads every input and produces its documents to the topic and its bad
// records to docs.deadletter, creating both topics when missing. It stops
// reading when ctx ends, delivers what was read and reports Interrupted.
//
// The error is about the run as a whole: a bad configuration, a missing
// input, topics that cannot be created (Report nil), or messages not
// delivered (Report set, Failed > 0). Incomplete input files are not an
// error: they are listed in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	name := cfg.name()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := CheckInputs(cfg.Inputs); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	topic := cfg.topic()
	err := pipeline.EnsureTopics(ctx, cfg.Client,
		pipeline.TopicSpec{Name: topic, Partitions: cfg.partitions()},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: cfg.partitions()})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	log := cfg.logger().With("cmd", name, "topic", topic)
	parts := 0
	if cfg.Arrow {
		if parts, err = pipeline.PartitionCount(ctx, cfg.Client, topic); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	p, err := newProducer(cfg.Client, name, topic, log, cfg.Metrics, cfg.Arrow)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r := &run{cfg: &cfg, topic: topic, p: p, pace: newPacer(cfg.Rate), lim: cfg.limits(), log: log}
	if cfg.Arrow {
		r.batch = newBatcher(p, topic, parts)
	}
	if cfg.Metrics != nil {
		r.recordsIn = func() { cfg.Metrics.RecordsIn.WithLabelValues(name).Inc() }
	}

	start := time.Now()
	interrupted := false
	for _, in := range cfg.Inputs {
		rd, err := r.open(in)
		if err != nil { // gone since CheckInputs: the other inputs go on
			r.record(ctx, in, 1, schemas.IncompleteRecord(in, in, 0, err, nil))
			continue
		}
		if r.batch != nil {
			var fields []arrow.Field
			if ti, ok := rd.(schemas.TypedInput); ok {
				fields = ti.ExtraFields()
			}
			r.batch.start(fields)
		}
		interrupted = r.input(ctx, in, rd)
		if r.batch != nil {
			r.batch.flush()
		}
		rd.Close()
		if interrupted {
			break
		}
	}
	closeErr := p.close()
	elapsed := time.Since(start)

	c := p.counts()
	rep := &Report{
		Docs:            c.docs,
		Bytes:           c.bytes,
		DeadLetter:      c.dead,
		Seconds:         math.Round(elapsed.Seconds()*1000) / 1000,
		Failed:          c.failed,
		Interrupted:     interrupted,
		IncompleteFiles: r.incomplete,
	}
	log.Debug("done", "docs", rep.Docs, "bytes", rep.Bytes, "deadletter", rep.DeadLetter,
		"failed", rep.Failed, "seconds", rep.Seconds, "interrupted", interrupted, "incomplete_files", len(rep.IncompleteFiles))
	switch {
	case c.failed > 0:
		return rep, fmt.Errorf("%s: %d of %d messages were not delivered (delivered: %s, %s): %w",
			name, c.failed, c.failed+c.docs+c.dead, plural(c.docs, "document"), plural(c.dead, "dead letter"), c.err)
	case closeErr != nil:
		return rep, fmt.Errorf("%s: %w", name, closeErr)
	}
	if interrupted {
		log.Warn("interrupted before the end of the input")
	}
	return rep, nil
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// run is what one Run uses for every input.
type run struct {
	cfg       *Config
	topic     string
	p         *producer
	batch     *batcher // Config.Arrow: the batches being built
	pace      *pacer
	lim       schemas.Limits
	recordsIn func() // nil without metrics
	log       *slog.Logger
	// incomplete lists the input files that could not be read to their end.
	incomplete []IncompleteFile
	// wrongSchema holds the input files of which a record was wrong-schema
	// (a Parquet file whose text column is not a string), warned about once.
	wrongSchema map[string]bool
}

// open opens one input; "-" reads JSON lines from Stdin.
func (r *run) open(in string) (schemas.InputReader, error) {
	if in == "-" {
		return schemas.NewLineReader("stdin", r.cfg.Stdin, r.lim)
	}
	return schemas.OpenInput(in, r.lim)
}

// input queues the documents and dead letters of input in, read from rd. It
// reports interrupted when ctx ended before the end of the input. A file of
// the input that cannot be read to its end is listed in r.incomplete and
// the rest of the input is read.
func (r *run) input(ctx context.Context, in string, rd schemas.InputReader) (interrupted bool) {
	r.log.Debug("reading input", "input", in)
	for n := int64(1); ; n++ {
		if ctx.Err() != nil {
			return true
		}
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			// Not from the readers of package schemas (their failures are
			// records): the input cannot go on.
			r.record(ctx, in, n, schemas.IncompleteRecord(in, in, n-1, err, nil))
			return false
		}
		if !r.record(ctx, in, n, rec) {
			return true
		}
	}
}

// record queues the document or dead letter of rec, the nth record of input
// in, and lists the file it ends when it stands for the unread rest of one.
// It reports false when ctx ended while it waited for the Rate.
func (r *run) record(ctx context.Context, in string, n int64, rec schemas.InputRecord) bool {
	if r.recordsIn != nil {
		r.recordsIn()
	}
	if r.cfg.Progress != nil {
		if r.cfg.ParquetOnly {
			r.cfg.Progress(1)
		} else { // about the record's bytes in the file
			r.cfg.Progress(int64(len(rec.Raw)+len(rec.Doc.Text)+len(rec.Doc.ID)+len(rec.Doc.Meta)) + 16)
		}
	}
	origin, pos := recordOrigin(in, rec.Source)
	if rec.Err != nil {
		var ie *schemas.IncompleteError
		if errors.As(rec.Err, &ie) {
			f := IncompleteFile{File: ie.File, Reason: string(schemas.ReasonOf(rec.Err)), Error: ie.Err.Error(), Records: ie.Records}
			r.incomplete = append(r.incomplete, f)
			r.log.Warn("input file incomplete; the rest of it is dead-lettered", "file", f.File, "reason", f.Reason, "records", f.Records, "err", ie.Err)
		} else if schemas.ReasonOf(rec.Err) == schemas.ReasonWrongSchema && !r.wrongSchema[origin] {
			if r.wrongSchema == nil {
				r.wrongSchema = map[string]bool{}
			}
			r.wrongSchema[origin] = true
			r.log.Warn("input file has records of the wrong schema; they are dead-lettered", "file", origin, "err", rec.Err)
		}
		r.p.deadLetter(rec.Raw, rec.Err, origin, pos)
		return true
	}
	doc := rec.Doc
	if doc.ID == "" {
		if pos == "" {
			pos = strconv.FormatInt(n, 10)
		}
		doc.ID = IDPrefix(in) + "-" + pos
		if max := r.lim.MaxIDBytes; max > 0 && len(doc.ID) > max {
			r.p.deadLetter([]byte(doc.Text), &schemas.DecodeError{Reason: schemas.ReasonInvalidID,
				Err: fmt.Errorf("generated id %q is over --max-id-bytes %d", doc.ID, max)}, origin, pos)
			return true
		}
	}
	if r.batch != nil {
		if !r.pace.wait(ctx, r.flush) {
			return false
		}
		if err := r.batch.add(doc, rec.Extra, origin, pos); err != nil {
			raw, _ := schemas.AppendJSON(nil, doc)
			r.p.deadLetter(raw, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: err}, origin, pos)
		}
		return true
	}
	value, err := schemas.AppendJSON(nil, doc)
	if err != nil {
		r.p.deadLetter([]byte(doc.Text), err, origin, pos)
		return true
	}
	if !r.pace.wait(ctx, r.flush) {
		return false
	}
	r.p.addDoc(pipeline.Message{
		Topic:   r.topic,
		Key:     []byte(doc.ID),
		Value:   value,
		Headers: docHeaders,
	}, docData{textBytes: len(doc.Text), origin: origin, pos: pos})
	return true
}

// flush sends the batches being built, if any, and hands the producer's
// queue to the broker: what the pacer does before it waits.
func (r *run) flush() {
	if r.batch != nil {
		r.batch.sendAll()
	}
	r.p.flush()
}

// docHeaders are the headers of every document message.
var docHeaders = pipeline.ContentHeaders(schemas.ContentTypeJSON)

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

// IDPrefix is the prefix of the ids generated for the documents of input
// in that have none (the id is IDPrefix(in) + "-" + the line or row number):
// the file name without its input extension, or "stdin" for "-".
func IDPrefix(in string) string {
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
