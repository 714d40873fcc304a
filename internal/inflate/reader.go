package inflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

var (
	// ErrChecksum is returned when a member's CRC-32 or size does not match
	// its trailer.
	ErrChecksum = errors.New("inflate: invalid checksum")
	// ErrHeader is returned when a gzip member header is invalid, including
	// trailing data after a member that is not a gzip header.
	ErrHeader = errors.New("inflate: invalid header")
	// ErrCorrupt is wrapped by the errors returned for a corrupt DEFLATE
	// stream.
	ErrCorrupt = errors.New("inflate: corrupt deflate stream")
)

const (
	histSize = 32 << 10 // DEFLATE window
	outChunk = 1 << 20  // fresh output per buffer fill
	outSlack = 512      // room for word-copy overrun
	outLimit = histSize + outChunk
	outSize  = outLimit + outSlack

	// minProduce is the least output decoded per refill of the output
	// buffer, so that tiny reads do not make tiny decode calls.
	minProduce = 64 << 10

	inSize = 256 << 10 // underlying reader chunk
	inKeep = 8         // bytes kept before ip when compacting input

	gzipID1     = 0x1f
	gzipID2     = 0x8b
	gzipDeflate = 8
	flagText    = 1 << 0
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// Decoder states.
const (
	stBlockHeader = iota
	stHuffman
	stStored
	stTrailer
	stNextMember
)

// Reader decompresses a gzip stream (RFC 1952) of one or more members.
//
// It is not safe for concurrent use. A Reader holds about 1.3 MiB of
// buffers.
type Reader struct {
	r     io.Reader
	in    []byte // input buffer; in[ip:inEnd] is unread
	ip    int
	inEnd int
	eof   bool  // r returned io.EOF (or rerr)
	rerr  error // non-EOF error from r, reported instead of truncation
	// overread counts zero bytes appended to the bit buffer past the end
	// of the input.
	overread int

	bitbuf uint64 // bits above bitcnt may hold copies of input bytes at ip
	bitcnt uint   // valid bits in bitbuf, at most 63

	out  *[outSize]byte
	rd   int // out[rd:wr] is decoded but not yet returned
	wr   int
	base int // start of the current member's output in out (may be < 0)

	state      int
	final      bool // current block is the last of its member
	fixed      bool // lit and dist hold the fixed Huffman tables
	storedLeft int

	crc    uint32
	crcPos int // out[crcPos:wr] is not yet in crc
	size   uint32
	err    error

	lit  [litTableSize]uint32
	dist [distTableSize]uint32
	pre  [preTableSize]uint32
	lens [numLitLenSyms + numDistSyms]uint8
	hbuf [512]byte
}

// NewReader returns a Reader that decompresses r. It reads and checks the
// header of the first member; an empty r gives io.EOF, as with
// compress/gzip. The Reader reads r in large chunks and may read past the
// end of the gzip stream.
func NewReader(r io.Reader) (*Reader, error) {
	z := &Reader{
		r:   r,
		in:  make([]byte, inSize),
		out: new([outSize]byte),
	}
	if err := z.readHeader(); err != nil {
		return nil, err
	}
	return z, nil
}

// Close releases nothing external and does not close the underlying
// reader. It reports the error the Reader has seen, if any other than
// io.EOF, like compress/gzip's Reader.Close.
func (z *Reader) Close() error {
	if z.err == io.EOF {
		return nil
	}
	return z.err
}

// Read implements io.Reader, reading decompressed bytes.
func (z *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		if z.rd == z.wr && z.err != nil {
			return 0, z.err
		}
		return 0, nil
	}
	for z.rd == z.wr {
		if z.err != nil {
			return 0, z.err
		}
		z.produce(len(p))
	}
	n := copy(p, z.out[z.rd:z.wr])
	z.rd += n
	return n, nil
}

// produce decodes more output into z.out, at least one byte unless it
// records an error in z.err. It is only called when all output has been
// returned.
func (z *Reader) produce(want int) {
	want = max(want, minProduce)
	if z.wr+want > outLimit && z.wr > histSize {
		// Slide the last 32 KiB of history to the front.
		shift := z.wr - histSize
		copy(z.out[:histSize], z.out[shift:z.wr])
		z.wr = histSize
		z.rd = histSize
		z.crcPos = histSize
		z.base = max(z.base-shift, 0)
	}
	limit := min(z.wr+want, outLimit)
	for z.wr < limit && z.err == nil {
		var err error
		switch z.state {
		case stBlockHeader:
			err = z.blockHeader()
		case stHuffman:
			err = z.huffman(limit)
		case stStored:
			err = z.stored(limit)
		case stTrailer:
			err = z.trailer()
		case stNextMember:
			err = z.readHeader()
		}
		if err != nil {
			z.err = err
		}
	}
	z.updateCRC()
}

func (z *Reader) updateCRC() {
	if z.crcPos < z.wr {
		z.crc = crc32.Update(z.crc, crc32.IEEETable, z.out[z.crcPos:z.wr])
		z.size += uint32(z.wr - z.crcPos)
		z.crcPos = z.wr
	}
}

// truncated returns the error for input that ends too early.
func (z *Reader) truncated() error {
	if z.rerr != nil {
		return z.rerr
	}
	return io.ErrUnexpectedEOF
}

// fill reads more input from r, keeping up to inKeep bytes before ip so
// that bytes held in the bit buffer can be returned. It must only be
// called when !z.eof.
func (z *Reader) fill() {
	keep := min(z.ip, inKeep)
	if z.ip-keep > 0 {
		n := copy(z.in, z.in[z.ip-keep:z.inEnd])
		z.ip = keep
		z.inEnd = n
	}
	for tries := 0; z.inEnd < len(z.in); tries++ {
		n, err := z.r.Read(z.in[z.inEnd:])
		if n < 0 || n > len(z.in)-z.inEnd {
			n = 0
			err = errors.New("inflate: invalid Read count from underlying reader")
		}
		z.inEnd += n
		if err != nil {
			if err != io.EOF {
				z.rerr = err
			}
			z.eof = true
			return
		}
		if n > 0 {
			return
		}
		if tries >= 100 {
			z.rerr = io.ErrNoProgress
			z.eof = true
			return
		}
	}
}

// readFull copies len(b) input bytes into b. It returns io.EOF if no byte
// was available and io.ErrUnexpectedEOF if only some were, like
// io.ReadFull. The bit buffer must be empty.
func (z *Reader) readFull(b []byte) error {
	n := 0
	for n < len(b) {
		if z.ip == z.inEnd {
			if z.eof {
				if z.rerr != nil {
					return z.rerr
				}
				if n == 0 {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			z.fill()
			continue
		}
		c := copy(b[n:], z.in[z.ip:z.inEnd])
		n += c
		z.ip += c
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readString skips a zero-terminated header string, adding it to the
// header CRC. Like compress/gzip, it rejects strings longer than 511 bytes.
func (z *Reader) readString(digest uint32) (uint32, error) {
	buf := z.hbuf[:]
	for i := 0; ; i++ {
		if i >= len(buf) {
			return 0, ErrHeader
		}
		if err := z.readFull(buf[i : i+1]); err != nil {
			return 0, noEOF(err)
		}
		if buf[i] == 0 {
			return crc32.Update(digest, crc32.IEEETable, buf[:i+1]), nil
		}
	}
}

// readHeader reads a gzip member header. At a member boundary, a clean end
// of input gives io.EOF. Input that ends before a whole header is
// io.ErrUnexpectedEOF only while its bytes are those a header starts with:
// a few bytes of anything else after a member are trailing garbage,
// ErrHeader, not a truncated member.
func (z *Reader) readHeader() error {
	buf := z.hbuf[:10]
	for i, want := range [...]byte{gzipID1, gzipID2, gzipDeflate} {
		if err := z.readFull(buf[i : i+1]); err != nil {
			if i > 0 {
				return noEOF(err)
			}
			return err
		}
		if buf[i] != want {
			return ErrHeader
		}
	}
	if err := z.readFull(buf[3:]); err != nil {
		return noEOF(err)
	}
	flg := buf[3]
	digest := crc32.ChecksumIEEE(buf)
	if flg&flagExtra != 0 {
		b := z.hbuf[:2]
		if err := z.readFull(b); err != nil {
			return noEOF(err)
		}
		digest = crc32.Update(digest, crc32.IEEETable, b)
		for n := int(binary.LittleEndian.Uint16(b)); n > 0; {
			c := min(n, len(z.hbuf))
			b := z.hbuf[:c]
			if err := z.readFull(b); err != nil {
				return noEOF(err)
			}
			digest = crc32.Update(digest, crc32.IEEETable, b)
			n -= c
		}
	}
	var err error
	if flg&flagName != 0 {
		if digest, err = z.readString(digest); err != nil {
			return err
		}
	}
	if flg&flagComment != 0 {
		if digest, err = z.readString(digest); err != nil {
			return err
		}
	}
	if flg&flagHdrCrc != 0 {
		b := z.hbuf[:2]
		if err := z.readFull(b); err != nil {
			return noEOF(err)
		}
		if binary.LittleEndian.Uint16(b) != uint16(digest) {
			return ErrHeader
		}
	}
	// Start a new member: no history is visible to it.
	z.updateCRC()
	z.crc, z.size = 0, 0
	z.base = z.wr
	z.state = stBlockHeader
	z.bitbuf, z.bitcnt, z.overread = 0, 0, 0
	return nil
}

// trailer checks a member's CRC-32 and size.
func (z *Reader) trailer() error {
	z.updateCRC()
	b := z.hbuf[:8]
	if err := z.readFull(b); err != nil {
		return noEOF(err)
	}
	if binary.LittleEndian.Uint32(b) != z.crc || binary.LittleEndian.Uint32(b[4:]) != z.size {
		return ErrChecksum
	}
	z.state = stNextMember
	return nil
}

func corrupt(what string) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, what)
}
