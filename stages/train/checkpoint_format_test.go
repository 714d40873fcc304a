package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/domainflow/domainflow/schemas"
)

// parquetFooterLen returns the length of the Parquet file's footer.
func parquetFooterLen(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 12 || string(b[len(b)-4:]) != "PAR1" {
		t.Fatal("not a Parquet file")
	}
	return int(binary.LittleEndian.Uint32(b[len(b)-8:]))
}

// TestCheckpointParquetLayout: the Parquet twin is zstd-compressed, its
// data column has no min/max statistics (chunk, pages or column index) and
// its footer is small; the metadata records the byte order and writes
// snake_case keys only.
func TestCheckpointParquetLayout(t *testing.T) {
	tr := newTestTrainer(t) // untrained: the largest data value is a 3 KB tensor
	path, err := SaveCheckpoint(t.TempDir(), tr.Checkpoint(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pq := schemas.ParquetTwin(path)
	b, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range pf.Metadata().RowGroups[0].Columns {
		md := cc.MetaData
		if md.Codec != format.Zstd {
			t.Errorf("column %v is %s, want ZSTD", md.PathInSchema, md.Codec)
		}
		if md.PathInSchema[0] == "data" && (md.Statistics.MinValue != nil || md.Statistics.MaxValue != nil || md.Statistics.Min != nil || md.Statistics.Max != nil) {
			t.Errorf("data column has min/max statistics of %d and %d bytes", len(md.Statistics.MinValue), len(md.Statistics.MaxValue))
		}
	}
	data, _ := pf.Schema().Lookup("data")
	for _, rg := range pf.RowGroups() {
		idx, err := rg.ColumnChunks()[data.ColumnIndex].ColumnIndex()
		if err != nil {
			continue // no column index at all: nothing to check
		}
		for p := range idx.NumPages() {
			if len(idx.MinValue(p).ByteArray()) > 0 || len(idx.MaxValue(p).ByteArray()) > 0 {
				t.Errorf("data column index page %d has bounds", p)
			}
		}
	}

	// The footer of the same rows written the old way (no options) holds
	// the bounds; the new one does not.
	meta, ok := pf.Lookup(checkpointMetaKey)
	if !ok {
		t.Fatal("no checkpoint metadata")
	}
	var old bytes.Buffer
	w := parquet.NewGenericWriter[ckptRow](&old, parquet.KeyValueMetadata(checkpointMetaKey, meta))
	if _, err := w.Write(tr.Checkpoint().rows()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	opf, err := parquet.OpenFile(bytes.NewReader(old.Bytes()), int64(old.Len()))
	if err != nil {
		t.Fatal(err)
	}
	st := opf.Metadata().RowGroups[0].Columns[data.ColumnIndex].MetaData.Statistics
	stats := len(st.MinValue) + len(st.MaxValue)
	if stats < 1000 {
		t.Fatalf("the old way wrote %d bytes of data statistics; the test needs a larger tensor as the max", stats)
	}
	newFooter, oldFooter := parquetFooterLen(t, b), parquetFooterLen(t, old.Bytes())
	if newFooter > 4<<10 || newFooter+stats > oldFooter+64 {
		t.Errorf("footer of %d bytes, %d the old way with %d bytes of data statistics; want under 4 KiB and without them", newFooter, oldFooter, stats)
	}
	t.Logf("footer %d bytes (%d with %d bytes of data statistics); file %d bytes", newFooter, oldFooter, stats, len(b))

	var m struct {
		Format    int                        `json:"format"`
		ByteOrder string                     `json:"byte_order"`
		Config    map[string]json.RawMessage `json:"config"`
		Opt       map[string]json.RawMessage `json:"opt"`
	}
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		t.Fatal(err)
	}
	if m.Format != CheckpointFormat || m.ByteOrder != "little" {
		t.Errorf("format %d, byte order %q; want %d, little", m.Format, m.ByteOrder, CheckpointFormat)
	}
	for _, obj := range []map[string]json.RawMessage{m.Config, m.Opt} {
		for k := range obj {
			if k != strings.ToLower(k) {
				t.Errorf("metadata key %q is not snake_case", k)
			}
		}
	}
	if m.Config["vocab"] == nil || m.Opt["warmup_steps"] == nil {
		t.Errorf("config %v, opt %v: missing vocab or warmup_steps", m.Config, m.Opt)
	}
}

// TestCheckpointFormat1: checkpoints written before format 2
// (testdata/checkpoint-format1: uncompressed Parquet, Go-cased "config" and
// "opt", no byte order) still load, from both files, with their settings.
func TestCheckpointFormat1(t *testing.T) {
	dir := filepath.Join("testdata", "checkpoint-format1")
	arrowPath := CheckpointPath(dir, 0)
	b, err := os.ReadFile(schemas.ParquetTwin(arrowPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"WarmupSteps":100`)) {
		t.Fatal("the fixture is not a format-1 checkpoint")
	}
	want := Config{Name: "fixture", Vocab: 256, Dim: 8, Layers: 1, Heads: 2, Ctx: 8, Batch: 2}
	var params []float32
	for _, p := range []string{arrowPath, schemas.ParquetTwin(arrowPath)} {
		c, err := LoadCheckpoint(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if c.Meta.Format != 1 || c.Model.Cfg != want || c.Opt.Cfg != DefaultOptConfig() || c.Meta.Offsets["domain.0/0"] != 6 {
			t.Errorf("%s: format %d, config %+v, opt %+v, offsets %v", p, c.Meta.Format, c.Model.Cfg, c.Opt.Cfg, c.Meta.Offsets)
		}
		if params == nil {
			params = c.Model.Params
		} else if !slices.Equal(params, c.Model.Params) {
			t.Errorf("%s: parameters differ from the Arrow file's", p)
		}
	}
	if !slices.Equal(params, NewModel(want, 7).Params) {
		t.Error("parameters differ from the model they were saved from")
	}
	// Saved again, it is format 2 and loads the same.
	c, _ := LoadCheckpoint(arrowPath)
	out, err := SaveCheckpoint(t.TempDir(), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadCheckpoint(schemas.ParquetTwin(out))
	if err != nil || again.Meta.Format != CheckpointFormat || !slices.Equal(again.Model.Params, params) {
		t.Errorf("re-saved: %v, format %d", err, again.Meta.Format)
	}
}

// TestCheckpointByteOrder: a checkpoint that says its tensors are big
// endian (or anything but little) is refused, with the reason.
func TestCheckpointByteOrder(t *testing.T) {
	tr := newTestTrainer(t)
	ck := tr.Checkpoint()
	rows := ck.rows()
	for _, tt := range []struct {
		order   string
		wantErr string
	}{{"little", ""}, {"", ""}, {"big", `stored "big" endian`}} {
		meta := ck.Meta
		meta.Format, meta.Config, meta.Opt, meta.ParamsSHA256 = CheckpointFormat, ck.Model.Cfg, ck.Opt.Cfg, ParamsSHA256(ck.Model)
		meta.ByteOrder = tt.order
		sum, err := checksum(rows, meta)
		if err != nil {
			t.Fatal(err)
		}
		meta.Checksum = sum
		mb, _ := json.Marshal(meta)
		_, err = buildCheckpoint(mb, rows)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("byte order %q: %v, want error %q", tt.order, err, tt.wantErr)
		}
	}
}
