package expr

import (
	"bytes"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// CmpOp is a comparison operator.
type CmpOp int

// The comparison operators.
const (
	Eq CmpOp = iota // =
	Ne              // <> (also written !=)
	Lt              // <
	Le              // <=
	Gt              // >
	Ge              // >=
)

// String returns the operator's SQL spelling.
func (op CmpOp) String() string {
	switch op {
	case Eq:
		return "="
	case Ne:
		return "<>"
	case Lt:
		return "<"
	case Le:
		return "<="
	case Gt:
		return ">"
	case Ge:
		return ">="
	}
	return "?"
}

// flip is the operator with its operands swapped: a < b is b > a.
func (op CmpOp) flip() CmpOp {
	switch op {
	case Lt:
		return Gt
	case Le:
		return Ge
	case Gt:
		return Lt
	case Ge:
		return Le
	}
	return op
}

// mask has bit c+1 set when a three-way comparison result c (-1, 0, 1)
// satisfies op.
func (op CmpOp) mask() uint8 {
	switch op {
	case Eq:
		return 0b010
	case Ne:
		return 0b101
	case Lt:
		return 0b001
	case Le:
		return 0b011
	case Gt:
		return 0b100
	case Ge:
		return 0b110
	}
	return 0
}

// domain is the physical representation a comparison works on.
type domain int

const (
	domNull   domain = iota // one side is an untyped NULL: always NULL
	domInt                  // BIGINT, and timestamps as milliseconds (instants)
	domFloat                // DOUBLE PRECISION, PostgreSQL order (NaN largest, NaN = NaN)
	domString               // byte order
	domBool                 // false < true
)

type compare struct {
	op   CmpOp
	l, r Expr // coerced to one domain
	dom  domain
}

// Compare returns l op r, a BOOLEAN that is NULL when either side is NULL.
//
// Operand types: BIGINT with DOUBLE PRECISION compares as DOUBLE PRECISION;
// TIMESTAMP and TIMESTAMPTZ compare with each other as instants; TEXT in
// byte order; BOOLEAN with false < true. A string literal facing another
// type is parsed as that type, as PostgreSQL does with an untyped literal
// (ts > '2024-01-01', n = '5'); a NULL literal makes the result NULL. Any
// other pairing is 42883 "operator does not exist: text = bigint".
func Compare(op CmpOp, l, r Expr) (Expr, error) {
	if op < Eq || op > Ge {
		return nil, sqlerr.New(pgerrcode.InternalError, "comparison operator %d is not defined", int(op))
	}
	l, r, dom, err := comparable(op.String(), l, r)
	if err != nil {
		return nil, err
	}
	return &compare{op: op, l: l, r: r, dom: dom}, nil
}

// comparable coerces l and r to a common comparison domain.
func comparable(opName string, l, r Expr) (Expr, Expr, domain, error) {
	lt, rt := l.Type(), r.Type()
	if isNullType(lt) || isNullType(rt) {
		return l, r, domNull, nil
	}
	var err error
	switch {
	case isUnknownLiteral(l) && !isString(rt):
		if l, err = coerce(l, rt); err != nil {
			return nil, nil, 0, err
		}
	case isUnknownLiteral(r) && !isString(lt):
		if r, err = coerce(r, lt); err != nil {
			return nil, nil, 0, err
		}
	}
	lt, rt = l.Type(), r.Type()
	switch {
	case isInt(lt) && isInt(rt), isTS(lt) && isTS(rt):
		return l, r, domInt, nil
	case isNumeric(lt) && isNumeric(rt):
		l, _ = coerce(l, sqltypes.Float64)
		r, _ = coerce(r, sqltypes.Float64)
		return l, r, domFloat, nil
	case isString(lt) && isString(rt):
		return l, r, domString, nil
	case isBool(lt) && isBool(rt):
		return l, r, domBool, nil
	}
	return nil, nil, 0, errOperator(opName, lt, rt)
}

func (c *compare) Type() arrow.DataType { return sqltypes.Bool }
func (c *compare) String() string {
	return "(" + c.l.String() + " " + c.op.String() + " " + c.r.String() + ")"
}

func (c *compare) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if c.dom == domNull || isNullLiteral(c.l) || isNullLiteral(c.r) {
		return array.MakeArrayOfNull(mem, sqltypes.Bool, n), nil
	}
	op, l, r := c.op, c.l, c.r
	if _, ok := asLiteral(l); ok {
		if _, ok := asLiteral(r); !ok {
			op, l, r = op.flip(), r, l
		}
	}
	la, err := l.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	if lit, ok := asLiteral(r); ok {
		vals := newBitmap(mem, n, false)
		out := vals.Bytes()
		switch c.dom {
		case domInt:
			cmpVS(op, words(la), lit.i, out)
		case domFloat:
			cmpFloatVS(op, floats(la), lit.f, out)
		case domString:
			cmpStringVS(op, stringsOf(la), n, []byte(lit.s), out)
		case domBool:
			cmpBool(op, la, nil, lit.b, n, out)
		}
		return newBool(n, andValidity(mem, n, la), vals), nil
	}
	ra, err := r.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	return compareArrays(mem, op, c.dom, la, ra), nil
}

// compareArrays compares two arrays of one domain row by row.
func compareArrays(mem memory.Allocator, op CmpOp, dom domain, la, ra arrow.Array) arrow.Array {
	n := la.Len()
	vals := newBitmap(mem, n, false)
	out := vals.Bytes()
	switch dom {
	case domInt:
		cmpVV(op, words(la), words(ra), out)
	case domFloat:
		cmpFloatVV(op, floats(la), floats(ra), out)
	case domString:
		cmpStringVV(op, stringsOf(la), stringsOf(ra), n, out)
	case domBool:
		cmpBool(op, la, ra, false, n, out)
	case domNull:
		vals.Release()
		return array.MakeArrayOfNull(mem, sqltypes.Bool, n)
	}
	return newBool(n, andValidity(mem, n, la, ra), vals)
}

// cmpVV sets bit i of out when l[i] op r[i]. out starts zeroed.
func cmpVV[T int64 | float64](op CmpOp, l, r []T, out []byte) {
	r = r[:len(l)]
	switch op {
	case Eq:
		for i := range l {
			out[i>>3] |= b2u(l[i] == r[i]) << (i & 7)
		}
	case Ne:
		for i := range l {
			out[i>>3] |= b2u(l[i] != r[i]) << (i & 7)
		}
	case Lt:
		for i := range l {
			out[i>>3] |= b2u(l[i] < r[i]) << (i & 7)
		}
	case Le:
		for i := range l {
			out[i>>3] |= b2u(l[i] <= r[i]) << (i & 7)
		}
	case Gt:
		for i := range l {
			out[i>>3] |= b2u(l[i] > r[i]) << (i & 7)
		}
	case Ge:
		for i := range l {
			out[i>>3] |= b2u(l[i] >= r[i]) << (i & 7)
		}
	}
}

// cmpVS sets bit i of out when l[i] op r.
func cmpVS[T int64 | float64](op CmpOp, l []T, r T, out []byte) {
	switch op {
	case Eq:
		for i := range l {
			out[i>>3] |= b2u(l[i] == r) << (i & 7)
		}
	case Ne:
		for i := range l {
			out[i>>3] |= b2u(l[i] != r) << (i & 7)
		}
	case Lt:
		for i := range l {
			out[i>>3] |= b2u(l[i] < r) << (i & 7)
		}
	case Le:
		for i := range l {
			out[i>>3] |= b2u(l[i] <= r) << (i & 7)
		}
	case Gt:
		for i := range l {
			out[i>>3] |= b2u(l[i] > r) << (i & 7)
		}
	case Ge:
		for i := range l {
			out[i>>3] |= b2u(l[i] >= r) << (i & 7)
		}
	}
}

// cmpFloat orders floats as PostgreSQL does: NaN equals NaN and is larger
// than every other value, so the order is total.
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	}
	return -1
}

func hasNaN(v []float64) bool {
	for _, x := range v {
		if x != x {
			return true
		}
	}
	return false
}

func cmpFloatVV(op CmpOp, l, r []float64, out []byte) {
	if !hasNaN(l) && !hasNaN(r) {
		cmpVV(op, l, r, out)
		return
	}
	m := op.mask()
	for i := range l {
		out[i>>3] |= (m >> (cmpFloat(l[i], r[i]) + 1) & 1) << (i & 7)
	}
}

func cmpFloatVS(op CmpOp, l []float64, r float64, out []byte) {
	if r == r && !hasNaN(l) {
		cmpVS(op, l, r, out)
		return
	}
	m := op.mask()
	for i := range l {
		out[i>>3] |= (m >> (cmpFloat(l[i], r) + 1) & 1) << (i & 7)
	}
}

func cmpStringVV(op CmpOp, l, r strs, n int, out []byte) {
	switch op {
	case Eq, Ne:
		want := op == Eq
		for i := range n {
			out[i>>3] |= b2u(bytes.Equal(l.at(i), r.at(i)) == want) << (i & 7)
		}
	default:
		m := op.mask()
		for i := range n {
			out[i>>3] |= (m >> (bytes.Compare(l.at(i), r.at(i)) + 1) & 1) << (i & 7)
		}
	}
}

func cmpStringVS(op CmpOp, l strs, n int, r []byte, out []byte) {
	switch op {
	case Eq, Ne:
		want := op == Eq
		for i := range n {
			out[i>>3] |= b2u(bytes.Equal(l.at(i), r) == want) << (i & 7)
		}
	default:
		m := op.mask()
		for i := range n {
			out[i>>3] |= (m >> (bytes.Compare(l.at(i), r) + 1) & 1) << (i & 7)
		}
	}
}

// cmpBool compares a Boolean array with another (ra) or with a constant
// (rc, when ra is nil).
func cmpBool(op CmpOp, la, ra arrow.Array, rc bool, n int, out []byte) {
	m := op.mask()
	l := la.(*array.Boolean)
	var r *array.Boolean
	if ra != nil {
		r = ra.(*array.Boolean)
	}
	for i := range n {
		rv := rc
		if r != nil {
			rv = r.Value(i)
		}
		c := int(b2u(l.Value(i))) - int(b2u(rv))
		out[i>>3] |= (m >> (c + 1) & 1) << (i & 7)
	}
}
