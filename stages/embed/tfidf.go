package embed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// TfidfConfig configures FitTfidf. The zero value is c-BTM's featurizer:
// scikit-learn's TfidfVectorizer with DefaultTokenizer and default settings
// (smooth idf, L2 norm, raw tf, min_df=1, max_df=1.0, no max_features).
type TfidfConfig struct {
	// Tokenizer splits the texts. Default DefaultTokenizer().
	Tokenizer *Tokenizer
	// MinDF drops terms in fewer documents: a whole number >= 1 is a
	// document count, a value in (0, 1) a fraction of the documents. Default
	// 1 (a count).
	MinDF float64
	// MaxDF drops terms in more documents: a value in (0, 1] is a fraction of
	// the documents, a whole number > 1 a count. Default 1.0 (keep all).
	// (scikit-learn's integer max_df=1 has no equivalent.)
	MaxDF float64
	// MaxFeatures keeps only the terms with the largest total counts, ties
	// broken as scikit-learn 1.2 with numpy 1.24 does (numpy's introsort
	// argsort over the alphabetical vocabulary). Default 0: all terms.
	MaxFeatures int
	// SublinearTF uses 1 + ln(tf) for the term frequency. Default false.
	SublinearTF bool
	// NoSmoothIDF uses idf = ln(n/df) + 1 instead of the default
	// ln((1+n)/(1+df)) + 1.
	NoSmoothIDF bool
	// NoNorm leaves rows unnormalized instead of the default unit L2 norm.
	NoNorm bool
	// Workers is the number of goroutines. Default runtime.GOMAXPROCS(0).
	// The output does not depend on it.
	Workers int
}

// validate checks the configuration and fills in the defaults.
func (c TfidfConfig) validate() (TfidfConfig, error) {
	if c.Tokenizer == nil {
		c.Tokenizer = DefaultTokenizer()
	}
	switch {
	case math.IsNaN(c.MinDF) || c.MinDF < 0 || math.IsInf(c.MinDF, 0):
		return c, fmt.Errorf("embed: tfidf: min_df %v is not a count or a fraction", c.MinDF)
	case c.MinDF > 1 && c.MinDF != math.Trunc(c.MinDF):
		return c, fmt.Errorf("embed: tfidf: min_df %v above 1 must be a whole document count", c.MinDF)
	case math.IsNaN(c.MaxDF) || c.MaxDF < 0 || math.IsInf(c.MaxDF, 0):
		return c, fmt.Errorf("embed: tfidf: max_df %v is not a count or a fraction", c.MaxDF)
	case c.MaxDF > 1 && c.MaxDF != math.Trunc(c.MaxDF):
		return c, fmt.Errorf("embed: tfidf: max_df %v above 1 must be a whole document count", c.MaxDF)
	case c.MaxFeatures < 0:
		return c, fmt.Errorf("embed: tfidf: max_features %d is negative", c.MaxFeatures)
	case c.Workers < 0:
		return c, fmt.Errorf("embed: tfidf: workers %d is negative", c.Workers)
	}
	minCount, minFrac := c.MinDF >= 1 || c.MinDF == 0, c.MinDF > 0 && c.MinDF < 1
	maxCount, maxFrac := c.MaxDF > 1, c.MaxDF > 0 && c.MaxDF <= 1
	if (minCount && maxCount && c.minDF() > c.MaxDF) || (minFrac && maxFrac && c.MinDF > c.MaxDF) {
		return c, fmt.Errorf("embed: tfidf: max_df %v corresponds to fewer documents than min_df %v", c.MaxDF, c.MinDF)
	}
	return c, nil
}

func (c TfidfConfig) minDF() float64 {
	if c.MinDF == 0 {
		return 1
	}
	return c.MinDF
}

// docCountLimits returns the document-frequency bounds for n documents, as
// scikit-learn computes them (a fraction times n, as a float).
func (c TfidfConfig) docCountLimits(n int) (lo, hi float64, err error) {
	lo = c.minDF()
	if lo < 1 {
		lo *= float64(n)
	}
	hi = c.MaxDF
	switch {
	case hi == 0:
		hi = float64(n)
	case hi <= 1:
		hi *= float64(n)
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("embed: tfidf: max_df %v corresponds to fewer documents than min_df %v for %d documents", c.MaxDF, c.MinDF, n)
	}
	return lo, hi, nil
}

func (c TfidfConfig) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// ErrEmptyVocabulary is returned by FitTfidf when the texts have no terms
// (scikit-learn's "empty vocabulary") or none survive min_df and max_df.
var ErrEmptyVocabulary = errors.New("embed: tfidf: empty vocabulary")

// Tfidf is a fitted vocabulary tf-idf featurizer, compatible with
// scikit-learn's TfidfVectorizer: Transform gives the same sparse rows (as
// float32, computed in float64). Vocabulary[i] is the term of column i,
// sorted by UTF-8 bytes (Python's code-point order), and IDF[i] its inverse
// document frequency. Fit it with FitTfidf (or FitTransform), or rebuild a
// saved one with NewTfidf. Safe for concurrent use.
type Tfidf struct {
	Config     TfidfConfig
	Vocabulary []string
	IDF        []float32

	idx *tfidfIndex
}

// tfidfIndex maps terms to columns (stop words to -1), built on first use.
type tfidfIndex struct {
	once sync.Once
	m    *termTable
}

// index returns the term → column table.
func (t *Tfidf) index() *termTable {
	t.idx.once.Do(func() {
		if t.idx.m == nil {
			t.idx.m, _ = buildIndex(t.Vocabulary, t.Config.Tokenizer) // a fitted vocabulary has no duplicates
		}
	})
	return t.idx.m
}

// buildIndex maps the vocabulary's terms to their columns and the
// tokenizer's stop words to -1 (it never yields them, even when the
// vocabulary has them), so that one lookup per token does both.
func buildIndex(vocabulary []string, tok *Tokenizer) (*termTable, error) {
	m := newTermTable(len(vocabulary) + len(tok.StopWords))
	for i, w := range vocabulary {
		b := []byte(w)
		if _, dup := m.lookup(b); dup {
			return nil, fmt.Errorf("embed: tfidf: term %q appears twice in the vocabulary", w)
		}
		m.insert(b, int32(i))
	}
	for _, w := range tok.stopList() {
		m.set([]byte(w), -1)
	}
	return m, nil
}

// NewTfidf rebuilds a fitted featurizer from its state. cfg's document
// limits are not applied again.
func NewTfidf(cfg TfidfConfig, vocabulary []string, idf []float32) (*Tfidf, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(vocabulary) != len(idf) {
		return nil, fmt.Errorf("embed: tfidf: %d terms but %d idf values", len(vocabulary), len(idf))
	}
	if len(vocabulary) == 0 {
		return nil, ErrEmptyVocabulary
	}
	if len(vocabulary) > math.MaxInt32 {
		return nil, fmt.Errorf("embed: tfidf: %d terms is too many", len(vocabulary))
	}
	m, err := buildIndex(vocabulary, cfg.Tokenizer)
	if err != nil {
		return nil, err
	}
	return &Tfidf{Config: cfg, Vocabulary: vocabulary, IDF: idf, idx: &tfidfIndex{m: m}}, nil
}

// Dim is the number of columns, the vocabulary size.
func (t *Tfidf) Dim() int { return len(t.Vocabulary) }

// Kind is KindTfidf.
func (t *Tfidf) Kind() Kind { return KindTfidf }

// TopTerms names the n terms w, a vector of the tf-idf space such as a
// k-means centroid, weighs most (see the function TopTerms).
func (t *Tfidf) TopTerms(w []float32, n int) []string { return TopTerms(w, t.Vocabulary, n) }

// FitTfidf learns the vocabulary and idf of texts.
func FitTfidf(ctx context.Context, texts []string, cfg TfidfConfig) (*Tfidf, error) {
	t, _, err := fitTfidf(ctx, texts, cfg, false)
	return t, err
}

// FitTransform fits t's configuration to texts, replacing t's vocabulary and
// idf, and returns the tf-idf rows of texts. It tokenizes each text once.
// t may be a zero Tfidf (use the zero Config for c-BTM's defaults):
//
//	var t embed.Tfidf
//	x, err := t.FitTransform(ctx, texts)
func (t *Tfidf) FitTransform(ctx context.Context, texts []string) (Vectors, error) {
	f, x, err := fitTfidf(ctx, texts, t.Config, true)
	if err != nil {
		return Vectors{}, err
	}
	*t = *f
	return x, nil
}

// Transform returns the tf-idf rows of texts: a CSR matrix with one row per
// text, in order, columns increasing. Terms outside the vocabulary are
// ignored.
func (t *Tfidf) Transform(ctx context.Context, texts []string) (Vectors, error) {
	if t.idx == nil {
		return Vectors{}, errors.New("embed: tfidf: not fitted")
	}
	index := t.index()
	nw := t.Config.workers()
	chunks := splitChunks(texts, nw)
	tok := t.Config.Tokenizer
	type state struct {
		sc        scanner
		memo      *[memoSize]memoEntry // token → column or -1, as in hashChunks
		keys, tmp []uint32
	}
	keyBits := bits.Len32(uint32(len(t.Vocabulary)-1)) + 1
	states := make([]*state, min(nw, len(chunks)))
	err := runChunks(ctx, len(states), len(chunks), func(w, c int) {
		st := states[w]
		if st == nil {
			st = &state{sc: tok.scanner("", make([]byte, 0, 256)), memo: new([memoSize]memoEntry)}
			states[w] = st
		}
		ch := &chunks[c]
		ch.reserve()
		cols, cnt := ch.cols, ch.cnt
		for _, text := range texts[ch.lo:ch.hi] {
			st.sc.reset(text)
			keys := st.keys[:0]
			for {
				tk, ok := st.sc.next()
				if !ok {
					break
				}
				col := int32(-1)
				if n := len(tk); n <= 16 {
					k1, k2 := st.sc.k1, st.sc.k2
					e := &st.memo[memoSlot(k1, k2)]
					if e.k1 == k1 && e.k2 == k2 && e.size == int32(n+1) {
						col = int32(e.key)
					} else {
						if c, ok := index.lookupPacked(k1, k2, n); ok {
							col = c
						}
						*e = memoEntry{k1: k1, k2: k2, size: int32(n + 1), key: uint32(col)}
					}
				} else if c, ok := index.long[string(tk)]; ok {
					col = c
				}
				if col >= 0 {
					keys = append(keys, uint32(col)<<1)
				}
			}
			st.keys = keys
			start := len(cols)
			cols, cnt = appendCounts(cols, cnt, keys, &st.tmp, keyBits)
			ch.nnz = append(ch.nnz, int32(len(cols)-start))
		}
		ch.cols, ch.cnt = cols, cnt
	})
	if err != nil {
		return Vectors{}, err
	}
	m, err := assemble(ctx, nw, chunks, len(texts), len(t.Vocabulary), t.IDF, t.Config.SublinearTF, !t.Config.NoNorm)
	if err != nil {
		return Vectors{}, err
	}
	return Vectors{Sparse: m}, nil
}

// termStat is a worker's record of one local id: its document and total
// counts so far.
type termStat struct {
	df, tf int64
}

// docCounts counts the terms of one document: an open-addressing table from
// a token of at most 16 bytes, packed as the scanner packs it (or a long
// token's local id, with size longSize), to its count. It grows to the
// largest document's distinct terms and is emptied slot by slot as the
// document's terms are resolved, so it stays small enough for the cache.
type docCounts struct {
	slots []docSlot
	used  []int32 // the occupied slots, in order of first occurrence
	shift uint    // 64 - log2(len(slots))
}

// docSlot is one entry of a docCounts.
type docSlot struct {
	k1, k2 uint64
	size   int32 // token length + 1, or longSize; 0 marks an empty slot
	count  int32
}

// longSize marks a docSlot keyed by the local id (in k1) of a token of more
// than 16 bytes.
const longSize = 18

// docCountsMinBits is log2 of a new docCounts' slots: 1024, 24 KiB.
const docCountsMinBits = 10

// newDocCounts returns an empty docCounts.
func newDocCounts() docCounts {
	return docCounts{slots: make([]docSlot, 1<<docCountsMinBits), shift: 64 - docCountsMinBits}
}

// home is the first slot to probe for a key (its size is left out: keys
// that differ only in size are rare).
func (d *docCounts) home(k1, k2 uint64) uint64 {
	return ((k1 * 0x9e3779b97f4a7c15) ^ k2) * 0xbf58476d1ce4e5b9 >> d.shift
}

// add counts one occurrence of the key k1, k2, size.
func (d *docCounts) add(k1, k2 uint64, size int32) {
	mask := uint64(len(d.slots) - 1)
	for i := d.home(k1, k2); ; i = (i + 1) & mask {
		e := &d.slots[i]
		if e.k1 == k1 && e.k2 == k2 && e.size == size {
			e.count++
			return
		}
		if e.size == 0 {
			*e = docSlot{k1: k1, k2: k2, size: size, count: 1}
			d.used = append(d.used, int32(i))
			if 2*len(d.used) > len(d.slots) { // load factor at most 0.5
				d.grow()
			}
			return
		}
	}
}

// grow doubles the table, keeping the order of used.
func (d *docCounts) grow() {
	old := d.slots
	d.slots = make([]docSlot, 2*len(old))
	d.shift--
	mask := uint64(len(d.slots) - 1)
	for j, o := range d.used {
		e := old[o]
		i := d.home(e.k1, e.k2)
		for d.slots[i].size != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = e
		d.used[j] = int32(i)
	}
}

// ---------------------------------------------------------------------------
// Fitting
//
// Phase 1 (parallel over chunks of documents): each worker tokenizes its
// documents into a private vocabulary (term → local id, document and total
// counts) and, for FitTransform, keeps each document's (local id, count)
// pairs. Phase 2: each worker sorts its vocabulary, a k-way merge makes the
// global sorted vocabulary, min_df/max_df/max_features prune it and local ids
// are mapped to columns. Phase 3 (FitTransform, parallel): the kept pairs are
// remapped, sorted per row and weighted into the CSR.

// vocabWorker is one worker's private vocabulary.
type vocabWorker struct {
	sc    scanner
	ids   *termTable // term → local id; stop words → -1
	local docCounts  // the current document's counts
	arena []byte     // the terms' bytes: local id i is arena[offs[i]:offs[i+1]]
	offs  []int32
	stats []termStat // per local id
	order []int32    // local ids sorted by term (phase 2)
	keys  []uint64
	toCol []int32 // local id → column or -1 (phase 2)

	cols []int32 // scratch of FitTfidf (pairs are not kept)
	cnt  []int32
}

func newVocabWorker(tok *Tokenizer, stop []string) *vocabWorker {
	w := &vocabWorker{sc: tok.scanner("", make([]byte, 0, 256)), ids: newTermTable(1 << 14), offs: []int32{0},
		local: newDocCounts()}
	for _, s := range stop {
		w.ids.insert([]byte(s), -1)
	}
	return w
}

// doc counts the terms of one text, appending its (local id, count) pairs
// to cols and cnt (in no particular order).
//
// The tokens are first counted in the small document-local table w.local,
// which stays in cache; only then is each distinct term resolved against
// the (large) vocabulary, once per document.
func (w *vocabWorker) doc(text string, cols, cnt []int32) ([]int32, []int32) {
	w.sc.reset(text)
	lc := &w.local
	for {
		tk, ok := w.sc.next()
		if !ok {
			break
		}
		if n := len(tk); n <= 16 {
			lc.add(w.sc.k1, w.sc.k2, int32(n+1))
		} else if id := w.lookupOrAdd(tk); id >= 0 {
			// A long token is resolved at once; its id is its key.
			lc.add(uint64(id), 0, longSize)
		}
	}
	var buf [16]byte
	for _, i := range lc.used {
		e := &lc.slots[i]
		k1, k2, size, c := e.k1, e.k2, e.size, e.count
		e.size = 0
		var id int32
		if size == longSize {
			id = int32(k1)
		} else if v, ok := w.ids.lookupPacked(k1, k2, int(size-1)); ok {
			id = v
		} else {
			binary.LittleEndian.PutUint64(buf[:8], k1)
			binary.LittleEndian.PutUint64(buf[8:], k2)
			id = w.add(buf[:size-1])
		}
		if id < 0 {
			continue
		}
		st := &w.stats[id]
		st.tf += int64(c)
		st.df++
		cols = append(cols, id)
		cnt = append(cnt, c)
	}
	lc.used = lc.used[:0]
	return cols, cnt
}

// lookupOrAdd returns the local id of the scanner's current token tk,
// adding it to the vocabulary when new (-1 for a stop word).
func (w *vocabWorker) lookupOrAdd(tk []byte) int32 {
	if id, ok := w.ids.lookupToken(&w.sc, tk); ok {
		return id
	}
	return w.add(tk)
}

// add adds tk, which must be absent, to the vocabulary and returns its new
// local id; tk's capacity must be >= 16.
func (w *vocabWorker) add(tk []byte) int32 {
	id := int32(len(w.offs) - 1)
	w.ids.insert(tk, id)
	w.arena = append(w.arena, tk...)
	w.offs = append(w.offs, int32(len(w.arena)))
	w.stats = append(w.stats, termStat{})
	return id
}

// term returns the bytes of local id i.
func (w *vocabWorker) term(i int32) []byte { return w.arena[w.offs[i]:w.offs[i+1]] }

// sortTerms fills w.order with the local ids in term order.
func (w *vocabWorker) sortTerms() {
	n := len(w.offs) - 1
	w.keys = make([]uint64, n)
	// Sort (key, id) pairs by key with an LSD radix sort on 8-bit digits
	// (skipping the digits all keys share); then only runs of equal keys,
	// terms that share their first 8 bytes, need their terms compared. The
	// terms are distinct, so the order is total.
	a, b := make([]keyID, n), make([]keyID, n)
	var or, and uint64 = 0, ^uint64(0)
	for i := range n {
		k := termKey(w.term(int32(i)))
		w.keys[i] = k
		a[i] = keyID{k, int32(i)}
		or |= k
		and &= k
	}
	for shift := uint(0); shift < 64; shift += 8 {
		if byte((or^and)>>shift) == 0 {
			continue
		}
		var count [256]int
		for _, p := range a {
			count[byte(p.key>>shift)]++
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, p := range a {
			d := byte(p.key >> shift)
			b[count[d]] = p
			count[d]++
		}
		a, b = b, a
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && a[j].key == a[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(a[i:j], func(x, y keyID) int { return bytes.Compare(w.term(x.id), w.term(y.id)) })
		}
		i = j
	}
	w.order = make([]int32, n)
	for i, p := range a {
		w.order[i] = p.id
	}
}

// keyID is a local id with its term's key.
type keyID struct {
	key uint64
	id  int32
}

// termKey is the first 8 bytes of s, big-endian and zero-padded: keys
// order strings as bytes.Compare does wherever they differ (a padding
// zero sorts first, as the end of a shorter string does), so equal keys
// are the only ties left to break.
func termKey(s []byte) uint64 {
	var k uint64
	n := min(len(s), 8)
	for i := range n {
		k |= uint64(s[i]) << (56 - 8*i)
	}
	return k
}

func fitTfidf(ctx context.Context, texts []string, cfg TfidfConfig, keep bool) (*Tfidf, Vectors, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, Vectors{}, err
	}
	if len(texts) > math.MaxInt32 {
		return nil, Vectors{}, fmt.Errorf("embed: tfidf: %d texts is too many", len(texts))
	}
	nw := cfg.workers()
	chunks := splitChunks(texts, nw)
	p := newTfidfPhase1(cfg, nw, keep)
	// Phase 1.
	err = runChunks(ctx, nw, len(chunks), func(wi, c int) {
		ch := &chunks[c]
		p.run(wi, ch, texts[ch.lo:ch.hi])
	})
	if err != nil {
		return nil, Vectors{}, err
	}
	return p.finish(ctx, chunks, len(texts))
}

// FitTransformStream fits t's configuration on the texts delivered by next,
// chunk by chunk, and returns the tf-idf rows of all of them in delivery
// order: the same vocabulary, idf and rows, bit for bit, as FitTransform on
// the concatenation of the chunks, whatever Workers is. next returns the
// next chunk of texts, or io.EOF (with no texts) when there are no more;
// any other error aborts and is returned. Tokenization of a chunk starts as
// soon as next returns it, concurrently with the next call to next, using at
// most Workers goroutines in total (the caller's goroutine, which calls
// next, is separate). The texts of a chunk must stay valid until
// FitTransformStream returns. On error t is unchanged.
func (t *Tfidf) FitTransformStream(ctx context.Context, next func() ([]string, error)) (Vectors, error) {
	cfg, err := t.Config.validate()
	if err != nil {
		return Vectors{}, err
	}
	nw := cfg.workers()
	p := newTfidfPhase1(cfg, nw, true)
	chunks, n, err := streamChunks(ctx, nw, next, "tfidf", p.run)
	if err != nil {
		return Vectors{}, err
	}
	f, x, err := p.finish(ctx, chunks, n)
	if err != nil {
		return Vectors{}, err
	}
	*t = *f
	return x, nil
}

// tfidfPhase1 is the state of phase 1: a private vocabulary per worker
// goroutine (created on first use) and, with keep, each chunk's rows as
// (local id, count) pairs.
type tfidfPhase1 struct {
	cfg     TfidfConfig
	nw      int
	keep    bool
	stop    []string
	workers []*vocabWorker
}

func newTfidfPhase1(cfg TfidfConfig, nw int, keep bool) *tfidfPhase1 {
	return &tfidfPhase1{cfg: cfg, nw: nw, keep: keep, stop: cfg.Tokenizer.stopList(), workers: make([]*vocabWorker, nw)}
}

// run counts the terms of texts, the documents of ch, on worker wi.
func (p *tfidfPhase1) run(wi int, ch *chunk, texts []string) {
	w := p.workers[wi]
	if w == nil {
		w = newVocabWorker(p.cfg.Tokenizer, p.stop)
		p.workers[wi] = w
	}
	ch.worker = wi
	if p.keep {
		ch.reserve()
	}
	for _, text := range texts {
		if p.keep {
			n0 := len(ch.cols)
			ch.cols, ch.cnt = w.doc(text, ch.cols, ch.cnt)
			ch.nnz = append(ch.nnz, int32(len(ch.cols)-n0))
		} else {
			w.cols, w.cnt = w.doc(text, w.cols[:0], w.cnt[:0])
		}
	}
}

// finish runs phases 2 and 3 over phase 1's results for n documents in
// chunks (in document order).
func (p *tfidfPhase1) finish(ctx context.Context, chunks []chunk, n int) (*Tfidf, Vectors, error) {
	cfg, nw, keep, workers := p.cfg, p.nw, p.keep, p.workers
	// Phase 2.
	live := slices.DeleteFunc(slices.Clone(workers), func(w *vocabWorker) bool { return w == nil })
	if err := runChunks(ctx, len(live), len(live), func(_, i int) { live[i].sortTerms() }); err != nil {
		return nil, Vectors{}, err
	}
	terms, df, tf := mergeVocab(live)
	if len(terms) == 0 {
		return nil, Vectors{}, fmt.Errorf("%w; perhaps the documents only contain stop words", ErrEmptyVocabulary)
	}
	lo, hi, err := cfg.docCountLimits(n)
	if err != nil {
		return nil, Vectors{}, err
	}
	keepCol := make([]bool, len(terms))
	nkeep := 0
	for i, d := range df {
		if float64(d) >= lo && float64(d) <= hi {
			keepCol[i] = true
			nkeep++
		}
	}
	if cfg.MaxFeatures > 0 && nkeep > cfg.MaxFeatures {
		neg := make([]int64, 0, nkeep)
		where := make([]int32, 0, nkeep)
		for i, k := range keepCol {
			if k {
				neg = append(neg, -tf[i])
				where = append(where, int32(i))
			}
		}
		clear(keepCol)
		for _, j := range numpyArgsort(neg)[:cfg.MaxFeatures] {
			keepCol[where[j]] = true
		}
		nkeep = cfg.MaxFeatures
	}
	if nkeep == 0 {
		return nil, Vectors{}, fmt.Errorf("%w after pruning: lower min_df or raise max_df", ErrEmptyVocabulary)
	}
	col := make([]int32, len(terms)) // global → column or -1
	next := int32(0)
	for i, k := range keepCol {
		if k {
			col[i] = next
			next++
		} else {
			col[i] = -1
		}
	}
	// The kept terms share one string; their idf. With keep, this runs
	// while phase 3 remaps and sorts the rows (which need neither).
	var (
		vocab []string
		idf   []float32
	)
	buildVocab := func() {
		size := 0
		for i, k := range keepCol {
			if k {
				r := terms[i]
				size += len(live[r.w].term(r.id))
			}
		}
		var all strings.Builder
		all.Grow(size)
		ends := make([]int, 0, nkeep)
		idf = make([]float32, 0, nkeep)
		vals := newIDFTable(n, nkeep, !cfg.NoSmoothIDF)
		for i, k := range keepCol {
			if !k {
				continue
			}
			r := terms[i]
			all.Write(live[r.w].term(r.id))
			ends = append(ends, all.Len())
			idf = append(idf, vals.at(df[i]))
		}
		joined := all.String()
		vocab = make([]string, nkeep)
		for i, e := range ends {
			vocab[i] = joined[prevEnd(ends, i):e]
		}
	}
	if !keep {
		buildVocab()
		return &Tfidf{Config: cfg, Vocabulary: vocab, IDF: idf, idx: &tfidfIndex{}}, Vectors{}, nil
	}
	vocabDone := make(chan struct{})
	go func() { // owner: finish, which waits for it below
		defer close(vocabDone)
		buildVocab()
	}()
	// Phase 3.
	for _, w := range live {
		for l, g := range w.toCol {
			w.toCol[l] = col[g]
		}
	}
	tmps := make([][]uint64, nw)
	err = runChunks(ctx, nw, len(chunks), func(wi, c int) {
		ch := &chunks[c]
		toCol := workers[ch.worker].toCol
		var in, out int
		for r, n := range ch.nnz {
			start := out
			for _, id := range ch.cols[in : in+int(n)] {
				if cl := toCol[id]; cl >= 0 {
					ch.cols[out] = cl
					ch.cnt[out] = ch.cnt[in]
					out++
				}
				in++
			}
			sortRow(ch.cols[start:out], ch.cnt[start:out], &tmps[wi])
			ch.nnz[r] = int32(out - start)
		}
		ch.cols, ch.cnt = ch.cols[:out], ch.cnt[:out]
	})
	<-vocabDone
	if err != nil {
		return nil, Vectors{}, err
	}
	t := &Tfidf{Config: cfg, Vocabulary: vocab, IDF: idf, idx: &tfidfIndex{}}
	m, err := assemble(ctx, nw, chunks, n, len(vocab), idf, cfg.SublinearTF, !cfg.NoNorm)
	if err != nil {
		return nil, Vectors{}, err
	}
	return t, Vectors{Sparse: m}, nil
}

// termRef names a worker's local term.
type termRef struct{ w, id int32 }

// mergeVocab merges the workers' sorted vocabularies: the global sorted
// terms (as references to a worker's copy) with their document and total
// counts. It sets each worker's toCol to map local ids to global term
// numbers.
func mergeVocab(ws []*vocabWorker) (terms []termRef, df, tf []int64) {
	total := 0
	for _, w := range ws {
		total += len(w.order)
		w.toCol = make([]int32, len(w.order))
	}
	terms = make([]termRef, 0, total)
	df = make([]int64, 0, total)
	tf = make([]int64, 0, total)
	if len(ws) == 2 {
		terms, df, tf = merge2(ws[0], ws[1], terms, df, tf)
		return terms, df, tf
	}
	pos := make([]int, len(ws))
	// h is a min-heap of worker numbers by their next term.
	h := make([]int, 0, len(ws))
	less := func(a, b int) bool {
		wa, wb := ws[a], ws[b]
		ia, ib := wa.order[pos[a]], wb.order[pos[b]]
		ka, kb := wa.keys[ia], wb.keys[ib]
		if ka != kb {
			return ka < kb
		}
		if c := bytes.Compare(wa.term(ia), wb.term(ib)); c != 0 {
			return c < 0
		}
		return a < b
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			if r := l + 1; r < len(h) && less(h[r], h[l]) {
				l = r
			}
			if !less(h[l], h[i]) {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for i, w := range ws {
		if len(w.order) > 0 {
			h = append(h, i)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	var last []byte
	for len(h) > 0 {
		wi := h[0]
		w := ws[wi]
		id := w.order[pos[wi]]
		if t := w.term(id); len(terms) == 0 || !bytes.Equal(last, t) {
			terms = append(terms, termRef{int32(wi), id})
			df = append(df, 0)
			tf = append(tf, 0)
			last = t
		}
		g := len(terms) - 1
		df[g] += w.stats[id].df
		tf[g] += w.stats[id].tf
		w.toCol[id] = int32(g)
		pos[wi]++
		if pos[wi] == len(w.order) {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	return terms, df, tf
}

// merge2 is mergeVocab for two workers: a two-way merge with the same
// result (a term both have refers to a's copy, as the heap's tie-break on
// the worker number gives).
func merge2(a, b *vocabWorker, terms []termRef, df, tf []int64) ([]termRef, []int64, []int64) {
	add := func(w *vocabWorker, wi int32, id int32) {
		terms = append(terms, termRef{wi, id})
		st := &w.stats[id]
		df = append(df, st.df)
		tf = append(tf, st.tf)
		w.toCol[id] = int32(len(terms) - 1)
	}
	i, j := 0, 0
	for i < len(a.order) && j < len(b.order) {
		ia, ib := a.order[i], b.order[j]
		c := 0
		if ka, kb := a.keys[ia], b.keys[ib]; ka < kb {
			c = -1
		} else if ka > kb {
			c = 1
		} else {
			c = bytes.Compare(a.term(ia), b.term(ib))
		}
		switch {
		case c < 0:
			add(a, 0, ia)
			i++
		case c > 0:
			add(b, 1, ib)
			j++
		default:
			add(a, 0, ia)
			g := len(terms) - 1
			st := &b.stats[ib]
			df[g] += st.df
			tf[g] += st.tf
			b.toCol[ib] = int32(g)
			i++
			j++
		}
	}
	for ; i < len(a.order); i++ {
		add(a, 0, a.order[i])
	}
	for ; j < len(b.order); j++ {
		add(b, 1, b.order[j])
	}
	return terms, df, tf
}

// prevEnd is where term i starts in the joined vocabulary.
func prevEnd(ends []int, i int) int {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}

// idfValue is scikit-learn's idf: ln((1+n)/(1+df)) + 1 smoothed, else
// ln(n/df) + 1 (df is taken as at least 1 there).
func idfValue(n int, df int64, smooth bool) float64 {
	if smooth {
		return math.Log(float64(n+1)/float64(df+1)) + 1
	}
	return math.Log(float64(n)/float64(max(df, 1))) + 1
}

// idfTable holds float32(idfValue(n, df, smooth)) for every df in [0, n]
// when that is fewer values than the columns to weigh: document frequencies
// repeat, and a lookup is cheaper than a logarithm.
type idfTable struct {
	n      int
	smooth bool
	vals   []float32 // nil: compute each value
}

func newIDFTable(n, cols int, smooth bool) idfTable {
	t := idfTable{n: n, smooth: smooth}
	if n < cols/2 {
		t.vals = make([]float32, n+1)
		for d := range t.vals {
			t.vals[d] = float32(idfValue(n, int64(d), smooth))
		}
	}
	return t
}

// at is float32(idfValue(n, df, smooth)).
func (t idfTable) at(df int64) float32 {
	if df >= 0 && df < int64(len(t.vals)) {
		return t.vals[df]
	}
	return float32(idfValue(t.n, df, t.smooth))
}

// numpyArgsort returns the permutation that sorts v ascending exactly as
// numpy 1.24's default argsort (kind="quicksort": an introsort, not stable)
// does for int64, which is how scikit-learn's max_features picks among tied
// counts. Reference: numpy/core/src/npysort/quicksort.cpp, aquicksort_ and
// heapsort.cpp, aheapsort_.
func numpyArgsort(v []int64) []int {
	const small = 15 // SMALL_QUICKSORT
	num := len(v)
	tosort := make([]int, num)
	for i := range tosort {
		tosort[i] = i
	}
	if num < 2 {
		return tosort
	}
	type frame struct{ pl, pr, depth int }
	var stack []frame
	pl, pr := 0, num-1
	cdepth := 0
	for u := num; u > 1; u >>= 1 {
		cdepth++
	}
	cdepth *= 2
	t := tosort
	for {
		if cdepth < 0 {
			numpyAheapsort(v, t[pl:pr+1])
		} else {
			for pr-pl > small {
				pm := pl + (pr-pl)>>1
				if v[t[pm]] < v[t[pl]] {
					t[pm], t[pl] = t[pl], t[pm]
				}
				if v[t[pr]] < v[t[pm]] {
					t[pr], t[pm] = t[pm], t[pr]
				}
				if v[t[pm]] < v[t[pl]] {
					t[pm], t[pl] = t[pl], t[pm]
				}
				vp := v[t[pm]]
				pi, pj := pl, pr-1
				t[pm], t[pj] = t[pj], t[pm]
				for {
					pi++
					for v[t[pi]] < vp {
						pi++
					}
					pj--
					for vp < v[t[pj]] {
						pj--
					}
					if pi >= pj {
						break
					}
					t[pi], t[pj] = t[pj], t[pi]
				}
				pk := pr - 1
				t[pi], t[pk] = t[pk], t[pi]
				cdepth--
				if pi-pl < pr-pi {
					stack = append(stack, frame{pi + 1, pr, cdepth})
					pr = pi - 1
				} else {
					stack = append(stack, frame{pl, pi - 1, cdepth})
					pl = pi + 1
				}
			}
			for pi := pl + 1; pi <= pr; pi++ {
				vi := t[pi]
				vp := v[vi]
				pj := pi
				for pj > pl && vp < v[t[pj-1]] {
					t[pj] = t[pj-1]
					pj--
				}
				t[pj] = vi
			}
		}
		if len(stack) == 0 {
			break
		}
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pl, pr, cdepth = f.pl, f.pr, f.depth
	}
	return tosort
}

// numpyAheapsort is numpy's aheapsort_ (1-based heap over tosort).
func numpyAheapsort(v []int64, tosort []int) {
	n := len(tosort)
	a := func(i int) *int { return &tosort[i-1] }
	for l := n >> 1; l > 0; l-- {
		tmp := *a(l)
		i, j := l, l<<1
		for j <= n {
			if j < n && v[*a(j)] < v[*a(j + 1)] {
				j++
			}
			if v[tmp] < v[*a(j)] {
				*a(i) = *a(j)
				i = j
				j += j
			} else {
				break
			}
		}
		*a(i) = tmp
	}
	for n > 1 {
		tmp := *a(n)
		*a(n) = *a(1)
		n--
		i, j := 1, 2
		for j <= n {
			if j < n && v[*a(j)] < v[*a(j + 1)] {
				j++
			}
			if v[tmp] < v[*a(j)] {
				*a(i) = *a(j)
				i = j
				j += j
			} else {
				break
			}
		}
		*a(i) = tmp
	}
}

// ---------------------------------------------------------------------------
// Shared machinery of the tf-idf featurizers

// chunk is a run of documents [lo, hi) processed by one worker at a time,
// with its rows as (column, count) pairs: row r has nnz[r] pairs.
type chunk struct {
	lo, hi int
	bytes  int
	worker int
	nnz    []int32
	cols   []int32
	cnt    []int32
}

// reserve sizes the pair buffers from the chunk's text size.
func (c *chunk) reserve() {
	n := c.bytes/16 + 16
	c.nnz = make([]int32, 0, c.hi-c.lo)
	c.cols = make([]int32, 0, n)
	c.cnt = make([]int32, 0, n)
}

// splitChunks cuts texts into runs of about equal bytes, several per worker
// so that uneven documents still balance.
func splitChunks(texts []string, workers int) []chunk {
	total := 0
	for _, t := range texts {
		total += len(t)
	}
	return appendChunks(nil, texts, max(total/(workers*8+1), 64<<10))
}

// appendChunks appends texts cut into runs of about target bytes (at most
// 4097 documents) to out.
func appendChunks(out []chunk, texts []string, target int) []chunk {
	lo, b := 0, 0
	for i, t := range texts {
		b += len(t)
		if b >= target || i-lo >= 4096 {
			out = append(out, chunk{lo: lo, hi: i + 1, bytes: b})
			lo, b = i+1, 0
		}
	}
	if lo < len(texts) {
		out = append(out, chunk{lo: lo, hi: len(texts), bytes: b})
	}
	return out
}

// runChunks calls fn(w, i) for i in [0, n) on workers goroutines (w is the
// goroutine's number, for per-worker state), handing out i in order. It
// returns when all calls are done, or early with ctx's error.
func runChunks(ctx context.Context, workers, n int, fn func(w, i int)) error {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(0, i)
		}
		return ctx.Err()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// streamChunkBytes is the size of the chunks a streamed delivery is cut
// into: small enough to balance the workers without knowing the total.
const streamChunkBytes = 64 << 10

// streamAheadBytes bounds how far streamChunks reads ahead of its workers:
// enough queued text that they never wait for the reader.
const streamAheadBytes = 4 << 20

// streamChunks calls next until io.EOF, cuts each delivery into chunks of
// about streamChunkBytes (lo and hi numbering the documents across
// deliveries) and calls fn(w, ch, texts) for each, texts being ch's
// documents, on at most workers goroutines (w is the goroutine's number)
// while the calling goroutine goes on calling next. It returns the chunks
// in delivery order and the number of documents once all calls are done,
// or the first error of next or ctx (after the calls under way are done).
// what names the featurizer in errors.
func streamChunks(ctx context.Context, workers int, next func() ([]string, error), what string, fn func(w int, ch *chunk, texts []string)) ([]chunk, int, error) {
	type job struct {
		ch    *chunk
		texts []string
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu) // a job is queued, or the end
		room    = sync.NewCond(&mu) // pending fell to streamAheadBytes
		queue   []job               // pending jobs are queue[head:]
		head    int
		pending int // bytes of the jobs queued or under way
		eof     bool
		wg      sync.WaitGroup
		started int
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		room.Broadcast()
		mu.Unlock()
	})
	defer stop()
	work := func(w int) {
		defer wg.Done()
		for {
			mu.Lock()
			for head == len(queue) && !eof && ctx.Err() == nil {
				cond.Wait()
			}
			if ctx.Err() != nil || head == len(queue) {
				mu.Unlock()
				return
			}
			j := queue[head]
			queue[head] = job{}
			head++
			mu.Unlock()
			fn(w, j.ch, j.texts)
			mu.Lock()
			pending -= j.ch.bytes
			if pending <= streamAheadBytes {
				room.Signal()
			}
			mu.Unlock()
		}
	}
	var all []*chunk
	n := 0
	var err error
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		// Read ahead of the workers by at most streamAheadBytes: the texts
		// waiting in the queue are memory the process would otherwise
		// touch for nothing.
		mu.Lock()
		for pending > streamAheadBytes && ctx.Err() == nil {
			room.Wait()
		}
		mu.Unlock()
		var texts []string
		texts, err = next()
		eofNow := errors.Is(err, io.EOF)
		if err != nil && !eofNow {
			break
		}
		err = nil
		if len(texts) > math.MaxInt32-n {
			err = fmt.Errorf("embed: %s: %d texts is too many", what, n+len(texts))
			break
		}
		cut := appendChunks(nil, texts, streamChunkBytes)
		mu.Lock()
		for i := range cut {
			ch := &cut[i]
			j := job{ch: ch, texts: texts[ch.lo:ch.hi]}
			ch.lo += n
			ch.hi += n
			all = append(all, ch)
			queue = append(queue, j)
			pending += ch.bytes
		}
		// As runChunks, min(workers, chunks) goroutines.
		for started < workers && started < len(all) {
			wg.Add(1)
			go work(started)
			started++
		}
		if head > 1024 && head*2 > len(queue) {
			queue = append(queue[:0], queue[head:]...)
			head = 0
		}
		cond.Broadcast()
		mu.Unlock()
		n += len(texts)
		if eofNow {
			break
		}
	}
	if err != nil {
		cancel()
	}
	mu.Lock()
	eof = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
	if err == nil {
		err = parent.Err()
	}
	if err != nil {
		return nil, 0, err
	}
	chunks := make([]chunk, len(all))
	for i, ch := range all {
		chunks[i] = *ch
	}
	return chunks, n, nil
}

// sortRow sorts a row's pairs by column (columns are distinct): insertion
// sort for short rows, else an LSD radix sort on 8-bit digits of the column,
// with tmp as scratch.
func sortRow(cols, cnt []int32, tmp *[]uint64) {
	n := len(cols)
	if n < 2 {
		return
	}
	if n <= 48 {
		for i := 1; i < n; i++ {
			c, k := cols[i], cnt[i]
			j := i
			for j > 0 && cols[j-1] > c {
				cols[j], cnt[j] = cols[j-1], cnt[j-1]
				j--
			}
			cols[j], cnt[j] = c, k
		}
		return
	}
	if cap(*tmp) < 2*n {
		*tmp = make([]uint64, 2*n)
	}
	a, b := (*tmp)[:n], (*tmp)[n:2*n]
	var maxc int32
	sorted := true
	for i, c := range cols {
		a[i] = uint64(c)<<32 | uint64(uint32(cnt[i]))
		maxc = max(maxc, c)
		if i > 0 && c < cols[i-1] {
			sorted = false
		}
	}
	if sorted {
		return
	}
	for shift := uint(32); shift < 32+uint(bits.Len32(uint32(maxc))); shift += 8 {
		var count [256]int32
		for _, p := range a {
			count[byte(p>>shift)]++
		}
		var sum int32
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, p := range a {
			d := byte(p >> shift)
			b[count[d]] = p
			count[d]++
		}
		a, b = b, a
	}
	for i, p := range a {
		cols[i], cnt[i] = int32(p>>32), int32(uint32(p))
	}
}

// logTable[c] = 1 + ln(c), the sublinear term frequency of small counts.
var logTable = func() (t [1024]float64) {
	for c := 1; c < len(t); c++ {
		t[c] = 1 + math.Log(float64(c))
	}
	return t
}()

// tfWeight is the term-frequency factor of a count: the count, or
// 1 + ln|count| (with the count's sign, for alternate-sign hashing).
func tfWeight(c int32, sublinear bool) float64 {
	if !sublinear {
		return float64(c)
	}
	if c > 0 && c < int32(len(logTable)) {
		return logTable[c]
	}
	if c < 0 {
		return -tfWeight(-c, true)
	}
	return 1 + math.Log(float64(c))
}

// assemble weights the chunks' rows (tf × idf, then L2 norm if norm) into
// one CSR matrix, in parallel: row values are computed in float64 and
// rounded to float32 once.
func assemble(ctx context.Context, workers int, chunks []chunk, rows, cols int, idf []float32, sublinear, norm bool) (*CSR, error) {
	m := &CSR{Rows: rows, Cols: cols, Indptr: make([]int64, rows+1)}
	off := make([]int64, len(chunks)+1)
	for i := range chunks {
		off[i+1] = off[i] + int64(len(chunks[i].cols))
	}
	nnz := off[len(chunks)]
	m.Indices = make([]int32, nnz)
	m.Data = make([]float32, nnz)
	scratch := make([][]float64, min(workers, len(chunks)))
	// FitOptions.Rows: report the leading chunks as they are all done.
	progress, _ := ctx.Value(rowsProgressKey{}).(func(*CSR, int))
	var (
		pmu       sync.Mutex
		chunkDone []bool
		nextChunk int
	)
	if progress != nil {
		chunkDone = make([]bool, len(chunks))
	}
	err := runChunks(ctx, workers, len(chunks), func(w, c int) {
		if progress != nil {
			defer func() {
				pmu.Lock()
				defer pmu.Unlock()
				chunkDone[c] = true
				start := nextChunk
				for nextChunk < len(chunks) && chunkDone[nextChunk] {
					nextChunk++
				}
				if nextChunk > start {
					progress(m, chunks[nextChunk-1].hi)
				}
			}()
		}
		ch := &chunks[c]
		p := off[c]
		copy(m.Indices[p:], ch.cols)
		vals := m.Data[p : p+int64(len(ch.cols))]
		k := 0
		for r, n := range ch.nnz {
			m.Indptr[ch.lo+r+1] = p + int64(k) + int64(n)
			rc, rn := ch.cols[k:k+int(n)], ch.cnt[k:k+int(n)]
			out := vals[k : k+int(n)]
			k += int(n)
			if !norm {
				for j, cl := range rc {
					out[j] = float32(tfWeight(rn[j], sublinear) * float64(idf[cl]))
				}
				continue
			}
			if cap(scratch[w]) < int(n) {
				scratch[w] = make([]float64, n, 2*n)
			}
			x := scratch[w][:n]
			var ss float64
			for j, cl := range rc {
				v := tfWeight(rn[j], sublinear) * float64(idf[cl])
				x[j] = v
				ss += v * v
			}
			if ss == 0 {
				for j := range out {
					out[j] = float32(x[j])
				}
				continue
			}
			d := math.Sqrt(ss)
			for j := range out {
				out[j] = float32(x[j] / d)
			}
		}
		ch.cols, ch.cnt, ch.nnz = nil, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// tfidfFactory registers KindTfidf: fitted on a stream, its rows reported
// as they are weighed; its state is the vocabulary and idf.
var tfidfFactory = Factory{
	FitStream: func(ctx context.Context, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error) {
		t := &Tfidf{Config: opt.Tfidf}
		v, err := t.FitTransformStream(withRowsProgress(ctx, opt), next)
		if err != nil {
			return nil, Vectors{}, err
		}
		return t, v, nil
	},
	Settings: func(f Featurizer, set *Settings) error {
		t := f.(*Tfidf)
		set.Tokenizer = tokenizerSettings(t.Config.Tokenizer)
		set.Tfidf = tfidfSettings(t.Config)
		return nil
	},
	Table: func(f Featurizer) StateTable {
		t := f.(*Tfidf)
		return StateTable{Terms: t.Vocabulary, IDF: t.IDF}
	},
	Load: func(set *Settings, t StateTable) (Featurizer, error) {
		if set.Tokenizer == nil || set.Tfidf == nil {
			return nil, errors.New("tfidf state without settings")
		}
		return NewTfidf(set.Tfidf.config(set.Tokenizer.tokenizer()), t.Terms, t.IDF)
	},
	RowsProgress: true,
}
