package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
)

// discard is a downstream that drops what it gets.
type discard struct{ rows int64 }

func (d *discard) Push(_ context.Context, b arrow.RecordBatch) error {
	d.rows += b.NumRows()
	return nil
}
func (d *discard) Advance(context.Context, Watermark) error { return nil }

// BenchmarkWindowAgg runs the window operator over 4096-event batches of
// 100,000 keys (each active every ~15 minutes, times jittered by up to
// 2 s, watermark 5 s behind), for each window kind, with COUNT(*) and
// SUM, and again with COUNT(DISTINCT). It reports events/s and the state
// per open window (the operator's estimate, and the Go heap after GC).
//
//	go test ./exec -run '^$' -bench WindowAgg -cpu 1
func BenchmarkWindowAgg(b *testing.B) {
	kinds := []kindCase{
		{name: "session", gap: 30 * 60_000},
		{name: "session-max", gap: 30 * 60_000, max: 2 * 3600_000},
		{name: "event", event: true},
		{name: "event-timeout", event: true, timeout: 20 * 60_000},
	}
	for _, distinct := range []bool{false, true} {
		for _, c := range kinds {
			name := c.name
			if distinct {
				name += "/distinct"
			}
			b.Run(name, func(b *testing.B) { benchWindowAgg(b, c, distinct) })
		}
	}
}

func benchWindowAgg(b *testing.B, c kindCase, distinct bool) {
	const keys, batch, nbatches = 100_000, 4096, 64
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	// Pre-built batches, replayed with times shifted forward each round.
	clock := int64(1_700_000_000_000)
	var evs [][]kindEvent
	for range nbatches {
		es := make([]kindEvent, batch)
		for i := range es {
			clock += 9
			v := rng.Int64N(50)
			es[i] = kindEvent{key: fmt.Sprintf("user-%d", rng.IntN(keys)), ts: clock - rng.Int64N(2000), v: &v, gap: 30 * 60_000}
			switch rng.IntN(10) {
			case 0:
				es[i].st = true
			case 1:
				es[i].en = true
			}
		}
		evs = append(evs, es)
	}
	span := clock - 1_700_000_000_000

	spec := c.spec(0, EmitSpec{})
	spec.Aggs = []AggSpec{{Kind: windows.CountStar, Arg: -1, Desc: "count(*)"}, {Kind: windows.Sum, Arg: 3, Desc: "sum(v)"}}
	if distinct {
		spec.Aggs = append(spec.Aggs, AggSpec{Kind: windows.CountDistinct, Arg: 3, Desc: "count(distinct v)"})
	}
	spec.OnLate = func(context.Context, []int64, []int64) error { return nil }
	op, err := NewWindowAggOp(mem, spec, kindSchema)
	if err != nil {
		b.Fatal(err)
	}
	out := &discard{}
	if err := op.Open(ctx, out); err != nil {
		b.Fatal(err)
	}
	seq := int64(0)
	round := int64(0)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		b.StopTimer()
		es := evs[n%nbatches]
		if n%nbatches == 0 && n > 0 {
			round++
		}
		shifted := make([]kindEvent, len(es))
		maxT := int64(0)
		for i, e := range es {
			seq++
			e.ts += round * span
			e.seq = seq
			shifted[i] = e
			maxT = max(maxT, e.ts)
		}
		rec := buildKindBatch(mem, shifted)
		b.StartTimer()
		if err := op.Push(ctx, rec); err != nil {
			b.Fatal(err)
		}
		if err := op.Advance(ctx, Watermark(maxT-5000)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rec.Release()
		b.StartTimer()
		n++
	}
	b.StopTimer()
	b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "events/s")
	open, est := op.OpenWindows(), op.StateBytes()
	// The heap the operator holds: after GC with it, minus after GC
	// without it.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	op.Close()
	op = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	if open > 0 {
		b.ReportMetric(float64(est)/float64(open), "estB/window")
		b.ReportMetric(float64(int64(with.HeapAlloc)-int64(without.HeapAlloc))/float64(open), "heapB/window")
		b.ReportMetric(float64(open), "windows")
	}
}
