package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/schemas"
)

// reliabilityCorpus writes a small corpus (n documents of the fixture, cut
// to 600 bytes) with bad lines among them: malformed JSON, invalid UTF-8,
// an empty text and an over-size text. It returns the number of good and
// bad lines.
func reliabilityCorpus(t *testing.T, path string, n int, withBad bool) (good, bad int) {
	t.Helper()
	r, err := schemas.OpenInput("../testdata/mixed-small.jsonl.gz", schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for good < n {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || rec.Err != nil {
			continue
		}
		d := rec.Doc
		d.Text = strings.ToValidUTF8(d.Text[:min(600, len(d.Text))], "")
		b, err := schemas.EncodeJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(append(b, '\n'))
		good++
		if withBad && good%15 == 0 {
			writeBadLine(w, bad%4, 300_000)
			bad++
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return good, bad
}

// origin identifies one input record: where it entered the pipeline.
type origin struct {
	topic  string
	part   int
	offset int64
	row    int
}

// routedOrigins returns the distinct input records routed per domain.
func routedOrigins(t *testing.T, cc pipeline.ClientConfig) (map[int]map[origin]bool, error) {
	t.Helper()
	out := map[int]map[origin]bool{}
	err := forEachRouted(t, cc, func(domain int, docs *schemas.DocumentColumns, i int) {
		if out[domain] == nil {
			out[domain] = map[origin]bool{}
		}
		o := docs.Origin(i)
		out[domain][origin{o.Topic, int(o.Partition), o.Offset, int(o.Row)}] = true
	})
	return out, err
}

// forEachRouted calls fn for every document row on the domain topics
// (docs.domain.<id>) with the domain's id; a message that is not a routed
// record fails the test.
func forEachRouted(t *testing.T, cc pipeline.ClientConfig, fn func(domain int, docs *schemas.DocumentColumns, i int)) error {
	t.Helper()
	ts, err := pipeline.ListTopics(context.Background(), cc)
	if err != nil {
		return err
	}
	for _, tp := range ts {
		s, ok := strings.CutPrefix(tp.Name, pipeline.DomainTopicPrefix)
		if !ok {
			continue
		}
		id, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		msgs, err := pipetest.ReadTopic(context.Background(), cc, tp.Name)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			recs, err := schemas.DecodeRecords(m.Value, nil)
			if err != nil {
				t.Fatalf("%s/%d@%d is not a routed record: %v", m.Topic, m.Partition, m.Offset, err)
			}
			for _, rec := range recs {
				docs, err := schemas.Documents(rec)
				if err != nil {
					t.Fatal(err)
				}
				for i := range docs.Len() {
					fn(id, docs, i)
				}
				rec.Release()
			}
		}
	}
	return nil
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func keysOf[V any](m map[int]V) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeBadLine writes bad JSON-lines record number kind (0..3): malformed
// JSON, invalid UTF-8, an empty text, a text of huge bytes.
func writeBadLine(w *bufio.Writer, kind, huge int) {
	switch kind {
	case 0:
		w.WriteString(`{"id": "broken", "text": "no end` + "\n")
	case 1:
		w.WriteString("{\"id\":\"latin1\",\"text\":\"caf\xe9 \xff\"}\n")
	case 2:
		w.WriteString(`{"id":"empty","text":""}` + "\n")
	case 3:
		w.WriteString(`{"id":"huge","text":"` + strings.Repeat("x", huge) + `"}` + "\n")
	}
}
