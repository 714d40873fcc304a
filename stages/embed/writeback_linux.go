package embed

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writebackStep is how many bytes a writebackFile lets accumulate before it
// asks the kernel to start writing them out.
const writebackStep = 2 << 20

// writebackFile starts the write-out of a file's pages as they are written
// (sync_file_range SYNC_FILE_RANGE_WRITE: a hint, it waits for nothing), so
// that an fsync after the last write has little left to wait for.
type writebackFile struct {
	f        *os.File
	fd       int
	off, beg int64 // bytes written; start of the range not yet handed over
}

// withWriteback wraps w when it is a regular file; other writers are
// returned as they are.
func withWriteback(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return w
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return w
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return w
	}
	return &writebackFile{f: f, fd: int(f.Fd()), off: off, beg: off}
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.beg >= writebackStep {
		// Best effort: an error here changes nothing of what is written.
		_ = unix.SyncFileRange(w.fd, w.beg, w.off-w.beg, unix.SYNC_FILE_RANGE_WRITE)
		w.beg = w.off
	}
	return n, err
}
