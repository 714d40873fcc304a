package schemas

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// readahead reads its source in a goroutine of its own, a few blocks ahead
// of the consumer, so that decompressing an input overlaps with parsing it.
// The goroutine ends at the end of the source, on a read error, or on Close.
type readahead struct {
	blocks chan raBlock
	free   chan []byte
	quit   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	cur   []byte // unread part of the current block
	buf   []byte // the current block, returned to free when consumed
	err   error  // sticky error from the source
	carry []byte // ReadSlice: a line that spans blocks
}

type raBlock struct {
	b   []byte
	err error
}

const (
	raBlockSize = 1 << 20
	raBlocks    = 4
)

func newReadahead(r io.Reader) *readahead {
	ra := &readahead{
		blocks: make(chan raBlock, raBlocks),
		free:   make(chan []byte, raBlocks+1),
		quit:   make(chan struct{}),
	}
	for range raBlocks + 1 {
		ra.free <- make([]byte, raBlockSize)
	}
	ra.wg.Add(1)
	go func() { // owner: ra; ends at EOF, on an error or when quit closes
		defer ra.wg.Done()
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.quit:
				return
			}
			// Fill the block; keep the source's own error (a truncated
			// gzip stream says io.ErrUnexpectedEOF, the end says io.EOF).
			n := 0
			var err error
			for n < len(buf) && err == nil {
				var m int
				m, err = r.Read(buf[n:])
				n += m
			}
			select {
			case ra.blocks <- raBlock{b: buf[:n], err: err}:
			case <-ra.quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		blk := <-ra.blocks
		ra.buf, ra.cur, ra.err = blk.b, blk.b, blk.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// raCarryMax is the longest slice ReadSlice returns without
// bufio.ErrBufferFull when the line spans blocks, as a bufio.Reader of that
// size would.
const raCarryMax = 1 << 20

// nextBlock releases the current block and waits for the next one; it
// returns false, with the current block released, once the source's error
// was reached.
func (ra *readahead) nextBlock() bool {
	if ra.buf != nil {
		ra.free <- ra.buf[:cap(ra.buf)]
		ra.buf = nil
	}
	if ra.err != nil {
		return false
	}
	blk := <-ra.blocks
	ra.buf, ra.cur, ra.err = blk.b, blk.b, blk.err
	return true
}

// ReadSlice reads through the first delim and returns the bytes read, as
// bufio.Reader.ReadSlice does: at the end of the source it returns what is
// left with the source's error (io.EOF at the end), and a line that spans
// blocks and grows past raCarryMax comes in parts with
// bufio.ErrBufferFull. The slice points into a block, or into a buffer of
// its own for a line that spans blocks, and is valid until the next call.
func (ra *readahead) ReadSlice(delim byte) ([]byte, error) {
	ra.carry = ra.carry[:0]
	for {
		if len(ra.cur) == 0 && !ra.nextBlock() {
			if len(ra.carry) > 0 {
				return ra.carry, ra.err
			}
			return nil, ra.err
		}
		if len(ra.cur) == 0 {
			continue
		}
		if i := bytes.IndexByte(ra.cur, delim); i >= 0 {
			if len(ra.carry) == 0 {
				line := ra.cur[:i+1]
				ra.cur = ra.cur[i+1:]
				return line, nil
			}
			if n := raCarryMax - len(ra.carry); i+1 > n {
				ra.carry = append(ra.carry, ra.cur[:n]...)
				ra.cur = ra.cur[n:]
				return ra.carry, bufio.ErrBufferFull
			}
			ra.carry = append(ra.carry, ra.cur[:i+1]...)
			ra.cur = ra.cur[i+1:]
			return ra.carry, nil
		}
		// No delim in the rest of the block: keep it and go on.
		n := min(len(ra.cur), raCarryMax-len(ra.carry))
		ra.carry = append(ra.carry, ra.cur[:n]...)
		ra.cur = ra.cur[n:]
		if len(ra.carry) == raCarryMax {
			return ra.carry, bufio.ErrBufferFull
		}
	}
}

// Close stops the goroutine and waits for it.
func (ra *readahead) Close() error {
	ra.once.Do(func() { close(ra.quit) })
	ra.wg.Wait()
	return nil
}
