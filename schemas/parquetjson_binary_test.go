package schemas

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestWriteParquetJSONBinaryText: byte-array columns without a string
// annotation are base64, except text and id, which ingest reads as text.
func TestWriteParquetJSONBinaryText(t *testing.T) {
	type row struct {
		ID   []byte `parquet:"id"`
		Text []byte `parquet:"text"`
		Blob []byte `parquet:"blob"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []row{{[]byte("b1"), []byte("binary text"), []byte("\x00\x01")}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteParquetJSON(&out, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"b1","text":"binary text","blob":"AAE="}` + "\n"; out.String() != want {
		t.Errorf("WriteParquetJSON:\n got %s\nwant %s", out.String(), want)
	}
}
