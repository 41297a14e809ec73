package exec

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestWatermark checks the bound (max event time seen minus the delay,
// never decreasing, raised after the batch is pushed) and the idle
// timeout (processing time minus the delay once no batch has come for
// that long).
func TestWatermark(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	out := &collector{}
	w := NewWatermarkOp(1, "ts", 5*time.Second, 10*time.Second)
	if err := w.Open(ctx, out); err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_000_000_000)
	push := func(ts ...int64) {
		t.Helper()
		var evs []testEvent
		for _, x := range ts {
			evs = append(evs, testEvent{ts: x})
		}
		rec := buildBatch(mem, evs, 1)
		defer rec.Release()
		if err := w.Push(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	tick := func(d time.Duration) {
		t.Helper()
		if err := w.Tick(ctx, t0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	tick(0)
	push(20_000, 30_000, 25_000)
	push(10_000) // older: the watermark does not move back
	tick(9 * time.Second)
	push(31_000)
	if want := []Watermark{25_000, 26_000}; !slices.Equal(out.wms, want) {
		t.Fatalf("watermarks %v, want %v", out.wms, want)
	}
	if len(out.rows) != 5 {
		t.Fatalf("%d rows pushed on, want 5", len(out.rows))
	}
	tick(18 * time.Second) // 9s since the last batch: not idle yet
	if len(out.wms) != 2 {
		t.Fatalf("idle watermark too early: %v", out.wms)
	}
	tick(19 * time.Second) // idle for 10s: processing time minus the delay
	want := Watermark(t0.Add(19*time.Second).UnixMilli() - 5000)
	if got := out.wms[len(out.wms)-1]; got != want || w.Current() != want {
		t.Fatalf("idle watermark %d, want %d", got, want)
	}
}
