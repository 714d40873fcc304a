package cluster

import (
	"encoding/json"
	"fmt"
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
}

// EncodeRoutingState returns the JSON of the routed counts of router version
// version, stamped with the current time (UTC).
func EncodeRoutingState(version int64, counts map[int]int64) []byte {
	s := RoutingState{RouterVersion: version, Counts: map[string]int64{}, Saved: time.Now().UTC()}
	for id, c := range counts {
		s.Counts[strconv.Itoa(id)] = c
	}
	b, _ := json.Marshal(s) // a struct of ints, strings and a time cannot fail
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
