package train

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Packer turns a stream of documents into training batches of B rows of T
// bytes. It keeps B lanes, one per row: each document, followed by a
// separator byte, goes whole to the lane with the fewest pending bytes (the
// lowest-numbered on ties), and row b of a batch is the next T bytes of lane
// b. So the rows of a batch come from different documents, and a long
// document is spread over many batches as one row among B instead of filling
// whole batches on its own, which would train the model on that document
// alone for hundreds of steps. Nothing is padded and nothing is dropped. The
// packing depends only on the documents, their order and (T, B, sep), so a
// replay of the same documents gives the same batches, and State/Restore
// carry the pending bytes through a checkpoint exactly.
//
// A Packer is used by one goroutine at a time.
type Packer struct {
	T, B int
	Sep  byte

	lanes   []lane
	inputs  []int32 // [B,T], reused by Next
	targets []int32 // [B,T], reused by Next
}

// lane is one row's pending byte stream: buf[start:].
type lane struct {
	buf   []byte
	start int
}

func (l *lane) pending() int { return len(l.buf) - l.start }

// add appends b, compacting first so that the buffer does not grow without
// bound.
func (l *lane) add(b ...byte) {
	if l.start > 0 && l.start >= len(l.buf)/2 {
		n := copy(l.buf, l.buf[l.start:])
		l.buf = l.buf[:n]
		l.start = 0
	}
	l.buf = append(l.buf, b...)
}

// NewPacker returns an empty packer of B rows of T bytes that ends every
// document with sep. It panics if T or B is less than 1.
func NewPacker(T, B int, sep byte) *Packer {
	if T < 1 || B < 1 {
		panic("train: NewPacker: T and B must be positive")
	}
	return &Packer{T: T, B: B, Sep: sep, lanes: make([]lane, B), inputs: make([]int32, B*T), targets: make([]int32, B*T)}
}

// shortest returns the lane with the fewest pending bytes (the lowest index
// on ties).
func (p *Packer) shortest() *lane {
	best := &p.lanes[0]
	for i := 1; i < len(p.lanes); i++ {
		if l := &p.lanes[i]; l.pending() < best.pending() {
			best = l
		}
	}
	return best
}

// Add appends doc and the separator to the lane with the fewest pending
// bytes. An empty doc adds the separator alone.
func (p *Packer) Add(doc []byte) {
	l := p.shortest()
	l.add(doc...)
	l.add(p.Sep)
}

// Pending is the number of bytes added and not yet consumed, over all lanes.
func (p *Packer) Pending() int {
	n := 0
	for i := range p.lanes {
		n += p.lanes[i].pending()
	}
	return n
}

// Next returns the next batch once every lane has T+1 bytes pending: row b
// of inputs is the next T bytes of lane b and its targets the same window
// shifted by one byte. It consumes T bytes of each lane, so a row's last
// target byte is the lane's next input. Otherwise it returns ok false and
// consumes nothing. The returned slices are reused by the next call to Next.
func (p *Packer) Next() (inputs, targets []int32, ok bool) {
	T := p.T
	for i := range p.lanes {
		if p.lanes[i].pending() < T+1 {
			return nil, nil, false
		}
	}
	for b := range p.lanes {
		l := &p.lanes[b]
		s := l.buf[l.start : l.start+T+1]
		in, tg := p.inputs[b*T:(b+1)*T], p.targets[b*T:(b+1)*T]
		for i := range T {
			in[i] = int32(s[i])
			tg[i] = int32(s[i+1])
		}
		l.start += T
	}
	return p.inputs, p.targets, true
}

// packerStateMagic starts a State; the trailing digit is the format version.
// Version 2 holds the lanes: their count, then each lane's length and bytes
// (uvarints). Version 1, from before the lanes, is one pending stream.
var (
	packerStateMagic   = []byte("dfpk2")
	packerStateMagicV1 = []byte("dfpk1")
)

// State returns the pending bytes of every lane in a self-describing form
// for a checkpoint. Restore on a packer of any shape brings them back.
func (p *Packer) State() []byte {
	out := make([]byte, 0, len(packerStateMagic)+p.Pending()+binary.MaxVarintLen64*(len(p.lanes)+1))
	out = append(out, packerStateMagic...)
	out = binary.AppendUvarint(out, uint64(len(p.lanes)))
	for i := range p.lanes {
		l := &p.lanes[i]
		out = binary.AppendUvarint(out, uint64(l.pending()))
		out = append(out, l.buf[l.start:]...)
	}
	return out
}

// ErrPackerState is returned by Restore for bytes that State did not make.
var ErrPackerState = errors.New("train: not a packer state")

// Restore replaces the pending bytes with those of state, a value returned
// by State. On a packer with the same number of lanes each lane gets its
// bytes back, so the batches go on exactly as they would have; otherwise
// (and for a version 1 state) each saved lane's bytes, in order, go whole to
// the lane with the fewest pending bytes.
func (p *Packer) Restore(state []byte) error {
	var saved [][]byte
	switch {
	case bytes.HasPrefix(state, packerStateMagic):
		rest := state[len(packerStateMagic):]
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)) {
			return ErrPackerState
		}
		rest = rest[k:]
		for range n {
			m, k := binary.Uvarint(rest)
			if k <= 0 || m > uint64(len(rest)-k) {
				return ErrPackerState
			}
			saved = append(saved, rest[k:k+int(m)])
			rest = rest[k+int(m):]
		}
		if len(rest) != 0 {
			return ErrPackerState
		}
	case bytes.HasPrefix(state, packerStateMagicV1):
		saved = [][]byte{state[len(packerStateMagicV1):]}
	default:
		return ErrPackerState
	}
	for i := range p.lanes {
		p.lanes[i] = lane{buf: p.lanes[i].buf[:0]}
	}
	if len(saved) == len(p.lanes) {
		for i, b := range saved {
			p.lanes[i].add(b...)
		}
		return nil
	}
	for _, b := range saved {
		p.shortest().add(b...)
	}
	return nil
}
