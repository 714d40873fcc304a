package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Waking a sleeping goroutine on another core takes 70 µs or more on this
// kind of VM (the idle vCPU has to be woken), longer than a 256³ product
// takes on two cores. So, like OpenBLAS's threads, Sgemm's helper
// goroutines are long-lived and poll for the next job for a while after
// each one (spinFor) before they sleep; back-to-back calls, as in a
// training step, find them awake. And the work comes in chunks that every
// participant, the calling goroutine included, takes from a shared
// counter: a helper that starts late finds less (or nothing) left to do
// instead of holding up the call.

// spinFor is how long an idle helper polls for work before it sleeps.
const spinFor = 200 * time.Microsecond

// job is one parallel call: chunks 0..n-1 of fn, taken in order.
type job struct {
	fn   func(chunk int)
	n    int64
	next atomic.Int64 // next chunk to take
	done atomic.Int64 // chunks finished
}

// work runs chunks until none are left to take.
func (j *job) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.n {
			return
		}
		j.fn(int(c))
		j.done.Add(1)
	}
}

// helper is one long-lived goroutine that runs jobs handed to it.
type helper struct {
	slot   atomic.Pointer[job] // the job to join, nil when none
	parked atomic.Bool         // it sleeps on wake
	wake   chan struct{}       // capacity 1
}

var (
	helpersMu sync.Mutex
	helpers   []*helper // started on demand, never stopped
)

// getHelpers returns n helpers, starting the missing ones.
func getHelpers(n int) []*helper {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	for len(helpers) < n {
		h := &helper{wake: make(chan struct{}, 1)}
		helpers = append(helpers, h)
		go h.loop()
	}
	return helpers[:n]
}

// loop runs jobs forever: it polls its slot for up to spinFor after each
// job, yielding the processor between polls, then sleeps until woken.
func (h *helper) loop() {
	for {
		deadline := time.Now().Add(spinFor)
		for i := 0; ; i++ {
			if j := h.slot.Swap(nil); j != nil {
				j.work()
				deadline = time.Now().Add(spinFor)
				continue
			}
			if i%16 == 15 {
				if time.Now().After(deadline) {
					break
				}
				runtime.Gosched()
			}
		}
		// Park. Publishing parked before the last look at the slot means a
		// submit either sees parked (and sends a wake-up) or left the job
		// where this look finds it; a wake-up left over from the second
		// case only costs one extra turn of the loop.
		h.parked.Store(true)
		if j := h.slot.Swap(nil); j != nil {
			h.parked.Store(false)
			j.work()
			continue
		}
		<-h.wake
		h.parked.Store(false)
	}
}

// submit hands j to h.
func (h *helper) submit(j *job) {
	h.slot.Store(j)
	if h.parked.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// parallel runs fn(0..chunks-1) on the calling goroutine and up to
// threads-1 helpers, and returns when every chunk is done.
func parallel(threads, chunks int, fn func(chunk int)) {
	if threads <= 1 || chunks <= 1 {
		for c := range chunks {
			fn(c)
		}
		return
	}
	j := &job{fn: fn, n: int64(chunks)}
	hs := getHelpers(min(threads, chunks) - 1)
	for _, h := range hs {
		h.submit(j)
	}
	j.work()
	for _, h := range hs {
		h.slot.CompareAndSwap(j, nil) // not taken up: drop fn's references
	}
	// The helpers finish the chunks they took; each is short, so wait for
	// them without going to sleep (sleeping costs a wake-up, see above).
	for i := 0; j.done.Load() < j.n; i++ {
		if i%16 == 15 {
			runtime.Gosched()
		}
	}
}
