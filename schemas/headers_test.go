package schemas

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestCheckHeaders(t *testing.T) {
	tests := []struct {
		ct, sv string
		want   string
		reason Reason
	}{
		{"", "", ContentTypeJSON, ""},
		{"", "1", ContentTypeJSON, ""},
		{"application/json", "", ContentTypeJSON, ""},
		{"Application/JSON; charset=UTF-8", " 1 ", ContentTypeJSON, ""},
		{ContentTypeArrow, "1", ContentTypeArrow, ""},
		{ContentTypeArrow, "", "", ReasonUnknownSchemaVersion},
		{ContentTypeArrow, "2", "", ReasonUnknownSchemaVersion},
		{ContentTypeJSON, "0", "", ReasonUnknownSchemaVersion},
		{ContentTypeJSON, "one", "", ReasonUnknownSchemaVersion},
		{ContentTypeJSON, "1.0", "", ReasonUnknownSchemaVersion},
		{"application/json; charset=latin1", "", "", ReasonWrongContentType},
		{"text/plain", "1", "", ReasonWrongContentType},
		{"application/vnd.apache.arrow.file", "1", "", ReasonWrongContentType},
		{"application/json;;", "", "", ReasonWrongContentType},
		{"text/plain", "2", "", ReasonWrongContentType}, // content type is checked first
	}
	for _, tt := range tests {
		got, err := CheckHeaders(tt.ct, tt.sv)
		if got != tt.want || ReasonOf(err) != tt.reason {
			t.Errorf("CheckHeaders(%q, %q) = %q, %v; want %q, reason %q", tt.ct, tt.sv, got, err, tt.want, tt.reason)
		}
	}
}

// headerSeeds reads testdata/schemas/headers.tsv.
func headerSeeds(tb testing.TB) [][2]string {
	f, err := os.Open(seedFiles(tb, "headers.tsv")[0])
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var seeds [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		ct, sv, _ := strings.Cut(sc.Text(), "\t")
		seeds = append(seeds, [2]string{ct, sv})
	}
	return seeds
}

func FuzzCheckHeaders(f *testing.F) {
	for _, s := range headerSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ct, sv string) {
		got, err := CheckHeaders(ct, sv)
		if err != nil {
			if got != "" {
				t.Fatalf("CheckHeaders(%q, %q) = %q with error %v", ct, sv, got, err)
			}
			if r := ReasonOf(err); r != ReasonWrongContentType && r != ReasonUnknownSchemaVersion {
				t.Fatalf("CheckHeaders(%q, %q): reason %q", ct, sv, r)
			}
			return
		}
		if got != ContentTypeJSON && got != ContentTypeArrow {
			t.Fatalf("CheckHeaders(%q, %q) = %q", ct, sv, got)
		}
		if got == ContentTypeArrow && strings.TrimSpace(sv) == "" {
			t.Fatalf("CheckHeaders(%q, %q): Arrow accepted without a schema version", ct, sv)
		}
		if v := strings.TrimSpace(sv); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n != Version {
				t.Fatalf("CheckHeaders(%q, %q): accepted schema version %q", ct, sv, v)
			}
		}
		// Idempotent on its own output.
		if again, err := CheckHeaders(got, strconv.Itoa(Version)); again != got || err != nil {
			t.Fatalf("CheckHeaders(%q, %q) = %q, %v", got, "1", again, err)
		}
	})
}
