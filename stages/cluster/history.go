package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// RoutingState is the routed counts of a routing stage's consumer group: the
// value the stage saves under routing-state/<group> on router.models so that
// balance survives restarts, and one line of its routing history (--history,
// routing-history.jsonl in a run's output), read back by the report.
type RoutingState struct {
	RouterVersion int64            `json:"router_version"`
	Counts        map[string]int64 `json:"counts"` // domain id → documents routed
	Saved         time.Time        `json:"saved"`
	// The novelty counters of the process that wrote a history line
	// (NoveltyStats), absent from saved routing states and from lines
	// written before novelty scoring or while nothing was judged: rows
	// judged and novel since the stage began, and the novel fraction over
	// the last judged rows by window size ("1000").
	Judged        int64              `json:"judged,omitempty"`
	Novel         int64              `json:"novel,omitempty"`
	NovelFraction map[string]float64 `json:"novel_fraction,omitempty"`
	// Parked counts the novel rows the process parked on docs.novel with
	// growth on (no domain yet), since it began; absent without growth.
	// History lines count the rows parked for a grown domain in Counts.
	Parked int64 `json:"parked,omitempty"`
}

// EncodeRoutingState returns the JSON of the routed counts of router version
// version, stamped with the current time (UTC).
func EncodeRoutingState(version int64, counts map[int]int64) []byte {
	return EncodeRoutingHistory(version, counts, NoveltyStats{}, 0)
}

// EncodeRoutingHistory returns a line of the routing history: the routed
// counts of router version version as EncodeRoutingState, with the novelty
// counters nov when any row was judged.
func EncodeRoutingHistory(version int64, counts map[int]int64, nov NoveltyStats, parked int64) []byte {
	s := RoutingState{RouterVersion: version, Counts: map[string]int64{}, Saved: time.Now().UTC(), Parked: parked}
	for id, c := range counts {
		s.Counts[strconv.Itoa(id)] = c
	}
	if nov.Judged > 0 {
		s.Judged, s.Novel, s.NovelFraction = nov.Judged, nov.Novel, map[string]float64{}
		for _, w := range nov.Windows {
			s.NovelFraction[strconv.Itoa(w.Size)] = w.Fraction()
		}
	}
	b, _ := json.Marshal(s) // ints, strings, finite floats and a time cannot fail
	return b
}

// DecodeRoutingState returns the routed counts of an encoded RoutingState by
// domain id. An entry whose key is not a domain id or whose count is negative
// is an error.
func DecodeRoutingState(b []byte) (map[int]int64, error) {
	var s RoutingState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(s.Counts))
	for k, c := range s.Counts {
		id, err := strconv.Atoi(k)
		if err != nil || c < 0 {
			return nil, fmt.Errorf("bad routing state entry %q: %d", k, c)
		}
		out[id] = c
	}
	return out, nil
}

// withParked returns counts plus the rows stage parked for each grown
// domain (the rows the mover forwards there): what a history line counts.
func withParked(counts map[int]int64, stage *Stage) map[int]int64 {
	_, claimed := stage.Parked()
	if len(claimed) == 0 {
		return counts
	}
	out := maps.Clone(counts)
	for id, n := range claimed {
		out[id] += n
	}
	return out
}
