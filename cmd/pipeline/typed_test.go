package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// typedRow is a row of the Parquet input of TestArrowTypedColumns.
type typedRow struct {
	ID   string `parquet:"id"`
	Text string `parquet:"text"`
	N    int64  `parquet:"n"`
	Flag bool   `parquet:"flag"`
}

// typedValues reads the typed columns n (int64) and flag (bool) of Arrow
// records of Document, Routed or Features kind, by id, and fails when a
// record lacks them or has them of other types.
func typedValues(t *testing.T, rec arrow.Record, into map[string][]typedRow) {
	t.Helper()
	s := rec.Schema()
	ni, fi := s.FieldIndices("n"), s.FieldIndices("flag")
	if len(ni) != 1 || len(fi) != 1 {
		t.Fatalf("record without the typed columns n and flag: %v", s)
	}
	n, ok1 := rec.Column(ni[0]).(*array.Int64)
	flag, ok2 := rec.Column(fi[0]).(*array.Boolean)
	if !ok1 || !ok2 {
		t.Fatalf("columns n %s, flag %s; want int64 and bool", s.Field(ni[0]).Type, s.Field(fi[0]).Type)
	}
	docs, err := schemas.Documents(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range docs.Len() {
		if s := docs.Doc(i).Meta; len(s) != 0 {
			t.Errorf("row %s has meta %s, want none (its fields are typed columns)", docs.ID(i), s)
		}
		into[docs.ID(i)] = append(into[docs.ID(i)], typedRow{ID: docs.ID(i), N: n.Value(i), Flag: flag.Value(i)})
	}
}

// TestArrowTypedColumns: a Parquet input with an int64 and a bool column,
// ingested with --arrow, reaches the domain topics through the embed and
// cluster stages with both as typed columns, each document once; the
// archive writes them typed into its shards (read back through schemas and
// parquet-go), and replay --arrow of a shard produces them typed again.
func TestArrowTypedColumns(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	dir := t.TempDir()
	router := filepath.Join(dir, "router")
	mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "2", "--out", router, "--seed", "1")

	in, err := schemas.OpenInput(fixture, schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []typedRow
	for {
		rec, err := in.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Err == nil {
			i := int64(len(rows))
			rows = append(rows, typedRow{ID: rec.Doc.ID, Text: rec.Doc.Text, N: i * 1_000_000_007, Flag: i%2 == 0})
		}
	}
	in.Close()
	want := map[string]typedRow{}
	for _, r := range rows {
		want[r.ID] = typedRow{ID: r.ID, N: r.N, Flag: r.Flag}
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, "typed.parquet")
	writeFile(t, pq, buf.Bytes())
	mustCLI(t, "ingest", "--arrow", "--brokers", addr, pq)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb := startCommand(ctx, "embed", "--brokers", addr, "--state", router, "--linger", "5ms")
	clu := startCommand(ctx, "cluster", "--brokers", addr, "--router", router, "--linger", "5ms")
	var got map[string][]typedRow
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < len(rows) {
		if time.Now().After(deadline) {
			t.Fatalf("the domain topics hold %d documents, want %d\nembed:\n%s\ncluster:\n%s", len(got), len(rows), emb.stderr.String(), clu.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
		got = map[string][]typedRow{}
		eachDomainRecord(ctx, t, cc, 2, func(rec arrow.Record) { typedValues(t, rec, got) })
	}
	cancel()
	<-emb.done
	<-clu.done
	for id, w := range want {
		if g := got[id]; len(g) != 1 || g[0] != w {
			t.Errorf("document %s on the domain topics: %+v, want once %+v", id, g, w)
		}
	}
	if dead, _ := pipeline.ReadTopic(context.Background(), cc, pipeline.TopicDeadLetter, 0); len(dead) != 0 {
		t.Errorf("%d dead letters, want none: %v", len(dead), dead[0].Headers)
	}

	// The archive's shards: n and flag typed, read back through schemas
	// (TypedExtras) and seen in the Parquet schema.
	out := filepath.Join(dir, "out")
	mustCLI(t, "archive", "--brokers", addr, "--domain", "0,1", "--out", out, "--exit-on-idle", "1s")
	shards, _ := filepath.Glob(filepath.Join(out, "archive", "*", "*.parquet"))
	if len(shards) == 0 {
		t.Fatal("no shards")
	}
	archived := map[string][]typedRow{}
	for _, sh := range shards {
		f, err := os.Open(sh)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for name, kind := range map[string]parquet.Kind{"n": parquet.Int64, "flag": parquet.Boolean} {
			if c, ok := pf.Schema().Lookup(name); !ok || c.Node.Type().Kind() != kind {
				t.Errorf("%s: column %s missing or not %v: %v", sh, name, kind, pf.Schema())
			}
		}
		f.Close()
		rd, err := schemas.OpenInput(sh, schemas.Limits{TypedExtras: true})
		if err != nil {
			t.Fatal(err)
		}
		fields := rd.(schemas.TypedInput).ExtraFields()
		if len(fields) != 2 || fields[0].Name != "n" || fields[0].Type.ID() != arrow.INT64 || fields[1].Name != "flag" || fields[1].Type.ID() != arrow.BOOL {
			t.Fatalf("%s: extra fields %v, want n int64 and flag bool", sh, fields)
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || rec.Err != nil {
				t.Fatalf("%s: %v %v", sh, err, rec.Err)
			}
			archived[rec.Doc.ID] = append(archived[rec.Doc.ID], typedRow{ID: rec.Doc.ID, N: rec.Extra[0].(int64), Flag: rec.Extra[1].(bool)})
		}
		rd.Close()
	}
	for id, w := range want {
		if g := archived[id]; len(g) != 1 || g[0] != w {
			t.Errorf("document %s in the shards: %+v, want once %+v", id, g, w)
		}
	}

	// replay --arrow of the shards: typed again.
	mustCLI(t, append([]string{"replay", "--arrow", "--brokers", addr, "--topic", "docs.replayed"}, shards...)...)
	ms, err := pipeline.ReadTopic(context.Background(), cc, "docs.replayed", 0)
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[string][]typedRow{}
	for _, m := range ms {
		recs, err := schemas.DecodeRecords(m.Value, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			typedValues(t, rec, replayed)
			rec.Release()
		}
	}
	if len(replayed) != len(want) {
		t.Errorf("replay --arrow: %d documents, want %d", len(replayed), len(want))
	}
	for id, w := range want {
		if g := replayed[id]; len(g) != 1 || g[0] != w {
			t.Errorf("replayed document %s: %+v, want %+v", id, g, w)
			break
		}
	}
}
