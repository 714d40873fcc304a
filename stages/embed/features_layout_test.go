package embed_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// TestFeaturesFileLayout: a features file is zstd-compressed in row groups
// of at most schemas.ParquetRowGroupRows rows, and reads back whole.
func TestFeaturesFileLayout(t *testing.T) {
	n := 2*schemas.ParquetRowGroupRows + 100
	m := embed.NewCSR(50)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("doc-%d", i)
		m.AppendRow([]int32{int32(i % 50)}, []float32{float32(i)})
	}
	var buf bytes.Buffer
	fw := embed.NewFeaturesWriter(&buf, `{"kind":"tfidf"}`)
	for lo := 0; lo < n; lo += 1024 {
		if err := fw.WriteRows(ids, m, lo, min(lo+1024, n), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	groups := pf.Metadata().RowGroups
	if len(groups) != 3 {
		t.Errorf("%d row groups, want 3", len(groups))
	}
	for g, rg := range groups {
		if rg.NumRows > schemas.ParquetRowGroupRows {
			t.Errorf("row group %d has %d rows", g, rg.NumRows)
		}
		for _, cc := range rg.Columns {
			if cc.MetaData.Codec != format.Zstd {
				t.Errorf("row group %d column %v is %s, want ZSTD", g, cc.MetaData.PathInSchema, cc.MetaData.Codec)
			}
		}
	}
	rows, err := parquet.Read[embed.FeatureRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || len(rows) != n || rows[n-1].ID != ids[n-1] || rows[n-1].Values[0] != float32(n-1) {
		t.Fatalf("read back %d rows, %v", len(rows), err)
	}
}
