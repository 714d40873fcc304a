package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// oversizeCorpus writes a JSON lines file of good documents of about 3 KB
// with one document of bigText bytes of text at line big+1 (0-based big),
// and returns the path and the big document's JSON line.
func oversizeCorpus(t *testing.T, good, big, bigText int) (path string, bigLine []byte) {
	t.Helper()
	var b bytes.Buffer
	for i := range good + 1 {
		d := schemas.Document{ID: fmt.Sprintf("good-%02d", i), Text: strings.Repeat(fmt.Sprintf("word%d ", i), 3000/6)}
		if i == big {
			d = schemas.Document{ID: "big", Text: strings.Repeat("big ", bigText/4)}
		}
		line, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		if i == big {
			bigLine = line
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path = filepath.Join(t.TempDir(), "corpus.jsonl")
	writeFile(t, path, b.Bytes())
	return path, bigLine
}

// TestIngestOversizeDocument ingests 30 good documents and one of 700 KB
// (valid: the text limit is 1 MiB) into a docs.raw that takes messages of at
// most 100 KB. Before the producer split refused batches, the big document
// failed its whole produce batch and took 12 to 23 good neighbours with it.
// Now every good document is delivered, the big one is dead-lettered as
// oversize with a prefix of its JSON as value (cut to the dead-letter cap,
// or further for a dead-letter topic with a small limit too), and the counts
// add up.
func TestIngestOversizeDocument(t *testing.T) {
	t.Parallel()
	const good, big = 30, 15
	tests := []struct {
		name      string
		deadLimit int // max.message.bytes of docs.deadletter; 0: the pipeline's
		wantValue int // bytes of the dead letter's value
	}{
		{"dead-letter topic of the pipeline", 0, schemas.MaxDeadLetterValueBytes},
		{"dead-letter topic of 100 KB", 100_000, schemas.MaxDeadLetterValueBytes / 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t)
			cc := pipeline.ClientConfig{Brokers: []string{addr}}
			dead := pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: 4}
			if tc.deadLimit > 0 {
				dead.Configs = map[string]string{"max.message.bytes": strconv.Itoa(tc.deadLimit)}
			}
			err := pipeline.EnsureTopics(context.Background(), cc, dead, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 4,
				Configs: map[string]string{"max.message.bytes": "100000"}})
			if err != nil {
				t.Fatal(err)
			}
			in, bigLine := oversizeCorpus(t, good, big, 700<<10)
			r := mustCLI(t, "ingest", "--brokers", addr, "--json", in)
			var rep produceReport
			decodeOne(t, r.stdout, &rep)
			if rep.Docs != good || rep.DeadLetter != 1 || rep.Failed != 0 {
				t.Errorf("report %+v: want %d docs, 1 dead letter, none failed", rep, good)
			}
			var ids []string
			for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", pipeline.TopicRaw).stdout) {
				ids = append(ids, d["key"].(string))
			}
			slices.Sort(ids)
			var want []string
			for i := range good + 1 {
				if i != big {
					want = append(want, fmt.Sprintf("good-%02d", i))
				}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("docs.raw holds %d documents %v, want the %d good ones", len(ids), ids, good)
			}
			msgs, err := pipeline.ReadTopic(context.Background(), cc, pipeline.TopicDeadLetter, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 {
				t.Fatalf("%d dead letters, want 1", len(msgs))
			}
			checkOversizeDeadLetter(t, msgs[0], bigLine, tc.wantValue, map[string]string{
				pipeline.HeaderStage:        "ingest",
				pipeline.HeaderOriginTopic:  in,
				pipeline.HeaderOriginOffset: strconv.Itoa(big + 1),
			})
			if string(msgs[0].Key) != "big" {
				t.Errorf("dead letter key %q, want the document's id", msgs[0].Key)
			}
		})
	}
}

// checkOversizeDeadLetter checks that m is the oversize dead letter of
// payload, its value the first wantValue bytes of it, with headers want.
func checkOversizeDeadLetter(t *testing.T, m kafka.Message, payload []byte, wantValue int, want map[string]string) {
	t.Helper()
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if h[pipeline.HeaderReason] != string(schemas.ReasonOversize) {
		t.Errorf("dead letter reason %q, want %q", h[pipeline.HeaderReason], schemas.ReasonOversize)
	}
	if got := h[pipeline.HeaderTruncated]; got != strconv.Itoa(len(payload)) {
		t.Errorf("%s = %q, want the payload's length %d", pipeline.HeaderTruncated, got, len(payload))
	}
	if len(m.Value) != wantValue || !bytes.HasPrefix(payload, m.Value) {
		t.Errorf("dead letter value: %d bytes, want the first %d of the payload", len(m.Value), wantValue)
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("dead letter header %s = %q, want %q", k, h[k], v)
		}
	}
}

// TestRunOversizeRecords: `pipeline run` over an input with a 40 MB line
// (over the line limit, under the old one of 64 MiB) and a 10 MB line (a
// text over the document limit) among good documents completes, twice on
// the same --out, with both records dead-lettered and fitting. Before, the
// 40 MB line became a 40 MB dead letter that no produce batch could carry,
// so the run failed, and failed again on every rerun.
func TestRunOversizeRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the routing part of the whole job (a few seconds)")
	}
	t.Parallel()
	dir := t.TempDir()
	var b bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&b, "{\"id\":\"d%02d\",\"text\":\"document %d about %s\"}\n", i, i, []string{"cats and dogs", "stocks and bonds", "rain and snow"}[i%3])
		switch i {
		case 10:
			fmt.Fprintf(&b, "{\"id\":\"huge\",\"text\":\"%s\"}\n", strings.Repeat("h", 40<<20))
		case 20:
			fmt.Fprintf(&b, "{\"id\":\"large\",\"text\":\"%s\"}\n", strings.Repeat("l", 10<<20))
		}
	}
	in := filepath.Join(dir, "in.jsonl")
	writeFile(t, in, b.Bytes())
	out := filepath.Join(dir, "out")
	for attempt := range 2 {
		r := cli(t, "run", "--input", in, "--out", out, "--k", "2", "--train=false", "--log-level", "warn", "--json")
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", attempt+1, r.code, r.stderr)
		}
		var sum runSummary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatalf("run %d: %v: %s", attempt+1, err, r.stdout)
		}
		if sum.DocsIn+sum.DocsHeldout != 42 || sum.DocsDeadletter != 2 || sum.DocsRouted+sum.DocsDeadletter != sum.DocsIn {
			t.Errorf("run %d: summary %+v: want 42 records, of which 2 dead-lettered and the rest routed or held out", attempt+1, sum)
		}
	}
}
