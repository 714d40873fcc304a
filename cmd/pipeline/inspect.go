package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
file (every row, any schema; a byte-array column without a string annotation
is shown as base64, except text and id, shown as text as ingest reads them),
an Arrow IPC file or stream (.arrow, .arrows,
.ipc), the lines of a .jsonl or .jsonl.gz file, or the documents of a folder of
.txt files.

--max N stops after N lines.`,
		Example: `  pipeline inspect --topic docs.raw --max 10
  pipeline inspect --topic docs.deadletter --partition 0
  pipeline inspect --topic docs.domain.3 --from-beginning=false --follow --timeout 30s
  pipeline inspect run/experts/0/step-000100.parquet --max 5`,
		Args: argsBetween(0, 1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runInspect(cmd, f, args) },
	}
	fs := cmd.Flags()
	f.kafka.Register(fs)
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
// Topics and files

func (a *app) inspectTopic(ctx context.Context, f inspectFlags, out *lineWriter) error {
	cc, err := f.kafka.Connect(ctx, a.log)
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
	var enc pipeline.MessageEncoder
	return pipeline.Scan(ctx, cc, pipeline.ScanConfig{Topic: f.topic, Ranges: ranges, Follow: f.follow, Timeout: f.timeout,
		Logger: a.log.With("cmd", "inspect", "topic", f.topic)}, func(m pipeline.Message) error { return enc.Encode(out, m) })
}

// inspectFile writes the rows of the file at path as JSON lines; a file of
// no format it knows is a usage error.
func inspectFile(path string, w io.Writer) error {
	err := schemas.DumpFile(w, path)
	if errors.Is(err, schemas.ErrUnknownFormat) {
		return &usageError{err: err}
	}
	return err
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
