// Command migrate runs an app's database migrations one at a time per
// database, with a wait for the database and a deadline; `migrate lint`
// flags migrations that would break the release still running.
package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/dblock"
	"github.com/slipway-deploy/slipway/internal/migrate"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	env := stepcli.Env
	return stepcli.Step{
		Name: "migrate", Usage: migrate.Usage, UsageText: migrate.UsageText, Description: migrate.Description,
		Flags: []cli.Flag{
			databaseURLFlag("postgres://user:pass@host:5432/db or mysql://user:pass@host:3306/db?tls=true (the password is never printed; MySQL driver options such as tls, tls-ca=PATH, timeout go to the driver, other parameters become session variables)"),
			&cli.StringFlag{Name: "app", EnvVars: env("app"), Usage: "the app whose migrations these are; the default lock key"},
			&cli.StringFlag{Name: "lock-key", EnvVars: env("lock-key"), Usage: "what to lock on (default: --app); migrations with the same key on one database never overlap"},
			&cli.StringFlag{Name: "lock", EnvVars: env("lock"), Value: "database", Usage: "database (a lock held by the database server), file:PATH (flock, for local runs) or none"},
			&cli.DurationFlag{Name: "wait-for-database", EnvVars: env("wait-for-database"), Value: migrate.DefaultWait, Usage: "how long to wait for the database to accept connections"},
			&cli.DurationFlag{Name: "timeout", EnvVars: env("timeout"), Value: migrate.DefaultTimeout, Usage: "deadline for waiting for the lock and migrating; the command gets SIGTERM at it (0: none)"},
			&cli.DurationFlag{Name: "grace-period", EnvVars: env("grace-period"), Value: migrate.DefaultGrace, Usage: "how long the command has after SIGTERM/SIGINT before it is killed (SQL mode: how long a cancelled statement has to end)"},
			&cli.DurationFlag{Name: "lock-check-interval", EnvVars: env("lock-check-interval"), Value: dblock.DefaultCheckInterval, Usage: "how often the held lock is checked (its database sessions pinged); if it was lost, the migration is stopped as on SIGTERM and migrate exits 1"},
			&cli.StringFlag{Name: "sql-dir", EnvVars: env("sql-dir"), Usage: "apply the pending NNNN_name.up.sql files of this folder instead of running a command"},
			migrationsTableFlag(),
			&cli.BoolFlag{Name: "dry-run", EnvVars: env("dry-run"), Usage: "wait for the database and print what would run (the command, or the pending files), without locking or migrating"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: env("outputs-dir"), Usage: "write Argo outputs here: outcome, applied (number of files applied; \"unknown\" in command mode), duration"},
		},
		Outputs: migrate.Outputs,
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return migrate.Run(ctx, migrate.Config{DatabaseURL: c.String("database-url"), App: c.String("app"), LockKey: c.String("lock-key"),
				Lock: c.String("lock"), WaitForDatabase: c.Duration("wait-for-database"), Timeout: c.Duration("timeout"),
				GracePeriod: c.Duration("grace-period"), LockCheckInterval: c.Duration("lock-check-interval"), SQLDir: c.String("sql-dir"),
				MigrationsTable: c.String("migrations-table"), DryRun: c.Bool("dry-run"), Command: c.Args().Slice(),
				Log: rt.Log, Stdout: rt.Stdout, Stderr: rt.Stderr, Secret: rt.Redactor.Add})
		},
		Commands: []stepcli.Command{{
			Name: "lint", Usage: migrate.LintUsage, UsageText: migrate.LintUsageText, Description: migrate.LintDescription(),
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "sql-dir", EnvVars: env("sql-dir"), Required: true, Usage: "the folder of NNNN_name.up.sql files"},
				databaseURLFlag("read the pending files from this database's --migrations-table (read only)"),
				migrationsTableFlag(),
				&cli.StringFlag{Name: "dialect", EnvVars: env("dialect"), Usage: "the SQL the files are written in: postgres or mysql (default: the --database-url's, else postgres)"},
				&cli.StringFlag{Name: "since", EnvVars: env("since"), Usage: "the version already applied (e.g. 0041 or 0041_add_users.up.sql): lint only later files (default: ask the database, else all)"},
			},
			Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
				return migrate.Lint(ctx, migrate.LintConfig{Dir: c.String("sql-dir"), Dialect: c.String("dialect"), Since: c.String("since"),
					DatabaseURL: c.String("database-url"), MigrationsTable: c.String("migrations-table"),
					Stdout: rt.Stdout, Log: rt.Log, Secret: rt.Redactor.Add})
			},
		}},
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
