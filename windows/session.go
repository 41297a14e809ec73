package windows

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/sessionsql/sessionsql/windows/snap"
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

// Save implements Assigner. After the frontier and the slot table's
// header, each key is written with its windows in order (ID, bounds, fired
// flag, queue entry), then the free list. Keys go in the order of their
// first window's slot, which walks the slot arrays in order and lets that
// ID be written as the step from the previous key's (a byte, mostly). An
// open session costs about its key's bytes plus ten.
func (s *Session) Save(w *snap.Writer) {
	if len(s.absorbed) != 0 || len(s.redirect) != 0 {
		panic(fmt.Sprintf("windows: Session.Save inside Assign (%d windows absorbed)", len(s.absorbed)))
	}
	w.Section("windows.Session")
	w.Int(s.frontier)
	base := s.snapBase(s.frontier)
	s.saveHeader(w, base)
	w.Section("keys")
	w.Uint(uint64(len(s.keys)))
	prev := ID(0)
	for id, k := range s.owner {
		if k == nil || k.wins[0] != ID(id) {
			continue
		}
		w.String(k.key)
		// The window count and whether a window of the key has closed.
		h := uint64(len(k.wins)) << 1
		if k.closedUpTo != math.MinInt64 {
			h |= 1
		}
		w.Uint(h)
		if h&1 != 0 {
			w.Int(k.closedUpTo - base)
		}
		w.Uint(uint64(k.wins[0] - prev))
		prev = k.wins[0]
		s.saveWindow(w, k.wins[0], base)
		for _, id := range k.wins[1:] {
			w.Uint(uint64(id))
			s.saveWindow(w, id, base)
		}
	}
	s.saveFree(w)
}

// minSessionKeyBytes is the least a key takes in a checkpoint: its
// length, the header and one window's ID, flags and start.
const minSessionKeyBytes = 5

// Load implements Assigner. Besides what the encoding itself ensures, it
// checks that every slot is named once (a window of one key, or free),
// that keys are distinct and hold at least one window, and that each key's
// windows are sorted and separated; state that passes is state Assign and
// Advance can run on.
func (s *Session) Load(r *snap.Reader) error {
	t := NewSession()
	r.Section("windows.Session")
	t.frontier = r.Int()
	base := t.loadHeader(r)
	r.Section("keys")
	n := r.Len(minSessionKeyBytes)
	if r.Err() != nil {
		return r.Err()
	}
	t.keys = make(map[string]*sessionKey, n)
	prev := ID(0)
	for ki := range n {
		key := r.String()
		h := r.Uint()
		if r.Err() != nil {
			return r.Err()
		}
		nw := h >> 1
		if nw == 0 || nw > uint64(r.Remaining()) {
			return r.Failf("key %q: %d windows", key, nw)
		}
		k := &sessionKey{key: key, closedUpTo: math.MinInt64, wins: make([]ID, nw)}
		if h&1 != 0 {
			k.closedUpTo = base + r.Int()
		}
		for i := range k.wins {
			var id ID
			if i == 0 {
				// The step from the previous key's first window.
				d := r.Uint()
				if r.Err() == nil && d >= uint64(len(t.start)-int(prev)) {
					return r.Failf("key %q: first window %d slots after %d (%d slots)", key, d, prev, len(t.start))
				}
				id = prev + ID(d)
				prev = id
			} else {
				id = t.readID(r)
			}
			t.loadWindow(r, id, k, base)
			if r.Err() != nil {
				return r.Err()
			}
			if t.start[id] > t.end[id] || i > 0 && t.end[k.wins[i-1]] >= t.start[id] {
				return r.Failf("key %q: window %d [%d, %d) out of order", key, id, t.start[id], t.end[id])
			}
			k.wins[i] = id
		}
		if t.keys[key] = k; len(t.keys) != ki+1 {
			return r.Failf("key %q twice", key)
		}
		t.keyBytes += int64(len(key))
	}
	t.loadFree(r)
	t.finishLoad(r)
	if r.Err() != nil {
		return r.Err()
	}
	*s = *t
	return nil
}
