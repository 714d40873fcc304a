package schemas_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/schemas"
)

func ExampleDocReader() {
	dir, err := os.MkdirTemp("", "docreader")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "docs.jsonl")
	lines := `{"id":"a","text":"hello world","source":"web"}
not json
{"text":"no id here","source":"books"}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	dr := schemas.NewDocReader([]string{path}, schemas.Limits{}, nil, nil)
	dr.KeepMeta = true
	defer dr.Close()
	if err := dr.ReadAll(); err != nil {
		fmt.Println(err)
		return
	}
	for i, text := range dr.Texts() {
		fmt.Printf("%s %q %s\n", filepath.Base(dr.IDs()[i]), text, dr.Metas()[i])
	}
	fmt.Println(dr.Docs(), "documents,", dr.Bytes(), "bytes,", dr.Rejected(), "rejected")
	// Output:
	// a "hello world" {"source":"web"}
	// docs.jsonl:3 "no id here" {"source":"books"}
	// 2 documents, 21 bytes, 1 rejected
}

func TestDocReader(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	b := filepath.Join(dir, "b.jsonl")
	if err := os.WriteFile(a, []byte(`{"id":"a1","text":"one","k":1}`+"\n"+`{"id":"a2","text":"two"}`+"\n"+`{"id":"a3","text":" "}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(`{"id":"b1","text":"three"}`+"\n"+`{"id":"b2","text":"four"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin := `{"id":"s1","text":"from stdin"}` + "\n"
	tests := []struct {
		name      string
		paths     []string
		n         int // chunk size of Next
		dropTexts bool
		keepMeta  bool
		wantIDs   []string
		wantTexts []string // what the chunks returned, in order
		wantKept  int      // len(Texts()) at the end
		wantMetas []string
		wantBytes int64
		wantRej   int
		wantErr   string
	}{
		{name: "all", paths: []string{a, b}, n: 100, wantIDs: []string{"a1", "a2", "b1", "b2"},
			wantTexts: []string{"one", "two", "three", "four"}, wantKept: 4, wantBytes: 15, wantRej: 1},
		{name: "chunks across files", paths: []string{a, b}, n: 3, wantIDs: []string{"a1", "a2", "b1", "b2"},
			wantTexts: []string{"one", "two", "three", "four"}, wantKept: 4, wantBytes: 15, wantRej: 1},
		{name: "drop texts", paths: []string{b, a}, n: 1, dropTexts: true, wantIDs: []string{"b1", "b2", "a1", "a2"},
			wantTexts: []string{"three", "four", "one", "two"}, wantKept: 0, wantBytes: 15, wantRej: 1},
		{name: "meta", paths: []string{a}, n: 10, keepMeta: true, wantIDs: []string{"a1", "a2"},
			wantTexts: []string{"one", "two"}, wantKept: 2, wantMetas: []string{`{"k":1}`, ""}, wantBytes: 6, wantRej: 1},
		{name: "stdin", paths: []string{"-", b}, n: 10, wantIDs: []string{"s1", "b1", "b2"},
			wantTexts: []string{"from stdin", "three", "four"}, wantKept: 3, wantBytes: 19},
		{name: "missing file", paths: []string{b, filepath.Join(dir, "nope.jsonl")}, n: 10,
			wantErr: "open " + filepath.Join(dir, "nope.jsonl") + ": no such file or directory"},
		{name: "none", n: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			dr := schemas.NewDocReader(tt.paths, schemas.Limits{}, strings.NewReader(stdin), slog.New(slog.NewTextHandler(&logs, nil)))
			dr.DropTexts, dr.KeepMeta = tt.dropTexts, tt.keepMeta
			defer dr.Close()
			var got []string
			var err error
			for {
				var texts []string
				texts, err = dr.Next(tt.n)
				if err != nil {
					break
				}
				if len(texts) == 0 || len(texts) > tt.n {
					t.Fatalf("Next(%d) = %d texts", tt.n, len(texts))
				}
				got = append(got, texts...)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Next: err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: err %v, want io.EOF", err)
			}
			if !reflect.DeepEqual(got, tt.wantTexts) {
				t.Errorf("texts %q, want %q", got, tt.wantTexts)
			}
			if !reflect.DeepEqual(dr.IDs(), tt.wantIDs) {
				t.Errorf("IDs() = %q, want %q", dr.IDs(), tt.wantIDs)
			}
			if len(dr.Texts()) != tt.wantKept {
				t.Errorf("len(Texts()) = %d, want %d", len(dr.Texts()), tt.wantKept)
			}
			var metas []string
			for _, m := range dr.Metas() {
				metas = append(metas, string(m))
			}
			if !reflect.DeepEqual(metas, tt.wantMetas) {
				t.Errorf("Metas() = %q, want %q", metas, tt.wantMetas)
			}
			if dr.Docs() != len(tt.wantIDs) || dr.Bytes() != tt.wantBytes || dr.Rejected() != tt.wantRej {
				t.Errorf("Docs, Bytes, Rejected = %d, %d, %d, want %d, %d, %d", dr.Docs(), dr.Bytes(), dr.Rejected(), len(tt.wantIDs), tt.wantBytes, tt.wantRej)
			}
			if n := strings.Count(logs.String(), `msg="record rejected"`); n != tt.wantRej {
				t.Errorf("%d warnings logged, want %d:\n%s", n, tt.wantRej, logs.String())
			}
		})
	}
}

func TestCheckInputs(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		paths []string
		want  string
	}{
		{nil, ""},
		{[]string{"-", dir}, ""},
		{[]string{dir, missing}, "open " + missing + ": no such file or directory"},
	}
	for _, tt := range tests {
		err := schemas.CheckInputs(tt.paths)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("CheckInputs(%q) = %v, want %q", tt.paths, err, tt.want)
		}
	}
}
