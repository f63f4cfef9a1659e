package database_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
	"github.com/slipway-deploy/slipway/internal/testsupport/dbtest"
)

const secret = "Pa55-w0rd-xyz"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url     string
		dialect database.Dialect
		str     string
		wantErr string
	}{
		{"postgres://app:" + secret + "@db.internal:5433/frontend?sslmode=disable", database.Postgres, "postgres://app@db.internal:5433/frontend", ""},
		{"postgresql://app@10.0.0.1/frontend", database.Postgres, "postgres://app@10.0.0.1:5432/frontend", ""},
		{"POSTGRES://app@10.0.0.1/frontend", database.Postgres, "postgres://app@10.0.0.1:5432/frontend", ""},
		{"mysql://app:" + secret + "@db.internal/publisher", database.MySQL, "mysql://app@db.internal:3306/publisher", ""},
		{"mariadb://app:" + secret + "@[::1]:3307/publisher?tls=false", database.MySQL, "mysql://app@[::1]:3307/publisher", ""},
		{"mysql://app:" + secret + "@db/x?tls=skip-verify&timeout=5s&readTimeout=30s&lock_wait_timeout=10", database.MySQL, "mysql://app@db:3306/x", ""},
		{"mysql://app:" + secret + "@db.internal:3306/", "", "", "names no database"},
		{"redis://app:" + secret + "@cache/0", "", "", `scheme "redis" is not supported`},
		{"postgres://app:" + secret + "@db:port/x", "", "", "not a valid URL"},
		{"postgres://app:" + secret + "%zz@db/x", "", "", "not a valid URL"},
		{"postgres:///frontend", "", "", "has no host"},
		{"postgres://app:" + secret + "@db/x?sslmode=bogus", "", "", "sslmode"},
		{"", "", "", "empty"},
		// the forms the drivers accept that are not URLs: refused
		// without being quoted, with how to write them as a URL
		{"app:" + secret + "@tcp(db:3306)/x", "", "", "write it as mysql://user:pass@host:3306/db"},
		{"mysql://app:" + secret + "@tcp(db:3306)/x", "", "", "write it as mysql://user:pass@host:3306/db"},
		{"host=db user=app password=" + secret + " dbname=x", "", "", "write it as postgres://user:pass@host:5432/db"},
		{"host=db user=app password='" + secret + " x' dbname=x", "", "", "write it as postgres://user:pass@host:5432/db"},
		{secret + "@db/x", "", "", "must look like postgres://"},
		// a driver option the driver refuses; a password as a session
		// variable would change the user's password
		{"mysql://app:" + secret + "@db/x?timeout=" + secret, "", "", "database URL: time: invalid duration"},
		{"mysql://app:" + secret + "@db/x?tls=" + secret, "", "", "unknown config name"},
		{"mysql://app@db/x?password=" + secret, "", "", "put the password in the user info"},
	} {
		t.Run(strings.ReplaceAll(tc.url, secret, "pw"), func(t *testing.T) {
			got, err := database.Parse(tc.url)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.NotContains(t, err.Error(), secret)
				assert.NotContains(t, err.Error(), "Pa55", "a piece of the password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dialect, got.Dialect)
			assert.Equal(t, tc.str, got.String())
			assert.NotContains(t, got.String(), secret)
			if strings.Contains(tc.url, secret) {
				assert.Equal(t, secret, got.Password)
				assert.Contains(t, got.Secrets(), secret)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // among the secrets
	}{
		{"postgres://app:" + secret + "@db/x", secret},
		{"postgres://app:p%40ss@db/x", "p@ss"},
		{"postgres://app:p@ss/word@db:port/x", "p@ss/word"},
		{"postgres://app:" + secret + "%zz@db/x", secret + "%zz"},
		{"//app:" + secret + "@db/x", secret},
		{"app:" + secret + "@tcp(db:3306)/x", secret},
		{"mysql://app:" + secret + "@tcp(db:3306)/x?parseTime=true", secret},
		{"postgres://app@db/x?sslmode=require&password=" + secret, secret},
		{"postgres://app@db/x?sslpassword=" + secret + "&sslmode=require", secret},
		{"host=db password=" + secret + " dbname=x", secret},
		{"host=db password = '" + secret + " it\\'s' dbname=x", secret + " it's"},
		{"host=db sslpassword=" + secret, secret},
	} {
		t.Run(strings.ReplaceAll(tc.raw, secret, "pw"), func(t *testing.T) {
			assert.Contains(t, database.Secrets(tc.raw), tc.want)
		})
	}
	assert.Empty(t, database.Secrets("postgres://app@db/x?sslmode=disable"))
	assert.Empty(t, database.Secrets("postgres://app@db/x?q=a:b@c"), "a colon after the host is no password")
}

// Driver options in a MySQL URL configure the driver; the other parameters
// are session variables. On the machine's MariaDB (TLS disabled there):
// timeout and readTimeout are taken by the driver (the server would refuse
// them as variables), lock_wait_timeout is set on the session, and
// tls=skip-verify reaches the driver, which asks the server for TLS.
func TestMySQLParameters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(t *testing.T, raw string) *sql.DB {
		_, db := dbtest.Open(t, raw)
		return db
	}
	t.Run("driver options and a session variable", func(t *testing.T) {
		db := open(t, dbtest.MySQLURL+"?timeout=5s&readTimeout=30s&lock_wait_timeout=77&tls=preferred")
		var v int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT @@session.lock_wait_timeout").Scan(&v))
		assert.Equal(t, 77, v)
	})
	t.Run("tls goes to the driver", func(t *testing.T) {
		var haveSSL string
		require.NoError(t, open(t, dbtest.MySQLURL).QueryRowContext(ctx, "SELECT @@have_ssl").Scan(&haveSSL))
		if haveSSL == "YES" {
			t.Skip("this MariaDB has TLS enabled; TestMySQLTLS covers it")
		}
		err := open(t, dbtest.MySQLURL+"?tls=skip-verify").PingContext(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "TLS requested but server does not support TLS")
		assert.NotContains(t, err.Error(), "Unknown system variable")
	})
}

func TestWaitUp(t *testing.T) {
	for _, raw := range []string{dbtest.PostgresURL, dbtest.MySQLURL} {
		tg, db := dbtest.Open(t, raw)
		require.NoError(t, database.Wait(context.Background(), tg, db, 10*time.Second, slog.New(slog.DiscardHandler)))
	}
}

// FuzzParse: Parse never panics, and no error shows the password, whatever
// form the input takes and whatever the password holds. The password is
// fuzzed between two markers that appear nowhere else; a marker in an error
// is a leak.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct {
		form     uint8
		pw, rest string
	}{
		{0, "s3cret", "db:5432/x?sslmode=disable"},
		{0, "p@ss/w%rd#1", "db/x"},
		{0, "pw", "db:port/x"},
		{0, "a%zzb", "db/x"},
		{1, "s3cret", "db/x?tls=skip-verify"},
		{1, "pw", "db/x?timeout=abc"},
		{2, "s3cret", "db:3306"},
		{3, "s3 cret", "db"},
		{3, "it's", "db"},
		{4, "s3cret", "db/x"},
		{5, "", "%zz"},
		{5, "", "postgres://:pw@/x"},
		{5, "", "host=x password='a b"},
	} {
		f.Add(seed.form, seed.pw, seed.rest)
	}
	const lead, tail = "Qv7#", "#Zk2"
	f.Fuzz(func(t *testing.T, form uint8, pw, rest string) {
		pw = lead + pw + tail
		var raw string
		switch form % 6 {
		case 0:
			raw = "postgres://app:" + pw + "@" + rest
		case 1:
			raw = "mysql://app:" + pw + "@" + rest
		case 2:
			raw = "app:" + pw + "@tcp(" + rest + ")/db"
		case 3:
			raw = "host=" + rest + " password='" + pw + "'"
		case 4:
			raw = "postgres://app@" + rest + "?password=" + pw
		default:
			raw, pw = rest, "" // anything at all: only no panic
		}
		tg, err := database.Parse(raw)
		if err != nil {
			if tg.Password != "" {
				t.Fatal("password set on a failed parse")
			}
			if pw != "" && (strings.Contains(err.Error(), lead) || strings.Contains(err.Error(), tail)) {
				t.Fatalf("error shows the password: %q", err.Error())
			}
			return
		}
		for _, s := range []string{lead, tail} {
			if pw != "" && strings.Contains(tg.String(), s) {
				t.Fatalf("String() %q shows the password", tg.String())
			}
		}
	})
}
