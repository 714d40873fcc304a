package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// HashingConfig configures FitHashing. The zero value is scikit-learn's
// HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None)
// with c-BTM's tokenizer, followed by TfidfTransformer() (smooth idf, L2
// norm).
type HashingConfig struct {
	// Tokenizer splits the texts. Default DefaultTokenizer().
	Tokenizer *Tokenizer
	// Features is the number of hashed columns. Default 1<<18.
	Features int
	// AlternateSign gives a token the sign of its hash, as scikit-learn's
	// alternate_sign=True. Default false. Counts that cancel to zero are
	// dropped (scikit-learn keeps them as explicit zeros and counts them in
	// the document frequency), and with SublinearTF a negative count c
	// weighs -(1 + ln|c|) (scikit-learn gives NaN).
	AlternateSign bool
	// SublinearTF uses 1 + ln(tf) for the term frequency. Default false.
	SublinearTF bool
	// NoSmoothIDF uses idf = ln(n/df) + 1 instead of the default
	// ln((1+n)/(1+df)) + 1; columns absent from the fit texts then get
	// ln(n) + 1 (scikit-learn gives infinity).
	NoSmoothIDF bool
	// NoNorm leaves rows unnormalized instead of the default unit L2 norm.
	NoNorm bool
	// Workers is the number of goroutines. Default runtime.GOMAXPROCS(0).
	// The output does not depend on it.
	Workers int
}

func (c HashingConfig) validate() (HashingConfig, error) {
	if c.Tokenizer == nil {
		c.Tokenizer = DefaultTokenizer()
	}
	if c.Features == 0 {
		c.Features = 1 << 18
	}
	switch {
	case c.Features < 0 || c.Features > math.MaxInt32:
		return c, fmt.Errorf("embed: hashing: features %d is not in [1, 2^31)", c.Features)
	case c.Workers < 0:
		return c, fmt.Errorf("embed: hashing: workers %d is negative", c.Workers)
	}
	return c, nil
}

func (c HashingConfig) workers() int { return TfidfConfig{Workers: c.Workers}.workers() }

// Hashing is a tf-idf featurizer over hashed terms, compatible with
// scikit-learn's HashingVectorizer followed by a TfidfTransformer: a token
// goes to column |murmurhash3_32(token)| mod Features, so the vocabulary is
// unbounded and nothing but the idf (from the document frequencies of the
// fit texts) is learned. Fit it with FitHashing (or FitTransform) or rebuild
// it with NewHashing. Safe for concurrent use.
type Hashing struct {
	Config HashingConfig
	IDF    []float32 // len Config.Features

	stop *stopTable
}

// NewHashing rebuilds a fitted hashing featurizer from its idf.
func NewHashing(cfg HashingConfig, idf []float32) (*Hashing, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(idf) != cfg.Features {
		return nil, fmt.Errorf("embed: hashing: %d idf values for %d features", len(idf), cfg.Features)
	}
	return &Hashing{Config: cfg, IDF: idf, stop: newStopTable(cfg.Tokenizer.stopList())}, nil
}

// FitHashing computes the idf of the hashed columns over texts.
func FitHashing(ctx context.Context, texts []string, cfg HashingConfig) (*Hashing, error) {
	h, _, err := fitHashing(ctx, texts, cfg, false)
	return h, err
}

// Dim is the number of hashed columns.
func (h *Hashing) Dim() int { return h.Config.Features }

// Kind is KindHashing.
func (h *Hashing) Kind() Kind { return KindHashing }

// FitTransform fits h's configuration to texts, replacing its idf, and
// returns the tf-idf rows of texts, tokenizing each text once. h may be a
// zero Hashing.
func (h *Hashing) FitTransform(ctx context.Context, texts []string) (Vectors, error) {
	f, x, err := fitHashing(ctx, texts, h.Config, true)
	if err != nil {
		return Vectors{}, err
	}
	*h = *f
	return x, nil
}

// Transform returns the tf-idf rows of texts: a CSR matrix with one row per
// text, in order, columns increasing.
func (h *Hashing) Transform(ctx context.Context, texts []string) (Vectors, error) {
	if h.stop == nil || len(h.IDF) != h.Config.Features {
		return Vectors{}, errors.New("embed: hashing: not fitted")
	}
	chunks, _, err := hashChunks(ctx, texts, h.Config, h.stop, true, false)
	if err != nil {
		return Vectors{}, err
	}
	m, err := assemble(ctx, h.Config.workers(), chunks, len(texts), h.Config.Features, h.IDF, h.Config.SublinearTF, !h.Config.NoNorm)
	if err != nil {
		return Vectors{}, err
	}
	return Vectors{Sparse: m}, nil
}

func fitHashing(ctx context.Context, texts []string, cfg HashingConfig, keep bool) (*Hashing, Vectors, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, Vectors{}, err
	}
	stop := newStopTable(cfg.Tokenizer.stopList())
	chunks, df, err := hashChunks(ctx, texts, cfg, stop, keep, true)
	if err != nil {
		return nil, Vectors{}, err
	}
	return finishHashing(ctx, cfg, stop, chunks, df, len(texts), keep)
}

// FitTransformStream fits h's configuration on the texts delivered by next,
// chunk by chunk, and returns the tf-idf rows of all of them in delivery
// order: the same idf and rows, bit for bit, as FitTransform on the
// concatenation of the chunks, whatever Workers is. next returns the next
// chunk of texts, or io.EOF (with no texts) when there are no more; any
// other error aborts and is returned. Tokenization of a chunk starts as
// soon as next returns it, concurrently with the next call to next, using
// at most Workers goroutines in total (the caller's goroutine, which calls
// next, is separate). The texts of a chunk must stay valid until
// FitTransformStream returns. On error h is unchanged.
func (h *Hashing) FitTransformStream(ctx context.Context, next func() ([]string, error)) (Vectors, error) {
	cfg, err := h.Config.validate()
	if err != nil {
		return Vectors{}, err
	}
	stop := newStopTable(cfg.Tokenizer.stopList())
	hw := newHashWork(cfg, stop, true, true)
	chunks, n, err := streamChunks(ctx, cfg.workers(), next, "hashing", hw.run)
	if err != nil {
		return Vectors{}, err
	}
	f, x, err := finishHashing(ctx, cfg, stop, chunks, hw.df(), n, true)
	if err != nil {
		return Vectors{}, err
	}
	*h = *f
	return x, nil
}

// finishHashing computes the idf from the document frequencies df of n
// documents and, with keep, weighs the chunks' rows.
func finishHashing(ctx context.Context, cfg HashingConfig, stop *stopTable, chunks []chunk, df []int32, n int, keep bool) (*Hashing, Vectors, error) {
	idf := make([]float32, cfg.Features)
	vals := newIDFTable(n, len(df), !cfg.NoSmoothIDF)
	for i, d := range df {
		idf[i] = vals.at(int64(d))
	}
	h := &Hashing{Config: cfg, IDF: idf, stop: stop}
	if !keep {
		return h, Vectors{}, nil
	}
	m, err := assemble(ctx, cfg.workers(), chunks, n, cfg.Features, idf, cfg.SublinearTF, !cfg.NoNorm)
	if err != nil {
		return nil, Vectors{}, err
	}
	return h, Vectors{Sparse: m}, nil
}

// hashChunks tokenizes and hashes texts in parallel: with keep, each
// chunk's rows as sorted (column, count) pairs; with wantDF, the document
// frequency of each column.
func hashChunks(ctx context.Context, texts []string, cfg HashingConfig, stop *stopTable, keep, wantDF bool) ([]chunk, []int32, error) {
	nw := cfg.workers()
	chunks := splitChunks(texts, nw)
	hw := newHashWork(cfg, stop, keep, wantDF)
	err := runChunks(ctx, nw, len(chunks), func(w, c int) {
		ch := &chunks[c]
		hw.run(w, ch, texts[ch.lo:ch.hi])
	})
	if err != nil {
		return nil, nil, err
	}
	return chunks, hw.df(), nil
}

// hashWork is the tokenizing and hashing of chunks by a pool of workers,
// each with its own state (created on first use). Per token a worker does
// one scanner step and, for the frequent tokens that hit its memo, one
// cache-resident probe instead of murmur3 and the stop-word table; a
// document's column keys are then radix-sorted and run-length counted (no
// per-token hash table).
type hashWork struct {
	cfg          HashingConfig
	stop         *stopTable
	hs           hasher
	keyBits      int
	keep, wantDF bool
	states       []*hashState
}

type hashState struct {
	sc         scanner
	memo       *[memoSize]memoEntry
	keys, tmp  []uint32
	df         []int32
	cols, cnts []int32
}

func newHashWork(cfg HashingConfig, stop *stopTable, keep, wantDF bool) *hashWork {
	return &hashWork{cfg: cfg, stop: stop, hs: newHasher(cfg.Features, cfg.AlternateSign),
		keyBits: bits.Len32(uint32(cfg.Features-1)) + 1, keep: keep, wantDF: wantDF,
		states: make([]*hashState, cfg.workers())}
}

// run hashes texts, the documents of ch, on worker w: with keep, into ch's
// rows; with wantDF, counting the document frequencies.
func (hw *hashWork) run(w int, ch *chunk, texts []string) {
	cfg, stop, hs, keyBits, keep, wantDF := hw.cfg, hw.stop, hw.hs, hw.keyBits, hw.keep, hw.wantDF
	st := hw.states[w]
	if st == nil {
		st = &hashState{sc: cfg.Tokenizer.scanner("", make([]byte, 0, 256)), memo: new([memoSize]memoEntry)}
		if wantDF {
			st.df = make([]int32, cfg.Features)
		}
		hw.states[w] = st
	}
	ch.worker = w
	cols, cnts := st.cols[:0], st.cnts[:0]
	if keep {
		ch.reserve()
		cols, cnts = ch.cols, ch.cnt
	}
	for _, text := range texts {
		// Each token's key is its column and sign bit; sorting the
		// document's keys groups a column's tokens for counting.
		st.sc.reset(text)
		keys := st.keys[:0]
		for {
			tk, ok := st.sc.next()
			if !ok {
				break
			}
			var key uint32
			if n := len(tk); n <= 16 {
				// Frequent tokens hit the memo and skip murmur3 and the
				// stop-word table.
				k1, k2 := st.sc.k1, st.sc.k2
				e := &st.memo[memoSlot(k1, k2)]
				if e.k1 == k1 && e.k2 == k2 && e.size == int32(n+1) {
					key = e.key
				} else {
					hv := murmur3Packed(k1, k2, n)
					key = stopKey
					if !stop.hasPacked(k1, k2, n, hv) {
						key = hs.key(hv)
					}
					*e = memoEntry{k1: k1, k2: k2, size: int32(n + 1), key: key}
				}
			} else if hv := murmur3(tk); stop.long != nil && stop.long[string(tk)] {
				key = stopKey
			} else {
				key = hs.key(hv)
			}
			if key == stopKey {
				continue
			}
			keys = append(keys, key)
		}
		st.keys = keys
		start := len(cols)
		cols, cnts = appendCounts(cols, cnts, keys, &st.tmp, keyBits)
		if wantDF {
			for _, cl := range cols[start:] {
				st.df[cl]++
			}
		}
		if keep {
			ch.nnz = append(ch.nnz, int32(len(cols)-start))
		} else {
			cols, cnts = cols[:0], cnts[:0]
		}
	}
	if keep {
		ch.cols, ch.cnt = cols, cnts
	} else {
		st.cols, st.cnts = cols, cnts
	}
}

// df sums the workers' document frequencies (nil without wantDF).
func (hw *hashWork) df() []int32 {
	if !hw.wantDF {
		return nil
	}
	df := make([]int32, hw.cfg.Features)
	for _, st := range hw.states {
		if st == nil {
			continue
		}
		for i, d := range st.df {
			df[i] += d
		}
	}
	return df
}

// The memo of a hashing worker: a direct-mapped cache from a token (of at
// most 16 bytes, packed) to its key (column and sign) or stopKey.
const (
	memoBits = 12
	memoSize = 1 << memoBits
)

// stopKey marks a stop word in the memo; no column's key can be all ones
// (columns are below 2^31 - 1).
const stopKey = ^uint32(0)

type memoEntry struct {
	k1, k2 uint64
	size   int32 // token length + 1; 0 marks an empty entry
	key    uint32
}

func memoSlot(k1, k2 uint64) uint64 {
	return ((k1 * 0x9e3779b97f4a7c15) ^ k2) * 0xbf58476d1ce4e5b9 >> (64 - memoBits)
}

// appendCounts sorts one document's token keys (column<<1 | 1 for a
// negative sign; keyBits significant bits) and appends its (column, summed
// count) pairs in column order to cols and cnts, leaving out counts that
// cancel to zero. tmp is scratch.
func appendCounts(cols, cnts []int32, keys []uint32, tmp *[]uint32, keyBits int) ([]int32, []int32) {
	n := len(keys)
	if n == 0 {
		return cols, cnts
	}
	if n <= 48 {
		for i := 1; i < n; i++ {
			k := keys[i]
			j := i
			for j > 0 && keys[j-1] > k {
				keys[j] = keys[j-1]
				j--
			}
			keys[j] = k
		}
	} else {
		radixSort32(keys, tmp, keyBits)
	}
	col, cnt := keys[0]>>1, int32(1-2*(keys[0]&1))
	for _, k := range keys[1:] {
		if c := k >> 1; c != col {
			if cnt != 0 {
				cols = append(cols, int32(col))
				cnts = append(cnts, cnt)
			}
			col, cnt = c, 0
		}
		cnt += int32(1 - 2*(k&1))
	}
	if cnt != 0 {
		cols = append(cols, int32(col))
		cnts = append(cnts, cnt)
	}
	return cols, cnts
}

// radixSort32 sorts keys of keyBits significant bits: an LSD radix sort
// with as few passes of at most 11-bit digits as cover keyBits.
func radixSort32(keys []uint32, tmp *[]uint32, keyBits int) {
	passes := (keyBits + 10) / 11
	width := uint((keyBits + passes - 1) / passes)
	if cap(*tmp) < len(keys) {
		*tmp = make([]uint32, len(keys), 2*len(keys))
	}
	a, b := keys, (*tmp)[:len(keys)]
	var count [1 << 11]int32
	mask := uint32(1)<<width - 1
	for p := range passes {
		shift := uint(p) * width
		cn := count[:mask+1]
		clear(cn)
		for _, k := range a {
			cn[k>>shift&mask]++
		}
		var sum int32
		for d, c := range cn {
			cn[d] = sum
			sum += c
		}
		for _, k := range a {
			d := k >> shift & mask
			b[cn[d]] = k
			cn[d]++
		}
		a, b = b, a
	}
	if passes%2 == 1 {
		copy(keys, a)
	}
}

// hasher maps a token's murmur hash to its column and sign as
// scikit-learn's _hashing_fast does: column abs(h) % n for the signed hash
// h (with abs(-2^31) % n taken as (2^31-1 - (n-1)) % n), sign -1 for h < 0
// when alternating.
type hasher struct {
	n    uint32
	mask uint32 // n-1 when n is a power of two, else 0
	alt  bool
}

func newHasher(n int, alt bool) hasher {
	h := hasher{n: uint32(n), alt: alt}
	if n&(n-1) == 0 {
		h.mask = uint32(n - 1)
	}
	return h
}

// key is the token's column shifted left by one, with the low bit set for a
// negative sign.
func (h hasher) key(hv uint32) uint32 {
	col, sign := h.column(hv)
	return uint32(col)<<1 | uint32(sign)>>31
}

func (h hasher) column(hv uint32) (col, sign int32) {
	s := int32(hv)
	sign = 1
	if h.alt && s < 0 {
		sign = -1
	}
	var a uint32
	switch {
	case s == math.MinInt32:
		return int32((math.MaxInt32 - (h.n - 1)) % h.n), sign
	case s < 0:
		a = uint32(-s)
	default:
		a = uint32(s)
	}
	if h.mask != 0 || h.n == 1 {
		return int32(a & h.mask), sign
	}
	return int32(a % h.n), sign
}

// murmur3 is MurmurHash3_x86_32 of b with seed 0, scikit-learn's
// murmurhash3_32 (read as int32 for the signed hash).
func murmur3(b []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(b)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch n - i {
	case 3:
		k ^= uint32(b[i+2]) << 16
		fallthrough
	case 2:
		k ^= uint32(b[i+1]) << 8
		fallthrough
	case 1:
		k ^= uint32(b[i])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// murmur3Packed is murmur3 of a token of n <= 16 bytes packed as packKey
// does (little-endian, zero past n), in registers and without branches on
// n: it runs all four block rounds, keeps the state after n/4 of them, and
// mixes the tail block unconditionally (a zero block mixes to zero).
func murmur3Packed(k1, k2 uint64, n int) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	mix := func(k uint32) uint32 { return bits.RotateLeft32(k*c1, 15) * c2 }
	round := func(h, k uint32) uint32 { return bits.RotateLeft32(h^mix(k), 13)*5 + 0xe6546b64 }
	h1 := round(0, uint32(k1))
	h2 := round(h1, uint32(k1>>32))
	h3 := round(h2, uint32(k2))
	h4 := round(h3, uint32(k2>>32))
	nb := uint(n >> 2)
	var h uint32
	if nb == 1 {
		h = h1
	}
	if nb == 2 {
		h = h2
	}
	if nb == 3 {
		h = h3
	}
	if nb == 4 {
		h = h4
	}
	// The tail block is the 32 bits after the nb whole ones (shifts by 64
	// or more give 0 in Go, so this is 0 for n == 16 too).
	tail := uint32(k1>>(32*nb) | k2>>(32*(nb-2)))
	h ^= mix(tail)
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// stopTable is a set of stop words keyed by their murmur hash, so that the
// hashing featurizer checks a token with the hash it computes anyway; a
// slot holds the word packed as in termTable, so a hit compares integers.
type stopTable struct {
	mask  uint32
	slots []stopSlot
	long  map[string]bool // words over 16 bytes
}

type stopSlot struct {
	h      uint32
	size   int32 // word length + 1; 0 marks an empty slot
	k1, k2 uint64
}

func newStopTable(words []string) *stopTable {
	size := 16
	for size < 4*len(words) {
		size *= 2
	}
	t := &stopTable{mask: uint32(size - 1), slots: make([]stopSlot, size)}
	for _, w := range words {
		if len(w) > 16 {
			if t.long == nil {
				t.long = make(map[string]bool)
			}
			t.long[w] = true
			continue
		}
		b := append(make([]byte, 0, 16), w...)
		h := murmur3(b)
		k1, k2 := packKey(b)
		j := h & t.mask
		for t.slots[j].size != 0 {
			j = (j + 1) & t.mask
		}
		t.slots[j] = stopSlot{h: h, size: int32(len(w) + 1), k1: k1, k2: k2}
	}
	return t
}

// has reports whether tok (with murmur hash h) is a stop word. tok's
// capacity must be >= 16 (a scanner's buffer).
func (t *stopTable) has(tok []byte, h uint32) bool {
	if len(tok) > 16 {
		return t.long != nil && t.long[string(tok)]
	}
	k1, k2 := packKey(tok)
	return t.hasPacked(k1, k2, len(tok), h)
}

// hasPacked reports whether the token of n <= 16 bytes packed in k1, k2,
// with murmur hash h, is a stop word.
func (t *stopTable) hasPacked(k1, k2 uint64, n int, h uint32) bool {
	size := int32(n + 1)
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if s.size == 0 {
			return false
		}
		if s.h == h && s.size == size && s.k1 == k1 && s.k2 == k2 {
			return true
		}
	}
}

// hashingFactory registers KindHashing: fitted on a stream, its rows
// reported as they are weighed; its state is the idf of the buckets.
var hashingFactory = Factory{
	FitStream: func(ctx context.Context, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error) {
		h := &Hashing{Config: opt.Hashing}
		v, err := h.FitTransformStream(withRowsProgress(ctx, opt), next)
		if err != nil {
			return nil, Vectors{}, err
		}
		return h, v, nil
	},
	Settings: func(f Featurizer, set *Settings) error {
		h := f.(*Hashing)
		c := h.Config
		set.Tokenizer = tokenizerSettings(c.Tokenizer)
		set.Hashing = &HashingSettings{Features: h.Dim(), AlternateSign: c.AlternateSign, SublinearTF: c.SublinearTF, NoSmoothIDF: c.NoSmoothIDF, NoNorm: c.NoNorm}
		return nil
	},
	Table: func(f Featurizer) StateTable { return StateTable{IDF: f.(*Hashing).IDF} },
	Load: func(set *Settings, t StateTable) (Featurizer, error) {
		h := set.Hashing
		if set.Tokenizer == nil || h == nil {
			return nil, errors.New("hashing state without settings")
		}
		return NewHashing(HashingConfig{Tokenizer: set.Tokenizer.tokenizer(), Features: h.Features, AlternateSign: h.AlternateSign,
			SublinearTF: h.SublinearTF, NoSmoothIDF: h.NoSmoothIDF, NoNorm: h.NoNorm}, t.IDF)
	},
	RowsProgress: true,
}
