package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// openPG opens a Postgres on a private schema, closed when the test ends.
func openPG(t testing.TB) *Postgres {
	t.Helper()
	p, err := OpenPostgres(context.Background(), pgtest.DSN(t), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// readPG reads every row of the spec's table as Go values (see rowsOf).
func readPG(t testing.TB, p *Postgres, spec TableSpec) [][]any {
	t.Helper()
	cols := make([]string, spec.Schema.NumFields())
	for i, f := range spec.Schema.Fields() {
		cols[i] = f.Name
	}
	rows, err := p.pool.Query(context.Background(),
		fmt.Sprintf("SELECT %s FROM %s", quotedList(cols), pgx.Identifier{spec.Name}.Sanitize()))
	if err != nil {
		t.Fatalf("read %s: %v", spec.Name, err)
	}
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("read %s: %v", spec.Name, err)
		}
		for i, v := range vals {
			if tm, ok := v.(time.Time); ok {
				vals[i] = tm.UTC()
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", spec.Name, err)
	}
	return out
}

func execPG(t testing.TB, p *Postgres, sql string) {
	t.Helper()
	if _, err := p.pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func countPG(t testing.TB, p *Postgres, table string) int {
	t.Helper()
	var n int
	if err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestPostgresMatchesMemory runs testdata/memory/* against a PostgreSQL
// table and a Memory side by side: after every change set both hold the
// same rows (PostgreSQL all of them, for an append-only table).
func TestPostgresMatchesMemory(t *testing.T) {
	p := openPG(t)
	datadriven.Walk(t, "testdata/memory", func(t *testing.T, path string) {
		r := &ddRunner{mem: newAlloc(t), pg: p}
		defer r.close()
		datadriven.RunTest(t, path, r.run)
	})
}

func TestEnsureTable(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	spec := specOf(t, "sessions", []string{"user_id BIGINT", "start TIMESTAMP", "events BIGINT", "device TEXT"}, "user_id", "start")

	if _, err := p.EnsureTable(ctx, spec, true); err != nil {
		t.Fatalf("create: %v", err)
	}
	// A second exclusive create is refused with 42P07.
	_, err := p.EnsureTable(ctx, spec, true)
	e, ok := sqlerr.As(err)
	if !ok || e.Code != pgerrcode.DuplicateTable || e.Message != `table "sessions" already exists in the sink database` || !strings.Contains(e.Hint, "DROP TABLE") {
		t.Fatalf("exclusive create of an existing table = %#v", err)
	}
	// Reuse works, with the columns in another order too.
	if _, err := p.EnsureTable(ctx, spec, false); err != nil {
		t.Fatalf("reuse: %v", err)
	}
	reordered := specOf(t, "sessions", []string{"device TEXT", "events BIGINT", "start TIMESTAMP", "user_id BIGINT"}, "user_id", "start")
	if _, err := p.EnsureTable(ctx, reordered, false); err != nil {
		t.Fatalf("reuse with columns reordered: %v", err)
	}
	// Reuse of a table that does not exist creates it.
	logs := specOf(t, "logs", []string{"seq BIGINT", "payload TEXT"})
	if _, err := p.EnsureTable(ctx, logs, false); err != nil {
		t.Fatalf("create by reuse: %v", err)
	}
	if countPG(t, p, "logs") != 0 {
		t.Fatal("new table not empty")
	}

	mismatch := []struct {
		name   string
		create string // the table as found in the database
		spec   TableSpec
		detail string
	}{
		{
			name:   "type",
			create: `CREATE TABLE m1 (user_id TEXT, start TIMESTAMP, UNIQUE NULLS NOT DISTINCT (user_id, start))`,
			spec:   specOf(t, "m1", []string{"user_id BIGINT", "start TIMESTAMP"}, "user_id", "start"),
			detail: `column "user_id" is text, want bigint`,
		},
		{
			name:   "timestamptz for timestamp",
			create: `CREATE TABLE m2 (user_id BIGINT, start TIMESTAMPTZ, UNIQUE NULLS NOT DISTINCT (user_id, start))`,
			spec:   specOf(t, "m2", []string{"user_id BIGINT", "start TIMESTAMP"}, "user_id", "start"),
			detail: `column "start" is timestamp with time zone, want timestamp`,
		},
		{
			name:   "missing and extra",
			create: `CREATE TABLE m3 (user_id BIGINT, other INT, UNIQUE NULLS NOT DISTINCT (user_id))`,
			spec:   specOf(t, "m3", []string{"user_id BIGINT", "events BIGINT"}, "user_id"),
			detail: `column "events" is missing; column "other" is not in the result`,
		},
		{
			name:   "no key",
			create: `CREATE TABLE m4 (user_id BIGINT, events BIGINT)`,
			spec:   specOf(t, "m4", []string{"user_id BIGINT", "events BIGINT"}, "user_id"),
			detail: `no UNIQUE NULLS NOT DISTINCT key on (user_id)`,
		},
		{
			name:   "another key",
			create: `CREATE TABLE m5 (user_id BIGINT, events BIGINT, UNIQUE NULLS NOT DISTINCT (user_id, events))`,
			spec:   specOf(t, "m5", []string{"user_id BIGINT", "events BIGINT"}, "user_id"),
			detail: `no UNIQUE NULLS NOT DISTINCT key on (user_id)`,
		},
		{
			name:   "nulls distinct",
			create: `CREATE TABLE m6 (user_id BIGINT PRIMARY KEY, events BIGINT)`,
			spec:   specOf(t, "m6", []string{"user_id BIGINT", "events BIGINT"}, "user_id"),
			detail: `the unique key on (user_id) treats NULLs as distinct, want UNIQUE NULLS NOT DISTINCT`,
		},
	}
	for _, tc := range mismatch {
		t.Run(tc.name, func(t *testing.T) {
			execPG(t, p, tc.create)
			_, err := p.EnsureTable(ctx, tc.spec, false)
			e, ok := sqlerr.As(err)
			if !ok || e.Code != pgerrcode.InvalidTableDefinition || e.Detail != tc.detail {
				t.Fatalf("EnsureTable = %v (detail %q), want 42P16 with detail %q", err, e.Detail, tc.detail)
			}
			if want := fmt.Sprintf("table %q in the sink database does not match", tc.spec.Name); !strings.HasPrefix(e.Message, want) {
				t.Fatalf("message %q, want %q...", e.Message, want)
			}
		})
	}

	t.Run("a view of that name", func(t *testing.T) {
		execPG(t, p, `CREATE VIEW v1 AS SELECT 1::bigint AS a`)
		_, err := p.EnsureTable(ctx, specOf(t, "v1", []string{"a BIGINT"}), false)
		if sqlerr.Code(err) != pgerrcode.WrongObjectType {
			t.Fatalf("EnsureTable over a view = %v", err)
		}
		_, err = p.EnsureTable(ctx, specOf(t, "v1", []string{"a BIGINT"}), true)
		if sqlerr.Code(err) != pgerrcode.DuplicateTable {
			t.Fatalf("exclusive EnsureTable over a view = %v", err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		if err := p.DropTable(ctx, "sessions"); err != nil {
			t.Fatal(err)
		}
		if err := p.DropTable(ctx, "sessions"); err != nil {
			t.Fatalf("drop of an absent table: %v", err)
		}
		if _, err := p.EnsureTable(ctx, spec, true); err != nil {
			t.Fatalf("create after drop: %v", err)
		}
	})

	t.Run("names that need quoting", func(t *testing.T) {
		odd := specOf(t, `we"ird name`, []string{`select BIGINT`, `"q" TEXT`, `Mixed BIGINT`}, "select")
		tbl, err := p.EnsureTable(ctx, odd, true)
		if err != nil {
			t.Fatal(err)
		}
		mem := newAlloc(t)
		c := exec.Changes{Upserts: buildRows(t, mem, odd.Schema, [][]any{{1, "x", 2}})}
		defer c.Release()
		for range 2 {
			if err := tbl.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if got := readPG(t, p, odd); len(got) != 1 {
			t.Fatalf("rows %v", got)
		}
		if _, err := p.EnsureTable(ctx, odd, false); err != nil {
			t.Fatalf("reuse: %v", err)
		}
	})
}

// TestPostgresApply covers upserts of new and existing keys, deletes
// (NULL keys too), an all-key table, two change sets in one transaction,
// and a table dropped and created again with other columns on the same
// connections (its staging tables must change with it).
func TestPostgresApply(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "s", []string{"k BIGINT", "d TEXT", "v BIGINT"}, "k", "d")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(tbl *PGTable, ups, dels [][]any) {
		t.Helper()
		var c exec.Changes
		if ups != nil {
			c.Upserts = buildRows(t, mem, tbl.Spec().Schema, ups)
		}
		if dels != nil {
			c.Deletes = buildRows(t, mem, tbl.Spec().KeySchema(), dels)
		}
		defer c.Release()
		if err := tbl.Apply(ctx, c); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	want := func(tbl *PGTable, rows ...[]any) {
		t.Helper()
		for _, r := range rows {
			for i, v := range r {
				if n, ok := v.(int); ok {
					r[i] = int64(n)
				}
			}
		}
		s := tbl.Spec().Schema
		if got, w := sortedRendering(s, readPG(t, p, tbl.Spec())), sortedRendering(s, rows); got != w {
			t.Fatalf("table:\n%s\nwant:\n%s", got, w)
		}
	}

	apply(tbl, [][]any{{1, "a", 1}, {1, nil, 2}, {nil, "a", 3}, {nil, nil, 4}}, nil)
	want(tbl, []any{1, "a", 1}, []any{1, nil, 2}, []any{nil, "a", 3}, []any{nil, nil, 4})
	apply(tbl, [][]any{{1, "a", 10}, {1, nil, 20}, {nil, "a", 30}, {nil, nil, 40}, {2, "b", 5}}, nil)
	want(tbl, []any{1, "a", 10}, []any{1, nil, 20}, []any{nil, "a", 30}, []any{nil, nil, 40}, []any{2, "b", 5})
	apply(tbl, [][]any{{3, "c", 6}}, [][]any{{1, nil}, {nil, nil}, {9, nil}, {nil, "z"}, {2, "b"}})
	want(tbl, []any{1, "a", 10}, []any{nil, "a", 30}, []any{3, "c", 6})

	t.Run("three change sets in one transaction", func(t *testing.T) {
		// The same keys in several change sets of one transaction: each
		// ApplyTx must see only its own staged rows.
		c1 := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{4, "d", 1}, {5, "e", 1}, {nil, nil, 1}})}
		defer c1.Release()
		c2 := exec.Changes{
			Deletes: buildRows(t, mem, spec.KeySchema(), [][]any{{4, "d"}, {nil, nil}}),
			Upserts: buildRows(t, mem, spec.Schema, [][]any{{5, "e", 2}}),
		}
		defer c2.Release()
		c3 := exec.Changes{
			Deletes: buildRows(t, mem, spec.KeySchema(), [][]any{{5, "e"}}),
			Upserts: buildRows(t, mem, spec.Schema, [][]any{{4, "d", 3}}),
		}
		defer c3.Release()
		err := p.InTx(ctx, func(tx pgx.Tx) error {
			for _, c := range []exec.Changes{c1, c2, c3} {
				if err := tbl.ApplyTx(ctx, tx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want(tbl, []any{1, "a", 10}, []any{nil, "a", 30}, []any{3, "c", 6}, []any{4, "d", 3})
	})

	t.Run("two tables of one shape in one transaction", func(t *testing.T) {
		other, err := p.EnsureTable(ctx, specOf(t, "s2", []string{"k BIGINT", "d TEXT", "v BIGINT"}, "k", "d"), true)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{9, "i", 9}})}
		defer c.Release()
		err = p.InTx(ctx, func(tx pgx.Tx) error {
			if err := tbl.ApplyTx(ctx, tx, c); err != nil {
				return err
			}
			return other.ApplyTx(ctx, tx, c)
		})
		if err != nil {
			t.Fatal(err)
		}
		want(other, []any{9, "i", 9})
		want(tbl, []any{1, "a", 10}, []any{nil, "a", 30}, []any{3, "c", 6}, []any{4, "d", 3}, []any{9, "i", 9})
	})

	t.Run("every column a key", func(t *testing.T) {
		keys := specOf(t, "keys_only", []string{"a BIGINT", "b TEXT"}, "a", "b")
		kt, err := p.EnsureTable(ctx, keys, true)
		if err != nil {
			t.Fatal(err)
		}
		apply(kt, [][]any{{1, "x"}, {nil, nil}}, nil)
		apply(kt, [][]any{{1, "x"}, {nil, nil}, {2, "y"}}, nil)
		apply(kt, nil, [][]any{{1, "x"}})
		want(kt, []any{nil, nil}, []any{2, "y"})
	})

	t.Run("table created again with other columns", func(t *testing.T) {
		// Warm every pooled connection's staging tables for the old shape.
		for range 4 {
			apply(tbl, [][]any{{7, "g", 1}}, [][]any{{8, "h"}})
		}
		if err := p.DropTable(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		spec2 := specOf(t, "s", []string{"k TEXT", "d TEXT", "w DOUBLE"}, "k")
		tbl2, err := p.EnsureTable(ctx, spec2, true)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			apply(tbl2, [][]any{{"x", "y", 1.5}}, [][]any{{"z"}})
		}
		want(tbl2, []any{"x", "y", 1.5})
	})
}

// TestPostgresTypesRoundTrip writes every type, extremes and NULLs
// included, and reads them back exactly, with a session time zone far from
// UTC: TIMESTAMP holds the UTC wall time, TIMESTAMPTZ the instant.
func TestPostgresTypesRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "types", []string{"id BIGINT", "i BIGINT", "f DOUBLE", "s TEXT", "b BOOLEAN", "ts TIMESTAMP", "tz TIMESTAMPTZ"}, "id")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	const (
		march1 = 1709294096789 // 2024-03-01 11:54:56.789 UTC
		y1     = -62135596800000
		y9999  = 253402300799999
	)
	rows := [][]any{
		{1, math.MaxInt64, math.MaxFloat64, "héllo, 世界 🎉", true, march1, march1},
		{2, math.MinInt64, -math.SmallestNonzeroFloat64, "", false, -1, -1},
		{3, 0, math.Inf(1), "tab\tnewline\nquote'\"back\\slash", true, y1, y1},
		{4, -1, math.Inf(-1), strings.Repeat("x", 100_000), false, y9999, y9999},
		{5, 42, math.NaN(), "NULL", true, 0, 0},
		{6, nil, nil, nil, nil, nil, nil},
		{7, 1, math.Copysign(0, -1), " ", false, int(minTimestampMillis), int(minTimestampMillis)},
		{8, 1, 1e-300, "z", true, int(maxTimestampMillis), int(maxTimestampMillis)},
	}
	c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, rows)}
	defer c.Release()
	if err := tbl.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}

	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET TimeZone = 'America/New_York'"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET TimeZone")
	res, err := conn.Query(ctx, `SELECT id, i, f, s, b, ts, tz, ts::text, (tz AT TIME ZONE 'UTC')::text FROM types ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Next() {
		var (
			id           int64
			i            *int64
			f            *float64
			s            *string
			b            *bool
			ts, tz       *time.Time
			tsTxt, tzTxt *string
		)
		if err := res.Scan(&id, &i, &f, &s, &b, &ts, &tz, &tsTxt, &tzTxt); err != nil {
			t.Fatal(err)
		}
		want := rows[id-1]
		n++
		if want[1] == nil {
			if i != nil || f != nil || s != nil || b != nil || ts != nil || tz != nil {
				t.Fatalf("row %d: want all NULL, got %v %v %v %v %v %v", id, i, f, s, b, ts, tz)
			}
			continue
		}
		if *i != int64(want[1].(int)) || *s != want[3].(string) || *b != want[4].(bool) {
			t.Fatalf("row %d: got %d %q %v, want %v", id, *i, *s, *b, want)
		}
		wf := want[2].(float64)
		if math.Float64bits(*f) != math.Float64bits(wf) && !(math.IsNaN(wf) && math.IsNaN(*f)) {
			t.Fatalf("row %d: float %v (%x), want %v (%x)", id, *f, math.Float64bits(*f), wf, math.Float64bits(wf))
		}
		if ts.UnixMilli() != int64(want[5].(int)) || ts.Location() != time.UTC {
			t.Fatalf("row %d: timestamp %v, want %d ms UTC", id, ts, want[5])
		}
		if tz.UnixMilli() != int64(want[6].(int)) {
			t.Fatalf("row %d: timestamptz %v, want %d ms", id, tz, want[6])
		}
		// TIMESTAMP shows the UTC wall time whatever the session's zone,
		// and TIMESTAMPTZ the same instant.
		if *tsTxt != *tzTxt {
			t.Fatalf("row %d: timestamp %q, timestamptz in UTC %q", id, *tsTxt, *tzTxt)
		}
		if id == 1 && *tsTxt != "2024-03-01 11:54:56.789" {
			t.Fatalf("timestamp text %q, want 2024-03-01 11:54:56.789", *tsTxt)
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(rows) {
		t.Fatalf("%d rows read, want %d", n, len(rows))
	}

	// ReadAll gives back exactly the batch written (in the session's
	// time zone or any other: timestamps are UTC milliseconds).
	back, err := tbl.ReadAll(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if got, want := sortedRendering(spec.Schema, rowsOf(back)), sortedRendering(spec.Schema, rowsOf(c.Upserts)); got != want {
		t.Fatalf("ReadAll:\n%s\nwant\n%s", got, want)
	}
}

// TestPostgresTextSanitized checks that TEXT PostgreSQL cannot hold (a NUL
// byte, invalid UTF-8) is written with U+FFFD instead of failing the batch.
func TestPostgresTextSanitized(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "rejects", []string{"seq BIGINT", "payload TEXT"})
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1, "a\x00b"}, {2, "bad \xff\xfe utf8"}, {3, "ok"}})}
	defer c.Release()
	if err := tbl.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	got := sortedRendering(spec.Schema, readPG(t, p, spec))
	want := sortedRendering(spec.Schema, [][]any{{int64(1), "a\uFFFDb"}, {int64(2), "bad \uFFFD utf8"}, {int64(3), "ok"}})
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPostgresTimestampOutOfRange(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "late", []string{"k BIGINT", "ts TIMESTAMP"}, "k")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1, 0}, {2, math.MaxInt64}})}
	defer c.Release()
	err = tbl.Apply(ctx, c)
	if err == nil || !strings.Contains(err.Error(), `sink table "late"`) || !strings.Contains(err.Error(), "outside PostgreSQL's range") {
		t.Fatalf("Apply = %v", err)
	}
	if IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%v) = true", err)
	}
	if n := countPG(t, p, "late"); n != 0 {
		t.Fatalf("%d rows written by a failed Apply", n)
	}
}

func TestPostgresAppendOnly(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "plays_rejects", []string{"seq BIGINT", "payload TEXT", "reason TEXT", "received_at TIMESTAMPTZ"})
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	row := []any{1, "{", "bad json", 1709294096789}
	c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{row, row, row})}
	defer c.Release()
	for range 3 {
		if err := tbl.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := countPG(t, p, "plays_rejects"); n != 9 {
		t.Fatalf("%d rows, want 9", n)
	}
	d := exec.Changes{Deletes: buildRows(t, mem, spec.Schema, [][]any{row})}
	defer d.Release()
	if err := tbl.Apply(ctx, d); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("deletes on an append-only table: %v", err)
	}
}

// TestPostgresLargeBatch upserts 100k rows in one change set, then updates
// them all, then deletes them all.
func TestPostgresLargeBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("100k rows")
	}
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := benchSpec(t, "big")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	for v := range 2 {
		c := exec.Changes{Upserts: benchBatch(t, mem, spec, 0, n, v)}
		if err := tbl.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Release()
		var count, sum int64
		if err := p.pool.QueryRow(ctx, "SELECT count(*), sum(events) FROM big").Scan(&count, &sum); err != nil {
			t.Fatal(err)
		}
		if count != n || sum != int64(n*v) {
			t.Fatalf("after round %d: %d rows, sum %d", v, count, sum)
		}
	}
	c := exec.Changes{Deletes: benchKeys(t, mem, spec, 0, n)}
	defer c.Release()
	if err := tbl.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := countPG(t, p, "big"); got != 0 {
		t.Fatalf("%d rows after deleting all", got)
	}
}

// TestPostgresAtomic checks that a failing Apply, or a failing InTx over
// several tables, leaves nothing behind.
func TestPostgresAtomic(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "a", []string{"k BIGINT", "v BIGINT"}, "k")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	logs := specOf(t, "a_late", []string{"k BIGINT"})
	ltbl, err := p.EnsureTable(ctx, logs, true)
	if err != nil {
		t.Fatal(err)
	}
	seed := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1, 1}, {2, 2}})}
	defer seed.Release()
	if err := tbl.Apply(ctx, seed); err != nil {
		t.Fatal(err)
	}
	before := sortedRendering(spec.Schema, readPG(t, p, spec))

	// The deletes run, then the upserts fail: a key twice breaks the
	// contract and ON CONFLICT refuses it.
	bad := exec.Changes{
		Deletes: buildRows(t, mem, spec.KeySchema(), [][]any{{1}}),
		Upserts: buildRows(t, mem, spec.Schema, [][]any{{3, 3}, {3, 4}}),
	}
	defer bad.Release()
	err = tbl.Apply(ctx, bad)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.CardinalityViolation || !strings.Contains(err.Error(), `sink table "a": upsert`) {
		t.Fatalf("Apply = %v, want a cardinality violation naming the table", err)
	}
	if IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%v) = true", err)
	}
	if got := sortedRendering(spec.Schema, readPG(t, p, spec)); got != before {
		t.Fatalf("a failed Apply changed the table:\n%s\nwas:\n%s", got, before)
	}

	good := exec.Changes{Deletes: buildRows(t, mem, spec.KeySchema(), [][]any{{2}})}
	defer good.Release()
	late := exec.Changes{Upserts: buildRows(t, mem, logs.Schema, [][]any{{1}})}
	defer late.Release()
	boom := errors.New("boom")
	err = p.InTx(ctx, func(tx pgx.Tx) error {
		if err := tbl.ApplyTx(ctx, tx, good); err != nil {
			return err
		}
		if err := ltbl.ApplyTx(ctx, tx, late); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if got := sortedRendering(spec.Schema, readPG(t, p, spec)); got != before || countPG(t, p, "a_late") != 0 {
		t.Fatalf("a failed transaction left changes:\n%s", got)
	}
	// The connection is usable again.
	if err := tbl.Apply(ctx, good); err != nil {
		t.Fatal(err)
	}
	if n := countPG(t, p, "a"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()

	t.Run("bad port", func(t *testing.T) {
		_, err := OpenPostgres(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", nil)
		if err == nil || !IsUnavailable(err) || !strings.Contains(err.Error(), "sink database 127.0.0.1:1/test is unreachable") {
			t.Fatalf("OpenPostgres on a closed port = %v (IsUnavailable %v)", err, IsUnavailable(err))
		}
	})

	t.Run("closed pool", func(t *testing.T) {
		p := openPG(t)
		mem := newAlloc(t)
		spec := specOf(t, "c", []string{"k BIGINT"}, "k")
		tbl, err := p.EnsureTable(ctx, spec, true)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1}})}
		defer c.Release()
		err = tbl.Apply(ctx, c)
		if !IsUnavailable(err) || !errors.Is(err, ErrClosed) {
			t.Fatalf("Apply on a closed Postgres = %v", err)
		}
		if _, err := p.EnsureTable(ctx, spec, false); !errors.Is(err, ErrClosed) {
			t.Fatalf("EnsureTable on a closed Postgres = %v", err)
		}
	})

	t.Run("connection terminated", func(t *testing.T) {
		p := openPG(t)
		mem := newAlloc(t)
		spec := specOf(t, "term", []string{"k BIGINT"}, "k")
		tbl, err := p.EnsureTable(ctx, spec, true)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1}})}
		defer c.Release()
		err = p.InTx(ctx, func(tx pgx.Tx) error {
			// Another session ends this transaction's backend.
			var pid int
			if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			if _, err := p.pool.Exec(ctx, "SELECT pg_terminate_backend($1, 10000)", pid); err != nil {
				return err
			}
			return tbl.ApplyTx(ctx, tx, c)
		})
		if err == nil || !IsUnavailable(err) {
			t.Fatalf("Apply on a terminated connection = %v (IsUnavailable %v)", err, IsUnavailable(err))
		}
		// The pool replaces the connection.
		if err := tbl.Apply(ctx, c); err != nil {
			t.Fatalf("Apply after the pool recovered: %v", err)
		}
	})

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"closed", fmt.Errorf("wrapped: %w", ErrClosed), true},
		{"unique violation", &pgconn.PgError{Code: pgerrcode.UniqueViolation}, false},
		{"auth", &pgconn.PgError{Code: pgerrcode.InvalidPassword}, false},
		{"admin shutdown", fmt.Errorf("x: %w", &pgconn.PgError{Code: pgerrcode.AdminShutdown}), true},
		{"connection failure", &pgconn.PgError{Code: pgerrcode.ConnectionFailure}, true},
		{"too many connections", &pgconn.PgError{Code: pgerrcode.TooManyConnections}, true},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"canceled", canceled.Err(), false},
		{"sqlerr", sqlerr.New(pgerrcode.DuplicateTable, "x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsUnavailable(tc.err); got != tc.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// benchSpec is a typical SESSION view's result table.
func benchSpec(t testing.TB, name string) TableSpec {
	return specOf(t, name, []string{
		"user_id BIGINT", "session_start TIMESTAMP", "session_end TIMESTAMP", "device TEXT",
		"events BIGINT", "bytes BIGINT", "avg_bytes DOUBLE", "is_final BOOLEAN", "emitted_at TIMESTAMPTZ",
	}, "user_id", "session_start")
}

// benchBatch returns rows for user ids [lo, lo+n) with events = v, built
// column by column (fast enough for 100k-row batches under -race).
func benchBatch(t testing.TB, mem memory.Allocator, spec TableSpec, lo, n, v int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, spec.Schema)
	defer b.Release()
	for i := lo; i < lo+n; i++ {
		start := arrow.Timestamp(1_709_294_096_789 + i%1000*60_000)
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(start)
		b.Field(2).(*array.TimestampBuilder).Append(start + 1_800_000)
		b.Field(3).(*array.StringBuilder).Append("tv")
		b.Field(4).(*array.Int64Builder).Append(int64(v))
		b.Field(5).(*array.Int64Builder).Append(int64(1000 * v))
		b.Field(6).(*array.Float64Builder).Append(12.5)
		b.Field(7).(*array.BooleanBuilder).Append(v%2 == 0)
		b.Field(8).(*array.TimestampBuilder).Append(arrow.Timestamp(1_709_294_100_000 + v))
	}
	return b.NewRecordBatch()
}

func benchKeys(t testing.TB, mem memory.Allocator, spec TableSpec, lo, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, spec.KeySchema())
	defer b.Release()
	for i := lo; i < lo+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(1_709_294_096_789 + i%1000*60_000))
	}
	return b.NewRecordBatch()
}

// BenchmarkPostgresUpsert reports rows/s for 10k-row change sets that are
// all new keys and all updates of existing keys, each in its own
// transaction (Apply), and for 10k-row deletes. The -baseline runs do the
// same work the plain way in the same process, as a ceiling to compare
// with: rows prepared beforehand as [][]any (untimed), COPY into a
// session temp table (LIKE t, ON COMMIT DELETE ROWS), INSERT ... SELECT *
// ... ON CONFLICT.
func BenchmarkPostgresUpsert(b *testing.B) {
	ctx := context.Background()
	p := openPG(b)
	mem := memory.NewGoAllocator()
	const batch = 10_000
	// Sub-benchmarks run several times on one schema: each run starts
	// from an empty table.
	table := func(b *testing.B, name string) *PGTable {
		if err := p.DropTable(ctx, name); err != nil {
			b.Fatal(err)
		}
		tbl, err := p.EnsureTable(ctx, benchSpec(b, name), true)
		if err != nil {
			b.Fatal(err)
		}
		return tbl
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	baseline := func(b *testing.B, tbl *PGTable, rows [][]any) {
		set := tbl.upsertSQL[strings.Index(tbl.upsertSQL, " DO UPDATE SET "):]
		err := p.InTx(ctx, func(tx pgx.Tx) error {
			ddl := "CREATE TEMP TABLE IF NOT EXISTS bench_stage (LIKE " + tbl.ident.Sanitize() + ") ON COMMIT DELETE ROWS"
			if _, err := tx.Exec(ctx, ddl); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "bench_stage"}, tbl.cols, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+tbl.ident.Sanitize()+" SELECT * FROM pg_temp.bench_stage ON CONFLICT ("+tbl.keyList+")"+set)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	anyRows := rowsOf // timestamps as UTC times, as pgx wants them

	b.Run("new", func(b *testing.B) {
		tbl := table(b, "bench_new")
		lo := 0
		for b.Loop() {
			b.StopTimer()
			c := exec.Changes{Upserts: benchBatch(b, mem, tbl.Spec(), lo, batch, 1)}
			lo += batch
			b.StartTimer()
			if err := tbl.Apply(ctx, c); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
		report(b)
	})
	b.Run("new-baseline", func(b *testing.B) {
		tbl := table(b, "bench_new_base")
		lo := 0
		for b.Loop() {
			b.StopTimer()
			rec := benchBatch(b, mem, tbl.Spec(), lo, batch, 1)
			rows := anyRows(rec)
			rec.Release()
			lo += batch
			b.StartTimer()
			baseline(b, tbl, rows)
		}
		report(b)
	})
	b.Run("updates", func(b *testing.B) {
		tbl := table(b, "bench_upd")
		c := exec.Changes{Upserts: benchBatch(b, mem, tbl.Spec(), 0, batch, 1)}
		defer c.Release()
		if err := tbl.Apply(ctx, c); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := tbl.Apply(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("updates-baseline", func(b *testing.B) {
		tbl := table(b, "bench_upd_base")
		rec := benchBatch(b, mem, tbl.Spec(), 0, batch, 1)
		rows := anyRows(rec)
		rec.Release()
		baseline(b, tbl, rows)
		for b.Loop() {
			baseline(b, tbl, rows)
		}
		report(b)
	})
	b.Run("deletes", func(b *testing.B) {
		tbl := table(b, "bench_del")
		lo := 0
		for b.Loop() {
			b.StopTimer()
			ins := exec.Changes{Upserts: benchBatch(b, mem, tbl.Spec(), lo, batch, 1)}
			if err := tbl.Apply(ctx, ins); err != nil {
				b.Fatal(err)
			}
			ins.Release()
			del := exec.Changes{Deletes: benchKeys(b, mem, tbl.Spec(), lo, batch)}
			lo += batch
			b.StartTimer()
			if err := tbl.Apply(ctx, del); err != nil {
				b.Fatal(err)
			}
			del.Release()
		}
		report(b)
	})
}

// BenchmarkCopyEncode measures the client side of a COPY: encoding a
// 10k-row batch through pgx's type map, reading the Arrow columns
// directly (batchSource) versus converting to [][]any first.
func BenchmarkCopyEncode(b *testing.B) {
	mem := memory.NewGoAllocator()
	spec := benchSpec(b, "t")
	rec := benchBatch(b, mem, spec, 0, 10_000, 1)
	defer rec.Release()
	m := pgtype.NewMap()
	oids := make([]uint32, spec.Schema.NumFields())
	for i, f := range spec.Schema.Fields() {
		oids[i] = sqltypes.OID(f.Type)
	}
	idx := make([]int, len(oids))
	for i := range idx {
		idx[i] = i
	}
	var buf []byte
	encode := func(b *testing.B, vals []any) {
		for i, v := range vals {
			var err error
			if buf, err = m.Encode(oids[i], pgtype.BinaryFormatCode, v, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("arrow", func(b *testing.B) {
		for b.Loop() {
			src := newBatchSource(rec, idx, -1)
			for src.Next() {
				vals, _ := src.Values()
				encode(b, vals)
			}
		}
		b.ReportMetric(float64(rec.NumRows()*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("any-rows", func(b *testing.B) {
		for b.Loop() {
			for _, row := range rowsOf(rec) {
				encode(b, row)
			}
		}
		b.ReportMetric(float64(rec.NumRows()*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
	})
}

// TestPostgresInsertDirect: upserts of new keys are copied straight into
// the table; one that meets an existing key (here -0 against 0, and NaN)
// falls back to the merge in the same transaction, the next directRetry
// change sets merge at once, and the one after tries the direct COPY
// again. The table always holds what a Memory table holds.
func TestPostgresInsertDirect(t *testing.T) {
	ctx := context.Background()
	p := openPG(t)
	mem := newAlloc(t)
	spec := specOf(t, "direct", []string{"k DOUBLE", "v BIGINT"}, "k")
	tbl, err := p.EnsureTable(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	model := NewMemory(spec, mem)
	defer model.Close()
	apply := func(step string, rows [][]any, wantMergeOnly int64) {
		t.Helper()
		c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, rows)}
		defer c.Release()
		if err := tbl.Apply(ctx, c); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := model.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got := tbl.mergeOnly.Load(); got != wantMergeOnly {
			t.Fatalf("%s: %d change sets left to merge, want %d", step, got, wantMergeOnly)
		}
		if got, want := sortedRendering(spec.Schema, readPG(t, p, spec)), sortedScan(t, model, mem); got != want {
			t.Fatalf("%s: PostgreSQL holds\n%s\nwant\n%s", step, got, want)
		}
	}
	apply("new keys", [][]any{{0.0, 1}, {1.5, 2}, {math.NaN(), 3}}, 0)
	apply("an existing key", [][]any{{2.5, 4}, {math.Copysign(0, -1), 5}, {math.NaN(), 6}}, directRetry)
	for i := range directRetry {
		apply(fmt.Sprintf("new key %d, merged", i), [][]any{{float64(10 + i), int(i)}}, directRetry-1-int64(i))
	}
	apply("new key, direct again", [][]any{{1000.0, 7}}, 0)
}
