package childproc

import (
	"bytes"
	"io"
	"sync"
)

// maxLine is the longest line passed on whole; a longer one goes in pieces
// (a secret straddling such a piece is not masked, but a 64 KiB line is
// no log line).
const maxLine = 64 << 10

// lineWriter passes output on one whole line per Write, however the pipe
// reads cut it: a redacting writer behind it then sees each secret whole.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	return &lineWriter{w: w}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		if err := l.emit(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	if len(l.buf) > maxLine {
		if err := l.emit(l.buf); err != nil {
			return 0, err
		}
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// emit writes each line of b with its own Write.
func (l *lineWriter) emit(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		if _, err := l.w.Write(line); err != nil {
			return err
		}
		b = b[len(line):]
	}
	return nil
}

// flush passes on a last line that had no newline, adding one.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		if !bytes.HasSuffix(l.buf, []byte("\n")) {
			l.buf = append(l.buf, '\n')
		}
		_ = l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}
