package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// DecodeArrowFile decodes the record batches of the Arrow IPC file in data
// (an artifact: a featurizer state, a router model) with the checks
// DecodeRecords makes, for any schema: the file's messages are read in
// order as a stream (the footer only indexes them), so that a damaged or
// forged file fails with a *DecodeError (ReasonMalformedArrow) instead of
// crashing the process; the stock arrow file reader allocates whatever a
// length in the file claims. There is at least one record; each shares the
// file's schema. The caller releases them.
func DecodeArrowFile(data []byte) ([]arrow.Record, error) {
	stream, err := arrowFileStream(data)
	if err != nil {
		return nil, err
	}
	recs, err := readStream(stream, memory.DefaultAllocator, false, true)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow file: no record batches")
	}
	return recs, nil
}

// arrowFileStream returns the stream of messages inside an Arrow IPC file:
// the file is the magic, padding, the stream, the footer, its int32 length
// and the magic again.
func arrowFileStream(data []byte) ([]byte, error) {
	const head = 8
	tail := len(arrowFileMagic) + 4
	if len(data) < head+tail || !bytes.HasPrefix(data, []byte(arrowFileMagic)) || string(data[len(data)-len(arrowFileMagic):]) != arrowFileMagic {
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow file: not an Arrow file, or truncated")
	}
	footer := int64(int32(binary.LittleEndian.Uint32(data[len(data)-tail:])))
	if footer < 0 || footer > int64(len(data)-head-tail) {
		return nil, errorf(ReasonMalformedArrow, "schemas: decode arrow file: footer of %d bytes in a file of %d", footer, len(data))
	}
	return data[head : len(data)-tail-int(footer)], nil
}

// MetadataDigest is the hex SHA-256 of an artifact's settings JSON. An
// artifact's table checksum covers its values only; stored beside the
// settings under a key of its own, this digest covers the settings, so that
// a damaged byte anywhere in the artifact is detected.
func MetadataDigest(meta []byte) string {
	d := sha256.Sum256(meta)
	return hex.EncodeToString(d[:])
}

// ParquetMetadata returns the key-value metadata under key of the Parquet
// file at path, "" when it has none.
func ParquetMetadata(path, key string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return "", err
	}
	v, _ := pf.Lookup(key)
	return v, nil
}
