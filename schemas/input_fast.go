package schemas

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// decodeLine is DecodeJSON for one line of a JSON-lines input: the same
// Document and error for every payload. Lines that decode without error and
// whose text has no \u escape take a faster path (one word-at-a-time pass
// over the text, decoding into a buffer that becomes the string without a
// copy); every other line, errors included, goes to DecodeJSON.
func decodeLine(payload []byte, lim Limits) (Document, error) {
	if !utf8.Valid(payload) {
		return DecodeJSON(payload, lim)
	}
	o, ok := decodeObjectFast(payload)
	if !ok || !o.haveText {
		return DecodeJSON(payload, lim)
	}
	d := Document{ID: o.id, Text: o.text, Meta: o.meta}
	// ValidateDocument, less its UTF-8 checks: payload is valid UTF-8, and
	// the text (simple escapes only), the id (decodeObjectFast refuses ids
	// with lone surrogates) and the members of Meta come from it with ASCII
	// substitutions, so they are too. On a failure ValidateDocument gives
	// the error.
	if len(d.ID) > lim.maxIDBytes() || len(d.Text) > lim.maxTextBytes() || isBlank(d.Text) {
		return d, ValidateDocument(d, lim)
	}
	return d, nil
}

// decodeObjectFast is decodeObject (same result on success) with the text
// member read by readTextFast. ok is false on any error, on an id with a lone
// surrogate escape or on a text it does not handle; the caller then uses
// DecodeJSON, which reports the error.
func decodeObjectFast(data []byte) (o object, ok bool) {
	s := scanner{data: data}
	s.skipWS()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return o, false
	}
	s.pos++
	s.skipWS()
	if s.pos < len(data) && data[s.pos] == '}' {
		s.pos++
	} else {
		for {
			if s.pos >= len(data) || data[s.pos] != '"' {
				return o, false
			}
			keyStart := s.pos
			esc, err := s.skipString()
			if err != nil {
				return o, false
			}
			keyRaw := data[keyStart:s.pos]
			s.skipWS()
			if s.pos >= len(data) || data[s.pos] != ':' {
				return o, false
			}
			s.pos++
			s.skipWS()
			switch keyOf(keyRaw, esc) {
			case "id":
				if o.haveID {
					return o, false
				}
				o.haveID = true
				if o.id, o.idLone, err = s.readID(); err != nil || o.idLone {
					return o, false
				}
			case "text":
				if o.haveText || s.pos >= len(data) || data[s.pos] != '"' {
					return o, false
				}
				o.haveText = true
				var end int
				if o.text, end, ok = readTextFast(data, s.pos); !ok {
					return o, false
				}
				s.pos = end
			default:
				valStart := s.pos
				s.ws = false
				if err := s.skipValue(); err != nil {
					return o, false
				}
				o.meta = appendMetaMember(o.meta, keyRaw, data[valStart:s.pos], s.ws)
			}
			s.skipWS()
			if s.pos >= len(data) {
				return o, false
			}
			if data[s.pos] == '}' {
				s.pos++
				break
			}
			if data[s.pos] != ',' {
				return o, false
			}
			s.pos++
			s.skipWS()
		}
	}
	s.skipWS()
	if s.pos != len(data) {
		return o, false
	}
	if o.meta != nil {
		o.meta = append(o.meta, '}')
	}
	return o, true
}

// readTextFast decodes the JSON string at d[pos] (a '"') as readString does,
// returning it and the offset after its closing quote. ok is false for a
// string that is invalid, unterminated or holds a \u escape (left to
// readString, which maps lone surrogates).
func readTextFast(d []byte, pos int) (text string, end int, ok bool) {
	i := pos + 1
	run := i       // start of the bytes not yet copied to buf
	var buf []byte // the decoded text, once an escape was seen
	for {
		i = nextStrSpecial(d, i)
		if i >= len(d) {
			return "", 0, false
		}
		switch c := d[i]; c {
		case '"':
			if buf == nil {
				return string(d[run:i]), i + 1, true
			}
			buf = append(buf, d[run:i]...)
			// buf is never written again: the string takes it over.
			return unsafe.String(unsafe.SliceData(buf), len(buf)), i + 1, true
		case '\\':
			if i+1 >= len(d) {
				return "", 0, false
			}
			var e byte
			switch d[i+1] {
			case '"', '\\', '/':
				e = d[i+1]
			case 'b':
				e = '\b'
			case 'f':
				e = '\f'
			case 'n':
				e = '\n'
			case 'r':
				e = '\r'
			case 't':
				e = '\t'
			default: // \u, or invalid
				return "", 0, false
			}
			if buf == nil {
				// The text is at most the rest of the line.
				buf = make([]byte, 0, len(d)-pos)
			}
			buf = append(buf, d[run:i]...)
			buf = append(buf, e)
			i += 2
			run = i
		default: // a control character
			return "", 0, false
		}
	}
}

// nextStrSpecial returns the offset of the first byte at or after i that is a
// quote, a backslash or a control character (strSpecial), or len(d), testing
// 8 bytes at a time.
func nextStrSpecial(d []byte, i int) int {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	for ; i+8 <= len(d); i += 8 {
		x := binary.LittleEndian.Uint64(d[i:])
		q := x ^ (lo * '"')
		b := x ^ (lo * '\\')
		// A byte's high bit is set where it is zero (q, b) or below 0x20 (x);
		// borrows only reach bytes above a match, so the lowest is exact.
		m := ((q - lo) &^ q) | ((b - lo) &^ b) | ((x - lo*0x20) &^ x)
		if m &= hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(d) && !strSpecial[d[i]] {
		i++
	}
	return i
}
