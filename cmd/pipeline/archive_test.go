package main

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// TestArchiveDocsTombstone: a message without a value on a domain topic is
// dead-lettered as an empty message, not as a malformed Arrow batch.
func TestArchiveDocsTombstone(t *testing.T) {
	arrowHeaders := []kafka.Header{
		{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
		{Key: schemas.HeaderSchemaVersion, Value: []byte("1")},
	}
	tests := []struct {
		name string
		m    kafka.Message
		want schemas.Reason
	}{
		{"headerless tombstone", kafka.Message{Key: []byte("k")}, schemas.ReasonEmptyMessage},
		{"tombstone with arrow headers", kafka.Message{Headers: arrowHeaders}, schemas.ReasonEmptyMessage},
		{"garbage", kafka.Message{Value: []byte("\x00garbage"), Headers: arrowHeaders}, schemas.ReasonMalformedArrow},
	}
	for _, tt := range tests {
		docs, err := archiveDocs(tt.m)
		if got := schemas.ReasonOf(err); got != tt.want || docs != nil {
			t.Errorf("%s: archiveDocs = %d docs, %v (reason %q); want reason %q", tt.name, len(docs), err, got, tt.want)
		}
	}
}
