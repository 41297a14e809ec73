package expr

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// boolArg checks that e is BOOLEAN (a NULL literal becomes a BOOLEAN NULL).
func boolArg(construct string, e Expr) (Expr, error) {
	switch t := e.Type(); {
	case isBool(t):
		return e, nil
	case isNullType(t):
		return coerce(e, sqltypes.Bool)
	default:
		return nil, errArgType(construct, t)
	}
}

type logic struct {
	and  bool
	l, r Expr
}

// And returns l AND r with three-valued logic: FALSE if either side is
// FALSE, else NULL if either is NULL, else TRUE. Both sides are evaluated
// for every row. Operands must be BOOLEAN (42804 otherwise).
func And(l, r Expr) (Expr, error) { return newLogic(true, l, r) }

// Or returns l OR r with three-valued logic: TRUE if either side is TRUE,
// else NULL if either is NULL, else FALSE.
func Or(l, r Expr) (Expr, error) { return newLogic(false, l, r) }

func newLogic(and bool, l, r Expr) (Expr, error) {
	name := "OR"
	if and {
		name = "AND"
	}
	l, err := boolArg(name, l)
	if err != nil {
		return nil, err
	}
	if r, err = boolArg(name, r); err != nil {
		return nil, err
	}
	return &logic{and: and, l: l, r: r}, nil
}

func (g *logic) Type() arrow.DataType { return sqltypes.Bool }
func (g *logic) String() string {
	op := " OR "
	if g.and {
		op = " AND "
	}
	return "(" + g.l.String() + op + g.r.String() + ")"
}

func (g *logic) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	la, err := g.l.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	ra, err := g.r.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	n := nrows(b)
	lv, rv := boolValues(la), boolValues(ra)
	lm, rm := alignedValidity(la), alignedValidity(ra)
	vals := newBitmap(mem, n, false)
	valid := newBitmap(mem, n, false)
	ov, om := vals.Bytes(), valid.Bytes()
	for i := range ov {
		lk, rk := byte(0xFF), byte(0xFF) // known (non-NULL) bits
		if lm != nil {
			lk = lm[i]
		}
		if rm != nil {
			rk = rm[i]
		}
		lt, lf := lk&lv[i], lk&^lv[i]
		rt, rf := rk&rv[i], rk&^rv[i]
		if g.and {
			t, f := lt&rt, lf|rf
			ov[i], om[i] = t, t|f
		} else {
			t, f := lt|rt, lf&rf
			ov[i], om[i] = t, t|f
		}
	}
	return newBool(n, valid, vals), nil
}

type notExpr struct{ e Expr }

// Not returns NOT e: NULL stays NULL. The operand must be BOOLEAN.
func Not(e Expr) (Expr, error) {
	e, err := boolArg("NOT", e)
	if err != nil {
		return nil, err
	}
	return &notExpr{e: e}, nil
}

func (x *notExpr) Type() arrow.DataType { return sqltypes.Bool }
func (x *notExpr) String() string       { return "(NOT " + x.e.String() + ")" }

func (x *notExpr) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := x.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	n := nrows(b)
	in := boolValues(a)
	vals := newBitmap(mem, n, false)
	ov := vals.Bytes()
	for i := range ov {
		ov[i] = ^in[i]
	}
	return newBool(n, andValidity(mem, n, a), vals), nil
}

type isNull struct {
	e   Expr
	not bool
}

// IsNull returns e IS NULL, or e IS NOT NULL when not is set. The result is
// never NULL. e may have any type.
func IsNull(e Expr, not bool) Expr { return &isNull{e: e, not: not} }

func (x *isNull) Type() arrow.DataType { return sqltypes.Bool }
func (x *isNull) String() string {
	if x.not {
		return "(" + x.e.String() + " IS NOT NULL)"
	}
	return "(" + x.e.String() + " IS NULL)"
}

func (x *isNull) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := x.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	n := nrows(b)
	vm := alignedValidity(a)
	vals := newBitmap(mem, n, x.not)
	if vm != nil {
		ov := vals.Bytes()
		for i := range ov {
			if x.not {
				ov[i] = vm[i]
			} else {
				ov[i] = ^vm[i]
			}
		}
	}
	return newBool(n, nil, vals), nil
}

type isBoolExpr struct {
	e        Expr
	val, not bool
}

// IsBool returns e IS TRUE (val true) or e IS FALSE (val false), negated
// to IS NOT TRUE / IS NOT FALSE when not is set. NULL is neither TRUE nor
// FALSE, so the result is never NULL. e must be BOOLEAN (42804 otherwise).
func IsBool(e Expr, val bool, not bool) (Expr, error) {
	name := "IS FALSE"
	if val {
		name = "IS TRUE"
	}
	e, err := boolArg(name, e)
	if err != nil {
		return nil, err
	}
	return &isBoolExpr{e: e, val: val, not: not}, nil
}

func (x *isBoolExpr) Type() arrow.DataType { return sqltypes.Bool }
func (x *isBoolExpr) String() string {
	s := "(" + x.e.String() + " IS "
	if x.not {
		s += "NOT "
	}
	if x.val {
		return s + "TRUE)"
	}
	return s + "FALSE)"
}

func (x *isBoolExpr) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := x.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	n := nrows(b)
	in, vm := boolValues(a), alignedValidity(a)
	vals := newBitmap(mem, n, false)
	ov := vals.Bytes()
	for i := range ov {
		k := byte(0xFF)
		if vm != nil {
			k = vm[i]
		}
		v := in[i]
		if !x.val {
			v = ^v
		}
		v &= k
		if x.not {
			v = ^v
		}
		ov[i] = v
	}
	return newBool(n, nil, vals), nil
}

type in struct {
	e    Expr
	list []Expr
	not  bool
	// For a list of constants: the value set in e's comparison domain.
	dom      domain
	ints     map[int64]struct{}
	flts     map[uint64]struct{} // normalized bits: one NaN, +0 for -0
	strSet   map[string]struct{}
	bools    [2]bool // bools[0] false present, bools[1] true present
	hasNull  bool    // the list holds a NULL: no match gives NULL
	chain    Expr    // otherwise: e = x1 OR e = x2 ...
	constant bool
}

// In returns e IN (list), or e NOT IN (list) when not is set, with SQL
// semantics: NULL when e is NULL; TRUE when e equals an element; otherwise
// NULL when the list holds a NULL, else FALSE. NOT IN negates that (NULL
// stays NULL). Each element is compared with e as Compare does. A list of
// constants is compiled once into a hash set; any other list evaluates as
// e = x1 OR e = x2 OR ... (e once per element).
func In(e Expr, list []Expr, not bool) (Expr, error) {
	x := &in{e: e, list: list, not: not}
	if len(list) == 0 {
		return nil, errSyntax("IN list must not be empty")
	}
	cmps := make([]*compare, len(list))
	for i, item := range list {
		c, err := Compare(Eq, e, item)
		if err != nil {
			return nil, err
		}
		cmps[i] = c.(*compare)
	}
	x.constant = true
	for _, c := range cmps {
		// The constant path needs e itself (not a coercion of it) on the left.
		_, isLit := asLiteral(c.r)
		if !isLit || (c.dom != domNull && c.l != e) || (c.dom != cmps[0].dom && c.dom != domNull) {
			x.constant = false
		}
	}
	if !x.constant {
		var chain Expr = cmps[0]
		for _, c := range cmps[1:] {
			chain = &logic{and: false, l: chain, r: c}
		}
		if not {
			chain = &notExpr{e: chain}
		}
		x.chain = chain
		return x, nil
	}
	x.dom = domNull
	for _, c := range cmps {
		if c.dom != domNull {
			x.dom = c.dom
		}
	}
	switch x.dom {
	case domInt:
		x.ints = make(map[int64]struct{}, len(list))
	case domFloat:
		x.flts = make(map[uint64]struct{}, len(list))
	case domString:
		x.strSet = make(map[string]struct{}, len(list))
	}
	for _, c := range cmps {
		l, _ := asLiteral(c.r)
		if c.dom == domNull || l.null {
			x.hasNull = true
			continue
		}
		switch x.dom {
		case domInt:
			x.ints[l.i] = struct{}{}
		case domFloat:
			x.flts[floatKey(l.f)] = struct{}{}
		case domString:
			x.strSet[l.s] = struct{}{}
		case domBool:
			x.bools[b2u(l.b)] = true
		}
	}
	return x, nil
}

// floatKey is a float's identity for hashing: all NaNs are one value and
// -0 equals +0, as PostgreSQL's float equality has it.
func floatKey(f float64) uint64 {
	switch {
	case f != f:
		return math.Float64bits(math.NaN())
	case f == 0:
		return 0
	}
	return math.Float64bits(f)
}

// hasValues reports whether the constant list has a non-NULL element.
func (x *in) hasValues() bool {
	return len(x.ints) > 0 || len(x.flts) > 0 || len(x.strSet) > 0 || x.bools[0] || x.bools[1]
}

func (x *in) Type() arrow.DataType { return sqltypes.Bool }
func (x *in) String() string {
	op := " IN ("
	if x.not {
		op = " NOT IN ("
	}
	return "(" + x.e.String() + op + renderList(x.list) + "))"
}

func (x *in) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	if x.chain != nil {
		return x.chain.Eval(mem, b)
	}
	n := nrows(b)
	if x.dom == domNull || x.hasNull && !x.hasValues() {
		// Every element is NULL: e = NULL is NULL without evaluating e.
		return array.MakeArrayOfNull(mem, sqltypes.Bool, n), nil
	}
	a, err := x.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	vals := newBitmap(mem, n, false)
	found := vals.Bytes()
	switch x.dom {
	case domInt:
		for i, v := range words(a) {
			_, ok := x.ints[v]
			found[i>>3] |= b2u(ok) << (i & 7)
		}
	case domFloat:
		for i, v := range floats(a) {
			_, ok := x.flts[floatKey(v)]
			found[i>>3] |= b2u(ok) << (i & 7)
		}
	case domString:
		s := stringsOf(a)
		for i := range n {
			_, ok := x.strSet[string(s.at(i))]
			found[i>>3] |= b2u(ok) << (i & 7)
		}
	case domBool:
		ba := a.(*array.Boolean)
		for i := range n {
			found[i>>3] |= b2u(x.bools[b2u(ba.Value(i))]) << (i & 7)
		}
	}
	// Valid where e is valid and (found or the list has no NULL).
	valid := newBitmap(mem, n, true)
	vb := valid.Bytes()
	vm := alignedValidity(a)
	for i := range vb {
		k := byte(0xFF)
		if vm != nil {
			k = vm[i]
		}
		if x.hasNull {
			k &= found[i]
		}
		vb[i] = k
		if x.not {
			found[i] = ^found[i]
		}
	}
	return newBool(n, valid, vals), nil
}

type between struct {
	e, lo, hi Expr
	not       bool
	inner     Expr
}

// Between returns e BETWEEN lo AND hi, that is e >= lo AND e <= hi, or
// e NOT BETWEEN lo AND hi, that is e < lo OR e > hi, with three-valued
// logic. Each comparison is typed as Compare types it; e is evaluated twice.
func Between(e, lo, hi Expr, not bool) (Expr, error) {
	lop, hop := Ge, Le
	if not {
		lop, hop = Lt, Gt
	}
	l, err := Compare(lop, e, lo)
	if err != nil {
		return nil, err
	}
	h, err := Compare(hop, e, hi)
	if err != nil {
		return nil, err
	}
	return &between{e: e, lo: lo, hi: hi, not: not, inner: &logic{and: !not, l: l, r: h}}, nil
}

func (x *between) Type() arrow.DataType { return sqltypes.Bool }
func (x *between) String() string {
	op := " BETWEEN "
	if x.not {
		op = " NOT BETWEEN "
	}
	return "(" + x.e.String() + op + x.lo.String() + " AND " + x.hi.String() + ")"
}

func (x *between) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	return x.inner.Eval(mem, b)
}
