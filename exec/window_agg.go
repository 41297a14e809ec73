package exec

import (
	"context"
	"fmt"
	"math"
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

// WindowSpec describes a window query's grouping.
type WindowSpec struct {
	Keys     []int    // input columns of the group keys, in GROUP BY order
	KeyNames []string // their names, for EXPLAIN and the output schema
	Time     int      // input column of the event time (a timestamp)
	Seq      int      // input column of the stream sequence, for late events
	// NewAssigner returns the window kind's assigner; Desc describes it for
	// EXPLAIN, e.g. "SESSION(ts, 30m0s)".
	NewAssigner func() windows.Assigner
	Desc        string
	// Gap is the SESSION gap given to every event.
	Gap      time.Duration
	Lateness time.Duration
	Aggs     []AggSpec
	// OnLate receives events too late for their window (stream sequences
	// and event times); it is called from the pipeline's goroutine.
	OnLate func(ctx context.Context, seqs, times []int64) error
}

// Output column names of the window aggregate, after the group keys.
const (
	ColWindowStart = "$window_start"
	ColWindowEnd   = "$window_end"
	ColFinal       = "$final"
)

// WindowAggOp assigns events to windows, folds them into per-window
// aggregates, and emits a row per window when the watermark closes it.
//
// Input: any batch holding the key, time, sequence and aggregate-argument
// columns the spec names. Output rows: the group keys, $window_start,
// $window_end, one column per aggregate, then $final (true: the window has
// closed). EMIT FINAL rows are emitted on Advance, in order of window end.
type WindowAggOp struct {
	spec   WindowSpec
	mem    memory.Allocator
	out    Downstream
	schema *arrow.Schema
	codec  *KeyCodec
	asg    windows.Assigner
	accs   []windows.Accumulator

	// per-batch scratch, reused
	keyCols []arrow.Array
	events  []windows.Event
	ids     []windows.ID
	outs    []windows.Outcome

	open, stateBytes, lateEvents atomic.Int64
}

// NewWindowAggOp returns the operator for spec over input of schema in.
func NewWindowAggOp(mem memory.Allocator, spec WindowSpec, in *arrow.Schema) (*WindowAggOp, error) {
	op := &WindowAggOp{spec: spec, mem: mem}
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
	fields = append(fields,
		arrow.Field{Name: ColWindowStart, Type: tt},
		arrow.Field{Name: ColWindowEnd, Type: tt})
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
	fields = append(fields, arrow.Field{Name: ColFinal, Type: arrow.FixedWidthTypes.Boolean})
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
	return nil
}

// Merge implements windows.Merger: the absorbed window's aggregates move
// into the survivor.
func (op *WindowAggOp) Merge(into, from windows.ID) {
	for _, a := range op.accs {
		a.Merge(into, from)
	}
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
	times := b.Column(op.spec.Time).(*array.Timestamp)
	tv := times.TimestampValues()
	gap := op.spec.Gap.Milliseconds()
	op.events = resize(op.events, n)
	for i := range op.events {
		op.events[i] = windows.Event{Time: int64(tv[i]), Gap: gap}
	}
	op.ids = resize(op.ids, n)
	op.outs = resize(op.outs, n)
	op.asg.Assign(keys, op.events, op.ids, op.outs, op)
	for i, a := range op.accs {
		var col arrow.Array
		if arg := op.spec.Aggs[i].Arg; arg >= 0 {
			col = b.Column(arg)
		}
		a.Update(op.ids, col)
	}
	if err := op.reportLate(ctx, b); err != nil {
		return err
	}
	op.updateStats()
	return nil
}

func (op *WindowAggOp) reportLate(ctx context.Context, b arrow.RecordBatch) error {
	var seqs, times []int64
	for i, o := range op.outs {
		if o != windows.Late {
			continue
		}
		times = append(times, op.events[i].Time)
		if op.spec.Seq >= 0 {
			seqs = append(seqs, b.Column(op.spec.Seq).(*array.Int64).Value(i))
		} else {
			seqs = append(seqs, 0)
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

// Advance implements Operator: windows whose end is before the watermark
// minus the allowed lateness close, and their final rows are pushed.
func (op *WindowAggOp) Advance(ctx context.Context, wm Watermark) error {
	frontier := int64(wm)
	if lat := op.spec.Lateness.Milliseconds(); frontier > math.MinInt64+lat {
		frontier -= lat
	}
	var ids []windows.ID
	var bs []array.Builder // made on the first closed window: most watermarks close none
	defer func() {
		for _, b := range bs {
			b.Release()
		}
	}()
	nk := len(op.spec.Keys)
	var decodeErr error
	op.asg.CloseUpTo(frontier, func(id windows.ID) {
		if bs == nil {
			for _, f := range op.schema.Fields()[:nk+2] {
				bs = append(bs, array.NewBuilder(op.mem, f.Type))
			}
		}
		ids = append(ids, id)
		if err := op.codec.Decode(op.asg.Key(id), bs[:nk]); err != nil && decodeErr == nil {
			decodeErr = err
		}
		start, end := op.asg.Bounds(id)
		bs[nk].(*array.TimestampBuilder).Append(arrow.Timestamp(start))
		bs[nk+1].(*array.TimestampBuilder).Append(arrow.Timestamp(end))
	})
	if decodeErr != nil {
		return fmt.Errorf("window aggregate: %w", decodeErr)
	}
	if len(ids) > 0 {
		if err := op.emit(ctx, ids, bs); err != nil {
			return err
		}
	}
	op.updateStats()
	return op.out.Advance(ctx, wm)
}

func (op *WindowAggOp) emit(ctx context.Context, ids []windows.ID, bs []array.Builder) error {
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
		cols = append(cols, a.Emit(op.mem, ids))
		for _, id := range ids {
			a.Reset(id)
		}
	}
	fb := array.NewBooleanBuilder(op.mem)
	defer fb.Release()
	for range ids {
		fb.Append(true)
	}
	cols = append(cols, fb.NewArray())
	rec := array.NewRecordBatch(op.schema, cols, int64(len(ids)))
	defer rec.Release()
	return op.out.Push(ctx, rec)
}

func (op *WindowAggOp) updateStats() {
	var slot int64
	for _, a := range op.accs {
		slot += a.SlotBytes()
	}
	op.open.Store(int64(op.asg.Open()))
	op.stateBytes.Store(op.asg.StateBytes() + int64(op.asg.Slots())*slot)
}

// OpenWindows returns the number of open windows; safe from any goroutine.
func (op *WindowAggOp) OpenWindows() int64 { return op.open.Load() }

// StateBytes estimates the window state's memory; safe from any goroutine.
func (op *WindowAggOp) StateBytes() int64 { return op.stateBytes.Load() }

// LateEvents counts events that were too late; safe from any goroutine.
func (op *WindowAggOp) LateEvents() int64 { return op.lateEvents.Load() }

// Tick implements Operator.
func (op *WindowAggOp) Tick(context.Context, time.Time) error { return nil }

// Close implements Operator.
func (op *WindowAggOp) Close() error { return nil }

// String implements Operator.
func (op *WindowAggOp) String() string {
	var aggs []string
	for _, a := range op.spec.Aggs {
		aggs = append(aggs, a.Desc)
	}
	s := fmt.Sprintf("WindowAggregate %s keys=[%s] aggs=[%s] emit=final", op.spec.Desc, strings.Join(op.spec.KeyNames, ", "), strings.Join(aggs, ", "))
	if op.spec.Lateness > 0 {
		s += fmt.Sprintf(" lateness=%s", op.spec.Lateness)
	}
	return s
}
