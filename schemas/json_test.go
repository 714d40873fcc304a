package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Document
		reason  Reason
	}{
		{name: "string id", payload: `{"id":"doc-1","text":"hello"}`, want: Document{ID: "doc-1", Text: "hello"}},
		{name: "integer id", payload: `{"id": 12345, "text": "t"}`, want: Document{ID: "12345", Text: "t"}},
		{name: "number id kept literal", payload: `{"id":-1.50e+3,"text":"t"}`, want: Document{ID: "-1.50e+3", Text: "t"}},
		{name: "big integer id kept exact", payload: `{"id":123456789012345678901234567890,"text":"t"}`, want: Document{ID: "123456789012345678901234567890", Text: "t"}},
		{name: "missing id", payload: `{"text":"t"}`, want: Document{Text: "t"}},
		{name: "null id", payload: `{"id":null,"text":"t"}`, want: Document{Text: "t"}},
		{name: "escaped id", payload: `{"id":"a\"b\\c","text":"t"}`, want: Document{ID: `a"b\c`, Text: "t"}},
		{name: "escaped keys", payload: `{"\u0069d":"k","te\u0078t":"t"}`, want: Document{ID: "k", Text: "t"}},
		{name: "text before id", payload: ` { "text" : "t" , "id" : "x" } `, want: Document{ID: "x", Text: "t"}},
		{name: "latin escape", payload: `{"text":"caf\u00e9"}`, want: Document{Text: "café"}},
		{name: "surrogate pair", payload: `{"text":"\ud83d\ude00!"}`, want: Document{Text: "😀!"}},
		{name: "uppercase hex", payload: `{"text":"\uD83D\uDE00"}`, want: Document{Text: "😀"}},
		{name: "lone high surrogate", payload: `{"text":"\ud800x"}`, want: Document{Text: "\uFFFDx"}},
		{name: "lone low surrogate", payload: `{"text":"\udc00x"}`, want: Document{Text: "\uFFFDx"}},
		{name: "high then non-low", payload: `{"text":"\ud800\u0041"}`, want: Document{Text: "\uFFFDA"}},
		{name: "two highs", payload: `{"text":"\ud83d\ud83d\ude00"}`, want: Document{Text: "\uFFFD😀"}},
		{name: "simple escapes", payload: `{"text":"a\tb\nc\r\"\\\/\b\f"}`, want: Document{Text: "a\tb\nc\r\"\\/\b\f"}},
		{name: "raw unicode", payload: `{"text":"déjà 日本 😀"}`, want: Document{Text: "déjà 日本 😀"}},
		{name: "nul escape", payload: `{"text":"a\u0000b"}`, want: Document{Text: "a\x00b"}},
		{name: "meta byte-exact", payload: `{"id":"m","text":"t","n":1.50e+3,"s":"\u00e9\n","b":true,"z":null}`,
			want: Document{ID: "m", Text: "t", Meta: json.RawMessage(`{"n":1.50e+3,"s":"\u00e9\n","b":true,"z":null}`)}},
		{name: "meta nested and compacted", payload: "{\"a\" : { \"b\" : [ 1 , {\"c\":\" x y \"} ] },\n\"text\":\"t\", \"d\":[ ]}",
			want: Document{Text: "t", Meta: json.RawMessage(`{"a":{"b":[1,{"c":" x y "}]},"d":[]}`)}},
		{name: "meta key escapes kept", payload: `{"k\u00e9y":{},"text":"t"}`, want: Document{Text: "t", Meta: json.RawMessage(`{"k\u00e9y":{}}`)}},
		{name: "meta member named meta", payload: `{"text":"t","meta":{"x":1}}`, want: Document{Text: "t", Meta: json.RawMessage(`{"meta":{"x":1}}`)}},
		{name: "meta duplicate keys kept", payload: `{"text":"t","a":1,"a":2}`, want: Document{Text: "t", Meta: json.RawMessage(`{"a":1,"a":2}`)}},

		{name: "invalid utf8 in text", payload: "{\"text\":\"caf\xc3\x28\"}", reason: ReasonInvalidUTF8},
		{name: "invalid utf8 in meta", payload: "{\"text\":\"t\",\"x\":\"\xff\"}", reason: ReasonInvalidUTF8},
		{name: "invalid utf8 outside strings", payload: "{\"text\":\"t\"}\xff", reason: ReasonInvalidUTF8},
		{name: "empty payload", payload: ``, reason: ReasonMalformedJSON},
		{name: "only spaces", payload: "  \n", reason: ReasonMalformedJSON},
		{name: "array", payload: `["text"]`, reason: ReasonMalformedJSON},
		{name: "string", payload: `"text"`, reason: ReasonMalformedJSON},
		{name: "unterminated", payload: `{"text":"t"`, reason: ReasonMalformedJSON},
		{name: "unterminated string", payload: `{"text":"t`, reason: ReasonMalformedJSON},
		{name: "trailing comma", payload: `{"text":"t",}`, reason: ReasonMalformedJSON},
		{name: "missing colon", payload: `{"text" "t"}`, reason: ReasonMalformedJSON},
		{name: "single quotes", payload: `{'text':'t'}`, reason: ReasonMalformedJSON},
		{name: "two objects", payload: `{"text":"a"}{"text":"b"}`, reason: ReasonMalformedJSON},
		{name: "raw newline in string", payload: "{\"text\":\"a\nb\"}", reason: ReasonMalformedJSON},
		{name: "bad escape", payload: `{"text":"\x41"}`, reason: ReasonMalformedJSON},
		{name: "short unicode escape", payload: `{"text":"\u12"}`, reason: ReasonMalformedJSON},
		{name: "bad meta value", payload: `{"text":"t","x":tru}`, reason: ReasonMalformedJSON},
		{name: "bad meta number", payload: `{"text":"t","x":01}`, reason: ReasonMalformedJSON},
		{name: "bad meta number 2", payload: `{"text":"t","x":1.}`, reason: ReasonMalformedJSON},
		{name: "unclosed meta array", payload: `{"text":"t","x":[1,2}`, reason: ReasonMalformedJSON},
		{name: "missing text", payload: `{"id":"x"}`, reason: ReasonMalformedJSON},
		{name: "text number", payload: `{"text":42}`, reason: ReasonMalformedJSON},
		{name: "text null", payload: `{"text":null}`, reason: ReasonMalformedJSON},
		{name: "id bool", payload: `{"id":true,"text":"t"}`, reason: ReasonMalformedJSON},
		{name: "id object", payload: `{"id":{},"text":"t"}`, reason: ReasonMalformedJSON},
		{name: "duplicate text", payload: `{"text":"a","text":"b"}`, reason: ReasonMalformedJSON},
		{name: "duplicate id", payload: `{"id":1,"text":"a","id":2}`, reason: ReasonMalformedJSON},
		{name: "empty text", payload: `{"text":""}`, reason: ReasonEmptyText},
		{name: "blank text", payload: `{"text":" \t\n\u00a0\u2003"}`, reason: ReasonEmptyText},
		{name: "oversize", payload: `{"text":"` + strings.Repeat("x", DefaultMaxTextBytes+1) + `"}`, reason: ReasonOversize},

		// Ids: a lone surrogate escape would decode to U+FFFD and make
		// distinct ids equal; an id over the limit is refused.
		{name: "id lone high surrogate", payload: `{"id":"\ud800","text":"t"}`, reason: ReasonInvalidID},
		{name: "id lone low surrogate", payload: `{"id":"a\udc00b","text":"t"}`, reason: ReasonInvalidID},
		{name: "id high then non-low", payload: `{"id":"\ud800\u0041","text":"t"}`, reason: ReasonInvalidID},
		{name: "id two highs", payload: `{"id":"\ud83d\ud83d\ude00","text":"t"}`, reason: ReasonInvalidID},
		{name: "id lone surrogate without text", payload: `{"id":"\ud800"}`, reason: ReasonInvalidID},
		{name: "id surrogate pair", payload: `{"id":"\ud83d\ude00","text":"t"}`, want: Document{ID: "😀", Text: "t"}},
		{name: "id U+FFFD itself", payload: `{"id":"\ufffd","text":"t"}`, want: Document{ID: "\uFFFD", Text: "t"}},
		{name: "id at the limit", payload: `{"id":"` + strings.Repeat("i", DefaultMaxIDBytes) + `","text":"t"}`,
			want: Document{ID: strings.Repeat("i", DefaultMaxIDBytes), Text: "t"}},
		{name: "id over the limit", payload: `{"id":"` + strings.Repeat("i", DefaultMaxIDBytes+1) + `","text":"t"}`, reason: ReasonInvalidID},
		{name: "number id over the limit", payload: `{"id":` + strings.Repeat("9", DefaultMaxIDBytes+1) + `,"text":"t"}`, reason: ReasonInvalidID},
		{name: "escaped id over the limit", payload: `{"id":"` + strings.Repeat("\u00e9", DefaultMaxIDBytes/2+1) + `","text":"t"}`, reason: ReasonInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(tt.payload), Limits{})
			if r := ReasonOf(err); r != tt.reason {
				t.Fatalf("DecodeJSON(%.80q) error %v, want reason %q", tt.payload, err, tt.reason)
			}
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), string(tt.reason)+": ") {
					t.Errorf("error %q is not a *DecodeError starting with its reason", err)
				}
				return
			}
			if !equalDoc(got, tt.want) {
				t.Errorf("DecodeJSON(%q) = %+v, want %+v", tt.payload, show(got), show(tt.want))
			}
			checkAgainstEncodingJSON(t, []byte(tt.payload), got, nil)
		})
	}
}

func TestDecodeJSONLimits(t *testing.T) {
	payload := []byte(`{"text":"12345"}`)
	for _, tt := range []struct {
		max    int
		reason Reason
	}{{0, ""}, {5, ""}, {4, ReasonOversize}, {-1, ""}} {
		_, err := DecodeJSON(payload, Limits{MaxTextBytes: tt.max})
		if r := ReasonOf(err); r != tt.reason {
			t.Errorf("MaxTextBytes %d: reason %q, want %q", tt.max, r, tt.reason)
		}
	}
	// Oversize counts decoded text bytes, not payload bytes.
	if _, err := DecodeJSON([]byte(`{"text":"\u00e9\u00e9"}`), Limits{MaxTextBytes: 4}); err != nil {
		t.Errorf("4 text bytes written as 12 escaped bytes: %v", err)
	}
	// MaxIDBytes bounds the id in bytes, as MaxTextBytes bounds the text.
	for _, tt := range []struct {
		max    int
		id     string
		reason Reason
	}{{0, strings.Repeat("x", DefaultMaxIDBytes), ""}, {3, "abc", ""}, {3, "abcd", ReasonInvalidID}, {3, "éé", ReasonInvalidID}, {-1, "abcd", ""}} {
		_, err := DecodeJSON([]byte(`{"id":"`+tt.id+`","text":"t"}`), Limits{MaxIDBytes: tt.max})
		if r := ReasonOf(err); r != tt.reason {
			t.Errorf("MaxIDBytes %d, id %q: reason %q, want %q", tt.max, tt.id, r, tt.reason)
		}
		if err := ValidateDocument(Document{ID: tt.id, Text: "t"}, Limits{MaxIDBytes: tt.max}); ReasonOf(err) != tt.reason {
			t.Errorf("ValidateDocument: MaxIDBytes %d, id %q: %v, want reason %q", tt.max, tt.id, err, tt.reason)
		}
	}
	// A validation error still returns what was decoded.
	d, err := DecodeJSON([]byte(`{"id":"keep","text":""}`), Limits{})
	if ReasonOf(err) != ReasonEmptyText || d.ID != "keep" {
		t.Errorf("empty text: got %+v, %v; want the id with the error", d, err)
	}
}

func TestDecodeJSONDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"text":"t","x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
	}
	for _, n := range []int{1, maxJSONDepth - 1, maxJSONDepth, 100000} {
		p := nest(n)
		_, err := DecodeJSON(p, Limits{})
		var v any
		stdErr := json.Unmarshal(p, &v)
		if (err == nil) != (stdErr == nil) {
			t.Errorf("depth %d: DecodeJSON error %v, encoding/json error %v", n, err, stdErr)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  Document
		want string
	}{
		{"plain", Document{ID: "a", Text: "b"}, `{"id":"a","text":"b"}`},
		{"escapes", Document{ID: "q\"", Text: "a\tb\n\x00\x1f\\ é 😀 \u2028"}, `{"id":"q\"","text":"a\tb\n\u0000\u001f\\ é 😀 ` + "\u2028" + `"}`},
		{"meta", Document{ID: "", Text: "t", Meta: json.RawMessage(`{"a":[1, 2],"b":{}}`)}, `{"id":"","text":"t","a":[1,2],"b":{}}`},
		{"empty meta object", Document{Text: "t", Meta: json.RawMessage(` { } `)}, `{"id":"","text":"t"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeJSON(tt.doc)
			if err != nil || string(got) != tt.want {
				t.Fatalf("EncodeJSON(%+v) = %s, %v; want %s", tt.doc, got, err, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("EncodeJSON output %s is not valid JSON", got)
			}
			app, err := AppendJSON([]byte("prefix"), tt.doc)
			if err != nil || string(app) != "prefix"+tt.want {
				t.Errorf("AppendJSON = %s, %v", app, err)
			}
		})
	}
	for _, bad := range []Document{
		{ID: "\xff", Text: "t"},
		{Text: "t\xff"},
		{Text: "t", Meta: json.RawMessage(`[1]`)},
		{Text: "t", Meta: json.RawMessage(`{"id":"x"}`)},
		{Text: "t", Meta: json.RawMessage(`{"text":"x"}`)},
		{Text: "t", Meta: json.RawMessage(`{"a":`)},
		{Text: "t", Meta: json.RawMessage("{\"a\":\"\xff\"}")},
	} {
		if got, err := EncodeJSON(bad); err == nil {
			t.Errorf("EncodeJSON(%+v) = %s, want an error", bad, got)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	docs := []Document{
		{ID: "1", Text: "hello"},
		{ID: "", Text: "no id"},
		{ID: "x y", Text: "multi\nline\ttext with \"quotes\" and \\ and \u0001 and 😀 and \u2028", Meta: json.RawMessage(`{"source":"brown","n":[1,2.5e-3,{"k":null}]}`)},
	}
	for _, d := range docs {
		b, err := EncodeJSON(d)
		if err != nil {
			t.Fatalf("EncodeJSON(%+v): %v", d, err)
		}
		got, err := DecodeJSON(b, Limits{})
		if err != nil || !equalDoc(got, d) {
			t.Errorf("DecodeJSON(EncodeJSON(%+v)) = %+v, %v", show(d), show(got), err)
		}
	}
}

// TestDecodeJSONSeeds decodes every seed file and checks it against
// encoding/json.
func TestDecodeJSONSeeds(t *testing.T) {
	for _, p := range seedFiles(t, "json/*.json") {
		payload, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeJSON(payload, Limits{})
		checkAgainstEncodingJSON(t, payload, d, err)
		t.Logf("%s: %q %v", filepath.Base(p), ReasonOf(err), err)
	}
}

// checkAgainstEncodingJSON checks the result of DecodeJSON(payload) against
// encoding/json, the oracle: a success must agree with it on id, text and the
// other members, and a malformed-json error must be justified by it.
func checkAgainstEncodingJSON(t *testing.T, payload []byte, d Document, err error) {
	t.Helper()
	valid := utf8.Valid(payload) && json.Valid(payload)
	var members map[string]json.RawMessage
	isObject := valid && json.Unmarshal(payload, &members) == nil
	if err == nil {
		if !isObject {
			t.Fatalf("DecodeJSON(%q) succeeded; encoding/json says it is not a valid object", payload)
		}
		var text string
		if json.Unmarshal(members["text"], &text) != nil || text != d.Text {
			t.Fatalf("DecodeJSON(%q).Text = %q, encoding/json says %q", payload, d.Text, text)
		}
		wantID := ""
		if raw, ok := members["id"]; ok && string(raw) != "null" {
			if raw[0] == '"' {
				_ = json.Unmarshal(raw, &wantID)
			} else {
				wantID = string(raw)
			}
		}
		if d.ID != wantID {
			t.Fatalf("DecodeJSON(%q).ID = %q, encoding/json says %q", payload, d.ID, wantID)
		}
		delete(members, "id")
		delete(members, "text")
		var meta map[string]json.RawMessage
		if len(d.Meta) > 0 {
			if e := json.Unmarshal(d.Meta, &meta); e != nil {
				t.Fatalf("DecodeJSON(%q).Meta = %s is not an object: %v", payload, d.Meta, e)
			}
			var buf bytes.Buffer
			if e := json.Compact(&buf, d.Meta); e != nil || buf.String() != string(d.Meta) {
				t.Fatalf("Meta %s is not compact", d.Meta)
			}
		}
		if len(meta) != len(members) {
			t.Fatalf("DecodeJSON(%q).Meta = %s, encoding/json finds other members %v", payload, d.Meta, members)
		}
		for k, v := range members {
			var want bytes.Buffer
			_ = json.Compact(&want, v)
			if string(meta[k]) != want.String() {
				t.Fatalf("DecodeJSON(%q).Meta[%q] = %s, want %s", payload, k, meta[k], want.String())
			}
		}
		return
	}
	switch ReasonOf(err) {
	case ReasonInvalidUTF8:
		if utf8.Valid(payload) && utf8.ValidString(d.Text) {
			t.Fatalf("DecodeJSON(%q): %v, but the payload is valid UTF-8", payload, err)
		}
	case ReasonMalformedJSON:
		if !isObject {
			return
		}
		// encoding/json accepts it: one of our own rules must be broken.
		raw, ok := members["text"]
		if !ok || raw[0] != '"' {
			return
		}
		if id, ok := members["id"]; ok && (id[0] == '{' || id[0] == '[' || id[0] == 't' || id[0] == 'f') {
			return
		}
		if countTopKeys(payload, "id") > 1 || countTopKeys(payload, "text") > 1 {
			return
		}
		t.Fatalf("DecodeJSON(%q): %v, but encoding/json decodes it", payload, err)
	case ReasonEmptyText, ReasonOversize:
		if !isObject {
			t.Fatalf("DecodeJSON(%q): %v, but encoding/json says it is not a valid object", payload, err)
		}
	case ReasonInvalidID:
		// encoding/json decodes it (a lone surrogate as U+FFFD): the id must
		// hold a lone surrogate escape or be over the limit.
		raw := members["id"]
		if !isObject || len(raw) == 0 {
			t.Fatalf("DecodeJSON(%q): %v, but encoding/json finds no id in an object", payload, err)
		}
		if !hasLoneSurrogate(raw) && len(d.ID) <= DefaultMaxIDBytes {
			t.Fatalf("DecodeJSON(%q): %v, but id %s has no lone surrogate escape and is %d bytes", payload, err, raw, len(d.ID))
		}
	default:
		t.Fatalf("DecodeJSON(%q): unexpected error %v", payload, err)
	}
}

// hasLoneSurrogate reports whether the JSON string raw holds a \u escape of
// a UTF-16 surrogate that is not part of a high-low pair.
func hasLoneSurrogate(raw []byte) bool {
	var units []uint16 // the \u escapes of a run of adjacent ones
	check := func() bool {
		for i := 0; i < len(units); i++ {
			switch u := units[i]; {
			case u >= 0xd800 && u < 0xdc00 && i+1 < len(units) && units[i+1] >= 0xdc00 && units[i+1] < 0xe000:
				i++
			case u >= 0xd800 && u < 0xe000:
				return true
			}
		}
		units = units[:0]
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			if check() {
				return true
			}
			continue
		}
		if raw[i+1] == 'u' && i+6 <= len(raw) {
			var u uint16
			for _, c := range raw[i+2 : i+6] {
				u <<= 4
				switch {
				case c >= '0' && c <= '9':
					u |= uint16(c - '0')
				case c >= 'a' && c <= 'f':
					u |= uint16(c - 'a' + 10)
				case c >= 'A' && c <= 'F':
					u |= uint16(c - 'A' + 10)
				}
			}
			units = append(units, u)
			i += 5
			continue
		}
		if check() {
			return true
		}
		i++ // another escape: skip its character
	}
	return check()
}

// countTopKeys counts the members named key of the JSON object in payload.
func countTopKeys(payload []byte, key string) int {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if tok == key {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return n
		}
	}
	return n
}

func equalDoc(a, b Document) bool {
	return a.ID == b.ID && a.Text == b.Text && bytes.Equal(a.Meta, b.Meta)
}

// show makes a Document print its Meta as text.
func show(d Document) any {
	return struct{ ID, Text, Meta string }{d.ID, d.Text, string(d.Meta)}
}

func seedFiles(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "schemas", pattern))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no seed files %s: %v", pattern, err)
	}
	return files
}
