package dblock

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// Postgres takes a session-level advisory lock, pg_advisory_lock(bigint),
// on a stable 64-bit hash of the key. Advisory locks are per database, so
// the same key on two databases of one server does not wait.
type Postgres struct {
	DB  *sql.DB
	Log *slog.Logger
}

// AdvisoryKey is the bigint the lock for key is taken on: FNV-1a 64 of
// "slipway-migrate:" + key, so it is stable across releases and hosts.
func AdvisoryKey(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("slipway-migrate:" + key))
	return int64(h.Sum64())
}

// Lock takes the advisory lock on a connection of its own.
func (p Postgres) Lock(ctx context.Context, key string) (Lease, error) {
	id := AdvisoryKey(key)
	conn, err := p.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %q: connect: %w", key, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&ok); err != nil {
		discard(conn)
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	if !ok {
		w := waitLogger{log: p.Log, key: key}
		w.waiting(pgHolder(ctx, conn, id))
		start := time.Now()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
			// the lock may have been granted as ctx ended: drop the
			// connection so the server releases it either way
			discard(conn)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for lock %q: %w", key, context.Cause(ctx))
			}
			return nil, fmt.Errorf("lock %q: %w", key, err)
		}
		p.Log.Info("took the migration lock", "key", key, "waited", time.Since(start).Round(time.Millisecond).String())
	}
	return &sqlLease{conn: conn, unlock: "SELECT pg_advisory_unlock($1)", arg: id}, nil
}

// pgHolder describes the session holding advisory lock id, from pg_locks
// and pg_stat_activity: "pid 123 (slipway-migrate host-a pid 7) from 10.0.0.5".
func pgHolder(ctx context.Context, conn *sql.Conn, id int64) string {
	u := uint64(id)
	var pid int64
	var app, addr string
	err := conn.QueryRowContext(ctx, `
SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), '')
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = $1 AND l.objid::bigint = $2
LIMIT 1`, int64(u>>32), int64(u&0xffffffff)).Scan(&pid, &app, &addr)
	if err != nil {
		return ""
	}
	s := fmt.Sprintf("pid %d", pid)
	if app != "" {
		s += fmt.Sprintf(" (%s)", app)
	}
	if addr != "" {
		s += " from " + addr
	}
	return s
}

// sqlLease is a lock held on a dedicated connection.
type sqlLease struct {
	once   sync.Once
	err    error
	conn   *sql.Conn
	unlock string
	arg    any
}

// Release unlocks, then closes the connection for good: even if the
// unlock statement fails, the server drops the lock with the session.
func (l *sqlLease) Release(ctx context.Context) error {
	l.once.Do(func() {
		var ok sql.NullBool
		err := l.conn.QueryRowContext(ctx, l.unlock, l.arg).Scan(&ok)
		discard(l.conn)
		if err != nil {
			l.err = fmt.Errorf("release lock (the session was closed, so the server released it): %w", err)
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
