package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestVersionStamp checks that the values `make build` stamps with -ldflags
// reach `pipeline version`, and that an unstamped build says how to get a
// revision instead of a bare (devel).
func TestVersionStamp(t *testing.T) {
	set := func(v, rev, tm, mod string) {
		ldVersion, ldRevision, ldTime, ldModified = v, rev, tm, mod
	}
	t.Cleanup(func() { set("", "", "", "") })
	for _, tc := range []struct {
		name                 string
		version, rev, tm, md string
		want                 []string
	}{
		{"stamped", "v1.2.0-3-gabc1234-dirty", "abc1234def", "2026-01-02T03:04:05Z", "true",
			[]string{"pipeline v1.2.0-3-gabc1234-dirty (", "revision abc1234def+dirty of 2026-01-02T03:04:05Z"}},
		{"clean", "abc1234", "abc1234def", "2026-01-02T03:04:05Z", "",
			[]string{"pipeline abc1234 (", "revision abc1234def of 2026-01-02T03:04:05Z)"}},
	} {
		set(tc.version, tc.rev, tc.tm, tc.md)
		out := mustCLI(t, "version").stdout
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: version = %q, want it to contain %q", tc.name, out, w)
			}
		}
		var v versionInfo
		decodeOne(t, mustCLI(t, "version", "--json").stdout, &v)
		if v.Version != tc.version || v.Revision != tc.rev || v.Time != tc.tm || v.Modified != (tc.md == "true") {
			t.Errorf("%s: version --json = %+v", tc.name, v)
		}
	}
	set("", "", "", "")
	// A test binary carries no VCS stamp: the line says how to get one.
	if out := mustCLI(t, "version").stdout; buildVersion().Revision == "" && !strings.Contains(out, "make build") {
		t.Errorf("unstamped version = %q, want a hint at make build", out)
	}
}

// TestFlagDefaultsPrintShort checks that no flag of any command shows a
// default with float32 noise (--lr printed 0.0010000000474974513).
func TestFlagDefaultsPrintShort(t *testing.T) {
	root := newApp(nil, nil, nil).rootCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() != "float64" && f.Value.Type() != "float32" {
				return
			}
			x, err := strconv.ParseFloat(f.DefValue, 64)
			if err != nil {
				return
			}
			if short := strconv.FormatFloat(x, 'g', 8, 64); len(f.DefValue) > len(short) {
				t.Errorf("%s --%s: default prints as %s, want at most 8 significant digits", c.CommandPath(), f.Name, f.DefValue)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
