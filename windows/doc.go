// Package windows assigns events to windows, merges windows, decides when
// they close, and keeps the per-window aggregate state. It imports only
// Arrow; nothing here knows about SQL, sources or sinks.
//
// # Windows and slots
//
// Every open window lives in a slot, named by an ID (a small integer that is
// an index into the slot arrays of the Assigner and of every Accumulator).
// Slots of closed or absorbed windows are reused, so memory follows the
// number of open windows, not the length of the stream.
//
// An Assigner (Session today; EVENT_WINDOW later) owns the slots. It
// places a batch of events into windows of their keys, calls a Merger when
// an event joins windows that were separate (an out-of-order event that
// bridges two sessions), and closes windows when the closing frontier
// (watermark minus allowed lateness) passes their end.
//
// An Accumulator keeps one aggregate (COUNT, SUM, MIN, ...) for every slot
// in plain typed slices. The operator that drives both (exec's window
// aggregate) calls Assign once per batch and Update once per batch per
// aggregate, so the hot path has no per-row interface calls.
//
// # Time
//
// All times are int64 milliseconds since the Unix epoch. A window covers
// [start, end): for a session, start is its first event's time and end is
// its last event's time plus the gap ("intervals that overlap or touch
// merge", so an event at exactly end joins it).
//
// # Lateness
//
// The frontier F is the watermark minus the allowed lateness; a window
// closes once F > end. An event at time t >= F can only touch open windows,
// so it is always assigned. An event with t < F is accepted only when its
// key still holds open windows and t is after every closed window of that
// key (so it cannot belong to a window already emitted as final);
// otherwise it is Late, and the caller records it in the view's late table.
// This never changes a final row, and it gives exactly the batch result
// whenever no event is later than the allowed lateness.
package windows
