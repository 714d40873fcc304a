package schemas

import (
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

	cur []byte // unread part of the current block
	buf []byte // the current block, returned to free when consumed
	err error  // sticky error from the source
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

// Close stops the goroutine and waits for it.
func (ra *readahead) Close() error {
	ra.once.Do(func() { close(ra.quit) })
	ra.wg.Wait()
	return nil
}
