package dblock_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/testsupport/dbtest"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// The machine's servers (hack/services.sh starts them in CI).
const (
	pgURL    = dbtest.PostgresURL
	mysqlURL = dbtest.MySQLURL
)

type backend struct {
	name string
	// newLocker returns a locker on its own handle (its own sessions).
	newLocker func(t *testing.T, log *slog.Logger) dblock.Locker
}

func backends(t *testing.T) []backend {
	lockFile := filepath.Join(t.TempDir(), "migrate.lock")
	return []backend{
		{"postgres", func(t *testing.T, log *slog.Logger) dblock.Locker {
			_, db := dbtest.Open(t, pgURL)
			return dblock.Postgres{DB: db, Log: log, CheckInterval: 50 * time.Millisecond}
		}},
		{"mysql", func(t *testing.T, log *slog.Logger) dblock.Locker {
			tg, db := dbtest.Open(t, mysqlURL)
			return dblock.MySQL{DB: db, Database: tg.Database, Log: log, Poll: 100 * time.Millisecond, CheckInterval: 50 * time.Millisecond}
		}},
		{"file", func(t *testing.T, log *slog.Logger) dblock.Locker {
			return dblock.File{Path: lockFile, Log: log, Poll: 20 * time.Millisecond, CheckInterval: 20 * time.Millisecond}
		}},
	}
}

func TestSameKeyWaitsUntilReleased(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			var logs syncbuffer.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			first := b.newLocker(t, log)
			second := b.newLocker(t, log)
			key := dbtest.UniqueKey(t)

			held, err := first.Lock(context.Background(), key)
			require.NoError(t, err)

			// the second waits (and says so) until its context ends
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			go func() {
				for ctx.Err() == nil && !strings.Contains(logs.String(), "waiting for the migration lock") {
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}()
			_, err = second.Lock(ctx, key)
			cancel()
			require.ErrorIs(t, err, context.Canceled, "second lock must wait while the first is held")
			assert.Contains(t, logs.String(), "waiting for the migration lock")
			assert.NotContains(t, logs.String(), "held_by=unknown", "the holder should be named")

			// a waiter blocked in Lock gets the lock once the holder releases
			got := make(chan error, 1)
			go func() {
				l, err := second.Lock(context.Background(), key)
				if err == nil {
					err = l.Release(context.Background())
				}
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("second lock returned while the first was held: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			require.NoError(t, held.Release(context.Background()))
			require.NoError(t, held.Release(context.Background()), "Release twice is fine")
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("second lock not granted after release")
			}
		})
	}
}

func TestDifferentKeysDoNotWait(t *testing.T) {
	for _, b := range backends(t) {
		if b.name == "file" {
			continue // the file is the lock; keys only label it
		}
		t.Run(b.name, func(t *testing.T) {
			log := slog.New(slog.DiscardHandler)
			first := b.newLocker(t, log)
			second := b.newLocker(t, log)
			a, err := first.Lock(context.Background(), dbtest.UniqueKey(t)+"-a")
			require.NoError(t, err)
			defer a.Release(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, err := second.Lock(ctx, dbtest.UniqueKey(t)+"-b")
			require.NoError(t, err)
			require.NoError(t, b.Release(context.Background()))
		})
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    dblock.Spec
		wantErr string
	}{
		{"", dblock.Spec{Kind: "database"}, ""},
		{"database", dblock.Spec{Kind: "database"}, ""},
		{"none", dblock.Spec{Kind: "none"}, ""},
		{"file:/tmp/x.lock", dblock.Spec{Kind: "file", Path: "/tmp/x.lock"}, ""},
		{"file:", dblock.Spec{}, "needs a path"},
		{"redis", dblock.Spec{}, "want database, none or file:PATH"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := dblock.ParseSpec(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestKeysAreStable(t *testing.T) {
	// the keys are part of the contract between releases: a change would
	// let an old and a new migrate run at once. Pinned to their values.
	assert.Equal(t, int64(-3486604236885060224), dblock.AdvisoryKey("frontend"))
	assert.Equal(t, int64(-2636109130550265692), dblock.AdvisoryGuardKey("frontend"))
	assert.NotEqual(t, dblock.AdvisoryKey("frontend"), dblock.AdvisoryKey("publisher"))
	assert.Equal(t, "slipway-migrate:test:frontend", dblock.LockName("test", "frontend"))
	assert.Equal(t, "slipway-migrate-guard:test:frontend", dblock.GuardLockName("test", "frontend"))
	long := dblock.LockName("test", strings.Repeat("k", 100))
	assert.Equal(t, "slipway-migrate:b667a932fdf01075cbfa9e3731914b40d22953bb", long)
	assert.LessOrEqual(t, len(dblock.GuardLockName("test", strings.Repeat("k", 100))), 64)
	assert.NotEqual(t, long, dblock.LockName("test", strings.Repeat("k", 101)))
}

// killer ends the database session holding a lock, as a DBA or a failover
// would.
type killer struct {
	name string
	// newLocker returns a locker on its own handle that checks its lease
	// every interval.
	newLocker func(t *testing.T, log *slog.Logger, interval time.Duration) dblock.Locker
	// kill ends the session holding key's lock (guard: its guard) and
	// waits until the server has seen it go.
	kill func(t *testing.T, key string, guard bool)
}

func killers() []killer {
	return []killer{
		{"postgres", func(t *testing.T, log *slog.Logger, interval time.Duration) dblock.Locker {
			_, db := dbtest.Open(t, pgURL)
			return dblock.Postgres{DB: db, Log: log, CheckInterval: interval}
		}, func(t *testing.T, key string, guard bool) {
			_, db := dbtest.Open(t, pgURL)
			id := dblock.AdvisoryKey(key)
			if guard {
				id = dblock.AdvisoryGuardKey(key)
			}
			dbtest.TerminatePostgresLockHolder(t, db, id)
		}},
		{"mysql", func(t *testing.T, log *slog.Logger, interval time.Duration) dblock.Locker {
			tg, db := dbtest.Open(t, mysqlURL)
			return dblock.MySQL{DB: db, Database: tg.Database, Log: log, Poll: 100 * time.Millisecond, CheckInterval: interval}
		}, func(t *testing.T, key string, guard bool) {
			tg, db := dbtest.Open(t, mysqlURL)
			name := dblock.LockName(tg.Database, key)
			if guard {
				name = dblock.GuardLockName(tg.Database, key)
			}
			dbtest.KillMySQLLockHolder(t, db, name)
		}},
	}
}

// events is an ordered record of what happened, for asserting on order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

// When the session holding the lock (or its guard) is killed, the lease
// reports the loss (Lost, Err wrapping ErrLockLost), and a migrate waiting
// for the same key still waits until the one that lost it has released.
func TestLockLostWhenItsSessionIsKilled(t *testing.T) {
	for _, k := range killers() {
		for _, guard := range []bool{false, true} {
			session := map[bool]string{false: "lock", true: "guard"}[guard]
			t.Run(k.name+"/"+session+" session", func(t *testing.T) {
				var logs syncbuffer.Buffer
				log := slog.New(slog.NewTextHandler(&logs, nil))
				key := dbtest.UniqueKey(t)
				held, err := k.newLocker(t, log, 50*time.Millisecond).Lock(context.Background(), key)
				require.NoError(t, err)
				defer held.Release(context.Background())
				assert.NoError(t, held.Err())

				var ev events
				second := k.newLocker(t, log, time.Hour)
				got := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					l, err := second.Lock(ctx, key)
					if err == nil {
						ev.add("second took the lock")
						err = l.Release(context.Background())
					}
					got <- err
				}()
				waitLog(t, &logs, "waiting for the migration lock", 1)

				k.kill(t, key, guard)
				select {
				case <-held.Lost():
					ev.add("first saw the loss")
				case <-time.After(30 * time.Second):
					t.Fatal("the loss of the lock was not reported")
				}
				require.ErrorIs(t, held.Err(), dblock.ErrLockLost)
				assert.Contains(t, held.Err().Error(), fmt.Sprintf("lost the migration lock %q: its database session (%s)", key, session))
				if !guard {
					// the second took the freed lock and now waits
					// for the guard, held by the first's other session
					waitLog(t, &logs, "waiting for the migration lock", 2)
				}
				ev.add("first releases")
				err = held.Release(context.Background())
				require.ErrorIs(t, err, dblock.ErrLockLost, "releasing a lost lock says it was lost")
				require.NoError(t, <-got)
				assert.Equal(t, []string{"first saw the loss", "first releases", "second took the lock"}, ev.get())
			})
		}
	}
}

// A release that finds the lock gone (the session dropped since the last
// check) counts as a loss too.
func TestReleaseOfAKilledSessionIsALoss(t *testing.T) {
	for _, k := range killers() {
		t.Run(k.name, func(t *testing.T) {
			key := dbtest.UniqueKey(t)
			held, err := k.newLocker(t, slog.New(slog.DiscardHandler), time.Hour).Lock(context.Background(), key)
			require.NoError(t, err)
			k.kill(t, key, false)
			err = held.Release(context.Background())
			require.ErrorIs(t, err, dblock.ErrLockLost)
			assert.Contains(t, err.Error(), "(lock)")
			assert.ErrorIs(t, held.Err(), dblock.ErrLockLost)
		})
	}
}

func TestFileLockLostWhenTheFileIsRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "migrate.lock")
	held, err := dblock.File{Path: path, Log: slog.New(slog.DiscardHandler), CheckInterval: 10 * time.Millisecond}.Lock(context.Background(), "frontend")
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	select {
	case <-held.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the loss of the lock file was not reported")
	}
	require.ErrorIs(t, held.Err(), dblock.ErrLockLost)
	assert.Contains(t, held.Err().Error(), "was removed or replaced")
	assert.ErrorIs(t, held.Release(context.Background()), dblock.ErrLockLost)
}

func TestWithLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "migrate.lock")
	held, err := dblock.File{Path: path, Log: slog.New(slog.DiscardHandler), CheckInterval: 10 * time.Millisecond}.Lock(context.Background(), "frontend")
	require.NoError(t, err)
	ctx, cancel := dblock.WithLease(context.Background(), held)
	defer cancel()
	require.NoError(t, ctx.Err(), "held: not cancelled")
	require.NoError(t, os.Remove(path))
	<-ctx.Done()
	assert.ErrorIs(t, context.Cause(ctx), dblock.ErrLockLost)

	// a lock that cannot be lost never cancels; cancel does
	none, err := dblock.None{}.Lock(context.Background(), "x")
	require.NoError(t, err)
	ctx, cancel = dblock.WithLease(context.Background(), none)
	require.NoError(t, ctx.Err())
	cancel()
	assert.ErrorIs(t, context.Cause(ctx), context.Canceled)
}

// waitLog waits (at most 30s) until logs holds n lines with msg.
func waitLog(t *testing.T, logs *syncbuffer.Buffer, msg string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Count(logs.String(), msg) >= n }, 30*time.Second, 10*time.Millisecond,
		"want %d %q lines in:\n%s", n, msg, logs)
}
