package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outputs"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/sqllint"
)

// The flag defaults (the reference user's Job deadline is 900s).
const (
	DefaultWait    = 2 * time.Minute
	DefaultTimeout = 15 * time.Minute
	DefaultGrace   = 30 * time.Second
)

// Options are the step's flags.
type Options struct {
	DatabaseURL     string
	App             string
	LockKey         string
	Lock            string
	WaitForDatabase time.Duration
	Timeout         time.Duration
	GracePeriod     time.Duration
	// LockCheckInterval is how often the held lock is checked; a failed
	// check stops the migration.
	LockCheckInterval time.Duration
	SQLDir            string
	MigrationsTable   string
	DryRun            bool
	OutputsDir        string
	Command           []string
}

// IO is where the step logs and prints; Redactor learns the password.
type IO struct {
	Log      *slog.Logger
	Stdout   io.Writer
	Stderr   io.Writer
	Redactor *redact.Redactor
}

// Run is the whole step: check the flags, wait for the database, take the
// lock, migrate, release the lock, write the outputs. If the lock is lost
// while migrating (its database session dropped), the migration is stopped
// (the command as on SIGTERM, SQL mode at its running statement) and Run
// fails with an error wrapping dblock.ErrLockLost.
func Run(ctx context.Context, o Options, sio IO) (err error) {
	start := time.Now()
	plan, err := o.check(sio.Redactor)
	if err != nil {
		return err
	}
	log := sio.Log

	var db *sql.DB
	if plan.target != nil {
		h, err := plan.target.Open()
		if err != nil {
			return exitcode.AsInvalid(err)
		}
		defer h.Close()
		if err := database.Wait(ctx, *plan.target, h, o.WaitForDatabase, log); err != nil {
			return exitcode.Failedf("%w", err)
		}
		db = h
	}

	if o.DryRun {
		return o.dryRun(ctx, db, plan, sio)
	}

	// --timeout covers the wait for the lock and the migration
	var deadline time.Time
	lctx := ctx
	if o.Timeout > 0 {
		deadline = time.Now().Add(o.Timeout)
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadlineCause(ctx, deadline, fmt.Errorf("--timeout %s passed", o.Timeout))
		defer cancel()
	}

	locker := plan.locker(db, o.LockCheckInterval, log)
	lease, err := locker.Lock(lctx, plan.key)
	if err != nil {
		return exitcode.Failedf("take the migration lock: %w", err)
	}
	log.Info("holding the migration lock", "key", plan.key, "lock", o.Lock)
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		rerr := lease.Release(rctx)
		switch {
		case rerr == nil:
			log.Info("released the migration lock", "key", plan.key)
		case errors.Is(err, dblock.ErrLockLost):
			// already the error
		case err == nil && errors.Is(rerr, dblock.ErrLockLost):
			// found out only now: the migration ran to its end, but
			// maybe not alone
			err = exitcode.Failedf("%w (the migration had finished, but may have overlapped with another run)", rerr)
		default:
			log.Warn("release the migration lock", "error", rerr.Error())
		}
	}()
	// the migration stops when the lock is lost
	wctx, stopWatch := dblock.WithLease(ctx, lease)
	defer stopWatch()

	applied := "unknown"
	if o.SQLDir != "" {
		h, err := plan.target.Open()
		if err != nil {
			return exitcode.AsInvalid(err)
		}
		sctx := wctx
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			sctx, cancel = context.WithDeadlineCause(wctx, deadline, fmt.Errorf("--timeout %s passed", o.Timeout))
			defer cancel()
		}
		files, err := SQL{Dir: o.SQLDir, Table: o.MigrationsTable, Target: *plan.target, Log: log,
			Control: db, StopGrace: o.GracePeriod}.Apply(sctx, h)
		applied = strconv.Itoa(len(files))
		if lost := lease.Err(); lost != nil {
			o.writeOutputs(applied, start, log)
			return exitcode.Failedf("%w; the migration was stopped with %d file(s) applied", lost, len(files))
		}
		if err != nil {
			o.writeOutputs(applied, start, log)
			return err
		}
		log.Info("migrations applied", "applied", len(files))
	} else {
		timeout := time.Duration(0)
		if !deadline.IsZero() {
			timeout = max(time.Until(deadline), time.Millisecond)
		}
		err := Command{Args: o.Command, Stdout: sio.Stdout, Stderr: sio.Stderr, Log: log,
			Timeout: timeout, TimeoutReason: fmt.Sprintf("--timeout %s passed", o.Timeout), GracePeriod: o.GracePeriod}.Run(wctx)
		if lost := lease.Err(); lost != nil {
			o.writeOutputs(applied, start, log)
			return lockLost(lost, err)
		}
		if err != nil {
			o.writeOutputs(applied, start, log)
			return err
		}
	}
	return o.writeOutputs(applied, start, log)
}

// lockLost is the error of a command stopped because the lock was lost:
// the loss first, then how the command ended.
func lockLost(lost, cmdErr error) error {
	var xe *childproc.ExitError
	switch {
	case cmdErr == nil:
		return exitcode.Failedf("%w (the command had finished, but may have overlapped with another run)", lost)
	case errors.As(cmdErr, &xe):
		how := *xe
		how.Stopped = nil // that is the loss, said first
		return exitcode.Failedf("%w; the command was stopped: %v", lost, &how)
	}
	return exitcode.Failedf("%w; the command was stopped: %v", lost, cmdErr)
}

func (o Options) writeOutputs(applied string, start time.Time, log *slog.Logger) error {
	err := outputs.Write(o.OutputsDir, map[string]string{
		"applied":  applied,
		"duration": time.Since(start).Round(time.Millisecond).String(),
	})
	if err != nil {
		log.Warn("write outputs", "error", err.Error())
	}
	return err
}

// plan is what the flags asked for, checked.
type plan struct {
	target *database.Target
	lock   dblock.Spec
	key    string
}

func (o Options) check(red *redact.Redactor) (plan, error) {
	var p plan
	if o.DatabaseURL != "" {
		t, err := database.Parse(o.DatabaseURL)
		if red != nil {
			// before anything can print them, even for an unparseable URL
			red.Add(database.Secrets(o.DatabaseURL)...)
			red.Add(t.Secrets()...)
		}
		if err != nil {
			return p, exitcode.AsInvalid(err)
		}
		p.target = &t
	}
	spec, err := dblock.ParseSpec(o.Lock)
	if err != nil {
		return p, exitcode.AsInvalid(err)
	}
	p.lock = spec
	p.key = o.LockKey
	if p.key == "" {
		p.key = o.App
	}
	switch {
	case o.SQLDir != "" && len(o.Command) > 0:
		return p, exitcode.Invalidf("give either --sql-dir or a command after --, not both")
	case o.SQLDir == "" && len(o.Command) == 0:
		return p, exitcode.Invalidf("nothing to run: give a command after -- (e.g. -- bin/rails db:migrate) or --sql-dir")
	case o.SQLDir != "" && p.target == nil:
		return p, exitcode.Invalidf("--sql-dir needs --database-url (or DATABASE_URL)")
	case spec.Kind == "database" && p.target == nil:
		return p, exitcode.Invalidf("--lock database needs --database-url (or DATABASE_URL); use --lock file:PATH to run without a database")
	case spec.Kind == "database" && p.key == "":
		return p, exitcode.Invalidf("--lock database needs --lock-key or --app: the key says which migrations must not overlap")
	case o.WaitForDatabase <= 0:
		return p, exitcode.Invalidf("--wait-for-database must be more than 0, got %s", o.WaitForDatabase)
	case o.Timeout < 0 || o.GracePeriod < 0:
		return p, exitcode.Invalidf("--timeout and --grace-period cannot be negative")
	case o.LockCheckInterval < 0:
		return p, exitcode.Invalidf("--lock-check-interval cannot be negative")
	}
	if o.SQLDir != "" {
		if _, err := ReadDir(o.SQLDir); err != nil {
			return p, err
		}
		if o.MigrationsTable == "" {
			return p, exitcode.Invalidf("--migrations-table cannot be empty")
		}
	}
	return p, nil
}

func (p plan) locker(db *sql.DB, check time.Duration, log *slog.Logger) dblock.Locker {
	switch p.lock.Kind {
	case "file":
		return dblock.File{Path: p.lock.Path, Log: log, CheckInterval: check}
	case "database":
		if p.target.Dialect == database.MySQL {
			return dblock.MySQL{DB: db, Database: p.target.Database, Log: log, CheckInterval: check}
		}
		return dblock.Postgres{DB: db, Log: log, CheckInterval: check}
	}
	return dblock.None{}
}

func (o Options) dryRun(ctx context.Context, db *sql.DB, p plan, sio IO) error {
	if o.SQLDir == "" {
		fmt.Fprintf(sio.Stdout, "would take lock %q (%s) and run: %s\n", p.key, o.Lock, strings.Join(o.Command, " "))
		return nil
	}
	pending, err := SQL{Dir: o.SQLDir, Table: o.MigrationsTable, Target: *p.target, Log: sio.Log}.Pending(ctx, db)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(sio.Stdout, "no pending migrations")
		return nil
	}
	fmt.Fprintf(sio.Stdout, "would take lock %q (%s) and apply:\n", p.key, o.Lock)
	for _, f := range pending {
		fmt.Fprintf(sio.Stdout, "  %s\n", f.Name)
	}
	return nil
}

// LintOptions are the flags of `migrate lint`.
type LintOptions struct {
	Dir string
	// Since is the version already applied: only later files are linted.
	Since string
	// DatabaseURL, when set and Since is not, says which files are pending:
	// those above the version recorded in MigrationsTable.
	DatabaseURL     string
	MigrationsTable string
	// Dialect is the SQL the files are written in, postgres or mysql;
	// empty means the database URL's, else postgres.
	Dialect string
}

// Lint lints the pending up files and prints the findings to out; findings
// are an exit-1 error. Pending means above --since, or else above the
// database's recorded version, or else every file.
func Lint(ctx context.Context, o LintOptions, out io.Writer, log *slog.Logger) (err error) {
	// lint has no step runtime: it masks the URL's passwords itself, in
	// what it prints and in its error
	red := &redact.Redactor{}
	red.Add(database.Secrets(o.DatabaseURL)...)
	out = red.Writer(out)
	defer func() {
		if err != nil {
			if masked := red.String(err.Error()); masked != err.Error() {
				err = &exitcode.Error{Code: exitcode.Code(err), Err: errors.New(masked)}
			}
		}
	}()
	files, err := ReadDir(o.Dir)
	if err != nil {
		return err
	}
	var target *database.Target
	if o.DatabaseURL != "" {
		t, err := database.Parse(o.DatabaseURL)
		if err != nil {
			return exitcode.AsInvalid(err)
		}
		red.Add(t.Secrets()...)
		target = &t
	}
	var dialect sqllint.Dialect
	switch o.Dialect {
	case "postgres", "postgresql":
		dialect = sqllint.Postgres
	case "mysql", "mariadb":
		dialect = sqllint.MySQL
	case "":
		dialect = sqllint.Postgres
		if target != nil && target.Dialect == database.MySQL {
			dialect = sqllint.MySQL
		}
	default:
		return exitcode.Invalidf("--dialect %q: want postgres or mysql", o.Dialect)
	}
	var pending map[uint64]bool
	var after uint64
	switch {
	case o.Since != "":
		after, err = ParseVersion(o.Since)
		if err != nil {
			return exitcode.Invalidf("--since: %w", err)
		}
	case target != nil:
		if pending, err = o.pendingInDatabase(ctx, *target, log); err != nil {
			return err
		}
	}
	var srcs []sqllint.Source
	for _, f := range files {
		if f.Version <= after || (pending != nil && !pending[f.Version]) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(o.Dir, f.Name))
		if err != nil {
			return exitcode.Invalidf("read %w", err)
		}
		srcs = append(srcs, sqllint.Source{Name: f.Name, SQL: string(b)})
	}
	findings := sqllint.Lint(dialect, srcs)
	for _, f := range findings {
		fmt.Fprintln(out, f.String())
	}
	if len(findings) > 0 {
		return exitcode.Failedf("%d finding(s) in %d file(s): these statements break the release still running while they apply (accept one with -- slipway:allow <rule>)", len(findings), len(srcs))
	}
	fmt.Fprintf(out, "%d file(s) checked, no findings\n", len(srcs))
	return nil
}

// pendingInDatabase reads which files the database has not applied.
func (o LintOptions) pendingInDatabase(ctx context.Context, t database.Target, log *slog.Logger) (map[uint64]bool, error) {
	h, err := t.Open()
	if err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	defer h.Close()
	files, err := SQL{Dir: o.Dir, Table: o.MigrationsTable, Target: t, Log: log}.Pending(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("pending migrations in %s: %w", t, err)
	}
	pending := map[uint64]bool{}
	for _, f := range files {
		pending[f.Version] = true
	}
	return pending, nil
}
