package dblock

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// sessionKind is a kind of lock a database session holds: PostgreSQL's
// advisory locks, MySQL's named locks. name is the lock's id there.
type sessionKind interface {
	// take blocks until conn holds the lock or ctx ends, telling w whom
	// it waits for.
	take(ctx context.Context, conn *sql.Conn, name any, w *waitLogger) error
	// held says whether conn still holds the lock.
	held(ctx context.Context, conn *sql.Conn, name any) (bool, error)
	// release gives the lock back; false means conn did not hold it.
	release(ctx context.Context, conn *sql.Conn, name any) (bool, error)
}

// roles names the two sessions of a lease, for messages.
var roles = [2]string{"lock", "guard"}

// lockTwice takes the lock (names[0]) and then the guard (names[1]), each
// on a session of its own, and starts watching both.
func lockTwice(ctx context.Context, db *sql.DB, kind sessionKind, key string, names [2]any, interval time.Duration, log *slog.Logger) (Lease, error) {
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	w := &waitLogger{log: log, key: key}
	start := time.Now()
	var conns []*sql.Conn
	fail := func(err error) (Lease, error) {
		// a lock granted just as ctx ended goes with its session
		for _, c := range conns {
			discard(c)
		}
		return nil, err
	}
	for i, name := range names {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fail(fmt.Errorf("lock %q: connect: %w", key, err))
		}
		conns = append(conns, conn)
		if err := kind.take(ctx, conn, name, w); err != nil {
			if ctx.Err() != nil {
				return fail(fmt.Errorf("waiting for lock %q: %w", key, context.Cause(ctx)))
			}
			return fail(fmt.Errorf("lock %q (%s session): %w", key, roles[i], err))
		}
	}
	if w.n > 0 {
		log.Info("took the migration lock", "key", key, "waited", time.Since(start).Round(time.Millisecond).String())
	}
	wctx, stop := context.WithCancel(context.Background())
	l := &sessionLease{lossSignal: newLossSignal(), key: key, kind: kind, conns: conns, names: names[:],
		interval: interval, stop: stop, watched: make(chan struct{})}
	go l.watch(wctx)
	return l, nil
}

// sessionLease is a lock held on two dedicated sessions (see the package
// comment), checked every interval.
type sessionLease struct {
	*lossSignal
	key      string
	kind     sessionKind
	conns    []*sql.Conn
	names    []any
	interval time.Duration

	stop    context.CancelFunc
	watched chan struct{} // closed when watch returns

	once sync.Once
	err  error
}

// watch checks each session every interval; a check that fails or finds
// the lock gone is the loss of the lock.
func (l *sessionLease) watch(ctx context.Context) {
	defer close(l.watched)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, conn := range l.conns {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout(l.interval))
			held, err := l.kind.held(cctx, conn, l.names[i])
			cancel()
			switch {
			case ctx.Err() != nil:
				return // released meanwhile
			case err != nil:
				l.lose(fmt.Errorf("%w %q: its database session (%s) failed a check: %v", ErrLockLost, l.key, roles[i], err))
				return
			case !held:
				l.lose(fmt.Errorf("%w %q: its database session (%s) no longer holds it", ErrLockLost, l.key, roles[i]))
				return
			}
		}
	}
}

// Release stops the watch, unlocks (the guard first), then closes both
// sessions for good: whatever the unlock statements did, the server drops
// the locks with the sessions.
func (l *sessionLease) Release(ctx context.Context) error {
	l.once.Do(func() {
		l.stop()
		<-l.watched
		l.err = l.Err()
		if l.err == nil {
			for i := len(l.conns) - 1; i >= 0; i-- {
				ok, err := l.kind.release(ctx, l.conns[i], l.names[i])
				switch {
				case err != nil && l.err == nil:
					l.err = fmt.Errorf("%w %q: releasing it on its database session (%s) failed (the session is closed now, which frees it): %v", ErrLockLost, l.key, roles[i], err)
				case err == nil && !ok && l.err == nil:
					l.err = fmt.Errorf("%w %q: its database session (%s) no longer held it when it was released", ErrLockLost, l.key, roles[i])
				}
			}
		}
		for _, c := range l.conns {
			discard(c)
		}
		if l.err != nil {
			l.lose(l.err)
		}
	})
	return l.err
}

// discard closes conn's physical connection instead of returning it to the
// pool, so no lock outlives the lease.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
