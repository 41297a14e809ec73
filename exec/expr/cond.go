package expr

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// When is one WHEN ... THEN ... arm of a CASE. In a simple CASE (with an
// operand) Cond is the value compared with the operand; in a searched CASE
// it is a BOOLEAN condition.
type When struct{ Cond, Then Expr }

type caseExpr struct {
	operand Expr   // for rendering; nil for a searched CASE
	whens   []When // as given, for rendering
	els     Expr   // as given, for rendering; nil when absent
	conds   []Expr // BOOLEAN conditions
	thens   []Expr // coerced to typ
	other   Expr   // ELSE coerced to typ (a typed NULL when absent)
	typ     arrow.DataType
}

// Case returns CASE [operand] WHEN ... THEN ... [ELSE els] END.
//
// A simple CASE compares the operand with each WHEN value as Compare(Eq)
// does; a searched CASE needs BOOLEAN conditions (42804 otherwise). The
// first arm whose condition is TRUE gives the row's value (NULL and FALSE
// fall through); no match gives els, or NULL when els is nil. The result
// type is the common type of the THEN and ELSE values (see CommonType; string
// literals and NULLs adopt the others' type; 42804 when they cannot be
// matched).
//
// Evaluation: a condition is needed only for rows no earlier arm took, and
// a THEN value only for the rows that take it. Each is evaluated over the
// whole batch first; only if that fails is it evaluated again over just the
// rows that need it, so an error in a branch a row does not take (a cast of
// text that does not parse, an overflow) never fails the batch. Arms no row
// takes are not evaluated.
func Case(operand Expr, whens []When, els Expr) (Expr, error) {
	if len(whens) == 0 {
		return nil, errSyntax("CASE must have at least one WHEN")
	}
	c := &caseExpr{operand: operand, whens: whens, els: els}
	for _, w := range whens {
		var cond Expr
		var err error
		if operand != nil {
			cond, err = Compare(Eq, operand, w.Cond)
		} else {
			cond, err = boolArg("CASE/WHEN", w.Cond)
		}
		if err != nil {
			return nil, err
		}
		c.conds = append(c.conds, cond)
	}
	vals := make([]Expr, 0, len(whens)+1)
	for _, w := range whens {
		vals = append(vals, w.Then)
	}
	if els != nil {
		vals = append(vals, els)
	}
	vals, t, err := unify("CASE", vals)
	if err != nil {
		return nil, err
	}
	c.typ = t
	c.thens = vals[:len(whens)]
	if els != nil {
		c.other = vals[len(whens)]
	} else {
		c.other = &literal{typ: t, null: true}
	}
	return c, nil
}

func (c *caseExpr) Type() arrow.DataType { return c.typ }
func (c *caseExpr) String() string {
	var sb strings.Builder
	sb.WriteString("CASE")
	if c.operand != nil {
		sb.WriteString(" " + c.operand.String())
	}
	for _, w := range c.whens {
		sb.WriteString(" WHEN " + w.Cond.String() + " THEN " + w.Then.String())
	}
	if c.els != nil {
		sb.WriteString(" ELSE " + c.els.String())
	}
	sb.WriteString(" END")
	return sb.String()
}

func (c *caseExpr) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if isNullType(c.typ) {
		return array.MakeArrayOfNull(mem, c.typ, n), nil
	}
	srcs := make([]arrow.Array, len(c.thens)+1)
	defer func() { releaseAll(srcs) }()
	choice := make([]int32, n)
	for i := range choice {
		choice[i] = -1
	}
	remaining := allRows(n)
	var taken, rest []int32
	for k, cond := range c.conds {
		if len(remaining) == 0 {
			break
		}
		ca, err := evalOn(mem, b, cond, remaining)
		if err != nil {
			return nil, err
		}
		cb := ca.(*array.Boolean)
		taken, rest = taken[:0], rest[:0]
		for _, r := range remaining {
			if cb.IsValid(int(r)) && cb.Value(int(r)) {
				taken = append(taken, r)
			} else {
				rest = append(rest, r)
			}
		}
		ca.Release()
		if len(taken) > 0 {
			ta, err := evalOn(mem, b, c.thens[k], taken)
			if err != nil {
				return nil, err
			}
			srcs[k] = ta
			for _, r := range taken {
				choice[r] = int32(k)
			}
		}
		remaining, rest = rest, remaining
	}
	if len(remaining) > 0 {
		ea, err := evalOn(mem, b, c.other, remaining)
		if err != nil {
			return nil, err
		}
		last := len(srcs) - 1
		srcs[last] = ea
		for _, r := range remaining {
			choice[r] = int32(last)
		}
	}
	return pick(mem, c.typ, n, srcs, choice)
}

type coalesce struct {
	args []Expr // coerced to typ
	orig []Expr // as given, for rendering
	typ  arrow.DataType
}

// Coalesce returns the first non-NULL argument per row, or NULL. Arguments
// resolve to one type as CASE values do ("COALESCE types ... cannot be
// matched", 42804). An argument is needed only for rows where all earlier
// ones are NULL, with the same error rule as Case.
func Coalesce(args []Expr) (Expr, error) {
	if len(args) == 0 {
		return nil, sqlerr.New(pgerrcode.UndefinedFunction, "function coalesce() does not exist")
	}
	vals, t, err := unify("COALESCE", args)
	if err != nil {
		return nil, err
	}
	return &coalesce{args: vals, orig: args, typ: t}, nil
}

func (c *coalesce) Type() arrow.DataType { return c.typ }
func (c *coalesce) String() string       { return "COALESCE(" + renderList(c.orig) + ")" }

func (c *coalesce) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if isNullType(c.typ) {
		return array.MakeArrayOfNull(mem, c.typ, n), nil
	}
	srcs := make([]arrow.Array, len(c.args))
	defer func() { releaseAll(srcs) }()
	choice := make([]int32, n)
	for i := range choice {
		choice[i] = -1
	}
	remaining := allRows(n)
	var rest []int32
	for k, arg := range c.args {
		if len(remaining) == 0 {
			break
		}
		a, err := evalOn(mem, b, arg, remaining)
		if err != nil {
			return nil, err
		}
		if k == 0 && a.NullN() == 0 {
			return a, nil
		}
		srcs[k] = a
		rest = rest[:0]
		for _, r := range remaining {
			if a.IsValid(int(r)) {
				choice[r] = int32(k)
			} else {
				rest = append(rest, r)
			}
		}
		remaining, rest = rest, remaining
	}
	return pick(mem, c.typ, n, srcs, choice)
}

type nullIf struct {
	a, b Expr
	eq   Expr // a = b
}

// NullIf returns NULL where a = b is TRUE, else a. a and b are compared as
// Compare(Eq) compares them; the result has a's type (a string literal or
// NULL first argument takes b's type).
func NullIf(a, b Expr) (Expr, error) {
	if isUnknownLiteral(a) && !isUnknownLiteral(b) {
		var err error
		if a, err = coerce(a, b.Type()); err != nil {
			return nil, err
		}
	}
	eq, err := Compare(Eq, a, b)
	if err != nil {
		return nil, err
	}
	return &nullIf{a: a, b: b, eq: eq}, nil
}

func (x *nullIf) Type() arrow.DataType { return x.a.Type() }
func (x *nullIf) String() string       { return "NULLIF(" + x.a.String() + ", " + x.b.String() + ")" }

func (x *nullIf) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := x.a.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	if isNullType(a.DataType()) {
		a.Retain()
		return a, nil
	}
	eq, err := x.eq.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer eq.Release()
	// Keep a's value buffers (and offset); only validity changes.
	n := nrows(b)
	d := a.Data()
	off := d.Offset()
	valid := newBitmap(mem, off+n, false)
	vb := valid.Bytes()
	ab, aoff := validity(a)
	eb := eq.(*array.Boolean)
	nulls := 0
	for i := range n {
		if (ab == nil || bitutil.BitIsSet(ab, aoff+i)) && !(eb.IsValid(i) && eb.Value(i)) {
			bitutil.SetBit(vb, off+i)
		} else {
			nulls++
		}
	}
	bufs := append([]*memory.Buffer{valid}, d.Buffers()[1:]...)
	nd := array.NewData(a.DataType(), n, bufs, nil, nulls, off)
	valid.Release()
	out := array.MakeFromData(nd)
	nd.Release()
	return out, nil
}
