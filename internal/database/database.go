// Package database turns a database URL (postgres://, mysql://) into an open
// database/sql handle, and waits for the server to accept connections. The
// URL's password never appears in anything this package returns: Target.String
// is the URL with the password masked, and errors name the target that way.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the kind of server a URL points at.
type Dialect string

// The dialects migrate supports.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// Target is a parsed database URL.
type Target struct {
	Dialect Dialect
	// Host is host:port, for messages.
	Host string
	// Database is the database (schema, for MySQL) name.
	Database string
	// User is the user name, for messages.
	User string
	// Password is the URL's password; register it with the redactor.
	Password string

	pg    *pgx.ConnConfig
	mysql *mysql.Config
}

// Parse parses a postgres:// (or postgresql://) or mysql:// (or mariadb://)
// URL. Errors never contain the password.
func Parse(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Target{}, errors.New("database URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included: say less.
		return Target{}, errors.New("database URL is not a valid URL")
	}
	t := Target{}
	if u.User != nil {
		t.User = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	if u.Host == "" {
		return Target{}, fmt.Errorf("database URL %s has no host", Redact(raw))
	}
	t.Database = strings.TrimPrefix(u.Path, "/")
	switch u.Scheme {
	case "postgres", "postgresql":
		t.Dialect = Postgres
		cfg, err := pgx.ParseConfig(raw)
		if err != nil {
			return Target{}, fmt.Errorf("database URL %s: %s", Redact(raw), scrub(err.Error(), t.Password))
		}
		if cfg.RuntimeParams["application_name"] == "" {
			host, _ := os.Hostname()
			cfg.RuntimeParams["application_name"] = fmt.Sprintf("slipway-migrate %s pid %d", host, os.Getpid())
		}
		t.pg = cfg
		t.Host = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		if t.Database == "" {
			t.Database = cfg.Database
		}
	case "mysql", "mariadb":
		t.Dialect = MySQL
		if t.Database == "" {
			return Target{}, fmt.Errorf("database URL %s names no database", Redact(raw))
		}
		cfg := mysql.NewConfig()
		cfg.User = t.User
		cfg.Passwd = t.Password
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if u.Port() == "" {
			cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
		}
		cfg.DBName = t.Database
		// golang-migrate runs a whole .up.sql file in one Exec
		cfg.MultiStatements = true
		cfg.Params = map[string]string{}
		for k, v := range u.Query() {
			if len(v) > 0 {
				cfg.Params[k] = v[len(v)-1]
			}
		}
		t.mysql = cfg
		t.Host = cfg.Addr
	default:
		return Target{}, fmt.Errorf("database URL %s: scheme %q is not supported (use postgres:// or mysql://)", Redact(raw), u.Scheme)
	}
	return t, nil
}

// String names the target for logs and errors: dialect, user, host and
// database, never the password.
func (t Target) String() string {
	user := ""
	if t.User != "" {
		user = t.User + "@"
	}
	return fmt.Sprintf("%s://%s%s/%s", t.Dialect, user, t.Host, t.Database)
}

// Open returns a handle on the target. It does not connect.
func (t Target) Open() (*sql.DB, error) {
	switch t.Dialect {
	case Postgres:
		return stdlib.OpenDB(*t.pg), nil
	case MySQL:
		conn, err := mysql.NewConnector(t.mysql)
		if err != nil {
			return nil, fmt.Errorf("database %s: %s", t, scrub(err.Error(), t.Password))
		}
		return sql.OpenDB(conn), nil
	}
	return nil, fmt.Errorf("database %s: unknown dialect", t)
}

// Wait pings db until it answers or maxWait has passed, backing off between
// attempts (200ms, doubling, at most 5s). The error names the target and the
// last failure, without the password.
func Wait(ctx context.Context, t Target, db *sql.DB, maxWait time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(maxWait)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	backoff := 200 * time.Millisecond
	last := ""
	for attempt := 1; ; attempt++ {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		pcancel()
		if err == nil {
			if attempt > 1 {
				log.Info("database is up", "database", t.String(), "attempts", attempt)
			}
			return nil
		}
		// a ping cut short by the deadline says less than the one before
		if last == "" || (ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded)) {
			last = oneLine(scrub(err.Error(), t.Password))
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || ctx.Err() != nil {
			if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
				return fmt.Errorf("waiting for database %s: %w", t, cerr)
			}
			return fmt.Errorf("database %s did not accept connections within %s (%d attempts): %s", t, maxWait, attempt, last)
		}
		log.Info("waiting for the database", "database", t.String(), "attempt", attempt, "error", last)
		sleep := min(backoff, remaining)
		select {
		case <-ctx.Done():
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Redact returns raw with the password of its user info masked.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return strings.Replace(u.String(), ":xxx@", ":***@", 1)
		}
	}
	return u.String()
}

// scrub masks the password in a driver message, in case a driver echoes it.
func scrub(msg, password string) string {
	if password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, password, "***")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
