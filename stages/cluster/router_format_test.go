package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TestRouterFormat: a router is saved in format 2 (zstd Parquet twin,
// snake_case "fit" and "route" keys), and one of format 1 (Go-cased keys,
// uncompressed, testdata/router-pre-novelty) loads with the same settings.
func TestRouterFormat(t *testing.T) {
	dir := t.TempDir()
	if _, err := SaveRouter(dir, testRouter(5, 7, 1)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "router-000001.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range pf.Metadata().RowGroups[0].Columns {
		if cc.MetaData.Codec != format.Zstd {
			t.Errorf("column %v is %s, want ZSTD", cc.MetaData.PathInSchema, cc.MetaData.Codec)
		}
	}
	meta, _ := pf.Lookup(routerMetaKey)
	var s struct {
		Format int                        `json:"format"`
		Fit    map[string]json.RawMessage `json:"fit"`
		Route  map[string]json.RawMessage `json:"route"`
	}
	if err := json.Unmarshal([]byte(meta), &s); err != nil {
		t.Fatal(err)
	}
	if s.Format != RouterFormat || string(s.Fit["max_iter"]) != "50" || string(s.Route["tolerance"]) != "0.1" || s.Fit["MaxIter"] != nil {
		t.Errorf("settings %s: want format %d, fit.max_iter 50, route.tolerance 0.1, no Go-cased keys", meta, RouterFormat)
	}

	want := testRouter(3, 4, 1)
	for _, file := range []string{"router-000001.arrow", "router-000001.parquet"} {
		m, err := LoadRouterFile(filepath.Join("testdata", "router-pre-novelty", file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if m.Fit.MaxIter != 50 || m.Fit.Restarts != 2 || m.Fit.Seed != 9 || m.Fit.K != 3 || m.Route != want.Route {
			t.Errorf("%s: fit %+v, route %+v; want max_iter 50, restarts 2, seed 9, k 3, route %+v", file, m.Fit, m.Route, want.Route)
		}
	}
}
