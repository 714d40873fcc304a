package schemas

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

// kafkaDefaultMaxMessageBytes is about Kafka's default message.max.bytes
// (1048588), the smallest topic limit a dead letter must fit.
const kafkaDefaultMaxMessageBytes = 1000000

// TestLimitsInvariant checks the invariant of limits.go on the largest
// document that passes validation with the default Limits: an id of the
// id limit, a text of the text limit made of control characters (6 bytes
// each in JSON), and other members filling its line, newline included, to
// MaxLineBytes. Encoded as a JSON message with its id as key, as an Arrow
// document row, and as a features row with 8 bytes per two bytes of text, it
// fits in MaxBatchBytes; two more bytes on the line make it oversize.
func TestLimitsInvariant(t *testing.T) {
	if MaxBatchBytes >= MaxMessageBytes || MaxLineBytes+MaxLineBytes/2 > MaxBatchBytes-1<<20 {
		t.Fatalf("limits out of order: message %d, batch %d, line %d", MaxMessageBytes, MaxBatchBytes, MaxLineBytes)
	}
	if headers := 8 << 10; MaxDeadLetterValueBytes+MaxDeadLetterKeyBytes+headers > kafkaDefaultMaxMessageBytes {
		t.Fatalf("a dead letter of %d bytes does not fit Kafka's default limit", MaxDeadLetterValueBytes+MaxDeadLetterKeyBytes+headers)
	}
	if 8*DefaultMaxTextBytes > MaxLineBytes {
		t.Fatalf("the default text limit %d is over MaxLineBytes/8", DefaultMaxTextBytes)
	}

	id := strings.Repeat("i", DefaultMaxIDBytes)
	text := strings.Repeat("\x01", DefaultMaxTextBytes)
	head := `{"id":"` + id + `","text":"` + strings.Repeat(`\u0001`, DefaultMaxTextBytes) + `","pad":"`
	line := head + strings.Repeat("p", MaxLineBytes-1-len(head)-2) + `"}`
	if len(line)+1 != MaxLineBytes {
		t.Fatalf("line of %d bytes and a newline, want %d", len(line), MaxLineBytes)
	}

	for _, tc := range []struct {
		name    string
		line    string
		wantErr Reason
	}{
		{"a line of MaxLineBytes", line, ""},
		{"a line of MaxLineBytes+2", line[:len(line)-2] + `pp"}`, ReasonOversize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := NewLineReader("mem", strings.NewReader(tc.line+"\n"), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			rec, err := in.Next()
			if err != nil {
				t.Fatal(err)
			}
			if got := ReasonOf(rec.Err); rec.Err != nil && got != tc.wantErr || rec.Err == nil && tc.wantErr != "" {
				t.Fatalf("record error %v (%s), want reason %q", rec.Err, got, tc.wantErr)
			}
			if tc.wantErr != "" {
				if len(rec.Raw) != RawPrefixBytes {
					t.Errorf("raw of an oversize line: %d bytes, want %d", len(rec.Raw), RawPrefixBytes)
				}
				return
			}
			if rec.Doc.Text != text || rec.Doc.ID != id {
				t.Fatalf("decoded id/text differ from the line's")
			}
			value, err := AppendJSON(nil, rec.Doc)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(rec.Doc.ID) + len(value); n > MaxBatchBytes {
				t.Errorf("JSON message of %d bytes, over MaxBatchBytes %d", n, MaxBatchBytes)
			}

			b := NewDocumentBuilder(memory.DefaultAllocator)
			defer b.Release()
			b.Append(rec.Doc, Origin{Topic: strings.Repeat("t", 249), Offset: 1 << 40})
			row := b.NewRecord()
			defer row.Release()
			payload, err := EncodeRecord(row)
			if err != nil {
				t.Fatal(err)
			}
			if len(payload) > MaxBatchBytes {
				t.Errorf("Arrow document row of %d bytes, over MaxBatchBytes %d", len(payload), MaxBatchBytes)
			}
			if n := len(payload) + 4*len(rec.Doc.Text); n > MaxBatchBytes {
				t.Errorf("features row of about %d bytes, over MaxBatchBytes %d", n, MaxBatchBytes)
			}
		})
	}
}

// TestLimitsLargeTextLimitRaisesLineLimit: offline readers that take long
// texts (Limits.MaxTextBytes above MaxLineBytes/8) read lines up to 8 × the
// text limit.
func TestLimitsLargeTextLimitRaisesLineLimit(t *testing.T) {
	for _, tc := range []struct {
		lim  Limits
		want int
	}{
		{Limits{}, MaxLineBytes},
		{Limits{MaxTextBytes: 100}, MaxLineBytes},
		{Limits{MaxTextBytes: 64 << 20}, 512 << 20},
	} {
		if got := maxLineBytes(tc.lim); got != tc.want {
			t.Errorf("maxLineBytes(%+v) = %d, want %d", tc.lim, got, tc.want)
		}
	}
}
