package expr

// A differential test: random expressions over random batches, evaluated
// by the package and by a tiny row-at-a-time reference interpreter written
// here from the SQL rules (math/big for integer overflow, lazy CASE and
// COALESCE, three-valued logic). Both must agree on every value, and on
// whether the batch fails.

import (
	"flag"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

type refType int

const (
	rInt refType = iota
	rFloat
	rStr
	rBool
	rTS
)

func (t refType) arrow() arrow.DataType {
	return [...]arrow.DataType{sqltypes.Int64, sqltypes.Float64, sqltypes.String, sqltypes.Bool, sqltypes.Timestamp}[t]
}

// refResult is one row's value (nil for NULL; int64, float64, string, bool;
// timestamps as int64) or an error SQLSTATE.
type refResult struct {
	v    any
	code string
}

// ref is a generated expression: the package's Expr and the reference
// evaluation of the same expression.
type ref struct {
	e    Expr
	typ  refType
	eval func(row int) refResult
}

type refCol struct {
	name string
	typ  refType
}

var refCols = []refCol{
	{"i1", rInt}, {"i2", rInt}, {"i3", rInt}, {"f1", rFloat}, {"f2", rFloat},
	{"s1", rStr}, {"s2", rStr}, {"b1", rBool}, {"b2", rBool}, {"t1", rTS},
}

type refGen struct {
	r    *rand.Rand
	rows [][]any // the current batch, by row then column
	t    *testing.T
}

func (g *refGen) must(e Expr, err error) Expr {
	g.t.Helper()
	if err != nil {
		g.t.Fatalf("constructor failed: %v", err)
	}
	return e
}

func (g *refGen) column(t refType) (ref, bool) {
	var idx []int
	for i, c := range refCols {
		if c.typ == t {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return ref{}, false
	}
	i := idx[g.r.IntN(len(idx))]
	return ref{
		e:    Column(i, refCols[i].name, t.arrow()),
		typ:  t,
		eval: func(row int) refResult { return refResult{v: g.rows[row][i]} },
	}, true
}

func (g *refGen) randValue(t refType) any {
	switch t {
	case rInt:
		switch g.r.IntN(10) {
		case 0:
			return []int64{math.MaxInt64, math.MinInt64, 1 << 40, -(1 << 40), math.MaxInt64 / 2}[g.r.IntN(5)]
		}
		return int64(g.r.IntN(9) - 4)
	case rFloat:
		switch g.r.IntN(12) {
		case 0:
			return math.NaN()
		case 1:
			return math.Inf(1 - 2*g.r.IntN(2))
		case 2:
			return math.Copysign(0, -1)
		case 3:
			return 1e19
		}
		return float64(g.r.IntN(17)-8) / 2
	case rStr:
		return []string{"", "a", "b", "ab", "B", "héllo", "a%"}[g.r.IntN(7)]
	case rBool:
		return g.r.IntN(2) == 0
	case rTS:
		return int64(g.r.IntN(5)-2) * 1000
	}
	return nil
}

func (g *refGen) literal(t refType) ref {
	var v any
	if g.r.IntN(6) != 0 {
		v = g.randValue(t)
	}
	return ref{e: Literal(v, t.arrow()), typ: t, eval: func(int) refResult { return refResult{v: v} }}
}

// untypedNull is the NULL literal of type sqltypes.Null.
func untypedNull() Expr { return Literal(nil, nil) }

func (g *refGen) leaf(t refType) ref {
	if g.r.IntN(3) != 0 {
		if c, ok := g.column(t); ok {
			return c
		}
	}
	return g.literal(t)
}

// gen makes a random expression of type t. An expression the package
// folded to a NULL constant is NULL without evaluating anything below it.
func (g *refGen) gen(t refType, depth int) ref {
	x := g.gen1(t, depth)
	if isNullLiteral(x.e) {
		x.eval = func(int) refResult { return refResult{} }
	}
	return x
}

func (g *refGen) gen1(t refType, depth int) ref {
	if depth <= 0 || g.r.IntN(4) == 0 {
		return g.leaf(t)
	}
	d := depth - 1
	switch t {
	case rInt:
		switch g.r.IntN(8) {
		case 0, 1, 2:
			return g.arith(g.gen(rInt, d), g.gen(rInt, d), ArithOp(g.r.IntN(5)))
		case 3:
			return g.neg(g.gen(rInt, d))
		case 4:
			return g.caseOf(rInt, d)
		case 5:
			return g.coalesceOf(rInt, d)
		case 6:
			return g.castFloatInt(g.gen(rFloat, d))
		case 7:
			return g.tsDiff(g.gen(rTS, d), g.gen(rTS, d))
		}
	case rFloat:
		switch g.r.IntN(7) {
		case 0, 1, 2:
			l, r := g.gen(rFloat, d), g.gen(rInt, d)
			if g.r.IntN(2) == 0 {
				l, r = r, l
			}
			if g.r.IntN(2) == 0 {
				r = g.gen(rFloat, d)
			}
			return g.arith(l, r, ArithOp(g.r.IntN(5)))
		case 3:
			return g.neg(g.gen(rFloat, d))
		case 4:
			return g.caseOf(rFloat, d)
		case 5:
			return g.coalesceOf(rFloat, d)
		case 6:
			x := g.gen(rInt, d)
			return ref{e: g.must(Cast(x.e, sqltypes.Float64)), typ: rFloat, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" || r.v == nil {
					return r
				}
				return refResult{v: float64(r.v.(int64))}
			}}
		}
	case rBool:
		switch g.r.IntN(12) {
		case 0, 1, 2:
			return g.compare()
		case 3, 4:
			return g.logic(g.gen(rBool, d), g.gen(rBool, d), g.r.IntN(2) == 0)
		case 5:
			x := g.gen(rBool, d)
			return ref{e: g.must(Not(x.e)), typ: rBool, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" || r.v == nil {
					return r
				}
				return refResult{v: !r.v.(bool)}
			}}
		case 6:
			x := g.gen(refType(g.r.IntN(5)), d)
			not := g.r.IntN(2) == 0
			return ref{e: IsNull(x.e, not), typ: rBool, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" {
					return r
				}
				return refResult{v: (r.v == nil) != not}
			}}
		case 7:
			x := g.gen(rBool, d)
			val, not := g.r.IntN(2) == 0, g.r.IntN(2) == 0
			return ref{e: g.must(IsBool(x.e, val, not)), typ: rBool, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" {
					return r
				}
				return refResult{v: (r.v != nil && r.v.(bool) == val) != not}
			}}
		case 8:
			return g.in(d)
		case 9:
			return g.between(d)
		case 10:
			return g.caseOf(rBool, d)
		case 11:
			// AND/OR with an untyped NULL.
			x := g.gen(rBool, d)
			null := ref{e: untypedNull(), typ: rBool, eval: func(int) refResult { return refResult{} }}
			if g.r.IntN(2) == 0 {
				return g.logic(x, null, g.r.IntN(2) == 0)
			}
			return g.logic(null, x, g.r.IntN(2) == 0)
		}
	case rStr:
		switch g.r.IntN(5) {
		case 0:
			return g.caseOf(rStr, d)
		case 1:
			return g.coalesceOf(rStr, d)
		case 2:
			x := g.gen(rStr, d)
			upper := g.r.IntN(2) == 0
			name, conv := "lower", strings.ToLower
			if upper {
				name, conv = "upper", strings.ToUpper
			}
			return ref{e: g.must(Func(name, []Expr{x.e})), typ: rStr, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" || r.v == nil {
					return r
				}
				return refResult{v: conv(r.v.(string))}
			}}
		case 3:
			x := g.gen(rInt, d)
			return ref{e: g.must(Cast(x.e, sqltypes.String)), typ: rStr, eval: func(row int) refResult {
				r := x.eval(row)
				if r.code != "" || r.v == nil {
					return r
				}
				return refResult{v: strconv.FormatInt(r.v.(int64), 10)}
			}}
		}
	case rTS:
		if g.r.IntN(2) == 0 {
			return g.arith(g.gen(rTS, d), g.gen(rInt, d), ArithOp(g.r.IntN(2)))
		}
	}
	return g.leaf(t)
}

func toFloat(v any) float64 {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v.(float64)
}

// arith builds l op r; the result type follows the operand types.
func (g *refGen) arith(l, r ref, op ArithOp) ref {
	e := g.must(Arith(op, l.e, r.e))
	typ := rInt
	switch {
	case l.typ == rFloat || r.typ == rFloat:
		typ = rFloat
	case l.typ == rTS || r.typ == rTS:
		typ = rTS
	}
	code := "22003"
	if typ == rTS {
		code = "22008"
	}
	// A NULL constant operand (after folding) makes a strict operator
	// NULL without evaluating the other side, as in PostgreSQL.
	constNull := isNullLiteral(l.e) || isNullLiteral(r.e)
	return ref{e: e, typ: typ, eval: func(row int) refResult {
		if constNull {
			return refResult{}
		}
		a, b := l.eval(row), r.eval(row)
		if a.code != "" {
			return a
		}
		if b.code != "" {
			return b
		}
		if a.v == nil || b.v == nil {
			return refResult{}
		}
		if typ == rFloat {
			x, y := toFloat(a.v), toFloat(b.v)
			switch op {
			case Add:
				return refResult{v: x + y}
			case Sub:
				return refResult{v: x - y}
			case Mul:
				return refResult{v: x * y}
			case Div:
				if y == 0 {
					return refResult{}
				}
				return refResult{v: x / y}
			}
			if y == 0 {
				return refResult{}
			}
			return refResult{v: math.Mod(x, y)}
		}
		x, y := big.NewInt(a.v.(int64)), big.NewInt(b.v.(int64))
		z := new(big.Int)
		switch op {
		case Add:
			z.Add(x, y)
		case Sub:
			z.Sub(x, y)
		case Mul:
			z.Mul(x, y)
		case Div, Mod:
			if y.Sign() == 0 {
				return refResult{}
			}
			if op == Div {
				z.Quo(x, y) // truncates toward zero
			} else {
				z.Rem(x, y) // sign of the dividend
			}
		}
		if !z.IsInt64() {
			return refResult{code: code}
		}
		return refResult{v: z.Int64()}
	}}
}

func (g *refGen) neg(x ref) ref {
	return ref{e: g.must(Neg(x.e)), typ: x.typ, eval: func(row int) refResult {
		r := x.eval(row)
		if r.code != "" || r.v == nil {
			return r
		}
		if f, ok := r.v.(float64); ok {
			return refResult{v: -f}
		}
		if r.v.(int64) == math.MinInt64 {
			return refResult{code: "22003"}
		}
		return refResult{v: -r.v.(int64)}
	}}
}

func (g *refGen) castFloatInt(x ref) ref {
	return ref{e: g.must(Cast(x.e, sqltypes.Int64)), typ: rInt, eval: func(row int) refResult {
		r := x.eval(row)
		if r.code != "" || r.v == nil {
			return r
		}
		f := r.v.(float64)
		// Half away from zero; the range is [-2^63, 2^63).
		rf := math.Trunc(f + math.Copysign(0.5, f))
		if math.Abs(f-math.Trunc(f)) < 0.5 {
			rf = math.Trunc(f)
		}
		if math.IsNaN(f) || rf < -(1<<63) || rf >= 1<<63 {
			return refResult{code: "22003"}
		}
		return refResult{v: int64(rf)}
	}}
}

func (g *refGen) tsDiff(l, r ref) ref {
	constNull := isNullLiteral(l.e) || isNullLiteral(r.e)
	return ref{e: g.must(Arith(Sub, l.e, r.e)), typ: rInt, eval: func(row int) refResult {
		if constNull {
			return refResult{}
		}
		a, b := l.eval(row), r.eval(row)
		if a.code != "" {
			return a
		}
		if b.code != "" {
			return b
		}
		if a.v == nil || b.v == nil {
			return refResult{}
		}
		z := new(big.Int).Sub(big.NewInt(a.v.(int64)), big.NewInt(b.v.(int64)))
		if !z.IsInt64() {
			return refResult{code: "22003"}
		}
		return refResult{v: z.Int64()}
	}}
}

// refCmp orders two non-NULL values of one comparison domain.
func refCmp(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		if y, ok := b.(int64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	x, y := toFloat(a), toFloat(b)
	xn, yn := x != x, y != y
	switch {
	case xn && yn:
		return 0
	case xn:
		return 1
	case yn:
		return -1
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func cmpHolds(op CmpOp, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Ne:
		return c != 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	case Gt:
		return c > 0
	}
	return c >= 0
}

func (g *refGen) compare() ref {
	var l, r ref
	switch g.r.IntN(7) {
	case 0:
		l, r = g.gen(rInt, 2), g.gen(rFloat, 2)
	case 1:
		l, r = g.gen(rFloat, 2), g.gen(rFloat, 2)
	case 2:
		l, r = g.gen(rStr, 2), g.gen(rStr, 2)
	case 3:
		l, r = g.gen(rBool, 1), g.gen(rBool, 1)
	case 4:
		l, r = g.gen(rTS, 1), g.gen(rTS, 1)
	case 5:
		l = g.gen(rInt, 2)
		r = ref{e: untypedNull(), typ: rInt, eval: func(int) refResult { return refResult{} }}
	default:
		l, r = g.gen(rInt, 2), g.gen(rInt, 2)
	}
	if g.r.IntN(2) == 0 {
		l, r = r, l
	}
	op := CmpOp(g.r.IntN(6))
	constNull := isNullLiteral(l.e) || isNullLiteral(r.e)
	return ref{e: g.must(Compare(op, l.e, r.e)), typ: rBool, eval: func(row int) refResult {
		if constNull {
			return refResult{}
		}
		a, b := l.eval(row), r.eval(row)
		if a.code != "" {
			return a
		}
		if b.code != "" {
			return b
		}
		if a.v == nil || b.v == nil {
			return refResult{}
		}
		return refResult{v: cmpHolds(op, refCmp(a.v, b.v))}
	}}
}

// kleene combines two three-valued booleans (nil is NULL).
func kleene(and bool, a, b any) any {
	if and {
		if a == false || b == false {
			return false
		}
		if a == nil || b == nil {
			return nil
		}
		return true
	}
	if a == true || b == true {
		return true
	}
	if a == nil || b == nil {
		return nil
	}
	return false
}

func (g *refGen) logic(l, r ref, and bool) ref {
	var e Expr
	if and {
		e = g.must(And(l.e, r.e))
	} else {
		e = g.must(Or(l.e, r.e))
	}
	return ref{e: e, typ: rBool, eval: func(row int) refResult {
		a, b := l.eval(row), r.eval(row)
		if a.code != "" {
			return a
		}
		if b.code != "" {
			return b
		}
		return refResult{v: kleene(and, a.v, b.v)}
	}}
}

func (g *refGen) in(d int) ref {
	t := []refType{rInt, rStr, rFloat}[g.r.IntN(3)]
	x := g.gen(t, d)
	var list []ref
	for range 1 + g.r.IntN(4) {
		if g.r.IntN(3) == 0 {
			list = append(list, g.gen(t, 1)) // not all constants: the OR chain
		} else {
			list = append(list, g.literal(t))
		}
	}
	exprs := make([]Expr, len(list))
	for i, l := range list {
		exprs[i] = l.e
	}
	not := g.r.IntN(2) == 0
	return ref{e: g.must(In(x.e, exprs, not)), typ: rBool, eval: func(row int) refResult {
		var res any = false
		for _, l := range list {
			if isNullLiteral(x.e) || isNullLiteral(l.e) {
				if res == false { // x = NULL constant: NULL, not evaluated
					res = nil
				}
				continue
			}
			a := x.eval(row)
			if a.code != "" {
				return a
			}
			b := l.eval(row)
			if b.code != "" {
				return b
			}
			switch {
			case a.v == nil || b.v == nil:
				if res == false {
					res = nil
				}
			case refCmp(a.v, b.v) == 0:
				res = true
			}
		}
		if not && res != nil {
			res = !res.(bool)
		}
		return refResult{v: res}
	}}
}

func (g *refGen) between(d int) ref {
	x, lo, hi := g.gen(rInt, d), g.gen(rInt, 1), g.gen(rInt, 1)
	not := g.r.IntN(2) == 0
	return ref{e: g.must(Between(x.e, lo.e, hi.e, not)), typ: rBool, eval: func(row int) refResult {
		// Two comparisons, each NULL without evaluation when one side is a
		// NULL constant.
		side := func(b ref, op CmpOp) refResult {
			if isNullLiteral(x.e) || isNullLiteral(b.e) {
				return refResult{}
			}
			a, c := x.eval(row), b.eval(row)
			if a.code != "" {
				return a
			}
			if c.code != "" {
				return c
			}
			if a.v == nil || c.v == nil {
				return refResult{}
			}
			return refResult{v: cmpHolds(op, refCmp(a.v, c.v))}
		}
		lop, hop := Ge, Le
		if not {
			lop, hop = Lt, Gt
		}
		l, h := side(lo, lop), side(hi, hop)
		if l.code != "" {
			return l
		}
		if h.code != "" {
			return h
		}
		return refResult{v: kleene(!not, l.v, h.v)}
	}}
}

// value converts a branch value to the CASE/COALESCE result type.
func (t refType) value(v any) any {
	if t == rFloat && v != nil {
		return toFloat(v)
	}
	return v
}

// branch returns a value of type t, or of BIGINT when t is DOUBLE
// PRECISION (mixed branches), or an untyped NULL.
func (g *refGen) branch(t refType, d int, first bool) ref {
	switch {
	case first:
		// The first value has the result type, so the CASE or COALESCE
		// has exactly type t.
	case g.r.IntN(8) == 0:
		return ref{e: untypedNull(), typ: t, eval: func(int) refResult { return refResult{} }}
	case t == rFloat && g.r.IntN(2) == 0:
		return g.gen(rInt, d)
	}
	return g.gen(t, d)
}

func (g *refGen) caseOf(t refType, d int) ref {
	type arm struct{ cond, then ref }
	var arms []arm
	whens := []When{}
	var operand *ref
	if g.r.IntN(3) == 0 {
		o := g.gen(rInt, d)
		operand = &o
	}
	for range 1 + g.r.IntN(3) {
		var c ref
		if operand != nil {
			c = g.gen(rInt, d)
		} else {
			c = g.gen(rBool, d)
		}
		a := arm{cond: c, then: g.branch(t, d, len(arms) == 0)}
		arms = append(arms, a)
		whens = append(whens, When{Cond: a.cond.e, Then: a.then.e})
	}
	var els *ref
	var elsE Expr
	if g.r.IntN(3) != 0 {
		e := g.branch(t, d, false)
		els, elsE = &e, e.e
	}
	var opE Expr
	if operand != nil {
		opE = operand.e
	}
	e := g.must(Case(opE, whens, elsE))
	return ref{e: e, typ: t, eval: func(row int) refResult {
		for _, a := range arms {
			// A simple CASE evaluates operand = value per arm; with a NULL
			// constant on either side that is NULL, and not evaluated.
			var op refResult
			if operand != nil {
				if isNullLiteral(operand.e) || isNullLiteral(a.cond.e) {
					continue
				}
				if op = operand.eval(row); op.code != "" {
					return op
				}
			}
			c := a.cond.eval(row)
			if c.code != "" {
				return c
			}
			hit := false
			if operand != nil {
				hit = op.v != nil && c.v != nil && refCmp(op.v, c.v) == 0
			} else {
				hit = c.v == true
			}
			if hit {
				r := a.then.eval(row)
				r.v = t.value(r.v)
				return r
			}
		}
		if els == nil {
			return refResult{}
		}
		r := els.eval(row)
		r.v = t.value(r.v)
		return r
	}}
}

func (g *refGen) coalesceOf(t refType, d int) ref {
	var args []ref
	var exprs []Expr
	for range 1 + g.r.IntN(3) {
		a := g.branch(t, d, len(args) == 0)
		args = append(args, a)
		exprs = append(exprs, a.e)
	}
	return ref{e: g.must(Coalesce(exprs)), typ: t, eval: func(row int) refResult {
		for _, a := range args {
			r := a.eval(row)
			if r.code != "" || r.v != nil {
				r.v = t.value(r.v)
				return r
			}
		}
		return refResult{}
	}}
}

// batch builds a random batch of n rows, with NULLs in every column but
// i3 and with a few leading rows sliced off so arrays have an offset.
func (g *refGen) batch(mem memory.Allocator, n int) arrow.RecordBatch {
	skip := g.r.IntN(5)
	fields := make([]arrow.Field, len(refCols))
	for i, c := range refCols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ.arrow(), Nullable: true}
	}
	bld := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer bld.Release()
	g.rows = g.rows[:0]
	for r := range skip + n {
		row := make([]any, len(refCols))
		for c, col := range refCols {
			var v any
			if col.name == "i3" || g.r.IntN(5) != 0 {
				v = g.randValue(col.typ)
			}
			row[c] = v
			fb := bld.Field(c)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch x := fb.(type) {
			case *array.Int64Builder:
				x.Append(v.(int64))
			case *array.Float64Builder:
				x.Append(v.(float64))
			case *array.StringBuilder:
				x.Append(v.(string))
			case *array.BooleanBuilder:
				x.Append(v.(bool))
			case *array.TimestampBuilder:
				x.Append(arrow.Timestamp(v.(int64)))
			}
		}
		if r >= skip {
			g.rows = append(g.rows, row)
		}
	}
	raw := bld.NewRecordBatch()
	defer raw.Release()
	return raw.NewSlice(int64(skip), int64(skip+n))
}

var diffSeeds = flag.Int("diff.seeds", 1, "TestDifferential: number of random seeds to run (450 expressions each)")

func TestDifferential(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sizes := []int{0, 1, 2, 7, 8, 9, 64, 65, 200}
	const batches, perBatch = 30, 15
	total, errored, failures := 0, 0, 0
	for seed := range uint64(*diffSeeds) {
		g := &refGen{r: rand.New(rand.NewPCG(seed, 12345)), t: t}
		for range batches {
			b := g.batch(mem, sizes[g.r.IntN(len(sizes))])
			for range perBatch {
				x := g.gen(refType(g.r.IntN(5)), 4)
				if !arrow.TypeEqual(x.e.Type(), x.typ.arrow()) && !isNullType(x.e.Type()) {
					t.Fatalf("%s: type %s, reference %s", x.e, x.e.Type(), x.typ.arrow())
				}
				msg, failed := checkRef(mem, b, x, g.rows, 0)
				// The same over slices of the batch, at offsets on and off
				// byte boundaries.
				for _, k := range []int{1, 8, 9} {
					if msg == "" && k < int(b.NumRows()) {
						s := b.NewSlice(int64(k), b.NumRows())
						if m, _ := checkRef(mem, s, x, g.rows, k); m != "" {
							msg = fmt.Sprintf("from row %d: %s", k, m)
						}
						s.Release()
					}
				}
				total++
				if failed {
					errored++
				}
				if msg != "" {
					t.Errorf("seed %d: %s over %d rows: %s", seed, x.e, b.NumRows(), msg)
					if failures++; failures > 10 {
						b.Release()
						t.FailNow()
					}
				}
			}
			b.Release()
		}
	}
	// The generator must exercise the error paths, but not mostly them.
	t.Logf("%d of %d evaluations failed with an error", errored, total)
	if errored == 0 || errored > total/3 {
		t.Errorf("%d of %d evaluations failed: the generator is off balance", errored, total)
	}
}

// checkRef compares the package's evaluation of x over b, which holds
// rows[base:], with the reference, and returns a description of the first difference and
// whether the evaluation failed.
func checkRef(mem memory.Allocator, b arrow.RecordBatch, x ref, rows [][]any, base int) (string, bool) {
	rows = rows[base:]
	want := make([]refResult, len(rows))
	codes := map[string]bool{}
	for i := range rows {
		want[i] = x.eval(base + i)
		if want[i].code != "" {
			codes[want[i].code] = true
		}
	}
	a, err := x.e.Eval(mem, b)
	if err != nil {
		if len(codes) == 0 {
			return fmt.Sprintf("fails with %v, reference has no error", err), true
		}
		if _, ok := sqlerr.As(err); !ok || !codes[sqlerr.Code(err)] {
			return fmt.Sprintf("fails with %v, reference codes %v", err, codes), true
		}
		return "", true
	}
	defer a.Release()
	if len(codes) > 0 {
		return fmt.Sprintf("succeeds, reference fails with %v", codes), false
	}
	if a.Len() != len(rows) {
		return fmt.Sprintf("%d values for %d rows", a.Len(), len(rows)), false
	}
	for i, w := range want {
		got := refValueOf(a, i)
		if !refEqual(got, w.v) {
			return fmt.Sprintf("row %d (%v): got %v, want %v", i, rows[i], got, w.v), false
		}
	}
	return "", false
}

func refValueOf(a arrow.Array, i int) any {
	if isNullType(a.DataType()) || a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Int64:
		return x.Value(i)
	case *array.Float64:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.Boolean:
		return x.Value(i)
	case *array.Timestamp:
		return int64(x.Value(i))
	}
	return fmt.Sprintf("unexpected %T", a)
}

func refEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && refCmp(fa, fb) == 0
	}
	return a == b
}
