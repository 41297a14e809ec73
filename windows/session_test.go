package windows

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"
)

// harness drives a Session with COUNT(*) and SUM(v), the way exec's window
// aggregate does: Assign a batch, then Update every accumulator.
type harness struct {
	t     testing.TB
	mem   *memory.CheckedAllocator
	s     *Session
	count Accumulator
	sum   Accumulator
	gap   int64
	out   strings.Builder
}

func newHarness(t testing.TB, mem *memory.CheckedAllocator, gap int64) *harness {
	c, err := NewAccumulator(CountStar, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewAccumulator(Sum, arrow.PrimitiveTypes.Int64)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, mem: mem, s: NewSession(), count: c, sum: s, gap: gap}
}

func (h *harness) Merge(into, from ID) {
	h.count.Merge(into, from)
	h.sum.Merge(into, from)
	fmt.Fprintf(&h.out, "merge %s <- %s\n", h.name(into), h.name(from))
}

// The session assigner never defers events or recomputes windows.
func (h *harness) Fold(ID, []uint64) { h.t.Fatal("session folded deferred rows") }
func (h *harness) Copy(ID, ID)       { h.t.Fatal("session copied a slot") }
func (h *harness) Reset(ID)          { h.t.Fatal("session reset a slot") }
func (h *harness) Gone(ID)           { h.t.Fatal("session recomputed a window away") }
func (h *harness) Changed(ID, int)   {}
func (h *harness) Unmatched(int)     { h.t.Fatal("session left an event unmatched") }

func (h *harness) name(id ID) string {
	st, _ := h.s.Bounds(id)
	return fmt.Sprintf("%s@%s", h.s.Key(id), clock(st))
}

type ev struct {
	key string
	t   int64
	v   *int64
}

// assign runs one batch and returns the outcomes.
func (h *harness) assign(evs []ev) ([]ID, []Outcome) {
	keys := make([][]byte, len(evs))
	events := make([]Event, len(evs))
	vb := array.NewInt64Builder(h.mem)
	defer vb.Release()
	for i, e := range evs {
		keys[i] = []byte(e.key)
		events[i] = Event{Time: e.t, Gap: h.gap}
		if e.v == nil {
			vb.AppendNull()
		} else {
			vb.Append(*e.v)
		}
	}
	vals := vb.NewArray()
	defer vals.Release()
	ids := make([]ID, len(evs))
	outs := make([]Outcome, len(evs))
	h.s.Assign(keys, events, ids, outs, h)
	h.count.Update(ids, Input{})
	h.sum.Update(ids, Input{Col: vals})
	return ids, outs
}

type closedWin struct {
	key        string
	start, end int64
	count      int64
	sum        string
}

func (h *harness) close(f int64) []closedWin {
	var ids []ID
	var wins []closedWin
	// Watermark f without lateness: windows fire and close at once.
	h.s.Advance(f, 0, h, func(ID) {}, func(id ID) {
		st, en := h.s.Bounds(id)
		ids = append(ids, id)
		wins = append(wins, closedWin{key: string(h.s.Key(id)), start: st, end: en})
	})
	if len(ids) == 0 {
		return nil
	}
	c := h.count.Emit(h.mem, ids)
	defer c.Release()
	s := h.sum.Emit(h.mem, ids)
	defer s.Release()
	for i := range wins {
		wins[i].count = c.(*array.Int64).Value(i)
		wins[i].sum = s.ValueStr(i)
	}
	for _, id := range ids {
		h.count.Reset(id)
		h.sum.Reset(id)
	}
	return wins
}

// clock renders ms as HH:MM:SS(.mmm), the datadriven files' time format.
func clock(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	s := fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	if ms%1000 != 0 {
		s += fmt.Sprintf(".%03d", ms%1000)
	}
	return s
}

func parseClock(t *testing.T, s string) int64 {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		t.Fatalf("bad time %q (want HH:MM:SS)", s)
	}
	h, _ := strconv.Atoi(parts[0])
	m, _ := strconv.Atoi(parts[1])
	sec, err := strconv.ParseFloat(parts[2], 64)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	return int64(h)*3600_000 + int64(m)*60_000 + int64(math.Round(sec*1000))
}

// TestSessionScripts runs windows/testdata/session/*. Commands:
//
//	new gap=30m           a fresh assigner
//	assign                one batch; lines "key HH:MM:SS [value|null]"
//	close HH:MM:SS        move the frontier; print the windows that close
//	state                 open windows and state bytes
func TestSessionScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/session", func(t *testing.T, path string) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		var h *harness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "new":
				var gap string
				d.ScanArgs(t, "gap", &gap)
				g, err := time.ParseDuration(gap)
				if err != nil {
					t.Fatal(err)
				}
				h = newHarness(t, mem, g.Milliseconds())
				return ""
			case "assign":
				var evs []ev
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					e := ev{key: f[0], t: parseClock(t, f[1])}
					if len(f) > 2 && f[2] != "null" {
						v, _ := strconv.ParseInt(f[2], 10, 64)
						e.v = &v
					}
					evs = append(evs, e)
				}
				h.out.Reset()
				ids, outs := h.assign(evs)
				for i, e := range evs {
					if outs[i] != Assigned {
						fmt.Fprintf(&h.out, "%s %s -> %s\n", e.key, clock(e.t), outs[i])
						continue
					}
					st, en := h.s.Bounds(ids[i])
					fmt.Fprintf(&h.out, "%s %s -> [%s, %s)\n", e.key, clock(e.t), clock(st), clock(en))
				}
				return h.out.String()
			case "close":
				var b strings.Builder
				for _, w := range h.close(parseClock(t, d.CmdArgs[0].Key)) {
					fmt.Fprintf(&b, "%s [%s, %s) count=%d sum=%s\n", w.key, clock(w.start), clock(w.end), w.count, w.sum)
				}
				fmt.Fprintf(&b, "open=%d\n", h.s.Open())
				return b.String()
			case "state":
				return fmt.Sprintf("open=%d keys=%d slots=%d\n", h.s.Open(), h.s.keys.len(), h.s.Slots())
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

// oracleSessions computes sessions the batch way: sort each key's events
// by time and cut where consecutive times differ by more than gap.
func oracleSessions(evs []ev, gap int64) []closedWin {
	byKey := map[string][]ev{}
	for _, e := range evs {
		byKey[e.key] = append(byKey[e.key], e)
	}
	var out []closedWin
	for k, es := range byKey {
		sort.SliceStable(es, func(i, j int) bool { return es[i].t < es[j].t })
		var cur *closedWin
		var sum int64
		var has bool
		flush := func() {
			if cur != nil {
				cur.sum = "(null)"
				if has {
					cur.sum = strconv.FormatInt(sum, 10)
				}
				out = append(out, *cur)
			}
		}
		for _, e := range es {
			if cur == nil || e.t > cur.end {
				flush()
				cur = &closedWin{key: k, start: e.t}
				sum, has = 0, false
			}
			cur.end = e.t + gap
			cur.count++
			if e.v != nil {
				sum += *e.v
				has = true
			}
		}
		flush()
	}
	sortWins(out)
	return out
}

func sortWins(w []closedWin) {
	slices.SortFunc(w, func(a, b closedWin) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.start - b.start)
	})
}

// TestSessionDifferential feeds random out-of-order workloads (events
// shuffled within the watermark bound, gaps often exactly equal to the
// session gap) in random batch sizes, closes windows as the watermark
// moves, and compares every final window with the batch oracle.
func TestSessionDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(seed, 7))
			const gap = 30_000
			bound := int64(rng.IntN(20_000)) // watermark delay
			nkeys := 1 + rng.IntN(40)
			var evs []ev
			clocks := make([]int64, nkeys)
			for i := 0; i < 3000; i++ {
				k := rng.IntN(nkeys)
				switch rng.IntN(10) {
				case 0:
					clocks[k] += gap // exactly the gap: same session
				case 1:
					clocks[k] += gap + 1 // just over: new session
				case 2:
					clocks[k] += 5 * gap
				default:
					clocks[k] += int64(rng.IntN(gap))
				}
				var v *int64
				if rng.IntN(5) > 0 {
					x := int64(rng.IntN(100)) - 20
					v = &x
				}
				evs = append(evs, ev{key: fmt.Sprintf("k%d", k), t: clocks[k], v: v})
			}
			// Arrival order: sort by time plus a random delay within bound,
			// which keeps every event within the watermark bound.
			arrival := slices.Clone(evs)
			at := make([]int64, len(arrival))
			for i := range arrival {
				at[i] = arrival[i].t + rng.Int64N(bound+1)
			}
			order := make([]int, len(arrival))
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(i, j int) bool { return at[order[i]] < at[order[j]] })
			for i, o := range order {
				arrival[i] = evs[o]
			}
			h := newHarness(t, mem, gap)
			var got []closedWin
			maxT := int64(math.MinInt64)
			for len(arrival) > 0 {
				n := min(len(arrival), 1+rng.IntN(50))
				batch := arrival[:n]
				arrival = arrival[n:]
				_, outs := h.assign(batch)
				for i, o := range outs {
					if o != Assigned {
						t.Fatalf("event %+v within the bound was %s", batch[i], o)
					}
					maxT = max(maxT, batch[i].t)
				}
				got = append(got, h.close(maxT-bound)...)
			}
			got = append(got, h.close(math.MaxInt64)...)
			if h.s.Open() != 0 || h.s.keys.len() != 0 {
				t.Fatalf("state left after closing everything: open=%d keys=%d", h.s.Open(), h.s.keys.len())
			}
			sortWins(got)
			want := oracleSessions(evs, gap)
			if !slices.Equal(got, want) {
				t.Fatalf("sessions differ from the oracle:\ngot  %d: %v\nwant %d: %v", len(got), head(got), len(want), head(want))
			}
		})
	}
}

func head(w []closedWin) []closedWin { return w[:min(len(w), 8)] }

// TestSessionSlotsReused shows that closed windows give their memory back:
// many sessions over time, few open at once, keep the slot count small.
func TestSessionSlotsReused(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h := newHarness(t, mem, 1000)
	for i := int64(0); i < 10_000; i++ {
		h.assign([]ev{{key: fmt.Sprintf("k%d", i%10), t: i * 500}})
		h.close(i*500 - 5000)
	}
	if s := h.s.Slots(); s > 64 {
		t.Fatalf("slots = %d after 10000 events of 10 keys; closed windows are not reused", s)
	}
	h.close(math.MaxInt64)
	if b := h.s.StateBytes(); b != int64(h.s.Slots())*bytesPerSlot {
		t.Fatalf("state bytes %d with no open window, want only the slot arrays (%d)", b, int64(h.s.Slots())*bytesPerSlot)
	}
}
