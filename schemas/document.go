package schemas

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// DefaultMaxTextBytes is the largest document text, in bytes, that Limits
// accepts by default.
const DefaultMaxTextBytes = 1 << 20

// DefaultMaxIDBytes is the longest document id, in bytes, that Limits
// accepts by default: 1 KiB, the key limit of S3 and of MongoDB indexes
// (Elasticsearch allows 512 bytes). It holds any UUID, hash, path or
// ordinary URL, while an id, which is a Kafka key and is copied into every
// routed row, cannot carry megabytes.
const DefaultMaxIDBytes = 1 << 10

// Limits bounds the documents a decoder accepts and, for input files, names
// the fields that hold them. The zero value means the defaults.
type Limits struct {
	// MaxTextBytes is the largest len(Document.Text) accepted; larger texts
	// are ReasonOversize. Default DefaultMaxTextBytes.
	MaxTextBytes int
	// MaxIDBytes is the largest len(Document.ID) accepted; longer ids are
	// ReasonInvalidID. Default DefaultMaxIDBytes.
	MaxIDBytes int
	// TextField and IDField name the column (Parquet) or member (JSON
	// lines) of an input file that holds a document's text and id, for
	// files whose fields have other names ("body", "doc_id"). Every other
	// field goes to Meta as usual; an input field that is named "text" or
	// "id" but not chosen goes to Meta as "input_text" or "input_id" (Meta
	// holds no id or text member). They apply to input files (OpenInput,
	// NewLineReader), not to messages (DecodeJSON). Default "text" and "id".
	TextField, IDField string
	// TypedExtras gives the typed columns of Parquet inputs as typed extra
	// columns (InputRecord.Extra, described by TypedInput.ExtraFields)
	// instead of Meta members; see "Typed extra columns of input files".
	// Default false: every other field goes to Meta.
	TypedExtras bool
}

func (l Limits) textField() string {
	if l.TextField == "" {
		return ColText
	}
	return l.TextField
}

func (l Limits) idField() string {
	if l.IDField == "" {
		return ColID
	}
	return l.IDField
}

// renamedFields reports whether l names a text or id field other than the
// defaults.
func (l Limits) renamedFields() bool {
	return l.textField() != ColText || l.idField() != ColID
}

// inputMetaName is the Meta member name of the input field name, which is
// not the chosen text or id field: "input_text" and "input_id" for fields
// named text and id, name for any other.
func inputMetaName(name string) string {
	switch name {
	case ColText:
		return "input_text"
	case ColID:
		return "input_id"
	}
	return name
}

func (l Limits) maxTextBytes() int {
	if l.MaxTextBytes <= 0 {
		return DefaultMaxTextBytes
	}
	return l.MaxTextBytes
}

func (l Limits) maxIDBytes() int {
	if l.MaxIDBytes <= 0 {
		return DefaultMaxIDBytes
	}
	return l.MaxIDBytes
}

// Origin says where a row came from: the raw topic, partition and offset of
// the Kafka message, and the row's index inside that message (0 for JSON).
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
	Row       int32
}

// Document is one input document.
type Document struct {
	// ID identifies the document. It may be "" when the input had none; the
	// caller then generates one.
	ID string
	// Text is the document's UTF-8 text.
	Text string
	// Meta holds every other field of the input object as compact JSON object
	// text, or nil when there were none.
	Meta json.RawMessage
}

// ValidateDocument checks d against lim. Its error is a *DecodeError:
// ReasonInvalidUTF8 when ID, Text or Meta is not valid UTF-8,
// ReasonInvalidID when len(ID) is above the limit, ReasonOversize when
// len(Text) is above the limit, and ReasonEmptyText when Text is empty or
// only white space.
func ValidateDocument(d Document, lim Limits) error {
	switch {
	case !utf8.ValidString(d.ID):
		return errorf(ReasonInvalidUTF8, "schemas: document id is not valid UTF-8")
	case len(d.ID) > lim.maxIDBytes():
		return errorf(ReasonInvalidID, "schemas: document id of %d bytes starting %q: limit %d", len(d.ID), clip(d.ID), lim.maxIDBytes())
	case !utf8.ValidString(d.Text):
		return errorf(ReasonInvalidUTF8, "schemas: document %q: text is not valid UTF-8", clip(d.ID))
	case !utf8.Valid(d.Meta):
		return errorf(ReasonInvalidUTF8, "schemas: document %q: meta is not valid UTF-8", clip(d.ID))
	}
	if max := lim.maxTextBytes(); len(d.Text) > max {
		return errorf(ReasonOversize, "schemas: document %q: text is %d bytes, limit %d", clip(d.ID), len(d.Text), max)
	}
	if isBlank(d.Text) {
		return errorf(ReasonEmptyText, "schemas: document %q: text is empty", clip(d.ID))
	}
	return nil
}

// isBlank reports whether s holds only Unicode white space.
func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.TrimSpace(s[i:]) == ""
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f' {
			return false
		}
	}
	return true
}
