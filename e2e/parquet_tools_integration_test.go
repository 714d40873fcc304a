//go:build integration

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/embed"
	"github.com/domainflow/domainflow/stages/train"
)

// pythonWithParquet returns the Python interpreter of the venv that
// scripts/test-integration.sh makes with pyarrow and duckdb
// ($DOMAINFLOW_PYTHON).
func pythonWithParquet(t *testing.T) string {
	t.Helper()
	py := os.Getenv("DOMAINFLOW_PYTHON")
	if py == "" {
		t.Fatal("DOMAINFLOW_PYTHON is not set: run scripts/test-integration.sh, which makes a venv with pyarrow and duckdb")
	}
	return py
}

// parquetToolsScript reads each file named on the command line with pyarrow
// and duckdb and prints what they see as one JSON object.
const parquetToolsScript = `
import json, sys
import duckdb
import pyarrow.parquet as pq

out = {}
for name, path in zip(sys.argv[1::2], sys.argv[2::2]):
    f = pq.ParquetFile(path)
    md = f.metadata
    codecs, stats = set(), {}
    for g in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(g).column(c)
            codecs.add(col.compression)
            st = col.statistics
            stats[col.path_in_schema] = bool(st is not None and st.has_min_max)
    table = f.read()
    meta = {k.decode(): v.decode() for k, v in (f.schema_arrow.metadata or {}).items()}
    out[name] = {
        "rows": md.num_rows,
        "groups": md.num_row_groups,
        "codecs": sorted(codecs),
        "columns": table.column_names,
        "min_max": stats,
        "meta": meta,
        "types": {fl.name: str(fl.type) for fl in f.schema_arrow},
        "duckdb_rows": duckdb.sql("select count(*) from read_parquet('%s')" % path).fetchall()[0][0],
    }
    if name == "shard":
        out[name]["duckdb_router_versions"] = [r[0] for r in duckdb.sql(
            "select distinct router_version from read_parquet('%s')" % path).fetchall()]
print(json.dumps(out))
`

// TestParquetArtifactsInOutsideTools: pyarrow and duckdb read the features
// file, router, featurizer-free artifacts (router, checkpoint) and archive
// shards the pipeline writes; every one is zstd-compressed, a large features
// file has several row groups, the checkpoint's data column has no min/max
// statistics and its metadata records the byte order, and a shard keeps its
// origin and router-version columns.
func TestParquetArtifactsInOutsideTools(t *testing.T) {
	py := pythonWithParquet(t)
	dir := t.TempDir()

	// Features: more rows than two row groups hold.
	n := 2*schemas.ParquetRowGroupRows + 10
	m := embed.NewCSR(100)
	ids := make([]string, n)
	for i := range n {
		ids[i] = "doc-" + strconv.Itoa(i)
		m.AppendRow([]int32{int32(i % 100), int32(50 + i%50)}, []float32{0.6, 0.8})
	}
	featuresPath := filepath.Join(dir, "features.parquet")
	f, err := os.Create(featuresPath)
	if err != nil {
		t.Fatal(err)
	}
	fw := embed.NewFeaturesWriter(f, `{"kind":"tfidf"}`)
	if err := fw.WriteRows(ids, m, 0, n, 1); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A router.
	routerDir := filepath.Join(dir, "router")
	rm := &cluster.RouterModel{FeaturizerVersion: 1, Featurizer: "tfidf", IDs: []int{0, 1}, NextID: 2,
		Model:    &cluster.Model{K: 2, Dim: 3, Centroids: []float32{1, 0, 0, 0, 1, 0}, Sizes: []int{5, 5}},
		TopTerms: [][]string{{"a"}, {"b"}}, Fit: cluster.FitConfig{K: 2, MaxIter: 50}}
	v, err := cluster.SaveRouter(routerDir, rm)
	if err != nil {
		t.Fatal(err)
	}

	// A checkpoint.
	cfg, _ := train.ConfigByName("tiny")
	model := train.NewModel(cfg, 7)
	ck := &train.Checkpoint{Meta: train.CheckpointMeta{Expert: "0"}, Model: model,
		Opt: train.NewOptimizer(train.DefaultOptConfig(), len(model.Params)), Packer: train.NewPacker(cfg.Ctx, cfg.Batch, train.DocSeparator).State()}
	ckPath, err := train.SaveCheckpoint(filepath.Join(dir, "ckpt"), ck, 0)
	if err != nil {
		t.Fatal(err)
	}

	// An archive shard of routed documents, with the typed extra columns
	// n (int64) and flag (bool) that ingest --arrow gives a Parquet input's
	// columns.
	shardSchema, err := schemas.Extend(schemas.KindRouted, []arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true}})
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, shardSchema)
	for k := range 20 {
		schemas.AppendDocument(rb, schemas.Document{ID: fmt.Sprint(k), Text: "text " + fmt.Sprint(k)}, schemas.Origin{Topic: "docs.raw", Offset: int64(k)})
		rb.Field(7).(*array.Int32Builder).Append(1)
		rb.Field(8).(*array.Float32Builder).Append(0.25)
		rb.Field(9).(*array.Int64Builder).Append(3)
		rb.Field(10).(*array.Int64Builder).Append(int64(k) * 1_000_000_007)
		rb.Field(11).(*array.BooleanBuilder).Append(k%2 == 0)
	}
	rec := rb.NewRecord()
	rb.Release()
	shardPath := filepath.Join(dir, "part-000-000000000000-000000000019.parquet")
	sf, err := os.Create(shardPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.WriteParquetShard(sf, []arrow.Record{rec}); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	sf.Close()

	script := filepath.Join(dir, "read.py")
	if err := os.WriteFile(script, []byte(parquetToolsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script,
		"features", featuresPath,
		"router", schemas.ParquetTwin(cluster.RouterPath(routerDir, v)),
		"checkpoint", schemas.ParquetTwin(ckPath),
		"shard", shardPath)
	outb, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s", py, err, stderr)
	}
	var got map[string]struct {
		Rows, Groups         int64
		Codecs, Columns      []string
		MinMax               map[string]bool `json:"min_max"`
		Meta                 map[string]string
		Types                map[string]string
		DuckDBRows           int64   `json:"duckdb_rows"`
		DuckDBRouterVersions []int64 `json:"duckdb_router_versions"`
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	t.Logf("%s", outb)
	for name, rows := range map[string]int64{"features": int64(n), "router": 2, "shard": 20} {
		if g := got[name]; g.Rows != rows || g.DuckDBRows != rows {
			t.Errorf("%s: pyarrow %d rows, duckdb %d; want %d", name, g.Rows, g.DuckDBRows, rows)
		}
	}
	for name, g := range got {
		if len(g.Codecs) != 1 || g.Codecs[0] != "ZSTD" {
			t.Errorf("%s: codecs %v, want ZSTD", name, g.Codecs)
		}
	}
	if g := got["features"]; g.Groups != 3 {
		t.Errorf("features: %d row groups, want 3", g.Groups)
	}
	ckg := got["checkpoint"]
	if ckg.MinMax["data"] || !ckg.MinMax["name"] {
		t.Errorf("checkpoint min/max statistics by column %v: want none on data, some on name", ckg.MinMax)
	}
	var meta struct {
		ByteOrder string         `json:"byte_order"`
		Config    map[string]any `json:"config"`
		Opt       map[string]any `json:"opt"`
	}
	if err := json.Unmarshal([]byte(ckg.Meta["domainflow.checkpoint"]), &meta); err != nil || meta.ByteOrder != "little" || meta.Opt["warmup_steps"] == nil {
		t.Errorf("checkpoint metadata as pyarrow reads it: %v, byte order %q, opt %v", err, meta.ByteOrder, meta.Opt)
	}
	sh := got["shard"]
	for _, c := range []string{"origin_topic", "origin_offset", "router_version", "domain"} {
		if !slices.Contains(sh.Columns, c) {
			t.Errorf("shard columns %v: no %s", sh.Columns, c)
		}
	}
	if sh.Types["n"] != "int64" || sh.Types["flag"] != "bool" {
		t.Errorf("shard column types as pyarrow reads them: %v; want n int64, flag bool", sh.Types)
	}
	if len(sh.DuckDBRouterVersions) != 1 || sh.DuckDBRouterVersions[0] != 3 {
		t.Errorf("shard router versions in duckdb %v, want [3]", sh.DuckDBRouterVersions)
	}
}

// pyarrowTypedScript writes a Parquet file of documents with columns of
// many types, as pyarrow writes them (snappy, dictionary-encoded strings,
// INT annotations on small integers).
const pyarrowTypedScript = `
import datetime, sys
import pyarrow as pa
import pyarrow.parquet as pq

n = 5
table = pa.table({
    "id": pa.array(["d%d" % i for i in range(n)]),
    "text": pa.array(["text of document %d" % i for i in range(n)], pa.large_string()),
    "n": pa.array([i * 1000000007 for i in range(n)], pa.int64()),
    "flag": pa.array([i % 2 == 0 for i in range(n)]),
    "small": pa.array([-i for i in range(n)], pa.int8()),
    "u": pa.array([60000 + i for i in range(n)], pa.uint16()),
    "score": pa.array([i + 0.5 for i in range(n)], pa.float32()),
    "lang": pa.array(["en", "de", "en", "fr", "en"]).dictionary_encode(),
    "maybe": pa.array([1, None, 3, None, 5], pa.int64()),
    "at": pa.array([datetime.datetime(2026, 1, 2)] * n, pa.timestamp("us")),
    "tags": pa.array([["a"], [], ["b", "c"], None, ["d"]], pa.list_(pa.string())),
})
pq.write_table(table, sys.argv[1])
`

// TestTypedColumnsFromPyarrow: a Parquet file pyarrow writes is read with
// typed extra columns (what ingest --arrow produces): booleans, integers of
// every width and sign, floats and (dictionary-encoded) strings typed, a
// timestamp and a list in meta.
func TestTypedColumnsFromPyarrow(t *testing.T) {
	py := pythonWithParquet(t)
	dir := t.TempDir()
	script, path := filepath.Join(dir, "write.py"), filepath.Join(dir, "typed.parquet")
	if err := os.WriteFile(script, []byte(pyarrowTypedScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, script, path).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", py, err, out)
	}
	in, err := schemas.OpenInput(path, schemas.Limits{TypedExtras: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got []string
	for _, f := range in.(schemas.TypedInput).ExtraFields() {
		got = append(got, f.Name+" "+f.Type.String())
	}
	want := []string{"n int64", "flag bool", "small int8", "u uint16", "score float32", "lang utf8", "maybe int64"}
	if !slices.Equal(got, want) {
		t.Fatalf("typed extra columns %v, want %v", got, want)
	}
	b, err := schemas.NewExtraDocumentBuilder(memory.DefaultAllocator, in.(schemas.TypedInput).ExtraFields())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	for i := 0; ; i++ {
		rec, err := in.Next()
		if err != nil {
			break
		}
		if rec.Err != nil {
			t.Fatalf("row %d: %v", i, rec.Err)
		}
		if !strings.HasPrefix(string(rec.Doc.Meta), `{"at":`) || !strings.Contains(string(rec.Doc.Meta), `"tags":`) {
			t.Errorf("row %d: meta %s, want the timestamp and the list only", i, rec.Doc.Meta)
		}
		if err := b.AppendExtra(rec.Doc, schemas.Origin{}, rec.Extra); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	col := func(i int) arrow.Array { return rec.Column(schemas.NumDocumentColumns + i) }
	if rec.NumRows() != 5 || col(0).(*array.Int64).Value(4) != 4*1000000007 || !col(1).(*array.Boolean).Value(2) ||
		col(2).(*array.Int8).Value(3) != -3 || col(3).(*array.Uint16).Value(1) != 60001 || col(5).(*array.String).Value(3) != "fr" ||
		col(6).IsValid(1) || col(6).(*array.Int64).Value(2) != 3 {
		t.Errorf("typed values read from pyarrow's file: %v", rec)
	}
}

// pyarrowLZ4Script writes the documents of the JSON-lines file argv[1] as
// LZ4_RAW Parquet (pyarrow's compression="lz4") four ways: dictionary
// encoding on and off, data page v1 and v2; to argv[2] + "-d<0|1>-v<1|2>.parquet",
// with pages of about 64 kB (a few rows each) and two row groups.
const pyarrowLZ4Script = `
import json, sys
import pyarrow as pa
import pyarrow.parquet as pq

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
table = pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]})
for d in (0, 1):
    for v in ("1.0", "2.0"):
        pq.write_table(table, "%s-d%d-v%s.parquet" % (sys.argv[2], d, v[0]), compression="lz4",
                       use_dictionary=bool(d), data_page_version=v, row_group_size=120,
                       data_page_size=64 << 10, write_batch_size=4)
`

// TestLZ4TextsFromPyarrow: LZ4_RAW files pyarrow writes with 200 texts of
// 2-20 kB and two of 900 kB (together in one page) read back exactly, with
// dictionary encoding on and off and data pages v1 and v2. parquet-go
// v0.32.0 read such texts as "" or failed.
func TestLZ4TextsFromPyarrow(t *testing.T) {
	py := pythonWithParquet(t)
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(16, 2))
	text := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			for range 2 + rnd.IntN(9) {
				b.WriteByte(byte('a' + rnd.IntN(26)))
			}
			b.WriteString([]string{" ", " ", " ", ". ", ", ", "\n"}[rnd.IntN(6)])
		}
		return b.String()
	}
	var want []schemas.Document
	for i := range 202 {
		n := 2000 + rnd.IntN(18000)
		if i >= 200 {
			n = 900_000
		}
		want = append(want, schemas.Document{ID: fmt.Sprintf("lz4-%d", i), Text: text(n)})
	}
	var jsonl bytes.Buffer
	enc := json.NewEncoder(&jsonl)
	for _, d := range want {
		if err := enc.Encode(map[string]string{"id": d.ID, "text": d.Text}); err != nil {
			t.Fatal(err)
		}
	}
	docsPath, script := filepath.Join(dir, "docs.jsonl"), filepath.Join(dir, "write.py")
	if err := os.WriteFile(docsPath, jsonl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(pyarrowLZ4Script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, script, docsPath, filepath.Join(dir, "lz4")).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", py, err, out)
	}
	for _, variant := range []string{"d0-v1", "d0-v2", "d1-v1", "d1-v2"} {
		path := filepath.Join(dir, "lz4-"+variant+".parquet")
		in, err := schemas.OpenInput(path, schemas.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", variant, err)
		}
		n := 0
		for ; ; n++ {
			rec, err := in.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", variant, err)
			}
			if rec.Err != nil {
				t.Fatalf("%s row %d: %v", variant, n, rec.Err)
			}
			if n < len(want) && (rec.Doc.ID != want[n].ID || rec.Doc.Text != want[n].Text) {
				t.Errorf("%s row %d: id %q, %d bytes of text; want %q, %d bytes (the text differs)", variant, n, rec.Doc.ID, len(rec.Doc.Text), want[n].ID, len(want[n].Text))
			}
		}
		in.Close()
		if n != len(want) {
			t.Errorf("%s: %d rows, want %d", variant, n, len(want))
		}
	}
}
