package expr

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

func newMem(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func oneRow() arrow.RecordBatch { return array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1) }

func TestLiteral(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		t    arrow.DataType
		want string // rendering, or "ERROR <code>" for Eval
		typ  arrow.DataType
	}{
		{"int", int64(5), sqltypes.Int64, "5", sqltypes.Int64},
		{"go int inferred", 5, nil, "5", sqltypes.Int64},
		{"int as float", 5, sqltypes.Float64, "5.0", sqltypes.Float64},
		{"float", 2.5, nil, "2.5", sqltypes.Float64},
		{"float32", float32(0.5), sqltypes.Float64, "0.5", sqltypes.Float64},
		{"nan", math.NaN(), nil, "CAST('NaN' AS DOUBLE PRECISION)", sqltypes.Float64},
		{"string", "it's", nil, "'it''s'", sqltypes.String},
		{"bool", true, nil, "TRUE", sqltypes.Bool},
		{"null untyped", nil, nil, "NULL", sqltypes.Null},
		{"null typed", nil, sqltypes.Int64, "NULL", sqltypes.Int64},
		{"timestamp ms", ts.UnixMilli(), sqltypes.Timestamp, "TIMESTAMP '2024-01-02 03:04:05.678'", sqltypes.Timestamp},
		{"time.Time", ts, sqltypes.TimestampTZ, "TIMESTAMPTZ '2024-01-02 03:04:05.678+00'", sqltypes.TimestampTZ},
		{"time.Time inferred", ts, nil, "TIMESTAMP '2024-01-02 03:04:05.678'", sqltypes.Timestamp},
		{"string for int", "x", sqltypes.Int64, "ERROR XX000", sqltypes.Int64},
		{"float for int", 1.5, sqltypes.Int64, "ERROR XX000", sqltypes.Int64},
		{"unsupported Go type", []int{1}, nil, "ERROR XX000", sqltypes.Null},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(t)
			l := Literal(tc.v, tc.t)
			if !arrow.TypeEqual(l.Type(), tc.typ) {
				t.Errorf("type %s, want %s", l.Type(), tc.typ)
			}
			b := oneRow()
			defer b.Release()
			a, err := l.Eval(mem, b)
			if strings.HasPrefix(tc.want, "ERROR") {
				if err == nil || "ERROR "+sqlerr.Code(err) != tc.want {
					t.Fatalf("Eval: %v, want %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Release()
			if got := l.String(); got != tc.want {
				t.Errorf("String() = %s, want %s", got, tc.want)
			}
			if a.Len() != 1 {
				t.Errorf("%d values", a.Len())
			}
		})
	}
}

func TestColumnErrors(t *testing.T) {
	mem := newMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: sqltypes.Int64}}, nil)
	b, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"a": 1}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	for _, tc := range []struct {
		name string
		e    Expr
	}{
		{"wrong type", Column(0, "a", sqltypes.String)},
		{"out of range", Column(3, "z", sqltypes.Int64)},
		{"negative", Column(-1, "z", sqltypes.Int64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.e.Eval(mem, b); sqlerr.Code(err) != pgerrcode.InternalError {
				t.Errorf("got %v, want an internal error", err)
			}
		})
	}
}

func TestCommonType(t *testing.T) {
	for _, tc := range []struct {
		in   []arrow.DataType
		want arrow.DataType // nil for an error
	}{
		{nil, sqltypes.Null},
		{[]arrow.DataType{sqltypes.Null, sqltypes.Null}, sqltypes.Null},
		{[]arrow.DataType{sqltypes.Int64}, sqltypes.Int64},
		{[]arrow.DataType{sqltypes.Null, sqltypes.String}, sqltypes.String},
		{[]arrow.DataType{sqltypes.Int64, sqltypes.Float64, sqltypes.Null}, sqltypes.Float64},
		{[]arrow.DataType{sqltypes.Float64, sqltypes.Int64}, sqltypes.Float64},
		{[]arrow.DataType{sqltypes.Timestamp, sqltypes.Timestamp}, sqltypes.Timestamp},
		{[]arrow.DataType{sqltypes.Timestamp, sqltypes.TimestampTZ}, sqltypes.TimestampTZ},
		{[]arrow.DataType{sqltypes.Bool, sqltypes.Bool}, sqltypes.Bool},
		{[]arrow.DataType{sqltypes.String, sqltypes.Int64}, nil},
		{[]arrow.DataType{sqltypes.Bool, sqltypes.Int64}, nil},
		{[]arrow.DataType{sqltypes.Timestamp, sqltypes.Int64}, nil},
	} {
		got, err := CommonType(tc.in...)
		switch {
		case tc.want == nil && sqlerr.Code(err) != pgerrcode.DatatypeMismatch:
			t.Errorf("CommonType(%v) = %v, %v; want 42804", tc.in, got, err)
		case tc.want != nil && (err != nil || !arrow.TypeEqual(got, tc.want)):
			t.Errorf("CommonType(%v) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestAggType(t *testing.T) {
	for _, tc := range []struct {
		kind AggKind
		arg  arrow.DataType
		want arrow.DataType // nil for an error
	}{
		{CountStar, nil, sqltypes.Int64},
		{Count, sqltypes.String, sqltypes.Int64},
		{CountDistinct, sqltypes.Bool, sqltypes.Int64},
		{Sum, sqltypes.Int64, sqltypes.Int64},
		{Sum, sqltypes.Float64, sqltypes.Float64},
		{Sum, sqltypes.String, nil},
		{Sum, sqltypes.Timestamp, nil},
		{Avg, sqltypes.Int64, sqltypes.Float64},
		{Avg, sqltypes.Bool, nil},
		{Min, sqltypes.TimestampTZ, sqltypes.TimestampTZ},
		{Max, sqltypes.String, sqltypes.String},
		{Max, sqltypes.Bool, nil},
		{AggKind(99), sqltypes.Int64, nil},
	} {
		got, err := AggType(tc.kind, tc.arg)
		if tc.want == nil {
			if err == nil {
				t.Errorf("AggType(%v, %v) = %v, want an error", tc.kind, tc.arg, got)
			}
			continue
		}
		if err != nil || !arrow.TypeEqual(got, tc.want) {
			t.Errorf("AggType(%v, %v) = %v, %v; want %s", tc.kind, tc.arg, got, err, tc.want)
		}
	}
}

// testBatch returns a batch of n rows: k = row number, g = k % 3 (NULL
// every 5th row), s = a short string.
func testBatch(t testing.TB, mem memory.Allocator, n int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: sqltypes.Int64, Nullable: true},
		{Name: "g", Type: sqltypes.Int64, Nullable: true},
		{Name: "s", Type: sqltypes.String, Nullable: true},
	}, nil)
	bld := array.NewRecordBuilder(mem, schema)
	defer bld.Release()
	for i := range n {
		bld.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%5 == 4 {
			bld.Field(1).AppendNull()
		} else {
			bld.Field(1).(*array.Int64Builder).Append(int64(i % 3))
		}
		bld.Field(2).(*array.StringBuilder).Append(string(rune('a' + i%7)))
	}
	return bld.NewRecordBatch()
}

func TestFilterOwnership(t *testing.T) {
	mem := newMem(t)
	b := testBatch(t, mem, 100)
	defer b.Release()
	k := Column(0, "k", sqltypes.Int64)
	pred := func(op CmpOp, v int64) Expr {
		e, err := Compare(op, k, Literal(v, sqltypes.Int64))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	all, err := Filter(mem, b, pred(Ge, 0))
	if err != nil {
		t.Fatal(err)
	}
	if all != b {
		t.Errorf("all rows pass: want the batch itself")
	}
	all.Release()

	before := mem.CurrentAlloc()
	run, err := Filter(mem, b, pred(Lt, 30))
	if err != nil {
		t.Fatal(err)
	}
	if run.NumRows() != 30 || mem.CurrentAlloc() != before {
		t.Errorf("contiguous rows: %d rows, %d bytes allocated; want a zero-copy slice of 30", run.NumRows(), mem.CurrentAlloc()-before)
	}
	run.Release()

	none, err := Filter(mem, b, pred(Lt, 0))
	if err != nil {
		t.Fatal(err)
	}
	if none.NumRows() != 0 || none.NumCols() != 3 {
		t.Errorf("no rows pass: %d rows %d cols", none.NumRows(), none.NumCols())
	}
	none.Release()

	odd, err := Compare(Eq, mustT{t}.e(Arith(Mod, k, Literal(int64(2), sqltypes.Int64))), Literal(int64(1), sqltypes.Int64))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Filter(mem, b, odd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if f.NumRows() != 50 || f.Column(0).(*array.Int64).Value(49) != 99 {
		t.Errorf("odd rows: %d rows", f.NumRows())
	}
}

// mustT unwraps a constructor's result, failing the test on error:
// mustT{t}.e(Compare(...)).
type mustT struct{ t testing.TB }

func (m mustT) e(e Expr, err error) Expr {
	m.t.Helper()
	if err != nil {
		m.t.Fatal(err)
	}
	return e
}

func TestProjectSchema(t *testing.T) {
	mem := newMem(t)
	b := testBatch(t, mem, 3)
	defer b.Release()
	k := Column(0, "k", sqltypes.Int64)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: sqltypes.Int64, Nullable: true},
		{Name: "nothing", Type: sqltypes.String, Nullable: true},
	}, nil)
	p, err := Project(mem, b, []Expr{k, Literal(nil, nil)}, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if p.Schema() != schema || p.Column(1).NullN() != 3 || !arrow.TypeEqual(p.Column(1).DataType(), sqltypes.String) {
		t.Errorf("project: %v", p)
	}
	for _, tc := range []struct {
		name   string
		exprs  []Expr
		schema *arrow.Schema
	}{
		{"count mismatch", []Expr{k}, schema},
		{"type mismatch", []Expr{k, k}, schema},
	} {
		if _, err := Project(mem, b, tc.exprs, tc.schema); sqlerr.Code(err) != pgerrcode.InternalError {
			t.Errorf("%s: %v, want an internal error", tc.name, err)
		}
	}
}

// TestSortAgainstReference sorts random batches by random keys and
// compares with sort.SliceStable over the rows.
func TestSortAgainstReference(t *testing.T) {
	mem := newMem(t)
	r := rand.New(rand.NewPCG(3, 4))
	g := &refGen{r: r, t: t}
	for range 40 {
		n := r.IntN(300)
		b := g.batch(mem, n)
		var keys []SortKey
		var cols []int
		for range 1 + r.IntN(3) {
			c := r.IntN(len(refCols))
			desc := r.IntN(2) == 0
			keys = append(keys, SortKey{Expr: Column(c, refCols[c].name, refCols[c].typ.arrow()), Desc: desc, NullsFirst: r.IntN(2) == 0})
			cols = append(cols, c)
		}
		perm := make([]int, n)
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(x, y int) int {
			for k, c := range cols {
				a, bv := g.rows[x][c], g.rows[y][c]
				var d int
				switch {
				case a == nil && bv == nil:
				case a == nil:
					d = 1
					if keys[k].NullsFirst {
						d = -1
					}
				case bv == nil:
					d = -1
					if keys[k].NullsFirst {
						d = 1
					}
				default:
					d = refCmp(a, bv)
					if keys[k].Desc {
						d = -d
					}
				}
				if d != 0 {
					return d
				}
			}
			return 0
		})
		s, err := Sort(mem, b, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range perm {
			for c := range refCols {
				if got, want := refValueOf(s.Column(c), i), g.rows[p][c]; !refEqual(got, want) {
					t.Fatalf("sort by %v: row %d column %s = %v, want %v", keys, i, refCols[c].name, got, want)
				}
			}
		}
		s.Release()
		b.Release()
	}
}

// TestFilterAgainstReference filters random batches with random
// predicates and compares with the reference interpreter's TRUE rows.
func TestFilterAgainstReference(t *testing.T) {
	mem := newMem(t)
	g := &refGen{r: rand.New(rand.NewPCG(5, 6)), t: t}
	checked := 0
	for range 200 {
		b := g.batch(mem, g.r.IntN(150))
		x := g.gen(rBool, 3)
		var want []int
		failed := false
		for i := range g.rows {
			res := x.eval(i)
			failed = failed || res.code != ""
			if res.v == true {
				want = append(want, i)
			}
		}
		f, err := Filter(mem, b, x.e)
		if (err != nil) != failed {
			t.Fatalf("%s: error %v, reference fails: %v", x.e, err, failed)
		}
		if err == nil {
			checked++
			if int(f.NumRows()) != len(want) {
				t.Fatalf("%s: %d rows, want %d", x.e, f.NumRows(), len(want))
			}
			for i, w := range want {
				for c := range refCols {
					if got := refValueOf(f.Column(c), i); !refEqual(got, g.rows[w][c]) {
						t.Fatalf("%s: row %d column %s = %v, want %v", x.e, i, refCols[c].name, got, g.rows[w][c])
					}
				}
			}
			f.Release()
		}
		b.Release()
	}
	if checked < 100 {
		t.Errorf("only %d of 200 filters ran without error", checked)
	}
}

// TestGroupAggregateAgainstReference groups random batches by one or two
// columns and compares every aggregate with a map-based reference.
func TestGroupAggregateAgainstReference(t *testing.T) {
	mem := newMem(t)
	g := &refGen{r: rand.New(rand.NewPCG(8, 9)), t: t}
	for range 60 {
		b := g.batch(mem, g.r.IntN(120))
		groupCols := []int{g.r.IntN(len(refCols))}
		if g.r.IntN(2) == 0 {
			groupCols = append(groupCols, g.r.IntN(len(refCols)))
		}
		if g.r.IntN(5) == 0 {
			groupCols = nil
		}
		var groupBy []Expr
		for _, c := range groupCols {
			groupBy = append(groupBy, Column(c, refCols[c].name, refCols[c].typ.arrow()))
		}
		col := func(name string) (int, Expr) {
			for i, c := range refCols {
				if c.name == name {
					return i, Column(i, name, c.typ.arrow())
				}
			}
			t.Fatalf("no column %s", name)
			return 0, nil
		}
		fi, f1 := col("f1")
		si, s1 := col("s1")
		ti, t1 := col("t1")
		ii, i1 := col("i1")
		aggs := []Agg{{Kind: CountStar}, {Kind: Count, Arg: s1}, {Kind: Sum, Arg: f1}, {Kind: Min, Arg: f1},
			{Kind: Max, Arg: s1}, {Kind: Max, Arg: t1}, {Kind: Avg, Arg: f1}, {Kind: CountDistinct, Arg: s1},
			{Kind: Min, Arg: i1}, {Kind: CountDistinct, Arg: f1}}

		// Reference: groups in first-appearance order.
		type acc struct {
			first                    int
			count, countS, countF, n int64
			sumF                     float64
			minF, maxS, maxT, minI   any
			distinctS                map[string]bool
			distinctF                map[uint64]bool
		}
		var order []string
		groups := map[string]*acc{}
		for r, row := range g.rows {
			var kb strings.Builder
			for _, c := range groupCols {
				v := row[c]
				if f, ok := v.(float64); ok {
					v = floatKey(f)
				}
				fmt.Fprintf(&kb, "%#v|", v) // quoted strings, typed numbers, nil
			}
			k := kb.String()
			a := groups[k]
			if a == nil {
				a = &acc{first: r, distinctS: map[string]bool{}, distinctF: map[uint64]bool{}}
				groups[k] = a
				order = append(order, k)
			}
			a.count++
			if v := row[si]; v != nil {
				a.countS++
				a.distinctS[v.(string)] = true
				if a.maxS == nil || v.(string) > a.maxS.(string) {
					a.maxS = v
				}
			}
			if v := row[fi]; v != nil {
				f := v.(float64)
				a.countF++
				a.sumF += f
				a.distinctF[floatKey(f)] = true
				if a.minF == nil || refCmp(f, a.minF) < 0 {
					a.minF = f
				}
			}
			if v := row[ti]; v != nil && (a.maxT == nil || v.(int64) > a.maxT.(int64)) {
				a.maxT = v
			}
			if v := row[ii]; v != nil && (a.minI == nil || v.(int64) < a.minI.(int64)) {
				a.minI = v
			}
		}
		if len(groupCols) == 0 && len(order) == 0 {
			order = append(order, "")
			groups[""] = &acc{distinctS: map[string]bool{}, distinctF: map[uint64]bool{}}
		}

		out, err := GroupAggregate(mem, b, groupBy, aggs)
		if err != nil {
			t.Fatal(err)
		}
		if int(out.NumRows()) != len(order) {
			t.Fatalf("group by %v: %d groups, want %d", groupCols, out.NumRows(), len(order))
		}
		for gi, k := range order {
			a := groups[k]
			for j, c := range groupCols {
				if got, want := refValueOf(out.Column(j), gi), g.rows[a.first][c]; !refEqual(got, want) {
					t.Fatalf("group %d key %d = %v, want %v", gi, j, got, want)
				}
			}
			var sum, avg any
			if a.countF > 0 {
				sum, avg = a.sumF, a.sumF/float64(a.countF)
			}
			want := []any{a.count, a.countS, sum, a.minF, a.maxS, a.maxT, avg, int64(len(a.distinctS)), a.minI, int64(len(a.distinctF))}
			for j, w := range want {
				got := refValueOf(out.Column(len(groupCols)+j), gi)
				if !refEqual(got, w) {
					t.Fatalf("group %d (%s) %s = %v, want %v", gi, k, aggs[j], got, w)
				}
			}
		}
		out.Release()
		b.Release()
	}
}

// TestConcurrentEval evaluates one expression from several goroutines: an
// Expr holds no per-batch state. Run with -race.
func TestConcurrentEval(t *testing.T) {
	mem := newMem(t)
	b := testBatch(t, mem, 500)
	defer b.Release()
	s := Column(2, "s", sqltypes.String)
	like := mustT{t}.e(Like(s, Column(2, "s", sqltypes.String), false, true))
	in := mustT{t}.e(In(Column(1, "g", sqltypes.Int64), []Expr{Literal(int64(1), nil), Literal(nil, sqltypes.Int64)}, false))
	e := mustT{t}.e(Case(nil, []When{{Cond: like, Then: Literal("x", nil)}}, mustT{t}.e(Func("upper", []Expr{s}))))
	e = mustT{t}.e(Coalesce([]Expr{mustT{t}.e(NullIf(e, Literal("X", nil))), mustT{t}.e(Cast(in, sqltypes.String))}))
	want, err := e.Eval(mem, b)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Release()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				got, err := e.Eval(mem, b)
				if err != nil {
					t.Error(err)
					return
				}
				if !array.Equal(got, want) {
					t.Error("concurrent evaluation differs")
				}
				got.Release()
			}
		})
	}
	wg.Wait()
}
