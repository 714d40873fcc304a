package embed

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/schemas"
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
	opts := schemas.ParquetWriterOptions(parquet.WriteBufferSize(1 << 20))
	if settingsJSON != "" {
		opts = append(opts, parquet.KeyValueMetadata(stateMetaKey, settingsJSON))
	}
	return &FeaturesWriter{w: parquet.NewGenericWriter[FeatureRow](withWriteback(w), opts...)}
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

// WriteRows appends rows [lo, hi) of m, with ids[lo:hi]. A file written in
// several calls whose row counts are multiples of 64 (but the last) is the
// same, byte for byte, as one Write of all rows: the writer cuts its input
// into runs of 64 rows and closes pages between runs.
func (fw *FeaturesWriter) WriteRows(ids []string, m *CSR, lo, hi int, version int64) error {
	if hi > len(ids) || hi > m.Rows || lo < 0 || lo > hi {
		return fmt.Errorf("embed: rows [%d, %d) of %d vectors with %d ids", lo, hi, m.Rows, len(ids))
	}
	fw.rows = fw.rows[:0]
	d := int32(m.Cols)
	for i := lo; i < hi; i++ {
		r := FeatureRow{ID: ids[i], Dim: d, FeaturizerVersion: version}
		r.Indices, r.Values = m.Row(i)
		fw.rows = append(fw.rows, r)
	}
	if _, err := fw.w.Write(fw.rows); err != nil {
		return fmt.Errorf("embed: write features: %w", err)
	}
	return nil
}

// SetSettings puts the featurizer's settings (JSON) in the file metadata,
// as NewFeaturesWriter's settingsJSON does; call it before Close.
func (fw *FeaturesWriter) SetSettings(settingsJSON string) {
	fw.w.SetKeyValueMetadata(stateMetaKey, settingsJSON)
}

// Close flushes the file footer.
func (fw *FeaturesWriter) Close() error { return fw.w.Close() }
