package exec

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestWindowMemoryFollowsOpenWindows runs rounds of 20,000 windows per
// kind: each round opens them all, then the watermark closes them all.
// Memory must follow the open windows, not the stream: after the first
// round the Go heap and the operator's state estimate stay flat while
// ten times as many windows pass through, and Arrow memory is all back.
func TestWindowMemoryFollowsOpenWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap over 200,000 windows")
	}
	for _, c := range []kindCase{
		{name: "session", gap: 1000},
		{name: "session-max", gap: 1000, max: 5000},
		{name: "event-timeout", event: true, timeout: 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()
			spec := c.spec(0, EmitSpec{})
			spec.OnLate = func(context.Context, []int64, []int64) error { return nil }
			op, err := NewWindowAggOp(mem, spec, kindSchema)
			if err != nil {
				t.Fatal(err)
			}
			defer op.Close()
			if err := op.Open(ctx, &discard{}); err != nil {
				t.Fatal(err)
			}
			const keys, rounds = 20_000, 10
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			var first uint64
			var firstState int64
			seq := int64(0)
			for r := range rounds {
				base := int64(r) * 1_000_000
				var evs []kindEvent
				for k := range keys {
					v := int64(k)
					for j := range 3 {
						seq++
						evs = append(evs, kindEvent{key: fmt.Sprintf("user-%d-%d", r, k), ts: base + int64(j)*100, seq: seq, v: &v, gap: 1000, st: j == 0})
					}
				}
				for i := 0; i < len(evs); i += 4096 {
					rec := buildKindBatch(mem, evs[i:min(i+4096, len(evs))])
					if err := op.Push(ctx, rec); err != nil {
						t.Fatal(err)
					}
					rec.Release()
				}
				if open := op.OpenWindows(); open != keys {
					t.Fatalf("round %d: %d windows open, want %d", r, open, keys)
				}
				if err := op.Advance(ctx, Watermark(base+500_000)); err != nil {
					t.Fatal(err)
				}
				if open := op.OpenWindows(); open != 0 {
					t.Fatalf("round %d: %d windows open after the watermark passed them", r, open)
				}
				if r == 0 {
					first, firstState = heap(), op.StateBytes()
				}
			}
			last, lastState := heap(), op.StateBytes()
			t.Logf("heap after round 1: %d B, after round %d: %d B; state estimate %d -> %d B", first, rounds, last, firstState, lastState)
			if float64(last) > 1.2*float64(first)+1<<20 || lastState > firstState {
				t.Fatalf("memory grows with the stream: heap %d -> %d B, state %d -> %d B over %d rounds of %d windows",
					first, last, firstState, lastState, rounds, keys)
			}
			if err := op.Advance(ctx, Watermark(math.MaxInt64)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
