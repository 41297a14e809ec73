package windows

import (
	"container/heap"
	"fmt"
	"math"
	"unsafe"
)

// Session is the SESSION window assigner: per key, an event at time t
// opens the interval [t, t+gap); intervals that overlap or touch merge. A
// session's start is its first event's time and its end the largest
// t+gap of its events, so two consecutive events of a key share a session
// exactly when their times differ by at most the gap.
//
// The gap comes with each Event, so one Session serves both fixed and
// per-event (dynamic) gaps.
type Session struct {
	keys map[string]*sessionKey

	// Slot arrays, indexed by ID. A free slot has owner == nil.
	start, end []int64
	owner      []*sessionKey
	gen        []uint32 // bumped when a slot is freed, to spot stale heap entries

	free []ID // slots ready for reuse

	// Within one Assign call, absorbed windows are redirected to the window
	// that took them, and their slots are freed only when the call ends, so
	// an ID handed out earlier in the batch can still be resolved.
	redirect map[ID]ID
	absorbed []ID

	ends     endHeap // every open window's end, possibly stale-low (lazy)
	frontier int64   // windows with end < frontier are closed
	open     int
	keyBytes int64 // bytes of key strings held
}

// sessionKey is the state of one group key: its open windows, sorted by
// start and pairwise separated (neither overlapping nor touching).
type sessionKey struct {
	key  string
	wins []ID
	// closedUpTo is the largest end of a window of this key that has
	// closed, or math.MinInt64. An event at or before it would change a
	// final row.
	closedUpTo int64
}

// NewSession returns an empty session assigner.
func NewSession() *Session {
	return &Session{
		keys:     make(map[string]*sessionKey),
		redirect: make(map[ID]ID),
		frontier: math.MinInt64,
	}
}

var _ Assigner = (*Session)(nil)

// Assign implements Assigner.
func (s *Session) Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, m Merger) {
	for i := range events {
		ids[i], outs[i] = s.assign(keys[i], events[i], m)
	}
	if len(s.absorbed) == 0 {
		return
	}
	for i, id := range ids {
		if id != NoWindow {
			ids[i] = s.resolve(id)
		}
	}
	for _, id := range s.absorbed {
		s.release(id)
	}
	s.absorbed = s.absorbed[:0]
	clear(s.redirect)
}

func (s *Session) resolve(id ID) ID {
	for {
		to, ok := s.redirect[id]
		if !ok {
			return id
		}
		id = to
	}
}

func (s *Session) assign(key []byte, ev Event, m Merger) (ID, Outcome) {
	t, hi := ev.Time, satAdd(ev.Time, ev.Gap)
	k := s.keys[string(key)]
	if t < s.frontier && (k == nil || t <= k.closedUpTo) {
		// Behind the frontier: without the key's state we cannot rule out
		// that the event touches a window that already closed.
		return NoWindow, Late
	}
	if k == nil {
		k = &sessionKey{key: string(key), closedUpTo: math.MinInt64}
		s.keys[k.key] = k
		s.keyBytes += int64(len(key))
	}
	// Windows are sorted and separated, so those that [t, hi] overlaps or
	// touches are contiguous: wins[lo:up].
	lo := 0
	for lo < len(k.wins) && s.end[k.wins[lo]] < t {
		lo++
	}
	up := lo
	for up < len(k.wins) && s.start[k.wins[up]] <= hi {
		up++
	}
	if lo == up {
		id := s.alloc(k, t, hi)
		k.wins = append(k.wins, 0)
		copy(k.wins[lo+1:], k.wins[lo:])
		k.wins[lo] = id
		return id, Assigned
	}
	into := k.wins[lo]
	s.start[into] = min(s.start[into], t)
	s.end[into] = max(s.end[into], hi)
	for _, from := range k.wins[lo+1 : up] {
		s.start[into] = min(s.start[into], s.start[from])
		s.end[into] = max(s.end[into], s.end[from])
		m.Merge(into, from)
		s.redirect[from] = into
		s.absorbed = append(s.absorbed, from)
		s.open--
	}
	k.wins = append(k.wins[:lo+1], k.wins[up:]...)
	return into, Assigned
}

func (s *Session) alloc(k *sessionKey, start, end int64) ID {
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
	}
	s.start[id], s.end[id], s.owner[id] = start, end, k
	heap.Push(&s.ends, endEntry{end: end, id: id, gen: s.gen[id]})
	s.open++
	return id
}

// release frees a slot whose window is gone (closed or absorbed).
func (s *Session) release(id ID) {
	s.owner[id] = nil
	s.gen[id]++
	s.free = append(s.free, id)
}

// Bounds implements Assigner.
func (s *Session) Bounds(id ID) (start, end int64) {
	s.mustLive(id)
	return s.start[id], s.end[id]
}

// Key implements Assigner.
func (s *Session) Key(id ID) []byte {
	s.mustLive(id)
	return unsafe.Slice(unsafe.StringData(s.owner[id].key), len(s.owner[id].key))
}

func (s *Session) mustLive(id ID) {
	if id < 0 || int(id) >= len(s.owner) || s.owner[id] == nil {
		panic(fmt.Sprintf("windows: session slot %d is not a live window (slots %d, open %d)", id, len(s.owner), s.open))
	}
}

// CloseUpTo implements Assigner.
func (s *Session) CloseUpTo(f int64, closed func(id ID)) {
	if f <= s.frontier {
		return
	}
	s.frontier = f
	for len(s.ends) > 0 && s.ends[0].end < f {
		e := heap.Pop(&s.ends).(endEntry)
		if s.gen[e.id] != e.gen || s.owner[e.id] == nil {
			continue // the window was absorbed or closed since
		}
		if cur := s.end[e.id]; cur != e.end {
			// The window grew since this entry was pushed: file it again
			// under its real end.
			heap.Push(&s.ends, endEntry{end: cur, id: e.id, gen: e.gen})
			continue
		}
		closed(e.id)
		k := s.owner[e.id]
		k.closedUpTo = max(k.closedUpTo, e.end)
		k.wins = removeID(k.wins, e.id)
		if len(k.wins) == 0 {
			delete(s.keys, k.key)
			s.keyBytes -= int64(len(k.key))
		}
		s.release(e.id)
		s.open--
	}
}

func removeID(ids []ID, id ID) []ID {
	for i, x := range ids {
		if x == id {
			return append(ids[:i], ids[i+1:]...)
		}
	}
	panic(fmt.Sprintf("windows: window %d missing from its key's list %v", id, ids))
}

// Open implements Assigner.
func (s *Session) Open() int { return s.open }

// Slots implements Assigner.
func (s *Session) Slots() int { return len(s.start) }

// Per-item overheads used by StateBytes: a map entry with its string
// header and pointer (~48 B with the map's own slack), a sessionKey (56 B)
// with a one-element wins array (8 B); per slot start+end+owner+gen
// (28 B) and a heap entry (16 B).
const (
	keyOverhead  = 48 + 56 + 8
	slotOverhead = 28 + 16
)

// StateBytes implements Assigner.
func (s *Session) StateBytes() int64 {
	return int64(len(s.keys))*keyOverhead + s.keyBytes + int64(len(s.start))*slotOverhead
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

type endEntry struct {
	end int64
	id  ID
	gen uint32
}

// endHeap is a min-heap of window ends, ties broken by ID so closing order
// is deterministic.
type endHeap []endEntry

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(i, j int) bool {
	if h[i].end != h[j].end {
		return h[i].end < h[j].end
	}
	return h[i].id < h[j].id
}
func (h endHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(endEntry)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
