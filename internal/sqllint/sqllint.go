// Package sqllint flags PostgreSQL migration statements that break the
// release still running while they apply: the platform's rule that
// migrations are forward and backward compatible by one version. It parses
// with pg_query_go (PostgreSQL's own parser, via libpg_query), so a
// statement is judged by its parse tree, not by a pattern over its text.
//
// A `-- slipway:allow <rule>` comment in or before a statement, or after it
// on the line where it ends, accepts that statement for that rule.
package sqllint

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
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
	ParseError:         "fix the SQL: the PostgreSQL parser refused it",
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

// Lint checks the files in order. A table created by an earlier statement
// of these files is new: the previous release does not use it, so changing
// it (indexing it without CONCURRENTLY, say) breaks nothing.
func Lint(files []Source) []Finding {
	l := linter{created: map[string]bool{}}
	var out []Finding
	for _, f := range files {
		out = append(out, l.file(f)...)
	}
	return out
}

type linter struct {
	created map[string]bool
}

type comment struct {
	start, end int
	text       string
}

var allowRe = regexp.MustCompile(`slipway:allow\s+([a-z0-9_,\s-]+)`)

func (l *linter) file(src Source) []Finding {
	sql := src.SQL
	lines := newLineIndex(sql)
	tree, err := pg.Parse(sql)
	if err != nil {
		pos := 0
		var pe *pgparser.Error
		if errors.As(err, &pe) && pe.Cursorpos > 0 {
			pos = pe.Cursorpos - 1
		}
		return []Finding{{File: src.Name, Line: lines.line(pos), Rule: ParseError, Detail: err.Error(), Statement: excerpt(sql, pos)}}
	}
	var comments []comment
	var semicolons []int
	if scan, err := pg.Scan(sql); err == nil {
		for _, t := range scan.Tokens {
			switch t.Token {
			case pg.Token_SQL_COMMENT, pg.Token_C_COMMENT:
				comments = append(comments, comment{int(t.Start), int(t.End), sql[t.Start:t.End]})
			case pg.Token_ASCII_59: // ';'
				semicolons = append(semicolons, int(t.Start))
			}
		}
	}
	var out []Finding
	for _, raw := range tree.Stmts {
		span := stmtSpan(sql, raw, comments)
		found := l.check(raw.Stmt)
		if len(found) == 0 {
			continue
		}
		allowed := allowedRules(sql, span, comments, semicolons, lines)
		for _, f := range found {
			if allowed[f.Rule] {
				continue
			}
			f.File = src.Name
			f.Line = lines.line(span.first)
			f.Statement = oneLine(sql[span.first:span.end])
			out = append(out, f)
		}
	}
	return out
}

// span is a statement's place in the file: from the end of the previous
// statement (start, so leading comments are inside), its first token
// (first), to its end (end, before the semicolon).
type span struct{ start, first, end int }

func stmtSpan(sql string, raw *pg.RawStmt, comments []comment) span {
	start := int(raw.StmtLocation)
	end := len(sql)
	if raw.StmtLen > 0 {
		end = min(start+int(raw.StmtLen), len(sql))
	}
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
				first = min(c.end, end)
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

// check returns the findings for one statement (File, Line, Statement are
// filled in by the caller) and records tables it creates.
func (l *linter) check(n *pg.Node) []Finding {
	var out []Finding
	add := func(rule, detail string) { out = append(out, Finding{Rule: rule, Detail: detail}) }
	switch {
	case n.GetCreateStmt() != nil:
		l.created[relName(n.GetCreateStmt().GetRelation())] = true
	case n.GetCreateTableAsStmt() != nil:
		if into := n.GetCreateTableAsStmt().GetInto(); into != nil {
			l.created[relName(into.GetRel())] = true
		}
	case n.GetDropStmt() != nil:
		d := n.GetDropStmt()
		if d.GetRemoveType() != pg.ObjectType_OBJECT_TABLE {
			break
		}
		for _, obj := range d.GetObjects() {
			name := listName(obj)
			if !l.created[name] {
				add(DropTable, "drops table "+name)
			}
		}
	case n.GetRenameStmt() != nil:
		r := n.GetRenameStmt()
		table := relName(r.GetRelation())
		if l.created[table] {
			break
		}
		switch r.GetRenameType() {
		case pg.ObjectType_OBJECT_TABLE:
			add(RenameTable, fmt.Sprintf("renames table %s to %s", table, r.GetNewname()))
		case pg.ObjectType_OBJECT_COLUMN:
			add(RenameColumn, fmt.Sprintf("renames column %s.%s to %s", table, r.GetSubname(), r.GetNewname()))
		}
	case n.GetAlterTableStmt() != nil:
		a := n.GetAlterTableStmt()
		table := relName(a.GetRelation())
		if a.GetObjtype() != pg.ObjectType_OBJECT_TABLE || l.created[table] {
			break
		}
		for _, c := range a.GetCmds() {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.GetSubtype() {
			case pg.AlterTableType_AT_DropColumn:
				add(DropColumn, fmt.Sprintf("drops column %s.%s", table, cmd.GetName()))
			case pg.AlterTableType_AT_AlterColumnType:
				add(AlterColumnType, fmt.Sprintf("changes the type of column %s.%s", table, cmd.GetName()))
			case pg.AlterTableType_AT_ColumnDefault:
				if cmd.GetDef() == nil {
					add(DropDefault, fmt.Sprintf("drops the default of column %s.%s", table, cmd.GetName()))
				}
			case pg.AlterTableType_AT_AddColumn:
				if col := cmd.GetDef().GetColumnDef(); col != nil && notNullWithoutDefault(col) {
					add(AddColumnNotNull, fmt.Sprintf("adds column %s.%s NOT NULL without a default", table, col.GetColname()))
				}
			}
		}
	case n.GetIndexStmt() != nil:
		ix := n.GetIndexStmt()
		table := relName(ix.GetRelation())
		if !ix.GetConcurrent() && !l.created[table] {
			add(IndexNotConcurrent, "indexes existing table "+table+" without CONCURRENTLY")
		}
	}
	return out
}

func notNullWithoutDefault(col *pg.ColumnDef) bool {
	notNull := col.GetIsNotNull()
	filled := col.GetRawDefault() != nil || col.GetIdentity() != "" || col.GetGenerated() != ""
	for _, c := range col.GetConstraints() {
		switch c.GetConstraint().GetContype() {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT, pg.ConstrType_CONSTR_IDENTITY, pg.ConstrType_CONSTR_GENERATED:
			filled = true
		}
	}
	return notNull && !filled
}

func relName(r *pg.RangeVar) string {
	if r == nil {
		return ""
	}
	if r.GetSchemaname() != "" && r.GetSchemaname() != "public" {
		return r.GetSchemaname() + "." + r.GetRelname()
	}
	return r.GetRelname()
}

// listName reads a DROP TABLE object: a list of name parts.
func listName(n *pg.Node) string {
	var parts []string
	for _, p := range n.GetList().GetItems() {
		parts = append(parts, p.GetString_().GetSval())
	}
	if len(parts) == 2 && parts[0] == "public" {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
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

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
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
	return oneLine(sql[start:end])
}
