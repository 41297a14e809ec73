package exec

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/windows"
	"github.com/sessionsql/sessionsql/windows/snap"
)

// Stateful is an operator whose state goes into checkpoints. SaveState is
// called on the pipeline's goroutine between batches; LoadState after
// Open and before the first batch, on an operator built from the same
// plan.
type Stateful interface {
	SaveState(w *snap.Writer) error
	LoadState(r *snap.Reader) error
}

// checkpointVersion changes whenever the layout of saved state does; a
// checkpoint of another version is refused (the view then rebuilds from
// its stream).
const checkpointVersion = 1

// SaveState implements Stateful.
func (w *WatermarkOp) SaveState(s *snap.Writer) error {
	s.Section("watermark")
	s.Int(w.maxTime)
	s.Int(int64(w.wm))
	return nil
}

// LoadState implements Stateful.
func (w *WatermarkOp) LoadState(r *snap.Reader) error {
	r.Section("watermark")
	w.maxTime = r.Int()
	w.wm = Watermark(r.Int())
	return r.Err()
}

// SaveState implements Stateful. Between batches nothing is due, folded
// or pending, so the state is: the watermark, the assigner, per slot the
// emission bookkeeping and the aggregates, the windows changed since the
// last early emission, and the batches whose rows the assigner may still
// fold (Arrow IPC).
func (op *WindowAggOp) SaveState(w *snap.Writer) error {
	if len(op.due)+len(op.folds)+len(op.pend.ids)+len(op.pend.retractKeys) > 0 {
		return fmt.Errorf("window aggregate: checkpoint in the middle of a batch")
	}
	w.Section("window_agg")
	w.Int(op.wm)
	w.Uint(uint64(op.nextBatch))
	for _, c := range []int64{op.lateEvents.Load(), op.unmatched.Load(), op.emittedRows.Load(), op.retractions.Load()} {
		w.Int(c)
	}
	// The last early emission's processing time: after a restore the
	// next one is due as it was (at once, if the restart took longer).
	var last int64
	if !op.lastEarly.IsZero() {
		last = op.lastEarly.UnixNano()
	}
	w.Int(last)
	op.asg.Save(w)
	n := op.asg.Slots()
	if n > 0 {
		op.grow(windows.ID(n - 1))
	}
	w.Section("emission")
	w.Bools(op.emitted[:n])
	w.Ints(op.emStart[:n])
	w.Bools(op.emFinal[:n])
	w.Bools(op.dirty[:n])
	w.Ints(op.since[:n])
	changed := make([]int64, len(op.changed))
	for i, id := range op.changed {
		changed[i] = int64(id)
	}
	w.Ints(changed)
	w.Section("aggregates")
	for _, a := range op.accs {
		a.Save(w, n)
	}
	w.Section("held")
	bns := slices.Sorted(maps.Keys(op.held))
	w.Uint(uint64(len(bns)))
	for _, bn := range bns {
		hb := op.held[bn]
		w.Uint(uint64(bn))
		w.Int(hb.maxT)
		w.Ints(hb.times)
		w.Ints(hb.seqs)
		blob, err := WriteIPC(hb.rec)
		if err != nil {
			return fmt.Errorf("window aggregate: save held batch: %w", err)
		}
		w.Blob(blob)
	}
	return nil
}

// LoadState implements Stateful.
func (op *WindowAggOp) LoadState(r *snap.Reader) error {
	r.Section("window_agg")
	op.wm = r.Int()
	op.watermark.Store(op.wm)
	op.nextBatch = uint32(r.Uint())
	for _, c := range []*atomic.Int64{&op.lateEvents, &op.unmatched, &op.emittedRows, &op.retractions} {
		c.Store(r.Int())
	}
	op.lastEarly = time.Time{}
	if last := r.Int(); last != 0 {
		op.lastEarly = time.Unix(0, last)
	}
	if err := r.Err(); err != nil {
		return err
	}
	if err := op.asg.Load(r); err != nil {
		return err
	}
	n := op.asg.Slots()
	r.Section("emission")
	op.emitted, op.emStart, op.emFinal, op.dirty, op.since = r.Bools(), r.Ints(), r.Bools(), r.Bools(), r.Ints()
	changed := r.Ints()
	if r.Err() != nil {
		return r.Err()
	}
	for _, l := range []int{len(op.emitted), len(op.emStart), len(op.emFinal), len(op.dirty), len(op.since)} {
		if l != n {
			return r.Failf("emission state for %d slots, the assigner has %d", l, n)
		}
	}
	op.changed = op.changed[:0]
	for _, id := range changed {
		if id < 0 || id >= int64(n) {
			return r.Failf("changed window %d out of %d slots", id, n)
		}
		op.changed = append(op.changed, windows.ID(id))
	}
	if err := r.Section("aggregates"); err != nil {
		return err
	}
	for _, a := range op.accs {
		if err := a.Load(r); err != nil {
			return err
		}
	}
	r.Section("held")
	nh := r.Len(4)
	for range nh {
		bn := uint32(r.Uint())
		hb := &heldBatch{maxT: r.Int(), times: r.Ints(), seqs: r.Ints()}
		blob := r.Blob()
		if r.Err() != nil {
			return r.Err()
		}
		rec, err := ReadIPC(op.mem, blob)
		if err != nil {
			return r.Failf("held batch %d: %v", bn, err)
		}
		if int(rec.NumRows()) != len(hb.times) || len(hb.times) != len(hb.seqs) {
			rec.Release()
			return r.Failf("held batch %d: %d rows, %d times, %d seqs", bn, rec.NumRows(), len(hb.times), len(hb.seqs))
		}
		if old := op.held[bn]; old != nil {
			old.rec.Release()
		}
		hb.rec = rec
		op.held[bn] = hb
	}
	if err := r.Err(); err != nil {
		return err
	}
	op.updateStats()
	return nil
}

// WriteIPC encodes one batch as an Arrow IPC stream (checkpoints hold
// batches this way).
func WriteIPC(rec arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadIPC decodes one batch written by WriteIPC; the caller releases it.
func ReadIPC(mem memory.Allocator, blob []byte) (arrow.RecordBatch, error) {
	rd, err := ipc.NewReader(bytes.NewReader(blob), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	if !rd.Next() {
		if err := rd.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no batch")
	}
	rec := rd.RecordBatch()
	rec.Retain()
	return rec, nil
}
