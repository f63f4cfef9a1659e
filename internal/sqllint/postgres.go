package sqllint

import (
	"errors"
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// postgres parses a whole file with libpg_query; the scanner gives the
// comments and semicolons.
func (l *linter) postgres(sql string) (parsed, *parseError) {
	tree, err := pg.Parse(sql)
	if err != nil {
		pos := 0
		var pe *pgparser.Error
		if errors.As(err, &pe) && pe.Cursorpos > 0 {
			pos = pe.Cursorpos - 1
		}
		return parsed{}, &parseError{pos: pos, msg: err.Error()}
	}
	var p parsed
	if scan, err := pg.Scan(sql); err == nil {
		for _, t := range scan.Tokens {
			switch t.Token {
			case pg.Token_SQL_COMMENT, pg.Token_C_COMMENT:
				p.comments = append(p.comments, comment{int(t.Start), int(t.End), sql[t.Start:t.End]})
			case pg.Token_ASCII_59: // ';'
				p.semicolons = append(p.semicolons, int(t.Start))
			}
		}
	}
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = min(start+int(raw.StmtLen), len(sql))
		}
		p.stmts = append(p.stmts, statement{span: newSpan(sql, start, end, p.comments), findings: l.check(raw.Stmt)})
	}
	return p, nil
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
