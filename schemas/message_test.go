package schemas

import "testing"

func TestCheckMessage(t *testing.T) {
	doc := []byte(`{"text":"x"}`)
	tests := []struct {
		name   string
		ct, sv string
		value  []byte
		want   string
		reason Reason
	}{
		{"headerless tombstone", "", "", nil, "", ReasonEmptyMessage},
		{"headerless empty payload", "", "", []byte{}, "", ReasonEmptyMessage},
		{"arrow tombstone", ContentTypeArrow, "1", nil, "", ReasonEmptyMessage},
		{"json tombstone", ContentTypeJSON, "", nil, "", ReasonEmptyMessage},
		{"tombstone with bad headers", "text/plain", "9", nil, "", ReasonEmptyMessage},
		{"headerless document", "", "", doc, ContentTypeJSON, ""},
		{"arrow value", ContentTypeArrow, "1", []byte{0xff}, ContentTypeArrow, ""},
		{"bad headers", "text/plain", "", doc, "", ReasonWrongContentType},
		{"arrow without version", ContentTypeArrow, "", []byte{0xff}, "", ReasonUnknownSchemaVersion},
	}
	for _, tt := range tests {
		got, err := CheckMessage(tt.ct, tt.sv, tt.value)
		if got != tt.want || ReasonOf(err) != tt.reason {
			t.Errorf("%s: CheckMessage(%q, %q, %q) = %q, %v; want %q, reason %q", tt.name, tt.ct, tt.sv, tt.value, got, err, tt.want, tt.reason)
		}
	}
}
