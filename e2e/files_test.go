//go:build reliability

package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/schemas"
)

var (
	fixtureOnce sync.Once
	fixture     []schemas.Document
	fixtureErr  error
)

// fixtureDocs returns the documents of the demo corpus, each text cut to at
// most 600 bytes of valid UTF-8.
func fixtureDocs(t *testing.T) []schemas.Document {
	t.Helper()
	fixtureOnce.Do(func() {
		r, err := schemas.OpenInput("../testdata/mixed-small.jsonl.gz", schemas.Limits{})
		if err != nil {
			fixtureErr = err
			return
		}
		defer r.Close()
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				fixtureErr = err
				return
			}
			if rec.Err != nil {
				continue
			}
			d := rec.Doc
			d.Text = strings.ToValidUTF8(d.Text[:min(600, len(d.Text))], "")
			if strings.TrimSpace(d.Text) == "" {
				continue
			}
			fixture = append(fixture, d)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixture
}

// goodDocs returns n documents of the fixture from index start on (round
// robin), with ids prefix-<fixture id>.
func goodDocs(t *testing.T, prefix string, start, n int) []schemas.Document {
	fx := fixtureDocs(t)
	out := make([]schemas.Document, n)
	for i := range out {
		d := fx[(start+i)%len(fx)]
		d.ID = prefix + "-" + d.ID
		out[i] = d
	}
	return out
}

func jsonLines(t *testing.T, docs []schemas.Document) []byte {
	var b bytes.Buffer
	for _, d := range docs {
		line, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// writeGoodWave writes n good documents (ids prefix-...) to path as JSON
// lines and, unless prefix is "fit", four bad lines among them: malformed
// JSON, invalid UTF-8, an empty text and an over-size text. It returns the
// ids of the good documents.
func writeGoodWave(t *testing.T, path, prefix string, start, n int) []string {
	t.Helper()
	docs := goodDocs(t, prefix, start, n)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	var ids []string
	bad := 0
	for i, d := range docs {
		line, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(append(line, '\n'))
		ids = append(ids, d.ID)
		if prefix == "fit" || bad == 4 || (i+1)%max(1, n/5) != 0 {
			continue
		}
		writeBadLine(w, bad, 3*rigMaxText)
		bad++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// damagedFiles is one set of damaged inputs of every format, to be ingested
// in one `pipeline ingest` run in the order of paths.
type damagedFiles struct {
	paths []string
	// good are the ids of documents the contract says must come through:
	// those before the damage of a file, and those of the files after it.
	good []string
	// named are names the ingest output must mention (the files it could not
	// read whole).
	named []string
	// dead are files whose records must be dead-lettered (rows that can be
	// read but are no documents).
	dead []string
}

// writeDamagedFiles writes, into a fresh folder under dir: a gzip file of
// two members whose second is cut short, a gzip file with trailing garbage,
// a Parquet file with damaged bytes, a Parquet file cut short, a Parquet
// file whose text column is an int, a folder of .txt files with a
// self-looping and a dangling symlink (and, when not root, a file nobody may
// read), a JSON-lines file that starts with a UTF-8 byte order mark, and a
// good JSON-lines file last.
func writeDamagedFiles(t *testing.T, dir string, n int) damagedFiles {
	t.Helper()
	base := filepath.Join(dir, fmt.Sprintf("damaged%02d", n))
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	var df damagedFiles
	pre := func(s string) string { return fmt.Sprintf("d%02d%s", n, s) }
	write := func(name string, b []byte) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		df.paths = append(df.paths, p)
		return p
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	ids := func(docs []schemas.Document) []string {
		var out []string
		for _, d := range docs {
			out = append(out, d.ID)
		}
		return out
	}

	// A gzip of two members, the second cut at 60%: the first member's
	// documents are intact.
	first, second := goodDocs(t, pre("gzA"), 7*n, 20), goodDocs(t, pre("gzB"), 7*n+20, 20)
	m2 := gz(jsonLines(t, second))
	write("truncated.jsonl.gz", append(gz(jsonLines(t, first)), m2[:len(m2)*6/10]...))
	df.good = append(df.good, ids(first)...)
	df.named = append(df.named, "truncated.jsonl.gz")

	// A whole gzip stream followed by bytes that are no gzip member.
	tr := goodDocs(t, pre("trail"), 7*n+40, 15)
	write("trailing.jsonl.gz", append(gz(jsonLines(t, tr)), []byte("\x00\x01 trailing garbage \xff\xfe not a gzip member")...))
	df.good = append(df.good, ids(tr)...)
	df.named = append(df.named, "trailing.jsonl.gz")

	// Parquet: damaged bytes in the middle, and a file cut short.
	var pq bytes.Buffer
	if err := schemas.WriteParquetDocuments(&pq, goodDocs(t, pre("pq"), 7*n+55, 20)); err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(pq.Bytes())
	for i := len(corrupt) / 3; i < len(corrupt)/3+64 && i < len(corrupt); i++ {
		corrupt[i] ^= 0xa5
	}
	write("corrupt.parquet", corrupt)
	df.named = append(df.named, "corrupt.parquet")
	write("cut.parquet", pq.Bytes()[:pq.Len()*6/10])
	df.named = append(df.named, "cut.parquet")

	// Parquet whose text column holds ints.
	type intText struct {
		ID   string `parquet:"id"`
		Text int64  `parquet:"text"`
	}
	rows := make([]intText, 5)
	for i := range rows {
		rows[i] = intText{ID: pre(fmt.Sprintf("int%d", i)), Text: int64(1000 + i)}
	}
	var ip bytes.Buffer
	if err := parquet.Write(&ip, rows); err != nil {
		t.Fatal(err)
	}
	df.dead = append(df.dead, write("intcol.parquet", ip.Bytes()))

	// A folder of .txt files: two good ones, a symlink to itself, a dangling
	// symlink and, when not root, a file nobody may read.
	txt := filepath.Join(base, "txt")
	if err := os.MkdirAll(txt, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, d := range goodDocs(t, "", 7*n+60, 2) {
		name := pre(fmt.Sprintf("txt%d", i))
		if err := os.WriteFile(filepath.Join(txt, name+".txt"), []byte(d.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		df.good = append(df.good, name)
	}
	if err := os.Symlink("loop.txt", filepath.Join(txt, "loop.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing-target", filepath.Join(txt, "dangling.txt")); err != nil {
		t.Fatal(err)
	}
	df.named = append(df.named, "loop.txt")
	if os.Geteuid() != 0 {
		p := filepath.Join(txt, "locked.txt")
		if err := os.WriteFile(p, []byte("nobody reads this"), 0o000); err != nil {
			t.Fatal(err)
		}
		df.named = append(df.named, "locked.txt")
	}
	df.paths = append(df.paths, txt)

	// A byte order mark before the first document.
	bom := goodDocs(t, pre("bom"), 7*n+62, 5)
	write("bom.jsonl", append([]byte("\ufeff"), jsonLines(t, bom)...))
	df.good = append(df.good, ids(bom)...)

	// A good file last: the damage before it must not stop it.
	after := goodDocs(t, pre("after"), 7*n+67, 10)
	write("after.jsonl", jsonLines(t, after))
	df.good = append(df.good, ids(after)...)
	return df
}

// writeHugeLine writes good documents around one line of a text larger than
// the broker's message limit (and smaller than the line reader's): the
// over-size document must be dead-lettered and its neighbours delivered. It
// returns the path and the good ids.
func writeHugeLine(t *testing.T, dir string, n, textBytes int) (string, []string) {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("huge%02d.jsonl", n))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	before, after := goodDocs(t, fmt.Sprintf("h%02dpre", n), 11*n, 8), goodDocs(t, fmt.Sprintf("h%02dpost", n), 11*n+8, 8)
	w.Write(jsonLines(t, before))
	fmt.Fprintf(w, `{"id":"huge-%02d","text":"`, n)
	chunk := bytes.Repeat([]byte("abcdefgh "), 1<<16)
	for left := textBytes; left > 0; left -= len(chunk) {
		w.Write(chunk[:min(left, len(chunk))])
	}
	w.WriteString("\"}\n")
	w.Write(jsonLines(t, after))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range append(before, after...) {
		ids = append(ids, d.ID)
	}
	return p, ids
}
