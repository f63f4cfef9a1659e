package dblock_test

import (
	"bytes"
	"context"
	"database/sql"
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

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/dblock"
)

// The machine's servers (hack/services.sh starts them in CI).
const (
	pgURL    = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	mysqlURL = "mysql://root@127.0.0.1:3306/test"
)

// syncBuffer is a log sink two goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type backend struct {
	name string
	// newLocker returns a locker on its own handle (its own sessions).
	newLocker func(t *testing.T, log *slog.Logger) dblock.Locker
}

func openDB(t *testing.T, raw string) (database.Target, *sql.DB) {
	t.Helper()
	tg, err := database.Parse(raw)
	require.NoError(t, err)
	db, err := tg.Open()
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return tg, db
}

func backends(t *testing.T) []backend {
	lockFile := filepath.Join(t.TempDir(), "migrate.lock")
	return []backend{
		{"postgres", func(t *testing.T, log *slog.Logger) dblock.Locker {
			_, db := openDB(t, pgURL)
			return dblock.Postgres{DB: db, Log: log}
		}},
		{"mysql", func(t *testing.T, log *slog.Logger) dblock.Locker {
			tg, db := openDB(t, mysqlURL)
			return dblock.MySQL{DB: db, Database: tg.Database, Log: log, Poll: 100 * time.Millisecond}
		}},
		{"file", func(t *testing.T, log *slog.Logger) dblock.Locker {
			return dblock.File{Path: lockFile, Log: log, Poll: 20 * time.Millisecond}
		}},
	}
}

func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
}

func TestSameKeyWaitsUntilReleased(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			first := b.newLocker(t, log)
			second := b.newLocker(t, log)
			key := uniqueKey(t)

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
			a, err := first.Lock(context.Background(), uniqueKey(t)+"-a")
			require.NoError(t, err)
			defer a.Release(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, err := second.Lock(ctx, uniqueKey(t)+"-b")
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
	// the advisory key is part of the contract between releases: a change
	// would let an old and a new migrate run at once
	assert.Equal(t, dblock.AdvisoryKey("frontend"), dblock.AdvisoryKey("frontend"))
	assert.NotEqual(t, dblock.AdvisoryKey("frontend"), dblock.AdvisoryKey("publisher"))
	assert.Equal(t, "slipway-migrate:test:frontend", dblock.LockName("test", "frontend"))
	long := dblock.LockName("test", string(bytes.Repeat([]byte("k"), 100)))
	assert.LessOrEqual(t, len(long), 64)
	assert.NotEqual(t, long, dblock.LockName("test", string(bytes.Repeat([]byte("k"), 101))))
}
