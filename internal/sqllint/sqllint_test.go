package sqllint_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/sqllint"
)

func rules(fs []sqllint.Finding) []string {
	var r []string
	for _, f := range fs {
		r = append(r, f.Rule)
	}
	return r
}

// ruleCase is one rule's positive case, a safe counterpart, and the
// positive case accepted by an allow comment.
type ruleCase struct {
	rule      string
	positive  string
	safe      string
	allowedBy string
}

func (tc ruleCase) run(t *testing.T, d sqllint.Dialect) {
	t.Run(tc.rule, func(t *testing.T) {
		got := sqllint.Lint(d, []sqllint.Source{{Name: "0002_x.up.sql", SQL: tc.positive}})
		require.Equal(t, []string{tc.rule}, rules(got), "positive: %s", tc.positive)
		assert.Equal(t, "0002_x.up.sql", got[0].File)
		assert.Equal(t, 1, got[0].Line)
		assert.Equal(t, strings.TrimSuffix(tc.positive, ";"), got[0].Statement)
		assert.Contains(t, got[0].String(), "safer: "+sqllint.Advice[tc.rule])

		assert.Empty(t, sqllint.Lint(d, []sqllint.Source{{Name: "s.sql", SQL: tc.safe}}), "safe: %s", tc.safe)
		assert.Empty(t, sqllint.Lint(d, []sqllint.Source{{Name: "a.sql", SQL: tc.allowedBy}}), "allowed: %s", tc.allowedBy)
	})
}

func TestRules(t *testing.T) {
	for _, tc := range []ruleCase{
		{sqllint.DropTable,
			"DROP TABLE users;",
			"DROP VIEW users_view;",
			"-- slipway:allow drop-table\nDROP TABLE users;"},
		{sqllint.DropColumn,
			"ALTER TABLE users DROP COLUMN email;",
			"ALTER TABLE users DROP CONSTRAINT users_email_key;",
			"ALTER TABLE users DROP COLUMN email; -- slipway:allow drop-column"},
		{sqllint.RenameTable,
			"ALTER TABLE users RENAME TO people;",
			"ALTER INDEX users_email RENAME TO users_email_idx;",
			"/* slipway:allow rename-table */ ALTER TABLE users RENAME TO people;"},
		{sqllint.RenameColumn,
			"ALTER TABLE users RENAME COLUMN email TO mail;",
			"ALTER TABLE users ADD COLUMN mail text;",
			"ALTER TABLE users\n  -- slipway:allow rename-column (nothing reads it yet)\n  RENAME COLUMN email TO mail;"},
		{sqllint.AlterColumnType,
			"ALTER TABLE users ALTER COLUMN age TYPE bigint;",
			"ALTER TABLE users ADD COLUMN age_big bigint;",
			"-- slipway:allow alter-column-type, drop-default\nALTER TABLE users ALTER COLUMN age TYPE bigint;"},
		{sqllint.AddColumnNotNull,
			"ALTER TABLE users ADD COLUMN role text NOT NULL;",
			"ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user';",
			"-- slipway:allow add-column-not-null\nALTER TABLE users ADD COLUMN role text NOT NULL;"},
		{sqllint.AddColumnNotNull,
			"ALTER TABLE users ADD COLUMN id2 integer PRIMARY KEY;",
			"ALTER TABLE users ADD COLUMN id2 integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY;",
			"-- slipway:allow add-column-not-null\nALTER TABLE users ADD COLUMN id2 integer PRIMARY KEY;"},
		{sqllint.DropDefault,
			"ALTER TABLE users ALTER COLUMN role DROP DEFAULT;",
			"ALTER TABLE users ALTER COLUMN role SET DEFAULT 'member';",
			"ALTER TABLE users ALTER COLUMN role DROP DEFAULT; -- slipway:allow drop-default"},
		{sqllint.IndexNotConcurrent,
			"CREATE INDEX users_email ON users (email);",
			"CREATE INDEX CONCURRENTLY users_email ON users (email);",
			"-- slipway:allow create-index-not-concurrently\nCREATE UNIQUE INDEX users_email ON users (email);"},
		{sqllint.IndexNotConcurrent,
			"CREATE INDEX users_email ON public.users (email);",
			"CREATE TABLE things (id int, name text);\nCREATE INDEX things_name ON things (name);",
			"CREATE INDEX users_email ON users (email); /* slipway:allow create-index-not-concurrently */"},
	} {
		tc.run(t, sqllint.Postgres)
	}
}

func TestAllowCommentIsPerStatementAndPerRule(t *testing.T) {
	sql := `-- slipway:allow drop-column
ALTER TABLE users DROP COLUMN a;

ALTER TABLE users DROP COLUMN b;
ALTER TABLE users RENAME COLUMN c TO d; -- slipway:allow drop-column
DROP TABLE old_things;
`
	got := sqllint.Lint(sqllint.Postgres, []sqllint.Source{{Name: "0003_x.up.sql", SQL: sql}})
	require.Len(t, got, 3)
	assert.Equal(t, sqllint.DropColumn, got[0].Rule)
	assert.Equal(t, 4, got[0].Line, "b's finding names b's line")
	assert.Contains(t, got[0].Detail, "users.b")
	assert.Equal(t, sqllint.RenameColumn, got[1].Rule, "an allow for another rule does not help")
	assert.Equal(t, 5, got[1].Line)
	assert.Equal(t, sqllint.DropTable, got[2].Rule, "the trailing allow of line 5 is not line 6's")
	assert.Equal(t, 6, got[2].Line)
}

func TestTablesCreatedInPendingFilesAreNew(t *testing.T) {
	got := sqllint.Lint(sqllint.Postgres, []sqllint.Source{
		{Name: "0004_a.up.sql", SQL: "CREATE TABLE drafts (id bigint, body text);"},
		{Name: "0005_b.up.sql", SQL: "CREATE INDEX drafts_body ON drafts (body);\nALTER TABLE drafts ADD COLUMN state text NOT NULL;\nCREATE INDEX users_name ON users (name);"},
	})
	require.Equal(t, []string{sqllint.IndexNotConcurrent}, rules(got))
	assert.Equal(t, "0005_b.up.sql", got[0].File)
	assert.Equal(t, 3, got[0].Line)
}

func TestParseErrorIsAFinding(t *testing.T) {
	got := sqllint.Lint(sqllint.Postgres, []sqllint.Source{{Name: "0006_bad.up.sql", SQL: "SELECT 1;\n\nALTER TABLE users DROPP COLUMN x;"}})
	require.Len(t, got, 1)
	assert.Equal(t, sqllint.ParseError, got[0].Rule)
	assert.Equal(t, 3, got[0].Line)
	assert.Contains(t, got[0].Detail, "syntax error")
	// a parse error cannot be allowed away
	got = sqllint.Lint(sqllint.Postgres, []sqllint.Source{{Name: "x.sql", SQL: "-- slipway:allow parse-error\nDROPP TABLE x;"}})
	assert.Equal(t, []string{sqllint.ParseError}, rules(got))
}

func TestMySQLRules(t *testing.T) {
	for _, tc := range []ruleCase{
		{sqllint.DropTable,
			"DROP TABLE `users`;",
			"DROP TEMPORARY TABLE scratch;",
			"# slipway:allow drop-table\nDROP TABLE users;"},
		{sqllint.DropColumn,
			"ALTER TABLE users DROP COLUMN email;",
			"ALTER TABLE users DROP INDEX users_email;",
			"ALTER TABLE users DROP COLUMN email; -- slipway:allow drop-column"},
		{sqllint.RenameTable,
			"RENAME TABLE users TO people;",
			"CREATE TABLE people LIKE users;",
			"/* slipway:allow rename-table */ RENAME TABLE users TO people;"},
		{sqllint.RenameTable,
			"ALTER TABLE users RENAME TO people;",
			"ALTER TABLE users COMMENT 'people';",
			"-- slipway:allow rename-table\nALTER TABLE users RENAME TO people;"},
		{sqllint.RenameColumn,
			"ALTER TABLE users RENAME COLUMN email TO mail;",
			"ALTER TABLE users ADD COLUMN mail varchar(255);",
			"ALTER TABLE users RENAME COLUMN email TO mail; -- slipway:allow rename-column"},
		{sqllint.AlterColumnType,
			"ALTER TABLE users MODIFY COLUMN age bigint;",
			"ALTER TABLE users ADD COLUMN age_big bigint;",
			"-- slipway:allow alter-column-type\nALTER TABLE users MODIFY age bigint;"},
		{sqllint.AddColumnNotNull,
			"ALTER TABLE users ADD COLUMN role varchar(20) NOT NULL;",
			"ALTER TABLE users ADD COLUMN role varchar(20) NOT NULL DEFAULT 'user';",
			"-- slipway:allow add-column-not-null\nALTER TABLE users ADD COLUMN role varchar(20) NOT NULL;"},
		{sqllint.DropDefault,
			"ALTER TABLE users ALTER COLUMN role DROP DEFAULT;",
			"ALTER TABLE users ALTER COLUMN role SET DEFAULT 'member';",
			"ALTER TABLE users ALTER COLUMN role DROP DEFAULT; # slipway:allow drop-default"},
	} {
		tc.run(t, sqllint.MySQL)
	}
}

func TestMySQLFiles(t *testing.T) {
	sql := "CREATE TABLE drafts (id bigint, body text);\n" +
		"ALTER TABLE drafts DROP COLUMN body;\n" +
		"CREATE INDEX users_name ON users (name); -- InnoDB builds it online\n" +
		"INSERT INTO notes VALUES ('a;b');\n" +
		"ALTER TABLE users CHANGE email mail varchar(255);\n"
	got := sqllint.Lint(sqllint.MySQL, []sqllint.Source{{Name: "0007.up.sql", SQL: sql}})
	require.Equal(t, []string{sqllint.RenameColumn, sqllint.AlterColumnType}, rules(got))
	assert.Equal(t, 5, got[0].Line, "the ';' inside the string does not end a statement")

	got = sqllint.Lint(sqllint.MySQL, []sqllint.Source{{Name: "0008.up.sql", SQL: "SELECT 1;\nALTER TABLE users DROPP COLUMN x;"}})
	require.Equal(t, []string{sqllint.ParseError}, rules(got))
	assert.Equal(t, 2, got[0].Line)
}

func FuzzLint(f *testing.F) {
	for _, s := range []string{
		"DROP TABLE users;",
		"ALTER TABLE users DROP COLUMN email; -- slipway:allow drop-column",
		"CREATE TABLE t (id int); CREATE INDEX i ON t (id);",
		"ALTER TABLE users ADD COLUMN role text NOT NULL;",
		"/* unterminated",
		"SELECT 'unterminated",
		"ALTER TABLE users RENAME COLUMN a TO b;\n-- slipway:allow",
		"DO $$ BEGIN RAISE NOTICE 'x'; END $$;",
		";;;",
		"",
		"\xff\xfe",
		"ALTER TABLE `users` CHANGE `a` `b` int NOT NULL; # slipway:allow rename-column",
		"/*!50001 DROP TABLE x */;",
		"SELECT \"unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		lines := strings.Count(sql, "\n") + 1
		for _, d := range []sqllint.Dialect{sqllint.Postgres, sqllint.MySQL} {
			for _, fd := range sqllint.Lint(d, []sqllint.Source{{Name: "f.sql", SQL: sql}}) {
				if fd.Line < 1 || fd.Line > lines {
					t.Fatalf("%s: finding %s on line %d of %d", d, fd.Rule, fd.Line, lines)
				}
				if _, ok := sqllint.Advice[fd.Rule]; !ok {
					t.Fatalf("%s: unknown rule %q", d, fd.Rule)
				}
			}
		}
	})
}
