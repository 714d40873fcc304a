package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// docLines returns n JSON lines {"id":"<prefix>-i","text":...}.
func docLines(prefix string, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","text":"document %d of %s about %s"}`+"\n", prefix, i, i, prefix,
			[]string{"cats and dogs", "stocks and bonds", "rain and snow"}[i%3])
	}
	return b.Bytes()
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// deadLettersFrom returns the dead letters on the broker whose origin-topic
// header starts with prefix.
func deadLettersFrom(t *testing.T, addr, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", pipeline.TopicDeadLetter).stdout) {
		h := d["headers"].(map[string]any)
		if o, _ := h[pipeline.HeaderOriginTopic].(string); strings.HasPrefix(o, prefix) {
			out = append(out, d)
		}
	}
	return out
}

// TestIngestBadFiles ingests, for every kind of bad file, the inputs [bad
// file, good file]: the good file is read and delivered whole, the bad
// file's records before the failure too, the rest of it is one dead letter
// with a reason and its position, the report lists the file as incomplete,
// and the exit status is 3. Before, the first bad file stopped the command
// (exit 1) and every input after it was left unread.
func TestIngestBadFiles(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	full := gzipBytes(t, docLines("z", 300))
	tests := []struct {
		name  string
		input func(t *testing.T, dir string) string
		// good: documents delivered from the bad input; -1: some, a prefix.
		good int
		// the incomplete file (relative to the input; "" the input itself)
		// and its report; reason "" for a file read to its end.
		file, reason string
		records      int64 // -1: the good ones
		dead         []string
		code         int
	}{
		{
			name: "truncated gzip",
			input: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "cut.jsonl.gz")
				writeFile(t, p, full[:len(full)*2/3])
				return p
			},
			good: -1, reason: "truncated-input", records: -1, dead: []string{"truncated-input"}, code: exitIncomplete,
		},
		{
			name: "trailing bytes after gzip",
			input: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "trail.jsonl.gz")
				writeFile(t, p, append(bytes.Clone(full), "trailing junk"...))
				return p
			},
			good: 300, reason: "unreadable-file", records: 300, dead: []string{"unreadable-file"}, code: exitIncomplete,
		},
		{
			name: "corrupt parquet",
			input: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "corrupt.parquet")
				writeFile(t, p, []byte("PAR1 this is not a parquet file PAR1"))
				return p
			},
			good: 0, reason: "unreadable-file", records: 0, dead: []string{"unreadable-file"}, code: exitIncomplete,
		},
		{
			name: "int text column",
			input: func(t *testing.T, dir string) string {
				type row struct {
					ID   string `parquet:"id"`
					Text int64  `parquet:"text"`
				}
				var buf bytes.Buffer
				if err := parquet.Write(&buf, []row{{"a", 1}, {"b", 2}}); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, "inttext.parquet")
				writeFile(t, p, buf.Bytes())
				return p
			},
			good: 0, dead: []string{"wrong-schema", "wrong-schema"}, code: 0,
		},
		{
			name: "self-looping txt in a folder",
			input: func(t *testing.T, dir string) string {
				folder := filepath.Join(dir, "notes")
				writeFile(t, filepath.Join(folder, "a.txt"), []byte("a note about cats"))
				writeFile(t, filepath.Join(folder, "z.txt"), []byte("a note about rain"))
				if err := os.Symlink("loop.txt", filepath.Join(folder, "loop.txt")); err != nil {
					t.Fatal(err)
				}
				return folder
			},
			good: 2, file: "loop.txt", reason: "unreadable-file", records: 0, dead: []string{"unreadable-file"}, code: exitIncomplete,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bad := tt.input(t, dir)
			good := filepath.Join(dir, "good.jsonl")
			writeFile(t, good, docLines("good", 3))
			topic := fmt.Sprintf("docs.bad%d", i)
			r := cli(t, "ingest", "--brokers", addr, "--topic", topic, "--json", bad, good)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			var rep produceReport
			decodeOne(t, r.stdout, &rep)

			// Every good document arrived: the good file's and those of the
			// bad file before its failure.
			var ids []string
			for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", topic).stdout) {
				ids = append(ids, d["key"].(string))
			}
			sort.Strings(ids)
			for k := range 3 {
				if _, ok := slices.BinarySearch(ids, fmt.Sprintf("good-%d", k)); !ok {
					t.Errorf("good-%d missing from %s: %v", k, topic, ids)
				}
			}
			fromBad := int64(len(ids) - 3)
			if (tt.good >= 0 && fromBad != int64(tt.good)) || (tt.good < 0 && fromBad == 0) {
				t.Errorf("%d documents from the bad input, want %d (-1: some)", fromBad, tt.good)
			}
			if rep.Docs != int64(len(ids)) || rep.DeadLetter != int64(len(tt.dead)) {
				t.Errorf("report %+v: want %d docs, %d dead letters", rep, len(ids), len(tt.dead))
			}

			// The report names the incomplete file.
			if tt.reason == "" {
				if len(rep.IncompleteFiles) != 0 {
					t.Errorf("incomplete files %+v, want none", rep.IncompleteFiles)
				}
			} else {
				wantFile := bad
				if tt.file != "" {
					wantFile = filepath.Join(bad, tt.file)
				}
				records := tt.records
				if records < 0 {
					records = fromBad
				}
				if len(rep.IncompleteFiles) != 1 {
					t.Fatalf("incomplete files %+v, want %s", rep.IncompleteFiles, wantFile)
				}
				f := rep.IncompleteFiles[0]
				if f.File != wantFile || f.Reason != tt.reason || f.Records != records || f.Error == "" {
					t.Errorf("incomplete file %+v, want %s, %s, %d records", f, wantFile, tt.reason, records)
				}
				if !strings.Contains(r.stderr, "could not be read to the end") || !strings.Contains(r.stderr, wantFile) {
					t.Errorf("stderr does not say which file was incomplete:\n%s", r.stderr)
				}
			}

			// Whatever went wrong, stderr names the file.
			if !strings.Contains(r.stderr, bad) {
				t.Errorf("stderr does not name %s:\n%s", bad, r.stderr)
			}

			// The dead letters of the bad input, with their reasons.
			var reasons []string
			for _, d := range deadLettersFrom(t, addr, bad) {
				h := d["headers"].(map[string]any)
				reasons = append(reasons, h[pipeline.HeaderReason].(string))
				if h[pipeline.HeaderStage] != "ingest" {
					t.Errorf("dead letter headers %v", h)
				}
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tt.dead) {
				t.Errorf("dead letters %q, want %q", reasons, tt.dead)
			}
		})
	}
}

// TestIngestIncompleteHumanSummary: without --json the summary on stderr
// lists the incomplete file.
func TestIngestIncompleteHumanSummary(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	full := gzipBytes(t, docLines("z", 50))
	cut := filepath.Join(dir, "cut.jsonl.gz")
	writeFile(t, cut, full[:len(full)-10])
	r := cli(t, "ingest", "--brokers", addr, cut)
	if r.code != exitIncomplete || !strings.Contains(r.stderr, "ingest: incomplete input "+cut+" (truncated-input): ") {
		t.Errorf("exit %d, stderr:\n%s\nwant 3 and the incomplete file listed", r.code, r.stderr)
	}
}

// TestIngestIDsAndBOM: a byte order mark at the start of a file is skipped;
// an id over --max-id-bytes or with a lone surrogate escape is an invalid-id
// dead letter, and two ids that differ only in their lone surrogates are not
// merged into one.
func TestIngestIDsAndBOM(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "ids.jsonl")
	lines := []string{
		"\xef\xbb\xbf" + `{"id":"first","text":"after a byte order mark"}`, // 1
		`{"id":"\ud800","text":"lone high surrogate"}`,                     // 2
		`{"id":"\ud801","text":"another lone high surrogate"}`,             // 3
		`{"id":"` + strings.Repeat("x", 17) + `","text":"long id"}`,        // 4
		`{"id":"\ud83d\ude00","text":"a surrogate pair is fine"}`,          // 5
	}
	writeFile(t, in, []byte(strings.Join(lines, "\n")+"\n"))
	r := mustCLI(t, "ingest", "--brokers", addr, "--topic", "docs.ids", "--max-id-bytes", "16", "--json", in)
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if rep.Docs != 2 || rep.DeadLetter != 3 {
		t.Errorf("report %+v, want 2 docs and 3 dead letters", rep)
	}
	var ids []string
	for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", "docs.ids").stdout) {
		ids = append(ids, d["key"].(string))
	}
	sort.Strings(ids)
	if want := []string{"first", "😀"}; !slices.Equal(ids, want) {
		t.Errorf("ids %q, want %q", ids, want)
	}
	got := map[string]string{}
	for _, d := range deadLettersFrom(t, addr, in) {
		h := d["headers"].(map[string]any)
		got[h[pipeline.HeaderOriginOffset].(string)] = h[pipeline.HeaderReason].(string)
		var raw []byte
		if v, ok := d["value_base64"].(string); ok {
			raw, _ = base64.StdEncoding.DecodeString(v)
		} else if v, ok := d["value"]; ok {
			raw, _ = json.Marshal(v)
		}
		if len(raw) == 0 {
			t.Errorf("dead letter without its line: %v", d)
		}
	}
	want := map[string]string{"2": "invalid-id", "3": "invalid-id", "4": "invalid-id"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters (line → reason) %v, want %v", got, want)
	}
	if r := cli(t, "ingest", "--brokers", addr, "--max-id-bytes", "0", in); r.code != 2 || !strings.Contains(r.stderr, "--max-id-bytes") {
		t.Errorf("--max-id-bytes 0: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
}

// TestReplayIncomplete: replay goes on past a corrupt Parquet file and
// lists it.
func TestReplayIncomplete(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.parquet")
	writeFile(t, bad, []byte("PAR1 garbage PAR1"))
	good := filepath.Join(dir, "good.parquet")
	writeParquet(t, good, []schemas.Document{{ID: "g1", Text: "one"}, {ID: "g2", Text: "two"}})
	r := cli(t, "replay", "--brokers", addr, "--topic", "docs.replayed", "--json", bad, good)
	if r.code != exitIncomplete {
		t.Fatalf("exit %d, want %d: %s", r.code, exitIncomplete, r.stderr)
	}
	var rep produceReport
	decodeOne(t, r.stdout, &rep)
	if rep.Docs != 2 || rep.DeadLetter != 1 || len(rep.IncompleteFiles) != 1 || rep.IncompleteFiles[0].File != bad ||
		rep.IncompleteFiles[0].Reason != string(schemas.ReasonUnreadableFile) {
		t.Errorf("report %+v: want 2 docs, 1 dead letter, %s incomplete", rep, bad)
	}
}

// TestRunIncompleteInput: `pipeline run` over a truncated gzip and a good
// file completes, twice on the same --out, with the truncated file listed,
// its unread rest one dead letter, and every record accounted for. Before,
// the split failed on the truncated file, and so did every rerun.
func TestRunIncompleteInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := gzipBytes(t, docLines("z", 60))
	cut := filepath.Join(dir, "cut.jsonl.gz")
	writeFile(t, cut, full[:len(full)-20])
	good := filepath.Join(dir, "good.jsonl")
	writeFile(t, good, docLines("good", 30))
	out := filepath.Join(dir, "out")
	for attempt := range 2 {
		r := cli(t, "run", "--input", cut+","+good, "--out", out, "--k", "2", "--train=false", "--log-level", "warn", "--json")
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", attempt+1, r.code, r.stderr)
		}
		var sum runSummary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatalf("run %d: %v: %s", attempt+1, err, r.stdout)
		}
		if len(sum.IncompleteFiles) != 1 || sum.IncompleteFiles[0].File != cut || sum.IncompleteFiles[0].Reason != string(schemas.ReasonTruncatedInput) {
			t.Fatalf("run %d: incomplete files %+v, want %s truncated", attempt+1, sum.IncompleteFiles, cut)
		}
		read := sum.IncompleteFiles[0].Records
		if read == 0 || read >= 60 {
			t.Errorf("run %d: %d records read from the truncated file, want some of its 60", attempt+1, read)
		}
		// Records: the good file's 30, those read from the truncated one,
		// and its unread rest as one.
		if sum.DocsIn+sum.DocsHeldout != 30+read+1 || sum.DocsDeadletter != 1 || sum.DocsRouted+sum.DocsDeadletter != sum.DocsIn {
			t.Errorf("run %d: summary %+v: want %d records, 1 dead-lettered, the rest routed or held out", attempt+1, sum, 30+read+1)
		}
	}
}
