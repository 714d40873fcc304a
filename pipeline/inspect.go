package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/schemas"
)

// MessageLine is one JSON line of MessageEncoder's output (and of
// `pipeline inspect --topic`):
//
//	{"topic","partition","offset","key","headers":{...},"timestamp","value":{...}}
//
// Key is null for a message without a key; a key that is not UTF-8 is
// KeyBase64 instead. Value holds a JSON payload compacted; an Arrow IPC
// payload gives one line per row, with Row (the row index in the message)
// and Value (the row's columns, as schemas.WriteRecordJSON writes them); any
// other payload, a tombstone included, is ValueBase64. An Arrow payload that
// does not decode is ValueBase64 with Error saying why.
type MessageLine struct {
	Topic       string            `json:"topic"`
	Partition   int               `json:"partition"`
	Offset      int64             `json:"offset"`
	Key         *string           `json:"key"`
	KeyBase64   string            `json:"key_base64,omitempty"`
	Headers     map[string]string `json:"headers"`
	Timestamp   string            `json:"timestamp"` // RFC 3339, nanoseconds, UTC
	Row         *int              `json:"row,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// MessageEncoder writes Kafka messages as JSON lines (MessageLine), for
// people and line tools to read. Its zero value is ready to use; it keeps
// buffers between messages, so one encoder per goroutine.
type MessageEncoder struct {
	// Mem allocates the records of Arrow payloads while they are written.
	// Default: memory.DefaultAllocator.
	Mem memory.Allocator

	rows bytes.Buffer
	val  bytes.Buffer
}

// EncodeMessageJSON writes m to w as JSON lines with a fresh MessageEncoder.
func EncodeMessageJSON(w io.Writer, m Message) error {
	var e MessageEncoder
	return e.Encode(w, m)
}

// Encode writes m to w: one line, or one line per row of an Arrow payload.
// A payload it cannot render is written as base64, not returned as an
// error; the errors are w's (returned as they are, so a caller can stop the
// output with a sentinel of its writer) and those of rendering an Arrow row.
func (e *MessageEncoder) Encode(w io.Writer, m Message) error {
	line := MessageLine{
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
		mem := e.Mem
		if mem == nil {
			mem = memory.DefaultAllocator
		}
		recs, err := schemas.DecodeRecords(m.Value, mem)
		if err == nil {
			return e.writeRows(w, line, recs)
		}
		line.Error = err.Error()
	} else if utf8.Valid(m.Value) && json.Valid(m.Value) {
		e.val.Reset()
		if err := json.Compact(&e.val, m.Value); err == nil {
			line.Value = e.val.Bytes()
			return writeLine(w, line)
		}
	}
	b := base64.StdEncoding.EncodeToString(m.Value)
	line.ValueBase64 = &b
	return writeLine(w, line)
}

// writeRows writes one line per row of recs and releases them.
func (e *MessageEncoder) writeRows(w io.Writer, line MessageLine, recs []arrow.Record) error {
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
			if err := writeLine(w, line); err != nil {
				return err
			}
			row++
		}
	}
	return nil
}

// writeLine writes v as one line of JSON, without escaping <, > and &.
func writeLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// isArrowContentType reports whether ct names an Arrow IPC stream, whatever
// its case and parameters.
func isArrowContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), schemas.ContentTypeArrow)
}
