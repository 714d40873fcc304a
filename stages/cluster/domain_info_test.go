package cluster

import (
	"fmt"
	"reflect"
	"testing"
)

func TestRouterModelDomains(t *testing.T) {
	model := func(sizes ...int) *Model {
		return &Model{K: len(sizes), Dim: 1, Centroids: make([]float32, len(sizes)), Sizes: sizes}
	}
	tests := []struct {
		name      string
		rm        *RouterModel
		want      []DomainInfo
		sizes     []int
		ids       []int
		termCount int
	}{
		{
			name: "ids out of order, terms and examples",
			rm: &RouterModel{IDs: []int{5, 0, 2}, Model: model(10, 20, 30),
				TopTerms: [][]string{{"a", "b"}, nil, {"c"}}, Examples: [][]string{{"x"}, {"y", "z"}, nil}},
			want: []DomainInfo{
				{ID: 0, Size: 20, TopTerms: []string{}, Examples: []string{"y", "z"}},
				{ID: 2, Size: 30, TopTerms: []string{"c"}, Examples: []string{}},
				{ID: 5, Size: 10, TopTerms: []string{"a", "b"}, Examples: []string{"x"}},
			},
			sizes: []int{20, 30, 10}, ids: []int{0, 2, 5}, termCount: 2,
		},
		{
			name: "no terms, no examples",
			rm:   &RouterModel{IDs: []int{1, 3}, Model: model(4, 3)},
			want: []DomainInfo{
				{ID: 1, Size: 4, TopTerms: []string{}, Examples: []string{}},
				{ID: 3, Size: 3, TopTerms: []string{}, Examples: []string{}},
			},
			sizes: []int{4, 3}, ids: []int{1, 3}, termCount: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rm.Domains(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Domains() = %+v, want %+v", got, tt.want)
			}
			if got := tt.rm.SizesByID(); !reflect.DeepEqual(got, tt.sizes) {
				t.Errorf("SizesByID() = %v, want %v", got, tt.sizes)
			}
			ids := append([]int(nil), tt.rm.IDs...)
			if got := tt.rm.SortedIDs(); !reflect.DeepEqual(got, tt.ids) {
				t.Errorf("SortedIDs() = %v, want %v", got, tt.ids)
			}
			if !reflect.DeepEqual(tt.rm.IDs, ids) {
				t.Errorf("SortedIDs changed IDs to %v", tt.rm.IDs)
			}
			if got := tt.rm.TopTermCount(); got != tt.termCount {
				t.Errorf("TopTermCount() = %d, want %d", got, tt.termCount)
			}
		})
	}
}

func TestRowsSubset(t *testing.T) {
	sparse := &Rows{N: 3, Dim: 4, Indptr: []int64{0, 1, 1, 3}, Indices: []int32{2, 0, 3}, Values: []float32{1, 2, 3}}
	dense := &Rows{N: 3, Dim: 2, Values: []float32{1, 2, 3, 4, 5, 6}}
	tests := []struct {
		x    *Rows
		pick []int
		want *Rows
	}{
		{sparse, []int{2, 0}, &Rows{N: 2, Dim: 4, Indptr: []int64{0, 2, 3}, Indices: []int32{0, 3, 2}, Values: []float32{2, 3, 1}}},
		{sparse, []int{1}, &Rows{N: 1, Dim: 4, Indptr: []int64{0, 0}}},
		{sparse, nil, &Rows{N: 0, Dim: 4, Indptr: []int64{0}}},
		{dense, []int{1, 1, 0}, &Rows{N: 3, Dim: 2, Values: []float32{3, 4, 3, 4, 1, 2}}},
		{dense, nil, &Rows{N: 0, Dim: 2}},
	}
	for _, tt := range tests {
		got := tt.x.Subset(tt.pick)
		if fmt.Sprint(*got) != fmt.Sprint(*tt.want) {
			t.Errorf("Subset(%v) of %+v = %+v, want %+v", tt.pick, *tt.x, *got, *tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Subset(%v): %v", tt.pick, err)
		}
	}
}
