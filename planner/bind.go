package planner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/sessionsql/sessionsql/exec/expr"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// column is one column a name can refer to.
type column struct {
	name string
	typ  arrow.DataType
}

// scope is the columns an expression may name, by position in the batch
// it will be evaluated on.
type scope []column

func (s scope) lookup(name string) (int, bool) {
	for i, c := range s {
		if c.name == name {
			return i, true
		}
	}
	return -1, false
}

// params holds what is known of $1..$n: their types (declared by the
// client, or inferred from where they are used) and, at execution, their
// values.
type params struct {
	types  map[int]arrow.DataType
	values []any // nil while preparing
}

func (p *params) typeOf(n int) arrow.DataType {
	if p == nil || p.types == nil {
		return nil
	}
	return p.types[n]
}

// grouped maps the expressions of a post-aggregation scope to columns of
// the aggregate's output: group keys, aggregates, window bounds.
type grouped interface {
	// lookup returns the output column for n when n is a group key, an
	// aggregate or a window function; ok is false for anything else.
	lookup(b *binder, n ast.ExprNode) (e expr.Expr, ok bool, err error)
}

// binder turns TiDB expressions into typed vectorized expressions.
type binder struct {
	text   string // the statement the user sent
	offset int    // byte offset in text of what TiDB parsed
	params *params
	pmap   map[int]int // parameter marker offset -> $n
	sess   *session    // for session functions; may be nil
	group  grouped     // non-nil in a post-aggregation scope
}

// pos is the 1-based character position of n in the user's statement.
func (b *binder) pos(n ast.ExprNode) int {
	return sqlerr.RunePos(b.text, b.offset+n.OriginTextPosition())
}

// bound is a bound expression; unknown marks a string literal or an
// untyped parameter, whose type adapts to where it is used (as
// PostgreSQL's "unknown" literals do).
type bound struct {
	e       expr.Expr
	unknown bool
	param   int // $n when the expression is a parameter, else 0
}

func (b *binder) bind(n ast.ExprNode, sc scope) (expr.Expr, error) {
	r, err := b.bindU(n, sc)
	if err != nil {
		return nil, err
	}
	return r.e, nil
}

func (b *binder) bindU(n ast.ExprNode, sc scope) (bound, error) {
	if b.group != nil {
		e, ok, err := b.group.lookup(b, n)
		if err != nil {
			return bound{}, err
		}
		if ok {
			return bound{e: e}, nil
		}
	}
	switch n := n.(type) {
	case *ast.ParenthesesExpr:
		return b.bindU(n.Expr, sc)
	case *driver.ParamMarkerExpr:
		return b.param(n)
	case *driver.ValueExpr:
		return b.value(n)
	case *ast.ColumnNameExpr:
		return b.column(n, sc)
	case *ast.BinaryOperationExpr:
		return b.binary(n, sc)
	case *ast.UnaryOperationExpr:
		x, err := b.bindU(n.V, sc)
		if err != nil {
			return bound{}, err
		}
		var e expr.Expr
		switch n.Op {
		case opcode.Not, opcode.Not2:
			x.e, err = b.coerce(x, sqltypes.Bool, n.V)
			if err == nil {
				e, err = expr.Not(x.e)
			}
		case opcode.Minus:
			e, err = expr.Neg(x.e)
		case opcode.Plus:
			e = x.e
		default:
			return bound{}, b.unsupported(n, "operator %s", n.Op)
		}
		return bound{e: e}, b.at(n, err)
	case *ast.IsNullExpr:
		x, err := b.bind(n.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		return bound{e: expr.IsNull(x, n.Not)}, nil
	case *ast.IsTruthExpr:
		x, err := b.bindU(n.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		if x.e, err = b.coerce(x, sqltypes.Bool, n.Expr); err != nil {
			return bound{}, err
		}
		e, err := expr.IsBool(x.e, n.True != 0, n.Not)
		return bound{e: e}, b.at(n, err)
	case *ast.PatternInExpr:
		return b.in(n, sc)
	case *ast.BetweenExpr:
		x, err := b.bindU(n.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		lo, err := b.bindU(n.Left, sc)
		if err != nil {
			return bound{}, err
		}
		hi, err := b.bindU(n.Right, sc)
		if err != nil {
			return bound{}, err
		}
		es, err := b.unify(n, []bound{x, lo, hi}, []ast.ExprNode{n.Expr, n.Left, n.Right})
		if err != nil {
			return bound{}, err
		}
		e, err := expr.Between(es[0], es[1], es[2], n.Not)
		return bound{e: e}, b.at(n, err)
	case *ast.PatternLikeOrIlikeExpr:
		x, err := b.bindU(n.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		p, err := b.bindU(n.Pattern, sc)
		if err != nil {
			return bound{}, err
		}
		if x.e, err = b.coerce(x, sqltypes.String, n.Expr); err != nil {
			return bound{}, err
		}
		if p.e, err = b.coerce(p, sqltypes.String, n.Pattern); err != nil {
			return bound{}, err
		}
		e, err := expr.Like(x.e, p.e, n.Not, !n.IsLike)
		return bound{e: e}, b.at(n, err)
	case *ast.CaseExpr:
		return b.caseExpr(n, sc)
	case *ast.FuncCastExpr:
		x, err := b.bindU(n.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		t, err := castType(n)
		if err != nil {
			return bound{}, b.at(n, err)
		}
		if x.unknown {
			// A literal or parameter of unknown type takes the cast's:
			// $1::bigint is a BIGINT parameter, as in PostgreSQL.
			e, err := b.coerce(x, t, n.Expr)
			return bound{e: e}, err
		}
		e, err := expr.Cast(x.e, t)
		return bound{e: e}, b.at(n, err)
	case *ast.FuncCallExpr:
		return b.call(n, sc)
	case *ast.AggregateFuncExpr:
		return bound{}, sqlerr.At(pgerrcode.GroupingError, b.pos(n), "aggregate functions are not allowed here")
	case *ast.WindowFuncExpr:
		return bound{}, b.unsupported(n, "window functions with OVER; group by SESSION(...) instead")
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr, *ast.CompareSubqueryExpr:
		return bound{}, b.unsupported(n, "subqueries")
	}
	return bound{}, b.unsupported(n, "expression %s", restore(n))
}

// condition binds a WHERE or HAVING condition, which must be BOOLEAN.
func (b *binder) condition(n ast.ExprNode, sc scope, clause string) (expr.Expr, error) {
	x, err := b.bindU(n, sc)
	if err != nil {
		return nil, err
	}
	if x.e, err = b.coerce(x, sqltypes.Bool, n); err != nil {
		return nil, err
	}
	if x.e.Type().ID() != arrow.BOOL && x.e.Type().ID() != arrow.NULL {
		return nil, sqlerr.At(pgerrcode.DatatypeMismatch, b.pos(n), "argument of %s must be type boolean, not type %s", clause, strings.ToLower(sqltypes.Name(x.e.Type())))
	}
	return x.e, nil
}

// at attaches n's position to an error from the expr package that has
// none.
func (b *binder) at(n ast.ExprNode, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := sqlerr.As(err); ok {
		if e.Position == 0 {
			c := *e
			c.Position = b.pos(n)
			return &c
		}
		return err
	}
	return sqlerr.At(pgerrcode.DatatypeMismatch, b.pos(n), "%s", err.Error())
}

func (b *binder) unsupported(n ast.ExprNode, format string, args ...any) error {
	return sqlerr.At(pgerrcode.FeatureNotSupported, b.pos(n), "%s is not supported", fmt.Sprintf(format, args...))
}

func (b *binder) param(n *driver.ParamMarkerExpr) (bound, error) {
	num, ok := b.pmap[n.Offset]
	if !ok {
		return bound{}, sqlerr.At(pgerrcode.InternalError, b.pos(n), "parameter marker at offset %d has no number", n.Offset)
	}
	if b.params != nil && b.params.values != nil {
		if num > len(b.params.values) {
			return bound{}, sqlerr.At(pgerrcode.UndefinedParameter, b.pos(n), "there is no parameter $%d", num)
		}
		r, err := literalOf(b.params.values[num-1])
		if err != nil {
			return bound{}, sqlerr.At(pgerrcode.InvalidParameterValue, b.pos(n), "parameter $%d: %v", num, err)
		}
		if t := b.params.typeOf(num); t != nil && !r.unknown && !arrow.TypeEqual(t, r.e.Type()) && r.e.Type().ID() != arrow.NULL {
			r.e, err = expr.Cast(r.e, t)
			if err != nil {
				return bound{}, b.at(n, err)
			}
		}
		r.param = num
		return r, nil
	}
	if t := b.params.typeOf(num); t != nil {
		return bound{e: expr.Literal(nil, t), param: num}, nil
	}
	return bound{e: expr.Literal(nil, sqltypes.String), unknown: true, param: num}, nil
}

// literalOf makes a literal of a Go value (a parameter's value).
func literalOf(v any) (bound, error) {
	switch v := v.(type) {
	case nil:
		return bound{e: expr.Literal(nil, sqltypes.Null), unknown: true}, nil
	case int64:
		return bound{e: expr.Literal(v, sqltypes.Int64)}, nil
	case int32:
		return bound{e: expr.Literal(int64(v), sqltypes.Int64)}, nil
	case int:
		return bound{e: expr.Literal(int64(v), sqltypes.Int64)}, nil
	case float64:
		return bound{e: expr.Literal(v, sqltypes.Float64)}, nil
	case float32:
		return bound{e: expr.Literal(float64(v), sqltypes.Float64)}, nil
	case bool:
		return bound{e: expr.Literal(v, sqltypes.Bool)}, nil
	case string:
		return bound{e: expr.Literal(v, sqltypes.String), unknown: true}, nil
	case []byte:
		return bound{e: expr.Literal(string(v), sqltypes.String), unknown: true}, nil
	case time.Time:
		return bound{e: expr.Literal(v.UnixMilli(), sqltypes.TimestampTZ)}, nil
	}
	return bound{}, fmt.Errorf("values of type %T are not supported", v)
}

func (b *binder) value(n *driver.ValueExpr) (bound, error) {
	switch n.Kind() {
	case driver.KindNull:
		return bound{e: expr.Literal(nil, sqltypes.Null), unknown: true}, nil
	case driver.KindInt64:
		if tp := n.GetType(); tp != nil && mysql.HasIsBooleanFlag(tp.GetFlag()) {
			return bound{e: expr.Literal(n.GetInt64() != 0, sqltypes.Bool)}, nil // TRUE, FALSE
		}
		return bound{e: expr.Literal(n.GetInt64(), sqltypes.Int64)}, nil
	case driver.KindUint64:
		u := n.GetUint64()
		if u > math.MaxInt64 {
			return bound{}, sqlerr.At(pgerrcode.NumericValueOutOfRange, b.pos(n), "value %d is out of range for type bigint", u)
		}
		return bound{e: expr.Literal(int64(u), sqltypes.Int64)}, nil
	case driver.KindFloat32, driver.KindFloat64:
		return bound{e: expr.Literal(n.GetFloat64(), sqltypes.Float64)}, nil
	case driver.KindMysqlDecimal:
		f, err := strconv.ParseFloat(n.GetMysqlDecimal().String(), 64)
		if err != nil {
			return bound{}, sqlerr.At(pgerrcode.InvalidTextRepresentation, b.pos(n), "invalid number %s", n.GetMysqlDecimal())
		}
		return bound{e: expr.Literal(f, sqltypes.Float64)}, nil
	case driver.KindString, driver.KindBytes:
		return bound{e: expr.Literal(n.GetString(), sqltypes.String), unknown: true}, nil
	}
	return bound{}, b.unsupported(n, "literal %s", restore(n))
}

func (b *binder) column(n *ast.ColumnNameExpr, sc scope) (bound, error) {
	name := n.Name.Name.O // sql/ folds unquoted names; quoted ones keep their case
	i, ok := sc.lookup(name)
	if !ok {
		if b.group != nil {
			return bound{}, sqlerr.At(pgerrcode.GroupingError, b.pos(n),
				"column %q must appear in the GROUP BY clause or be used in an aggregate function", name)
		}
		return bound{}, sqlerr.At(pgerrcode.UndefinedColumn, b.pos(n), "column %q does not exist", name)
	}
	return bound{e: expr.Column(i, sc[i].name, sc[i].typ)}, nil
}

var cmpOps = map[opcode.Op]expr.CmpOp{
	opcode.EQ: expr.Eq, opcode.NE: expr.Ne, opcode.LT: expr.Lt, opcode.LE: expr.Le, opcode.GT: expr.Gt, opcode.GE: expr.Ge,
}

var arithOps = map[opcode.Op]expr.ArithOp{
	opcode.Plus: expr.Add, opcode.Minus: expr.Sub, opcode.Mul: expr.Mul, opcode.Div: expr.Div, opcode.Mod: expr.Mod, opcode.IntDiv: expr.Div,
}

func (b *binder) binary(n *ast.BinaryOperationExpr, sc scope) (bound, error) {
	l, err := b.bindU(n.L, sc)
	if err != nil {
		return bound{}, err
	}
	r, err := b.bindU(n.R, sc)
	if err != nil {
		return bound{}, err
	}
	switch n.Op {
	case opcode.LogicAnd, opcode.LogicOr:
		if l.e, err = b.coerce(l, sqltypes.Bool, n.L); err != nil {
			return bound{}, err
		}
		if r.e, err = b.coerce(r, sqltypes.Bool, n.R); err != nil {
			return bound{}, err
		}
		var e expr.Expr
		if n.Op == opcode.LogicAnd {
			e, err = expr.And(l.e, r.e)
		} else {
			e, err = expr.Or(l.e, r.e)
		}
		return bound{e: e}, b.at(n, err)
	case opcode.NullEQ: // <=>: IS NOT DISTINCT FROM
		return bound{}, b.unsupported(n, "operator <=>")
	}
	if op, ok := cmpOps[n.Op]; ok {
		es, err := b.unify(n, []bound{l, r}, []ast.ExprNode{n.L, n.R})
		if err != nil {
			return bound{}, err
		}
		e, err := expr.Compare(op, es[0], es[1])
		return bound{e: e}, b.at(n, err)
	}
	if op, ok := arithOps[n.Op]; ok {
		// An unknown literal in arithmetic takes the other side's type
		// (numbers) or stays a number.
		if l.unknown && !r.unknown {
			if l.e, err = b.coerce(l, arithPartner(r.e.Type()), n.L); err != nil {
				return bound{}, err
			}
		}
		if r.unknown && !l.unknown {
			if r.e, err = b.coerce(r, arithPartner(l.e.Type()), n.R); err != nil {
				return bound{}, err
			}
		}
		e, err := expr.Arith(op, l.e, r.e)
		return bound{e: e}, b.at(n, err)
	}
	return bound{}, b.unsupported(n, "operator %s", n.Op)
}

// arithPartner is the type an unknown literal takes beside t in arithmetic.
func arithPartner(t arrow.DataType) arrow.DataType {
	if sqltypes.IsTimestamp(t) {
		return sqltypes.Int64 // milliseconds
	}
	return t
}

// unify gives a list of operands (of a comparison, IN, BETWEEN) one type:
// unknown literals and parameters adopt the type of the known operands.
func (b *binder) unify(n ast.ExprNode, xs []bound, nodes []ast.ExprNode) ([]expr.Expr, error) {
	var known []arrow.DataType
	for _, x := range xs {
		if !x.unknown && x.e.Type().ID() != arrow.NULL {
			known = append(known, x.e.Type())
		}
	}
	out := make([]expr.Expr, len(xs))
	var target arrow.DataType = sqltypes.String
	if len(known) > 0 {
		t, err := expr.CommonType(known...)
		if err != nil {
			return nil, b.at(n, err)
		}
		target = t
	}
	for i, x := range xs {
		out[i] = x.e
		if x.unknown {
			e, err := b.coerce(x, target, nodes[i])
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
	}
	return out, nil
}

// coerce casts an unknown literal or parameter to t; a typed expression of
// another type is left for the operator to reject or promote.
func (b *binder) coerce(x bound, t arrow.DataType, n ast.ExprNode) (expr.Expr, error) {
	if x.param > 0 && b.params != nil {
		if b.params.types == nil {
			b.params.types = map[int]arrow.DataType{}
		}
		if b.params.types[x.param] == nil {
			b.params.types[x.param] = t
		}
	}
	if !x.unknown || arrow.TypeEqual(x.e.Type(), t) {
		return x.e, nil
	}
	e, err := expr.Cast(x.e, t)
	return e, b.at(n, err)
}

func (b *binder) in(n *ast.PatternInExpr, sc scope) (bound, error) {
	if n.Sel != nil {
		return bound{}, b.unsupported(n, "IN (subquery)")
	}
	xs := make([]bound, 0, len(n.List)+1)
	nodes := make([]ast.ExprNode, 0, len(n.List)+1)
	for _, item := range append([]ast.ExprNode{n.Expr}, n.List...) {
		x, err := b.bindU(item, sc)
		if err != nil {
			return bound{}, err
		}
		xs = append(xs, x)
		nodes = append(nodes, item)
	}
	es, err := b.unify(n, xs, nodes)
	if err != nil {
		return bound{}, err
	}
	e, err := expr.In(es[0], es[1:], n.Not)
	return bound{e: e}, b.at(n, err)
}

func (b *binder) caseExpr(n *ast.CaseExpr, sc scope) (bound, error) {
	var operand expr.Expr
	if n.Value != nil {
		v, err := b.bind(n.Value, sc)
		if err != nil {
			return bound{}, err
		}
		operand = v
	}
	var thens []bound
	var thenNodes []ast.ExprNode
	whens := make([]expr.When, len(n.WhenClauses))
	for i, w := range n.WhenClauses {
		c, err := b.bindU(w.Expr, sc)
		if err != nil {
			return bound{}, err
		}
		if operand == nil {
			if c.e, err = b.coerce(c, sqltypes.Bool, w.Expr); err != nil {
				return bound{}, err
			}
		} else if c.unknown {
			if c.e, err = b.coerce(c, operand.Type(), w.Expr); err != nil {
				return bound{}, err
			}
		}
		t, err := b.bindU(w.Result, sc)
		if err != nil {
			return bound{}, err
		}
		whens[i].Cond = c.e
		thens = append(thens, t)
		thenNodes = append(thenNodes, w.Result)
	}
	if n.ElseClause != nil {
		e, err := b.bindU(n.ElseClause, sc)
		if err != nil {
			return bound{}, err
		}
		thens = append(thens, e)
		thenNodes = append(thenNodes, n.ElseClause)
	}
	es, err := b.unify(n, thens, thenNodes)
	if err != nil {
		return bound{}, err
	}
	for i := range whens {
		whens[i].Then = es[i]
	}
	var els expr.Expr
	if n.ElseClause != nil {
		els = es[len(es)-1]
	}
	e, err := expr.Case(operand, whens, els)
	return bound{e: e}, b.at(n, err)
}

// castType maps CAST(x AS type)'s target (MySQL type names) to ours.
func castType(n *ast.FuncCastExpr) (arrow.DataType, error) {
	var sb strings.Builder
	if err := n.Tp.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &sb)); err != nil {
		return nil, err
	}
	name := strings.ToUpper(sb.String())
	switch {
	case strings.HasPrefix(name, "SIGNED"), strings.HasPrefix(name, "UNSIGNED"), strings.HasPrefix(name, "BIGINT"), strings.HasPrefix(name, "INT"):
		return sqltypes.Int64, nil
	case strings.HasPrefix(name, "CHAR"), strings.HasPrefix(name, "VARCHAR"), strings.HasPrefix(name, "VAR_STRING"),
		strings.HasPrefix(name, "TEXT"), strings.HasPrefix(name, "BINARY"):
		return sqltypes.String, nil
	case strings.HasPrefix(name, "DOUBLE"), strings.HasPrefix(name, "FLOAT"), strings.HasPrefix(name, "DECIMAL"), strings.HasPrefix(name, "REAL"):
		return sqltypes.Float64, nil
	case strings.HasPrefix(name, "DATETIME"), strings.HasPrefix(name, "TIMESTAMP"):
		return sqltypes.Timestamp, nil
	}
	return sqltypes.FromName(name)
}

// intervalUnits are the units of INTERVAL n UNIT in expressions, in ms.
var intervalUnits = map[string]int64{
	"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000, "WEEK": 7 * 86_400_000,
	"MICROSECOND": 0, // rejected below: finer than the engine's milliseconds
}

func (b *binder) call(n *ast.FuncCallExpr, sc scope) (bound, error) {
	name := n.FnName.L
	switch name {
	case ast.DateAdd, ast.DateSub, ast.AddDate, ast.SubDate:
		// ts +/- INTERVAL n UNIT
		if len(n.Args) != 3 {
			break
		}
		ts, err := b.bindU(n.Args[0], sc)
		if err != nil {
			return bound{}, err
		}
		if ts.e, err = b.coerce(ts, sqltypes.Timestamp, n.Args[0]); err != nil {
			return bound{}, err
		}
		ms, err := b.intervalMillis(n.Args[1], n.Args[2])
		if err != nil {
			return bound{}, err
		}
		op := expr.Add
		if name == ast.DateSub || name == ast.SubDate {
			op = expr.Sub
		}
		e, err := expr.Arith(op, ts.e, expr.Literal(ms, sqltypes.Int64))
		return bound{e: e}, b.at(n, err)
	case ast.TimestampLiteral, ast.DateLiteral:
		v, ok := n.Args[0].(*driver.ValueExpr)
		if !ok {
			break
		}
		ms, err := parseTimestamp(v.GetString())
		if err != nil {
			return bound{}, sqlerr.At(pgerrcode.InvalidDatetimeFormat, b.pos(n), "invalid input syntax for type timestamp: %q", v.GetString())
		}
		return bound{e: expr.Literal(ms, sqltypes.Timestamp)}, nil
	case "window_start", "window_end":
		return bound{}, sqlerr.At(pgerrcode.WindowingError, b.pos(n), "%s() is only allowed in the select list of a query grouped by a window", strings.ToUpper(name))
	case "version":
		return bound{e: expr.Literal("PostgreSQL 15.0 (sessionsql)", sqltypes.String)}, nil
	case "current_database", "database":
		return bound{e: expr.Literal(b.sess.database(), sqltypes.String)}, nil
	case "current_user", "session_user", "user", "current_role":
		return bound{e: expr.Literal(b.sess.user(), sqltypes.String)}, nil
	case "current_schema", "schema":
		return bound{e: expr.Literal("public", sqltypes.String)}, nil
	case "now", "current_timestamp", "localtimestamp":
		return bound{e: expr.Literal(time.Now().UnixMilli(), sqltypes.TimestampTZ)}, nil
	case "coalesce", "nullif", "ifnull":
		var xs []bound
		for _, a := range n.Args {
			x, err := b.bindU(a, sc)
			if err != nil {
				return bound{}, err
			}
			xs = append(xs, x)
		}
		es, err := b.unify(n, xs, n.Args)
		if err != nil {
			return bound{}, err
		}
		var e expr.Expr
		switch {
		case name == "nullif" && len(es) == 2:
			e, err = expr.NullIf(es[0], es[1])
		case name == "nullif":
			return bound{}, sqlerr.At(pgerrcode.UndefinedFunction, b.pos(n), "function nullif takes 2 arguments")
		default:
			e, err = expr.Coalesce(es)
		}
		return bound{e: e}, b.at(n, err)
	}
	var args []expr.Expr
	for _, a := range n.Args {
		x, err := b.bindU(a, sc)
		if err != nil {
			return bound{}, err
		}
		args = append(args, x.e)
	}
	e, err := expr.Func(name, args)
	return bound{e: e}, b.at(n, err)
}

func (b *binder) intervalMillis(val, unit ast.ExprNode) (int64, error) {
	u, ok := unit.(*ast.TimeUnitExpr)
	if !ok {
		return 0, b.unsupported(unit, "interval unit %s", restore(unit))
	}
	per, ok := intervalUnits[strings.ToUpper(u.Unit.String())]
	if !ok || per == 0 {
		return 0, sqlerr.At(pgerrcode.InvalidParameterValue, b.pos(val), "interval unit %s is not supported; use SECOND, MINUTE, HOUR or DAY", u.Unit.String())
	}
	v, ok := val.(*driver.ValueExpr)
	if !ok {
		return 0, b.unsupported(val, "a non-constant interval")
	}
	var n float64
	switch v.Kind() {
	case driver.KindInt64:
		n = float64(v.GetInt64())
	case driver.KindUint64:
		n = float64(v.GetUint64())
	case driver.KindFloat64, driver.KindFloat32:
		n = v.GetFloat64()
	case driver.KindMysqlDecimal:
		f, err := strconv.ParseFloat(v.GetMysqlDecimal().String(), 64)
		if err != nil {
			return 0, sqlerr.At(pgerrcode.InvalidParameterValue, b.pos(val), "invalid interval %s", v.GetMysqlDecimal())
		}
		n = f
	case driver.KindString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.GetString()), 64)
		if err != nil {
			return 0, sqlerr.At(pgerrcode.InvalidParameterValue, b.pos(val), "invalid interval %q", v.GetString())
		}
		n = f
	default:
		return 0, sqlerr.At(pgerrcode.InvalidParameterValue, b.pos(val), "invalid interval %s", restore(val))
	}
	return int64(math.Round(n * float64(per))), nil
}

// parseTimestamp reads a timestamp literal as UTC milliseconds.
func parseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("invalid timestamp %q", s)
}

// restore renders a node as SQL text (for messages and for matching GROUP
// BY expressions in the select list).
func restore(n ast.Node) string {
	var sb strings.Builder
	if err := n.Restore(format.NewRestoreCtx(format.RestoreStringSingleQuotes|format.RestoreStringWithoutCharset|format.RestoreSpacesAroundBinaryOperation|format.RestoreKeyWordLowercase|format.RestoreNameLowercase, &sb)); err != nil {
		return fmt.Sprintf("%T", n)
	}
	return sb.String()
}
