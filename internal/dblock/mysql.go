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

// MySQL takes a named lock, GET_LOCK(name, timeout), on MySQL or MariaDB,
// and its guard under another name (see the package comment). Named locks
// are server-wide, so the name includes the database: the same key on two
// databases of one server does not wait (as with PostgreSQL).
type MySQL struct {
	DB       *sql.DB
	Database string
	Log      *slog.Logger
	// Poll is how long each GET_LOCK call waits before checking ctx and
	// the holder again; default 2s.
	Poll time.Duration
	// CheckInterval is how often the held lock's sessions are checked;
	// default DefaultCheckInterval.
	CheckInterval time.Duration
}

// LockName is the GET_LOCK name for key on database: readable when it fits
// the server's 64-character limit, a hash otherwise. Stable across releases.
func LockName(database, key string) string { return lockName("slipway-migrate:", database, key) }

// GuardLockName is the GET_LOCK name of the guard of key's lock.
func GuardLockName(database, key string) string {
	return lockName("slipway-migrate-guard:", database, key)
}

func lockName(prefix, database, key string) string {
	name := prefix + database + ":" + key
	if len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(database + ":" + key))
	return prefix + hex.EncodeToString(sum[:])[:40]
}

// Lock takes the named lock and its guard, each on a connection of its own.
func (m MySQL) Lock(ctx context.Context, key string) (Lease, error) {
	poll := m.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	names := [2]any{LockName(m.Database, key), GuardLockName(m.Database, key)}
	return lockTwice(ctx, m.DB, mysqlKind{poll: poll}, key, names, m.CheckInterval, m.Log)
}

type mysqlKind struct{ poll time.Duration }

func (k mysqlKind) take(ctx context.Context, conn *sql.Conn, name any, w *waitLogger) error {
	for wait := time.Duration(0); ; wait = k.poll {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, wait.Seconds()).Scan(&got); err != nil {
			return err
		}
		if got.Valid && got.Int64 == 1 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.waiting(mysqlHolder(ctx, conn, name.(string)))
	}
}

func (mysqlKind) held(ctx context.Context, conn *sql.Conn, name any) (bool, error) {
	var held sql.NullBool // NULL: nobody holds it
	err := conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", name).Scan(&held)
	return held.Valid && held.Bool, err
}

func (mysqlKind) release(ctx context.Context, conn *sql.Conn, name any) (bool, error) {
	var ok sql.NullInt64 // 0: held by another session; NULL: by none
	err := conn.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", name).Scan(&ok)
	return ok.Valid && ok.Int64 == 1, err
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
