package inflate

import "math/bits"

// Decode table entry layout (uint32):
//
//	bits 0-7   total number of bits to consume (codeword + extra bits); for a
//	           subtable pointer, the number of main-table bits
//	bits 8-11  codeword length (within the (sub)table); for a subtable
//	           pointer, the number of subtable index bits
//	bit  12    subtable pointer
//	bit  13    end of block
//	bit  14    invalid codeword or symbol
//	bits 16-30 value: literal byte, length or offset base, subtable start,
//	           or precode symbol
//	bit  31    literal
const (
	flagSub     = 1 << 12
	flagEOB     = 1 << 13
	flagInvalid = 1 << 14
	flagExc     = flagSub | flagEOB | flagInvalid
	flagLiteral = 1 << 31

	entryInvalid = flagInvalid

	litTableBits  = 11
	distTableBits = 8
	preTableBits  = 7

	// Sizes of the largest tables the builder can produce for complete
	// codes (zlib's "enough" values for these parameters).
	litTableSize  = 2342
	distTableSize = 402
	preTableSize  = 1 << preTableBits

	maxCodeLen = 15

	numLitLenSyms = 288
	numDistSyms   = 32
	numPreSyms    = 19
)

// precodeOrder is the order in which code length code lengths are stored.
var precodeOrder = [numPreSyms]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// litLenInfo, distInfo and preInfo give for every symbol the entry value
// without codeword lengths: flags, value and the number of extra bits (in
// the total-bits field, to which the codeword length is added).
var (
	litLenInfo [numLitLenSyms]uint32
	distInfo   [numDistSyms]uint32
	preInfo    [numPreSyms]uint32
)

var lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
var lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
var distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
var distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

// fixedLitLens and fixedDistLens are the code lengths of the fixed Huffman
// codes (RFC 1951 section 3.2.6).
var (
	fixedLitLens  [numLitLenSyms]uint8
	fixedDistLens [numDistSyms]uint8
)

func init() {
	for s := 0; s < 256; s++ {
		litLenInfo[s] = flagLiteral | uint32(s)<<16
	}
	litLenInfo[256] = flagEOB
	for s := 257; s < 286; s++ {
		litLenInfo[s] = uint32(lengthBase[s-257])<<16 | uint32(lengthExtra[s-257])
	}
	// Symbols 286 and 287 may only appear in fixed blocks, where
	// compress/flate rejects them.
	litLenInfo[286] = flagInvalid
	litLenInfo[287] = flagInvalid
	for s := 0; s < 30; s++ {
		distInfo[s] = uint32(distBase[s])<<16 | uint32(distExtra[s])
	}
	distInfo[30] = flagInvalid
	distInfo[31] = flagInvalid
	for s := 0; s < numPreSyms; s++ {
		preInfo[s] = uint32(s) << 16
	}
	for s := range fixedLitLens {
		switch {
		case s < 144:
			fixedLitLens[s] = 8
		case s < 256:
			fixedLitLens[s] = 9
		case s < 280:
			fixedLitLens[s] = 7
		default:
			fixedLitLens[s] = 8
		}
	}
	for s := range fixedDistLens {
		fixedDistLens[s] = 5
	}
}

// buildTable builds a decode table with 2^tableBits main entries (followed
// by subtables) for the canonical Huffman code given by lens. info gives the
// per-symbol entry values. It reports false if the code lengths do not form
// a code that compress/flate accepts: the code must be complete, consist of
// a single codeword of length 1, or be empty. An empty code yields a table
// of invalid entries.
func buildTable(table []uint32, lens []uint8, info []uint32, tableBits uint) bool {
	var count [maxCodeLen + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	maxLen := 0
	left := 1
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false // over-subscribed
		}
		if count[l] != 0 {
			maxLen = l
		}
	}
	rootSize := 1 << tableBits
	if len(table) < rootSize || len(info) < len(lens) {
		return false
	}
	if maxLen == 0 {
		for i := range table[:rootSize] {
			table[i] = entryInvalid
		}
		return true
	}
	// left is now 2^15 minus the Kraft sum scaled to 2^15.
	if left != 0 {
		if !(maxLen == 1 && count[1] == 1) {
			return false // incomplete
		}
		for i := range table[:rootSize] {
			table[i] = entryInvalid
		}
	}

	// Sort symbols by (length, symbol).
	var offs [maxCodeLen + 2]int
	for l := 1; l <= maxCodeLen; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [numLitLenSyms]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	n := offs[maxLen] // number of used symbols (offs[l] now marks the end of length l)

	code := uint32(0)
	curLen := uint(0)
	next := rootSize
	curPrefix := -1
	subStart, subBits := 0, uint(0)
	remaining := count
	for _, s := range sorted[:n] {
		l := uint(lens[s])
		if l > curLen {
			code <<= l - curLen
			curLen = l
		}
		rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
		code++
		if l <= tableBits {
			e := info[s] + uint32(l) | uint32(l)<<8
			for i := rev; i < rootSize; i += 1 << l {
				table[i] = e
			}
			remaining[l]--
			continue
		}
		prefix := rev & (rootSize - 1)
		if prefix != curPrefix {
			sb := l - tableBits
			space := 1 << sb
			for int(sb+tableBits) < maxLen {
				space -= remaining[sb+tableBits]
				if space <= 0 {
					break
				}
				sb++
				space <<= 1
			}
			subStart, subBits = next, sb
			next += 1 << sb
			if next > len(table) {
				return false
			}
			table[prefix] = flagSub | uint32(subStart)<<16 | uint32(sb)<<8 | uint32(tableBits)
			curPrefix = prefix
		}
		sl := l - tableBits
		e := info[s] + uint32(sl) | uint32(sl)<<8
		for i := rev >> tableBits; i < 1<<subBits; i += 1 << sl {
			table[subStart+i] = e
		}
		remaining[l]--
	}
	return true
}
