package inflate

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// FuzzReader checks that arbitrary input never panics and that the result
// agrees with compress/gzip: the same bytes when it succeeds, an error when
// it fails.
func FuzzReader(f *testing.F) {
	seeds := [][]byte{
		nil,
		[]byte("not gzip"),
		{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		// Fixed-Huffman match at the very start (distance beyond output).
		{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x03, 0x02, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, c := range compressors {
		for _, d := range [][]byte{
			nil,
			[]byte("a"),
			[]byte("hello, hello, hello world"),
			bytes.Repeat([]byte("abc"), 100),
			bytes.Repeat([]byte{0}, 1000),
			[]byte(`{"id":1,"text":"the cat sat on the mat; the cat sat","source":"x"}`),
		} {
			seeds = append(seeds, c.fn(f, d))
		}
	}
	var hb bytes.Buffer
	w := gzip.NewWriter(&hb)
	w.Header = gzip.Header{Name: "n", Comment: "c", Extra: []byte{1, 2, 3}}
	w.Write([]byte("header fields"))
	w.Close()
	seeds = append(seeds, addHeaderCRC(f, hb.Bytes()))
	two := append(append([]byte{}, seeds[5]...), seeds[6]...)
	seeds = append(seeds, two)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, stdErr := stdDecodeLimited(data)
		if stdErr == errTooLong {
			return
		}
		got, err := decodeLimited(data)
		if err == errTooLong {
			return
		}
		if stdErr != nil {
			if err == nil {
				t.Fatalf("compress/gzip failed (%v) but we succeeded", stdErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("compress/gzip succeeded but we failed: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("output differs: got %d bytes, want %d", len(got), len(want))
		}
	})
}

const fuzzMaxOut = 16 << 20

var errTooLong = io.ErrShortBuffer

// readLimited reads r fully, giving up with errTooLong past fuzzMaxOut
// bytes so that tiny inputs cannot take unbounded time.
func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, fuzzMaxOut+1))
	if err == nil && len(b) > fuzzMaxOut {
		return nil, errTooLong
	}
	return b, err
}

func stdDecodeLimited(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return readLimited(zr)
}

func decodeLimited(data []byte) ([]byte, error) {
	zr, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return readLimited(zr)
}
