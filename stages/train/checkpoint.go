package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/schemas"
)

// CheckpointFormat is the version of the checkpoint layout in its metadata.
// Format 2 writes "config" and "opt" with snake_case keys and records
// "byte_order"; format 1 (Go field names as keys, no byte order: little
// endian) is still read.
const CheckpointFormat = 2

// ByteOrder is the byte order of the tensors in a checkpoint's data column,
// as CheckpointMeta.ByteOrder records it: float32 values are IEEE 754 bits
// stored little endian. A checkpoint that records another order is refused.
const ByteOrder = "little"

// checkpointMetaKey is the schema (Arrow) and key-value (Parquet) metadata
// key holding the checkpoint's JSON metadata.
const checkpointMetaKey = "domainflow.checkpoint"

// checkpointPrefix names checkpoint files: DIR/step-NNNNNN.arrow and its
// Parquet twin.
const checkpointPrefix = "step"

// Position is a place in an origin partition: the Kafka offset of the input
// message and the row inside it (0 for one document per message).
type Position struct {
	Offset int64 `json:"offset"`
	Row    int32 `json:"row"`
}

// Less orders positions by offset, then row.
func (p Position) Less(q Position) bool {
	return p.Offset < q.Offset || (p.Offset == q.Offset && p.Row < q.Row)
}

// LossPoint is the mean training loss of one step.
type LossPoint struct {
	Step   int     `json:"step"`
	Tokens int64   `json:"tokens"`
	Loss   float32 `json:"loss"` // nats per byte
}

// CheckpointMeta is everything about a checkpoint but its tensors.
type CheckpointMeta struct {
	Format int `json:"format"`
	// ByteOrder is the byte order of the tensors' bytes: always ByteOrder
	// ("little") when written by this package; empty in format 1, which was
	// little endian too.
	ByteOrder string    `json:"byte_order,omitempty"`
	Expert    string    `json:"expert"`  // the domain id, or a name such as "dense"
	Step      int       `json:"step"`    // optimizer steps applied
	Tokens    int64     `json:"tokens"`  // bytes trained on (B·T per step)
	Docs      int64     `json:"docs"`    // documents added to the packer
	Skipped   int64     `json:"skipped"` // rows skipped as already applied
	Config    Config    `json:"config"`
	Opt       OptConfig `json:"opt"`
	Seed      uint64    `json:"seed"`    // the initialization seed (no randomness is used after it)
	Backend   string    `json:"backend"` // the accel backend and threads it trained with
	Threads   int       `json:"threads"`
	// Origins holds, per origin partition ("topic/partition"), the last
	// document applied; rows at or below it are skipped on replay.
	Origins map[string]Position `json:"origins"`
	// Offsets holds, per input partition ("topic/partition"), the next
	// offset to read.
	Offsets map[string]int64 `json:"offsets"`
	// Cursor is the input partition the reader visits next (round robin),
	// so a resumed run reads in the same order.
	Cursor        int    `json:"cursor"`
	RouterVersion int64  `json:"router_version"`
	Init          string `json:"init,omitempty"` // params_sha256 of the checkpoint this one branched from
	// InitFrom says how the checkpoint it branched from was chosen when
	// ConsumerConfig.InitFor chose it ("nearest 3", "average 3:0.62,1:0.38");
	// empty for the seed (Init) and for experts that did not branch.
	InitFrom     string      `json:"init_from,omitempty"`
	Losses       []LossPoint `json:"losses"` // per step, oldest first (the last 10,000 kept)
	ParamsSHA256 string      `json:"params_sha256"`
	Saved        time.Time   `json:"saved"`
	// Checksum is the SHA-256 of the tensor rows and of this metadata with
	// Checksum and Saved empty.
	Checksum string `json:"checksum"`
}

// maxLossPoints caps CheckpointMeta.Losses.
const maxLossPoints = 10000

// Checkpoint is an expert's whole training state.
type Checkpoint struct {
	Meta   CheckpointMeta
	Model  *Model
	Opt    *Optimizer
	Packer []byte // Packer.State
}

// ParamsSHA256 is the hex SHA-256 of the parameter bytes (float32 little
// endian, in Tensors order): equal digests mean bit-identical models.
func ParamsSHA256(m *Model) string {
	h := sha256.New()
	h.Write(f32Bytes(m.Params))
	return hex.EncodeToString(h.Sum(nil))
}

// ckptRow is one tensor row of the checkpoint table (and its Parquet row).
type ckptRow struct {
	Name  string  `parquet:"name"`
	Shape []int64 `parquet:"shape,list"`
	DType string  `parquet:"dtype"`
	Data  []byte  `parquet:"data"`
}

// rows lays the checkpoint out as table rows: every parameter tensor, the
// two AdamW moments and the packer's pending bytes.
func (c *Checkpoint) rows() []ckptRow {
	var rows []ckptRow
	for _, t := range c.Model.Tensors() {
		rows = append(rows, ckptRow{Name: "param/" + t.Name, Shape: int64s(t.Shape), DType: "float32",
			Data: f32Bytes(c.Model.Params[t.Offset : t.Offset+t.Len])})
	}
	n := int64(len(c.Model.Params))
	rows = append(rows,
		ckptRow{Name: "adamw/m", Shape: []int64{n}, DType: "float32", Data: f32Bytes(c.Opt.M)},
		ckptRow{Name: "adamw/v", Shape: []int64{n}, DType: "float32", Data: f32Bytes(c.Opt.V)},
		ckptRow{Name: "packer", Shape: []int64{int64(len(c.Packer))}, DType: "uint8", Data: c.Packer},
	)
	return rows
}

// checksum hashes rows and meta (with Checksum and Saved cleared). The
// metadata is hashed as the format wrote it: format 1 had Go field names as
// the keys of "config" and "opt".
func checksum(rows []ckptRow, meta CheckpointMeta) (string, error) {
	meta.Checksum, meta.Saved = "", time.Time{}
	mb, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	if meta.Format == 1 {
		if mb, err = goCasedMember(mb, "config", meta.Config); err != nil {
			return "", err
		}
		if mb, err = goCasedMember(mb, "opt", meta.Opt); err != nil {
			return "", err
		}
	}
	h := sha256.New()
	var n [8]byte
	for _, r := range rows {
		for _, part := range [][]byte{[]byte(r.Name), []byte(r.DType), r.Data} {
			binary.LittleEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
		for _, d := range r.Shape {
			binary.LittleEndian.PutUint64(n[:], uint64(d))
			h.Write(n[:])
		}
	}
	h.Write(mb)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goCasedMember rewrites the member key:v of the JSON object mb with the Go
// field names of v's struct as keys, as format 1 wrote them (json.Marshal
// writes fields in declaration order, so only the names change). A quote
// inside a JSON string is escaped, so `"name":` matches keys only.
func goCasedMember(mb []byte, key string, v any) ([]byte, error) {
	snake, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	goCased := snake
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		name := t.Field(i).Name
		goCased = bytes.Replace(goCased, []byte(`"`+schemas.SnakeCase(name)+`":`), []byte(`"`+name+`":`), 1)
	}
	prefix := []byte(`"` + key + `":`)
	return bytes.Replace(mb, append(prefix, snake...), append(prefix, goCased...), 1), nil
}

// CheckpointPath is the Arrow file of the checkpoint at step in dir.
func CheckpointPath(dir string, step int) string {
	return schemas.ArtifactPath(dir, checkpointPrefix, int64(step))
}

// SaveCheckpoint writes c into dir as step-NNNNNN.arrow plus its Parquet
// twin, each atomically (temp file, fsync, rename; the Parquet first, so the
// Arrow file marks a complete checkpoint), then removes all but the newest
// keep checkpoints (keep <= 0 keeps all). It fills c.Meta's format,
// digests, checksum and time, and returns the Arrow path.
func SaveCheckpoint(dir string, c *Checkpoint, keep int) (string, error) {
	if c.Model == nil || c.Opt == nil {
		return "", errors.New("train: save checkpoint: no model or optimizer")
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", fmt.Errorf("train: save checkpoint: %w", err)
	}
	c.Meta.Format = CheckpointFormat
	c.Meta.ByteOrder = ByteOrder
	c.Meta.Config = c.Model.Cfg
	c.Meta.Opt = c.Opt.Cfg
	c.Meta.Step = c.Opt.Step
	c.Meta.ParamsSHA256 = ParamsSHA256(c.Model)
	if len(c.Meta.Losses) > maxLossPoints {
		c.Meta.Losses = c.Meta.Losses[len(c.Meta.Losses)-maxLossPoints:]
	}
	rows := c.rows()
	sum, err := checksum(rows, c.Meta)
	if err != nil {
		return "", fmt.Errorf("train: save checkpoint: %w", err)
	}
	c.Meta.Checksum = sum
	c.Meta.Saved = time.Now().UTC()
	meta, err := json.Marshal(c.Meta)
	if err != nil {
		return "", fmt.Errorf("train: save checkpoint: %w", err)
	}
	path := CheckpointPath(dir, c.Meta.Step)
	err = schemas.WriteTwinAtomic(path,
		func(f *os.File) error { return writeCkptParquet(f, rows, meta) },
		func(f *os.File) error { return writeCkptArrow(f, rows, meta) })
	if err != nil {
		return "", fmt.Errorf("train: save checkpoint: %w", err)
	}
	if keep > 0 {
		if err := pruneCheckpoints(dir, keep); err != nil {
			return path, fmt.Errorf("train: prune checkpoints: %w", err)
		}
	}
	return path, nil
}

func ckptSchema(meta []byte) *arrow.Schema {
	return schemas.WithMetadata(schemas.CheckpointSchema(), map[string]string{checkpointMetaKey: string(meta)})
}

func writeCkptArrow(f *os.File, rows []ckptRow, meta []byte) error {
	schema := ckptSchema(meta)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	name := b.Field(0).(*array.StringBuilder)
	shape := b.Field(1).(*array.ListBuilder)
	shapev := shape.ValueBuilder().(*array.Int64Builder)
	dtype := b.Field(2).(*array.StringBuilder)
	data := b.Field(3).(*array.BinaryBuilder)
	for _, r := range rows {
		name.Append(r.Name)
		shape.Append(true)
		shapev.AppendValues(r.Shape, nil)
		dtype.Append(r.DType)
		data.Append(r.Data)
	}
	rec := b.NewRecord()
	defer rec.Release()
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		return err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// writeCkptParquet writes the Parquet twin. The data column holds whole
// tensors: min/max statistics of it would be two tensor prefixes per page and
// per chunk, of no use to any query and most of the footer, so it has none.
func writeCkptParquet(f *os.File, rows []ckptRow, meta []byte) error {
	w := parquet.NewGenericWriter[ckptRow](f, schemas.ParquetWriterOptions(
		parquet.KeyValueMetadata(checkpointMetaKey, string(meta)),
		parquet.SkipPageBounds("data"), parquet.SkipPageStatistics("data"))...)
	if _, err := w.Write(rows); err != nil {
		return err
	}
	return w.Close()
}

// LoadCheckpoint reads a checkpoint file (.arrow or .parquet) and checks its
// checksum and shapes.
func LoadCheckpoint(path string) (c *Checkpoint, err error) {
	var meta []byte
	var rows []ckptRow
	if filepath.Ext(path) == ".parquet" {
		meta, rows, err = readCkptParquet(path)
	} else {
		meta, rows, err = readCkptArrow(path)
	}
	if err != nil {
		return nil, fmt.Errorf("train: load checkpoint %s: %w", path, err)
	}
	c, err = buildCheckpoint(meta, rows)
	if err != nil {
		return nil, fmt.Errorf("train: load checkpoint %s: %w", path, err)
	}
	return c, nil
}

func readCkptArrow(path string) (meta []byte, rows []ckptRow, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			meta, rows, err = nil, nil, fmt.Errorf("damaged Arrow file: %v", p)
		}
	}()
	// The hardened decoder: the stock file reader allocates whatever a
	// damaged length claims, and a process that runs out of memory cannot
	// fall back to the Parquet twin.
	recs, err := schemas.DecodeArrowFile(data)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	schema := recs[0].Schema()
	if err := schemas.CheckSchema(schema, schemas.KindCheckpoint); err != nil {
		return nil, nil, err
	}
	m, ok := schema.Metadata().GetValue(checkpointMetaKey)
	if !ok {
		return nil, nil, fmt.Errorf("not a checkpoint (no %s metadata)", checkpointMetaKey)
	}
	for _, rec := range recs {
		name, ok1 := rec.Column(0).(*array.String)
		shape, ok2 := rec.Column(1).(*array.List)
		dtype, ok3 := rec.Column(2).(*array.String)
		data, ok4 := rec.Column(3).(*array.Binary)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, nil, errors.New("unexpected column types")
		}
		shapev, ok := shape.ListValues().(*array.Int64)
		if !ok {
			return nil, nil, errors.New("unexpected shape type")
		}
		for j := range int(rec.NumRows()) {
			lo, hi := shape.ValueOffsets(j)
			rows = append(rows, ckptRow{Name: name.Value(j), Shape: slices.Clone(shapev.Int64Values()[lo:hi]),
				DType: dtype.Value(j), Data: slices.Clone(data.Value(j))})
		}
	}
	return []byte(m), rows, nil
}

func readCkptParquet(path string) ([]byte, []ckptRow, error) {
	meta, rows, err := schemas.ReadParquetArtifact[ckptRow](path, checkpointMetaKey, "checkpoint")
	return []byte(meta), rows, err
}

// buildCheckpoint checks rows against meta and rebuilds the state.
func buildCheckpoint(metaJSON []byte, rows []ckptRow) (*Checkpoint, error) {
	var meta CheckpointMeta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if meta.Format < 1 || meta.Format > CheckpointFormat {
		return nil, fmt.Errorf("checkpoint format %d, this build reads 1 to %d", meta.Format, CheckpointFormat)
	}
	if meta.ByteOrder != "" && meta.ByteOrder != ByteOrder {
		return nil, fmt.Errorf("tensors are stored %q endian; this build reads %q endian checkpoints only", meta.ByteOrder, ByteOrder)
	}
	sum, err := checksum(rows, meta)
	if err != nil {
		return nil, err
	}
	if sum != meta.Checksum {
		return nil, errors.New("checksum mismatch (damaged or partial checkpoint)")
	}
	if err := meta.Config.Validate(); err != nil {
		return nil, err
	}
	m := newModel(meta.Config)
	opt := NewOptimizer(meta.Opt, len(m.Params))
	opt.Step = meta.Step
	byName := make(map[string]ckptRow, len(rows))
	for _, r := range rows {
		byName[r.Name] = r
	}
	fill := func(name string, dst []float32) error {
		r, ok := byName[name]
		if !ok {
			return fmt.Errorf("no tensor %q", name)
		}
		if r.DType != "float32" || len(r.Data) != 4*len(dst) {
			return fmt.Errorf("tensor %q: %s of %d bytes, want float32 of %d", name, r.DType, len(r.Data), 4*len(dst))
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(r.Data[4*i:]))
		}
		return nil
	}
	for _, t := range m.Tensors() {
		if err := fill("param/"+t.Name, m.Params[t.Offset:t.Offset+t.Len]); err != nil {
			return nil, err
		}
	}
	if err := fill("adamw/m", opt.M); err != nil {
		return nil, err
	}
	if err := fill("adamw/v", opt.V); err != nil {
		return nil, err
	}
	pk, ok := byName["packer"]
	if !ok {
		return nil, errors.New("no packer state")
	}
	if got := ParamsSHA256(m); got != meta.ParamsSHA256 {
		return nil, fmt.Errorf("params digest %s, metadata says %s", got, meta.ParamsSHA256)
	}
	if meta.Origins == nil {
		meta.Origins = map[string]Position{}
	}
	if meta.Offsets == nil {
		meta.Offsets = map[string]int64{}
	}
	return &Checkpoint{Meta: meta, Model: m, Opt: opt, Packer: pk.Data}, nil
}

// ListCheckpoints returns the steps of the checkpoints in dir, newest first
// (by their Arrow files).
func ListCheckpoints(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), checkpointPrefix+"-")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".arrow")
		if !ok {
			continue
		}
		if s, err := strconv.Atoi(num); err == nil {
			steps = append(steps, s)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(steps)))
	return steps, nil
}

// LoadLatestCheckpoint returns the newest valid checkpoint of dir: each is
// tried as Arrow, then as its Parquet twin; damaged ones are skipped and
// reported in skipped. It returns (nil, nil, nil) when dir has none.
func LoadLatestCheckpoint(dir string) (c *Checkpoint, skipped []error, err error) {
	steps, err := ListCheckpoints(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("train: list checkpoints in %s: %w", dir, err)
	}
	for _, s := range steps {
		path := CheckpointPath(dir, s)
		c, err := LoadCheckpoint(path)
		if err == nil {
			return c, skipped, nil
		}
		c, perr := LoadCheckpoint(schemas.ParquetTwin(path))
		if perr == nil {
			return c, append(skipped, err), nil
		}
		skipped = append(skipped, err, perr)
	}
	if len(steps) > 0 {
		return nil, skipped, fmt.Errorf("train: no valid checkpoint among %d in %s", len(steps), dir)
	}
	return nil, nil, nil
}

// pruneCheckpoints removes all but the newest keep checkpoints of dir.
func pruneCheckpoints(dir string, keep int) error {
	steps, err := ListCheckpoints(dir)
	if err != nil {
		return err
	}
	for _, s := range steps[min(keep, len(steps)):] {
		path := CheckpointPath(dir, s)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Remove(schemas.ParquetTwin(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func int64s(x []int) []int64 {
	out := make([]int64, len(x))
	for i, v := range x {
		out[i] = int64(v)
	}
	return out
}
