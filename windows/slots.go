package windows

import (
	"container/heap"
	"fmt"
	"math"

	"github.com/sessionsql/sessionsql/windows/snap"
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

// Checkpoints. The table is written as a header (size, the lateness of the
// last Advance, a time base), then every live window where its owner's
// state puts it (saveWindow: its ID is the caller's to write), then the
// free list in order; hidden slots are the owners' to name.
//
// The deadline queue is not written. Load files one entry per live window,
// under qdl (the deadline of the entry that counts). That is the same
// queue as far as anything can tell: stale entries are skipped when they
// come up and do nothing else, entries pop in order of (deadline, ID)
// whatever the heap's layout, and two entries with the same deadline and
// ID act alike. With no stale entry left, the generations (which only
// tell stale entries apart) start again from 0.
//
// Window times are written relative to the base, as wrapping differences,
// so that they take a few bytes and every int64 round-trips.

// snapBase is the time base for a checkpoint: the frontier once there is
// one, else the start of the first live window.
func (s *slots[K]) snapBase(frontier int64) int64 {
	if frontier != math.MinInt64 {
		return frontier
	}
	for id, k := range s.owner {
		if k != nil {
			return s.start[id]
		}
	}
	return 0
}

func (s *slots[K]) saveHeader(w *snap.Writer, base int64) {
	w.Section("slots")
	w.Uint(uint64(len(s.start)))
	w.Int(s.lateness)
	w.Int(base)
}

// loadHeader reads what saveHeader wrote into an empty table and returns
// the time base. While loading, gen marks the slots claimed (claim);
// finishLoad checks every slot was and sets gen back to 0.
func (s *slots[K]) loadHeader(r *snap.Reader) (base int64) {
	r.Section("slots")
	n := r.Len(1) // every slot is named at least once, in a byte or more
	s.lateness = r.Int()
	base = r.Int()
	if r.Err() != nil {
		return 0
	}
	s.start = make([]int64, n)
	s.end = make([]int64, n)
	s.owner = make([]*K, n)
	s.gen = make([]uint32, n)
	s.fired = make([]bool, n)
	s.qdl = make([]int64, n)
	for i := range s.qdl {
		s.qdl[i] = math.MaxInt64
	}
	return base
}

// Window flags: whether it fired, whether its end is known, and how qdl
// is written (none, the window's deadline, or explicitly).
const (
	snapFired = 1 << iota
	snapEnd
	snapQueued   // qdl is deadline(id)
	snapQueuedAt // qdl follows
	snapFlags    = snapQueuedAt<<1 - 1
)

// saveWindow writes live window id's bounds, fired flag and queue entry.
func (s *slots[K]) saveWindow(w *snap.Writer, id ID, base int64) {
	start, end, qdl := s.start[id], s.end[id], s.qdl[id]
	var f uint64
	if s.fired[id] {
		f |= snapFired
	}
	if end != NoEnd {
		f |= snapEnd
	}
	switch qdl {
	case math.MaxInt64:
	case s.deadline(id):
		f |= snapQueued
	default:
		f |= snapQueuedAt
	}
	w.Uint(f)
	w.Int(start - base)
	if end != NoEnd {
		w.Int(end - start)
	}
	if f&snapQueuedAt != 0 {
		w.Int(qdl - base)
	}
}

// readID reads a slot ID and checks it is in the table.
func (s *slots[K]) readID(r *snap.Reader) ID {
	u := r.Uint()
	if r.Err() == nil && u >= uint64(len(s.start)) {
		r.Failf("slot %d out of range (%d slots)", u, len(s.start))
	}
	if r.Err() != nil {
		return NoWindow
	}
	return ID(u)
}

// claim marks slot id as accounted for (a window, a hidden slot or free);
// a slot claimed twice is an error.
func (s *slots[K]) claim(r *snap.Reader, id ID) bool {
	if r.Err() != nil {
		return false
	}
	if s.gen[id] != 0 {
		r.Failf("slot %d named twice", id)
		return false
	}
	s.gen[id] = 1
	return true
}

// loadWindow reads what saveWindow wrote into slot id, a window of k.
func (s *slots[K]) loadWindow(r *snap.Reader, id ID, k *K, base int64) {
	f := r.Uint()
	start := base + r.Int()
	end := NoEnd
	if f&snapEnd != 0 {
		end = start + r.Int()
	}
	qdl := int64(math.MaxInt64)
	if f&snapQueuedAt != 0 {
		qdl = base + r.Int()
	}
	if r.Err() != nil {
		return
	}
	if f&^snapFlags != 0 || f&snapQueued != 0 && f&snapQueuedAt != 0 {
		r.Failf("slot %d: bad flags %#x", id, f)
		return
	}
	if f&snapEnd != 0 && end == NoEnd {
		r.Failf("slot %d: end %d marked known", id, end)
		return
	}
	if !s.claim(r, id) {
		return
	}
	s.start[id], s.end[id], s.owner[id], s.fired[id] = start, end, k, f&snapFired != 0
	if f&snapQueued != 0 {
		qdl = s.deadline(id)
	}
	s.qdl[id] = qdl
	s.open++
}

func (s *slots[K]) saveFree(w *snap.Writer) {
	w.Section("free")
	w.Uint(uint64(len(s.free)))
	for _, id := range s.free {
		w.Uint(uint64(id))
	}
}

func (s *slots[K]) loadFree(r *snap.Reader) {
	r.Section("free")
	n := r.Len(1)
	if r.Err() != nil {
		return
	}
	s.free = make([]ID, 0, n)
	for range n {
		id := s.readID(r)
		if !s.claim(r, id) {
			return
		}
		s.free = append(s.free, id)
	}
}

// finishLoad checks that every slot was claimed, resets the generations
// and files every live window in the queue under its qdl.
func (s *slots[K]) finishLoad(r *snap.Reader) {
	if r.Err() != nil {
		return
	}
	for id, g := range s.gen {
		if g == 0 {
			r.Failf("slot %d is neither a window, hidden nor free", id)
			return
		}
	}
	clear(s.gen)
	s.q = make(deadlineHeap, 0, s.open)
	for id, k := range s.owner {
		if k != nil && s.qdl[id] != math.MaxInt64 {
			s.q = append(s.q, deadlineEntry{deadline: s.qdl[id], id: ID(id)})
		}
	}
	heap.Init(&s.q)
}

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
