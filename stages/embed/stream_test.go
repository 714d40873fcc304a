package embed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// chunkedNext delivers texts in chunks of size (all at once for size <= 0).
func chunkedNext(texts []string, size int) func() ([]string, error) {
	if size <= 0 {
		size = max(len(texts), 1)
	}
	pos := 0
	return func() ([]string, error) {
		if pos >= len(texts) {
			return nil, io.EOF
		}
		end := min(pos+size, len(texts))
		c := texts[pos:end]
		pos = end
		return c, nil
	}
}

var streamChunkSizes = []int{1, 7, 100, 0} // 0: all in one chunk

func TestTfidfFitTransformStream(t *testing.T) {
	ctx := context.Background()
	texts := smallCorpus(t)
	cfgs := []TfidfConfig{{}, {MinDF: 2, MaxDF: 0.5, SublinearTF: true}, {MaxFeatures: 300, NoNorm: true}}
	for ci, base := range cfgs {
		for _, w := range []int{1, 2, 3} {
			cfg := base
			cfg.Workers = w
			want := Tfidf{Config: cfg}
			wx, err := want.FitTransform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range streamChunkSizes {
				t.Run(fmt.Sprintf("cfg=%d/workers=%d/chunk=%d", ci, w, size), func(t *testing.T) {
					got := Tfidf{Config: cfg}
					gx, err := got.FitTransformStream(ctx, chunkedNext(texts, size))
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(gx, wx) {
						t.Error("vectors differ from FitTransform")
					}
					if !reflect.DeepEqual(got.Vocabulary, want.Vocabulary) {
						t.Error("vocabulary differs from FitTransform")
					}
					if !reflect.DeepEqual(got.IDF, want.IDF) {
						t.Error("idf differs from FitTransform")
					}
					if !reflect.DeepEqual(got.Config, want.Config) {
						t.Errorf("config %+v, want %+v", got.Config, want.Config)
					}
					// The fitted featurizer works.
					x1, err := got.Transform(ctx, texts[:5])
					x2, err2 := want.Transform(ctx, texts[:5])
					if err != nil || err2 != nil || !reflect.DeepEqual(x1, x2) {
						t.Errorf("Transform after the stream fit differs (%v, %v)", err, err2)
					}
				})
			}
		}
	}
}

func TestHashingFitTransformStream(t *testing.T) {
	ctx := context.Background()
	texts := smallCorpus(t)
	cfgs := []HashingConfig{{}, {Features: 1000, AlternateSign: true, SublinearTF: true}, {Features: 1 << 12, NoSmoothIDF: true, NoNorm: true}}
	for ci, base := range cfgs {
		for _, w := range []int{1, 2, 3} {
			cfg := base
			cfg.Workers = w
			want := Hashing{Config: cfg}
			wx, err := want.FitTransform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range streamChunkSizes {
				t.Run(fmt.Sprintf("cfg=%d/workers=%d/chunk=%d", ci, w, size), func(t *testing.T) {
					got := Hashing{Config: cfg}
					gx, err := got.FitTransformStream(ctx, chunkedNext(texts, size))
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(gx, wx) {
						t.Error("vectors differ from FitTransform")
					}
					if !reflect.DeepEqual(got.IDF, want.IDF) {
						t.Error("idf differs from FitTransform")
					}
					if !reflect.DeepEqual(got.Config, want.Config) {
						t.Errorf("config %+v, want %+v", got.Config, want.Config)
					}
					x1, err := got.Transform(ctx, texts[:5])
					x2, err2 := want.Transform(ctx, texts[:5])
					if err != nil || err2 != nil || !reflect.DeepEqual(x1, x2) {
						t.Errorf("Transform after the stream fit differs (%v, %v)", err, err2)
					}
				})
			}
		}
	}
}

// TestStreamEmptyChunks: empty deliveries between chunks change nothing.
func TestStreamEmptyChunks(t *testing.T) {
	ctx := context.Background()
	texts := smallCorpus(t)
	inner := chunkedNext(texts, 50)
	odd := false
	next := func() ([]string, error) {
		odd = !odd
		if odd {
			return nil, nil
		}
		return inner()
	}
	var want, got Tfidf
	wx, err := want.FitTransform(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	gx, err := got.FitTransformStream(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gx, wx) || !reflect.DeepEqual(got.Vocabulary, want.Vocabulary) {
		t.Error("stream with empty chunks differs from FitTransform")
	}
}

// streamers runs FitTransformStream of both featurizers.
var streamers = []struct {
	name string
	fit  func(ctx context.Context, workers int, next func() ([]string, error)) (Vectors, error)
	fitN func(ctx context.Context, texts []string) (Vectors, error)
}{
	{"tfidf",
		func(ctx context.Context, w int, next func() ([]string, error)) (Vectors, error) {
			t := Tfidf{Config: TfidfConfig{Workers: w}}
			return t.FitTransformStream(ctx, next)
		},
		func(ctx context.Context, texts []string) (Vectors, error) {
			var t Tfidf
			return t.FitTransform(ctx, texts)
		}},
	{"hashing",
		func(ctx context.Context, w int, next func() ([]string, error)) (Vectors, error) {
			h := Hashing{Config: HashingConfig{Workers: w}}
			return h.FitTransformStream(ctx, next)
		},
		func(ctx context.Context, texts []string) (Vectors, error) {
			var h Hashing
			return h.FitTransform(ctx, texts)
		}},
}

func TestStreamNextError(t *testing.T) {
	ctx := context.Background()
	texts := smallCorpus(t)
	boom := errors.New("boom")
	for _, s := range streamers {
		for _, w := range []int{1, 2, 3} {
			inner := chunkedNext(texts, 20)
			calls := 0
			next := func() ([]string, error) {
				calls++
				if calls == 5 {
					return nil, boom
				}
				return inner()
			}
			if _, err := s.fit(ctx, w, next); !errors.Is(err, boom) {
				t.Errorf("%s workers=%d: error %v, want %v", s.name, w, err, boom)
			}
			if calls != 5 {
				t.Errorf("%s workers=%d: next called %d times after its error", s.name, w, calls-5)
			}
		}
	}
	// A featurizer is left unchanged by a failed fit.
	f := Tfidf{Config: TfidfConfig{Workers: 2}}
	_, _ = f.FitTransformStream(ctx, func() ([]string, error) { return nil, boom })
	if f.Vocabulary != nil || f.IDF != nil || f.Config.Tokenizer != nil {
		t.Error("a failed FitTransformStream changed the Tfidf")
	}
}

func TestStreamCancel(t *testing.T) {
	texts := smallCorpus(t)
	for _, s := range streamers {
		for _, w := range []int{1, 2} {
			// Cancelled before the start: next may not even be called.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := s.fit(ctx, w, chunkedNext(texts, 10)); !errors.Is(err, context.Canceled) {
				t.Errorf("%s workers=%d, cancelled context: %v", s.name, w, err)
			}
			// Cancelled while delivering an endless stream: returns promptly.
			ctx, cancel = context.WithCancel(context.Background())
			var calls atomic.Int64
			next := func() ([]string, error) {
				if calls.Add(1) == 10 {
					cancel()
				}
				return texts[:20], nil
			}
			done := make(chan error, 1)
			go func() {
				_, err := s.fit(ctx, w, next)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s workers=%d, cancelled mid-stream: %v", s.name, w, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s workers=%d: no return 10 s after cancel", s.name, w)
			}
			if n := calls.Load(); n != 10 {
				t.Errorf("%s workers=%d: next called %d times after cancel", s.name, w, n-10)
			}
			cancel()
		}
	}
}

func TestStreamEmpty(t *testing.T) {
	ctx := context.Background()
	for _, s := range streamers {
		for _, w := range []int{1, 3} {
			wx, werr := s.fitN(ctx, nil)
			for _, next := range []func() ([]string, error){
				chunkedNext(nil, 5),
				chunkedNext([]string{}, 0),
			} {
				gx, gerr := s.fit(ctx, w, next)
				if fmt.Sprint(gerr) != fmt.Sprint(werr) {
					t.Errorf("%s workers=%d: empty stream gives %v, FitTransform %v", s.name, w, gerr, werr)
				}
				if !reflect.DeepEqual(gx, wx) {
					t.Errorf("%s workers=%d: empty stream gives %+v, FitTransform %+v", s.name, w, gx, wx)
				}
			}
		}
	}
	var tf Tfidf
	if _, err := tf.FitTransformStream(ctx, chunkedNext(nil, 1)); !errors.Is(err, ErrEmptyVocabulary) {
		t.Errorf("tfidf empty stream: %v, want ErrEmptyVocabulary", err)
	}
}

// BenchmarkFitTransformStream feeds the corpus in chunks of 64 documents
// from memory; compare with BenchmarkTfidfFitTransform and
// BenchmarkHashingFitTransform (the batch path on the same texts).
func BenchmarkFitTransformStream(b *testing.B) {
	texts, n := benchTexts(b)
	for _, kind := range []string{"tfidf", "hashing"} {
		for _, w := range []int{1, 2} {
			for _, mode := range []string{"batch", "stream"} {
				b.Run(fmt.Sprintf("%s/%s/workers=%d", kind, mode, w), func(b *testing.B) {
					b.SetBytes(n)
					ctx := context.Background()
					for b.Loop() {
						var err error
						switch kind + "/" + mode {
						case "tfidf/batch":
							f := Tfidf{Config: TfidfConfig{Workers: w}}
							_, err = f.FitTransform(ctx, texts)
						case "tfidf/stream":
							f := Tfidf{Config: TfidfConfig{Workers: w}}
							_, err = f.FitTransformStream(ctx, chunkedNext(texts, 64))
						case "hashing/batch":
							h := Hashing{Config: HashingConfig{Workers: w}}
							_, err = h.FitTransform(ctx, texts)
						case "hashing/stream":
							h := Hashing{Config: HashingConfig{Workers: w}}
							_, err = h.FitTransformStream(ctx, chunkedNext(texts, 64))
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// TestStreamReadAhead: streamChunks stops calling next while more than
// streamAheadBytes of text wait for its workers, and goes on once they catch
// up; a cancel while it waits returns promptly.
func TestStreamReadAhead(t *testing.T) {
	doc := string(make([]byte, 64<<10)) // one chunk per document
	var delivered atomic.Int64
	next := func() ([]string, error) {
		delivered.Add(1)
		return []string{doc}, nil
	}
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := streamChunks(ctx, 1, next, "test", func(int, *chunk, []string) { <-release })
		done <- err
	}()
	limit := int64(streamAheadBytes/len(doc) + 1) // read while at most streamAheadBytes wait or run
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := delivered.Load(); n != limit {
		t.Fatalf("next called %d times with the worker stuck; want the read-ahead to stop at %d", n, limit)
	}
	release <- struct{}{} // one job done: room for one more
	for delivered.Load() == limit && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := delivered.Load(); n != limit+1 {
		t.Fatalf("after one job, next called %d times; want %d", n, limit+1)
	}
	cancel()
	close(release)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while waiting for room: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no return 10 s after cancel")
	}
}
