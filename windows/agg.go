package windows

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// AggKind names an aggregate function.
type AggKind int

// The aggregates a window can compute.
const (
	CountStar     AggKind = iota + 1 // COUNT(*)
	Count                            // COUNT(col): non-NULL values
	Sum                              // SUM(col)
	Min                              // MIN(col)
	Max                              // MAX(col)
	Avg                              // AVG(col)
	CountDistinct                    // COUNT(DISTINCT col)
	FirstValue                       // FIRST_VALUE(col): the value of the earliest event
	LastValue                        // LAST_VALUE(col): the value of the latest event
)

var aggNames = map[AggKind]string{
	CountStar: "count(*)", Count: "count", Sum: "sum", Min: "min", Max: "max", Avg: "avg",
	CountDistinct: "count(distinct)", FirstValue: "first_value", LastValue: "last_value",
}

func (k AggKind) String() string {
	if n, ok := aggNames[k]; ok {
		return n
	}
	return fmt.Sprintf("AggKind(%d)", int(k))
}

// Input is one batch of an aggregate's input. All of it is borrowed for the
// duration of one call: an Accumulator copies what it keeps.
type Input struct {
	Col   arrow.Array // the argument column; nil for COUNT(*)
	Times []int64     // event time of each row, ms since the Unix epoch
	Seqs  []int64     // arrival order of each row (stream sequence); breaks ties between equal times
}

// Accumulator keeps one aggregate for every window slot. Slots grow on
// demand; a slot is zero (the aggregate of no rows) until updated and
// after Reset. It is not safe for concurrent use.
//
// SQL NULL semantics: NULL inputs are ignored; COUNT and COUNT(DISTINCT) of
// nothing are 0; SUM, MIN, MAX, AVG, FIRST_VALUE and LAST_VALUE of no
// non-NULL input are NULL.
//
// FIRST_VALUE and LAST_VALUE pick the non-NULL value whose event has the
// smallest or largest (time, seq), compared lexicographically, as Flink's
// FIRST_VALUE/LAST_VALUE ignore NULLs. Seqs are unique within a stream, so
// the result does not depend on the order rows are folded or windows
// merged. They read Input.Times and Input.Seqs; the other kinds ignore them.
//
// COUNT(DISTINCT) over DOUBLE PRECISION counts -0 and +0 as one value and
// every NaN as one value.
type Accumulator interface {
	// Update folds row i of in into window ids[i], skipping rows whose id
	// is NoWindow.
	Update(ids []ID, in Input)
	// UpdateRows folds the given rows of in into the one window id. Rows
	// may be in any order and may have been folded into other windows
	// before; each entry of rows is folded once.
	UpdateRows(id ID, in Input, rows []int32)
	// Merge folds window from into window into and resets from.
	Merge(into, from ID)
	// Copy makes dst's state equal to src's (src unchanged); dst's old
	// state is discarded.
	Copy(dst, src ID)
	// Reset returns a slot to zero, for reuse, and frees what it held.
	Reset(id ID)
	// Emit appends the aggregate of each window in ids to a new array of
	// Type; the caller releases it.
	Emit(mem memory.Allocator, ids []ID) arrow.Array
	// Type is the result type.
	Type() arrow.DataType
	// StateBytes estimates the memory the accumulator holds for all slots:
	// the fixed per-slot arrays by their length, plus variable state such
	// as DISTINCT sets and strings.
	StateBytes() int64
	// Save appends the state of slots [0, slots) to w; slots beyond what
	// the accumulator has grown to are saved as empty.
	Save(w *snap.Writer, slots int)
	// Load restores state written by Save into an accumulator fresh from
	// NewAccumulator with the same kind and input type. Corrupt input
	// returns an error (never a panic), and a failed Load leaves the
	// accumulator as it was. Load reads only its own state: the caller
	// checks the end of the input (snap.Reader.Done).
	Load(r *snap.Reader) error
}

// NewAccumulator returns the accumulator of kind over an input of type in
// (ignored for CountStar and Count). Inputs are int64, float64, string,
// bool or timestamp arrays; SUM and AVG take int64 and float64 only.
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
			return &avgAcc[int64]{in: in}, nil
		case arrow.FLOAT64:
			return &avgAcc[float64]{in: in}, nil
		}
	case Min, Max:
		switch in.ID() {
		case arrow.INT64, arrow.TIMESTAMP, arrow.BOOL:
			return &extremeAcc[int64]{typ: in, max: kind == Max}, nil
		case arrow.FLOAT64:
			return &extremeAcc[float64]{typ: in, max: kind == Max}, nil
		case arrow.STRING:
			return &extremeAcc[string]{typ: in, max: kind == Max}, nil
		}
	case CountDistinct:
		switch in.ID() {
		case arrow.INT64, arrow.TIMESTAMP, arrow.BOOL, arrow.FLOAT64:
			return &distinctAcc[int64]{in: in}, nil
		case arrow.STRING:
			return &distinctAcc[string]{in: in}, nil
		}
	case FirstValue, LastValue:
		switch in.ID() {
		case arrow.INT64, arrow.TIMESTAMP, arrow.BOOL:
			return &firstLastAcc[int64]{typ: in, last: kind == LastValue}, nil
		case arrow.FLOAT64:
			return &firstLastAcc[float64]{typ: in, last: kind == LastValue}, nil
		case arrow.STRING:
			return &firstLastAcc[string]{typ: in, last: kind == LastValue}, nil
		}
	}
	return nil, fmt.Errorf("aggregate %s over %s is not supported", kind, in)
}

// value is how an accumulator holds one input value: int64 also carries
// timestamps and booleans (0 and 1), so that one instantiation serves them.
type value interface{ int64 | float64 | string }

// walk is the rows one Update or UpdateRows folds: its k-th row is input
// row r and goes to window id. Accumulators have one fold loop over a walk,
// so that Update and UpdateRows share it without a per-row indirect call.
// Its methods take a pointer: with a value receiver the compiler copies the
// walk at every inlined call, which doubled the cost of COUNT(*) per row.
type walk struct {
	byRow bool    // UpdateRows: row k is rows[k], window id
	ids   []ID    // Update: row k is row k, window ids[k]
	rows  []int32 // UpdateRows
	id    ID      // UpdateRows
}

func (w *walk) len() int {
	if w.byRow {
		return len(w.rows)
	}
	return len(w.ids)
}

func (w *walk) at(k int) (r int, id ID) {
	if w.byRow {
		return int(w.rows[k]), w.id
	}
	return k, w.ids[k]
}

// slots is one more than the largest window the walk names: the slot
// arrays are grown to it once per call, not checked per row.
func (w *walk) slots() int {
	if w.byRow {
		return int(w.id) + 1
	}
	m := NoWindow
	for _, id := range w.ids {
		m = max(m, id)
	}
	return int(m) + 1
}

// valid reads a column's validity bitmap. A nil column (COUNT(*)) or one
// without NULLs has every row valid.
type valid struct {
	bits []byte
	off  int
}

func validity(col arrow.Array) valid {
	if col == nil || col.NullN() == 0 {
		return valid{}
	}
	return valid{col.NullBitmapBytes(), col.Data().Offset()}
}

func (v valid) at(r int) bool { return v.bits == nil || bitutil.BitIsSet(v.bits, v.off+r) }

// load returns the values of col indexed by row. Numeric columns are
// returned as they are; booleans (as 0 and 1) and strings (views into the
// borrowed batch, to be copied before they are kept) are written into
// *scratch, at the rows w reads only.
func load[T value](col arrow.Array, w *walk, scratch *[]T) []T {
	var v any
	switch c := col.(type) {
	case *array.Boolean:
		if s, ok := any(resize(scratch, c.Len())).([]int64); ok {
			for k := range w.len() {
				r, _ := w.at(k)
				s[r] = 0
				if c.Value(r) {
					s[r] = 1
				}
			}
			v = s
		}
	case *array.String:
		if s, ok := any(resize(scratch, c.Len())).([]string); ok {
			for k := range w.len() {
				r, _ := w.at(k)
				s[r] = c.Value(r)
			}
			v = s
		}
	default:
		return numbers[T](col)
	}
	if vals, ok := v.([]T); ok {
		return vals
	}
	panic(fmt.Sprintf("windows: %T input to an aggregate over %T", col, *new(T)))
}

// numbers returns the values of an int64, timestamp or float64 column.
func numbers[T value](col arrow.Array) []T {
	var v any
	switch c := col.(type) {
	case *array.Int64:
		v = c.Int64Values()
	case *array.Float64:
		v = c.Float64Values()
	case *array.Timestamp:
		ts := c.TimestampValues()
		v = *(*[]int64)(unsafeSlice(&ts))
	}
	if vals, ok := v.([]T); ok {
		return vals
	}
	panic(fmt.Sprintf("windows: %T input to an aggregate over %T", col, *new(T)))
}

func resize[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	return (*s)[:n]
}

// grow returns s with length at least n, zero-filled. It grows by a
// quarter, not double: per-slot arrays are part of every open window's
// memory, and a quarter still keeps growing amortized O(1) per slot.
func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	n = max(len(s)+len(s)/4, n, 64)
	return append(s, make([]T, n-len(s))...)
}

func sizeOf[T any]() int64 {
	var zero T
	return int64(unsafe.Sizeof(zero))
}

// strLen is the length of x when it is a string, else 0.
func strLen[T value](x T) int64 {
	if p, ok := any(&x).(*string); ok {
		return int64(len(*p))
	}
	return 0
}

// countAcc is COUNT(*) or COUNT(col).
type countAcc struct {
	star bool
	n    []int64
}

func (a *countAcc) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *countAcc) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

func (a *countAcc) fold(w walk, in Input) {
	var ok valid
	if !a.star {
		ok = validity(in.Col)
	}
	a.n = grow(a.n, w.slots())
	if !w.byRow && ok.bits == nil {
		// Update with every row counted: the common case, as a tight loop.
		n := a.n
		for _, id := range w.ids {
			if id != NoWindow {
				n[id]++
			}
		}
		return
	}
	for k := range w.len() {
		if r, id := w.at(k); id != NoWindow && ok.at(r) {
			a.n[id]++
		}
	}
}

func (a *countAcc) Merge(into, from ID) {
	a.n = grow(a.n, int(max(into, from))+1)
	n := a.n[from]
	a.n[from] = 0
	a.n[into] += n
}

func (a *countAcc) Copy(dst, src ID) {
	a.n = grow(a.n, int(max(dst, src))+1)
	a.n[dst] = a.n[src]
}

func (a *countAcc) Reset(id ID) {
	if int(id) < len(a.n) {
		a.n[id] = 0
	}
}

func (a *countAcc) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	return emitCounts(mem, ids, func(id ID) int64 {
		if int(id) < len(a.n) {
			return a.n[id]
		}
		return 0
	})
}

func emitCounts(mem memory.Allocator, ids []ID, n func(ID) int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(len(ids))
	for _, id := range ids {
		b.UnsafeAppend(n(id))
	}
	return b.NewArray()
}

func (a *countAcc) Type() arrow.DataType { return arrow.PrimitiveTypes.Int64 }
func (a *countAcc) StateBytes() int64    { return 8 * int64(len(a.n)) }

// sumAcc is SUM over int64 or float64. Integer sums wrap on overflow, as
// Go's int64 does.
type sumAcc[T int64 | float64] struct {
	typ arrow.DataType
	sum []T
	has []bool
}

func (a *sumAcc[T]) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *sumAcc[T]) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

func (a *sumAcc[T]) fold(w walk, in Input) {
	vals := numbers[T](in.Col)
	ok := validity(in.Col)
	a.grow(w.slots())
	if !w.byRow && ok.bits == nil {
		// Update of a column without NULLs: the common case, as a tight
		// loop.
		sum, has := a.sum, a.has
		vals = vals[:len(w.ids)]
		for r, id := range w.ids {
			if id != NoWindow {
				sum[id] += vals[r]
				has[id] = true
			}
		}
		return
	}
	for k := range w.len() {
		if r, id := w.at(k); id != NoWindow && ok.at(r) {
			a.sum[id] += vals[r]
			a.has[id] = true
		}
	}
}

func (a *sumAcc[T]) grow(n int) { a.sum, a.has = grow(a.sum, n), grow(a.has, n) }

func (a *sumAcc[T]) Merge(into, from ID) {
	a.grow(int(max(into, from)) + 1)
	s, has := a.sum[from], a.has[from]
	a.sum[from], a.has[from] = 0, false
	a.sum[into] += s
	a.has[into] = a.has[into] || has
}

func (a *sumAcc[T]) Copy(dst, src ID) {
	a.grow(int(max(dst, src)) + 1)
	a.sum[dst], a.has[dst] = a.sum[src], a.has[src]
}

func (a *sumAcc[T]) Reset(id ID) {
	if int(id) < len(a.sum) {
		a.sum[id], a.has[id] = 0, false
	}
}

func (a *sumAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	return emitValues(mem, a.typ, a.sum, a.has, ids)
}

func (a *sumAcc[T]) Type() arrow.DataType { return a.typ }
func (a *sumAcc[T]) StateBytes() int64    { return (sizeOf[T]() + 1) * int64(len(a.sum)) }

// emitValues builds an array of typ holding vals[id] for each id in ids, or
// NULL where has[id] is false or id is beyond the slots. Booleans are held
// as int64 0 and 1.
func emitValues[T value](mem memory.Allocator, typ arrow.DataType, vals []T, has []bool, ids []ID) arrow.Array {
	bld := array.NewBuilder(mem, typ)
	defer bld.Release()
	bld.Reserve(len(ids))
	var appendAt func(id ID)
	switch b := bld.(type) {
	case *array.Int64Builder:
		v := any(vals).([]int64)
		appendAt = func(id ID) { b.Append(v[id]) }
	case *array.TimestampBuilder:
		v := any(vals).([]int64)
		appendAt = func(id ID) { b.Append(arrow.Timestamp(v[id])) }
	case *array.BooleanBuilder:
		v := any(vals).([]int64)
		appendAt = func(id ID) { b.Append(v[id] != 0) }
	case *array.Float64Builder:
		v := any(vals).([]float64)
		appendAt = func(id ID) { b.Append(v[id]) }
	case *array.StringBuilder:
		v := any(vals).([]string)
		appendAt = func(id ID) { b.Append(v[id]) }
	default:
		panic(fmt.Sprintf("windows: %T values into %T", vals, bld))
	}
	for _, id := range ids {
		if int(id) >= len(has) || !has[id] {
			bld.AppendNull()
			continue
		}
		appendAt(id)
	}
	return bld.NewArray()
}

// avgAcc is AVG: a sum in the input's type (exact for integers) and a
// count; the result is DOUBLE PRECISION.
type avgAcc[T int64 | float64] struct {
	in  arrow.DataType // the input type, which names the state in checkpoints
	sum []T
	n   []int64
}

func (a *avgAcc[T]) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *avgAcc[T]) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

func (a *avgAcc[T]) fold(w walk, in Input) {
	vals := numbers[T](in.Col)
	ok := validity(in.Col)
	a.grow(w.slots())
	for k := range w.len() {
		if r, id := w.at(k); id != NoWindow && ok.at(r) {
			a.sum[id] += vals[r]
			a.n[id]++
		}
	}
}

func (a *avgAcc[T]) grow(n int) { a.sum, a.n = grow(a.sum, n), grow(a.n, n) }

func (a *avgAcc[T]) Merge(into, from ID) {
	a.grow(int(max(into, from)) + 1)
	s, n := a.sum[from], a.n[from]
	a.sum[from], a.n[from] = 0, 0
	a.sum[into] += s
	a.n[into] += n
}

func (a *avgAcc[T]) Copy(dst, src ID) {
	a.grow(int(max(dst, src)) + 1)
	a.sum[dst], a.n[dst] = a.sum[src], a.n[src]
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
func (a *avgAcc[T]) StateBytes() int64    { return (sizeOf[T]() + 8) * int64(len(a.n)) }

// cells holds one value per slot, for MIN, MAX, FIRST_VALUE and
// LAST_VALUE. A string is copied into a buffer that its slot owns and
// reuses: the input batch is only borrowed, and LAST_VALUE over an
// in-order stream replaces the value on nearly every row, which must not
// allocate each time. No two slots share a buffer.
type cells[T value] struct {
	v        []T
	has      []bool
	own      [][]byte // strings only: the bytes v[id] points into
	ownBytes int64    // sum of cap(own[id])
}

func (c *cells[T]) grow(n int) {
	c.v, c.has = grow(c.v, n), grow(c.has, n)
	if _, ok := any(c.v).([]string); ok {
		c.own = grow(c.own, n)
	}
}

// set stores a copy of x in slot id. x may point into own[id] itself.
func (c *cells[T]) set(id ID, x T) {
	c.has[id] = true
	p, ok := any(&c.v[id]).(*string)
	if !ok {
		c.v[id] = x
		return
	}
	old := cap(c.own[id])
	b := append(c.own[id][:0], *any(&x).(*string)...)
	c.own[id] = b
	c.ownBytes += int64(cap(b) - old)
	*p = unsafe.String(unsafe.SliceData(b), len(b))
}

func (c *cells[T]) reset(id ID) {
	if int(id) >= len(c.v) {
		return
	}
	var zero T
	c.v[id], c.has[id] = zero, false
	if c.own != nil {
		c.ownBytes -= int64(cap(c.own[id]))
		c.own[id] = nil
	}
}

func (c *cells[T]) bytes() int64 {
	return (sizeOf[T]()+1)*int64(len(c.v)) + sizeOf[[]byte]()*int64(len(c.own)) + c.ownBytes
}

// extremeAcc is MIN or MAX. Floats order as cmp.Compare does (NaN first).
type extremeAcc[T value] struct {
	typ     arrow.DataType
	max     bool
	c       cells[T]
	scratch []T
}

func (a *extremeAcc[T]) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *extremeAcc[T]) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

func (a *extremeAcc[T]) better(x, y T) bool {
	if a.max {
		x, y = y, x
	}
	return cmp.Less(x, y)
}

func (a *extremeAcc[T]) fold(w walk, in Input) {
	vals := load(in.Col, &w, &a.scratch)
	ok := validity(in.Col)
	a.c.grow(w.slots())
	for k := range w.len() {
		r, id := w.at(k)
		if id == NoWindow || !ok.at(r) {
			continue
		}
		if x := vals[r]; !a.c.has[id] || a.better(x, a.c.v[id]) {
			a.c.set(id, x)
		}
	}
}

func (a *extremeAcc[T]) Merge(into, from ID) {
	a.c.grow(int(max(into, from)) + 1)
	if into == from {
		return
	}
	if a.c.has[from] && (!a.c.has[into] || a.better(a.c.v[from], a.c.v[into])) {
		a.c.set(into, a.c.v[from])
	}
	a.c.reset(from)
}

func (a *extremeAcc[T]) Copy(dst, src ID) {
	a.c.grow(int(max(dst, src)) + 1)
	if !a.c.has[src] {
		a.c.reset(dst)
		return
	}
	a.c.set(dst, a.c.v[src])
}

func (a *extremeAcc[T]) Reset(id ID) { a.c.reset(id) }

func (a *extremeAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	return emitValues(mem, a.typ, a.c.v, a.c.has, ids)
}

func (a *extremeAcc[T]) Type() arrow.DataType { return a.typ }
func (a *extremeAcc[T]) StateBytes() int64    { return a.c.bytes() }

// firstLastAcc is FIRST_VALUE or LAST_VALUE: the value of the non-NULL row
// with the smallest or largest (time, seq), which with unique seqs is one
// row whatever the order of folds and merges.
type firstLastAcc[T value] struct {
	typ       arrow.DataType
	last      bool
	c         cells[T]
	time, seq []int64 // of the event whose value c holds
	scratch   []T
}

func (a *firstLastAcc[T]) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *firstLastAcc[T]) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

// wins reports whether the event (t, s) replaces slot id's value.
func (a *firstLastAcc[T]) wins(id ID, t, s int64) bool {
	if !a.c.has[id] {
		return true
	}
	ht, hs := a.time[id], a.seq[id]
	if a.last {
		return t > ht || (t == ht && s > hs)
	}
	return t < ht || (t == ht && s < hs)
}

func (a *firstLastAcc[T]) grow(n int) {
	a.c.grow(n)
	a.time, a.seq = grow(a.time, n), grow(a.seq, n)
}

func (a *firstLastAcc[T]) fold(w walk, in Input) {
	if n := in.Col.Len(); len(in.Times) < n || len(in.Seqs) < n {
		panic(fmt.Sprintf("windows: %s over %d rows needs a time and a seq for each, got %d and %d",
			a.kind(), n, len(in.Times), len(in.Seqs)))
	}
	vals := load(in.Col, &w, &a.scratch)
	ok := validity(in.Col)
	a.grow(w.slots())
	for k := range w.len() {
		r, id := w.at(k)
		if id == NoWindow || !ok.at(r) {
			continue
		}
		if t, s := in.Times[r], in.Seqs[r]; a.wins(id, t, s) {
			a.c.set(id, vals[r])
			a.time[id], a.seq[id] = t, s
		}
	}
}

func (a *firstLastAcc[T]) kind() AggKind {
	if a.last {
		return LastValue
	}
	return FirstValue
}

func (a *firstLastAcc[T]) Merge(into, from ID) {
	a.grow(int(max(into, from)) + 1)
	if into == from {
		return
	}
	if a.c.has[from] && a.wins(into, a.time[from], a.seq[from]) {
		a.c.set(into, a.c.v[from])
		a.time[into], a.seq[into] = a.time[from], a.seq[from]
	}
	a.Reset(from)
}

func (a *firstLastAcc[T]) Copy(dst, src ID) {
	a.grow(int(max(dst, src)) + 1)
	if !a.c.has[src] {
		a.Reset(dst)
		return
	}
	a.c.set(dst, a.c.v[src])
	a.time[dst], a.seq[dst] = a.time[src], a.seq[src]
}

func (a *firstLastAcc[T]) Reset(id ID) {
	if int(id) < len(a.time) {
		a.c.reset(id)
		a.time[id], a.seq[id] = 0, 0
	}
}

func (a *firstLastAcc[T]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	return emitValues(mem, a.typ, a.c.v, a.c.has, ids)
}

func (a *firstLastAcc[T]) Type() arrow.DataType { return a.typ }
func (a *firstLastAcc[T]) StateBytes() int64 {
	return a.c.bytes() + 16*int64(len(a.time))
}

// smallSet is the most values a DISTINCT set keeps in a plain slice, found
// by a linear scan; past it the set becomes a map. Most windows see a few
// distinct values, and a slice of them costs a fraction of a map.
const smallSet = 16

// dset is one slot's DISTINCT set: small until it outgrows smallSet, then
// big (and small is nil).
type dset[K comparable] struct {
	small []K
	big   map[K]struct{}
}

func (s *dset[K]) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

// distinctAcc is COUNT(DISTINCT col). Timestamps, booleans and floats are
// held as int64 keys (floats by their bits, after folding -0 into +0 and
// every NaN into one), strings as strings.
type distinctAcc[K int64 | string] struct {
	in      arrow.DataType // the input type: FLOAT64 keys are checkpointed as floats
	sets    []dset[K]
	bytes   int64 // the sets' storage and strings, as setBytes counts them
	scratch []K
	// spare holds empty arrays of small sets that were reset or outgrew
	// them, by capacity, for the next set that needs one: sets come and
	// go with windows, and this way they stop allocating once the stream
	// is steady.
	spare [smallSet + 1][][]K
}

// takeSmall returns an empty array of capacity c (at most smallSet).
func (a *distinctAcc[K]) takeSmall(c int) []K {
	if n := len(a.spare[c]); n > 0 {
		s := a.spare[c][n-1]
		a.spare[c][n-1] = nil
		a.spare[c] = a.spare[c][:n-1]
		return s
	}
	return make([]K, 0, c)
}

// giveSmall keeps s, which no set holds any more, for takeSmall.
func (a *distinctAcc[K]) giveSmall(s []K) {
	if c := cap(s); c > 0 && c <= smallSet {
		clear(s[:c]) // let strings go
		a.spare[c] = append(a.spare[c], s[:0])
	}
}

func (a *distinctAcc[K]) Update(ids []ID, in Input) { a.fold(walk{ids: ids}, in) }
func (a *distinctAcc[K]) UpdateRows(id ID, in Input, rows []int32) {
	a.fold(walk{byRow: true, id: id, rows: rows}, in)
}

func (a *distinctAcc[K]) fold(w walk, in Input) {
	keys := a.keys(in.Col, &w)
	ok := validity(in.Col)
	a.sets = grow(a.sets, w.slots())
	for k := range w.len() {
		if r, id := w.at(k); id != NoWindow && ok.at(r) {
			a.add(id, keys[r], true)
		}
	}
}

// keys is load, but with floats turned into int64 keys.
func (a *distinctAcc[K]) keys(col arrow.Array, w *walk) []K {
	c, ok := col.(*array.Float64)
	if !ok {
		return load(col, w, &a.scratch)
	}
	keys, ok := any(resize(&a.scratch, c.Len())).([]int64)
	if !ok {
		panic(fmt.Sprintf("windows: float64 input to count(distinct) over %T", *new(K)))
	}
	vals := c.Float64Values()
	for k := range w.len() {
		r, _ := w.at(k)
		keys[r] = floatKey(vals[r])
	}
	return any(keys).([]K)
}

// floatKey is f's key for DISTINCT: -0 and +0 are one value, as are all
// NaNs (as in PostgreSQL, where NaN equals NaN).
func floatKey(f float64) int64 {
	switch {
	case f == 0:
		f = 0
	case f != f:
		f = math.NaN()
	}
	return int64(math.Float64bits(f))
}

// add puts x into slot id's set. A fresh x is borrowed from the input and
// is copied if kept; otherwise it already belongs to the accumulator.
func (a *distinctAcc[K]) add(id ID, x K, fresh bool) {
	s := &a.sets[id]
	if s.big != nil {
		if _, ok := s.big[x]; ok {
			return
		}
		x = own(x, fresh)
		s.big[x] = struct{}{}
		a.bytes += mapEntryBytes[K]() + strLen(x)
		return
	}
	if slices.Contains(s.small, x) {
		return
	}
	x = own(x, fresh)
	if len(s.small) < smallSet {
		c := cap(s.small)
		if len(s.small) == c {
			// Grow by half, not double: most windows hold a few values,
			// and the room is part of every open window's memory.
			grown := append(a.takeSmall(min(c+max(1, c/2), smallSet)), s.small...)
			a.giveSmall(s.small)
			s.small = grown
		}
		s.small = append(s.small, x)
		a.bytes += int64(cap(s.small)-c)*sizeOf[K]() + strLen(x)
		return
	}
	m := make(map[K]struct{}, 2*smallSet)
	for _, y := range s.small {
		m[y] = struct{}{}
	}
	m[x] = struct{}{}
	a.bytes += mapBytes[K](len(m)) - int64(cap(s.small))*sizeOf[K]() + strLen(x)
	a.giveSmall(s.small)
	s.small, s.big = nil, m
}

// own returns x, or for a fresh string a copy of it.
func own[K int64 | string](x K, fresh bool) K {
	if p, ok := any(&x).(*string); ok && fresh {
		*p = strings.Clone(*p)
	}
	return x
}

// mapBytes estimates a map of n keys: a header, and per key its slot and
// control byte in Go's swiss tables, which after growing are 1/2 to 7/8
// full.
func mapBytes[K comparable](n int) int64 { return 48 + int64(n)*mapEntryBytes[K]() }
func mapEntryBytes[K comparable]() int64 { return (sizeOf[K]() + 1) * 3 / 2 }

// setBytes is what a set adds to a.bytes.
func (a *distinctAcc[K]) setBytes(s *dset[K]) int64 {
	var n int64
	if s.big != nil {
		n = mapBytes[K](len(s.big))
		for x := range s.big {
			n += strLen(x)
		}
		return n
	}
	n = int64(cap(s.small)) * sizeOf[K]()
	for _, x := range s.small {
		n += strLen(x)
	}
	return n
}

// Merge is set union. It folds the smaller set into the larger, taking the
// larger over from from when that is the one.
func (a *distinctAcc[K]) Merge(into, from ID) {
	a.sets = grow(a.sets, int(max(into, from))+1)
	if into == from {
		return
	}
	si, sf := &a.sets[into], &a.sets[from]
	if sf.len() > si.len() {
		*si, *sf = *sf, *si
	}
	for _, x := range sf.small {
		a.add(into, x, false)
	}
	for x := range sf.big {
		a.add(into, x, false)
	}
	a.Reset(from)
}

// Copy shares the strings of src (they are never modified) but not its
// slice or map; StateBytes counts shared strings once per set.
func (a *distinctAcc[K]) Copy(dst, src ID) {
	a.sets = grow(a.sets, int(max(dst, src))+1)
	if dst == src {
		return
	}
	a.Reset(dst)
	s := &a.sets[src]
	a.sets[dst] = dset[K]{small: slices.Clone(s.small), big: maps.Clone(s.big)}
	a.bytes += a.setBytes(&a.sets[dst])
}

func (a *distinctAcc[K]) Reset(id ID) {
	if int(id) < len(a.sets) {
		a.bytes -= a.setBytes(&a.sets[id])
		a.giveSmall(a.sets[id].small)
		a.sets[id] = dset[K]{}
	}
}

func (a *distinctAcc[K]) Emit(mem memory.Allocator, ids []ID) arrow.Array {
	return emitCounts(mem, ids, func(id ID) int64 {
		if int(id) < len(a.sets) {
			return int64(a.sets[id].len())
		}
		return 0
	})
}

func (a *distinctAcc[K]) Type() arrow.DataType { return arrow.PrimitiveTypes.Int64 }
func (a *distinctAcc[K]) StateBytes() int64 {
	return sizeOf[dset[K]]()*int64(len(a.sets)) + a.bytes
}

// Checkpoints.
//
// An accumulator's state starts with a section naming its kind and, where
// the state depends on it, its input type; then come its slots, m of them,
// m = min(slots, the slots it has grown to). Slots from m on are empty, and
// after Load they grow on demand as in a fresh accumulator.
//
// Counts are varints. A slot whose aggregate is NULL (has false, or an AVG
// count of 0) takes one bit of a bitmap and nothing else: the accumulators
// keep its value zero, so there is nothing more to save. Floats are saved
// as their bits, so -0 and NaN payloads come back as they were held;
// strings as a length and their bytes.
//
// Load reads into fresh arrays and installs them only once all of it has
// been read and checked, so a failed Load leaves the accumulator as it was.
// Every count is checked against the bytes left (snap.Reader.Len, Bools)
// before it sizes an allocation, so corrupt input costs at most the fixed
// per-slot arrays of the slots it could describe (a slot takes at least a
// bit), plus its own size.

// snapSection names an accumulator's state in a checkpoint.
func snapSection(kind AggKind, in arrow.DataType) string {
	if kind == CountStar || kind == Count || in == nil {
		return "agg " + kind.String()
	}
	return "agg " + kind.String() + " " + in.String()
}

// savedSlots is how many slots Save writes: those asked for, but none past
// the ones the accumulator has grown to.
func savedSlots(grown, slots int) int { return max(0, min(grown, slots)) }

func (a *countAcc) kind() AggKind {
	if a.star {
		return CountStar
	}
	return Count
}

func (a *countAcc) Save(w *snap.Writer, slots int) {
	w.Section(snapSection(a.kind(), nil))
	w.Ints(a.n[:savedSlots(len(a.n), slots)])
}

func (a *countAcc) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(a.kind(), nil)); err != nil {
		return err
	}
	n := r.Ints()
	if err := checkCounts(r, n); err != nil {
		return err
	}
	a.n = n
	return nil
}

// checkCounts fails r if a count is negative.
func checkCounts(r *snap.Reader, n []int64) error {
	for id, c := range n {
		if c < 0 {
			return r.Failf("slot %d: count %d", id, c)
		}
	}
	return r.Err()
}

func (a *sumAcc[T]) Save(w *snap.Writer, slots int) {
	m := savedSlots(len(a.sum), slots)
	w.Section(snapSection(Sum, a.typ))
	w.Bools(a.has[:m])
	saveValues(w, a.sum[:m], a.has[:m])
}

func (a *sumAcc[T]) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(Sum, a.typ)); err != nil {
		return err
	}
	has := r.Bools()
	sum := make([]T, len(has))
	loadNumbers(r, sum, has)
	if r.Err() != nil {
		return r.Err()
	}
	a.sum, a.has = sum, has
	return nil
}

// saveValues writes vals[id] for every id with has[id].
func saveValues[T value](w *snap.Writer, vals []T, has []bool) {
	switch v := any(vals).(type) {
	case []int64:
		for id, h := range has {
			if h {
				w.Int(v[id])
			}
		}
	case []float64:
		for id, h := range has {
			if h {
				w.Float(v[id])
			}
		}
	case []string:
		for id, h := range has {
			if h {
				w.String(v[id])
			}
		}
	}
}

// loadNumbers reads what saveValues wrote into vals, which is zero and as
// long as has.
func loadNumbers[T int64 | float64](r *snap.Reader, vals []T, has []bool) {
	switch v := any(vals).(type) {
	case []int64:
		for id, h := range has {
			if h {
				v[id] = r.Int()
			}
		}
	case []float64:
		for id, h := range has {
			if h {
				v[id] = r.Float()
			}
		}
	}
}

func (a *avgAcc[T]) Save(w *snap.Writer, slots int) {
	m := savedSlots(len(a.n), slots)
	w.Section(snapSection(Avg, a.in))
	n := a.n[:m]
	w.Ints(n)
	switch s := any(a.sum[:m]).(type) {
	case []int64:
		for id, c := range n {
			if c != 0 {
				w.Int(s[id])
			}
		}
	case []float64:
		for id, c := range n {
			if c != 0 {
				w.Float(s[id])
			}
		}
	}
}

func (a *avgAcc[T]) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(Avg, a.in)); err != nil {
		return err
	}
	n := r.Ints()
	if err := checkCounts(r, n); err != nil {
		return err
	}
	sum := make([]T, len(n))
	switch s := any(sum).(type) {
	case []int64:
		for id, c := range n {
			if c != 0 {
				s[id] = r.Int()
			}
		}
	case []float64:
		for id, c := range n {
			if c != 0 {
				s[id] = r.Float()
			}
		}
	}
	if r.Err() != nil {
		return r.Err()
	}
	a.sum, a.n = sum, n
	return nil
}

func (c *cells[T]) save(w *snap.Writer, m int) {
	w.Bools(c.has[:m])
	saveValues(w, c.v[:m], c.has[:m])
}

// loadCells reads what cells.save wrote. Each string gets a buffer of its
// own, as set would have given it; typ is the input type, and a BOOLEAN
// value must be 0 or 1.
func loadCells[T value](r *snap.Reader, typ arrow.DataType) cells[T] {
	var c cells[T]
	c.has = r.Bools()
	c.v = make([]T, len(c.has))
	switch v := any(c.v).(type) {
	case []int64:
		loadNumbers(r, v, c.has)
		if typ.ID() != arrow.BOOL {
			break
		}
		for id, x := range v {
			if x != 0 && x != 1 {
				r.Failf("slot %d: boolean held as %d", id, x)
				break
			}
		}
	case []float64:
		loadNumbers(r, v, c.has)
	case []string:
		c.own = make([][]byte, len(c.has))
		for id, h := range c.has {
			if !h || r.Err() != nil {
				continue
			}
			if b := r.Blob(); len(b) > 0 {
				c.own[id] = b
				c.ownBytes += int64(cap(b))
				v[id] = unsafe.String(unsafe.SliceData(b), len(b))
			}
		}
	}
	return c
}

func (a *extremeAcc[T]) kind() AggKind {
	if a.max {
		return Max
	}
	return Min
}

func (a *extremeAcc[T]) Save(w *snap.Writer, slots int) {
	w.Section(snapSection(a.kind(), a.typ))
	a.c.save(w, savedSlots(len(a.c.v), slots))
}

func (a *extremeAcc[T]) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(a.kind(), a.typ)); err != nil {
		return err
	}
	c := loadCells[T](r, a.typ)
	if r.Err() != nil {
		return r.Err()
	}
	a.c = c
	return nil
}

// Save writes the cells, then the time and seq of each non-NULL slot.
func (a *firstLastAcc[T]) Save(w *snap.Writer, slots int) {
	m := savedSlots(len(a.time), slots)
	w.Section(snapSection(a.kind(), a.typ))
	a.c.save(w, m)
	for id, h := range a.c.has[:m] {
		if h {
			w.Int(a.time[id])
			w.Int(a.seq[id])
		}
	}
}

func (a *firstLastAcc[T]) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(a.kind(), a.typ)); err != nil {
		return err
	}
	c := loadCells[T](r, a.typ)
	time, seq := make([]int64, len(c.has)), make([]int64, len(c.has))
	for id, h := range c.has {
		if h {
			time[id], seq[id] = r.Int(), r.Int()
		}
	}
	if r.Err() != nil {
		return r.Err()
	}
	a.c, a.time, a.seq = c, time, seq
	return nil
}

// keyKind says how int64 keys are checkpointed and checked: float keys
// (see floatKey) as floats, since as varints they would take 9 or 10
// bytes; boolean keys must be 0 or 1.
type keyKind struct{ floats, bools bool }

func (a *distinctAcc[K]) keyKind() keyKind {
	if a.in == nil {
		return keyKind{}
	}
	return keyKind{floats: a.in.ID() == arrow.FLOAT64, bools: a.in.ID() == arrow.BOOL}
}

// Save writes each slot's set as its size and its keys: small sets in the
// order they hold them, large ones sorted, so that the same state always
// saves to the same bytes. A set of strings is the concatenation of its
// keys, then their lengths.
func (a *distinctAcc[K]) Save(w *snap.Writer, slots int) {
	m := savedSlots(len(a.sets), slots)
	w.Section(snapSection(CountDistinct, a.in))
	w.Uint(uint64(m))
	floats := a.keyKind().floats
	var sorted []K
	var concat []byte
	for id := range a.sets[:m] {
		s := &a.sets[id]
		keys := s.small
		if s.big != nil {
			sorted = slices.AppendSeq(sorted[:0], maps.Keys(s.big))
			slices.Sort(sorted)
			keys = sorted
		}
		w.Uint(uint64(len(keys)))
		if len(keys) == 0 {
			continue
		}
		switch ks := any(keys).(type) {
		case []int64:
			if floats {
				for _, k := range ks {
					w.Float(math.Float64frombits(uint64(k)))
				}
				break
			}
			for _, k := range ks {
				w.Int(k)
			}
		case []string:
			concat = concat[:0]
			for _, k := range ks {
				concat = append(concat, k...)
			}
			w.Blob(concat)
			for _, k := range ks {
				w.Uint(uint64(len(k)))
			}
		}
	}
}

// Load rebuilds each set as add would have left it: up to smallSet keys in
// a slice (of exactly their number), more in a map. Keys must be distinct,
// float keys as floatKey makes them and boolean keys 0 or 1. The strings
// of one set share one buffer, which is never written to, as Copy shares
// strings between sets.
func (a *distinctAcc[K]) Load(r *snap.Reader) error {
	if err := r.Section(snapSection(CountDistinct, a.in)); err != nil {
		return err
	}
	kk := a.keyKind()
	minKeyBytes := 1
	if kk.floats {
		minKeyBytes = 8
	}
	sets := make([]dset[K], r.Len(1))
	var bytes int64
	var scratch []K
	for id := range sets {
		n := r.Len(minKeyBytes)
		if r.Err() != nil {
			break
		}
		if n == 0 {
			continue
		}
		var keys []K
		if n <= smallSet {
			keys = make([]K, n)
		} else {
			keys = resize(&scratch, n)
		}
		if err := loadKeys(r, keys, kk); err != nil {
			return err
		}
		s := &sets[id]
		if n <= smallSet {
			for i := 1; i < n; i++ {
				if slices.Contains(keys[:i], keys[i]) {
					return r.Failf("slot %d: %v twice in a distinct set", id, keys[i])
				}
			}
			s.small = keys
		} else {
			s.big = make(map[K]struct{}, n)
			for _, k := range keys {
				s.big[k] = struct{}{}
			}
			if len(s.big) != n {
				return r.Failf("slot %d: %d keys of a distinct set are %d distinct ones", id, n, len(s.big))
			}
		}
		bytes += a.setBytes(s)
	}
	if r.Err() != nil {
		return r.Err()
	}
	a.sets, a.bytes = sets, bytes
	return nil
}

// loadKeys reads len(keys) keys of one set into keys.
func loadKeys[K int64 | string](r *snap.Reader, keys []K, kk keyKind) error {
	switch ks := any(keys).(type) {
	case []int64:
		for i := range ks {
			var k int64
			if kk.floats {
				k = int64(math.Float64bits(r.Float()))
			} else {
				k = r.Int()
			}
			switch {
			case kk.floats && k != floatKey(math.Float64frombits(uint64(k))):
				return r.Failf("distinct key %#x is not a float key", uint64(k))
			case kk.bools && k != 0 && k != 1:
				return r.Failf("distinct key %d is not a boolean", k)
			}
			ks[i] = k
		}
	case []string:
		buf := r.Blob()
		off := 0
		for i := range ks {
			n := r.Len(0)
			if r.Err() != nil {
				return r.Err()
			}
			if n > len(buf)-off {
				return r.Failf("distinct key of %d bytes past the %d left of its set", n, len(buf)-off)
			}
			ks[i] = unsafe.String(unsafe.SliceData(buf[off:]), n)
			off += n
		}
		if off != len(buf) {
			return r.Failf("distinct keys of %d bytes in a set of %d", off, len(buf))
		}
	}
	return r.Err()
}
