package schemas

import (
	"bytes"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// TestAppendRecordsSlicedNullList: a one-row slice of a list column whose
// row is null, read back from IPC (as the routing stage gathers the
// kafka_header_names of a row without producer headers), encodes and
// decodes to the same row; the arrow IPC writer panicked on it ("index out
// of range"), which stopped the routing stage under the reliability suite.
func TestAppendRecordsSlicedNullList(t *testing.T) {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.ListOf(arrow.BinaryTypes.Binary), Nullable: true}}, nil)
	b := array.NewListBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	vb := b.ValueBuilder().(*array.BinaryBuilder)
	for i := range 6 {
		if i%3 == 0 {
			b.AppendNull()
			continue
		}
		b.Append(true)
		vb.Append([]byte("h"))
	}
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecord(schema, []arrow.Array{col}, 6)
	defer rec.Release()
	// Through IPC first, as a stage reads its input.
	var in bytes.Buffer
	w := ipc.NewWriter(&in, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := ipc.NewReader(&in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	read := r.Record()
	for _, row := range []int{0, 1, 3} {
		one := read.NewSlice(int64(row), int64(row)+1)
		payload, err := AppendRecords(nil, one)
		one.Release()
		if err != nil {
			t.Fatalf("row %d: %v", row, err)
		}
		r2, err := ipc.NewReader(bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		if !r2.Next() {
			t.Fatal(r2.Err())
		}
		got := r2.Record().Column(0)
		if got.Len() != 1 || got.IsNull(0) != (row%3 == 0) {
			t.Errorf("row %d: got %v", row, got)
		}
		r2.Release()
	}
}
