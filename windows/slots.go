package windows

import (
	"container/heap"
	"fmt"
	"math"
)

// slots is the slot table both assigners keep: per ID the window's bounds,
// its owning key state (K), whether it has fired, and its place in the
// queue of deadlines that fires and closes windows.
//
// The queue is lazy. A window has at most one entry that counts: the one
// whose deadline equals qdl[id]. When a window's deadline moves earlier the
// owner calls track, which files a new entry; when it moves later nothing
// happens until the old entry comes up, which then files the window again
// under its real deadline. Sessions grow on almost every event, so this
// keeps the hot path free of heap operations.
type slots[K any] struct {
	start, end []int64
	owner      []*K // nil: the slot is free (or a hidden slot, see Sequential)
	gen        []uint32
	fired      []bool
	qdl        []int64 // deadline of the entry that counts; math.MaxInt64: none
	free       []ID
	q          deadlineHeap
	open       int
	lateness   int64 // of the last Advance
}

// alloc returns a free slot holding a window of k with the given bounds.
// Windows are tracked by the queue; hidden slots (k == nil) are not.
func (s *slots[K]) alloc(k *K, start, end int64) ID {
	var id ID
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		id = ID(len(s.start))
		s.start = append(s.start, 0)
		s.end = append(s.end, 0)
		s.owner = append(s.owner, nil)
		s.gen = append(s.gen, 0)
		s.fired = append(s.fired, false)
		s.qdl = append(s.qdl, math.MaxInt64)
	}
	s.start[id], s.end[id], s.owner[id] = start, end, k
	s.fired[id], s.qdl[id] = false, math.MaxInt64
	if k != nil {
		s.open++
		s.track(id)
	}
	return id
}

// release frees a slot; stale queue entries for it are recognised by gen.
func (s *slots[K]) release(id ID) {
	if s.owner[id] != nil {
		s.open--
	}
	s.owner[id] = nil
	s.gen[id]++
	s.free = append(s.free, id)
}

func (s *slots[K]) mustLive(id ID) {
	if id < 0 || int(id) >= len(s.owner) || s.owner[id] == nil {
		panic(fmt.Sprintf("windows: slot %d is not a live window (slots %d, open %d)", id, len(s.owner), s.open))
	}
}

// deadline is when the window's next step is due: it fires when the
// watermark passes its end, and closes when the watermark passes its end
// plus the lateness (the frontier passes its end).
func (s *slots[K]) deadline(id ID) int64 {
	e := s.end[id]
	if e == NoEnd {
		return math.MaxInt64
	}
	if s.fired[id] {
		return satAdd(e, s.lateness)
	}
	return e
}

// track files the window again if its deadline moved earlier.
func (s *slots[K]) track(id ID) {
	if d := s.deadline(id); d < s.qdl[id] {
		s.qdl[id] = d
		heap.Push(&s.q, deadlineEntry{deadline: d, id: id, gen: s.gen[id]})
	}
}

// advance fires and closes windows whose deadline the watermark wm has
// passed, in order of deadline (ties by ID). closed runs before the slot
// is released.
func (s *slots[K]) advance(wm, lateness int64, fire, closed func(id ID)) {
	s.lateness = lateness
	for len(s.q) > 0 && s.q[0].deadline < wm {
		e := heap.Pop(&s.q).(deadlineEntry)
		id := e.id
		if s.gen[id] != e.gen || s.owner[id] == nil || s.qdl[id] != e.deadline {
			continue // released, or superseded by an earlier entry
		}
		s.qdl[id] = math.MaxInt64
		if d := s.deadline(id); d != e.deadline {
			// The end moved later (or became unknown) since this entry.
			s.track(id)
			continue
		}
		if !s.fired[id] {
			s.fired[id] = true
			fire(id)
			s.track(id)
			continue
		}
		closed(id)
		s.release(id)
	}
}

// bytesPerSlot: start, end, owner, gen, fired, qdl, and about one queue
// entry.
const bytesPerSlot = 8 + 8 + 8 + 4 + 1 + 8 + 16

func (s *slots[K]) bytes() int64 { return int64(len(s.start)) * bytesPerSlot }

type deadlineEntry struct {
	deadline int64
	id       ID
	gen      uint32
}

// deadlineHeap is a min-heap of deadlines, ties broken by ID so the order
// windows fire and close in is deterministic.
type deadlineHeap []deadlineEntry

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].id < h[j].id
}
func (h deadlineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)   { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
