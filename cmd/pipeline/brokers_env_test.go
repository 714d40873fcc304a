package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/pipeline/process"
	"github.com/domainflow/domainflow/stages/cluster"
)

// kafkaCommands returns the path of every command that has --brokers.
func kafkaCommands(root *cobra.Command) []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("brokers") != nil {
			out = append(out, strings.TrimPrefix(c.CommandPath(), "pipeline "))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	slices.Sort(out)
	return out
}

// TestBrokersFromEnvironment checks that every command that talks to Kafka
// takes its brokers from $DOMAINFLOW_BROKERS when --brokers is not given,
// and that it exits non-zero, naming the address and where it came from,
// when nothing answers there (issue 16: `pipeline cluster` printed its help
// and exited 0 instead). A command added with --brokers fails this test
// until it is listed here.
func TestBrokersFromEnvironment(t *testing.T) {
	closed := pipetest.ClosedAddr(t)
	t.Setenv(envBrokers, closed)
	dir := t.TempDir()
	fixture := filepath.Join("..", "..", "testdata", "mixed-small.jsonl.gz")
	parquet := filepath.Join("..", "..", "testdata", "schemas", "interop", "pyarrow-snappy.parquet")
	// A router for each command that edits or publishes one.
	router := func(name string) string {
		r := filepath.Join(dir, name)
		mustCLI(t, "cluster", "fit", "--in", fixture, "--k", "2", "--out", r, "--restarts", "1", "--log-level", "warn")
		return r
	}

	// The arguments each command needs to get as far as connecting.
	args := map[string][]string{
		"archive":         {"--out", filepath.Join(dir, "archive")},
		"cluster":         {"--router", filepath.Join(dir, "router2")},
		"domains remove":  {"--router", router("r1"), "--domain", "0"},
		"domains split":   {"--router", router("r2"), "--domain", "0", "--in", fixture},
		"domains publish": {"--router", router("r3")},
		"embed":           {"--state", filepath.Join(dir, "state")},
		"identity":        nil,
		"ingest":          {fixture},
		"inspect":         {"--topic", "docs.raw"},
		"replay":          {parquet},
		"topics create":   {"docs.x"},
		"topics list":     nil,
		"train":           {"--domain", "all", "--out", filepath.Join(dir, "out")},
		// run brings its own broker; only an explicit --brokers replaces it
		// (see its --help), so the environment is not its default.
		"run": nil,
	}
	root := newApp(nil, nil, nil).rootCmd()
	cmds := kafkaCommands(root)
	for _, path := range cmds {
		if _, ok := args[path]; !ok {
			t.Errorf("%q takes --brokers but is not in this test: add it", path)
		}
	}
	for path, extra := range args {
		t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) {
			if !slices.Contains(cmds, path) {
				t.Fatalf("%q has no --brokers flag any more: drop it from this test", path)
			}
			c, _, err := root.Find(strings.Fields(path))
			if err != nil {
				t.Fatal(err)
			}
			def := c.Flags().Lookup("brokers").DefValue
			if path == "run" {
				if strings.Contains(def, closed) {
					t.Fatalf("run --brokers defaults to %s from the environment; it must keep its embedded broker", def)
				}
				return
			}
			if def != "["+closed+"]" {
				t.Errorf("%s --brokers default = %s, want [%s] from $%s", path, def, closed, envBrokers)
			}
			r := cli(t, append(append(strings.Fields(path), extra...), "--log-level", "warn")...)
			if r.code == 0 || !strings.Contains(r.stderr, closed) || !strings.Contains(r.stderr, "$"+envBrokers) {
				t.Errorf("pipeline %s with $%s=%s (nothing listening): exit %d, stderr %q; want non-zero naming the address and $%s",
					path, envBrokers, closed, r.code, r.stderr, envBrokers)
			}
			// An edit that cannot publish saves nothing: a rerun once
			// the broker is back does the same edit.
			if strings.HasPrefix(path, "domains ") {
				if v, err := cluster.LatestRouterVersion(extra[1]); err != nil || v != 1 {
					t.Errorf("pipeline %s with the broker down left router v%d (%v) in %s, want v1", path, v, err, extra[1])
				}
			}
		})
	}
}

// TestKafkaFlagsSource checks where the brokers come from.
func TestKafkaFlagsSource(t *testing.T) {
	for _, tc := range []struct {
		env     string
		args    []string
		want    string
		brokers string
	}{
		{"", nil, process.FromDefault, defaultBrokers},
		{"kafka:9092", nil, process.FromEnv, "kafka:9092"},
		{"kafka:9092", []string{"--brokers", "other:1"}, process.FromFlag, "other:1"},
		{"", []string{"--brokers", "other:1"}, process.FromFlag, "other:1"},
	} {
		t.Setenv(envBrokers, tc.env)
		cmd := &cobra.Command{Use: "x", Run: func(*cobra.Command, []string) {}}
		var kf kafkaFlags
		kf.Register(cmd.Flags())
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := kf.Source(); got != tc.want || strings.Join(kf.Brokers, ",") != tc.brokers || kf.Given() != (tc.want != process.FromDefault) {
			t.Errorf("env %q args %q: Source() = %q, brokers %v, Given() = %v; want %q, %s", tc.env, tc.args, got, kf.Brokers, kf.Given(), tc.want, tc.brokers)
		}
	}
}
