package embed

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// readGolden decodes a gzipped JSON golden file of testdata/embed (made by
// scripts/golden_tfidf.py).
func readGolden(t testing.TB, name string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "embed", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.NewDecoder(z).Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestTokenize(t *testing.T) {
	def := DefaultTokenizer()
	keepAll := &Tokenizer{Lowercase: true, MinLen: 2, NumberToken: "#NUMBER"}
	raw := &Tokenizer{MinLen: 1}
	for _, tc := range []struct {
		tok  *Tokenizer
		text string
		want []string
	}{
		{def, "", nil},
		{def, "a b c", nil},
		{def, "Hello, World!", []string{"hello", "world"}},
		{def, "Café naïve CAFÉ", []string{"café", "naïve", "café"}},
		{def, "nai\u0308ve", []string{"nai", "ve"}}, // a combining mark is not \w in Python
		{def, "北京大学 東京", []string{"北京大学", "東京"}},
		{def, "2nd x1 1st 42 3.14 _x x_ a_b __", []string{"#NUMBER", "x1", "#NUMBER", "#NUMBER", "#NUMBER", "_x", "x_", "a_b", "__"}},
		{def, "don't won't I'm", []string{"don", "won"}},
		{def, "The cat and THE dog", []string{"cat", "dog"}},
		{def, "²nd ½x ①x", []string{"#NUMBER", "½x", "#NUMBER"}}, // str.isdigit, not isnumeric
		{def, "ΟΔΥΣΣΕΥΣ ΣΑΣ ΑΣ'Α", []string{"οδυσσευς", "σας", "ασ"}},
		{def, "İstanbul \u212aelvin", []string{"stanbul", "kelvin"}}, // İ lowers to i + U+0307
		{def, "ab\xffcd \xc3", []string{"ab", "cd"}},
		{def, "𝐀𝐁 😀😀 a😀b", []string{"𝐀𝐁"}},
		{keepAll, "The cat and THE dog", []string{"the", "cat", "and", "the", "dog"}},
		{raw, "The 2nd A", []string{"The", "2nd", "A"}},
		{&Tokenizer{Lowercase: true, MinLen: 4, NumberToken: "<num>"}, "abc abcd 12345 ÉÉÉÉ", []string{"abcd", "<num>", "éééé"}},
		{&Tokenizer{MinLen: 2, NumberToken: "#NUMBER", StopWords: map[string]bool{"#NUMBER": true}}, "a 12 bb", []string{"bb"}},
	} {
		got := tc.tok.TokenStrings(tc.text)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tokenizer{%v %d %q %d stop words}.TokenStrings(%q) = %q, want %q",
				tc.tok.Lowercase, tc.tok.MinLen, tc.tok.NumberToken, len(tc.tok.StopWords), tc.text, got, tc.want)
		}
	}
}

type tokensGolden struct {
	StopWords []string `json:"stop_words"`
	Cases     []struct {
		Text   string   `json:"text"`
		Tokens []string `json:"tokens"`
		Hashes []int32  `json:"hashes"`
	} `json:"cases"`
}

// TestTokenizeGolden compares with scikit-learn's analyzer (c-BTM's
// NumberNormalizingVectorizer, stop_words="english") on hand-picked and
// random Unicode strings.
func TestTokenizeGolden(t *testing.T) {
	var g tokensGolden
	readGolden(t, "tokens.json.gz", &g)
	if len(g.Cases) < 1000 {
		t.Fatalf("only %d cases", len(g.Cases))
	}
	tok := DefaultTokenizer()
	bad := 0
	for _, c := range g.Cases {
		got := tok.TokenStrings(c.Text)
		if !slices.Equal(got, c.Tokens) && !(len(got) == 0 && len(c.Tokens) == 0) {
			if bad++; bad <= 10 {
				t.Errorf("TokenStrings(%q) = %q, want %q", c.Text, got, c.Tokens)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases differ", bad, len(g.Cases))
	}
}

func TestStopWords(t *testing.T) {
	var g tokensGolden
	readGolden(t, "tokens.json.gz", &g)
	sw := EnglishStopWords()
	if len(sw) != 318 || len(g.StopWords) != 318 {
		t.Fatalf("%d stop words, golden %d, want 318", len(sw), len(g.StopWords))
	}
	for _, w := range g.StopWords {
		if !sw[w] {
			t.Errorf("stop word %q missing", w)
		}
	}
	sw["the"] = false
	if !EnglishStopWords()["the"] {
		t.Error("EnglishStopWords does not return a copy")
	}
}

func TestMurmur3Golden(t *testing.T) {
	var g tokensGolden
	readGolden(t, "tokens.json.gz", &g)
	n := 0
	for _, c := range g.Cases {
		for i, tk := range c.Tokens {
			if got := int32(murmur3([]byte(tk))); got != c.Hashes[i] {
				t.Errorf("murmur3(%q) = %d, want %d", tk, got, c.Hashes[i])
			}
			n++
		}
	}
	for _, tc := range []struct {
		s    string
		want uint32
	}{{"", 0}, {"a", 0x3c2569b2}, {"abcd", 0x43ed676a}, {"hello", 0x248bfa47}} {
		if got := murmur3([]byte(tc.s)); got != tc.want {
			t.Errorf("murmur3(%q) = %#x, want %#x", tc.s, got, tc.want)
		}
	}
	if n < 1000 {
		t.Errorf("only %d hashes checked", n)
	}
}

func TestMurmur3Packed(t *testing.T) {
	for n := 0; n <= 16; n++ {
		b := make([]byte, n, 16)
		for i := range b {
			b[i] = byte('a' + (i*7+n)%26)
		}
		k1, k2 := packKey(b)
		if got, want := murmur3Packed(k1, k2, n), murmur3(b); got != want {
			t.Errorf("murmur3Packed(%q) = %#x, want %#x", b, got, want)
		}
	}
}

func TestScannerPacked(t *testing.T) {
	// Every token of at most 16 bytes comes with its packed key, whichever
	// path made it (fast, near the end of the text, slow, number token).
	tok := DefaultTokenizer()
	for _, text := range []string{
		"alpha BETA gamma 123 Café naïve x", "abcdefghijklmnop abcdefghijklmnopq ab",
		"ΟΔΥΣΣΕΥΣ end", "zz", "the quick brown fox jumps over the lazy dog 2nd",
	} {
		sc := tok.scanner(text, nil)
		for {
			b, ok := sc.next()
			if !ok {
				break
			}
			if len(b) > 16 {
				continue
			}
			if k1, k2 := packKey(b); k1 != sc.k1 || k2 != sc.k2 {
				t.Errorf("%q: token %q packed as %#x %#x, want %#x %#x", text, b, sc.k1, sc.k2, k1, k2)
			}
		}
	}
}

func TestHasherColumn(t *testing.T) {
	for _, tc := range []struct {
		n         int
		alt       bool
		h         uint32
		col, sign int32
	}{
		{1 << 18, false, 5, 5, 1},
		{1 << 18, false, 1<<18 + 7, 7, 1},
		{1 << 18, true, uint32(0xffffffff), 1, -1}, // h = -1
		{1 << 18, true, 0x80000000, (2147483647 - (1<<18 - 1)) % (1 << 18), -1},
		{1000, false, 0x80000000, (2147483647 - 999) % 1000, 1},
		{1000, false, uint32(0xfffffc17), 1001 % 1000, 1}, // h = -1001
		{1, true, 12345, 0, 1},
	} {
		col, sign := newHasher(tc.n, tc.alt).column(tc.h)
		if col != tc.col || sign != tc.sign {
			t.Errorf("hasher(%d, %v).column(%#x) = %d, %d, want %d, %d", tc.n, tc.alt, tc.h, col, sign, tc.col, tc.sign)
		}
	}
}

func TestTokensAllocs(t *testing.T) {
	tok := DefaultTokenizer()
	text := strings.Repeat("The Quick brown fox, 42 jumps over x86_64 dogs! ", 50)
	n := 0
	tok.Tokens(text, func([]byte) { n++ }) // warm the scratch pool
	allocs := testing.AllocsPerRun(20, func() {
		tok.Tokens(text, func(b []byte) { n += len(b) })
	})
	if allocs > 0 {
		t.Errorf("Tokens on ASCII text: %v allocations per call, want 0", allocs)
	}
}

// TestPythonTables spot-checks the generated tables against Go's unicode
// package where Python and Go agree, and at the known differences.
func TestPythonTables(t *testing.T) {
	if pyUnicodeVersion != "14.0.0" {
		t.Logf("tables are for Unicode %s", pyUnicodeVersion)
	}
	for _, tc := range []struct {
		r           rune
		word, digit bool
	}{
		{'a', true, false}, {'_', true, false}, {'5', true, true}, {'é', true, false},
		{'\u0301', false, false}, // combining mark: Go's \pM, not Python's \w
		{'²', true, true}, {'½', true, false}, {'①', true, true}, {'٣', true, true},
		{'北', true, false}, {'\u00a0', false, false}, {'😀', false, false}, {'𝐀', true, false},
		{'\u200d', false, false}, {'ǅ', true, false},
	} {
		if got := unicode.Is(pyWord, tc.r); got != tc.word {
			t.Errorf("pyWord(%U) = %v, want %v", tc.r, got, tc.word)
		}
		if got := unicode.Is(pyDigit, tc.r); got != tc.digit {
			t.Errorf("pyDigit(%U) = %v, want %v", tc.r, got, tc.digit)
		}
		if f := runeFlags(tc.r); (f&fWord != 0) != tc.word || (f&fDigit != 0) != tc.digit {
			t.Errorf("runeFlags(%U) = %b", tc.r, f)
		}
	}
	if !sort.SliceIsSorted(pyLowerFrom, func(i, j int) bool { return pyLowerFrom[i] < pyLowerFrom[j] }) || len(pyLowerFrom) != len(pyLowerTo) {
		t.Fatal("pyLowerFrom is not sorted or does not match pyLowerTo")
	}
	// Where Python and Go both lowercase a character to one rune, they
	// should mostly agree; count the differences to notice a broken table.
	diff := 0
	for i, r := range pyLowerFrom {
		if unicode.ToLower(r) != pyLowerTo[i] {
			diff++
		}
	}
	if diff > 20 {
		t.Errorf("%d of %d lowercase mappings differ from Go's", diff, len(pyLowerFrom))
	}
}

// ---------------------------------------------------------------------------
// Reference tokenizer: rune slices, unicode.Is on the Python tables and
// (for ASCII text) Go's regexp, no fast paths.

var asciiTokenRE = regexp.MustCompile(`\b\w\w+\b`)

func refLower(rs []rune, i int) []rune {
	r := rs[i]
	if r < 0 {
		return []rune{r}
	}
	if r == 0x3a3 { // Final_Sigma
		isCased := func(r rune) bool { return r >= 0 && unicode.Is(pyCased, r) }
		isIgn := func(r rune) bool { return r >= 0 && unicode.Is(pyCaseIgnorable, r) }
		j := i - 1
		for j >= 0 && isIgn(rs[j]) {
			j--
		}
		final := j >= 0 && isCased(rs[j])
		if final {
			k := i + 1
			for k < len(rs) && isIgn(rs[k]) {
				k++
			}
			final = k == len(rs) || !isCased(rs[k])
		}
		if final {
			return []rune{0x3c2}
		}
		return []rune{0x3c3}
	}
	if m, ok := pyLowerMulti[r]; ok {
		return []rune(m)
	}
	if k := sort.Search(len(pyLowerFrom), func(k int) bool { return pyLowerFrom[k] >= r }); k < len(pyLowerFrom) && pyLowerFrom[k] == r {
		return []rune{pyLowerTo[k]}
	}
	return []rune{r}
}

func refTokens(tk *Tokenizer, text string) []string {
	var rs []rune
	for _, r := range text { // invalid bytes (and U+FFFD) become -1: separators
		if r == utf8.RuneError {
			r = -1
		}
		rs = append(rs, r)
	}
	var low []rune
	for i := range rs {
		if tk.Lowercase {
			low = append(low, refLower(rs, i)...)
		} else {
			low = append(low, rs[i])
		}
	}
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) >= max(tk.MinLen, 1) {
			s := string(cur)
			if tk.NumberToken != "" && unicode.Is(pyDigit, cur[0]) {
				s = tk.NumberToken
			}
			if !tk.StopWords[s] {
				out = append(out, s)
			}
		}
		cur = cur[:0]
	}
	for _, r := range low {
		if r >= 0 && unicode.Is(pyWord, r) {
			cur = append(cur, r)
		} else {
			flush()
		}
	}
	flush()
	return out
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func checkTokens(t *testing.T, tk *Tokenizer, text string) {
	var got []string
	tk.Tokens(text, func(b []byte) {
		s := string(b)
		got = append(got, s)
		if s == tk.NumberToken && tk.NumberToken != "" {
			return
		}
		if n := utf8.RuneCountInString(s); n < max(tk.MinLen, 1) {
			t.Fatalf("Tokens(%q): token %q has %d runes", text, s, n)
		}
		for _, r := range s {
			if !unicode.Is(pyWord, r) {
				t.Fatalf("Tokens(%q): token %q has non-word %U", text, s, r)
			}
		}
		if tk.NumberToken != "" && unicode.Is(pyDigit, []rune(s)[0]) {
			t.Fatalf("Tokens(%q): token %q starts with a digit", text, s)
		}
		if tk.Lowercase {
			rs := []rune(s)
			for i := range rs {
				if l := refLower(rs, i); len(l) != 1 || l[0] != rs[i] {
					t.Fatalf("Tokens(%q): token %q is not lowercase at %U", text, s, rs[i])
				}
			}
		}
		if tk.StopWords[s] {
			t.Fatalf("Tokens(%q): stop word %q", text, s)
		}
	})
	if want := refTokens(tk, text); !slices.Equal(got, want) {
		t.Fatalf("Tokens(%q) = %q, reference %q", text, got, want)
	}
	if isASCII(text) && tk.Lowercase && tk.MinLen == 2 {
		var want []string
		for _, s := range asciiTokenRE.FindAllString(strings.ToLower(text), -1) {
			if s[0] >= '0' && s[0] <= '9' && tk.NumberToken != "" {
				s = tk.NumberToken
			}
			if !tk.StopWords[s] {
				want = append(want, s)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Tokens(%q) = %q, regexp %q", text, got, want)
		}
	}
}

func TestTokenizeReference(t *testing.T) {
	var g tokensGolden
	readGolden(t, "tokens.json.gz", &g)
	tks := []*Tokenizer{DefaultTokenizer(), {MinLen: 1}, {Lowercase: true, MinLen: 3, NumberToken: "N"}}
	for _, c := range g.Cases {
		for _, tk := range tks {
			checkTokens(t, tk, c.Text)
		}
	}
}

func FuzzTokenize(f *testing.F) {
	var g tokensGolden
	readGolden(f, "tokens.json.gz", &g)
	for i, c := range g.Cases {
		if i < 40 || i%50 == 0 {
			f.Add(c.Text, uint8(0))
		}
	}
	f.Add("ab\xffcd\xc3\xa9\xe2\x82", uint8(1))
	f.Add("ΑΣ\xffΑ Σ\xce", uint8(2))
	tks := []*Tokenizer{DefaultTokenizer(), {MinLen: 1}, {Lowercase: true, MinLen: 3, NumberToken: "N", StopWords: map[string]bool{"N": true, "éé": true}}}
	f.Fuzz(func(t *testing.T, text string, which uint8) {
		checkTokens(t, tks[int(which)%len(tks)], text)
	})
}

func ExampleTokenizer_Tokens() {
	tok := DefaultTokenizer()
	n := 0
	tok.Tokens("The 2nd Café in Zürich doesn't open before 9am!", func(b []byte) {
		n++
		fmt.Printf("%d:%s\n", n, b) // b is only valid during the call
	})
	fmt.Println(tok.TokenStrings("x86_64 ΟΔΥΣΣΕΥΣ naïve"))
	// Output:
	// 1:#NUMBER
	// 2:café
	// 3:zürich
	// 4:doesn
	// 5:open
	// 6:#NUMBER
	// [x86_64 οδυσσευς naïve]
}
