package flow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// domainSources counts the documents on each domain topic of ids by their
// "source" field: per domain id, source → documents ("" for documents
// without one). docs are the training documents as ingested: document i is
// at docs.raw partition i mod P, offset i / P, and the domain topics'
// rows carry that origin. A row re-sent after a crash (at or below its
// partition's last origin) is skipped, as the trainers skip it.
func domainSources(ctx context.Context, cc pipeline.ClientConfig, ids []int, docs []schemas.Document) (map[int]map[string]int64, error) {
	n, err := pipeline.PartitionCount(ctx, cc, pipeline.TopicRaw)
	if err != nil {
		return nil, err
	}
	sources := make([]string, len(docs)) // memoized source of document i
	known := make([]bool, len(docs))
	source := func(i int64) string {
		if !known[i] {
			known[i] = true
			var meta struct {
				Source string `json:"source"`
			}
			if docs[i].Meta != nil {
				_ = json.Unmarshal(docs[i].Meta, &meta) // no source: ""
			}
			sources[i] = meta.Source
		}
		return sources[i]
	}
	out := make(map[int]map[string]int64, len(ids))
	for _, id := range ids {
		msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(id), 0)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", pipeline.DomainTopic(id), err)
		}
		counts := map[string]int64{}
		last := map[int32]int64{}
		for _, m := range msgs {
			d, err := pipeline.DecodeMessage(m, schemas.Limits{}, memory.DefaultAllocator)
			if err != nil {
				continue // a dead letter of the trainers, not a routed document
			}
			_ = d.EachDocument(func(_ schemas.Document, o schemas.Origin) error {
				if l, ok := last[o.Partition]; ok && o.Offset <= l {
					return nil
				}
				last[o.Partition] = o.Offset
				if o.Topic != pipeline.TopicRaw || o.Partition < 0 || int(o.Partition) >= n || o.Offset < 0 {
					return nil
				}
				if i := o.Offset*int64(n) + int64(o.Partition); i < int64(len(docs)) {
					counts[source(i)]++
				}
				return nil
			})
			d.Release()
		}
		out[id] = counts
	}
	return out, nil
}
