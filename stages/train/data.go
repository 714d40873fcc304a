package train

import (
	"bytes"
	"errors"
)

// Packer turns a stream of documents into training batches: each document's
// bytes followed by a separator byte are appended to one pending byte
// stream, which is cut into B rows of T consecutive bytes. Nothing is
// padded and nothing is dropped; a document may span several rows and
// batches. The packing depends only on the documents, their order and
// (T, B, sep), so a replay of the same documents gives the same batches, and
// State/Restore carry the pending bytes through a checkpoint exactly.
//
// A Packer is used by one goroutine at a time.
type Packer struct {
	T, B int
	Sep  byte

	buf     []byte // buf[start:] is pending
	start   int
	inputs  []int32 // [B,T], reused by Next
	targets []int32 // [B,T], reused by Next
}

// NewPacker returns an empty packer of B rows of T bytes that ends every
// document with sep. It panics if T or B is less than 1.
func NewPacker(T, B int, sep byte) *Packer {
	if T < 1 || B < 1 {
		panic("train: NewPacker: T and B must be positive")
	}
	return &Packer{T: T, B: B, Sep: sep, inputs: make([]int32, B*T), targets: make([]int32, B*T)}
}

// Add appends doc and the separator to the pending stream. An empty doc
// adds the separator alone.
func (p *Packer) Add(doc []byte) {
	if p.start > 0 && p.start >= len(p.buf)/2 {
		// Compact so that the buffer does not grow without bound.
		n := copy(p.buf, p.buf[p.start:])
		p.buf = p.buf[:n]
		p.start = 0
	}
	p.buf = append(p.buf, doc...)
	p.buf = append(p.buf, p.Sep)
}

// Pending is the number of bytes added and not yet consumed.
func (p *Packer) Pending() int { return len(p.buf) - p.start }

// Next returns the next batch once B·T+1 bytes are pending: row b of inputs
// is pending[b·T : (b+1)·T] and targets are the same windows shifted by one
// byte. It consumes B·T bytes, so the last target byte is the next batch's
// first input. With fewer bytes pending it returns ok false and consumes
// nothing. The returned slices are reused by the next call to Next.
func (p *Packer) Next() (inputs, targets []int32, ok bool) {
	n := p.B * p.T
	if p.Pending() < n+1 {
		return nil, nil, false
	}
	s := p.buf[p.start : p.start+n+1]
	for i := range n {
		p.inputs[i] = int32(s[i])
		p.targets[i] = int32(s[i+1])
	}
	p.start += n
	return p.inputs, p.targets, true
}

// packerStateMagic starts a State; the trailing digit is the format version.
var packerStateMagic = []byte("dfpk1")

// State returns the pending bytes in a self-describing form for a
// checkpoint. Restore on a packer of any shape brings them back.
func (p *Packer) State() []byte {
	out := make([]byte, 0, len(packerStateMagic)+p.Pending())
	out = append(out, packerStateMagic...)
	return append(out, p.buf[p.start:]...)
}

// ErrPackerState is returned by Restore for bytes that State did not make.
var ErrPackerState = errors.New("train: not a packer state")

// Restore replaces the pending bytes with those of state, a value returned
// by State.
func (p *Packer) Restore(state []byte) error {
	if !bytes.HasPrefix(state, packerStateMagic) {
		return ErrPackerState
	}
	p.buf = append(p.buf[:0], state[len(packerStateMagic):]...)
	p.start = 0
	return nil
}
