// Package dbtest is what database tests share: the URLs of the machine's
// PostgreSQL and MariaDB (hack/services.sh starts them), a handle closed
// with the test, names no other test run uses, and ending the session that
// holds a lock the way a DBA or a failover does.
package dbtest

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
)

// The machine's servers, as their superusers.
const (
	PostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	MySQLURL    = "mysql://root@127.0.0.1:3306/test"
)

// Open parses raw and opens it; the handle is closed when t ends.
func Open(t testing.TB, raw string) (database.Target, *sql.DB) {
	t.Helper()
	tg, err := database.Parse(raw)
	require.NoError(t, err)
	db, err := tg.Open()
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return tg, db
}

// UniqueKey is a lock key no other test, and no other run of this one,
// uses: the test's name, the process and the time.
func UniqueKey(t testing.TB) string {
	return fmt.Sprintf("%s-%d-%d", strings.ReplaceAll(t.Name(), "/", "-"), os.Getpid(), time.Now().UnixNano())
}

// UniqueSuffix makes table names of one test run its own.
func UniqueSuffix() string { return fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e9) }

// TerminatePostgresLockHolder ends the PostgreSQL session holding the
// advisory lock id (pg_terminate_backend), through db, and waits until the
// server has seen it go.
func TerminatePostgresLockHolder(t testing.TB, db *sql.DB, id int64) {
	t.Helper()
	u := uint64(id)
	var pid int
	require.NoError(t, db.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND classid::bigint = $1 AND objid::bigint = $2`, int64(u>>32), int64(u&0xffffffff)).Scan(&pid))
	var ok bool
	require.NoError(t, db.QueryRow("SELECT pg_terminate_backend($1)", pid).Scan(&ok))
	require.True(t, ok)
	require.Eventually(t, func() bool {
		var n int
		return db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n) == nil && n == 0
	}, 20*time.Second, 10*time.Millisecond, "session %d still there", pid)
}

// KillMySQLLockHolder ends the MySQL/MariaDB connection holding the named
// lock name (KILL), through db, and waits until the server has seen it go.
func KillMySQLLockHolder(t testing.TB, db *sql.DB, name string) {
	t.Helper()
	var id int64
	require.NoError(t, db.QueryRow("SELECT IS_USED_LOCK(?)", name).Scan(&id))
	_, err := db.Exec(fmt.Sprintf("KILL %d", id))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		return db.QueryRow("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n) == nil && n == 0
	}, 20*time.Second, 10*time.Millisecond, "connection %d still there", id)
}
