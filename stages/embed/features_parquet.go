package embed

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// FeatureRow is one row of an offline features file (`pipeline embed --out
// FILE.parquet`): the document id and its vector, sparse (Indices set) or
// dense (Indices empty, Values of length Dim).
type FeatureRow struct {
	ID                string    `parquet:"id"`
	Dim               int32     `parquet:"dim"`
	Indices           []int32   `parquet:"indices,list"`
	Values            []float32 `parquet:"values,list"`
	FeaturizerVersion int64     `parquet:"featurizer_version"`
}

// FeaturesWriter appends feature rows to a Parquet file.
type FeaturesWriter struct {
	w    *parquet.GenericWriter[FeatureRow]
	rows []FeatureRow
}

// NewFeaturesWriter writes a features file to w, with the featurizer's
// settings (JSON) in the file metadata when given.
func NewFeaturesWriter(w io.Writer, settingsJSON string) *FeaturesWriter {
	// A large write buffer: fewer, larger writes of the (often tens of MB)
	// file; the bytes written are the same.
	opts := []parquet.WriterOption{parquet.WriteBufferSize(1 << 20)}
	if settingsJSON != "" {
		opts = append(opts, parquet.KeyValueMetadata(stateMetaKey, settingsJSON))
	}
	return &FeaturesWriter{w: parquet.NewGenericWriter[FeatureRow](w, opts...)}
}

// Write appends the vectors of ids, row for row.
func (fw *FeaturesWriter) Write(ids []string, v Vectors, version int64) error {
	if v.Len() != len(ids) {
		return fmt.Errorf("embed: %d vectors for %d ids", v.Len(), len(ids))
	}
	fw.rows = fw.rows[:0]
	d := int32(v.Dim())
	for i, id := range ids {
		r := FeatureRow{ID: id, Dim: d, FeaturizerVersion: version}
		if v.Sparse != nil {
			r.Indices, r.Values = v.Sparse.Row(i)
		} else {
			r.Values = v.Dense.Row(i)
		}
		fw.rows = append(fw.rows, r)
	}
	if _, err := fw.w.Write(fw.rows); err != nil {
		return fmt.Errorf("embed: write features: %w", err)
	}
	return nil
}

// Close flushes the file footer.
func (fw *FeaturesWriter) Close() error { return fw.w.Close() }
