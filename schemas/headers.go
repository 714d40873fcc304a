package schemas

import (
	"mime"
	"strconv"
	"strings"
)

// Version is the schema version of every payload and schema this package
// writes. Readers accept exactly this version.
const Version = 1

// Kafka header names and content types of the payloads between stages.
const (
	HeaderContentType   = "content-type"
	HeaderSchemaVersion = "schema-version"

	ContentTypeJSON  = "application/json"
	ContentTypeArrow = "application/vnd.apache.arrow.stream"
)

// CheckHeaders checks the content-type and schema-version header values of a
// Kafka message ("" when a header is absent) and returns the canonical content
// type, ContentTypeJSON or ContentTypeArrow.
//
// A content type of "" means JSON, so that any producer (kcat included) can
// write documents. Media type parameters are accepted ("application/json;
// charset=utf-8") except a charset other than UTF-8. Any other content type is
// ReasonWrongContentType.
//
// The schema version may be absent for JSON but is required for Arrow; when
// present it must be the integer Version, else ReasonUnknownSchemaVersion.
func CheckHeaders(contentType, schemaVersion string) (string, error) {
	ct, err := canonicalContentType(contentType)
	if err != nil {
		return "", err
	}
	sv := strings.TrimSpace(schemaVersion)
	if sv == "" {
		if ct == ContentTypeArrow {
			return "", errorf(ReasonUnknownSchemaVersion, "schemas: %s payload without a %s header", ct, HeaderSchemaVersion)
		}
		return ct, nil
	}
	v, err := strconv.Atoi(sv)
	if err != nil {
		return "", errorf(ReasonUnknownSchemaVersion, "schemas: %s header %q is not an integer", HeaderSchemaVersion, clip(schemaVersion))
	}
	if v != Version {
		return "", errorf(ReasonUnknownSchemaVersion, "schemas: schema version %d, want %d", v, Version)
	}
	return ct, nil
}

// CheckMessage checks a whole Kafka message before it is decoded: its value
// and its content-type and schema-version header values ("" when absent). It
// returns the canonical content type as CheckHeaders does.
//
// A message without a value (a tombstone, whose value is nil, or an empty
// payload) carries nothing to decode whatever its headers say:
// ReasonEmptyMessage, checked first, so that a headerless tombstone is not
// mistaken for a malformed JSON document or Arrow batch.
func CheckMessage(contentType, schemaVersion string, value []byte) (string, error) {
	if len(value) == 0 {
		return "", errorf(ReasonEmptyMessage, "schemas: message has no value (a tombstone or an empty payload); want a JSON document or an Arrow IPC stream")
	}
	return CheckHeaders(contentType, schemaVersion)
}

func canonicalContentType(contentType string) (string, error) {
	if strings.TrimSpace(contentType) == "" {
		return ContentTypeJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", errorf(ReasonWrongContentType, "schemas: content type %q: %w", clip(contentType), err)
	}
	switch mt {
	case ContentTypeJSON:
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return "", errorf(ReasonWrongContentType, "schemas: content type %q: charset must be utf-8", clip(contentType))
		}
		return ContentTypeJSON, nil
	case ContentTypeArrow:
		return ContentTypeArrow, nil
	}
	return "", errorf(ReasonWrongContentType, "schemas: content type %q, want %s or %s", clip(contentType), ContentTypeJSON, ContentTypeArrow)
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
