//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// TestRealKafkaOversize: `pipeline ingest` into a topic of a real Apache
// Kafka with Kafka's default size limit (max.message.bytes about 1 MB) of a
// file where one valid document of 1 MB sits among 30 good ones: the broker
// refuses the batch that holds it, every good document is delivered all the
// same, and the big one is dead-lettered as oversize, its value cut and the
// cut said in a header.
func TestRealKafkaOversize(t *testing.T) {
	k := realKafkaFromEnv(t)
	cc := pipeline.ClientConfig{Brokers: strings.Split(k.addr(), ",")}
	raw := fmt.Sprintf("oversize.raw.%d", time.Now().UnixNano())
	err := pipeline.EnsureTopics(context.Background(), cc, pipeline.TopicSpec{Name: raw, Partitions: 2,
		Configs: map[string]string{"max.message.bytes": "1000000"}})
	if err != nil {
		t.Fatal(err)
	}
	const good, big = 30, 12
	var (
		b       bytes.Buffer
		bigLine []byte
		want    []string
	)
	for i := range good + 1 {
		d := schemas.Document{ID: fmt.Sprintf("good-%02d", i), Text: strings.Repeat(fmt.Sprintf("word%d ", i), 500)}
		if i == big {
			d = schemas.Document{ID: "big", Text: strings.Repeat("big ", 1000000/4)}
		} else {
			want = append(want, d.ID)
		}
		line, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		if i == big {
			bigLine = line
		}
		b.Write(append(line, '\n'))
	}
	file := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(binary(t), "ingest", "--brokers", k.addr(), "--topic", raw, "--json", file).Output()
	if err != nil {
		t.Fatalf("pipeline ingest: %v\n%s", err, out)
	}
	var rep struct{ Docs, Deadletter, Failed int64 }
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ingest report %q: %v", out, err)
	}
	if rep.Docs != good || rep.Deadletter != 1 || rep.Failed != 0 {
		t.Errorf("ingest report %+v: want %d docs, 1 dead letter, none failed", rep, good)
	}

	ctx := context.Background()
	msgs, err := pipeline.ReadTopic(ctx, cc, raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, string(m.Key))
	}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("%s holds %d documents %v, want the %d good ones", raw, len(ids), ids, good)
	}

	dead, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mine int
	for _, m := range dead {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[pipeline.HeaderOriginTopic] != file {
			continue // another test's
		}
		mine++
		if h[pipeline.HeaderReason] != string(schemas.ReasonOversize) || h[pipeline.HeaderOriginOffset] != strconv.Itoa(big+1) || string(m.Key) != "big" {
			t.Errorf("dead letter key %q, headers %v: want the big document, reason oversize, line %d", m.Key, h, big+1)
		}
		if h[pipeline.HeaderTruncated] != strconv.Itoa(len(bigLine)) || len(m.Value) != schemas.MaxDeadLetterValueBytes || !bytes.HasPrefix(bigLine, m.Value) {
			t.Errorf("dead letter value: %d bytes (%s %q), want the first %d of the %d-byte document",
				len(m.Value), pipeline.HeaderTruncated, h[pipeline.HeaderTruncated], schemas.MaxDeadLetterValueBytes, len(bigLine))
		}
	}
	if mine != 1 {
		t.Errorf("%d dead letters of %s, want 1", mine, file)
	}
}
