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
// and host, for whoever waits). The kernel drops the lock if the process dies.
type File struct {
	Path string
	Log  *slog.Logger
	// Poll is how often a waiter tries again; default 100ms.
	Poll time.Duration
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
	return &fileLease{fh: fh}, nil
}

func readHolder(fh *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(fh, 0, 512))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type fileLease struct {
	once sync.Once
	err  error
	fh   *os.File
}

// Release clears the holder line, unlocks and closes the file. The file
// itself stays: removing a lock file races with the next waiter.
func (l *fileLease) Release(context.Context) error {
	l.once.Do(func() {
		_ = l.fh.Truncate(0)
		if err := syscall.Flock(int(l.fh.Fd()), syscall.LOCK_UN); err != nil {
			l.err = fmt.Errorf("unlock %s: %w", l.fh.Name(), err)
		}
		if err := l.fh.Close(); err != nil && l.err == nil {
			l.err = fmt.Errorf("unlock %s: %w", l.fh.Name(), err)
		}
	})
	return l.err
}
