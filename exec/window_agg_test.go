package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
)

var tsType = &arrow.TimestampType{Unit: arrow.Millisecond}

// inSchema is the window operator's input in these tests: a nullable
// text key, the event time, the sequence, a nullable value.
var inSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: tsType},
	{Name: "_seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

type testEvent struct {
	key *string
	ts  int64
	v   *int64
}

// collector renders every pushed row as a line; it keeps no batch.
type collector struct {
	rows []string
	wms  []Watermark
}

func (c *collector) Push(_ context.Context, b arrow.RecordBatch) error {
	for i := 0; i < int(b.NumRows()); i++ {
		var parts []string
		for _, col := range b.Columns() {
			parts = append(parts, col.ValueStr(i))
		}
		c.rows = append(c.rows, strings.Join(parts, " "))
	}
	return nil
}

func (c *collector) Advance(_ context.Context, wm Watermark) error {
	c.wms = append(c.wms, wm)
	return nil
}

func buildBatch(mem memory.Allocator, evs []testEvent, firstSeq int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, inSchema)
	defer b.Release()
	for i, e := range evs {
		if e.key == nil {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(*e.key)
		}
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts))
		b.Field(2).(*array.Int64Builder).Append(int64(firstSeq + i))
		if e.v == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int64Builder).Append(*e.v)
		}
	}
	return b.NewRecordBatch()
}

const testGap = 30 * time.Second

func newTestWindowOp(t testing.TB, mem memory.Allocator, late *[]int64) *WindowAggOp {
	op, err := NewWindowAggOp(mem, WindowSpec{
		Keys: []int{0}, KeyNames: []string{"k"}, Time: 1, Seq: 2, GapCol: -1, StartCol: -1, EndCol: -1,
		NewAssigner: func() windows.Assigner { return windows.NewSession() },
		Desc:        "SESSION(ts, 30s)", Gap: testGap,
		Aggs: []AggSpec{{Kind: windows.CountStar, Arg: -1, Desc: "count(*)"}, {Kind: windows.Sum, Arg: 3, Desc: "sum(v)"},
			{Kind: windows.Max, Arg: 0, Desc: "max(k)"}, {Kind: windows.Avg, Arg: 3, Desc: "avg(v)"}},
		OnLate: func(_ context.Context, seqs, _ []int64) error {
			*late = append(*late, seqs...)
			return nil
		},
	}, inSchema)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// run feeds evs in batches of the sizes split returns, through a
// watermark (bound 5s) and the window operator, then closes everything.
func run(t testing.TB, evs []testEvent, split func(remaining int) int) (rows []string, late []int64) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	out := &collector{}
	wop := newTestWindowOp(t, mem, &late)
	wm := NewWatermarkOp(1, "ts", 5*time.Second, 0)
	if err := wm.Open(ctx, wop); err != nil {
		t.Fatal(err)
	}
	if err := wop.Open(ctx, out); err != nil {
		t.Fatal(err)
	}
	seq := 1
	for len(evs) > 0 {
		n := min(split(len(evs)), len(evs))
		rec := buildBatch(mem, evs[:n], seq)
		if err := wm.Push(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		evs, seq = evs[n:], seq+n
	}
	if err := wm.Advance(ctx, Watermark(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	if wop.OpenWindows() != 0 {
		t.Fatalf("%d windows open after the final watermark", wop.OpenWindows())
	}
	sort.Strings(out.rows)
	return out.rows, late
}

func genEvents(seed uint64, n int) []testEvent {
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := []*string{nil}
	for i := range 20 {
		k := fmt.Sprintf("u%02d", i)
		keys = append(keys, &k)
	}
	clock := make([]int64, len(keys))
	var evs []testEvent
	for range n {
		k := rng.IntN(len(keys))
		switch rng.IntN(10) {
		case 0:
			clock[k] += testGap.Milliseconds()
		case 1:
			clock[k] += testGap.Milliseconds() + 1
		default:
			clock[k] += rng.Int64N(20_000)
		}
		e := testEvent{key: keys[k], ts: clock[k]}
		if rng.IntN(4) > 0 {
			v := rng.Int64N(1000)
			e.v = &v
		}
		evs = append(evs, e)
	}
	// Arrival within the 5s watermark bound.
	at := make([]int64, len(evs))
	for i := range evs {
		at[i] = evs[i].ts + rng.Int64N(5001)
	}
	idx := make([]int, len(evs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return at[idx[a]] < at[idx[b]] })
	out := make([]testEvent, len(evs))
	for i, j := range idx {
		out[i] = evs[j]
	}
	return out
}

// oracle computes the operator's expected rows by sorting and splitting.
func oracle(evs []testEvent) []string {
	byKey := map[string][]testEvent{}
	for _, e := range evs {
		k := "(null)"
		if e.key != nil {
			k = *e.key
		}
		byKey[k] = append(byKey[k], e)
	}
	var rows []string
	for k, es := range byKey {
		sort.SliceStable(es, func(i, j int) bool { return es[i].ts < es[j].ts })
		for i := 0; i < len(es); {
			j := i + 1
			for j < len(es) && es[j].ts-es[j-1].ts <= testGap.Milliseconds() {
				j++
			}
			var sum, n int64
			for _, e := range es[i:j] {
				if e.v != nil {
					sum += *e.v
					n++
				}
			}
			s, avg := "(null)", "(null)"
			if n > 0 {
				s = fmt.Sprint(sum)
				avg = fmt.Sprint(float64(sum) / float64(n))
			}
			start := arrow.Timestamp(es[i].ts).ToTime(arrow.Millisecond).Format("2006-01-02T15:04:05.999999999")
			end := arrow.Timestamp(es[j-1].ts + testGap.Milliseconds()).ToTime(arrow.Millisecond).Format("2006-01-02T15:04:05.999999999")
			rows = append(rows, strings.Join([]string{k, start, end, fmt.Sprint(j - i), s, k, avg, "true", "false"}, " "))
			i = j
		}
	}
	sort.Strings(rows)
	return rows
}

// TestWindowAggBatchInvariance feeds the same out-of-order events in
// batches of 1, 2, 7, 4096 rows and at random split points: the final rows
// are the same every time, equal the oracle's, and no Arrow memory leaks.
func TestWindowAggBatchInvariance(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		evs := genEvents(seed, 3000)
		want := oracle(evs)
		rng := rand.New(rand.NewPCG(seed, 2))
		splits := map[string]func(int) int{
			"1": func(int) int { return 1 }, "2": func(int) int { return 2 }, "7": func(int) int { return 7 },
			"4096":   func(int) int { return 4096 },
			"random": func(int) int { return 1 + rng.IntN(300) },
		}
		for name, split := range splits {
			t.Run(fmt.Sprintf("seed%d/batch%s", seed, name), func(t *testing.T) {
				got, late := run(t, evs, split)
				if len(late) > 0 {
					t.Fatalf("%d events within the bound reported late: %v", len(late), late[:min(5, len(late))])
				}
				if !slices.Equal(got, want) {
					t.Fatalf("rows differ from the oracle (%d vs %d); first got %q want %q", len(got), len(want), first(got), first(want))
				}
			})
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestWindowAggLate checks that an event behind the closing frontier whose
// session already closed is reported late with its sequence, and does not
// change the emitted row.
func TestWindowAggLate(t *testing.T) {
	k := "a"
	base := int64(1_000_000)
	evs := []testEvent{
		{key: &k, ts: base},
		{key: &k, ts: base + 200_000}, // moves the watermark far past the first session
		{key: &k, ts: base + 10_000},  // would extend the closed first session: late
	}
	rows, late := run(t, evs, func(int) int { return 1 })
	if !slices.Equal(late, []int64{3}) {
		t.Fatalf("late sequences %v, want [3]", late)
	}
	if len(rows) != 2 || !strings.Contains(rows[0], " 1 (null) a (null) true false") {
		t.Fatalf("rows %q", rows)
	}
}

func TestKeyCodecRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "t", Type: tsType, Nullable: true},
	}, nil)
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[
		{"i": 1, "f": 0.5, "s": "x", "b": true, "t": 1000},
		{"i": null, "f": null, "s": null, "b": null, "t": null},
		{"i": -9, "f": -0.0, "s": "", "b": false, "t": -5},
		{"i": 1, "f": 0.0, "s": "x\u0000y", "b": true, "t": 1000}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	types := make([]arrow.DataType, rec.NumCols())
	for i, f := range schema.Fields() {
		types[i] = f.Type
	}
	c, err := NewKeyCodec(types)
	if err != nil {
		t.Fatal(err)
	}
	keys := c.Encode(rec.Columns(), int(rec.NumRows()))
	distinct := map[string]bool{}
	bs := make([]array.Builder, len(types))
	for i, typ := range types {
		bs[i] = array.NewBuilder(mem, typ)
		defer bs[i].Release()
	}
	for _, k := range keys {
		distinct[string(k)] = true
		if err := c.Decode(k, bs); err != nil {
			t.Fatal(err)
		}
	}
	if len(distinct) != 4 {
		t.Fatalf("%d distinct keys for 4 distinct rows", len(distinct))
	}
	cols := make([]arrow.Array, len(bs))
	for i, b := range bs {
		cols[i] = b.NewArray()
		defer cols[i].Release()
	}
	back := array.NewRecordBatch(schema, cols, rec.NumRows())
	defer back.Release()
	// -0.0 decodes as 0: one group, as in SQL.
	want, _ := rec.MarshalJSON()
	got, _ := back.MarshalJSON()
	if strings.ReplaceAll(string(want), `"f":-0,`, `"f":0,`) != string(got) {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
}
