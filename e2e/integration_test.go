//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realKafka is the Apache Kafka broker scripts/test-integration.sh started
// with scripts/kafka/kafka.sh; DOMAINFLOW_KAFKA_{BROKERS,DIR,VERSION} say
// where it is.
type realKafka struct{ brokers, dir, version string }

func realKafkaFromEnv(t *testing.T) *realKafka {
	k := &realKafka{os.Getenv("DOMAINFLOW_KAFKA_BROKERS"), os.Getenv("DOMAINFLOW_KAFKA_DIR"), os.Getenv("DOMAINFLOW_KAFKA_VERSION")}
	if k.brokers == "" || k.dir == "" {
		t.Fatal("DOMAINFLOW_KAFKA_BROKERS and DOMAINFLOW_KAFKA_DIR must be set (run make test-integration)")
	}
	return k
}

func (k *realKafka) addr() string { return k.brokers }

func (k *realKafka) kill(t *testing.T) {
	pid, err := os.ReadFile(filepath.Join(k.dir, "kafka.pid"))
	if err != nil {
		t.Fatalf("read kafka pid: %v", err)
	}
	var n int
	fmt.Sscan(string(pid), &n)
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL kafka %d: %v", n, err)
	}
	waitFor(t, 20*time.Second, "kafka to die", func() bool { return syscall.Kill(n, 0) != nil })
}

func (k *realKafka) restart(t *testing.T) {
	port := k.brokers[strings.LastIndex(k.brokers, ":")+1:]
	cmd := exec.Command("bash", "../scripts/kafka/kafka.sh", "start", "--keep-data", "--version", k.version, "--port", port, "--dir", k.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restart kafka: %v\n%s", err, out)
	}
}

// TestRealKafkaMultiProcess is TestMultiProcess against a real Apache Kafka:
// the group split, the takeover after SIGKILL, and SIGKILL + restart of the
// broker on its log dir.
func TestRealKafkaMultiProcess(t *testing.T) { testMultiProcess(t, realKafkaFromEnv(t)) }

// TestKcatInterop checks that kcat and pipeline speak to each other through
// a `pipeline broker` process and through a real Kafka.
func TestKcatInterop(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed (apt-get install kcat)")
	}
	t.Run("pipeline-broker", func(t *testing.T) { testKcatInterop(t, startKfake(t).addr()) })
	t.Run("kafka", func(t *testing.T) { testKcatInterop(t, realKafkaFromEnv(t).addr()) })
}

func testKcatInterop(t *testing.T, addr string) {
	suffix := fmt.Sprint(time.Now().UnixNano())
	raw, ingested := "kcat.raw."+suffix, "kcat.ingest."+suffix

	// kcat → pipeline inspect.
	var in bytes.Buffer
	for i := range 20 {
		fmt.Fprintf(&in, `{"id":"kc-%02d","text":"document %d produced by kcat","lang":"en"}`+"\n", i, i)
	}
	kc := exec.Command("kcat", "-P", "-b", addr, "-t", raw, "-K", "\t")
	var keyed bytes.Buffer
	for _, line := range strings.SplitAfter(strings.TrimSpace(in.String()), "\n") {
		var d struct{ ID string }
		_ = json.Unmarshal([]byte(line), &d)
		keyed.WriteString(d.ID + "\t" + strings.TrimSpace(line) + "\n")
	}
	kc.Stdin = &keyed
	if out, err := kc.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	out, err := exec.Command(binary(t), "inspect", "--brokers", addr, "--topic", raw).Output()
	if err != nil {
		t.Fatalf("pipeline inspect: %v", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line struct {
			Key   string
			Value struct{ ID, Text, Lang string }
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("inspect line %q: %v", sc.Text(), err)
		}
		if line.Value.Lang != "en" || !strings.Contains(line.Value.Text, "kcat") || line.Key != line.Value.ID {
			t.Errorf("inspect line %q lost a field", sc.Text())
		}
		seen[line.Value.ID] = true
	}
	if len(seen) != 20 {
		t.Errorf("pipeline inspect saw %d of the 20 kcat documents", len(seen))
	}

	// pipeline ingest → kcat.
	file := filepath.Join(t.TempDir(), "docs.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary(t), "ingest", "--brokers", addr, "--topic", ingested, "--json", file).CombinedOutput(); err != nil {
		t.Fatalf("pipeline ingest: %v\n%s", err, out)
	}
	out, err = exec.Command("kcat", "-C", "-b", addr, "-t", ingested, "-e", "-q", "-f", "%k\t%h\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("kcat line %q", line)
		}
		var d struct{ ID, Text, Lang string }
		if err := json.Unmarshal([]byte(parts[2]), &d); err != nil {
			t.Fatalf("kcat read %q: %v", parts[2], err)
		}
		if d.ID != parts[0] || d.Lang != "en" || !strings.Contains(parts[1], "content-type=application/json") {
			t.Errorf("kcat line %q: key, meta field or content-type header lost", line)
		}
		got[d.ID] = true
	}
	if len(got) != 20 {
		t.Errorf("kcat read %d of the 20 ingested documents", len(got))
	}
}

// TestRealKafkaJob runs the whole job as separate processes, with continuous
// ingestion and mid-stream router changes, against a real Apache Kafka.
func TestRealKafkaJob(t *testing.T) { testJob(t, realKafkaFromEnv(t).addr()) }
