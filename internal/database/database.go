// Package database turns a database URL (postgres://, mysql://) into an open
// database/sql handle, and waits for the server to accept connections. The
// URL's password never appears in anything this package returns: errors
// never quote the URL, Target.String leaves the password out, and Secrets
// finds every password a URL (or a string that failed to parse as one)
// holds, for the redactor.
package database

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/slipway-deploy/slipway/internal/oneline"
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
	// Password is the URL's password; register Secrets with the redactor.
	Password string

	pg    *pgx.ConnConfig
	mysql *mysql.Config
}

// Secrets are the passwords the target connects with, wherever the driver
// found them (the URL, PGPASSWORD, a password file, sslpassword).
func (t Target) Secrets() []string {
	out := []string{t.Password}
	if t.pg != nil {
		out = append(out, t.pg.Password, t.pg.RuntimeParams["sslpassword"])
	}
	if t.mysql != nil {
		out = append(out, t.mysql.Passwd)
	}
	return nonEmpty(out)
}

// The forms of database address that are not a URL, recognised only to
// say how to write them as one.
var (
	mysqlDSN    = regexp.MustCompile(`@(tcp|tcp6|unix)\(`)
	keywordForm = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|dbname|user|password|port|sslmode)\s*=`)
	schemeForm  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,19}$`)
)

// Parse parses a postgres:// (or postgresql://) or mysql:// (or mariadb://)
// URL. Errors say what is wrong without quoting the input, which may hold a
// password in a place this parser did not understand.
func Parse(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Target{}, errors.New("database URL is empty")
	}
	scheme, _, found := strings.Cut(raw, "://")
	switch {
	case found && schemeForm.MatchString(scheme):
	case mysqlDSN.MatchString(raw):
		return Target{}, errors.New("database URL is in the Go MySQL driver's DSN form (user:pass@tcp(host)/db): write it as mysql://user:pass@host:3306/db")
	case keywordForm.MatchString(raw):
		return Target{}, errors.New("database URL is a keyword/value string (host=... password=...): write it as postgres://user:pass@host:5432/db")
	default:
		return Target{}, errors.New("database URL must look like postgres://user:pass@host:5432/db or mysql://user:pass@host:3306/db")
	}
	var dialect Dialect
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		dialect = Postgres
	case "mysql", "mariadb":
		dialect = MySQL
	default:
		return Target{}, fmt.Errorf("database URL: scheme %q is not supported (use postgres:// or mysql://)", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, and its reason may quote a piece
		// of the password (an invalid escape, say): say less.
		if mysqlDSN.MatchString(raw) {
			return Target{}, errors.New("database URL is in the Go MySQL driver's DSN form (user:pass@tcp(host)/db): write it as mysql://user:pass@host:3306/db")
		}
		return Target{}, errors.New("database URL is not a valid URL (percent-encode @ : / ? # % in the user name and password)")
	}
	t := Target{Dialect: dialect}
	if u.User != nil {
		t.User = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	if u.Host == "" {
		return Target{}, errors.New("database URL has no host")
	}
	t.Database = strings.TrimPrefix(u.Path, "/")
	switch dialect {
	case Postgres:
		// pgx wants the scheme in lower case, as url.Parse gives it
		cfg, err := pgx.ParseConfig(strings.ToLower(scheme) + raw[len(scheme):])
		if err != nil {
			return Target{}, fmt.Errorf("database URL: %s", scrub(pgxReason(err), inputValues(raw)...))
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
	case MySQL:
		if t.Database == "" {
			return Target{}, errors.New("database URL names no database (mysql://user:pass@host:3306/DATABASE)")
		}
		cfg, err := mysqlConfig(u, t)
		if err != nil {
			return Target{}, fmt.Errorf("database URL: %s", scrub(err.Error(), inputValues(raw)...))
		}
		t.mysql = cfg
		t.Host = cfg.Addr
	}
	return t, nil
}

// mysqlConfig builds the driver's configuration. The query parameters go
// through the driver's own DSN parser, so that its options (tls, timeout,
// readTimeout, charset, ...) configure the driver and only the rest become
// session variables (SET name = value on each connection). tls-ca=PATH is
// ours: TLS verified against that CA.
func mysqlConfig(u *url.URL, t Target) (*mysql.Config, error) {
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "passwd") {
			// as a session variable it would change the user's password
			return nil, errors.New("put the password in the user info (mysql://user:pass@host/db), not in a parameter")
		}
	}
	caFile := q.Get("tls-ca")
	q.Del("tls-ca")
	base := mysql.NewConfig()
	base.User, base.Passwd, base.Net, base.DBName = t.User, t.Password, "tcp", t.Database
	base.Addr = u.Host
	if u.Port() == "" {
		base.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	dsn := base.FormatDSN()
	if params := q.Encode(); params != "" {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + params
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.User != base.User || cfg.Passwd != base.Passwd || cfg.Addr != base.Addr || cfg.DBName != base.DBName {
		return nil, errors.New("the user name, password, host or database cannot be passed to the MySQL driver as written")
	}
	// golang-migrate runs a whole .up.sql file in one Exec
	cfg.MultiStatements = true
	// the driver's own log lines ("packets.go:58 unexpected EOF") would
	// bypass the step's logger and redactor; its errors are returned anyway
	cfg.Logger = mysql.Logger(stdlog.New(io.Discard, "", 0))
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls-ca %s: no PEM certificate in it", caFile)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return cfg, nil
}

// pgxReason is what pgx says is wrong, without the connection string it
// quotes first ("cannot parse `...`: reason").
func pgxReason(err error) string {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if i := strings.Index(msg, "`: "); i >= 0 {
			return msg[i+3:]
		}
		return "cannot parse it"
	}
	return msg
}

// Secrets returns every password raw holds, in each form the drivers
// accept: a URL's or the MySQL DSN's user info (also when the URL does not
// parse), a password= or sslpassword= parameter, and a keyword/value
// string's password='...'. Register them with the redactor before anything
// can print raw.
func Secrets(raw string) []string {
	var out []string
	rest := raw
	if i := strings.Index(raw, "://"); i >= 0 {
		rest = raw[i+3:]
	} else if r, ok := strings.CutPrefix(raw, "//"); ok {
		rest = r
	}
	// user info: user:password@, where the password may itself hold
	// unescaped @ (so each @ is a candidate end) but the user holds none
	// of / ? # @
	if colon := strings.IndexByte(rest, ':'); colon > 0 && !strings.ContainsAny(rest[:colon], "/?#@ ") {
		for i := colon + 1; i < len(rest); i++ {
			if rest[i] == '@' {
				out = append(out, rest[colon+1:i])
			}
		}
	}
	for _, m := range paramPassword.FindAllStringSubmatch(raw, -1) {
		out = append(out, m[1])
	}
	for _, m := range keywordPassword.FindAllStringSubmatch(raw, -1) {
		out = append(out, strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[1]), m[2])
	}
	// the escaped and unescaped spellings of each
	for _, s := range out {
		if un, err := url.QueryUnescape(s); err == nil && un != s {
			out = append(out, un)
		}
		if un, err := url.PathUnescape(s); err == nil && un != s {
			out = append(out, un)
		}
	}
	return nonEmpty(out)
}

var (
	// ?password=... or &sslpassword=... in a URL's query
	paramPassword = regexp.MustCompile(`(?i)[?&](?:ssl)?passw(?:or)?d=([^&#]*)`)
	// password=value or password='quoted value' in a keyword/value string
	keywordPassword = regexp.MustCompile(`(?i)(?:^|\s)(?:ssl)?password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']\S*))`)
)

// inputValues are the pieces of raw a driver's message must not quote: its
// passwords, its parameter values and its fragment. (Parameter names and
// fixed words stay, so the message still says what is wrong.)
func inputValues(raw string) []string {
	out := Secrets(raw)
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		out = append(out, raw[i:], raw[i+1:])
	}
	// drivers split the query their own ways (one keeps the fragment in
	// it): take every piece either way
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		for _, kv := range strings.FieldsFunc(raw[i+1:], func(r rune) bool { return r == '&' || r == '#' }) {
			_, v, _ := strings.Cut(kv, "=")
			out = append(out, kv, v)
			if un, err := url.QueryUnescape(v); err == nil {
				out = append(out, un)
			}
		}
	}
	var long []string
	for _, v := range out {
		// a short value would mask words of the message itself
		if len(strings.TrimSpace(v)) >= 3 {
			long = append(long, v)
		}
	}
	return long
}

func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
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
			return nil, fmt.Errorf("database %s: %s", t, scrub(err.Error(), t.Secrets()...))
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
			last = oneline.Fold(scrub(err.Error(), t.Secrets()...))
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

// scrub masks passwords (or other pieces of input) in a driver message, in
// case a driver echoes one; the longest first, so none is left in part.
func scrub(msg string, secrets ...string) string {
	secrets = slices.Clone(secrets)
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, p := range secrets {
		if strings.TrimSpace(p) != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
	}
	return msg
}
