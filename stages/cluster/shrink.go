package cluster

// Shrinking: a domain whose share of the routed documents stays below a
// threshold over a window is removed from the router (RemoveDomain: its
// documents then go to their next nearest domain) and its expert retired
// (mixtures use the latest router's domains). Off by default.

import (
	"fmt"
	"time"

	"github.com/domainflow/domainflow/pipeline"
)

// ShrinkConfig configures shrinking (Stage.SetShrink, RunConfig.Shrink).
type ShrinkConfig struct {
	// Below is the share of the routed documents under which a domain is
	// removed, in (0, 1): 0.02 removes a domain that got fewer than 2% of
	// the last Window documents. Required.
	Below float64
	// Window is the number of most recent routed documents the share is
	// measured over; a domain is judged only once it has existed for a
	// whole window. Default 5000.
	Window int
}

// DefaultShrinkWindow is ShrinkConfig's default Window.
const DefaultShrinkWindow = 5000

func (c ShrinkConfig) window() int {
	if c.Window == 0 {
		return DefaultShrinkWindow
	}
	return c.Window
}

// Validate reports whether c is usable.
func (c ShrinkConfig) Validate() error {
	switch {
	case !(c.Below > 0 && c.Below < 1):
		return fmt.Errorf("cluster: shrink: share %v outside (0, 1)", c.Below)
	case c.Window < 0:
		return fmt.Errorf("cluster: shrink: negative window %d", c.Window)
	}
	return nil
}

// shrinkWindow keeps the domains of the last routed documents.
type shrinkWindow struct {
	ring  []int // domain ids, ring[(n-1)%len] the newest
	n     int64
	count map[int]int   // per domain, in the ring
	since map[int]int64 // per domain: n when it was first seen in a router
}

func newShrinkWindow(size int) *shrinkWindow {
	return &shrinkWindow{ring: make([]int, size), count: map[int]int{}, since: map[int]int64{}}
}

func (w *shrinkWindow) observe(id int) {
	i := int(w.n % int64(len(w.ring)))
	if w.n >= int64(len(w.ring)) {
		w.count[w.ring[i]]--
	}
	w.ring[i] = id
	w.count[id]++
	w.n++
}

// known records the domains of m (from now on for the new ones).
func (w *shrinkWindow) known(m *RouterModel) {
	for _, id := range m.IDs {
		if _, ok := w.since[id]; !ok {
			w.since[id] = w.n
		}
	}
}

// SetShrink turns shrink accounting on (cfg non-nil) or off; see
// ShrinkCandidate.
func (st *Stage) SetShrink(cfg *ShrinkConfig) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cfg == nil {
		st.shrink, st.shrinkCfg = nil, nil
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	c := *cfg
	st.shrinkCfg = &c
	st.shrink = newShrinkWindow(c.window())
	st.shrink.known(st.latest)
	return nil
}

// ShrinkCandidate returns the domain of the newest router whose share of
// the last Window documents routed here (parked rows of grown domains
// included, novel rows not) is lowest and below the threshold, among the
// domains that existed for a whole window; ok is false when there is none
// or the router has one domain left.
func (st *Stage) ShrinkCandidate() (id int, share float64, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	w, m := st.shrink, st.latest
	if w == nil || m.K() < 2 {
		return 0, 0, false
	}
	size := int64(len(w.ring))
	if w.n < size {
		return 0, 0, false
	}
	best := 2.0
	for _, d := range m.IDs {
		if w.n-w.since[d] < size {
			continue
		}
		s := float64(w.count[d]) / float64(size)
		if s < st.shrinkCfg.Below && s < best {
			id, share, ok, best = d, s, true, s
		}
	}
	return id, share, ok
}

// Holds reports whether the stage routed a batch of input partition p
// within d: the process that routes partition 0 of the input is the one
// that shrinks (the service's leader rule).
func (st *Stage) Holds(p pipeline.Partition, d time.Duration) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.lastBatch[p]
	return ok && time.Since(t) < d
}
