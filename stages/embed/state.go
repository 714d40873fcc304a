package embed

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/schemas"
)

// A featurizer's state — settings, vocabulary, idf, SVD basis — is a
// versioned artifact: one table with a row per column of the tf-idf space
// (term, idf, and for LSA the term's column of the SVD basis), and the
// settings as JSON in the table's metadata. Each version is written twice,
// as an Arrow IPC file (fast to load) and as Parquet (to inspect with any
// tool), both atomically: DIR/featurizer-000001.arrow and .parquet.

// stateMetaKey is the metadata key holding the settings JSON.
const stateMetaKey = "domainflow.featurizer_state"

// stateDigestKey is the metadata key holding the hex SHA-256 of the settings
// JSON: Settings.Checksum covers the table, this the settings (tokenizer,
// LSA singular values, ...), so that no damaged byte of a state goes
// unnoticed. States saved before it have none and are checked by their
// table's checksum only.
const stateDigestKey = "domainflow.featurizer_state.sha256"

// StateFormat is the version of the state layout.
const StateFormat = 1

// Settings describe a fitted featurizer; they are stored with its state.
type Settings struct {
	Format   int       `json:"format"`
	Kind     Kind      `json:"kind"`
	Version  int64     `json:"version"`
	Created  time.Time `json:"created"`
	FitDocs  int       `json:"fit_docs"`
	Checksum string    `json:"checksum"` // sha256 of the table's values

	Tokenizer *TokenizerSettings `json:"tokenizer,omitempty"`
	Tfidf     *TfidfSettings     `json:"tfidf,omitempty"`
	Hashing   *HashingSettings   `json:"hashing,omitempty"`
	LSA       *LSASettings       `json:"lsa,omitempty"`
	HTTP      *HTTPSettings      `json:"http,omitempty"`

	// Extra holds the settings of a kind registered by another package, in
	// the JSON of its choice (see Factory.Settings); nil for the built-in
	// kinds.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// TokenizerSettings is the serialized Tokenizer.
type TokenizerSettings struct {
	Lowercase   bool     `json:"lowercase"`
	MinLen      int      `json:"min_len"`
	NumberToken string   `json:"number_token"`
	StopWords   []string `json:"stop_words"` // sorted
}

// TfidfSettings is the serialized TfidfConfig (without the tokenizer).
type TfidfSettings struct {
	MinDF       float64 `json:"min_df"`
	MaxDF       float64 `json:"max_df"`
	MaxFeatures int     `json:"max_features"`
	SublinearTF bool    `json:"sublinear_tf"`
	NoSmoothIDF bool    `json:"no_smooth_idf"`
	NoNorm      bool    `json:"no_norm"`
}

// HashingSettings is the serialized HashingConfig (without the tokenizer).
type HashingSettings struct {
	Features      int  `json:"features"`
	AlternateSign bool `json:"alternate_sign"`
	SublinearTF   bool `json:"sublinear_tf"`
	NoSmoothIDF   bool `json:"no_smooth_idf"`
	NoNorm        bool `json:"no_norm"`
}

// LSASettings is the serialized LSAConfig plus the singular values.
type LSASettings struct {
	Dims        int       `json:"dims"`
	PowerIters  int       `json:"power_iters"`
	Oversamples int       `json:"oversamples"`
	Seed        uint64    `json:"seed"`
	NoNorm      bool      `json:"no_norm"`
	Singular    []float32 `json:"singular"`
}

// HTTPSettings is the serialized HTTPConfig. The API key is never stored.
type HTTPSettings struct {
	URL          string        `json:"url"`
	Model        string        `json:"model"`
	Dims         int           `json:"dims"`
	BatchSize    int           `json:"batch_size"`
	Concurrency  int           `json:"concurrency"`
	Timeout      time.Duration `json:"timeout"`
	Retries      int           `json:"retries"`
	MaxTextBytes int           `json:"max_text_bytes"`
	Normalize    bool          `json:"normalize"`
	Base64       bool          `json:"base64"`
}

// State is a featurizer with its settings, as saved and loaded.
type State struct {
	Settings   Settings
	Featurizer Featurizer
}

func tokenizerSettings(t *Tokenizer) *TokenizerSettings {
	if t == nil {
		t = DefaultTokenizer()
	}
	s := &TokenizerSettings{Lowercase: t.Lowercase, MinLen: t.MinLen, NumberToken: t.NumberToken, StopWords: []string{}}
	for w := range t.StopWords {
		s.StopWords = append(s.StopWords, w)
	}
	sort.Strings(s.StopWords)
	return s
}

func (s *TokenizerSettings) tokenizer() *Tokenizer {
	t := &Tokenizer{Lowercase: s.Lowercase, MinLen: s.MinLen, NumberToken: s.NumberToken, StopWords: map[string]bool{}}
	for _, w := range s.StopWords {
		t.StopWords[w] = true
	}
	return t
}

// StateTable is the table of a featurizer's state: one row per column of
// its feature space (per term, for a vocabulary). Each column of the table is
// optional (nil), and those given have one entry per row.
type StateTable struct {
	Terms     []string    // the term of each column (tfidf, lsa)
	IDF       []float32   // a weight per column (tfidf, hashing, lsa)
	Component [][]float32 // a vector per column (lsa: the term's coordinates in the SVD basis)
}

// NewState describes a fitted featurizer for saving, with the Factory
// registered under its kind (KindOf). Version 0 means "the next version"
// when saved with SaveState.
func NewState(f Featurizer, fitDocs int) (*State, error) {
	k := KindOf(f)
	fac, ok := Lookup(k)
	if !ok {
		return nil, fmt.Errorf("embed: cannot save a %T", f)
	}
	s := &State{Featurizer: f, Settings: Settings{Format: StateFormat, Kind: k, FitDocs: fitDocs, Created: time.Now().UTC()}}
	if err := fac.Settings(f, &s.Settings); err != nil {
		return nil, fmt.Errorf("embed: describe a %s featurizer: %w", k, err)
	}
	return s, nil
}

func tfidfSettings(c TfidfConfig) *TfidfSettings {
	return &TfidfSettings{MinDF: c.MinDF, MaxDF: c.MaxDF, MaxFeatures: c.MaxFeatures, SublinearTF: c.SublinearTF, NoSmoothIDF: c.NoSmoothIDF, NoNorm: c.NoNorm}
}

func (s *TfidfSettings) config(tok *Tokenizer) TfidfConfig {
	return TfidfConfig{Tokenizer: tok, MinDF: s.MinDF, MaxDF: s.MaxDF, MaxFeatures: s.MaxFeatures, SublinearTF: s.SublinearTF, NoSmoothIDF: s.NoSmoothIDF, NoNorm: s.NoNorm}
}

func (s *State) table() StateTable {
	fac, ok := Lookup(KindOf(s.Featurizer))
	if !ok || fac.Table == nil {
		return StateTable{}
	}
	return fac.Table(s.Featurizer)
}

// checksum digests the table's values so a damaged file is detected.
func (t StateTable) checksum() string {
	h := sha256.New()
	var b [8]byte
	for _, term := range t.Terms {
		binary.LittleEndian.PutUint64(b[:], uint64(len(term)))
		h.Write(b[:])
		h.Write([]byte(term))
	}
	for _, v := range t.IDF {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
		h.Write(b[:4])
	}
	for _, col := range t.Component {
		for _, v := range col {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

var stateSchemaFields = []arrow.Field{
	{Name: "term", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "idf", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "component", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
}

// stateRow is the Parquet row of a state table.
type stateRow struct {
	Term      *string   `parquet:"term,optional"`
	IDF       *float32  `parquet:"idf,optional"`
	Component []float32 `parquet:"component,list"`
}

// StatePath returns the path of version v's Arrow file in dir; the Parquet
// twin has the same name with .parquet.
func StatePath(dir string, v int64) string { return schemas.ArtifactPath(dir, "featurizer", v) }

// LatestStateVersion returns the highest version saved in dir, or 0.
func LatestStateVersion(dir string) (int64, error) {
	v, err := schemas.LatestArtifactVersion(dir, "featurizer")
	if err != nil {
		return 0, fmt.Errorf("embed: %w", err)
	}
	return v, nil
}

// SaveState writes s into dir as the next version (or as s.Settings.Version
// when that is set and unused) and returns the version written.
func SaveState(dir string, s *State) (int64, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("embed: state dir: %w", err)
	}
	latest, err := LatestStateVersion(dir)
	if err != nil {
		return 0, err
	}
	v := s.Settings.Version
	if v <= latest {
		v = latest + 1
	}
	t := s.table()
	if err := t.validate(); err != nil {
		return 0, err
	}
	s.Settings.Version = v
	s.Settings.Checksum = t.checksum()
	if err := writeState(dir, s, t); err != nil {
		return 0, err
	}
	return v, nil
}

// SaveStateVersion writes s into dir as version s.Settings.Version exactly,
// replacing what is there: for a state that was loaded elsewhere (e.g.
// received with DecodeState), so both files hold it. s must match its
// checksum, as EncodeState requires.
func SaveStateVersion(dir string, s *State) error {
	if s.Settings.Version < 1 {
		return fmt.Errorf("embed: cannot save a state of version %d as such", s.Settings.Version)
	}
	t, err := s.verifiedTable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("embed: state dir: %w", err)
	}
	return writeState(dir, s, t)
}

// writeState writes both files of s.Settings.Version in dir.
func writeState(dir string, s *State, t StateTable) error {
	meta, err := json.Marshal(s.Settings)
	if err != nil {
		return fmt.Errorf("embed: encode settings: %w", err)
	}
	err = schemas.WriteTwinAtomic(StatePath(dir, s.Settings.Version),
		func(f *os.File) error { return writeStateParquet(f, t, meta) },
		func(f *os.File) error { return writeStateArrow(f, t, meta) })
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	return nil
}

// verifiedTable returns the table of s after checking it against
// s.Settings.Checksum: a state is encoded or saved as received only if its
// values are those its checksum vouches for.
func (s *State) verifiedTable() (StateTable, error) {
	t := s.table()
	if s.Settings.Checksum == "" || t.checksum() != s.Settings.Checksum {
		return StateTable{}, fmt.Errorf("embed: featurizer state v%d does not match its checksum", s.Settings.Version)
	}
	return t, nil
}

// EncodeState returns the bytes of s's Arrow file, as SaveState writes it:
// what a state travels as (the router.models topic). s must be a saved or
// loaded state whose table matches its checksum; DecodeState reads the
// bytes back and verifies them.
func EncodeState(s *State) ([]byte, error) {
	t, err := s.verifiedTable()
	if err != nil {
		return nil, err
	}
	meta, err := json.Marshal(s.Settings)
	if err != nil {
		return nil, fmt.Errorf("embed: encode settings: %w", err)
	}
	var b appendBuffer
	if err := writeStateArrow(&b, t, meta); err != nil {
		return nil, fmt.Errorf("embed: encode state v%d: %w", s.Settings.Version, err)
	}
	return b.buf, nil
}

// appendBuffer is the io.WriteSeeker an Arrow file writer needs, in memory:
// it only ever asks for the current position.
type appendBuffer struct{ buf []byte }

func (b *appendBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *appendBuffer) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, errors.New("embed: appendBuffer only tells its position")
	}
	return int64(len(b.buf)), nil
}

// DecodeState decodes the bytes of a state's Arrow file (EncodeState) and
// verifies them against their checksums.
func DecodeState(b []byte) (*State, error) {
	s, err := decodeStateArrow("featurizer state", b)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	return s, nil
}

func writeStateArrow(w io.WriteSeeker, t StateTable, meta []byte) error {
	md := arrow.NewMetadata([]string{stateMetaKey, stateDigestKey}, []string{string(meta), schemas.MetadataDigest(meta)})
	schema := arrow.NewSchema(stateSchemaFields, &md)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	term := b.Field(0).(*array.StringBuilder)
	idf := b.Field(1).(*array.Float32Builder)
	comp := b.Field(2).(*array.ListBuilder)
	compv := comp.ValueBuilder().(*array.Float32Builder)
	for i := range t.rows() {
		if t.Terms != nil {
			term.Append(t.Terms[i])
		} else {
			term.AppendNull()
		}
		if t.IDF != nil {
			idf.Append(t.IDF[i])
		} else {
			idf.AppendNull()
		}
		if t.Component != nil {
			comp.Append(true)
			compv.AppendValues(t.Component[i], nil)
		} else {
			comp.AppendNull()
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema))
	if err != nil {
		return err
	}
	if err := fw.Write(rec); err != nil {
		return err
	}
	return fw.Close()
}

// rows is the number of rows of the table: the length of its columns.
func (t StateTable) rows() int {
	return max(len(t.Terms), len(t.IDF), len(t.Component))
}

// validate checks that the columns given have one entry per row.
func (t StateTable) validate() error {
	n := t.rows()
	if (t.Terms != nil && len(t.Terms) != n) || (t.IDF != nil && len(t.IDF) != n) || (t.Component != nil && len(t.Component) != n) {
		return fmt.Errorf("embed: state table of %d terms, %d idf values and %d components", len(t.Terms), len(t.IDF), len(t.Component))
	}
	return nil
}

func writeStateParquet(f *os.File, t StateTable, meta []byte) error {
	w := parquet.NewGenericWriter[stateRow](f, schemas.ParquetWriterOptions(
		parquet.KeyValueMetadata(stateMetaKey, string(meta)),
		parquet.KeyValueMetadata(stateDigestKey, schemas.MetadataDigest(meta)))...)
	rows := make([]stateRow, 0, 4096)
	flush := func() error {
		_, err := w.Write(rows)
		rows = rows[:0]
		return err
	}
	for i := range t.rows() {
		var r stateRow
		if t.Terms != nil {
			r.Term = &t.Terms[i]
		}
		if t.IDF != nil {
			r.IDF = &t.IDF[i]
		}
		if t.Component != nil {
			r.Component = t.Component[i]
		}
		rows = append(rows, r)
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return w.Close()
}

// LoadState loads version v from dir (v <= 0: the latest). It reads the Arrow
// file and falls back to the Parquet twin when the Arrow file is missing or
// damaged; the checksum must match.
func LoadState(dir string, v int64) (*State, error) {
	st, err := schemas.LoadArtifact(dir, "featurizer", v, LoadStateFile)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	return st, nil
}

// LoadStateFile loads a state from one .arrow or .parquet file.
func LoadStateFile(path string) (*State, error) {
	if filepath.Ext(path) == ".parquet" {
		return loadStateParquet(path)
	}
	return loadStateArrow(path)
}

func loadStateArrow(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeStateArrow(path, data)
}

// decodeStateArrow decodes the bytes of a state's Arrow file; path (or
// what they are) prefixes errors.
func decodeStateArrow(path string, data []byte) (s *State, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%s: damaged Arrow file: %v", path, p)
		}
	}()
	recs, err := schemas.DecodeArrowFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	md := recs[0].Schema().Metadata()
	meta, ok := md.GetValue(stateMetaKey)
	if !ok {
		return nil, fmt.Errorf("%s: not a featurizer state (no %s metadata)", path, stateMetaKey)
	}
	digest, _ := md.GetValue(stateDigestKey)
	var t StateTable
	for _, rec := range recs {
		if rec.NumCols() != int64(len(stateSchemaFields)) {
			return nil, fmt.Errorf("%s: %d columns, want %d", path, rec.NumCols(), len(stateSchemaFields))
		}
		term, ok1 := rec.Column(0).(*array.String)
		idf, ok2 := rec.Column(1).(*array.Float32)
		comp, ok3 := rec.Column(2).(*array.List)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%s: unexpected column types", path)
		}
		vals, ok := comp.ListValues().(*array.Float32)
		if !ok {
			return nil, fmt.Errorf("%s: unexpected component type", path)
		}
		offs := comp.Offsets()
		for j := range int(rec.NumRows()) {
			if term.IsValid(j) {
				t.Terms = append(t.Terms, term.Value(j))
			}
			if idf.IsValid(j) {
				t.IDF = append(t.IDF, idf.Value(j))
			}
			if comp.IsValid(j) {
				t.Component = append(t.Component, slices.Clone(vals.Float32Values()[offs[j]:offs[j+1]]))
			}
		}
	}
	return buildState(path, []byte(meta), digest, t)
}

func loadStateParquet(path string) (*State, error) {
	meta, rows, err := schemas.ReadParquetArtifact[stateRow](path, stateMetaKey, "featurizer state")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	digest, err := schemas.ParquetMetadata(path, stateDigestKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t StateTable
	for _, r := range rows {
		if r.Term != nil {
			t.Terms = append(t.Terms, *r.Term)
		}
		if r.IDF != nil {
			t.IDF = append(t.IDF, *r.IDF)
		}
		if len(r.Component) > 0 {
			t.Component = append(t.Component, r.Component)
		}
	}
	return buildState(path, []byte(meta), digest, t)
}

// buildState checks a loaded table and settings against their checksums
// (digest: the settings' stateDigestKey value, "" for a state saved without
// one) and rebuilds the featurizer.
func buildState(path string, meta []byte, digest string, t StateTable) (*State, error) {
	if digest != "" && schemas.MetadataDigest(meta) != digest {
		return nil, fmt.Errorf("%s: settings checksum mismatch (damaged file)", path)
	}
	var set Settings
	if err := json.Unmarshal(meta, &set); err != nil {
		return nil, fmt.Errorf("%s: settings: %w", path, err)
	}
	if set.Format != StateFormat {
		return nil, fmt.Errorf("%s: state format %d, this build reads %d", path, set.Format, StateFormat)
	}
	if got := t.checksum(); got != set.Checksum {
		return nil, fmt.Errorf("%s: checksum mismatch (damaged file)", path)
	}
	fac, ok := Lookup(set.Kind)
	if !ok {
		return nil, fmt.Errorf("%s: unknown featurizer kind %q", path, set.Kind)
	}
	f, err := fac.Load(&set, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &State{Settings: set, Featurizer: f}, nil
}

// WatchStates polls dir every interval and calls load with each state whose
// version is newer than after, until ctx ends. Errors loading a version are
// passed to onErr and the version is retried at the next poll.
func WatchStates(ctx context.Context, dir string, after int64, interval time.Duration, load func(*State), onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := LatestStateVersion(dir)
		if err != nil {
			onErr(err)
			continue
		}
		if v <= after {
			continue
		}
		s, err := LoadState(dir, v)
		if err != nil {
			onErr(err)
			continue
		}
		after = v
		load(s)
	}
}
