package inflate

import "encoding/binary"

// copyWin is the span a match copy may touch from its start: the longest
// match rounded up to words, plus a word.
const copyWin = 272

// strideBack gives, for an offset below 8, k-offset where k is the
// smallest multiple of the offset that is at least 8: once 8 bytes of a
// match are written, word copies can read from k bytes back.
var strideBack = [8]uint8{0, 7, 6, 6, 4, 5, 6, 7}

// refillBits is the careful bit-buffer refill used near the end of the
// buffered input: it adds whole bytes until at least 56 bits are valid,
// reading more input as needed and appending zero bytes past the end of
// the input. It reports truncation once a padding bit has been consumed.
func (z *Reader) refillBits() error {
	if z.overread*8 > int(z.bitcnt) {
		return z.truncated()
	}
	z.bitbuf &= 1<<z.bitcnt - 1
	for z.bitcnt < 56 {
		if z.ip < z.inEnd {
			z.bitbuf |= uint64(z.in[z.ip]) << z.bitcnt
			z.ip++
		} else if !z.eof {
			z.fill()
			continue
		} else {
			z.overread++
		}
		z.bitcnt += 8
	}
	return nil
}

// getBits consumes and returns n <= 32 bits.
func (z *Reader) getBits(n uint) (uint32, error) {
	if z.bitcnt < n {
		if err := z.refillBits(); err != nil {
			return 0, err
		}
	}
	v := uint32(z.bitbuf & (1<<n - 1))
	z.bitbuf >>= n
	z.bitcnt -= n
	return v, nil
}

// alignInput discards the bits up to the next byte boundary and returns the
// remaining whole bytes of the bit buffer to the input.
func (z *Reader) alignInput() error {
	n := int(z.bitcnt>>3) - z.overread
	if n < 0 {
		return z.truncated()
	}
	z.ip -= n
	z.bitbuf, z.bitcnt, z.overread = 0, 0, 0
	return nil
}

// checkOverread reports truncation if padding bits have been consumed.
func (z *Reader) checkOverread() error {
	if z.overread*8 > int(z.bitcnt) {
		return z.truncated()
	}
	return nil
}

// blockHeader reads a block header and prepares to decode the block.
func (z *Reader) blockHeader() error {
	h, err := z.getBits(3)
	if err != nil {
		return err
	}
	z.final = h&1 != 0
	switch h >> 1 {
	case 0:
		if err := z.alignInput(); err != nil {
			return err
		}
		b := z.hbuf[:4]
		if err := z.readFull(b); err != nil {
			return noEOF(err)
		}
		n := binary.LittleEndian.Uint16(b)
		if n != ^binary.LittleEndian.Uint16(b[2:]) {
			return z.corrupt("stored block length mismatch")
		}
		z.storedLeft = int(n)
		z.state = stStored
		return nil
	case 1:
		if !z.fixed {
			if !buildTable(z.lit[:], fixedLitLens[:], litLenInfo[:], litTableBits) ||
				!buildTable(z.dist[:], fixedDistLens[:], distInfo[:], distTableBits) {
				panic("inflate: cannot build fixed tables")
			}
			z.fixed = true
		}
	case 2:
		z.fixed = false
		if err := z.dynamicHeader(); err != nil {
			return err
		}
	default:
		return z.corrupt("invalid block type")
	}
	z.state = stHuffman
	return z.checkOverread()
}

// dynamicHeader reads the code lengths of a dynamic Huffman block and
// builds its decode tables, with compress/flate's validity rules.
func (z *Reader) dynamicHeader() error {
	h, err := z.getBits(14)
	if err != nil {
		return err
	}
	nlit := int(h&0x1f) + 257
	ndist := int(h>>5&0x1f) + 1
	nclen := int(h>>10) + 4
	if nlit > 286 {
		return z.corrupt("too many literal/length codes")
	}
	if ndist > 30 {
		return z.corrupt("too many offset codes")
	}
	var preLens [numPreSyms]uint8
	for i := 0; i < nclen; i++ {
		v, err := z.getBits(3)
		if err != nil {
			return err
		}
		preLens[precodeOrder[i]] = uint8(v)
	}
	if !buildTable(z.pre[:], preLens[:], preInfo[:], preTableBits) {
		return z.corrupt("invalid code length code")
	}
	lens := z.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if z.bitcnt < 16 {
			if err := z.refillBits(); err != nil {
				return err
			}
		}
		e := z.pre[z.bitbuf&(preTableSize-1)]
		if e&flagInvalid != 0 {
			if err := z.checkOverread(); err != nil {
				return err
			}
			return z.corrupt("invalid code length codeword")
		}
		z.bitbuf >>= e & 0xff
		z.bitcnt -= uint(e & 0xff)
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep uint32
		var b uint8
		switch sym {
		case 16:
			if i == 0 {
				return z.corrupt("repeat with no previous length")
			}
			b = lens[i-1]
			rep = 3 + uint32(z.bitbuf&3)
			z.bitbuf >>= 2
			z.bitcnt -= 2
		case 17:
			rep = 3 + uint32(z.bitbuf&7)
			z.bitbuf >>= 3
			z.bitcnt -= 3
		default:
			rep = 11 + uint32(z.bitbuf&0x7f)
			z.bitbuf >>= 7
			z.bitcnt -= 7
		}
		if i+int(rep) > len(lens) {
			return z.corrupt("code length repeat past end")
		}
		for j := uint32(0); j < rep; j++ {
			lens[i] = b
			i++
		}
	}
	if err := z.checkOverread(); err != nil {
		return err
	}
	if !buildTable(z.lit[:], lens[:nlit], litLenInfo[:], litTableBits) {
		return z.corrupt("invalid literal/length code")
	}
	if !buildTable(z.dist[:], lens[nlit:], distInfo[:], distTableBits) {
		return z.corrupt("invalid offset code")
	}
	return nil
}

// stored copies stored-block bytes until the block ends or wr reaches
// limit.
func (z *Reader) stored(limit int) error {
	for z.storedLeft > 0 && z.wr < limit {
		if z.ip == z.inEnd {
			if z.eof {
				return z.truncated()
			}
			z.fill()
			continue
		}
		n := min(z.storedLeft, limit-z.wr, z.inEnd-z.ip)
		copy(z.out[z.wr:z.wr+n], z.in[z.ip:z.ip+n])
		z.wr += n
		z.ip += n
		z.storedLeft -= n
	}
	if z.storedLeft == 0 {
		z.endBlock()
	}
	return nil
}

// endBlock moves to the state after the current block.
func (z *Reader) endBlock() {
	if z.final {
		z.state = stTrailer
	} else {
		z.state = stBlockHeader
	}
}

// huffman decodes the current Huffman block until it ends or wr reaches
// limit (which is at most outLimit).
func (z *Reader) huffman(limit int) error {
	if limit > outLimit {
		limit = outLimit
	}
	out := z.out
	in := z.in[:z.inEnd]
	lit := &z.lit
	dist := &z.dist
	bitbuf, bitcnt := z.bitbuf, z.bitcnt
	ip, wr, base := z.ip, z.wr, z.base

	// fail records why the loop stopped early; keeping errors out of the
	// loop saves registers.
	const (
		failNone = iota
		failTruncated
		failLitLen
		failOffsetCode
		failDistance
	)
	fail := failNone
	// safe is an output position up to which every symbol was decoded from
	// input bits, none from the zero padding past the end of the input:
	// what a truncated stream keeps. The fast path reads no padding; it is
	// only appended by refillBits, so the slow path moves safe.
	safe := wr
	for wr < limit {
		if ip <= len(in)-8 {
			bitbuf |= binary.LittleEndian.Uint64(in[ip:]) << (bitcnt & 63)
			ip += int(63-bitcnt) >> 3
			bitcnt |= 56
		} else {
			if z.overread*8 <= int(bitcnt) {
				safe = wr
			}
			z.bitbuf, z.bitcnt, z.ip = bitbuf, bitcnt, ip
			if z.refillBits() != nil {
				fail = failTruncated
				break
			}
			bitbuf, bitcnt, ip = z.bitbuf, z.bitcnt, z.ip
			in = z.in[:z.inEnd]
		}
		e := lit[bitbuf&(1<<litTableBits-1)]
		if int32(e) < 0 {
			// Up to three literals per refill (3*15 <= 56 bits).
			bitbuf >>= e & 63
			bitcnt -= uint(e & 63)
			out[wr] = byte(e >> 16)
			wr++
			e = lit[bitbuf&(1<<litTableBits-1)]
			if int32(e) < 0 {
				bitbuf >>= e & 63
				bitcnt -= uint(e & 63)
				out[wr] = byte(e >> 16)
				wr++
				e = lit[bitbuf&(1<<litTableBits-1)]
				if int32(e) < 0 {
					bitbuf >>= e & 63
					bitcnt -= uint(e & 63)
					out[wr] = byte(e >> 16)
					wr++
					continue
				}
			}
			// A length (20 bits) and offset (28 bits) need a full buffer.
			if ip > len(in)-8 {
				continue
			}
			bitbuf |= binary.LittleEndian.Uint64(in[ip:]) << (bitcnt & 63)
			ip += int(63-bitcnt) >> 3
			bitcnt |= 56
		}
		if e&flagExc != 0 {
			if e&flagSub != 0 {
				bitbuf >>= litTableBits
				bitcnt -= litTableBits
				e = lit[(e>>16)+uint32(bitbuf&(1<<(e>>8&15)-1))]
				if int32(e) < 0 {
					bitbuf >>= e & 63
					bitcnt -= uint(e & 63)
					out[wr] = byte(e >> 16)
					wr++
					continue
				}
			}
			if e&flagEOB != 0 {
				bitbuf >>= e & 63
				bitcnt -= uint(e & 63)
				z.endBlock()
				break
			}
			if e&flagInvalid != 0 {
				fail = failLitLen
				break
			}
		}
		// Length.
		saved := bitbuf
		bitbuf >>= e & 63
		bitcnt -= uint(e & 63)
		length := int(e>>16) + int((saved&^(^uint64(0)<<(e&63)))>>(e>>8&15))

		// Offset.
		e = dist[bitbuf&(1<<distTableBits-1)]
		if e&flagExc != 0 {
			if e&flagSub != 0 {
				bitbuf >>= distTableBits
				bitcnt -= distTableBits
				e = dist[(e>>16)+uint32(bitbuf&(1<<(e>>8&15)-1))]
			}
			if e&flagExc != 0 {
				fail = failOffsetCode
				break
			}
		}
		saved = bitbuf
		bitbuf >>= e & 63
		bitcnt -= uint(e & 63)
		offset := int(e>>16) + int((saved&^(^uint64(0)<<(e&63)))>>(e>>8&15))
		if offset > wr-base {
			fail = failDistance
			break
		}

		// Copy. wr < outLimit+3, so out[wr:] holds at least copyWin
		// bytes; src < wr, so out[src:] does too. Word copies may write up
		// to 7 bytes past end, into slack or into bytes decoded later.
		d := (*[copyWin]byte)(out[wr:])
		sp := (*[copyWin]byte)(out[wr-offset:])
		end := wr + length
		if offset >= 8 {
			binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(sp[0:]))
			binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(sp[8:]))
			for i := 16; i < length && i <= copyWin-8; i += 8 {
				binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(sp[i:]))
			}
		} else {
			// Write the first 8 bytes one at a time, then copy words
			// from a multiple of offset that is at least 8 back.
			d[0] = sp[0]
			d[1] = sp[1]
			d[2] = sp[2]
			d[3] = sp[3]
			d[4] = sp[4]
			d[5] = sp[5]
			d[6] = sp[6]
			d[7] = sp[7]
			// d[i] = out[wr+i-k] = sp[i-back] with back = k-offset < 8.
			back := int(strideBack[offset&7])
			for i := 8; i < length && i <= copyWin-8; i += 8 {
				binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(sp[i-back:]))
			}
		}
		wr = end
	}
	if fail == failTruncated || z.overread*8 > int(bitcnt) {
		// Bits past the end of the input were consumed, so the output
		// after safe may be decoded from padding: drop it, keep the rest.
		z.wr = safe
		return z.truncated()
	}
	z.bitbuf, z.bitcnt, z.ip, z.wr = bitbuf, bitcnt, ip, wr
	switch fail {
	case failLitLen:
		return z.corrupt("invalid literal/length code")
	case failOffsetCode:
		return z.corrupt("invalid offset code")
	case failDistance:
		return z.corrupt("offset beyond start of output")
	}
	if z.state != stHuffman {
		if err := z.checkOverread(); err != nil {
			return err
		}
		if z.state == stTrailer {
			return z.alignInput()
		}
	}
	return nil
}

// corrupt returns the error for corrupt input, or the truncation error if
// the decoder has already consumed bits past the end of the input.
func (z *Reader) corrupt(what string) error {
	if err := z.checkOverread(); err != nil {
		return err
	}
	return corrupt(what)
}
