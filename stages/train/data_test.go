package train

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// collect adds docs one at a time and drains every batch after each Add,
// returning the batches as strings "inputs|targets".
func collect(p *Packer, docs ...string) []string {
	var out []string
	for _, d := range docs {
		p.Add([]byte(d))
		for {
			in, tg, ok := p.Next()
			if !ok {
				break
			}
			out = append(out, toStr(in)+"|"+toStr(tg))
		}
	}
	return out
}

func toStr(x []int32) string {
	b := make([]byte, len(x))
	for i, v := range x {
		b[i] = byte(v)
	}
	return string(b)
}

func TestPacker(t *testing.T) {
	tests := []struct {
		name    string
		T, B    int
		docs    []string
		want    []string
		pending int
	}{
		{"nothing", 2, 2, nil, nil, 0},
		{"too short", 2, 2, []string{"abc"}, nil, 4},
		{"one lane short", 2, 2, []string{"abcd"}, nil, 5},
		{"a row from each doc", 2, 2, []string{"ab", "cd"}, []string{"abcd|b.d."}, 2},
		{"empty docs", 2, 1, []string{"", "", ""}, []string{"..|.."}, 1},
		{"across docs", 3, 1, []string{"ab", "cd"}, []string{"ab.|b.c"}, 3},
		{"long doc is one row of many batches", 2, 2, []string{"abcdefghij", "xy", "z"}, []string{"abxy|bcy.", "cd.z|dez."}, 8},
		{"docs go to the shortest lane", 1, 2, []string{"a", "bb", "c"}, []string{"ab|.b", ".b|c."}, 3},
		{"B=1 T=1", 1, 1, []string{"xy"}, []string{"x|y", "y|."}, 1},
	}
	for _, tt := range tests {
		p := NewPacker(tt.T, tt.B, '.')
		got := collect(p, tt.docs...)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: batches %q, want %q", tt.name, got, tt.want)
		}
		if p.Pending() != tt.pending {
			t.Errorf("%s: Pending() = %d, want %d", tt.name, p.Pending(), tt.pending)
		}
	}
}

// TestPackerStateRoundTrip cuts a stream at every point, carries the state
// to a fresh packer and checks that the batches after the cut are the same
// as without the cut.
func TestPackerStateRoundTrip(t *testing.T) {
	var docs []string
	for i := range 40 {
		docs = append(docs, fmt.Sprintf("doc %d %s", i, bytes.Repeat([]byte{'x'}, i%7)))
	}
	all := collect(NewPacker(5, 3, '\n'), docs...)
	for cut := range len(docs) + 1 {
		p := NewPacker(5, 3, '\n')
		before := collect(p, docs[:cut]...)
		state := p.State()
		q := NewPacker(5, 3, '\n')
		q.Add([]byte("junk that Restore must drop"))
		if err := q.Restore(state); err != nil {
			t.Fatal(err)
		}
		if q.Pending() != p.Pending() {
			t.Fatalf("cut %d: Pending after Restore = %d, want %d", cut, q.Pending(), p.Pending())
		}
		after := collect(q, docs[cut:]...)
		if got := append(before, after...); !slices.Equal(got, all) {
			t.Fatalf("cut %d: batches differ from an uncut run", cut)
		}
	}
	for _, junk := range []string{"nope", "dfpk2", "dfpk2\x02\x05ab", "dfpk2\x01\x01ab"} {
		if err := NewPacker(1, 1, 0).Restore([]byte(junk)); !errors.Is(err, ErrPackerState) {
			t.Errorf("Restore(%q) = %v, want ErrPackerState", junk, err)
		}
	}
}

// TestPackerRestoreOtherShape: a state restored into a packer with another
// number of lanes, or a version 1 state, keeps every pending byte, each
// saved lane's bytes in order.
func TestPackerRestoreOtherShape(t *testing.T) {
	p := NewPacker(4, 3, '\n')
	collect(p, "first document", "second", "third one", "4")
	for _, b := range []int{1, 2, 5} {
		q := NewPacker(4, b, '\n')
		if err := q.Restore(p.State()); err != nil {
			t.Fatal(err)
		}
		if q.Pending() != p.Pending() {
			t.Errorf("B=%d: Pending after Restore = %d, want %d", b, q.Pending(), p.Pending())
		}
	}
	q := NewPacker(4, 2, '\n')
	if err := q.Restore([]byte("dfpk1abcdefghij")); err != nil {
		t.Fatal(err)
	}
	if q.Pending() != 10 {
		t.Errorf("version 1 state: Pending = %d, want 10", q.Pending())
	}
	if got := collect(q, "xyzw"); !slices.Equal(got, []string{"abcdxyzw|bcdeyzw\n"}) {
		t.Errorf("version 1 state: batches %q", got)
	}
}

// TestPackerCompacts checks that a long stream does not grow the buffer.
func TestPackerCompacts(t *testing.T) {
	p := NewPacker(16, 4, 0)
	doc := bytes.Repeat([]byte("0123456789"), 10)
	for range 10000 {
		p.Add(doc)
		for {
			if _, _, ok := p.Next(); !ok {
				break
			}
		}
	}
	for i, l := range p.lanes {
		if c := cap(l.buf); c > 4096 {
			t.Errorf("lane %d: buffer capacity %d after a long stream, want it bounded", i, c)
		}
	}
}

func FuzzPackerState(f *testing.F) {
	f.Add([]byte("hello"), []byte("world"), 3, 2)
	f.Fuzz(func(t *testing.T, a, b []byte, T, B int) {
		T, B = 1+abs(T)%8, 1+abs(B)%4
		p := NewPacker(T, B, '\n')
		p.Add(a)
		p.Next()
		q := NewPacker(T, B, '\n')
		if err := q.Restore(p.State()); err != nil {
			t.Fatal(err)
		}
		if x, y := collect(p, string(b)), collect(q, string(b)); !slices.Equal(x, y) {
			t.Fatalf("restored packer gives %q, original %q", y, x)
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
