package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/testsupport/dbtest"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// The machine's servers (hack/services.sh starts them in CI).
const (
	pgURL    = dbtest.PostgresURL
	mysqlURL = dbtest.MySQLURL
)

func openDB(t *testing.T, raw string) *sql.DB {
	t.Helper()
	_, db := dbtest.Open(t, raw)
	return db
}

// dbCase is a database the lock lives on, and how to end the session that
// holds key's lock there, as a DBA or a failover would.
type dbCase struct {
	name string
	url  string
	kill func(t *testing.T, key string)
	// blocker returns a statement that runs until it is cancelled (it
	// must fail when cancelled, as DDL does), and sets up what it needs
	blocker func(t *testing.T, suffix string) string
}

func dbCases() []dbCase {
	return []dbCase{
		{"postgres", pgURL, func(t *testing.T, key string) {
			dbtest.TerminatePostgresLockHolder(t, openDB(t, pgURL), dblock.AdvisoryKey(key))
		}, func(t *testing.T, suffix string) string {
			return fmt.Sprintf("SELECT pg_sleep(120), '%s';", suffix)
		}},
		{"mysql", mysqlURL, func(t *testing.T, key string) {
			dbtest.KillMySQLLockHolder(t, openDB(t, mysqlURL), dblock.LockName("test", key))
		}, func(t *testing.T, suffix string) string {
			// SLEEP() returns 1 when cancelled, without an error:
			// wait for a row lock instead, held by this test
			db := openDB(t, mysqlURL)
			table := "slipway_test_rowlock_" + suffix
			_, err := db.Exec("CREATE TABLE " + table + " (id int PRIMARY KEY, v int)")
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table) })
			_, err = db.Exec("INSERT INTO " + table + " VALUES (1, 1)")
			require.NoError(t, err)
			tx, err := db.Begin()
			require.NoError(t, err)
			t.Cleanup(func() { _ = tx.Rollback() })
			_, err = tx.Exec("SELECT * FROM " + table + " WHERE id = 1 FOR UPDATE")
			require.NoError(t, err)
			return "UPDATE " + table + " SET v = 2 WHERE id = 1;"
		}},
	}
}

// runAsync runs Run and returns its error on a channel; the test fails if
// it has not returned within 60s.
func runAsync(t *testing.T, o Config, log *slog.Logger) <-chan error {
	return runAsyncCtx(t, context.Background(), o, log)
}

func runAsyncCtx(t *testing.T, ctx context.Context, o Config, log *slog.Logger) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		o.Log, o.Stdout, o.Stderr, o.Secret = log, &syncbuffer.Buffer{}, &syncbuffer.Buffer{}, (&redact.Redactor{}).Add
		_, err := Run(ctx, o)
		got <- err
	}()
	out := make(chan error, 1)
	go func() {
		select {
		case err := <-got:
			out <- err
		case <-time.After(60 * time.Second):
			out <- fmt.Errorf("Run did not return within 60s")
		}
	}()
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 10*time.Millisecond, "%s did not happen", what)
}

// A migration whose lock is lost (its session killed) is stopped, and Run
// fails with an error that wraps dblock.ErrLockLost: the command as on
// SIGTERM, SQL mode at its running statement.
func TestRunStopsWhenTheLockIsLost(t *testing.T) {
	for _, db := range dbCases() {
		t.Run(db.name+"/command", func(t *testing.T) {
			var logs syncbuffer.Buffer
			ready := filepath.Join(t.TempDir(), "ready")
			key := "lost-" + dbtest.UniqueSuffix()
			got := runAsync(t, Config{DatabaseURL: db.url, LockKey: key, Lock: "database", WaitForDatabase: 10 * time.Second,
				GracePeriod: 10 * time.Second, LockCheckInterval: 50 * time.Millisecond,
				Command: []string{"sh", "-c", `trap 'exit 143' TERM; touch "$1"; while :; do sleep 0.05; done`, "sh", ready}},
				slog.New(slog.NewTextHandler(&logs, nil)))
			waitFor(t, "the command's start", func() bool { _, err := os.Stat(ready); return err == nil })
			db.kill(t, key)
			err := <-got
			require.ErrorIs(t, err, dblock.ErrLockLost)
			assert.Equal(t, exitcode.Failed, exitcode.Code(err))
			assert.Contains(t, err.Error(), fmt.Sprintf("lost the migration lock %q: its database session (lock) failed a check", key))
			assert.Contains(t, err.Error(), "the command was stopped: command sh exited with status 143")
			assert.Contains(t, logs.String(), `msg="stopping the command" command=sh`)
		})
		t.Run(db.name+"/sql", func(t *testing.T) {
			suffix := dbtest.UniqueSuffix()
			dir := t.TempDir()
			table := "slipway_test_lostmig_" + suffix
			h := openDB(t, db.url)
			t.Cleanup(func() { _, _ = h.Exec("DROP TABLE IF EXISTS " + table) })
			stmt := db.blocker(t, suffix)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0001_block.up.sql"), []byte(stmt), 0o644))
			key := "lost-" + suffix
			var logs syncbuffer.Buffer
			got := runAsync(t, Config{DatabaseURL: db.url, LockKey: key, Lock: "database", WaitForDatabase: 10 * time.Second,
				GracePeriod: 20 * time.Second, LockCheckInterval: 50 * time.Millisecond, SQLDir: dir, MigrationsTable: table},
				slog.New(slog.NewTextHandler(&logs, nil)))
			waitFor(t, "the statement's start", func() bool { return running(t, h, db.name, stmt) })
			db.kill(t, key)
			err := <-got
			require.ErrorIs(t, err, dblock.ErrLockLost)
			assert.Equal(t, exitcode.Failed, exitcode.Code(err))
			assert.Contains(t, err.Error(), "the migration was stopped with 0 file(s) applied")
			assert.Contains(t, logs.String(), `msg="stopping the migration"`)
			assert.False(t, running(t, h, db.name, stmt), "the statement still runs")
		})
	}
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		lock, ready := filepath.Join(dir, "migrate.lock"), filepath.Join(dir, "ready")
		got := runAsync(t, Config{Lock: "file:" + lock, WaitForDatabase: time.Second, GracePeriod: 10 * time.Second,
			LockCheckInterval: 20 * time.Millisecond,
			Command:           []string{"sh", "-c", `touch "$1"; exec sleep 60`, "sh", ready}}, slog.New(slog.DiscardHandler))
		waitFor(t, "the command's start", func() bool { _, err := os.Stat(ready); return err == nil })
		require.NoError(t, os.Remove(lock))
		err := <-got
		require.ErrorIs(t, err, dblock.ErrLockLost)
		assert.Contains(t, err.Error(), "was removed or replaced")
		assert.Contains(t, err.Error(), "the command was stopped: command sh was killed by terminated")
	})
}

// running says whether a session is running stmt.
func running(t *testing.T, h *sql.DB, dialect, stmt string) bool {
	t.Helper()
	var n int
	q := "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1)"
	if dialect == "mysql" {
		q = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT(?, '%')"
	}
	require.NoError(t, h.QueryRow(q, strings.TrimSuffix(stmt, ";")).Scan(&n))
	return n > 0
}

// A statement still running when the run is stopped (SIGTERM, --timeout:
// its context ends) is cancelled on the server, and the run fails saying
// why; the schema is then dirty, which the next run refuses (exit 2),
// naming the version and how to clear it. (steps/migrate runs --timeout.)
func TestSQLStatementCancelledWhenStopped(t *testing.T) {
	for _, db := range dbCases() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			suffix := dbtest.UniqueSuffix()
			dir := t.TempDir()
			table := "slipway_test_stopmig_" + suffix
			h := openDB(t, db.url)
			t.Cleanup(func() { _, _ = h.Exec("DROP TABLE IF EXISTS " + table) })
			stmt := db.blocker(t, suffix)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0001_first.up.sql"), []byte("SELECT 1;"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0002_block.up.sql"), []byte(stmt), 0o644))
			o := Config{DatabaseURL: db.url, LockKey: "stop-" + suffix, Lock: "database", WaitForDatabase: 10 * time.Second,
				GracePeriod: 20 * time.Second, SQLDir: dir, MigrationsTable: table}
			ctx, cancel := context.WithCancelCause(context.Background())
			got := runAsyncCtx(t, ctx, o, slog.New(slog.DiscardHandler))
			waitFor(t, "the statement's start", func() bool { return running(t, h, db.name, stmt) })
			cancel(errors.New("stopped by the test"))
			err := <-got
			require.Error(t, err)
			assert.Equal(t, exitcode.Failed, exitcode.Code(err))
			assert.Contains(t, err.Error(), "migration 0002_block.up.sql stopped half-way (1 applied before it; stopped by the test)")
			assert.False(t, running(t, h, db.name, stmt), "the statement still runs")

			err = <-runAsync(t, o, slog.New(slog.DiscardHandler))
			require.Error(t, err)
			assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
			quoted := `"` + table + `"`
			if db.name == "mysql" {
				quoted = "`" + table + "`"
			}
			assert.Equal(t, fmt.Sprintf("schema table %s is dirty at version 2: migration 0002_block.up.sql failed or was stopped half-way; "+
				"repair what it left (PostgreSQL rolls a failed file back whole), then clear the flag with UPDATE %s SET version = 1, dirty = false "+
				"(golang-migrate: force 1) and run migrate again", table, quoted), err.Error())
		})
	}
}
