package sink

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// newAlloc returns a checked allocator that fails t if anything leaks.
func newAlloc(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// specOf builds a spec from "name TYPE" column definitions and key names.
func specOf(t testing.TB, name string, cols []string, key ...string) TableSpec {
	t.Helper()
	var fields []arrow.Field
	for _, c := range cols {
		n, typ, ok := strings.Cut(strings.TrimSpace(c), " ")
		if !ok {
			t.Fatalf("column %q: want \"name TYPE\"", c)
		}
		dt, err := sqltypes.FromName(typ)
		if err != nil {
			t.Fatalf("column %q: %v", c, err)
		}
		fields = append(fields, arrow.Field{Name: n, Type: dt, Nullable: true})
	}
	spec := TableSpec{Name: name, Schema: arrow.NewSchema(fields, nil)}
	for _, k := range key {
		idx := spec.Schema.FieldIndices(k)
		if len(idx) != 1 {
			t.Fatalf("key column %q not in %v", k, cols)
		}
		spec.Key = append(spec.Key, idx[0])
	}
	return spec
}

// batchJSON builds a batch of schema from newline-separated JSON objects;
// nil for no objects.
func batchJSON(t testing.TB, mem memory.Allocator, schema *arrow.Schema, objs []string) arrow.RecordBatch {
	t.Helper()
	if len(objs) == 0 {
		return nil
	}
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(strings.Join(objs, "\n")), array.WithMultipleDocs())
	if err != nil {
		t.Fatalf("batch from JSON %v: %v", objs, err)
	}
	return rec
}

// changesFromInput parses "upsert {json}" and "delete {json}" lines.
func changesFromInput(t testing.TB, mem memory.Allocator, spec TableSpec, input string) exec.Changes {
	t.Helper()
	var ups, dels []string
	for line := range strings.Lines(input) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		verb, obj, _ := strings.Cut(line, " ")
		switch verb {
		case "upsert":
			ups = append(ups, obj)
		case "delete":
			dels = append(dels, obj)
		default:
			t.Fatalf("line %q: want upsert or delete", line)
		}
	}
	c := exec.Changes{Upserts: batchJSON(t, mem, spec.Schema, ups)}
	if len(dels) > 0 {
		ks := spec.KeySchema()
		if ks == nil { // an append-only table: let Apply refuse it
			ks = spec.Schema
		}
		c.Deletes = batchJSON(t, mem, ks, dels)
	}
	return c
}

// rowsOf converts a batch to Go values: nil, int64, float64, string, bool
// or time.Time (UTC).
func rowsOf(rec arrow.RecordBatch) [][]any {
	rows := make([][]any, rec.NumRows())
	for i := range rows {
		rows[i] = make([]any, rec.NumCols())
		for j, col := range rec.Columns() {
			if col.IsNull(i) {
				continue
			}
			switch a := col.(type) {
			case *array.Int64:
				rows[i][j] = a.Value(i)
			case *array.Float64:
				rows[i][j] = a.Value(i)
			case *array.String:
				rows[i][j] = a.Value(i)
			case *array.Boolean:
				rows[i][j] = a.Value(i)
			case *array.Timestamp:
				rows[i][j] = time.UnixMilli(int64(a.Value(i))).UTC()
			default:
				panic(fmt.Sprintf("rowsOf: %T", col))
			}
		}
	}
	return rows
}

// renderRows prints rows as an aligned table with a header.
func renderRows(schema *arrow.Schema, rows [][]any) string {
	cells := [][]string{{}}
	for _, f := range schema.Fields() {
		cells[0] = append(cells[0], f.Name)
	}
	for _, r := range rows {
		line := make([]string, len(r))
		for j, v := range r {
			line[j] = renderValue(schema.Field(j).Type, v)
		}
		cells = append(cells, line)
	}
	width := make([]int, schema.NumFields())
	for _, line := range cells {
		for j, c := range line {
			width[j] = max(width[j], len(c))
		}
	}
	var b strings.Builder
	for _, line := range cells {
		for j, c := range line {
			if j > 0 {
				b.WriteString(" | ")
			}
			if j == len(line)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s", width[j], c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func renderValue(t arrow.DataType, v any) string {
	if v == nil {
		return "NULL"
	}
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if v == 0 && math.Signbit(v) {
			return "-0"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		s := v.UTC().Format("2006-01-02 15:04:05.000")
		if arrow.TypeEqual(t, sqltypes.TimestampTZ) {
			s += "Z"
		}
		return s
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

// sortedRendering renders rows in a canonical order, for comparing tables
// whose order differs (PostgreSQL has no insertion order).
func sortedRendering(schema *arrow.Schema, rows [][]any) string {
	lines := strings.Split(strings.TrimSuffix(renderRows(schema, rows), "\n"), "\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n") + "\n"
}

// ddTable parses a datadriven "table" command: name=, key=a,b, max-rows=N
// and "name TYPE" input lines.
func ddTable(t *testing.T, d *datadriven.TestData) (TableSpec, []MemoryOption) {
	var name string
	var key []string
	var opts []MemoryOption
	for _, arg := range d.CmdArgs {
		switch arg.Key {
		case "name":
			name = arg.Vals[0]
		case "key":
			for _, v := range arg.Vals {
				key = append(key, strings.Split(v, ",")...)
			}
		case "max-rows":
			n, err := strconv.Atoi(arg.Vals[0])
			if err != nil {
				t.Fatalf("%s: max-rows: %v", d.Pos, err)
			}
			opts = append(opts, WithMaxAppendRows(n))
		default:
			t.Fatalf("%s: unknown argument %s", d.Pos, arg.Key)
		}
	}
	var cols []string
	for line := range strings.Lines(d.Input) {
		if line = strings.TrimSpace(line); line != "" {
			cols = append(cols, line)
		}
	}
	return specOf(t, name, cols, key...), opts
}
