package exec

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// WatermarkOp generates a view's watermark from its source's event times:
// "the watermark trails the largest event time seen by d" (bounded
// out-of-orderness). It sees every event of the source, before WHERE, so
// a filter cannot hold the watermark back.
//
// With an idle timeout, when no batch has arrived for that long, the
// watermark advances with processing time (to now - d) so quiet streams
// still close their windows.
//
// Each batch is pushed on before the watermark it raises, so the events of
// a batch are judged against the watermark of the batches before it.
type WatermarkOp struct {
	timeCol   int
	timeName  string
	delayMs   int64
	idle      time.Duration
	out       Downstream
	maxTime   int64
	wm        Watermark
	now       time.Time // last processing time from Tick
	lastEvent time.Time // processing time of the last batch with rows
}

// NewWatermarkOp returns a watermark generator over the timestamp column
// timeCol (named name) with bound delay; idle 0 disables the idle timeout.
func NewWatermarkOp(timeCol int, name string, delay, idle time.Duration) *WatermarkOp {
	return &WatermarkOp{timeCol: timeCol, timeName: name, delayMs: delay.Milliseconds(), idle: idle, maxTime: int64(MinWatermark), wm: MinWatermark}
}

var _ Operator = (*WatermarkOp)(nil)

// Open implements Operator.
func (w *WatermarkOp) Open(_ context.Context, out Downstream) error {
	w.out = out
	return nil
}

// Push implements Operator.
func (w *WatermarkOp) Push(ctx context.Context, b arrow.RecordBatch) error {
	if b.NumRows() == 0 {
		return nil
	}
	col, ok := b.Column(w.timeCol).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("watermark: column %d is %s, not a timestamp", w.timeCol, b.Column(w.timeCol).DataType())
	}
	for i, v := range col.TimestampValues() {
		if col.IsValid(i) && int64(v) > w.maxTime {
			w.maxTime = int64(v)
		}
	}
	w.lastEvent = w.now
	if err := w.out.Push(ctx, b); err != nil {
		return err
	}
	return w.raise(ctx, Watermark(w.maxTime-w.delayMs))
}

func (w *WatermarkOp) raise(ctx context.Context, wm Watermark) error {
	if wm <= w.wm {
		return nil
	}
	w.wm = wm
	return w.out.Advance(ctx, wm)
}

// Advance implements Operator; a source-level watermark (none today) would
// be passed through.
func (w *WatermarkOp) Advance(ctx context.Context, wm Watermark) error { return w.raise(ctx, wm) }

// Tick implements Operator: it records processing time and applies the
// idle timeout. (The pipeline ticks every operator itself, in order.)
func (w *WatermarkOp) Tick(ctx context.Context, now time.Time) error {
	if w.lastEvent.IsZero() {
		w.lastEvent = now // idle time counts from the pipeline's start
	}
	w.now = now
	if w.idle > 0 && now.Sub(w.lastEvent) >= w.idle {
		if err := w.raise(ctx, Watermark(now.UnixMilli()-w.delayMs)); err != nil {
			return err
		}
	}
	return nil
}

// Current returns the watermark so far.
func (w *WatermarkOp) Current() Watermark { return w.wm }

// Close implements Operator.
func (w *WatermarkOp) Close() error { return nil }

// String implements Operator.
func (w *WatermarkOp) String() string {
	s := fmt.Sprintf("Watermark %s - %s", w.timeName, time.Duration(w.delayMs)*time.Millisecond)
	if w.idle > 0 {
		s += fmt.Sprintf(" idle_timeout %s", w.idle)
	}
	return s
}
