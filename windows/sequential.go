package windows

import (
	"container/heap"
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
	keys map[string]*seqKey
	slots[seqKey]

	frontier int64 // of the last Advance
	keyBytes int64
	pending  int // pending events over all keys

	// lazy: no caller reads a window before the frontier has passed its
	// events (allowed lateness 0 and EMIT FINAL), so pending events are
	// folded only when they settle, straight into their window's slot, and
	// no hidden slots are needed.
	lazy bool

	// settleQ holds keys by when the frontier passing a time makes them
	// settle: their first pending event, or their open window's end.
	settleQ settleHeap

	// scratch
	run     []runWin
	refs    []uint64
	touched []*seqKey // keys with a non-empty batch
}

// NewEventWindow returns the EVENT_WINDOW assigner; timeout 0 means none.
func NewEventWindow(timeout int64) *Sequential {
	return newSequential(eventMachine{timeout: timeout})
}

// NewSessionMax returns the SESSION assigner with MAX max: a session is cut
// when an event would make it span more than max; the event opens the next
// one. A gap larger than max is taken as max.
func NewSessionMax(max int64) *Sequential {
	return newSequential(maxSessionMachine{max: max})
}

func newSequential(m machine) *Sequential {
	return &Sequential{m: m, keys: make(map[string]*seqKey), frontier: math.MinInt64}
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

// machine is a sequential window kind.
type machine interface {
	step(st *seqState, e *pendEvent) step
	// end is the open window's end as far as known (NoEnd if unknown).
	// The frontier passing it closes the window.
	end(st *seqState) int64
}

// eventMachine is EVENT_WINDOW, see SPEC.md.
type eventMachine struct{ timeout int64 }

func (m eventMachine) step(st *seqState, e *pendEvent) (r step) {
	if st.open && m.timeout > 0 && e.t > satAdd(st.last, m.timeout) {
		r.closedPrev, r.prevEnd = true, satAdd(st.last, m.timeout)
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

func (m eventMachine) end(st *seqState) int64 {
	if m.timeout == 0 {
		return NoEnd
	}
	return satAdd(st.last, m.timeout)
}

// maxSessionMachine is SESSION(ts, gap, MAX max).
type maxSessionMachine struct{ max int64 }

func (m maxSessionMachine) step(st *seqState, e *pendEvent) (r step) {
	hi := satAdd(e.t, min(e.gap, m.max))
	if st.open && e.t <= st.end && max(st.end, hi)-st.start <= m.max {
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

func (m maxSessionMachine) end(st *seqState) int64 { return st.end }

// seqKey is one group key's state.
type seqKey struct {
	key    string
	st     seqState    // after every settled event
	hidden ID          // settled part of wins[0] while it has pending events
	ord    int32       // the key's index in the last Save or Load; -1 once forgotten
	pend   []pendEvent // sorted by (t, seq)
	wins   []ID        // windows over pend given st; wins[0] continues st's open window if st.open
	tail   seqState    // after st and every pending event
	live   int         // live windows of the key: wins and decided ones not yet closed

	batch []batchEvent // events of the current Assign call given out as Assigned
	qAt   int64        // the settle queue entry that counts; math.MaxInt64: none
}

type batchEvent struct {
	i   int32 // index in the batch
	ref uint64
}

type pendEvent struct {
	t, gap, seq int64
	start, end  bool
	ref         uint64
	win         int32 // index in wins, -1 when in no window
}

func (e *pendEvent) before(t, seq int64) bool { return e.t < t || (e.t == t && e.seq < seq) }

// Assign implements Assigner.
func (s *Sequential) Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, o Observer) {
	for i := range events {
		ids[i], outs[i] = s.assign(keys[i], &events[i], i, ids, outs, o)
	}
	for _, k := range s.touched {
		k.batch = k.batch[:0]
	}
	s.touched = s.touched[:0]
}

func (s *Sequential) assign(key []byte, ev *Event, i int, ids []ID, outs []Outcome, o Observer) (ID, Outcome) {
	if ev.Time < s.frontier {
		return NoWindow, Late
	}
	k := s.keys[string(key)]
	if k == nil {
		k = &seqKey{key: string(key), hidden: NoWindow, st: seqState{lastStart: math.MinInt64}, qAt: math.MaxInt64}
		k.tail = k.st
		s.keys[k.key] = k
		s.keyBytes += int64(len(key))
	}
	e := pendEvent{t: ev.Time, gap: ev.Gap, seq: ev.Seq, start: ev.Start, end: ev.End, ref: ev.Ref, win: -1}
	s.pending++
	if n := len(k.pend); n == 0 || k.pend[n-1].before(e.t, e.seq) {
		id, out := s.appendEvent(k, e, o)
		if out == Assigned {
			if len(k.batch) == 0 {
				s.touched = append(s.touched, k)
			}
			k.batch = append(k.batch, batchEvent{i: int32(i), ref: e.ref})
		}
		if n == 0 {
			s.schedule(k)
		}
		return id, out
	}
	// Events of this batch already Assigned to the key's windows are not
	// folded yet (the caller folds the batch after Assign); fold them now,
	// so that every pending event is in its window before the windows are
	// recomputed.
	for _, b := range k.batch {
		o.Fold(ids[b.i], []uint64{b.ref})
		o.Changed(ids[b.i], 1)
		ids[b.i], outs[b.i] = NoWindow, Deferred
	}
	k.batch = k.batch[:0]
	p, _ := slices.BinarySearchFunc(k.pend, e, func(a, b pendEvent) int {
		if a.before(b.t, b.seq) {
			return -1
		}
		return 1
	})
	k.pend = slices.Insert(k.pend, p, e)
	s.recompute(k, p, o)
	if p == 0 {
		s.schedule(k)
	}
	return NoWindow, Deferred
}

// appendEvent is the fast path for an event after every pending event of
// its key: one step from the tail state.
func (s *Sequential) appendEvent(k *seqKey, e pendEvent, o Observer) (ID, Outcome) {
	r := s.m.step(&k.tail, &e)
	last := len(k.wins) - 1
	if r.closedPrev {
		s.setEnd(k.wins[last], r.prevEnd, o)
	}
	var id ID
	switch r.fate {
	case unmatched:
		k.pend = append(k.pend, e)
		return NoWindow, Deferred
	case joined:
		id = k.wins[last]
		e.win = int32(last)
		if !s.lazy && last == 0 && k.st.open && k.hidden == NoWindow {
			// wins[0] gets its first pending event: keep its settled part.
			k.hidden = s.alloc(nil, 0, 0)
			o.Copy(k.hidden, id)
		}
	case opened:
		id = s.alloc(k, e.t, NoEnd)
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
	if s.end[id] == end {
		return
	}
	s.end[id] = end
	s.track(id)
	if o != nil {
		o.Changed(id, 0)
	}
}

// runWin is one window of a recomputation.
type runWin struct {
	start, end int64
	old        ID // the existing window with this start, or NoWindow
}

// recompute runs the machine from the settled state over every pending
// event after an event was inserted at index p, and brings the windows and
// their slots in line: a window whose events are its old ones plus the new
// event gets the new event folded in; one whose events changed otherwise is
// rebuilt; windows that no longer exist are gone.
func (s *Sequential) recompute(k *seqKey, p int, o Observer) {
	// wins[0], if it continues the settled window, may be rebuilt below:
	// it needs its settled part apart.
	if !s.lazy && k.st.open && k.hidden == NoWindow {
		k.hidden = s.alloc(nil, 0, 0)
		o.Copy(k.hidden, k.wins[0])
	}
	oldWin := make([]int32, len(k.pend)) // each event's window before, by new index
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
	used := make([]bool, len(k.wins))
	for j := range run {
		run[j].old = NoWindow
		for i, id := range k.wins {
			if !used[i] && s.start[id] == run[j].start {
				run[j].old, used[i] = id, true
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
	oldIndex := make(map[ID]int32, len(k.wins))
	for i, id := range k.wins {
		oldIndex[id] = int32(i)
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
			oi := oldIndex[id]
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
				id = s.alloc(k, w.start, w.end)
				k.live++
			} else {
				s.start[id] = w.start
				s.setEnd(id, w.end, nil)
			}
		case same:
			if s.start[id] != w.start || s.end[id] != w.end {
				s.start[id] = w.start
				s.setEnd(id, w.end, o)
			}
		case plusNew:
			s.start[id] = w.start
			s.setEnd(id, w.end, nil)
			o.Fold(id, []uint64{k.pend[p].ref})
			o.Changed(id, 1)
		default:
			if id == NoWindow {
				id = s.alloc(k, w.start, w.end)
				k.live++
			} else {
				o.Reset(id)
				s.start[id] = w.start
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
		for len(s.settleQ) > 0 && s.settleQ[0].at < f {
			e := heap.Pop(&s.settleQ).(settleEntry)
			if k := e.k; k.qAt == e.at {
				k.qAt = math.MaxInt64
				if s.settleAt(k) < f {
					s.settle(k, o)
				}
				s.schedule(k)
			}
		}
	}
	s.advance(wm, lateness, fire, func(id ID) {
		closed(id)
		k := s.owner[id]
		if k.st.open && len(k.wins) > 0 && k.wins[0] == id {
			// The frontier passed the settled open window's end, so no
			// event can join it any more: it closes as it is. (Its events
			// are all before the frontier, hence settled.)
			k.st.open = false
			s.dropHidden(k, o)
			k.wins = k.wins[1:]
			for i := range k.pend {
				if k.pend[i].win > 0 {
					k.pend[i].win--
				}
			}
			if len(k.wins) == 0 && len(k.pend) == 0 {
				k.wins, k.tail = nil, k.st
			}
		}
		k.live--
		s.maybeForget(k)
	})
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

// schedule files k in the settle queue if it must settle earlier than its
// entry says (a later entry is filed again when it comes up).
func (s *Sequential) schedule(k *seqKey) {
	if at := s.settleAt(k); at < k.qAt {
		k.qAt = at
		heap.Push(&s.settleQ, settleEntry{at: at, k: k})
	}
}

// maybeForget drops a key that holds nothing any more.
func (s *Sequential) maybeForget(k *seqKey) {
	if k.live == 0 && len(k.pend) == 0 && s.keys[k.key] == k {
		delete(s.keys, k.key)
		s.keyBytes -= int64(len(k.key))
		k.ord = -1 // Save tells the settle queue's stale entries by it
	}
}

type settleEntry struct {
	at int64
	k  *seqKey
}

type settleHeap []settleEntry

func (h settleHeap) Len() int           { return len(h) }
func (h settleHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h settleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *settleHeap) Push(x any)        { *h = append(*h, x.(settleEntry)) }
func (h *settleHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// settle moves the key's pending events before the frontier into its
// settled state, in order.
func (s *Sequential) settle(k *seqKey, o Observer) {
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
			o.Unmatched(1)
			continue
		case opened:
			if !s.lazy {
				k.hidden = s.alloc(nil, 0, 0)
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
	k.pend = k.pend[n:]
	if len(k.pend) == 0 {
		k.pend = nil // let the backing array go
	}
	for i := range k.pend {
		if k.pend[i].win >= 0 {
			k.pend[i].win -= int32(decided)
		}
	}
	k.wins = k.wins[decided:]
	if len(k.wins) == 0 {
		k.wins = nil
	}
	if len(k.wins) == 0 && len(k.pend) == 0 {
		k.tail = k.st
	}
	s.normalizeHidden(k, o)
	s.maybeForget(k)
}

// Bounds implements Assigner.
func (s *Sequential) Bounds(id ID) (start, end int64) {
	s.mustLive(id)
	return s.start[id], s.end[id]
}

// Key implements Assigner.
func (s *Sequential) Key(id ID) []byte {
	s.mustLive(id)
	return unsafe.Slice(unsafe.StringData(s.owner[id].key), len(s.owner[id].key))
}

// Open implements Assigner.
func (s *Sequential) Open() int { return s.open }

// Slots implements Assigner.
func (s *Sequential) Slots() int { return len(s.start) }

// seqKeyOverhead: a map entry (~48 B), a seqKey (~150 B).
const (
	seqKeyOverhead = 48 + 150
	pendBytes      = int64(unsafe.Sizeof(pendEvent{}))
)

// StateBytes implements Assigner.
func (s *Sequential) StateBytes() int64 {
	return int64(len(s.keys))*seqKeyOverhead + s.keyBytes + int64(s.pending)*pendBytes + s.bytes()
}

// Save implements Assigner. It writes the machine and the lazy flag (Load
// checks them against its own), the frontier and the slot table's header;
// then the keys, numbered in the order written, each with its settled and
// tail states, hidden slot, settle queue entry, pending events and window
// IDs; then every slot, as its owner's number and the window, or 0 when it
// is no window; the free list; and the settle queue as it lies in memory,
// each entry naming its key by number or 0 for a key forgotten since. The
// queue is kept entry for entry because entries with the same time pop in
// an order that depends on the heap's layout, and the order keys settle in
// decides which slots they get.
func (s *Sequential) Save(w *snap.Writer) {
	if len(s.touched) != 0 {
		panic(fmt.Sprintf("windows: Sequential.Save inside Assign (%d keys touched)", len(s.touched)))
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
	w.Uint(uint64(len(s.keys)))
	var ord int32
	for _, k := range s.keys {
		k.ord = ord
		ord++
		s.saveKey(w, k, base)
	}
	w.Section("windows")
	for id, k := range s.owner {
		if k == nil {
			w.Uint(0)
			continue
		}
		w.Uint(uint64(k.ord) + 1)
		s.saveWindow(w, ID(id), base)
	}
	s.saveFree(w)
	w.Section("settle")
	w.Uint(uint64(len(s.settleQ)))
	for _, e := range s.settleQ {
		w.Int(e.at - base)
		w.Uint(uint64(e.k.ord + 1))
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

func (s *Sequential) saveKey(w *snap.Writer, k *seqKey, base int64) {
	if len(k.batch) != 0 {
		panic(fmt.Sprintf("windows: Sequential.Save inside Assign (key %q has %d batch events)", k.key, len(k.batch)))
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
	w.String(k.key)
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

func machineParams(m machine) (kind uint64, param int64) {
	switch m := m.(type) {
	case eventMachine:
		return 0, m.timeout
	case maxSessionMachine:
		return 1, m.max
	}
	panic(fmt.Sprintf("windows: unknown machine %T", m))
}

func machineName(m machine) string {
	switch m := m.(type) {
	case eventMachine:
		return fmt.Sprintf("EVENT_WINDOW TIMEOUT %d", m.timeout)
	case maxSessionMachine:
		return fmt.Sprintf("SESSION MAX %d", m.max)
	}
	return fmt.Sprintf("%T", m)
}

// forgottenKey stands for a key forgotten after it was filed in the settle
// queue: its entries never count (qAt is never an entry's time) and it is
// never changed.
var forgottenKey = &seqKey{key: "(forgotten)", hidden: NoWindow, ord: -1, qAt: math.MaxInt64}

// Load implements Assigner. Besides what the encoding itself ensures, it
// checks what Assign and Advance rely on: every slot is named once (a
// window of one key, a key's hidden slot, or free); keys are distinct and
// hold something; each key's pending events are sorted and not before the
// frontier, and running the machine from its settled state over them gives
// exactly its windows (IDs of its own live windows, with their bounds),
// the events' windows and its tail state; it has a hidden slot exactly
// when it needs one; its settle queue entry is in the queue; and the
// queue is a heap. The cost is linear in the state.
func (s *Sequential) Load(r *snap.Reader) error {
	t := newSequential(s.m)
	t.lazy = s.lazy
	r.Section("windows.Sequential")
	kind, param := r.Uint(), r.Int()
	lazy := r.Bool()
	if r.Err() != nil {
		return r.Err()
	}
	var m machine
	switch kind {
	case 0:
		m = eventMachine{timeout: param}
	case 1:
		m = maxSessionMachine{max: param}
	default:
		return r.Failf("unknown window kind %d", kind)
	}
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
	t.keys = make(map[string]*seqKey, n)
	byOrd := make([]*seqKey, n)
	for i := range byOrd {
		k := t.loadKey(r, base, int32(i))
		if r.Err() != nil {
			return r.Err()
		}
		if t.keys[k.key] = k; len(t.keys) != i+1 {
			return r.Failf("key %q twice", k.key)
		}
		byOrd[i] = k
		t.keyBytes += int64(len(k.key))
		t.pending += len(k.pend)
	}
	r.Section("windows")
	for id := range t.start {
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
		k := byOrd[o-1]
		t.loadWindow(r, ID(id), k, base)
		k.live++
	}
	t.loadFree(r)
	r.Section("settle")
	nq := r.Len(2)
	if r.Err() != nil {
		return r.Err()
	}
	t.settleQ = make(settleHeap, nq)
	queued := make([]bool, n) // the key's entry (at == qAt) is in the queue
	for i := range t.settleQ {
		at, o := base+r.Int(), r.Uint()
		if r.Err() != nil {
			return r.Err()
		}
		if at == math.MaxInt64 || o > uint64(n) {
			return r.Failf("settle queue entry %d: key number %d at %d", i, int64(o)-1, at)
		}
		k := forgottenKey
		if o > 0 {
			k = byOrd[o-1]
			queued[o-1] = queued[o-1] || at == k.qAt
		}
		t.settleQ[i] = settleEntry{at: at, k: k}
		if p := (i - 1) / 2; i > 0 && t.settleQ.Less(i, p) {
			return r.Failf("settle queue entry %d at %d before its parent's %d", i, at, t.settleQ[p].at)
		}
	}
	for i, k := range byOrd {
		if err := t.checkKey(r, k, queued[i]); err != nil {
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
func (s *Sequential) loadKey(r *snap.Reader, base int64, ord int32) *seqKey {
	k := &seqKey{key: r.String(), hidden: NoWindow, ord: ord, qAt: math.MaxInt64}
	f := r.Uint()
	if r.Err() != nil {
		return nil
	}
	if f&^keyFlags != 0 {
		r.Failf("key %q: bad flags %#x", k.key, f)
		return nil
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
				r.Failf("key %q: pending event %d in window %d", k.key, i, pf>>2)
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
	return k
}

// checkKey checks a loaded key against the slot table and its own
// pending events (see Load); queued says whether its settle queue entry
// is in the queue.
func (s *Sequential) checkKey(r *snap.Reader, k *seqKey, queued bool) error {
	if r.Err() != nil {
		return r.Err()
	}
	if k.live == 0 && len(k.pend) == 0 {
		return r.Failf("key %q holds nothing", k.key)
	}
	for i := range k.pend {
		e := &k.pend[i]
		if e.t < s.frontier || i > 0 && e.before(k.pend[i-1].t, k.pend[i-1].seq) {
			return r.Failf("key %q: pending event %d at (%d, %d) out of order (frontier %d)", k.key, i, e.t, e.seq, s.frontier)
		}
	}
	switch {
	case len(k.pend) == 0 && k.qAt != math.MaxInt64:
		return r.Failf("key %q: settles at %d without pending events", k.key, k.qAt)
	case len(k.pend) > 0 && (k.qAt > k.pend[0].t || !queued):
		return r.Failf("key %q: settle entry at %d (queued %t) for its first pending event at %d", k.key, k.qAt, queued, k.pend[0].t)
	}
	for _, id := range k.wins {
		// gen is 1 for a claimed slot while loading; 2 marks a window
		// already seen in a key's list.
		if s.owner[id] != k || s.gen[id] != 1 {
			return r.Failf("key %q: window %d is not its own or listed twice", k.key, id)
		}
		s.gen[id] = 2
	}
	needHidden := false
	if k.st.open && !s.lazy {
		for i := range k.pend {
			needHidden = needHidden || k.pend[i].win == 0
		}
	}
	if (k.hidden != NoWindow) != needHidden {
		return r.Failf("key %q: hidden slot %d, want one: %t", k.key, k.hidden, needHidden)
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
			return r.Failf("key %q: pending event %d in window %d, want %d", k.key, i, e.win, win)
		}
	}
	s.run = run
	if st != k.tail || len(run) != len(k.wins) {
		return r.Failf("key %q: %d windows and tail %+v, want %d and %+v", k.key, len(k.wins), k.tail, len(run), st)
	}
	for j, w := range run {
		if id := k.wins[j]; s.start[id] != w.start || s.end[id] != w.end {
			return r.Failf("key %q: window %d [%d, %d), want [%d, %d)", k.key, id, s.start[id], s.end[id], w.start, w.end)
		}
	}
	return nil
}
