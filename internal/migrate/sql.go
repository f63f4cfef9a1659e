package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	gomigrate "github.com/golang-migrate/migrate/v4"
	mdb "github.com/golang-migrate/migrate/v4/database"
	mmysql "github.com/golang-migrate/migrate/v4/database/mysql"
	mpgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/slipway-deploy/slipway/internal/database"
)

// SQL applies a folder of migrations with golang-migrate: pending up files
// in version order, each file in one transaction where the database allows
// it (PostgreSQL; MySQL commits DDL as it goes), recorded in Table.
type SQL struct {
	Dir    string
	Table  string // the schema table; golang-migrate's schema_migrations by default
	Target database.Target
	Log    *slog.Logger
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
	var quoted string
	switch s.Target.Dialect {
	case database.Postgres:
		err = db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", s.Table).Scan(&exists)
		quoted = `"` + strings.ReplaceAll(s.Table, `"`, `""`) + `"`
	case database.MySQL:
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) > 0 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", s.Table).Scan(&exists)
		quoted = "`" + strings.ReplaceAll(s.Table, "`", "``") + "`"
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
		return nil, fmt.Errorf("schema table %s says migration %s failed half-way: repair the schema by hand, then set the version in %s (golang-migrate's force)", s.Table, nameOf(files, uint64(version)), s.Table)
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
func (s SQL) Apply(ctx context.Context, db *sql.DB) ([]File, error) {
	m, files, pending, err := s.open(db)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if len(pending) == 0 {
		s.Log.Info("no pending migrations", "dir", s.Dir)
		return nil, nil
	}
	s.Log.Info("applying migrations", "pending", len(pending), "from", pending[0].Name, "to", pending[len(pending)-1].Name)

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-stop:
		}
	}()
	upErr := m.Up()
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
		return 0, fmt.Errorf("schema table %s says migration %s failed half-way: repair the schema by hand, then set the version in %s (golang-migrate's force)", s.Table, nameOf(files, uint64(v)), s.Table)
	}
	return uint64(v), nil
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
