package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"github.com/pierrec/lz4/v4"
)

// This file checks a Parquet file before parquet-go reads it. parquet-go
// v0.32 trusts the sizes in a file: it allocates the footer length from the
// trailer, slices of the length a thrift list header claims and buffers of
// the size a page header claims before reading them, so a corrupt file could
// make it allocate gigabytes or terabytes, and run out of memory (fatal, no
// recover). The check bounds every such size by the bytes actually present:
// the trailer, a walk of the footer's thrift encoding, and a walk of every
// page header of every column chunk. It reads only the footer and the page
// headers, and the pages of LZ4_RAW column chunks (see checkParquetPages).

const (
	maxThriftDepth  = 64
	maxPageValues   = 1 << 24 // values in one page
	minPageBudget   = 64 << 20
	maxPageRatio    = 1024 // uncompressed : compressed page size
	pageHeaderChunk = 64 << 10
)

// openParquetFile checks the file and opens it without page indexes and
// bloom filters (which we do not use and would not be checked).
func openParquetFile(r io.ReaderAt, size int64) (*parquet.File, error) {
	if size < 12 {
		return nil, errors.New("not a parquet file: too short")
	}
	var head, tail [8]byte
	if _, err := r.ReadAt(head[:4], 0); err != nil {
		return nil, err
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, err
	}
	if string(head[:4]) != "PAR1" {
		return nil, errors.New("not a parquet file: no PAR1 magic")
	}
	switch string(tail[4:]) {
	case "PAR1":
	case "PARE":
		return nil, errors.New("encrypted parquet files are not supported")
	default:
		return nil, errors.New("not a parquet file: no PAR1 trailer")
	}
	footerLen := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footerLen > size-12 {
		return nil, fmt.Errorf("footer of %d bytes in a file of %d", footerLen, size)
	}
	footer := make([]byte, footerLen)
	if _, err := r.ReadAt(footer, size-8-footerLen); err != nil {
		return nil, err
	}
	if _, err := walkThriftStruct(footer); err != nil {
		return nil, fmt.Errorf("corrupt footer: %w", err)
	}
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	if err := checkParquetPages(f, r, size); err != nil {
		return nil, err
	}
	return f, nil
}

// checkParquetPages walks the page headers of every column chunk, as
// parquet-go will read them, and bounds the sizes they claim.
//
// LZ4_RAW pages (what pyarrow writes for compression="lz4") are decompressed
// here once, into a buffer of exactly the size their header claims, and must
// fill it. parquet-go's LZ4 decoder takes any error for a short buffer and
// doubles its buffer forever on a corrupt page, so only pages that decode are
// let through (a page that decodes into n bytes decodes into any larger
// buffer). And parquet-go keeps a page that decodes short as a shorter page,
// and (parquet-go issue #608, PR #609, open) drops a reallocated output of
// exactly the claimed size: v0.32.0's decoder reallocated whenever the page
// compressed less than 3:1, so real text read as "" or failed to decode.
// v0.32.1 decodes into the page buffer (go.mod requires it; TestParquetCodecs
// and TestInteropParquetLZ4Large fail with v0.32.0), and reallocates only
// for an output larger than the claimed size, which this check refuses.
// The legacy LZ4 codec (Hadoop framing), which parquet-go cannot read, is
// refused with what to do instead.
func checkParquetPages(f *parquet.File, r io.ReaderAt, size int64) error {
	for g, rg := range f.Metadata().RowGroups {
		for c, cc := range rg.Columns {
			md := cc.MetaData
			if md.Codec == format.Lz4 {
				return fmt.Errorf("column %v uses the legacy LZ4 codec (Hadoop framing), which is not supported: rewrite the file with zstd, snappy or lz4_raw (pyarrow's compression=\"lz4\" writes lz4_raw)", md.PathInSchema)
			}
			base := md.DataPageOffset
			if md.DictionaryPageOffset != 0 {
				base = md.DictionaryPageOffset
			}
			n := md.TotalCompressedSize
			if base < 0 || n < 0 || base > size || n > size-base {
				return fmt.Errorf("row group %d column %d: chunk [%d, +%d) outside the file", g, c, base, n)
			}
			if err := checkChunkPages(r, base, base+n, md.Codec == format.Lz4Raw); err != nil {
				return fmt.Errorf("row group %d column %d: %w", g, c, err)
			}
		}
	}
	return nil
}

// checkChunkPages checks the page headers of the column chunk [pos, end),
// and with lz4 that every page decompresses to its claimed size.
func checkChunkPages(r io.ReaderAt, pos, end int64, lz4 bool) error {
	var buf, page, plain []byte
	for pos < end {
		// Read enough of the chunk to hold the page header.
		var hdrLen int
		for want := int64(pageHeaderChunk); ; want *= 4 {
			n := min(want, end-pos)
			if int64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := r.ReadAt(buf, pos); err != nil && err != io.EOF {
				return err
			}
			var err error
			if hdrLen, err = walkThriftStruct(buf); err == nil {
				break
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || n == end-pos {
				return fmt.Errorf("page header at %d: %w", pos, err)
			}
		}
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf[:hdrLen], &h); err != nil {
			return fmt.Errorf("page header at %d: %w", pos, err)
		}
		comp, uncomp := int64(h.CompressedPageSize), int64(h.UncompressedPageSize)
		if comp < 0 || comp > end-pos-int64(hdrLen) {
			return fmt.Errorf("page at %d: %d compressed bytes, %d left in the chunk", pos, comp, end-pos-int64(hdrLen))
		}
		if uncomp < 0 || uncomp > max(minPageBudget, maxPageRatio*comp) {
			return fmt.Errorf("page at %d: %d bytes uncompressed from %d", pos, uncomp, comp)
		}
		var values int64
		switch {
		case h.DataPageHeader.Valid:
			values = int64(h.DataPageHeader.V.NumValues)
		case h.DataPageHeaderV2.Valid:
			values = int64(h.DataPageHeaderV2.V.NumValues)
		case h.DictionaryPageHeader.Valid:
			values = int64(h.DictionaryPageHeader.V.NumValues)
		}
		if values < 0 || values > maxPageValues {
			return fmt.Errorf("page at %d: %d values", pos, values)
		}
		if lz4 {
			if cap(page) < int(comp) {
				page = make([]byte, comp)
			}
			page = page[:comp]
			if _, err := r.ReadAt(page, pos+int64(hdrLen)); err != nil && err != io.EOF {
				return err
			}
			var err error
			if plain, err = checkLZ4Page(&h, page, plain); err != nil {
				return fmt.Errorf("page at %d: %w", pos, err)
			}
		}
		pos += int64(hdrLen) + comp
	}
	return nil
}

// checkLZ4Page checks that the LZ4_RAW page of header h, body page,
// decompresses to the size h claims, using buf as scratch space; it returns
// buf, perhaps grown. The levels of a v2 data page are not compressed.
func checkLZ4Page(h *format.PageHeader, page, buf []byte) ([]byte, error) {
	src, want := page, int(h.UncompressedPageSize)
	if v2 := h.DataPageHeaderV2; v2.Valid {
		levels := int(v2.V.DefinitionLevelsByteLength) + int(v2.V.RepetitionLevelsByteLength)
		if v2.V.DefinitionLevelsByteLength < 0 || v2.V.RepetitionLevelsByteLength < 0 || levels > len(page) || levels > want {
			return buf, fmt.Errorf("levels of %d bytes in a page of %d", levels, len(page))
		}
		if v2.V.IsCompressed.Valid && !v2.V.IsCompressed.V {
			return buf, nil
		}
		src, want = page[levels:], want-levels
	}
	if len(src) == 0 {
		// parquet-go's decoder would loop on an empty input.
		return buf, errors.New("LZ4_RAW page without data")
	}
	if cap(buf) < want {
		buf = make([]byte, want)
	}
	n, err := lz4.UncompressBlock(src, buf[:want])
	if err != nil || n != want {
		return buf, fmt.Errorf("LZ4_RAW page does not decompress to its %d bytes (%d, %v)", want, n, err)
	}
	return buf, nil
}

// Thrift compact protocol type codes.
const (
	tcStop    = 0
	tcTrue    = 1
	tcFalse   = 2
	tcByte    = 3
	tcI16     = 4
	tcI32     = 5
	tcI64     = 6
	tcDouble  = 7
	tcBinary  = 8
	tcList    = 9
	tcSet     = 10
	tcMap     = 11
	tcStruct  = 12
	tcUUID    = 13
	maxVarint = 10
)

// walkThriftStruct walks the thrift compact struct at the start of b without
// decoding it and returns its length. Every list, map and binary must fit in
// the bytes that follow it; io.ErrUnexpectedEOF means b ends inside it.
func walkThriftStruct(b []byte) (int, error) {
	w := thriftWalker{b: b}
	if err := w.structure(0); err != nil {
		return 0, err
	}
	return w.pos, nil
}

type thriftWalker struct {
	b   []byte
	pos int
}

var errThriftEOF = fmt.Errorf("thrift: %w", io.ErrUnexpectedEOF)

func (w *thriftWalker) byte() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, errThriftEOF
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.pos:])
	switch {
	case n == 0:
		return 0, errThriftEOF
	case n < 0:
		return 0, errors.New("thrift: varint overflows")
	}
	w.pos += n
	return v, nil
}

func (w *thriftWalker) skip(n uint64) error {
	if n > uint64(len(w.b)-w.pos) {
		return errThriftEOF
	}
	w.pos += int(n)
	return nil
}

// size reads a container or binary size and checks that at least min bytes
// per element follow.
func (w *thriftWalker) size(v uint64, min uint64) error {
	if v > 1<<31-1 {
		return errors.New("thrift: size out of range")
	}
	if v*min > uint64(len(w.b)-w.pos) {
		return errThriftEOF
	}
	return nil
}

func (w *thriftWalker) structure(depth int) error {
	if depth > maxThriftDepth {
		return errors.New("thrift: nesting too deep")
	}
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		t := h & 0x0f
		if t == tcStop {
			return nil
		}
		if h>>4 == 0 { // long form: zigzag varint field id
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		if t == tcTrue || t == tcFalse { // a bool field's value is its type
			continue
		}
		if err := w.value(t, depth); err != nil {
			return err
		}
	}
}

func (w *thriftWalker) value(t byte, depth int) error {
	switch t {
	case tcTrue, tcFalse, tcByte:
		return w.skip(1)
	case tcI16, tcI32, tcI64:
		_, err := w.uvarint()
		return err
	case tcDouble:
		return w.skip(8)
	case tcUUID:
		return w.skip(16)
	case tcBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		if err := w.size(n, 1); err != nil {
			return err
		}
		return w.skip(n)
	case tcList, tcSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 0xf {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		et := h & 0x0f
		if err := w.size(n, 1); err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if err := w.value(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tcMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if err := w.size(n, 2); err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if err := w.value(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.value(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tcStruct:
		return w.structure(depth + 1)
	}
	return fmt.Errorf("thrift: unknown type %d", t)
}
