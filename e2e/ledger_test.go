//go:build reliability

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// attackHeader marks every message the suite injects straight into a topic,
// with the attack's name as value; stages ignore unknown headers.
const attackHeader = "x-attack"

// Id prefixes of rows the suite forges on docs.features and on the domain
// topics: they claim impossible origins or carry non-finite features, so no
// stage may route or apply them.
const (
	forgedFeaturesPrefix = "forged-features-"
	forgedDomainPrefix   = "forged-domain-"
)

// inputs are the input records of a run: every record that entered
// docs.raw, found by reading the topic once no more input comes.
type inputs struct {
	// rows[(p, offset)] is the number of records of the message at that
	// position: its rows for a decodable Arrow document batch, else 1.
	rows map[[2]int64]int
	// marked are the positions of messages the suite injected.
	marked map[[2]int64]string
	// empty are the positions of messages without a value (tombstones).
	empty map[[2]int64]bool
}

func (in *inputs) records() int {
	n := 0
	for _, k := range in.rows {
		n += k
	}
	return n
}

// readInputs reads docs.raw.
func (r *rig) readInputs() (*inputs, error) {
	ctx, cancel := readCtx()
	defer cancel()
	msgs, err := pipeline.ReadTopic(ctx, r.cc, pipeline.TopicRaw, 0)
	if err != nil {
		return nil, err
	}
	in := &inputs{rows: map[[2]int64]int{}, marked: map[[2]int64]string{}, empty: map[[2]int64]bool{}}
	for _, m := range msgs {
		key := [2]int64{int64(m.Partition), m.Offset}
		in.rows[key] = 1
		if len(m.Value) == 0 {
			in.empty[key] = true
		}
		if a := headerOf(m, attackHeader); a != "" {
			in.marked[key] = a
		}
		if headerOf(m, schemas.HeaderContentType) != schemas.ContentTypeArrow {
			continue
		}
		if n := documentRows(m.Value); n > 0 {
			in.rows[key] = n
		}
	}
	return in, nil
}

// documentRows is the number of document rows an Arrow payload holds (0
// when it does not decode).
func documentRows(v []byte) int {
	recs, err := schemas.DecodeRecords(v, nil)
	if err != nil {
		return 0
	}
	n := 0
	for _, rec := range recs {
		if _, err := schemas.Documents(rec); err == nil {
			n += int(rec.NumRows())
		}
		rec.Release()
	}
	return n
}

// deadLetter is one message of docs.deadletter.
type deadLetter struct {
	reason, stage string
	origin        origin
	whole         bool   // no origin-row header: the whole input message
	id            string // the document id of a JSON value, when it has one
}

// outcome is what the output topics say at one moment.
type outcome struct {
	// routed[o] counts o's rows per domain.
	routed map[origin]map[int]int
	// routedIDs are the ids of every routed row.
	routedIDs map[string]bool
	// rowsByDomain counts routed rows (with repeats) per domain.
	rowsByDomain map[int]int
	dead         []deadLetter
	// forgedRouted are rows the suite forged on docs.features that came out
	// routed.
	forgedRouted []string
	// garbage counts undecodable messages the stages wrote to domain topics.
	garbage int
}

// readOutcome reads the domain topics of ids and docs.deadletter.
func (r *rig) readOutcome(ids []int) (*outcome, error) {
	ctx, cancel := readCtx()
	defer cancel()
	cc := r.cc
	o := &outcome{routed: map[origin]map[int]int{}, routedIDs: map[string]bool{}, rowsByDomain: map[int]int{}}
	for _, d := range ids {
		msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.DomainTopic(d), 0)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if headerOf(m, attackHeader) != "" {
				continue
			}
			recs, err := schemas.DecodeRecords(m.Value, nil)
			if err != nil {
				o.garbage++
				continue
			}
			for _, rec := range recs {
				docs, err := schemas.Documents(rec)
				if err != nil {
					o.garbage++
					rec.Release()
					continue
				}
				for i := range docs.Len() {
					id := docs.ID(i)
					if strings.HasPrefix(id, forgedFeaturesPrefix) {
						o.forgedRouted = append(o.forgedRouted, id)
					}
					og := docs.Origin(i)
					k := origin{og.Topic, int(og.Partition), og.Offset, int(og.Row)}
					if o.routed[k] == nil {
						o.routed[k] = map[int]int{}
					}
					o.routed[k][d]++
					o.routedIDs[strings.Clone(id)] = true
					o.rowsByDomain[d]++
				}
				rec.Release()
			}
		}
	}
	var err error
	if o.dead, err = readDeadLetters(ctx, cc); err != nil {
		return nil, err
	}
	return o, nil
}

// readDeadLetters reads docs.deadletter.
func readDeadLetters(ctx context.Context, cc pipeline.ClientConfig) ([]deadLetter, error) {
	msgs, err := pipeline.ReadTopic(ctx, cc, pipeline.TopicDeadLetter, 0)
	if err != nil {
		return nil, err
	}
	var dead []deadLetter
	for _, m := range msgs {
		dl := deadLetter{reason: headerOf(m, pipeline.HeaderReason), stage: headerOf(m, pipeline.HeaderStage)}
		p, _ := strconv.Atoi(headerOf(m, pipeline.HeaderOriginPartition))
		off, _ := strconv.ParseInt(headerOf(m, pipeline.HeaderOriginOffset), 10, 64)
		row, hasRow := 0, false
		for _, h := range m.Headers {
			if h.Key == pipeline.HeaderOriginRow {
				row, _ = strconv.Atoi(string(h.Value))
				hasRow = true
			}
		}
		dl.origin = origin{headerOf(m, pipeline.HeaderOriginTopic), p, off, row}
		dl.whole = !hasRow
		if len(m.Value) < 1<<20 && len(m.Value) > 0 && m.Value[0] == '{' {
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Value, &v) == nil {
				dl.id = v.ID
			}
		}
		dead = append(dead, dl)
	}
	return dead, nil
}

// figures are the numbers of one run of the suite, printed as one JSON line
// after the prefix "RELIABILITY " for RELIABILITY.md.
type figures struct {
	Test            string         `json:"test"`
	Date            string         `json:"date"`
	CPU             string         `json:"cpu"`
	Seed            uint64         `json:"seed"`
	ChaosSeconds    float64        `json:"chaos_s"`
	Documents       int            `json:"documents"`      // input records: on docs.raw, plus those ingest dead-lettered
	Good            int            `json:"good_documents"` // of which well-formed documents that must be routed
	Routed          int            `json:"routed"`         // distinct input records routed
	DeadLettered    int            `json:"dead_lettered"`  // distinct input records dead-lettered
	FaultsTotal     int            `json:"faults"`
	Faults          map[string]int `json:"faults_by_kind"`
	Lost            int            `json:"lost"`             // input records neither routed nor dead-lettered
	GoodNotRouted   int            `json:"good_not_routed"`  // well-formed documents dead-lettered or lost
	Duplicated      int            `json:"duplicated_rows"`  // routed rows beyond one per input record
	DoublyPlaced    int            `json:"doubly_placed"`    // input records routed to two or more domains
	Phantoms        int            `json:"phantoms"`         // routed rows whose origin no input record has
	ForgedRouted    int            `json:"forged_routed"`    // forged rows (impossible origin, non-finite) routed
	Unaccounted     int            `json:"injected_dropped"` // injected messages on docs.features or a domain topic neither dead-lettered nor routed
	ExpertMismatch  int            `json:"expert_mismatch"`  // experts whose documents applied differ from their domain's
	UnexpectedExits int            `json:"unexpected_exits"` // stage processes that exited on their own
	RecoveredPanics int            `json:"recovered_panics"` // "stage panicked" log lines
	LivenessSeconds float64        `json:"liveness_s"`       // last fault → every input record accounted for; -1 when over the bound
	DeadByReason    map[string]int `json:"dead_by_reason"`   // distinct input records dead-lettered, by reason
	Violations      int            `json:"violations"`
}

// balance is the accounting of one moment: the identity's terms and the
// violations found.
type balance struct {
	documents, routed, dead, lost, duplicated, doubly, phantoms int
	goodMissing                                                 []string
	deadByReason                                                map[string]int
	lostEx, doublyEx, phantomEx                                 []string        // a few of each, for the failure message
	mislabelled                                                 []string        // tombstones dead-lettered under another reason than empty-message
	expected                                                    map[origin]bool // every input record on docs.raw
}

// settle checks the accounting identity: every input record (on docs.raw or
// dead-lettered by ingest) is routed or dead-lettered, none is routed to two
// domains, no routed row lacks an input record, every good document is
// routed.
func settle(in *inputs, o *outcome, good map[string]bool) balance {
	b := balance{deadByReason: map[string]int{}}
	wholeDead := map[[2]int64]string{}
	rowDead := map[origin]string{}
	ingestDead := map[origin]string{}
	deadIDs := map[string]string{}
	for _, dl := range o.dead {
		if dl.id != "" {
			deadIDs[dl.id] = dl.reason
		}
		switch {
		case dl.origin.topic == pipeline.TopicRaw && dl.whole:
			wholeDead[[2]int64{int64(dl.origin.part), dl.origin.offset}] = dl.reason
		case dl.origin.topic == pipeline.TopicRaw:
			rowDead[dl.origin] = dl.reason
		case dl.stage == "ingest":
			ingestDead[origin{topic: dl.origin.topic, offset: dl.origin.offset}] = dl.reason
		}
	}
	for _, r := range ingestDead {
		b.deadByReason[r]++
	}
	b.documents, b.dead = len(ingestDead), len(ingestDead)
	expected := map[origin]bool{}
	b.expected = expected
	for _, pos := range slices.SortedFunc(maps.Keys(in.rows), func(a, b [2]int64) int {
		if a[0] != b[0] {
			return int(a[0] - b[0])
		}
		return int(a[1] - b[1])
	}) {
		n := in.rows[pos]
		b.documents += n
		if r, ok := wholeDead[pos]; ok && in.empty[pos] && r != string(schemas.ReasonEmptyMessage) {
			b.mislabelled = append(b.mislabelled, fmt.Sprintf("docs.raw/%d@%d: %s", pos[0], pos[1], r))
		}
		if r, ok := wholeDead[pos]; ok {
			b.dead += n
			b.deadByReason[r] += n
			for row := range n {
				expected[origin{pipeline.TopicRaw, int(pos[0]), pos[1], row}] = true
			}
			continue
		}
		for row := range n {
			k := origin{pipeline.TopicRaw, int(pos[0]), pos[1], row}
			expected[k] = true
			switch r, dead := rowDead[k]; {
			case o.routed[k] != nil:
				b.routed++
			case dead:
				b.dead++
				b.deadByReason[r]++
			default:
				b.lost++
				if len(b.lostEx) < 5 {
					b.lostEx = append(b.lostEx, fmt.Sprintf("%s/%d@%d row %d %s", k.topic, k.part, k.offset, k.row, in.marked[pos]))
				}
			}
		}
	}
	for k, domains := range o.routed {
		rows := 0
		for _, n := range domains {
			rows += n
		}
		b.duplicated += rows - 1
		if len(domains) > 1 {
			b.doubly++
			if len(b.doublyEx) < 5 {
				b.doublyEx = append(b.doublyEx, fmt.Sprintf("%s/%d@%d row %d routed to domains %v", k.topic, k.part, k.offset, k.row, slices.Sorted(maps.Keys(domains))))
			}
		}
		if !expected[k] {
			b.phantoms++
			if len(b.phantomEx) < 5 {
				b.phantomEx = append(b.phantomEx, fmt.Sprintf("%q/%d@%d row %d", k.topic, k.part, k.offset, k.row))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(good)) {
		if !o.routedIDs[id] {
			reason := "lost"
			if r, ok := deadIDs[id]; ok {
				reason = "dead-lettered " + r
			}
			b.goodMissing = append(b.goodMissing, id+" ("+reason+")")
		}
	}
	return b
}

// injected checks the messages the suite injected on topic (docs.features
// or a domain topic): each must be dead-lettered, whole or row by row, or
// (docs.features only) have its rows routed; forged rows must not be
// routed. It returns how many were silently dropped, with examples.
func (r *rig) injected(topic string, o *outcome) (int, []string, error) {
	ctx, cancel := readCtx()
	defer cancel()
	msgs, err := pipeline.ReadTopic(ctx, r.cc, topic, 0)
	if err != nil {
		return 0, nil, err
	}
	deadAt := map[origin]bool{}
	deadIDs := map[string]bool{}
	for _, dl := range o.dead {
		deadAt[origin{dl.origin.topic, dl.origin.part, dl.origin.offset, 0}] = true
		if dl.id != "" {
			deadIDs[dl.id] = true
		}
	}
	dropped := 0
	var examples []string
	for _, m := range msgs {
		a := headerOf(m, attackHeader)
		if a == "" || deadAt[origin{topic, m.Partition, m.Offset, 0}] {
			continue
		}
		ids := rowIDs(m.Value)
		ok := len(ids) > 0
		for _, id := range ids {
			if !deadIDs[id] && !(topic == pipeline.TopicFeatures && o.routedIDs[id]) {
				ok = false
			}
		}
		if !ok {
			dropped++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s %s/%d@%d (%d bytes) neither dead-lettered nor routed", a, topic, m.Partition, m.Offset, len(m.Value)))
			}
		}
	}
	return dropped, examples, nil
}

// rowIDs returns the document ids of an Arrow payload (none when it does
// not decode).
func rowIDs(v []byte) []string {
	recs, err := schemas.DecodeRecords(v, nil)
	if err != nil {
		return nil
	}
	var out []string
	for _, rec := range recs {
		if docs, err := schemas.Documents(rec); err == nil {
			for i := range docs.Len() {
				out = append(out, strings.Clone(docs.ID(i)))
			}
		}
		rec.Release()
	}
	return out
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// readCtx bounds one read of the topics.
func readCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}
