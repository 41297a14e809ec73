package windows

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// asgKind is one way to build an assigner, with the lateness its caller
// advances with.
type asgKind struct {
	name     string
	new      func() Assigner
	lateness int64
	dynGap   bool // per-event gaps
}

func asgKinds() []asgKind {
	lazy := func(s *Sequential) Assigner { s.SetLazy(true); return s }
	return []asgKind{
		{"session/L0", func() Assigner { return NewSession() }, 0, false},
		{"session/L3s", func() Assigner { return NewSession() }, 3_000, false},
		{"session-dyngap/L0", func() Assigner { return NewSession() }, 0, true},
		{"session-dyngap/L3s", func() Assigner { return NewSession() }, 3_000, true},
		{"event-timeout/L0", func() Assigner { return NewEventWindow(2_000) }, 0, false},
		{"event-timeout/L3s", func() Assigner { return NewEventWindow(2_000) }, 3_000, false},
		{"event-timeout/lazy", func() Assigner { return lazy(NewEventWindow(2_000)) }, 0, false},
		{"event/L0", func() Assigner { return NewEventWindow(0) }, 0, false},
		{"event/L3s", func() Assigner { return NewEventWindow(0) }, 3_000, false},
		{"event/lazy", func() Assigner { return lazy(NewEventWindow(0)) }, 0, false},
		{"session-max/L0", func() Assigner { return NewSessionMax(5_000) }, 0, true},
		{"session-max/L3s", func() Assigner { return NewSessionMax(5_000) }, 3_000, true},
		{"session-max/lazy", func() Assigner { return lazy(NewSessionMax(5_000)) }, 0, true},
	}
}

// asgOp is one call: an Assign batch, or an Advance when events is nil.
type asgOp struct {
	keys         [][]byte
	events       []Event
	wm, lateness int64
}

// asgOps generates a workload: batches of events over a few dozen keys,
// out of order within a bound (and now and then beyond it, so some are
// late), with Advance calls in between and a last one that closes
// everything that can close. Every few seeds the lateness changes between
// calls, which the slot queue's entries must survive too.
func asgOps(rng *rand.Rand, k asgKind, n int) []asgOp {
	var ops []asgOp
	clock, seq := int64(1_700_000_000_000), int64(0)
	bound := int64(rng.IntN(3_000))
	nkeys := 5 + rng.IntN(40)
	varyLateness := rng.IntN(4) == 0
	for range n {
		if rng.IntN(3) == 0 {
			l := k.lateness
			if varyLateness && l > 0 {
				l = rng.Int64N(2 * l)
			}
			ops = append(ops, asgOp{wm: clock - bound, lateness: l})
			continue
		}
		var op asgOp
		for range 1 + rng.IntN(30) {
			clock += int64(rng.IntN(120))
			seq++
			t := clock - rng.Int64N(bound+1)
			if rng.IntN(50) == 0 {
				t -= 4 * bound // likely late
			}
			gap := int64(1_000)
			if k.dynGap {
				gap = rng.Int64N(3_000)
			}
			op.keys = append(op.keys, fmt.Appendf(nil, "k%d", rng.IntN(nkeys)))
			op.events = append(op.events, Event{Time: t, Gap: gap, Seq: seq, Start: rng.IntN(4) == 0, End: rng.IntN(6) == 0, Ref: uint64(seq)})
		}
		ops = append(ops, op)
	}
	return append(ops, asgOp{wm: math.MaxInt64, lateness: k.lateness})
}

// asgRecorder is an Observer that writes down every call, and what the
// caller sees of the assigner, in one log per operation. (strconv rather
// than fmt: the differential test logs a few million lines.)
type asgRecorder struct {
	a   Assigner
	log []byte
}

func (o *asgRecorder) line(what string, xs ...int64) {
	o.log = append(o.log, what...)
	for _, x := range xs {
		o.log = append(o.log, ' ')
		o.log = strconv.AppendInt(o.log, x, 10)
	}
	o.log = append(o.log, '\n')
}

func (o *asgRecorder) Merge(into, from ID) { o.line("merge", int64(into), int64(from)) }
func (o *asgRecorder) Fold(id ID, refs []uint64) {
	o.line("fold", int64(id))
	for _, r := range refs {
		o.line("  ref", int64(r))
	}
}
func (o *asgRecorder) Copy(dst, src ID)     { o.line("copy", int64(dst), int64(src)) }
func (o *asgRecorder) Reset(id ID)          { o.line("reset", int64(id)) }
func (o *asgRecorder) Changed(id ID, n int) { o.line("changed", int64(id), int64(n)) }
func (o *asgRecorder) Gone(id ID)           { o.line("gone", int64(id)) }
func (o *asgRecorder) Unmatched(n int)      { o.line("unmatched", int64(n)) }

// window logs a live window: its ID, key and bounds.
func (o *asgRecorder) window(what string, id ID) {
	st, en := o.a.Bounds(id)
	o.log = append(o.log, o.a.Key(id)...)
	o.line(" "+what, int64(id), st, en)
}

// run applies op and returns the log: observer calls, outcomes, fires and
// closes, then the state the caller can see.
func (o *asgRecorder) run(op asgOp) string {
	o.log = o.log[:0]
	if op.events == nil {
		o.line("advance", op.wm, op.lateness)
		o.a.Advance(op.wm, op.lateness, o, func(id ID) { o.window("fire", id) }, func(id ID) { o.window("close", id) })
	} else {
		ids := make([]ID, len(op.events))
		outs := make([]Outcome, len(op.events))
		o.a.Assign(op.keys, op.events, ids, outs, o)
		for i := range ids {
			o.line("event", op.events[i].Seq, int64(ids[i]), int64(outs[i]))
		}
	}
	o.line("state", int64(o.a.Open()), int64(o.a.Slots()), o.a.StateBytes())
	for _, id := range liveWindows(o.a) {
		o.window("live", id)
	}
	return string(o.log)
}

func liveWindows(a Assigner) []ID {
	var ids []ID
	add := func(live bool, id int) {
		if live {
			ids = append(ids, ID(id))
		}
	}
	switch a := a.(type) {
	case *Session:
		for id := range a.w {
			add(a.live(ID(id)), id)
		}
	case *Sequential:
		for id := range a.w {
			add(a.live(ID(id)), id)
		}
	}
	return ids
}

// internals renders an assigner's whole state but its scratch, the
// deadline queue's layout and the generations (see slots.finishLoad), so
// a restored assigner can be compared with the one saved.
func internals(a Assigner) string {
	var b strings.Builder
	slotsOf := func(s *slots, owner func(kn int32) string) {
		fmt.Fprintf(&b, "slots %d open %d lateness %d free %v\n", len(s.w), s.open, s.lateness, s.free)
		for id, w := range s.w {
			if w.owner != noKey {
				fmt.Fprintf(&b, "  %d %s [%d, %d) fired=%t qdl=%d\n", id, owner(w.owner), w.start, w.end, w.fired, w.qdl)
			}
		}
	}
	switch a := a.(type) {
	case *Session:
		fmt.Fprintf(&b, "session frontier %d keyBytes %d\n", a.frontier, a.keys.bytes)
		for _, kn := range sortedKeys(&a.keys) {
			k := a.keys.at(kn)
			fmt.Fprintf(&b, "key %q closedUpTo %d wins %v\n", a.keys.key(kn), k.closedUpTo, a.list(k))
		}
		slotsOf(&a.slots, func(kn int32) string { return string(a.keys.key(kn)) })
	case *Sequential:
		fmt.Fprintf(&b, "sequential %s lazy %t frontier %d keyBytes %d pending %d\n", machineName(a.m), a.lazy, a.frontier, a.keys.bytes, a.pending)
		for _, kn := range sortedKeys(&a.keys) {
			k := a.keys.at(kn)
			fmt.Fprintf(&b, "key %q st %+v tail %+v hidden %d live %d qAt %d wins %v\n  pend %+v\n", a.keys.key(kn), k.st, k.tail, k.hidden, k.live, k.qAt, k.wins, k.pend)
		}
		slotsOf(&a.slots, func(kn int32) string { return string(a.keys.key(kn)) })
		for _, e := range a.settleQ.all(nil) {
			key := "(forgotten)"
			if a.keys.valid(e.kn, e.gen) {
				key = string(a.keys.key(e.kn))
			}
			fmt.Fprintf(&b, "settle %d %s\n", e.at, key)
		}
	}
	return b.String()
}

// sortedKeys returns the numbers of t's keys in order of their bytes.
func sortedKeys[V any](t *keyTable[V]) []int32 {
	var kns []int32
	t.each(func(kn int32) { kns = append(kns, kn) })
	slices.SortFunc(kns, func(a, b int32) int { return strings.Compare(string(t.key(a)), string(t.key(b))) })
	return kns
}

// saveLoad saves a, loads the bytes into a fresh assigner of kind k, and
// checks that nothing is left over and the state is the same.
func saveLoad(t testing.TB, k asgKind, a Assigner) Assigner {
	t.Helper()
	w := snap.NewWriter(nil)
	a.Save(w)
	b := k.new()
	r := snap.NewReader(w.Bytes())
	if err := b.Load(r); err != nil {
		t.Fatalf("load of a fresh snapshot (%d bytes): %v", w.Len(), err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if got, want := internals(b), internals(a); got != want {
		t.Fatalf("restored state differs:\n%s", lineDiff(got, want))
	}
	return b
}

func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\ngot  %s\nwant %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

// TestAssignerSnapshotDifferential runs each kind over random workloads.
// At random points between calls it saves one of the assigners running
// (the original or one restored earlier) and loads the snapshot into a
// fresh one, which from then on gets the same calls as the original with
// its own recording observer: every call's log (observer calls, IDs and
// outcomes, fires and closes with bounds and keys, then Open, Slots,
// StateBytes and every live window) must be the same.
func TestAssignerSnapshotDifferential(t *testing.T) {
	for _, k := range asgKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			var restores, calls, richest int
			for seed := uint64(1); seed <= 8; seed++ {
				rng := rand.New(rand.NewPCG(seed, 11))
				ops := asgOps(rng, k, 400)
				runners := []*asgRecorder{{a: k.new()}}
				points := map[int]bool{}
				for range 6 {
					points[rng.IntN(len(ops))] = true
				}
				for i, op := range ops {
					if points[i] {
						from := runners[rng.IntN(len(runners))].a
						richest = max(richest, from.Open())
						runners = append(runners, &asgRecorder{a: saveLoad(t, k, from)})
						restores++
					}
					want := runners[0].run(op)
					for j, r := range runners[1:] {
						if got := r.run(op); got != want {
							t.Fatalf("seed %d, call %d: restored assigner %d differs from the original:\n%s", seed, i, j+1, lineDiff(got, want))
						}
						calls++
					}
				}
			}
			if restores < 20 || calls < 1000 || richest == 0 {
				t.Fatalf("%d restores, %d calls compared, at most %d windows open at a save: too few", restores, calls, richest)
			}
		})
	}
}

// midSnapshot runs half a workload and saves.
func midSnapshot(k asgKind, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	ops := asgOps(rng, k, 200)
	o := &asgRecorder{a: k.new()}
	for _, op := range ops[:100] {
		o.run(op)
	}
	w := snap.NewWriter(nil)
	o.a.Save(w)
	return w.Bytes()
}

// TestAssignerLoadCorrupt checks that every truncation of a snapshot fails
// to load and leaves the assigner as it was, that a snapshot fails to load
// into an assigner built another way, and that single-byte corruptions
// never panic, in Load or in the calls after it.
func TestAssignerLoadCorrupt(t *testing.T) {
	kinds := asgKinds()
	for ki, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			b := midSnapshot(k, 1)
			for n := range len(b) {
				a := k.new()
				if err := a.Load(snap.NewReader(b[:n])); err == nil {
					t.Fatalf("%d of %d bytes loaded", n, len(b))
				}
				if a.Slots() != 0 || a.Open() != 0 || a.StateBytes() != 0 {
					t.Fatalf("failed load of %d bytes changed the assigner: slots %d open %d", n, a.Slots(), a.Open())
				}
			}
			rng := rand.New(rand.NewPCG(uint64(ki), 5))
			for i := range len(b) {
				c := slices.Clone(b)
				c[i] ^= byte(1 + rng.IntN(255))
				loadAndRun(t, k, c)
			}
		})
	}
	for _, tc := range []struct {
		from, into asgKind
		want       string
	}{
		{kinds[0], kinds[4], `expected section "windows.Sequential"`},
		{kinds[4], kinds[0], `expected section "windows.Session"`},
		{kinds[4], kinds[7], "snapshot of EVENT_WINDOW TIMEOUT 2000 loaded into EVENT_WINDOW TIMEOUT 0"},
		{kinds[7], kinds[10], "snapshot of EVENT_WINDOW TIMEOUT 0 loaded into SESSION MAX 5000"},
		{kinds[4], kinds[6], "lazy=false loaded into an assigner with lazy=true"},
	} {
		a := tc.into.new()
		err := a.Load(snap.NewReader(midSnapshot(tc.from, 2)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s into %s: %v, want %q", tc.from.name, tc.into.name, err, tc.want)
		}
	}
}

// loadAndRun loads data into a fresh assigner of kind k; when that
// succeeds, it runs a few calls with events at the keys and times the
// state holds, with an observer that fails on any ID outside the slots,
// and checks that every Assigned event's window is live.
func loadAndRun(t testing.TB, k asgKind, data []byte) {
	a := k.new()
	if err := a.Load(snap.NewReader(data)); err != nil {
		return
	}
	o := &checkObserver{t: t, a: a}
	live := liveWindows(a)
	rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
	var lo, hi int64 = 0, 10_000
	keys := [][]byte{[]byte("new")}
	for _, id := range live {
		st, en := a.Bounds(id)
		keys = append(keys, slices.Clone(a.Key(id))) // Key's memory is reused
		if st > -1<<60 && en < 1<<60 && st <= en {
			lo, hi = st-1_000, en+1_000
		}
	}
	fire := func(id ID) { a.Bounds(id); a.Key(id) }
	for i := range 6 {
		n := 1 + rng.IntN(8)
		ks := make([][]byte, n)
		evs := make([]Event, n)
		for j := range evs {
			ks[j] = keys[rng.IntN(len(keys))]
			evs[j] = Event{Time: lo + rng.Int64N(hi-lo+1), Gap: rng.Int64N(2_000), Seq: int64(i*10 + j), Start: rng.IntN(3) == 0, End: rng.IntN(4) == 0, Ref: uint64(j)}
		}
		ids := make([]ID, n)
		outs := make([]Outcome, n)
		a.Assign(ks, evs, ids, outs, o)
		for j, id := range ids {
			if outs[j] == Assigned {
				a.Bounds(id)
			}
		}
		a.Advance(lo+int64(i)*(hi-lo)/4, k.lateness, o, fire, fire)
	}
	a.Advance(math.MaxInt64, k.lateness, o, fire, fire)
}

// checkObserver fails on an ID the caller could not index its per-slot
// state with.
type checkObserver struct {
	t testing.TB
	a Assigner
}

func (o *checkObserver) id(id ID) {
	if id < 0 || int(id) >= o.a.Slots() {
		o.t.Fatalf("observer given slot %d of %d", id, o.a.Slots())
	}
}
func (o *checkObserver) Merge(into, from ID) { o.id(into); o.id(from) }
func (o *checkObserver) Fold(id ID, _ []uint64) {
	o.id(id)
}
func (o *checkObserver) Copy(dst, src ID)     { o.id(dst); o.id(src) }
func (o *checkObserver) Reset(id ID)          { o.id(id) }
func (o *checkObserver) Changed(id ID, _ int) { o.a.Bounds(id) }
func (o *checkObserver) Gone(id ID)           { o.id(id) }
func (o *checkObserver) Unmatched(int)        {}

// FuzzAssignerLoad loads arbitrary bytes into each kind (the first byte
// picks it): Load must not panic, and when it succeeds neither must a few
// Assign and Advance calls afterwards, whose observer calls must name
// slots the caller can index.
func FuzzAssignerLoad(f *testing.F) {
	kinds := asgKinds()
	for ki, k := range kinds {
		for seed := range uint64(3) {
			f.Add(append([]byte{byte(ki)}, midSnapshot(k, seed)...))
		}
		w := snap.NewWriter(nil)
		k.new().Save(w)
		f.Add(append([]byte{byte(ki)}, w.Bytes()...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		loadAndRun(t, kinds[int(data[0])%len(kinds)], data[1:])
	})
}

// BenchmarkAssignerSnapshot opens 1,000,000 sessions, one per 8-byte key,
// and measures Save and Load of the Session assigner, reporting the bytes
// and the time per open window. As a baseline, "assign" opens the same
// sessions in a fresh assigner from the events, the cheapest replay there
// could be.
func BenchmarkAssignerSnapshot(b *testing.B) {
	const keys, batch = 1_000_000, 4096
	ks := make([][]byte, keys)
	evs := make([]Event, keys)
	clock := int64(1_700_000_000_000)
	for i := range ks {
		ks[i] = binary.BigEndian.AppendUint64(nil, uint64(i))
		clock += 9
		evs[i] = Event{Time: clock, Gap: 4 * 3600_000} // all stay open
	}
	m := mergeFunc(func(into, from ID) {})
	ids := make([]ID, batch)
	outs := make([]Outcome, batch)
	open := func() *Session {
		s := NewSession()
		for i := 0; i < keys; i += batch {
			n := min(batch, keys-i)
			s.Assign(ks[i:i+n], evs[i:i+n], ids[:n], outs[:n], m)
		}
		s.Advance(clock-5_000, 0, m, func(ID) {}, func(ID) {})
		return s
	}
	s := open()
	if s.Open() != keys {
		b.Fatalf("%d sessions open, want %d", s.Open(), keys)
	}
	w := snap.NewWriter(nil)
	s.Save(w)
	data := slices.Clone(w.Bytes())
	per := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/keys, "ns/window")
		b.ReportMetric(float64(len(data))/keys, "B/window")
	}
	b.Run("save", func(b *testing.B) {
		for b.Loop() {
			w := snap.NewWriter(w.Bytes())
			s.Save(w)
		}
		per(b)
	})
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			if err := NewSession().Load(snap.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		per(b)
	})
	b.Run("assign", func(b *testing.B) {
		for b.Loop() {
			open()
		}
		per(b)
	})
}

// TestAssignerLoadRejects tampers with a running assigner's state in ways
// Save writes faithfully and checks that Load names what is wrong.
func TestAssignerLoadRejects(t *testing.T) {
	kinds := asgKinds()
	// running returns an assigner of kind k at the first point of a
	// workload where ready holds.
	running := func(t *testing.T, k asgKind, ready func(Assigner) bool) Assigner {
		for seed := range uint64(20) {
			o := &asgRecorder{a: k.new()}
			for _, op := range asgOps(rand.New(rand.NewPCG(seed, 9)), k, 400) {
				o.run(op)
				if ready(o.a) {
					return o.a
				}
			}
		}
		t.Fatalf("no %s workload reached the state to tamper with", k.name)
		return nil
	}
	// sessionKeyWith returns the number of a key of s with at least n
	// windows, or noKey.
	sessionKeyWith := func(s *Session, n int) int32 {
		found := noKey
		s.keys.each(func(kn int32) {
			if found == noKey && s.keys.at(kn).n >= int32(n) {
				found = kn
			}
		})
		return found
	}
	// hiddenKey returns a key of s with a hidden slot.
	hiddenKey := func(s *Sequential) *seqKey {
		var found *seqKey
		s.keys.each(func(kn int32) {
			if k := s.keys.at(kn); found == nil && k.hidden != NoWindow && len(k.pend) > 1 {
				found = k
			}
		})
		return found
	}
	for _, tc := range []struct {
		name   string
		kind   asgKind
		ready  func(Assigner) bool
		tamper func(Assigner)
		want   string
	}{
		{
			name:   "free slot is a window",
			kind:   kinds[1],
			ready:  func(a Assigner) bool { return len(a.(*Session).free) > 0 && a.Open() > 0 },
			tamper: func(a Assigner) { s := a.(*Session); s.free[0] = liveWindows(s)[0] },
			want:   "named twice",
		},
		{
			name:   "slot lost",
			kind:   kinds[1],
			ready:  func(a Assigner) bool { return len(a.(*Session).free) > 0 },
			tamper: func(a Assigner) { s := a.(*Session); s.free = s.free[1:] },
			want:   "is neither a window, hidden nor free",
		},
		{
			name:  "windows out of order",
			kind:  kinds[1],
			ready: func(a Assigner) bool { return sessionKeyWith(a.(*Session), 2) != noKey },
			tamper: func(a Assigner) {
				s := a.(*Session)
				k := s.keys.at(sessionKeyWith(s, 2))
				w0 := k.first
				w1 := s.w[w0].next
				k.first, s.w[w0].next, s.w[w1].next = w1, s.w[w1].next, w0
			},
			want: "out of order",
		},
		{
			name:  "key twice",
			kind:  kinds[1],
			ready: func(a Assigner) bool { return sessionKeyWith(a.(*Session), 2) != noKey },
			tamper: func(a Assigner) {
				// The key's second window goes to a second key of the
				// same bytes.
				s := a.(*Session)
				kn := sessionKeyWith(s, 2)
				key := slices.Clone(s.keys.key(kn))
				twin := s.keys.insert(key, s.keys.hash(key))
				k := s.keys.at(kn)
				w1 := s.w[k.first].next
				s.w[k.first].next = s.w[w1].next
				k.n--
				*s.keys.at(twin) = sessionKey{closedUpTo: math.MinInt64, first: w1, n: 1}
				s.w[w1].next, s.w[w1].owner = NoWindow, twin
			},
			want: `" twice`,
		},
		{
			name:   "pending event in the wrong window",
			kind:   kinds[5],
			ready:  func(a Assigner) bool { return hiddenKey(a.(*Sequential)) != nil },
			tamper: func(a Assigner) { hiddenKey(a.(*Sequential)).pend[0].win++ },
			want:   "pending event 0 in window",
		},
		{
			name:  "hidden slot missing",
			kind:  kinds[5],
			ready: func(a Assigner) bool { return hiddenKey(a.(*Sequential)) != nil },
			tamper: func(a Assigner) {
				s := a.(*Sequential)
				k := hiddenKey(s)
				s.free = append(s.free, k.hidden)
				k.hidden = NoWindow
			},
			want: "hidden slot -1, want one: true",
		},
		{
			name:   "window moved",
			kind:   kinds[5],
			ready:  func(a Assigner) bool { return hiddenKey(a.(*Sequential)) != nil },
			tamper: func(a Assigner) { s := a.(*Sequential); s.w[hiddenKey(s).wins[0]].start-- },
			want:   "want [",
		},
		{
			name:   "not queued to settle",
			kind:   kinds[5],
			ready:  func(a Assigner) bool { return hiddenKey(a.(*Sequential)) != nil },
			tamper: func(a Assigner) { hiddenKey(a.(*Sequential)).qAt-- },
			want:   "settle entry at",
		},
		{
			name:   "settle queue lost",
			kind:   kinds[5],
			ready:  func(a Assigner) bool { return a.(*Sequential).settleQ.len() > 1 },
			tamper: func(a Assigner) { a.(*Sequential).settleQ = settleQueue{} },
			want:   "settle entry at",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := running(t, tc.kind, tc.ready)
			tc.tamper(a)
			w := snap.NewWriter(nil)
			a.Save(w)
			err := tc.kind.new().Load(snap.NewReader(w.Bytes()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("load: %v, want %q", err, tc.want)
			}
		})
	}
}
