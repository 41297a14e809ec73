package sink

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessionsql/sessionsql/exec"
)

// PGTable is one table in the sink database, written with batched
// statements: never one statement per row. It is safe for concurrent use,
// but a table's changes must be applied in order, so one pipeline writes
// it.
type PGTable struct {
	p       *Postgres
	spec    TableSpec
	ident   pgx.Identifier // schema-qualified table name
	cols    []string       // column names in schema order
	keyCols []string       // key column names in key order
	keyList string         // "k1", "k2" quoted
	allIdx  []int          // 0..len(cols)-1
	keyIdx  []int          // 0..len(keyCols)-1

	// Staging tables (see stageDDL). batchCol is the staging column that
	// tells one ApplyTx's rows from an earlier one's in the same
	// transaction.
	batchCol    string
	upsertStage pgx.Identifier
	upsertDDL   string
	upsertSQL   string // $1 = batch id
	deleteStage pgx.Identifier
	deleteDDL   string

	// mergeOnly counts down the change sets that skip the direct COPY
	// after one hit an existing key (see ApplyTx).
	mergeOnly atomic.Int64
}

// directRetry is how many change sets of a keyed table go straight to the
// staged merge after a direct COPY met an existing key, before the next
// one tries again: a view whose upserts are mostly updates (early
// emission, a rebuild over rows already there) wastes one aborted COPY
// per directRetry change sets.
const directRetry = 100

var _ exec.Table = (*PGTable)(nil)

// batchIDs numbers staged batches; unique in the process, hence in every
// transaction of its connections.
var batchIDs atomic.Int64

func newPGTable(p *Postgres, spec TableSpec, schema string) *PGTable {
	t := &PGTable{p: p, spec: spec, ident: pgx.Identifier{schema, spec.Name}}
	for i, f := range spec.Schema.Fields() {
		t.cols = append(t.cols, f.Name)
		t.allIdx = append(t.allIdx, i)
	}
	for i, k := range spec.Key {
		t.keyCols = append(t.keyCols, spec.Schema.Field(k).Name)
		t.keyIdx = append(t.keyIdx, i)
	}
	t.keyList = quotedList(t.keyCols)
	if !spec.Keyed() {
		return t
	}
	t.batchCol = "sessionsql_batch"
	for slices.Contains(t.cols, t.batchCol) {
		t.batchCol += "_"
	}
	t.upsertStage, t.upsertDDL = t.stageDDL("sessionsql_upsert", nil)
	t.deleteStage, t.deleteDDL = t.stageDDL("sessionsql_delete", spec.Key)

	// INSERT INTO t (cols) SELECT cols FROM stage WHERE batch = $1
	// ON CONFLICT (keys) DO UPDATE SET c = EXCLUDED.c, ...
	colList := quotedList(t.cols)
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s = $1 ON CONFLICT (%s) DO ",
		t.ident.Sanitize(), colList, colList, t.upsertStage.Sanitize(), pgx.Identifier{t.batchCol}.Sanitize(), t.keyList)
	isKey := make(map[int]bool, len(spec.Key))
	for _, k := range spec.Key {
		isKey[k] = true
	}
	first := true
	for i, c := range t.cols {
		if isKey[i] {
			continue
		}
		if first {
			b.WriteString("UPDATE SET ")
			first = false
		} else {
			b.WriteString(", ")
		}
		q := pgx.Identifier{c}.Sanitize()
		fmt.Fprintf(&b, "%s = EXCLUDED.%s", q, q)
	}
	if first { // every column is a key column
		b.WriteString("NOTHING")
	}
	t.upsertSQL = b.String()
	return t
}

// stageDDL returns the name of a staging table for the columns at idx (all
// when nil) plus the batch column, and the statement that creates it.
//
// A staging table is a temporary table of the connection, created by the
// first ApplyTx of a transaction that needs it and dropped at commit or
// rollback (ON COMMIT DROP). It never outlives its transaction, so it needs
// no emptying and always has the current columns. Rows of several ApplyTx
// calls on one table in one transaction accumulate in it; each call reads
// its own rows by batch id. ON COMMIT DELETE ROWS was measured and
// rejected: PostgreSQL then truncates every such table of the session at
// every commit that touched a temporary table (0.5 to 1 ms per table on
// the development machine: with 200 such tables a one-row commit took
// 100-250 ms), so commits slow down with the number of tables ever written
// on the connection. Creating the tables per transaction costs about 1 ms
// and measured the same throughput as reusing them.
//
// The name is a hash of the table's qualified name and the column
// definitions: distinct per table, and distinct when a table is dropped and
// created again with other columns within one transaction.
func (t *PGTable) stageDDL(prefix string, idx []int) (pgx.Identifier, string) {
	var defs strings.Builder
	writeColumnDefs(&defs, t.spec, idx)
	fmt.Fprintf(&defs, ", %s BIGINT", pgx.Identifier{t.batchCol}.Sanitize())
	h := fnv.New64a()
	h.Write([]byte(t.ident.Sanitize()))
	h.Write([]byte(defs.String()))
	name := fmt.Sprintf("%s_%016x", prefix, h.Sum64())
	ddl := fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DROP",
		pgx.Identifier{name}.Sanitize(), defs.String())
	return pgx.Identifier{"pg_temp", name}, ddl
}

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Spec returns the table's spec.
func (t *PGTable) Spec() TableSpec { return t.spec }

// DeleteWhereFalse deletes the rows whose boolean column col is false (or
// NULL) and returns how many it deleted. A view's result table uses it
// with is_final to drop partial rows that a rebuild may not write again.
func (t *PGTable) DeleteWhereFalse(ctx context.Context, col string) (int64, error) {
	var n int64
	err := t.p.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM "+t.ident.Sanitize()+" WHERE "+pgx.Identifier{col}.Sanitize()+" IS NOT TRUE")
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, t.wrap("delete partial rows", err)
	}
	return n, nil
}

// Apply applies c in one transaction of its own (see ApplyTx). An empty c
// does nothing.
func (t *PGTable) Apply(ctx context.Context, c exec.Changes) error {
	if c.Empty() {
		return nil
	}
	return t.p.InTx(ctx, func(tx pgx.Tx) error { return t.ApplyTx(ctx, tx, c) })
}

// ApplyTx applies c inside tx, so a caller can write several tables and a
// progress row in one transaction; it may be called several times for one
// table in one transaction. For a keyed table it runs, for the deletes and
// then the upserts that are present (one round trip each; b is a batch id
// unique in the process):
//
//	CREATE TEMP TABLE IF NOT EXISTS stage_d (keys, batch) ON COMMIT DROP; (the same for stage_u)
//	COPY stage_d (keys, batch) FROM STDIN BINARY
//	WITH d0 AS (DELETE FROM t USING stage_d s WHERE s.batch = b AND t.k1 = s.k1 AND t.k2 = s.k2)
//	DELETE FROM t USING stage_d s WHERE s.batch = b AND t.k1 = s.k1 AND s.k2 IS NULL AND t.k2 IS NULL
//	COPY stage_u (cols, batch) FROM STDIN BINARY
//	INSERT INTO t (cols) SELECT cols FROM stage_u WHERE batch = b
//	    ON CONFLICT (keys) DO UPDATE SET c = EXCLUDED.c, ...
//
// (see deleteSQL for the NULL patterns). Upserts without deletes are
// first tried as inserts, COPY t (cols) FROM STDIN BINARY in a savepoint
// (insertDirect), and merged as above only if a key already exists. For
// an append-only table it runs COPY t (cols) FROM STDIN BINARY. Errors
// name the table; IsUnavailable tells a broken connection from the rest. After an error tx must be
// rolled back.
func (t *PGTable) ApplyTx(ctx context.Context, tx pgx.Tx, c exec.Changes) error {
	if err := t.spec.checkChanges(c); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	hasDel := c.Deletes != nil && c.Deletes.NumRows() > 0
	hasUp := c.Upserts != nil && c.Upserts.NumRows() > 0
	if !t.spec.Keyed() {
		if !hasUp {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, t.ident, t.cols, newBatchSource(c.Upserts, t.allIdx, -1)); err != nil {
			return t.wrap("append", err)
		}
		return nil
	}
	if hasUp && !hasDel {
		if t.mergeOnly.Load() > 0 {
			t.mergeOnly.Add(-1)
		} else if done, err := t.insertDirect(ctx, tx, c.Upserts); done || err != nil {
			return err
		}
	}
	var ddl string
	switch {
	case hasDel && hasUp:
		ddl = t.deleteDDL + "; " + t.upsertDDL
	case hasDel:
		ddl = t.deleteDDL
	case hasUp:
		ddl = t.upsertDDL
	default:
		return nil
	}
	// The simple protocol runs both statements in one round trip.
	if _, err := tx.Exec(ctx, ddl, pgx.QueryExecModeSimpleProtocol); err != nil {
		return t.wrap("create staging tables", err)
	}
	if hasDel {
		id := batchIDs.Add(1)
		cols := append(slices.Clip(t.keyCols), t.batchCol)
		if _, err := tx.CopyFrom(ctx, t.deleteStage, cols, newBatchSource(c.Deletes, t.keyIdx, id)); err != nil {
			return t.wrap("copy deletes", err)
		}
		if _, err := tx.Exec(ctx, t.deleteSQL(nullPatterns(c.Deletes)), id); err != nil {
			return t.wrap("delete", err)
		}
	}
	if hasUp {
		id := batchIDs.Add(1)
		cols := append(slices.Clip(t.cols), t.batchCol)
		if _, err := tx.CopyFrom(ctx, t.upsertStage, cols, newBatchSource(c.Upserts, t.allIdx, id)); err != nil {
			return t.wrap("copy upserts", err)
		}
		if _, err := tx.Exec(ctx, t.upsertSQL, id); err != nil {
			return t.wrap("upsert", err)
		}
	}
	return nil
}

// insertDirect tries to write upserts as inserts: COPY straight into the
// table, inside a savepoint. A view's rows are mostly new (a final-only
// view writes each window once), and this is about 2.6 times cheaper for
// PostgreSQL than COPY into a staging table and INSERT ... ON CONFLICT
// (330,000 rows on the development machine: 0.53 s against 1.39 s). If
// a key already exists the COPY fails with unique_violation; the
// savepoint is rolled back, done is false and the caller merges instead,
// and the next directRetry change sets merge at once.
func (t *PGTable) insertDirect(ctx context.Context, tx pgx.Tx, u arrow.RecordBatch) (done bool, err error) {
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return false, t.wrap("savepoint", err)
	}
	_, err = sp.CopyFrom(ctx, t.ident, t.cols, newBatchSource(u, t.allIdx, -1))
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return false, t.wrap("release savepoint", err)
		}
		return true, nil
	}
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.UniqueViolation {
		return false, t.wrap("copy", err)
	}
	if err := sp.Rollback(ctx); err != nil {
		return false, t.wrap("rollback to savepoint", err)
	}
	t.mergeOnly.Store(directRetry)
	return false, nil
}

func (t *PGTable) wrap(step string, err error) error {
	return fmt.Errorf("sink table %q: %s: %w", t.spec.Name, step, err)
}

// nullPatterns returns the distinct patterns of NULL key columns in the
// delete batch (bit i set: key column i is NULL), sorted so that one set
// of patterns always gives the same statement text (pgx caches prepared
// statements by text).
func nullPatterns(d arrow.RecordBatch) []uint64 {
	cols := d.Columns()
	anyNull := false
	for _, c := range cols {
		if c.NullN() > 0 {
			anyNull = true
		}
	}
	if !anyNull {
		return []uint64{0}
	}
	var pats []uint64
	seen := map[uint64]bool{}
	for row := range int(d.NumRows()) {
		var p uint64
		for i, c := range cols {
			if c.IsNull(row) {
				p |= 1 << i
			}
		}
		if !seen[p] {
			seen[p] = true
			pats = append(pats, p)
		}
	}
	slices.Sort(pats)
	return pats
}

// deleteSQL returns the one statement that deletes the staged keys of
// batch $1. NULL keys must match NULL keys, as in the table's UNIQUE NULLS
// NOT DISTINCT key. "t.k IS NOT DISTINCT FROM s.k" says that, but
// PostgreSQL can neither hash-join nor index-scan on it, which makes a
// delete a scan of the whole table per staged row; so each pattern of NULL
// key columns present in the batch gets its own DELETE, using = for the
// non-NULL columns (hash join or index scan) and IS NULL on both sides for
// the NULL ones. The patterns pick disjoint staged rows, hence disjoint
// table rows, so the DELETEs can run as data-modifying CTEs of one
// statement. The common case, no NULL key, is one plain equi-join.
func (t *PGTable) deleteSQL(patterns []uint64) string {
	var b strings.Builder
	target := t.ident.Sanitize()
	stage := t.deleteStage.Sanitize()
	batch := pgx.Identifier{t.batchCol}.Sanitize()
	for n, p := range patterns {
		last := n == len(patterns)-1
		switch {
		case !last && n == 0:
			fmt.Fprintf(&b, "WITH d%d AS (", n)
		case !last:
			fmt.Fprintf(&b, ", d%d AS (", n)
		case n > 0:
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "DELETE FROM %s AS t USING %s AS s WHERE s.%s = $1", target, stage, batch)
		for i, c := range t.keyCols {
			q := pgx.Identifier{c}.Sanitize()
			if p&(1<<i) != 0 {
				fmt.Fprintf(&b, " AND s.%s IS NULL AND t.%s IS NULL", q, q)
			} else {
				fmt.Fprintf(&b, " AND t.%s = s.%s", q, q)
			}
		}
		if !last {
			b.WriteString(")")
		}
	}
	return b.String()
}
