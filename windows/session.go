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
	keys keyTable[sessionKey]
	slots

	// Within one Assign call, absorbed windows are redirected to the window
	// that took them, and their slots are freed only when the call ends, so
	// an ID handed out earlier in the batch can still be resolved.
	redirect map[ID]ID
	absorbed []ID

	frontier int64 // of the last Advance: watermark minus lateness

	look lookup // scratch: the keys of a chunk of the batch
	sink int64  // keeps prefetching loads alive
}

// sessionKey is the state of one group key: its open windows, a list
// through the slots' next (sorted by start and pairwise separated: neither
// overlapping nor touching). It holds no pointers, so the key table is not
// traced by the garbage collector.
type sessionKey struct {
	// closedUpTo is the largest end of a window of this key that has
	// closed, or math.MinInt64. An event at or before it would change a
	// final row.
	closedUpTo int64
	first      ID    // the first window
	n          int32 // windows in the list
}

// NewSession returns an empty session assigner.
func NewSession() *Session {
	return &Session{
		keys:     newKeyTable[sessionKey](),
		redirect: make(map[ID]ID),
		frontier: math.MinInt64,
	}
}

var _ Assigner = (*Session)(nil)

// Assign implements Assigner.
//
// The batch goes in chunks, each in three passes: look up every key, load
// each key's first window, then assign. With 100,000 keys the key table
// and the slots are far bigger than the caches, and each event's state
// costs a few cache misses; in the first two passes one event's loads do
// not wait for another's, so the processor overlaps their misses, and the
// third pass finds the state in cache.
func (s *Session) Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, o Observer) {
	for lo := 0; lo < len(events); lo += assignChunk {
		hi := min(lo+assignChunk, len(events))
		lookUp(&s.keys, keys[lo:hi], &s.look)
		found := s.look.found
		var sink int64
		for _, kn := range found {
			if kn != noKey {
				if id := s.keys.at(kn).first; id != NoWindow {
					sink += s.w[id].end
				}
			}
		}
		s.sink += sink
		for i := lo; i < hi; i++ {
			ids[i], outs[i] = s.assign(keys[i], found[i-lo], s.look.hash[i-lo], &events[i], o)
		}
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

// assign places one event of key, whose key number is kn if it was
// known before the chunk (else noKey: the key may have come since, and h
// is its hash).
func (s *Session) assign(key []byte, kn int32, h uint32, ev *Event, o Observer) (ID, Outcome) {
	t, hi := ev.Time, satAdd(ev.Time, ev.Gap)
	if kn == noKey {
		kn = s.keys.findHash(key, h)
	}
	if t < s.frontier && (kn == noKey || t <= s.keys.at(kn).closedUpTo) {
		// Behind the frontier: without the key's state we cannot rule out
		// that the event touches a window that already closed.
		return NoWindow, Late
	}
	if kn == noKey {
		kn = s.keys.insert(key, h)
		*s.keys.at(kn) = sessionKey{closedUpTo: math.MinInt64, first: NoWindow}
	}
	k := s.keys.at(kn)
	// Windows are sorted and separated, so those that [t, hi] overlaps or
	// touches are a run of the list: from id on.
	prev, id := NoWindow, k.first
	for id != NoWindow && s.w[id].end < t {
		prev, id = id, s.w[id].next
	}
	if id == NoWindow || s.w[id].start > hi {
		nid := s.alloc(kn, t, hi)
		s.w[nid].next = id
		if prev == NoWindow {
			k.first = nid
		} else {
			s.w[prev].next = nid
		}
		k.n++
		return nid, Assigned
	}
	into := id
	w := &s.w[into]
	w.start = min(w.start, t)
	w.end = max(w.end, hi)
	for from := w.next; from != NoWindow && s.w[from].start <= hi; from = s.w[into].next {
		f := &s.w[from]
		w.start = min(w.start, f.start)
		w.end = max(w.end, f.end)
		w.next = f.next
		k.n--
		o.Merge(into, from)
		s.redirect[from] = into
		s.absorbed = append(s.absorbed, from) // released after the batch
		w = &s.w[into]
	}
	return into, Assigned
}

// Bounds implements Assigner.
func (s *Session) Bounds(id ID) (start, end int64) {
	s.mustLive(id)
	return s.w[id].start, s.w[id].end
}

// Key implements Assigner.
func (s *Session) Key(id ID) []byte {
	s.mustLive(id)
	return s.keys.key(s.w[id].owner)
}

// Advance implements Assigner. Sessions have no deferred events.
func (s *Session) Advance(wm, lateness int64, _ Observer, fire, closed func(id ID)) {
	s.frontier = max(s.frontier, Frontier(wm, lateness))
	s.advance(wm, lateness, fire, func(id ID) {
		closed(id)
		kn := s.w[id].owner
		k := s.keys.at(kn)
		k.closedUpTo = max(k.closedUpTo, s.w[id].end)
		s.unlink(k, id)
		if k.n == 0 {
			s.keys.remove(kn)
		}
	})
}

// unlink takes window id out of its key's list.
func (s *Session) unlink(k *sessionKey, id ID) {
	if k.first == id {
		k.first = s.w[id].next
		k.n--
		return
	}
	for p := k.first; p != NoWindow; p = s.w[p].next {
		if s.w[p].next == id {
			s.w[p].next = s.w[id].next
			k.n--
			return
		}
	}
	panic(fmt.Sprintf("windows: window %d missing from its key's list %v", id, s.list(k)))
}

// list returns the key's windows in order.
func (s *Session) list(k *sessionKey) []ID {
	var ids []ID
	for id := k.first; id != NoWindow && len(ids) <= int(k.n); id = s.w[id].next {
		ids = append(ids, id)
	}
	return ids
}

// Open implements Assigner.
func (s *Session) Open() int { return s.open }

// Slots implements Assigner.
func (s *Session) Slots() int { return len(s.w) }

// keyOverhead is the memory of one key beyond its bytes: its record with
// the sessionKey, and its share of the index.
const keyOverhead = keyRecOverhead + int64(unsafe.Sizeof(sessionKey{}))

// StateBytes implements Assigner.
func (s *Session) StateBytes() int64 {
	return int64(s.keys.len())*keyOverhead + s.keys.bytes + s.bytes()
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
	w.Uint(uint64(s.keys.len()))
	prev := ID(0)
	for id := range s.w {
		kn := s.w[id].owner
		if kn == noKey || s.keys.at(kn).first != ID(id) {
			continue
		}
		k := s.keys.at(kn)
		w.Blob(s.keys.key(kn))
		// The window count and whether a window of the key has closed.
		h := uint64(k.n) << 1
		if k.closedUpTo != math.MinInt64 {
			h |= 1
		}
		w.Uint(h)
		if h&1 != 0 {
			w.Int(k.closedUpTo - base)
		}
		w.Uint(uint64(k.first - prev))
		prev = k.first
		s.saveWindow(w, k.first, base)
		for id := s.w[k.first].next; id != NoWindow; id = s.w[id].next {
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
	prev := ID(0)
	for range n {
		key := r.Blob()
		h := r.Uint()
		if r.Err() != nil {
			return r.Err()
		}
		nw := h >> 1
		if nw == 0 || nw > uint64(r.Remaining()) {
			return r.Failf("key %q: %d windows", key, nw)
		}
		kn, hash := t.keys.find(key)
		if kn != noKey {
			return r.Failf("key %q twice", key)
		}
		kn = t.keys.insert(key, hash)
		k := t.keys.at(kn)
		*k = sessionKey{closedUpTo: math.MinInt64, first: NoWindow, n: int32(nw)}
		if h&1 != 0 {
			k.closedUpTo = base + r.Int()
		}
		last := NoWindow
		for i := range nw {
			var id ID
			if i == 0 {
				// The step from the previous key's first window.
				d := r.Uint()
				if r.Err() == nil && d >= uint64(len(t.w)-int(prev)) {
					return r.Failf("key %q: first window %d slots after %d (%d slots)", key, d, prev, len(t.w))
				}
				id = prev + ID(d)
				prev = id
			} else {
				id = t.readID(r)
			}
			t.loadWindow(r, id, kn, base)
			if r.Err() != nil {
				return r.Err()
			}
			if t.w[id].start > t.w[id].end || last != NoWindow && t.w[last].end >= t.w[id].start {
				return r.Failf("key %q: window %d [%d, %d) out of order", key, id, t.w[id].start, t.w[id].end)
			}
			if last == NoWindow {
				k.first = id
			} else {
				t.w[last].next = id
			}
			last = id
		}
	}
	t.loadFree(r)
	t.finishLoad(r)
	if r.Err() != nil {
		return r.Err()
	}
	*s = *t
	return nil
}
