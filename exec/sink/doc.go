// Package sink owns where results go: the live in-memory result table
// served to SELECT (Memory) and the tables of the PostgreSQL sink database
// (Postgres, PGTable). Both implement exec.Table: Apply takes an
// exec.Changes (deletes of key columns, then upserts of whole rows, applied
// atomically) and never keeps its batches.
//
// # Tables
//
// A TableSpec names a table, its columns (the engine's six types: BIGINT,
// DOUBLE PRECISION, TEXT, BOOLEAN, TIMESTAMP, TIMESTAMPTZ) and its key. A
// view's result table is keyed by its group keys and window start. A table
// without a key is append-only: a dead-letter table (<source>_rejects,
// <view>_late) that takes no deletes and whose upserts are inserts.
//
// NULL keys: SQL's GROUP BY puts NULL keys in one group, so a NULL key
// column equals a NULL key column here, in memory and in PostgreSQL. A
// PRIMARY KEY cannot hold NULL, so keyed PostgreSQL tables get
// UNIQUE NULLS NOT DISTINCT (key columns) instead, which needs PostgreSQL
// 15 (OpenPostgres checks server_version_num >= 150000). Keys compare as
// that index does: -0 equals 0 and NaN equals NaN; an update keeps the key
// values first written. exec.Changes promises a key at most once per
// change set; if that breaks, a Memory takes the last upsert while
// PostgreSQL refuses the change set (ON CONFLICT cannot affect a row
// twice), so the bug surfaces as an error of the sink.
//
// # Memory
//
// Memory keeps rows in Go memory, one slice per column, updated in place,
// with a map from encoded key to row slot. Scan copies the live rows into
// one new Arrow batch, in a deterministic order: first-insertion order of
// the keys (an update keeps its place; a deleted key that comes back goes
// last), arrival order for an append-only table. Deleted slots are
// compacted away once they are at least half of all slots.
//
// An append-only Memory keeps only its newest rows (WithMaxAppendRows,
// default DefaultMaxAppendRows = 100,000) so a stream of bad events cannot
// exhaust memory; Dropped counts the rows it let go. The PostgreSQL table
// keeps every row.
//
// Concurrency: Apply runs on one pipeline goroutine; Scan, Len and Dropped
// on any number of connection goroutines. Apply holds a sync.RWMutex for
// writing for the whole change set and Scan holds it for reading while it
// copies, so a Scan sees an Apply entirely or not at all. There is one lock
// per table and no other lock in the package.
//
// # PostgreSQL
//
// Postgres is a pgxpool.Pool. EnsureTable creates a table in the current
// schema (exclusive: it must not exist, else 42P07; otherwise an existing
// table is reused if its columns and key match, else 42P16 says what
// differs). Writes are never one statement per row. PGTable.Apply runs one
// transaction; PGTable.ApplyTx runs inside the caller's, so an epoch commit
// can write several tables and its progress row atomically (Postgres.InTx).
// For a keyed table, per change set:
//
//	CREATE TEMP TABLE IF NOT EXISTS stage_d (keys, batch) ON COMMIT DROP;
//	CREATE TEMP TABLE IF NOT EXISTS stage_u (cols, batch) ON COMMIT DROP
//	COPY stage_d (keys, batch) FROM STDIN BINARY
//	DELETE FROM t USING stage_d s WHERE s.batch = $1 AND t.k1 = s.k1 AND t.k2 = s.k2
//	COPY stage_u (cols, batch) FROM STDIN BINARY
//	INSERT INTO t (cols) SELECT cols FROM stage_u WHERE batch = $1
//	    ON CONFLICT (keys) DO UPDATE SET c = EXCLUDED.c, ...
//
// Deletes of keys with NULLs: "t.k IS NOT DISTINCT FROM s.k" would match
// them but can use neither a hash join nor the key's index, so each
// pattern of NULL key columns present in the batch gets its own DELETE
// (= for the non-NULL columns, IS NULL on both sides for the NULL ones),
// all in one statement as data-modifying CTEs. An append-only table gets
// COPY t (cols) FROM STDIN BINARY.
//
// The staging tables are per connection and per transaction (ON COMMIT
// DROP), named by a hash of the table and its columns; the batch column
// keeps apart the rows of several ApplyTx calls on one table within one
// transaction. ON COMMIT DELETE ROWS was measured and rejected: every
// commit then truncates every such table the session ever created.
//
// COPY reads the Arrow arrays directly (batchSource: one reused []any of
// per-column cells implementing pgtype's *Valuer interfaces), with no
// [][]any copy of the batch. TIMESTAMP columns are written as the UTC wall
// time and TIMESTAMPTZ columns as the instant, whatever the session's
// TimeZone. Text PostgreSQL cannot store (NUL bytes, invalid UTF-8, e.g. in
// a rejected payload) is written with U+FFFD so one bad message cannot
// wedge the pipeline; a timestamp outside PostgreSQL's range fails the
// change set.
//
// Errors name the table. Retries are the caller's business:
// IsUnavailable tells connection-level failures (refused, reset,
// terminated, server shutting down, pool closed) from errors a retry will
// not fix.
//
// Tests use package pgtest, which gives each test a schema of its own in
// the local PostgreSQL.
package sink
