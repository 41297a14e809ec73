package windows

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var tsType = &arrow.TimestampType{Unit: arrow.Millisecond}

// TestAccumulators folds a column into three windows (row i goes to window
// ids[i]), merges window 2 into window 0, and checks every aggregate over
// every input type, NULLs included.
//
// For FIRST_VALUE and LAST_VALUE, windows 0 and 2 hold rows 0, 1, 3, 5 and
// 6 with (time, seq) (20,7) (10,3) (10,5) (10,2) (20,6): row 5 is first
// and row 0 last, on seq alone, and neither is the first or last folded.
func TestAccumulators(t *testing.T) {
	ids := []ID{0, 0, 1, 2, NoWindow, 2, 0}
	times := []int64{20, 10, 5, 10, 0, 10, 20}
	seqs := []int64{7, 3, 1, 5, 0, 2, 6}
	i64, f64, str, boolean := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String, arrow.FixedWidthTypes.Boolean
	cases := []struct {
		name string
		kind AggKind
		typ  arrow.DataType
		in   string // JSON array, one value per row
		want string // windows 0 and 1 after merging 2 into 0
	}{
		{"count star", CountStar, nil, ``, `[5,1]`},
		{"count col", Count, i64, `[1,null,3,4,5,null,7]`, `[3,1]`},
		{"sum int", Sum, i64, `[1,null,3,4,100,null,7]`, `[12,3]`},
		{"sum int all null", Sum, i64, `[1,2,null,3,4,5,6]`, `[17,null]`},
		{"sum float", Sum, f64, `[1.5,null,3,4,5,null,0.25]`, `[5.75,3]`},
		{"avg int", Avg, i64, `[1,null,3,4,5,null,7]`, `[4,3]`},
		{"avg float", Avg, f64, `[1,2,null,4,5,6,null]`, `[3.25,null]`},
		{"min int", Min, i64, `[5,null,3,-4,-100,9,7]`, `[-4,3]`},
		{"max int", Max, i64, `[5,null,3,-4,100,9,7]`, `[9,3]`},
		{"min float", Min, f64, `[5,null,3,-4.5,-100,9,7]`, `[-4.5,3]`},
		{"min string", Min, str, `["b","a",null,"c","0","d",null]`, `["a",null]`},
		{"max string", Max, str, `["b","a",null,"c","z","d",null]`, `["d",null]`},
		{"min bool", Min, boolean, `[true,null,false,true,false,true,true]`, `[true,false]`},
		{"max bool", Max, boolean, `[false,null,false,true,true,false,false]`, `[true,false]`},
		{"min timestamp", Min, tsType, `[5000,null,3000,4000,1,9000,7000]`, `["1970-01-01T00:00:04","1970-01-01T00:00:03"]`},
		{"max timestamp", Max, tsType, `[5000,null,3000,4000,99999,9000,7000]`, `["1970-01-01T00:00:09","1970-01-01T00:00:03"]`},
		{"count distinct int", CountDistinct, i64, `[1,1,3,1,5,2,2]`, `[2,1]`},
		{"count distinct nulls", CountDistinct, i64, `[null,1,null,1,5,null,null]`, `[1,0]`},
		{"count distinct float", CountDistinct, f64, `[0.5,1,3,0.5,5,1,2]`, `[3,1]`},
		{"count distinct string", CountDistinct, str, `["a","b","c","","x","b",""]`, `[3,1]`},
		{"count distinct bool", CountDistinct, boolean, `[true,null,false,true,false,false,true]`, `[2,1]`},
		{"count distinct timestamp", CountDistinct, tsType, `[1000,2000,1000,1000,5,2000,3000]`, `[3,1]`},
		{"first int", FirstValue, i64, `[1,2,3,4,5,6,7]`, `[6,3]`},
		{"last int", LastValue, i64, `[1,2,3,4,5,6,7]`, `[1,3]`},
		{"first skips nulls", FirstValue, i64, `[1,null,3,4,5,null,7]`, `[4,3]`},
		{"last skips nulls", LastValue, i64, `[null,2,null,4,5,6,7]`, `[7,null]`},
		{"first float", FirstValue, f64, `[1.5,2.5,3,4,5,6.25,7]`, `[6.25,3]`},
		{"last float", LastValue, f64, `[1.5,2.5,3,4,5,6.25,7]`, `[1.5,3]`},
		{"first string", FirstValue, str, `["a","bb",null,"","e","ffff","g"]`, `["ffff",null]`},
		{"last string", LastValue, str, `["a","bb",null,"","e","ffff","g"]`, `["a",null]`},
		{"first bool", FirstValue, boolean, `[true,false,true,false,true,null,true]`, `[false,true]`},
		{"last bool", LastValue, boolean, `[false,false,true,false,true,true,true]`, `[false,true]`},
		{"first timestamp", FirstValue, tsType, `[1000,2000,3000,4000,5000,6000,7000]`, `["1970-01-01T00:00:06","1970-01-01T00:00:03"]`},
		{"last timestamp", LastValue, tsType, `[1000,2000,3000,4000,5000,6000,7000]`, `["1970-01-01T00:00:01","1970-01-01T00:00:03"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			acc, err := NewAccumulator(tc.kind, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			in := Input{Times: times, Seqs: seqs}
			if tc.in != "" {
				col, _, err := array.FromJSON(mem, tc.typ, strings.NewReader(tc.in))
				if err != nil {
					t.Fatal(err)
				}
				defer col.Release()
				in.Col = col
			}
			acc.Update(ids, in)
			acc.Merge(0, 2)
			out := acc.Emit(mem, []ID{0, 1})
			defer out.Release()
			if got := jsonOf(t, out); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if !arrow.TypeEqual(out.DataType(), acc.Type()) {
				t.Fatalf("emitted %s, Type says %s", out.DataType(), acc.Type())
			}
			acc.Reset(0)
			empty := acc.Emit(mem, []ID{0, 2, 1000})
			defer empty.Release()
			wantEmpty := `[null,null,null]`
			if tc.kind == CountStar || tc.kind == Count || tc.kind == CountDistinct {
				wantEmpty = `[0,0,0]`
			}
			if got := jsonOf(t, empty); got != wantEmpty {
				t.Fatalf("after reset/merge got %s, want %s", got, wantEmpty)
			}
		})
	}
}

func jsonOf(t *testing.T, a arrow.Array) string {
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "Z", "")
}

func TestNewAccumulatorUnsupported(t *testing.T) {
	for _, tc := range []struct {
		kind AggKind
		typ  arrow.DataType
	}{
		{Sum, arrow.BinaryTypes.String},
		{Avg, arrow.FixedWidthTypes.Boolean},
		{CountDistinct, arrow.PrimitiveTypes.Int32},
		{FirstValue, arrow.BinaryTypes.Binary},
		{AggKind(99), arrow.PrimitiveTypes.Int64},
	} {
		if _, err := NewAccumulator(tc.kind, tc.typ); err == nil {
			t.Errorf("%s over %s: no error", tc.kind, tc.typ)
		}
	}
}

// TestAccumulatorSlicedInput checks that inputs with a non-zero offset
// (slices of a record) are read at the right rows, NULLs included.
func TestAccumulatorSlicedInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int64, strings.NewReader(`[1000,null,2,3]`))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Release()
	col := array.NewSlice(full, 1, 4)
	defer col.Release()
	in := Input{Col: col, Times: []int64{3, 2, 1}, Seqs: []int64{0, 1, 2}}
	want := map[AggKind]string{Sum: "5", Min: "2", Max: "3", Avg: "2.5", Count: "2",
		CountDistinct: "2", FirstValue: "3", LastValue: "2"}
	for kind, want := range want {
		acc, _ := NewAccumulator(kind, arrow.PrimitiveTypes.Int64)
		acc.Update([]ID{0, 0, 0}, in)
		acc.UpdateRows(1, in, []int32{2, 1, 0})
		out := acc.Emit(mem, []ID{0, 1})
		if got := jsonOf(t, out); got != "["+want+","+want+"]" {
			t.Errorf("%s over a sliced column: got %s, want %s in both windows", kind, got, want)
		}
		out.Release()
	}
}

// TestFirstLastOrder folds the same rows in every order, in one batch, row
// by row through UpdateRows, and split between two windows merged either
// way: the result is always the row with the smallest (largest) (time,
// seq) among the non-NULL ones.
func TestFirstLastOrder(t *testing.T) {
	type row struct {
		t, seq int64
		v      *string
	}
	s := func(v string) *string { return &v }
	rows := []row{{5, 3, s("a")}, {5, 1, s("b")}, {5, 0, nil}, {7, 0, s("c")}, {7, 4, nil}, {3, 9, nil}, {5, 2, s("")}}
	want := map[AggKind]string{FirstValue: `"b"`, LastValue: `"c"`}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	perm := make([]int, len(rows))
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		b := array.NewStringBuilder(mem)
		var in Input
		for _, p := range perm {
			r := rows[p]
			if r.v == nil {
				b.AppendNull()
			} else {
				b.Append(*r.v)
			}
			in.Times, in.Seqs = append(in.Times, r.t), append(in.Seqs, r.seq)
		}
		in.Col = b.NewArray()
		b.Release()
		split := rng.IntN(len(rows) + 1)
		for kind, want := range want {
			acc, _ := NewAccumulator(kind, arrow.BinaryTypes.String)
			// Window 0: every row in one batch.
			acc.Update(make([]ID, len(rows)), in)
			// Window 1: one row at a time. Windows 2 and 3: rows split
			// between them at split, then merged one way or the other.
			for k := range rows {
				acc.UpdateRows(1, in, []int32{int32(k)})
			}
			ids := make([]ID, len(rows))
			for k := range ids {
				ids[k] = 2
				if k >= split {
					ids[k] = 3
				}
			}
			acc.Update(ids, in)
			into, from := ID(2), ID(3)
			if split%2 == 0 {
				into, from = from, into
			}
			acc.Merge(into, from)
			out := acc.Emit(mem, []ID{0, 1, into})
			if got := jsonOf(t, out); got != "["+strings.Repeat(want+",", 2)+want+"]" {
				t.Fatalf("%s in order %v (split %d): got %s, want %s in each window", kind, perm, split, got, want)
			}
			out.Release()
		}
		in.Col.Release()
	}
}

// TestCountDistinctFloat: -0 and +0 are one value, and so are all NaNs,
// within a window and across a merge.
func TestCountDistinctFloat(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	negZero, otherNaN := math.Copysign(0, -1), math.Float64frombits(0x7ff8000000000001)
	b := array.NewFloat64Builder(mem)
	b.AppendValues([]float64{0, negZero, math.NaN(), otherNaN, 1, 1, negZero, otherNaN, math.Inf(-1)}, nil)
	col := b.NewArray()
	b.Release()
	defer col.Release()
	acc, _ := NewAccumulator(CountDistinct, arrow.PrimitiveTypes.Float64)
	acc.Update([]ID{0, 0, 0, 0, 0, 0, 1, 1, 1}, Input{Col: col})
	acc.Copy(2, 1)
	acc.Merge(2, 0)
	out := acc.Emit(mem, []ID{0, 1, 2})
	defer out.Release()
	if got := jsonOf(t, out); got != `[0,3,4]` {
		t.Fatalf("got %s, want [0,3,4] ({0,NaN,1} and {-0,NaN,-Inf}, then their union)", got)
	}
}

// TestCountDistinctLarge grows sets past smallSet and merges them every way
// (small into large, large into small, large into large).
func TestCountDistinctLarge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, typ := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String} {
		acc, _ := NewAccumulator(CountDistinct, typ)
		// Window w gets the values lo[w] <= v < hi[w], each twice.
		lo := []int{0, 90, 5, 0, 200}
		hi := []int{100, 110, 10, 3, 240}
		var ids []ID
		var vals []int
		for w := range lo {
			for v := lo[w]; v < hi[w]; v++ {
				ids = append(ids, ID(w), ID(w))
				vals = append(vals, v, v)
			}
		}
		col := intColumn(mem, typ, vals)
		acc.Update(ids, Input{Col: col})
		col.Release()
		acc.Merge(2, 0) // large into small: 100
		acc.Merge(1, 2) // large into large: 110
		acc.Merge(1, 3) // small into large: 110
		acc.Copy(0, 4)  // 40
		acc.Merge(4, 1) // 150
		out := acc.Emit(mem, []ID{0, 1, 2, 3, 4})
		if got := jsonOf(t, out); got != `[40,0,0,0,150]` {
			t.Errorf("%s: got %s, want [40,0,0,0,150]", typ, got)
		}
		out.Release()
		checkStateBytes(t, acc)
	}
}

func intColumn(mem memory.Allocator, typ arrow.DataType, vals []int) arrow.Array {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	for _, v := range vals {
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(int64(v))
		case *array.StringBuilder:
			b.Append(fmt.Sprintf("value-%d", v))
		}
	}
	return b.NewArray()
}

// TestResetFreesState fills windows with values, resets them, and checks
// that the state is back to the fixed per-slot arrays of an accumulator
// that never held a value, and that strings and sets are let go.
func TestResetFreesState(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const windows = 10
	for _, sp := range accSpecs() {
		t.Run(sp.name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			full, _ := NewAccumulator(sp.kind, sp.typ)
			empty, _ := NewAccumulator(sp.kind, sp.typ)
			var rows []refRow
			var ids []ID
			for k := range 200 {
				r := refRow{t: int64(k), seq: int64(k)}
				if sp.typ != nil {
					r.v = genValue(rng, sp.typ, 50, true)
				}
				rows = append(rows, r)
				ids = append(ids, ID(k%windows))
			}
			in := buildInput(mem, sp.typ, rows, 0)
			full.Update(ids, in)
			full.Copy(windows, 0)
			release(in)
			// The same slots, never holding a value: one NULL in the last.
			nul := buildInput(mem, sp.typ, []refRow{{null: true}}, 0)
			empty.Update([]ID{windows}, nul)
			release(nul)
			empty.Reset(windows)
			variable := sp.kind == CountDistinct || (sp.kind != Count && sp.typ != nil && sp.typ.ID() == arrow.STRING)
			if variable && full.StateBytes() <= empty.StateBytes() {
				t.Errorf("holding values: %d bytes, no more than empty %d", full.StateBytes(), empty.StateBytes())
			}
			for id := range ID(windows + 1) {
				full.Reset(id)
			}
			if got, want := full.StateBytes(), empty.StateBytes(); got != want {
				t.Errorf("after Reset of every window: %d bytes, want %d", got, want)
			}
			for id := range ID(windows + 1) {
				if held := heldBy(full, id); held {
					t.Errorf("window %d still holds a string or a set after Reset", id)
				}
			}
		})
	}
}

// heldBy reports whether slot id of acc still references variable state.
func heldBy(acc Accumulator, id ID) bool {
	switch a := acc.(type) {
	case *distinctAcc[int64]:
		return a.sets[id].small != nil || a.sets[id].big != nil
	case *distinctAcc[string]:
		return a.sets[id].small != nil || a.sets[id].big != nil
	case *extremeAcc[string]:
		return a.c.own[id] != nil || a.c.v[id] != ""
	case *firstLastAcc[string]:
		return a.c.own[id] != nil || a.c.v[id] != ""
	}
	return false
}

// checkStateBytes recounts the variable state that accumulators track
// incrementally and compares it with what StateBytes reports.
func checkStateBytes(t *testing.T, acc Accumulator) {
	t.Helper()
	var want int64
	switch a := acc.(type) {
	case *distinctAcc[int64]:
		want = recountDistinct(a)
	case *distinctAcc[string]:
		want = recountDistinct(a)
	case *extremeAcc[string]:
		want = recountCells(&a.c)
	case *firstLastAcc[string]:
		want = recountCells(&a.c) + 16*int64(len(a.time))
	default:
		return
	}
	if got := acc.StateBytes(); got != want {
		t.Fatalf("StateBytes %d, recounted %d", got, want)
	}
}

func recountDistinct[K int64 | string](a *distinctAcc[K]) int64 {
	n := sizeOf[dset[K]]() * int64(len(a.sets))
	for i := range a.sets {
		n += a.setBytes(&a.sets[i])
	}
	return n
}

func recountCells(c *cells[string]) int64 {
	n := int64(len(c.v)) * (16 + 1 + 24)
	for i, b := range c.own {
		n += int64(cap(b))
		if c.v[i] != string(b) {
			panic(fmt.Sprintf("slot %d holds %q but owns %q", i, c.v[i], b))
		}
	}
	return n
}

// refRow is one input row as the reference computation sees it.
type refRow struct {
	null   bool
	v      any // int64 (also timestamps), float64, string or bool
	t, seq int64
}

type accSpec struct {
	kind AggKind
	typ  arrow.DataType
}

func (s accSpec) name() string {
	if s.typ == nil {
		return s.kind.String()
	}
	return s.kind.String() + "/" + s.typ.String()
}

// accSpecs lists every supported kind and input type.
func accSpecs() []accSpec {
	i64, f64 := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64
	all := []arrow.DataType{i64, f64, arrow.BinaryTypes.String, arrow.FixedWidthTypes.Boolean, tsType}
	specs := []accSpec{{CountStar, nil}, {Count, i64}, {Count, arrow.BinaryTypes.String},
		{Sum, i64}, {Sum, f64}, {Avg, i64}, {Avg, f64}}
	for _, k := range []AggKind{Min, Max, CountDistinct, FirstValue, LastValue} {
		for _, typ := range all {
			specs = append(specs, accSpec{k, typ})
		}
	}
	return specs
}

// genValue draws one of about domain values of typ. Floats include -0, and
// NaN when nan is set (NaN compares unequal in array.Equal, so only COUNT
// DISTINCT tests it).
func genValue(rng *rand.Rand, typ arrow.DataType, domain int, nan bool) any {
	k := rng.IntN(domain)
	switch typ.ID() {
	case arrow.INT64:
		return int64(k - domain/2)
	case arrow.TIMESTAMP:
		return int64(k) * 1000
	case arrow.FLOAT64:
		switch {
		case k == 0:
			return math.Copysign(0, -1)
		case k == 1 && nan:
			return math.Float64frombits(0x7ff8000000000000 | uint64(rng.IntN(3)))
		}
		return float64(k-domain/2) / 4
	case arrow.STRING:
		if k == 0 {
			return ""
		}
		return strings.Repeat("s", k%9) + fmt.Sprint(k) // lengths vary, so buffers are reused and outgrown
	case arrow.BOOL:
		return k%2 == 1
	}
	panic(typ)
}

// buildInput makes an Input of rows, its column (nil without typ) sliced
// off pad leading junk rows so that offsets are exercised.
func buildInput(mem memory.Allocator, typ arrow.DataType, rows []refRow, pad int) Input {
	in := Input{}
	for _, r := range rows {
		in.Times, in.Seqs = append(in.Times, r.t), append(in.Seqs, r.seq)
	}
	if typ == nil {
		return in
	}
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	for k := range pad {
		if k%2 == 0 {
			b.AppendNull()
		} else {
			b.AppendEmptyValue()
		}
	}
	for _, r := range rows {
		if r.null {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(r.v.(int64))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(r.v.(int64)))
		case *array.Float64Builder:
			b.Append(r.v.(float64))
		case *array.StringBuilder:
			b.Append(r.v.(string))
		case *array.BooleanBuilder:
			b.Append(r.v.(bool))
		}
	}
	full := b.NewArray()
	if pad == 0 {
		in.Col = full
		return in
	}
	defer full.Release()
	in.Col = array.NewSlice(full, int64(pad), int64(pad+len(rows)))
	return in
}

// release scribbles over a string column's bytes, so that an accumulator
// that kept views into the borrowed batch instead of copies is caught, and
// releases the column.
func release(in Input) {
	if in.Col == nil {
		return
	}
	if s, ok := in.Col.(*array.String); ok {
		if buf := s.Data().Buffers()[2]; buf != nil {
			for i := range buf.Bytes() {
				buf.Bytes()[i] = '#'
			}
		}
	}
	in.Col.Release()
}

// reference computes the aggregate of rows the way the SQL text defines
// it, one window at a time.
func reference(kind AggKind, rows []refRow) any {
	var vals []refRow
	for _, r := range rows {
		if !r.null {
			vals = append(vals, r)
		}
	}
	switch kind {
	case CountStar:
		return int64(len(rows))
	case Count:
		return int64(len(vals))
	case CountDistinct:
		set := map[any]bool{}
		for _, r := range vals {
			v := r.v
			if f, ok := v.(float64); ok {
				switch {
				case f == 0:
					v = 0.0
				case math.IsNaN(f):
					v = "NaN"
				}
			}
			set[v] = true
		}
		return int64(len(set))
	}
	if len(vals) == 0 {
		return nil
	}
	switch kind {
	case Sum, Avg:
		var si int64
		var sf float64
		for _, r := range vals {
			switch v := r.v.(type) {
			case int64:
				si += v
			case float64:
				sf += v
			}
		}
		_, isInt := vals[0].v.(int64)
		switch {
		case kind == Avg && isInt:
			return float64(si) / float64(len(vals))
		case kind == Avg:
			return sf / float64(len(vals))
		case isInt:
			return si
		}
		return sf
	case Min, Max:
		best := vals[0].v
		for _, r := range vals[1:] {
			if c := compareAny(r.v, best); (kind == Min && c < 0) || (kind == Max && c > 0) {
				best = r.v
			}
		}
		return best
	case FirstValue, LastValue:
		best := vals[0]
		for _, r := range vals[1:] {
			c := cmp.Or(cmp.Compare(r.t, best.t), cmp.Compare(r.seq, best.seq))
			if (kind == FirstValue && c < 0) || (kind == LastValue && c > 0) {
				best = r
			}
		}
		return best.v
	}
	panic(kind)
}

func compareAny(x, y any) int {
	switch x := x.(type) {
	case int64:
		return cmp.Compare(x, y.(int64))
	case float64:
		return cmp.Compare(x, y.(float64))
	case string:
		return strings.Compare(x, y.(string))
	case bool:
		if x == y.(bool) {
			return 0
		} else if x {
			return 1
		}
		return -1
	}
	panic(x)
}

// expected builds the array Emit should return for windows ids of ref.
func expected(mem memory.Allocator, kind AggKind, typ arrow.DataType, ref [][]refRow, ids []ID) arrow.Array {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	for _, id := range ids {
		var rows []refRow
		if int(id) < len(ref) {
			rows = ref[id]
		}
		v := reference(kind, rows)
		if v == nil {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(v.(int64))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(v.(int64)))
		case *array.Float64Builder:
			b.Append(v.(float64))
		case *array.StringBuilder:
			b.Append(v.(string))
		case *array.BooleanBuilder:
			b.Append(v.(bool))
		}
	}
	return b.NewArray()
}

// TestAccumulatorsRandom is the property test: random batches (NULLs,
// equal times, seqs out of arrival order, sliced columns) are assigned to
// random windows and folded partly by Update and partly by UpdateRows in
// shuffled order; windows are randomly merged, copied and reset. After
// every step each window's aggregate must equal the reference computed
// over the rows that window holds (a copy holds the rows of its source at
// the time of the copy, and nothing folded into the source later).
func TestAccumulatorsRandom(t *testing.T) {
	for _, sp := range accSpecs() {
		t.Run(sp.name(), func(t *testing.T) {
			for seed := range uint64(25) {
				randomRun(t, sp, seed)
			}
		})
	}
}

func randomRun(t *testing.T, sp accSpec, seed uint64) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(seed, uint64(sp.kind)))
	acc, err := NewAccumulator(sp.kind, sp.typ)
	if err != nil {
		t.Fatal(err)
	}
	nwin := 1 + rng.IntN(8)
	domain := []int{3, 60}[rng.IntN(2)]
	ref := make([][]refRow, nwin)
	var seq int64
	var log []string // the steps so far, printed on failure
	all := make([]ID, nwin+2)
	for i := range all {
		all[i] = ID(i) // the last two never hold rows
	}
	check := func() {
		t.Helper()
		want := expected(mem, sp.kind, acc.Type(), ref, all)
		defer want.Release()
		got := acc.Emit(mem, all)
		defer got.Release()
		if !array.Equal(want, got) {
			t.Fatalf("seed %d after\n%s\ngot  %v\nwant %v", seed, strings.Join(log, "\n"), got, want)
		}
		checkStateBytes(t, acc)
	}
	for range 60 {
		into, from := ID(rng.IntN(nwin)), ID(rng.IntN(nwin))
		switch op := rng.IntN(10); {
		case op < 5:
			n := 1 + rng.IntN(40)
			rows := make([]refRow, n)
			seqs := rng.Perm(n)
			for i := range rows {
				rows[i] = refRow{null: rng.IntN(5) == 0, t: rng.Int64N(4), seq: seq + int64(seqs[i])}
				if sp.typ != nil && !rows[i].null {
					rows[i].v = genValue(rng, sp.typ, domain, sp.kind == CountDistinct)
				}
			}
			seq += int64(n)
			in := buildInput(mem, sp.typ, rows, rng.IntN(3))
			ids := make([]ID, n)
			byWin := map[ID][]int32{}
			for i := range ids {
				ids[i] = NoWindow
				if rng.IntN(10) == 0 {
					continue
				}
				w := ID(rng.IntN(nwin))
				ref[w] = append(ref[w], rows[i])
				if rng.IntN(2) == 0 {
					ids[i] = w
				} else {
					byWin[w] = append(byWin[w], int32(i))
				}
			}
			updateRows := func() {
				for w, rs := range byWin {
					rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
					k := rng.IntN(len(rs) + 1)
					acc.UpdateRows(w, in, rs[:k])
					acc.UpdateRows(w, in, rs[k:])
				}
			}
			if rng.IntN(2) == 0 {
				acc.Update(ids, in)
				updateRows()
			} else {
				updateRows()
				acc.Update(ids, in)
			}
			release(in)
			log = append(log, fmt.Sprintf("update %d rows: %v via Update %v, via UpdateRows %v", n, rows, ids, byWin))
		case op == 5 && into != from:
			acc.Merge(into, from)
			ref[into] = append(ref[into], ref[from]...)
			ref[from] = nil
			log = append(log, fmt.Sprintf("merge %d <- %d", into, from))
		case op == 6:
			acc.Copy(into, from)
			ref[into] = slices.Clone(ref[from])
			log = append(log, fmt.Sprintf("copy %d <- %d", into, from))
		case op == 7:
			acc.Reset(into)
			ref[into] = nil
			log = append(log, fmt.Sprintf("reset %d", into))
		default:
			check()
		}
	}
	check()
}

// BenchmarkAccumulator measures Update: 4096-row batches over 100,000
// windows, in steady state (every window already holds values). For COUNT
// DISTINCT each window sees 3 distinct values; times rise as in an
// in-order stream, so LAST_VALUE replaces its value on every row. It
// reports ns/row, and B/slot (StateBytes per window).
func BenchmarkAccumulator(b *testing.B) {
	const windows, batch, batches = 100_000, 4096, 16
	i64, str := arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String
	for _, bc := range []struct {
		name string
		kind AggKind
		typ  arrow.DataType
	}{
		{"count_star", CountStar, nil},
		{"count", Count, i64},
		{"sum", Sum, i64},
		{"avg", Avg, i64},
		{"min", Min, i64},
		{"max", Max, i64},
		{"count_distinct", CountDistinct, i64},
		{"first_value", FirstValue, i64},
		{"last_value", LastValue, i64},
		{"min_string", Min, str},
		{"count_distinct_string", CountDistinct, str},
		{"last_value_string", LastValue, str},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mem := memory.NewGoAllocator()
			rng := rand.New(rand.NewPCG(7, 8))
			acc, _ := NewAccumulator(bc.kind, bc.typ)
			value := func(v int) any {
				if bc.typ == str {
					return fmt.Sprintf("title-%d", v)
				}
				return int64(v)
			}
			ids := make([][]ID, batches)
			ins := make([]Input, batches)
			for k := range ins {
				ids[k] = make([]ID, batch)
				rows := make([]refRow, batch)
				for i := range rows {
					id := rng.IntN(windows)
					ids[k][i] = ID(id)
					rows[i].v = value(id*4 + rng.IntN(3))
				}
				ins[k] = buildInput(mem, bc.typ, rows, 0)
				defer release(ins[k])
			}
			clock := int64(0)
			// Only FIRST_VALUE and LAST_VALUE read times; only they pay
			// for rewriting them.
			readsTime := bc.kind == FirstValue || bc.kind == LastValue
			run := func(k int) {
				in := &ins[k%batches]
				if readsTime {
					for i := range in.Times {
						clock++
						in.Times[i], in.Seqs[i] = clock, clock
					}
				}
				acc.Update(ids[k%batches], *in)
			}
			// Warm up: every window gets its 3 values, so the loop measures
			// steady state, not slot growth, and B/slot is that of 3 values.
			var warmIDs []ID
			var warm []refRow
			for id := range windows {
				for j := range 3 {
					warmIDs = append(warmIDs, ID(id))
					warm = append(warm, refRow{v: value(id*4 + j)})
				}
			}
			in := buildInput(mem, bc.typ, warm, 0)
			acc.Update(warmIDs, in)
			release(in)
			for k := range batches {
				run(k)
			}
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				run(k)
				k++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
			b.ReportMetric(float64(acc.StateBytes())/windows, "B/slot")
		})
	}
}
