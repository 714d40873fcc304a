package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// guard is how many sentinel elements sit on each side of an output.
const guard = 13

// sentinel32 is the bit pattern of the float32 guards: a quiet NaN with a
// payload no kernel produces.
const sentinel32 = 0x7fc0beef

// sentinelIdx is the value of the int32 guards.
const sentinelIdx = -12345

type elem interface{ float32 | int32 }

func sentinel[E elem]() E {
	var z E
	switch p := any(&z).(type) {
	case *float32:
		*p = math.Float32frombits(sentinel32)
	case *int32:
		*p = sentinelIdx
	}
	return z
}

func sameBits[E elem](a, b E) bool {
	switch x := any(a).(type) {
	case float32:
		return math.Float32bits(x) == math.Float32bits(any(b).(float32))
	}
	return a == b
}

// buf is an output tensor of n elements with guard sentinels before and after
// it in the same backing array. The slice handed to a kernel keeps the
// trailing guards in its capacity, so an out-of-bounds write through a
// reslice lands on a sentinel.
type buf[E elem] struct {
	all []E
	n   int
}

// newBuf returns a buf holding a copy of init (n = len(init)).
func newBuf[E elem](init []E) buf[E] {
	all := make([]E, len(init)+2*guard)
	s := sentinel[E]()
	for i := range all {
		all[i] = s
	}
	copy(all[guard:], init)
	return buf[E]{all: all, n: len(init)}
}

// s is the tensor itself.
func (b buf[E]) s() []E { return b.all[guard : guard+b.n] }

// intact reports whether both guard regions still hold the sentinel.
func (b buf[E]) intact() bool {
	s := sentinel[E]()
	for i := 0; i < guard; i++ {
		if !sameBits(b.all[i], s) || !sameBits(b.all[guard+b.n+i], s) {
			return false
		}
	}
	return true
}

// checkTwin checks two outputs of the same call on the same inputs: guards
// intact and the two results identical bit for bit (determinism).
func checkTwin[E elem](t *testing.T, name string, a, b buf[E]) bool {
	t.Helper()
	if !a.intact() || !b.intact() {
		t.Errorf("%s: write outside the tensor (guard overwritten)", name)
		return false
	}
	x, y := a.s(), b.s()
	for i := range x {
		if !sameBits(x[i], y[i]) {
			t.Errorf("%s: not deterministic: element %d is %v, then %v on the same inputs", name, i, x[i], y[i])
			return false
		}
	}
	return true
}

// frozen remembers inputs so a test can check a kernel left them alone.
type frozen struct {
	names []string
	orig  [][]float32
	live  [][]float32
}

func (f *frozen) add(name string, s []float32) []float32 {
	f.names = append(f.names, name)
	f.orig = append(f.orig, append([]float32(nil), s...))
	f.live = append(f.live, s)
	return s
}

func (f *frozen) check(t *testing.T, kernel string) {
	t.Helper()
	for k, s := range f.live {
		for i := range s {
			if math.Float32bits(s[i]) != math.Float32bits(f.orig[k][i]) {
				t.Errorf("%s: input %s modified at %d", kernel, f.names[k], i)
				break
			}
		}
	}
}

// near checks got against the float64 oracle want elementwise:
// |got-want| <= tol·(|want| + max|want|). The second term is the absolute
// part of the tolerance, scaled to the tensor's magnitude. NaN in both is a
// match; NaN or Inf in one alone is not.
func near(t *testing.T, name string, got []float32, want []float64, tol float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		if !math.IsInf(w, 0) && !math.IsNaN(w) {
			scale = max(scale, math.Abs(w))
		}
	}
	bad := 0
	var msg strings.Builder
	for i, w := range want {
		g := float64(got[i])
		ok := false
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			ok = math.IsNaN(w) && math.IsNaN(g)
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			ok = g == w
		default:
			ok = math.Abs(g-w) <= tol*(math.Abs(w)+scale)
		}
		if !ok {
			if bad < 5 {
				fmt.Fprintf(&msg, "\n\t[%d] = %.9g, want %.9g (diff %.3g, allowed %.3g)", i, g, w, g-w, tol*(math.Abs(w)+scale))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values off:%s", name, bad, len(want), msg.String())
		return false
	}
	return true
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, v := range s {
		d[i] = float32(v)
	}
	return d
}

// uniform returns n values uniform in [lo, hi).
func uniform(r *rand.Rand, n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return s
}

// filled returns n copies of v.
func filled(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func nan32() float32 { return float32(math.NaN()) }

// mustPanic checks that f panics (a too-short input is a caller's bug).
func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if recover() == nil {
			t.Errorf("%s: no panic on a too-short slice", name)
		}
	}()
	f()
}
