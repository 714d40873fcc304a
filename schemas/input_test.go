package schemas

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// got is what a test expects of one InputRecord.
type got struct {
	id, text, meta, source string
	reason                 Reason
}

func readInput(t *testing.T, in InputReader) []got {
	t.Helper()
	var out []got
	for {
		rec, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if (rec.Err != nil) != (rec.Raw != nil) {
			t.Errorf("%s: Err %v with %d raw bytes", rec.Source, rec.Err, len(rec.Raw))
		}
		out = append(out, got{rec.Doc.ID, rec.Doc.Text, string(rec.Doc.Meta), rec.Source, ReasonOf(rec.Err)})
	}
	if err := in.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	return out
}

func check(t *testing.T, name string, gots, wants []got) {
	t.Helper()
	if len(gots) != len(wants) {
		t.Fatalf("%s: %d records, want %d: %+v", name, len(gots), len(wants), gots)
	}
	for i := range wants {
		if gots[i] != wants[i] {
			t.Errorf("%s record %d:\n got %+v\nwant %+v", name, i, gots[i], wants[i])
		}
	}
}

func write(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gz(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenInputJSONLines(t *testing.T) {
	dir := t.TempDir()
	seed, err := os.ReadFile(seedFiles(t, "jsonl/mixed.jsonl")[0])
	if err != nil {
		t.Fatal(err)
	}
	wants := func(name string) []got {
		return []got{
			{"a", "first line", "", name + ":1", ""},
			{"2", "second, with meta", `{"source":"brown"}`, name + ":4", ""},
			{"", "", "", name + ":5", ReasonInvalidUTF8},
			{"empty", "", "", name + ":6", ReasonEmptyText},
			{"", "", "", name + ":7", ReasonMalformedJSON},
			{"", "no id but fine", "", name + ":8", ""},
			{"last", "no newline at end", "", name + ":9", ""},
		}
	}
	for _, name := range []string{"a.jsonl", "b.jsonl.gz", "c.json.gz", "d.ndjson"} {
		data := seed
		if strings.HasSuffix(name, ".gz") {
			data = gz(t, seed)
		}
		p := write(t, filepath.Join(dir, name), data)
		in, err := OpenInput(p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, name, readInput(t, in), wants(p))
	}
	in, err := NewLineReader("mem", bytes.NewReader(gz(t, seed)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "NewLineReader", readInput(t, in), wants("mem"))

	// Raw holds the bad line, byte-exact.
	in, _ = NewLineReader("mem", bytes.NewReader(seed), Limits{})
	for {
		rec, err := in.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Err != nil {
			if !bytes.Equal(rec.Raw, []byte("{\"id\":\"bad\",\"text\":\"caf\xc3\x28\"}")) {
				t.Errorf("Raw = %q", rec.Raw)
			}
			break
		}
	}
}

func TestOpenInputLongLines(t *testing.T) {
	lim := Limits{MaxTextBytes: 100}
	long := strings.Repeat("x", 3<<20)  // over the bufio buffer: joined from pieces
	huge := strings.Repeat("y", 65<<20) // over the 64 MiB line cap
	data := `{"id":"long","text":"` + long + `"}` + "\n" +
		`{"id":"huge","text":"` + huge + `"}` + "\n" +
		`{"id":"after","text":"ok"}` + "\n" +
		`{"id":"unterminated long","text":"` + long + `"}`
	in, err := NewLineReader("mem", strings.NewReader(data), lim)
	if err != nil {
		t.Fatal(err)
	}
	var recs []InputRecord
	for {
		rec, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for i, want := range []Reason{ReasonOversize, ReasonOversize, "", ReasonOversize} {
		if r := ReasonOf(recs[i].Err); r != want {
			t.Errorf("record %d (%s): reason %q, want %q", i, recs[i].Source, r, want)
		}
	}
	if recs[0].Doc.ID != "long" || len(recs[0].Raw) != len(long)+len(`{"id":"long","text":""}`) {
		t.Errorf("long line: id %q, %d raw bytes", recs[0].Doc.ID, len(recs[0].Raw))
	}
	if len(recs[1].Raw) != RawPrefixBytes || !bytes.HasPrefix(recs[1].Raw, []byte(`{"id":"huge"`)) {
		t.Errorf("huge line: %d raw bytes starting %.20q", len(recs[1].Raw), recs[1].Raw)
	}
	if recs[2].Doc.ID != "after" || recs[2].Source != "mem:3" {
		t.Errorf("line after the huge one: %+v", recs[2])
	}
	// The long line at the end is not over the line cap: only over the text limit.
	if recs[3].Doc.ID != "unterminated long" {
		t.Errorf("last line: id %q", recs[3].Doc.ID)
	}
}

func TestOpenInputTextFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.txt"), []byte("bee"))
	write(t, filepath.Join(dir, "a.txt"), []byte("ay\n"))
	write(t, filepath.Join(dir, "sub", "c.TXT"), []byte("see"))
	write(t, filepath.Join(dir, "sub", "deeper", "d.txt"), []byte("dee"))
	write(t, filepath.Join(dir, "empty.txt"), []byte(" \n"))
	write(t, filepath.Join(dir, "latin1.txt"), []byte("caf\xe9"))
	write(t, filepath.Join(dir, "notes.md"), []byte("skipped"))
	write(t, filepath.Join(dir, ".hidden.txt"), []byte("skipped"))
	write(t, filepath.Join(dir, ".git", "x.txt"), []byte("skipped"))
	in, err := OpenInput(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	check(t, "folder", readInput(t, in), []got{
		{"a", "ay\n", "", j("a.txt"), ""},
		{"b", "bee", "", j("b.txt"), ""},
		{"empty", " \n", "", j("empty.txt"), ReasonEmptyText},
		{"latin1", "caf\xe9", "", j("latin1.txt"), ReasonInvalidUTF8},
		{"sub/c", "see", "", j("sub", "c.TXT"), ""},
		{"sub/deeper/d", "dee", "", j("sub", "deeper", "d.txt"), ""},
	})
	in, err = OpenInput(j("b.txt"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "one file", readInput(t, in), []got{{"b", "bee", "", j("b.txt"), ""}})
	if n := InputSize(dir); n != int64(len("bee")+len("ay\n")+len("see")+len("dee")+len(" \n")+len("caf\xe9")) {
		t.Errorf("InputSize(folder) = %d", n)
	}
	if n := InputSize(j("b.txt"), "-", j("missing")); n != 3 {
		t.Errorf("InputSize(b.txt, -, missing) = %d, want 3", n)
	}
}

func TestOpenInputParquet(t *testing.T) {
	dir := t.TempDir()
	docs := []Document{
		{ID: "a", Text: "alpha", Meta: json.RawMessage(`{"source":"brown","n":[1,2]}`)},
		{ID: "b", Text: "beta"},
		{ID: "", Text: "  "},
	}
	var buf bytes.Buffer
	if err := WriteParquetDocuments(&buf, docs); err != nil {
		t.Fatal(err)
	}
	p := write(t, filepath.Join(dir, "docs.parquet"), buf.Bytes())
	writeSeed(t, "parquet/documents.parquet", buf.Bytes())
	in, err := OpenInput(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "documents", readInput(t, in), []got{
		{"a", "alpha", `{"source":"brown","n":[1,2]}`, p + "#row=0", ""},
		{"b", "beta", "", p + "#row=1", ""},
		{"", "  ", "", p + "#row=2", ReasonEmptyText},
	})

	// Extra columns of other types end up in Meta, in column order.
	type row struct {
		Source string   `parquet:"source"`
		ID     int64    `parquet:"id"`
		Text   string   `parquet:"text"`
		Score  float64  `parquet:"score"`
		Tags   []string `parquet:"tags,list"`
		Blob   []byte   `parquet:"blob"`
		Opt    *int32   `parquet:"opt,optional"`
	}
	seven := int32(7)
	buf.Reset()
	if err := parquet.Write(&buf, []row{
		{"brown", 17, "text one", 0.5, []string{"x", "y"}, []byte{0, 1}, &seven},
		{"sotu", -2, "caf\xe9", 2, nil, nil, nil},
	}); err != nil {
		t.Fatal(err)
	}
	p = write(t, filepath.Join(dir, "extra.parquet"), buf.Bytes())
	writeSeed(t, "parquet/extra-columns.parquet", buf.Bytes())
	in, err = OpenInput(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "extra columns", readInput(t, in), []got{
		{"17", "text one", `{"source":"brown","score":0.5,"tags":["x","y"],"blob":"AAE=","opt":7}`, p + "#row=0", ""},
		{"-2", "caf\xe9", `{"source":"sotu","score":2,"tags":[],"blob":"","opt":null}`, p + "#row=1", ReasonInvalidUTF8},
	})

	// No text column: every row is a wrong-schema record.
	type noText struct {
		ID string `parquet:"id"`
	}
	buf.Reset()
	parquet.Write(&buf, []noText{{"x"}, {"y"}})
	p = write(t, filepath.Join(dir, "notext.parquet"), buf.Bytes())
	in, err = OpenInput(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "no text column", readInput(t, in), []got{
		{"", "", "", p + "#row=0", ReasonWrongSchema},
		{"", "", "", p + "#row=1", ReasonWrongSchema},
	})
	// Not a Parquet file: one unreadable-file record.
	p = write(t, filepath.Join(dir, "garbage.parquet"), []byte("PAR1 not really PAR1"))
	in, err = OpenInput(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "garbage", readInput(t, in), []got{{"", "", "", p, ReasonUnreadableFile}})
}

func TestWriteParquetJSON(t *testing.T) {
	var buf bytes.Buffer
	docs := []Document{{ID: "a", Text: "x\ny", Meta: json.RawMessage(`{"k":1}`)}, {ID: "b", Text: "z"}}
	if err := WriteParquetDocuments(&buf, docs); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteParquetJSON(&out, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
	want := `{"id":"a","text":"x\ny","meta":"{\"k\":1}"}` + "\n" + `{"id":"b","text":"z","meta":null}` + "\n"
	if out.String() != want {
		t.Errorf("WriteParquetJSON:\n got %s\nwant %s", out.String(), want)
	}
	p := filepath.Join(t.TempDir(), "d.parquet")
	write(t, p, buf.Bytes())
	out.Reset()
	if err := WriteFileJSON(&out, p); err != nil || out.String() != want {
		t.Errorf("WriteFileJSON(parquet) = %v, %s", err, out.String())
	}
	if err := WriteParquetJSON(&out, strings.NewReader("nope"), 4); err == nil {
		t.Errorf("WriteParquetJSON(garbage) succeeded")
	}
}

func TestOpenInputs(t *testing.T) {
	dir := t.TempDir()
	a := write(t, filepath.Join(dir, "a.jsonl"), []byte(`{"id":"1","text":"one"}`+"\n"))
	b := write(t, filepath.Join(dir, "b.txt"), []byte("two"))
	in, err := OpenInputs([]string{a, b}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "inputs", readInput(t, in), []got{{"1", "one", "", a + ":1", ""}, {"b", "two", "", b, ""}})
	if _, err := OpenInputs([]string{a, filepath.Join(dir, "missing")}, Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenInputs(missing) error %v", err)
	}
	// A file that goes away before its turn is a bad record; the others
	// are read.
	gone := write(t, filepath.Join(dir, "gone.jsonl"), []byte(`{"id":"g","text":"gone"}`+"\n"))
	in, err = OpenInputs([]string{gone, b}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	check(t, "gone", readInput(t, in), []got{{"", "", "", gone, ReasonUnreadableFile}, {"b", "two", "", b, ""}})
	if _, err := OpenInput(filepath.Join(dir, "missing"), Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenInput(missing) error %v", err)
	}
}

// TestParquetMutations corrupts the metadata (footer and trailer) of the
// Parquet seed files at random: reading them must end in an error or rows,
// never in a panic, a hang or a huge allocation (parquet-go trusts the sizes
// in a file; see parquetcheck.go). Corrupt page data is not covered: decoding
// it is parquet-go's, which can be made to allocate without bound (an RLE
// run claims up to 2^31 values).
func TestParquetMutations(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race, checkptr turns parquet-go's unsafe slicing of corrupt files into a fatal error")
	}
	var seeds [][]byte
	for _, p := range append(seedFiles(t, "parquet/*.parquet"), seedFiles(t, "interop/*.parquet")...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p, "lz4") {
			seeds = append(seeds, data)
		}
	}
	rng := rand.New(rand.NewPCG(7, 9))
	iters := 5000
	if testing.Short() {
		iters = 500
	}
	for it := 0; it < iters; it++ {
		p := bytes.Clone(seeds[rng.IntN(len(seeds))])
		meta := 8 + int(binary.LittleEndian.Uint32(p[len(p)-8:]))
		for k := 0; k < 1+rng.IntN(3); k++ {
			i := len(p) - meta + rng.IntN(meta-4)
			switch rng.IntN(3) {
			case 0:
				p[i] = byte(rng.Uint32())
			case 1:
				v := []uint32{0, 0xffffffff, 0x7fffffff, 0x80000000, 1, 1 << 20}[rng.IntN(6)]
				binary.LittleEndian.PutUint32(p[i:], v)
			case 2:
				p[i] ^= 1 << rng.IntN(8)
			}
		}
		checkParquetBytes(p)
	}
}

// checkParquetBytes reads data as a Parquet input and as JSON lines.
func checkParquetBytes(data []byte) {
	in, err := newParquetInput("mutated", bytes.NewReader(data), int64(len(data)), nil, Limits{})
	if err == nil {
		for i := 0; i < 1000; i++ {
			if _, err := in.Next(); err != nil {
				break
			}
		}
		in.Close()
	}
	_ = WriteParquetJSON(io.Discard, bytes.NewReader(data), int64(len(data)))
}

// TestFixtureMixedSmall reads testdata/mixed-small.jsonl.gz (made by
// testdata/make_small.py), the fixture other packages test and demo with.
func TestFixtureMixedSmall(t *testing.T) {
	in, err := OpenInput(filepath.Join("..", "testdata", "mixed-small.jsonl.gz"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sources := map[string]int{}
	textBytes := 0
	for {
		rec, err := in.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Err != nil {
			t.Fatalf("%s: %v", rec.Source, rec.Err)
		}
		var meta struct{ Source, Label string }
		if err := json.Unmarshal(rec.Doc.Meta, &meta); err != nil || meta.Label == "" {
			t.Fatalf("%s: meta %s: %v", rec.Source, rec.Doc.Meta, err)
		}
		sources[meta.Source]++
		textBytes += len(rec.Doc.Text)
	}
	want := map[string]int{"brown": 53, "go-source": 86, "moby-dick": 20, "sotu": 25, "spam-assassin": 150}
	for s, n := range want {
		if sources[s] != n {
			t.Errorf("%s: %d documents, want %d", s, sources[s], n)
		}
	}
	if len(sources) != len(want) || textBytes != 2495538 {
		t.Errorf("sources %v, %d text bytes; want %v, 2495538", sources, textBytes, want)
	}
}
