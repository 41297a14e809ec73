package exec

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
)

// AggSpec is one aggregate of a window query.
type AggSpec struct {
	Kind windows.AggKind
	Arg  int    // input column; -1 for COUNT(*)
	Desc string // for EXPLAIN, e.g. "sum(bytes)"
}

// EmitSpec says when rows of open windows are written besides the final
// row. The zero value is EMIT FINAL.
type EmitSpec struct {
	Every       time.Duration // EMIT EARLY EVERY INTERVAL: processing time
	EveryEvents int64         // EMIT EARLY EVERY n EVENTS
}

func (e EmitSpec) String() string {
	switch {
	case e.Every > 0:
		return "early every " + e.Every.String()
	case e.EveryEvents > 0:
		return fmt.Sprintf("early every %d events", e.EveryEvents)
	}
	return "final"
}

// WindowSpec describes a window query's grouping.
type WindowSpec struct {
	Keys     []int    // input columns of the group keys, in GROUP BY order
	KeyNames []string // their names, for EXPLAIN and the output schema
	Time     int      // input column of the event time (a timestamp)
	Seq      int      // input column of the stream sequence (arrival order)
	// NewAssigner returns the window kind's assigner; Desc describes it for
	// EXPLAIN, e.g. "SESSION(ts, 30m0s)".
	NewAssigner func() windows.Assigner
	Desc        string
	// Gap is the SESSION gap given to every event, unless GapCol (>= 0)
	// names an int64 column of per-event gaps in ms (NULL or negative: 0).
	Gap    time.Duration
	GapCol int
	// StartCol and EndCol (>= 0) name the boolean columns of EVENT_WINDOW's
	// START WHEN and END WHEN conditions (NULL: false).
	StartCol, EndCol int
	Lateness         time.Duration
	Emit             EmitSpec
	Aggs             []AggSpec
	// OnLate receives events too late for their window (stream sequences
	// and event times); it is called from the pipeline's goroutine.
	OnLate func(ctx context.Context, seqs, times []int64) error
}

// Output column names of the window aggregate, after the group keys.
const (
	ColWindowStart = "$window_start"
	ColWindowEnd   = "$window_end"
	ColFinal       = "$final"
	ColRetract     = "$retract"
)

// WindowAggOp assigns events to windows, folds them into per-window
// aggregates, and emits the changes of the result table.
//
// Output rows: the group keys, $window_start, $window_end (NULL while
// unknown), one column per aggregate, $final, $retract. A row with
// $retract = false is an upsert of the window's row, keyed by its keys
// and start; $final says the watermark has passed the window's end. A row
// with $retract = true deletes the row keyed by its keys and start (the
// other columns are NULL): the window was absorbed by a merge, recomputed
// away, or its start moved. Within one batch a key appears at most once.
//
// When rows are written: a window's row is written when the watermark
// passes its end (final), and again for each later change until the
// frontier (watermark minus allowed lateness) passes its end, when its
// state is released. EMIT EARLY adds partial rows of open windows: every
// EmitSpec.Every of processing time for the windows that changed, or
// after every EmitSpec.EveryEvents events of a window.
type WindowAggOp struct {
	spec   WindowSpec
	mem    memory.Allocator
	out    Downstream
	schema *arrow.Schema
	codec  *KeyCodec
	asg    windows.Assigner
	accs   []windows.Accumulator
	keeps  bool // the assigner folds rows later: hold batches
	wm     int64

	// Per slot: emission bookkeeping.
	emitted []bool  // a row of the window is in the result table...
	emStart []int64 // ...keyed by this start...
	emFinal []bool  // ...and final
	dirty   []bool  // changed since its last row
	since   []int64 // events since its last row (EVERY n EVENTS; else grown only by grow, and all 0)

	due       []windows.ID // windows to write at the next flush
	changed   []windows.ID // EVERY INTERVAL: windows changed since the last tick
	pend      pendingRows
	lastEarly time.Time

	// Batches whose rows the assigner may still fold, by number, and the
	// folds not applied yet.
	held      map[uint32]*heldBatch
	nextBatch uint32
	folds     []foldRef
	dirtyHeld []*heldBatch // held batches with rows set to fold (applyFolds)
	spareHeld []*heldBatch // released held batches, for their slices

	// per-batch scratch, reused
	keyCols []arrow.Array
	events  []windows.Event
	ids     []windows.ID
	outs    []windows.Outcome
	times   []int64
	seqs    []int64

	open, stateBytes, lateEvents, unmatched, emittedRows, retractions atomic.Int64
	watermark                                                         atomic.Int64
}

type heldBatch struct {
	rec   arrow.RecordBatch
	maxT  int64 // latest event time among its rows the assigner may fold
	times []int64
	seqs  []int64
	// ids: per row, the slot applyFolds folds it into (NoWindow: none);
	// sized on the first fold, and all NoWindow between applyFolds.
	ids   []windows.ID
	dirty bool   // in dirtyHeld
	bn    uint32 // the batch's number, while dirty
}

// pendingRows are the rows of the next output batch: upserts of windows
// (their aggregates are read from the slots at flush) and retractions.
type pendingRows struct {
	ids    []windows.ID
	keys   [][]byte
	starts []int64
	ends   []int64
	final  []bool

	retractKeys   [][]byte
	retractStarts []int64

	// release are slots closed during this batch: reset after the flush.
	release []windows.ID

	// keyBuf holds copies of the keys (the assigner's are good only
	// until its next call); keys and retractKeys point into it, or into
	// earlier buffers it outgrew.
	keyBuf []byte
}

func (p *pendingRows) reset() {
	*p = pendingRows{
		ids: p.ids[:0], keys: p.keys[:0], starts: p.starts[:0], ends: p.ends[:0], final: p.final[:0],
		retractKeys: p.retractKeys[:0], retractStarts: p.retractStarts[:0], release: p.release[:0],
		keyBuf: p.keyBuf[:0],
	}
}

// keep returns a copy of key that lasts until reset.
func (p *pendingRows) keep(key []byte) []byte {
	n := len(p.keyBuf)
	p.keyBuf = append(p.keyBuf, key...)
	return p.keyBuf[n:len(p.keyBuf):len(p.keyBuf)]
}

func (p *pendingRows) retract(key []byte, start int64) {
	p.retractKeys = append(p.retractKeys, p.keep(key))
	p.retractStarts = append(p.retractStarts, start)
}

// NewWindowAggOp returns the operator for spec over input of schema in.
func NewWindowAggOp(mem memory.Allocator, spec WindowSpec, in *arrow.Schema) (*WindowAggOp, error) {
	op := &WindowAggOp{spec: spec, mem: mem, held: make(map[uint32]*heldBatch)}
	var fields []arrow.Field
	var keyTypes []arrow.DataType
	for i, k := range spec.Keys {
		t := in.Field(k).Type
		keyTypes = append(keyTypes, t)
		fields = append(fields, arrow.Field{Name: spec.KeyNames[i], Type: t, Nullable: true})
	}
	codec, err := NewKeyCodec(keyTypes)
	if err != nil {
		return nil, err
	}
	op.codec = codec
	tt := in.Field(spec.Time).Type
	if tt.ID() != arrow.TIMESTAMP {
		return nil, fmt.Errorf("window time column %q is %s, not a timestamp", in.Field(spec.Time).Name, tt)
	}
	for _, c := range []struct {
		idx  int
		want arrow.Type
		what string
	}{{spec.GapCol, arrow.INT64, "gap"}, {spec.StartCol, arrow.BOOL, "START WHEN"}, {spec.EndCol, arrow.BOOL, "END WHEN"}, {spec.Seq, arrow.INT64, "sequence"}} {
		if c.idx >= 0 && in.Field(c.idx).Type.ID() != c.want {
			return nil, fmt.Errorf("window %s column %q is %s, not %s", c.what, in.Field(c.idx).Name, in.Field(c.idx).Type, c.want)
		}
	}
	fields = append(fields,
		arrow.Field{Name: ColWindowStart, Type: tt, Nullable: true},
		arrow.Field{Name: ColWindowEnd, Type: tt, Nullable: true})
	for _, a := range spec.Aggs {
		var argType arrow.DataType
		if a.Arg >= 0 {
			argType = in.Field(a.Arg).Type
		}
		acc, err := windows.NewAccumulator(a.Kind, argType)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Desc, err)
		}
		op.accs = append(op.accs, acc)
		fields = append(fields, arrow.Field{Name: a.Desc, Type: acc.Type(), Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: ColFinal, Type: arrow.FixedWidthTypes.Boolean},
		arrow.Field{Name: ColRetract, Type: arrow.FixedWidthTypes.Boolean})
	op.schema = arrow.NewSchema(fields, nil)
	return op, nil
}

var _ Operator = (*WindowAggOp)(nil)

// Schema is the schema of the rows the operator emits.
func (op *WindowAggOp) Schema() *arrow.Schema { return op.schema }

// Open implements Operator.
func (op *WindowAggOp) Open(_ context.Context, out Downstream) error {
	op.out = out
	op.asg = op.spec.NewAssigner()
	if seq, ok := op.asg.(*windows.Sequential); ok {
		op.keeps = true
		// Without lateness and early rows nothing reads a window before
		// all its events have settled.
		seq.SetLazy(op.spec.Lateness == 0 && op.spec.Emit == EmitSpec{})
	}
	op.wm = int64(MinWatermark)
	op.watermark.Store(op.wm)
	return nil
}

// Push implements Operator.
func (op *WindowAggOp) Push(ctx context.Context, b arrow.RecordBatch) error {
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	op.keyCols = op.keyCols[:0]
	for _, k := range op.spec.Keys {
		op.keyCols = append(op.keyCols, b.Column(k))
	}
	keys := op.codec.Encode(op.keyCols, n)
	tv := b.Column(op.spec.Time).(*array.Timestamp).TimestampValues()
	op.times = resize(op.times, n)
	op.seqs = resize(op.seqs, n)
	for i := range n {
		op.times[i] = int64(tv[i])
	}
	if op.spec.Seq >= 0 {
		copy(op.seqs, b.Column(op.spec.Seq).(*array.Int64).Int64Values())
	} else {
		clear(op.seqs)
	}
	batchNo := op.nextBatch
	op.nextBatch++
	gap := op.spec.Gap.Milliseconds()
	op.events = resize(op.events, n)
	for i := range op.events {
		op.events[i] = windows.Event{Time: op.times[i], Gap: gap, Seq: op.seqs[i], Ref: uint64(batchNo)<<32 | uint64(i)}
	}
	if op.spec.GapCol >= 0 {
		gc := b.Column(op.spec.GapCol).(*array.Int64)
		for i := range op.events {
			op.events[i].Gap = 0
			if g := gc.Value(i); gc.IsValid(i) && g > 0 {
				op.events[i].Gap = g
			}
		}
	}
	if op.spec.StartCol >= 0 {
		sc, ec := b.Column(op.spec.StartCol).(*array.Boolean), b.Column(op.spec.EndCol).(*array.Boolean)
		for i := range op.events {
			op.events[i].Start = sc.IsValid(i) && sc.Value(i)
			op.events[i].End = ec.IsValid(i) && ec.Value(i)
		}
	}
	var hb *heldBatch
	if op.keeps {
		// Register the batch before Assign: the assigner may fold its rows
		// by Ref while it runs.
		hb = op.newHeld(b)
		op.held[batchNo] = hb
	}
	op.ids = resize(op.ids, n)
	op.outs = resize(op.outs, n)
	op.asg.Assign(keys, op.events, op.ids, op.outs, op)
	// Without a row placed (a lazy EVENT_WINDOW defers every row to
	// Advance) the aggregates have nothing to fold.
	if op.changedBatch() > 0 {
		in := windows.Input{Times: op.times, Seqs: op.seqs}
		for i, a := range op.accs {
			in.Col = nil
			if arg := op.spec.Aggs[i].Arg; arg >= 0 {
				in.Col = b.Column(arg)
			}
			a.Update(op.ids, in)
		}
	}
	if hb != nil {
		hb.maxT = int64(MinWatermark)
		for i, o := range op.outs {
			if o != windows.Late {
				hb.maxT = max(hb.maxT, op.times[i])
			}
		}
		if hb.maxT == int64(MinWatermark) {
			delete(op.held, batchNo) // every row was late: none is folded
			op.freeHeld(hb)
		} else {
			b.Retain()
		}
	}
	if err := op.reportLate(ctx, b); err != nil {
		return err
	}
	return op.flush(ctx)
}

func (op *WindowAggOp) reportLate(ctx context.Context, b arrow.RecordBatch) error {
	var seqs, times []int64
	for i, o := range op.outs {
		if o == windows.Late {
			times = append(times, op.times[i])
			seqs = append(seqs, op.seqs[i])
		}
	}
	if len(times) == 0 {
		return nil
	}
	op.lateEvents.Add(int64(len(times)))
	if op.spec.OnLate == nil {
		return fmt.Errorf("%d late events and nowhere to put them", len(times))
	}
	return op.spec.OnLate(ctx, seqs, times)
}

// newHeld returns a held batch for b, with a copy of the batch's times
// and sequences, reusing the slices of one released before.
func (op *WindowAggOp) newHeld(b arrow.RecordBatch) *heldBatch {
	hb := &heldBatch{}
	if n := len(op.spareHeld); n > 0 {
		hb = op.spareHeld[n-1]
		op.spareHeld = op.spareHeld[:n-1]
	}
	hb.rec = b
	hb.times = append(hb.times[:0], op.times...)
	hb.seqs = append(hb.seqs[:0], op.seqs...)
	hb.ids = hb.ids[:0]
	return hb
}

// freeHeld keeps a released held batch's slices for newHeld.
func (op *WindowAggOp) freeHeld(hb *heldBatch) {
	if hb.dirty {
		panic(fmt.Sprintf("exec: held batch with %d rows freed with folds pending", len(hb.times)))
	}
	hb.rec = nil
	if len(op.spareHeld) < 2 { // Advance releases about one batch per Push
		op.spareHeld = append(op.spareHeld, hb)
	}
}

// changedBatch is Changed(id, 1) for every row the batch's Assign placed:
// one pass over the IDs, which touches a window's bookkeeping again only
// when it was not already dirty (or EMIT EARLY EVERY n EVENTS counts). It
// returns the number of rows placed.
func (op *WindowAggOp) changedBatch() int {
	if n := op.asg.Slots(); n > 0 {
		op.growSlots(windows.ID(n - 1))
	}
	placed := 0
	if op.spec.Emit.EveryEvents > 0 {
		for _, id := range op.ids {
			if id != windows.NoWindow {
				op.Changed(id, 1)
				placed++
			}
		}
		return placed
	}
	dirty := op.dirty
	for _, id := range op.ids {
		if id != windows.NoWindow {
			placed++
			if !dirty[id] {
				op.markDirty(id)
			}
		}
	}
	return placed
}

// grow makes all the per-slot bookkeeping cover slot id (checkpoints
// write it all).
func (op *WindowAggOp) grow(id windows.ID) {
	op.growSlots(id)
	if int(id) >= len(op.since) {
		op.since = growTo(op.since, len(op.dirty))
	}
}

// growSlots makes the per-slot bookkeeping the hot paths use cover slot
// id: without EMIT EARLY EVERY n EVENTS, not since, which is then all 0
// and would be 8 bytes per window for nothing. It grows by a quarter, not
// double, since the bookkeeping is part of every open window's memory.
func (op *WindowAggOp) growSlots(id windows.ID) {
	if int(id) < len(op.dirty) {
		if op.spec.Emit.EveryEvents > 0 && int(id) >= len(op.since) {
			op.since = growTo(op.since, len(op.dirty))
		}
		return
	}
	n := max(len(op.dirty)+len(op.dirty)/4, int(id)+1, 64)
	op.emitted = growTo(op.emitted, n)
	op.emStart = growTo(op.emStart, n)
	op.emFinal = growTo(op.emFinal, n)
	op.dirty = growTo(op.dirty, n)
	if op.spec.Emit.EveryEvents > 0 {
		op.since = growTo(op.since, n)
	}
}

// growTo returns s zero-extended to length n (if shorter).
func growTo[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// clearSince zeroes window id's event count (see since).
func (op *WindowAggOp) clearSince(id windows.ID) {
	if int(id) < len(op.since) {
		op.since[id] = 0
	}
}

// Changed implements windows.Observer: window id changed, by events new
// events. It decides whether the window's row must be written. Events are
// counted only for EMIT EARLY EVERY n EVENTS, the one use of the count.
func (op *WindowAggOp) Changed(id windows.ID, events int) {
	op.growSlots(id)
	if n := op.spec.Emit.EveryEvents; n > 0 {
		op.since[id] += int64(events)
		if op.since[id] >= n && op.since[id]-int64(events) < n {
			op.due = append(op.due, id)
		}
	}
	if !op.dirty[id] {
		op.markDirty(id)
	}
}

// markDirty records the first change of window id since its last row.
func (op *WindowAggOp) markDirty(id windows.ID) {
	op.dirty[id] = true
	if op.spec.Emit.Every > 0 {
		op.changed = append(op.changed, id)
	}
	if _, end := op.asg.Bounds(id); end != windows.NoEnd && end < op.wm {
		// Fired already: a change within the allowed lateness updates the
		// final row.
		op.due = append(op.due, id)
	}
}

// Merge implements windows.Observer: the absorbed window's aggregates move
// into the survivor, and its row goes.
func (op *WindowAggOp) Merge(into, from windows.ID) {
	op.applyFolds()
	for _, a := range op.accs {
		a.Merge(into, from)
	}
	op.growSlots(max(into, from))
	var since int64
	if int(from) < len(op.since) {
		since = op.since[from]
	}
	op.retract(from)
	op.Changed(into, int(since))
}

// Gone implements windows.Observer.
func (op *WindowAggOp) Gone(id windows.ID) {
	op.growSlots(id)
	op.retract(id)
	op.Reset(id)
}

// retract queues the deletion of the window's row, if it has one, and
// forgets the window.
func (op *WindowAggOp) retract(id windows.ID) {
	if op.emitted[id] {
		op.pend.retract(op.asg.Key(id), op.emStart[id])
	}
	op.emitted[id], op.dirty[id] = false, false
	op.clearSince(id)
}

// Fold implements windows.Observer: rows of held batches join slot id.
// Folds are buffered and applied a batch at a time (applyFolds) before
// anything reads or resets the slots.
func (op *WindowAggOp) Fold(id windows.ID, refs []uint64) {
	for _, r := range refs {
		op.folds = append(op.folds, foldRef{ref: r, id: id})
	}
}

type foldRef struct {
	ref uint64 // batch number << 32 | row
	id  windows.ID
}

// applyFolds folds the buffered rows into their slots: per held batch, in
// order of batch number, one Update per aggregate with the batch's rows
// mapped to their slots. Each fold is set in its batch's row map, so no
// sort is needed.
func (op *WindowAggOp) applyFolds() {
	if len(op.folds) == 0 {
		return
	}
	var hb *heldBatch
	bn := uint32(0)
	for _, f := range op.folds {
		if b := uint32(f.ref >> 32); hb == nil || b != bn {
			bn, hb = b, op.held[b]
			if hb == nil {
				panic(fmt.Sprintf("exec: fold of rows of batch %d, which is not held", bn))
			}
			if !hb.dirty {
				hb.dirty, hb.bn = true, bn
				op.dirtyHeld = append(op.dirtyHeld, hb)
				if n := int(hb.rec.NumRows()); len(hb.ids) != n {
					hb.ids = resize(hb.ids, n)
					clearIDs(hb.ids)
				}
			}
		}
		row := uint32(f.ref)
		if hb.ids[row] != windows.NoWindow {
			// The same row for a second slot: fold what is set first.
			op.updateHeld(hb, hb.ids)
			clearIDs(hb.ids)
		}
		hb.ids[row] = f.id
	}
	op.folds = op.folds[:0]
	if len(op.dirtyHeld) > 1 {
		slices.SortFunc(op.dirtyHeld, func(a, b *heldBatch) int { return cmp.Compare(a.bn, b.bn) })
	}
	for _, hb := range op.dirtyHeld {
		op.updateHeld(hb, hb.ids)
		clearIDs(hb.ids)
		hb.dirty = false
	}
	op.dirtyHeld = op.dirtyHeld[:0]
}

func clearIDs(ids []windows.ID) {
	for i := range ids {
		ids[i] = windows.NoWindow
	}
}

func (op *WindowAggOp) updateHeld(hb *heldBatch, ids []windows.ID) {
	in := windows.Input{Times: hb.times, Seqs: hb.seqs}
	for i, a := range op.accs {
		in.Col = nil
		if arg := op.spec.Aggs[i].Arg; arg >= 0 {
			in.Col = hb.rec.Column(arg)
		}
		a.Update(ids, in)
	}
}

// Copy implements windows.Observer.
func (op *WindowAggOp) Copy(dst, src windows.ID) {
	op.applyFolds()
	for _, a := range op.accs {
		a.Copy(dst, src)
	}
}

// Reset implements windows.Observer.
func (op *WindowAggOp) Reset(id windows.ID) {
	op.applyFolds()
	for _, a := range op.accs {
		a.Reset(id)
	}
}

// Unmatched implements windows.Observer.
func (op *WindowAggOp) Unmatched(n int) { op.unmatched.Add(int64(n)) }

// write queues the window's row. final marks rows of windows the watermark
// has passed.
func (op *WindowAggOp) write(id windows.ID) {
	start, end := op.asg.Bounds(id)
	key := op.asg.Key(id)
	if op.emitted[id] && op.emStart[id] != start {
		op.pend.retract(key, op.emStart[id])
	}
	op.pend.ids = append(op.pend.ids, id)
	op.pend.keys = append(op.pend.keys, op.pend.keep(key))
	op.pend.starts = append(op.pend.starts, start)
	op.pend.ends = append(op.pend.ends, end)
	final := end != windows.NoEnd && end < op.wm
	op.pend.final = append(op.pend.final, final)
	op.emitted[id], op.emStart[id], op.emFinal[id], op.dirty[id] = true, start, final, false
	op.clearSince(id)
}

// Advance implements Operator: windows the watermark has passed fire,
// windows the frontier has passed close.
func (op *WindowAggOp) Advance(ctx context.Context, wm Watermark) error {
	if int64(wm) > op.wm {
		op.wm = int64(wm)
		op.watermark.Store(op.wm)
		lat := op.spec.Lateness.Milliseconds()
		op.asg.Advance(op.wm, lat, op, func(id windows.ID) {
			op.growSlots(id)
			if op.dirty[id] || !op.emitted[id] || !op.emFinal[id] {
				op.write(id)
			}
		}, func(id windows.ID) {
			// A late change may have moved a fired window's end past the
			// watermark again, leaving a partial row: write the final one.
			if op.dirty[id] || !op.emFinal[id] {
				op.write(id)
			}
			op.emitted[id], op.emFinal[id], op.dirty[id] = false, false, false
			op.clearSince(id)
			op.pend.release = append(op.pend.release, id)
		})
		op.applyFolds()
		if op.keeps {
			f := windows.Frontier(op.wm, lat)
			for bn, hb := range op.held {
				if hb.maxT < f {
					hb.rec.Release()
					delete(op.held, bn)
					op.freeHeld(hb)
				}
			}
		}
	}
	if err := op.flush(ctx); err != nil {
		return err
	}
	return op.out.Advance(ctx, wm)
}

// Tick implements Operator: EMIT EARLY EVERY INTERVAL writes the windows
// that changed since the last tick.
func (op *WindowAggOp) Tick(ctx context.Context, now time.Time) error {
	every := op.spec.Emit.Every
	if every <= 0 {
		return nil
	}
	if op.lastEarly.IsZero() {
		op.lastEarly = now
	}
	if now.Sub(op.lastEarly) < every {
		return nil
	}
	op.lastEarly = now
	op.due = append(op.due, op.changed...)
	op.changed = op.changed[:0]
	return op.flush(ctx)
}

// flush writes the due windows' rows and the queued retractions downstream
// as one batch.
func (op *WindowAggOp) flush(ctx context.Context) error {
	op.applyFolds()
	for _, id := range op.due {
		if op.dirty[id] {
			op.write(id)
		}
	}
	op.due = op.due[:0]
	defer func() {
		for _, id := range op.pend.release {
			op.Reset(id)
		}
		op.pend.reset()
		op.updateStats()
	}()
	if len(op.pend.ids)+len(op.pend.retractKeys) == 0 {
		return nil
	}
	rec, err := op.build()
	if err != nil {
		return err
	}
	defer rec.Release()
	return op.out.Push(ctx, rec)
}

// build makes the output batch of the pending rows: the upserts, then the
// retractions of keys no upsert of the batch writes.
func (op *WindowAggOp) build() (arrow.RecordBatch, error) {
	p := &op.pend
	nu := len(p.ids)
	keys, starts := p.keys, p.starts
	if len(p.retractKeys) > 0 {
		written := make(map[string]bool, nu+len(p.retractKeys))
		for i := range nu {
			written[rowKey(p.keys[i], p.starts[i])] = true
		}
		for i, k := range p.retractKeys {
			if rk := rowKey(k, p.retractStarts[i]); !written[rk] {
				written[rk] = true
				keys = append(keys, k)
				starts = append(starts, p.retractStarts[i])
			}
		}
	}
	n := len(keys)
	nk := len(op.spec.Keys)
	fields := op.schema.Fields()
	keyBytes := 0
	for _, k := range keys {
		keyBytes += len(k)
	}
	bs := make([]array.Builder, nk+2)
	for i := range bs {
		bs[i] = array.NewBuilder(op.mem, fields[i].Type)
		defer bs[i].Release()
		// Sized once: growing as rows come costs a reallocation each time.
		bs[i].Reserve(n)
		if sb, ok := bs[i].(*array.StringBuilder); ok {
			sb.ReserveData(keyBytes)
		}
	}
	for i := range n {
		if err := op.codec.Decode(keys[i], bs[:nk]); err != nil {
			return nil, fmt.Errorf("window aggregate: %w", err)
		}
		bs[nk].(*array.TimestampBuilder).Append(arrow.Timestamp(starts[i]))
		if i < nu && p.ends[i] != windows.NoEnd {
			bs[nk+1].(*array.TimestampBuilder).Append(arrow.Timestamp(p.ends[i]))
		} else {
			bs[nk+1].AppendNull()
		}
	}
	cols := make([]arrow.Array, 0, op.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, b := range bs {
		cols = append(cols, b.NewArray())
	}
	for _, a := range op.accs {
		col := a.Emit(op.mem, p.ids)
		if n > nu {
			nulls := array.MakeArrayOfNull(op.mem, col.DataType(), n-nu)
			all, err := array.Concatenate([]arrow.Array{col, nulls}, op.mem)
			col.Release()
			nulls.Release()
			if err != nil {
				return nil, fmt.Errorf("window aggregate: %w", err)
			}
			col = all
		}
		cols = append(cols, col)
	}
	fb, rb := array.NewBooleanBuilder(op.mem), array.NewBooleanBuilder(op.mem)
	defer fb.Release()
	defer rb.Release()
	fb.Reserve(n)
	rb.Reserve(n)
	for i := range n {
		fb.Append(i < nu && p.final[i])
		rb.Append(i >= nu)
	}
	cols = append(cols, fb.NewArray(), rb.NewArray())
	op.emittedRows.Add(int64(nu))
	op.retractions.Add(int64(n - nu))
	return array.NewRecordBatch(op.schema, cols, int64(n)), nil
}

// rowKey identifies a result row: its encoded group key and start.
func rowKey(key []byte, start int64) string {
	return strconv.FormatInt(start, 10) + "/" + string(key)
}

func (op *WindowAggOp) updateStats() {
	var acc int64
	for _, a := range op.accs {
		acc += a.StateBytes()
	}
	var held int64
	for _, hb := range op.held {
		held += int64(len(hb.times))*16 + int64(len(hb.ids))*4
	}
	op.open.Store(int64(op.asg.Open()))
	op.stateBytes.Store(op.asg.StateBytes() + acc + held)
}

// OpenWindows returns the number of open windows; safe from any goroutine.
func (op *WindowAggOp) OpenWindows() int64 { return op.open.Load() }

// StateBytes estimates the window state's memory; safe from any goroutine.
func (op *WindowAggOp) StateBytes() int64 { return op.stateBytes.Load() }

// LateEvents counts events that were too late; safe from any goroutine.
func (op *WindowAggOp) LateEvents() int64 { return op.lateEvents.Load() }

// Watermark returns the event-time watermark the operator has seen, in ms
// since the Unix epoch (MinWatermark before the first); safe from any
// goroutine.
func (op *WindowAggOp) Watermark() Watermark { return Watermark(op.watermark.Load()) }

// UnmatchedEvents counts EVENT_WINDOW events outside every window; safe
// from any goroutine.
func (op *WindowAggOp) UnmatchedEvents() int64 { return op.unmatched.Load() }

// Close implements Operator.
func (op *WindowAggOp) Close() error {
	for bn, hb := range op.held {
		hb.rec.Release()
		delete(op.held, bn)
	}
	return nil
}

// String implements Operator.
func (op *WindowAggOp) String() string {
	var aggs []string
	for _, a := range op.spec.Aggs {
		aggs = append(aggs, a.Desc)
	}
	s := fmt.Sprintf("WindowAggregate %s keys=[%s] aggs=[%s] emit=%s", op.spec.Desc, strings.Join(op.spec.KeyNames, ", "), strings.Join(aggs, ", "), op.spec.Emit)
	if op.spec.Lateness > 0 {
		s += fmt.Sprintf(" lateness=%s", op.spec.Lateness)
	}
	return s
}
