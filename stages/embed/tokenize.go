package embed

import (
	"encoding/binary"
	"math/bits"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

//go:generate /usr/bin/python3 internal/gen/unicode_tables.py

// Tokenizer splits text into the terms of the tf-idf featurizers. Its
// defaults reproduce c-BTM, which tokenizes with scikit-learn's
// TfidfVectorizer and a number-normalizing tokenizer:
//
//	tokens = re.findall(r"(?u)\b\w\w+\b", text.lower())
//	tokens = ["#NUMBER" if t[0].isdigit() else t for t in tokens]
//	tokens = [t for t in tokens if t not in ENGLISH_STOP_WORDS]
//
// Word characters, digits and lowercasing follow the Python that runs
// scikit-learn (CPython 3.11, Unicode 14; see unicode_tables.go), not Go's
// unicode package: \w is str.isalnum() or '_' (so combining marks split
// words), str.lower() maps 'İ' to "i̇" and a capital sigma to 'ς' at the end
// of a word. Invalid UTF-8 bytes separate words. ASCII text takes a fast path
// through byte tables.
//
// The zero value is not valid; start from DefaultTokenizer. A Tokenizer is
// safe for concurrent use as long as its fields are not changed.
type Tokenizer struct {
	// Lowercase lowercases the text (Python's str.lower) before splitting.
	// Default true.
	Lowercase bool
	// MinLen is the minimum length of a token in code points. Default 2 (the
	// \w\w+ pattern); values below 1 act as 1.
	MinLen int
	// NumberToken replaces every token whose first character is a digit
	// (Python's str.isdigit). Default "#NUMBER"; "" keeps such tokens.
	NumberToken string
	// StopWords are removed after number normalization. Default
	// EnglishStopWords(); nil or empty keeps all tokens. Do not change the
	// map after the Tokenizer's first use (replacing it is fine).
	StopWords map[string]bool

	cache unsafe.Pointer // *stopCache, read and written atomically
}

// stopCache is the stop-word table built from StopWords on first use.
type stopCache struct {
	src   unsafe.Pointer // identity of the StopWords map it was built from
	n     int
	table *termTable
}

// stopTable returns StopWords as a termTable (ids -1), rebuilt when the
// StopWords field was replaced.
func (t *Tokenizer) stopTable() *termTable {
	var id unsafe.Pointer
	if t.StopWords != nil {
		id = reflect.ValueOf(t.StopWords).UnsafePointer()
	}
	if c := (*stopCache)(atomic.LoadPointer(&t.cache)); c != nil && c.src == id && c.n == len(t.StopWords) {
		return c.table
	}
	c := &stopCache{src: id, n: len(t.StopWords), table: newTermTable(len(t.StopWords))}
	for _, w := range t.stopList() {
		c.table.insert([]byte(w), -1)
	}
	atomic.StorePointer(&t.cache, unsafe.Pointer(c))
	return c.table
}

// DefaultTokenizer returns c-BTM's tokenizer: lowercase, tokens of two or
// more word characters, "#NUMBER" for tokens that start with a digit, and
// scikit-learn's English stop words removed.
func DefaultTokenizer() *Tokenizer {
	return &Tokenizer{Lowercase: true, MinLen: 2, NumberToken: "#NUMBER", StopWords: EnglishStopWords()}
}

// scratchPool holds the token buffers of Tokens.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Tokens calls fn for each token of text, in order. tok is a view into a
// scratch buffer, valid only during the call; fn must not modify or keep it
// (copy it with string(tok)). On ASCII text Tokens makes no allocations.
func (t *Tokenizer) Tokens(text string, fn func(tok []byte)) {
	bp := scratchPool.Get().(*[]byte)
	s := t.scanner(text, *bp)
	stop := t.stopTable()
	for {
		tok, ok := s.next()
		if !ok {
			break
		}
		if stop.n > 0 {
			if _, isStop := stop.lookupToken(&s, tok); isStop {
				continue
			}
		}
		fn(tok)
	}
	*bp = s.buf[:0]
	scratchPool.Put(bp)
}

// TokenStrings returns the tokens of text as strings.
func (t *Tokenizer) TokenStrings(text string) []string {
	var out []string
	t.Tokens(text, func(tok []byte) { out = append(out, string(tok)) })
	return out
}

// scanner returns a token scanner over text that uses buf as scratch.
func (t *Tokenizer) scanner(text string, buf []byte) scanner {
	if cap(buf) < minScratch {
		buf = make([]byte, 0, 256)
	}
	return scanner{text: text, buf: buf, lower: t.Lowercase, minLen: max(t.MinLen, 1), number: t.NumberToken, base: -1}
}

// stopList returns the stop words, sorted (for deterministic tables).
func (t *Tokenizer) stopList() []string {
	out := make([]string, 0, len(t.StopWords))
	for w, ok := range t.StopWords {
		if ok {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// Character classes

// Byte classes of the ASCII fast path.
const (
	bSep   = 0 // ASCII, not a word character
	bLower = 1 // a-z and '_'
	bUpper = 2 // A-Z
	bDigit = 4 // 0-9
	bHigh  = 8 // 0x80-0xFF: part of a multi-byte (or invalid) sequence
	bWord  = bLower | bUpper | bDigit
)

// Flags of bmpFlags (Python's view of each code point below 0x10000).
const (
	fWord      = 1 << iota // re's \w
	fDigit                 // str.isdigit()
	fLower                 // str.lower() changes it (see pyLowerFrom, pyLowerMulti)
	fCased                 // cased and not case-ignorable
	fIgnorable             // case-ignorable
)

var (
	byteClass [256]uint8
	byteLower [256]byte
	bmpFlags  [0x10000]uint8
)

func init() {
	for c := range 256 {
		byteLower[c] = byte(c)
		switch {
		case c >= 0x80:
			byteClass[c] = bHigh
		case c >= 'a' && c <= 'z' || c == '_':
			byteClass[c] = bLower
		case c >= 'A' && c <= 'Z':
			byteClass[c] = bUpper
			byteLower[c] = byte(c) + 'a' - 'A'
		case c >= '0' && c <= '9':
			byteClass[c] = bDigit
		}
	}
	for _, x := range []struct {
		t    *unicode.RangeTable
		flag uint8
	}{{pyWord, fWord}, {pyDigit, fDigit}, {pyCased, fCased}, {pyCaseIgnorable, fIgnorable}} {
		for _, r := range x.t.R16 {
			for c := int(r.Lo); c <= int(r.Hi); c += int(r.Stride) {
				bmpFlags[c] |= x.flag
			}
		}
	}
	for _, c := range pyLowerFrom {
		if c < 0x10000 {
			bmpFlags[c] |= fLower
		}
	}
	for c := range pyLowerMulti {
		if c < 0x10000 {
			bmpFlags[c] |= fLower
		}
	}
}

// runeFlags returns the fWord, fDigit, fCased and fIgnorable flags of r
// (fLower only below 0x10000).
func runeFlags(r rune) uint8 {
	if r < 0x10000 {
		if r < 0 {
			return 0
		}
		return bmpFlags[r]
	}
	var f uint8
	if unicode.Is(pyWord, r) {
		f |= fWord
	}
	if unicode.Is(pyDigit, r) {
		f |= fDigit
	}
	if unicode.Is(pyCased, r) {
		f |= fCased
	}
	if unicode.Is(pyCaseIgnorable, r) {
		f |= fIgnorable
	}
	return f
}

// pyLower returns Python's str.lower() of the character r at text[i:i+size]:
// one rune, or a longer string in multi. The context matters only for a
// capital sigma (CPython's Final_Sigma rule, handle_capital_sigma).
func pyLower(text string, i, size int, r rune) (lo rune, multi string) {
	if r < 0x80 {
		return rune(byteLower[r]), ""
	}
	if r == 0x3a3 {
		if finalSigma(text, i, size) {
			return 0x3c2, ""
		}
		return 0x3c3, ""
	}
	if r < 0x10000 && bmpFlags[r]&fLower == 0 {
		return r, ""
	}
	if m, ok := pyLowerMulti[r]; ok {
		return 0, m
	}
	if k, ok := slicesBinarySearch(pyLowerFrom, r); ok {
		return pyLowerTo[k], ""
	}
	return r, ""
}

// slicesBinarySearch finds r in the sorted table.
func slicesBinarySearch(table []rune, r rune) (int, bool) {
	lo, hi := 0, len(table)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if table[m] < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(table) && table[lo] == r
}

// finalSigma reports whether the capital sigma at text[i:i+size] is in the
// Final_Sigma context: \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}*\p{cased}).
// Invalid bytes are neither cased nor case-ignorable.
func finalSigma(text string, i, size int) bool {
	j := i
	found := false
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(text[:j])
		j -= n
		f := runeFlags(r)
		if r == utf8.RuneError && n == 1 {
			f = 0
		}
		if f&fIgnorable != 0 {
			continue
		}
		found = f&fCased != 0
		break
	}
	if !found {
		return false
	}
	for j = i + size; j < len(text); {
		r, n := utf8.DecodeRuneInString(text[j:])
		j += n
		f := runeFlags(r)
		if r == utf8.RuneError && n == 1 {
			f = 0
		}
		if f&fIgnorable != 0 {
			continue
		}
		return f&fCased == 0
	}
	return true
}

// ---------------------------------------------------------------------------
// Scanner

// minScratch is the least capacity of a scanner's buffer: termTable reads
// 16 bytes of a token's buffer whatever its length.
const minScratch = 64

// scanner yields the tokens of one text before stop-word removal: maximal
// runs of word characters (after lowercasing) of at least minLen code
// points, with number normalization applied. The featurizers drive it
// directly and remove stop words with their own tables.
type scanner struct {
	text   string
	pos    int
	buf    []byte // scratch; the returned token lives here
	lower  bool
	minLen int
	number string

	// The bitmaps of the 64-byte block of text at base (a multiple of 64;
	// -1 before the first): bit k of word is set when text[base+k] is an
	// ASCII word character, of high when it is a byte >= 0x80. Bytes past
	// the end of text are separators.
	base       int
	word, high uint64

	// k1, k2 hold the returned token packed as packKey does, when it has at
	// most 16 bytes: the featurizers' tables compare these instead of bytes.
	k1, k2 uint64
}

// next returns the next token, or ok == false at the end of the text. The
// token is valid until the following call.
func (s *scanner) next() (tok []byte, ok bool) {
	text := s.text
	n := len(text)
	for {
		// Find the next word or non-ASCII byte.
		i := s.pos
		var m uint64
		for {
			if i >= n {
				s.pos = n
				return nil, false
			}
			b := i &^ 63
			if b != s.base {
				s.load(b)
			}
			if m = (s.word | s.high) & (^uint64(0) << uint(i-b)); m != 0 {
				i = b + bits.TrailingZeros64(m)
				break
			}
			i = b + 64
		}
		start := i
		if s.high>>uint(i-s.base)&1 == 0 {
			// An ASCII word: find its end, the first byte that is not.
			for {
				b := i &^ 63
				if b != s.base {
					s.load(b)
				}
				if m = ^s.word & (^uint64(0) << uint(i-b)); m != 0 {
					i = min(b+bits.TrailingZeros64(m), n)
					break
				}
				i = b + 64
			}
			if i == n || text[i] < 0x80 {
				// A token made of ASCII only: the common case.
				s.pos = i
				l := i - start
				if l < s.minLen {
					continue
				}
				if s.number != "" && byteClass[text[start]] == bDigit {
					return s.numberToken(), true
				}
				if l <= 16 && start+16 <= n {
					// Two loads cover the word; lowercase and pack in
					// registers (bytes past the word are masked off; they
					// cannot disturb it, as SWAR carries only move up).
					x0, x1 := load64(text, start), load64(text, start+8)
					if s.lower {
						x0, x1 = lowerWord(x0), lowerWord(x1)
					}
					// Branch-free masks (a shift by >= 64 gives 0 in Go).
					x0 &= 1<<(8*uint(l)) - 1
					x1 &= 1<<(8*uint(max(l-8, 0))) - 1
					b := s.buf[:16]
					binary.LittleEndian.PutUint64(b, x0)
					binary.LittleEndian.PutUint64(b[8:], x1)
					s.k1, s.k2 = x0, x1
					s.buf = b[:l]
					return s.buf, true
				}
				if cap(s.buf) < l+8 {
					s.buf = make([]byte, 0, max(2*l+8, minScratch))
				}
				b := s.buf[:l]
				if s.lower {
					lowerASCII(b[:cap(b)], text, start, l)
				} else {
					copy(b, text[start:i])
				}
				s.buf = b
				if l <= 16 {
					s.k1, s.k2 = packKey(b)
				}
				return b, true
			}
			// The word goes on past ASCII: redo it on the slow path.
		}
		tok, end, ok := s.slow(start)
		s.pos = end
		if ok {
			return tok, true
		}
	}
}

// load computes the bitmaps of the block at base.
func (s *scanner) load(base int) {
	s.base = base
	text := s.text
	full := base+64 <= len(text)
	var pad [64]byte
	if !full {
		copy(pad[:], text[base:])
	}
	var word, high uint64
	for k := 0; k < 8; k++ {
		var x uint64
		if full {
			x = load64(text, base+8*k)
		} else {
			x = binary.LittleEndian.Uint64(pad[8*k:])
		}
		h := x & hi8
		w := asciiWordMask(x&^hi8) &^ h // exact: no byte >= 0x80, no carries
		// Gather the 8 high bits into one byte: bit 8j+7 goes to bit j.
		word |= ((w >> 7) * 0x0102040810204080 >> 56) << (8 * k)
		high |= ((h >> 7) * 0x0102040810204080 >> 56) << (8 * k)
	}
	s.word, s.high = word, high
}

// SWAR (SIMD within a register) helpers over 8 bytes of text, little-endian:
// byte k of a word is text[i+k]. The results are exact for the bytes below
// the first byte >= 0x80 (carries only move towards higher bytes).
const (
	lo7 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// load64 reads text[i:i+8] as a little-endian word.
func load64(text string, i int) uint64 {
	t := text[i : i+8]
	return uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
		uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
}

// asciiWordMask sets the high bit of each byte of x that is an ASCII word
// character, [0-9A-Za-z_]: for a range [lo, hi], x + (0x80-lo) has the high
// bit set where the byte is >= lo and x + (0x7f-hi) where it is > hi.
func asciiWordMask(x uint64) uint64 {
	l := x | lo7*0x20
	letters := (l + lo7*(0x80-'a')) &^ (l + lo7*(0x7f-'z'))
	digits := (x + lo7*(0x80-'0')) &^ (x + lo7*(0x7f-'9'))
	under := ^((x ^ lo7*'_') + lo7*0x7f)
	return (letters | digits | under) & hi8
}

// lowerWord lowercases the ASCII letters of x (exact below its first byte
// >= 0x80).
func lowerWord(x uint64) uint64 {
	return x | ((x+lo7*(0x80-'A'))&^(x+lo7*(0x7f-'Z'))&hi8)>>2
}

// lowerASCII writes the l ASCII bytes text[start:start+l] lowercased to
// dst, 8 at a time; dst must have room for l+7 bytes (the last word may
// spill; bytes past the word cannot disturb it, as carries only move up).
func lowerASCII(dst []byte, text string, start, l int) {
	j := 0
	for ; j < l && start+j+8 <= len(text); j += 8 {
		binary.LittleEndian.PutUint64(dst[j:j+8], lowerWord(load64(text, start+j)))
	}
	for ; j < l; j++ {
		dst[j] = byteLower[text[start+j]]
	}
}

// slow scans one token that involves non-ASCII text, starting at a word
// boundary i. It decodes and lowercases rune by rune, consumes the
// character that ends the token, and returns the position after it; ok is
// false when the run was shorter than minLen (or there was none).
func (s *scanner) slow(i int) (tok []byte, end int, ok bool) {
	text := s.text
	b := s.buf[:0]
	runes := 0
	digitFirst := false
	// add feeds one (lowercased) rune; it reports whether the token ended.
	add := func(r rune) bool {
		var f uint8
		if r < 0x80 {
			if byteClass[r]&bWord != 0 {
				f = fWord
				if byteClass[r] == bDigit {
					f |= fDigit
				}
			}
		} else {
			f = runeFlags(r)
		}
		if f&fWord == 0 {
			return runes > 0
		}
		if runes == 0 {
			digitFirst = f&fDigit != 0
		}
		runes++
		b = utf8.AppendRune(b, r)
		return false
	}
	for i < len(text) {
		c := text[i]
		var r rune
		size := 1
		if c < 0x80 {
			r = rune(c)
		} else {
			r, size = utf8.DecodeRuneInString(text[i:])
			if r == utf8.RuneError && size == 1 {
				r = -1 // invalid byte: a separator
			}
		}
		at := i
		i += size
		ended := false
		switch {
		case r < 0:
			ended = runes > 0
		case !s.lower:
			ended = add(r)
		default:
			lo, multi := pyLower(text, at, size, r)
			if multi == "" {
				ended = add(lo)
			} else {
				for _, m := range multi {
					if add(m) {
						ended = true
					}
				}
			}
		}
		if ended {
			break
		}
		if runes == 0 {
			// Nothing started: leave the separator's end as a boundary,
			// back on the fast path when it is ASCII.
			s.buf = b
			return nil, i, false
		}
	}
	s.buf = b
	if runes < s.minLen {
		return nil, i, false
	}
	if digitFirst && s.number != "" {
		return s.numberToken(), i, true
	}
	if len(b) <= 16 {
		s.k1, s.k2 = packKey(b)
	}
	return b, i, true
}

// numberToken returns NumberToken in the buffer, packed.
func (s *scanner) numberToken() []byte {
	s.buf = append(s.buf[:0], s.number...)
	if len(s.buf) <= 16 {
		s.k1, s.k2 = packKey(s.buf)
	}
	return s.buf
}

// reset starts the scanner on a new text, keeping its buffer.
func (s *scanner) reset(text string) { s.text, s.pos, s.base = text, 0, -1 }

// ---------------------------------------------------------------------------
// Term tables

// termTable maps tokens to int32 ids: an open-addressing hash table for
// tokens of up to 16 bytes, each packed into two words (so a probe compares
// two integers and hashes no string), with a Go map for longer ones. It is
// the vocabulary index of the tf-idf featurizers and the stop-word set of
// Tokens. Lookups need the token in a buffer with capacity >= 16 (a
// scanner's buffer): the bytes past its length are read and masked off.
type termTable struct {
	slots []termSlot
	shift uint // 64 - log2(len(slots))
	n     int  // entries, long ones included
	long  map[string]int32
}

type termSlot struct {
	k1, k2 uint64
	size   int32 // token length + 1; 0 marks an empty slot
	id     int32
}

func newTermTable(capacity int) *termTable {
	size := 16
	for 3*size < 5*capacity { // load factor at most 0.6
		size *= 2
	}
	t := &termTable{slots: make([]termSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	prefault(t.slots)
	return t
}

// packKey packs a token of at most 16 bytes; b's capacity must be >= 16.
func packKey(b []byte) (k1, k2 uint64) {
	n := len(b)
	w := b[:16]
	k1 = binary.LittleEndian.Uint64(w)
	k2 = binary.LittleEndian.Uint64(w[8:])
	if n < 8 {
		return k1 & (1<<(8*uint(n)) - 1), 0
	}
	return k1, k2 & (1<<(8*uint(n-8)) - 1)
}

func (t *termTable) home(k1, k2 uint64, n int) uint64 {
	h := (k1 ^ bits.RotateLeft64(k2, 29) ^ uint64(n)<<58) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return h >> t.shift
}

// lookupPacked returns the id of the token of n <= 16 bytes packed in
// k1, k2.
func (t *termTable) lookupPacked(k1, k2 uint64, n int) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	size := int32(n + 1)
	for i := t.home(k1, k2, n); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.k1 == k1 && s.k2 == k2 && s.size == size {
			return s.id, true
		}
		if s.size == 0 {
			return 0, false
		}
	}
}

// lookupToken returns the id of the scanner's current token tok.
func (t *termTable) lookupToken(s *scanner, tok []byte) (int32, bool) {
	if len(tok) <= 16 {
		return t.lookupPacked(s.k1, s.k2, len(tok))
	}
	id, ok := t.long[string(tok)]
	return id, ok
}

// lookup returns the id of tok.
func (t *termTable) lookup(tok []byte) (int32, bool) {
	n := len(tok)
	if n > 16 {
		id, ok := t.long[string(tok)]
		return id, ok
	}
	if cap(tok) < 16 {
		tok = append(make([]byte, 0, 16), tok...)
	}
	k1, k2 := packKey(tok)
	mask := uint64(len(t.slots) - 1)
	size := int32(n + 1)
	for i := t.home(k1, k2, n); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.k1 == k1 && s.k2 == k2 && s.size == size {
			return s.id, true
		}
		if s.size == 0 {
			return 0, false
		}
	}
}

// set gives tok the id, adding it when absent.
func (t *termTable) set(tok []byte, id int32) {
	if _, ok := t.lookup(tok); !ok {
		t.insert(tok, id)
		return
	}
	if len(tok) > 16 {
		t.long[string(tok)] = id
		return
	}
	tok = append(make([]byte, 0, 16), tok...)
	k1, k2 := packKey(tok)
	mask := uint64(len(t.slots) - 1)
	for i := t.home(k1, k2, len(tok)); ; i = (i + 1) & mask {
		if s := &t.slots[i]; s.k1 == k1 && s.k2 == k2 && s.size == int32(len(tok)+1) {
			s.id = id
			return
		}
	}
}

// insert adds tok, which must be absent, with id.
func (t *termTable) insert(tok []byte, id int32) {
	n := len(tok)
	t.n++
	if n > 16 {
		if t.long == nil {
			t.long = make(map[string]int32)
		}
		t.long[string(tok)] = id
		return
	}
	if cap(tok) < 16 {
		tok = append(make([]byte, 0, 16), tok...)
	}
	if 5*(t.n-len(t.long)) > 3*len(t.slots) {
		t.grow()
	}
	k1, k2 := packKey(tok)
	t.put(termSlot{k1: k1, k2: k2, size: int32(n + 1), id: id})
}

func (t *termTable) put(e termSlot) {
	mask := uint64(len(t.slots) - 1)
	i := t.home(e.k1, e.k2, int(e.size-1))
	for t.slots[i].size != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = e
}

func (t *termTable) grow() {
	old := t.slots
	t.slots = make([]termSlot, 2*len(old))
	prefault(t.slots)
	t.shift--
	for _, e := range old {
		if e.size != 0 {
			t.put(e)
		}
	}
}
