// Command migrate runs an app's database migrations one at a time per
// database, with a wait for the database and a deadline; `migrate lint`
// flags migrations that would break the release still running.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/migrate"
	"github.com/slipway-deploy/slipway/internal/sqllint"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	return stepcli.Step{
		Name:  "migrate",
		Usage: "run database migrations under a lock, with a deadline",
		UsageText: `migrate --database-url URL [flags] -- COMMAND [ARGS...]
migrate --database-url URL --sql-dir DIR [flags]
migrate lint --sql-dir DIR [--since VERSION]`,
		Description: `Waits for the database, takes a lock on it (PostgreSQL pg_advisory_lock, MySQL/MariaDB
GET_LOCK) so that migrations of one app never run at once, then either runs COMMAND
(its SIGTERM/SIGINT forwarded, killed after --grace-period, stopped at --timeout) or
applies the pending NNNN_name.up.sql files of --sql-dir (the running statement is
cancelled at --timeout or SIGTERM). The lock is released whatever happens. If the lock
is lost while migrating (its database session dropped), the migration is stopped the
same way and migrate exits 1. Exit 0 done, 1 failed (a retry may help), 2 invalid flags
or URL, or a schema left dirty by a failed file.`,
		Flags: []cli.Flag{
			databaseURLFlag("postgres://user:pass@host:5432/db or mysql://user:pass@host:3306/db?tls=true (the password is never printed; MySQL driver options such as tls, tls-ca=PATH, timeout go to the driver, other parameters become session variables)"),
			&cli.StringFlag{Name: "app", EnvVars: stepcli.Env("app"), Usage: "the app whose migrations these are; the default lock key"},
			&cli.StringFlag{Name: "lock-key", EnvVars: stepcli.Env("lock-key"), Usage: "what to lock on (default: --app); migrations with the same key on one database never overlap"},
			&cli.StringFlag{Name: "lock", EnvVars: stepcli.Env("lock"), Value: "database",
				Usage: "database (a lock held by the database server), file:PATH (flock, for local runs) or none"},
			&cli.DurationFlag{Name: "wait-for-database", EnvVars: stepcli.Env("wait-for-database"), Value: migrate.DefaultWait,
				Usage: "how long to wait for the database to accept connections"},
			&cli.DurationFlag{Name: "timeout", EnvVars: stepcli.Env("timeout"), Value: migrate.DefaultTimeout,
				Usage: "deadline for waiting for the lock and migrating; the command gets SIGTERM at it (0: none)"},
			&cli.DurationFlag{Name: "grace-period", EnvVars: stepcli.Env("grace-period"), Value: migrate.DefaultGrace,
				Usage: "how long the command has after SIGTERM/SIGINT before it is killed (SQL mode: how long a cancelled statement has to end)"},
			&cli.DurationFlag{Name: "lock-check-interval", EnvVars: stepcli.Env("lock-check-interval"), Value: dblock.DefaultCheckInterval,
				Usage: "how often the held lock is checked (its database sessions pinged); if it was lost, the migration is stopped as on SIGTERM and migrate exits 1"},
			&cli.StringFlag{Name: "sql-dir", EnvVars: stepcli.Env("sql-dir"),
				Usage: "apply the pending NNNN_name.up.sql files of this folder instead of running a command"},
			migrationsTableFlag(),
			&cli.BoolFlag{Name: "dry-run", EnvVars: stepcli.Env("dry-run"),
				Usage: "wait for the database and print what would run (the command, or the pending files), without locking or migrating"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: stepcli.Env("outputs-dir"),
				Usage: "write Argo outputs here: applied (number of files applied; \"unknown\" in command mode), duration"},
		},
		CLICommands: []*cli.Command{lintCommand()},
		Action:      run,
	}
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) error {
	return migrate.Run(ctx, migrate.Options{
		DatabaseURL:       c.String("database-url"),
		App:               c.String("app"),
		LockKey:           c.String("lock-key"),
		Lock:              c.String("lock"),
		WaitForDatabase:   c.Duration("wait-for-database"),
		Timeout:           c.Duration("timeout"),
		GracePeriod:       c.Duration("grace-period"),
		LockCheckInterval: c.Duration("lock-check-interval"),
		SQLDir:            c.String("sql-dir"),
		MigrationsTable:   c.String("migrations-table"),
		DryRun:            c.Bool("dry-run"),
		OutputsDir:        c.String("outputs-dir"),
		Command:           c.Args().Slice(),
	}, migrate.IO{Log: rt.Log, Stdout: rt.Stdout, Stderr: c.App.ErrWriter, Redactor: rt.Redactor})
}

func lintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "flag pending SQL migrations that break the release still running",
		UsageText: "migrate lint --sql-dir DIR [--since VERSION | --database-url URL] [--dialect postgres|mysql]",
		Description: fmt.Sprintf(`Parses each pending NNNN_name.up.sql (PostgreSQL with PostgreSQL's own parser, MySQL and
MariaDB with Vitess's) and flags statements the
previous release's code cannot live with while they apply. Each finding names the file,
line, statement and a safer (expand/contract) pattern. A "-- slipway:allow <rule>"
comment on the statement accepts it. Findings exit 1.

Pending means: above --since; else, with a --database-url (or DATABASE_URL), above the
version recorded in --migrations-table (read only); else every file. Tables created by the
linted files themselves are new, so changing them is fine. create-index-not-concurrently
is PostgreSQL's (InnoDB builds secondary indexes online).

Rules: %s`, strings.Join(sqllint.Rules(), ", ")),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "sql-dir", EnvVars: stepcli.Env("sql-dir"), Required: true, Usage: "the folder of NNNN_name.up.sql files"},
			databaseURLFlag("read the pending files from this database's --migrations-table (read only)"),
			migrationsTableFlag(),
			&cli.StringFlag{Name: "dialect", EnvVars: stepcli.Env("dialect"),
				Usage: "the SQL the files are written in: postgres or mysql (default: the --database-url's, else postgres)"},
			&cli.StringFlag{Name: "since", EnvVars: stepcli.Env("since"),
				Usage: "the version already applied (e.g. 0041 or 0041_add_users.up.sql): lint only later files (default: ask the database, else all)"},
		},
		Action: func(c *cli.Context) error {
			return migrate.Lint(c.Context, migrate.LintOptions{
				Dir:             c.String("sql-dir"),
				Dialect:         c.String("dialect"),
				Since:           c.String("since"),
				DatabaseURL:     c.String("database-url"),
				MigrationsTable: c.String("migrations-table"),
			}, c.App.Writer, slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})))
		},
	}
}

// databaseURLFlag is --database-url, also read from DATABASE_URL.
func databaseURLFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "database-url", EnvVars: append(stepcli.Env("database-url"), "DATABASE_URL"), Usage: usage}
}

func migrationsTableFlag() cli.Flag {
	return &cli.StringFlag{Name: "migrations-table", EnvVars: stepcli.Env("migrations-table"), Value: "schema_migrations",
		Usage: "the table --sql-dir records applied versions in"}
}
