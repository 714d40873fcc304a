package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file verifies the flatbuffers metadata of Arrow IPC messages before
// the arrow reader sees it. The reader trusts vector lengths (it allocates
// slices of the length a schema claims) and follows child offsets without a
// depth limit, so a forged schema could exhaust memory or the stack, which no
// recover() catches. The verifier mirrors the offset arithmetic of the
// flatbuffers Go runtime (uint32, wrapping) and checks, for the tables the
// arrow reader follows, that every table, vtable, string and vector lies
// inside the buffer, that Field children nest at most maxFieldDepth deep, and
// that the number of tables visited (a shared child counts each time it is
// reached, as it does for the reader) stays bounded. Scalars out of bounds
// only make the reader panic, which readStream recovers.

const (
	maxFieldDepth   = 100 // the arrow writer nests at most 64 levels
	maxTablesVisits = 1 << 16
)

type fbKind int

const (
	fbString      fbKind = iota
	fbVector             // vector of elem-byte scalars or structs
	fbTableRef           // offset to a table
	fbTableVector        // vector of offsets to tables
	fbUnion              // offset to a table whose kind is given by the ubyte at typeSlot
)

type fbField struct {
	slot     int
	kind     fbKind
	elem     int
	table    *fbTable
	typeSlot int
	union    func(t byte) *fbTable
}

type fbTable struct {
	name   string
	fields []fbField
}

var (
	fbEmpty     = &fbTable{name: "table"}
	fbKeyValue  = &fbTable{name: "KeyValue", fields: []fbField{{slot: 0, kind: fbString}, {slot: 1, kind: fbString}}}
	fbTimestamp = &fbTable{name: "Timestamp", fields: []fbField{{slot: 1, kind: fbString}}}
	fbUnionType = &fbTable{name: "Union", fields: []fbField{{slot: 1, kind: fbVector, elem: 4}}}
	fbDictEnc   = &fbTable{name: "DictionaryEncoding", fields: []fbField{{slot: 1, kind: fbTableRef, table: fbEmpty}}}
	fbFieldT    = &fbTable{name: "Field"} // fields set in init (recursive)
	fbSchema    = &fbTable{name: "Schema", fields: []fbField{
		{slot: 1, kind: fbTableVector, table: fbFieldT},
		{slot: 2, kind: fbTableVector, table: fbKeyValue},
		{slot: 3, kind: fbVector, elem: 8},
	}}
	fbRecordBatch = &fbTable{name: "RecordBatch", fields: []fbField{
		{slot: 1, kind: fbVector, elem: 16},
		{slot: 2, kind: fbVector, elem: 16},
		{slot: 3, kind: fbTableRef, table: fbEmpty},
		{slot: 4, kind: fbVector, elem: 8},
	}}
	fbDictBatch = &fbTable{name: "DictionaryBatch", fields: []fbField{{slot: 1, kind: fbTableRef, table: fbRecordBatch}}}
	fbMessage   = &fbTable{name: "Message", fields: []fbField{
		{slot: 2, kind: fbUnion, typeSlot: 1, union: func(t byte) *fbTable {
			switch t {
			case 1:
				return fbSchema
			case 2:
				return fbDictBatch
			case 3:
				return fbRecordBatch
			}
			return fbEmpty
		}},
		{slot: 4, kind: fbTableVector, table: fbKeyValue},
	}}
)

func init() {
	fbFieldT.fields = []fbField{
		{slot: 0, kind: fbString},
		{slot: 3, kind: fbUnion, typeSlot: 2, union: func(t byte) *fbTable {
			switch t {
			case 10:
				return fbTimestamp
			case 14:
				return fbUnionType
			}
			return fbEmpty
		}},
		{slot: 4, kind: fbTableRef, table: fbDictEnc},
		{slot: 5, kind: fbTableVector, table: fbFieldT},
		{slot: 6, kind: fbTableVector, table: fbKeyValue},
	}
}

type fbVerifier struct {
	buf    []byte
	visits int
}

// verifyMessage checks the flatbuffers Message in buf.
func verifyMessage(buf []byte) error {
	if uint64(len(buf)) >= 1<<31 {
		return errors.New("message metadata too large")
	}
	v := fbVerifier{buf: buf}
	root, err := v.u32(0)
	if err != nil {
		return err
	}
	return v.table(root, fbMessage, 0)
}

func (v *fbVerifier) in(pos uint32, n uint64) bool {
	return uint64(pos)+n <= uint64(len(v.buf))
}

func (v *fbVerifier) u32(pos uint32) (uint32, error) {
	if !v.in(pos, 4) {
		return 0, fmt.Errorf("offset %d out of bounds", pos)
	}
	return binary.LittleEndian.Uint32(v.buf[pos:]), nil
}

// slot returns the position of field slot of the table at pos (0 if absent).
func (v *fbVerifier) slot(pos, vt uint32, vtSize uint16, slot int) (uint32, error) {
	voff := uint32(4 + 2*slot)
	if voff >= uint32(vtSize) {
		return 0, nil
	}
	if !v.in(vt+voff, 2) {
		return 0, fmt.Errorf("vtable at %d out of bounds", vt)
	}
	o := binary.LittleEndian.Uint16(v.buf[vt+voff:])
	if o == 0 {
		return 0, nil
	}
	return pos + uint32(o), nil
}

func (v *fbVerifier) table(pos uint32, t *fbTable, depth int) error {
	if v.visits++; v.visits > maxTablesVisits {
		return errors.New("too many tables")
	}
	if depth > maxFieldDepth {
		return errors.New("fields nest too deep")
	}
	soff, err := v.u32(pos)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	vt := uint32(int32(pos) - int32(soff))
	if !v.in(vt, 4) {
		return fmt.Errorf("%s: vtable at %d out of bounds", t.name, vt)
	}
	vtSize := binary.LittleEndian.Uint16(v.buf[vt:])
	if !v.in(vt, uint64(vtSize)) {
		return fmt.Errorf("%s: vtable of %d bytes at %d out of bounds", t.name, vtSize, vt)
	}
	for _, f := range t.fields {
		p, err := v.slot(pos, vt, vtSize, f.slot)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if p == 0 {
			continue
		}
		off, err := v.u32(p)
		if err != nil {
			return fmt.Errorf("%s field %d: %w", t.name, f.slot, err)
		}
		target := p + off
		switch f.kind {
		case fbString:
			_, err = v.vector(target, 1)
		case fbVector:
			_, err = v.vector(target, uint64(f.elem))
		case fbTableRef:
			err = v.table(target, f.table, depth+1)
		case fbTableVector:
			var n uint32
			if n, err = v.vector(target, 4); err == nil {
				for i := uint32(0); i < n && err == nil; i++ {
					ep := target + 4 + 4*i
					var eo uint32
					if eo, err = v.u32(ep); err == nil {
						err = v.table(ep+eo, f.table, depth+1)
					}
				}
			}
		case fbUnion:
			var typ byte
			tp, terr := v.slot(pos, vt, vtSize, f.typeSlot)
			switch {
			case terr != nil:
				err = terr
			case tp != 0 && !v.in(tp, 1):
				err = errors.New("union type out of bounds")
			case tp != 0:
				typ = v.buf[tp]
			}
			if err == nil {
				err = v.table(target, f.union(typ), depth+1)
			}
		}
		if err != nil {
			return fmt.Errorf("%s field %d: %w", t.name, f.slot, err)
		}
	}
	return nil
}

// vector checks the vector at pos of elem-byte elements and returns its
// length.
func (v *fbVerifier) vector(pos uint32, elem uint64) (uint32, error) {
	n, err := v.u32(pos)
	if err != nil {
		return 0, err
	}
	if !v.in(pos+4, uint64(n)*elem) {
		return 0, fmt.Errorf("vector of %d at %d out of bounds", n, pos)
	}
	return n, nil
}
