package embed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The benchmarks run on the shared corpus mixed-v1 (3068 documents, 34.8 MB
// of text): set EMBED_BENCH_CORPUS to its path, or keep the repository next
// to shared/ as in the workspace (../../../shared/corpora). They are skipped
// when it is absent. MB/s is over the UTF-8 bytes of the texts.
//
//	go test ./stages/embed/ -run '^$' -bench . -benchtime 5x

var benchCorpus struct {
	once  sync.Once
	texts []string
	bytes int64
	path  string
}

func corpusPath() string {
	if p := os.Getenv("EMBED_BENCH_CORPUS"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "..", "shared", "corpora", "mixed-v1.jsonl.gz")
}

func benchTexts(b *testing.B) ([]string, int64) {
	b.Helper()
	benchCorpus.once.Do(func() {
		p := corpusPath()
		if _, err := os.Stat(p); err != nil {
			return
		}
		benchCorpus.texts = loadCorpus(b, p)
		for _, t := range benchCorpus.texts {
			benchCorpus.bytes += int64(len(t))
		}
	})
	if benchCorpus.texts == nil {
		b.Skipf("corpus %s not found (set EMBED_BENCH_CORPUS)", corpusPath())
	}
	return benchCorpus.texts, benchCorpus.bytes
}

// BenchmarkLoadCorpus is the reading the featurizer benchmarks leave out:
// gunzip and JSON-decode the corpus.
func BenchmarkLoadCorpus(b *testing.B) {
	_, n := benchTexts(b)
	b.SetBytes(n)
	for b.Loop() {
		loadCorpus(b, corpusPath())
	}
}

func BenchmarkTokenize(b *testing.B) {
	texts, n := benchTexts(b)
	tok := DefaultTokenizer()
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		tokenizeAll(tok, texts)
	}
}

func tokenizeAll(tok *Tokenizer, texts []string) (n int) {
	for _, t := range texts {
		tok.Tokens(t, func([]byte) { n++ })
	}
	return n
}

// BenchmarkTokenizeHash is one core's inner loop of the hashing featurizer:
// tokenizer, memo, murmur3 and stop-word check, column.
func BenchmarkTokenizeHash(b *testing.B) {
	texts, n := benchTexts(b)
	tok := DefaultTokenizer()
	stop := newStopTable(tok.stopList())
	hs := newHasher(1<<18, false)
	memo := new([memoSize]memoEntry)
	b.SetBytes(n)
	for b.Loop() {
		tokenizeHashAll(tok, stop, hs, memo, texts)
	}
}

func tokenizeHashAll(tok *Tokenizer, stop *stopTable, hs hasher, memo *[memoSize]memoEntry, texts []string) (sum uint32) {
	sc := tok.scanner("", nil)
	for _, t := range texts {
		sc.reset(t)
		for {
			tk, ok := sc.next()
			if !ok {
				break
			}
			var key uint32
			if n := len(tk); n <= 16 {
				e := &memo[memoSlot(sc.k1, sc.k2)]
				if e.k1 == sc.k1 && e.k2 == sc.k2 && e.size == int32(n+1) {
					key = e.key
				} else {
					h := murmur3Packed(sc.k1, sc.k2, n)
					key = stopKey
					if !stop.hasPacked(sc.k1, sc.k2, n, h) {
						key = hs.key(h)
					}
					*e = memoEntry{k1: sc.k1, k2: sc.k2, size: int32(n + 1), key: key}
				}
			} else if h := murmur3(tk); !stop.has(tk, h) {
				key = hs.key(h)
			}
			if key != stopKey {
				sum += key
			}
		}
	}
	return sum
}

func benchWorkers(b *testing.B, fn func(b *testing.B, workers int)) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { fn(b, w) })
	}
}

func BenchmarkTfidfFitTransform(b *testing.B) {
	texts, n := benchTexts(b)
	benchWorkers(b, func(b *testing.B, w int) {
		b.SetBytes(n)
		for b.Loop() {
			f := Tfidf{Config: TfidfConfig{Workers: w}}
			if _, err := f.FitTransform(context.Background(), texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTfidfFitTransformMaxFeatures(b *testing.B) {
	texts, n := benchTexts(b)
	benchWorkers(b, func(b *testing.B, w int) {
		b.SetBytes(n)
		for b.Loop() {
			f := Tfidf{Config: TfidfConfig{Workers: w, SublinearTF: true, MaxFeatures: 1 << 16}}
			if _, err := f.FitTransform(context.Background(), texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTfidfFit(b *testing.B) {
	texts, n := benchTexts(b)
	benchWorkers(b, func(b *testing.B, w int) {
		b.SetBytes(n)
		for b.Loop() {
			if _, err := FitTfidf(context.Background(), texts, TfidfConfig{Workers: w}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTfidfTransform(b *testing.B) {
	texts, n := benchTexts(b)
	f, err := FitTfidf(context.Background(), texts, TfidfConfig{})
	if err != nil {
		b.Fatal(err)
	}
	benchWorkers(b, func(b *testing.B, w int) {
		g, err := NewTfidf(TfidfConfig{Tokenizer: f.Config.Tokenizer, Workers: w}, f.Vocabulary, f.IDF)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
		for b.Loop() {
			if _, err := g.Transform(context.Background(), texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHashingFitTransform(b *testing.B) {
	texts, n := benchTexts(b)
	benchWorkers(b, func(b *testing.B, w int) {
		b.SetBytes(n)
		for b.Loop() {
			h := Hashing{Config: HashingConfig{Workers: w, SublinearTF: true}}
			if _, err := h.FitTransform(context.Background(), texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHashingFit(b *testing.B) {
	texts, n := benchTexts(b)
	benchWorkers(b, func(b *testing.B, w int) {
		b.SetBytes(n)
		for b.Loop() {
			if _, err := FitHashing(context.Background(), texts, HashingConfig{Workers: w, SublinearTF: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHashingTransform(b *testing.B) {
	texts, n := benchTexts(b)
	h, err := FitHashing(context.Background(), texts, HashingConfig{SublinearTF: true})
	if err != nil {
		b.Fatal(err)
	}
	benchWorkers(b, func(b *testing.B, w int) {
		g, err := NewHashing(HashingConfig{SublinearTF: true, Workers: w}, h.IDF)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
		for b.Loop() {
			if _, err := g.Transform(context.Background(), texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
