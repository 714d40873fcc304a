package cluster

import (
	"context"
	"reflect"
	"testing"
)

// TestDomainOrigins: origins survive the Arrow file, the Parquet twin and
// the topic payload, a 0 version becomes the saved router's, a split adds
// one, a remove drops one, a refit keeps the origins of the ids it keeps,
// and a router from before origins has none.
func TestDomainOrigins(t *testing.T) {
	dir := t.TempDir()
	m := testRouter(3, 4, 1)
	m.Origins = FitOrigins(nil, m.IDs)
	v, err := SaveRouter(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []DomainOrigin{{OriginFit, v}, {OriginFit, v}, {OriginFit, v}}
	if !reflect.DeepEqual(m.Origins, want) {
		t.Errorf("after save: %+v, want %+v", m.Origins, want)
	}
	loaded, err := LoadRouter(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.Origins, want) {
		t.Errorf("loaded: %+v, want %+v", loaded.Origins, want)
	}
	b, err := EncodeRouter(loaded)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeRouter(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dec.Origins, want) {
		t.Errorf("over the topic: %+v, want %+v", dec.Origins, want)
	}

	// A split: the new half is OriginSplit of the next version.
	members := &Rows{N: 4, Dim: 4, Values: []float32{1, 0, 0, 0, 0.9, 0.1, 0, 0, 0, 0, 1, 0, 0, 0, 0.9, 0.1}}
	split, err := loaded.SplitDomain(context.Background(), loaded.IDs[0], members, 1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := SaveRouter(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	if got := split.Origins[len(split.Origins)-1]; got != (DomainOrigin{OriginSplit, v2}) {
		t.Errorf("the split's new domain: %+v, want split v%d", got, v2)
	}
	if got := split.Origins[0]; got != (DomainOrigin{OriginFit, v}) {
		t.Errorf("the split's kept half: %+v, want fit v%d", got, v)
	}
	ds := split.Domains()
	n := 0
	for _, d := range ds {
		if d.Origin != nil && d.Origin.How == OriginSplit {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Domains lists %d split domains, want 1", n)
	}
	// A remove drops the removed domain's origin.
	rm, err := split.RemoveDomain(split.IDs[len(split.IDs)-1])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rm.Origins, split.Origins[:len(split.Origins)-1]) {
		t.Errorf("after remove: %+v", rm.Origins)
	}
	// A refit keeps the origins of the ids it keeps; new ids are fits.
	got := FitOrigins(split, []int{split.IDs[0], split.IDs[len(split.IDs)-1], 99})
	wantRefit := []DomainOrigin{{OriginFit, v}, {OriginSplit, v2}, {OriginFit, 0}}
	if !reflect.DeepEqual(got, wantRefit) {
		t.Errorf("FitOrigins after a refit: %+v, want %+v", got, wantRefit)
	}
	// Bad origins are refused.
	bad := loaded.clone()
	bad.Origins[1].How = "magic"
	if _, err := SaveRouter(t.TempDir(), bad); err == nil {
		t.Error("a router with an unknown origin was saved")
	}
	// A router from before origins has none.
	old, err := LoadRouter("testdata/router-pre-novelty", 0)
	if err != nil {
		t.Fatal(err)
	}
	if old.Origins != nil || old.Domains()[0].Origin != nil {
		t.Errorf("an old router has origins %+v", old.Origins)
	}
}
