package dblock

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"
)

// Postgres takes a session-level advisory lock, pg_advisory_lock(bigint),
// on a stable 64-bit hash of the key, and its guard on another (see the
// package comment). Advisory locks are per database, so the same key on two
// databases of one server does not wait.
type Postgres struct {
	DB  *sql.DB
	Log *slog.Logger
	// CheckInterval is how often the held lock's sessions are checked;
	// default DefaultCheckInterval.
	CheckInterval time.Duration
}

// AdvisoryKey is the bigint the lock for key is taken on: FNV-1a 64 of
// "slipway-migrate:" + key, so it is stable across releases and hosts.
// (A change would let an old and a new release migrate at once.)
func AdvisoryKey(key string) int64 { return fnv64("slipway-migrate:" + key) }

// AdvisoryGuardKey is the bigint the guard of key's lock is taken on.
func AdvisoryGuardKey(key string) int64 { return fnv64("slipway-migrate-guard:" + key) }

func fnv64(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

// Lock takes the advisory lock and its guard, each on a connection of its
// own.
func (p Postgres) Lock(ctx context.Context, key string) (Lease, error) {
	return lockTwice(ctx, p.DB, pgKind{}, key, [2]any{AdvisoryKey(key), AdvisoryGuardKey(key)}, p.CheckInterval, p.Log)
}

type pgKind struct{}

func (pgKind) take(ctx context.Context, conn *sql.Conn, name any, w *waitLogger) error {
	id := name.(int64)
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&ok); err != nil || ok {
		return err
	}
	w.waiting(pgHolder(ctx, conn, id))
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id)
	return err
}

func (pgKind) held(ctx context.Context, conn *sql.Conn, name any) (bool, error) {
	u := uint64(name.(int64))
	var held bool
	err := conn.QueryRowContext(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = $1 AND objid::bigint = $2)`, int64(u>>32), int64(u&0xffffffff)).Scan(&held)
	return held, err
}

func (pgKind) release(ctx context.Context, conn *sql.Conn, name any) (bool, error) {
	var ok bool
	err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", name.(int64)).Scan(&ok)
	return ok, err
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
