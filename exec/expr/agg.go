package expr

import (
	"bytes"
	"encoding/binary"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// AggKind is an aggregate function.
type AggKind int

// The aggregate functions.
const (
	CountStar     AggKind = iota // COUNT(*): rows
	Count                        // COUNT(x): non-NULL values
	Sum                          // SUM(x)
	Min                          // MIN(x)
	Max                          // MAX(x)
	Avg                          // AVG(x)
	CountDistinct                // COUNT(DISTINCT x): distinct non-NULL values
)

// String returns the function's SQL name.
func (k AggKind) String() string {
	switch k {
	case CountStar, Count, CountDistinct:
		return "count"
	case Sum:
		return "sum"
	case Min:
		return "min"
	case Max:
		return "max"
	case Avg:
		return "avg"
	}
	return "?"
}

// Agg is one aggregate of GroupAggregate.
type Agg struct {
	Kind AggKind
	Arg  Expr // nil for CountStar
}

// String renders the aggregate as SQL, e.g. count(DISTINCT title_id).
func (a Agg) String() string {
	switch {
	case a.Kind == CountStar || a.Arg == nil:
		return "count(*)"
	case a.Kind == CountDistinct:
		return "count(DISTINCT " + a.Arg.String() + ")"
	}
	return a.Kind.String() + "(" + a.Arg.String() + ")"
}

// AggType returns the result type of kind over an argument of type arg
// (ignored for CountStar). COUNT of anything is BIGINT. SUM of BIGINT is
// BIGINT (22003 on overflow), of DOUBLE PRECISION is DOUBLE PRECISION. AVG
// of either is DOUBLE PRECISION. MIN and MAX keep the type of BIGINT,
// DOUBLE PRECISION, TEXT and timestamps. An argument of type sqltypes.Null
// gives BIGINT for SUM, DOUBLE PRECISION for AVG and Null for MIN/MAX.
// Anything else is 42883 "function sum(text) does not exist", as in
// PostgreSQL (which has no MIN/MAX of BOOLEAN either).
func AggType(kind AggKind, arg arrow.DataType) (arrow.DataType, error) {
	switch kind {
	case CountStar, Count, CountDistinct:
		return sqltypes.Int64, nil
	case Sum:
		switch {
		case isInt(arg), isNullType(arg):
			return sqltypes.Int64, nil
		case isFloat(arg):
			return sqltypes.Float64, nil
		}
	case Avg:
		if isNumeric(arg) || isNullType(arg) {
			return sqltypes.Float64, nil
		}
	case Min, Max:
		if isNumeric(arg) || isString(arg) || isTS(arg) || isNullType(arg) {
			return arg, nil
		}
	default:
		return nil, sqlerr.New(pgerrcode.InternalError, "aggregate kind %d is not defined", int(kind))
	}
	return nil, sqlerr.New(pgerrcode.UndefinedFunction, "function %s(%s) does not exist", kind, typeName(arg)).
		WithHint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

// GroupAggregate groups the rows of b by the values of groupBy and computes
// aggs per group, in one pass over one batch (for SELECTs over a result
// table; the streaming window aggregates live elsewhere).
//
// The output has the group columns, then one column per aggregate, named
// by their String forms. Groups appear in the order of their first row.
// NULL group keys are equal to each other, so they form one group; DOUBLE
// PRECISION keys group -0 with 0 and all NaNs together. Without groupBy the
// output has exactly one row, even for an empty b.
//
// Aggregates ignore NULL inputs; SUM, MIN, MAX and AVG of no non-NULL value
// are NULL, COUNT is 0. The caller releases the result.
func GroupAggregate(mem memory.Allocator, b arrow.RecordBatch, groupBy []Expr, aggs []Agg) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, 0, len(groupBy)+len(aggs))
	for _, g := range groupBy {
		fields = append(fields, arrow.Field{Name: g.String(), Type: g.Type(), Nullable: true})
	}
	argExprs := make([]Expr, len(aggs))
	for i, a := range aggs {
		var at arrow.DataType = sqltypes.Null
		if a.Kind != CountStar {
			if a.Arg == nil {
				return nil, sqlerr.New(pgerrcode.InternalError, "aggregate %s needs an argument", a.Kind)
			}
			at = a.Arg.Type()
			argExprs[i] = a.Arg
		}
		t, err := AggType(a.Kind, at)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: a.String(), Type: t, Nullable: true})
	}
	keys, err := evalAll(mem, b, groupBy)
	if err != nil {
		return nil, err
	}
	defer releaseAll(keys)
	args := make([]arrow.Array, len(aggs))
	defer func() { releaseAll(args) }()
	for i, e := range argExprs {
		if e == nil {
			continue
		}
		if args[i], err = e.Eval(mem, b); err != nil {
			return nil, err
		}
	}

	n := nrows(b)
	gid := make([]int32, n)
	var firstRow []int32
	if len(groupBy) == 0 {
		firstRow = []int32{0}
	} else {
		ids := make(map[string]int32)
		var key []byte
		for i := range n {
			key = key[:0]
			for _, k := range keys {
				key = appendKey(key, k, i)
			}
			id, ok := ids[string(key)]
			if !ok {
				id = int32(len(firstRow))
				ids[string(key)] = id
				firstRow = append(firstRow, int32(i))
			}
			gid[i] = id
		}
	}
	ngroups := len(firstRow)

	cols := make([]arrow.Array, 0, len(fields))
	defer func() { releaseAll(cols) }()
	for _, k := range keys {
		c, err := take(mem, k, firstRow)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	for i, a := range aggs {
		c, err := aggregate(mem, a.Kind, fields[len(groupBy)+i].Type, args[i], gid, ngroups, n)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(ngroups)), nil
}

// appendKey appends an encoding of row i of a that is equal for equal
// values (NULLs included) and distinct otherwise.
func appendKey(dst []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) || isNullType(a.DataType()) {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	switch x := a.(type) {
	case *array.Int64:
		return binary.LittleEndian.AppendUint64(dst, uint64(x.Value(i)))
	case *array.Timestamp:
		return binary.LittleEndian.AppendUint64(dst, uint64(x.Value(i)))
	case *array.Float64:
		return binary.LittleEndian.AppendUint64(dst, floatKey(x.Value(i)))
	case *array.Boolean:
		return append(dst, b2u(x.Value(i)))
	case *array.String:
		v := x.Value(i)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		return append(dst, v...)
	}
	v := a.ValueStr(i)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// aggregate computes one aggregate of arg (nil for CountStar) per group.
func aggregate(mem memory.Allocator, kind AggKind, t arrow.DataType, arg arrow.Array, gid []int32, ngroups, n int) (arrow.Array, error) {
	if arg != nil && isNullType(arg.DataType()) {
		// Arrays of type Null have no validity bitmap, so IsNull says
		// false: every value is NULL, and aggregates ignore them all.
		if kind == Count || kind == CountDistinct {
			return int64Result(mem, t, make([]int64, ngroups), nil), nil
		}
		return array.MakeArrayOfNull(mem, t, ngroups), nil
	}
	switch kind {
	case CountStar, Count:
		counts := make([]int64, ngroups)
		for i, g := range gid {
			if kind == CountStar || arg.IsValid(i) {
				counts[g]++
			}
		}
		return int64Result(mem, t, counts, nil), nil
	case CountDistinct:
		counts := make([]int64, ngroups)
		seen := make(map[string]struct{})
		var key []byte
		for i, g := range gid {
			if arg.IsNull(i) {
				continue
			}
			key = binary.LittleEndian.AppendUint32(key[:0], uint32(g))
			key = appendKey(key, arg, i)
			if _, ok := seen[string(key)]; !ok {
				seen[string(key)] = struct{}{}
				counts[g]++
			}
		}
		return int64Result(mem, t, counts, nil), nil
	}
	has := make([]bool, ngroups)
	switch {
	case kind == Sum && isInt(t):
		sums := make([]int64, ngroups)
		vals := words(arg)
		for i, g := range gid {
			if arg.IsNull(i) {
				continue
			}
			s := sums[g] + vals[i]
			if (sums[g]^s)&(vals[i]^s) < 0 {
				return nil, errBigintRange()
			}
			sums[g], has[g] = s, true
		}
		return int64Result(mem, t, sums, has), nil
	case kind == Sum:
		sums := make([]float64, ngroups)
		vals := floats(arg)
		for i, g := range gid {
			if arg.IsValid(i) {
				sums[g] += vals[i]
				has[g] = true
			}
		}
		return float64Result(mem, sums, has), nil
	case kind == Avg:
		sums := make([]float64, ngroups)
		counts := make([]int64, ngroups)
		if isInt(arg.DataType()) {
			// Sum exactly in int64 while it fits, then in float64.
			isums := make([]int64, ngroups)
			spill := make([]bool, ngroups)
			for i, v := range words(arg) {
				if arg.IsNull(i) {
					continue
				}
				g := gid[i]
				counts[g]++
				if spill[g] {
					sums[g] += float64(v)
					continue
				}
				s := isums[g] + v
				if (isums[g]^s)&(v^s) < 0 {
					spill[g] = true
					sums[g] = float64(isums[g]) + float64(v)
					continue
				}
				isums[g] = s
			}
			for g := range sums {
				if !spill[g] {
					sums[g] = float64(isums[g])
				}
			}
		} else {
			for i, v := range floats(arg) {
				if arg.IsValid(i) {
					sums[gid[i]] += v
					counts[gid[i]]++
				}
			}
		}
		for g := range sums {
			if counts[g] > 0 {
				sums[g] /= float64(counts[g])
				has[g] = true
			}
		}
		return float64Result(mem, sums, has), nil
	}
	// MIN and MAX.
	sign := 1 // keep v when sign*cmp(v, best) < 0
	if kind == Max {
		sign = -1
	}
	switch {
	case isInt(t), isTS(t):
		best := make([]int64, ngroups)
		for i, v := range words(arg) {
			if arg.IsNull(i) {
				continue
			}
			g := gid[i]
			if !has[g] || sign*cmpInt(v, best[g]) < 0 {
				best[g], has[g] = v, true
			}
		}
		return int64Result(mem, t, best, has), nil
	case isFloat(t):
		best := make([]float64, ngroups)
		for i, v := range floats(arg) {
			if arg.IsNull(i) {
				continue
			}
			g := gid[i]
			if !has[g] || sign*cmpFloat(v, best[g]) < 0 {
				best[g], has[g] = v, true
			}
		}
		return float64Result(mem, best, has), nil
	case isString(t):
		s := stringsOf(arg)
		best := make([][]byte, ngroups)
		for i := range n {
			if arg.IsNull(i) {
				continue
			}
			g, v := gid[i], s.at(i)
			if !has[g] || sign*bytes.Compare(v, best[g]) < 0 {
				best[g], has[g] = v, true
			}
		}
		bld := array.NewStringBuilder(mem)
		defer bld.Release()
		bld.Reserve(ngroups)
		for g, v := range best {
			if has[g] {
				bld.BinaryBuilder.Append(v)
			} else {
				bld.AppendNull()
			}
		}
		return bld.NewArray(), nil
	}
	return nil, sqlerr.New(pgerrcode.InternalError, "aggregate %s over %s is not implemented", kind, t)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// int64Result builds an 8-byte array of type t from vals; has (nil for
// all valid) marks the non-NULL groups.
func int64Result(mem memory.Allocator, t arrow.DataType, vals []int64, has []bool) arrow.Array {
	buf, out := newWords(mem, len(vals))
	copy(out, vals)
	return newArray(t, len(vals), hasBitmap(mem, has), buf)
}

func float64Result(mem memory.Allocator, vals []float64, has []bool) arrow.Array {
	buf, out := newFloats(mem, len(vals))
	copy(out, vals)
	return newArray(sqltypes.Float64, len(vals), hasBitmap(mem, has), buf)
}

func hasBitmap(mem memory.Allocator, has []bool) *memory.Buffer {
	if has == nil {
		return nil
	}
	valid := newBitmap(mem, len(has), false)
	vb := valid.Bytes()
	for g, h := range has {
		vb[g>>3] |= b2u(h) << (g & 7)
	}
	return valid
}
