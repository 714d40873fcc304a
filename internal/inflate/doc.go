// Package inflate is a fast, pure-Go gzip (RFC 1952) and DEFLATE (RFC 1951)
// decompressor.
//
// It follows the design of libdeflate's decompressor rather than the
// streaming state machine of compress/flate:
//
//   - a 64-bit bit buffer that is refilled without branches by one unaligned
//     8-byte load whenever at least 8 input bytes are buffered, with a careful
//     byte-at-a-time path near the end of the input;
//   - single-lookup Huffman decode tables (11 bits for literal/length codes,
//     8 bits for offset codes, with subtables for longer codes) whose packed
//     uint32 entries directly give a literal, a length or offset base plus its
//     extra-bit count, or a subtable pointer;
//   - up to three literals decoded per refill;
//   - match copies done with 8-byte words that may overrun into slack space
//     at the end of a large contiguous output buffer, with special cases for
//     distance 1 and distances below 8.
//
// The output buffer holds 32 KiB of history followed by about 1 MiB of fresh
// output, so back-references are plain slice indexing; when it fills, the
// last 32 KiB are moved to the front.
//
// [Reader] behaves like compress/gzip's Reader with multistream mode on: it
// verifies the CRC-32 and size of every member, reports truncated input as
// io.ErrUnexpectedEOF (after returning what was decoded from the bytes
// present, as compress/gzip does), a bad checksum as [ErrChecksum], a bad
// header or trailing garbage as [ErrHeader], and a corrupt DEFLATE stream as
// an error wrapping [ErrCorrupt].
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. internal
// packages sit below all of them and import nothing of this module.
package inflate
