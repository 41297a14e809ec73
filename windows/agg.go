package windows

import (
	"cmp"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// AggKind names an aggregate function.
type AggKind int

// The aggregates a window can compute.
const (
	CountStar AggKind = iota + 1 // COUNT(*)
	Count                        // COUNT(col): non-NULL values
	Sum
	Min
	Max
	Avg
)

var aggNames = map[AggKind]string{CountStar: "count(*)", Count: "count", Sum: "sum", Min: "min", Max: "max", Avg: "avg"}

func (k AggKind) String() string {
	if n, ok := aggNames[k]; ok {
		return n
	}
	return fmt.Sprintf("AggKind(%d)", int(k))
}

// Accumulator keeps one aggregate for every window slot. Slots grow on
// demand; a slot is zero (the aggregate of no rows) until updated and
// after Reset.
//
// SQL NULL semantics: NULL inputs are ignored; COUNT of nothing is 0; SUM,
// MIN, MAX and AVG of no non-NULL input are NULL.
type Accumulator interface {
	// Update folds row i of col into window ids[i], skipping rows whose id
	// is NoWindow. col is nil for COUNT(*).
	Update(ids []ID, col arrow.Array)
	// Merge folds window from into window into and resets from.
	Merge(into, from ID)
	// Reset returns a slot to zero, for reuse.
	Reset(id ID)
	// Emit appends the aggregate of each window in ids to a new array of
	// the accumulator's type; the caller releases it.
	Emit(mem memory.Allocator, ids []ID) arrow.Array
	// Type is the result type.
	Type() arrow.DataType
	// Bytes estimates the memory held per slot.
	SlotBytes() int64
}

// NewAccumulator returns the accumulator of kind over an input of type in
// (ignored for CountStar). Inputs are int64, float64, string, bool or
// timestamp arrays.
func NewAccumulator(kind AggKind, in arrow.DataType) (Accumulator, error) {
	switch kind {
	case CountStar, Count:
		return &countAcc{star: kind == CountStar}, nil
	case Sum:
		switch in.ID() {
		case arrow.INT64:
			return &sumAcc[int64]{typ: in}, nil
		case arrow.FLOAT64:
			return &sumAcc[float64]{typ: in}, nil
		}
	case Avg:
		switch in.ID() {
		case arrow.INT64:
			return &avgAcc[int64]{}, nil
		case arrow.FLOAT64:
			return &avgAcc[float64]{}, nil
		}
	case Min, Max:
		switch in.ID() {
		case arrow.INT64, arrow.TIMESTAMP:
			return &extremeAcc[int64]{typ: in, max: kind == Max}, nil
		case arrow.FLOAT64:
			return &extremeAcc[float64]{typ: in, max: kind == Max}, nil
		case arrow.STRING:
			return &extremeAcc[string]{typ: in, max: kind == Max}, nil
		case arrow.BOOL:
			return &extremeAcc[bool]{typ: in, max: kind == Max}, nil
		}
	}
	return nil, fmt.Errorf("aggregate %s over %s is not supported", kind, in)
}

func grow[T any](s []T, id ID) []T {
	if int(id) < len(s) {
		return s
	}
	n := max(2*len(s), int(id)+1, 64)
	return append(s, make([]T, n-len(s))...)
}

// countAcc is COUNT(*) or COUNT(col).
type countAcc struct {
	star bool
	n    []int64
}

func (a *countAcc) Update(ids []ID, col arrow.Array) {
	for i, id := range ids {
		if id == NoWindow || (!a.star && col.IsNull(i)) {
			continue
		}
		a.n = grow(a.n, id)
		a.n[id]++
	}
}

func (a *countAcc) Merge(into, from ID) {
	a.n = grow(a.n, max(into, from))
	a.n[into] += a.n[from]
	a.n[from] = 0
}

func (a *countAcc) Reset(id ID) {
	if int(id) < len(a.n) {
		a.n[id] = 0
	}
}

func (a *countAcc) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(len(ids))
	for _, id := range ids {
		if int(id) < len(a.n) {
			b.UnsafeAppend(a.n[id])
		} else {
			b.UnsafeAppend(0)
		}
	}
	return b.NewArray()
}

func (a *countAcc) Type() arrow.DataType { return arrow.PrimitiveTypes.Int64 }
func (a *countAcc) SlotBytes() int64     { return 8 }

type number interface{ int64 | float64 }

// values returns the typed value slice of an int64, float64 or timestamp array.
func values[T number](col arrow.Array) []T {
	switch c := col.(type) {
	case *array.Int64:
		return any(c.Int64Values()).([]T)
	case *array.Float64:
		return any(c.Float64Values()).([]T)
	case *array.Timestamp:
		v := c.TimestampValues()
		return any(*(*[]int64)(unsafeSlice(&v))).([]T)
	}
	panic(fmt.Sprintf("windows: numeric aggregate over %T", col))
}

// sumAcc is SUM over int64 or float64. Integer sums wrap on overflow, as
// Go's int64 does.
type sumAcc[T number] struct {
	typ arrow.DataType
	sum []T
	has []bool
}

func (a *sumAcc[T]) Update(ids []ID, col arrow.Array) {
	vals := values[T](col)
	for i, id := range ids {
		if id == NoWindow || col.IsNull(i) {
			continue
		}
		a.sum, a.has = grow(a.sum, id), grow(a.has, id)
		a.sum[id] += vals[i]
		a.has[id] = true
	}
}

func (a *sumAcc[T]) Merge(into, from ID) {
	a.sum, a.has = grow(a.sum, max(into, from)), grow(a.has, max(into, from))
	if a.has[from] {
		a.sum[into] += a.sum[from]
		a.has[into] = true
	}
	a.sum[from], a.has[from] = 0, false
}

func (a *sumAcc[T]) Reset(id ID) {
	if int(id) < len(a.sum) {
		a.sum[id], a.has[id] = 0, false
	}
}

func (a *sumAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	b := array.NewBuilder(mem, a.typ)
	defer b.Release()
	b.Reserve(len(ids))
	for _, id := range ids {
		if int(id) >= len(a.has) || !a.has[id] {
			b.AppendNull()
			continue
		}
		appendNumber(b, a.sum[id])
	}
	return b.NewArray()
}

func (a *sumAcc[T]) Type() arrow.DataType { return a.typ }
func (a *sumAcc[T]) SlotBytes() int64     { return 9 }

func appendNumber[T number](b array.Builder, v T) {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(int64(v))
	case *array.Float64Builder:
		b.Append(float64(v))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v))
	default:
		panic(fmt.Sprintf("windows: number into %T", b))
	}
}

// avgAcc is AVG: a sum in the input's type (exact for integers) and a
// count; the result is DOUBLE PRECISION.
type avgAcc[T number] struct {
	sum []T
	n   []int64
}

func (a *avgAcc[T]) Update(ids []ID, col arrow.Array) {
	vals := values[T](col)
	for i, id := range ids {
		if id == NoWindow || col.IsNull(i) {
			continue
		}
		a.sum, a.n = grow(a.sum, id), grow(a.n, id)
		a.sum[id] += vals[i]
		a.n[id]++
	}
}

func (a *avgAcc[T]) Merge(into, from ID) {
	a.sum, a.n = grow(a.sum, max(into, from)), grow(a.n, max(into, from))
	a.sum[into] += a.sum[from]
	a.n[into] += a.n[from]
	a.sum[from], a.n[from] = 0, 0
}

func (a *avgAcc[T]) Reset(id ID) {
	if int(id) < len(a.n) {
		a.sum[id], a.n[id] = 0, 0
	}
}

func (a *avgAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(len(ids))
	for _, id := range ids {
		if int(id) >= len(a.n) || a.n[id] == 0 {
			b.AppendNull()
			continue
		}
		b.Append(float64(a.sum[id]) / float64(a.n[id]))
	}
	return b.NewArray()
}

func (a *avgAcc[T]) Type() arrow.DataType { return arrow.PrimitiveTypes.Float64 }
func (a *avgAcc[T]) SlotBytes() int64     { return 16 }

// extremeAcc is MIN or MAX.
type extremeAcc[T int64 | float64 | string | bool] struct {
	typ arrow.DataType
	max bool
	v   []T
	has []bool
}

func (a *extremeAcc[T]) better(x, y T) bool {
	c := compare(x, y)
	if a.max {
		return c > 0
	}
	return c < 0
}

func compare[T int64 | float64 | string | bool](x, y T) int {
	switch x := any(x).(type) {
	case bool:
		y := any(y).(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		return cmp.Compare(x, any(y).(int64))
	case float64:
		return cmp.Compare(x, any(y).(float64))
	case string:
		return cmp.Compare(x, any(y).(string))
	}
	panic("unreachable")
}

func (a *extremeAcc[T]) Update(ids []ID, col arrow.Array) {
	get := getter[T](col)
	for i, id := range ids {
		if id == NoWindow || col.IsNull(i) {
			continue
		}
		a.v, a.has = grow(a.v, id), grow(a.has, id)
		x := get(i)
		if !a.has[id] || a.better(x, a.v[id]) {
			a.v[id], a.has[id] = x, true
		}
	}
}

func getter[T int64 | float64 | string | bool](col arrow.Array) func(int) T {
	switch c := col.(type) {
	case *array.Int64:
		return any(c.Value).(func(int) T)
	case *array.Float64:
		return any(c.Value).(func(int) T)
	case *array.String:
		// Copy: the input batch is borrowed, the state outlives it.
		return any(func(i int) string { return string([]byte(c.Value(i))) }).(func(int) T)
	case *array.Boolean:
		return any(c.Value).(func(int) T)
	case *array.Timestamp:
		return any(func(i int) int64 { return int64(c.Value(i)) }).(func(int) T)
	}
	panic(fmt.Sprintf("windows: min/max over %T", col))
}

func (a *extremeAcc[T]) Merge(into, from ID) {
	a.v, a.has = grow(a.v, max(into, from)), grow(a.has, max(into, from))
	if a.has[from] && (!a.has[into] || a.better(a.v[from], a.v[into])) {
		a.v[into], a.has[into] = a.v[from], true
	}
	a.Reset(from)
}

func (a *extremeAcc[T]) Reset(id ID) {
	if int(id) < len(a.v) {
		var zero T
		a.v[id], a.has[id] = zero, false
	}
}

func (a *extremeAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	b := array.NewBuilder(mem, a.typ)
	defer b.Release()
	b.Reserve(len(ids))
	for _, id := range ids {
		if int(id) >= len(a.has) || !a.has[id] {
			b.AppendNull()
			continue
		}
		switch v := any(a.v[id]).(type) {
		case int64:
			appendNumber(b, v)
		case float64:
			appendNumber(b, v)
		case string:
			b.(*array.StringBuilder).Append(v)
		case bool:
			b.(*array.BooleanBuilder).Append(v)
		}
	}
	return b.NewArray()
}

func (a *extremeAcc[T]) Type() arrow.DataType { return a.typ }
func (a *extremeAcc[T]) SlotBytes() int64 {
	var zero T
	if _, ok := any(zero).(string); ok {
		return 16 + 1 + 16 // header, flag, typical short string
	}
	return 9
}
