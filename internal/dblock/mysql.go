package dblock

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// MySQL takes a named lock, GET_LOCK(name, timeout), on MySQL or MariaDB.
// Named locks are server-wide, so the name includes the database: the same
// key on two databases of one server does not wait (as with PostgreSQL).
type MySQL struct {
	DB       *sql.DB
	Database string
	Log      *slog.Logger
	// Poll is how long each GET_LOCK call waits before checking ctx and
	// the holder again; default 2s.
	Poll time.Duration
}

// LockName is the GET_LOCK name for key on database: readable when it fits
// the server's 64-character limit, a hash otherwise.
func LockName(database, key string) string {
	name := "slipway-migrate:" + database + ":" + key
	if len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(database + ":" + key))
	return "slipway-migrate:" + hex.EncodeToString(sum[:])[:40]
}

// Lock takes the named lock on a connection of its own.
func (m MySQL) Lock(ctx context.Context, key string) (Lease, error) {
	name := LockName(m.Database, key)
	poll := m.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	conn, err := m.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %q: connect: %w", key, err)
	}
	w := waitLogger{log: m.Log, key: key}
	start := time.Now()
	for wait := time.Duration(0); ; wait = poll {
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, wait.Seconds()).Scan(&got)
		if err != nil {
			discard(conn)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for lock %q: %w", key, context.Cause(ctx))
			}
			return nil, fmt.Errorf("lock %q: %w", key, err)
		}
		if got.Valid && got.Int64 == 1 {
			if w.n > 0 {
				m.Log.Info("took the migration lock", "key", key, "waited", time.Since(start).Round(time.Millisecond).String())
			}
			return &sqlLease{conn: conn, unlock: "SELECT RELEASE_LOCK(?)", arg: name}, nil
		}
		if ctx.Err() != nil {
			discard(conn)
			return nil, fmt.Errorf("waiting for lock %q: %w", key, context.Cause(ctx))
		}
		w.waiting(mysqlHolder(ctx, conn, name))
	}
}

// mysqlHolder describes the connection holding the named lock:
// "connection 42 (app@10.0.0.5:51234)".
func mysqlHolder(ctx context.Context, conn *sql.Conn, name string) string {
	var id sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", name).Scan(&id); err != nil || !id.Valid {
		return ""
	}
	s := fmt.Sprintf("connection %d", id.Int64)
	var user, host sql.NullString
	err := conn.QueryRowContext(ctx, "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = ?", id.Int64).Scan(&user, &host)
	if err == nil && user.Valid {
		s += fmt.Sprintf(" (%s@%s)", user.String, host.String)
	}
	return s
}
