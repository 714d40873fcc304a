package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// ---------------------------------------------------------------------------
// Helpers

// startBroker starts an in-process broker for one test.
func startBroker(t *testing.T) string {
	t.Helper()
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("StartBroker: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line args through the cobra root, as main does.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliCtx(t, context.Background(), args...)
}

func cliCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var stdout, stderr pipetest.LogBuffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI runs args and fails the test unless the command succeeded.
func mustCLI(t *testing.T, args ...string) result {
	t.Helper()
	r := cli(t, args...)
	if r.code != 0 {
		t.Fatalf("pipeline %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// jsonLines decodes every stdout line as a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// decodeOne decodes stdout as exactly one JSON object into v.
func decodeOne(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value: %q", out)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeParquet(t *testing.T, path string, docs []schemas.Document) {
	t.Helper()
	var buf bytes.Buffer
	if err := schemas.WriteParquetDocuments(&buf, docs); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, buf.Bytes())
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	return pipetest.ClosedAddr(t)
}

// ---------------------------------------------------------------------------
// ingest

func TestIngestJSONLWithBadLines(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "small.jsonl")
	lines := []string{
		`{"id":"a","text":"alpha beta","source":"s1","label":"x"}`, // 1
		`{"text":"no id here"}`,               // 2: id generated
		``,                                    // 3: blank, skipped
		`{"id":"bad","text":`,                 // 4: malformed
		`{"id":"e","text":"  "}`,              // 5: empty text
		"{\"id\":\"u\",\"text\":\"caf\xe9\"}", // 6: invalid UTF-8
		`{"id":"c","text":"gamma"}`,           // 7
	}
	writeFile(t, in, []byte(strings.Join(lines, "\n")+"\n"))

	r := mustCLI(t, "ingest", "--brokers", addr, "--json", in)
	var rep struct {
		Docs       int64   `json:"docs"`
		Bytes      int64   `json:"bytes"`
		DeadLetter int64   `json:"deadletter"`
		Seconds    float64 `json:"seconds"`
	}
	decodeOne(t, r.stdout, &rep)
	wantBytes := int64(len("alpha beta") + len("no id here") + len("gamma"))
	if rep.Docs != 3 || rep.Bytes != wantBytes || rep.DeadLetter != 3 {
		t.Errorf("report = %+v, want docs 3, bytes %d, deadletter 3", rep, wantBytes)
	}

	// The documents, read back with inspect.
	docs := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.raw").stdout)
	if len(docs) != 3 {
		t.Fatalf("inspect docs.raw: %d lines, want 3", len(docs))
	}
	keys := map[string]map[string]any{}
	for _, d := range docs {
		h := d["headers"].(map[string]any)
		if h["content-type"] != "application/json" || h["schema-version"] != "1" {
			t.Errorf("headers = %v", h)
		}
		v := d["value"].(map[string]any)
		if d["key"] != v["id"] {
			t.Errorf("key %v, id %v", d["key"], v["id"])
		}
		keys[d["key"].(string)] = v
	}
	if v := keys["small-2"]; v == nil || v["text"] != "no id here" {
		t.Errorf("generated id small-2 missing: %v", keys)
	}
	if v := keys["a"]; v == nil || v["source"] != "s1" || v["label"] != "x" {
		t.Errorf("metadata of a lost: %v", v)
	}

	// The dead letters, with reasons and origins.
	dead := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.deadletter").stdout)
	if len(dead) != 3 {
		t.Fatalf("inspect docs.deadletter: %d lines, want 3:\n%v", len(dead), dead)
	}
	got := map[string]string{} // reason → origin-offset
	for _, d := range dead {
		h := d["headers"].(map[string]any)
		if h[pipeline.HeaderStage] != "ingest" || h[pipeline.HeaderOriginTopic] != in || h[pipeline.HeaderError] == "" {
			t.Errorf("dead letter headers = %v", h)
		}
		reason := h[pipeline.HeaderReason].(string)
		got[reason] = h[pipeline.HeaderOriginOffset].(string)
		if reason == string(schemas.ReasonInvalidUTF8) {
			raw, err := base64.StdEncoding.DecodeString(d["value_base64"].(string))
			if err != nil || string(raw) != lines[5] {
				t.Errorf("invalid-utf8 dead letter value = %q, %v; want the raw line", raw, err)
			}
		}
	}
	want := map[string]string{
		string(schemas.ReasonMalformedJSON): "4",
		string(schemas.ReasonEmptyText):     "5",
		string(schemas.ReasonInvalidUTF8):   "6",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters (reason → line) = %v, want %v", got, want)
	}
}

func TestIngestParquetAndTextFolder(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	pq := filepath.Join(dir, "archive.parquet")
	writeParquet(t, pq, []schemas.Document{
		{ID: "p1", Text: "first parquet document", Meta: json.RawMessage(`{"label":"a"}`)},
		{ID: "", Text: "second, without id"},
		{ID: "p3", Text: ""}, // empty: dead letter
	})
	notes := filepath.Join(dir, "notes")
	writeFile(t, filepath.Join(notes, "one.txt"), []byte("text file one"))
	writeFile(t, filepath.Join(notes, "sub", "two.txt"), []byte("text file two"))
	writeFile(t, filepath.Join(notes, "ignored.md"), []byte("not a txt file"))

	r := mustCLI(t, "ingest", "--brokers", addr, "--topic", "docs.mixed", "--partitions", "2", "--json", pq, notes)
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if rep.Docs != 4 || rep.DeadLetter != 1 {
		t.Errorf("report = %+v, want 4 docs and 1 dead letter", rep)
	}
	wantBytes := int64(len("first parquet document") + len("second, without id") + 2*len("text file one"))
	if rep.Bytes != wantBytes {
		t.Errorf("bytes = %d, want %d", rep.Bytes, wantBytes)
	}
	var ids []string
	for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.mixed").stdout) {
		ids = append(ids, d["key"].(string))
	}
	sort.Strings(ids)
	if want := []string{"archive-1", "one", "p1", "sub/two"}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	topics := mustCLI(t, "topics", "list", "--brokers", addr)
	if !strings.Contains(topics.stdout, "docs.mixed") {
		t.Errorf("topics list lacks docs.mixed:\n%s", topics.stdout)
	}
	dead := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.deadletter").stdout)
	if len(dead) != 1 {
		t.Fatalf("dead letters: %v", dead)
	}
	h := dead[0]["headers"].(map[string]any)
	if h[pipeline.HeaderReason] != string(schemas.ReasonEmptyText) || h[pipeline.HeaderOriginTopic] != pq || h[pipeline.HeaderOriginOffset] != "2" {
		t.Errorf("dead letter headers = %v", h)
	}
}

// TestIngestDeliveryFailure: a document too large for docs.raw becomes a
// dead letter (TestIngestOversizeDocument); when docs.deadletter refuses
// even a dead letter without value, the message is not delivered, and
// ingest says so.
func TestIngestDeliveryFailure(t *testing.T) {
	t.Parallel()
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	err = pipeline.EnsureTopics(context.Background(), b.Client(),
		pipeline.TopicSpec{Name: pipeline.TopicRaw, Configs: map[string]string{"max.message.bytes": "2000"}},
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Configs: map[string]string{"max.message.bytes": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "big.jsonl")
	big := strings.Repeat("x", 5000)
	writeFile(t, in, []byte(`{"id":"small","text":"fits"}`+"\n"+`{"id":"big","text":"`+big+`"}`+"\n"))
	r := cli(t, "ingest", "--brokers", b.Addr(), "--json", in)
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 2 messages were not delivered") {
		t.Errorf("exit %d, stderr %q; want 1 and the count of failed messages", r.code, r.stderr)
	}
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if rep.Docs != 1 || rep.Failed != 1 {
		t.Errorf("report = %+v, want 1 doc delivered and 1 failed", rep)
	}
}

func TestIngestStdin(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	var stdout, stderr pipetest.LogBuffer
	stdin := strings.NewReader("{\"text\":\"from stdin\"}\n{\"id\":\"x\",\"text\":\"two\"}\n")
	code := run(context.Background(), []string{"ingest", "--brokers", addr, "--json", "-"}, stdin, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep produceReport
	decodeOne(t, stdout.String(), &rep)
	if rep.Docs != 2 {
		t.Errorf("docs = %d, want 2", rep.Docs)
	}
}

func TestIngestHumanSummary(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	in := filepath.Join(t.TempDir(), "c.jsonl")
	writeFile(t, in, []byte(`{"id":"1","text":"one"}`+"\n"))
	r := mustCLI(t, "ingest", "--brokers", addr, in)
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing without --json", r.stdout)
	}
	if !strings.Contains(r.stderr, "ingest: 1 document (3 B of text) to docs.raw") {
		t.Errorf("stderr lacks the summary: %q", r.stderr)
	}
}

// ---------------------------------------------------------------------------
// replay

func TestReplayRate(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	const n, perSec = 12, 40.0
	docs := make([]schemas.Document, n)
	for i := range docs {
		docs[i] = schemas.Document{ID: fmt.Sprintf("r%d", i), Text: fmt.Sprintf("replayed document %d", i)}
	}
	pq := filepath.Join(t.TempDir(), "replay.parquet")
	writeParquet(t, pq, docs)

	start := time.Now()
	r := mustCLI(t, "replay", "--brokers", addr, "--rate", fmt.Sprint(perSec), "--json", pq)
	elapsed := time.Since(start)
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if rep.Docs != n || rep.DeadLetter != 0 {
		t.Errorf("report = %+v, want %d docs", rep, n)
	}
	// n documents at perSec take at least (n-1)/perSec; allow 20% slack.
	if min := time.Duration(float64(n-1)/perSec*1000*0.8) * time.Millisecond; elapsed < min {
		t.Errorf("replay of %d docs at %v/s took %v, want at least %v", n, perSec, elapsed, min)
	}
	got := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.raw").stdout)
	if len(got) != n {
		t.Errorf("docs.raw holds %d messages, want %d", len(got), n)
	}

	// Unlimited replay of the same file is fast.
	start = time.Now()
	mustCLI(t, "replay", "--brokers", addr, "--topic", "fast", pq)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("unlimited replay took %v", el)
	}
}

func TestReplayRejectsOtherFiles(t *testing.T) {
	t.Parallel()
	in := filepath.Join(t.TempDir(), "c.jsonl")
	writeFile(t, in, []byte(`{"text":"x"}`+"\n"))
	r := cli(t, "replay", "--brokers", closedAddr(t), in)
	if r.code != 2 || !strings.Contains(r.stderr, "not a .parquet file") {
		t.Errorf("replay of a .jsonl: exit %d, stderr %q; want 2 and a clear message", r.code, r.stderr)
	}
}

// ---------------------------------------------------------------------------
// inspect

func TestInspectFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pq := filepath.Join(dir, "docs.parquet")
	writeParquet(t, pq, []schemas.Document{{ID: "1", Text: "one"}, {ID: "2", Text: "two"}, {ID: "3", Text: "three"}})

	rows := jsonLines(t, mustCLI(t, "inspect", pq).stdout)
	if len(rows) != 3 || rows[0]["id"] != "1" || rows[2]["text"] != "three" {
		t.Errorf("inspect parquet = %v", rows)
	}
	rows = jsonLines(t, mustCLI(t, "inspect", "--max", "2", pq).stdout)
	if len(rows) != 2 {
		t.Errorf("inspect --max 2: %d lines", len(rows))
	}

	jl := filepath.Join(dir, "x.jsonl")
	writeFile(t, jl, []byte("{\"id\":1}\n\n{\"id\":2}\n{\"id\":3}\n"))
	if out := mustCLI(t, "inspect", "--max", "2", jl).stdout; out != "{\"id\":1}\n{\"id\":2}\n" {
		t.Errorf("inspect jsonl --max 2 = %q", out)
	}

	// An Arrow IPC stream, as the stages write between topics.
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(schemas.Document{ID: "a1", Text: "arrow one"}, schemas.Origin{Topic: "docs.raw", Offset: 7})
	b.Append(schemas.Document{ID: "a2", Text: "arrow two"}, schemas.Origin{Topic: "docs.raw", Offset: 8})
	rec := b.NewRecord()
	payload, err := schemas.EncodeRecord(rec)
	rec.Release()
	b.Release()
	if err != nil {
		t.Fatal(err)
	}
	arrows := filepath.Join(dir, "batch.arrows")
	writeFile(t, arrows, payload)
	rows = jsonLines(t, mustCLI(t, "inspect", arrows).stdout)
	if len(rows) != 2 || rows[1]["id"] != "a2" || rows[1]["origin_offset"] != 8.0 {
		t.Errorf("inspect arrow stream = %v", rows)
	}

	other := filepath.Join(dir, "notes.md")
	writeFile(t, other, []byte("# not data\n"))
	if r := cli(t, "inspect", other); r.code != 2 || !strings.Contains(r.stderr, "not a Parquet or Arrow file") {
		t.Errorf("inspect of a .md file: exit %d, %q", r.code, r.stderr)
	}

	r := cli(t, "inspect", filepath.Join(dir, "missing.parquet"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("inspect of a missing file: exit %d, %q", r.code, r.stderr)
	}
	r = cli(t, "inspect")
	if r.code != 2 {
		t.Errorf("inspect without --topic or FILE: exit %d, want 2", r.code)
	}
}

func TestInspectTopicPartitionAndMax(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	var sb strings.Builder
	for i := range 20 {
		fmt.Fprintf(&sb, "{\"id\":\"d%d\",\"text\":\"doc %d\"}\n", i, i)
	}
	in := filepath.Join(t.TempDir(), "d.jsonl")
	writeFile(t, in, []byte(sb.String()))
	mustCLI(t, "ingest", "--brokers", addr, "--topic", "t", "--partitions", "3", in)

	all := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "t").stdout)
	if len(all) != 20 {
		t.Fatalf("inspect: %d lines, want 20", len(all))
	}
	perPartition := map[float64]int{}
	for i, m := range all {
		perPartition[m["partition"].(float64)]++
		if i > 0 && m["partition"].(float64) < all[i-1]["partition"].(float64) {
			t.Errorf("partitions out of order at line %d", i)
		}
	}
	p1 := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "t", "--partition", "1").stdout)
	if len(p1) != perPartition[1] {
		t.Errorf("--partition 1: %d lines, want %d", len(p1), perPartition[1])
	}
	for _, m := range p1 {
		if m["partition"].(float64) != 1 {
			t.Errorf("--partition 1 printed %v", m)
		}
	}
	if got := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "t", "--max", "5").stdout); len(got) != 5 {
		t.Errorf("--max 5: %d lines", len(got))
	}
	if got := mustCLI(t, "inspect", "--brokers", addr, "--topic", "t", "--from-beginning=false").stdout; got != "" {
		t.Errorf("--from-beginning=false without --follow printed %q", got)
	}
	r := cli(t, "inspect", "--brokers", addr, "--topic", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("inspect of a missing topic: exit %d, %q", r.code, r.stderr)
	}
}

// ---------------------------------------------------------------------------
// identity

func TestIdentityStage(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	in := filepath.Join(t.TempDir(), "d.jsonl")
	writeFile(t, in, []byte("{\"id\":\"1\",\"text\":\"one\"}\n{\"id\":\"2\",\"text\":\"two\"}\n{\"id\":\"3\",\"text\":\"three\"}\n"))
	mustCLI(t, "ingest", "--brokers", addr, "--topic", "id.in", "--partitions", "2", in)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	var stdout, stderr pipetest.LogBuffer
	go func() {
		code := run(ctx, []string{"identity", "--brokers", addr, "--in", "id.in", "--out", "id.out", "--json", "--linger", "5ms", "--metrics-addr", "127.0.0.1:0"},
			strings.NewReader(""), &stdout, &stderr)
		done <- result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()

	var rows []map[string]any
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		r := cli(t, "inspect", "--brokers", addr, "--topic", "id.out")
		if r.code == 0 {
			if rows = jsonLines(t, r.stdout); len(rows) == 3 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	metrics := scrape(t, stderr.String())
	cancel()
	res := <-done
	if res.code != 0 {
		t.Fatalf("identity: exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(metrics, `domainflow_records_in_total{stage="identity"} 3`) {
		t.Errorf("metrics lack the identity input count:\n%s", metrics)
	}
	var rep stageReport
	decodeOne(t, res.stdout, &rep)
	if rep.In != 3 || rep.Out != 3 || rep.Dead != 0 || rep.Batches < 1 {
		t.Errorf("identity report = %+v", rep)
	}
	if len(rows) != 3 {
		t.Fatalf("id.out holds %d rows, want 3", len(rows))
	}
	for _, m := range rows {
		if _, ok := m["row"]; !ok {
			t.Errorf("arrow message line without row: %v", m)
		}
		v := m["value"].(map[string]any)
		if v["text"] == nil || v["origin_topic"] != "id.in" {
			t.Errorf("row value = %v", v)
		}
	}
	if n := mustCLI(t, "topics", "list", "--brokers", addr, "--json").stdout; !strings.Contains(n, `{"name":"id.out","partitions":2}`) {
		t.Errorf("id.out not created with the input's partitions: %s", n)
	}
}

// ---------------------------------------------------------------------------
// topics and broker

func TestTopicsCreateList(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	mustCLI(t, "topics", "create", "--brokers", addr, "--partitions", "3", "--config", "cleanup.policy=compact", "a.one", "a.two")
	var list struct {
		Topics []pipeline.TopicInfo `json:"topics"`
	}
	decodeOne(t, mustCLI(t, "topics", "list", "--brokers", addr, "--json").stdout, &list)
	want := []pipeline.TopicInfo{{Name: "a.one", Partitions: 3}, {Name: "a.two", Partitions: 3}}
	if !slices.Equal(list.Topics, want) {
		t.Errorf("topics = %v, want %v", list.Topics, want)
	}
	if r := cli(t, "topics", "create", "--brokers", addr, "--config", "novalue", "b"); r.code != 2 {
		t.Errorf("--config without '=': exit %d, want 2", r.code)
	}
	// An existing topic keeps its partitions: asking for others fails,
	// saying what the topic has; the new topics are created all the same.
	r := cli(t, "topics", "create", "--brokers", addr, "--partitions", "8", "a.one", "a.three")
	if r.code != 1 || !strings.Contains(r.stderr, "a.one has 3") || !strings.Contains(r.stderr, `topic exists: left as it was" topic=a.one partitions=3`) {
		t.Errorf("topics create --partitions 8 on a 3-partition topic: exit %d, stderr %q; want 1 saying it has 3", r.code, r.stderr)
	}
	if n := mustCLI(t, "topics", "list", "--brokers", addr, "--json").stdout; !strings.Contains(n, `{"name":"a.three","partitions":8}`) || !strings.Contains(n, `{"name":"a.one","partitions":3}`) {
		t.Errorf("after topics create --partitions 8 a.one a.three: %s", n)
	}
	// The same count, or none given: it is there, nothing to say.
	mustCLI(t, "topics", "create", "--brokers", addr, "--partitions", "3", "a.one")
	mustCLI(t, "topics", "create", "--brokers", addr, "a.one")
	if r := cli(t, "topics", "bogus"); r.code != 2 {
		t.Errorf("topics bogus: exit %d, want 2", r.code)
	}
}

// runBrokerCommand runs `pipeline broker --listen listen --partitions
// partitions` until ctx ends and returns the address it logged, its exit
// code (once it ends) and its stderr.
func runBrokerCommand(t *testing.T, ctx context.Context, listen, partitions string) (string, <-chan int, *pipetest.LogBuffer) {
	t.Helper()
	var stdout, stderr pipetest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--listen", listen, "--partitions", partitions}, strings.NewReader(""), &stdout, &stderr)
	}()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if a, ok := strings.CutPrefix(l, "broker listening on "); ok {
				addr = a
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		t.Fatalf("no 'broker listening on' line: %s", stderr.String())
	}
	return addr, done, &stderr
}

func TestBrokerCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := runBrokerCommand(t, ctx, "127.0.0.1:0", "2")
	var list struct {
		Topics []pipeline.TopicInfo `json:"topics"`
	}
	decodeOne(t, mustCLI(t, "topics", "list", "--brokers", addr, "--json").stdout, &list)
	want := []pipeline.TopicInfo{{Name: "docs.deadletter", Partitions: 2}, {Name: "docs.raw", Partitions: 2}, {Name: "router.models", Partitions: 1}}
	if !slices.Equal(list.Topics, want) {
		t.Errorf("standard topics = %v, want %v", list.Topics, want)
	}
	// router.models takes what the stages publish on it: up to
	// cluster.RouterTopicMaxBytes (a large featurizer state), above the
	// broker's 32 MiB default.
	sink, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: pipeline.ClientConfig{Brokers: []string{addr}}, BatchBytes: 41 << 20})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = sink.Write(wctx, pipeline.Message{Topic: pipeline.TopicRouterModels, Key: []byte("big"), Value: make([]byte, 40<<20)})
	wcancel()
	sink.Close()
	if err != nil {
		t.Errorf("a 40 MiB message on router.models: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("broker exit %d after stop, want 0: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("broker did not stop")
	}
}

// ---------------------------------------------------------------------------
// Config file, errors, help, version

func TestConfigFile(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "c.jsonl")
	writeFile(t, in, []byte(`{"id":"1","text":"one"}`+"\n"))

	yml := filepath.Join(dir, "cfg.yaml")
	writeFile(t, yml, []byte("brokers: "+addr+"\ntopic: cfg.topic\npartitions: 2\nlog-level: warn\nrate: 5\n"))
	mustCLI(t, "ingest", "--config", yml, in)
	// The command line wins over the file.
	mustCLI(t, "ingest", "--config", yml, "--topic", "cli.topic", in)

	js := filepath.Join(dir, "cfg.json")
	writeFile(t, js, []byte(`{"brokers": ["`+addr+`"], "json": true}`))
	var list struct {
		Topics []pipeline.TopicInfo `json:"topics"`
	}
	decodeOne(t, mustCLI(t, "topics", "list", "--config", js).stdout, &list)
	want := []pipeline.TopicInfo{{Name: "cfg.topic", Partitions: 2}, {Name: "cli.topic", Partitions: 2}, {Name: "docs.deadletter", Partitions: 2}}
	if !slices.Equal(list.Topics, want) {
		t.Errorf("topics = %v, want %v", list.Topics, want)
	}

	// Global flags come from the file too.
	logs := filepath.Join(dir, "logs.yaml")
	writeFile(t, logs, []byte("brokers: "+addr+"\nlog-level: debug\nlog-format: json\n"))
	r := mustCLI(t, "topics", "list", "--config", logs)
	if !strings.Contains(r.stderr, `"level":"DEBUG"`) {
		t.Errorf("log-level/log-format from the config file not applied: %q", r.stderr)
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, []byte("brokers: "+addr+"\npartitons: 2\n"))
	r = cli(t, "ingest", "--config", bad, in)
	if r.code != 2 || !strings.Contains(r.stderr, `unknown key "partitons"`) {
		t.Errorf("unknown key: exit %d, stderr %q; want 2 naming the key", r.code, r.stderr)
	}
	r = cli(t, "ingest", "--config", filepath.Join(dir, "missing.yaml"), in)
	if r.code != 2 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("missing config file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "c.jsonl")
	writeFile(t, in, []byte(`{"id":"1","text":"one"}`+"\n"))
	down := closedAddr(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"ingest", "--bogus", in}, 2, "unknown flag: --bogus"},
		{[]string{"ingest"}, 2, "no INPUT given"},
		{[]string{"ingest", "--brokers", down, filepath.Join(dir, "corpus.jsonl")}, 1, "ingest: open " + filepath.Join(dir, "corpus.jsonl") + ": no such file or directory"},
		{[]string{"ingest", "--brokers", down, in}, 1, "broker " + down + " unreachable"},
		{[]string{"ingest", "--brokers", "nocolon", in}, 2, "is not host:port"},
		{[]string{"ingest", "--log-level", "loud", in}, 2, "--log-level"},
		{[]string{"topics", "list", "--brokers", down}, 1, "unreachable"},
		{[]string{"broker", "--sync-writes"}, 2, "--sync-writes needs --data-dir"},
		{[]string{"topics", "list", "--sasl-mechanism", "plain"}, 2, "a user name is required"},
		{[]string{"topics", "list", "--sasl-mechanism", "gssapi", "--sasl-user", "u"}, 2, "unknown mechanism"},
		{[]string{"topics", "list", "--tls-cert", "c.pem"}, 2, "needs both --tls-cert and --tls-key"},
		{[]string{"inspect", "--topic", "t", in}, 2, "not both"},
		{[]string{"identity", "--in", "x", "--out", "x"}, 2, "both x"},
	}
	for _, tc := range tests {
		r := cli(t, tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, "pipeline: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("pipeline %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.want)
		}
		if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("pipeline %s: error is not one line: %q", strings.Join(tc.args, " "), r.stderr)
		}
	}
}

// TestBrokersFromEnv cannot run in parallel: it sets the environment.
func TestBrokersFromEnv(t *testing.T) {
	addr := startBroker(t)
	t.Setenv(envBrokers, addr)
	if r := mustCLI(t, "topics", "list", "--json"); !strings.HasPrefix(r.stdout, `{"topics":`) {
		t.Errorf("topics list with $%s: %q", envBrokers, r.stdout)
	}
}

func TestHelpMentionsFlags(t *testing.T) {
	t.Parallel()
	a := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	var walk func(c *cobra.Command)
	var cmds []*cobra.Command
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			return
		}
		cmds = append(cmds, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(a.rootCmd())
	for _, c := range cmds {
		path := strings.Fields(c.CommandPath())[1:]
		r := mustCLI(t, append(path, "--help")...)
		if c.Long == "" || c.Example == "" {
			t.Errorf("%s: Long or Example help missing", c.CommandPath())
		}
		if !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%s --help has no Examples section", c.CommandPath())
		}
		// A fresh tree: flags of the command as run.
		fresh := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}).rootCmd()
		fc, _, err := fresh.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		fc.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(r.stdout, "--"+f.Name) {
				t.Errorf("%s --help does not mention --%s", c.CommandPath(), f.Name)
			}
		})
		for _, g := range []string{"--config", "--log-level", "--log-format", "--metrics-addr"} {
			if !strings.Contains(r.stdout, g) {
				t.Errorf("%s --help does not mention %s", c.CommandPath(), g)
			}
		}
	}
	if len(cmds) < 9 {
		t.Errorf("found %d commands, want root, broker, ingest, replay, inspect, topics (list, create), identity, version", len(cmds))
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var v versionInfo
	decodeOne(t, mustCLI(t, "version", "--json").stdout, &v)
	if v.Module == "" || v.Go == "" || v.Version == "" {
		t.Errorf("version = %+v", v)
	}
	if out := mustCLI(t, "version").stdout; !strings.HasPrefix(out, "pipeline ") {
		t.Errorf("version = %q", out)
	}
}

// scrape reads /metrics at the URL a command logged.
func scrape(t *testing.T, logs string) string {
	t.Helper()
	m := regexp.MustCompile(`url=(http://\S+/metrics)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no metrics URL logged: %s", logs)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatalf("GET %s: %v", m[1], err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", m[1], resp.Status, err)
	}
	return string(body)
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	docs := make([]schemas.Document, 100)
	for i := range docs {
		docs[i] = schemas.Document{ID: fmt.Sprint(i), Text: "slow"}
	}
	pq := filepath.Join(t.TempDir(), "slow.parquet")
	writeParquet(t, pq, docs)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	r := cliCtx(t, ctx, "replay", "--brokers", addr, "--rate", "20", "--json", pq)
	if r.code != 0 {
		t.Fatalf("interrupted replay: exit %d, want 0: %s", r.code, r.stderr)
	}
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if !rep.Interrupted || rep.Docs < 1 || rep.Docs >= 100 {
		t.Errorf("interrupted replay report = %+v", rep)
	}
	got := jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.raw").stdout)
	if int64(len(got)) != rep.Docs {
		t.Errorf("docs.raw holds %d messages, report says %d", len(got), rep.Docs)
	}
}

func TestInspectFollow(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	mustCLI(t, "topics", "create", "--brokers", addr, "--partitions", "2", "live")
	in := filepath.Join(t.TempDir(), "c.jsonl")
	writeFile(t, in, []byte("{\"id\":\"1\",\"text\":\"one\"}\n{\"id\":\"2\",\"text\":\"two\"}\n"))
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		done <- cli(t, "inspect", "--brokers", addr, "--topic", "live", "--follow", "--timeout", "1500ms")
	}()
	time.Sleep(200 * time.Millisecond)
	mustCLI(t, "ingest", "--brokers", addr, "--topic", "live", in)
	r := <-done
	if r.code != 0 {
		t.Fatalf("inspect --follow: exit %d: %s", r.code, r.stderr)
	}
	if n := len(jsonLines(t, r.stdout)); n != 2 {
		t.Errorf("inspect --follow printed %d lines, want 2:\n%s", n, r.stdout)
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("inspect --follow returned after %v, before the silence timeout", el)
	}
}
