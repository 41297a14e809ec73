package planner

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/sessionsql/sessionsql/exec/expr"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// queryPlan is a bound SELECT over a live table (a view's results or a
// dead-letter table), or over no table at all. Running it scans the table
// once and evaluates, a batch at a time: WHERE, GROUP BY and aggregates,
// HAVING, the select list, ORDER BY, OFFSET/LIMIT.
type queryPlan struct {
	table  *sink.Memory // nil: SELECT without FROM (one empty row)
	filter expr.Expr

	grouped bool
	groupBy []expr.Expr
	aggs    []expr.Agg
	having  expr.Expr

	out     []expr.Expr // select list, over the (grouped) rows
	names   []string
	sort    []expr.SortKey // over out's columns then extra sort columns
	extra   []expr.Expr    // sort expressions that are not select-list columns
	offset  int64
	limit   int64 // -1: none
	explain []string
}

// liveGroup resolves a grouped SELECT's post-aggregation expressions:
// aggregates and GROUP BY expressions become columns of GroupAggregate's
// output (groups, then aggregates).
type liveGroup struct {
	inB     *binder
	in      scope
	keyText []string
	keyType []arrow.DataType
	p       *queryPlan
	filters map[ast.ExprNode]ast.ExprNode
	aggText []string
}

var liveAggKinds = map[string]expr.AggKind{
	ast.AggFuncCount: expr.Count, ast.AggFuncSum: expr.Sum, ast.AggFuncMin: expr.Min,
	ast.AggFuncMax: expr.Max, ast.AggFuncAvg: expr.Avg,
}

func (g *liveGroup) lookup(b *binder, n ast.ExprNode) (expr.Expr, bool, error) {
	if a, ok := n.(*ast.AggregateFuncExpr); ok {
		e, err := g.aggregate(b, a)
		return e, err == nil, err
	}
	text := restore(n)
	for i, k := range g.keyText {
		if k == text {
			return expr.Column(i, text, g.keyType[i]), true, nil
		}
	}
	return nil, false, nil
}

func (g *liveGroup) aggregate(b *binder, n *ast.AggregateFuncExpr) (expr.Expr, error) {
	name := strings.ToLower(n.F)
	kind, ok := liveAggKinds[name]
	if !ok {
		return nil, b.unsupported(n, "aggregate %s", strings.ToUpper(name))
	}
	if len(n.Args) != 1 {
		return nil, sqlerr.At(pgerrcode.UndefinedFunction, b.pos(n), "function %s takes one argument", name)
	}
	filter := g.filters[n]
	text := aggText(n, filter)
	idx := func(i int) (expr.Expr, error) {
		a := g.p.aggs[i]
		var at arrow.DataType
		if a.Arg != nil {
			at = a.Arg.Type()
		}
		t, err := expr.AggType(a.Kind, at)
		if err != nil {
			return nil, sqlerr.At(pgerrcode.UndefinedFunction, b.pos(n), "%s", err.Error())
		}
		return expr.Column(len(g.keyText)+i, text, t), nil
	}
	for i, t := range g.aggText {
		if t == text {
			return idx(i)
		}
	}
	if n.Distinct && kind != expr.Count {
		return nil, b.unsupported(n, "%s(DISTINCT ...)", strings.ToUpper(name))
	}
	arg, star, err := aggArgument(g.inB, n, filter, g.in)
	if err != nil {
		return nil, err
	}
	agg := expr.Agg{Kind: kind, Arg: arg}
	switch {
	case star:
		agg.Kind = expr.CountStar
	case n.Distinct:
		agg.Kind = expr.CountDistinct
	}
	g.p.aggs = append(g.p.aggs, agg)
	g.aggText = append(g.aggText, text)
	return idx(len(g.aggText) - 1)
}

// hasAggregate reports whether any node under n is an aggregate call.
func hasAggregate(n ast.Node) bool {
	v := &aggFinder{}
	n.Accept(v)
	return v.found
}

type aggFinder struct{ found bool }

func (v *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.AggregateFuncExpr); ok {
		v.found = true
		return n, true
	}
	return n, v.found
}

func (v *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// tableScope is a live table's columns.
func tableScope(s *arrow.Schema) scope {
	sc := make(scope, s.NumFields())
	for i, f := range s.Fields() {
		sc[i] = column{name: f.Name, typ: f.Type}
	}
	return sc
}

// planQuery binds a SELECT over a live table.
func (e *Engine) planQuery(q *sql.Query, sess *session, prm *params) (*queryPlan, error) {
	sel := q.Select
	if q.Window != nil {
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, q.Window.Pos, "a window in GROUP BY needs CREATE MATERIALIZED VIEW ... AS SELECT")
	}
	if q.Emit.Pos > 0 {
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, q.Emit.Pos, "EMIT needs CREATE MATERIALIZED VIEW ... AS SELECT")
	}
	p := &queryPlan{limit: -1}
	name, pos, err := singleTable(q)
	if err != nil {
		return nil, err
	}
	var in scope
	if name != "" {
		t, ok := e.liveTable(name)
		if !ok {
			if _, isSource := e.cat.Source(name); isSource {
				return nil, sqlerr.At(pgerrcode.WrongObjectType, pos, "%q is a source (a stream), not a table", name).
					WithHint("create a materialized view over it and select from the view")
			}
			return nil, sqlerr.At(pgerrcode.UndefinedTable, pos, "relation %q does not exist", name)
		}
		p.table = t
		in = tableScope(t.Spec().Schema)
		p.explain = append(p.explain, fmt.Sprintf("Scan %s", name))
	} else {
		p.explain = append(p.explain, "Values (one row)")
	}
	b := &binder{text: q.Source, offset: q.Offset, pmap: q.Params, sess: sess, params: prm}
	if sel.Where != nil {
		f, err := b.condition(sel.Where, in, "WHERE")
		if err != nil {
			return nil, err
		}
		p.filter = f
		p.explain = append(p.explain, "Filter "+f.String())
	}

	// Output scope: the input rows, or the groups after aggregation.
	outB := b
	outSc := in
	grouped := sel.GroupBy != nil || sel.Having != nil || sel.Distinct
	for _, f := range sel.Fields.Fields {
		if f.Expr != nil && hasAggregate(f.Expr) {
			grouped = true
		}
	}
	var g *liveGroup
	if grouped {
		p.grouped = true
		g = &liveGroup{inB: b, in: in, p: p, filters: q.Filters}
		if sel.GroupBy != nil {
			for _, item := range sel.GroupBy.Items {
				if err := p.addGroup(b, g, item.Expr, in, q); err != nil {
					return nil, err
				}
			}
		}
		outB = &binder{text: q.Source, offset: q.Offset, pmap: q.Params, sess: sess, params: prm, group: g}
		outSc = nil
	}

	// Select list.
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			if grouped {
				return nil, sqlerr.At(pgerrcode.GroupingError, sqlerr.RunePos(q.Source, q.Offset), "SELECT * with GROUP BY or aggregates is not supported")
			}
			for i, c := range in {
				p.out = append(p.out, expr.Column(i, c.name, c.typ))
				p.names = append(p.names, c.name)
			}
			continue
		}
		x, err := outB.bindU(f.Expr, outSc)
		if err != nil {
			return nil, err
		}
		if x.unknown && x.e.Type().ID() == arrow.NULL {
			x.e = expr.Literal(nil, sqltypes.String)
		}
		p.out = append(p.out, x.e)
		p.names = append(p.names, outputName(f))
	}
	if sel.Distinct {
		// DISTINCT is a GROUP BY over every output column with no aggregate.
		if len(p.aggs) > 0 || sel.GroupBy != nil {
			return nil, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "SELECT DISTINCT with GROUP BY or aggregates is not supported")
		}
		for _, f := range sel.Fields.Fields {
			if f.WildCard != nil {
				return nil, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(q.Source, q.Offset), "SELECT DISTINCT * is not supported")
			}
			if err := p.addGroup(b, g, f.Expr, in, q); err != nil {
				return nil, err
			}
		}
		p.out = p.out[:0]
		for i, t := range g.keyType {
			p.out = append(p.out, expr.Column(i, p.names[i], t))
		}
	}
	if sel.Having != nil {
		h, err := outB.condition(sel.Having.Expr, outSc, "HAVING")
		if err != nil {
			return nil, err
		}
		p.having = h
	}
	if p.grouped {
		var gs, as []string
		for _, e := range p.groupBy {
			gs = append(gs, e.String())
		}
		for _, t := range g.aggText {
			as = append(as, t)
		}
		p.explain = append(p.explain, fmt.Sprintf("Aggregate groups=[%s] aggs=[%s]", strings.Join(gs, ", "), strings.Join(as, ", ")))
		if p.having != nil {
			p.explain = append(p.explain, "Filter "+p.having.String())
		}
	}
	var parts []string
	for i, e := range p.out {
		parts = append(parts, e.String()+" AS "+p.names[i])
	}
	p.explain = append(p.explain, "Project "+strings.Join(parts, ", "))

	if sel.OrderBy != nil {
		if err := p.bindOrder(outB, outSc, sel.OrderBy.Items, q); err != nil {
			return nil, err
		}
	}
	if sel.Limit != nil {
		var err error
		if sel.Limit.Count != nil {
			if p.limit, err = constInt(b, q, sel.Limit.Count); err != nil {
				return nil, err
			}
		}
		if sel.Limit.Offset != nil {
			if p.offset, err = constInt(b, q, sel.Limit.Offset); err != nil {
				return nil, err
			}
		}
		p.explain = append(p.explain, fmt.Sprintf("Limit %d offset %d", p.limit, p.offset))
	}
	return p, nil
}

func (p *queryPlan) addGroup(b *binder, g *liveGroup, n ast.ExprNode, in scope, q *sql.Query) error {
	if pe, ok := n.(*ast.PositionExpr); ok {
		return sqlerr.At(pgerrcode.FeatureNotSupported, q.Pos(pe), "GROUP BY position is not supported; name the column")
	}
	text := restore(n)
	if containsString(g.keyText, text) {
		return nil
	}
	k, err := b.bind(n, in)
	if err != nil {
		return err
	}
	p.groupBy = append(p.groupBy, k)
	g.keyText = append(g.keyText, text)
	g.keyType = append(g.keyType, k.Type())
	return nil
}

// bindOrder binds ORDER BY: a position, an output column's name, or an
// expression over the rows the select list reads.
func (p *queryPlan) bindOrder(b *binder, sc scope, items []*ast.ByItem, q *sql.Query) error {
	var desc []string
	for _, item := range items {
		key := expr.SortKey{Desc: item.Desc, NullsFirst: item.Desc}
		if item.NullOrder {
			key.NullsFirst = !key.NullsFirst
		}
		idx := -1
		switch n := item.Expr.(type) {
		case *ast.PositionExpr:
			if n.P == nil && n.N >= 1 && n.N <= len(p.out) {
				idx = n.N - 1
			} else {
				return sqlerr.At(pgerrcode.InvalidColumnReference, q.Pos(item.Expr), "ORDER BY position %v is not in select list", n.N)
			}
		case *ast.ColumnNameExpr:
			for i, name := range p.names {
				if name == n.Name.Name.O {
					idx = i
					break
				}
			}
		}
		if idx >= 0 {
			key.Expr = expr.Column(idx, p.names[idx], p.out[idx].Type())
		} else {
			e, err := b.bind(item.Expr, sc)
			if err != nil {
				return err
			}
			i := len(p.out) + len(p.extra)
			p.extra = append(p.extra, e)
			key.Expr = expr.Column(i, e.String(), e.Type())
		}
		p.sort = append(p.sort, key)
		d := key.Expr.String()
		if key.Desc {
			d += " DESC"
		}
		desc = append(desc, d)
	}
	p.explain = append(p.explain, "Sort "+strings.Join(desc, ", "))
	return nil
}

func constInt(b *binder, q *sql.Query, n ast.ExprNode) (int64, error) {
	if num, ok := q.ParamNumber(n); ok && b.params != nil && b.params.values != nil && num <= len(b.params.values) {
		switch v := b.params.values[num-1].(type) {
		case int64:
			return v, nil
		case string:
			var x int64
			if _, err := fmt.Sscan(v, &x); err == nil {
				return x, nil
			}
		}
		return 0, sqlerr.At(pgerrcode.InvalidParameterValue, q.Pos(n), "LIMIT/OFFSET parameter must be an integer")
	}
	if num, ok := q.ParamNumber(n); ok {
		if b.params != nil {
			if b.params.types == nil {
				b.params.types = map[int]arrow.DataType{}
			}
			b.params.types[num] = sqltypes.Int64
		}
		return 0, nil // preparing: the value comes at execution
	}
	v, ok := n.(*driver.ValueExpr)
	if !ok {
		return 0, sqlerr.At(pgerrcode.FeatureNotSupported, q.Pos(n), "LIMIT and OFFSET must be constants")
	}
	switch v.Kind() {
	case driver.KindInt64:
		return v.GetInt64(), nil
	case driver.KindUint64:
		return int64(v.GetUint64()), nil
	}
	return 0, sqlerr.At(pgerrcode.InvalidRowCountInLimitClause, q.Pos(n), "LIMIT and OFFSET must be integers")
}

// run evaluates the plan and returns the result rows as one batch.
func (p *queryPlan) run(mem memory.Allocator) (arrow.RecordBatch, error) {
	var rec arrow.RecordBatch
	if p.table != nil {
		r, err := p.table.Scan(mem)
		if err != nil {
			return nil, err
		}
		rec = r
	} else {
		rec = array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
	}
	step := func(next arrow.RecordBatch, err error) error {
		if err != nil {
			return err
		}
		rec.Release()
		rec = next
		return nil
	}
	var err error
	defer func() { rec.Release() }()
	if p.filter != nil {
		if err = step(expr.Filter(mem, rec, p.filter)); err != nil {
			return nil, err
		}
	}
	if p.grouped {
		if err = step(expr.GroupAggregate(mem, rec, p.groupBy, p.aggs)); err != nil {
			return nil, err
		}
		if p.having != nil {
			if err = step(expr.Filter(mem, rec, p.having)); err != nil {
				return nil, err
			}
		}
	}
	all := append(append([]expr.Expr(nil), p.out...), p.extra...)
	fields := make([]arrow.Field, len(all))
	for i, e := range all {
		name := fmt.Sprintf("$%d", i)
		if i < len(p.names) {
			name = p.names[i]
		}
		fields[i] = arrow.Field{Name: name, Type: e.Type(), Nullable: true}
	}
	if err = step(expr.Project(mem, rec, all, arrow.NewSchema(fields, nil))); err != nil {
		return nil, err
	}
	if len(p.sort) > 0 {
		if err = step(expr.Sort(mem, rec, p.sort)); err != nil {
			return nil, err
		}
	}
	if p.offset > 0 || p.limit >= 0 {
		if err = step(expr.Slice(rec, p.offset, p.limit), nil); err != nil {
			return nil, err
		}
	}
	if len(p.extra) > 0 {
		cols := rec.Columns()[:len(p.out)]
		if err = step(array.NewRecordBatch(arrow.NewSchema(fields[:len(p.out)], nil), cols, rec.NumRows()), nil); err != nil {
			return nil, err
		}
	}
	rec.Retain()
	return rec, nil
}

// columnsOf returns the result columns of a plan.
func (p *queryPlan) columnsOf() []resultColumn {
	cols := make([]resultColumn, len(p.out))
	for i, e := range p.out {
		cols[i] = resultColumn{name: p.names[i], typ: e.Type()}
	}
	return cols
}

type resultColumn struct {
	name string
	typ  arrow.DataType
}
