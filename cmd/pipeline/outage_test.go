package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// outageBroker starts a restartable broker whose client logs to the
// returned buffer (the warnings of retried calls).
func outageBroker(t *testing.T) (*pipetest.RestartableBroker, pipeline.ClientConfig, *pipetest.LogBuffer) {
	t.Helper()
	b := pipetest.StartRestartable(t, pipeline.BrokerConfig{Partitions: 2})
	logs := &pipetest.LogBuffer{}
	cc := b.Client()
	cc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return b, cc, logs
}

// featureMessages featurizes texts with s into docs.features messages, one
// document each, spread over two partitions.
func featureMessages(t *testing.T, s *embed.State, texts []string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for i, text := range texts {
		db := schemas.NewDocumentBuilder(memory.DefaultAllocator)
		db.Append(schemas.Document{ID: fmt.Sprintf("d%d", i), Text: text}, schemas.Origin{Topic: pipeline.TopicRaw, Partition: int32(i % 2), Offset: int64(i / 2)})
		docs := db.NewRecord()
		db.Release()
		rows, err := s.Featurizer.Transform(context.Background(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := embed.FeaturesRecord(memory.DefaultAllocator, docs, rows, s.Settings.Version)
		if err != nil {
			t.Fatal(err)
		}
		b, err := schemas.EncodeRecord(rec)
		rec.Release()
		docs.Release()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafka.Message{Topic: pipeline.TopicFeatures, Partition: i % 2, Value: b})
	}
	return out
}

// fixtureState fits and saves a tf-idf state on the first n fixture
// documents into dir and returns it, loaded, with the texts.
func fixtureState(t *testing.T, dir string, n int) (*embed.State, []string) {
	t.Helper()
	r, err := schemas.OpenInput(fixture, schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var texts []string
	for len(texts) < n {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, rec.Doc.Text)
	}
	f, _, err := embed.Fit(context.Background(), embed.KindTfidf, texts, embed.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := embed.NewState(f, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embed.SaveState(dir, s); err != nil {
		t.Fatal(err)
	}
	loaded, err := embed.LoadState(dir, s.Settings.Version)
	if err != nil {
		t.Fatal(err)
	}
	return loaded, texts
}

// TestEmbedStageBrokerOutage runs the embed stage on Kafka with no fitted
// featurizer and stops the broker as soon as the stage starts sampling
// docs.raw to fit one: the stage must wait for the broker, fit, publish its
// featurizer and featurize every document (before issue 13's fix it exited).
func TestEmbedStageBrokerOutage(t *testing.T) {
	t.Parallel()
	b, cc, _ := outageBroker(t)
	mustCLI(t, "ingest", "--brokers", b.Addr(), fixture)
	state := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb := startCommand(ctx, "embed", "--brokers", b.Addr(), "--state", state, "--featurizer", "hashing", "--fit-sample", "200",
		"--json", "--watch", "50ms", "--linger", "5ms")
	pipetest.Eventually(t, 20*time.Second, "the sampling phase", func() bool { return strings.Contains(emb.stderr.String(), "sampling the input") })
	b.Stop()
	pipetest.Eventually(t, 20*time.Second, "a retry while the broker is down", func() bool {
		select {
		case r := <-emb.done:
			t.Fatalf("the stage exited while the broker was down: exit %d\n%s", r.code, r.stderr)
		default:
		}
		return strings.Contains(emb.stderr.String(), "failed; retrying")
	})
	if strings.Contains(emb.stderr.String(), "sample docs.raw failed; retrying") {
		t.Log("the outage hit the sampling phase")
	} else {
		t.Logf("the outage hit a later phase:\n%s", emb.stderr.String())
	}
	b.Start()
	pipetest.Eventually(t, 60*time.Second, "334 rows on docs.features", func() bool {
		select {
		case r := <-emb.done:
			t.Fatalf("the stage exited: exit %d\n%s", r.code, r.stderr)
		default:
		}
		_, rows := topicRows(t, cc, pipeline.TopicFeatures)
		return rows >= 334
	})
	if s, err := featurizerOnTopic(ctx, cc, 1, cc.Logger); err != nil || s == nil {
		t.Fatalf("no valid featurizer v1 on router.models: %v", err)
	}
	cancel()
	res := <-emb.done
	if res.code != 0 {
		t.Fatalf("embed stage: exit %d: %s", res.code, res.stderr)
	}
	if _, rows := topicRows(t, cc, pipeline.TopicFeatures); rows != 334 {
		t.Fatalf("docs.features holds %d rows, want 334", rows)
	}
}

// topicRows counts the Arrow rows on topic, and its messages.
func topicRows(t *testing.T, cc pipeline.ClientConfig, topic string) (msgs, rows int) {
	t.Helper()
	ms, err := pipeline.ReadTopic(context.Background(), cc, topic, 0)
	if err != nil {
		return 0, 0 // not there yet
	}
	for _, m := range ms {
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			t.Fatalf("%s@%d: %v", topic, m.Offset, err)
		}
		for _, rec := range recs {
			rows += int(rec.NumRows())
			rec.Release()
		}
	}
	return len(ms), rows
}

// corrupt returns b with a byte of its settings JSON changed: it still
// decodes as Arrow, but no longer matches its checksum.
func corrupt(t *testing.T, b []byte, field string) []byte {
	t.Helper()
	at := strings.Index(string(b), field)
	if at < 0 {
		t.Fatalf("no %s in the payload", field)
	}
	d := append([]byte(nil), b...)
	d[at+len(field)] ^= 0x01
	return d
}

// TestDamagedRouterTopicIgnored: consumers of router.models verify each
// message: a damaged featurizer or router is ignored with a warning, and the
// newest valid one serves instead.
func TestDamagedRouterTopicIgnored(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	logs := &pipetest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cc.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	state, _ := fixtureState(t, dir, 30)
	s2, _ := fixtureState(t, dir, 20) // v2
	enc1, err := embed.EncodeState(state)
	if err != nil {
		t.Fatal(err)
	}
	enc2, err := embed.EncodeState(s2)
	if err != nil {
		t.Fatal(err)
	}
	publishState := func(v int64, b []byte) {
		t.Helper()
		if err := publishOnRouterTopic(ctx, cc, embed.FeaturizerKey, b, kafka.Header{Key: embed.HeaderFeaturizerVersion, Value: []byte(fmt.Sprint(v))}); err != nil {
			t.Fatal(err)
		}
	}

	// A damaged featurizer after a good one of its version: the good one
	// names the domains.
	publishState(1, enc1)
	publishState(1, corrupt(t, enc1, `"number_token":"#`))
	if _, _, err := embed.DecodeFeaturizerMessage(kafka.Message{Value: corrupt(t, enc1, `"number_token":"#`),
		Headers: []kafka.Header{{Key: embed.HeaderFeaturizerVersion, Value: []byte("1")}}}); err == nil {
		t.Fatal("a corrupted featurizer message verified")
	}
	got, err := featurizerOnTopic(ctx, cc, 1, log)
	if err != nil || got == nil || !embed.SameState(got, state) {
		t.Fatalf("featurizerOnTopic = %v, %v; want the valid v1", got, err)
	}
	if !strings.Contains(logs.String(), "damaged featurizer on router.models ignored") {
		t.Fatalf("no warning about the damaged featurizer:\n%s", logs.String())
	}

	// The embedding stage's mirror saves a valid newer featurizer, never a
	// damaged one.
	mirror := t.TempDir()
	if _, err := embed.SaveState(mirror, state); err != nil {
		t.Fatal(err)
	}
	wctx, stopMirror := context.WithCancel(ctx)
	defer stopMirror()
	ft, err := embed.NewFeaturizerTopic(cc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	ft.Share(wctx, mirror, state)
	publishState(2, corrupt(t, enc2, `"number_token":"#`))
	pipetest.Eventually(t, 20*time.Second, "a warning about the damaged v2", func() bool {
		return strings.Count(logs.String(), "damaged featurizer on router.models ignored") >= 3 // featurizerOnTopic's, then the mirror's two
	})
	if _, err := os.Stat(embed.StatePath(mirror, 2)); err == nil {
		t.Fatal("the mirror saved a damaged featurizer")
	}
	publishState(2, enc2)
	pipetest.Eventually(t, 20*time.Second, "the valid v2 in the mirror", func() bool {
		s, err := embed.LoadState(mirror, 2)
		return err == nil && embed.SameState(s, s2)
	})
	stopMirror()
	// Routers on the topic: stages/cluster's TestDamagedRouterIgnored.
}
