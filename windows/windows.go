package windows

import "fmt"

// ID names a window's slot. IDs are reused after a window closes or is
// absorbed by a merge.
type ID int32

// NoWindow is the ID given to an event that was not assigned.
const NoWindow ID = -1

// Outcome says what Assign did with an event.
type Outcome uint8

const (
	// Assigned: the event is in window ids[i].
	Assigned Outcome = iota
	// Late: the event is behind the closing frontier and would change a
	// window that has already closed; it is in no window.
	Late
)

func (o Outcome) String() string {
	switch o {
	case Assigned:
		return "assigned"
	case Late:
		return "late"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Event is what an Assigner needs to know of one event.
type Event struct {
	Time int64 // event time, ms
	Gap  int64 // SESSION gap, ms (per event, so that dynamic gaps fit)
}

// Merger is told when two windows of a key become one, before Assign
// returns. The caller merges its per-window state of from into into; from
// is then dead.
type Merger interface {
	Merge(into, from ID)
}

// Assigner places events into windows and closes them. One Assigner serves
// one query; it is not safe for concurrent use.
type Assigner interface {
	// Assign places events[i], whose group key is keys[i] (an encoded key;
	// equal bytes = same group), into a window. It writes the window to
	// ids[i] and what happened to outs[i]. Merges triggered by the batch
	// are reported to m as they happen; when Assign returns, every ids[i]
	// names a live window (IDs of windows absorbed during the batch are
	// rewritten), so the caller can fold the batch's rows in afterwards.
	Assign(keys [][]byte, events []Event, ids []ID, outs []Outcome, m Merger)
	// Bounds returns a live window's [start, end).
	Bounds(id ID) (start, end int64)
	// Key returns a live window's encoded group key. The caller must not
	// modify it.
	Key(id ID) []byte
	// CloseUpTo moves the closing frontier to f (it never moves back) and
	// closes every window whose end is before it, calling closed for each
	// in order of end, then releasing the window's slot. Inside closed the
	// window is still live (Bounds and Key work).
	CloseUpTo(f int64, closed func(id ID))
	// Open returns the number of open windows.
	Open() int
	// Slots returns one more than the largest ID ever handed out, so
	// per-slot state can be sized.
	Slots() int
	// StateBytes estimates the memory held for open windows and their keys.
	StateBytes() int64
}
