package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// renameMembers rewrites the JSON object line for Limits that name other
// fields (Limits.TextField, IDField): the member named by TextField becomes
// "text", the one named by IDField "id", and members named "text" or "id"
// that are not them become "input_text" and "input_id". Member order and
// values are kept byte for byte. A line without the named text member, or
// without a named id member (when IDField is set), is an error
// (ReasonMalformedJSON) that lists the members it has.
func renameMembers(line []byte, lim Limits) ([]byte, error) {
	textField, idField := lim.textField(), lim.idField()
	dec := json.NewDecoder(bytes.NewReader(line))
	malformed := func(err error) error {
		return &DecodeError{Reason: ReasonMalformedJSON, Err: fmt.Errorf("schemas: json: %w", err)}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if err == nil {
			err = errors.New("not an object")
		}
		return nil, malformed(err)
	}
	out := make([]byte, 0, len(line)+16)
	out = append(out, '{')
	var names []string
	var haveText, haveID bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed(err)
		}
		names = append(names, key)
		switch key {
		case textField:
			key, haveText = ColText, true
		case idField:
			key, haveID = ColID, true
		default:
			key = inputMetaName(key)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendJSONString(out, key)
		out = append(out, ':')
		out = append(out, v...)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		if err == nil {
			err = errors.New("object not closed")
		}
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(errors.New("data after the object"))
	}
	switch {
	case !haveText:
		return nil, malformed(fmt.Errorf("object has no %q member for the text (members: %s)%s", textField, strings.Join(names, ", "), fieldHint("--text-field")))
	case !haveID && idField != ColID:
		return nil, malformed(fmt.Errorf("object has no %q member for the id (members: %s)%s", idField, strings.Join(names, ", "), fieldHint("--id-field")))
	}
	return append(out, '}'), nil
}
