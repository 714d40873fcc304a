package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRoutingStateRoundTrip(t *testing.T) {
	for _, counts := range []map[int]int64{
		{},
		{0: 0},
		{0: 40, 1: 30, 2: 27},
		{7: 1 << 40, 12: 3},
	} {
		before := time.Now().UTC().Add(-time.Second)
		b := EncodeRoutingState(5, counts)
		got, err := DecodeRoutingState(b)
		if err != nil {
			t.Fatalf("DecodeRoutingState(%s): %v", b, err)
		}
		if !maps.Equal(got, counts) {
			t.Errorf("DecodeRoutingState(EncodeRoutingState(5, %v)) = %v, want %v", counts, got, counts)
		}
		var s RoutingState
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if s.RouterVersion != 5 || s.Saved.Before(before) || s.Saved.Location() != time.UTC {
			t.Errorf("EncodeRoutingState(5, %v) = %s: version %d, saved %v", counts, b, s.RouterVersion, s.Saved)
		}
	}
}

func TestDecodeRoutingState(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[int]int64
		err  string // "" for no error
	}{
		{`{"router_version":1,"counts":{"0":3,"2":5},"saved":"2026-11-27T01:00:00Z"}`, map[int]int64{0: 3, 2: 5}, ""},
		{`{"counts":{"4":0}}`, map[int]int64{4: 0}, ""},
		{`{}`, map[int]int64{}, ""},
		{`{"counts":{"x":3}}`, nil, `bad routing state entry "x": 3`},
		{`{"counts":{"1":-2}}`, nil, `bad routing state entry "1": -2`},
		{`{"counts":`, nil, "unexpected end of JSON input"},
		{`[1,2]`, nil, "cannot unmarshal array"},
	} {
		got, err := DecodeRoutingState([]byte(c.in))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("DecodeRoutingState(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("DecodeRoutingState(%q) error = %v, want %q", c.in, err, c.err)
		case !maps.Equal(got, c.want):
			t.Errorf("DecodeRoutingState(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func ExampleDecodeRoutingState() {
	b := EncodeRoutingState(3, map[int]int64{0: 40, 1: 30})
	counts, err := DecodeRoutingState(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(counts[0], counts[1])
	// Output: 40 30
}

// TestRoutingHistoryNovelty: history lines carry the novelty counters when
// rows were judged, and lines without them (older ones) still decode.
func TestRoutingHistoryNovelty(t *testing.T) {
	tests := []struct {
		name      string
		line      []byte
		wantNovel int64
		wantFrac  map[string]float64
	}{
		{"judged", EncodeRoutingHistory(2, map[int]int64{0: 3}, NoveltyStats{Judged: 10, Novel: 4,
			Windows: []NoveltyWindow{{Size: 1000, Rows: 10, Novel: 4}}}, 0), 4, map[string]float64{"1000": 0.4}},
		{"nothing judged", EncodeRoutingHistory(2, map[int]int64{0: 3}, NoveltyStats{}, 0), 0, nil},
		{"older line", []byte(`{"router_version":2,"counts":{"0":3},"saved":"2026-01-02T03:04:05Z"}`), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s RoutingState
			if err := json.Unmarshal(tt.line, &s); err != nil {
				t.Fatal(err)
			}
			if s.Novel != tt.wantNovel || !reflect.DeepEqual(s.NovelFraction, tt.wantFrac) || s.Counts["0"] != 3 {
				t.Errorf("%s decodes to %+v, want novel %d, fractions %v", tt.line, s, tt.wantNovel, tt.wantFrac)
			}
			if counts, err := DecodeRoutingState(tt.line); err != nil || counts[0] != 3 {
				t.Errorf("DecodeRoutingState = %v, %v", counts, err)
			}
			if tt.wantNovel == 0 && strings.Contains(string(tt.line), "novel") {
				t.Errorf("%s: novelty fields without judged rows", tt.line)
			}
		})
	}
}

// TestRoutingHistoryDrift: history lines carry each domain's drift when the
// stage has one (finite values only), and lines without it still decode.
func TestRoutingHistoryDrift(t *testing.T) {
	tests := []struct {
		name string
		line []byte
		want map[string]float64
	}{
		{"drift", EncodeRoutingHistory(2, map[int]int64{0: 3, 4: 1}, NoveltyStats{Judged: 4,
			Drift: map[int]float64{0: 1.25, 4: 0.5}}, 0), map[string]float64{"0": 1.25, "4": 0.5}},
		{"not finite", EncodeRoutingHistory(2, map[int]int64{0: 3}, NoveltyStats{Judged: 4,
			Drift: map[int]float64{0: math.Inf(1), 1: math.NaN(), 2: 2}}, 0), map[string]float64{"2": 2}},
		{"none", EncodeRoutingHistory(2, map[int]int64{0: 3}, NoveltyStats{Judged: 4, Drift: map[int]float64{}}, 0), nil},
		{"older line", []byte(`{"router_version":2,"counts":{"0":3},"judged":4,"novel":1}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s RoutingState
			if err := json.Unmarshal(tt.line, &s); err != nil {
				t.Fatalf("%s: %v", tt.line, err)
			}
			if !reflect.DeepEqual(s.Drift, tt.want) || s.Counts["0"] != 3 {
				t.Errorf("%s decodes to drift %v, counts %v; want drift %v", tt.line, s.Drift, s.Counts, tt.want)
			}
			if tt.want == nil && strings.Contains(string(tt.line), "drift") {
				t.Errorf("%s: a drift field without drift", tt.line)
			}
		})
	}
}

func TestReadRoutingHistory(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		versions []int64
		bad      int
	}{
		{"empty", "", nil, 0},
		{"blank lines", "\n  \n", nil, 0},
		{"one line", `{"router_version":1,"counts":{"0":1},"saved":"2026-11-27T01:00:00Z"}` + "\n", []int64{1}, 0},
		{"a damaged line between", `{"router_version":1,"counts":{"0":1}}` + "\n{not json\n" + `{"router_version":2,"counts":{}}`, []int64{1, 2}, 1},
		{"no counts, not an object", `{"router_version":3}` + "\n[1]\n", nil, 2},
		{"last line cut short", `{"router_version":1,"counts":{"0":1}}` + "\n" + `{"router_version":2,"cou`, []int64{1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, bad, err := ReadRoutingHistory(strings.NewReader(tt.in))
			var versions []int64
			for _, s := range lines {
				versions = append(versions, s.RouterVersion)
			}
			if err != nil || bad != tt.bad || !slices.Equal(versions, tt.versions) {
				t.Errorf("ReadRoutingHistory(%q) = versions %v, %d bad, %v; want %v, %d", tt.in, versions, bad, err, tt.versions, tt.bad)
			}
		})
	}
}

func TestLatestDrift(t *testing.T) {
	line := func(drift map[string]float64) RoutingState {
		return RoutingState{Counts: map[string]int64{}, Drift: drift}
	}
	tests := []struct {
		name  string
		lines []RoutingState
		want  map[int]float64
	}{
		{"no lines", nil, map[int]float64{}},
		{"lines without drift", []RoutingState{line(nil), line(nil)}, map[int]float64{}},
		{"the last line wins", []RoutingState{line(map[string]float64{"0": 1, "1": 2}), line(map[string]float64{"0": 1.5})},
			map[int]float64{0: 1.5, 1: 2}},
		{"a last line without drift keeps the earlier", []RoutingState{line(map[string]float64{"3": 0.75}), line(nil)},
			map[int]float64{3: 0.75}},
		{"keys that are not ids are ignored", []RoutingState{line(map[string]float64{"x": 9, "2": 1.125})},
			map[int]float64{2: 1.125}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LatestDrift(tt.lines); !maps.Equal(got, tt.want) {
				t.Errorf("LatestDrift = %v, want %v", got, tt.want)
			}
		})
	}
}
