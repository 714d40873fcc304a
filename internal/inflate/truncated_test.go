package inflate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestTruncatedKeepsPrefix: a stream cut short gives what was decoded from
// the bytes present, then io.ErrUnexpectedEOF: as much as compress/gzip
// gives (less the few literals decoded along with padding bits past the
// end), and all of the data when only the trailer is missing. A reader of
// JSON lines then keeps the lines before the cut.
func TestTruncatedKeepsPrefix(t *testing.T) {
	var data []byte
	for i := range 4000 {
		data = fmt.Appendf(data, `{"id":"doc-%d","text":"line %d of a file cut short, %d"}`+"\n", i, i, i*i)
	}
	for _, c := range compressors {
		comp := c.fn(t, data)
		cuts := []int{len(comp) - 8, len(comp) - 1}
		for k := 1; k < 8; k++ {
			cuts = append(cuts, len(comp)*k/8)
		}
		for _, n := range cuts {
			for _, chunk := range []int{1 << 20, 4096} {
				zr, err := NewReader(bytes.NewReader(comp[:n]))
				if err != nil {
					t.Fatalf("%s: cut at %d of %d: %v", c.name, n, len(comp), err)
				}
				got, err := readAllWith(zr, chunk)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("%s: cut at %d of %d: error %v, want io.ErrUnexpectedEOF", c.name, n, len(comp), err)
				}
				if !bytes.HasPrefix(data, got) {
					t.Fatalf("%s: cut at %d of %d: output is not a prefix of the data", c.name, n, len(comp))
				}
				std, _ := io.ReadAll(mustStd(t, comp[:n]))
				if len(got)+3 < len(std) {
					t.Errorf("%s: cut at %d of %d, reads of %d: %d bytes out, compress/gzip gives %d", c.name, n, len(comp), chunk, len(got), len(std))
				}
				if n >= len(comp)-8 && len(got) != len(data) {
					t.Errorf("%s: only the trailer cut: %d of %d bytes out", c.name, len(got), len(data))
				}
			}
		}
	}
}

// TestShortTrailingData: a few bytes after the last member are trailing
// garbage (ErrHeader) unless they are the start of a gzip header, which is
// a member cut short (io.ErrUnexpectedEOF). compress/gzip calls any
// trailer shorter than a header truncation.
func TestShortTrailingData(t *testing.T) {
	data := []byte("some data some data")
	comp := stdGzip(6)(t, data)
	for _, tc := range []struct {
		name  string
		trail string
		want  error
	}{
		{"junk", "junk", ErrHeader},
		{"one byte", "\n", ErrHeader},
		{"ID1", "\x1f", io.ErrUnexpectedEOF},
		{"ID1 ID2", "\x1f\x8b", io.ErrUnexpectedEOF},
		{"ID1 ID2 CM", "\x1f\x8b\x08\x00", io.ErrUnexpectedEOF},
		{"other method", "\x1f\x8b\x07", ErrHeader},
		{"ID1 then junk", "\x1fx", ErrHeader},
	} {
		got, err := decode(append(bytes.Clone(comp), tc.trail...), 64)
		if !errors.Is(err, tc.want) || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v; want all %d bytes, then %v", tc.name, len(got), err, len(data), tc.want)
		}
	}
}
