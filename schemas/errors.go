package schemas

import (
	"errors"
	"fmt"
)

// Reason says why a payload or row was dead-lettered. Its text goes into a
// Kafka header verbatim, so the values are part of the wire contract.
type Reason string

// Reasons, one per kind of bad input. ReasonProcessing covers everything that
// is not a property of the input itself.
const (
	ReasonMalformedJSON        Reason = "malformed-json"
	ReasonMalformedArrow       Reason = "malformed-arrow"
	ReasonInvalidUTF8          Reason = "invalid-utf8"
	ReasonEmptyText            Reason = "empty-text"
	ReasonOversize             Reason = "oversize"
	ReasonUnknownSchemaVersion Reason = "unknown-schema-version"
	ReasonWrongContentType     Reason = "wrong-content-type"
	ReasonWrongSchema          Reason = "wrong-schema"     // Arrow payload of another kind, or missing columns
	ReasonEmptyMessage         Reason = "empty-message"    // no value at all: a tombstone (nil value) or an empty payload
	ReasonProcessing           Reason = "processing-error" // anything else

	// ReasonInvalidID: an id longer than Limits.MaxIDBytes, or one whose
	// JSON string holds a lone UTF-16 surrogate escape ("\ud800"), which
	// would decode to U+FFFD and so make distinct ids equal.
	ReasonInvalidID Reason = "invalid-id"
	// ReasonTruncatedInput: an input file ends inside a record (a truncated
	// gzip stream); the records before it were read. See IncompleteError.
	ReasonTruncatedInput Reason = "truncated-input"
	// ReasonUnreadableFile: an input file, or the rest of one, cannot be
	// read: an I/O error, a file that cannot be opened (permissions, a
	// symlink loop), a corrupt gzip stream or trailing garbage after one, a
	// corrupt Parquet file. See IncompleteError.
	ReasonUnreadableFile Reason = "unreadable-file"
)

// DecodeError is the error of every decoder in this package when the input
// itself is bad. Reason classifies it; Err says what exactly was wrong.
type DecodeError struct {
	Reason Reason
	Err    error
}

// Error returns "<reason>: <detail>".
func (e *DecodeError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// ReasonOf classifies err: the Reason of the first DecodeError in its chain,
// "" for nil, and ReasonProcessing for any other error.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ReasonProcessing
}

// errorf returns a *DecodeError with reason r and a formatted cause.
func errorf(r Reason, format string, args ...any) error {
	return &DecodeError{Reason: r, Err: fmt.Errorf(format, args...)}
}
