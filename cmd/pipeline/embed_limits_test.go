package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// TestEmbedStageLimits: the embed stage validates documents with its own
// --max-text-bytes and --max-id-bytes, the limits ingest was given, not the
// defaults: a 1.5 MB document ingested with --max-text-bytes 2000000 is
// featurized (before: dead-lettered as oversize by the stage), and a
// 2000-byte id with --max-id-bytes 4096 too.
func TestEmbedStageLimits(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	in := filepath.Join(t.TempDir(), "big.jsonl")
	big := strings.Repeat("word ", 300_000) // 1.5 MB
	longID := strings.Repeat("i", 2000)
	lines := fmt.Sprintf("{\"id\":\"big\",\"text\":%q}\n{\"id\":%q,\"text\":\"a document with a long id\"}\n{\"id\":\"small\",\"text\":\"a small document\"}\n", big, longID)
	if err := os.WriteFile(in, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	limits := []string{"--max-text-bytes", "2000000", "--max-id-bytes", "4096"}
	mustCLI(t, append([]string{"ingest", "--brokers", addr, in}, limits...)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	var stdout, stderr pipetest.LogBuffer
	go func() {
		args := append([]string{"embed", "--brokers", addr, "--state", filepath.Join(t.TempDir(), "state"), "--featurizer", "hashing",
			"--fit-sample", "3", "--json", "--linger", "5ms"}, limits...)
		code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
		done <- result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := cli(t, "inspect", "--brokers", addr, "--topic", pipeline.TopicFeatures)
		if r.code == 0 && len(jsonLines(t, r.stdout)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			dead := cli(t, "inspect", "--brokers", addr, "--topic", pipeline.TopicDeadLetter)
			t.Fatalf("the 3 documents were not featurized within 30s; dead letters:\n%.2000s\nstderr:\n%s", dead.stdout, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	res := <-done
	var rep stageReport
	decodeOne(t, res.stdout, &rep)
	if rep.In != 3 || rep.Out != 3 || rep.Dead != 0 {
		t.Fatalf("stage report %+v, want 3 in and out, none dead", rep)
	}
}
