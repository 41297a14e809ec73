package sql

import (
	"fmt"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// Format renders st as SQL text in a normal form: keywords upper case,
// TiDB's rendering of the SELECT and INSERT parts (names in double quotes)
// and of the expressions in our clauses (a GAP expression's intervals as
// the milliseconds they were read as), each FILTER after its aggregate
// call, the window clause as the last GROUP BY item, intervals in their
// largest whole unit, option and SET values as strings. Positions are not
// rendered. Parse(Format(st)) gives a statement that formats the same,
// except where TiDB's own rendering is not a fixed point: it may change
// once (DEC(0) renders as DECIMAL, which reads back as DECIMAL(10)), and
// is stable from then on.
//
// Format swaps the parameter markers of a SELECT or INSERT for a moment
// while TiDB renders them (see restore): it must not run concurrently with
// another use of the same statement.
func Format(st Statement) string {
	switch s := st.(type) {
	case *CreateSource:
		return formatCreateSource(s)
	case *CreateView:
		var b strings.Builder
		b.WriteString("CREATE MATERIALIZED VIEW ")
		if s.IfNotExists {
			b.WriteString("IF NOT EXISTS ")
		}
		b.WriteString(formatIdent(s.Name.Name))
		b.WriteString(" AS ")
		b.WriteString(FormatQuery(s.Query))
		return b.String()
	case *Select:
		return FormatQuery(s.Query)
	case *Insert:
		return restore(s.Stmt, s.Params, nil)
	case *DropSource:
		return "DROP SOURCE " + ifExists(s.IfExists) + formatIdent(s.Name.Name)
	case *DropView:
		return "DROP MATERIALIZED VIEW " + ifExists(s.IfExists) + formatIdent(s.Name.Name)
	case *ShowSources:
		return "SHOW SOURCES"
	case *ShowViews:
		return "SHOW MATERIALIZED VIEWS"
	case *ShowVar:
		return "SHOW " + formatIdent(s.Name.Name)
	case *SetVar:
		return "SET " + formatIdent(s.Name.Name) + " = " + formatString(s.Value)
	case *Describe:
		return "DESCRIBE " + formatIdent(s.Name.Name)
	case *Explain:
		if s.Analyze != nil {
			return "EXPLAIN ANALYZE " + formatIdent(s.Analyze.Name)
		}
		return "EXPLAIN " + Format(s.Stmt)
	case *Txn:
		switch s.Kind {
		case TxnBegin:
			return "BEGIN"
		case TxnCommit:
			return "COMMIT"
		case TxnRollback:
			return "ROLLBACK"
		}
		return fmt.Sprintf("/* unknown transaction kind %d */", s.Kind)
	case *Empty:
		return ""
	}
	return fmt.Sprintf("/* unknown statement %T */", st)
}

func ifExists(b bool) string {
	if b {
		return "IF EXISTS "
	}
	return ""
}

func formatCreateSource(s *CreateSource) string {
	var b strings.Builder
	b.WriteString("CREATE SOURCE ")
	if s.IfNotExists {
		b.WriteString("IF NOT EXISTS ")
	}
	b.WriteString(formatIdent(s.Name.Name))
	b.WriteString(" (")
	for i, c := range s.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(formatIdent(c.Name.Name))
		b.WriteString(" ")
		b.WriteString(c.TypeName)
	}
	if w := s.Watermark; w != nil {
		col := formatIdent(w.Column.Name)
		fmt.Fprintf(&b, ", WATERMARK FOR %s AS %s", col, col)
		if w.Delay != 0 {
			b.WriteString(" - ")
			b.WriteString(FormatInterval(w.Delay))
		}
	}
	b.WriteString(")")
	if len(s.Options) > 0 {
		b.WriteString(" WITH (")
		for i, o := range s.Options {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(formatIdent(o.Key.Name))
			b.WriteString(" = ")
			b.WriteString(formatString(o.Value))
		}
		b.WriteString(")")
	}
	return b.String()
}

// FormatQuery renders q as Format does.
func FormatQuery(q *Query) string {
	var b strings.Builder
	if q.Window == nil {
		b.WriteString(restore(q.Select, q.Params, q.Filters))
	} else {
		// Render the window as the last GROUP BY item: restore the query
		// with, for a moment, a GROUP BY that ends with a placeholder
		// column, then put the window's text in its place. (Not a shallow
		// copy of the query: restore's swaps of a parameter that is the
		// whole WHERE would miss it.) The placeholder is not valid UTF-8,
		// so no name in a parsed statement can be the same.
		const placeholder = "\xffwindow\xff"
		orig := q.Select.GroupBy
		gb := &ast.GroupByClause{}
		if orig != nil {
			gb.Items = append(gb.Items, orig.Items...)
			gb.Rollup = orig.Rollup
		}
		gb.Items = append(gb.Items, &ast.ByItem{Expr: &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: ast.NewCIStr(placeholder)}}})
		q.Select.GroupBy = gb
		text := restore(q.Select, q.Params, q.Filters)
		q.Select.GroupBy = orig
		b.WriteString(strings.Replace(text, `"`+placeholder+`"`, formatWindow(q.Window, q.Params), 1))
	}
	switch q.Emit.Mode {
	case EmitFinal:
		if q.Emit.Pos != 0 {
			b.WriteString(" EMIT FINAL")
		}
	case EmitEarlyInterval:
		b.WriteString(" EMIT EARLY EVERY " + FormatInterval(q.Emit.Every))
	case EmitEarlyEvents:
		fmt.Fprintf(&b, " EMIT EARLY EVERY %d EVENTS", q.Emit.EveryEvents)
	}
	if q.Lateness != 0 {
		b.WriteString(" ALLOWED LATENESS " + FormatInterval(q.Lateness))
	}
	return b.String()
}

// formatWindow renders a window clause; expressions are TiDB's rendering,
// a GAP expression's intervals as the milliseconds they were read as.
func formatWindow(w *Window, params map[int]int) string {
	var b strings.Builder
	col := formatIdent(w.TimeCol.Name)
	switch w.Kind {
	case WindowEvent:
		fmt.Fprintf(&b, "EVENT_WINDOW(%s, START WHEN %s, END WHEN %s", col, restoreExpr(w.StartWhen, params), restoreExpr(w.EndWhen, params))
		if w.Timeout != 0 {
			b.WriteString(", TIMEOUT " + FormatInterval(w.Timeout))
		}
	default:
		fmt.Fprintf(&b, "SESSION(%s, ", col)
		if w.GapExpr != nil {
			b.WriteString("GAP " + restoreExpr(w.GapExpr, params))
		} else {
			b.WriteString(FormatInterval(w.Gap))
		}
		if w.Max != 0 {
			b.WriteString(", MAX " + FormatInterval(w.Max))
		}
	}
	b.WriteString(")")
	return b.String()
}

// restoreFlags render names in double quotes (identifiers under
// ANSI_QUOTES) and strings without charset introducers.
const restoreFlags = format.RestoreStringSingleQuotes | format.RestoreKeyWordUppercase |
	format.RestoreNameDoubleQuotes | format.RestoreStringWithoutCharset

// restore renders node with TiDB, parameter markers as $n, each aggregate
// call of filters followed by its FILTER (WHERE cond).
//
// TiDB renders every marker as "?", and not always in the order it visits
// them (LIMIT renders its offset first), so restore swaps each marker of
// node for a numberedParam while it renders, and each filtered call for a
// filtered, and swaps them back after. node is a statement, which the
// swaps never replace.
func restore(node ast.Node, params map[int]int, filters map[ast.ExprNode]ast.ExprNode) string {
	node.Accept(&numberParams{params: params, filters: filters})
	defer node.Accept(unnumberParams{})
	var b strings.Builder
	if err := node.Restore(format.NewRestoreCtx(restoreFlags, &b)); err != nil {
		return fmt.Sprintf("/* cannot render: %v */", err)
	}
	return spaceDashes(b.String())
}

// restoreExpr renders an expression as restore does. The expression may
// itself be a parameter marker, which the walk cannot swap in place: the
// swapped root is the one rendered.
func restoreExpr(n ast.ExprNode, params map[int]int) string {
	if n == nil {
		return "/* missing expression */"
	}
	swapped, _ := n.Accept(&numberParams{params: params})
	defer swapped.Accept(unnumberParams{})
	var b strings.Builder
	if err := swapped.Restore(format.NewRestoreCtx(restoreFlags, &b)); err != nil {
		return fmt.Sprintf("/* cannot render: %v */", err)
	}
	return spaceDashes(b.String())
}

// spaceDashes separates the minus signs TiDB writes side by side (a - -1
// renders as "a--1"), which would start a comment here.
func spaceDashes(s string) string {
	if !strings.Contains(s, "--") {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			end, _ := quotedEnd(s, i)
			out.WriteString(s[i:end])
			i = end
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			out.WriteString("- ")
			i++
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String()
}

// numberedParam stands for a parameter marker while restore renders it.
// Its Accept is the marker's, which hands the marker itself to a visitor,
// so any walk puts the marker back in place.
type numberedParam struct {
	*test_driver.ParamMarkerExpr
	n int
}

// Restore renders the marker as $n.
func (p *numberedParam) Restore(ctx *format.RestoreCtx) error {
	if p.n == 0 {
		ctx.WritePlain("?")
		return nil
	}
	ctx.WritePlainf("$%d", p.n)
	return nil
}

// GetValue returns n rather than the marker's NULL: TiDB's rendering of
// TRIM(LEADING x FROM y) leaves x out when it is a NULL value.
func (p *numberedParam) GetValue() any { return p.n }

// filtered stands for an aggregate call of Query.Filters while restore
// renders it. As with numberedParam, its Accept is the call's, so any walk
// puts the call back in place.
type filtered struct {
	*ast.AggregateFuncExpr
	cond   ast.ExprNode
	params map[int]int
}

// Restore renders the call and its FILTER clause.
func (f *filtered) Restore(ctx *format.RestoreCtx) error {
	if err := f.AggregateFuncExpr.Restore(ctx); err != nil {
		return err
	}
	ctx.WritePlain(" FILTER (WHERE " + restoreExpr(f.cond, f.params) + ")")
	return nil
}

// numberParams replaces every parameter marker with a numberedParam, and
// every aggregate call of filters with a filtered.
type numberParams struct {
	params  map[int]int
	filters map[ast.ExprNode]ast.ExprNode
}

func (v *numberParams) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (v *numberParams) Leave(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *test_driver.ParamMarkerExpr:
		return &numberedParam{ParamMarkerExpr: n, n: v.params[n.Offset]}, true
	case *ast.AggregateFuncExpr:
		if cond, ok := v.filters[n]; ok {
			return &filtered{AggregateFuncExpr: n, cond: cond, params: v.params}, true
		}
	}
	return n, true
}

// unnumberParams walks a statement, which puts its markers back.
type unnumberParams struct{}

func (unnumberParams) Enter(n ast.Node) (ast.Node, bool) { return n, false }
func (unnumberParams) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// FormatInterval renders d as INTERVAL 'n' UNIT in the largest unit that
// divides it.
func FormatInterval(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "DAY"}, {time.Hour, "HOUR"}, {time.Minute, "MINUTE"}} {
		if d%u.d == 0 {
			return fmt.Sprintf("INTERVAL '%d' %s", d/u.d, u.name)
		}
	}
	return fmt.Sprintf("INTERVAL '%d' SECOND", d/time.Second)
}

// formatString renders s as a single-quoted string.
func formatString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// plainWords are words that Format must quote where an identifier stands,
// because our grammar reads them as keywords there (SESSION and
// EVENT_WINDOW before "(" as window clauses).
var plainWords = map[string]bool{
	"watermark": true, "sources": true, "materialized": true, "transaction": true,
	"time": true, "session": true, "local": true, "names": true, "event_window": true,
}

// formatIdent renders a name: bare when it reads back the same, else in
// double quotes.
func formatIdent(name string) string {
	bare := name != "" && !plainWords[name] && !isDigit(name[0])
	for i := 0; i < len(name) && bare; i++ {
		c := name[i]
		bare = c >= 'a' && c <= 'z' || c == '_' || isDigit(c)
	}
	if bare {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
