package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecordOrigin(t *testing.T) {
	tests := []struct{ in, source, file, pos string }{
		{"a.jsonl", "a.jsonl:17", "a.jsonl", "17"},
		{"b.parquet", "b.parquet#row=5", "b.parquet", "5"},
		{"dir", "dir/x.txt", "dir/x.txt", ""},
		{"c:d.jsonl", "c:d.jsonl:3", "c:d.jsonl", "3"},
		{"e.jsonl", "", "e.jsonl", ""},
		{"f", "f:x", "f:x", ""},
	}
	for _, tc := range tests {
		file, pos := recordOrigin(tc.in, tc.source)
		if file != tc.file || pos != tc.pos {
			t.Errorf("recordOrigin(%q, %q) = %q, %q; want %q, %q", tc.in, tc.source, file, pos, tc.file, tc.pos)
		}
	}
}

func TestIDPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-", "stdin"},
		{"data/corpus.jsonl.gz", "corpus"},
		{"corpus.JSONL", "corpus"},
		{"x/archive.parquet", "archive"},
		{"notes/", "notes"},
		{".jsonl", ".jsonl"},
	}
	for _, tc := range tests {
		if got := IDPrefix(tc.in); got != tc.want {
			t.Errorf("IDPrefix(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"zero but inputs", Config{Inputs: []string{"a.jsonl"}}, ""},
		{"no inputs", Config{}, "no inputs"},
		{"dead-letter topic", Config{Inputs: []string{"a"}, Topic: pipeline.TopicDeadLetter}, "dead-letter topic"},
		{"negative rate", Config{Inputs: []string{"a"}, Rate: -1}, "rate -1"},
		{"stdin twice", Config{Inputs: []string{"-", "-"}, Stdin: strings.NewReader("")}, "given twice"},
		{"stdin without reader", Config{Inputs: []string{"-"}}, "without a Stdin reader"},
		{"replay of jsonl", Config{Inputs: []string{"a.jsonl"}, ParquetOnly: true}, "not a .parquet file"},
		{"replay of stdin", Config{Inputs: []string{"-"}, ParquetOnly: true, Stdin: strings.NewReader("")}, "not stdin"},
	}
	for _, tc := range tests {
		err := tc.cfg.validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRunDeadLetters ingests good and bad records from two files: every good
// document reaches docs.raw keyed by its id, every bad record reaches
// docs.deadletter with its reason, the stage name and its origin (file and
// line), and the counts add up.
func TestRunDeadLetters(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	jsonl := writeFile(t, "docs.jsonl", []byte(strings.Join([]string{
		`{"id":"a","text":"alpha"}`,
		`{"id":"b","text":`,     // line 2: malformed
		`{"id":"c","text":""}`,  // line 3: empty text
		`{"text":"no id here"}`, // line 4: gets docs-4
		`{"id":"` + strings.Repeat("x", 40) + `","text":"long id"}`, // line 5: invalid-id
		`{"id":"d","text":"` + strings.Repeat("t", 200) + `"}`,      // line 6: oversize text
	}, "\n")+"\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"id":"z1","text":"zeta"}` + "\n" + `{"id":"z2","text":"eta"}` + "\n"))
	zw.Close()
	truncated := writeFile(t, "cut.jsonl.gz", gz.Bytes()[:gz.Len()-6])

	var progress int64
	rep, err := Run(context.Background(), Config{
		Client:   cc,
		Inputs:   []string{jsonl, truncated},
		Limits:   schemas.Limits{MaxTextBytes: 100, MaxIDBytes: 32},
		Progress: func(n int64) { progress += n },
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if progress == 0 {
		t.Error("Progress was never called")
	}
	raw := pipetest.ReadAll(t, cc, pipeline.TopicRaw)
	dead := pipetest.ReadAll(t, cc, pipeline.TopicDeadLetter)
	if rep.Docs != int64(len(raw)) || rep.DeadLetter != int64(len(dead)) || rep.Failed != 0 {
		t.Fatalf("report %+v; topics hold %d documents and %d dead letters", rep, len(raw), len(dead))
	}
	ids := map[string]bool{}
	var textBytes int64
	for _, m := range raw {
		d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
		if err != nil {
			t.Fatalf("docs.raw@%d: %v", m.Offset, err)
		}
		if string(m.Key) != d.Doc.ID {
			t.Errorf("message keyed %q holds document %q", m.Key, d.Doc.ID)
		}
		ids[d.Doc.ID] = true
		textBytes += int64(len(d.Doc.Text))
	}
	for _, id := range []string{"a", "docs-4", "z1"} {
		if !ids[id] {
			t.Errorf("document %s missing from docs.raw (has %v)", id, ids)
		}
	}
	if rep.Bytes != textBytes {
		t.Errorf("report says %d text bytes, docs.raw holds %d", rep.Bytes, textBytes)
	}
	type origin struct {
		reason schemas.Reason
		file   string
		offset int64
	}
	want := map[origin]bool{
		{schemas.ReasonMalformedJSON, jsonl, 2}: true,
		{schemas.ReasonEmptyText, jsonl, 3}:     true,
		{schemas.ReasonInvalidID, jsonl, 5}:     true,
		{schemas.ReasonOversize, jsonl, 6}:      true,
	}
	var incomplete int
	for _, m := range dead {
		info := pipeline.ParseDeadLetter(m)
		if info.Stage != "ingest" || info.Err == "" {
			t.Errorf("dead letter %+v: want stage ingest and an error", info)
		}
		if info.Reason == schemas.ReasonTruncatedInput {
			incomplete++
			if info.Origin.Topic != truncated {
				t.Errorf("truncated-input dead letter from %q, want %q", info.Origin.Topic, truncated)
			}
			continue
		}
		o := origin{info.Reason, info.Origin.Topic, info.Origin.Offset}
		if !want[o] {
			t.Errorf("unexpected dead letter %+v", o)
		}
		delete(want, o)
	}
	if len(want) > 0 || incomplete != 1 {
		t.Errorf("dead letters missing: %v; truncated-input: %d, want 1", want, incomplete)
	}
	if len(rep.IncompleteFiles) != 1 || rep.IncompleteFiles[0].File != truncated || rep.IncompleteFiles[0].Reason != string(schemas.ReasonTruncatedInput) {
		t.Errorf("incomplete files %+v, want %s (truncated-input)", rep.IncompleteFiles, truncated)
	}
}

// TestRunOversizeDocument: a document the topic refuses for its size (a
// docs.raw of 100 KB messages) is dead-lettered as oversize with its origin;
// the documents produced with it are all delivered.
func TestRunOversizeDocument(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	err := pipeline.EnsureTopics(context.Background(), cc,
		pipeline.TopicSpec{Name: pipeline.TopicDeadLetter, Partitions: 2},
		pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 2, Configs: map[string]string{"max.message.bytes": "100000"}})
	if err != nil {
		t.Fatal(err)
	}
	const good, big = 20, 7
	var lines bytes.Buffer
	for i := range good + 1 {
		text := strings.Repeat(fmt.Sprintf("w%d ", i), 1000)
		id := fmt.Sprintf("good-%02d", i)
		if i == big {
			text, id = strings.Repeat("big ", 200_000), "big"
		}
		fmt.Fprintf(&lines, `{"id":%q,"text":%q}`+"\n", id, text)
	}
	in := writeFile(t, "corpus.jsonl", lines.Bytes())
	rep, err := Run(context.Background(), Config{Client: cc, Inputs: []string{in}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Docs != good || rep.DeadLetter != 1 || rep.Failed != 0 {
		t.Fatalf("report %+v: want %d documents and 1 dead letter", rep, good)
	}
	if n := len(pipetest.ReadAll(t, cc, pipeline.TopicRaw)); n != good {
		t.Fatalf("docs.raw holds %d documents, want %d", n, good)
	}
	dead := pipetest.ReadAll(t, cc, pipeline.TopicDeadLetter)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	info := pipeline.ParseDeadLetter(dead[0])
	if info.Reason != schemas.ReasonOversize || info.Origin.Topic != in || info.Origin.Offset != big+1 || string(dead[0].Key) != "big" || !info.Truncated {
		t.Fatalf("dead letter %+v key %q: want oversize from %s line %d, a truncated value", info, dead[0].Key, in, big+1)
	}
}

// TestRunRate: Config.Rate spaces the documents.
func TestRunRate(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	var lines strings.Builder
	for i := range 21 {
		lines.WriteString(`{"id":"` + strconv.Itoa(i) + `","text":"x"}` + "\n")
	}
	start := time.Now()
	rep, err := Run(context.Background(), Config{Client: cc, Inputs: []string{"-"}, Stdin: strings.NewReader(lines.String()), Rate: 100, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// 21 documents at 100/s: 20 gaps of 10ms.
	if el := time.Since(start); el < 180*time.Millisecond || rep.Docs != 21 {
		t.Fatalf("%d documents in %v, want 21 in at least 200ms", rep.Docs, el)
	}
}

// TestRunInterrupted: a ctx that ends stops the reading; what was read is
// delivered and the report says Interrupted.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	cc := pipetest.Broker(t).Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := `{"id":"a","text":"x"}` + "\n" + `{"id":"b","text":"y"}` + "\n"
	rep, err := Run(ctx, Config{Client: cc, Inputs: []string{"-"}, Stdin: strings.NewReader(lines), Logger: quiet,
		Progress: func(int64) { cancel() }}) // ends ctx after the first record
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Docs != 1 {
		t.Fatalf("report %+v: want interrupted after the first document, delivered", rep)
	}
	if n := len(pipetest.ReadAll(t, cc, pipeline.TopicRaw)); n != 1 {
		t.Fatalf("docs.raw holds %d documents, want 1", n)
	}
}
