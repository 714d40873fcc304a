//go:build reliability

package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/train"
)

// badMessages are messages no producer of ours writes, sent straight to
// docs.raw: random bytes as JSON and as Arrow, an unknown content type, a
// wrong schema version and an Arrow record of the wrong kind.
func badMessages(t *testing.T, rng *rand.Rand) []kafka.Message {
	t.Helper()
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	h := func(ct, ver string) []kafka.Header {
		out := []kafka.Header{{Key: schemas.HeaderContentType, Value: []byte(ct)}}
		if ver != "" {
			out = append(out, kafka.Header{Key: schemas.HeaderSchemaVersion, Value: []byte(ver)})
		}
		return out
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DocumentSchema())
	schemas.AppendDocument(b, schemas.Document{ID: "v99", Text: "future schema"}, schemas.Origin{})
	rec := b.NewRecord()
	b.Release()
	good, err := schemas.EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemas.CheckpointSchema())
	rb.Field(0).(*array.StringBuilder).Append("x")
	rb.Field(1).(*array.ListBuilder).Append(true)
	rb.Field(2).(*array.StringBuilder).Append("float32")
	rb.Field(3).(*array.BinaryBuilder).Append([]byte{1, 2, 3, 4})
	wrongKind := rb.NewRecord()
	rb.Release()
	wk, err := schemas.EncodeRecord(wrongKind)
	wrongKind.Release()
	if err != nil {
		t.Fatal(err)
	}
	return []kafka.Message{
		{Topic: pipeline.TopicRaw, Value: random(200), Headers: h(schemas.ContentTypeJSON, "")},
		{Topic: pipeline.TopicRaw, Value: random(500), Headers: h(schemas.ContentTypeArrow, "1")},
		{Topic: pipeline.TopicRaw, Value: []byte(`{"id":"x","text":"y"}`), Headers: h("text/csv", "")},
		{Topic: pipeline.TopicRaw, Value: good, Headers: h(schemas.ContentTypeArrow, "99")},
		{Topic: pipeline.TopicRaw, Value: wk, Headers: h(schemas.ContentTypeArrow, "1")},
		{Topic: pipeline.TopicRaw, Value: random(64 << 10), Headers: nil},
	}
}

// TestReliability runs the stages as processes under faults: each stage
// (embed, cluster, train) SIGKILLed at random points and restarted while
// documents keep arriving, the broker SIGSTOPped for 10 s and SIGKILLed and
// restarted on its data dir, and a corpus of bad input. It asserts that
// every input record ends routed or dead-lettered (each dead letter with a
// reason), that every expert applied each of its domain's documents exactly
// once, and that no process died other than by our signals.
func TestReliability(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	dir := t.TempDir()
	broker := startKfake(t)
	addr := broker.addr()
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	router := filepath.Join(dir, "router")
	out := filepath.Join(dir, "out")

	const waves = 3
	var good, bad int
	var files []string
	for w := range waves {
		f := filepath.Join(dir, fmt.Sprintf("wave%d.jsonl", w))
		good, bad = reliabilityCorpus(t, f, 60, true)
		files = append(files, f)
	}
	fit := start(t, "cluster fit", "cluster", "fit", "--in", files[0], "--k", "3", "--out", router, "--log-level", "warn")
	<-fit.done
	if fit.err != nil {
		t.Fatalf("cluster fit: %v", fit.err)
	}
	pipetest.CreateTopics(t, cc, 3, pipeline.TopicRaw, pipeline.TopicDeadLetter)

	ingested := 0
	ingest := func(i int) {
		p := start(t, fmt.Sprintf("ingest %d", i), "ingest", "--brokers", addr, "--max-text-bytes", "100000", "--log-level", "warn", files[i])
		<-p.done
		if p.err != nil {
			t.Fatalf("ingest wave %d: %v\n%s", i, p.err, p.out.String())
		}
		ingested++
	}
	procs := map[string]*proc{}
	args := map[string][]string{
		"embed":   {"embed", "--brokers", addr, "--state", router, "--linger", "20ms", "--max-text-bytes", "100000", "--log-level", "warn"},
		"cluster": {"cluster", "--brokers", addr, "--router", router, "--linger", "20ms", "--log-level", "warn"},
		"train":   {"train", "--brokers", addr, "--domain", "all", "--out", out, "--expert", "tiny", "--threads", "1", "--checkpoint-steps", "3", "--log-level", "warn"},
	}
	var outputs []*proc
	launch := func(name string) {
		p := start(t, name, args[name]...)
		procs[name] = p
		outputs = append(outputs, p)
	}
	for _, n := range []string{"embed", "cluster", "train"} {
		launch(n)
	}
	// Restart whatever is not running (a stage may give up while the broker
	// is stopped: that is not a crash on input, and its output is checked
	// for panics at the end).
	revive := func() {
		for n, p := range procs {
			select {
			case <-p.done:
				t.Logf("%s exited (%v); restarting", n, p.err)
				launch(n)
			default:
			}
		}
	}
	ingest(0)
	pipetest.Produce(t, cc, badMessages(t, rng)...)
	raw := len(badMessages(t, rng))

	chaosEnd := time.Now().Add(40 * time.Second)
	stopped, killed := false, false
	began := time.Now()
	for time.Now().Before(chaosEnd) {
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		el := time.Since(began)
		switch {
		case !stopped && el > 8*time.Second:
			stopped = true
			t.Log("SIGSTOP broker for 10s")
			_ = broker.p.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(10 * time.Second)
			_ = broker.p.cmd.Process.Signal(syscall.SIGCONT)
			ingest(1)
		case !killed && el > 24*time.Second:
			killed = true
			t.Log("SIGKILL broker, restart on its data dir")
			broker.kill(t)
			broker.restart(t)
			ingest(2)
		default:
			victims := []string{"embed", "cluster", "train"}
			v := victims[rng.IntN(len(victims))]
			t.Logf("SIGKILL %s", v)
			procs[v].kill()
			launch(v)
		}
		revive()
	}
	if ingested != waves {
		t.Fatalf("%d waves ingested", ingested)
	}

	// Everything accounted for: every input record routed or dead-lettered.
	total := waves*(good+bad) + raw
	var routed map[int]map[origin]bool
	var dead map[origin]string
	deadline := time.Now().Add(120 * time.Second)
	for {
		revive()
		var err1, err2 error
		routed, err1 = routedOrigins(t, cc)
		dead, err2 = deadOrigins(t, cc)
		n := len(dead)
		for _, m := range routed {
			n += len(m)
		}
		if err1 == nil && err2 == nil && n >= total {
			if n != total {
				t.Fatalf("%d records accounted for, %d went in", n, total)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 120s %d of %d input records are routed or dead-lettered (errors %v %v)", n, total, err1, err2)
		}
		time.Sleep(500 * time.Millisecond)
	}
	reasons := map[string]int{}
	for _, r := range dead {
		reasons[r]++
	}
	t.Logf("%d records: %d dead letters by reason %v", total, len(dead), reasons)

	// Trainers: stop, then let one run consume the rest and exit.
	procs["train"].stop(t)
	delete(procs, "train")
	final := start(t, "train (final)", append(args["train"], "--exit-on-idle", "3s")...)
	outputs = append(outputs, final)
	<-final.done
	if final.err != nil {
		t.Fatalf("final train: %v", final.err)
	}
	for id, docs := range routed {
		c, _, err := train.LoadLatestCheckpoint(filepath.Join(out, "experts", strconv.Itoa(id)))
		if err != nil || c == nil {
			t.Fatalf("expert %d: %v", id, err)
		}
		if c.Meta.Docs != int64(len(docs)) {
			t.Fatalf("expert %d applied %d documents, its domain holds %d distinct ones", id, c.Meta.Docs, len(docs))
		}
	}
	for _, p := range procs {
		p.stop(t)
	}
	for _, p := range outputs {
		if strings.Contains(p.out.String(), "panic:") {
			t.Fatalf("%s panicked:\n%s", p.name, p.out.String())
		}
	}
}
