package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
)

// kindSchema is the input of the window-kind tests: key, time, sequence,
// value, per-event gap, START and END flags.
var kindSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: tsType},
	{Name: "_seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "gap", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "st", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "en", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

type kindEvent struct {
	key    string // "" is NULL
	ts     int64
	seq    int64
	v      *int64
	gap    int64
	st, en bool
}

// kindCase is one window kind under test.
type kindCase struct {
	name    string
	dynamic bool  // per-event gaps
	max     int64 // SESSION MAX; 0: none
	event   bool  // EVENT_WINDOW
	timeout int64 // EVENT_WINDOW TIMEOUT
	gap     int64 // fixed SESSION gap
}

func (c kindCase) spec(lateness time.Duration, emit EmitSpec) WindowSpec {
	s := WindowSpec{
		Keys: []int{0}, KeyNames: []string{"k"}, Time: 1, Seq: 2, GapCol: -1, StartCol: -1, EndCol: -1,
		Gap: time.Duration(c.gap) * time.Millisecond, Lateness: lateness, Emit: emit, Desc: c.name,
		Aggs: []AggSpec{{Kind: windows.CountStar, Arg: -1, Desc: "count(*)"}, {Kind: windows.Sum, Arg: 3, Desc: "sum(v)"},
			{Kind: windows.FirstValue, Arg: 3, Desc: "first_value(v)"}, {Kind: windows.LastValue, Arg: 3, Desc: "last_value(v)"},
			{Kind: windows.CountDistinct, Arg: 3, Desc: "count(distinct v)"}},
	}
	if c.dynamic {
		s.GapCol = 4
	}
	switch {
	case c.event:
		s.StartCol, s.EndCol = 5, 6
		s.NewAssigner = func() windows.Assigner { return windows.NewEventWindow(c.timeout) }
	case c.max > 0:
		s.NewAssigner = func() windows.Assigner { return windows.NewSessionMax(c.max) }
	default:
		s.NewAssigner = func() windows.Assigner { return windows.NewSession() }
	}
	return s
}

var kindCases = []kindCase{
	{name: "session", gap: 30_000},
	{name: "session-dynamic", dynamic: true},
	{name: "session-max", gap: 30_000, max: 90_000},
	{name: "session-dynamic-max", dynamic: true, max: 60_000},
	{name: "event", event: true},
	{name: "event-timeout", event: true, timeout: 40_000},
}

// oracleRow is a final window as the oracle computes it.
type oracleRow struct {
	key        string
	start, end int64 // end = windows.NoEnd while unknown
	vals       []int64
}

// kindOracle computes every kind's windows the plain way: per key, sort
// the events by (time, seq) and walk them once. A window that never ends
// (EVENT_WINDOW without END or TIMEOUT) has end NoEnd.
func kindOracle(c kindCase, evs []kindEvent) map[string]oracleRow {
	byKey := map[string][]kindEvent{}
	for _, e := range evs {
		byKey[e.key] = append(byKey[e.key], e)
	}
	out := map[string]oracleRow{}
	for k, es := range byKey {
		sort.Slice(es, func(i, j int) bool {
			return es[i].ts < es[j].ts || es[i].ts == es[j].ts && es[i].seq < es[j].seq
		})
		var cur []kindEvent
		var start, end int64
		open := false
		lastStart := int64(math.MinInt64)
		emit := func(end int64) {
			out[fmt.Sprintf("%s@%d", k, start)] = oracleRow{key: k, start: start, end: end, vals: aggsOf(cur)}
		}
		for _, e := range es {
			g := c.gap
			if c.dynamic {
				g = e.gap
			}
			switch {
			case !c.event:
				if c.max > 0 {
					g = min(g, c.max)
				}
				hi := e.ts + g
				if open && e.ts <= end && (c.max == 0 || max(end, hi)-start <= c.max) {
					cur, end = append(cur, e), max(end, hi)
					continue
				}
				if open {
					emit(end)
				}
				cur, start, end, open = []kindEvent{e}, e.ts, hi, true
			default:
				if open && c.timeout > 0 && e.ts > cur[len(cur)-1].ts+c.timeout {
					emit(cur[len(cur)-1].ts + c.timeout)
					open = false
				}
				if e.st && e.ts != lastStart {
					if open {
						emit(e.ts)
					}
					cur, start, open, lastStart = []kindEvent{e}, e.ts, true, e.ts
					continue
				}
				if !open {
					continue
				}
				cur = append(cur, e)
				if e.en {
					emit(e.ts)
					open = false
				}
			}
		}
		if open {
			switch {
			case !c.event:
				emit(end)
			case c.timeout > 0:
				emit(cur[len(cur)-1].ts + c.timeout)
			default:
				emit(windows.NoEnd) // never ends: early rows only
			}
		}
	}
	return out
}

// aggsOf: count, sum, first, last, count distinct of v, as the spec's
// aggregates compute them (NULLs ignored; first/last by (time, seq)). An
// absent value is math.MinInt64.
func aggsOf(es []kindEvent) []int64 {
	null := int64(math.MinInt64)
	sum, first, last := null, null, null
	distinct := map[int64]bool{}
	for _, e := range es { // sorted by (time, seq)
		if e.v == nil {
			continue
		}
		if sum == null {
			sum = 0
		}
		sum += *e.v
		if first == null {
			first = *e.v
		}
		last = *e.v
		distinct[*e.v] = true
	}
	return []int64{int64(len(es)), sum, first, last, int64(len(distinct))}
}

// genKindEvents makes n events over keys with times that advance and
// arrive shuffled by up to maxDelay; gaps vary per event; START/END flags
// are sprinkled in.
func genKindEvents(seed uint64, n, keys int, maxDelay int64) []kindEvent {
	rng := rand.New(rand.NewPCG(seed, 7))
	evs := make([]kindEvent, n)
	t := int64(1_700_000_000_000)
	for i := range evs {
		t += rng.Int64N(400)
		e := kindEvent{ts: t - rng.Int64N(maxDelay+1), gap: []int64{5_000, 20_000, 45_000}[rng.IntN(3)]}
		if r := rng.IntN(keys + 1); r > 0 {
			e.key = fmt.Sprintf("k%d", r)
		}
		if rng.IntN(6) > 0 {
			v := rng.Int64N(20)
			e.v = &v
		}
		switch rng.IntN(10) {
		case 0, 1:
			e.st = true
		case 2:
			e.en = true
		case 3:
			e.st, e.en = true, true
		}
		// Bursts and pauses, so windows of every size occur.
		if rng.IntN(200) == 0 {
			t += 120_000
		}
		evs[i] = e
	}
	// Arrival order is by the undelayed time: sort by it, events keep
	// their (delayed) time.
	for i := range evs {
		evs[i].seq = int64(i + 1)
	}
	return evs
}

func buildKindBatch(mem memory.Allocator, evs []kindEvent) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, kindSchema)
	defer b.Release()
	for _, e := range evs {
		if e.key == "" {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(e.key)
		}
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts))
		b.Field(2).(*array.Int64Builder).Append(e.seq)
		if e.v == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int64Builder).Append(*e.v)
		}
		b.Field(4).(*array.Int64Builder).Append(e.gap)
		b.Field(5).(*array.BooleanBuilder).Append(e.st)
		b.Field(6).(*array.BooleanBuilder).Append(e.en)
	}
	return b.NewRecordBatch()
}

// modelTable applies the window operator's output the way the sink does:
// upserts keyed by (key, start), retractions delete. It checks that a
// batch never names a key twice.
type modelTable struct {
	t      testing.TB
	rows   map[string][]string // key@start -> columns
	writes int
}

func (m *modelTable) Push(_ context.Context, b arrow.RecordBatch) error {
	seen := map[string]bool{}
	nc := int(b.NumCols())
	for i := 0; i < int(b.NumRows()); i++ {
		var cols []string
		for _, c := range b.Columns() {
			cols = append(cols, c.ValueStr(i))
		}
		key := cols[0] + "@" + cols[1]
		if seen[key] {
			m.t.Fatalf("batch names %s twice", key)
		}
		seen[key] = true
		if cols[nc-1] == "true" {
			if _, ok := m.rows[key]; !ok {
				m.t.Fatalf("retraction of %s, which is not in the table", key)
			}
			delete(m.rows, key)
			continue
		}
		m.rows[key] = cols[:nc-1]
		m.writes++
	}
	return nil
}

func (m *modelTable) Advance(context.Context, Watermark) error { return nil }

// runKind feeds evs in random batches through a watermark (bound) and the
// window operator with lateness and emit, ticking processing time, and
// returns the table at the end.
func runKind(t *testing.T, c kindCase, evs []kindEvent, seed uint64, bound, lateness time.Duration, emit EmitSpec) (*modelTable, *WindowAggOp) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	var late []int64
	spec := c.spec(lateness, emit)
	spec.OnLate = func(_ context.Context, seqs, _ []int64) error {
		late = append(late, seqs...)
		return nil
	}
	wop, err := NewWindowAggOp(mem, spec, kindSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer wop.Close()
	table := &modelTable{t: t, rows: map[string][]string{}}
	wm := NewWatermarkOp(1, "ts", bound, 0)
	if err := wm.Open(ctx, wop); err != nil {
		t.Fatal(err)
	}
	if err := wop.Open(ctx, table); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	now := time.Unix(0, 0)
	for len(evs) > 0 {
		n := min(1+rng.IntN(200), len(evs))
		rec := buildKindBatch(mem, evs[:n])
		if err := wm.Push(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		evs = evs[n:]
		now = now.Add(300 * time.Millisecond)
		if err := wop.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	if len(late) > 0 {
		t.Fatalf("%d events within the lateness reported late, e.g. seq %d", len(late), late[0])
	}
	if err := wm.Advance(ctx, Watermark(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	return table, wop
}

func formatOracle(r oracleRow) []string {
	ts := func(ms int64) string {
		return arrow.Timestamp(ms).ToTime(arrow.Millisecond).Format("2006-01-02T15:04:05.999999999")
	}
	key := r.key
	if key == "" {
		key = "(null)"
	}
	cols := []string{key, ts(r.start), ts(r.end)}
	for _, v := range r.vals {
		if v == math.MinInt64 {
			cols = append(cols, "(null)")
		} else {
			cols = append(cols, fmt.Sprint(v))
		}
	}
	if r.end == windows.NoEnd {
		cols[2] = "(null)"
		return append(cols, "false")
	}
	return append(cols, "true")
}

// TestWindowKindsAgainstOracle runs every window kind over shuffled events
// (within the watermark bound plus the allowed lateness), with EMIT FINAL
// and both EMIT EARLY modes, and compares the table the operator's changes
// build with the oracle's windows. Early rows and retractions must leave
// exactly the final rows behind.
func TestWindowKindsAgainstOracle(t *testing.T) {
	emits := map[string]EmitSpec{"final": {}, "early-interval": {Every: time.Second}, "early-events": {EveryEvents: 3}}
	for _, c := range kindCases {
		for ename, emit := range emits {
			for _, lat := range []time.Duration{0, 4 * time.Second} {
				for seed := uint64(1); seed <= 3; seed++ {
					t.Run(fmt.Sprintf("%s/%s/lateness=%s/seed%d", c.name, ename, lat, seed), func(t *testing.T) {
						bound := 3 * time.Second
						evs := genKindEvents(seed, 4000, 12, (bound + lat).Milliseconds())
						want := kindOracle(c, evs)
						table, wop := runKind(t, c, evs, seed, bound, lat, emit)
						// Every row is an oracle window. Final rows: exactly the
						// oracle's ended windows. Rows of windows that never end
						// are early rows, with at most the oracle's count.
						oracleRows := map[string][]string{}
						finals := 0
						for _, r := range want {
							w := formatOracle(r)
							oracleRows[w[0]+"@"+w[1]] = w
							if r.end != windows.NoEnd {
								finals++
							}
						}
						gotFinals := 0
						for k, got := range table.rows {
							w, ok := oracleRows[k]
							switch {
							case !ok:
								t.Fatalf("row %v is no oracle window", got)
							case w[len(w)-1] == "true":
								if !slices.Equal(got, w) {
									t.Fatalf("window %s:\n got  %v\n want %v", k, got, w)
								}
								gotFinals++
							default:
								var n, wn int
								fmt.Sscan(got[3], &n)
								fmt.Sscan(w[3], &wn)
								if got[2] != "(null)" || got[len(got)-1] != "false" || n > wn {
									t.Fatalf("open window %s: row %v, oracle %v", k, got, w)
								}
							}
						}
						if gotFinals != finals {
							t.Fatalf("%d final rows, oracle %d", gotFinals, finals)
						}
						if c.event || c.max > 0 {
							if open := wop.OpenWindows(); !c.event || c.timeout > 0 {
								if open != 0 {
									t.Fatalf("%d windows open after the last watermark", open)
								}
							}
						}
					})
				}
			}
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 6)] }
