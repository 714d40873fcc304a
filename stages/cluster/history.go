package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
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
	// Drift maps a domain id to its distance drift when the line was
	// written (NoveltyStats.Drift: the recent rows' mean nearest distance
	// over the fit-time mean, about 1 normal, above 1 drifting); absent
	// from lines written before drift was kept and for domains without
	// judged rows.
	Drift map[string]float64 `json:"drift,omitempty"`
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
	for id, v := range nov.Drift {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue // JSON has no NaN or infinity
		}
		if s.Drift == nil {
			s.Drift = map[string]float64{}
		}
		s.Drift[strconv.Itoa(id)] = v
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

// ReadRoutingHistory reads the JSON lines of a routing history (the
// routing stage's --history): the valid lines in order, and the number of
// lines that were not one (not a JSON object with counts; the last line of
// a history being written may be cut short). Blank lines are skipped.
func ReadRoutingHistory(r io.Reader) (lines []RoutingState, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var s RoutingState
		if err := json.Unmarshal(line, &s); err != nil || s.Counts == nil {
			bad++
			continue
		}
		lines = append(lines, s)
	}
	if err := sc.Err(); err != nil {
		return lines, bad, fmt.Errorf("read routing history: %w", err)
	}
	return lines, bad, nil
}

// LatestDrift returns the drift of each domain id from the last of lines
// that has one for it (RoutingState.Drift), or an empty map when none has.
// Entries whose key is not a domain id are ignored.
func LatestDrift(lines []RoutingState) map[int]float64 {
	out := map[int]float64{}
	for i := len(lines) - 1; i >= 0; i-- {
		for k, v := range lines[i].Drift {
			id, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			if _, ok := out[id]; !ok {
				out[id] = v
			}
		}
	}
	return out
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
