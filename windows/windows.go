package windows

import (
	"fmt"
	"math"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// ID names a slot: a window, or (for the sequential kinds) a hidden copy of
// a window's settled state. IDs are reused after a window closes or goes.
type ID int32

// NoWindow is the ID given to an event that was not assigned.
const NoWindow ID = -1

// NoEnd is the end of a window whose end is not known yet (an EVENT_WINDOW
// without TIMEOUT that has not seen its END).
const NoEnd int64 = math.MaxInt64

// Outcome says what Assign did with an event.
type Outcome uint8

const (
	// Assigned: the event is in window ids[i]; the caller folds it now.
	Assigned Outcome = iota
	// Deferred: the assigner keeps the event (by Event.Ref) and will ask
	// the caller to fold it, with Observer.Fold, into whatever window it
	// belongs to once that is known. The caller must keep the row until
	// the frontier (watermark minus lateness) passes the event's time.
	Deferred
	// Late: the event is behind the frontier and could change a window
	// that has already closed; it is in no window.
	Late
)

func (o Outcome) String() string {
	switch o {
	case Assigned:
		return "assigned"
	case Deferred:
		return "deferred"
	case Late:
		return "late"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Event is what an Assigner needs to know of one event.
type Event struct {
	Time int64 // event time, ms
	Gap  int64 // SESSION gap, ms, per event so that dynamic gaps fit
	Seq  int64 // arrival order (stream sequence): ties between equal times
	// Start and End are EVENT_WINDOW's START WHEN and END WHEN conditions.
	Start, End bool
	Ref        uint64 // the caller's handle for the event's row
}

// Observer is told how windows change while Assign and Advance run, so that
// the caller keeps its per-slot state (aggregates, emitted rows) in step.
type Observer interface {
	// Merge: window from joins window into. The caller merges its state of
	// from into into; from is gone (a row emitted for it must be retracted)
	// and into has changed.
	Merge(into, from ID)
	// Fold: the deferred events refs belong to slot id. refs is borrowed
	// for the call.
	Fold(id ID, refs []uint64)
	// Copy: slot dst's state becomes slot src's.
	Copy(dst, src ID)
	// Reset: slot id's state is discarded.
	Reset(id ID)
	// Changed: window id's bounds or contents changed, other than by the
	// events Assign returned as Assigned to it; events is the number of
	// events that joined it (0 when only its bounds moved).
	Changed(id ID, events int)
	// Gone: window id no longer exists because the windows of its key were
	// recomputed (an out-of-order event split or moved them); a row emitted
	// for it must be retracted. Its state is reset and its slot reused.
	Gone(id ID)
	// Unmatched: n events turned out to belong to no window (EVENT_WINDOW
	// events while no window is open).
	Unmatched(n int)
}

// Assigner places events into windows and closes them. One Assigner serves
// one query; it is not safe for concurrent use.
//
// Time: the watermark wm says events before it are late by the bounded
// out-of-orderness; the allowed lateness L keeps windows updatable until
// the frontier wm-L passes their end. A window fires (its row becomes
// final) when wm passes its end, and closes (its state is released) when
// the frontier does.
type Assigner interface {
	// Assign places events[i], whose group key is keys[i] (an encoded key;
	// equal bytes = same group). For each it writes the outcome to outs[i]
	// and, for Assigned, the window to ids[i] (NoWindow otherwise). When
	// Assign returns every ids[i] names a live window, so the caller can
	// fold the batch's rows afterwards; merges and other changes during the
	// batch are reported to o as they happen.
	Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, o Observer)
	// Advance moves the watermark to wm (never back) with allowed lateness
	// lateness: it settles deferred events before wm-lateness, calls fire
	// for every window whose end wm has passed (once per window, in order
	// of end), and close for every window whose end the frontier has
	// passed, then releases the window. Inside fire and close the window is
	// live (Bounds and Key work).
	Advance(wm, lateness int64, o Observer, fire, close func(id ID))
	// Bounds returns a live window's start and end; end is NoEnd when not
	// yet known.
	Bounds(id ID) (start, end int64)
	// Key returns a live window's encoded group key. The caller must not
	// modify it, and must copy it to keep it past the next Assign,
	// Advance or Load: the assigner reuses a forgotten key's memory.
	Key(id ID) []byte
	// Open returns the number of live windows.
	Open() int
	// Slots returns one more than the largest ID ever handed out, so
	// per-slot state can be sized.
	Slots() int
	// StateBytes estimates the memory held for live windows and their keys.
	StateBytes() int64
	// Save appends the assigner's state to w. It is called between
	// Assign/Advance calls, never inside one.
	Save(w *snap.Writer)
	// Load replaces the state of an assigner fresh from its constructor
	// (with SetLazy already applied, for Sequential) with state written by
	// Save of an assigner built the same way. Corrupt input returns an
	// error (never a panic).
	//
	// The restored assigner is the saved one: every live window (and
	// hidden slot) keeps its ID, bounds, key and fired flag, and the free
	// list and queues are such that later calls hand out the same IDs and
	// make the same observer calls, fires and closes in the same order.
	// Deferred events keep their Event.Ref; the caller restores the rows
	// they refer to, and its own per-slot state, alongside. On error the
	// assigner is unchanged.
	Load(r *snap.Reader) error
}

// Frontier returns wm - lateness without overflow.
func Frontier(wm, lateness int64) int64 {
	if wm < math.MinInt64+lateness {
		return math.MinInt64
	}
	return wm - lateness
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
