package migrate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/sqllint"
)

// LintConfig is a `migrate lint` run: its flags, and where it prints.
type LintConfig struct {
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
	// Stdout gets one finding a line.
	Stdout io.Writer
	Log    *slog.Logger
	// Secret is given the database URL's passwords, to mask them in all
	// output (nil: not masked).
	Secret func(...string)
}

// LintResult is what lint found in the files it checked.
type LintResult struct {
	Files    int
	Findings []sqllint.Finding
}

// Report is the outcome: ChecksFailed (exit 1) when there are findings,
// else Passed.
func (r LintResult) Report() outcome.Result {
	if len(r.Findings) > 0 {
		return outcome.Result{Outcome: outcome.ChecksFailed, Reason: fmt.Sprintf("%d finding(s) in %d file(s): these statements break "+
			"the release still running while they apply (accept one with -- slipway:allow <rule>)", len(r.Findings), r.Files)}
	}
	return outcome.Result{Outcome: outcome.Passed, Reason: fmt.Sprintf("%d file(s) checked, no findings", r.Files)}
}

// Lint lints the pending up files and prints the findings. Pending means
// above Since, or else above the database's recorded version, or else
// every file.
func Lint(ctx context.Context, o LintConfig) (LintResult, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Secret == nil {
		o.Secret = func(...string) {}
	}
	// before anything can print them, even for an unparseable URL
	o.Secret(database.Secrets(o.DatabaseURL)...)
	files, err := ReadDir(o.Dir)
	if err != nil {
		return LintResult{}, err
	}
	var target *database.Target
	if o.DatabaseURL != "" {
		t, err := database.Parse(o.DatabaseURL)
		if err != nil {
			return LintResult{}, exitcode.AsInvalid(err)
		}
		o.Secret(t.Secrets()...)
		target = &t
	}
	dialect, err := o.dialect(target)
	if err != nil {
		return LintResult{}, err
	}
	var pending map[uint64]bool
	var after uint64
	switch {
	case o.Since != "":
		after, err = ParseVersion(o.Since)
		if err != nil {
			return LintResult{}, exitcode.Invalidf("--since: %w", err)
		}
	case target != nil:
		if pending, err = o.pendingInDatabase(ctx, *target); err != nil {
			return LintResult{}, err
		}
	}
	var srcs []sqllint.Source
	for _, f := range files {
		if f.Version <= after || (pending != nil && !pending[f.Version]) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(o.Dir, f.Name))
		if err != nil {
			return LintResult{}, exitcode.Invalidf("read %w", err)
		}
		srcs = append(srcs, sqllint.Source{Name: f.Name, SQL: string(b)})
	}
	res := LintResult{Files: len(srcs), Findings: sqllint.Lint(dialect, srcs)}
	for _, f := range res.Findings {
		if _, err := fmt.Fprintln(o.Stdout, f.String()); err != nil {
			return res, err
		}
	}
	return res, nil
}

// dialect is --dialect's, else the database URL's, else PostgreSQL.
func (o LintConfig) dialect(target *database.Target) (sqllint.Dialect, error) {
	switch o.Dialect {
	case "postgres", "postgresql":
		return sqllint.Postgres, nil
	case "mysql", "mariadb":
		return sqllint.MySQL, nil
	case "":
		if target != nil && target.Dialect == database.MySQL {
			return sqllint.MySQL, nil
		}
		return sqllint.Postgres, nil
	}
	return sqllint.Postgres, exitcode.Invalidf("--dialect %q: want postgres or mysql", o.Dialect)
}

// pendingInDatabase reads which files the database has not applied.
func (o LintConfig) pendingInDatabase(ctx context.Context, t database.Target) (map[uint64]bool, error) {
	h, err := t.Open()
	if err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	defer h.Close()
	files, err := SQL{Dir: o.Dir, Table: o.MigrationsTable, Target: t, Log: o.Log}.Pending(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("pending migrations in %s: %w", t, err)
	}
	pending := map[uint64]bool{}
	for _, f := range files {
		pending[f.Version] = true
	}
	return pending, nil
}
