package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/testsupport/dbtest"
	"github.com/slipway-deploy/slipway/internal/testsupport/proctest"
)

// Passwords the tests put in database URLs; no output may contain them.
// PostgreSQL's loopback trust auth ignores the password; MariaDB checks it
// (TestMain creates the user).
const (
	pgPassword    = "pg-Secret-4711-x"
	mysqlPassword = "my-Secret-4711-y"
	mysqlUser     = "slipway_migrate_test"
)

var bin string // the migrate binary TestMain builds

type dbCase struct {
	name string
	url  string
}

var dbs = []dbCase{
	{"postgres", "postgres://postgres:" + pgPassword + "@127.0.0.1:5432/test?sslmode=disable"},
	{"mysql", "mysql://" + mysqlUser + ":" + mysqlPassword + "@127.0.0.1:3306/test"},
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "migrate-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "migrate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build migrate: %v\n%s", err, out)
		os.Exit(1)
	}
	if err := createMySQLUser(); err != nil {
		fmt.Fprintf(os.Stderr, "create MariaDB test user: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// createMySQLUser makes a MariaDB user with a password, so that the password
// in the tests' URL is a real one.
func createMySQLUser() error {
	tg, err := database.Parse(dbtest.MySQLURL)
	if err != nil {
		return err
	}
	db, err := tg.Open()
	if err != nil {
		return err
	}
	defer db.Close()
	for _, host := range []string{"%", "localhost", "127.0.0.1"} {
		for _, q := range []string{
			fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'", mysqlUser, host, mysqlPassword),
			fmt.Sprintf("ALTER USER '%s'@'%s' IDENTIFIED BY '%s'", mysqlUser, host, mysqlPassword),
			fmt.Sprintf("GRANT ALL ON test.* TO '%s'@'%s'", mysqlUser, host),
			fmt.Sprintf("GRANT PROCESS ON *.* TO '%s'@'%s'", mysqlUser, host),
		} {
			if _, err := db.Exec(q); err != nil {
				return fmt.Errorf("%s: %w", strings.Replace(q, mysqlPassword, "***", 1), err)
			}
		}
	}
	return nil
}

func openRaw(t *testing.T, raw string) *sql.DB {
	_, db := dbtest.Open(t, raw)
	return db
}

type proc = proctest.Proc

// start runs migrate with args; extraEnv is added to the environment.
func start(t *testing.T, extraEnv []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--log-format", "text"}, args...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	p, err := proctest.Start(t, cmd)
	require.NoError(t, err)
	return p
}

// wait waits (at most 60s) for the process, checks that its output has no
// password, and returns its exit code and output.
func wait(t *testing.T, p *proc) (int, string) {
	t.Helper()
	code, out := p.Wait(t, 60*time.Second)
	assert.NotContains(t, out, pgPassword, "a password leaked")
	assert.NotContains(t, out, mysqlPassword, "a password leaked")
	return code, out
}

func runMigrate(t *testing.T, extraEnv []string, args ...string) (int, string) {
	t.Helper()
	return wait(t, start(t, extraEnv, args...))
}

// waitFile waits (at most 20s) for path to exist.
func waitFile(t *testing.T, path string, p ...*proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pr := range p {
		pr.Kill()
		t.Log(pr.Out.String())
	}
	t.Fatalf("%s did not appear within 20s", path)
}

// The commands (and the tests) record what happens as lines appended to one
// events file: appends are atomic, so the file's order is the order the
// events happened in, whatever the clocks and the machine's load.

// eventsFile is the events file of dir.
func eventsFile(dir string) string { return filepath.Join(dir, "events") }

// readEvents returns the events recorded in dir, in order.
func readEvents(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(eventsFile(dir))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// addEvent records an event from the test itself.
func addEvent(t *testing.T, dir, event string) {
	t.Helper()
	f, err := os.OpenFile(eventsFile(dir), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(event + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// waitEvent waits (at most 20s) for event to be recorded in dir.
func waitEvent(t *testing.T, dir, event string, p ...*proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(readEvents(t, dir), event) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pr := range p {
		pr.Kill()
		t.Log(pr.Out.String())
	}
	t.Fatalf("event %q not recorded within 20s (events: %v)", event, readEvents(t, dir))
}

// recorder is a child command that records "NAME_start", waits for
// "OTHER_start" if other is set (at most 10s; exit 1 if it never comes),
// sleeps, and records "NAME_end".
func recorder(dir, name, other string, sleep time.Duration) []string {
	script := `echo "$1_start" >> "$4"
if [ -n "$2" ]; then
  i=0
  while ! grep -qx "$2_start" "$4"; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done
fi
sleep "$3"
echo "$1_end" >> "$4"`
	return []string{"--", "sh", "-c", script, "sh", name, other, fmt.Sprintf("%.3f", sleep.Seconds()), eventsFile(dir)}
}

// runPair runs two migrates whose commands are recorders named a and b
// (bAfterA: b starts once a's command has started), checks both succeed and
// returns their output and the events.
func runPair(t *testing.T, dir string, bAfterA bool, argsA, argsB []string) (outA, outB string, events []string) {
	t.Helper()
	pa := start(t, nil, argsA...)
	if bAfterA {
		waitEvent(t, dir, "a_start", pa)
	}
	pb := start(t, nil, argsB...)
	codeA, outA := wait(t, pa)
	codeB, outB := wait(t, pb)
	require.Equal(t, 0, codeA, outA)
	require.Equal(t, 0, codeB, outB)
	return outA, outB, readEvents(t, dir)
}

func TestSameKeyNeverOverlaps(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			// b starts once a's command runs: without the lock they would overlap
			_, outB, events := runPair(t, dir, true,
				append([]string{"--database-url", db.url, "--lock-key", key}, recorder(dir, "a", "", 800*time.Millisecond)...),
				append([]string{"--database-url", db.url, "--lock-key", key}, recorder(dir, "b", "", 100*time.Millisecond)...))
			assert.Equal(t, []string{"a_start", "a_end", "b_start", "b_end"}, events, "b started before a ended")
			assert.Contains(t, outB, "waiting for the migration lock")
			assert.NotContains(t, outB, "held_by=unknown", "b should say whom it waits for")
		})
	}
}

func TestDifferentKeysOverlap(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			// each command waits for the other to have started: both can
			// only finish if they run at the same time
			outA, outB, events := runPair(t, dir, false,
				append([]string{"--database-url", db.url, "--lock-key", key + "-a"}, recorder(dir, "a", "b", 100*time.Millisecond)...),
				append([]string{"--database-url", db.url, "--lock-key", key + "-b"}, recorder(dir, "b", "a", 100*time.Millisecond)...))
			require.Len(t, events, 4, "%v", events)
			assert.ElementsMatch(t, []string{"a_start", "b_start"}, events[:2], "both started before either ended: %v", events)
			assert.NotContains(t, outA+outB, "waiting for the migration lock")
		})
	}
}

// lockFree checks that the lock on key can be taken now (within 5s).
func lockFree(t *testing.T, db dbCase, key string) {
	t.Helper()
	l := locker(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := l.Lock(ctx, key)
	require.NoError(t, err, "the lock is still held")
	require.NoError(t, lease.Release(context.Background()))
}

func locker(t *testing.T, db dbCase) dblock.Locker {
	h := openRaw(t, db.url)
	log := slog.New(slog.DiscardHandler)
	if db.name == "mysql" {
		return dblock.MySQL{DB: h, Database: "test", Log: log, Poll: 50 * time.Millisecond}
	}
	return dblock.Postgres{DB: h, Log: log}
}

func TestLockReleasedWhenTheCommandFails(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			t.Run("non-zero exit", func(t *testing.T) {
				code, out := runMigrate(t, nil, "--database-url", db.url, "--lock-key", key, "--", "sh", "-c", "echo failing; exit 7")
				assert.Equal(t, 1, code, out)
				assert.Contains(t, out, "exited with status 7")
				assert.Contains(t, out, "released the migration lock")
				lockFree(t, db, key)
			})
			t.Run("child killed", func(t *testing.T) {
				pidFile := filepath.Join(dir, "pid")
				p := start(t, nil, "--database-url", db.url, "--lock-key", key, "--", "sh", "-c", `echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30`, "sh", pidFile)
				waitFile(t, pidFile, p)
				pid, err := strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(pidFile)))))
				require.NoError(t, err)
				require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
				code, out := wait(t, p)
				assert.Equal(t, 1, code, out)
				assert.Contains(t, out, "was killed by killed")
				assert.Contains(t, out, "released the migration lock")
				lockFree(t, db, key)
			})
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSIGTERMReachesTheCommandBeforeTheLockIsReleased(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			script := `trap 'echo command_got_SIGTERM >> "$1"; exit 143' TERM
echo command_start >> "$1"
while :; do sleep 0.05; done`
			p := start(t, nil, "--database-url", db.url, "--lock-key", key, "--grace-period", "10s", "--", "sh", "-c", script, "sh", eventsFile(dir))
			waitEvent(t, dir, "command_start", p)

			// a waiter for the same lock, as the next migrate would be
			got := make(chan error, 1)
			l := locker(t, db)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				lease, err := l.Lock(ctx, key)
				if err == nil {
					addEvent(t, dir, "waiter_took_the_lock")
					err = lease.Release(context.Background())
				}
				got <- err
			}()

			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			code, out := wait(t, p)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "migrate received terminated")
			assert.Contains(t, out, "released the migration lock")
			require.NoError(t, <-got, "the lock was not released")
			assert.Equal(t, []string{"command_start", "command_got_SIGTERM", "waiter_took_the_lock"}, readEvents(t, dir),
				"the command saw SIGTERM after the lock was released")
		})
	}
}

// killLockSession ends the database session holding key's lock, as a
// failover, a network cut or a DBA would.
func killLockSession(t *testing.T, db dbCase, key string) {
	t.Helper()
	if db.name == "mysql" {
		dbtest.KillMySQLLockHolder(t, openRaw(t, dbtest.MySQLURL), dblock.LockName("test", key))
		return
	}
	dbtest.TerminatePostgresLockHolder(t, openRaw(t, dbtest.PostgresURL), dblock.AdvisoryKey(key))
}

// Rules 7 and 14 of docs/architecture.md under a fault: the session holding the
// lock is killed while a second migrate waits for it. The first stops its
// command (SIGTERM) and exits 1 saying the lock was lost; the second runs
// only after the first's command has stopped.
func TestLockLostStopsTheMigration(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			first := `trap 'echo a_stopped >> "$1"; exit 143' TERM
echo a_start >> "$1"
while :; do sleep 0.05; done`
			pa := start(t, nil, "--database-url", db.url, "--lock-key", key, "--lock-check-interval", "100ms", "--grace-period", "10s",
				"--", "sh", "-c", first, "sh", eventsFile(dir))
			waitEvent(t, dir, "a_start", pa)
			pb := start(t, nil, "--database-url", db.url, "--lock-key", key,
				"--", "sh", "-c", `echo b_start >> "$1"`, "sh", eventsFile(dir))
			require.Eventually(t, func() bool { return strings.Contains(pb.Out.String(), "waiting for the migration lock") },
				20*time.Second, 10*time.Millisecond, "the second migrate does not wait")

			killLockSession(t, db, key)
			codeA, outA := wait(t, pa)
			codeB, outB := wait(t, pb)
			assert.Equal(t, 1, codeA, outA)
			assert.Contains(t, lastLine(outA), fmt.Sprintf(`migrate: lost the migration lock %q: its database session (lock) failed a check`, key))
			assert.Contains(t, lastLine(outA), "the command was stopped: command sh exited with status 143")
			assert.Equal(t, 0, codeB, outB)
			assert.Equal(t, []string{"a_start", "a_stopped", "b_start"}, readEvents(t, dir), "the two migrations overlapped")
		})
	}
}

// SQL mode cancels the statement it runs at --timeout and on SIGTERM,
// instead of waiting for it (pg_sleep(120) here), and exits 1. (--timeout
// is generous, so that it passes while the statement runs, not before.)
func TestSQLModeCancelsTheRunningStatement(t *testing.T) {
	db := dbs[0]
	h := openRaw(t, db.url)
	for _, tc := range []struct {
		name   string
		args   []string
		signal bool
		want   string
	}{
		{"timeout", []string{"--timeout", "5s"}, false, "migration 0001_sleep.up.sql stopped half-way (0 applied before it; --timeout 5s passed)"},
		{"SIGTERM", nil, true, "migration 0001_sleep.up.sql stopped half-way (0 applied before it; terminated signal received)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			suffix := dbtest.UniqueSuffix()
			table := "slipway_test_sleepmig_" + suffix
			t.Cleanup(func() { _, _ = h.Exec("DROP TABLE IF EXISTS " + table) })
			dir := t.TempDir()
			stmt := fmt.Sprintf("SELECT pg_sleep(120), '%s'", suffix)
			writeFiles(t, dir, map[string]string{"0001_sleep.up.sql": stmt + ";"})
			sleeping := func() bool {
				var n int
				require.NoError(t, h.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1)", stmt).Scan(&n))
				return n > 0
			}
			p := start(t, nil, append([]string{"--database-url", db.url, "--app", "sleep-" + suffix, "--sql-dir", dir,
				"--migrations-table", table}, tc.args...)...)
			if tc.signal {
				require.Eventually(t, sleeping, 20*time.Second, 10*time.Millisecond, "the statement never ran")
				require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			}
			code, out := wait(t, p)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, lastLine(out), tc.want)
			assert.Contains(t, lastLine(out), "canceling statement due to user request")
			assert.False(t, sleeping(), "the statement still runs")
		})
	}
}

func TestMigrateKilledTakesTheCommandAndLockWithIt(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := dbtest.UniqueKey(t)
			pidFile := filepath.Join(dir, "pid")
			p := start(t, nil, "--database-url", db.url, "--lock-key", key, "--", "sh", "-c", `echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30`, "sh", pidFile)
			waitFile(t, pidFile, p)
			pid, err := strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(pidFile)))))
			require.NoError(t, err)
			require.NoError(t, p.Cmd.Process.Kill()) // SIGKILL: no clean-up in migrate
			code, _ := wait(t, p)
			assert.Equal(t, -1, code)
			// the command does not go on migrating without the lock
			require.Eventually(t, func() bool {
				st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				return err != nil || strings.Contains(string(st), ") Z ")
			}, 10*time.Second, 20*time.Millisecond, "the command outlived migrate")
			// and the server dropped the lock with migrate's connection
			lockFree(t, db, key)
		})
	}
}

func TestGracePeriodAndTimeout(t *testing.T) {
	db := dbs[0]
	t.Parallel()
	t.Run("SIGTERM ignored: killed after the grace period", func(t *testing.T) {
		dir := t.TempDir()
		ready := filepath.Join(dir, "ready")
		p := start(t, nil, "--database-url", db.url, "--lock-key", dbtest.UniqueKey(t), "--grace-period", "300ms",
			"--", "sh", "-c", `trap '' TERM; touch "$1"; sleep 30`, "sh", ready)
		waitFile(t, ready, p)
		require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
		code, out := wait(t, p)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "grace period over")
		assert.Contains(t, out, "was killed by killed")
	})
	t.Run("timeout while waiting for the lock", func(t *testing.T) {
		key := dbtest.UniqueKey(t)
		lease, err := locker(t, db).Lock(context.Background(), key)
		require.NoError(t, err)
		defer lease.Release(context.Background())
		marker := filepath.Join(t.TempDir(), "ran")
		code, out := runMigrate(t, nil, "--database-url", db.url, "--lock-key", key, "--timeout", "300ms", "--", "touch", marker)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, lastLine(out), "take the migration lock")
		assert.Contains(t, lastLine(out), "--timeout 300ms passed")
		assert.NoFileExists(t, marker, "the command ran without the lock")
	})
	t.Run("timeout", func(t *testing.T) {
		code, out := runMigrate(t, nil, "--database-url", db.url, "--lock-key", dbtest.UniqueKey(t), "--timeout", "500ms", "--grace-period", "5s",
			"--", "sleep", "30")
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "--timeout 500ms passed")
		assert.Contains(t, out, "was killed by terminated")
	})
}

func TestDatabaseDown(t *testing.T) {
	// a loopback port nothing listens on
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	for _, db := range []dbCase{
		{"postgres", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/test", pgPassword, port)},
		{"mysql", fmt.Sprintf("mysql://%s:%s@127.0.0.1:%d/test", mysqlUser, mysqlPassword, port)},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			code, out := runMigrate(t, nil, "--database-url", db.url, "--app", "frontend", "--wait-for-database", "1.5s", "--", "true")
			assert.Equal(t, 1, code, out)
			// it said it waits, then gave up at --wait-for-database
			assert.Contains(t, out, "waiting for the database")
			assert.Contains(t, out, "attempt=1")
			last := lastLine(out)
			assert.Contains(t, last, fmt.Sprintf("migrate: database %s://", db.name))
			assert.Contains(t, last, "did not accept connections within 1.5s")
			assert.Contains(t, last, "connection refused")
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}

func TestSQLMode(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			suffix := dbtest.UniqueSuffix()
			table, people, half := "slipway_test_mig_"+suffix, "slipway_test_people_"+suffix, "slipway_test_half_"+suffix
			h := openRaw(t, db.url)
			t.Cleanup(func() {
				for _, tb := range []string{table, people, half} {
					_, _ = h.Exec("DROP TABLE IF EXISTS " + tb)
				}
			})
			dir, outDir := t.TempDir(), t.TempDir()
			writeFiles(t, dir, map[string]string{
				"0001_create_people.up.sql":   "CREATE TABLE " + people + " (id integer PRIMARY KEY, name varchar(50));",
				"0001_create_people.down.sql": "DROP TABLE " + people + ";",
				"0002_seed.up.sql":            "INSERT INTO " + people + " VALUES (1, 'ada');\nINSERT INTO " + people + " VALUES (2, 'grace');",
				"README.md":                   "not a migration",
			})
			args := []string{"--database-url", db.url, "--app", "people-" + suffix, "--sql-dir", dir, "--migrations-table", table, "--outputs-dir", outDir}

			code, out := runMigrate(t, nil, args...)
			require.Equal(t, 0, code, out)
			assert.Equal(t, "2", string(must(os.ReadFile(filepath.Join(outDir, "applied")))))
			assert.NotEmpty(t, must(os.ReadFile(filepath.Join(outDir, "duration"))))
			assert.Equal(t, "migrated", string(must(os.ReadFile(filepath.Join(outDir, "outcome")))))
			var n int
			require.NoError(t, h.QueryRow("SELECT count(*) FROM "+people).Scan(&n))
			assert.Equal(t, 2, n)

			// a re-run applies nothing
			code, out = runMigrate(t, nil, args...)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "no pending migrations")
			assert.Equal(t, "0", string(must(os.ReadFile(filepath.Join(outDir, "applied")))))
			assert.Equal(t, "already-there", string(must(os.ReadFile(filepath.Join(outDir, "outcome")))))
			require.NoError(t, h.QueryRow("SELECT count(*) FROM "+people).Scan(&n))
			assert.Equal(t, 2, n, "a re-run inserted again")

			// --dry-run lists what would run and changes nothing
			writeFiles(t, dir, map[string]string{
				"0003_half.up.sql":  "CREATE TABLE " + half + " (id integer);\nINSERT INTO no_such_table_" + suffix + " VALUES (1);",
				"0004_later.up.sql": "INSERT INTO " + people + " VALUES (4, 'never');",
			})
			code, out = runMigrate(t, nil, append(args, "--dry-run")...)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "0003_half.up.sql\n  0004_later.up.sql")

			// a failing file stops the run and is named
			code, out = runMigrate(t, nil, args...)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, lastLine(out), "migration 0003_half.up.sql failed")
			assert.Contains(t, lastLine(out), "no_such_table_"+suffix)
			require.NoError(t, h.QueryRow("SELECT count(*) FROM "+people).Scan(&n))
			assert.Equal(t, 2, n, "0004 ran after 0003 failed")
			if db.name == "postgres" {
				var exists bool
				require.NoError(t, h.QueryRow("SELECT to_regclass($1) IS NOT NULL", half).Scan(&exists))
				assert.False(t, exists, "PostgreSQL runs each file in one transaction: 0003's CREATE TABLE should be rolled back")
			}
			// and the next run refuses the dirty schema (exit 2: a retry
			// cannot help), naming the file and how to clear the flag
			code, out = runMigrate(t, nil, args...)
			assert.Equal(t, 2, code, out)
			assert.Contains(t, lastLine(out), "is dirty at version 3: migration 0003_half.up.sql failed or was stopped half-way")
			assert.Contains(t, lastLine(out), "SET version = 2, dirty = false")
		})
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"0001_init.up.sql":     "CREATE TABLE users (id bigint PRIMARY KEY, email text);\nCREATE INDEX users_email ON users (email);",
		"0002_rename.up.sql":   "-- keep the old name for one release\nALTER TABLE users ADD COLUMN mail text;\n\nALTER TABLE users RENAME COLUMN email TO mail2;",
		"0002_rename.down.sql": "ALTER TABLE users RENAME COLUMN mail2 TO email;",
		"0003_allowed.up.sql":  "ALTER TABLE users DROP COLUMN mail; -- slipway:allow drop-column",
		"0004_index.up.sql":    "CREATE TABLE drafts (id bigint);\nCREATE INDEX drafts_id ON drafts (id);\nCREATE INDEX users_mail ON users (mail2);",
	})
	// 0001 is applied: users exists, and the previous release uses it
	code, out := runMigrate(t, nil, "lint", "--sql-dir", dir, "--since", "0001")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "0002_rename.up.sql:4: rename-column: renames column users.email to mail2: ALTER TABLE users RENAME COLUMN email TO mail2")
	assert.Contains(t, out, "safer: add the new column")
	assert.Contains(t, out, "0004_index.up.sql:3: create-index-not-concurrently: indexes existing table users without CONCURRENTLY")
	assert.NotContains(t, out, "drafts_id", "indexing a table created in the same run is fine")
	assert.NotContains(t, out, "0003_allowed")
	assert.Contains(t, lastLine(out), "2 finding(s) in 3 file(s)")

	// nothing applied yet: every table is new, nothing can break
	code, out = runMigrate(t, nil, "lint", "--sql-dir", dir)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "4 file(s) checked, no findings")

	code, out = runMigrate(t, nil, "lint", "--sql-dir", dir, "--dialect", "oracle")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `--dialect "oracle": want postgres or mysql`)

	code, out = runMigrate(t, nil, "lint", "--sql-dir", dir, "--since", "last")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `--since: version "last" is not a number`)
}

func TestLintPendingFromTheDatabase(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			suffix := dbtest.UniqueSuffix()
			table, users := "slipway_test_lintmig_"+suffix, "slipway_test_lintusers_"+suffix
			h := openRaw(t, db.url)
			t.Cleanup(func() {
				_, _ = h.Exec("DROP TABLE IF EXISTS " + table)
				_, _ = h.Exec("DROP TABLE IF EXISTS " + users)
			})
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"0001_users.up.sql": "CREATE TABLE " + users + " (id bigint, email text);"})
			env := []string{"DATABASE_URL=" + db.url}

			// nothing applied, no schema table yet: every file is pending,
			// and lint creates nothing
			code, out := runMigrate(t, env, "--migrations-table", table, "lint", "--sql-dir", dir)
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "1 file(s) checked, no findings")
			var n int
			require.NoError(t, h.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_name = '"+table+"'").Scan(&n))
			assert.Zero(t, n, "lint created the schema table")

			code, out = runMigrate(t, nil, "--database-url", db.url, "--app", "lint-"+suffix, "--sql-dir", dir, "--migrations-table", table)
			require.Equal(t, 0, code, out)

			// 0001 is applied: the database says 0002 is the pending one,
			// and the dialect comes from the URL (flags after lint this time)
			writeFiles(t, dir, map[string]string{"0002_drop.up.sql": "ALTER TABLE " + users + " DROP COLUMN email;"})
			code, out = runMigrate(t, nil, "lint", "--sql-dir", dir, "--database-url", db.url, "--migrations-table", table)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "0002_drop.up.sql:1: drop-column: drops column "+users+".email")
			assert.Contains(t, lastLine(out), "1 finding(s) in 1 file(s)")

			// without the database both files are pending, and the table is new
			code, out = runMigrate(t, nil, "lint", "--sql-dir", dir, "--dialect", db.name)
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "2 file(s) checked, no findings")
		})
	}
}

func TestInvalidInputExits2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"0001_a.up.sql": "SELECT 1;"})
	badDir := t.TempDir()
	writeFiles(t, badDir, map[string]string{"1-a.sql": "SELECT 1;"})
	pgURL := dbs[0].url
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown scheme", []string{"--database-url", "redis://u:" + pgPassword + "@127.0.0.1/0", "--app", "a", "--", "true"}, `scheme "redis" is not supported`},
		{"unparseable URL", []string{"--database-url", "postgres://u:" + pgPassword + "@127.0.0.1:port/db", "--app", "a", "--", "true"}, "not a valid URL"},
		{"password with a bad escape", []string{"--database-url", "postgres://u:" + pgPassword + "%zz@127.0.0.1/db", "--app", "a", "--", "true"}, "not a valid URL"},
		{"MySQL driver DSN", []string{"--database-url", mysqlUser + ":" + mysqlPassword + "@tcp(127.0.0.1:3306)/test", "--app", "a", "--", "true"}, "write it as mysql://user:pass@host:3306/db"},
		{"keyword/value DSN", []string{"--database-url", "host=127.0.0.1 user=postgres password=" + pgPassword + " dbname=test", "--app", "a", "--", "true"}, "write it as postgres://user:pass@host:5432/db"},
		{"lint, MySQL driver DSN", []string{"lint", "--sql-dir", dir, "--database-url", mysqlUser + ":" + mysqlPassword + "@tcp(127.0.0.1:3306)/test"}, "write it as mysql://"},
		{"lint, keyword/value DSN", []string{"lint", "--sql-dir", dir, "--database-url", "host=127.0.0.1 password='" + pgPassword + "' dbname=test"}, "write it as postgres://"},
		{"no command, no sql-dir", []string{"--database-url", pgURL, "--app", "a"}, "nothing to run"},
		{"both", []string{"--database-url", pgURL, "--app", "a", "--sql-dir", dir, "--", "true"}, "not both"},
		{"no key", []string{"--database-url", pgURL, "--", "true"}, "needs --lock-key or --app"},
		{"no URL", []string{"--app", "a", "--", "true"}, "needs --database-url"},
		{"bad lock", []string{"--database-url", pgURL, "--app", "a", "--lock", "redis", "--", "true"}, "want database, none or file:PATH"},
		{"bad file name", []string{"--database-url", pgURL, "--app", "a", "--sql-dir", badDir}, "1-a.sql is not named NNNN_name.up.sql"},
		{"command not found", []string{"--lock", "none", "--", "no-such-command-slipway"}, "start command no-such-command-slipway"},
		{"unknown flag", []string{"--databse-url", pgURL}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runMigrate(t, nil, tc.args...)
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, tc.want)
		})
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			// the URL comes from DATABASE_URL; the command echoes it, and
			// --debug logs everything; run() fails on any password
			code, out := runMigrate(t, []string{"DATABASE_URL=" + db.url}, "--debug", "--app", dbtest.UniqueKey(t), "--", "sh", "-c", `echo "url is $DATABASE_URL"; echo "$DATABASE_URL" >&2`)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "url is "+db.name+"://")
			assert.Contains(t, out, "***")
		})
	}
}

func TestDryRunAndNoLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	code, out := runMigrate(t, nil, "--database-url", dbs[0].url, "--app", "frontend", "--dry-run", "--", "touch", marker)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `would take lock "frontend" (database) and run: touch `+marker)
	assert.NoFileExists(t, marker)

	// --lock none needs no database at all
	code, out = runMigrate(t, nil, "--lock", "none", "--", "touch", marker)
	require.Equal(t, 0, code, out)
	assert.FileExists(t, marker)
}

func TestFileLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := "file:" + filepath.Join(dir, "migrate.lock")
	_, outB, events := runPair(t, dir, true,
		append([]string{"--lock", lock}, recorder(dir, "a", "", 500*time.Millisecond)...),
		append([]string{"--lock", lock}, recorder(dir, "b", "", 50*time.Millisecond)...))
	assert.Equal(t, []string{"a_start", "a_end", "b_start", "b_end"}, events)
	assert.Contains(t, outB, "held_by=\"pid ")
}
