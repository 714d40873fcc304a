package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// TestProducerCallsBackEachCall produces many calls concurrently and checks
// that every call is called back exactly once, with its own messages, and
// that every message reached its topic.
func TestProducerCallsBackEachCall(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 3, "p.out")
	p, err := pipeline.NewProducer(pipeline.ProducerConfig{Client: cc, MaxInFlightBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	const calls, per = 40, 25
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for c := range calls {
		msgs := make([]pipeline.Message, per)
		for i := range msgs {
			msgs[i] = pipeline.Message{Topic: "p.out", Key: []byte(fmt.Sprintf("%d-%d", c, i)), Value: make([]byte, 100), WriterData: c}
		}
		wg.Add(1)
		err := p.Produce(context.Background(), msgs, func(got []pipeline.Message, errs []error) {
			defer wg.Done()
			if errs != nil {
				t.Errorf("call %d: errors %v", c, errs)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range got {
				if m.WriterData != c {
					t.Errorf("call %d got back a message of call %v", c, m.WriterData)
				}
			}
			seen[c]++
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for c := range calls {
		if seen[c] != 1 {
			t.Errorf("call %d called back %d times, want 1", c, seen[c])
		}
	}
	if got := len(pipetest.ReadAll(t, cc, "p.out")); got != calls*per {
		t.Errorf("topic holds %d messages, want %d", got, calls*per)
	}
}

// TestKafkaSinkReportsPerMessageErrors writes to a topic that does not
// exist: the synchronous wrapper must fail with an error per message.
func TestKafkaSinkReportsFailures(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = sink.Write(ctx, pipeline.Message{Topic: "no.such.topic", Value: []byte("x")})
	if err == nil {
		t.Fatal("write to a missing topic succeeded")
	}
	// A batch over the sink's batch bytes is refused for its size before
	// anything is sent, and IsTooLarge says so.
	small, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc, BatchBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	pipetest.CreateTopics(t, cc, 1, "s.out")
	err = small.Write(ctx, pipeline.Message{Topic: "s.out", Value: make([]byte, 4<<10)})
	if !pipeline.IsTooLarge(err) {
		t.Fatalf("oversize write: err %v, want a size refusal", err)
	}
}

// TestPartitionConsumerResumesAfterHandedOut reads partitions from chosen
// offsets, revokes and reassigns one, and checks that each message is handed
// out once, in order.
func TestPartitionConsumer(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 2, "c.in")
	var msgs []pipeline.Message
	for p := range 2 {
		for i := range 20 {
			msgs = append(msgs, pipeline.Message{Topic: "c.in", Partition: p, Value: []byte(strconv.Itoa(p*100 + i))})
		}
	}
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sink.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	sink.Close()

	c, err := pipeline.NewPartitionConsumer(pipeline.ConsumerConfig{Client: cc, Topic: "c.in"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, end, err := c.Offsets(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if first[0] != 0 || end[0] != 20 || end[1] != 20 {
		t.Fatalf("offsets first %v end %v, want [0 0] [20 20]", first, end)
	}
	c.Assign(0, pipeline.FirstOffset)
	c.Assign(1, 5)
	read := func(p, n int) []string {
		var out []string
		for range n {
			m, err := c.Next(ctx, p)
			if err != nil {
				t.Fatalf("next of %d: %v", p, err)
			}
			out = append(out, string(m.Value))
		}
		return out
	}
	if got := read(0, 3); fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("partition 0 from the first: %v", got)
	}
	if got := read(1, 2); fmt.Sprint(got) != "[105 106]" {
		t.Errorf("partition 1 from 5: %v", got)
	}
	// Revoked and assigned again at its position: nothing is skipped or
	// handed out twice, whatever the goroutine had fetched ahead.
	next, _ := c.Position(0)
	c.Revoke(0)
	if _, ok := c.Position(0); ok {
		t.Error("a revoked partition has a position")
	}
	c.Assign(0, next)
	if got := read(0, 2); fmt.Sprint(got) != "[3 4]" {
		t.Errorf("partition 0 after reassignment: %v", got)
	}
	// A wait for a message that is not there ends with ctx.
	c.Assign(1, 20)
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	if _, err := c.Next(wctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("next past the end: %v, want deadline exceeded", err)
	}
	if _, err := c.Next(ctx, 7); err == nil {
		t.Error("next of an unassigned partition succeeded")
	}
}

// TestControlTopic publishes values under keys and checks Latest, All and
// Watch.
func TestControlTopic(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	ctl, err := pipeline.NewControlTopic(pipeline.ControlTopicConfig{Client: cc, Name: "ctl.models"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l, err := ctl.Latest(ctx); err != nil || len(l) != 0 {
		t.Fatalf("latest of a topic not yet created: %v, %v", l, err)
	}
	watched := make(chan string, 16)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctl.Watch(wctx, func(_ context.Context, m pipeline.Message) { watched <- string(m.Key) + "=" + string(m.Value) })
	}()
	for i, kv := range [][2]string{{"router", "v1"}, {"featurizer", "f1"}, {"router", "v2"}} {
		if err := ctl.Publish(ctx, kv[0], []byte(kv[1]), pipeline.Header{Key: "n", Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ctl.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(l["router"].Value) + " " + string(l["featurizer"].Value); got != "v2 f1" {
		t.Errorf("latest: %s, want v2 f1", got)
	}
	if pipeline.HeaderValue(l["router"], "n") != "2" {
		t.Errorf("latest router's header n = %q, want 2", pipeline.HeaderValue(l["router"], "n"))
	}
	all, err := ctl.All(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("all: %d messages, %v; want 3", len(all), err)
	}
	var got []string
	for range 3 {
		select {
		case s := <-watched:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("watch saw %v", got)
		}
	}
	wcancel()
	<-done
	if fmt.Sprint(got) != "[router=v1 featurizer=f1 router=v2]" {
		t.Errorf("watch saw %v", got)
	}
}

func TestDecodeMessageAndDeadLetterInfo(t *testing.T) {
	m := pipetest.JSONDoc("docs.raw", "d1", "hello")
	d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := d.EachDocument(func(doc schemas.Document, _ schemas.Origin) error { texts = append(texts, doc.Text); return nil }); err != nil {
		t.Fatal(err)
	}
	if d.Rows() != 1 || fmt.Sprint(texts) != "[hello]" {
		t.Errorf("decoded %d rows %v", d.Rows(), texts)
	}
	m.Value = []byte("{not json")
	if _, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil); schemas.ReasonOf(err) != schemas.ReasonMalformedJSON {
		t.Errorf("malformed: reason %q (%v)", schemas.ReasonOf(err), err)
	}
	dl := pipeline.DeadLetterSpec{Topic: pipeline.TopicDeadLetter, Value: []byte("x"), Reason: schemas.ReasonOversize, Err: "too big",
		Stage: "embed", OriginTopic: "docs.raw", OriginPartition: "2", OriginOffset: "17"}.Message()
	info := pipeline.ParseDeadLetter(dl)
	want := pipeline.DeadLetterInfo{Reason: schemas.ReasonOversize, Err: "too big", Stage: "embed",
		Origin: schemas.Origin{Topic: "docs.raw", Partition: 2, Offset: 17, Row: -1}}
	if info != want {
		t.Errorf("ParseDeadLetter = %+v, want %+v", info, want)
	}
}

// TestScanOrders reads two partitions: without Follow in partition order,
// each to the end offset it had when the ranges were listed.
func TestScanOrders(t *testing.T) {
	cc := pipetest.Broker(t).Client()
	pipetest.CreateTopics(t, cc, 2, "s.in")
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var msgs []pipeline.Message
	for i := range 6 {
		msgs = append(msgs, pipeline.Message{Topic: "s.in", Partition: 1 - i%2, Value: []byte(strconv.Itoa(i))})
	}
	if err := sink.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	ranges, err := pipeline.PartitionRanges(ctx, cc, "s.in", []int{0, 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	// Written after the ranges were listed: not read.
	if err := sink.Write(ctx, pipeline.Message{Topic: "s.in", Partition: 0, Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = pipeline.Scan(ctx, cc, pipeline.ScanConfig{Topic: "s.in", Ranges: ranges}, func(m pipeline.Message) error {
		got = append(got, fmt.Sprintf("%d:%s", m.Partition, m.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0:1 0:3 0:5 1:0 1:2 1:4]" {
		t.Errorf("scan read %v", got)
	}
	stop := errors.New("stop")
	n := 0
	err = pipeline.Scan(ctx, cc, pipeline.ScanConfig{Topic: "s.in", Ranges: ranges}, func(pipeline.Message) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("scan after fn's error: %v after %d messages", err, n)
	}
}
