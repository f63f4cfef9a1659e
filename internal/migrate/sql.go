package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	gomigrate "github.com/golang-migrate/migrate/v4"
	mdb "github.com/golang-migrate/migrate/v4/database"
	mmysql "github.com/golang-migrate/migrate/v4/database/mysql"
	mpgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// SQL applies a folder of migrations with golang-migrate: pending up files
// in version order, each file in one transaction where the database allows
// it (PostgreSQL; MySQL commits DDL as it goes), recorded in Table.
type SQL struct {
	Dir    string
	Table  string // the schema table; golang-migrate's schema_migrations by default
	Target database.Target
	Log    *slog.Logger
	// Control is a handle on the same database, other than the one Apply
	// migrates on: a statement still running when ctx ends is cancelled
	// through it (pg_cancel_backend, KILL QUERY). Nil: Apply stops only
	// between files.
	Control *sql.DB
	// StopGrace is how long Apply waits for a cancelled statement to end
	// before it returns anyway (the process then exits, and the server
	// rolls back what the dropped session had running).
	StopGrace time.Duration
}

// open reads the folder, opens golang-migrate on db (which it then owns)
// and reads the schema's version: the files above it are pending.
func (s SQL) open(db *sql.DB) (m *gomigrate.Migrate, files []File, pending []File, err error) {
	m, files, err = s.openMigrate(db)
	if err != nil {
		return nil, nil, nil, err
	}
	before, err := s.version(m, files)
	if err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	return m, files, after(files, before), nil
}

func (s SQL) openMigrate(db *sql.DB) (*gomigrate.Migrate, []File, error) {
	files, err := ReadDir(s.Dir)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	var drv mdb.Driver
	switch s.Target.Dialect {
	case database.Postgres:
		drv, err = mpgx.WithInstance(db, &mpgx.Config{MigrationsTable: s.Table})
	case database.MySQL:
		drv, err = mmysql.WithInstance(db, &mmysql.Config{MigrationsTable: s.Table})
	default:
		err = fmt.Errorf("unknown dialect %q", s.Target.Dialect)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("schema table %s on %s: %w", s.Table, s.Target, err)
	}
	src, err := iofs.New(os.DirFS(s.Dir), ".")
	if err != nil {
		drv.Close()
		return nil, nil, fmt.Errorf("--sql-dir %s: %w", s.Dir, err)
	}
	m, err := gomigrate.NewWithInstance("iofs", src, string(s.Target.Dialect), drv)
	if err != nil {
		drv.Close()
		return nil, nil, fmt.Errorf("migrations in %s: %w", s.Dir, err)
	}
	m.Log = migrateLog{s.Log}
	return m, files, nil
}

// Pending lists the files Apply would apply, reading the schema table
// without writing anything (golang-migrate would create a missing table).
// A missing table means nothing is applied yet.
func (s SQL) Pending(ctx context.Context, db *sql.DB) ([]File, error) {
	files, err := ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	var exists bool
	quoted := s.quotedTable()
	switch s.Target.Dialect {
	case database.Postgres:
		err = db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", s.Table).Scan(&exists)
	case database.MySQL:
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) > 0 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", s.Table).Scan(&exists)
	}
	if err != nil {
		return nil, fmt.Errorf("look for schema table %s on %s: %w", s.Table, s.Target, err)
	}
	if !exists {
		return files, nil
	}
	var version int64
	var dirty bool
	err = db.QueryRowContext(ctx, "SELECT version, dirty FROM "+quoted+" LIMIT 1").Scan(&version, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return files, nil
	case err != nil:
		return nil, fmt.Errorf("read schema table %s on %s: %w", s.Table, s.Target, err)
	case dirty:
		return nil, s.dirty(files, uint64(version))
	}
	return after(files, uint64(version)), nil
}

func after(files []File, v uint64) []File {
	var out []File
	for _, f := range files {
		if f.Version > v {
			out = append(out, f)
		}
	}
	return out
}

// Apply applies the pending migrations and returns the files it applied.
// A failing file stops the run; the error names it. db is closed.
//
// When ctx ends (SIGTERM, --timeout, a lost lock) no further file starts,
// and the statement running then is cancelled on the server: golang-migrate
// runs statements without a context, so Apply migrates on one connection
// whose session id it knows and cancels through Control. The error wraps
// ctx's cause.
func (s SQL) Apply(ctx context.Context, db *sql.DB) ([]File, error) {
	// one connection, so the session golang-migrate runs on is the one
	// whose id is read here
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	session, err := s.sessionID(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.Target, err)
	}
	m, files, pending, err := s.open(db)
	if err != nil {
		return nil, err
	}
	if len(pending) == 0 {
		m.Close()
		return nil, nil
	}
	s.Log.Info("applying migrations", "pending", len(pending), "from", pending[0].Name, "to", pending[len(pending)-1].Name)

	up := make(chan error, 1)
	go func() { up <- m.Up() }()
	var upErr error
	select {
	case upErr = <-up:
	case <-ctx.Done():
		m.GracefulStop <- true
		s.Log.Info("stopping the migration", "reason", context.Cause(ctx).Error())
		upErr = s.cancelUntilDone(session, up)
	}
	if upErr == errStopTimedOut {
		// golang-migrate still runs on m: leave it; the process exits
		return nil, fmt.Errorf("stopped migrating (%w), but the running statement did not end within %s of being cancelled", context.Cause(ctx), s.StopGrace)
	}
	defer m.Close()
	now, dirty, verr := m.Version()
	if errors.Is(verr, gomigrate.ErrNilVersion) {
		now, verr = 0, nil
	}
	var applied []File
	for _, f := range pending {
		if f.Version <= uint64(now) && !(dirty && f.Version == uint64(now)) {
			applied = append(applied, f)
		}
	}
	if upErr != nil && !errors.Is(upErr, gomigrate.ErrNoChange) {
		if ctx.Err() != nil && verr == nil && dirty {
			return applied, fmt.Errorf("migration %s stopped half-way (%d applied before it; %w): %s", nameOf(files, uint64(now)), len(applied), context.Cause(ctx), cause(upErr))
		}
		if verr == nil && dirty {
			return applied, fmt.Errorf("migration %s failed (%d applied before it): %s", nameOf(files, uint64(now)), len(applied), cause(upErr))
		}
		return applied, fmt.Errorf("apply migrations from %s: %s", s.Dir, cause(upErr))
	}
	if verr != nil {
		return applied, fmt.Errorf("read schema version from %s: %w", s.Table, verr)
	}
	if len(applied) < len(pending) && ctx.Err() != nil {
		return applied, fmt.Errorf("stopped after %d of %d migrations: %w", len(applied), len(pending), context.Cause(ctx))
	}
	return applied, nil
}

// errStopTimedOut: the cancelled statement did not end within StopGrace.
var errStopTimedOut = errors.New("stop timed out")

// cancelUntilDone cancels the statement running on session, again every
// half second (one may have started between golang-migrate's check for a
// stop and its next statement), until golang-migrate returns or StopGrace
// has passed.
func (s SQL) cancelUntilDone(session int64, up <-chan error) error {
	grace := time.After(max(s.StopGrace, time.Second))
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		s.cancelStatement(session)
		select {
		case err := <-up:
			return err
		case <-grace:
			return errStopTimedOut
		case <-tick.C:
		}
	}
}

// sessionID is the server's id of db's (one) connection.
func (s SQL) sessionID(ctx context.Context, db *sql.DB) (int64, error) {
	q := "SELECT pg_backend_pid()"
	if s.Target.Dialect == database.MySQL {
		q = "SELECT CONNECTION_ID()"
	}
	var id int64
	err := db.QueryRowContext(ctx, q).Scan(&id)
	return id, err
}

// cancelStatement cancels what session is running, if anything.
func (s SQL) cancelStatement(session int64) {
	if s.Control == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if s.Target.Dialect == database.MySQL {
		_, err = s.Control.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", session))
	} else {
		_, err = s.Control.ExecContext(ctx, "SELECT pg_cancel_backend($1)", session)
	}
	if err != nil {
		s.Log.Warn("cancel the running migration statement", "session", session, "error", err.Error())
	}
}

// version is the schema's current version, refusing a dirty schema.
func (s SQL) version(m *gomigrate.Migrate, files []File) (uint64, error) {
	v, dirty, err := m.Version()
	if errors.Is(err, gomigrate.ErrNilVersion) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version from %s: %w", s.Table, err)
	}
	if dirty {
		return 0, s.dirty(files, uint64(v))
	}
	return uint64(v), nil
}

// dirty is the exit-2 error for a schema golang-migrate marked dirty (a
// file failed, or was stopped, half-way): no run can go on until a person
// has looked, so it says which file and how to clear the flag.
func (s SQL) dirty(files []File, v uint64) error {
	table := s.quotedTable()
	clear := fmt.Sprintf("DELETE FROM %s", table)
	force := "-1"
	for _, f := range files {
		if f.Version < v {
			clear = fmt.Sprintf("UPDATE %s SET version = %d, dirty = false", table, f.Version)
			force = strconv.FormatUint(f.Version, 10)
		}
	}
	return exitcode.Invalidf("schema table %s is dirty at version %d: migration %s failed or was stopped half-way; "+
		"repair what it left (PostgreSQL rolls a failed file back whole), then clear the flag with %s "+
		"(golang-migrate: force %s) and run migrate again", s.Table, v, nameOf(files, v), clear, force)
}

func (s SQL) quotedTable() string {
	if s.Target.Dialect == database.MySQL {
		return "`" + strings.ReplaceAll(s.Table, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(s.Table, `"`, `""`) + `"`
}

func nameOf(files []File, v uint64) string {
	for _, f := range files {
		if f.Version == v {
			return f.Name
		}
	}
	return fmt.Sprintf("version %d", v)
}

// cause is the database's own message for a failed statement, without the
// whole file's text that golang-migrate puts in its error.
func cause(err error) string {
	var de mdb.Error
	if errors.As(err, &de) && de.OrigErr != nil {
		msg := de.OrigErr.Error()
		if de.Line > 0 {
			msg = fmt.Sprintf("line %d: %s", de.Line, msg)
		}
		return msg
	}
	var dep *mdb.Error
	if errors.As(err, &dep) && dep.OrigErr != nil {
		return dep.OrigErr.Error()
	}
	return strings.TrimSpace(err.Error())
}

// migrateLog passes golang-migrate's lines to slog.
type migrateLog struct{ log *slog.Logger }

func (l migrateLog) Printf(format string, v ...any) {
	l.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l migrateLog) Verbose() bool { return false }
