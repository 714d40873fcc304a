package archive

import (
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// TestDocuments: a routed message decodes to its records; a message without
// a value is dead-lettered as an empty message, not as a malformed Arrow
// batch; a JSON message or garbage is a malformed batch.
func TestDocuments(t *testing.T) {
	arrowHeaders := pipeline.ContentHeaders(schemas.ContentTypeArrow)
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	b.Append(schemas.Document{ID: "a", Text: "some text"}, schemas.Origin{})
	rec := b.NewRecord()
	b.Release()
	good, err := schemas.EncodeRecord(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		m    pipeline.Message
		want schemas.Reason // "": decodes
	}{
		{"documents", pipeline.Message{Value: good, Headers: arrowHeaders}, ""},
		{"headerless tombstone", pipeline.Message{Key: []byte("k")}, schemas.ReasonEmptyMessage},
		{"tombstone with arrow headers", pipeline.Message{Headers: arrowHeaders}, schemas.ReasonEmptyMessage},
		{"garbage", pipeline.Message{Value: []byte("\x00garbage"), Headers: arrowHeaders}, schemas.ReasonMalformedArrow},
		{"json document", pipeline.Message{Value: []byte(`{"id":"a","text":"t"}`), Headers: pipeline.ContentHeaders(schemas.ContentTypeJSON)}, schemas.ReasonMalformedArrow},
		{"headerless json", pipeline.Message{Value: []byte(`{not json`)}, schemas.ReasonMalformedArrow},
		{"schema version", pipeline.Message{Value: good, Headers: []pipeline.Header{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)}, {Key: schemas.HeaderSchemaVersion, Value: []byte("99")}}}, schemas.ReasonUnknownSchemaVersion},
	}
	for _, tt := range tests {
		recs, err := documents(tt.m)
		got := schemas.ReasonOf(err)
		if got != tt.want || (tt.want == "") != (len(recs) == 1) {
			t.Errorf("%s: documents = %d records, %v (reason %q); want reason %q", tt.name, len(recs), err, got, tt.want)
		}
		releaseRecords(recs)
	}
}
