package windows

import (
	"fmt"
	"math"
	"unsafe"
)

// Session is the SESSION window assigner without MAX: per key, an event at
// time t opens the interval [t, t+gap); intervals that overlap or touch
// merge. A session's start is its first event's time and its end the
// largest t+gap of its events, so two consecutive events of a key share a
// session exactly when their times differ by at most the gap.
//
// The gap comes with each Event, so one Session serves both fixed and
// per-event (dynamic) gaps. Merging is order-independent, so every event
// is Assigned at once, whatever order events arrive in.
type Session struct {
	keys map[string]*sessionKey
	slots[sessionKey]

	// Within one Assign call, absorbed windows are redirected to the window
	// that took them, and their slots are freed only when the call ends, so
	// an ID handed out earlier in the batch can still be resolved.
	redirect map[ID]ID
	absorbed []ID

	frontier int64 // of the last Advance: watermark minus lateness
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
func (s *Session) Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, o Observer) {
	for i := range events {
		ids[i], outs[i] = s.assign(keys[i], events[i], o)
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

func (s *Session) assign(key []byte, ev Event, o Observer) (ID, Outcome) {
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
		o.Merge(into, from)
		s.redirect[from] = into
		s.absorbed = append(s.absorbed, from) // released after the batch
	}
	k.wins = append(k.wins[:lo+1], k.wins[up:]...)
	return into, Assigned
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

// Advance implements Assigner. Sessions have no deferred events.
func (s *Session) Advance(wm, lateness int64, _ Observer, fire, closed func(id ID)) {
	s.frontier = max(s.frontier, Frontier(wm, lateness))
	s.advance(wm, lateness, fire, func(id ID) {
		closed(id)
		k := s.owner[id]
		k.closedUpTo = max(k.closedUpTo, s.end[id])
		k.wins = removeID(k.wins, id)
		if len(k.wins) == 0 {
			delete(s.keys, k.key)
			s.keyBytes -= int64(len(k.key))
		}
	})
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

// keyOverhead is the memory of one key beyond its bytes: a map entry with
// its string header and pointer (~48 B with the map's own slack), a
// sessionKey (56 B) with a one-element wins array (8 B).
const keyOverhead = 48 + 56 + 8

// StateBytes implements Assigner.
func (s *Session) StateBytes() int64 {
	return int64(len(s.keys))*keyOverhead + s.keyBytes + s.bytes()
}
