package exec

import (
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Watermark is an event-time watermark in milliseconds since the Unix epoch.
// A watermark W promises that events with a time before W are late: a
// pipeline may treat them as later than its bound. Watermarks never
// decrease.
type Watermark int64

// MinWatermark is the watermark before any event has been seen.
const MinWatermark Watermark = -1 << 63

// Downstream receives batches and watermarks.
//
// Both calls borrow their arguments: the caller keeps ownership of b and
// releases it after Push returns. A consumer that keeps a batch (to buffer
// it, or emit it later) calls b.Retain and owns one Release.
//
// An error ends the pipeline: the caller stops pushing and closes.
type Downstream interface {
	Push(ctx context.Context, b arrow.RecordBatch) error
	Advance(ctx context.Context, wm Watermark) error
}

// Operator is one step of a pipeline. A pipeline runs on one goroutine, so
// an operator is never called concurrently and takes no locks.
//
// Lifecycle: Open once with the operator's downstream (nil for the last
// operator of a pipeline); then any sequence of Push, Advance and Tick;
// then Close. Close is idempotent and safe after a
// failed Open or without Open. Cancellation of ctx is checked once per batch
// and returned as ctx.Err().
type Operator interface {
	Downstream
	Open(ctx context.Context, out Downstream) error
	// Tick delivers processing time (EMIT EARLY EVERY, idle timeouts).
	// Operators never read the clock themselves.
	Tick(ctx context.Context, now time.Time) error
	Close() error
	// String is the operator's one EXPLAIN line.
	String() string
}

// Changes is one set of changes to a keyed table, applied atomically:
// first the deletes, then the upserts. Either batch may be nil.
//
// Upserts holds whole rows in the table's schema. Deletes holds only the
// table's key columns, in key order. Within one Changes a key appears at
// most once across both batches.
//
// Apply borrows Changes; the caller releases the batches afterwards.
type Changes struct {
	Upserts arrow.RecordBatch
	Deletes arrow.RecordBatch
}

// Release releases both batches; safe on a zero Changes.
func (c Changes) Release() {
	if c.Upserts != nil {
		c.Upserts.Release()
	}
	if c.Deletes != nil {
		c.Deletes.Release()
	}
}

// Empty reports whether c changes nothing.
func (c Changes) Empty() bool {
	return (c.Upserts == nil || c.Upserts.NumRows() == 0) &&
		(c.Deletes == nil || c.Deletes.NumRows() == 0)
}

// Table is somewhere results go: the live in-memory result table, a
// PostgreSQL table, or both. A table without keys is append-only (dead
// letters): Deletes is always nil and Upserts are inserts.
type Table interface {
	Apply(ctx context.Context, c Changes) error
}
