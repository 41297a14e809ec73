package windows

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// Sequential is the assigner of the window kinds whose windows depend on
// the order of each key's events, not only on their set: EVENT_WINDOW
// (START WHEN / END WHEN / TIMEOUT) and SESSION with MAX. Both are a state
// machine run over each key's events in event-time order (ties by Seq).
//
// Events arrive out of order, so per key the assigner keeps two parts:
//
//   - settled: the machine's state after every event before the frontier
//     (watermark minus lateness). No accepted event can come before these
//     any more, so their windows are decided; an event before the frontier
//     is Late.
//   - pending: the events at or after the frontier, sorted, kept by Ref.
//     The windows over them (wins) are recomputed when an event lands in
//     their midst, and rebuilt from the rows (Observer.Fold) where their
//     contents changed.
//
// The window that is open at the settled point continues into the pending
// part (wins[0]). Its visible slot holds settled plus pending events; while
// it has pending events, a hidden slot holds the settled part alone, so
// that it can be rebuilt (Copy from the hidden slot, then Fold).
//
// Events that arrive in order take a fast path: one machine step from the
// state after all pending events, and the event is Assigned to its window
// at once.
type Sequential struct {
	m    machine
	keys keyTable[seqKey]
	slots

	frontier int64 // of the last Advance
	pending  int   // pending events over all keys

	// lazy: no caller reads a window before the frontier has passed its
	// events (allowed lateness 0 and EMIT FINAL), so pending events are
	// folded only when they settle, straight into their window's slot, and
	// no hidden slots are needed.
	lazy bool

	// settleQ holds keys by when the frontier passing a time makes them
	// settle: their first pending event.
	settleQ settleQueue

	// scratch
	run      []runWin
	refs     []uint64
	one      [1]uint64
	touched  []int32       // numbers of the keys with a non-empty batch
	batch    []batchEvent  // their batch events
	pendPool [][]pendEvent // room for pending events, of keys that have none
	look     lookup        // the keys of a chunk of the batch
	due      []settleEntry
	ords     []int32 // Save: key numbers to the order written
	wids     []ID    // the last (Assign) or first (Advance) window of each key of a chunk
	hashes   []uint32

	// forget holds the keys found to hold nothing during an Advance: it
	// removes them from the key table together (keyTable.removeAll), after
	// each chunk of keys it settles and at its end, so that their index
	// entries load at once while their records are still in the cache.
	// Nothing happens to them in between.
	forget []int32

	unmatched int   // events found unmatched while settling, not yet reported
	sink      int64 // keeps prefetching loads alive
	oldWin    []int32
	used      []bool
}

// NewEventWindow returns the EVENT_WINDOW assigner; timeout 0 means none.
func NewEventWindow(timeout int64) *Sequential {
	return newSequential(machine{kind: eventKind, param: timeout})
}

// NewSessionMax returns the SESSION assigner with MAX max: a session is cut
// when an event would make it span more than max; the event opens the next
// one. A gap larger than max is taken as max.
func NewSessionMax(max int64) *Sequential {
	return newSequential(machine{kind: maxSessionKind, param: max})
}

func newSequential(m machine) *Sequential {
	return &Sequential{m: m, keys: newKeyTable[seqKey](), frontier: math.MinInt64}
}

var _ Assigner = (*Sequential)(nil)

// SetLazy says that the caller reads a window's state only once the
// frontier (watermark minus lateness) has passed all its events: with
// allowed lateness 0, windows fire only then, and without EMIT EARLY
// nothing reads them earlier. The assigner then folds events only as they
// settle (every Outcome is Deferred or Late), which saves folding each
// event twice. Call it before the first Assign.
func (s *Sequential) SetLazy(lazy bool) { s.lazy = lazy }

// seqState is the machine's state for one key.
type seqState struct {
	open             bool
	start, end, last int64 // open window's start, end (MAX sessions) and last event time
	lastStart        int64 // start of the key's most recent window
}

// fate is what a step did with its event.
type fate uint8

const (
	unmatched fate = iota
	joined         // the event joined the open window
	opened         // the event opened a new window
)

type step struct {
	closedPrev bool  // the window open before the event closed first...
	prevEnd    int64 // ...with this end
	fate       fate
	closedWith bool // the event's window closed with it (END); end = its time
}

// machine is a sequential window kind: a plain value rather than an
// interface, so that a step, run once or twice per event, is a predictable
// branch and not an indirect call.
type machine struct {
	kind  uint64 // eventKind or maxSessionKind, as checkpoints name them
	param int64  // EVENT_WINDOW's TIMEOUT (0: none) or SESSION's MAX
}

const (
	eventKind      = 0
	maxSessionKind = 1
)

func (m machine) step(st *seqState, e *pendEvent) step {
	if m.kind == maxSessionKind {
		return m.maxSessionStep(st, e)
	}
	return m.eventStep(st, e)
}

// end is the open window's end as far as known (NoEnd if unknown). The
// frontier passing it closes the window.
func (m machine) end(st *seqState) int64 {
	if m.kind == maxSessionKind {
		return st.end
	}
	if m.param == 0 {
		return NoEnd
	}
	return satAdd(st.last, m.param)
}

// eventStep is EVENT_WINDOW, see SPEC.md.
func (m machine) eventStep(st *seqState, e *pendEvent) (r step) {
	timeout := m.param
	if st.open && timeout > 0 && e.t > satAdd(st.last, timeout) {
		r.closedPrev, r.prevEnd = true, satAdd(st.last, timeout)
		st.open = false
	}
	// A START at the time of the key's latest window start would give a
	// second window with the same start, which is the result's key: it is
	// an ordinary event instead.
	if e.start && e.t != st.lastStart {
		if st.open {
			r.closedPrev, r.prevEnd = true, e.t
		}
		*st = seqState{open: true, start: e.t, last: e.t, lastStart: e.t}
		r.fate = opened
		return r
	}
	if !st.open {
		return r
	}
	st.last = e.t
	r.fate = joined
	if e.end {
		st.open = false
		r.closedWith = true
	}
	return r
}

// maxSessionStep is SESSION(ts, gap, MAX max).
func (m machine) maxSessionStep(st *seqState, e *pendEvent) (r step) {
	hi := satAdd(e.t, min(e.gap, m.param))
	if st.open && e.t <= st.end && max(st.end, hi)-st.start <= m.param {
		st.end = max(st.end, hi)
		st.last = e.t
		r.fate = joined
		return r
	}
	if st.open {
		r.closedPrev, r.prevEnd = true, st.end
	}
	*st = seqState{open: true, start: e.t, end: hi, last: e.t, lastStart: e.t}
	r.fate = opened
	return r
}

// seqKey is one group key's state. A key's number and record are reused
// after it is forgotten, with its windows' room, so that keys coming and
// going (an EVENT_WINDOW key between windows holds nothing) do not
// allocate; pending events' room goes back to the assigner's pool when a
// key has none.
type seqKey struct {
	st   seqState    // after every settled event
	tail seqState    // after st and every pending event
	pend []pendEvent // sorted by (t, seq)
	wins []ID        // windows over pend given st; wins[0] continues st's open window if st.open
	qAt  int64       // the settle queue entry that counts; math.MaxInt64: none

	hidden ID    // settled part of wins[0] while it has pending events
	live   int32 // live windows of the key: wins and decided ones not yet closed

	// batch: the events of the current Assign call given out as Assigned,
	// a list through Sequential.batch (first and last index + 1; 0: none).
	batch, batchLast int32
}

type batchEvent struct {
	i    int32 // index in the batch
	next int32 // the key's next batchEvent, index + 1; 0: none
	ref  uint64
}

type pendEvent struct {
	t, gap, seq int64
	ref         uint64
	win         int32 // index in wins, -1 when in no window
	start, end  bool
}

func (e *pendEvent) before(t, seq int64) bool { return e.t < t || (e.t == t && e.seq < seq) }

// Assign implements Assigner.
func (s *Sequential) Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, o Observer) {
	// As Session.Assign: per chunk, look up the keys and load what the
	// fast path reads, so that cache misses overlap, then assign. Assign
	// forgets no key, so key numbers stay good through the batch.
	for lo := 0; lo < len(events); lo += assignChunk {
		hi := min(lo+assignChunk, len(events))
		lookUp(&s.keys, keys[lo:hi], &s.look)
		found := s.look.found
		// The loads go a level at a time, so that no load waits for
		// another of the same pass: the lookup brought the records in;
		// then each key's last pending event and last window's ID; then
		// those windows' slots, and the room for pending events that
		// keys without any will take from the pool.
		wids := resize(&s.wids, len(found))
		var sink int64
		need := 0 // keys that will take room for pending events
		for j, kn := range found {
			wids[j] = NoWindow
			if kn == noKey {
				need++
				continue
			}
			k := s.keys.at(kn)
			if n := len(k.pend); n > 0 {
				sink += k.pend[n-1].t
			} else if cap(k.pend) == 0 {
				need++
			}
			if n := len(k.wins); n > 0 {
				wids[j] = k.wins[n-1]
			}
		}
		for _, id := range wids {
			if id != NoWindow {
				sink += s.w[id].end
			}
		}
		for j := len(s.pendPool) - 1; j >= 0 && j >= len(s.pendPool)-need; j-- {
			sink += s.pendPool[j][:1][0].t
		}
		s.sink += sink
		for i := lo; i < hi; i++ {
			ids[i], outs[i] = s.assign(keys[i], found[i-lo], s.look.hash[i-lo], &events[i], i, ids, outs, o)
		}
	}
	for _, kn := range s.touched {
		k := s.keys.at(kn)
		k.batch, k.batchLast = 0, 0
	}
	s.touched = s.touched[:0]
	s.batch = s.batch[:0]
}

// assign places event i, of key, whose number is kn if it was known
// before the chunk (else noKey: the key may have come since, and h is its
// hash).
func (s *Sequential) assign(key []byte, kn int32, h uint32, ev *Event, i int, ids []ID, outs []Outcome, o Observer) (ID, Outcome) {
	if ev.Time < s.frontier {
		return NoWindow, Late
	}
	if kn == noKey {
		if kn = s.keys.findHash(key, h); kn == noKey {
			kn = s.keys.insert(key, h)
			// Every field, one by one: a composite literal would be
			// built apart and copied in with a write barrier. The slices
			// keep their room.
			k := s.keys.at(kn)
			st := seqState{lastStart: math.MinInt64}
			k.st, k.tail = st, st
			k.pend, k.wins = k.pend[:0], k.wins[:0]
			k.qAt, k.hidden, k.live = math.MaxInt64, NoWindow, 0
			k.batch, k.batchLast = 0, 0
		}
	}
	k := s.keys.at(kn)
	e := pendEvent{t: ev.Time, gap: ev.Gap, seq: ev.Seq, start: ev.Start, end: ev.End, ref: ev.Ref, win: -1}
	s.pending++
	if n := len(k.pend); n == 0 || k.pend[n-1].before(e.t, e.seq) {
		id, out := s.appendEvent(k, kn, e, o)
		if out == Assigned {
			s.batch = append(s.batch, batchEvent{i: int32(i), ref: e.ref})
			if b := int32(len(s.batch)); k.batch == 0 {
				s.touched = append(s.touched, kn)
				k.batch, k.batchLast = b, b
			} else {
				s.batch[k.batchLast-1].next = b
				k.batchLast = b
			}
		}
		if n == 0 {
			s.schedule(kn)
		}
		return id, out
	}
	// Events of this batch already Assigned to the key's windows are not
	// folded yet (the caller folds the batch after Assign); fold them now,
	// so that every pending event is in its window before the windows are
	// recomputed.
	for j := k.batch; j != 0; j = s.batch[j-1].next {
		b := s.batch[j-1]
		s.one[0] = b.ref
		o.Fold(ids[b.i], s.one[:])
		o.Changed(ids[b.i], 1)
		ids[b.i], outs[b.i] = NoWindow, Deferred
	}
	k.batch, k.batchLast = 0, 0
	p, _ := slices.BinarySearchFunc(k.pend, e, func(a, b pendEvent) int {
		if a.before(b.t, b.seq) {
			return -1
		}
		return 1
	})
	k.pend = slices.Insert(k.pend, p, e)
	s.recompute(k, kn, p, o)
	if p == 0 {
		s.schedule(kn)
	}
	return NoWindow, Deferred
}

// appendEvent is the fast path for an event after every pending event of
// its key: one step from the tail state.
func (s *Sequential) appendEvent(k *seqKey, kn int32, e pendEvent, o Observer) (ID, Outcome) {
	r := s.m.step(&k.tail, &e)
	last := len(k.wins) - 1
	if r.closedPrev {
		s.setEnd(k.wins[last], r.prevEnd, o)
	}
	var id ID
	if cap(k.pend) == 0 {
		k.pend = s.takePend()
	}
	switch r.fate {
	case unmatched:
		k.pend = append(k.pend, e)
		return NoWindow, Deferred
	case joined:
		id = k.wins[last]
		e.win = int32(last)
		if !s.lazy && last == 0 && k.st.open && k.hidden == NoWindow {
			// wins[0] gets its first pending event: keep its settled part.
			k.hidden = s.alloc(noKey, 0, 0)
			o.Copy(k.hidden, id)
		}
	case opened:
		id = s.alloc(kn, e.t, NoEnd)
		k.live++
		k.wins = append(k.wins, id)
		e.win = int32(len(k.wins) - 1)
	}
	if r.closedWith {
		s.setEnd(id, e.t, nil)
	} else {
		s.setEnd(id, s.m.end(&k.tail), nil)
	}
	k.pend = append(k.pend, e)
	if s.lazy {
		return NoWindow, Deferred
	}
	return id, Assigned
}

// setEnd changes a window's end; o (if not nil) is told of the change.
func (s *Sequential) setEnd(id ID, end int64, o Observer) {
	if s.w[id].end == end {
		return
	}
	s.w[id].end = end
	s.track(id)
	if o != nil {
		o.Changed(id, 0)
	}
}

// runWin is one window of a recomputation.
type runWin struct {
	start, end int64
	old        ID    // the existing window with this start, or NoWindow
	oldIdx     int32 // its index in the key's windows, or -1
}

// recompute runs the machine from the settled state over every pending
// event after an event was inserted at index p, and brings the windows and
// their slots in line: a window whose events are its old ones plus the new
// event gets the new event folded in; one whose events changed otherwise is
// rebuilt; windows that no longer exist are gone.
func (s *Sequential) recompute(k *seqKey, kn int32, p int, o Observer) {
	// wins[0], if it continues the settled window, may be rebuilt below:
	// it needs its settled part apart.
	if !s.lazy && k.st.open && k.hidden == NoWindow {
		k.hidden = s.alloc(noKey, 0, 0)
		o.Copy(k.hidden, k.wins[0])
	}
	oldWin := resize(&s.oldWin, len(k.pend)) // each event's window before, by new index
	for i := range k.pend {
		oldWin[i] = k.pend[i].win
	}
	oldWin[p] = -2 // the new event was in none

	run := s.run[:0]
	st := k.st
	if st.open {
		run = append(run, runWin{start: st.start, end: s.m.end(&st)})
	}
	for i := range k.pend {
		e := &k.pend[i]
		r := s.m.step(&st, e)
		if r.closedPrev {
			run[len(run)-1].end = r.prevEnd
		}
		switch r.fate {
		case unmatched:
			e.win = -1
			continue
		case opened:
			run = append(run, runWin{start: e.t})
		}
		e.win = int32(len(run) - 1)
		if r.closedWith {
			run[len(run)-1].end = e.t
		} else {
			run[len(run)-1].end = s.m.end(&st)
		}
	}
	k.tail = st
	s.run = run

	// Match new windows to old ones by start (a key's windows have distinct
	// starts).
	used := resize(&s.used, len(k.wins))
	clear(used)
	for j := range run {
		run[j].old, run[j].oldIdx = NoWindow, -1
		for i, id := range k.wins {
			if !used[i] && s.w[id].start == run[j].start {
				run[j].old, run[j].oldIdx, used[i] = id, int32(i), true
				break
			}
		}
		// The continuing window keeps its slot even if its start moved
		// (it cannot: its start is settled), so no special case.
	}
	for i, id := range k.wins {
		if !used[i] {
			o.Gone(id)
			s.release(id)
			k.live--
		}
	}

	wins := k.wins[:0]
	for j := range run {
		w := &run[j]
		id := w.old
		// Compare the window's events with its old ones.
		same, plusNew := true, true
		if id == NoWindow {
			same, plusNew = false, false
		} else {
			oi := w.oldIdx
			for i := range k.pend {
				inNew := k.pend[i].win == int32(j)
				inOld := oldWin[i] == oi
				if i == p {
					if inNew {
						same = false
					} else {
						plusNew = false
					}
					continue
				}
				if inNew != inOld {
					same, plusNew = false, false
					break
				}
			}
		}
		switch {
		case s.lazy:
			// Contents are folded when events settle; only the bounds.
			if id == NoWindow {
				id = s.alloc(kn, w.start, w.end)
				k.live++
			} else {
				s.w[id].start = w.start
				s.setEnd(id, w.end, nil)
			}
		case same:
			if s.w[id].start != w.start || s.w[id].end != w.end {
				s.w[id].start = w.start
				s.setEnd(id, w.end, o)
			}
		case plusNew:
			s.w[id].start = w.start
			s.setEnd(id, w.end, nil)
			s.one[0] = k.pend[p].ref
			o.Fold(id, s.one[:])
			o.Changed(id, 1)
		default:
			if id == NoWindow {
				id = s.alloc(kn, w.start, w.end)
				k.live++
			} else {
				o.Reset(id)
				s.w[id].start = w.start
				s.setEnd(id, w.end, nil)
			}
			if j == 0 && k.st.open {
				o.Copy(id, k.hidden)
			}
			refs := s.refs[:0]
			for i := range k.pend {
				if k.pend[i].win == int32(j) {
					refs = append(refs, k.pend[i].ref)
				}
			}
			s.refs = refs
			if len(refs) > 0 {
				o.Fold(id, refs)
			}
			o.Changed(id, max(1, len(refs)))
		}
		wins = append(wins, id)
	}
	k.wins = wins
	s.normalizeHidden(k, o)
}

// normalizeHidden drops the hidden slot when wins[0] has no pending
// events: its visible slot then holds exactly the settled part.
func (s *Sequential) normalizeHidden(k *seqKey, o Observer) {
	if k.hidden == NoWindow {
		return
	}
	if k.st.open {
		for i := range k.pend {
			if k.pend[i].win == 0 {
				return
			}
		}
	}
	s.dropHidden(k, o)
}

func (s *Sequential) dropHidden(k *seqKey, o Observer) {
	if k.hidden != NoWindow {
		o.Reset(k.hidden)
		s.release(k.hidden)
		k.hidden = NoWindow
	}
}

// Advance implements Assigner.
func (s *Sequential) Advance(wm, lateness int64, o Observer, fire, closed func(id ID)) {
	if f := Frontier(wm, lateness); f > s.frontier {
		s.frontier = f
		// Take every due entry first (what settling files again is due
		// after f), load their keys' state in one pass so that the cache
		// misses overlap, then settle the keys in the order taken.
		due := s.settleQ.takeBefore(f, s.due[:0])
		for lo := 0; lo < len(due); lo += assignChunk {
			chunk := due[lo:min(lo+assignChunk, len(due))]
			// A level at a time, as in Assign: the records, then their
			// first pending events and first windows' IDs, then those
			// windows' slots.
			var sink int64
			for _, e := range chunk {
				if e.kn != noKey {
					r := &s.keys.recs[e.kn]
					sink += int64(touch(unsafe.Pointer(r), unsafe.Sizeof(*r)))
				}
			}
			wids := resize(&s.wids, len(chunk))
			for j, e := range chunk {
				wids[j] = NoWindow
				if e.kn == noKey {
					continue
				}
				k := &s.keys.recs[e.kn].v
				if len(k.pend) > 0 {
					sink += k.pend[0].t
				}
				if len(k.wins) > 0 {
					wids[j] = k.wins[0]
				}
			}
			for _, id := range wids {
				if id != NoWindow {
					sink += s.w[id].end
				}
			}
			s.sink += sink
			for _, e := range chunk {
				if !s.keys.valid(e.kn, e.gen) {
					continue // the key was forgotten since
				}
				if k := s.keys.at(e.kn); k.qAt == e.at {
					k.qAt = math.MaxInt64
					if s.settleAt(k) < f {
						s.settle(k, e.kn, o)
					}
					s.schedule(e.kn)
				}
			}
			s.forgetKeys()
		}
		s.due = due[:0]
		if s.unmatched > 0 {
			o.Unmatched(s.unmatched)
			s.unmatched = 0
		}
	}
	s.advance(wm, lateness, fire, func(id ID) {
		closed(id)
		kn := s.w[id].owner
		k := s.keys.at(kn)
		if k.st.open && len(k.wins) > 0 && k.wins[0] == id {
			// The frontier passed the settled open window's end, so no
			// event can join it any more: it closes as it is. (Its events
			// are all before the frontier, hence settled.)
			k.st.open = false
			s.dropHidden(k, o)
			k.wins = k.wins[:copy(k.wins, k.wins[1:])]
			for i := range k.pend {
				if k.pend[i].win > 0 {
					k.pend[i].win--
				}
			}
			if len(k.wins) == 0 && len(k.pend) == 0 {
				k.tail = k.st
			}
		}
		k.live--
		s.maybeForget(kn)
	})
	s.forgetKeys()
}

// forgetKeys removes the keys of forget from the key table.
func (s *Sequential) forgetKeys() {
	s.keys.removeAll(s.forget, &s.hashes)
	s.forget = s.forget[:0]
}

// settleAt is the time whose passing by the frontier makes k settle: its
// first pending event's. (The settled open window closes when the frontier
// passes its end, through the slots' queue.)
func (s *Sequential) settleAt(k *seqKey) int64 {
	if len(k.pend) > 0 {
		return k.pend[0].t
	}
	return math.MaxInt64
}

// schedule files key kn in the settle queue if it must settle earlier than
// its entry says (a later entry is filed again when it comes up).
func (s *Sequential) schedule(kn int32) {
	k := s.keys.at(kn)
	if at := s.settleAt(k); at < k.qAt {
		k.qAt = at
		s.settleQ.push(settleEntry{at: at, kn: kn, gen: s.keys.gen(kn)})
	}
}

// maybeForget drops key kn if it holds nothing any more: its room goes
// now, its entry in the key table a little later (see forget).
func (s *Sequential) maybeForget(kn int32) {
	k := s.keys.at(kn)
	if k.live == 0 && len(k.pend) == 0 && s.keys.recs[kn].used() {
		s.givePend(k)
		if cap(k.wins) > maxKeptWins {
			k.wins = nil
		}
		s.forget = append(s.forget, kn)
	}
}

// Room for pending events is pooled: a key that gets its first pending
// event takes an array from the pool, and gives it back when it has none
// left, so that pending events allocate nothing in the steady state and
// the room follows the keys with pending events, not all keys.
const (
	maxPooledPend = 2  // larger arrays (few keys have several pending events) are left to the garbage collector
	maxKeptWins   = 16 // the most windows' room a forgotten key's record keeps
)

// takePend returns empty room for pending events.
func (s *Sequential) takePend() []pendEvent {
	if n := len(s.pendPool); n > 0 {
		p := s.pendPool[n-1]
		s.pendPool[n-1] = nil
		s.pendPool = s.pendPool[:n-1]
		return p
	}
	return make([]pendEvent, 0, 1)
}

// givePend takes the room of k's pending events, which are none.
func (s *Sequential) givePend(k *seqKey) {
	if c := cap(k.pend); c > 0 && c <= maxPooledPend {
		s.pendPool = append(s.pendPool, k.pend[:0])
	}
	k.pend = nil
}

// settleEntry says key number kn (of generation gen: a forgotten key's
// entries never count) settles when the frontier passes at.
type settleEntry struct {
	at  int64
	kn  int32
	gen uint32
}

// settleQueue gives settle entries back in order of time, and entries of
// the same time in the order they were filed. That order decides the
// order keys settle in, hence which slots they get, so it must survive a
// checkpoint: Save writes the entries in the order they will be taken, and
// Load files them in that order. (Key numbers would not do: after a Load
// new keys get other numbers than they would have.)
//
// Like the slots' deadline queue it is a wheel of unsorted buckets in
// front of the entries already due (near), so that filing is an append
// and taking a few comparisons per entry; entries beyond the wheel (a key
// whose first pending event is more than 70 minutes past the frontier)
// wait, sorted, in far.
//
// Invariant: near (sorted) < horizon <= wheel < horizon + wheelSpan <=
// far (sorted), by time.
type settleQueue struct {
	near    []settleEntry
	horizon int64
	wheel   [][]settleEntry // bucket b (at / bucketWidth) at b & (wheelBuckets-1)
	inWheel int
	spare   [][]settleEntry
	far     []settleEntry
	count   [bucketWidth]int32 // scratch of sortBucket
}

func (q *settleQueue) len() int { return len(q.near) + q.inWheel + len(q.far) }

func (q *settleQueue) limit() int64 {
	if q.horizon == math.MaxInt64 {
		return math.MaxInt64
	}
	return q.horizon + wheelSpan
}

// push files e after every entry of its time or earlier.
func (q *settleQueue) push(e settleEntry) {
	if q.wheel == nil {
		q.wheel = make([][]settleEntry, wheelBuckets)
		q.horizon = min(e.at>>bucketShift<<bucketShift, maxHorizon)
	}
	switch {
	case e.at < q.horizon:
		q.near = insertAfter(q.near, e)
	case e.at < q.limit():
		q.file(e)
	default:
		q.far = insertAfter(q.far, e)
	}
}

// insertAfter inserts e into the sorted es after the entries of its time.
func insertAfter(es []settleEntry, e settleEntry) []settleEntry {
	i := len(es)
	if i > 0 && es[i-1].at > e.at {
		i, _ = slices.BinarySearchFunc(es, e.at, func(x settleEntry, at int64) int {
			if x.at <= at {
				return -1
			}
			return 1
		})
	}
	return slices.Insert(es, i, e)
}

func (q *settleQueue) file(e settleEntry) {
	b := &q.wheel[e.at>>bucketShift&(wheelBuckets-1)]
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

// advance moves the horizon to t or past it, while the wheel or far
// holds entries before t, moving the buckets passed into near: each
// sorted by time, stably, after what near holds. Past maxHorizon
// everything moves into near for good (horizon math.MaxInt64).
func (q *settleQueue) advance(t int64) {
	for q.horizon < t {
		if q.inWheel == 0 {
			if len(q.far) == 0 || q.far[0].at >= t {
				return
			}
			// Nothing in the wheel: move it to the first far entry.
			q.horizon = min(q.far[0].at>>bucketShift<<bucketShift, maxHorizon)
			q.refill()
			if q.inWheel > 0 {
				continue
			}
		}
		if q.horizon == maxHorizon {
			// Everything into near, for good (see deadlineQueue).
			for q.inWheel > 0 {
				q.moveBucket()
			}
			q.near = append(q.near, q.far...)
			q.far, q.horizon = nil, math.MaxInt64
			return
		}
		q.moveBucket()
		q.refill()
	}
}

// moveBucket moves the bucket at the horizon into near and the horizon
// past it.
func (q *settleQueue) moveBucket() {
	b := &q.wheel[q.horizon>>bucketShift&(wheelBuckets-1)]
	if len(*b) > 0 {
		q.near = q.sortBucket(q.near, *b)
		q.inWheel -= len(*b)
		if cap(*b) <= 4096 {
			q.spare = append(q.spare, (*b)[:0])
		}
		*b = nil
	}
	q.horizon += bucketWidth
}

// sortBucket appends the entries of one bucket to dst sorted by time,
// stably. Their times differ in the low bucketShift bits only, so a
// counting sort on those takes two passes, where a comparison sort of the
// ~100 entries of a second of events costs several times more.
func (q *settleQueue) sortBucket(dst, b []settleEntry) []settleEntry {
	if len(b) < 16 {
		i := len(dst)
		dst = append(dst, b...)
		s := dst[i:]
		for j := 1; j < len(s); j++ { // insertion sort: stable
			for k := j; k > 0 && s[k].at < s[k-1].at; k-- {
				s[k], s[k-1] = s[k-1], s[k]
			}
		}
		return dst
	}
	count := &q.count
	clear(count[:])
	for _, e := range b {
		count[e.at&(bucketWidth-1)]++
	}
	sum := int32(len(dst))
	for i, c := range count {
		count[i] = sum
		sum += c
	}
	dst = slices.Grow(dst, len(b))[:len(dst)+len(b)]
	for _, e := range b {
		i := &count[e.at&(bucketWidth-1)]
		dst[*i] = e
		*i++
	}
	return dst
}

// refill moves far entries the wheel now reaches into it.
func (q *settleQueue) refill() {
	lim := q.limit()
	n := 0
	for n < len(q.far) && q.far[n].at < lim {
		q.file(q.far[n])
		n++
	}
	q.far = q.far[:copy(q.far, q.far[n:])]
}

// takeBefore appends the entries before t to dst, in order, and removes
// them.
func (q *settleQueue) takeBefore(t int64, dst []settleEntry) []settleEntry {
	q.advance(t)
	n := 0
	for n < len(q.near) && q.near[n].at < t {
		n++
	}
	dst = append(dst, q.near[:n]...)
	q.near = q.near[:copy(q.near, q.near[n:])]
	return dst
}

// all appends every entry to dst in the order they will be taken.
func (q *settleQueue) all(dst []settleEntry) []settleEntry {
	dst = append(dst, q.near...)
	if q.inWheel > 0 {
		for h, n := q.horizon, 0; n < q.inWheel; h += bucketWidth {
			b := q.wheel[h>>bucketShift&(wheelBuckets-1)]
			dst = q.sortBucket(dst, b)
			n += len(b)
		}
	}
	return append(dst, q.far...)
}

// settle moves the key's pending events before the frontier into its
// settled state, in order.
func (s *Sequential) settle(k *seqKey, kn int32, o Observer) {
	f := s.frontier
	n := 0
	refs := s.refs[:0]
	decided := 0 // windows at the front of wins that are decided now
	flush := func() {
		if len(refs) == 0 {
			return
		}
		// The settled events of the open window: in lazy mode they go
		// into the window itself, else into its hidden settled part (the
		// window's own slot has them already).
		if s.lazy {
			o.Fold(k.wins[decided], refs)
		} else {
			o.Fold(k.hidden, refs)
		}
		refs = refs[:0]
	}
	closeOpen := func(end int64) {
		flush()
		id := k.wins[decided]
		s.setEnd(id, end, nil)
		decided++
		s.dropHidden(k, o)
	}
	for ; n < len(k.pend) && k.pend[n].t < f; n++ {
		e := &k.pend[n]
		r := s.m.step(&k.st, e)
		if r.closedPrev {
			closeOpen(r.prevEnd)
		}
		switch r.fate {
		case unmatched:
			s.unmatched++ // reported once per Advance
			continue
		case opened:
			if !s.lazy {
				k.hidden = s.alloc(noKey, 0, 0)
			}
		}
		refs = append(refs, e.ref)
		if r.closedWith {
			closeOpen(e.t)
		}
	}
	flush()
	s.refs = refs
	s.pending -= n
	// Keep the room of the settled events where that costs no more than
	// settling them did.
	switch rest := len(k.pend) - n; {
	case rest == 0:
		s.givePend(k)
	case rest <= n:
		k.pend = k.pend[:copy(k.pend, k.pend[n:])]
	default:
		k.pend = k.pend[n:]
	}
	for i := range k.pend {
		if k.pend[i].win >= 0 {
			k.pend[i].win -= int32(decided)
		}
	}
	k.wins = k.wins[:copy(k.wins, k.wins[decided:])]
	if len(k.wins) == 0 && len(k.pend) == 0 {
		k.tail = k.st
	}
	s.normalizeHidden(k, o)
	s.maybeForget(kn)
}

// Bounds implements Assigner.
func (s *Sequential) Bounds(id ID) (start, end int64) {
	s.mustLive(id)
	return s.w[id].start, s.w[id].end
}

// Key implements Assigner.
func (s *Sequential) Key(id ID) []byte {
	s.mustLive(id)
	return s.keys.key(s.w[id].owner)
}

// Open implements Assigner.
func (s *Sequential) Open() int { return s.open }

// Slots implements Assigner.
func (s *Sequential) Slots() int { return len(s.w) }

// seqKeyOverhead is a key's record with its seqKey, and its share of the
// key table's index.
const (
	seqKeyOverhead = keyRecOverhead + int64(unsafe.Sizeof(seqKey{}))
	pendBytes      = int64(unsafe.Sizeof(pendEvent{}))
)

// StateBytes implements Assigner.
func (s *Sequential) StateBytes() int64 {
	return int64(s.keys.len())*seqKeyOverhead + s.keys.bytes + int64(s.pending)*pendBytes + s.bytes()
}

// Save implements Assigner. It writes the machine and the lazy flag (Load
// checks them against its own), the frontier and the slot table's header;
// then the keys, numbered in the order written, each with its settled and
// tail states, hidden slot, settle queue entry, pending events and window
// IDs; then every slot, as its owner's number and the window, or 0 when it
// is no window; the free list; and the settle queue's entries in the
// order they will be taken, each naming its key by number or 0 for a key
// forgotten since. The queue is kept entry for entry, in order, because
// entries of the same time are taken in the order they were filed, and
// the order keys settle in decides which slots they get. (Checkpoints
// written when the queue was a binary heap list its entries in the heap's
// layout; they load, and entries of the same time are then taken in that
// order.)
func (s *Sequential) Save(w *snap.Writer) {
	if len(s.touched) != 0 {
		panic(fmt.Sprintf("windows: Sequential.Save inside Assign (%d keys touched)", len(s.touched)))
	}
	if len(s.forget) != 0 {
		panic(fmt.Sprintf("windows: Sequential.Save inside Advance (%d keys to forget)", len(s.forget)))
	}
	w.Section("windows.Sequential")
	kind, param := machineParams(s.m)
	w.Uint(kind)
	w.Int(param)
	w.Bool(s.lazy)
	w.Int(s.frontier)
	base := s.snapBase(s.frontier)
	s.saveHeader(w, base)
	w.Section("keys")
	w.Uint(uint64(s.keys.len()))
	// Keys are numbered in the order written; ords maps key numbers to
	// those.
	ords := resize(&s.ords, len(s.keys.recs))
	var ord int32
	s.keys.each(func(kn int32) {
		ords[kn] = ord
		ord++
		s.saveKey(w, kn, base)
	})
	w.Section("windows")
	for id := range s.w {
		kn := s.w[id].owner
		if kn == noKey {
			w.Uint(0)
			continue
		}
		w.Uint(uint64(ords[kn]) + 1)
		s.saveWindow(w, ID(id), base)
	}
	s.saveFree(w)
	w.Section("settle")
	s.due = s.settleQ.all(s.due[:0])
	w.Uint(uint64(len(s.due)))
	for _, e := range s.due {
		w.Int(e.at - base)
		if s.keys.valid(e.kn, e.gen) {
			w.Uint(uint64(ords[e.kn]) + 1)
		} else {
			w.Uint(0) // forgotten since
		}
	}
}

// Key flags in a checkpoint.
const (
	keyFresh  = 1 << iota // st is a new key's: nothing follows for it
	keyTailSt             // tail equals st: nothing follows for it
	keyHidden             // the hidden slot's ID follows
	keyQueued             // qAt follows
	keyFlags  = keyQueued<<1 - 1
)

// minSeqKeyBytes is the least a key takes: its length, flags and the
// counts of pending events and windows.
const minSeqKeyBytes = 4

// minPendBytes: time, gap, seq, flags and ref.
const minPendBytes = 5

func (s *Sequential) saveKey(w *snap.Writer, kn int32, base int64) {
	k := s.keys.at(kn)
	if k.batch != 0 {
		panic(fmt.Sprintf("windows: Sequential.Save inside Assign (key %q has batch events)", s.keys.key(kn)))
	}
	var f uint64
	fresh := k.st == seqState{lastStart: math.MinInt64}
	if fresh {
		f |= keyFresh
	}
	if k.tail == k.st {
		f |= keyTailSt
	}
	if k.hidden != NoWindow {
		f |= keyHidden
	}
	if k.qAt != math.MaxInt64 {
		f |= keyQueued
	}
	w.Blob(s.keys.key(kn))
	w.Uint(f)
	if !fresh {
		saveState(w, &k.st, base)
	}
	if k.tail != k.st {
		saveState(w, &k.tail, base)
	}
	if k.hidden != NoWindow {
		w.Uint(uint64(k.hidden))
	}
	if k.qAt != math.MaxInt64 {
		w.Int(k.qAt - base)
	}
	w.Uint(uint64(len(k.pend)))
	prevT, prevSeq := base, int64(0)
	for i := range k.pend {
		e := &k.pend[i]
		w.Int(e.t - prevT)
		w.Int(e.gap)
		w.Int(e.seq - prevSeq)
		w.Uint(uint64(e.win+1)<<2 | b2u(e.start)<<1 | b2u(e.end))
		w.Uint(e.ref)
		prevT, prevSeq = e.t, e.seq
	}
	w.Uint(uint64(len(k.wins)))
	for _, id := range k.wins {
		w.Uint(uint64(id))
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func saveState(w *snap.Writer, st *seqState, base int64) {
	w.Bool(st.open)
	w.Int(st.start - base)
	w.Int(st.end - base)
	w.Int(st.last - base)
	w.Int(st.lastStart - base)
}

func loadState(r *snap.Reader, base int64) seqState {
	return seqState{open: r.Bool(), start: base + r.Int(), end: base + r.Int(), last: base + r.Int(), lastStart: base + r.Int()}
}

func machineParams(m machine) (kind uint64, param int64) { return m.kind, m.param }

func machineName(m machine) string {
	switch m.kind {
	case eventKind:
		return fmt.Sprintf("EVENT_WINDOW TIMEOUT %d", m.param)
	case maxSessionKind:
		return fmt.Sprintf("SESSION MAX %d", m.param)
	}
	return fmt.Sprintf("machine %d", m.kind)
}

// Load implements Assigner. Besides what the encoding itself ensures, it
// checks what Assign and Advance rely on: every slot is named once (a
// window of one key, a key's hidden slot, or free); keys are distinct and
// hold something; each key's pending events are sorted and not before the
// frontier, and running the machine from its settled state over them gives
// exactly its windows (IDs of its own live windows, with their bounds),
// the events' windows and its tail state; it has a hidden slot exactly
// when it needs one; and its settle queue entry is in the queue. The
// cost is linear in the state.
func (s *Sequential) Load(r *snap.Reader) error {
	t := newSequential(s.m)
	t.lazy = s.lazy
	r.Section("windows.Sequential")
	kind, param := r.Uint(), r.Int()
	lazy := r.Bool()
	if r.Err() != nil {
		return r.Err()
	}
	if kind != eventKind && kind != maxSessionKind {
		return r.Failf("unknown window kind %d", kind)
	}
	m := machine{kind: kind, param: param}
	if m != s.m {
		return r.Failf("snapshot of %s loaded into %s", machineName(m), machineName(s.m))
	}
	if lazy != s.lazy {
		return r.Failf("snapshot with lazy=%t loaded into an assigner with lazy=%t", lazy, s.lazy)
	}
	t.frontier = r.Int()
	base := t.loadHeader(r)
	r.Section("keys")
	n := r.Len(minSeqKeyBytes)
	if r.Err() != nil {
		return r.Err()
	}
	byOrd := make([]int32, n) // key numbers
	for i := range byOrd {
		key, k := t.loadKey(r, base)
		if r.Err() != nil {
			return r.Err()
		}
		kn, h := t.keys.find(key)
		if kn != noKey {
			return r.Failf("key %q twice", key)
		}
		kn = t.keys.insert(key, h)
		*t.keys.at(kn) = k
		byOrd[i] = kn
		t.pending += len(k.pend)
	}
	r.Section("windows")
	for id := range t.w {
		o := r.Uint()
		if r.Err() != nil {
			return r.Err()
		}
		if o == 0 {
			continue
		}
		if o > uint64(n) {
			return r.Failf("window %d of key number %d (%d keys)", id, o-1, n)
		}
		kn := byOrd[o-1]
		t.loadWindow(r, ID(id), kn, base)
		t.keys.at(kn).live++
	}
	t.loadFree(r)
	r.Section("settle")
	nq := r.Len(2)
	if r.Err() != nil {
		return r.Err()
	}
	queued := make([]bool, n) // the key's entry (at == qAt) is in the queue
	for i := range nq {
		at, o := base+r.Int(), r.Uint()
		if r.Err() != nil {
			return r.Err()
		}
		if at == math.MaxInt64 || o > uint64(n) {
			return r.Failf("settle queue entry %d: key number %d at %d", i, int64(o)-1, at)
		}
		e := settleEntry{at: at, kn: noKey} // a key forgotten since: never counts
		if o > 0 {
			e.kn = byOrd[o-1]
			e.gen = t.keys.gen(e.kn)
			queued[o-1] = queued[o-1] || at == t.keys.at(e.kn).qAt
		}
		t.settleQ.push(e)
	}
	for i, kn := range byOrd {
		if err := t.checkKey(r, kn, queued[i]); err != nil {
			return err
		}
	}
	t.finishLoad(r)
	if r.Err() != nil {
		return r.Err()
	}
	*s = *t
	return nil
}

// loadKey reads what saveKey wrote; the hidden slot is claimed, the
// windows are checked by checkKey.
func (s *Sequential) loadKey(r *snap.Reader, base int64) ([]byte, seqKey) {
	key := r.Blob()
	k := seqKey{hidden: NoWindow, qAt: math.MaxInt64}
	f := r.Uint()
	if r.Err() != nil {
		return nil, k
	}
	if f&^keyFlags != 0 {
		r.Failf("key %q: bad flags %#x", key, f)
		return nil, k
	}
	k.st = seqState{lastStart: math.MinInt64}
	if f&keyFresh == 0 {
		k.st = loadState(r, base)
	}
	k.tail = k.st
	if f&keyTailSt == 0 {
		k.tail = loadState(r, base)
	}
	if f&keyHidden != 0 {
		k.hidden = s.readID(r)
		s.claim(r, k.hidden)
	}
	if f&keyQueued != 0 {
		k.qAt = base + r.Int()
	}
	if np := r.Len(minPendBytes); np > 0 {
		k.pend = make([]pendEvent, np)
		prevT, prevSeq := base, int64(0)
		for i := range k.pend {
			e := &k.pend[i]
			e.t = prevT + r.Int()
			e.gap = r.Int()
			e.seq = prevSeq + r.Int()
			pf := r.Uint()
			e.ref = r.Uint()
			if pf>>2 > math.MaxInt32 {
				r.Failf("key %q: pending event %d in window %d", key, i, pf>>2)
			}
			e.win = int32(pf>>2) - 1
			e.start, e.end = pf&2 != 0, pf&1 != 0
			prevT, prevSeq = e.t, e.seq
		}
	}
	if nw := r.Len(1); nw > 0 {
		k.wins = make([]ID, nw)
		for i := range k.wins {
			k.wins[i] = s.readID(r)
		}
	}
	return key, k
}

// checkKey checks a loaded key against the slot table and its own
// pending events (see Load); queued says whether its settle queue entry
// is in the queue.
func (s *Sequential) checkKey(r *snap.Reader, kn int32, queued bool) error {
	if r.Err() != nil {
		return r.Err()
	}
	k, key := s.keys.at(kn), s.keys.key(kn)
	if k.live == 0 && len(k.pend) == 0 {
		return r.Failf("key %q holds nothing", key)
	}
	for i := range k.pend {
		e := &k.pend[i]
		if e.t < s.frontier || i > 0 && e.before(k.pend[i-1].t, k.pend[i-1].seq) {
			return r.Failf("key %q: pending event %d at (%d, %d) out of order (frontier %d)", key, i, e.t, e.seq, s.frontier)
		}
	}
	switch {
	case len(k.pend) == 0 && k.qAt != math.MaxInt64:
		return r.Failf("key %q: settles at %d without pending events", key, k.qAt)
	case len(k.pend) > 0 && (k.qAt > k.pend[0].t || !queued):
		return r.Failf("key %q: settle entry at %d (queued %t) for its first pending event at %d", key, k.qAt, queued, k.pend[0].t)
	}
	for _, id := range k.wins {
		// gen is 1 for a claimed slot while loading; 2 marks a window
		// already seen in a key's list.
		if s.w[id].owner != kn || s.w[id].gen != 1 {
			return r.Failf("key %q: window %d is not its own or listed twice", key, id)
		}
		s.w[id].gen = 2
	}
	needHidden := false
	if k.st.open && !s.lazy {
		for i := range k.pend {
			needHidden = needHidden || k.pend[i].win == 0
		}
	}
	if (k.hidden != NoWindow) != needHidden {
		return r.Failf("key %q: hidden slot %d, want one: %t", key, k.hidden, needHidden)
	}
	// Run the machine as recompute does.
	run := s.run[:0]
	st := k.st
	if st.open {
		run = append(run, runWin{start: st.start, end: s.m.end(&st)})
	}
	for i := range k.pend {
		e := &k.pend[i]
		res := s.m.step(&st, e)
		if res.closedPrev && len(run) > 0 {
			run[len(run)-1].end = res.prevEnd
		}
		win := int32(-1)
		if res.fate == opened {
			run = append(run, runWin{start: e.t})
		}
		if res.fate != unmatched && len(run) > 0 {
			win = int32(len(run) - 1)
			if res.closedWith {
				run[win].end = e.t
			} else {
				run[win].end = s.m.end(&st)
			}
		}
		if e.win != win {
			return r.Failf("key %q: pending event %d in window %d, want %d", key, i, e.win, win)
		}
	}
	s.run = run
	if st != k.tail || len(run) != len(k.wins) {
		return r.Failf("key %q: %d windows and tail %+v, want %d and %+v", key, len(k.wins), k.tail, len(run), st)
	}
	for j, w := range run {
		if id := k.wins[j]; s.w[id].start != w.start || s.w[id].end != w.end {
			return r.Failf("key %q: window %d [%d, %d), want [%d, %d)", key, id, s.w[id].start, s.w[id].end, w.start, w.end)
		}
	}
	return nil
}
