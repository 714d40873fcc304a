package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestIngestTextField: ingest and replay read files whose text and id
// fields have other names with --text-field and --id-field; a missing field
// dead-letters the rows with an error listing the columns; the flags must
// name two different, non-empty fields.
func TestIngestTextField(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	dir := t.TempDir()
	type row struct {
		Key  string `parquet:"key"`
		Body []byte `parquet:"body"` // binary, as some writers make text
		Lang string `parquet:"lang"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []row{{"p1", []byte("parquet body one"), "en"}, {"p2", []byte("parquet body two"), "de"}}); err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, "other.parquet")
	writeFile(t, pq, buf.Bytes())
	jl := filepath.Join(dir, "other.jsonl")
	writeFile(t, jl, []byte(`{"key":"j1","body":"json body","text":"kept"}`+"\n"))

	for _, tt := range []struct {
		cmd, topic, input string
		want              map[string]string // id → text
		meta              map[string]string // id → a member of the value
	}{
		{"ingest", "docs.f1", jl, map[string]string{"j1": "json body"}, map[string]string{"j1": "input_text"}},
		{"ingest", "docs.f2", pq, map[string]string{"p1": "parquet body one", "p2": "parquet body two"}, map[string]string{"p1": "lang"}},
		{"replay", "docs.f3", pq, map[string]string{"p1": "parquet body one", "p2": "parquet body two"}, map[string]string{"p2": "lang"}},
	} {
		mustCLI(t, tt.cmd, "--brokers", addr, "--topic", tt.topic, "--text-field", "body", "--id-field", "key", tt.input)
		got := map[string]map[string]any{}
		for _, d := range jsonLines(t, mustCLI(t, "inspect", "--brokers", addr, "--topic", tt.topic).stdout) {
			got[d["key"].(string)] = d["value"].(map[string]any)
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s %s: %d documents, want %d", tt.cmd, filepath.Base(tt.input), len(got), len(tt.want))
		}
		for id, text := range tt.want {
			if v := got[id]; v == nil || v["text"] != text || v["id"] != id {
				t.Errorf("%s %s: document %s = %v, want text %q", tt.cmd, filepath.Base(tt.input), id, v, text)
			}
		}
		for id, member := range tt.meta {
			if v := got[id]; v == nil || v[member] == nil {
				t.Errorf("%s %s: document %s = %v, want member %s", tt.cmd, filepath.Base(tt.input), id, v, member)
			}
		}
	}

	// A field the file does not have: every row is dead-lettered, the
	// error names the field and the columns.
	r := cli(t, "ingest", "--brokers", addr, "--topic", "docs.f4", "--text-field", "content", pq)
	if r.code != 0 {
		t.Fatalf("ingest with a missing field: exit %d: %s", r.code, r.stderr)
	}
	dead := deadLettersFrom(t, addr, pq)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters from %s, want 2", len(dead), pq)
	}
	for _, d := range dead {
		h := d["headers"].(map[string]any)
		e, _ := h["deadletter-error"].(string)
		if h["deadletter-reason"] != "wrong-schema" || !strings.Contains(e, "no content column") || !strings.Contains(e, "columns: key, body, lang") {
			t.Errorf("dead letter headers %v", h)
		}
	}

	for _, args := range [][]string{
		{"--text-field", "", "x.jsonl"},
		{"--text-field", "k", "--id-field", "k", "x.jsonl"},
	} {
		r := cli(t, append([]string{"ingest", "--brokers", addr}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--text-field") {
			t.Errorf("ingest %q: exit %d, %s; want a usage error about --text-field", args, r.code, r.stderr)
		}
	}
}
