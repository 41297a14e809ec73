package windows

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDeadlineQueueOrder files random deadlines (near, within the wheel,
// beyond it, and at the ends of int64) between random watermarks, and
// checks that entries come out exactly as a sorted list gives them: every
// entry before the watermark, in order of (deadline, ID), and no other.
func TestDeadlineQueueOrder(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var q deadlineQueue
		var want []deadlineEntry
		w := make([]slot, 1000)
		wm := int64(rng.IntN(1 << 20))
		if seed%5 == 4 {
			wm = math.MaxInt64 - wheelSpan - int64(rng.IntN(1<<20))
		}
		id := ID(0)
		for range 200 {
			for range rng.IntN(40) {
				var d int64
				switch rng.IntN(8) {
				case 0:
					d = wm - int64(rng.IntN(5_000)) // already due
				case 1:
					d = wm + int64(rng.IntN(3*wheelSpan)) // beyond the wheel
				case 2:
					d = math.MaxInt64 - 1 - int64(rng.IntN(3*wheelSpan))
				case 3:
					d = math.MinInt64 + int64(rng.IntN(1000))
				default:
					d = wm + int64(rng.IntN(100_000))
				}
				e := deadlineEntry{deadline: d, id: id % 1000}
				id++
				q.push(e)
				want = append(want, e)
			}
			prev := wm
			switch rng.IntN(10) {
			case 0:
				wm = math.MaxInt64
			case 1:
				wm += int64(rng.IntN(2 * wheelSpan))
			default:
				wm += int64(rng.IntN(60_000))
			}
			if wm < prev { // overflowed
				wm = math.MaxInt64
			}
			slices.SortFunc(want, func(a, b deadlineEntry) int {
				if a.before(b) {
					return -1
				}
				if b.before(a) {
					return 1
				}
				return 0
			})
			n := 0
			for n < len(want) && want[n].deadline < wm {
				n++
			}
			for i := range n {
				got, ok := q.popBefore(wm, w)
				if !ok || got.deadline != want[i].deadline || got.id != want[i].id {
					t.Fatalf("seed %d, watermark %d: pop %d gave %+v (%t), want %+v", seed, wm, i, got, ok, want[i])
				}
			}
			if got, ok := q.popBefore(wm, w); ok {
				t.Fatalf("seed %d, watermark %d: popped %+v, which is not due", seed, wm, got)
			}
			want = want[n:]
		}
	}
}
