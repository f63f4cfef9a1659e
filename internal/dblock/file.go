package dblock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File locks a file with flock(2), for local runs without a database. The
// file is the lock (the key is only recorded in it, with the holder's pid
// and host, for whoever waits). The kernel drops the lock if the process
// dies. The lock is on the file, not its name: if the file is removed or
// replaced, the next migrate locks another file, so the lease counts that as
// the loss of the lock.
type File struct {
	Path string
	Log  *slog.Logger
	// Poll is how often a waiter tries again; default 100ms.
	Poll time.Duration
	// CheckInterval is how often the holder checks that Path is still the
	// file it locked; default DefaultCheckInterval.
	CheckInterval time.Duration
}

// Lock takes the file lock.
func (f File) Lock(ctx context.Context, key string) (Lease, error) {
	poll := f.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	fh, err := os.OpenFile(f.Path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", f.Path, err)
	}
	w := waitLogger{log: f.Log, key: key}
	start := time.Now()
	for {
		err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			fh.Close()
			return nil, fmt.Errorf("lock file %s: %w", f.Path, err)
		}
		w.waiting(readHolder(fh))
		select {
		case <-ctx.Done():
			fh.Close()
			return nil, fmt.Errorf("waiting for lock file %s: %w", f.Path, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
	if w.n > 0 {
		f.Log.Info("took the migration lock", "key", key, "waited", time.Since(start).Round(time.Millisecond).String())
	}
	host, _ := os.Hostname()
	if err := fh.Truncate(0); err == nil {
		_, _ = fh.WriteAt([]byte(fmt.Sprintf("pid %d on %s, key %s\n", os.Getpid(), host, key)), 0)
	}
	interval := f.CheckInterval
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	l := &fileLease{lossSignal: newLossSignal(), fh: fh, path: f.Path, key: key, stop: make(chan struct{}), watched: make(chan struct{})}
	go l.watch(interval)
	return l, nil
}

func readHolder(fh *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(fh, 0, 512))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type fileLease struct {
	*lossSignal
	fh        *os.File
	path, key string
	stop      chan struct{}
	watched   chan struct{}

	once sync.Once
	err  error
}

// watch checks every interval that the path still names the locked file.
func (l *fileLease) watch(interval time.Duration) {
	defer close(l.watched)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		locked, err := l.fh.Stat()
		if err != nil {
			l.lose(fmt.Errorf("%w %q: lock file %s: %v", ErrLockLost, l.key, l.path, err))
			return
		}
		now, err := os.Stat(l.path)
		if err != nil || !os.SameFile(locked, now) {
			l.lose(fmt.Errorf("%w %q: lock file %s was removed or replaced, so another migrate can lock it", ErrLockLost, l.key, l.path))
			return
		}
	}
}

// Release clears the holder line, unlocks and closes the file. The file
// itself stays: removing a lock file races with the next waiter.
func (l *fileLease) Release(context.Context) error {
	l.once.Do(func() {
		close(l.stop)
		<-l.watched
		l.err = l.Err()
		_ = l.fh.Truncate(0)
		if err := syscall.Flock(int(l.fh.Fd()), syscall.LOCK_UN); err != nil && l.err == nil {
			l.err = fmt.Errorf("unlock %s: %w", l.fh.Name(), err)
		}
		if err := l.fh.Close(); err != nil && l.err == nil {
			l.err = fmt.Errorf("unlock %s: %w", l.fh.Name(), err)
		}
	})
	return l.err
}
