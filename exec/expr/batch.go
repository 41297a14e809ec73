package expr

import (
	"math/bits"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// Filter returns the rows of b for which pred is TRUE; NULL and FALSE rows
// are dropped. pred must be BOOLEAN (or a NULL literal, which drops every
// row); otherwise 42804. The result is b itself, retained, when every row
// passes, and a zero-copy slice of b when the passing rows are contiguous;
// otherwise new arrays. The caller releases the result.
func Filter(mem memory.Allocator, b arrow.RecordBatch, pred Expr) (arrow.RecordBatch, error) {
	pt := pred.Type()
	if isNullType(pt) {
		return b.NewSlice(0, 0), nil
	}
	if !isBool(pt) {
		return nil, errArgType("WHERE", pt)
	}
	p, err := pred.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer p.Release()
	n := nrows(b)
	sel := boolValues(p)
	if vm := alignedValidity(p); vm != nil {
		// sel may alias p's buffer: copy before masking.
		sel = slices.Clone(sel)
		for i := range sel {
			sel[i] &= vm[i]
		}
	}
	// Bits past n in the last byte are arbitrary: mask them off.
	if n%8 != 0 {
		sel = slices.Clone(sel)
		sel[len(sel)-1] &= byte(1)<<(n%8) - 1
	}
	count, first, last := 0, -1, -1
	for i, w := range sel {
		if w == 0 {
			continue
		}
		count += bits.OnesCount8(w)
		if first < 0 {
			first = i*8 + bits.TrailingZeros8(w)
		}
		last = i*8 + 7 - bits.LeadingZeros8(w)
	}
	switch {
	case count == n:
		b.Retain()
		return b, nil
	case count == 0:
		return b.NewSlice(0, 0), nil
	case last-first+1 == count:
		return b.NewSlice(int64(first), int64(last+1)), nil
	}
	idx := make([]int32, 0, count)
	for i, w := range sel {
		for w != 0 {
			t := bits.TrailingZeros8(w)
			idx = append(idx, int32(i*8+t))
			w &= w - 1
		}
	}
	return takeBatch(mem, b, idx)
}

// Project evaluates exprs over b into a new batch with schema. schema must
// have one field per expression, of the expression's type (an expression of
// type sqltypes.Null fills a field of any type with NULLs); a nil schema is
// built from the expressions, named by their String form. The caller
// releases the result.
func Project(mem memory.Allocator, b arrow.RecordBatch, exprs []Expr, schema *arrow.Schema) (arrow.RecordBatch, error) {
	if schema == nil {
		fields := make([]arrow.Field, len(exprs))
		for i, e := range exprs {
			fields[i] = arrow.Field{Name: e.String(), Type: e.Type(), Nullable: true}
		}
		schema = arrow.NewSchema(fields, nil)
	}
	if schema.NumFields() != len(exprs) {
		return nil, sqlerr.New(pgerrcode.InternalError, "project: %d expressions for a schema of %d fields", len(exprs), schema.NumFields())
	}
	n := nrows(b)
	cols := make([]arrow.Array, len(exprs))
	defer func() { releaseAll(cols) }()
	for i, e := range exprs {
		ft := schema.Field(i).Type
		et := e.Type()
		switch {
		case arrow.TypeEqual(ft, et):
		case isNullType(et):
			cols[i] = array.MakeArrayOfNull(mem, ft, n)
			continue
		default:
			return nil, sqlerr.New(pgerrcode.InternalError, "project: field %q has type %s, expression %s has type %s",
				schema.Field(i).Name, ft, e, et)
		}
		a, err := e.Eval(mem, b)
		if err != nil {
			return nil, err
		}
		cols[i] = a
	}
	return array.NewRecordBatch(schema, cols, int64(n)), nil
}

// SortKey is one ORDER BY key. NULLs sort first when NullsFirst is set,
// whatever Desc says; PostgreSQL's default is NULLS LAST for ASC and NULLS
// FIRST for DESC, which the caller sets explicitly.
type SortKey struct {
	Expr       Expr
	Desc       bool
	NullsFirst bool
}

// String renders the key as ORDER BY would.
func (k SortKey) String() string {
	s := k.Expr.String()
	if k.Desc {
		s += " DESC"
	}
	if k.NullsFirst != k.Desc {
		if k.NullsFirst {
			s += " NULLS FIRST"
		} else {
			s += " NULLS LAST"
		}
	}
	return s
}

// Sort returns b's rows ordered by keys, stably: rows with equal keys keep
// their order. Values order as comparisons do (TEXT by bytes, false <
// true, DOUBLE PRECISION with NaN above every number). The caller releases
// the result; with no keys it is b, retained.
func Sort(mem memory.Allocator, b arrow.RecordBatch, keys []SortKey) (arrow.RecordBatch, error) {
	if len(keys) == 0 {
		b.Retain()
		return b, nil
	}
	n := nrows(b)
	exprs := make([]Expr, len(keys))
	for i, k := range keys {
		exprs[i] = k.Expr
	}
	arrs, err := evalAll(mem, b, exprs)
	if err != nil {
		return nil, err
	}
	defer releaseAll(arrs)
	cmps := make([]func(i, j int) int, len(keys))
	for k, a := range arrs {
		cmps[k] = keyComparer(a, keys[k])
	}
	perm := allRows(n)
	slices.SortStableFunc(perm, func(x, y int32) int {
		for _, c := range cmps {
			if d := c(int(x), int(y)); d != 0 {
				return d
			}
		}
		return 0
	})
	sorted := true
	for i, r := range perm {
		if int(r) != i {
			sorted = false
			break
		}
	}
	if sorted {
		b.Retain()
		return b, nil
	}
	return takeBatch(mem, b, perm)
}

// keyComparer orders rows of a by one sort key, NULLs included.
func keyComparer(a arrow.Array, k SortKey) func(i, j int) int {
	vals := rowComparer(a, a)
	if isNullType(a.DataType()) {
		return func(i, j int) int { return 0 }
	}
	nullOrder := 1 // a NULL row compares greater
	if k.NullsFirst {
		nullOrder = -1
	}
	hasNulls := a.NullN() > 0
	return func(i, j int) int {
		if hasNulls {
			ni, nj := a.IsNull(i), a.IsNull(j)
			switch {
			case ni && nj:
				return 0
			case ni:
				return nullOrder
			case nj:
				return -nullOrder
			}
		}
		d := vals(i, j)
		if k.Desc {
			return -d
		}
		return d
	}
}

// Slice returns rows [offset, offset+limit) of b, as LIMIT limit OFFSET
// offset does; limit < 0 means no limit and bounds are clamped to b. The
// result is a zero-copy slice the caller releases.
func Slice(b arrow.RecordBatch, offset, limit int64) arrow.RecordBatch {
	n := b.NumRows()
	offset = min(max(offset, 0), n)
	end := n
	if limit >= 0 && limit < n-offset {
		end = offset + limit
	}
	return b.NewSlice(offset, end)
}
