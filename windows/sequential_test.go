package windows

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// countObserver keeps COUNT(*) per slot the way the window operator keeps
// aggregates: Assigned events are counted by the caller, deferred ones
// through Fold.
type countObserver struct {
	t testing.TB
	n []int64
}

func (o *countObserver) at(id ID) *int64 {
	for int(id) >= len(o.n) {
		o.n = append(o.n, 0)
	}
	return &o.n[id]
}
func (o *countObserver) Merge(into, from ID)       { *o.at(into) += *o.at(from); *o.at(from) = 0 }
func (o *countObserver) Fold(id ID, refs []uint64) { *o.at(id) += int64(len(refs)) }
func (o *countObserver) Copy(dst, src ID)          { *o.at(dst) = *o.at(src) }
func (o *countObserver) Reset(id ID)               { *o.at(id) = 0 }
func (o *countObserver) Changed(ID, int)           {}
func (o *countObserver) Gone(id ID)                { *o.at(id) = 0 }
func (o *countObserver) Unmatched(int)             {}

// TestSequentialReleasesState runs many windows of few keys through both
// sequential kinds, with out-of-order events and lateness, and checks that
// closed windows give their slots back and that nothing is left once the
// watermark has passed everything: no keys, no pending events, only the
// slot arrays.
func TestSequentialReleasesState(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Sequential
	}{
		{"event", NewEventWindow(2_000)},
		{"session-max", NewSessionMax(5_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o := tc.s, &countObserver{t: t}
			rng := rand.New(rand.NewPCG(1, 2))
			const batch = 64
			keys := make([][]byte, batch)
			evs := make([]Event, batch)
			ids := make([]ID, batch)
			outs := make([]Outcome, batch)
			clock, seq, windows := int64(0), int64(0), 0
			for range 500 {
				for i := range evs {
					clock += 20
					seq++
					keys[i] = fmt.Appendf(nil, "k%d", rng.IntN(10))
					evs[i] = Event{Time: clock - rng.Int64N(1_000), Gap: 1_000, Seq: seq, Start: rng.IntN(5) == 0, End: rng.IntN(5) == 0, Ref: uint64(seq)}
				}
				s.Assign(keys, evs, ids, outs, o)
				for i, id := range ids {
					if outs[i] == Late {
						t.Fatalf("event %+v within the bound is late", evs[i])
					}
					if id != NoWindow {
						*o.at(id)++
					}
				}
				s.Advance(clock-1_000, 500, o, func(ID) {}, func(id ID) {
					windows++
					if *o.at(id) == 0 {
						t.Fatalf("window %d closes empty", id)
					}
					*o.at(id) = 0
				})
			}
			s.Advance(math.MaxInt64, 500, o, func(ID) {}, func(ID) { windows++ })
			switch {
			case windows < 1000:
				t.Fatalf("only %d windows closed; the workload is too tame", windows)
			case s.Open() != 0 || s.keys.len() != 0 || s.pending != 0:
				t.Fatalf("left after the last watermark: open=%d keys=%d pending=%d", s.Open(), s.keys.len(), s.pending)
			case s.Slots() > 200:
				t.Fatalf("%d slots for at most a few dozen windows open at once: closed windows' slots are not reused", s.Slots())
			case s.StateBytes() != s.bytes():
				t.Fatalf("state bytes %d with nothing open, want the slot arrays' %d", s.StateBytes(), s.bytes())
			}
			t.Logf("%d windows, %d slots", windows, s.Slots())
		})
	}
}

// TestSettleQueueOrder files random settle times (many equal, some far
// out, some at the ends of int64) between random frontiers, and checks
// that entries come out as a stable sort by time gives them, also from a
// queue rebuilt, at random points, from all() as Load rebuilds it.
func TestSettleQueueOrder(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 9))
		var q settleQueue
		var want []settleEntry
		f := int64(rng.IntN(1 << 20))
		if seed%5 == 4 {
			f = math.MaxInt64 - wheelSpan - int64(rng.IntN(1<<20))
		}
		n := int32(0)
		for range 200 {
			for range rng.IntN(40) {
				var at int64
				switch rng.IntN(8) {
				case 0:
					at = f + int64(rng.IntN(3*wheelSpan)) // beyond the wheel
				case 1:
					at = math.MaxInt64 - 1 - int64(rng.IntN(3*wheelSpan))
				case 2:
					at = f - int64(rng.IntN(3000))
				default:
					at = f + int64(rng.IntN(20))*500 // many equal times
				}
				e := settleEntry{at: at, kn: n}
				n++
				q.push(e)
				want = append(want, e)
			}
			if rng.IntN(10) == 0 {
				var r settleQueue
				for _, e := range q.all(nil) {
					r.push(e)
				}
				q = r
			}
			prev := f
			switch rng.IntN(10) {
			case 0:
				f = math.MaxInt64
			case 1:
				f += int64(rng.IntN(2 * wheelSpan))
			default:
				f += int64(rng.IntN(60_000))
			}
			if f < prev { // overflowed
				f = math.MaxInt64
			}
			slices.SortStableFunc(want, func(a, b settleEntry) int { return cmp.Compare(a.at, b.at) })
			k := 0
			for k < len(want) && want[k].at < f {
				k++
			}
			got := q.takeBefore(f, nil)
			if !slices.Equal(got, want[:k]) {
				t.Fatalf("seed %d, frontier %d: took\n%v\nwant\n%v", seed, f, got, want[:k])
			}
			want = want[k:]
			if q.len() != len(want) {
				t.Fatalf("seed %d: %d entries left, want %d", seed, q.len(), len(want))
			}
		}
	}
}
