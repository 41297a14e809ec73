package windows

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// slots is the slot table both assigners keep: per ID the window's bounds,
// its owning key (a key number), whether it has fired, and its place in
// the queue of deadlines that fires and closes windows. A slot's fields
// sit together (one cache line or two) because the hot paths read them
// together: an event's window's bounds, the deadline's end, fired and qdl.
//
// The queue is lazy. A window has at most one entry that counts: the one
// whose deadline equals qdl. When a window's deadline moves earlier the
// owner calls track, which files a new entry; when it moves later nothing
// happens until the old entry comes up, which then files the window again
// under its real deadline. Sessions grow on almost every event, so this
// keeps the hot path free of queue operations.
type slots struct {
	w        []slot
	free     []ID
	q        deadlineQueue
	open     int
	lateness int64 // of the last Advance
}

type slot struct {
	start, end int64
	qdl        int64  // deadline of the entry that counts; math.MaxInt64: none
	owner      int32  // key number; noKey: the slot is free (or a hidden slot, see Sequential)
	gen        uint32 // tells stale queue entries apart
	next       ID     // Session: the key's next window, in order of start
	fired      bool
}

// noKey is the owner of a free or hidden slot.
const noKey int32 = -1

// live reports whether slot id holds a window.
func (s *slots) live(id ID) bool { return s.w[id].owner != noKey }

// alloc returns a free slot holding a window of key number k with the
// given bounds. Windows are tracked by the queue; hidden slots (k ==
// noKey) are not.
func (s *slots) alloc(k int32, start, end int64) ID {
	var id ID
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		id = ID(len(s.w))
		s.w = append(s.w, slot{owner: noKey})
	}
	w := &s.w[id]
	w.start, w.end, w.owner, w.next = start, end, k, NoWindow
	w.fired, w.qdl = false, math.MaxInt64
	if k != noKey {
		s.open++
		s.track(id)
	}
	return id
}

// release frees a slot; stale queue entries for it are recognised by gen.
func (s *slots) release(id ID) {
	w := &s.w[id]
	if w.owner != noKey {
		s.open--
	}
	w.owner = noKey
	w.gen++
	s.free = append(s.free, id)
}

func (s *slots) mustLive(id ID) {
	if id < 0 || int(id) >= len(s.w) || s.w[id].owner == noKey {
		panic(fmt.Sprintf("windows: slot %d is not a live window (slots %d, open %d)", id, len(s.w), s.open))
	}
}

// deadline is when the window's next step is due: it fires when the
// watermark passes its end, and closes when the watermark passes its end
// plus the lateness (the frontier passes its end).
func (s *slots) deadline(id ID) int64 {
	w := &s.w[id]
	if w.end == NoEnd {
		return math.MaxInt64
	}
	if w.fired {
		return satAdd(w.end, s.lateness)
	}
	return w.end
}

// track files the window again if its deadline moved earlier.
func (s *slots) track(id ID) {
	if d := s.deadline(id); d < s.w[id].qdl {
		s.w[id].qdl = d
		s.q.push(deadlineEntry{deadline: d, id: id, gen: s.w[id].gen})
	}
}

// advance fires and closes windows whose deadline the watermark wm has
// passed, in order of deadline (ties by ID). closed runs before the slot
// is released.
func (s *slots) advance(wm, lateness int64, fire, closed func(id ID)) {
	s.lateness = lateness
	for {
		e, ok := s.q.popBefore(wm, s.w)
		if !ok {
			return
		}
		id := e.id
		w := &s.w[id]
		if w.gen != e.gen || w.owner == noKey || w.qdl != e.deadline {
			continue // released, or superseded by an earlier entry
		}
		w.qdl = math.MaxInt64
		if d := s.deadline(id); d != e.deadline {
			// The end moved later (or became unknown) since this entry.
			s.track(id)
			continue
		}
		if !w.fired {
			w.fired = true
			fire(id)
			s.track(id)
			continue
		}
		closed(id)
		s.release(id)
	}
}

// bytesPerSlot: the slot, and about one queue entry.
const bytesPerSlot = int64(unsafe.Sizeof(slot{})) + 16

func (s *slots) bytes() int64 { return int64(len(s.w)) * bytesPerSlot }

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
func (s *slots) snapBase(frontier int64) int64 {
	if frontier != math.MinInt64 {
		return frontier
	}
	for id := range s.w {
		if s.w[id].owner != noKey {
			return s.w[id].start
		}
	}
	return 0
}

func (s *slots) saveHeader(w *snap.Writer, base int64) {
	w.Section("slots")
	w.Uint(uint64(len(s.w)))
	w.Int(s.lateness)
	w.Int(base)
}

// loadHeader reads what saveHeader wrote into an empty table and returns
// the time base. While loading, gen marks the slots claimed (claim);
// finishLoad checks every slot was and sets gen back to 0.
func (s *slots) loadHeader(r *snap.Reader) (base int64) {
	r.Section("slots")
	n := r.Len(1) // every slot is named at least once, in a byte or more
	s.lateness = r.Int()
	base = r.Int()
	if r.Err() != nil {
		return 0
	}
	s.w = make([]slot, n)
	for i := range s.w {
		s.w[i] = slot{owner: noKey, qdl: math.MaxInt64, next: NoWindow}
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
func (s *slots) saveWindow(w *snap.Writer, id ID, base int64) {
	sl := &s.w[id]
	start, end, qdl := sl.start, sl.end, sl.qdl
	var f uint64
	if sl.fired {
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
func (s *slots) readID(r *snap.Reader) ID {
	u := r.Uint()
	if r.Err() == nil && u >= uint64(len(s.w)) {
		r.Failf("slot %d out of range (%d slots)", u, len(s.w))
	}
	if r.Err() != nil {
		return NoWindow
	}
	return ID(u)
}

// claim marks slot id as accounted for (a window, a hidden slot or free);
// a slot claimed twice is an error.
func (s *slots) claim(r *snap.Reader, id ID) bool {
	if r.Err() != nil {
		return false
	}
	if s.w[id].gen != 0 {
		r.Failf("slot %d named twice", id)
		return false
	}
	s.w[id].gen = 1
	return true
}

// loadWindow reads what saveWindow wrote into slot id, a window of key
// number k.
func (s *slots) loadWindow(r *snap.Reader, id ID, k int32, base int64) {
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
	sl := &s.w[id]
	sl.start, sl.end, sl.owner, sl.fired = start, end, k, f&snapFired != 0
	if f&snapQueued != 0 {
		qdl = s.deadline(id)
	}
	sl.qdl = qdl
	s.open++
}

func (s *slots) saveFree(w *snap.Writer) {
	w.Section("free")
	w.Uint(uint64(len(s.free)))
	for _, id := range s.free {
		w.Uint(uint64(id))
	}
}

func (s *slots) loadFree(r *snap.Reader) {
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
func (s *slots) finishLoad(r *snap.Reader) {
	if r.Err() != nil {
		return
	}
	for id := range s.w {
		if s.w[id].gen == 0 {
			r.Failf("slot %d is neither a window, hidden nor free", id)
			return
		}
	}
	s.q = deadlineQueue{}
	for id := range s.w {
		sl := &s.w[id]
		sl.gen = 0
		if sl.owner != noKey && sl.qdl != math.MaxInt64 {
			s.q.push(deadlineEntry{deadline: sl.qdl, id: ID(id)})
		}
	}
}

type deadlineEntry struct {
	deadline int64
	id       ID
	gen      uint32
}

func (e deadlineEntry) before(f deadlineEntry) bool {
	return e.deadline < f.deadline || e.deadline == f.deadline && e.id < f.id
}

// deadlineQueue holds the slots' deadline entries and gives them back in
// order of (deadline, ID), so the order windows fire and close in is
// deterministic.
//
// It is a timing wheel in front of a heap, because a binary heap of every
// open window's entry (one per session, hundreds of thousands) costs a
// cache miss per level on every pop, and a window's entry is filed and
// popped about once per event or two. Entries before the horizon are in a
// small heap (near). The next wheelBuckets buckets of bucketWidth ms after
// it are a ring of unsorted slices (wheel): filing there is an append. A
// bucket moves into near when the watermark reaches it, its slots loaded
// in one pass so their cache misses overlap. Entries further out wait in
// a heap (far) until the wheel reaches them: with sessions they are rare
// (a gap plus the allowed lateness longer than the wheel).
//
// Invariant: near < horizon <= wheel < horizon + wheelSpan <= far, by
// deadline. The horizon stays at most maxHorizon, so that it and the
// wheel's end never overflow; should the watermark pass that (times within
// 70 minutes of the largest int64), everything moves into near and stays
// there (horizon math.MaxInt64, which no deadline reaches).
type deadlineQueue struct {
	near    entryHeap
	horizon int64             // a multiple of bucketWidth
	wheel   [][]deadlineEntry // bucket b (deadline / bucketWidth) at b & (wheelBuckets-1)
	inWheel int               // entries in the wheel
	spare   [][]deadlineEntry // empty arrays of buckets passed
	far     entryHeap
	sink    int64 // keeps prefetching loads alive
}

const (
	bucketShift  = 10 // buckets are 2^10 ms wide
	bucketWidth  = 1 << bucketShift
	wheelBuckets = 1 << 12 // 70 minutes
	wheelSpan    = wheelBuckets * bucketWidth
)

// maxHorizon is the last horizon whose wheel ends before the last bucket.
const maxHorizon = math.MaxInt64>>bucketShift<<bucketShift - wheelSpan

// limit is the end of the wheel's span.
func (q *deadlineQueue) limit() int64 {
	if q.horizon == math.MaxInt64 {
		return math.MaxInt64
	}
	return q.horizon + wheelSpan
}

func (q *deadlineQueue) push(e deadlineEntry) {
	if q.wheel == nil {
		q.wheel = make([][]deadlineEntry, wheelBuckets)
		q.horizon = min(e.deadline>>bucketShift<<bucketShift, maxHorizon)
	}
	switch {
	case e.deadline < q.horizon:
		q.near.push(e)
	case e.deadline < q.limit():
		q.file(e)
	default:
		q.far.push(e)
	}
}

// popBefore removes and returns the first entry if its deadline is
// before wm. w is the slots the entries name (see deadlineQueue).
func (q *deadlineQueue) popBefore(wm int64, w []slot) (deadlineEntry, bool) {
	for {
		if len(q.near) > 0 && q.near[0].deadline < wm {
			return q.near.pop(), true
		}
		if q.inWheel == 0 {
			if len(q.far) == 0 || q.far[0].deadline >= wm {
				return deadlineEntry{}, false
			}
			// Nothing in the wheel: move it to the first far entry.
			if h := q.far[0].deadline >> bucketShift << bucketShift; h <= maxHorizon {
				q.horizon = h
				q.refill()
			} else {
				q.flatten()
			}
			continue
		}
		if q.horizon >= wm {
			return deadlineEntry{}, false
		}
		if q.horizon == maxHorizon {
			q.flatten()
			continue
		}
		// The first bucket may hold entries before wm: they join near,
		// and the horizon moves past it.
		b := &q.wheel[q.horizon>>bucketShift&(wheelBuckets-1)]
		var sink int64
		for _, e := range *b {
			sink += w[e.id].qdl
		}
		q.sink += sink
		for _, e := range *b {
			q.near.push(e)
		}
		q.inWheel -= len(*b)
		if cap(*b) <= 4096 {
			q.spare = append(q.spare, (*b)[:0])
		}
		*b = nil
		q.horizon += bucketWidth
		q.refill()
	}
}

// flatten moves every entry into near, for good.
func (q *deadlineQueue) flatten() {
	for i := range q.wheel {
		for _, e := range q.wheel[i] {
			q.near.push(e)
		}
		q.wheel[i] = nil
	}
	for _, e := range q.far {
		q.near.push(e)
	}
	q.far, q.inWheel, q.horizon = nil, 0, math.MaxInt64
}

// refill moves far entries the wheel now reaches into it.
func (q *deadlineQueue) refill() {
	for lim := q.limit(); len(q.far) > 0 && q.far[0].deadline < lim; {
		q.file(q.far.pop())
	}
}

// file puts e into its wheel bucket. An empty bucket takes a spare
// array: only the buckets in use hold arrays, not the whole wheel.
func (q *deadlineQueue) file(e deadlineEntry) {
	b := &q.wheel[e.deadline>>bucketShift&(wheelBuckets-1)]
	if cap(*b) == 0 {
		if n := len(q.spare); n > 0 {
			*b = q.spare[n-1]
			q.spare[n-1] = nil
			q.spare = q.spare[:n-1]
		}
	}
	*b = append(*b, e)
	q.inWheel++
}

// entryHeap is a binary min-heap of entries by (deadline, ID).
type entryHeap []deadlineEntry

func (h *entryHeap) push(e deadlineEntry) {
	*h = append(*h, e)
	q := *h
	for j := len(q) - 1; j > 0; {
		i := (j - 1) / 2
		if !q[j].before(q[i]) {
			break
		}
		q[i], q[j] = q[j], q[i]
		j = i
	}
}

func (h *entryHeap) pop() deadlineEntry {
	q := *h
	n := len(q) - 1
	top := q[0]
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && q[r].before(q[l]) {
			j = r
		}
		if !q[j].before(q[i]) {
			break
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
	*h = q
	return top
}
