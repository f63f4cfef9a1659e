package migrate

import (
	"fmt"
	"strings"

	"github.com/slipway-deploy/slipway/internal/sqllint"
)

// The step's --help, next to the behaviour it describes.
const (
	Usage     = "run database migrations under a lock, with a deadline"
	UsageText = `migrate --database-url URL [flags] -- COMMAND [ARGS...]
migrate --database-url URL --sql-dir DIR [flags]
migrate lint --sql-dir DIR [--since VERSION]`
	Description = `Waits for the database, takes a lock on it (PostgreSQL pg_advisory_lock, MySQL/MariaDB
GET_LOCK) so that migrations of one app never run at once, then either runs COMMAND
(its SIGTERM/SIGINT forwarded, killed after --grace-period, stopped at --timeout) or
applies the pending NNNN_name.up.sql files of --sql-dir (the running statement is
cancelled at --timeout or SIGTERM). The lock is released whatever happens. If the lock
is lost while migrating (its database session dropped), the migration is stopped the
same way and migrate exits 1. Exit 0 done, 1 failed (a retry may help), 2 invalid flags
or URL, or a schema left dirty by a failed file.`

	LintUsage     = "flag pending SQL migrations that break the release still running"
	LintUsageText = "migrate lint --sql-dir DIR [--since VERSION | --database-url URL] [--dialect postgres|mysql]"
)

// LintDescription is `migrate lint --help`'s, with the rules sqllint has.
func LintDescription() string {
	return fmt.Sprintf(`Parses each pending NNNN_name.up.sql (PostgreSQL with PostgreSQL's own parser, MySQL and
MariaDB with Vitess's) and flags statements the
previous release's code cannot live with while they apply. Each finding names the file,
line, statement and a safer (expand/contract) pattern. A "-- slipway:allow <rule>"
comment on the statement accepts it. Findings exit 1.

Pending means: above --since; else, with a --database-url (or DATABASE_URL), above the
version recorded in --migrations-table (read only); else every file. Tables created by the
linted files themselves are new, so changing them is fine. create-index-not-concurrently
is PostgreSQL's (InnoDB builds secondary indexes online).

Rules: %s`, strings.Join(sqllint.Rules(), ", "))
}
