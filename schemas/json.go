package schemas

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of arrays and objects in a JSON payload,
// the enclosing object included, as encoding/json does.
const maxJSONDepth = 10000

// DecodeJSON decodes one JSON document, the ingress wire format:
//
//	{"id": "doc-1", "text": "…", "any": "other", "fields": [1, 2]}
//
// id may be a string, a number (kept as its literal text, "42" or "1e3"), null
// or missing (both give ""; the caller then generates one). text must be a
// JSON string. A lone UTF-16 surrogate escape ("\ud800" not followed by a low
// surrogate escape, or a lone "\udc00") decodes to U+FFFD in text, as
// encoding/json does, but makes an id invalid: it would collapse distinct ids
// into one. Every other member is kept in Meta as compact JSON object text:
// keys and values byte-exact as they appear in payload, with only the white
// space between tokens removed; Meta is nil when there are none.
//
// Errors are *DecodeError: ReasonInvalidUTF8 when payload is not valid UTF-8
// (checked before parsing, since a JSON decoder would silently replace bad
// bytes); ReasonMalformedJSON when payload is not one JSON object, when id or
// text has the wrong type, text is missing, or id or text appears twice;
// ReasonInvalidID when the id holds a lone surrogate escape; then those of
// ValidateDocument. On a validation error the decoded Document is
// returned along with the error, so that a caller can log its ID.
//
// DecodeJSON makes a single pass over payload and does not decode the other
// members; the returned Document does not alias payload.
func DecodeJSON(payload []byte, lim Limits) (Document, error) {
	if !utf8.Valid(payload) {
		return Document{}, errorf(ReasonInvalidUTF8, "schemas: json payload is not valid UTF-8")
	}
	o, err := decodeObject(payload)
	if err != nil {
		return Document{}, &DecodeError{Reason: ReasonMalformedJSON, Err: fmt.Errorf("schemas: json: %w", err)}
	}
	if o.idLone {
		return Document{ID: o.id, Text: o.text, Meta: o.meta}, errorf(ReasonInvalidID, "schemas: json: id %q holds a lone UTF-16 surrogate escape", clip(o.id))
	}
	if !o.haveText {
		return Document{ID: o.id, Meta: o.meta}, errorf(ReasonMalformedJSON, "schemas: json: object has no text member")
	}
	d := Document{ID: o.id, Text: o.text, Meta: o.meta}
	if err := ValidateDocument(d, lim); err != nil {
		return d, err
	}
	return d, nil
}

// EncodeJSON encodes d in the format DecodeJSON reads:
// {"id":…,"text":…,<members of Meta>}. See AppendJSON.
func EncodeJSON(d Document) ([]byte, error) {
	return AppendJSON(make([]byte, 0, len(d.ID)+len(d.Text)+len(d.Meta)+32), d)
}

// AppendJSON appends the JSON encoding of d to dst, as EncodeJSON does. The ID
// is always written as a JSON string. Meta must be nil, empty or a JSON object
// without "id" or "text" members; its members are written compacted after text.
// ID and Text must be valid UTF-8 (else a *DecodeError with
// ReasonInvalidUTF8). For a Document that DecodeJSON returned,
// DecodeJSON(EncodeJSON(d)) gives d back.
func AppendJSON(dst []byte, d Document) ([]byte, error) {
	if !utf8.ValidString(d.ID) {
		return dst, errorf(ReasonInvalidUTF8, "schemas: encode json: id is not valid UTF-8")
	}
	if !utf8.ValidString(d.Text) {
		return dst, errorf(ReasonInvalidUTF8, "schemas: encode json: document %q: text is not valid UTF-8", clip(d.ID))
	}
	var members []byte
	if len(d.Meta) > 0 {
		if !utf8.Valid(d.Meta) {
			return dst, errorf(ReasonInvalidUTF8, "schemas: encode json: document %q: meta is not valid UTF-8", clip(d.ID))
		}
		o, err := decodeObject(d.Meta)
		if err != nil {
			return dst, fmt.Errorf("schemas: encode json: document %q: meta: %w", clip(d.ID), err)
		}
		if o.haveID || o.haveText {
			return dst, fmt.Errorf("schemas: encode json: document %q: meta has an id or text member", clip(d.ID))
		}
		if len(o.meta) > 2 {
			members = o.meta[1 : len(o.meta)-1]
		}
	}
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, d.ID)
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, d.Text)
	if len(members) > 0 {
		dst = append(dst, ',')
		dst = append(dst, members...)
	}
	return append(dst, '}'), nil
}

// object is what decodeObject found in one JSON object.
type object struct {
	id, text         string
	haveID, haveText bool
	idLone           bool   // the id held a lone surrogate escape
	meta             []byte // compact {...} of the other members, nil when none
}

// decodeObject parses data, which must hold exactly one JSON object (white
// space around it allowed). data must be valid UTF-8.
func decodeObject(data []byte) (object, error) {
	var o object
	s := scanner{data: data}
	s.skipWS()
	if s.pos >= len(data) {
		return o, errors.New("empty payload")
	}
	if data[s.pos] != '{' {
		return o, fmt.Errorf("payload is not an object: starts with %s", s.describe())
	}
	s.pos++
	s.skipWS()
	if s.pos < len(data) && data[s.pos] == '}' {
		s.pos++
	} else {
		for {
			if s.pos >= len(data) || data[s.pos] != '"' {
				return o, s.errExpected("object key")
			}
			keyStart := s.pos
			esc, err := s.skipString()
			if err != nil {
				return o, err
			}
			keyRaw := data[keyStart:s.pos]
			s.skipWS()
			if s.pos >= len(data) || data[s.pos] != ':' {
				return o, s.errExpected("':'")
			}
			s.pos++
			s.skipWS()
			switch keyOf(keyRaw, esc) {
			case "id":
				if o.haveID {
					return o, errors.New(`duplicate "id" member`)
				}
				o.haveID = true
				if o.id, o.idLone, err = s.readID(); err != nil {
					return o, err
				}
			case "text":
				if o.haveText {
					return o, errors.New(`duplicate "text" member`)
				}
				o.haveText = true
				if s.pos >= len(data) || data[s.pos] != '"' {
					return o, fmt.Errorf("text is not a string: found %s", s.describe())
				}
				if o.text, err = s.readString(); err != nil {
					return o, err
				}
			default:
				valStart := s.pos
				s.ws = false
				if err := s.skipValue(); err != nil {
					return o, err
				}
				o.meta = appendMetaMember(o.meta, keyRaw, data[valStart:s.pos], s.ws)
			}
			s.skipWS()
			if s.pos >= len(data) {
				return o, s.errExpected("',' or '}'")
			}
			if data[s.pos] == '}' {
				s.pos++
				break
			}
			if data[s.pos] != ',' {
				return o, s.errExpected("',' or '}'")
			}
			s.pos++
			s.skipWS()
		}
	}
	s.skipWS()
	if s.pos != len(data) {
		return o, fmt.Errorf("data after the object at offset %d", s.pos)
	}
	if o.meta != nil {
		o.meta = append(o.meta, '}')
	}
	return o, nil
}

// keyOf returns the decoded key when it may be "id" or "text", and "" when it
// cannot be either. raw includes the quotes.
func keyOf(raw []byte, esc bool) string {
	if !esc {
		switch string(raw[1 : len(raw)-1]) {
		case "id":
			return "id"
		case "text":
			return "text"
		}
		return ""
	}
	if len(raw) > 2+6*4 { // "text" fully escaped is 24 bytes
		return ""
	}
	s := scanner{data: raw}
	k, err := s.readString()
	if err != nil {
		return ""
	}
	return k
}

// scanner walks a JSON text that is known to be valid UTF-8.
type scanner struct {
	data  []byte
	pos   int
	ws    bool   // white space was skipped (reset by the caller)
	stack []byte // open containers in skipValue: '{' or '['
}

// strSpecial marks the bytes that end the fast path inside a string: the
// quote, the backslash and control characters (invalid unescaped).
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
			s.ws = true
		default:
			return
		}
	}
}

// describe names the byte at s.pos for an error message.
func (s *scanner) describe() string {
	if s.pos >= len(s.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(s.data[s.pos:])
	return fmt.Sprintf("%q at offset %d", r, s.pos)
}

func (s *scanner) errExpected(what string) error {
	return fmt.Errorf("expected %s, found %s", what, s.describe())
}

// skipString moves past the string that starts at s.pos (a '"'), checking its
// escapes. It reports whether the string holds any escape.
func (s *scanner) skipString() (esc bool, err error) {
	d := s.data
	i := s.pos + 1
	for {
		for i < len(d) && !strSpecial[d[i]] {
			i++
		}
		if i >= len(d) {
			s.pos = i
			return esc, errors.New("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			n, err := escapeLen(d, i)
			if err != nil {
				s.pos = i
				return esc, err
			}
			i += n
		default:
			s.pos = i
			return esc, fmt.Errorf("control character %#x in string at offset %d", c, i)
		}
	}
}

// escapeLen checks the escape sequence at d[i] (a '\\') and returns its length.
func escapeLen(d []byte, i int) (int, error) {
	if i+1 >= len(d) {
		return 0, errors.New("unterminated string")
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if i+6 > len(d) {
			return 0, errors.New("unterminated string")
		}
		if _, ok := hex4(d[i+2 : i+6]); !ok {
			return 0, fmt.Errorf("invalid \\u escape at offset %d", i)
		}
		return 6, nil
	}
	return 0, fmt.Errorf("invalid escape '\\%c' at offset %d", d[i+1], i)
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// readString decodes the string that starts at s.pos (a '"'). Lone UTF-16
// surrogates decode to U+FFFD, as encoding/json does.
func (s *scanner) readString() (string, error) {
	str, _, err := s.readStringLone()
	return str, err
}

// readStringLone is readString that also reports whether the string held a
// lone surrogate escape (decoded to U+FFFD).
func (s *scanner) readStringLone() (str string, lone bool, err error) {
	d := s.data
	start := s.pos + 1
	i := start
	for i < len(d) && !strSpecial[d[i]] {
		i++
	}
	if i < len(d) && d[i] == '"' {
		s.pos = i + 1
		return string(d[start:i]), false, nil
	}
	// Slow path: escapes (or an error).
	end := s.pos
	if _, err := s.skipString(); err != nil {
		return "", false, err
	}
	end, s.pos = s.pos, end // validated; now decode d[start:end-1]
	buf := make([]byte, 0, end-1-start)
	buf = append(buf, d[start:i]...)
	for i < end-1 {
		c := d[i]
		if c != '\\' {
			j := i + 1
			for j < end-1 && d[j] != '\\' {
				j++
			}
			buf = append(buf, d[i:j]...)
			i = j
			continue
		}
		switch d[i+1] {
		case '"', '\\', '/':
			buf = append(buf, d[i+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, _ := hex4(d[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && i+6 <= end-1 && d[i] == '\\' && d[i+1] == 'u' {
					if r2, ok := hex4(d[i+2 : i+6]); ok {
						if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
							buf = utf8.AppendRune(buf, c)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
				lone = true
			}
			buf = utf8.AppendRune(buf, r)
			continue
		}
		i += 2
	}
	s.pos = end
	return string(buf), lone, nil
}

// readID reads the id member's value: a string, a number (its literal text) or
// null (""). lone reports a string that held a lone surrogate escape.
func (s *scanner) readID() (id string, lone bool, err error) {
	if s.pos >= len(s.data) {
		return "", false, s.errExpected("id value")
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		return s.readStringLone()
	case c == '-' || ('0' <= c && c <= '9'):
		start := s.pos
		if err := s.skipNumber(); err != nil {
			return "", false, err
		}
		return string(s.data[start:s.pos]), false, nil
	case c == 'n':
		return "", false, s.skipLiteral("null")
	}
	return "", false, fmt.Errorf("id is not a string or a number: found %s", s.describe())
}

func (s *scanner) skipLiteral(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return fmt.Errorf("invalid literal at offset %d", s.pos)
	}
	s.pos += len(lit)
	return nil
}

// skipNumber moves past a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() error {
	d, i := s.data, s.pos
	digits := func() bool {
		j := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return fmt.Errorf("invalid number at offset %d", s.pos)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return fmt.Errorf("invalid number at offset %d", s.pos)
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return fmt.Errorf("invalid number at offset %d", s.pos)
		}
	}
	s.pos = i
	return nil
}

// skipValue moves past the JSON value at s.pos, checking its syntax. It does
// not recurse, so deep nesting cannot exhaust the stack.
func (s *scanner) skipValue() error {
	d := s.data
	s.stack = s.stack[:0]
	for {
		// A value starts at s.pos (after white space).
		s.skipWS()
		if s.pos >= len(d) {
			return s.errExpected("value")
		}
		switch c := d[s.pos]; {
		case c == '{' || c == '[':
			if len(s.stack) >= maxJSONDepth-1 { // the enclosing object counts as one level
				return fmt.Errorf("nesting deeper than %d at offset %d", maxJSONDepth, s.pos)
			}
			s.pos++
			s.skipWS()
			if s.pos < len(d) && d[s.pos] == c+2 { // '{'+2 == '}', '['+2 == ']'
				s.pos++
				break
			}
			s.stack = append(s.stack, c)
			if c == '{' {
				if err := s.objectKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, err := s.skipString(); err != nil {
				return err
			}
		case c == 't':
			if err := s.skipLiteral("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := s.skipLiteral("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := s.skipLiteral("null"); err != nil {
				return err
			}
		case c == '-' || ('0' <= c && c <= '9'):
			if err := s.skipNumber(); err != nil {
				return err
			}
		default:
			return s.errExpected("value")
		}
		// A value ended: close containers until one continues with ','.
		for {
			if len(s.stack) == 0 {
				return nil
			}
			s.skipWS()
			if s.pos >= len(d) {
				return s.errExpected("',' or a closing bracket")
			}
			top := s.stack[len(s.stack)-1]
			c := d[s.pos]
			if c == ',' {
				s.pos++
				if top == '{' {
					s.skipWS()
					if err := s.objectKey(); err != nil {
						return err
					}
				}
				break
			}
			if c != top+2 {
				return s.errExpected("',' or a closing bracket")
			}
			s.pos++
			s.stack = s.stack[:len(s.stack)-1]
		}
	}
}

// objectKey moves past `"key" :` inside an object.
func (s *scanner) objectKey() error {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return s.errExpected("object key")
	}
	if _, err := s.skipString(); err != nil {
		return err
	}
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return s.errExpected("':'")
	}
	s.pos++
	return nil
}

// appendCompact appends the valid JSON value v to dst without the white space
// between its tokens.
func appendCompact(dst, v []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, v[start:i]...)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}

// jsonEscape marks the bytes that appendJSONString escapes.
var jsonEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// appendJSONString appends s, valid UTF-8, as a JSON string. Only the quote,
// the backslash and control characters are escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !jsonEscape[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendMetaMember appends the member key:value to meta, the JSON object of
// a document's other fields (started at the first member, left open);
// a value that held whitespace (ws) is compacted.
func appendMetaMember(meta, key, value []byte, ws bool) []byte {
	if meta == nil {
		meta = make([]byte, 0, len(key)+len(value)+8)
		meta = append(meta, '{')
	} else {
		meta = append(meta, ',')
	}
	meta = append(meta, key...)
	meta = append(meta, ':')
	if ws {
		return appendCompact(meta, value)
	}
	return append(meta, value...)
}
