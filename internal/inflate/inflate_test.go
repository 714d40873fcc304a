package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// compressor compresses data into a gzip stream.
type compressor struct {
	name string
	fn   func(t testing.TB, data []byte) []byte
}

func stdGzip(level int) func(testing.TB, []byte) []byte {
	return gzipWith(func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, level) })
}

func klauspostGzip(level int) func(testing.TB, []byte) []byte {
	return gzipWith(func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, level) })
}

// gzipWith compresses with the writer newWriter makes.
func gzipWith(newWriter func(io.Writer) (io.WriteCloser, error)) func(testing.TB, []byte) []byte {
	return func(t testing.TB, data []byte) []byte {
		var buf bytes.Buffer
		w, err := newWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
}

var compressors = []compressor{
	{"std-huffman", stdGzip(gzip.HuffmanOnly)},
	{"std-stored", stdGzip(gzip.NoCompression)},
	{"std-1", stdGzip(1)},
	{"std-5", stdGzip(5)},
	{"std-9", stdGzip(9)},
	{"klauspost-1", klauspostGzip(1)},
	{"klauspost-6", klauspostGzip(6)},
	{"klauspost-9", klauspostGzip(9)},
}

// corpusPrefix returns the first n decompressed bytes of the corpus, or nil
// if it is missing.
func corpusPrefix(t testing.TB, n int64) []byte {
	f, err := os.Open(corpusPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type input struct {
	name string
	data []byte
}

func testInputs(t testing.TB) []input {
	rng := rand.New(rand.NewSource(1))
	random := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	runs := func(n int) []byte {
		var b []byte
		for len(b) < n {
			c := byte(rng.Intn(4))
			for k := rng.Intn(600) + 1; k > 0; k-- {
				b = append(b, c)
			}
		}
		return b[:n]
	}
	periodic := func(n, period int) []byte {
		pat := random(period)
		b := make([]byte, n)
		for i := range b {
			b[i] = pat[i%period]
		}
		return b
	}
	// Mixed: text-like with random substitutions, so matches of every
	// distance and length appear.
	mixed := func(n int) []byte {
		words := []string{"alpha ", "beta ", "gamma ", "delta\n", "{\"id\":", "\"text\":\"", "x", "yy", "zzz"}
		var b []byte
		for len(b) < n {
			if rng.Intn(20) == 0 {
				b = append(b, byte(rng.Intn(256)))
			} else {
				b = append(b, words[rng.Intn(len(words))]...)
			}
		}
		return b[:n]
	}
	ins := []input{
		{"empty", nil},
		{"one-byte", []byte{'a'}},
		{"random-1k", random(1000)},
		{"random-300k", random(300 << 10)},
		{"runs-200k", runs(200 << 10)},
		{"zeros-3M", make([]byte, 3<<20)},
	}
	for p := 2; p <= 9; p++ {
		ins = append(ins, input{fmt.Sprintf("period-%d", p), periodic(50<<10+p, p)})
	}
	// Sizes around buffer boundaries.
	for _, n := range []int{histSize - 1, histSize, histSize + 1, minProduce + 3, outChunk - 1, outChunk, outChunk + histSize + 7, 2*outChunk + 12345} {
		ins = append(ins, input{fmt.Sprintf("mixed-%d", n), mixed(n)})
	}
	if text := corpusPrefix(t, 3<<20); text != nil {
		ins = append(ins, input{"corpus-3M", text})
	}
	return ins
}

// readAllWith reads r with reads of size chunk.
func readAllWith(r io.Reader, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func decode(data []byte, chunk int) ([]byte, error) {
	zr, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := readAllWith(zr, chunk)
	if cerr := zr.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return out, err
}

func TestRoundTrip(t *testing.T) {
	ins := testInputs(t)
	for _, c := range compressors {
		for _, in := range ins {
			comp := c.fn(t, in.data)
			chunks := []int{1 << 20, 32 << 10}
			if len(in.data) <= 400<<10 {
				chunks = append(chunks, 1, 7)
			}
			for _, chunk := range chunks {
				t.Run(fmt.Sprintf("%s/%s/p%d", c.name, in.name, chunk), func(t *testing.T) {
					got, err := decode(comp, chunk)
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if !bytes.Equal(got, in.data) {
						t.Fatalf("mismatch: got %d bytes, want %d (first difference at %d)", len(got), len(in.data), firstDiff(got, in.data))
					}
				})
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// oneByteReader returns one byte per Read, to exercise input refills.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestSlowUnderlyingReader(t *testing.T) {
	data := testInputs(t)[6].data // period-2... any mid-size input
	for _, c := range compressors {
		comp := c.fn(t, data)
		zr, err := NewReader(oneByteReader{bytes.NewReader(comp)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: err=%v equal=%v", c.name, err, bytes.Equal(got, data))
		}
	}
}

func TestMultiMember(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var comp, want []byte
	for i := 0; i < 6; i++ {
		n := []int{0, 10, 40000, 70000, 1, 300000}[i]
		part := make([]byte, n)
		for j := range part {
			part[j] = "abcab"[rng.Intn(5)]
		}
		want = append(want, part...)
		comp = append(comp, compressors[i%len(compressors)].fn(t, part)...)
	}
	for _, chunk := range []int{1, 1000, 1 << 20} {
		got, err := decode(comp, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d: mismatch", chunk)
		}
	}
}

// TestMemberHistory checks that a back-reference into the previous
// member is rejected, as compress/gzip does.
func TestMemberHistory(t *testing.T) {
	first := stdGzip(9)(t, []byte("hello hello hello"))
	// A fixed-Huffman member whose first symbol is a match (length 3,
	// distance 1): header, then bits 1 (final), 01 (fixed), code 257.
	second := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x03, 0x02, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	stream := append(append([]byte{}, first...), second...)
	_, stdErr := io.ReadAll(mustStd(t, stream))
	_, err := decode(stream, 100)
	if stdErr == nil || err == nil {
		t.Fatalf("want errors, got std=%v ours=%v", stdErr, err)
	}
}

func mustStd(t testing.TB, data []byte) io.Reader {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func TestHeaderFields(t *testing.T) {
	data := []byte("payload payload payload")
	for _, tc := range []struct {
		name    string
		hdr     gzip.Header
		wantErr bool
	}{
		{"none", gzip.Header{}, false},
		{"all", gzip.Header{Name: "name.txt", Comment: "a comment", Extra: []byte("extra\x00data")}, false},
		{"long-extra", gzip.Header{Extra: bytes.Repeat([]byte{7}, 5000)}, false},
		{"name-511", gzip.Header{Name: string(bytes.Repeat([]byte{'n'}, 511))}, false},
		{"name-512", gzip.Header{Name: string(bytes.Repeat([]byte{'n'}, 512))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Header = tc.hdr
			w.Write(data)
			w.Close()
			comp := buf.Bytes()
			// compress/gzip never writes FHCRC; add it by hand.
			withCRC := addHeaderCRC(t, comp)
			for i, c := range [][]byte{comp, withCRC} {
				got, err := decode(c, 5)
				if tc.wantErr {
					if !errors.Is(err, ErrHeader) {
						t.Fatalf("variant %d: want ErrHeader, got %v", i, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("variant %d: got %q, %v", i, got, err)
				}
				if _, err := io.ReadAll(mustStd(t, c)); err != nil {
					t.Fatalf("variant %d: compress/gzip: %v", i, err)
				}
			}
			// A wrong header CRC is an ErrHeader.
			bad := append([]byte{}, withCRC...)
			hlen := headerLen(t, bad)
			bad[hlen-1] ^= 1
			if _, err := decode(bad, 5); !tc.wantErr && !errors.Is(err, ErrHeader) {
				t.Fatalf("bad header CRC: got %v", err)
			}
		})
	}
}

// headerLen returns the length of the gzip header at the start of b.
func headerLen(t testing.TB, b []byte) int {
	flg := b[3]
	n := 10
	if flg&flagExtra != 0 {
		n += 2 + int(b[n]) + int(b[n+1])<<8
	}
	for _, f := range []byte{flagName, flagComment} {
		if flg&f != 0 {
			i := bytes.IndexByte(b[n:], 0)
			if i < 0 {
				t.Fatal("unterminated string")
			}
			n += i + 1
		}
	}
	if flg&flagHdrCrc != 0 {
		n += 2
	}
	return n
}

// addHeaderCRC sets FHCRC in a gzip stream and inserts the header CRC-16.
func addHeaderCRC(t testing.TB, comp []byte) []byte {
	hlen := headerLen(t, comp)
	hdr := append([]byte{}, comp[:hlen]...)
	hdr[3] |= flagHdrCrc
	crc := crc32.ChecksumIEEE(hdr)
	out := append(hdr, byte(crc), byte(crc>>8))
	return append(out, comp[hlen:]...)
}

func TestChecksum(t *testing.T) {
	comp := stdGzip(6)(t, bytes.Repeat([]byte("checksum me "), 1000))
	for _, pos := range []int{len(comp) - 8, len(comp) - 5, len(comp) - 4, len(comp) - 1} {
		bad := append([]byte{}, comp...)
		bad[pos] ^= 0x10
		if _, err := decode(bad, 4096); !errors.Is(err, ErrChecksum) {
			t.Errorf("flip at %d: want ErrChecksum, got %v", pos, err)
		}
	}
}

func TestTrailingData(t *testing.T) {
	data := []byte("some data some data")
	comp := stdGzip(6)(t, data)
	for _, tc := range []struct {
		name  string
		trail []byte
		want  error
	}{
		{"garbage", []byte("this is not a gzip header"), ErrHeader},
		{"short", []byte{0x1f, 0x8b}, io.ErrUnexpectedEOF},
		{"zeros", make([]byte, 20), ErrHeader},
	} {
		stream := append(append([]byte{}, comp...), tc.trail...)
		_, stdErr := io.ReadAll(mustStd(t, stream))
		got, err := decode(stream, 64)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: data mismatch", tc.name)
		}
		if stdErr == nil || (stdErr == gzip.ErrHeader) != (err == ErrHeader) {
			t.Errorf("%s: compress/gzip gave %v, we gave %v", tc.name, stdErr, err)
		}
	}
}

func TestEmptyInput(t *testing.T) {
	if _, err := NewReader(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("empty input: got %v, want io.EOF", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 8})); err != io.ErrUnexpectedEOF {
		t.Fatalf("short header: got %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte("not gzip at all"))); err != ErrHeader {
		t.Fatalf("bad magic: got %v, want ErrHeader", err)
	}
}

func TestTruncated(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	data := make([]byte, 3000)
	for i := range data {
		data[i] = "aab cd\n"[rng.Intn(7)]
	}
	copy(data[1000:], bytes.Repeat([]byte{'z'}, 500))
	for _, c := range compressors {
		comp := c.fn(t, data)
		for n := 0; n < len(comp); n++ {
			got, err := decode(comp[:n], 3)
			if !bytes.HasPrefix(data, got) {
				t.Fatalf("%s: prefix %d of %d: output is not a prefix of the input", c.name, n, len(comp))
			}
			if err == nil {
				t.Fatalf("%s: prefix %d of %d: no error", c.name, n, len(comp))
			}
			if n > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: prefix %d of %d: got %v, want io.ErrUnexpectedEOF", c.name, n, len(comp), err)
			}
		}
	}
}

// TestBitFlips flips every bit of small streams: the result must be an
// error or exactly what compress/gzip produces.
func TestBitFlips(t *testing.T) {
	data := []byte("The quick brown fox jumps over the lazy dog. The quick brown fox! aaaaaaaaaaaaaaaaaaaa 0123456789")
	for _, c := range compressors {
		comp := c.fn(t, data)
		for i := 0; i < len(comp)*8; i++ {
			bad := append([]byte{}, comp...)
			bad[i/8] ^= 1 << (i % 8)
			got, err := decode(bad, 16)
			want, stdErr := stdDecode(bad)
			if (err == nil) != (stdErr == nil) {
				t.Fatalf("%s: flip %d: ours %v, compress/gzip %v", c.name, i, err, stdErr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%s: flip %d: output differs from compress/gzip", c.name, i)
			}
		}
	}
}

func stdDecode(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// TestCorruptMessage checks that corrupt deflate data is reported with an
// "inflate:" error wrapping ErrCorrupt.
func TestCorruptMessage(t *testing.T) {
	// Header, then a block of reserved type 3.
	bad := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	_, err := decode(bad, 10)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if s := err.Error(); len(s) < 8 || s[:8] != "inflate:" {
		t.Fatalf("error %q does not start with inflate:", s)
	}
}

// TestRandomDeflate decodes random bit strings, starting with a fixed or
// dynamic block header, with compress/flate; where that succeeds it appends
// the right trailer. We must agree with compress/gzip on success and output.
func TestRandomDeflate(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	hdr := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	trials := 10000
	if testing.Short() {
		trials = 3000
	}
	valid := 0
	for i := 0; i < trials; i++ {
		body := make([]byte, 1+rng.Intn(300))
		rng.Read(body)
		// Bits 0-2: final flag and block type 1 (fixed) or 2 (dynamic).
		body[0] = body[0]&^7 | byte(1+rng.Intn(2))<<1 | byte(rng.Intn(3)/2)
		stream := append(append([]byte{}, hdr...), body...)
		br := bytes.NewReader(body)
		raw, rawErr := io.ReadAll(io.LimitReader(flate.NewReader(br), 1<<20))
		if rawErr == nil {
			valid++
			stream = stream[:len(hdr)+len(body)-br.Len()]
			var tr [8]byte
			binary.LittleEndian.PutUint32(tr[:], crc32.ChecksumIEEE(raw))
			binary.LittleEndian.PutUint32(tr[4:], uint32(len(raw)))
			stream = append(stream, tr[:]...)
		}
		want, stdErr := stdDecode(stream)
		got, err := decode(stream, 1+rng.Intn(100))
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("trial %d: ours %v, compress/gzip %v; stream %x", i, err, stdErr, stream)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("trial %d: output differs", i)
		}
	}
	t.Logf("%d of %d random streams were valid", valid, trials)
}
