// Package sqllint flags migration statements that break the release still
// running while they apply: the platform's rule that migrations are forward
// and backward compatible by one version. Statements are judged by their
// parse tree, not by a pattern over their text: PostgreSQL's through
// pg_query_go (PostgreSQL's own parser, via libpg_query), MySQL's and
// MariaDB's through Vitess's MySQL parser.
//
// A `-- slipway:allow <rule>` comment in or before a statement, or after it
// on the line where it ends, accepts that statement for that rule.
package sqllint

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/slipway-deploy/slipway/internal/oneline"
)

// The rules. Their names are what an allow comment names.
const (
	DropTable          = "drop-table"
	DropColumn         = "drop-column"
	RenameTable        = "rename-table"
	RenameColumn       = "rename-column"
	AlterColumnType    = "alter-column-type"
	AddColumnNotNull   = "add-column-not-null"
	DropDefault        = "drop-default"
	IndexNotConcurrent = "create-index-not-concurrently"
	// ParseError is a statement the parser refused. It cannot be allowed.
	ParseError = "parse-error"
)

// Advice is the safer (expand/contract) pattern for each rule.
var Advice = map[string]string{
	DropTable:          "stop using the table in one release, drop it in the next (expand/contract)",
	DropColumn:         "release code that no longer reads or writes the column first (Rails: ignored_columns), drop it in a later release",
	RenameTable:        "create the new table (or a view under the new name), write to both, move readers, drop the old one in a later release",
	RenameColumn:       "add the new column, write to both and backfill, move readers, drop the old column in a later release",
	AlterColumnType:    "add a column of the new type, backfill and write to both, move readers, drop the old column in a later release",
	AddColumnNotNull:   "add the column with a DEFAULT (or nullable, backfill, then SET NOT NULL in a later release)",
	DropDefault:        "keep the default until no running release inserts without the column; drop it in a later release",
	IndexNotConcurrent: "CREATE INDEX CONCURRENTLY, alone in its own migration file (it cannot run inside a transaction), so writes are not blocked",
	ParseError:         "fix the SQL: the parser refused it",
}

// Rules lists the rule names an allow comment may use.
func Rules() []string {
	var r []string
	for k := range Advice {
		if k != ParseError {
			r = append(r, k)
		}
	}
	sort.Strings(r)
	return r
}

// Finding is one statement that breaks the previous release.
type Finding struct {
	File      string
	Line      int // 1-based line of the statement's first token
	Rule      string
	Statement string // the statement, on one line, shortened
	Detail    string // what exactly, e.g. "drops column users.email"
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s: %s\n    safer: %s", f.File, f.Line, f.Rule, f.Detail, f.Statement, Advice[f.Rule])
}

// Source is one migration file's SQL.
type Source struct {
	Name string
	SQL  string
}

// Lint checks the files, written in dialect d, in order. A table created by
// an earlier statement of these files is new: the previous release does not
// use it, so changing it (indexing it without CONCURRENTLY, say) breaks
// nothing.
func Lint(d Dialect, files []Source) []Finding {
	l := linter{dialect: d, created: map[string]bool{}}
	var out []Finding
	for _, f := range files {
		out = append(out, l.file(f)...)
	}
	return out
}

type linter struct {
	dialect Dialect
	created map[string]bool
}

// Dialect is the SQL the files are written in.
type Dialect string

// The dialects Lint reads.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql" // MySQL and MariaDB
)

// statement is one parsed statement of a file: where it is, and the
// findings for it (nil for a statement that breaks nothing).
type statement struct {
	span     span
	findings []Finding
}

// parsed is a file split into statements, with its comments and the
// positions of its statement-ending semicolons.
type parsed struct {
	stmts      []statement
	comments   []comment
	semicolons []int
}

func (l *linter) file(src Source) []Finding {
	sql := src.SQL
	lines := newLineIndex(sql)
	var p parsed
	var perr *parseError
	if l.dialect == MySQL {
		p, perr = l.mysql(sql)
	} else {
		p, perr = l.postgres(sql)
	}
	var out []Finding
	for _, st := range p.stmts {
		if len(st.findings) == 0 {
			continue
		}
		allowed := allowedRules(sql, st.span, p.comments, p.semicolons, lines)
		for _, f := range st.findings {
			if allowed[f.Rule] {
				continue
			}
			f.File = src.Name
			f.Line = lines.line(st.span.first)
			f.Statement = clip(sql[st.span.first:st.span.end])
			out = append(out, f)
		}
	}
	if perr != nil {
		out = append(out, Finding{File: src.Name, Line: lines.line(perr.pos), Rule: ParseError, Detail: perr.msg, Statement: excerpt(sql, perr.pos)})
	}
	return out
}

// parseError is where and why a parser refused a file.
type parseError struct {
	pos int
	msg string
}

type comment struct {
	start, end int
	text       string
}

var allowRe = regexp.MustCompile(`slipway:allow\s+([a-z0-9_,\s-]+)`)

// span is a statement's place in the file: from the end of the previous
// statement (start, so leading comments are inside), its first token
// (first), to its end (end, before the semicolon).
type span struct{ start, first, end int }

// newSpan is the span from start to end, its first token found by skipping
// white space and comments.
func newSpan(sql string, start, end int, comments []comment) span {
	end = min(max(end, 0), len(sql))
	start = min(max(start, 0), end)
	first := start
	for first < end {
		if c := byte(sql[first]); c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			first++
			continue
		}
		skipped := false
		for _, c := range comments {
			if c.start == first {
				first = min(max(c.end, first+1), end)
				skipped = true
				break
			}
		}
		if !skipped {
			break
		}
	}
	return span{start: start, first: first, end: end}
}

// allowedRules reads the allow comments of a statement: inside its span, or
// after its semicolon on the line where it ends.
func allowedRules(sql string, sp span, comments []comment, semicolons []int, lines lineIndex) map[string]bool {
	allowed := map[string]bool{}
	endLine := lines.line(sp.end)
	after := sp.end
	for _, s := range semicolons {
		if s >= sp.end {
			after = s
			break
		}
	}
	for _, c := range comments {
		inside := c.start >= sp.start && c.start < sp.end
		trailing := c.start > after && lines.line(c.start) == endLine && strings.TrimSpace(sql[after+1:c.start]) == ""
		if !inside && !trailing {
			continue
		}
		for _, m := range allowRe.FindAllStringSubmatch(c.text, -1) {
			for _, r := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
				allowed[r] = true
			}
		}
	}
	return allowed
}

// lineIndex turns byte offsets into 1-based line numbers.
type lineIndex []int

func newLineIndex(s string) lineIndex {
	idx := lineIndex{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

func (li lineIndex) line(pos int) int {
	return sort.Search(len(li), func(i int) bool { return li[i] > pos })
}

// clip is a statement as a finding shows it: on one line, at most 120
// characters.
func clip(s string) string {
	s = oneline.Fold(s)
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}

func excerpt(sql string, pos int) string {
	pos = min(max(pos, 0), len(sql))
	start := strings.LastIndexByte(sql[:pos], '\n') + 1
	end := strings.IndexByte(sql[pos:], '\n')
	if end < 0 {
		end = len(sql)
	} else {
		end += pos
	}
	return clip(sql[start:end])
}
