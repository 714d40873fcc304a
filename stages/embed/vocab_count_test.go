package embed

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestDocCountsGrowAndCollide counts more distinct keys than the initial
// table holds, including keys that differ only in size or only in k2 and
// long-token keys equal to packed ones but for their size, and checks every
// count and the order of first occurrence.
func TestDocCountsGrowAndCollide(t *testing.T) {
	type key struct {
		k1, k2 uint64
		size   int32
	}
	d := newDocCounts()
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []key
	for i := range 3 << docCountsMinBits {
		k := key{uint64(i % 97), uint64(i / 97), int32(i%3 + 1)}
		if i%5 == 0 {
			k = key{uint64(i), 0, longSize}
		}
		keys = append(keys, k)
	}
	want := make(map[key]int32)
	var first []key
	for range 20000 {
		k := keys[rng.IntN(len(keys))]
		if want[k] == 0 {
			first = append(first, k)
		}
		want[k]++
		d.add(k.k1, k.k2, k.size)
	}
	if len(d.used) != len(first) {
		t.Fatalf("%d used slots, want %d", len(d.used), len(first))
	}
	if len(d.slots) < 2*len(first) {
		t.Errorf("%d slots for %d keys: load factor above 0.5", len(d.slots), len(first))
	}
	for j, i := range d.used {
		e := d.slots[i]
		k := key{e.k1, e.k2, e.size}
		if k != first[j] {
			t.Fatalf("used[%d] is %+v, want %+v (first occurrence order)", j, k, first[j])
		}
		if e.count != want[k] {
			t.Errorf("count of %+v is %d, want %d", k, e.count, want[k])
		}
	}
}

// TestVocabWorkerDoc checks doc's pairs and the worker's document and total
// counts against TokenStrings, on documents that mix short, 16-byte, long
// (> 16 bytes), non-ASCII, number and stop-word tokens, with the same terms
// spread over documents.
func TestVocabWorkerDoc(t *testing.T) {
	tok := DefaultTokenizer()
	w := newVocabWorker(tok, tok.stopList())
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"the", "and", "ab", "sixteen_bytes_ok", "seventeen_bytes_x", "a_very_long_identifier_name",
		"Straße", "ÉCOLE", "naïve_and_longer_than_16", "42", "3rd", "x", "go", "Go", "GO"}
	for i := range 2500 {
		words = append(words, fmt.Sprintf("w%dterm%s", i, strings.Repeat("z", i%20)))
	}
	wantDF := make(map[string]int64)
	wantTF := make(map[string]int64)
	for range 40 {
		var sb strings.Builder
		for range rng.IntN(6000) {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteString(" ,. "[rng.IntN(4):][:1])
		}
		text := sb.String()
		want := make(map[string]int32)
		for _, s := range tok.TokenStrings(text) {
			want[s]++
		}
		cols, cnt := w.doc(text, nil, nil)
		got := make(map[string]int32)
		for j, id := range cols {
			s := string(w.term(id))
			if _, dup := got[s]; dup {
				t.Fatalf("term %q twice in a document's pairs", s)
			}
			got[s] = cnt[j]
		}
		if len(got) != len(want) {
			t.Fatalf("%d distinct terms, want %d", len(got), len(want))
		}
		for s, c := range want {
			if got[s] != c {
				t.Errorf("count of %q is %d, want %d", s, got[s], c)
			}
			wantDF[s]++
			wantTF[s] += int64(c)
		}
		if len(w.local.used) != 0 {
			t.Fatalf("document-local table not emptied: %d used", len(w.local.used))
		}
		for i, e := range w.local.slots {
			if e.size != 0 {
				t.Fatalf("document-local slot %d not emptied", i)
			}
		}
	}
	if n := len(w.offs) - 1; n != len(wantDF) {
		t.Errorf("vocabulary of %d terms, want %d", n, len(wantDF))
	}
	for id := range int32(len(w.offs) - 1) {
		s := string(w.term(id))
		if st := w.stats[id]; st.df != wantDF[s] || st.tf != wantTF[s] {
			t.Errorf("%q: df %d tf %d, want %d %d", s, st.df, st.tf, wantDF[s], wantTF[s])
		}
	}
}

// TestSortTerms checks the radix sort against the byte order, on terms
// that share long prefixes (equal keys) and differ in length only.
func TestSortTerms(t *testing.T) {
	tok := DefaultTokenizer()
	w := newVocabWorker(tok, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	seen := make(map[string]bool)
	var terms []string
	for range 5000 {
		b := make([]byte, 1+rng.IntN(20))
		for i := range b {
			b[i] = "abcé_0"[rng.IntN(6)]
		}
		s := string(b)
		if seen[s] {
			continue
		}
		seen[s] = true
		terms = append(terms, s)
		w.add(append(make([]byte, 0, 32), s...))
	}
	w.sortTerms()
	for i := 1; i < len(w.order); i++ {
		a, b := string(w.term(w.order[i-1])), string(w.term(w.order[i]))
		if a >= b {
			t.Fatalf("order[%d] = %q not before order[%d] = %q", i-1, a, i, b)
		}
	}
	if len(w.order) != len(terms) {
		t.Fatalf("%d ordered, want %d", len(w.order), len(terms))
	}
}
