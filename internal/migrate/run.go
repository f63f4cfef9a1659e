package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

// The flag defaults (the reference user's Job deadline is 900s).
const (
	DefaultWait    = 2 * time.Minute
	DefaultTimeout = 15 * time.Minute
	DefaultGrace   = 30 * time.Second
)

// Config is a migrate run: the step's flags, and where it logs and prints.
type Config struct {
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
	Command           []string

	Log *slog.Logger
	// Stdout and Stderr get the command's output, Stdout the dry run's.
	Stdout, Stderr io.Writer
	// Secret is given the database URL's passwords, to mask them in all
	// output (nil: not masked).
	Secret func(...string)
}

// Outputs are the Argo outputs a Result carries besides `outcome`.
var Outputs = []string{"applied", "duration"}

// Result is what a run did.
type Result struct {
	// SQL is set in SQL mode; a command's migrations are not counted.
	SQL bool
	// Applied is the number of files applied (SQL mode).
	Applied int
	// Duration is from the start to the end of the migration.
	Duration time.Duration
	DryRun   bool
	// migrated is set once the lock was held: only then is there
	// something to report.
	migrated bool
}

// Report is the outcome: Migrated, AlreadyThere when no file was pending
// (SQL mode), DryRun; the outputs applied and duration once the lock was
// held.
func (r Result) Report() outcome.Result {
	d := r.Duration.Round(time.Millisecond)
	res := outcome.Result{Outcome: outcome.Migrated, Reason: "the migration command succeeded", Event: "migrated",
		Attrs: []any{"duration", d.String()}}
	applied := "unknown"
	switch {
	case r.DryRun:
		return outcome.Result{Outcome: outcome.DryRun, Reason: "dry run: nothing locked or migrated"}
	case r.SQL && r.Applied == 0:
		res = outcome.Result{Outcome: outcome.AlreadyThere, Reason: "no pending migrations", Attrs: []any{"applied", 0, "duration", d.String()}}
		applied = "0"
	case r.SQL:
		res = outcome.Result{Outcome: outcome.Migrated, Reason: fmt.Sprintf("applied %d migration(s)", r.Applied), Event: "migrations applied",
			Attrs: []any{"applied", r.Applied, "duration", d.String()}}
		applied = strconv.Itoa(r.Applied)
	}
	if r.migrated {
		res.Outputs = map[string]string{"applied": applied, "duration": d.String()}
	}
	return res
}

// Run is the whole step: check the flags, wait for the database, take the
// lock, migrate, release the lock. If the lock is lost while migrating
// (its database session dropped), the migration is stopped (the command
// as on SIGTERM, SQL mode at its running statement) and Run fails with an
// error wrapping dblock.ErrLockLost. A Result returned with an error after
// the lock was taken still says what was applied.
func Run(ctx context.Context, o Config) (res Result, err error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Secret == nil {
		o.Secret = func(...string) {}
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	plan, err := o.check()
	if err != nil {
		return res, err
	}
	log := o.Log
	res.SQL = o.SQLDir != ""

	var db *sql.DB
	if plan.target != nil {
		h, err := plan.target.Open()
		if err != nil {
			return res, exitcode.AsInvalid(err)
		}
		defer h.Close()
		if err := database.Wait(ctx, *plan.target, h, o.WaitForDatabase, log); err != nil {
			return res, exitcode.Failedf("%w", err)
		}
		db = h
	}

	if o.DryRun {
		res.DryRun = true
		return res, o.dryRun(ctx, db, plan)
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
		return res, exitcode.Failedf("take the migration lock: %w", err)
	}
	log.Info("holding the migration lock", "key", plan.key, "lock", o.Lock)
	defer func() { err = o.release(ctx, lease, plan.key, err) }()
	res.migrated = true
	defer func() { res.Duration = time.Since(start) }()
	// the migration stops when the lock is lost
	wctx, stopWatch := dblock.WithLease(ctx, lease)
	defer stopWatch()

	if o.SQLDir != "" {
		res.Applied, err = o.applySQL(wctx, plan, db, deadline, lease)
	} else {
		err = o.runCommand(wctx, deadline, lease)
	}
	return res, err
}

// release releases the lock whatever happened, and returns the run's
// error: err, or the loss of the lock found only now.
func (o Config) release(ctx context.Context, lease dblock.Lease, key string, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rerr := lease.Release(rctx)
	switch {
	case rerr == nil:
		o.Log.Info("released the migration lock", "key", key)
	case errors.Is(err, dblock.ErrLockLost):
		// already the error
	case err == nil && errors.Is(rerr, dblock.ErrLockLost):
		// found out only now: the migration ran to its end, but maybe
		// not alone
		return exitcode.Failedf("%w (the migration had finished, but may have overlapped with another run)", rerr)
	default:
		o.Log.Warn("release the migration lock", "error", rerr.Error())
	}
	return err
}

// applySQL applies the pending files on a connection of their own; db is
// the one a running statement is cancelled through. It returns how many
// were applied.
func (o Config) applySQL(ctx context.Context, p plan, db *sql.DB, deadline time.Time, lease dblock.Lease) (int, error) {
	h, err := p.target.Open()
	if err != nil {
		return 0, exitcode.AsInvalid(err)
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline, fmt.Errorf("--timeout %s passed", o.Timeout))
		defer cancel()
	}
	files, err := SQL{Dir: o.SQLDir, Table: o.MigrationsTable, Target: *p.target, Log: o.Log,
		Control: db, StopGrace: o.GracePeriod}.Apply(ctx, h)
	if lost := lease.Err(); lost != nil {
		return len(files), exitcode.Failedf("%w; the migration was stopped with %d file(s) applied", lost, len(files))
	}
	return len(files), err
}

// runCommand runs the migration command until it ends, the deadline
// passes or the lock is lost.
func (o Config) runCommand(ctx context.Context, deadline time.Time, lease dblock.Lease) error {
	timeout := time.Duration(0)
	if !deadline.IsZero() {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	err := Command{Args: o.Command, Stdout: o.Stdout, Stderr: o.Stderr, Log: o.Log,
		Timeout: timeout, TimeoutReason: fmt.Sprintf("--timeout %s passed", o.Timeout), GracePeriod: o.GracePeriod}.Run(ctx)
	if lost := lease.Err(); lost != nil {
		return lockLost(lost, err)
	}
	return err
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

// plan is what the flags asked for, checked.
type plan struct {
	target *database.Target
	lock   dblock.Spec
	key    string
}

func (o Config) check() (plan, error) {
	var p plan
	if o.DatabaseURL != "" {
		t, err := database.Parse(o.DatabaseURL)
		// before anything can print them, even for an unparseable URL
		o.Secret(database.Secrets(o.DatabaseURL)...)
		o.Secret(t.Secrets()...)
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

func (o Config) dryRun(ctx context.Context, db *sql.DB, p plan) error {
	if o.SQLDir == "" {
		fmt.Fprintf(o.Stdout, "would take lock %q (%s) and run: %s\n", p.key, o.Lock, strings.Join(o.Command, " "))
		return nil
	}
	pending, err := SQL{Dir: o.SQLDir, Table: o.MigrationsTable, Target: *p.target, Log: o.Log}.Pending(ctx, db)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(o.Stdout, "no pending migrations")
		return nil
	}
	fmt.Fprintf(o.Stdout, "would take lock %q (%s) and apply:\n", p.key, o.Lock)
	for _, f := range pending {
		fmt.Fprintf(o.Stdout, "  %s\n", f.Name)
	}
	return nil
}
