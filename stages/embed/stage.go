package embed

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Stage is the featurization stage: Document rows in, Features rows out
// (docs.raw → docs.features). Each output row keeps its document columns —
// id, text, meta and origin, shared with the input without copying — and
// adds the vector and the version of the featurizer state that made it. The
// featurizer can be swapped while the stage runs (Swap); each batch uses one
// version throughout.
type Stage struct {
	cur atomic.Pointer[State]
	mem memory.Allocator
}

var _ pipeline.Stage = (*Stage)(nil)

// NewStage returns a stage featurizing with s.
func NewStage(s *State) *Stage {
	st := &Stage{mem: memory.DefaultAllocator}
	st.cur.Store(s)
	return st
}

// Swap makes the stage use s from the next batch on.
func (st *Stage) Swap(s *State) { st.cur.Store(s) }

// State returns the state in use.
func (st *Stage) State() *State { return st.cur.Load() }

// Process featurizes one batch.
func (st *Stage) Process(ctx context.Context, in arrow.Record) (pipeline.Result, error) {
	s := st.cur.Load()
	docs, err := schemas.Documents(in)
	if err != nil {
		return pipeline.Result{}, err
	}
	texts := make([]string, docs.Len())
	for i := range texts {
		texts[i] = docs.Text(i)
	}
	v, err := s.Featurizer.Transform(ctx, texts)
	if err != nil {
		if errors.Is(err, ErrTransient) {
			return pipeline.Result{}, fmt.Errorf("embed: %w: %v", pipeline.ErrRetry, err)
		}
		return pipeline.Result{}, fmt.Errorf("embed: %w", err)
	}
	rec, err := FeaturesRecord(st.mem, in, v, s.Settings.Version)
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{Out: []pipeline.Output{{Record: rec}}}, nil
}

// FeaturesRecord returns a Features record whose document columns are those
// of docs (shared, not copied) and whose vectors are v, row for row. The
// extra columns of docs (see schemas.ExtraIndices) follow the Features
// columns, in their order in docs, shared too.
func FeaturesRecord(mem memory.Allocator, docs arrow.Record, v Vectors, version int64) (arrow.Record, error) {
	n := int(docs.NumRows())
	if v.Len() != n {
		return nil, fmt.Errorf("embed: %d vectors for %d documents", v.Len(), n)
	}
	in := docs.Schema()
	if err := schemas.CheckSchema(in, schemas.KindDocument); err != nil {
		return nil, fmt.Errorf("embed: input: %w", err)
	}
	extra := schemas.ExtraIndices(in, schemas.KindDocument)
	schema := schemas.FeaturesSchema()
	if extra != nil {
		fs := make([]arrow.Field, len(extra))
		for i, j := range extra {
			fs[i] = in.Field(j)
		}
		var err error
		if schema, err = schemas.Extend(schemas.KindFeatures, fs); err != nil {
			return nil, fmt.Errorf("embed: input: %w", err)
		}
	}
	cols := make([]arrow.Array, 0, schema.NumFields())
	// The document columns, found by name: a stage may have put its own
	// columns anywhere.
	for i := range schemas.NumDocumentColumns {
		cols = append(cols, docs.Column(in.FieldIndices(schema.Field(i).Name)[0]))
	}

	dim := array.NewInt32Builder(mem)
	defer dim.Release()
	ver := array.NewInt64Builder(mem)
	defer ver.Release()
	idxType := schema.Field(schema.FieldIndices(schemas.ColIndices)[0]).Type.(*arrow.ListType)
	valType := schema.Field(schema.FieldIndices(schemas.ColValues)[0]).Type.(*arrow.ListType)
	idx := array.NewListBuilderWithField(mem, idxType.ElemField())
	defer idx.Release()
	val := array.NewListBuilderWithField(mem, valType.ElemField())
	defer val.Release()
	idxv := idx.ValueBuilder().(*array.Int32Builder)
	valv := val.ValueBuilder().(*array.Float32Builder)
	d := int32(v.Dim())
	for i := range n {
		dim.Append(d)
		ver.Append(version)
		if v.Sparse != nil {
			ri, rv := v.Sparse.Row(i)
			idx.Append(true)
			idxv.AppendValues(ri, nil)
			val.Append(true)
			valv.AppendValues(rv, nil)
		} else {
			idx.AppendNull()
			val.Append(true)
			valv.AppendValues(v.Dense.Row(i), nil)
		}
	}
	built := []arrow.Array{dim.NewArray(), idx.NewArray(), val.NewArray(), ver.NewArray()}
	defer func() {
		for _, a := range built {
			a.Release()
		}
	}()
	// Place the new columns by name, in the schema's order.
	byName := map[string]arrow.Array{schemas.ColDim: built[0], schemas.ColIndices: built[1], schemas.ColValues: built[2], schemas.ColFeaturizerVersion: built[3]}
	for _, f := range schema.Fields()[schemas.NumDocumentColumns : schema.NumFields()-len(extra)] {
		a, ok := byName[f.Name]
		if !ok {
			return nil, fmt.Errorf("embed: features schema has an unknown column %q", f.Name)
		}
		cols = append(cols, a)
	}
	for _, j := range extra {
		cols = append(cols, docs.Column(j))
	}
	return array.NewRecord(schema, cols, int64(n)), nil
}

// FeatureVectors reads the vectors of a Features record back: sparse when
// rows carry indices, else dense. Rows must agree on their dimension.
func FeatureVectors(rec arrow.Record) (Vectors, error) {
	if err := schemas.CheckSchema(rec.Schema(), schemas.KindFeatures); err != nil {
		return Vectors{}, err
	}
	s := rec.Schema()
	dim := rec.Column(s.FieldIndices(schemas.ColDim)[0]).(*array.Int32)
	idx := rec.Column(s.FieldIndices(schemas.ColIndices)[0]).(*array.List)
	val := rec.Column(s.FieldIndices(schemas.ColValues)[0]).(*array.List)
	n := int(rec.NumRows())
	if n == 0 {
		return Vectors{Sparse: NewCSR(0)}, nil
	}
	d := int(dim.Value(0))
	idxv, _ := idx.ListValues().(*array.Int32)
	valv, _ := val.ListValues().(*array.Float32)
	if valv == nil || (idx.NullN() < n && idxv == nil) {
		return Vectors{}, errors.New("embed: features columns have unexpected types")
	}
	vo := val.Offsets()
	if idx.IsNull(0) {
		out := NewDense(n, d)
		for i := range n {
			if int(dim.Value(i)) != d || !idx.IsNull(i) || int(vo[i+1]-vo[i]) != d {
				return Vectors{}, fmt.Errorf("embed: features row %d is not a %d-dim dense vector", i, d)
			}
			copy(out.Row(i), valv.Float32Values()[vo[i]:vo[i+1]])
		}
		return Vectors{Dense: out}, nil
	}
	out := NewCSR(d)
	io := idx.Offsets()
	for i := range n {
		if int(dim.Value(i)) != d || idx.IsNull(i) || io[i+1]-io[i] != vo[i+1]-vo[i] {
			return Vectors{}, fmt.Errorf("embed: features row %d is not a %d-dim sparse vector", i, d)
		}
		out.AppendRow(idxv.Int32Values()[io[i]:io[i+1]], valv.Float32Values()[vo[i]:vo[i+1]])
	}
	if err := out.Validate(); err != nil {
		return Vectors{}, err
	}
	return Vectors{Sparse: out}, nil
}
