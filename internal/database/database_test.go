package database_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
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
		{"mysql://app:" + secret + "@db.internal/publisher", database.MySQL, "mysql://app@db.internal:3306/publisher", ""},
		{"mariadb://app:" + secret + "@[::1]:3307/publisher?tls=false", database.MySQL, "mysql://app@[::1]:3307/publisher", ""},
		{"mysql://app:" + secret + "@db.internal:3306/", "", "", "names no database"},
		{"redis://app:" + secret + "@cache/0", "", "", `scheme "redis" is not supported`},
		{"postgres://app:" + secret + "@db:port/x", "", "", "not a valid URL"},
		{"postgres:///frontend", "", "", "has no host"},
		{"postgres://app:" + secret + "@db/x?sslmode=bogus", "", "", "sslmode"},
		{"", "", "", "empty"},
	} {
		t.Run(strings.ReplaceAll(tc.url, secret, "pw"), func(t *testing.T) {
			got, err := database.Parse(tc.url)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.NotContains(t, err.Error(), secret)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dialect, got.Dialect)
			assert.Equal(t, tc.str, got.String())
			assert.NotContains(t, got.String(), secret)
			if strings.Contains(tc.url, secret) {
				assert.Equal(t, secret, got.Password)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "postgres://app:***@db/x", database.Redact("postgres://app:"+secret+"@db/x"))
	assert.Equal(t, "postgres://app@db/x", database.Redact("postgres://app@db/x"))
	assert.Equal(t, "(unparseable URL)", database.Redact("postgres://app:"+secret+"@db:port/x"))
}

func TestWaitUp(t *testing.T) {
	for _, raw := range []string{
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"mysql://root@127.0.0.1:3306/test",
	} {
		tg, err := database.Parse(raw)
		require.NoError(t, err)
		db, err := tg.Open()
		require.NoError(t, err)
		defer db.Close()
		require.NoError(t, database.Wait(context.Background(), tg, db, 10*time.Second, slog.New(slog.DiscardHandler)))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"postgres://app:" + secret + "@db:5432/x?sslmode=disable",
		"mysql://app:" + secret + "@db/x",
		"mysql://app:" + secret + "@tcp(db:3306)/x",
		"postgres://:" + secret + "@/x",
		"postgres://app:" + secret + "@db/x?connect_timeout=abc",
		"%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := database.Parse(raw)
		if err != nil {
			if tg.Password != "" {
				t.Fatal("password set on a failed parse")
			}
			return
		}
		if tg.Password != "" && len(tg.Password) > 3 && strings.Contains(tg.String(), tg.Password) {
			t.Fatalf("String() %q shows the password", tg.String())
		}
	})
}
