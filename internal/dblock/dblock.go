// Package dblock is the lock that keeps migrations to one at a time: a
// PostgreSQL advisory lock, a MySQL/MariaDB named lock (GET_LOCK), or a lock
// file for local runs without a database. Database locks live on a dedicated
// connection, so the server releases them when the connection goes away,
// whatever happens to the process holding them.
package dblock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Locker takes and releases one named lock.
type Locker interface {
	// Lock blocks until the lock on key is held or ctx ends. While it
	// waits it logs that it waits and, where it can tell, for whom.
	Lock(ctx context.Context, key string) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Release gives the lock back. It is safe to call more than once.
	Release(ctx context.Context) error
}

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
