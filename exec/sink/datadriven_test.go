package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"
)

// TestMemoryDataDriven runs testdata/memory/*: the rendered result table
// after each change set.
//
//	table name=t key=a,b [max-rows=N]   create a table (closing the previous)
//	a BIGINT
//	b TEXT
//	----
//	ok
//
//	apply                               one exec.Changes: JSON rows
//	delete {"a": 1, "b": null}
//	upsert {"a": 2, "b": "x"}
//	----
//	<the table after the change, in Scan order>
//
//	scan                                the table, unchanged
//
// TestPostgresMatchesMemory runs the same files against PostgreSQL too.
func TestMemoryDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/memory", func(t *testing.T, path string) {
		r := &ddRunner{mem: newAlloc(t)}
		defer r.close()
		datadriven.RunTest(t, path, r.run)
	})
}

// ddRunner executes the datadriven commands against a Memory and, when pg
// is set, against a PostgreSQL table, checking that both hold the same rows.
type ddRunner struct {
	mem   *memory.CheckedAllocator
	table *Memory
	pg    *Postgres
	pgt   *PGTable
	n     int // tables created, to name PostgreSQL tables uniquely
}

func (r *ddRunner) close() {
	if r.table != nil {
		r.table.Close()
	}
}

func (r *ddRunner) run(t *testing.T, d *datadriven.TestData) string {
	ctx := context.Background()
	switch d.Cmd {
	case "table":
		r.close()
		spec, opts := ddTable(t, d)
		r.table = NewMemory(spec, r.mem, opts...)
		if err := spec.Validate(); err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		if r.pg != nil {
			r.n++
			spec.Name = fmt.Sprintf("%s_%d", spec.Name, r.n)
			pgt, err := r.pg.EnsureTable(ctx, spec, true)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			r.pgt = pgt
		}
		return "ok\n"
	case "apply":
		c := changesFromInput(t, r.mem, r.table.Spec(), d.Input)
		defer c.Release()
		err := r.table.Apply(ctx, c)
		if r.pgt != nil {
			pgErr := r.pgt.Apply(ctx, c)
			if (err == nil) != (pgErr == nil) {
				t.Fatalf("%s: memory table says %v, PostgreSQL says %v", d.Pos, err, pgErr)
			}
		}
		if err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		return r.scan(t, d)
	case "scan":
		return r.scan(t, d)
	}
	t.Fatalf("%s: unknown command %s", d.Pos, d.Cmd)
	return ""
}

func (r *ddRunner) scan(t *testing.T, d *datadriven.TestData) string {
	rec, err := r.table.Scan(r.mem)
	if err != nil {
		return fmt.Sprintf("error: %v\n", err)
	}
	defer rec.Release()
	if int(rec.NumRows()) != r.table.Len() {
		t.Fatalf("%s: Scan has %d rows, Len says %d", d.Pos, rec.NumRows(), r.table.Len())
	}
	rows := rowsOf(rec)
	if r.pgt != nil {
		r.comparePG(t, d, rows)
	}
	var b strings.Builder
	b.WriteString(renderRows(rec.Schema(), rows))
	if len(rows) == 1 {
		b.WriteString("(1 row")
	} else {
		fmt.Fprintf(&b, "(%d rows", len(rows))
	}
	if n := r.table.Dropped(); n > 0 {
		fmt.Fprintf(&b, ", %d dropped", n)
	}
	b.WriteString(")\n")
	return b.String()
}

// comparePG checks that the PostgreSQL table holds the memory table's rows
// (all rows it ever got, for an append-only table that let rows go).
func (r *ddRunner) comparePG(t *testing.T, d *datadriven.TestData, memRows [][]any) {
	spec := r.pgt.Spec()
	pgRows := readPG(t, r.pg, spec)
	if dropped := r.table.Dropped(); dropped > 0 {
		if want := len(memRows) + int(dropped); len(pgRows) != want {
			t.Fatalf("%s: PostgreSQL has %d rows, want %d (memory %d + %d dropped)", d.Pos, len(pgRows), want, len(memRows), dropped)
		}
		return
	}
	got, want := sortedRendering(spec.Schema, pgRows), sortedRendering(spec.Schema, memRows)
	if got != want {
		t.Fatalf("%s: PostgreSQL table differs from the memory table\nPostgreSQL:\n%s\nmemory:\n%s", d.Pos, got, want)
	}
}
