package cluster

import (
	"slices"
	"sort"
)

// DomainInfo describes one domain of a RouterModel: what `pipeline
// domains` lists (its JSON form is that command's).
type DomainInfo struct {
	ID       int      `json:"id"`          // the stable domain id
	Size     int      `json:"size"`        // fit documents in it
	TopTerms []string `json:"top_terms"`   // the terms its centroid weighs most (empty: none)
	Examples []string `json:"example_ids"` // ids of fit documents nearest its centroid (empty: none)
	// Distances are the fit-time squared distances of the fit documents
	// nearest its centroid (RouterModel.Distances); absent for a router
	// saved before routers kept them.
	Distances *DistanceStats `json:"distances,omitempty"`
	// Origin says how the domain came to be (fit, split, grow) and the
	// router version that created it (RouterModel.Origins); absent for a
	// router saved before routers kept origins.
	Origin *DomainOrigin `json:"origin,omitempty"`
	// Drift is the domain's latest distance drift from a routing history
	// (LatestDrift): about 1 while its documents look like the fit sample,
	// above 1 when they move away. Domains never fills it; absent when
	// unknown.
	Drift *float64 `json:"drift,omitempty"`
}

// Domains lists the domains of m by id. TopTerms and Examples are empty,
// not nil, when m has none.
func (m *RouterModel) Domains() []DomainInfo {
	var ds []DomainInfo
	for j := range m.K() {
		d := DomainInfo{ID: m.IDs[j], Size: m.Model.Sizes[j], TopTerms: []string{}, Examples: []string{}}
		if j < len(m.TopTerms) && m.TopTerms[j] != nil {
			d.TopTerms = m.TopTerms[j]
		}
		if j < len(m.Examples) && m.Examples[j] != nil {
			d.Examples = m.Examples[j]
		}
		if j < len(m.Distances) {
			d.Distances = &m.Distances[j]
		}
		if j < len(m.Origins) {
			o := m.Origins[j]
			if o.Version == 0 {
				o.Version = m.Version
			}
			d.Origin = &o
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return ds
}

// SortedIDs returns the domain ids of m in increasing order.
func (m *RouterModel) SortedIDs() []int {
	ids := slices.Clone(m.IDs)
	slices.Sort(ids)
	return ids
}

// SizesByID returns the fit sizes of the domains in increasing order of
// their ids.
func (m *RouterModel) SizesByID() []int {
	ds := m.Domains()
	sizes := make([]int, len(ds))
	for i, d := range ds {
		sizes[i] = d.Size
	}
	return sizes
}

// TopTermCount is how many top terms m keeps per domain: the longest list
// of TopTerms, or 10 when it has none.
func (m *RouterModel) TopTermCount() int {
	n := 0
	for _, t := range m.TopTerms {
		n = max(n, len(t))
	}
	if n == 0 {
		return 10
	}
	return n
}

// Subset returns rows pick of x, in that order, as new rows (a copy).
func (x *Rows) Subset(pick []int) *Rows {
	out := &Rows{N: len(pick), Dim: x.Dim}
	if !x.Sparse() {
		for _, i := range pick {
			_, v := x.Row(i)
			out.Values = append(out.Values, v...)
		}
		return out
	}
	out.Indptr = []int64{0}
	for _, i := range pick {
		idx, v := x.Row(i)
		out.Indices = append(out.Indices, idx...)
		out.Values = append(out.Values, v...)
		out.Indptr = append(out.Indptr, int64(len(out.Values)))
	}
	return out
}
