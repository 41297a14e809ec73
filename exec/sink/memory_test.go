package sink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

func TestTableSpecValidate(t *testing.T) {
	long := strings.Repeat("x", 64)
	f := func(name string, typ arrow.DataType) arrow.Field { return arrow.Field{Name: name, Type: typ} }
	schema := func(fields ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fields, nil) }
	tests := []struct {
		name string
		spec TableSpec
		want string // substring of the error; "" for valid
		code string // SQLSTATE when the error is a *sqlerr.Error
	}{
		{name: "keyed", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64), f("b", sqltypes.String)), Key: []int{1, 0}}},
		{name: "append-only", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.TimestampTZ))}},
		{name: "every type", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64), f("b", sqltypes.Float64),
			f("c", sqltypes.String), f("d", sqltypes.Bool), f("e", sqltypes.Timestamp), f("f", sqltypes.TimestampTZ))}},
		{name: "no name", spec: TableSpec{Schema: schema(f("a", sqltypes.Int64))}, want: "no name"},
		{name: "long name", spec: TableSpec{Name: long, Schema: schema(f("a", sqltypes.Int64))}, want: "longer than 63", code: pgerrcode.NameTooLong},
		{name: "no schema", spec: TableSpec{Name: "t"}, want: "no columns"},
		{name: "no columns", spec: TableSpec{Name: "t", Schema: schema()}, want: "no columns"},
		{name: "unnamed column", spec: TableSpec{Name: "t", Schema: schema(f("", sqltypes.Int64))}, want: "column 0 has no name"},
		{name: "long column", spec: TableSpec{Name: "t", Schema: schema(f(long, sqltypes.Int64))}, want: "longer than 63", code: pgerrcode.NameTooLong},
		{name: "duplicate column", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64), f("a", sqltypes.String))}, want: `column "a" of table "t" appears twice`, code: pgerrcode.DuplicateColumn},
		{name: "bad type", spec: TableSpec{Name: "t", Schema: schema(f("a", arrow.PrimitiveTypes.Int32))}, want: "type int32"},
		{name: "timestamp in seconds", spec: TableSpec{Name: "t", Schema: schema(f("a", arrow.FixedWidthTypes.Timestamp_s))}, want: "which a result table cannot hold"},
		{name: "key out of range", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64)), Key: []int{1}}, want: "out of range"},
		{name: "negative key", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64)), Key: []int{-1}}, want: "out of range"},
		{name: "key twice", spec: TableSpec{Name: "t", Schema: schema(f("a", sqltypes.Int64)), Key: []int{0, 0}}, want: `key column "a" appears twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if tc.code != "" && sqlerr.Code(err) != tc.code {
				t.Fatalf("code = %s, want %s", sqlerr.Code(err), tc.code)
			}
		})
	}
}

// TestAppendKey checks key equality: two rows share a key exactly when
// PostgreSQL's UNIQUE NULLS NOT DISTINCT would call them equal.
func TestAppendKey(t *testing.T) {
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"i BIGINT", "f DOUBLE", "s TEXT", "s2 TEXT", "b BOOLEAN", "ts TIMESTAMP"})
	kinds := make([]kind, spec.Schema.NumFields())
	for i, f := range spec.Schema.Fields() {
		kinds[i] = kindOf(f.Type)
	}
	nan := math.NaN()
	tests := []struct {
		name  string
		a, b  []any // i, f, s, s2, b, ts
		equal bool
	}{
		{"same", []any{1, 1.5, "a", "b", true, 5}, []any{1, 1.5, "a", "b", true, 5}, true},
		{"null equals null", []any{nil, nil, nil, nil, nil, nil}, []any{nil, nil, nil, nil, nil, nil}, true},
		{"null is not zero", []any{nil, 0.0, "", "", false, 0}, []any{0, 0.0, "", "", false, 0}, false},
		{"null is not empty", []any{0, 0.0, nil, "", false, 0}, []any{0, 0.0, "", "", false, 0}, false},
		{"null is not false", []any{0, 0.0, "", "", nil, 0}, []any{0, 0.0, "", "", false, 0}, false},
		{"minus zero", []any{0, math.Copysign(0, -1), "", "", false, 0}, []any{0, 0.0, "", "", false, 0}, true},
		{"nan", []any{0, nan, "", "", false, 0}, []any{0, -nan, "", "", false, 0}, true},
		{"nan is not inf", []any{0, nan, "", "", false, 0}, []any{0, math.Inf(1), "", "", false, 0}, false},
		{"string boundary", []any{0, 0.0, "ab", "c", false, 0}, []any{0, 0.0, "a", "bc", false, 0}, false},
		{"int differs", []any{-1, 0.0, "", "", false, 0}, []any{1, 0.0, "", "", false, 0}, false},
		{"ts differs", []any{0, 0.0, "", "", false, -1}, []any{0, 0.0, "", "", false, 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := buildRows(t, mem, spec.Schema, [][]any{tc.a, tc.b})
			defer rec.Release()
			ka := appendKey(nil, rec.Columns(), kinds, 0)
			kb := appendKey(nil, rec.Columns(), kinds, 1)
			if got := string(ka) == string(kb); got != tc.equal {
				t.Fatalf("keys equal = %v, want %v (%x vs %x)", got, tc.equal, ka, kb)
			}
		})
	}
}

// buildRows builds a batch from Go values (ints for BIGINT and timestamps
// in ms, float64, string, bool, nil for NULL).
func buildRows(t testing.TB, mem memory.Allocator, schema *arrow.Schema, rows [][]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, row := range rows {
		for j, v := range row {
			fb := b.Field(j)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				fb.Append(int64(v.(int)))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(v.(int)))
			default:
				t.Fatalf("buildRows: %T", fb)
			}
		}
	}
	return b.NewRecordBatch()
}

func TestMemoryApplyErrors(t *testing.T) {
	ctx := context.Background()
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"k BIGINT", "v TEXT"}, "k")
	other := specOf(t, "t", []string{"k TEXT", "v TEXT"}, "k")
	narrow := specOf(t, "t", []string{"k BIGINT"}, "k")
	logs := specOf(t, "logs", []string{"k BIGINT", "v TEXT"})
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name    string
		spec    TableSpec
		ctx     context.Context
		changes func() exec.Changes
		want    string
	}{
		{name: "upserts with a wrong type", spec: spec, changes: func() exec.Changes {
			return exec.Changes{Upserts: buildRows(t, mem, other.Schema, [][]any{{"1", "a"}})}
		}, want: `upserts column 0 ("k") is utf8, want int64`},
		{name: "upserts with a column missing", spec: spec, changes: func() exec.Changes {
			return exec.Changes{Upserts: buildRows(t, mem, narrow.Schema, [][]any{{1}})}
		}, want: "upserts batch has 1 columns, want 2"},
		{name: "deletes with whole rows", spec: spec, changes: func() exec.Changes {
			return exec.Changes{Deletes: buildRows(t, mem, spec.Schema, [][]any{{1, "a"}})}
		}, want: "deletes batch has 2 columns, want 1"},
		{name: "deletes with a wrong type", spec: spec, changes: func() exec.Changes {
			return exec.Changes{Deletes: buildRows(t, mem, other.KeySchema(), [][]any{{"1"}})}
		}, want: `deletes column 0 ("k") is utf8, want int64`},
		{name: "good deletes, bad upserts", spec: spec, changes: func() exec.Changes {
			return exec.Changes{
				Deletes: buildRows(t, mem, spec.KeySchema(), [][]any{{1}}),
				Upserts: buildRows(t, mem, narrow.Schema, [][]any{{2}}),
			}
		}, want: "upserts batch has 1 columns"},
		{name: "deletes on an append-only table", spec: logs, changes: func() exec.Changes {
			return exec.Changes{Deletes: buildRows(t, mem, logs.Schema, [][]any{{1, "a"}})}
		}, want: `table "logs" is append-only and takes no deletes (got 1)`},
		{name: "canceled", spec: spec, ctx: canceled, changes: func() exec.Changes {
			return exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{2, "b"}})}
		}, want: "context canceled"},
		{name: "invalid spec", spec: TableSpec{Name: "bad", Schema: spec.Schema, Key: []int{7}}, changes: func() exec.Changes {
			return exec.Changes{}
		}, want: "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(tc.spec, mem)
			defer m.Close()
			if tc.spec.Validate() == nil {
				seed := exec.Changes{Upserts: buildRows(t, mem, tc.spec.Schema, [][]any{{1, "a"}})}
				if err := m.Apply(ctx, seed); err != nil {
					t.Fatalf("seed: %v", err)
				}
				seed.Release()
			}
			c := tc.changes()
			defer c.Release()
			actx := tc.ctx
			if actx == nil {
				actx = ctx
			}
			err := m.Apply(actx, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tc.want)
			}
			if tc.spec.Validate() != nil {
				if _, err := m.Scan(mem); err == nil {
					t.Fatalf("Scan of a table with an invalid spec succeeded")
				}
				return
			}
			// A refused change set changes nothing.
			if got := scanRendering(t, m, mem); !strings.Contains(got, `1 | "a"`) || m.Len() != 1 {
				t.Fatalf("table after a refused Apply:\n%s", got)
			}
		})
	}
}

func scanRendering(t testing.TB, m *Memory, mem memory.Allocator) string {
	t.Helper()
	rec, err := m.Scan(mem)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	defer rec.Release()
	return renderRows(rec.Schema(), rowsOf(rec))
}

func TestMemoryClose(t *testing.T) {
	ctx := context.Background()
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"k BIGINT", "v TEXT"}, "k")
	m := NewMemory(spec, mem)
	c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, [][]any{{1, "a"}})}
	defer c.Release()
	if err := m.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close() // idempotent
	if err := m.Apply(ctx, c); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Scan(mem); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close = %v, want ErrClosed", err)
	}
	if m.Len() != 0 {
		t.Fatalf("Len after Close = %d", m.Len())
	}
}

// TestMemoryScanDefaultAllocator checks that Scan(nil) allocates from the
// table's allocator.
func TestMemoryScanDefaultAllocator(t *testing.T) {
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"k BIGINT", "v TEXT"}, "k")
	m := NewMemory(spec, mem)
	defer m.Close()
	c := exec.Changes{Upserts: buildRows(t, memory.NewGoAllocator(), spec.Schema, [][]any{{1, "a"}})}
	defer c.Release()
	if err := m.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	rec, err := m.Scan(nil)
	if err != nil {
		t.Fatal(err)
	}
	if mem.CurrentAlloc() == 0 {
		t.Fatalf("Scan(nil) did not allocate from the table's allocator")
	}
	rec.Release()
}

// TestMemoryRandom applies random change sets to a keyed table and
// compares every Scan with a model: a list of keys in first-insertion
// order. It also checks that deleted slots are given back.
func TestMemoryRandom(t *testing.T) {
	ctx := context.Background()
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"v BIGINT", "k1 BIGINT", "k2 TEXT"}, "k2", "k1")
	m := NewMemory(spec, mem)
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 2))

	type key struct {
		k1 any
		k2 any
	}
	var order []key // model: live keys in first-insertion order
	vals := map[key]int{}
	randKey := func() key {
		var k key
		if n := rng.IntN(40); n > 0 {
			k.k1 = n
		}
		if n := rng.IntN(3); n > 0 {
			k.k2 = strings.Repeat("s", n)
		}
		return k
	}
	maxSlots := 0
	for round := range 400 {
		used := map[key]bool{} // a key at most once per Changes
		var ups, dels [][]any
		for range rng.IntN(30) {
			k := randKey()
			if used[k] {
				continue
			}
			used[k] = true
			if rng.IntN(3) == 0 {
				dels = append(dels, []any{k.k2, k.k1})
				if _, ok := vals[k]; ok {
					delete(vals, k)
					order = slices.DeleteFunc(order, func(o key) bool { return o == k })
				}
				continue
			}
			v := rng.IntN(1000)
			ups = append(ups, []any{v, k.k1, k.k2})
		}
		// Deletes apply before upserts.
		for _, u := range ups {
			k := key{u[1], u[2]}
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = u[0].(int)
		}
		var c exec.Changes
		if len(ups) > 0 {
			c.Upserts = buildRows(t, mem, spec.Schema, ups)
		}
		if len(dels) > 0 {
			c.Deletes = buildRows(t, mem, spec.KeySchema(), dels)
		}
		if err := m.Apply(ctx, c); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c.Release()

		var want [][]any
		for _, k := range order {
			row := []any{int64(vals[k]), nil, nil}
			if k.k1 != nil {
				row[1] = int64(k.k1.(int))
			}
			if k.k2 != nil {
				row[2] = k.k2
			}
			want = append(want, row)
		}
		rec, err := m.Scan(mem)
		if err != nil {
			t.Fatal(err)
		}
		got := renderRows(spec.Schema, rowsOf(rec))
		rec.Release()
		if w := renderRows(spec.Schema, want); got != w {
			t.Fatalf("round %d: table differs from the model\ngot:\n%s\nwant:\n%s", round, got, w)
		}
		if m.Len() != len(order) {
			t.Fatalf("round %d: Len = %d, want %d", round, m.Len(), len(order))
		}
		maxSlots = max(maxSlots, m.n)
	}
	// 40*3 distinct keys exist; compaction keeps the slots near that.
	if maxSlots > 2*40*3+compactMinDead+30 {
		t.Fatalf("slots grew to %d for at most %d keys", maxSlots, 40*3)
	}
}

func TestMemoryAppendCap(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cap     int
		batches []int // rows per Apply
	}{
		{"under the cap", 10, []int{3, 4}},
		{"exactly the cap", 10, []int{4, 6}},
		{"over the cap in steps", 10, []int{4, 4, 4, 4, 4, 4, 4}},
		{"one batch over the cap", 10, []int{25}},
		{"cap of one", 1, []int{1, 2, 3, 1}},
		{"many small batches", 7, slices.Repeat([]int{1}, 50)},
		{"mixed", 5, []int{2, 0, 9, 1, 3, 5, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newAlloc(t)
			spec := specOf(t, "rejects", []string{"seq BIGINT", "payload TEXT"})
			m := NewMemory(spec, mem, WithMaxAppendRows(tc.cap))
			defer m.Close()
			seq := 0
			for _, n := range tc.batches {
				rows := make([][]any, n)
				for i := range rows {
					seq++
					rows[i] = []any{seq, fmt.Sprint("p", seq)}
				}
				c := exec.Changes{Upserts: buildRows(t, mem, spec.Schema, rows)}
				if err := m.Apply(ctx, c); err != nil {
					t.Fatal(err)
				}
				c.Release()
				if m.n > 2*tc.cap {
					t.Fatalf("%d slots for a cap of %d", m.n, tc.cap)
				}
			}
			kept := min(seq, tc.cap)
			if m.Len() != kept || m.Dropped() != int64(seq-kept) {
				t.Fatalf("Len = %d, Dropped = %d; want %d, %d", m.Len(), m.Dropped(), kept, seq-kept)
			}
			rec, err := m.Scan(mem)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			for i, row := range rowsOf(rec) {
				want := int64(seq - kept + 1 + i)
				if row[0] != want || row[1] != fmt.Sprint("p", want) {
					t.Fatalf("row %d = %v, want seq %d", i, row, want)
				}
			}
		})
	}
}

// TestMemoryConcurrentScan scans from several goroutines while one applies
// change sets that each set every row's version; a Scan must never see two
// versions (a torn Apply). Run with -race.
func TestMemoryConcurrentScan(t *testing.T) {
	ctx := context.Background()
	mem := newAlloc(t)
	spec := specOf(t, "t", []string{"k BIGINT", "version BIGINT", "label TEXT"}, "k")
	m := NewMemory(spec, mem)
	defer m.Close()
	const keys, versions, scanners = 50, 200, 4

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, scanners)
	for range scanners {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				rec, err := m.Scan(mem)
				if err != nil {
					errs <- err
					return
				}
				rows := rowsOf(rec)
				rec.Release()
				for _, r := range rows {
					if r[1] != rows[0][1] || r[2] != fmt.Sprint("v", r[1]) {
						errs <- fmt.Errorf("torn snapshot: row %v next to version %v", r, rows[0][1])
						return
					}
				}
				if n := len(rows); n != 0 && n != keys && n != keys/2 {
					errs <- fmt.Errorf("snapshot with %d rows", n)
					return
				}
			}
		})
	}
	for v := range versions {
		var c exec.Changes
		var ups, dels [][]any
		for k := range keys {
			// Odd versions hold every key, even versions every other one.
			if v%2 == 0 && k%2 == 1 {
				dels = append(dels, []any{k})
				continue
			}
			ups = append(ups, []any{k, v, fmt.Sprint("v", v)})
		}
		c.Upserts = buildRows(t, mem, spec.Schema, ups)
		if len(dels) > 0 {
			c.Deletes = buildRows(t, mem, spec.KeySchema(), dels)
		}
		if err := m.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkMemory measures Apply of 4096-row batches of updates to a
// 100k-row table and Scan of the whole table.
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	mem := memory.NewGoAllocator()
	spec := specOf(b, "t", []string{"user_id BIGINT", "start TIMESTAMP", "events BIGINT", "device TEXT", "is_final BOOLEAN"}, "user_id", "start")
	const size, batch = 100_000, 4096
	fill := func(m *Memory, lo, n, v int) {
		rows := make([][]any, n)
		for i := range rows {
			rows[i] = []any{lo + i, 1_700_000_000_000, v, "tv", false}
		}
		c := exec.Changes{Upserts: buildRows(b, mem, spec.Schema, rows)}
		if err := m.Apply(ctx, c); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
	b.Run("apply-updates", func(b *testing.B) {
		m := NewMemory(spec, mem)
		defer m.Close()
		fill(m, 0, size, 0)
		rows := make([][]any, batch)
		for i := range rows {
			rows[i] = []any{i * 7 % size, 1_700_000_000_000, 1, "phone", true}
		}
		c := exec.Changes{Upserts: buildRows(b, mem, spec.Schema, rows)}
		defer c.Release()
		for b.Loop() {
			if err := m.Apply(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("scan-100k", func(b *testing.B) {
		m := NewMemory(spec, mem)
		defer m.Close()
		fill(m, 0, size, 0)
		for b.Loop() {
			rec, err := m.Scan(mem)
			if err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
		b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
