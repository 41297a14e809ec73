package windows

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// opGen draws random accumulator operations and applies each to several
// accumulators alike, so that a restored accumulator can be run in step
// with the one it was saved from.
type opGen struct {
	rng    *rand.Rand
	mem    memory.Allocator
	sp     accSpec
	domain int
	seq    int64
}

// step applies one random Update (with part of the rows through
// UpdateRows), Merge, Copy or Reset over windows [0, nwin) to every acc,
// and returns a note of it. Half the rows go to the first four windows,
// so that DISTINCT sets there outgrow smallSet.
func (g *opGen) step(nwin int, accs ...Accumulator) stepNote {
	rng := g.rng
	into, from := ID(rng.IntN(nwin)), ID(rng.IntN(nwin))
	switch rng.IntN(8) {
	case 4:
		for _, acc := range accs {
			acc.Merge(into, from)
		}
		return stepNote{op: "merge", into: into, from: from}
	case 5:
		for _, acc := range accs {
			acc.Copy(into, from)
		}
		return stepNote{op: "copy", into: into, from: from}
	case 6:
		for _, acc := range accs {
			acc.Reset(into)
		}
		return stepNote{op: "reset", into: into}
	}
	n := 1 + rng.IntN(60)
	rows := make([]refRow, n)
	seqs := rng.Perm(n)
	for i := range rows {
		// Times past 2^40 ms, as real ones are, and often equal.
		rows[i] = refRow{null: rng.IntN(5) == 0, t: 1_700_000_000_000 + rng.Int64N(4), seq: g.seq + int64(seqs[i])}
		if g.sp.typ != nil && !rows[i].null {
			rows[i].v = genValue(rng, g.sp.typ, g.domain, true)
		}
	}
	g.seq += int64(n)
	in := buildInput(g.mem, g.sp.typ, rows, rng.IntN(3))
	defer release(in)
	ids := make([]ID, n)
	byWin := make([][]int32, nwin)
	for i := range ids {
		ids[i] = NoWindow
		if rng.IntN(10) == 0 {
			continue
		}
		w := ID(rng.IntN(nwin))
		if rng.IntN(2) == 0 {
			w = ID(rng.IntN(min(4, nwin)))
		}
		if rng.IntN(2) == 0 {
			ids[i] = w
		} else {
			byWin[w] = append(byWin[w], int32(i))
		}
	}
	for _, acc := range accs {
		acc.Update(ids, in)
	}
	for w, rs := range byWin {
		if len(rs) == 0 {
			continue
		}
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		for _, acc := range accs {
			acc.UpdateRows(ID(w), in, rs)
		}
	}
	return stepNote{op: "update", rows: rows, ids: ids, byWin: byWin}
}

// stepNote records one step for the message of a failed test.
type stepNote struct {
	op         string
	into, from ID
	rows       []refRow
	ids        []ID
	byWin      [][]int32
}

func (n stepNote) String() string {
	switch n.op {
	case "update":
		return fmt.Sprintf("update %d rows: %v via Update %v, via UpdateRows %v", len(n.rows), n.rows, n.ids, n.byWin)
	case "reset":
		return fmt.Sprintf("reset %d", n.into)
	case "merge", "copy":
		return fmt.Sprintf("%s %d <- %d", n.op, n.into, n.from)
	}
	return n.op
}

// saveAcc returns the bytes acc saves for slots.
func saveAcc(acc Accumulator, slots int) []byte {
	w := snap.NewWriter(nil)
	acc.Save(w, slots)
	return w.Bytes()
}

// loadAcc loads b, all of it, into a fresh accumulator of sp.
func loadAcc(sp accSpec, b []byte) (Accumulator, error) {
	acc, err := NewAccumulator(sp.kind, sp.typ)
	if err != nil {
		return nil, err
	}
	r := snap.NewReader(b)
	if err := acc.Load(r); err != nil {
		return nil, err
	}
	return acc, r.Done()
}

// sameArrays is array.Equal, except that floats compare by their bits, so
// that NaN equals itself and -0 differs from +0.
func sameArrays(x, y arrow.Array) bool {
	fx, ok1 := x.(*array.Float64)
	fy, ok2 := y.(*array.Float64)
	if !ok1 || !ok2 {
		return array.Equal(x, y)
	}
	if fx.Len() != fy.Len() {
		return false
	}
	for i := range fx.Len() {
		if fx.IsNull(i) != fy.IsNull(i) {
			return false
		}
		if fx.IsValid(i) && math.Float64bits(fx.Value(i)) != math.Float64bits(fy.Value(i)) {
			return false
		}
	}
	return true
}

// checkSameEmit fails unless got emits what want does for ids.
func checkSameEmit(t *testing.T, mem memory.Allocator, want, got Accumulator, ids []ID, what func() string) {
	t.Helper()
	w := want.Emit(mem, ids)
	defer w.Release()
	g := got.Emit(mem, ids)
	defer g.Release()
	if !sameArrays(w, g) {
		t.Fatalf("%s\nwindows %v\ngot  %v\nwant %v", what(), ids, g, w)
	}
}

// checkOwnBuffers fails if two slots of string cells share a buffer.
func checkOwnBuffers(t *testing.T, acc Accumulator) {
	t.Helper()
	var c *cells[string]
	switch a := acc.(type) {
	case *extremeAcc[string]:
		c = &a.c
	case *firstLastAcc[string]:
		c = &a.c
	default:
		return
	}
	seen := map[*byte]int{}
	for id, b := range c.own {
		if cap(b) == 0 {
			continue
		}
		p := &b[:1][0]
		if other, ok := seen[p]; ok {
			t.Fatalf("slots %d and %d share a buffer", other, id)
		}
		seen[p] = id
	}
}

func idsUpTo(n int) []ID {
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = ID(i)
	}
	return ids
}

// TestAccumulatorSnapshot drives an accumulator of every kind and input
// type with random operations over 50 windows (NULLs, NaNs and -0
// included), saves it at a random point, loads the bytes into a fresh
// accumulator, and then runs both in step with the same further random
// operations: they must emit the same (floats bit for bit) after the load
// and after every operation. Sometimes fewer slots are saved than are in
// use; then the restored accumulator holds nothing past them, and the
// further operations stay below them. Saving the restored accumulator
// gives the same bytes again.
func TestAccumulatorSnapshot(t *testing.T) {
	for _, sp := range accSpecs() {
		t.Run(sp.name(), func(t *testing.T) {
			for seed := range uint64(10) {
				snapshotRun(t, sp, seed)
			}
		})
	}
}

func snapshotRun(t *testing.T, sp accSpec, seed uint64) {
	const nwin = 50
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(seed, 100+uint64(sp.kind)))
	g := &opGen{rng: rng, mem: mem, sp: sp, domain: []int{3, 60}[rng.IntN(2)]}
	orig, err := NewAccumulator(sp.kind, sp.typ)
	if err != nil {
		t.Fatal(err)
	}
	var log []fmt.Stringer
	what := func() string {
		var sb strings.Builder
		for _, n := range log {
			fmt.Fprintln(&sb, n)
		}
		return fmt.Sprintf("seed %d after\n%s", seed, sb.String())
	}
	for range rng.IntN(60) {
		log = append(log, g.step(nwin, orig))
	}

	// Accumulators grow to at least 64 slots, so 50 to 69 saves all the
	// windows, and sometimes slots they never grew to.
	slots := nwin + rng.IntN(20)
	if rng.IntN(3) == 0 {
		slots = rng.IntN(nwin)
	}
	saved := saveAcc(orig, slots)
	log = append(log, stepNote{op: fmt.Sprintf("save %d slots in %d bytes, load", slots, len(saved))})
	scribbled := bytes.Clone(saved)
	loaded, err := loadAcc(sp, scribbled)
	if err != nil {
		t.Fatalf("%s: %v", what(), err)
	}
	// The restored state must not point into the snapshot.
	for i := range scribbled {
		scribbled[i] = '#'
	}
	live := min(slots, nwin)
	checkSameEmit(t, mem, orig, loaded, idsUpTo(live), what)
	fresh, _ := NewAccumulator(sp.kind, sp.typ)
	beyond := idsUpTo(nwin + 20)[live:]
	checkSameEmit(t, mem, fresh, loaded, beyond, func() string { return what() + "\n(slots not saved)" })
	checkStateBytes(t, loaded)
	checkOwnBuffers(t, loaded)
	if got, want := loaded.StateBytes(), orig.StateBytes(); got > want {
		t.Errorf("%s: restored state is %d bytes, more than the %d saved", what(), got, want)
	}
	if again := saveAcc(loaded, slots); !bytes.Equal(again, saved) {
		t.Fatalf("%s: saving the restored accumulator gives\n%x\nnot\n%x", what(), again, saved)
	}

	if live == 0 {
		return
	}
	for range 40 {
		log = append(log, g.step(live, orig, loaded))
		checkSameEmit(t, mem, orig, loaded, idsUpTo(live), what)
		checkStateBytes(t, orig)
		checkStateBytes(t, loaded)
	}
	checkOwnBuffers(t, loaded)
}

// richSnapshot saves an accumulator of sp after random operations over
// nwin windows.
func richSnapshot(sp accSpec, seed uint64, nwin, ops int) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(sp.kind)))
	g := &opGen{rng: rng, mem: memory.NewGoAllocator(), sp: sp, domain: 60}
	acc, _ := NewAccumulator(sp.kind, sp.typ)
	for range ops {
		g.step(nwin, acc)
	}
	return saveAcc(acc, nwin)
}

// TestAccumulatorLoadCorrupt loads every truncation of a snapshot, and the
// snapshot with each byte in turn changed: a truncation must fail (in Load
// or at Done), and a failed Load must leave the accumulator empty; a
// changed byte may fail or load, but never panics, and what loads saves
// and loads again to the same bytes.
func TestAccumulatorLoadCorrupt(t *testing.T) {
	for _, sp := range accSpecs() {
		t.Run(sp.name(), func(t *testing.T) {
			full := richSnapshot(sp, 1, 10, 30)
			if _, err := loadAcc(sp, full); err != nil {
				t.Fatalf("the whole snapshot: %v", err)
			}
			for n := range len(full) {
				acc, _ := NewAccumulator(sp.kind, sp.typ)
				r := snap.NewReader(full[:n])
				err := acc.Load(r)
				if err == nil {
					err = r.Done()
					if err == nil {
						t.Fatalf("the first %d of %d bytes loaded without error", n, len(full))
					}
					continue
				}
				if got := acc.StateBytes(); got != 0 {
					t.Fatalf("after a failed Load of %d bytes (%v) the accumulator holds %d bytes", n, err, got)
				}
			}
			corrupt := make([]byte, len(full))
			for i := range full {
				for _, delta := range []byte{1, 0x80} {
					copy(corrupt, full)
					corrupt[i] += delta
					checkLoadAgain(t, sp, corrupt)
				}
			}
		})
	}
}

// checkLoadAgain loads b into an accumulator of sp; if that succeeds, the
// accumulator must survive further use, and its state must save and load
// again to the same bytes.
func checkLoadAgain(t *testing.T, sp accSpec, b []byte) {
	t.Helper()
	acc, err := loadAcc(sp, b)
	if err != nil {
		return
	}
	mem := memory.NewGoAllocator()
	checkStateBytes(t, acc)
	checkOwnBuffers(t, acc)
	out := acc.Emit(mem, idsUpTo(70))
	out.Release()
	saved := saveAcc(acc, math.MaxInt32)
	again, err := loadAcc(sp, saved)
	if err != nil {
		t.Fatalf("%x loaded, but its state saved as %x does not: %v", b, saved, err)
	}
	if resaved := saveAcc(again, math.MaxInt32); !bytes.Equal(resaved, saved) {
		t.Fatalf("%x loaded and saved as %x, which loads and saves as %x", b, saved, resaved)
	}
	g := &opGen{rng: rand.New(rand.NewPCG(1, 2)), mem: mem, sp: sp, domain: 60}
	for range 4 {
		g.step(8, acc)
	}
	checkStateBytes(t, acc)
	out = acc.Emit(mem, idsUpTo(70))
	out.Release()
}

// TestAccumulatorLoadWrongKind loads a snapshot of every kind and input
// type into every other: only the same kind over the same input type (any
// input, for COUNT) loads.
func TestAccumulatorLoadWrongKind(t *testing.T) {
	specs := accSpecs()
	for _, from := range specs {
		saved := richSnapshot(from, 2, 8, 10)
		for _, into := range specs {
			same := from.kind == into.kind && (from.kind == Count || arrow.TypeEqual(from.typ, into.typ))
			_, err := loadAcc(into, saved)
			switch {
			case same && err != nil:
				t.Errorf("%s into %s: %v", from.name(), into.name(), err)
			case !same && err == nil:
				t.Errorf("%s loaded into %s", from.name(), into.name())
			}
		}
	}
}

// TestAccumulatorLoadRejects loads snapshots that are well formed but hold
// what no accumulator can.
func TestAccumulatorLoadRejects(t *testing.T) {
	i64, f64, str, boolean := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String, arrow.FixedWidthTypes.Boolean
	cases := []struct {
		name  string
		sp    accSpec
		write func(w *snap.Writer)
		want  string // in the error
	}{
		{"negative count", accSpec{CountStar, nil}, func(w *snap.Writer) { w.Ints([]int64{1, -1}) }, "slot 1: count -1"},
		{"negative avg count", accSpec{Avg, i64}, func(w *snap.Writer) { w.Ints([]int64{-2}) }, "slot 0: count -2"},
		{"slots beyond the input", accSpec{Count, i64}, func(w *snap.Writer) { w.Uint(1 << 30) }, "exceeds"},
		{"sum values missing", accSpec{Sum, f64}, func(w *snap.Writer) { w.Bools([]bool{true, true}); w.Float(1) }, "truncated"},
		{"bool of 2", accSpec{Max, boolean}, func(w *snap.Writer) { w.Bools([]bool{false, true}); w.Int(2) }, "slot 1: boolean held as 2"},
		{"sets beyond the input", accSpec{CountDistinct, str}, func(w *snap.Writer) { w.Uint(1000) }, "exceeds"},
		{"floats beyond the input", accSpec{CountDistinct, f64}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(2)
			w.Float(1)
			w.Uint(0)
		}, "exceeds"},
		{"small set twice", accSpec{CountDistinct, i64}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(3)
			w.Int(5)
			w.Int(7)
			w.Int(5)
		}, "5 twice"},
		{"large set twice", accSpec{CountDistinct, tsType}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(smallSet + 2)
			for k := range smallSet + 1 {
				w.Int(int64(k))
			}
			w.Int(3)
		}, "18 keys of a distinct set are 17"},
		{"-0 key", accSpec{CountDistinct, f64}, func(w *snap.Writer) { w.Uint(1); w.Uint(1); w.Float(math.Copysign(0, -1)) }, "not a float key"},
		{"odd NaN key", accSpec{CountDistinct, f64}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(1)
			w.Float(math.Float64frombits(0x7ff8000000000002))
		}, "not a float key"},
		{"boolean key", accSpec{CountDistinct, boolean}, func(w *snap.Writer) { w.Uint(1); w.Uint(1); w.Int(-1) }, "not a boolean"},
		{"string keys short", accSpec{CountDistinct, str}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(2)
			w.String("abc")
			w.Uint(1)
			w.Uint(1)
		}, "keys of 2 bytes in a set of 3"},
		{"string key long", accSpec{CountDistinct, str}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(2)
			w.String("abc")
			w.Uint(1)
			w.Uint(5)
		}, "key of 5 bytes past the 2 left"},
		{"string keys twice", accSpec{CountDistinct, str}, func(w *snap.Writer) {
			w.Uint(1)
			w.Uint(2)
			w.String("abab")
			w.Uint(2)
			w.Uint(2)
		}, "ab twice"},
		{"first_value time missing", accSpec{FirstValue, str}, func(w *snap.Writer) {
			w.Bools([]bool{true})
			w.String("x")
			w.Int(1)
		}, "bad varint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := snap.NewWriter(nil)
			w.Section(snapSection(tc.sp.kind, tc.sp.typ))
			tc.write(w)
			acc, err := NewAccumulator(tc.sp.kind, tc.sp.typ)
			if err != nil {
				t.Fatal(err)
			}
			err = acc.Load(snap.NewReader(w.Bytes()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one with %q", err, tc.want)
			}
			if got := acc.StateBytes(); got != 0 {
				t.Fatalf("after a failed Load the accumulator holds %d bytes", got)
			}
		})
	}
}

// FuzzAccumulatorLoad loads arbitrary bytes into an accumulator of every
// kind and input type: it must never panic, and what loads must survive
// further use and save and load again to the same bytes.
func FuzzAccumulatorLoad(f *testing.F) {
	specs := accSpecs()
	for i, sp := range specs {
		f.Add(richSnapshot(sp, uint64(i), 6, 12))
		f.Add(saveAcc(func() Accumulator { a, _ := NewAccumulator(sp.kind, sp.typ); return a }(), 10))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sp := range specs {
			checkLoadAgain(t, sp, b)
		}
	})
}

// BenchmarkAccumulatorSnapshot saves and loads 1,000,000 slots, each of
// which has seen 3 rows of distinct values. It reports the snapshot's
// bytes per slot and the time per slot of saving and of loading.
func BenchmarkAccumulatorSnapshot(b *testing.B) {
	const slots, perSlot = 1_000_000, 3
	mem := memory.NewGoAllocator()
	ib := array.NewInt64Builder(mem)
	ids := make([]ID, 0, slots*perSlot)
	for id := range slots {
		for j := range perSlot {
			ib.Append(int64(id*4 + j))
			ids = append(ids, ID(id))
		}
	}
	col := ib.NewArray()
	ib.Release()
	defer col.Release()
	i64 := arrow.PrimitiveTypes.Int64
	for _, bc := range []struct {
		name string
		kind AggKind
	}{
		{"count", Count},
		{"sum", Sum},
		{"count_distinct", CountDistinct},
	} {
		acc, _ := NewAccumulator(bc.kind, i64)
		acc.Update(ids, Input{Col: col})
		saved := saveAcc(acc, slots)
		report := func(b *testing.B) {
			b.ReportMetric(float64(len(saved))/slots, "B/slot")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*slots), "ns/slot")
		}
		b.Run(bc.name+"/save", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(saved))
			for b.Loop() {
				w := snap.NewWriter(buf)
				acc.Save(w, slots)
				buf = w.Bytes()
			}
			report(b)
		})
		b.Run(bc.name+"/load", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fresh, _ := NewAccumulator(bc.kind, i64)
				if err := fresh.Load(snap.NewReader(saved)); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}
