package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/dblock"
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
	db := openRaw(nil, "mysql://root@127.0.0.1:3306/test")
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
	tg, err := database.Parse(raw)
	if err != nil {
		panic(err)
	}
	db, err := tg.Open()
	if err != nil {
		panic(err)
	}
	if t != nil {
		t.Cleanup(func() { db.Close() })
	}
	return db
}

type proc struct {
	cmd *exec.Cmd
	// out is written by exec's one copying goroutine (stdout and stderr
	// are the same writer); read it only once done is closed
	out  *bytes.Buffer
	done chan struct{}
	code int
}

// start runs migrate with args; extraEnv is added to the environment.
func start(t *testing.T, extraEnv []string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--log-format", "text"}, args...)...)
	p.cmd.Env = append(os.Environ(), extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits (at most 60s) for the process, checks that its output has no
// password, and returns its exit code and output.
func (p *proc) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("migrate did not exit within 60s; output:\n%s", p.out.String())
	}
	out := p.out.String()
	assert.NotContains(t, out, pgPassword, "a password leaked")
	assert.NotContains(t, out, mysqlPassword, "a password leaked")
	return p.code, out
}

func runMigrate(t *testing.T, extraEnv []string, args ...string) (int, string) {
	t.Helper()
	return start(t, extraEnv, args...).wait(t)
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
		_ = pr.cmd.Process.Kill()
		<-pr.done
		t.Log(pr.out.String())
	}
	t.Fatalf("%s did not appear within 20s", path)
}

// readStamp reads a nanosecond timestamp a child wrote with date +%s%N.
func readStamp(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err, "stamp in %s", path)
	return n
}

func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", strings.ReplaceAll(t.Name(), "/", "-"), os.Getpid(), time.Now().UnixNano())
}

// recorder is a child command that stamps its start into NAME.start, waits
// for OTHER.start to exist if other is set (at most 10s; exit 1 if it never
// comes), sleeps, and stamps its end into NAME.end.
func recorder(dir, name, other string, sleep time.Duration) []string {
	script := `date +%s%N > "$1.start.tmp" && mv "$1.start.tmp" "$1.start"
if [ -n "$2" ]; then
  i=0
  while [ ! -e "$2.start" ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done
fi
sleep "$3"
date +%s%N > "$1.end"`
	o := ""
	if other != "" {
		o = filepath.Join(dir, other)
	}
	return []string{"--", "sh", "-c", script, "sh", filepath.Join(dir, name), o, fmt.Sprintf("%.3f", sleep.Seconds())}
}

// interval is when a recorder command ran, in Unix nanoseconds.
type interval struct{ start, end int64 }

func (i interval) overlaps(o interval) bool { return i.start < o.end && o.start < i.end }

func readInterval(t *testing.T, dir, name string) interval {
	return interval{readStamp(t, filepath.Join(dir, name+".start")), readStamp(t, filepath.Join(dir, name+".end"))}
}

// runPair runs two migrates whose commands are recorders named a and b
// (bAfterA: b starts once a's command has started), checks both succeed and
// returns their output and when their commands ran.
func runPair(t *testing.T, dir string, bAfterA bool, argsA, argsB []string) (outA, outB string, a, b interval) {
	t.Helper()
	pa := start(t, nil, argsA...)
	if bAfterA {
		waitFile(t, filepath.Join(dir, "a.start"), pa)
	}
	pb := start(t, nil, argsB...)
	codeA, outA := pa.wait(t)
	codeB, outB := pb.wait(t)
	require.Equal(t, 0, codeA, outA)
	require.Equal(t, 0, codeB, outB)
	return outA, outB, readInterval(t, dir, "a"), readInterval(t, dir, "b")
}

func TestSameKeyNeverOverlaps(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := uniqueKey(t)
			// b starts once a's command runs: without the lock they would overlap
			_, outB, a, b := runPair(t, dir, true,
				append([]string{"--database-url", db.url, "--lock-key", key}, recorder(dir, "a", "", 800*time.Millisecond)...),
				append([]string{"--database-url", db.url, "--lock-key", key}, recorder(dir, "b", "", 100*time.Millisecond)...))
			assert.False(t, a.overlaps(b), "a ran %v, b ran %v", a, b)
			assert.GreaterOrEqual(t, b.start, a.end, "b started before a ended")
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
			key := uniqueKey(t)
			// each command waits for the other to have started: both can
			// only finish if they run at the same time
			outA, outB, a, b := runPair(t, dir, false,
				append([]string{"--database-url", db.url, "--lock-key", key + "-a"}, recorder(dir, "a", "b", 100*time.Millisecond)...),
				append([]string{"--database-url", db.url, "--lock-key", key + "-b"}, recorder(dir, "b", "a", 100*time.Millisecond)...))
			assert.True(t, a.overlaps(b), "a ran %v, b ran %v", a, b)
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
			key := uniqueKey(t)
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
				code, out := p.wait(t)
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
			key := uniqueKey(t)
			ready, termed := filepath.Join(dir, "ready"), filepath.Join(dir, "termed")
			script := `trap 'date +%s%N > "$2"; exit 143' TERM
touch "$1"
while :; do sleep 0.05; done`
			p := start(t, nil, "--database-url", db.url, "--lock-key", key, "--grace-period", "10s", "--", "sh", "-c", script, "sh", ready, termed)
			waitFile(t, ready, p)

			// a waiter for the same lock, as the next migrate would be
			got := make(chan int64, 1)
			l := locker(t, db)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				lease, err := l.Lock(ctx, key)
				if err != nil {
					got <- 0
					return
				}
				got <- time.Now().UnixNano()
				_ = lease.Release(context.Background())
			}()
			select {
			case <-got:
				t.Fatal("the lock was free while migrate ran its command")
			case <-time.After(300 * time.Millisecond):
			}

			require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
			code, out := p.wait(t)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "migrate received terminated")
			assert.Contains(t, out, "released the migration lock")
			acquired := <-got
			require.NotZero(t, acquired, "the lock was not released")
			assert.LessOrEqual(t, readStamp(t, termed), acquired, "the command saw SIGTERM after the lock was released")
		})
	}
}

func TestMigrateKilledTakesTheCommandAndLockWithIt(t *testing.T) {
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := uniqueKey(t)
			pidFile := filepath.Join(dir, "pid")
			p := start(t, nil, "--database-url", db.url, "--lock-key", key, "--", "sh", "-c", `echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30`, "sh", pidFile)
			waitFile(t, pidFile, p)
			pid, err := strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(pidFile)))))
			require.NoError(t, err)
			require.NoError(t, p.cmd.Process.Kill()) // SIGKILL: no clean-up in migrate
			code, _ := p.wait(t)
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
		p := start(t, nil, "--database-url", db.url, "--lock-key", uniqueKey(t), "--grace-period", "300ms",
			"--", "sh", "-c", `trap '' TERM; touch "$1"; sleep 30`, "sh", ready)
		waitFile(t, ready, p)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		code, out := p.wait(t)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "grace period over")
		assert.Contains(t, out, "was killed by killed")
	})
	t.Run("timeout while waiting for the lock", func(t *testing.T) {
		key := uniqueKey(t)
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
		code, out := runMigrate(t, nil, "--database-url", db.url, "--lock-key", uniqueKey(t), "--timeout", "500ms", "--grace-period", "5s",
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
			wait := 1500 * time.Millisecond
			began := time.Now()
			code, out := runMigrate(t, nil, "--database-url", db.url, "--app", "frontend", "--wait-for-database", wait.String(), "--", "true")
			took := time.Since(began)
			assert.Equal(t, 1, code, out)
			assert.GreaterOrEqual(t, took, wait, "gave up before --wait-for-database")
			assert.Less(t, took, wait+10*time.Second, "waited far longer than --wait-for-database")
			assert.Contains(t, out, "waiting for the database")
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
			suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
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
			var n int
			require.NoError(t, h.QueryRow("SELECT count(*) FROM "+people).Scan(&n))
			assert.Equal(t, 2, n)

			// a re-run applies nothing
			code, out = runMigrate(t, nil, args...)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "no pending migrations")
			assert.Equal(t, "0", string(must(os.ReadFile(filepath.Join(outDir, "applied")))))
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
			// and the next run says the schema needs repair, naming the file
			code, out = runMigrate(t, nil, args...)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, lastLine(out), "0003_half.up.sql failed half-way")
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
			suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
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
			code, out := runMigrate(t, []string{"DATABASE_URL=" + db.url}, "--debug", "--app", uniqueKey(t), "--", "sh", "-c", `echo "url is $DATABASE_URL"; echo "$DATABASE_URL" >&2`)
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
	_, outB, a, b := runPair(t, dir, true,
		append([]string{"--lock", lock}, recorder(dir, "a", "", 500*time.Millisecond)...),
		append([]string{"--lock", lock}, recorder(dir, "b", "", 50*time.Millisecond)...))
	assert.GreaterOrEqual(t, b.start, a.end)
	assert.Contains(t, outB, "held_by=\"pid ")
}
