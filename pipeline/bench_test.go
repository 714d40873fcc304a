package pipeline_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// corpusPath is the shared benchmark corpus, beside the repository.
const corpusPath = "../../shared/corpora/mixed-v1.jsonl.gz"

type benchDoc struct {
	value     []byte // the JSON message
	textBytes int
}

func loadCorpus(b *testing.B) []benchDoc {
	b.Helper()
	f, err := os.Open(corpusPath)
	if err != nil {
		b.Skipf("benchmark corpus not found: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var docs []benchDoc
	br := bufio.NewReaderSize(zr, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			d, derr := schemas.DecodeJSON(line, schemas.Limits{MaxTextBytes: 64 << 20})
			if derr != nil {
				b.Fatal(derr)
			}
			docs = append(docs, benchDoc{value: line, textBytes: len(d.Text)})
		}
		if err != nil {
			break
		}
	}
	return docs
}

// oneKB cuts the corpus text into documents of about 1 KB.
func oneKB(corpus []benchDoc) []benchDoc {
	var out []benchDoc
	for _, c := range corpus {
		d, _ := schemas.DecodeJSON(c.value, schemas.Limits{MaxTextBytes: 64 << 20})
		text := d.Text
		for len(text) >= 1000 {
			cut := 1000
			for cut < len(text) && !utf8.RuneStart(text[cut]) {
				cut++
			}
			v, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("kb-%d", len(out)), "text": text[:cut]})
			out = append(out, benchDoc{value: v, textBytes: cut})
			text = text[cut:]
		}
	}
	return out
}

func repeat(docs []benchDoc, n int) []benchDoc {
	out := make([]benchDoc, 0, n*len(docs))
	for range n {
		out = append(out, docs...)
	}
	return out
}

// BenchmarkThroughput measures document text through producer → identity
// stage → consumer on one broker, in two ways:
//
//   - phases: the producer fills the input topic, then the stage drains it
//     alone, then the consumer reads and decodes the output alone; each phase
//     is timed (produce-MB/s, stage-MB/s, consume-MB/s) — this shows where the
//     time goes;
//   - pipelined: all three run at once; the time from the first produce to
//     the consumer having decoded every output row (e2e-MB/s).
//
// MB/s counts document text bytes (10^6). Run:
//
//	go test -run '^$' -bench Throughput -benchtime 3x ./pipeline/
//
// With the integration tag and DOMAINFLOW_KAFKA_BROKERS set it also runs
// against that broker.
func BenchmarkThroughput(b *testing.B) {
	corpus := loadCorpus(b)
	// Four passes over the corpus (139 MB of text), so that each measured
	// window is seconds long and start-up latency does not dominate.
	const passes = 4
	sets := []struct {
		name string
		docs []benchDoc
	}{{"corpus", repeat(corpus, passes)}, {"1KB", repeat(oneKB(corpus), passes)}}
	brokers := []namedBroker{{name: "kfake"}}
	brokers = append(brokers, externalBrokers(b)...)
	for _, set := range sets {
		var text int
		for _, d := range set.docs {
			text += d.textBytes
		}
		mb := float64(text) / 1e6
		for _, br := range brokers {
			for _, mode := range []string{"phases", "pipelined"} {
				b.Run(set.name+"/"+br.name+"/"+mode, func(b *testing.B) {
					cc := br.cc
					if br.name == "kfake" {
						cc = pipetest.Broker(b).Client()
					}
					var sum throughputTimes
					for b.Loop() {
						t := throughputOnce(b, cc, set.docs, mode == "pipelined")
						sum.produce += t.produce
						sum.stage += t.stage
						sum.consume += t.consume
						sum.e2e += t.e2e
					}
					n := float64(b.N)
					if mode == "phases" {
						b.ReportMetric(mb/(sum.produce.Seconds()/n), "produce-MB/s")
						b.ReportMetric(mb/(sum.stage.Seconds()/n), "stage-MB/s")
						b.ReportMetric(float64(len(set.docs))/(sum.stage.Seconds()/n), "stage-docs/s")
						b.ReportMetric(mb/(sum.consume.Seconds()/n), "consume-MB/s")
					} else {
						b.ReportMetric(mb/(sum.e2e.Seconds()/n), "e2e-MB/s")
						b.ReportMetric(float64(len(set.docs))/(sum.e2e.Seconds()/n), "e2e-docs/s")
					}
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

type throughputTimes struct{ produce, stage, consume, e2e time.Duration }

func throughputOnce(b *testing.B, cc pipeline.ClientConfig, docs []benchDoc, pipelined bool) throughputTimes {
	b.Helper()
	const parts = 4
	suffix := fmt.Sprint(time.Now().UnixNano())
	in, out := "bench.raw."+suffix, "bench.out."+suffix
	pipetest.CreateTopics(b, cc, parts, in, out, out+".dead")
	msgs := make([]kafka.Message, len(docs))
	for i, d := range docs {
		m := pipetest.JSONDoc(in, "", "")
		m.Key, m.Value, m.Partition = nil, d.value, i%parts
		msgs[i] = m
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := int64(len(docs))
	var t throughputTimes

	startStage := func() (*pipeline.Runner, chan error) {
		src, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{in}, GroupID: "stage-" + suffix})
		if err != nil {
			b.Fatal(err)
		}
		sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
		if err != nil {
			b.Fatal(err)
		}
		r, err := pipeline.NewRunner(pipeline.RunnerConfig{
			Name: "identity", Stage: pipeline.Identity, Source: src, Sink: sink,
			OutputTopic: out, DeadLetterTopic: out + ".dead", Logger: quietLogger,
			Limits: schemas.Limits{MaxTextBytes: 8 << 20},
		})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			err := r.Run(ctx)
			src.Close()
			sink.Close()
			done <- err
		}()
		return r, done
	}
	var rows atomic.Int64
	startConsumer := func() chan error {
		cons, err := pipeline.NewKafkaSource(pipeline.SourceConfig{Client: cc, Topics: []string{out}, GroupID: "consumer-" + suffix})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			defer cons.Close()
			for rows.Load() < n {
				fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
				m, err := cons.Fetch(fctx)
				fcancel()
				if err != nil {
					done <- err
					return
				}
				recs, err := schemas.DecodeRecords(m.Value, nil)
				if err != nil {
					done <- err
					return
				}
				for _, rec := range recs {
					rows.Add(rec.NumRows())
					rec.Release()
				}
			}
			done <- nil
		}()
		return done
	}
	waitIn := func(r *pipeline.Runner) {
		for r.Counts().In < n {
			time.Sleep(2 * time.Millisecond)
		}
	}

	if pipelined {
		r, stageDone := startStage()
		consDone := startConsumer()
		time.Sleep(2 * time.Second) // both groups joined before the clock starts
		start := time.Now()
		pipetest.Produce(b, cc, msgs...)
		if err := <-consDone; err != nil {
			b.Fatalf("consumer: %v (rows %d of %d, stage %+v)", err, rows.Load(), n, r.Counts())
		}
		t.e2e = time.Since(start)
		cancel()
		if err := <-stageDone; err != nil {
			b.Fatal(err)
		}
		return t
	}

	start := time.Now()
	pipetest.Produce(b, cc, msgs...)
	t.produce = time.Since(start)

	// The stage's clock starts at its first committed batch, once it has
	// joined its group; the rows of that batch are not counted.
	r, stageDone := startStage()
	for r.Counts().Batches == 0 {
		time.Sleep(time.Millisecond)
	}
	start, before := time.Now(), r.Counts().In
	waitIn(r)
	t.stage = time.Duration(float64(time.Since(start)) * float64(n) / float64(n-before))

	start = time.Now()
	consDone := startConsumer()
	if err := <-consDone; err != nil {
		b.Fatalf("consumer: %v (rows %d of %d)", err, rows.Load(), n)
	}
	t.consume = time.Since(start)
	cancel()
	if err := <-stageDone; err != nil {
		b.Fatal(err)
	}
	return t
}
