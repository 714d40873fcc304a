package cluster

// A router model is a versioned artifact: one table with a row per domain
// (schemas.RouterModelSchema: domain id, size at fit, top terms, centroid)
// and the router-level facts (versions, featurizer kind, fit and route
// configuration, next domain id, a checksum of the table's values) as JSON in
// the table's metadata under routerMetaKey. Each version is written twice, as
// an Arrow IPC file (fast to load) and as Parquet (to inspect with any tool),
// both atomically: DIR/router-000001.arrow and .parquet. The same table,
// encoded as an Arrow IPC stream, is what the stage publishes on the
// router.models topic (EncodeRouter / DecodeRouter).
//
// Domain ids are stable across versions: a refit gets the ids of the
// previous version's closest centroids (MatchIDs), and a domain that is
// removed or split keeps or retires its id; ids are never reused.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/schemas"
)

// RouterModel is a versioned router: the fitted centroids with a stable
// domain id each, plus what the stage needs to route.
type RouterModel struct {
	Version           int64     // 0 until saved: SaveRouter picks the next version
	FeaturizerVersion int64     // the featurizer state the centroids live in
	Featurizer        string    // its kind (tfidf, hashing, lsa, http)
	Created           time.Time // set by SaveRouter / EncodeRouter when zero
	IDs               []int     // IDs[j] = stable domain id of centroid j; unique, ≥ 0
	Model             *Model    // centroids (row j ↔ IDs[j]), sizes at fit
	// TopTerms holds per centroid j its top terms, or is nil. A centroid
	// without terms is stored as an empty list and loads as nil; a model
	// whose centroids all have no terms loads with TopTerms nil.
	TopTerms [][]string
	// Examples holds per centroid j a few ids of the fit sample's documents
	// nearest to it, or is nil (kept in the settings JSON).
	Examples [][]string
	// Distances holds per centroid j the fit-time distances of its rows
	// (FitDistances), what novelty is judged by (NoveltyRule), or is nil:
	// a router saved before routers kept them, whose rows are never novel.
	// Kept in the settings JSON.
	Distances []DistanceStats
	// Origins holds per centroid j how domain IDs[j] came to be (a fit, a
	// split, growth) and the router version that created it, or is nil: a
	// router saved before routers kept them. Kept in the settings JSON.
	Origins []DomainOrigin
	// OOV holds the distribution of the out-of-vocabulary share of
	// documents like the fit sample that the fit did not see (estimated on
	// the fit documents as if held out, see embed.HeldOutCoverage), or is
	// nil: novelty is then judged on distances alone. A NoveltyRule also
	// judges a row novel when its share exceeds OOVQuantile of these. Kept
	// in the settings JSON.
	OOV *DistanceStats
	// Fine holds the router's fine centroids (novelty reference), or is
	// nil: routers saved before them, and routers fitted on the stream.
	Fine *FineCentroids
	// Growth, set on a version made by a growth (RouterModel.Grow), says
	// how it grew; nil otherwise. It belongs to that version: a router
	// derived from it (a split, a removal, the next growth) has its own.
	// Kept in the settings JSON.
	Growth *Growth
	Fit    FitConfig
	Route  RouteConfig
	NextID int // the id a new domain gets (max id + 1 at least; ids are never reused)
}

// How a domain came to be (DomainOrigin.How).
const (
	OriginFit   = "fit"   // a fit of the router (cluster fit, the stage's fit on the stream, a refit's new ids)
	OriginSplit = "split" // the new half of a split domain
	OriginGrow  = "grow"  // grown from novel documents while the stream ran
)

// DomainOrigin says how a domain came to be and in which router version.
// A Version of 0 in a router being saved means that router's own version:
// SaveRouter and EncodeRouter fill it in.
type DomainOrigin struct {
	How     string `json:"how"`
	Version int64  `json:"version"`
}

// RouterFormat is the version of the router model layout in the settings
// JSON. Fields added since without changing the meaning of the others are
// optional and keep the format: "distances" (RouterModel.Distances, absent
// in routers saved before novelty scoring, which load with novelty off) and
// "origins" (RouterModel.Origins, absent in routers saved before them).
// Format 2 writes "fit" and "route" with snake_case keys, where format 1
// had Go field names; both are read (a build that reads only format 1
// refuses format 2 rather than lose settings it would not recognise).
const RouterFormat = 2

// routerMetaKey is the schema metadata key holding the settings JSON.
const routerMetaKey = "domainflow.router_model"

// routerDigestKey is the schema metadata key holding the digest of the
// settings JSON (schemas.MetadataDigest): the checksum in the settings covers
// the table, this the settings (version, featurizer version, next id, ...).
// Routers written before it have none and are checked by the table's
// checksum only.
const routerDigestKey = "domainflow.router_model.sha256"

// UnmarshalJSON reads the snake_case keys FitConfig is written with, and
// the Go field names routers of format 1 have.
func (c *FitConfig) UnmarshalJSON(b []byte) error {
	b, err := schemas.SnakeCaseKeys(b)
	if err != nil {
		return err
	}
	type plain FitConfig
	return json.Unmarshal(b, (*plain)(c))
}

// UnmarshalJSON reads the snake_case keys RouteConfig is written with, and
// the Go field names routers of format 1 have.
func (c *RouteConfig) UnmarshalJSON(b []byte) error {
	b, err := schemas.SnakeCaseKeys(b)
	if err != nil {
		return err
	}
	type plain RouteConfig
	return json.Unmarshal(b, (*plain)(c))
}

// routerSettings is the router-level JSON stored in the table metadata.
type routerSettings struct {
	Format            int         `json:"format"`
	Version           int64       `json:"version"`
	FeaturizerVersion int64       `json:"featurizer_version"`
	Featurizer        string      `json:"featurizer"`
	Created           time.Time   `json:"created"`
	K                 int         `json:"k"`
	Dim               int         `json:"dim"`
	Inertia           float64     `json:"inertia"`
	NextID            int         `json:"next_id"`
	Fit               FitConfig   `json:"fit"`
	Route             RouteConfig `json:"route"`
	Checksum          string      `json:"checksum"`           // sha256 of the table's values
	Examples          [][]string  `json:"examples,omitempty"` // per table row
	// Distances: per table row; absent in routers saved before novelty
	// scoring.
	Distances []DistanceStats `json:"distances,omitempty"`
	// Origins: per table row; absent in routers saved before domain
	// origins were kept.
	Origins []DomainOrigin `json:"origins,omitempty"`
	// Growth: set on a version made by a growth.
	Growth *Growth `json:"growth,omitempty"`
	// OOV: absent in routers saved before it, and for featurizers without
	// a vocabulary.
	OOV *DistanceStats `json:"oov,omitempty"`
	// FineDistances: the fine centroids' distances (RouterModel.Fine),
	// whose centroids are the table rows with negative domain ids.
	FineDistances *DistanceStats `json:"fine_distances,omitempty"`
}

// K returns the number of domains (0 for a router without a model).
func (m *RouterModel) K() int {
	if m == nil || m.Model == nil {
		return 0
	}
	return m.Model.K
}

// Index returns the centroid row of domain id.
func (m *RouterModel) Index(id int) (int, bool) {
	if m == nil {
		return 0, false
	}
	for j, x := range m.IDs {
		if x == id {
			return j, true
		}
	}
	return 0, false
}

// validate checks that m is a consistent router.
func (m *RouterModel) validate() error {
	if m == nil {
		return errors.New("cluster: router model: nil")
	}
	md := m.Model
	if md == nil {
		return errors.New("cluster: router model: nil model")
	}
	if md.K < 1 || md.Dim < 1 || len(md.Centroids) != md.K*md.Dim {
		return fmt.Errorf("cluster: router model: %d centroids of dimension %d hold %d values", md.K, md.Dim, len(md.Centroids))
	}
	if md.Sizes != nil && len(md.Sizes) != md.K {
		return fmt.Errorf("cluster: router model: %d sizes for %d centroids", len(md.Sizes), md.K)
	}
	for j, s := range md.Sizes {
		if s < 0 {
			return fmt.Errorf("cluster: router model: negative size %d of centroid %d", s, j)
		}
	}
	for i, v := range md.Centroids {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("cluster: router model: centroid %d has a non-finite value", i/md.Dim)
		}
	}
	if len(m.IDs) != md.K {
		return fmt.Errorf("cluster: router model: %d ids for %d centroids", len(m.IDs), md.K)
	}
	seen := make(map[int]bool, len(m.IDs))
	for j, id := range m.IDs {
		if id < 0 || id > math.MaxInt32 {
			return fmt.Errorf("cluster: router model: id %d of centroid %d out of range", id, j)
		}
		if seen[id] {
			return fmt.Errorf("cluster: router model: duplicate id %d", id)
		}
		seen[id] = true
		if id >= m.NextID {
			return fmt.Errorf("cluster: router model: id %d not below next id %d", id, m.NextID)
		}
	}
	if m.Examples != nil && len(m.Examples) != md.K {
		return fmt.Errorf("cluster: router model: examples for %d centroids, have %d", len(m.Examples), md.K)
	}
	if m.TopTerms != nil && len(m.TopTerms) != md.K {
		return fmt.Errorf("cluster: router model: top terms for %d centroids, have %d", len(m.TopTerms), md.K)
	}
	if m.Distances != nil && len(m.Distances) != md.K {
		return fmt.Errorf("cluster: router model: distances for %d centroids, have %d", len(m.Distances), md.K)
	}
	if m.Origins != nil && len(m.Origins) != md.K {
		return fmt.Errorf("cluster: router model: origins for %d centroids, have %d", len(m.Origins), md.K)
	}
	for j, o := range m.Origins {
		if (o.How != OriginFit && o.How != OriginSplit && o.How != OriginGrow) || o.Version < 0 {
			return fmt.Errorf("cluster: router model: origin of centroid %d: %+v", j, o)
		}
	}
	for j, d := range m.Distances {
		if err := d.validate(); err != nil {
			return fmt.Errorf("cluster: router model: distances of centroid %d: %w", j, err)
		}
	}
	if m.OOV != nil {
		if err := m.OOV.validate(); err != nil {
			return fmt.Errorf("cluster: router model: out-of-vocabulary shares: %w", err)
		}
	}
	if f := m.Fine; f != nil {
		fm := f.Model
		if fm == nil || fm.K < 1 || fm.Dim != md.Dim || len(fm.Centroids) != fm.K*fm.Dim || len(fm.Sizes) != fm.K {
			return errors.New("cluster: router model: fine centroids of the wrong shape")
		}
		if err := f.Distances.validate(); err != nil {
			return fmt.Errorf("cluster: router model: fine-centroid distances: %w", err)
		}
	}
	if m.Version < 0 || m.FeaturizerVersion < 0 {
		return fmt.Errorf("cluster: router model: negative version (%d, featurizer %d)", m.Version, m.FeaturizerVersion)
	}
	return nil
}

// clone returns a deep copy of m.
func (m *RouterModel) clone() *RouterModel {
	c := *m
	c.IDs = slices.Clone(m.IDs)
	if m.Model != nil {
		md := *m.Model
		md.Centroids = slices.Clone(m.Model.Centroids)
		md.Sizes = slices.Clone(m.Model.Sizes)
		c.Model = &md
	}
	c.TopTerms = cloneLists(m.TopTerms)
	c.Examples = cloneLists(m.Examples)
	c.Origins = slices.Clone(m.Origins)
	c.Growth = nil // a derived router is not the growth
	if m.OOV != nil {
		o := *m.OOV
		o.Levels, o.Quantiles = slices.Clone(o.Levels), slices.Clone(o.Quantiles)
		c.OOV = &o
	}
	if m.Distances != nil {
		c.Distances = make([]DistanceStats, len(m.Distances))
		for j, d := range m.Distances {
			d.Levels, d.Quantiles = slices.Clone(d.Levels), slices.Clone(d.Quantiles)
			c.Distances[j] = d
		}
	}
	return &c
}

func cloneLists(l [][]string) [][]string {
	if l == nil {
		return nil
	}
	c := make([][]string, len(l))
	for j, t := range l {
		c[j] = slices.Clone(t)
	}
	return c
}

// ---------------------------------------------------------------------------
// Table form.

// routerTable is the table form of a router: one row per centroid.
type routerTable struct {
	ids       []int32
	sizes     []int64
	terms     [][]string
	centroids [][]float32
}

func (m *RouterModel) table() routerTable {
	k := m.Model.K
	t := routerTable{ids: make([]int32, k), sizes: make([]int64, k), terms: make([][]string, k), centroids: make([][]float32, k)}
	if f := m.Fine; f != nil { // fine centroids: rows -1, -2, …
		for j := range f.Model.K {
			t.ids = append(t.ids, int32(-1-j))
			t.sizes = append(t.sizes, int64(f.Model.Sizes[j]))
			t.terms = append(t.terms, nil)
			t.centroids = append(t.centroids, f.Model.Centroid(j))
		}
	}
	for j := range k {
		t.ids[j] = int32(m.IDs[j])
		if m.Model.Sizes != nil {
			t.sizes[j] = int64(m.Model.Sizes[j])
		}
		if m.TopTerms != nil {
			t.terms[j] = m.TopTerms[j]
		}
		t.centroids[j] = m.Model.Centroid(j)
	}
	return t
}

// checksum digests the table's values so that a damaged file is detected.
func (t routerTable) checksum() string {
	h := sha256.New()
	var b [8]byte
	put := func(v uint64, n int) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:n])
	}
	put(uint64(len(t.ids)), 8)
	for j := range t.ids {
		put(uint64(uint32(t.ids[j])), 4)
		put(uint64(t.sizes[j]), 8)
		put(uint64(len(t.terms[j])), 8)
		for _, s := range t.terms[j] {
			put(uint64(len(s)), 8)
			h.Write([]byte(s))
		}
		put(uint64(len(t.centroids[j])), 8)
		for _, v := range t.centroids[j] {
			put(uint64(math.Float32bits(v)), 4)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// origins returns m.Origins with the versions 0 (this router) filled in
// with m.Version.
func (m *RouterModel) origins() []DomainOrigin {
	if m.Origins == nil {
		return nil
	}
	out := slices.Clone(m.Origins)
	for i := range out {
		if out[i].Version == 0 {
			out[i].Version = m.Version
		}
	}
	return out
}

// settings returns the metadata JSON of m with the checksum of t. It sets
// m.Created when zero.
func (m *RouterModel) settings(t routerTable) ([]byte, error) {
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	s := routerSettings{
		Format: RouterFormat, Version: m.Version, FeaturizerVersion: m.FeaturizerVersion, Featurizer: m.Featurizer,
		Created: m.Created, K: m.Model.K, Dim: m.Model.Dim, Inertia: m.Model.Inertia, NextID: m.NextID,
		Fit: m.Fit, Route: m.Route, Checksum: t.checksum(), Examples: m.Examples, Distances: m.Distances,
		Origins: m.origins(), Growth: m.Growth, OOV: m.OOV,
	}
	if m.Fine != nil {
		s.FineDistances = &m.Fine.Distances
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("cluster: router model: encode settings: %w", err)
	}
	return b, nil
}

// buildRouter checks a loaded table and settings against their checksums
// (digest: the routerDigestKey value, "" for a router written without one)
// and rebuilds the router.
func buildRouter(meta []byte, digest string, t routerTable) (*RouterModel, error) {
	if digest != "" && schemas.MetadataDigest(meta) != digest {
		return nil, errors.New("settings checksum mismatch (damaged data)")
	}
	var s routerSettings
	if err := json.Unmarshal(meta, &s); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if s.Format < 1 || s.Format > RouterFormat {
		return nil, fmt.Errorf("router model format %d, this build reads 1 to %d", s.Format, RouterFormat)
	}
	if got := t.checksum(); got != s.Checksum {
		return nil, errors.New("checksum mismatch (damaged data)")
	}
	fine, err := t.splitFine(s.Dim, s.FineDistances)
	if err != nil {
		return nil, err
	}
	k := len(t.ids)
	if k != s.K || s.Dim < 1 {
		return nil, fmt.Errorf("%d rows for k=%d, dim %d", k, s.K, s.Dim)
	}
	md := &Model{K: k, Dim: s.Dim, Centroids: make([]float32, 0, k*s.Dim), Sizes: make([]int, k), Inertia: s.Inertia}
	m := &RouterModel{
		Version: s.Version, FeaturizerVersion: s.FeaturizerVersion, Featurizer: s.Featurizer, Created: s.Created,
		IDs: make([]int, k), Model: md, Fit: s.Fit, Route: s.Route, NextID: s.NextID,
	}
	anyTerms := false
	terms := make([][]string, k)
	for j := range k {
		if len(t.centroids[j]) != s.Dim {
			return nil, fmt.Errorf("centroid %d has %d values, want %d", j, len(t.centroids[j]), s.Dim)
		}
		md.Centroids = append(md.Centroids, t.centroids[j]...)
		md.Sizes[j] = int(t.sizes[j])
		m.IDs[j] = int(t.ids[j])
		if len(t.terms[j]) > 0 {
			terms[j] = t.terms[j]
			anyTerms = true
		}
	}
	if anyTerms {
		m.TopTerms = terms
	}
	if s.Examples != nil {
		if len(s.Examples) != k {
			return nil, fmt.Errorf("examples for %d domains, k=%d", len(s.Examples), k)
		}
		m.Examples = s.Examples
	}
	if s.Distances != nil {
		if len(s.Distances) != k {
			return nil, fmt.Errorf("distances for %d domains, k=%d", len(s.Distances), k)
		}
		m.Distances = s.Distances
	}
	if s.Origins != nil {
		if len(s.Origins) != k {
			return nil, fmt.Errorf("origins for %d domains, k=%d", len(s.Origins), k)
		}
		m.Origins = s.Origins
	}
	m.Growth, m.OOV, m.Fine = s.Growth, s.OOV, fine
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// schema returns the router model schema with the settings in its metadata.
func routerSchema(meta []byte) *arrow.Schema {
	return schemas.WithMetadata(schemas.RouterModelSchema(), map[string]string{routerMetaKey: string(meta), routerDigestKey: schemas.MetadataDigest(meta)})
}

// record builds the Arrow record of t.
func (t routerTable) record(schema *arrow.Schema) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	dom := b.Field(0).(*array.Int32Builder)
	size := b.Field(1).(*array.Int64Builder)
	terms := b.Field(2).(*array.ListBuilder)
	termv := terms.ValueBuilder().(*array.StringBuilder)
	cent := b.Field(3).(*array.ListBuilder)
	centv := cent.ValueBuilder().(*array.Float32Builder)
	for j := range t.ids {
		dom.Append(t.ids[j])
		size.Append(t.sizes[j])
		terms.Append(true)
		termv.AppendValues(t.terms[j], nil)
		cent.Append(true)
		centv.AppendValues(t.centroids[j], nil)
	}
	return b.NewRecord()
}

// appendRecord appends the rows of rec, a record of the router model schema
// (extra columns allowed), to t.
func (t *routerTable) appendRecord(rec arrow.Record) error {
	col := func(name string) (arrow.Array, error) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("column %q missing or repeated", name)
		}
		return rec.Column(idx[0]), nil
	}
	var cols [4]arrow.Array
	for i, name := range []string{schemas.ColDomain, schemas.ColSize, schemas.ColTopTerms, schemas.ColCentroid} {
		c, err := col(name)
		if err != nil {
			return err
		}
		cols[i] = c
	}
	dom, ok1 := cols[0].(*array.Int32)
	size, ok2 := cols[1].(*array.Int64)
	terms, ok3 := cols[2].(*array.List)
	cent, ok4 := cols[3].(*array.List)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return errors.New("unexpected column types")
	}
	termv, ok1 := terms.ListValues().(*array.String)
	centv, ok2 := cent.ListValues().(*array.Float32)
	if !ok1 || !ok2 {
		return errors.New("unexpected list value types")
	}
	for j := range int(rec.NumRows()) {
		if dom.IsNull(j) || size.IsNull(j) || cent.IsNull(j) {
			return fmt.Errorf("row %d: null domain, size or centroid", j)
		}
		t.ids = append(t.ids, dom.Value(j))
		t.sizes = append(t.sizes, size.Value(j))
		var ts []string
		if terms.IsValid(j) {
			lo, hi := terms.ValueOffsets(j)
			for k := lo; k < hi; k++ {
				ts = append(ts, termv.Value(int(k)))
			}
		}
		t.terms = append(t.terms, ts)
		lo, hi := cent.ValueOffsets(j)
		c := make([]float32, hi-lo)
		for k := lo; k < hi; k++ {
			c[k-lo] = centv.Value(int(k))
		}
		t.centroids = append(t.centroids, c)
	}
	return nil
}

// splitFine removes the fine centroids (rows with negative ids, -1, -2, …
// in order, after the domains) from t and returns them with their
// distances (nil when there are none).
func (t *routerTable) splitFine(dim int, dist *DistanceStats) (*FineCentroids, error) {
	k := 0
	for k < len(t.ids) && t.ids[k] >= 0 {
		k++
	}
	if k == len(t.ids) {
		if dist != nil {
			return nil, errors.New("fine-centroid distances without fine centroids")
		}
		return nil, nil
	}
	if dist == nil {
		return nil, errors.New("fine centroids without their distances")
	}
	f := &FineCentroids{Model: &Model{Dim: dim}, Distances: *dist}
	for j := k; j < len(t.ids); j++ {
		if t.ids[j] != int32(-1-(j-k)) {
			return nil, fmt.Errorf("row %d: fine centroid id %d, want %d", j, t.ids[j], -1-(j-k))
		}
		if len(t.centroids[j]) != dim {
			return nil, fmt.Errorf("fine centroid %d has %d values, want %d", j-k, len(t.centroids[j]), dim)
		}
		f.Model.Centroids = append(f.Model.Centroids, t.centroids[j]...)
		f.Model.Sizes = append(f.Model.Sizes, int(t.sizes[j]))
		f.Model.K++
	}
	t.ids, t.sizes, t.terms, t.centroids = t.ids[:k], t.sizes[:k], t.terms[:k], t.centroids[:k]
	return f, nil
}

// routerRow is the Parquet row of a router table.
type routerRow struct {
	Domain   int32     `parquet:"domain"`
	Size     int64     `parquet:"size"`
	TopTerms []string  `parquet:"top_terms,list"`
	Centroid []float32 `parquet:"centroid,list"`
}

// ---------------------------------------------------------------------------
// Files.

// RouterPath returns the path of version v's Arrow file in dir; the Parquet
// twin has the same name with .parquet.
func RouterPath(dir string, v int64) string { return schemas.ArtifactPath(dir, "router", v) }

// LatestRouterVersion returns the highest router version saved in dir (by
// the names of its Arrow files), or 0 when there is none.
func LatestRouterVersion(dir string) (int64, error) {
	v, err := schemas.LatestArtifactVersion(dir, "router")
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	return v, nil
}

// SaveRouter writes m into dir as DIR/router-NNNNNN.arrow and its .parquet
// twin: as version m.Version when that is set and above every saved version,
// else as the next version. It sets m.Version (and m.Created when zero) and
// returns the version written.
func SaveRouter(dir string, m *RouterModel) (int64, error) {
	if err := m.validate(); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("cluster: router dir: %w", err)
	}
	latest, err := LatestRouterVersion(dir)
	if err != nil {
		return 0, err
	}
	v := m.Version
	if v <= latest {
		v = latest + 1
	}
	old := m.Version
	m.Version = v
	t := m.table()
	meta, err := m.settings(t)
	if err != nil {
		m.Version = old
		return 0, err
	}
	err = schemas.WriteTwinAtomic(RouterPath(dir, v),
		func(f *os.File) error { return writeRouterParquet(f, t, meta) },
		func(f *os.File) error { return writeRouterArrow(f, t, meta) })
	if err != nil {
		m.Version = old
		return 0, fmt.Errorf("cluster: %w", err)
	}
	m.Origins = m.origins()
	return v, nil
}

func writeRouterArrow(f *os.File, t routerTable, meta []byte) error {
	schema := routerSchema(meta)
	rec := t.record(schema)
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

func writeRouterParquet(f *os.File, t routerTable, meta []byte) error {
	w := parquet.NewGenericWriter[routerRow](f, schemas.ParquetWriterOptions(
		parquet.KeyValueMetadata(routerMetaKey, string(meta)),
		parquet.KeyValueMetadata(routerDigestKey, schemas.MetadataDigest(meta)))...)
	rows := make([]routerRow, len(t.ids))
	for j := range rows {
		rows[j] = routerRow{Domain: t.ids[j], Size: t.sizes[j], TopTerms: t.terms[j], Centroid: t.centroids[j]}
	}
	if _, err := w.Write(rows); err != nil {
		return err
	}
	return w.Close()
}

// LoadRouter loads router version v from dir (v <= 0: the latest). It reads
// the Arrow file and falls back to the Parquet twin when the Arrow file is
// missing or damaged; the checksum must match.
func LoadRouter(dir string, v int64) (*RouterModel, error) {
	m, err := schemas.LoadArtifact(dir, "router", v, LoadRouterFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return m, nil
}

// LoadRouterFile loads a router from one .arrow or .parquet file.
func LoadRouterFile(path string) (*RouterModel, error) {
	var m *RouterModel
	var err error
	if filepath.Ext(path) == ".parquet" {
		m, err = loadRouterParquet(path)
	} else {
		m, err = loadRouterArrow(path)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cluster: %s: %w", path, err)
	}
	return m, nil
}

func loadRouterArrow(path string) (m *RouterModel, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("damaged Arrow file: %v", p)
		}
	}()
	// The stock file reader allocates what a damaged length claims.
	recs, err := schemas.DecodeArrowFile(data)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	schema := recs[0].Schema()
	if err := schemas.CheckSchema(schema, schemas.KindRouterModel); err != nil {
		return nil, err
	}
	meta, ok := schema.Metadata().GetValue(routerMetaKey)
	if !ok {
		return nil, fmt.Errorf("not a router model (no %s metadata)", routerMetaKey)
	}
	digest, _ := schema.Metadata().GetValue(routerDigestKey)
	var t routerTable
	for _, rec := range recs {
		if err := t.appendRecord(rec); err != nil {
			return nil, err
		}
	}
	return buildRouter([]byte(meta), digest, t)
}

func loadRouterParquet(path string) (*RouterModel, error) {
	meta, rows, err := schemas.ReadParquetArtifact[routerRow](path, routerMetaKey, "router model")
	if err != nil {
		return nil, err
	}
	digest, err := schemas.ParquetMetadata(path, routerDigestKey)
	if err != nil {
		return nil, err
	}
	var t routerTable
	for _, r := range rows {
		t.ids = append(t.ids, r.Domain)
		t.sizes = append(t.sizes, r.Size)
		var ts []string
		if len(r.TopTerms) > 0 {
			ts = r.TopTerms
		}
		t.terms = append(t.terms, ts)
		t.centroids = append(t.centroids, r.Centroid)
	}
	return buildRouter([]byte(meta), digest, t)
}

// ---------------------------------------------------------------------------
// Topic payload.

// EncodeRouter returns m as an Arrow IPC stream of schemas.RouterModelSchema
// with the router-level facts in its metadata, for the router.models topic.
// It sets m.Created when zero.
func EncodeRouter(m *RouterModel) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	t := m.table()
	meta, err := m.settings(t)
	if err != nil {
		return nil, err
	}
	rec := t.record(routerSchema(meta))
	defer rec.Release()
	b, err := schemas.EncodeRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode router: %w", err)
	}
	return b, nil
}

// DecodeRouter decodes a payload written by EncodeRouter; the checksum must
// match. Errors from the Arrow layer wrap *schemas.DecodeError.
func DecodeRouter(b []byte) (*RouterModel, error) {
	recs, err := schemas.DecodeRecords(b, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: decode router: %w", err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	schema := recs[0].Schema()
	if err := schemas.CheckSchema(schema, schemas.KindRouterModel); err != nil {
		return nil, fmt.Errorf("cluster: decode router: %w", err)
	}
	meta, ok := schema.Metadata().GetValue(routerMetaKey)
	if !ok {
		return nil, fmt.Errorf("cluster: decode router: no %s metadata", routerMetaKey)
	}
	var t routerTable
	for _, rec := range recs {
		if err := t.appendRecord(rec); err != nil {
			return nil, fmt.Errorf("cluster: decode router: %w", err)
		}
	}
	digest, _ := schema.Metadata().GetValue(routerDigestKey)
	m, err := buildRouter([]byte(meta), digest, t)
	if err != nil {
		return nil, fmt.Errorf("cluster: decode router: %w", err)
	}
	return m, nil
}

// ---------------------------------------------------------------------------
// Stable ids.

// MatchIDs gives the centroids of a refit the ids of the closest previous
// centroids: a minimum-cost one-to-one matching (Hungarian algorithm on
// squared Euclidean distances, O(k³)). When next has more centroids than
// prev, the unmatched ones get fresh ids from prev.NextID in centroid order;
// when it has fewer, the ids of the unmatched previous centroids are retired.
// It returns the ids and the updated NextID (never below prev.NextID, so ids
// are never reused). prev == nil gives 0..k-1; a prev without a model, of
// another dimension or with ids not matching its centroids cannot be matched
// and gives all fresh ids.
func MatchIDs(prev *RouterModel, next *Model) (ids []int, nextID int) {
	if prev != nil {
		nextID = prev.NextID
		for _, id := range prev.IDs {
			nextID = max(nextID, id+1)
		}
	}
	if next == nil || next.K <= 0 {
		return []int{}, nextID
	}
	k := next.K
	ids = make([]int, k)
	for j := range ids {
		ids[j] = -1
	}
	if prev != nil && prev.Model != nil && prev.Model.Dim == next.Dim && prev.Model.K > 0 && len(prev.IDs) == prev.Model.K {
		pk := prev.Model.K
		// cost[p][q]: previous centroid p to next centroid q.
		cost := make([]float64, pk*k)
		for p := range pk {
			a := prev.Model.Centroid(p)
			for q := range k {
				b := next.Centroid(q)
				s := 0.0
				for d := range a {
					x := float64(a[d]) - float64(b[d])
					s += x * x
				}
				if math.IsNaN(s) || s > 1e30 {
					s = 1e30
				}
				cost[p*k+q] = s
			}
		}
		if pk <= k {
			for p, q := range hungarian(cost, pk, k) {
				ids[q] = prev.IDs[p]
			}
		} else {
			tr := make([]float64, k*pk)
			for p := range pk {
				for q := range k {
					tr[q*pk+p] = cost[p*k+q]
				}
			}
			for q, p := range hungarian(tr, k, pk) {
				ids[q] = prev.IDs[p]
			}
		}
	}
	for j := range ids {
		if ids[j] < 0 {
			ids[j] = nextID
			nextID++
		}
	}
	return ids, nextID
}

// hungarian returns the minimum-cost assignment of n rows to distinct
// columns of the n×m (n ≤ m) row-major cost matrix: out[i] is row i's
// column. Shortest augmenting paths with potentials, O(n²m).
func hungarian(cost []float64, n, m int) []int {
	inf := math.Inf(1)
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row (1-based) matched to column j, 0 none
	way := make([]int, m+1)
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = inf
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			delta, j1 := inf, 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := cost[(i0-1)*m+j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			if j1 == 0 { // cannot happen with finite costs; never loop forever
				for j := 1; j <= m; j++ {
					if !used[j] {
						j1 = j
						break
					}
				}
				delta = 0
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	out := make([]int, n)
	for j := 1; j <= m; j++ {
		if p[j] != 0 {
			out[p[j]-1] = j - 1
		}
	}
	return out
}

// RemoveDomain returns a new router without domain id: its documents then
// route to their next nearest domain. The result is unsaved (Version 0, a new
// Created time), keeps NextID (the id is retired, not reused), sets Fit.K to
// the new k and Model.Inertia to 0 (not known). The other domains keep their
// fit-time distances (Distances). The last domain cannot be removed.
func (m *RouterModel) RemoveDomain(id int) (*RouterModel, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	j, ok := m.Index(id)
	if !ok {
		return nil, fmt.Errorf("cluster: remove domain: no domain %d", id)
	}
	if m.Model.K == 1 {
		return nil, fmt.Errorf("cluster: remove domain: %d is the only domain", id)
	}
	c := m.clone()
	md := c.Model
	dim := md.Dim
	md.Centroids = slices.Delete(md.Centroids, j*dim, (j+1)*dim)
	if md.Sizes != nil {
		md.Sizes = slices.Delete(md.Sizes, j, j+1)
	}
	md.K--
	md.Inertia = 0
	c.IDs = slices.Delete(c.IDs, j, j+1)
	if c.TopTerms != nil {
		c.TopTerms = slices.Delete(c.TopTerms, j, j+1)
	}
	if c.Examples != nil {
		c.Examples = slices.Delete(c.Examples, j, j+1)
	}
	if c.Distances != nil {
		c.Distances = slices.Delete(c.Distances, j, j+1)
	}
	if c.Origins != nil {
		c.Origins = slices.Delete(c.Origins, j, j+1)
	}
	c.Fit.K = md.K
	c.Version, c.Created = 0, time.Now().UTC()
	return c, nil
}

// SplitDomain splits domain id in two with a balanced 2-means (Fit with
// K=2 and the router's other fit settings, its Fit.Backend included, seeded
// with seed) over members, the rows assigned to it. The half whose centroid
// is nearer the old one keeps id and row; the other is appended as a new row
// with a fresh id (NextID, which grows by one). Both halves get their 2-means
// sizes and no top terms (the caller names them with its featurizer, e.g.
// embed.CentroidTerms). When m keeps fit-time distances (Distances), each
// half gets those of the members nearest to it among all the new centroids
// (FitDistances over members); the other domains keep theirs. The result is
// unsaved (Version 0, a new Created time), with Fit.K the new k and
// Model.Inertia 0 (not known).
func (m *RouterModel) SplitDomain(ctx context.Context, id int, members *Rows, seed uint64) (*RouterModel, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	j, ok := m.Index(id)
	if !ok {
		return nil, fmt.Errorf("cluster: split domain: no domain %d", id)
	}
	if members == nil {
		return nil, errors.New("cluster: split domain: nil members")
	}
	if err := members.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: split domain: %w", err)
	}
	if members.Dim != m.Model.Dim {
		return nil, fmt.Errorf("cluster: split domain: members of dimension %d, router has %d", members.Dim, m.Model.Dim)
	}
	if members.N < 2 {
		return nil, fmt.Errorf("cluster: split domain: %d members, need at least 2", members.N)
	}
	if m.NextID > math.MaxInt32 {
		return nil, errors.New("cluster: split domain: domain ids exhausted")
	}
	cfg := FitConfig{K: 2, MaxIter: m.Fit.MaxIter, Tol: m.Fit.Tol, Restarts: m.Fit.Restarts, Seed: seed, Workers: m.Fit.Workers, Backend: m.Fit.Backend}
	two, _, err := Fit(ctx, members, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: split domain: %w", err)
	}
	old := m.Model.Centroid(j)
	sq := func(c []float32) float64 {
		s := 0.0
		for d, v := range c {
			x := float64(v) - float64(old[d])
			s += x * x
		}
		return s
	}
	keep, other := 0, 1
	if sq(two.Centroid(1)) < sq(two.Centroid(0)) {
		keep, other = 1, 0
	}
	c := m.clone()
	md := c.Model
	if md.Sizes == nil {
		md.Sizes = make([]int, md.K)
	}
	copy(md.Centroid(j), two.Centroid(keep))
	md.Sizes[j] = two.Sizes[keep]
	md.Centroids = append(md.Centroids, two.Centroid(other)...)
	md.Sizes = append(md.Sizes, two.Sizes[other])
	md.K++
	md.Inertia = 0
	c.IDs = append(c.IDs, c.NextID)
	c.NextID++
	if c.TopTerms != nil {
		c.TopTerms[j] = nil
		c.TopTerms = append(c.TopTerms, nil)
	}
	if c.Examples != nil {
		c.Examples[j] = nil
		c.Examples = append(c.Examples, nil)
	}
	if c.Distances != nil {
		d := FitDistances(md, members)
		c.Distances[j] = d[j]
		c.Distances = append(c.Distances, d[md.K-1])
	}
	if c.Origins != nil {
		c.Origins = append(c.Origins, DomainOrigin{How: OriginSplit}) // this router's version, once saved
	}
	c.Fit.K = md.K
	c.Version, c.Created = 0, time.Now().UTC()
	return c, nil
}

// FitOrigins returns the origins of the domains ids of a router fitted anew
// after prev (nil: none): an id prev has keeps its origin there (a refit
// keeps the domain), a new id is OriginFit of the router being made.
func FitOrigins(prev *RouterModel, ids []int) []DomainOrigin {
	out := make([]DomainOrigin, len(ids))
	for j, id := range ids {
		out[j] = DomainOrigin{How: OriginFit}
		if prev == nil {
			continue
		}
		if i, ok := prev.Index(id); ok && i < len(prev.Origins) {
			out[j] = prev.Origins[i]
		}
	}
	return out
}
