package windows

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkSession assigns 4096-event batches over 100,000 keys (each
// active every ~15 minutes, 30-minute gap, so most keys hold one open
// session) and folds COUNT(*) and SUM into the windows, closing as the
// watermark moves. It reports events/s and the heap per open session.
func BenchmarkSession(b *testing.B) {
	const keys, batch = 100_000, 4096
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	rng := rand.New(rand.NewPCG(1, 2))
	encoded := make([][]byte, keys)
	for i := range encoded {
		encoded[i] = fmt.Appendf(nil, "user-%d", i)
	}
	vb := array.NewInt64Builder(mem)
	for range batch {
		vb.Append(rng.Int64N(10_000))
	}
	vals := vb.NewArray()
	vb.Release()
	defer vals.Release()

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewSession()
	count, _ := NewAccumulator(CountStar, nil)
	sum, _ := NewAccumulator(Sum, arrow.PrimitiveTypes.Int64)
	m := mergeFunc(func(into, from ID) { count.Merge(into, from); sum.Merge(into, from) })
	keysOf := make([][]byte, batch)
	evs := make([]Event, batch)
	ids := make([]ID, batch)
	outs := make([]Outcome, batch)
	// Event time advances ~9ms per event: 100,000 keys each every ~15 min.
	clock := int64(0)
	closed := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range evs {
			clock += 9
			keysOf[i] = encoded[rng.IntN(keys)]
			evs[i] = Event{Time: clock - rng.Int64N(2000), Gap: 30 * 60_000}
		}
		s.Assign(keysOf, evs, ids, outs, m)
		count.Update(ids, Input{})
		sum.Update(ids, Input{Col: vals})
		s.Advance(clock-5000, 0, m, func(ID) {}, func(id ID) {
			closed++
			count.Reset(id)
			sum.Reset(id)
		})
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	if open := s.Open(); open > 0 {
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(open), "heapB/open-session")
		b.ReportMetric(float64(s.StateBytes()+count.StateBytes()+sum.StateBytes())/float64(open), "estB/open-session")
		b.ReportMetric(float64(open), "open-sessions")
	}
}

type mergeFunc func(into, from ID)

func (f mergeFunc) Merge(into, from ID) { f(into, from) }
func (mergeFunc) Fold(ID, []uint64)     { panic("session folded deferred rows") }
func (mergeFunc) Copy(ID, ID)           {}
func (mergeFunc) Reset(ID)              {}
func (mergeFunc) Gone(ID)               {}
func (mergeFunc) Changed(ID, int)       {}
func (mergeFunc) Unmatched(int)         {}
