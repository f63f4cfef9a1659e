// Package dblock is the lock that keeps migrations to one at a time: a
// PostgreSQL advisory lock, a MySQL/MariaDB named lock (GET_LOCK), or a lock
// file for local runs without a database.
//
// Database locks live in database sessions of their own, so the server
// releases them when a session goes away, whatever happens to the process
// holding them. The flip side: a session that drops (a failover, a network
// cut, a DBA's pg_terminate_backend or KILL) frees the lock while its holder
// may still be migrating. So a Lease watches its sessions (a check every
// CheckInterval) and reports the loss on Lost; the holder stops its work.
//
// To keep the next holder out until then, a database lock is taken twice,
// on two sessions: the lock itself, then a guard lock. Every holder takes
// both, in that order, so when one session drops the other still keeps the
// next one waiting until this one has seen the loss, stopped its work and
// released. Only if both sessions drop at once can the next holder start
// before this one has stopped: within CheckInterval (plus the holder's
// grace period to stop its work).
package dblock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ErrLockLost is wrapped by the error of a lease whose lock was lost, and
// by the error of the work it stopped.
var ErrLockLost = errors.New("lost the migration lock")

// DefaultCheckInterval is how often a held lock is checked by default.
const DefaultCheckInterval = 5 * time.Second

// minCheckTimeout bounds how long one check may take before it counts as
// failed (a session that does not answer may be gone).
const minCheckTimeout = 5 * time.Second

// Locker takes and releases one named lock.
type Locker interface {
	// Lock blocks until the lock on key is held or ctx ends. While it
	// waits it logs that it waits and, where it can tell, for whom.
	Lock(ctx context.Context, key string) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Lost is closed when the lock is lost: a session holding it failed a
	// check (it dropped, or no longer holds the lock). Nil for a lock
	// that cannot be lost.
	Lost() <-chan struct{}
	// Err is nil while the lock is held; once Lost is closed it says how
	// the lock was lost, wrapping ErrLockLost.
	Err() error
	// Release gives the lock back. It is safe to call more than once. A
	// lock that was lost, or that turns out not to be held any more when
	// it is released, is an error wrapping ErrLockLost: the work done
	// under it may have overlapped with another holder's.
	Release(ctx context.Context) error
}

// WithLease returns a copy of parent that is cancelled when the lease's
// lock is lost, with the lease's error (wrapping ErrLockLost) as its cause.
// Work run on it stops when the lock goes.
func WithLease(parent context.Context, l Lease) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.Lost():
			cancel(l.Err())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// lossSignal is a lease's Lost and Err: closed once, with its reason.
type lossSignal struct {
	lost chan struct{}
	mu   sync.Mutex
	err  error
}

func newLossSignal() *lossSignal { return &lossSignal{lost: make(chan struct{})} }

func (s *lossSignal) Lost() <-chan struct{} { return s.lost }

func (s *lossSignal) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// lose records the first loss and closes Lost.
func (s *lossSignal) lose(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.lost)
	}
}

func checkTimeout(interval time.Duration) time.Duration { return max(interval, minCheckTimeout) }

// Spec is the --lock flag: "database", "none" or "file:PATH".
type Spec struct {
	Kind string // "database", "none" or "file"
	Path string // for "file"
}

// ParseSpec parses the --lock flag.
func ParseSpec(s string) (Spec, error) {
	switch {
	case s == "database" || s == "":
		return Spec{Kind: "database"}, nil
	case s == "none":
		return Spec{Kind: "none"}, nil
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		if p == "" {
			return Spec{}, errors.New(`--lock file: needs a path, e.g. file:/tmp/migrate.lock`)
		}
		return Spec{Kind: "file", Path: p}, nil
	}
	return Spec{}, fmt.Errorf("--lock %q: want database, none or file:PATH", s)
}

// None is the lock of --lock none: it never waits.
type None struct{}

// Lock returns at once.
func (None) Lock(context.Context, string) (Lease, error) { return noLease{}, nil }

type noLease struct{}

func (noLease) Lost() <-chan struct{}         { return nil }
func (noLease) Err() error                    { return nil }
func (noLease) Release(context.Context) error { return nil }

// waitLogger logs "waiting for the lock" once, then again only when the
// holder changes, so a long wait is one line per holder, not one per poll.
type waitLogger struct {
	log  *slog.Logger
	key  string
	last string
	n    int
}

func (w *waitLogger) waiting(holder string) {
	if w.n > 0 && holder == w.last {
		return
	}
	w.n++
	w.last = holder
	if holder == "" {
		holder = "unknown"
	}
	w.log.Info("waiting for the migration lock", "key", w.key, "held_by", holder)
}
