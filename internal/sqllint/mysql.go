package sqllint

import (
	"errors"
	"fmt"
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// mysqlParser is Vitess's MySQL parser, set for MySQL 8 syntax (MariaDB's
// DDL is the same for what the rules look at).
var mysqlParser = func() *sqlparser.Parser {
	p, err := sqlparser.New(sqlparser.Options{MySQLServerVersion: "8.0.40"})
	if err != nil {
		panic(fmt.Sprintf("sqllint: MySQL parser: %v", err))
	}
	return p
}()

// mysql splits a file into statements with the MySQL tokenizer (which knows
// quotes and comments), then parses each statement.
func (l *linter) mysql(sql string) (parsed, *parseError) {
	var p parsed
	tkn := mysqlParser.NewStringTokenizer(sql)
	stmtStart, first := 0, -1
	var spans []span
	for {
		before := min(tkn.Pos, len(sql))
		typ, _ := tkn.Scan()
		start := before + len(sql[before:]) - len(strings.TrimLeft(sql[before:], " \t\r\n\f"))
		end := min(max(tkn.Pos, start), len(sql))
		switch typ {
		case sqlparser.COMMENT:
			p.comments = append(p.comments, comment{start, end, sql[start:end]})
			continue
		case ';':
			if first >= 0 {
				spans = append(spans, span{start: stmtStart, first: first, end: start})
			}
			p.semicolons = append(p.semicolons, start)
			stmtStart, first = end, -1
			continue
		case sqlparser.LEX_ERROR:
			return p, &parseError{pos: start, msg: "syntax error: cannot read the SQL here (unterminated string or comment?)"}
		case 0:
			if first >= 0 {
				spans = append(spans, span{start: stmtStart, first: first, end: len(sql)})
			}
		default:
			if first < 0 {
				first = start
			}
			continue
		}
		break
	}
	for _, sp := range spans {
		// ParseMultiple, not Parse: Parse accepts half a DDL statement
		// (logging a warning) where a linter wants the syntax error
		stmts, err := mysqlParser.ParseMultiple(sql[sp.first:sp.end])
		if err == nil && len(stmts) != 1 {
			err = fmt.Errorf("syntax error: want one statement, found %d", len(stmts))
		}
		if err != nil {
			pos := sp.first
			var pe sqlparser.PositionedErr
			if errors.As(err, &pe) {
				pos = min(sp.first+max(pe.Pos-1, 0), sp.end)
			}
			return p, &parseError{pos: pos, msg: err.Error()}
		}
		p.stmts = append(p.stmts, statement{span: sp, findings: l.checkMySQL(stmts[0])})
	}
	return p, nil
}

// checkMySQL is check for a MySQL statement. CREATE INDEX is not flagged:
// InnoDB builds secondary indexes online, without blocking writes.
func (l *linter) checkMySQL(stmt sqlparser.Statement) []Finding {
	var out []Finding
	add := func(rule, detail string) { out = append(out, Finding{Rule: rule, Detail: detail}) }
	switch s := stmt.(type) {
	case *sqlparser.CreateTable:
		l.created[myName(s.Table)] = true
	case *sqlparser.DropTable:
		if s.Temp {
			break
		}
		for _, t := range s.FromTables {
			if name := myName(t); !l.created[name] {
				add(DropTable, "drops table "+name)
			}
		}
	case *sqlparser.RenameTable:
		for _, pair := range s.TablePairs {
			if from := myName(pair.FromTable); !l.created[from] {
				add(RenameTable, fmt.Sprintf("renames table %s to %s", from, myName(pair.ToTable)))
			}
		}
	case *sqlparser.AlterTable:
		table := myName(s.Table)
		if l.created[table] {
			break
		}
		for _, opt := range s.AlterOptions {
			switch o := opt.(type) {
			case *sqlparser.DropColumn:
				add(DropColumn, fmt.Sprintf("drops column %s.%s", table, o.Name.Name.String()))
			case *sqlparser.RenameColumn:
				add(RenameColumn, fmt.Sprintf("renames column %s.%s to %s", table, o.OldName.Name.String(), o.NewName.Name.String()))
			case *sqlparser.RenameTableName:
				add(RenameTable, fmt.Sprintf("renames table %s to %s", table, myName(o.Table)))
			case *sqlparser.ChangeColumn:
				old, def := o.OldColumn.Name.String(), o.NewColDefinition
				if !strings.EqualFold(old, def.Name.String()) {
					add(RenameColumn, fmt.Sprintf("renames column %s.%s to %s", table, old, def.Name.String()))
				}
				add(AlterColumnType, fmt.Sprintf("redefines column %s.%s as %s", table, old, def.Type.Type))
			case *sqlparser.ModifyColumn:
				def := o.NewColDefinition
				add(AlterColumnType, fmt.Sprintf("redefines column %s.%s as %s", table, def.Name.String(), def.Type.Type))
			case *sqlparser.AlterColumn:
				if o.DropDefault {
					add(DropDefault, fmt.Sprintf("drops the default of column %s.%s", table, o.Column.Name.String()))
				}
			case *sqlparser.AddColumns:
				for _, col := range o.Columns {
					if myNotNullWithoutDefault(col) {
						add(AddColumnNotNull, fmt.Sprintf("adds column %s.%s NOT NULL without a default", table, col.Name.String()))
					}
				}
			}
		}
	}
	return out
}

func myNotNullWithoutDefault(col *sqlparser.ColumnDefinition) bool {
	if col.Type == nil || col.Type.Options == nil {
		return false
	}
	o := col.Type.Options
	notNull := (o.Null != nil && !*o.Null) || o.KeyOpt == sqlparser.ColKeyPrimary
	filled := o.Default != nil || o.Autoincrement || o.As != nil
	return notNull && !filled
}

func myName(t sqlparser.TableName) string {
	return strings.ToLower(t.Name.String())
}
