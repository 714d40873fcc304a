package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// checkpointPath is how an example names a checkpoint: under
// OUT/experts/<name>/, as train writes them (step-NNNNNN).
var checkpointPath = regexp.MustCompile(`experts/[^/ ]+/step-\d{6}\.(arrow|parquet)\b`)

// TestHelpExamplesParse: every command line in every command's help
// Examples names a command that exists, with flags it has and values they
// take, and positional arguments it accepts; a checkpoint it names is where
// train writes them.
func TestHelpExamplesParse(t *testing.T) {
	t.Parallel()
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			return
		}
		cmds = append(cmds, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}).rootCmd())
	lines := 0
	for _, c := range cmds {
		for _, line := range strings.Split(c.Example, "\n") {
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			if strings.Contains(line, "step-") && !checkpointPath.MatchString(line) {
				t.Errorf("%s example %q: a checkpoint is OUT/experts/<name>/step-NNNNNN.arrow or .parquet", c.CommandPath(), line)
			}
			// Each `pipeline ...` of the line (after && or |).
			for _, seg := range regexp.MustCompile(`&&|\|`).Split(line, -1) {
				f := strings.Fields(seg)
				if len(f) == 0 || f[0] != "pipeline" {
					continue
				}
				args := f[1:]
				if n := len(args); n > 0 && args[n-1] == "&" {
					args = args[:n-1]
				}
				lines++
				fresh := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}).rootCmd()
				ec, rest, err := fresh.Find(args)
				if err != nil {
					t.Errorf("%s example %q: %v", c.CommandPath(), seg, err)
					continue
				}
				if err := ec.ParseFlags(rest); err != nil {
					t.Errorf("%s example %q: %v", c.CommandPath(), seg, err)
					continue
				}
				if err := ec.ValidateArgs(ec.Flags().Args()); err != nil {
					t.Errorf("%s example %q: %v", c.CommandPath(), seg, err)
				}
			}
		}
	}
	if lines < 50 {
		t.Errorf("checked %d example command lines, want at least 50", lines)
	}
}

// TestDemoCorpusHint: outside the repository root (the tests run in
// cmd/pipeline), the commands that default to the demo corpus say to give
// their input flag instead of failing to open testdata/....
func TestDemoCorpusHint(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"run", "--out", t.TempDir()}, "--input"},
		{[]string{"bench", "train", "--expert", "tiny", "--steps", "1"}, "--in"},
		{[]string{"bench", "featurize", "--runs", "1"}, "--in"},
	} {
		r := cli(t, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, "give "+tt.flag) {
			t.Errorf("pipeline %s outside the repository root: exit %d, stderr %q; want 2 saying to give %s", strings.Join(tt.args, " "), r.code, r.stderr, tt.flag)
		}
	}
}

// TestHelpExitStatuses: `pipeline --help` lists every exit status the
// commands use.
func TestHelpExitStatuses(t *testing.T) {
	t.Parallel()
	out := mustCLI(t, "--help").stdout
	for _, want := range []string{"0 on success or a graceful stop", "1 on an error", "2 on a usage error", strconv.Itoa(exitIncomplete) + " when ingest or\nreplay"} {
		if !strings.Contains(out, want) {
			t.Errorf("pipeline --help does not say %q", want)
		}
	}
}
