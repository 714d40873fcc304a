package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// inspectFlags are the flags of `pipeline inspect`.
type inspectFlags struct {
	kafka         kafkaFlags
	topic         string
	max           int
	fromBeginning bool
	partition     int
	timeout       time.Duration
	follow        bool
}

func (a *app) inspectCmd() *cobra.Command {
	var f inspectFlags
	cmd := &cobra.Command{
		Use:   "inspect (--topic TOPIC | FILE) [flags]",
		Short: "Print the messages of a topic, or the rows of a file, as JSON lines",
		Long: `Print the messages of a Kafka topic, or the rows of a file, as JSON lines on
stdout.

With --topic, every partition (or only --partition) is read with plain
partition readers, no consumer group, from its first offset (or from its end
with --from-beginning=false) up to the end offset it had when the command
started; then the command exits. With --follow it keeps reading new messages
and exits once none arrived for --timeout. Each message is one line:

  {"topic","partition","offset","key","headers":{...},"timestamp","value":{...}}

"value" holds a JSON payload as it is; an Arrow IPC payload gives one line per
row, with "row" (the row index in the message) and "value" (the row's
columns); any other payload is given as "value_base64". A key that is not UTF-8
is given as "key_base64". Messages come partition by partition, in offset
order (with --follow, as they arrive).

With FILE instead of --topic, the rows of the file are printed: a .parquet
file (every row, any schema), an Arrow IPC file or stream (.arrow, .arrows,
.ipc), the lines of a .jsonl or .jsonl.gz file, or the documents of a folder of
.txt files.

--max N stops after N lines.`,
		Example: `  pipeline inspect --topic docs.raw --max 10
  pipeline inspect --topic docs.deadletter --partition 0
  pipeline inspect --topic docs.domain.3 --from-beginning=false --follow --timeout 30s
  pipeline inspect checkpoints/0/step-100.parquet --max 5`,
		Args: argsBetween(0, 1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runInspect(cmd, f, args) },
	}
	fs := cmd.Flags()
	f.kafka.register(fs)
	fs.StringVar(&f.topic, "topic", "", "`topic` to read (instead of a FILE)")
	fs.IntVar(&f.max, "max", 0, "stop after `N` lines (0: no limit)")
	fs.BoolVar(&f.fromBeginning, "from-beginning", true, "start at the first offset of each partition; false: at its end (use with --follow)")
	fs.IntVar(&f.partition, "partition", -1, "read only partition `P` (default: all)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "with --follow, stop when no message arrived for this `duration`; without, give up on a partition that stays silent this long before its end")
	fs.BoolVar(&f.follow, "follow", false, "keep reading new messages until none arrived for --timeout")
	return cmd
}

func (a *app) runInspect(cmd *cobra.Command, f inspectFlags, args []string) error {
	switch {
	case f.max < 0:
		return usagef("inspect: --max %d: want 0 (no limit) or more", f.max)
	case f.timeout <= 0:
		return usagef("inspect: --timeout %v: want a positive duration", f.timeout)
	case f.topic != "" && len(args) > 0:
		return usagef("inspect: give --topic or a FILE, not both")
	case f.topic == "" && len(args) == 0:
		return usagef("inspect: give --topic TOPIC or a FILE")
	}
	out := newLineWriter(a.stdout, f.max)
	var err error
	if f.topic != "" {
		err = a.inspectTopic(cmd.Context(), f, out)
	} else {
		err = inspectFile(args[0], out)
	}
	if errors.Is(err, errEnoughLines) {
		err = nil
	}
	if ferr := out.flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Topics

func (a *app) inspectTopic(ctx context.Context, f inspectFlags, out *lineWriter) error {
	cc, err := f.kafka.connect(ctx, a.log)
	if err != nil {
		return err
	}
	n, err := pipeline.PartitionCount(ctx, cc, f.topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", f.topic, err)
	}
	var parts []int
	if f.partition >= 0 {
		if f.partition >= n {
			return usagef("--partition %d: topic %s has partitions 0..%d", f.partition, f.topic, n-1)
		}
		parts = []int{f.partition}
	} else {
		for p := range n {
			parts = append(parts, p)
		}
	}
	ranges, err := pipeline.PartitionRanges(ctx, cc, f.topic, parts, f.fromBeginning)
	if err != nil {
		return err
	}
	enc := &messageEncoder{mem: memory.DefaultAllocator}
	return pipeline.Scan(ctx, cc, pipeline.ScanConfig{Topic: f.topic, Ranges: ranges, Follow: f.follow, Timeout: f.timeout,
		Logger: a.log.With("cmd", "inspect", "topic", f.topic)}, func(m pipeline.Message) error { return enc.write(out, m) })
}

// inspectLine is one line of `inspect --topic` output.
type inspectLine struct {
	Topic       string            `json:"topic"`
	Partition   int               `json:"partition"`
	Offset      int64             `json:"offset"`
	Key         *string           `json:"key"`
	KeyBase64   string            `json:"key_base64,omitempty"`
	Headers     map[string]string `json:"headers"`
	Timestamp   string            `json:"timestamp"`
	Row         *int              `json:"row,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// messageEncoder turns messages into JSON lines.
type messageEncoder struct {
	mem  memory.Allocator
	rows bytes.Buffer
	val  bytes.Buffer
}

func (e *messageEncoder) write(w io.Writer, m pipeline.Message) error {
	line := inspectLine{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Headers:   map[string]string{},
		Timestamp: m.Time.UTC().Format(time.RFC3339Nano),
	}
	switch {
	case m.Key == nil:
	case utf8.Valid(m.Key):
		k := string(m.Key)
		line.Key = &k
	default:
		line.KeyBase64 = base64.StdEncoding.EncodeToString(m.Key)
	}
	var contentType string
	for _, h := range m.Headers {
		line.Headers[h.Key] = string(h.Value)
		if h.Key == schemas.HeaderContentType {
			contentType = string(h.Value)
		}
	}
	if isArrowContentType(contentType) {
		recs, err := schemas.DecodeRecords(m.Value, e.mem)
		if err == nil {
			return e.writeRows(w, line, recs)
		}
		line.Error = err.Error()
	} else if utf8.Valid(m.Value) && json.Valid(m.Value) {
		e.val.Reset()
		if err := json.Compact(&e.val, m.Value); err == nil {
			line.Value = e.val.Bytes()
			return writeJSON(w, line)
		}
	}
	b := base64.StdEncoding.EncodeToString(m.Value)
	line.ValueBase64 = &b
	return writeJSON(w, line)
}

// writeRows writes one line per row of recs and releases them.
func (e *messageEncoder) writeRows(w io.Writer, line inspectLine, recs []arrow.Record) error {
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	row := 0
	for _, rec := range recs {
		e.rows.Reset()
		if err := schemas.WriteRecordJSON(&e.rows, rec); err != nil {
			return fmt.Errorf("partition %d offset %d: %w", line.Partition, line.Offset, err)
		}
		for _, r := range bytes.Split(bytes.TrimRight(e.rows.Bytes(), "\n"), []byte{'\n'}) {
			if len(r) == 0 {
				continue
			}
			i := row
			line.Row = &i
			line.Value = r
			if err := writeJSON(w, line); err != nil {
				return err
			}
			row++
		}
	}
	return nil
}

func isArrowContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), schemas.ContentTypeArrow)
}

// ---------------------------------------------------------------------------
// Files

// inspectFile writes the rows of the file at path as JSON lines.
func inspectFile(path string, w io.Writer) error {
	st, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("open %s: %w", path, pe.Err)
		}
		return err
	}
	if st.IsDir() {
		return inspectInput(path, w)
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".parquet"):
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := schemas.WriteParquetJSON(w, f, st.Size()); err != nil {
			return wrapFileErr(path, err)
		}
		return nil
	case strings.HasSuffix(lower, ".arrow"), strings.HasSuffix(lower, ".arrows"), strings.HasSuffix(lower, ".ipc"):
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := schemas.WriteArrowFileJSON(w, f, st.Size()); err != nil {
			return wrapFileErr(path, err)
		}
		return nil
	case strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".jsonl.gz"), strings.HasSuffix(lower, ".json"):
		return copyLines(path, w)
	case strings.HasSuffix(lower, ".txt"):
		return inspectInput(path, w)
	}
	// Any other name: a Parquet or Arrow file is recognized by its content.
	if !looksColumnar(path) {
		return usagef("%s: not a Parquet or Arrow file, and not named .parquet, .arrow, .arrows, .ipc, .jsonl, .jsonl.gz or .txt", path)
	}
	return wrapFileErr(path, schemas.WriteFileJSON(w, path))
}

// looksColumnar reports whether the file starts like a Parquet file, an
// Arrow IPC file or an Arrow IPC stream.
func looksColumnar(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [6]byte
	n, _ := io.ReadFull(f, magic[:])
	switch {
	case n >= 4 && string(magic[:4]) == "PAR1":
		return true
	case n == 6 && string(magic[:]) == "ARROW1":
		return true
	case n >= 4 && magic[0] == 0xff && magic[1] == 0xff && magic[2] == 0xff && magic[3] == 0xff:
		return true // IPC stream continuation marker
	}
	return false
}

// wrapFileErr adds the path to err unless a line cap ended the copy.
func wrapFileErr(path string, err error) error {
	if err == nil || errors.Is(err, errEnoughLines) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// copyLines writes the non-empty lines of a .jsonl or .jsonl.gz file.
func copyLines(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(t)) > 0 {
			if _, werr := w.Write(append(t, '\n')); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// inspectInput writes the documents of any input schemas.OpenInput reads (a
// folder of .txt files) as JSON lines; a bad record becomes
// {"source","error"}.
func inspectInput(path string, w io.Writer) error {
	r, err := schemas.OpenInput(path, schemas.Limits{})
	if err != nil {
		return err
	}
	defer r.Close()
	var buf []byte
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if rec.Err != nil {
			if err := writeJSON(w, map[string]string{"source": rec.Source, "error": rec.Err.Error()}); err != nil {
				return err
			}
			continue
		}
		buf, err = schemas.AppendJSON(buf[:0], rec.Doc)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.Source, err)
		}
		if _, err := w.Write(append(buf, '\n')); err != nil {
			return err
		}
	}
}

// ---------------------------------------------------------------------------
// Line cap

// errEnoughLines ends the output once --max lines were written.
var errEnoughLines = errors.New("line limit reached")

// lineWriter buffers output and stops it after max lines (0: no limit): the
// write that completes line max writes up to its newline and returns
// errEnoughLines, as does every later write.
type lineWriter struct {
	w     *bufio.Writer
	max   int
	lines int
}

func newLineWriter(w io.Writer, max int) *lineWriter {
	return &lineWriter{w: bufio.NewWriterSize(w, 64<<10), max: max}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.max <= 0 {
		return l.w.Write(p)
	}
	if l.lines >= l.max {
		return 0, errEnoughLines
	}
	for i, c := range p {
		if c != '\n' {
			continue
		}
		if l.lines++; l.lines == l.max {
			n, err := l.w.Write(p[:i+1])
			if err != nil {
				return n, err
			}
			return n, errEnoughLines
		}
	}
	return l.w.Write(p)
}

func (l *lineWriter) flush() error { return l.w.Flush() }
