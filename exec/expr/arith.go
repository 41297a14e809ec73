package expr

import (
	"math"
	"math/bits"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// ArithOp is an arithmetic operator.
type ArithOp int

// The arithmetic operators.
const (
	Add ArithOp = iota // +
	Sub                // -
	Mul                // *
	Div                // /
	Mod                // %
)

// String returns the operator's SQL spelling.
func (op ArithOp) String() string {
	switch op {
	case Add:
		return "+"
	case Sub:
		return "-"
	case Mul:
		return "*"
	case Div:
		return "/"
	case Mod:
		return "%"
	}
	return "?"
}

type arith struct {
	op   ArithOp
	l, r Expr // both BIGINT/timestamps (int kernel) or both DOUBLE PRECISION
	typ  arrow.DataType
	// overflow is the error for a result outside int64: 22003 bigint out of
	// range, or 22008 timestamp out of range when the result is a timestamp.
	overflow func() error
}

func errBigintRange() error {
	return sqlerr.New(pgerrcode.NumericValueOutOfRange, "bigint out of range")
}
func errTimestampRange() error {
	return sqlerr.New(pgerrcode.DatetimeFieldOverflow, "timestamp out of range")
}

// Arith returns l op r.
//
//   - BIGINT op BIGINT is BIGINT. Division truncates toward zero, the sign of
//     a modulo is the dividend's (as PostgreSQL); a result outside int64 is
//     22003 "bigint out of range".
//   - BIGINT with DOUBLE PRECISION, or two DOUBLE PRECISION, is DOUBLE
//     PRECISION (IEEE arithmetic; % is math.Mod).
//   - x / 0 and x % 0 are NULL for every type, not an error, so one bad row
//     never fails a batch.
//   - TIMESTAMP[TZ] ± BIGINT milliseconds and BIGINT + TIMESTAMP[TZ] are the
//     timestamp type (22008 when out of range); TIMESTAMP[TZ] − TIMESTAMP[TZ]
//     is BIGINT milliseconds.
//   - A NULL literal takes the other operand's type (BIGINT when that is a
//     timestamp, except NULL − timestamp where it is the timestamp), so the
//     result type is the one the non-NULL operand implies; NULL op NULL is an
//     untyped NULL. A string literal facing a number is parsed as that type.
//
// Other pairings are 42883 "operator does not exist". Constant operands are
// folded at construction.
func Arith(op ArithOp, l, r Expr) (Expr, error) {
	if op < Add || op > Mod {
		return nil, sqlerr.New(pgerrcode.InternalError, "arithmetic operator %d is not defined", int(op))
	}
	lt, rt := l.Type(), r.Type()
	var err error
	// Resolve unknown operands (NULL, string literals) against the other side.
	resolve := func(unknown Expr, other arrow.DataType, isLeft bool) (Expr, error) {
		switch {
		case isNullType(other):
			return unknown, nil
		case isTS(other) && isNullType(unknown.Type()):
			if op == Sub && isLeft {
				return coerce(unknown, other)
			}
			return coerce(unknown, sqltypes.Int64)
		case isNumeric(other):
			return coerce(unknown, other)
		}
		return unknown, nil
	}
	if isUnknownLiteral(l) && !isUnknownLiteral(r) {
		if l, err = resolve(l, rt, true); err != nil {
			return nil, err
		}
	} else if isUnknownLiteral(r) && !isUnknownLiteral(l) {
		if r, err = resolve(r, lt, false); err != nil {
			return nil, err
		}
	}
	lt, rt = l.Type(), r.Type()
	a := &arith{op: op, l: l, r: r, overflow: errBigintRange}
	switch {
	case isNullType(lt) && isNullType(rt):
		a.typ = sqltypes.Null
	case isInt(lt) && isInt(rt):
		a.typ = sqltypes.Int64
	case isNumeric(lt) && isNumeric(rt):
		a.typ = sqltypes.Float64
		a.l, _ = coerce(l, sqltypes.Float64)
		a.r, _ = coerce(r, sqltypes.Float64)
	case isTS(lt) && isInt(rt) && (op == Add || op == Sub):
		a.typ, a.overflow = lt, errTimestampRange
	case isInt(lt) && isTS(rt) && op == Add:
		a.typ, a.overflow = rt, errTimestampRange
	case isTS(lt) && isTS(rt) && op == Sub:
		a.typ = sqltypes.Int64
	default:
		return nil, errOperator(op.String(), lt, rt)
	}
	if _, ok := asLiteral(a.l); ok {
		if _, ok := asLiteral(a.r); ok {
			return fold(a), nil
		}
	}
	return a, nil
}

func (a *arith) Type() arrow.DataType { return a.typ }
func (a *arith) String() string {
	return "(" + a.l.String() + " " + a.op.String() + " " + a.r.String() + ")"
}

func (a *arith) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if isNullLiteral(a.l) || isNullLiteral(a.r) {
		return array.MakeArrayOfNull(mem, a.typ, n), nil
	}
	la, err := a.l.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	ra, err := a.r.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	valid := andValidity(mem, n, la, ra)
	if isFloat(a.typ) {
		return a.evalFloat(mem, n, la, ra, valid), nil
	}
	return a.evalInt(mem, n, la, ra, valid)
}

// evalInt runs the int64 kernel. Overflow is detected for all rows at once
// and only then checked against validity, so NULL rows (whose values are
// arbitrary) never raise it.
func (a *arith) evalInt(mem memory.Allocator, n int, la, ra arrow.Array, valid *memory.Buffer) (arrow.Array, error) {
	l, r := words(la), words(ra)
	r = r[:len(l)]
	buf, out := newWords(mem, n)
	var bad int64 // sign bit set when some row overflowed
	switch a.op {
	case Add:
		for i := range l {
			x, y := l[i], r[i]
			s := x + y
			out[i] = s
			bad |= (x ^ s) & (y ^ s)
		}
	case Sub:
		for i := range l {
			x, y := l[i], r[i]
			d := x - y
			out[i] = d
			bad |= (x ^ y) & (x ^ d)
		}
	case Mul:
		for i := range l {
			x, y := l[i], r[i]
			hi, lo := bits.Mul64(uint64(x), uint64(y))
			hi -= uint64(y) & uint64(x>>63)
			hi -= uint64(x) & uint64(y>>63)
			out[i] = int64(lo)
			// The high word differs from lo's sign extension on overflow.
			if int64(hi) != int64(lo)>>63 {
				bad = -1
			}
		}
	case Div, Mod:
		zero := false
		for i := range l {
			x, y := l[i], r[i]
			switch {
			case y == 0:
				out[i] = 0
				zero = true
			case a.op == Div:
				out[i] = x / y
				bad |= int64(b2u(x == math.MinInt64 && y == -1)) << 63
			default:
				out[i] = x % y
			}
		}
		if zero {
			valid = clearZeroDivisors(mem, n, valid, r)
		}
	}
	if bad < 0 {
		if i := firstOverflow(a.op, l, r, valid); i >= 0 {
			buf.Release()
			if valid != nil {
				valid.Release()
			}
			return nil, a.overflow()
		}
	}
	return newArray(a.typ, n, valid, buf), nil
}

// clearZeroDivisors makes rows with a zero divisor NULL.
func clearZeroDivisors(mem memory.Allocator, n int, valid *memory.Buffer, r []int64) *memory.Buffer {
	if valid == nil {
		valid = newBitmap(mem, n, true)
	}
	vb := valid.Bytes()
	for i, y := range r {
		if y == 0 {
			bitutil.ClearBit(vb, i)
		}
	}
	return valid
}

// firstOverflow returns the first valid row whose result overflows, or -1.
func firstOverflow(op ArithOp, l, r []int64, valid *memory.Buffer) int {
	for i := range l {
		if valid != nil && !bitutil.BitIsSet(valid.Bytes(), i) {
			continue
		}
		x, y := l[i], r[i]
		var o bool
		switch op {
		case Add:
			s := x + y
			o = (x^s)&(y^s) < 0
		case Sub:
			d := x - y
			o = (x^y)&(x^d) < 0
		case Mul:
			hi, lo := bits.Mul64(uint64(x), uint64(y))
			hi -= uint64(y) & uint64(x>>63)
			hi -= uint64(x) & uint64(y>>63)
			o = int64(hi) != int64(lo)>>63
		case Div:
			o = x == math.MinInt64 && y == -1
		}
		if o {
			return i
		}
	}
	return -1
}

func (a *arith) evalFloat(mem memory.Allocator, n int, la, ra arrow.Array, valid *memory.Buffer) arrow.Array {
	l, r := floats(la), floats(ra)
	r = r[:len(l)]
	buf, out := newFloats(mem, n)
	switch a.op {
	case Add:
		for i := range l {
			out[i] = l[i] + r[i]
		}
	case Sub:
		for i := range l {
			out[i] = l[i] - r[i]
		}
	case Mul:
		for i := range l {
			out[i] = l[i] * r[i]
		}
	case Div, Mod:
		zero := false
		for i := range l {
			y := r[i]
			switch {
			case y == 0:
				out[i] = 0
				zero = true
			case a.op == Div:
				out[i] = l[i] / y
			default:
				out[i] = math.Mod(l[i], y)
			}
		}
		if zero {
			if valid == nil {
				valid = newBitmap(mem, n, true)
			}
			vb := valid.Bytes()
			for i, y := range r {
				if y == 0 {
					bitutil.ClearBit(vb, i)
				}
			}
		}
	}
	return newArray(a.typ, n, valid, buf)
}

type neg struct{ e Expr }

// Neg returns -e for BIGINT (22003 for -9223372036854775808) and DOUBLE
// PRECISION; a NULL literal stays NULL. A constant is folded.
func Neg(e Expr) (Expr, error) {
	t := e.Type()
	if !isNumeric(t) && !isNullType(t) {
		return nil, errOperator("-", nil, t)
	}
	n := &neg{e: e}
	if _, ok := asLiteral(e); ok {
		return fold(n), nil
	}
	return n, nil
}

func (n *neg) Type() arrow.DataType { return n.e.Type() }
func (n *neg) String() string {
	if l, ok := asLiteral(n.e); ok && !l.null && l.text == "" && (isInt(l.typ) && l.i >= 0 || isFloat(l.typ) && !math.Signbit(l.f)) {
		return "-" + n.e.String()
	}
	inner := n.e.String()
	if strings.HasPrefix(inner, "-") {
		inner = "(" + inner + ")" // never render "--", a comment in SQL
	}
	return "(-" + inner + ")"
}

func (n *neg) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := n.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := nrows(b)
	switch {
	case isInt(a.DataType()):
		in := words(a)
		buf, out := newWords(mem, rows)
		bad := false
		for i, x := range in {
			out[i] = -x
			bad = bad || x == math.MinInt64
		}
		valid := andValidity(mem, rows, a)
		if bad {
			for i, x := range in {
				if x == math.MinInt64 && (valid == nil || bitutil.BitIsSet(valid.Bytes(), i)) {
					buf.Release()
					if valid != nil {
						valid.Release()
					}
					return nil, errBigintRange()
				}
			}
		}
		return newArray(a.DataType(), rows, valid, buf), nil
	case isFloat(a.DataType()):
		in := floats(a)
		buf, out := newFloats(mem, rows)
		for i, x := range in {
			out[i] = -x
		}
		return newArray(a.DataType(), rows, andValidity(mem, rows, a), buf), nil
	}
	a.Retain()
	return a, nil
}
