package sink

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/exec"
)

// TestCoalesceEqualsApplyingInOrder applies random runs of change sets to
// one Memory table in order and their Coalesce to another, over the same
// starting rows, and compares the tables (as sets of rows: Memory's order
// of first insertion is not kept). Keys include NULLs and floats that are
// equal but not identical (-0 and 0, two NaNs), so the key values a table
// keeps are compared too. Each coalesced change set must touch a key at
// most once in its deletes and once in its upserts, and hold at most
// maxRows keys.
func TestCoalesceEqualsApplyingInOrder(t *testing.T) {
	ctx := context.Background()
	spec := specOf(t, "t", []string{"v BIGINT", "k1 BIGINT", "s TEXT", "k2 DOUBLE", "ok BOOLEAN", "at TIMESTAMP"}, "k2", "k1")
	floats := []any{nil, 0.0, math.Copysign(0, -1), 1.5, math.NaN(), math.Float64frombits(0x7ff8000000000002)}
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := newAlloc(t)
			rng := rand.New(rand.NewPCG(seed, 7))
			randRows := func(n int, withDeletes bool) exec.Changes {
				ups, dels := [][]any{}, [][]any{}
				usedU, usedD := map[string]bool{}, map[string]bool{}
				for range n {
					k1 := any(nil)
					if rng.IntN(8) > 0 {
						k1 = rng.IntN(6)
					}
					k2 := floats[rng.IntN(len(floats))]
					id := fmt.Sprint(k1, "/", keyClass(k2))
					if withDeletes && rng.IntN(4) == 0 {
						if !usedD[id] {
							usedD[id] = true
							dels = append(dels, []any{k2, k1})
						}
						continue
					}
					if usedU[id] {
						continue
					}
					usedU[id] = true
					var s any
					if rng.IntN(5) > 0 {
						s = fmt.Sprint("s", rng.IntN(100))
					}
					ups = append(ups, []any{rng.IntN(1000), k1, s, k2, rng.IntN(2) == 0, 1_700_000_000_000 + rng.IntN(1e6)})
				}
				var c exec.Changes
				if len(ups) > 0 {
					c.Upserts = buildRows(t, mem, spec.Schema, ups)
				}
				if len(dels) > 0 {
					c.Deletes = buildRows(t, mem, spec.KeySchema(), dels)
				}
				return c
			}
			inOrder, coalesced := NewMemory(spec, mem), NewMemory(spec, mem)
			defer inOrder.Close()
			defer coalesced.Close()
			start := randRows(20, false)
			for _, m := range []*Memory{inOrder, coalesced} {
				if err := m.Apply(ctx, start); err != nil {
					t.Fatal(err)
				}
			}
			start.Release()

			var cs []exec.Changes
			for range 1 + rng.IntN(8) {
				cs = append(cs, randRows(rng.IntN(25), true))
			}
			maxRows := 1 + rng.IntN(12)
			out, err := spec.Coalesce(mem, cs, maxRows)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if err := inOrder.Apply(ctx, c); err != nil {
					t.Fatal(err)
				}
				c.Release()
			}
			seen := map[string]int{}
			for i, c := range out {
				checkOnce(t, i, c, spec, maxRows, seen)
				if err := coalesced.Apply(ctx, c); err != nil {
					t.Fatal(err)
				}
				c.Release()
			}
			if got, want := sortedScan(t, coalesced, mem), sortedScan(t, inOrder, mem); got != want {
				t.Fatalf("%d change sets, %d coalesced (max %d rows): tables differ\ncoalesced:\n%s\nin order:\n%s", len(cs), len(out), maxRows, got, want)
			}
		})
	}
}

// keyClass is what a float key compares as: -0 is 0, every NaN is NaN.
func keyClass(f any) any {
	if f, ok := f.(float64); ok {
		switch {
		case f == 0:
			return 0.0
		case math.IsNaN(f):
			return "NaN"
		}
	}
	return f
}

// checkOnce fails t unless change set i of a coalesced run has every key
// at most once in its deletes and once in its upserts, no key of an
// earlier set, and at most maxRows keys.
func checkOnce(t *testing.T, i int, c exec.Changes, spec TableSpec, maxRows int, seen map[string]int) {
	t.Helper()
	kinds := make([]kind, len(spec.Key))
	for j, k := range spec.Key {
		kinds[j] = kindOf(spec.Schema.Field(k).Type)
	}
	keys := map[string]bool{}
	for _, part := range []struct {
		rec  arrow.RecordBatch
		cols func(arrow.RecordBatch) []arrow.Array
	}{
		{c.Deletes, func(r arrow.RecordBatch) []arrow.Array { return r.Columns() }},
		{c.Upserts, func(r arrow.RecordBatch) []arrow.Array {
			var cols []arrow.Array
			for _, k := range spec.Key {
				cols = append(cols, r.Column(k))
			}
			return cols
		}},
	} {
		if part.rec == nil {
			continue
		}
		inPart := map[string]bool{}
		for row := range int(part.rec.NumRows()) {
			k := string(appendKey(nil, part.cols(part.rec), kinds, row))
			if inPart[k] {
				t.Fatalf("change set %d: key %x twice", i, k)
			}
			if j, ok := seen[k]; ok && j != i {
				t.Fatalf("change set %d: key %x already in change set %d", i, k, j)
			}
			inPart[k], keys[k], seen[k] = true, true, i
		}
	}
	if len(keys) > maxRows || len(keys) == 0 {
		t.Fatalf("change set %d touches %d keys; want 1..%d", i, len(keys), maxRows)
	}
}

func sortedScan(t *testing.T, m *Memory, mem memory.Allocator) string {
	t.Helper()
	rec, err := m.Scan(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	return sortedRendering(rec.Schema(), rowsOf(rec))
}

// TestCoalesceAppendOnly: an append-only table's change sets pass through.
func TestCoalesceAppendOnly(t *testing.T) {
	mem := newAlloc(t)
	spec := specOf(t, "late", []string{"v BIGINT"})
	a := buildRows(t, mem, spec.Schema, [][]any{{1}, {1}})
	defer a.Release()
	out, err := spec.Coalesce(mem, []exec.Changes{{Upserts: a}, {}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Upserts != a || out[0].Deletes != nil {
		t.Fatalf("got %d change sets, want the one batch as it was", len(out))
	}
	out[0].Release()
}

// BenchmarkCoalesce coalesces an epoch of 64 change sets of 4,096 upserts
// over 100,000 keys (a session table's key: BIGINT, TIMESTAMP).
func BenchmarkCoalesce(b *testing.B) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	spec := specOf(b, "t", []string{"user_id BIGINT", "session_start TIMESTAMP", "events BIGINT", "bytes BIGINT", "device TEXT"}, "user_id", "session_start")
	rng := rand.New(rand.NewPCG(1, 2))
	var cs []exec.Changes
	rows := 0
	for range 64 {
		var ups [][]any
		for range 4096 {
			u := rng.IntN(100_000)
			ups = append(ups, []any{u, 1_700_000_000_000 + u%7, rng.IntN(100), rng.IntN(1e6), "tv"})
		}
		cs = append(cs, exec.Changes{Upserts: buildRows(b, mem, spec.Schema, ups)})
		rows += len(ups)
	}
	b.ResetTimer()
	out := 0
	for b.Loop() {
		res, err := spec.Coalesce(mem, cs, DefaultCoalesceRows)
		if err != nil {
			b.Fatal(err)
		}
		out = 0
		for _, c := range res {
			out += int(c.Upserts.NumRows())
			c.Release()
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out), "rows-out")
	for _, c := range cs {
		c.Release()
	}
	mem.AssertSize(b, 0)
}
