// Package windows assigns events to windows, merges and recomputes
// windows, decides when they fire and close, and keeps the per-window
// aggregate state. It imports only Arrow; nothing here knows about SQL,
// sources or sinks.
//
// # Windows and slots
//
// Every live window lives in a slot, named by an ID (a small integer that
// is an index into the slot arrays of the Assigner and of every
// Accumulator). Slots of closed or absorbed windows are reused, so memory
// follows the number of open windows, not the length of the stream.
//
// There are two assigners behind one interface:
//
//   - Session: SESSION with a fixed or per-event gap. Windows only ever
//     merge (an out-of-order event that bridges two sessions), which does
//     not depend on arrival order, so every event is assigned at once.
//   - Sequential: EVENT_WINDOW and SESSION with MAX. These are state
//     machines over each key's events in event-time order, so an
//     out-of-order event can split or move windows. Per key the assigner
//     keeps the events the frontier has not passed yet (by Ref: the caller
//     holds their rows) and recomputes the windows over them when one lands
//     in their midst; events the frontier has passed are settled. In-order
//     events take a fast path and are assigned at once.
//
// The assigner reports what happens to windows to an Observer (the window
// operator): merges, rows to fold into a slot, slot copies and resets,
// windows that changed or are gone. The operator keeps the aggregates and
// the rows it has written in step.
//
// An Accumulator keeps one aggregate (COUNT, SUM, COUNT(DISTINCT),
// FIRST_VALUE, ...) for every slot in plain typed slices. The operator
// calls Assign once per batch and Update once per batch per aggregate, so
// the hot path has no per-row interface calls.
//
// # The hot path
//
// Per event the work is a few random memory accesses into state far
// larger than the caches (100,000 keys), so the layout is made for them:
//
//   - Keys live in a keyTable: an open-addressing index of hashes in front
//     of one record per key that holds the key's bytes (inline up to 16)
//     and its state, reused when keys come and go. Slots are one array of
//     structs (bounds, owner, deadline, fired). Neither holds pointers for
//     Session, so the garbage collector does not trace them.
//   - Assign looks up a chunk of keys, then loads their state, then
//     assigns: the loads of the first two passes are independent, so
//     their cache misses overlap.
//   - Windows fire and close through a timing wheel of deadline buckets
//     (deadlineQueue), filed by append, not a heap of every open window;
//     the sequential kinds' settle queue is a wheel too.
//   - Accumulators fold a batch in one typed loop per aggregate; the
//     per-slot arrays grow by a quarter, not double.
//
// No allocation happens per event once the stream is steady; see
// BenchmarkWindowAgg in exec for events/s and bytes per open window.
//
// # Time
//
// All times are int64 milliseconds since the Unix epoch. A window covers
// [start, end): for a session, start is its first event's time and end is
// its last event's time plus the gap ("intervals that overlap or touch
// merge", so an event at exactly end joins it). An EVENT_WINDOW's end is
// its END event's time, the next START's time, or the last event's time
// plus the TIMEOUT; NoEnd while none of these is known.
//
// # Firing, closing and lateness
//
// With watermark W and allowed lateness L, the frontier is F = W - L. A
// window fires (its row becomes final) when W passes its end, and closes
// (its state is released) when F passes its end; in between a late event
// still updates it. For sessions, an event at t < F is accepted only when
// its key still holds windows and t is after every closed window of that
// key (so it cannot belong to a window whose state is gone); for the
// sequential kinds every event at t < F is Late. Late events are reported
// to the caller, which records them in the view's late table. This never
// changes a closed window, and it gives exactly the batch result whenever
// no event is later than the allowed lateness.
package windows
