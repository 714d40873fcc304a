package pipeline

import (
	"strings"
	"testing"
)

func TestParseDomainTopic(t *testing.T) {
	tests := []struct {
		name string
		d    int
		ok   bool
	}{
		{"docs.domain.0", 0, true},
		{"docs.domain.7", 7, true},
		{"docs.domain.123", 123, true},
		{"docs.domain.007", 0, false},
		{"docs.domain.00", 0, false},
		{"docs.domain.-1", 0, false},
		{"docs.domain.-0", 0, false},
		{"docs.domain.+7", 0, false},
		{"docs.domain. 7", 0, false},
		{"docs.domain.7 ", 0, false},
		{"docs.domain.", 0, false},
		{"docs.domain.x", 0, false},
		{"docs.domain.1e3", 0, false},
		{"docs.domain.99999999999999999999", 0, false},
		{"docs.domain.٣", 0, false}, // an Arabic-Indic digit
		{"docs.raw", 0, false},
		{"xdocs.domain.7", 0, false},
	}
	for _, tt := range tests {
		d, ok := ParseDomainTopic(tt.name)
		if d != tt.d || ok != tt.ok {
			t.Errorf("ParseDomainTopic(%q) = %d, %v; want %d, %v", tt.name, d, ok, tt.d, tt.ok)
		}
	}
}

// FuzzParseDomainTopic: a parsed topic is exactly the name of its domain.
func FuzzParseDomainTopic(f *testing.F) {
	for _, s := range []string{"docs.domain.0", "docs.domain.007", "docs.domain.-1", "docs.domain.+3", "docs.raw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		d, ok := ParseDomainTopic(name)
		if ok && (d < 0 || DomainTopic(d) != name) {
			t.Fatalf("ParseDomainTopic(%q) = %d, true; DomainTopic(%d) = %q", name, d, d, DomainTopic(d))
		}
		if !ok && d != 0 {
			t.Fatalf("ParseDomainTopic(%q) = %d, false; want 0", name, d)
		}
		if rest, found := strings.CutPrefix(name, DomainTopicPrefix); found && !ok {
			for _, c := range rest {
				if c < '0' || c > '9' {
					return
				}
			}
			if rest != "" && rest[0] != '0' && len(rest) < 18 {
				t.Fatalf("ParseDomainTopic(%q) rejects a canonical id", name)
			}
		}
	})
}
