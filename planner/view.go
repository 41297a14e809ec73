package planner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/expr"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
	"github.com/sessionsql/sessionsql/windows"
)

// SeqColumn is the column the decoder appends to every source batch: the
// message's JetStream stream sequence.
const SeqColumn = "_seq"

// viewPlan is a bound and typed continuous query, ready to be lowered to
// operators. It holds no execution state.
type viewPlan struct {
	name   string
	source *catalog.Source
	in     scope // source columns, then _seq

	filter expr.Expr // WHERE; nil when absent

	// pre computes, from source rows, the window operator's input: the
	// group keys, the event time, the sequence, then aggregate arguments.
	pre       []expr.Expr
	preSchema *arrow.Schema
	window    exec.WindowSpec

	// post computes, from the window operator's rows, the result table's
	// columns (without emitted_at) then the final flag.
	post     []expr.Expr
	table    sink.TableSpec // the result table: select list, hidden keys, is_final, emitted_at
	emit     sql.Emit
	lateness time.Duration
}

// sourceScope is a source's columns as a scope, with _seq last.
func sourceScope(src *catalog.Source) (scope, error) {
	sc := make(scope, 0, len(src.Columns)+1)
	for _, c := range src.Columns {
		t, err := sqltypes.FromName(c.Type)
		if err != nil {
			return nil, fmt.Errorf("source %q column %q: %w", src.Name, c.Name, err)
		}
		sc = append(sc, column{name: c.Name, typ: t})
	}
	return append(sc, column{name: SeqColumn, typ: sqltypes.Int64}), nil
}

// viewGroup resolves the select list of a window query: aggregates,
// WINDOW_START()/WINDOW_END() and group-key expressions become columns of
// the window operator's output.
type viewGroup struct {
	plan    *viewPlan
	inB     *binder // binds aggregate arguments over the source scope
	filters map[ast.ExprNode]ast.ExprNode
	keyText []string
	aggText []string
	nk      int
}

func (g *viewGroup) lookup(b *binder, n ast.ExprNode) (expr.Expr, bool, error) {
	out := g.plan.window
	switch n := n.(type) {
	case *ast.FuncCallExpr:
		switch n.FnName.L {
		case "window_start", "window_end":
			if len(n.Args) > 0 {
				return nil, false, sqlerr.At(pgerrcode.WindowingError, b.pos(n), "%s() takes no arguments", strings.ToUpper(n.FnName.L))
			}
			i := g.nk
			if n.FnName.L == "window_end" {
				i++
			}
			return expr.Column(i, strings.ToUpper(n.FnName.L)+"()", g.plan.preSchema.Field(out.Time).Type), true, nil
		}
	case *ast.AggregateFuncExpr:
		e, err := g.aggregate(b, n)
		return e, err == nil, err
	}
	if _, isCol := n.(*ast.ColumnNameExpr); isCol {
		return nil, false, nil // the scope resolves key columns by name
	}
	text := restore(n)
	for i, k := range g.keyText {
		if k == text {
			f := g.plan.preSchema.Field(i)
			return expr.Column(i, text, f.Type), true, nil
		}
	}
	return nil, false, nil
}

var aggKinds = map[string]windows.AggKind{
	ast.AggFuncCount: windows.Count, ast.AggFuncSum: windows.Sum, ast.AggFuncMin: windows.Min,
	ast.AggFuncMax: windows.Max, ast.AggFuncAvg: windows.Avg,
	"first_value": windows.FirstValue, "last_value": windows.LastValue,
}

func (g *viewGroup) aggregate(b *binder, n *ast.AggregateFuncExpr) (expr.Expr, error) {
	name := strings.ToLower(n.F)
	kind, ok := aggKinds[name]
	if !ok {
		return nil, b.unsupported(n, "aggregate %s in a materialized view", strings.ToUpper(name))
	}
	if n.Distinct {
		if kind != windows.Count {
			return nil, b.unsupported(n, "%s(DISTINCT ...) in a materialized view", strings.ToUpper(name))
		}
		kind = windows.CountDistinct
	}
	if n.Order != nil {
		return nil, b.unsupported(n, "ORDER BY inside an aggregate")
	}
	if len(n.Args) != 1 {
		return nil, sqlerr.At(pgerrcode.UndefinedFunction, b.pos(n), "function %s takes one argument", name)
	}
	filter := g.filters[n]
	text := aggText(n, filter)
	p := g.plan
	out := func(i int) expr.Expr {
		idx := g.nk + 2 + i
		return expr.Column(idx, text, aggResultType(p.window.Aggs[i].Kind, p, i))
	}
	for i, t := range g.aggText {
		if t == text {
			return out(i), nil
		}
	}
	arg, star, err := aggArgument(g.inB, n, filter, p.in)
	if err != nil {
		return nil, err
	}
	spec := exec.AggSpec{Kind: kind, Arg: -1, Desc: text}
	if kind == windows.Count && star {
		spec.Kind = windows.CountStar
		spec.Desc = "count(*)"
	} else {
		if err := checkAggArg(kind, arg.Type()); err != nil {
			return nil, sqlerr.At(pgerrcode.UndefinedFunction, b.pos(n), "%s", err.Error())
		}
		spec.Arg = len(p.pre)
		p.pre = append(p.pre, arg)
	}
	p.window.Aggs = append(p.window.Aggs, spec)
	g.aggText = append(g.aggText, text)
	return out(len(g.aggText) - 1), nil
}

// aggText identifies an aggregate call, with its FILTER, among the others.
func aggText(n *ast.AggregateFuncExpr, filter ast.ExprNode) string {
	text := restore(n)
	if filter != nil {
		text += " FILTER (WHERE " + restore(filter) + ")"
	}
	return text
}

// aggArgument binds an aggregate call's argument over sc and applies its
// FILTER (WHERE cond): agg(x) FILTER (WHERE c) is agg(CASE WHEN c THEN x
// END), exact because every aggregate here ignores NULL inputs, and
// COUNT(*) FILTER (WHERE c) counts CASE WHEN c THEN TRUE END. star reports
// a plain COUNT(*), which needs no argument.
func aggArgument(b *binder, n *ast.AggregateFuncExpr, filter ast.ExprNode, sc scope) (arg expr.Expr, star bool, err error) {
	countStar := strings.EqualFold(n.F, ast.AggFuncCount) && !n.Distinct && isCountStar(n)
	if countStar && filter == nil {
		return nil, true, nil
	}
	if countStar {
		arg = expr.Literal(true, sqltypes.Bool)
	} else if arg, err = b.bind(n.Args[0], sc); err != nil {
		return nil, false, err
	}
	if filter == nil {
		return arg, false, nil
	}
	cond, err := b.condition(filter, sc, "FILTER")
	if err != nil {
		return nil, false, err
	}
	arg, err = expr.Case(nil, []expr.When{{Cond: cond, Then: arg}}, nil)
	if err != nil {
		return nil, false, sqlerr.At(pgerrcode.DatatypeMismatch, b.pos(filter), "%s", err.Error())
	}
	return arg, false, nil
}

// isCountStar: TiDB parses COUNT(*) as COUNT(1); any non-NULL constant
// counts every row just the same.
func isCountStar(n *ast.AggregateFuncExpr) bool {
	v, ok := n.Args[0].(ast.ValueExpr)
	return ok && v.GetValue() != nil
}

func checkAggArg(kind windows.AggKind, t arrow.DataType) error {
	switch kind {
	case windows.Sum, windows.Avg:
		if !sqltypes.IsNumeric(t) {
			return fmt.Errorf("function %s(%s) does not exist", kind, strings.ToLower(sqltypes.Name(t)))
		}
	}
	return nil
}

func aggResultType(kind windows.AggKind, p *viewPlan, i int) arrow.DataType {
	switch kind {
	case windows.Count, windows.CountStar, windows.CountDistinct:
		return sqltypes.Int64
	case windows.Avg:
		return sqltypes.Float64
	}
	return p.pre[p.window.Aggs[i].Arg].Type()
}

// bindWindow binds the window clause's expressions into pre and picks the
// assigner.
func (p *viewPlan) bindWindow(w *sql.Window, b *binder) error {
	spec := &p.window
	args := []string{p.source.TimeColumn}
	switch w.Kind {
	case sql.WindowSession:
		if w.GapExpr == nil {
			spec.Gap = w.Gap
			args = append(args, sql.FormatInterval(w.Gap))
		} else {
			gap, err := b.bind(w.GapExpr, p.in)
			if err != nil {
				return err
			}
			switch gap.Type().ID() {
			case arrow.INT64:
			case arrow.FLOAT64:
				if gap, err = expr.Cast(gap, sqltypes.Int64); err != nil {
					return b.at(w.GapExpr, err)
				}
			default:
				return sqlerr.At(pgerrcode.DatatypeMismatch, b.pos(w.GapExpr), "a session GAP must be an interval or a number of milliseconds, not %s", strings.ToLower(sqltypes.Name(gap.Type()))).
					WithHint("write e.g. GAP CASE WHEN device = 'tv' THEN INTERVAL '60' MINUTE ELSE INTERVAL '10' MINUTE END")
			}
			spec.GapCol = len(p.pre)
			p.pre = append(p.pre, gap)
			args = append(args, "GAP "+restore(w.GapExpr))
		}
		max := w.Max.Milliseconds()
		if max > 0 {
			args = append(args, "MAX "+sql.FormatInterval(w.Max))
			spec.NewAssigner = func() windows.Assigner { return windows.NewSessionMax(max) }
		} else {
			spec.NewAssigner = func() windows.Assigner { return windows.NewSession() }
		}
		spec.Desc = "SESSION(" + strings.Join(args, ", ") + ")"
	case sql.WindowEvent:
		for _, c := range []struct {
			n    ast.ExprNode
			col  *int
			what string
		}{{w.StartWhen, &spec.StartCol, "START WHEN"}, {w.EndWhen, &spec.EndCol, "END WHEN"}} {
			cond, err := b.condition(c.n, p.in, c.what)
			if err != nil {
				return err
			}
			*c.col = len(p.pre)
			p.pre = append(p.pre, cond)
			args = append(args, c.what+" "+restore(c.n))
		}
		timeout := w.Timeout.Milliseconds()
		if timeout > 0 {
			args = append(args, "TIMEOUT "+sql.FormatInterval(w.Timeout))
		}
		spec.NewAssigner = func() windows.Assigner { return windows.NewEventWindow(timeout) }
		spec.Desc = "EVENT_WINDOW(" + strings.Join(args, ", ") + ")"
	default:
		return sqlerr.At(pgerrcode.FeatureNotSupported, w.Pos, "window kind %d is not supported", w.Kind)
	}
	return nil
}

// planView binds a CREATE MATERIALIZED VIEW's query against the catalog.
func (e *Engine) planView(name string, q *sql.Query, sess *session) (*viewPlan, error) {
	sel := q.Select
	src, err := e.fromSource(q)
	if err != nil {
		return nil, err
	}
	in, err := sourceScope(src)
	if err != nil {
		return nil, err
	}
	p := &viewPlan{name: name, source: src, in: in, emit: q.Emit, lateness: q.Lateness}
	b := &binder{text: q.Source, offset: q.Offset, pmap: q.Params, sess: sess}
	at := func(n ast.Node) int { return q.Pos(n) }

	if q.Window == nil {
		return nil, sqlerr.At(pgerrcode.WindowingError, sqlerr.RunePos(q.Source, q.Offset), "a materialized view must group by a window").
			WithHint("add SESSION(%s, INTERVAL '30' MINUTE) to the GROUP BY clause", src.TimeColumn)
	}
	switch {
	case sel.Distinct:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, at(sel), "SELECT DISTINCT is not supported in a materialized view")
	case sel.Having != nil:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, q.Pos(sel.Having.Expr), "HAVING is not supported in a materialized view")
	case sel.OrderBy != nil:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, q.Pos(sel.OrderBy.Items[0].Expr), "ORDER BY is not supported in a materialized view; order when you read it")
	case sel.Limit != nil:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, q.Pos(sel.Limit.Count), "LIMIT is not supported in a materialized view")
	}

	// The window's time column must be the source's event time: the
	// watermark that closes windows is derived from it.
	w := q.Window
	kw := "SESSION"
	if w.Kind == sql.WindowEvent {
		kw = "EVENT_WINDOW"
	}
	if w.TimeCol.Name != src.TimeColumn {
		if _, ok := in.lookup(w.TimeCol.Name); !ok {
			return nil, sqlerr.At(pgerrcode.UndefinedColumn, w.TimeCol.Pos, "column %q does not exist", w.TimeCol.Name)
		}
		return nil, sqlerr.At(pgerrcode.WindowingError, w.TimeCol.Pos, "%s must use the event-time column %q of source %q, not %q", kw, src.TimeColumn, src.Name, w.TimeCol.Name).
			WithDetail("windows close when the watermark, which follows %q, passes their end", src.TimeColumn)
	}
	if w.Kind == sql.WindowSession && w.GapExpr == nil && w.Gap <= 0 {
		return nil, sqlerr.At(pgerrcode.InvalidParameterValue, w.Pos, "session gap must be positive")
	}

	if sel.Where != nil {
		if p.filter, err = b.condition(sel.Where, in, "WHERE"); err != nil {
			return nil, err
		}
	}

	// Group keys, then time and sequence, are the first columns of pre.
	g := &viewGroup{plan: p, inB: b, filters: q.Filters}
	var keyNames []string
	if sel.GroupBy != nil {
		for _, item := range sel.GroupBy.Items {
			if _, ok := item.Expr.(*ast.PositionExpr); ok {
				return nil, sqlerr.At(pgerrcode.FeatureNotSupported, at(item.Expr), "GROUP BY position is not supported; name the column")
			}
			text := restore(item.Expr)
			if containsString(g.keyText, text) {
				continue
			}
			k, err := b.bind(item.Expr, in)
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("$key%d", len(keyNames))
			if c, ok := item.Expr.(*ast.ColumnNameExpr); ok {
				name = c.Name.Name.O
			}
			keyNames = append(keyNames, name)
			g.keyText = append(g.keyText, text)
			p.pre = append(p.pre, k)
		}
	}
	g.nk = len(p.pre)
	timeIdx, _ := in.lookup(src.TimeColumn)
	seqIdx, _ := in.lookup(SeqColumn)
	p.pre = append(p.pre, expr.Column(timeIdx, src.TimeColumn, in[timeIdx].typ), expr.Column(seqIdx, SeqColumn, sqltypes.Int64))
	p.window = exec.WindowSpec{
		Keys:     seq(0, g.nk),
		KeyNames: keyNames,
		Time:     g.nk,
		Seq:      g.nk + 1,
		GapCol:   -1,
		StartCol: -1,
		EndCol:   -1,
		Lateness: q.Lateness,
		Emit:     exec.EmitSpec{Every: q.Emit.Every},
	}
	if q.Emit.Mode == sql.EmitEarlyEvents {
		p.window.Emit = exec.EmitSpec{EveryEvents: q.Emit.EveryEvents}
	}
	if err := p.bindWindow(w, b); err != nil {
		return nil, err
	}
	// Bind the select list: this appends aggregate arguments to pre.
	if err := p.bindSelect(q, g); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *viewPlan) bindSelect(q *sql.Query, g *viewGroup) error {
	sel := q.Select
	// Key types are known now; the agg columns' types come from pre as
	// arguments are added, so the pre schema is rebuilt at the end.
	p.preSchema = preSchemaOf(p)
	// The window operator's output scope: keys (by name), start, end.
	outScope := func() scope {
		var sc scope
		for i, name := range p.window.KeyNames {
			sc = append(sc, column{name: name, typ: p.pre[i].Type()})
		}
		return sc
	}
	pb := &binder{text: q.Source, offset: q.Offset, pmap: q.Params, sess: g.inB.sess, group: g}
	type field struct {
		name string
		e    expr.Expr
		node ast.ExprNode
	}
	var fields []field
	seen := map[string]bool{}
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			return sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "SELECT * is not supported in a materialized view; name the columns")
		}
		e, err := pb.bind(f.Expr, outScope())
		if err != nil {
			return err
		}
		p.preSchema = preSchemaOf(p)
		name := outputName(f)
		if seen[name] {
			return sqlerr.At(pgerrcode.DuplicateColumn, q.Pos(f.Expr), "column %q specified more than once", name).
				WithHint("give the select-list items distinct names with AS")
		}
		seen[name] = true
		fields = append(fields, field{name: name, e: e, node: f.Expr})
	}
	nk := len(p.window.KeyNames)
	// The result table's key: every group key and the window start. Each
	// is a select-list column when the list has it as is, else a hidden
	// column.
	var key []int
	keyOut := func(match func(field) bool, name string, src expr.Expr) error {
		for i, f := range fields {
			if match(f) {
				key = append(key, i)
				return nil
			}
		}
		if seen[name] {
			return sqlerr.At(pgerrcode.DuplicateColumn, sqlerr.RunePos(q.Source, q.Offset), "column %q is needed for the result table's key but the select list uses that name", name).
				WithHint("select %s as is, or rename the other column", name)
		}
		seen[name] = true
		key = append(key, len(fields))
		fields = append(fields, field{name: name, e: src})
		return nil
	}
	for i, kname := range p.window.KeyNames {
		text := g.keyText[i]
		col := expr.Column(i, kname, p.pre[i].Type())
		hidden := kname
		if strings.HasPrefix(hidden, "$") {
			hidden = fmt.Sprintf("key%d", i+1)
		}
		if err := keyOut(func(f field) bool { return f.node != nil && restore(f.node) == text }, hidden, col); err != nil {
			return err
		}
	}
	tt := p.pre[p.window.Time].Type()
	if err := keyOut(func(f field) bool {
		c, ok := f.node.(*ast.FuncCallExpr)
		return ok && c.FnName.L == "window_start"
	}, "window_start", expr.Column(nk, "WINDOW_START()", tt)); err != nil {
		return err
	}
	var cols []arrow.Field
	for _, f := range fields {
		p.post = append(p.post, f.e)
		cols = append(cols, arrow.Field{Name: f.name, Type: f.e.Type(), Nullable: true})
	}
	finalIdx := nk + 2 + len(p.window.Aggs)
	p.post = append(p.post, expr.Column(finalIdx, exec.ColFinal, sqltypes.Bool), expr.Column(finalIdx+1, exec.ColRetract, sqltypes.Bool))
	cols = append(cols,
		arrow.Field{Name: exec.ColIsFinal, Type: sqltypes.Bool},
		arrow.Field{Name: exec.ColEmittedAt, Type: sqltypes.TimestampTZ})
	for _, c := range cols {
		if c.Type.ID() == arrow.NULL {
			return sqlerr.At(pgerrcode.DatatypeMismatch, sqlerr.RunePos(q.Source, q.Offset), "column %q has no type (a bare NULL); cast it", c.Name)
		}
	}
	p.table = sink.TableSpec{Name: p.name, Schema: arrow.NewSchema(cols, nil), Key: key}
	return nil
}

func preSchemaOf(p *viewPlan) *arrow.Schema {
	fs := make([]arrow.Field, len(p.pre))
	for i, e := range p.pre {
		name := e.String()
		if i < len(p.window.KeyNames) {
			name = p.window.KeyNames[i]
		}
		fs[i] = arrow.Field{Name: name, Type: e.Type(), Nullable: true}
	}
	return arrow.NewSchema(fs, nil)
}

// outputName is a select-list item's column name: its alias, a column's
// name, window_start / window_end, an aggregate's function name (as
// PostgreSQL names them), or ?column?.
func outputName(f *ast.SelectField) string {
	if f.AsName.O != "" {
		return f.AsName.O
	}
	switch e := f.Expr.(type) {
	case *ast.ColumnNameExpr:
		return e.Name.Name.O
	case *ast.FuncCallExpr:
		return e.FnName.L
	case *ast.AggregateFuncExpr:
		return strings.ToLower(e.F)
	case *ast.FuncCastExpr:
		if c, ok := e.Expr.(*ast.ColumnNameExpr); ok {
			return c.Name.Name.O
		}
	}
	return "?column?"
}

// fromSource resolves a window query's FROM: exactly one source.
func (e *Engine) fromSource(q *sql.Query) (*catalog.Source, error) {
	name, pos, err := singleTable(q)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, sqlerr.At(pgerrcode.SyntaxError, sqlerr.RunePos(q.Source, q.Offset), "a materialized view needs FROM <source>")
	}
	src, ok := e.cat.Source(name)
	if !ok {
		if _, isView := e.cat.View(name); isView {
			return nil, sqlerr.At(pgerrcode.FeatureNotSupported, pos, "%q is a materialized view; a materialized view reads a source", name)
		}
		return nil, sqlerr.At(pgerrcode.UndefinedTable, pos, "source %q does not exist", name)
	}
	return src, nil
}

// singleTable returns the one table name of a query's FROM ("" when the
// query has no FROM) and its position.
func singleTable(q *sql.Query) (string, int, error) {
	from := q.Select.From
	if from == nil || from.TableRefs == nil {
		return "", 0, nil
	}
	j := from.TableRefs
	if j.Right != nil {
		return "", sqlerr.RunePos(q.Source, q.Offset), sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "joins are not supported")
	}
	ts, ok := j.Left.(*ast.TableSource)
	if !ok {
		return "", 0, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "FROM must name a table")
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return "", 0, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "subqueries in FROM are not supported")
	}
	name := tn.Name.O // sql/ folds unquoted names; quoted ones keep their case
	return name, tablePos(q, tn.Name.O), nil
}

// tablePos finds the position of a FROM table name: TiDB records none, so
// look for the name after the FROM keyword.
func tablePos(q *sql.Query, name string) int {
	text := strings.ToLower(q.Source[q.Offset:])
	from := strings.Index(text, "from")
	if from < 0 {
		return sqlerr.RunePos(q.Source, q.Offset)
	}
	i := strings.Index(text[from:], strings.ToLower(name))
	if i < 0 {
		return sqlerr.RunePos(q.Source, q.Offset+from)
	}
	j := q.Offset + from + i
	if j > 0 && (q.Source[j-1] == '"' || q.Source[j-1] == '`') {
		j--
	}
	return sqlerr.RunePos(q.Source, j)
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// operators lowers the plan to a pipeline: watermark, filter, projection
// to the window's input, window aggregate, projection to the result
// columns, sink.
func (p *viewPlan) operators(mem memory.Allocator, tables []exec.Table, tableDesc string, onLate func(ctx context.Context, seqs, times []int64) error) ([]exec.Operator, *exec.WindowAggOp, error) {
	timeIdx, _ := p.in.lookup(p.source.TimeColumn)
	ops := []exec.Operator{exec.NewWatermarkOp(timeIdx, p.source.TimeColumn, p.source.WatermarkDelay, p.source.IdleTimeout)}
	if p.filter != nil {
		ops = append(ops, exec.NewFilterOp(mem, p.filter))
	}
	ops = append(ops, exec.NewProjectOp(mem, p.pre, p.preSchema))
	spec := p.window
	spec.OnLate = onLate
	wop, err := exec.NewWindowAggOp(mem, spec, p.preSchema)
	if err != nil {
		return nil, nil, fmt.Errorf("view %q: %w", p.name, err)
	}
	ops = append(ops, wop)
	fields := append([]arrow.Field(nil), p.table.Schema.Fields()[:p.table.Schema.NumFields()-1]...)
	fields = append(fields, arrow.Field{Name: exec.ColRetract, Type: sqltypes.Bool})
	ops = append(ops, exec.NewProjectOp(mem, p.post, arrow.NewSchema(fields, nil)))
	ops = append(ops, exec.NewSinkOp(mem, p.table.Schema, p.table.Key, tableDesc, tables...))
	return ops, wop, nil
}
