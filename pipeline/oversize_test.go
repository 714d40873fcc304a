package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// kafkaDefaultMaxMessageBytes is about Kafka's default message.max.bytes
// (1048588); the size tests create topics with it.
const kafkaDefaultMaxMessageBytes = 1000000

func TestDeadLetterSpecFits(t *testing.T) {
	const capB = schemas.MaxDeadLetterValueBytes
	euro := strings.Repeat("€", capB/3+10) // 3-byte runes across the cut
	tests := []struct {
		name      string
		value     []byte
		wantLen   int  // length of the value kept
		truncated bool // HeaderTruncated present
	}{
		{"nil value is empty, not a tombstone", nil, 0, false},
		{"small", []byte(`{"id":"a","text":"b"}`), 21, false},
		{"exactly the cap", bytes.Repeat([]byte("x"), capB), capB, false},
		{"one over the cap", bytes.Repeat([]byte("x"), capB+1), capB, true},
		{"40 MB", bytes.Repeat([]byte("y"), 40<<20), capB, true},
		{"cut inside a rune moves back to its start", []byte(euro), capB - capB%3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := pipeline.DeadLetterSpec{
				Topic: "dead", Key: bytes.Repeat([]byte("k"), 10<<10), Value: tc.value,
				Reason: schemas.ReasonOversize, Err: strings.Repeat("e", 5000), Stage: "test",
				OriginTopic: strings.Repeat("o", 5000), OriginOffset: "7",
			}.Message()
			if m.Value == nil || len(m.Value) != tc.wantLen || !bytes.HasPrefix(tc.value, m.Value) {
				t.Fatalf("value: %d bytes (nil %v), want a prefix of %d bytes", len(m.Value), m.Value == nil, tc.wantLen)
			}
			if utf8.Valid(tc.value) && !utf8.Valid(m.Value) {
				t.Errorf("the cut value is not valid UTF-8 any more")
			}
			got := headerOf(m, pipeline.HeaderTruncated)
			if want := strconv.Itoa(len(tc.value)); tc.truncated && got != want {
				t.Errorf("%s = %q, want %q", pipeline.HeaderTruncated, got, want)
			} else if !tc.truncated && got != "" {
				t.Errorf("%s = %q on a whole value", pipeline.HeaderTruncated, got)
			}
			if len(m.Key) != schemas.MaxDeadLetterKeyBytes {
				t.Errorf("key of %d bytes, want the cap %d", len(m.Key), schemas.MaxDeadLetterKeyBytes)
			}
			size := len(m.Key) + len(m.Value)
			for _, h := range m.Headers {
				size += len(h.Key) + len(h.Value)
			}
			if size > kafkaDefaultMaxMessageBytes-1000 {
				t.Errorf("dead letter of %d bytes does not fit a topic with Kafka's default limit", size)
			}
		})
	}
}

func TestShrinkDeadLetter(t *testing.T) {
	m := pipeline.DeadLetterSpec{Topic: "dead", Value: bytes.Repeat([]byte("z"), 1000), Reason: schemas.ReasonOversize}.Message()
	lens := []int{}
	for {
		small, ok := pipeline.ShrinkDeadLetter(m)
		if !ok {
			break
		}
		if got := headerOf(small, pipeline.HeaderTruncated); got != "1000" {
			t.Fatalf("%s = %q after shrinking, want the original length 1000", pipeline.HeaderTruncated, got)
		}
		if n := strings.Count(fmt.Sprint(small.Headers), pipeline.HeaderTruncated); n != 1 {
			t.Fatalf("%d %s headers", n, pipeline.HeaderTruncated)
		}
		m = small
		lens = append(lens, len(m.Value))
	}
	if want := []int{250, 62, 15, 3, 0}; !slices.Equal(lens, want) {
		t.Errorf("value lengths while shrinking = %v, want %v", lens, want)
	}
}

// sizeLimitedWrite is a WriteFunc that acts as a broker whose topics take
// batches of at most limit value bytes: like kafka-go's Writer, it puts each
// partition's messages of a call in one batch and fails all of a refused
// batch, with kafka.WriteErrors. It records what it wrote.
type sizeLimitedWrite struct {
	limit   int
	written []string
	calls   int
}

func (w *sizeLimitedWrite) write(_ context.Context, msgs ...kafka.Message) error {
	w.calls++
	batch := map[int]int{}
	for _, m := range msgs {
		batch[m.Partition] += len(m.Value)
	}
	errs := make(kafka.WriteErrors, len(msgs))
	failed := false
	for i, m := range msgs {
		if batch[m.Partition] > w.limit {
			errs[i], failed = kafka.MessageSizeTooLarge, true
			continue
		}
		w.written = append(w.written, string(m.Value))
	}
	if failed {
		return errs
	}
	return nil
}

func TestWriteSplitting(t *testing.T) {
	msg := func(p int, v string) kafka.Message { return kafka.Message{Partition: p, Value: []byte(v)} }
	tests := []struct {
		name     string
		msgs     []kafka.Message
		written  []string // in order
		tooLarge []string
	}{
		{"all fit", []kafka.Message{msg(0, "a"), msg(0, "b"), msg(1, "c")}, []string{"a", "b", "c"}, nil},
		{"one too large among good ones",
			[]kafka.Message{msg(0, "a"), msg(0, "b"), msg(0, "BIGBIG"), msg(0, "c"), msg(0, "d")},
			[]string{"a", "b", "c", "d"}, []string{"BIGBIG"}},
		{"first and last too large",
			[]kafka.Message{msg(0, "BIGBIG1"), msg(0, "a"), msg(0, "b"), msg(0, "BIGBIG2")},
			[]string{"a", "b"}, []string{"BIGBIG1", "BIGBIG2"}},
		{"a full batch of small ones is split, none dropped",
			[]kafka.Message{msg(0, "aa"), msg(0, "bb"), msg(0, "cc"), msg(0, "dd"), msg(0, "ee")},
			[]string{"aa", "bb", "cc", "dd", "ee"}, nil},
		{"the other partition is written once",
			[]kafka.Message{msg(1, "x"), msg(0, "BIGBIG"), msg(0, "a"), msg(1, "y")},
			[]string{"x", "y", "a"}, []string{"BIGBIG"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &sizeLimitedWrite{limit: 5}
			var tooLarge []string
			err := pipeline.WriteSplitting(context.Background(), tc.msgs, w.write, func(_ context.Context, m kafka.Message, err error) error {
				if !pipeline.IsTooLarge(err) {
					t.Errorf("tooLarge called with %v, not a size error", err)
				}
				tooLarge = append(tooLarge, string(m.Value))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.written, tc.written) || !slices.Equal(tooLarge, tc.tooLarge) {
				t.Errorf("written %q, too large %q; want %q, %q", w.written, tooLarge, tc.written, tc.tooLarge)
			}
		})
	}
}

func TestWriteSplittingPassesOtherErrors(t *testing.T) {
	boom := errors.New("broker away")
	err := pipeline.WriteSplitting(context.Background(), []kafka.Message{{Value: []byte("a")}},
		func(context.Context, ...kafka.Message) error { return boom },
		func(context.Context, kafka.Message, error) error { t.Error("tooLarge called"); return nil })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

func TestIsTooLarge(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("other"), false},
		{kafka.MessageSizeTooLarge, true},
		{fmt.Errorf("produce: %w", kafka.RecordListTooLarge), true},
		{kafka.MessageTooLargeError{}, true},
		{kafka.WriteErrors{nil, kafka.MessageSizeTooLarge}, true},
		{kafka.WriteErrors{nil, kafka.LeaderNotAvailable}, false},
		{kafka.LeaderNotAvailable, false},
	}
	for _, tc := range tests {
		if got := pipeline.IsTooLarge(tc.err); got != tc.want {
			t.Errorf("IsTooLarge(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRunnerOversizeKafka runs the identity stage into an output topic that
// takes messages of at most about 1 MB, Kafka's default, while the input
// holds a document of 1.2 MB among 30 good ones of 40 KB, which the runner
// first puts in one Arrow batch of 2.4 MB. Every good document must come out,
// in partition order, and the big one must be dead-lettered as oversize, with
// its value cut and the cut said in a header; the runner must neither stop
// nor retry forever. Before the runner split refused batches, it retried the
// whole batch forever.
func TestRunnerOversizeKafka(t *testing.T) { forEachBroker(t, testRunnerOversizeKafka) }

func testRunnerOversizeKafka(t *testing.T, cc pipeline.ClientConfig) {
	in, out := uniqueName(t, "raw"), uniqueName(t, "identity")
	dead := out + ".dead"
	limited := map[string]string{"max.message.bytes": strconv.Itoa(kafkaDefaultMaxMessageBytes)}
	err := pipeline.EnsureTopics(context.Background(), cc,
		pipeline.TopicSpec{Name: in, Partitions: 2},
		pipeline.TopicSpec{Name: out, Partitions: 2, Configs: limited},
		pipeline.TopicSpec{Name: dead, Partitions: 2, Configs: limited})
	if err != nil {
		t.Fatal(err)
	}
	const good = 30
	var msgs []kafka.Message
	for i := range good + 1 {
		id, text := fmt.Sprintf("good-%02d", i), strings.Repeat(fmt.Sprintf("word%d ", i%10), 40<<10/6)
		if i == good/2 {
			id, text = "big", strings.Repeat("big ", 1200<<10/4)
		}
		m := pipetest.JSONDoc(in, id, text)
		m.Partition = i % 2
		msgs = append(msgs, m)
	}
	pipetest.Produce(t, cc, msgs...)

	src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{in}, GroupID: uniqueName(t, "g")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	r, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "identity", Stage: pipeline.Identity, Source: src, Sink: sink,
		OutputTopic: out, DeadLetterTopic: dead, Limits: schemas.Limits{MaxTextBytes: 2 << 20},
		OutMaxBytes: 8 << 20, Linger: 200 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		DrainTimeout: 5 * time.Second, Logger: quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, r, time.Minute, func(c pipeline.Counts) bool { return c.In >= good+1 }); err != nil {
		t.Fatal(err)
	}

	ids, rows := outputDocs(t, pipetest.ReadAll(t, cc, out))
	if len(ids) != good || len(rows) != good || ids["big"] != 0 {
		t.Errorf("%d rows, %d distinct ids out (big: %d); want the %d good ones once each", len(rows), len(ids), ids["big"], good)
	}
	last := map[int32]int64{0: -1, 1: -1}
	for _, row := range rows {
		if row.origin.Offset <= last[row.origin.Partition] {
			t.Errorf("partition %d out of order: offset %d after %d", row.origin.Partition, row.origin.Offset, last[row.origin.Partition])
		}
		last[row.origin.Partition] = row.origin.Offset
	}
	dls := pipetest.ReadAll(t, cc, dead)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if got := headerOf(d, pipeline.HeaderReason); got != string(schemas.ReasonOversize) {
		t.Errorf("dead letter reason %q, want %q", got, schemas.ReasonOversize)
	}
	full, _ := schemas.EncodeJSON(schemas.Document{ID: "big", Text: strings.Repeat("big ", 1200<<10/4)})
	if got := headerOf(d, pipeline.HeaderTruncated); got != strconv.Itoa(len(full)) {
		t.Errorf("%s = %q, want %d", pipeline.HeaderTruncated, got, len(full))
	}
	if len(d.Value) != schemas.MaxDeadLetterValueBytes || !bytes.HasPrefix(full, d.Value) {
		t.Errorf("dead letter value: %d bytes, want the first %d of the document", len(d.Value), schemas.MaxDeadLetterValueBytes)
	}
	if got := headerOf(d, pipeline.HeaderOriginTopic); got != in {
		t.Errorf("dead letter origin %q, want %q", got, in)
	}
	if c := r.Counts(); c.In != good+1 || c.Out != good || c.Dead != 1 {
		t.Errorf("counts %+v, want in %d = out %d + dead 1", c, good+1, good)
	}
}

// TestEnsureTopicsMaxMessageBytes: a topic the pipeline creates takes
// messages up to schemas.MaxMessageBytes, whatever the broker's default,
// unless its spec says otherwise.
func TestEnsureTopicsMaxMessageBytes(t *testing.T) { forEachBroker(t, testEnsureTopicsMaxMessageBytes) }

func testEnsureTopicsMaxMessageBytes(t *testing.T, cc pipeline.ClientConfig) {
	ours, own := uniqueName(t, "ours"), uniqueName(t, "own")
	err := pipeline.EnsureTopics(context.Background(), cc, pipeline.TopicSpec{Name: ours},
		pipeline.TopicSpec{Name: own, Configs: map[string]string{"max.message.bytes": "1000000"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := cc.Client()
	defer pipeline.CloseClient(cl)
	for topic, want := range map[string]string{ours: strconv.Itoa(schemas.MaxMessageBytes), own: "1000000"} {
		res, err := cl.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"max.message.bytes"}}}})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, r := range res.Resources {
			for _, e := range r.ConfigEntries {
				if e.ConfigName == "max.message.bytes" {
					got = e.ConfigValue
				}
			}
		}
		if got != want {
			t.Errorf("%s: max.message.bytes = %q, want %q", topic, got, want)
		}
	}
}
