package windows

import (
	"fmt"
	"math"
	"math/rand/v2"
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
			case s.Open() != 0 || len(s.keys) != 0 || s.pending != 0:
				t.Fatalf("left after the last watermark: open=%d keys=%d pending=%d", s.Open(), len(s.keys), s.pending)
			case s.Slots() > 200:
				t.Fatalf("%d slots for at most a few dozen windows open at once: closed windows' slots are not reused", s.Slots())
			case s.StateBytes() != s.bytes():
				t.Fatalf("state bytes %d with nothing open, want the slot arrays' %d", s.StateBytes(), s.bytes())
			}
			t.Logf("%d windows, %d slots", windows, s.Slots())
		})
	}
}
