package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// arrowPayload encodes one record per batch of documents as one IPC stream.
func arrowPayload(t testing.TB, batches ...[]schemas.Document) []byte {
	t.Helper()
	var recs []arrow.Record
	for _, docs := range batches {
		b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
		for i, d := range docs {
			b.Append(d, schemas.Origin{Topic: "docs.raw", Partition: 0, Offset: int64(10 + i)})
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	payload, err := schemas.AppendRecords(nil, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

func TestMessageEncoder(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	arrowHeaders := pipeline.ContentHeaders(schemas.ContentTypeArrow)
	twoBatches := arrowPayload(t,
		[]schemas.Document{{ID: "a", Text: "one"}, {ID: "b", Text: "two"}},
		[]schemas.Document{{ID: "c", Text: "three"}})
	tests := []struct {
		name string
		m    pipeline.Message
		want []string // the lines, as JSON
	}{
		{
			name: "json document, compacted",
			m: pipeline.Message{Topic: "docs.raw", Partition: 2, Offset: 5, Key: []byte("k1"), Time: at,
				Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON), Value: []byte("{ \"id\": \"1\",\n \"text\": \"a<b>&c\" }")},
			want: []string{`{"topic":"docs.raw","partition":2,"offset":5,"key":"k1","headers":{"content-type":"application/json","schema-version":"1"},"timestamp":"2024-05-06T06:08:09.123456789Z","value":{"id":"1","text":"a<b>&c"}}`},
		},
		{
			name: "no key",
			m:    pipeline.Message{Topic: "t", Time: at, Value: []byte(`[1,2]`)},
			want: []string{`{"topic":"t","partition":0,"offset":0,"key":null,"headers":{},"timestamp":"2024-05-06T06:08:09.123456789Z","value":[1,2]}`},
		},
		{
			name: "key not UTF-8",
			m:    pipeline.Message{Topic: "t", Key: []byte{0xff, 0xfe, 'a'}, Time: at, Value: []byte(`1`)},
			want: []string{`{"topic":"t","partition":0,"offset":0,"key":null,"key_base64":"//5h","headers":{},"timestamp":"2024-05-06T06:08:09.123456789Z","value":1}`},
		},
		{
			name: "tombstone",
			m:    pipeline.Message{Topic: "t", Offset: 9, Key: []byte("gone"), Time: at},
			want: []string{`{"topic":"t","partition":0,"offset":9,"key":"gone","headers":{},"timestamp":"2024-05-06T06:08:09.123456789Z","value_base64":""}`},
		},
		{
			name: "binary value of a dead letter",
			m: pipeline.Message{Topic: "docs.deadletter", Time: at, Value: []byte{0, 1, 0xff},
				Headers: []pipeline.Header{{Key: "reason", Value: []byte("malformed-json")}}},
			want: []string{`{"topic":"docs.deadletter","partition":0,"offset":0,"key":null,"headers":{"reason":"malformed-json"},"timestamp":"2024-05-06T06:08:09.123456789Z","value_base64":"AAH/"}`},
		},
		{
			name: "text that is not JSON",
			m:    pipeline.Message{Topic: "t", Time: at, Value: []byte("hello")},
			want: []string{`{"topic":"t","partition":0,"offset":0,"key":null,"headers":{},"timestamp":"2024-05-06T06:08:09.123456789Z","value_base64":"aGVsbG8="}`},
		},
		{
			name: "arrow, two batches of three rows",
			m:    pipeline.Message{Topic: "docs.features", Partition: 1, Offset: 3, Time: at, Headers: arrowHeaders, Value: twoBatches},
			want: []string{
				`{"topic":"docs.features","partition":1,"offset":3,"key":null,"headers":{"content-type":"application/vnd.apache.arrow.stream","schema-version":"1"},"timestamp":"2024-05-06T06:08:09.123456789Z","row":0,"value":{"id":"a","text":"one","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":10,"origin_row":0}}`,
				`{"topic":"docs.features","partition":1,"offset":3,"key":null,"headers":{"content-type":"application/vnd.apache.arrow.stream","schema-version":"1"},"timestamp":"2024-05-06T06:08:09.123456789Z","row":1,"value":{"id":"b","text":"two","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":11,"origin_row":0}}`,
				`{"topic":"docs.features","partition":1,"offset":3,"key":null,"headers":{"content-type":"application/vnd.apache.arrow.stream","schema-version":"1"},"timestamp":"2024-05-06T06:08:09.123456789Z","row":2,"value":{"id":"c","text":"three","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":10,"origin_row":0}}`,
			},
		},
		{
			name: "arrow content type with parameters",
			m: pipeline.Message{Topic: "t", Time: at, Value: arrowPayload(t, []schemas.Document{{ID: "x", Text: "y"}}),
				Headers: []pipeline.Header{{Key: schemas.HeaderContentType, Value: []byte(" Application/Vnd.Apache.Arrow.Stream ; v=1")}}},
			want: []string{`{"topic":"t","partition":0,"offset":0,"key":null,"headers":{"content-type":" Application/Vnd.Apache.Arrow.Stream ; v=1"},"timestamp":"2024-05-06T06:08:09.123456789Z","row":0,"value":{"id":"x","text":"y","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":10,"origin_row":0}}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			enc := pipeline.MessageEncoder{Mem: mem}
			var out bytes.Buffer
			if err := enc.Encode(&out, tt.m); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got, want := out.String(), strings.Join(tt.want, "\n")+"\n"; got != want {
				t.Errorf("Encode =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// A damaged Arrow payload is printed as base64 with the decoder's error,
// and the encoder goes on with the next message.
func TestMessageEncoderDamagedArrow(t *testing.T) {
	t.Parallel()
	payload := arrowPayload(t, []schemas.Document{{ID: "a", Text: "one"}, {ID: "b", Text: "two"}})
	for _, cut := range []int{1, 8, len(payload) / 2, len(payload) - 1} {
		var enc pipeline.MessageEncoder
		var out bytes.Buffer
		m := pipeline.Message{Topic: "t", Offset: int64(cut), Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow), Value: payload[:cut]}
		if err := enc.Encode(&out, m); err != nil {
			t.Fatalf("Encode(cut %d): %v", cut, err)
		}
		var line pipeline.MessageLine
		if err := json.Unmarshal(out.Bytes(), &line); err != nil {
			t.Fatalf("cut %d: %q: %v", cut, out.String(), err)
		}
		if line.Error == "" || line.ValueBase64 == nil || line.Row != nil || line.Value != nil {
			t.Errorf("cut %d: %s; want an error, value_base64 and no row", cut, out.String())
		}
		// The same encoder then writes a good message.
		out.Reset()
		m.Value = payload
		if err := enc.Encode(&out, m); err != nil || strings.Count(out.String(), "\n") != 2 {
			t.Errorf("after a damaged payload: %v, %q", err, out.String())
		}
	}
}

// An error of the writer is returned as it is, so a caller can stop with a
// sentinel; the Arrow records are released all the same.
func TestMessageEncoderWriterError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	enc := pipeline.MessageEncoder{Mem: mem}
	m := pipeline.Message{Headers: pipeline.ContentHeaders(schemas.ContentTypeArrow),
		Value: arrowPayload(t, []schemas.Document{{ID: "a", Text: "one"}, {ID: "b", Text: "two"}})}
	w := &failAfter{n: 1, err: stop}
	if err := enc.Encode(w, m); !errors.Is(err, stop) {
		t.Errorf("Encode = %v, want %v", err, stop)
	}
	if w.writes != 2 {
		t.Errorf("%d writes, want 2 (the second failed)", w.writes)
	}
}

// failAfter accepts n writes, then fails with err.
type failAfter struct {
	n, writes int
	err       error
}

func (f *failAfter) Write(p []byte) (int, error) {
	f.writes++
	if f.writes > f.n {
		return 0, f.err
	}
	return len(p), nil
}

// Messages as `pipeline inspect --topic` prints them: a JSON document as it
// is, each row of an Arrow batch on a line of its own, a binary dead letter
// and a key that is not UTF-8 in base64.
func ExampleMessageEncoder() {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(schemas.Document{ID: "a", Text: "first"}, schemas.Origin{Topic: "docs.raw", Offset: 7})
	b.Append(schemas.Document{ID: "b", Text: "second"}, schemas.Origin{Topic: "docs.raw", Offset: 8})
	rec := b.NewRecord()
	b.Release()
	batch, _ := schemas.EncodeRecord(rec)
	rec.Release()

	var enc pipeline.MessageEncoder
	for _, m := range []pipeline.Message{
		{Topic: "docs.raw", Offset: 0, Key: []byte("a"), Time: at, Value: []byte(`{"id": "a", "text": "first"}`)},
		{Topic: "docs.features", Offset: 4, Time: at, Headers: []pipeline.Header{{Key: "content-type", Value: []byte(schemas.ContentTypeArrow)}}, Value: batch},
		{Topic: "docs.deadletter", Offset: 1, Key: []byte{0xff}, Time: at, Headers: []pipeline.Header{{Key: "reason", Value: []byte("malformed-json")}}, Value: []byte{0x00, 0x01}},
	} {
		if err := enc.Encode(os.Stdout, m); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// {"topic":"docs.raw","partition":0,"offset":0,"key":"a","headers":{},"timestamp":"2024-01-02T03:04:05Z","value":{"id":"a","text":"first"}}
	// {"topic":"docs.features","partition":0,"offset":4,"key":null,"headers":{"content-type":"application/vnd.apache.arrow.stream"},"timestamp":"2024-01-02T03:04:05Z","row":0,"value":{"id":"a","text":"first","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":7,"origin_row":0}}
	// {"topic":"docs.features","partition":0,"offset":4,"key":null,"headers":{"content-type":"application/vnd.apache.arrow.stream"},"timestamp":"2024-01-02T03:04:05Z","row":1,"value":{"id":"b","text":"second","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":8,"origin_row":0}}
	// {"topic":"docs.deadletter","partition":0,"offset":1,"key":null,"key_base64":"/w==","headers":{"reason":"malformed-json"},"timestamp":"2024-01-02T03:04:05Z","value_base64":"AAE="}
}
