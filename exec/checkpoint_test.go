package exec

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
	"github.com/sessionsql/sessionsql/windows/snap"
)

// kindRun is a watermark and a window operator over the kind-test input,
// writing a model table, the way a view's pipeline runs them.
type kindRun struct {
	t     *testing.T
	mem   memory.Allocator
	spec  WindowSpec
	bound time.Duration
	wm    *WatermarkOp
	wop   *WindowAggOp
	table *modelTable

	sizeHint int // of the next save, as the pipeline sizes it
}

func newKindRun(t *testing.T, mem memory.Allocator, spec WindowSpec, bound time.Duration, table *modelTable) *kindRun {
	r := &kindRun{t: t, mem: mem, spec: spec, bound: bound, table: table}
	ctx := context.Background()
	var err error
	if r.wop, err = NewWindowAggOp(mem, spec, kindSchema); err != nil {
		t.Fatal(err)
	}
	r.wm = NewWatermarkOp(1, "ts", bound, 0)
	if err := r.wm.Open(ctx, r.wop); err != nil {
		t.Fatal(err)
	}
	if err := r.wop.Open(ctx, table); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *kindRun) push(evs []kindEvent, now time.Time) {
	ctx := context.Background()
	rec := buildKindBatch(r.mem, evs)
	defer rec.Release()
	if err := r.wm.Push(ctx, rec); err != nil {
		r.t.Fatal(err)
	}
	if err := r.wop.Tick(ctx, now); err != nil {
		r.t.Fatal(err)
	}
}

func (r *kindRun) save() []byte {
	w := snap.NewWriter(make([]byte, 0, r.sizeHint))
	for _, s := range []Stateful{r.wm, r.wop} {
		if err := s.SaveState(w); err != nil {
			r.t.Fatal(err)
		}
	}
	r.sizeHint = w.Len() + w.Len()/8
	return slices.Clone(w.Bytes())
}

func (r *kindRun) load(state []byte) {
	rd := snap.NewReader(state)
	for _, s := range []Stateful{r.wm, r.wop} {
		if err := s.LoadState(rd); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := rd.Done(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *kindRun) finish() {
	if err := r.wm.Advance(context.Background(), Watermark(math.MaxInt64)); err != nil {
		r.t.Fatal(err)
	}
}

// TestCheckpointRestoreIsExact checks that a window operator restored from
// a checkpoint continues exactly as the one that took it. Each run
// checkpoints at random batch boundaries, goes on for a while into changes
// that are then thrown away (a crash before the next commit), and resumes
// a fresh watermark and window operator from the checkpoint with the table
// as it was at the checkpoint, replaying the input from there. The table
// must end equal to an uninterrupted run's, row for row, for every window
// kind, EMIT mode and lateness.
func TestCheckpointRestoreIsExact(t *testing.T) {
	emits := map[string]EmitSpec{"final": {}, "early-interval": {Every: time.Second}, "early-events": {EveryEvents: 3}}
	for _, c := range kindCases {
		for ename, emit := range emits {
			for _, lat := range []time.Duration{0, 4 * time.Second} {
				for seed := uint64(1); seed <= 2; seed++ {
					t.Run(fmt.Sprintf("%s/%s/lateness=%s/seed%d", c.name, ename, lat, seed), func(t *testing.T) {
						checkRestoreExact(t, c, emit, lat, seed)
					})
				}
			}
		}
	}
}

func checkRestoreExact(t *testing.T, c kindCase, emit EmitSpec, lat time.Duration, seed uint64) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bound := 3 * time.Second
	evs := genKindEvents(seed, 3000, 12, (bound + lat).Milliseconds())
	spec := c.spec(lat, emit)
	spec.OnLate = func(context.Context, []int64, []int64) error { return nil }
	rng := rand.New(rand.NewPCG(seed, 11))
	var batches [][]kindEvent
	for rest := evs; len(rest) > 0; {
		n := min(1+rng.IntN(200), len(rest))
		batches, rest = append(batches, rest[:n]), rest[n:]
	}
	tick := func(i int) time.Time { return time.Unix(0, 0).Add(time.Duration(i+1) * 300 * time.Millisecond) }

	plain := newKindRun(t, mem, spec, bound, &modelTable{t: t, rows: map[string][]string{}})
	for i, b := range batches {
		plain.push(b, tick(i))
	}
	plain.finish()
	plain.wop.Close()

	table := &modelTable{t: t, rows: map[string][]string{}}
	run := newKindRun(t, mem, spec, bound, table)
	crashes, bytes := 0, 0
	for i := 0; i < len(batches); i++ {
		run.push(batches[i], tick(i))
		if rng.IntN(12) != 0 || i+1 == len(batches) {
			continue
		}
		// Checkpoint after batch i, go on for up to 5 batches, crash.
		state := run.save()
		bytes = max(bytes, len(state))
		committed := maps.Clone(table.rows)
		lost := min(rng.IntN(6), len(batches)-1-i)
		for j := i + 1; j <= i+lost; j++ {
			run.push(batches[j], tick(j))
		}
		run.wop.Close()
		table.rows = committed
		run = newKindRun(t, mem, spec, bound, table)
		run.load(state)
		crashes++
	}
	run.finish()
	run.wop.Close()
	if crashes == 0 {
		t.Fatal("no crash happened: the test checked nothing")
	}
	if len(table.rows) != len(plain.table.rows) {
		t.Fatalf("%d rows after %d crashes, %d uninterrupted", len(table.rows), crashes, len(plain.table.rows))
	}
	for k, want := range plain.table.rows {
		if got := table.rows[k]; !slices.Equal(got, want) {
			t.Fatalf("after %d crashes, row %s:\n got  %v\n want %v", crashes, k, got, want)
		}
	}
	t.Logf("%d crashes, largest checkpoint %d B, %d rows", crashes, bytes, len(table.rows))
}

// TestCheckpointRefusesOtherState: state saved by one window kind does not
// load into another, and truncated state fails cleanly.
func TestCheckpointRefusesOtherState(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	evs := genKindEvents(1, 500, 5, 1000)
	save := func(c kindCase) []byte {
		r := newKindRun(t, mem, c.spec(0, EmitSpec{}), time.Second, &modelTable{t: t, rows: map[string][]string{}})
		defer r.wop.Close()
		r.push(evs, time.Unix(1, 0))
		return r.save()
	}
	session, event := save(kindCases[0]), save(kindCases[4])
	try := func(c kindCase, state []byte) error {
		r := newKindRun(t, mem, c.spec(0, EmitSpec{}), time.Second, &modelTable{t: t, rows: map[string][]string{}})
		defer r.wop.Close()
		rd := snap.NewReader(state)
		for _, s := range []Stateful{r.wm, r.wop} {
			if err := s.LoadState(rd); err != nil {
				return err
			}
		}
		return rd.Done()
	}
	if err := try(kindCases[4], session); err == nil {
		t.Error("SESSION state loaded into EVENT_WINDOW")
	}
	if err := try(kindCases[0], event); err == nil {
		t.Error("EVENT_WINDOW state loaded into SESSION")
	}
	for _, cut := range []int{0, 1, len(event) / 3, len(event) / 2, len(event) - 1} {
		if err := try(kindCases[4], event[:cut]); err == nil {
			t.Errorf("state cut at %d of %d loaded", cut, len(event))
		}
	}
	if err := try(kindCases[4], event); err != nil {
		t.Fatalf("the intact state does not load: %v", err)
	}
}

// BenchmarkCheckpoint1M measures a checkpoint of 1,000,000 open sessions
// (one per key, SESSION with a 30-minute gap, COUNT(*), SUM and
// COUNT(DISTINCT) over ~3 events each): the time to save the watermark and
// window operator's state, its size, and the time to load it into a fresh
// operator, which is most of a restart's work before replay.
//
//	go test ./exec -run '^$' -bench Checkpoint1M -benchtime 3x
func BenchmarkCheckpoint1M(b *testing.B) {
	const keys, perKey = 1_000_000, 3
	mem := memory.NewGoAllocator()
	c := kindCase{name: "session", gap: 30 * 60_000}
	spec := c.spec(0, EmitSpec{})
	spec.Aggs = spec.Aggs[:2]
	spec.Aggs = append(spec.Aggs, AggSpec{Kind: windows.CountDistinct, Arg: 3, Desc: "count(distinct v)"})
	spec.OnLate = func(context.Context, []int64, []int64) error { return nil }
	run := newKindRun(&testing.T{}, mem, spec, 5*time.Second, &modelTable{rows: map[string][]string{}})
	defer run.wop.Close()
	t0 := int64(1_700_000_000_000)
	evs := make([]kindEvent, 0, 8192)
	seq := int64(0)
	for k := range keys {
		for j := range perKey {
			seq++
			v := int64(j + k%7)
			evs = append(evs, kindEvent{key: fmt.Sprintf("user-%07d", k), ts: t0 + int64(j)*1000, seq: seq, v: &v})
		}
		if len(evs) >= 8000 || k == keys-1 {
			run.push(evs, time.Unix(1, 0))
			evs = evs[:0]
		}
	}
	if open := run.wop.OpenWindows(); open != keys {
		b.Fatalf("%d open windows, want %d", open, keys)
	}
	b.ResetTimer()
	var state []byte
	var saveNs, loadNs int64
	for range b.N {
		s0 := time.Now()
		state = run.save()
		saveNs += time.Since(s0).Nanoseconds()
		fresh := newKindRun(&testing.T{}, mem, spec, 5*time.Second, &modelTable{rows: map[string][]string{}})
		l0 := time.Now()
		fresh.load(state)
		loadNs += time.Since(l0).Nanoseconds()
		if fresh.wop.OpenWindows() != keys {
			b.Fatalf("restored %d open windows", fresh.wop.OpenWindows())
		}
		fresh.wop.Close()
	}
	b.ReportMetric(float64(saveNs)/float64(b.N)/1e6, "save-ms")
	b.ReportMetric(float64(loadNs)/float64(b.N)/1e6, "load-ms")
	b.ReportMetric(float64(len(state))/1e6, "MB")
	b.ReportMetric(float64(len(state))/keys, "B/session")
}
