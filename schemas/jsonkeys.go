package schemas

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// Metadata JSON is snake_case throughout. Settings structs written before
// that (checkpoint "config" and "opt", router "fit" and "route") had their
// Go field names as keys; their UnmarshalJSON methods read both through
// SnakeCaseKeys.

// SnakeCase returns the snake_case form of a Go identifier: "WarmupSteps"
// is "warmup_steps", "MinLR" "min_lr", "LR" "lr", "Beta1" "beta1".
func SnakeCase(name string) string {
	rs := []rune(name)
	var b []rune
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			nextLower := i > 0 && i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsLower(rs[i+1])
			if prevLower || nextLower {
				b = append(b, '_')
			}
			r = unicode.ToLower(r)
		}
		b = append(b, r)
	}
	return string(b)
}

// SnakeCaseKeys returns the JSON object obj with every top-level key that
// has an upper-case letter renamed to its SnakeCase form (a key already in
// snake_case wins over a renamed one). Anything but an object is returned
// as it is.
func SnakeCaseKeys(obj []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(obj, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return obj, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	renamed := false
	for k, v := range m {
		if !hasUpper(k) {
			continue
		}
		renamed = true
		delete(m, k)
		if s := SnakeCase(k); m[s] == nil {
			m[s] = v
		}
	}
	if !renamed {
		return obj, nil
	}
	return json.Marshal(m)
}

func hasUpper(s string) bool {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if unicode.IsUpper(r) {
			return true
		}
		s = s[n:]
	}
	return false
}
