package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// Expr is a typed scalar expression evaluated a whole batch at a time.
//
// Expressions are immutable after construction and hold no per-batch state,
// so one Expr may be evaluated by several goroutines at once.
type Expr interface {
	// Type is the Arrow type of every array Eval returns: one of sqltypes'
	// Int64, Float64, String, Bool, Timestamp, TimestampTZ, or sqltypes.Null
	// for an expression that is always an untyped NULL.
	Type() arrow.DataType
	// Eval returns an array of b.NumRows() values of Type(). The caller
	// releases it. Eval borrows b and keeps nothing of it; the result may
	// share buffers with b (a column reference returns the batch's own
	// column, retained) and may have a non-zero offset.
	//
	// Errors are *sqlerr.Error values (for example 22003 on integer
	// overflow, 22P02 on a text value a cast cannot parse). An error is
	// raised only for rows whose value is actually needed: rows that are
	// NULL, and CASE/COALESCE branches a row does not take, never fail a
	// batch. Division and modulo by zero are NULL, not errors.
	Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error)
	// String renders the expression SQL-ish for EXPLAIN, for example
	// (event_type <> 'heartbeat').
	String() string
}

// Column returns a reference to column index of the batch, named name for
// rendering, of type t. Eval fails with an internal error (XX000) when the
// batch's column has another type: that is a planner bug, not a user error.
func Column(index int, name string, t arrow.DataType) Expr {
	return &column{idx: index, name: name, typ: t}
}

type column struct {
	idx  int
	name string
	typ  arrow.DataType
}

func (c *column) Type() arrow.DataType { return c.typ }
func (c *column) String() string       { return c.name }

func (c *column) Eval(_ memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	if c.idx < 0 || c.idx >= int(b.NumCols()) {
		return nil, sqlerr.New(pgerrcode.InternalError,
			"column %d (%s) is not in a batch of %d columns", c.idx, c.name, b.NumCols())
	}
	a := b.Column(c.idx)
	if !arrow.TypeEqual(a.DataType(), c.typ) {
		return nil, sqlerr.New(pgerrcode.InternalError,
			"column %d (%s) has type %s in the batch, expected %s", c.idx, c.name, a.DataType(), c.typ)
	}
	a.Retain()
	return a, nil
}

// Literal returns a constant of type t. v is nil (SQL NULL of type t) or a
// Go value of t: int64 for Int64, float64 for Float64, string for String,
// bool for Bool, int64 milliseconds since the Unix epoch (or a time.Time)
// for Timestamp and TimestampTZ. Other Go integer and float kinds are
// converted when the value fits. A nil t takes the type from v (nil gives
// sqltypes.Null). A value that does not fit t makes an expression whose Eval
// fails with an internal error (XX000), since that is a planner bug.
func Literal(v any, t arrow.DataType) Expr {
	l := &literal{typ: t}
	if v == nil {
		if t == nil {
			l.typ = sqltypes.Null
		}
		l.null = true
		return l
	}
	if t == nil {
		switch v.(type) {
		case int, int8, int16, int32, int64, uint8, uint16, uint32:
			l.typ = sqltypes.Int64
		case float32, float64:
			l.typ = sqltypes.Float64
		case string:
			l.typ = sqltypes.String
		case bool:
			l.typ = sqltypes.Bool
		case time.Time:
			l.typ = sqltypes.Timestamp
		default:
			l.typ = sqltypes.Null
			l.err = sqlerr.New(pgerrcode.InternalError, "literal %v of Go type %T is not supported", v, v)
			return l
		}
	}
	ok := false
	switch l.typ.ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		l.i, ok = toInt64(v)
	case arrow.FLOAT64:
		switch x := v.(type) {
		case float64:
			l.f, ok = x, true
		case float32:
			l.f, ok = float64(x), true
		default:
			var i int64
			if i, ok = toInt64(v); ok {
				l.f = float64(i)
			}
		}
	case arrow.STRING:
		l.s, ok = v.(string)
	case arrow.BOOL:
		l.b, ok = v.(bool)
	}
	if !ok {
		l.err = sqlerr.New(pgerrcode.InternalError, "literal %v of Go type %T does not fit type %s", v, v, typeName(l.typ))
	}
	return l
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case time.Time:
		return x.UnixMilli(), true
	}
	return 0, false
}

// literal is a constant. Exactly one of i, f, s, b is meaningful, chosen by
// typ, unless null.
type literal struct {
	typ  arrow.DataType
	null bool
	i    int64 // Int64, and milliseconds for timestamps
	f    float64
	s    string
	b    bool
	err  error  // set when the Go value did not fit typ
	text string // rendering when the literal was folded from an expression
}

func (l *literal) Type() arrow.DataType { return l.typ }

func (l *literal) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	if l.err != nil {
		return nil, l.err
	}
	return constArray(mem, l, int(b.NumRows())), nil
}

func (l *literal) String() string {
	if l.text != "" {
		return l.text
	}
	if l.err != nil {
		return "<invalid literal>"
	}
	if l.null {
		return "NULL"
	}
	switch l.typ.ID() {
	case arrow.INT64:
		return strconv.FormatInt(l.i, 10)
	case arrow.FLOAT64:
		s := formatFloat(l.f)
		switch {
		case math.IsNaN(l.f) || math.IsInf(l.f, 0):
			return "CAST('" + s + "' AS DOUBLE PRECISION)"
		case !strings.ContainsAny(s, ".e"):
			return s + ".0"
		}
		return s
	case arrow.STRING:
		return quoteString(l.s)
	case arrow.BOOL:
		if l.b {
			return "TRUE"
		}
		return "FALSE"
	case arrow.TIMESTAMP:
		return sqltypes.Name(l.typ) + " " + quoteString(formatTimestamp(l.i, isTZ(l.typ)))
	}
	return fmt.Sprintf("<literal of type %s>", l.typ)
}

// quoteString renders s as a SQL string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// asLiteral returns e as a valid constant, if it is one.
func asLiteral(e Expr) (*literal, bool) {
	l, ok := e.(*literal)
	if !ok || l.err != nil {
		return nil, false
	}
	return l, true
}

// isNullLiteral reports whether e is a NULL constant, typed or not.
// Strict operators with such an operand are NULL without evaluating the
// others, as PostgreSQL's constant folding makes them.
func isNullLiteral(e Expr) bool {
	if isNullType(e.Type()) {
		return true
	}
	l, ok := asLiteral(e)
	return ok && l.null
}

// isUnknownLiteral reports whether e is a string constant or an untyped
// NULL: PostgreSQL's "unknown" literals, whose type comes from context.
func isUnknownLiteral(e Expr) bool {
	if isNullType(e.Type()) {
		return true
	}
	l, ok := asLiteral(e)
	return ok && isString(l.typ) && l.text == ""
}

// fold evaluates e once, when its inputs are constants (callers check),
// and returns the
// result as a literal that still renders as e. When evaluation fails, e is
// returned unchanged so the error surfaces at Eval time, and only for rows
// that need the value.
func fold(e Expr) Expr {
	if isNullType(e.Type()) {
		return e
	}
	mem := memory.NewGoAllocator()
	b := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
	defer b.Release()
	a, err := e.Eval(mem, b)
	if err != nil {
		return e
	}
	defer a.Release()
	l := valueLiteral(a, 0)
	l.text = e.String()
	return l
}

// valueLiteral returns row i of a as a literal of a's type.
func valueLiteral(a arrow.Array, i int) *literal {
	l := &literal{typ: a.DataType()}
	if a.IsNull(i) {
		l.null = true
		return l
	}
	switch x := a.(type) {
	case *array.Int64:
		l.i = x.Value(i)
	case *array.Timestamp:
		l.i = int64(x.Value(i))
	case *array.Float64:
		l.f = x.Value(i)
	case *array.String:
		l.s = strings.Clone(x.Value(i))
	case *array.Boolean:
		l.b = x.Value(i)
	default:
		l.null = true
	}
	return l
}

// Type predicates. Timestamps of both kinds share the int64 representation.
func isInt(t arrow.DataType) bool      { return t.ID() == arrow.INT64 }
func isFloat(t arrow.DataType) bool    { return t.ID() == arrow.FLOAT64 }
func isString(t arrow.DataType) bool   { return t.ID() == arrow.STRING }
func isBool(t arrow.DataType) bool     { return t.ID() == arrow.BOOL }
func isTS(t arrow.DataType) bool       { return t.ID() == arrow.TIMESTAMP }
func isNullType(t arrow.DataType) bool { return t.ID() == arrow.NULL }
func isNumeric(t arrow.DataType) bool  { return isInt(t) || isFloat(t) }

func isTZ(t arrow.DataType) bool {
	ts, ok := t.(*arrow.TimestampType)
	return ok && ts.TimeZone != ""
}

// isEngineType reports whether t is one of the engine's column types.
func isEngineType(t arrow.DataType) bool {
	for _, et := range []arrow.DataType{sqltypes.Int64, sqltypes.Float64, sqltypes.String,
		sqltypes.Bool, sqltypes.Timestamp, sqltypes.TimestampTZ, sqltypes.Null} {
		if arrow.TypeEqual(t, et) {
			return true
		}
	}
	return false
}

// typeName is PostgreSQL's name of t, as its error messages print it.
func typeName(t arrow.DataType) string {
	switch {
	case t == nil:
		return "unknown"
	case isInt(t):
		return "bigint"
	case isFloat(t):
		return "double precision"
	case isString(t):
		return "text"
	case isBool(t):
		return "boolean"
	case isTS(t) && isTZ(t):
		return "timestamp with time zone"
	case isTS(t):
		return "timestamp without time zone"
	case isNullType(t):
		return "unknown"
	}
	return t.String()
}

func errOperator(op string, l, r arrow.DataType) error {
	var msg string
	if l == nil {
		msg = fmt.Sprintf("operator does not exist: %s %s", op, typeName(r))
	} else {
		msg = fmt.Sprintf("operator does not exist: %s %s %s", typeName(l), op, typeName(r))
	}
	return sqlerr.New(pgerrcode.UndefinedFunction, "%s", msg).
		WithHint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

func errArgType(construct string, t arrow.DataType) error {
	return sqlerr.New(pgerrcode.DatatypeMismatch, "argument of %s must be type boolean, not type %s", construct, typeName(t))
}

// CommonType returns the type values of types ts resolve to when they meet
// in one column (CASE branches, COALESCE arguments, IN lists): equal types
// stay, BIGINT with DOUBLE PRECISION gives DOUBLE PRECISION, TIMESTAMP with
// TIMESTAMPTZ gives TIMESTAMPTZ, and sqltypes.Null adopts the others' type
// (all Null, or no types, gives Null). Anything else is a 42804 error.
func CommonType(ts ...arrow.DataType) (arrow.DataType, error) {
	return commonType("", ts...)
}

func commonType(ctx string, ts ...arrow.DataType) (arrow.DataType, error) {
	var out arrow.DataType = sqltypes.Null
	for _, t := range ts {
		switch {
		case isNullType(t):
		case isNullType(out) || arrow.TypeEqual(out, t):
			out = t
		case isNumeric(out) && isNumeric(t):
			out = sqltypes.Float64
		case isTS(out) && isTS(t):
			out = sqltypes.TimestampTZ
		default:
			if ctx == "" {
				return nil, sqlerr.New(pgerrcode.DatatypeMismatch, "types %s and %s cannot be matched", typeName(out), typeName(t))
			}
			return nil, sqlerr.New(pgerrcode.DatatypeMismatch, "%s types %s and %s cannot be matched", ctx, typeName(out), typeName(t))
		}
	}
	return out, nil
}

// unify resolves es to one type the way PostgreSQL resolves CASE and
// COALESCE: string literals and NULL are "unknown" and take the type of the
// others; when all are unknown the type is text (or Null when all are NULL).
// Every expression is then coerced to that type.
func unify(ctx string, es []Expr) ([]Expr, arrow.DataType, error) {
	var known []arrow.DataType
	anyString := false
	for _, e := range es {
		if isUnknownLiteral(e) {
			anyString = anyString || isString(e.Type())
			continue
		}
		known = append(known, e.Type())
	}
	t, err := commonType(ctx, known...)
	if err != nil {
		return nil, nil, err
	}
	if isNullType(t) && anyString {
		t = sqltypes.String
	}
	out := make([]Expr, len(es))
	for i, e := range es {
		if out[i], err = coerce(e, t); err != nil {
			return nil, nil, err
		}
	}
	return out, t, nil
}

// coerce converts e to t implicitly: NULL to a typed NULL, BIGINT to
// DOUBLE PRECISION, TIMESTAMP to and from TIMESTAMPTZ (both UTC), and a
// string literal to any type by parsing it as the corresponding cast would
// (failing with 22P02 when it does not parse).
func coerce(e Expr, t arrow.DataType) (Expr, error) {
	et := e.Type()
	switch {
	case arrow.TypeEqual(et, t) || isNullType(t):
		return e, nil
	case isNullType(et):
		return &literal{typ: t, null: true, text: e.String()}, nil
	case isInt(et) && isFloat(t), isTS(et) && isTS(t):
		c := &cast{e: e, to: t, implicit: true}
		if _, ok := asLiteral(e); ok {
			return fold(c), nil
		}
		return c, nil
	case isUnknownLiteral(e):
		l, _ := asLiteral(e)
		c, err := castLiteralText(l, t)
		if err != nil {
			return nil, err
		}
		c.text = e.String()
		return c, nil
	}
	return nil, sqlerr.New(pgerrcode.DatatypeMismatch, "cannot convert %s to %s", typeName(et), typeName(t))
}

// castLiteralText parses a string literal as a value of t.
func castLiteralText(l *literal, t arrow.DataType) (*literal, error) {
	out := &literal{typ: t}
	var err error
	switch {
	case isString(t):
		out.s = l.s
	case isInt(t):
		out.i, err = parseInt(l.s)
	case isFloat(t):
		out.f, err = parseFloat(l.s)
	case isBool(t):
		out.b, err = parseBool(l.s)
	case isTS(t):
		out.i, err = parseTimestamp(l.s, isTZ(t))
	default:
		err = errCast(l.typ, t)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// renderList renders es separated by ", ".
func renderList(es []Expr) string {
	var sb strings.Builder
	for i, e := range es {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(e.String())
	}
	return sb.String()
}

// nrows is b's row count as an int.
func nrows(b arrow.RecordBatch) int { return int(b.NumRows()) }

// evalAll evaluates es over b; on error it releases what it made.
func evalAll(mem memory.Allocator, b arrow.RecordBatch, es []Expr) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(es))
	for i, e := range es {
		a, err := e.Eval(mem, b)
		if err != nil {
			releaseAll(out)
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// releaseAll releases every non-nil array of as.
func releaseAll(as []arrow.Array) {
	for _, a := range as {
		if a != nil {
			a.Release()
		}
	}
}

func errSyntax(format string, args ...any) error {
	return sqlerr.New(pgerrcode.SyntaxError, format, args...)
}
