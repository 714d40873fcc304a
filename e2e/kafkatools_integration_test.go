//go:build integration

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// kafkaTool runs one of Apache Kafka's CLI tools of the release line
// DOMAINFLOW_KAFKA_VERSION (scripts/kafka/kafka.sh tool, the jars that
// scripts/test-integration.sh resolved) and returns its stdout. A non-zero
// exit or a Java exception fails the test: the tools print some errors and
// still exit 0.
func kafkaTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	version := os.Getenv("DOMAINFLOW_KAFKA_VERSION")
	if version == "" {
		t.Fatal("DOMAINFLOW_KAFKA_VERSION must be set (run make test-integration)")
	}
	cmd := exec.Command("bash", append([]string{"../scripts/kafka/kafka.sh", "tool", "--version", version, name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (Kafka %s): %v", name, strings.Join(args, " "), version, time.Since(t0).Round(100*time.Millisecond))
	all := stdout.String() + stderr.String()
	if err != nil || strings.Contains(all, "Exception") || strings.Contains(all, "Error:") {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, all)
	}
	return stdout.String()
}

// groupRows reads the rows of a kafka-consumer-groups table for group and
// topic: partition → the columns after PARTITION (CURRENT-OFFSET,
// LOG-END-OFFSET, LAG for --describe; NEW-OFFSET for --reset-offsets). It
// goes by words, not lines: 3.9 prints the --reset-offsets table without
// line breaks.
func groupRows(t *testing.T, out, group, topic string, cols int) map[int][]string {
	t.Helper()
	w := strings.Fields(out)
	rows := map[int][]string{}
	for i := 0; i+2+cols < len(w); i++ {
		if w[i] != group || w[i+1] != topic {
			continue
		}
		p, err := strconv.Atoi(w[i+2])
		if err != nil {
			t.Fatalf("partition %q in\n%s", w[i+2], out)
		}
		rows[p] = w[i+3 : i+3+cols]
	}
	return rows
}

func committed(t *testing.T, cc pipeline.ClientConfig, group, topic string, parts int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	offs, err := pipeline.CommittedOffsets(ctx, cc, group, topic, parts)
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	return offs
}

func sum(xs []int64) (s int64) {
	for _, x := range xs {
		s += x
	}
	return s
}

// writeDocs writes n JSON-lines documents with ids prefix-NN to a file.
func writeDocs(t *testing.T, prefix string, n int) string {
	t.Helper()
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%02d","text":"document %d for the %s test","lang":"en"}`+"\n", prefix, i, i, prefix)
	}
	file := filepath.Join(t.TempDir(), prefix+".jsonl")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestKafkaToolsEmbeddedBroker drives `pipeline broker` with Apache Kafka's
// own CLI tools (the release line of DOMAINFLOW_KAFKA_VERSION): kafka-topics
// --describe, kafka-consumer-groups --list, --describe and --reset-offsets
// (--dry-run, then --execute) on a group whose offsets our stage runner
// committed. Before pipeline/brokerfix.go these crashed with a
// NullPointerException (3.9 and 4.x) or listed nothing (4.x). Five JVM starts.
func TestKafkaToolsEmbeddedBroker(t *testing.T) {
	const parts, n = 4, 40
	k := startKfake(t)
	addr := k.addr()
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	in, out, group := "tools.raw."+suffix, "tools.out."+suffix, "tools-"+suffix
	pipetest.CreateTopics(t, cc, parts, in, out, pipeline.TopicDeadLetter)

	if o, err := exec.Command(binary(t), "ingest", "--brokers", addr, "--topic", in, writeDocs(t, "tools", n)).CombinedOutput(); err != nil {
		t.Fatalf("pipeline ingest: %v\n%s", err, o)
	}
	// The group's offsets, committed by the stage runner; stopping the
	// stage leaves the group Empty, as --reset-offsets needs.
	id := start(t, "identity", "identity", "--brokers", addr, "--in", in, "--out", out, "--group", group, "--log-level", "warn")
	waitFor(t, 60*time.Second, "the identity stage to commit all offsets", func() bool {
		offs, err := pipeline.CommittedOffsets(context.Background(), cc, group, in, parts)
		return err == nil && sum(offs) == n
	})
	id.stop(t)
	before := committed(t, cc, group, in, parts)

	// kafka-topics --describe: Metadata for the list, then
	// DescribeTopicPartitions (the null ELR arrays).
	desc := kafkaTool(t, "kafka-topics", "--bootstrap-server", addr, "--describe")
	for _, want := range []string{"Topic: " + in + "\t", "Topic: " + out + "\t", "Topic: " + pipeline.TopicDeadLetter + "\t"} {
		if !strings.Contains(desc, want+"TopicId:") {
			t.Errorf("kafka-topics --describe does not describe %q:\n%s", strings.TrimSpace(want), desc)
		}
	}
	for p := range parts {
		if !strings.Contains(desc, fmt.Sprintf("Topic: %s\tPartition: %d\tLeader: 0\tReplicas: 0\tIsr: 0", in, p)) {
			t.Errorf("kafka-topics --describe lacks partition %d of %s:\n%s", p, in, desc)
		}
	}

	// --list: ListGroups with the 4.x types filter ("Classic", "Consumer").
	if list := kafkaTool(t, "kafka-consumer-groups", "--bootstrap-server", addr, "--list"); !strings.Contains("\n"+list, "\n"+group+"\n") {
		t.Errorf("kafka-consumer-groups --list does not list %s:\n%s", group, list)
	}

	// --describe: the committed offsets and a lag of 0.
	d := kafkaTool(t, "kafka-consumer-groups", "--bootstrap-server", addr, "--describe", "--group", group)
	rows := groupRows(t, d, group, in, 3)
	if len(rows) != parts {
		t.Fatalf("kafka-consumer-groups --describe: %d partitions of %s, want %d:\n%s", len(rows), in, parts, d)
	}
	for p, r := range rows {
		if r[0] != strconv.FormatInt(before[p], 10) || r[1] != r[0] || r[2] != "0" {
			t.Errorf("kafka-consumer-groups --describe partition %d: CURRENT-OFFSET %s LOG-END-OFFSET %s LAG %s, want %d %d 0", p, r[0], r[1], r[2], before[p], before[p])
		}
	}

	// --reset-offsets --dry-run: every partition to 0, nothing changed.
	dry := kafkaTool(t, "kafka-consumer-groups", "--bootstrap-server", addr, "--reset-offsets", "--group", group, "--topic", in, "--to-earliest", "--dry-run")
	rows = groupRows(t, dry, group, in, 1)
	if len(rows) != parts {
		t.Fatalf("--reset-offsets --dry-run: %d partitions, want %d:\n%s", len(rows), parts, dry)
	}
	for p, r := range rows {
		if r[0] != "0" {
			t.Errorf("--reset-offsets --to-earliest --dry-run partition %d: NEW-OFFSET %s, want 0", p, r[0])
		}
	}
	if got := committed(t, cc, group, in, parts); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("--dry-run changed the committed offsets: %v, were %v", got, before)
	}

	// --reset-offsets --execute: back one record on each partition.
	kafkaTool(t, "kafka-consumer-groups", "--bootstrap-server", addr, "--reset-offsets", "--group", group, "--topic", in, "--shift-by", "-1", "--execute")
	after := committed(t, cc, group, in, parts)
	for p := range parts {
		if want := max(before[p]-1, 0); after[p] != want {
			t.Errorf("after --shift-by -1 --execute, partition %d is at %d, want %d (was %d)", p, after[p], want, before[p])
		}
	}
}

// saslKafka is the SASL_SSL Apache Kafka that scripts/test-integration.sh
// started with `kafka.sh start --sasl-ssl`.
type saslKafka struct{ brokers, ca, user, password, clientConfig string }

func saslKafkaFromEnv(t *testing.T) saslKafka {
	k := saslKafka{os.Getenv("DOMAINFLOW_KAFKA_SASL_BROKERS"), os.Getenv("DOMAINFLOW_KAFKA_TLS_CA"),
		os.Getenv("DOMAINFLOW_KAFKA_SASL_USER"), os.Getenv("DOMAINFLOW_KAFKA_SASL_PASSWORD"), os.Getenv("DOMAINFLOW_KAFKA_CLIENT_CONFIG")}
	if k.brokers == "" || k.ca == "" || k.user == "" || k.password == "" || k.clientConfig == "" {
		t.Fatal("DOMAINFLOW_KAFKA_SASL_BROKERS, _TLS_CA, _SASL_USER, _SASL_PASSWORD and _CLIENT_CONFIG must be set (run make test-integration)")
	}
	return k
}

// libConfig is the library's view of the same settings, to watch the
// group's offsets.
func (k saslKafka) libConfig(t *testing.T) pipeline.ClientConfig {
	t.Helper()
	pem, err := os.ReadFile(k.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", k.ca)
	}
	mech, err := scram.Mechanism(scram.SHA512, k.user, k.password)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.ClientConfig{Brokers: []string{k.brokers}, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, SASL: mech}
}

// TestRealKafkaSASLSSL runs our CLI against a real Kafka whose only client
// listener is SASL_SSL (SCRAM users, a CA made with openssl): the --tls-ca
// and --sasl-* flags through ingest, topics list, inspect and a stage in a
// consumer group, each SASL mechanism once, the password from
// $DOMAINFLOW_SASL_PASSWORD; a wrong password and an untrusted certificate
// fail with a non-zero exit that names the cause. Kafka's own
// kafka-consumer-groups reads the group through kafka.sh's client.properties.
func TestRealKafkaSASLSSL(t *testing.T) {
	const parts, n = 4, 30
	k := saslKafkaFromEnv(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	in, out, group := "sasl.raw."+suffix, "sasl.out."+suffix, "sasl-"+suffix
	env := append(os.Environ(), "DOMAINFLOW_SASL_PASSWORD="+k.password)
	flags := func(mech string) []string {
		return []string{"--brokers", k.brokers, "--tls-ca", k.ca, "--sasl-mechanism", mech, "--sasl-user", k.user}
	}
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := run(args...)
		if err != nil {
			t.Fatalf("pipeline %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
		}
		return stdout
	}

	ing := mustRun(append([]string{"ingest", "--json", "--topic", in, "--partitions", strconv.Itoa(parts), writeDocs(t, "sasl", n)}, flags("scram-sha-512")...)...)
	if !strings.Contains(ing, fmt.Sprintf(`"docs":%d`, n)) {
		t.Errorf("ingest over SASL_SSL: %s, want %d docs", ing, n)
	}
	if list := mustRun(append([]string{"topics", "list"}, flags("scram-sha-256")...)...); !lineWords(list, in, strconv.Itoa(parts)) {
		t.Errorf("topics list over SASL_SSL does not show %s with %d partitions:\n%s", in, parts, list)
	}
	lines := strings.Count(mustRun(append([]string{"inspect", "--topic", in}, flags("plain")...)...), `"id":"sasl-`)
	if lines != n {
		t.Errorf("inspect over SASL_SSL (PLAIN) read %d of the %d documents", lines, n)
	}

	// A stage in a consumer group over SASL_SSL, committing its offsets.
	cc := k.libConfig(t)
	id := start(t, "identity", append([]string{"identity", "--in", in, "--out", out, "--group", group, "--log-level", "warn", "--sasl-password", k.password}, flags("scram-sha-512")...)...)
	waitFor(t, 90*time.Second, "the identity stage to commit all offsets over SASL_SSL", func() bool {
		offs, err := pipeline.CommittedOffsets(context.Background(), cc, group, in, parts)
		return err == nil && sum(offs) == n
	})
	id.stop(t)
	if got := strings.Count(mustRun(append([]string{"inspect", "--topic", out}, flags("scram-sha-512")...)...), `"id":"sasl-`); got != n {
		t.Errorf("the identity stage wrote %d of %d documents over SASL_SSL", got, n)
	}

	// Failures name their cause and exit non-zero.
	for _, tt := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"wrong password", "DOMAINFLOW_SASL_PASSWORD=wrong", flags("scram-sha-512"), "SASL Authentication failed"},
		{"untrusted certificate", "", []string{"--brokers", k.brokers, "--tls", "--sasl-mechanism", "scram-sha-512", "--sasl-user", k.user}, "certificate"},
	} {
		cmd := exec.Command(binary(t), append([]string{"topics", "list"}, tt.args...)...)
		cmd.Env = env
		if tt.env != "" {
			cmd.Env = append(cmd.Env, tt.env)
		}
		o, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(o), tt.want) {
			t.Errorf("%s: topics list exited with %v, output %q; want a non-zero exit naming %q", tt.name, err, o, tt.want)
		}
	}

	// Kafka's own tool over SASL_SSL with kafka.sh's client properties.
	d := kafkaTool(t, "kafka-consumer-groups", "--bootstrap-server", k.brokers, "--command-config", k.clientConfig, "--describe", "--group", group)
	rows := groupRows(t, d, group, in, 3)
	var total int64
	for _, r := range rows {
		c, _ := strconv.ParseInt(r[0], 10, 64)
		total += c
	}
	if len(rows) != parts || total != n {
		t.Errorf("kafka-consumer-groups over SASL_SSL: %d partitions, %d committed; want %d, %d:\n%s", len(rows), total, parts, n, d)
	}
}

// lineWords reports whether a line of out is exactly words, spaces aside.
func lineWords(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(words, " ") {
			return true
		}
	}
	return false
}
