package expr

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// TestDataDriven runs the files in testdata/. Commands:
//
//	batch col=type ...      JSON rows, one object per line, become the
//	                        current batch (types: bigint, double, text,
//	                        bool, timestamp, timestamptz)
//	eval                    one expression per line; prints
//	                        "<String()>: <type> [values]" or the error
//	filter                  one predicate; prints the surviving rows
//	project                 one expression per line; prints the result
//	sort                    one key per line: expr [ASC|DESC] [NULLS FIRST|LAST]
//	slice offset=N limit=M  prints the rows
//	aggregate               lines "group <expr>" and "agg <fn>(<arg>)"
//
// Every command also checks invariances that are not printed: the result
// over each single-row slice of the batch (non-zero offsets), over the
// batch without its first row, and over an empty slice must agree with the
// result over the whole batch; String() must parse back to the same
// String(); and the checked allocator must end at zero bytes.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		h := &harness{mem: mem}
		defer h.release()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

type harness struct {
	mem   *memory.CheckedAllocator
	batch arrow.RecordBatch
}

func (h *harness) release() {
	if h.batch != nil {
		h.batch.Release()
		h.batch = nil
	}
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "batch":
		h.release()
		fields := make([]arrow.Field, len(d.CmdArgs))
		for i, a := range d.CmdArgs {
			dt, err := sqltypes.FromName(a.SingleVal(t))
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			fields[i] = arrow.Field{Name: a.Key, Type: dt, Nullable: true}
		}
		// Extra rows go first and are sliced off, so every test runs over
		// arrays with a non-zero offset: the input rows in reverse order
		// (real values, NULLs in other places) and three all-NULL rows.
		var input []string
		for _, l := range strings.Split(d.Input, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				input = append(input, l)
			}
		}
		rows := slices.Clone(input)
		slices.Reverse(rows)
		rows = append(rows, "{}", "{}", "{}")
		skip := len(rows)
		rows = append(rows, input...)
		if len(fields) == 0 {
			// RecordFromJSON cannot count rows without columns.
			h.batch = array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, int64(len(input)))
			return fmt.Sprintf("%d rows", h.batch.NumRows())
		}
		raw, _, err := array.RecordFromJSON(h.mem, arrow.NewSchema(fields, nil), strings.NewReader("["+strings.Join(rows, ",")+"]"))
		if err != nil {
			d.Fatalf(t, "batch: %v", err)
		}
		b := raw.NewSlice(int64(skip), raw.NumRows())
		raw.Release()
		h.batch = b
		return fmt.Sprintf("%d rows", b.NumRows())
	case "eval":
		var out strings.Builder
		for _, line := range inputLines(d) {
			out.WriteString(h.eval(t, d, line))
			out.WriteByte('\n')
		}
		return out.String()
	case "filter":
		pred := h.parse(t, d, strings.TrimSpace(d.Input))
		if pred.err != nil {
			return renderErr(pred.err)
		}
		return h.batchOp(t, d, func(b arrow.RecordBatch) (arrow.RecordBatch, error) {
			return Filter(h.mem, b, pred.e)
		}, true)
	case "project":
		var exprs []Expr
		for _, line := range inputLines(d) {
			p := h.parse(t, d, line)
			if p.err != nil {
				return renderErr(p.err)
			}
			exprs = append(exprs, p.e)
		}
		return h.batchOp(t, d, func(b arrow.RecordBatch) (arrow.RecordBatch, error) {
			return Project(h.mem, b, exprs, nil)
		}, true)
	case "sort":
		var keys []SortKey
		for _, line := range inputLines(d) {
			k, err := h.sortKey(t, d, line)
			if err != nil {
				return renderErr(err)
			}
			keys = append(keys, k)
		}
		return h.batchOp(t, d, func(b arrow.RecordBatch) (arrow.RecordBatch, error) {
			return Sort(h.mem, b, keys)
		}, false)
	case "slice":
		var offset, limit int64
		d.ScanArgs(t, "offset", &offset)
		d.ScanArgs(t, "limit", &limit)
		s := Slice(h.batch, offset, limit)
		defer s.Release()
		return renderBatch(s)
	case "aggregate":
		var groups []Expr
		var aggs []Agg
		for _, line := range inputLines(d) {
			kind, rest, _ := strings.Cut(line, " ")
			switch kind {
			case "group":
				p := h.parse(t, d, rest)
				if p.err != nil {
					return renderErr(p.err)
				}
				groups = append(groups, p.e)
			case "agg":
				a, err := h.agg(t, d, rest)
				if err != nil {
					return renderErr(err)
				}
				aggs = append(aggs, a)
			default:
				d.Fatalf(t, "aggregate: bad line %q", line)
			}
		}
		b, err := GroupAggregate(h.mem, h.batch, groups, aggs)
		if err != nil {
			return renderErr(err)
		}
		defer b.Release()
		// Invariance: the same over a copy of the batch at offset 0.
		c, err := takeBatch(h.mem, h.batch, allRows(int(h.batch.NumRows())))
		if err != nil {
			d.Fatalf(t, "copy: %v", err)
		}
		b2, err := GroupAggregate(h.mem, c, groups, aggs)
		c.Release()
		if err != nil {
			d.Fatalf(t, "aggregate over a copy: %v", err)
		}
		defer b2.Release()
		if renderBatch(b) != renderBatch(b2) {
			t.Errorf("%s: aggregate over a copy differs:\n%s", d.Pos, renderBatch(b2))
		}
		return renderBatch(b)
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

func inputLines(d *datadriven.TestData) []string {
	var out []string
	for _, l := range strings.Split(d.Input, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

type parsed struct {
	e   Expr
	err error
}

func (h *harness) schema() *arrow.Schema {
	if h.batch == nil {
		return arrow.NewSchema(nil, nil)
	}
	return h.batch.Schema()
}

func (h *harness) parse(t *testing.T, d *datadriven.TestData, src string) parsed {
	e, berr, serr := parseExpr(src, h.schema())
	if serr != nil {
		d.Fatalf(t, "%v", serr)
	}
	if berr == nil {
		// String() must parse back to an expression that renders the same.
		e2, berr2, serr2 := parseExpr(e.String(), h.schema())
		switch {
		case serr2 != nil || berr2 != nil:
			t.Errorf("%s: String() %q does not parse back: %v %v", d.Pos, e.String(), serr2, berr2)
		case e2.String() != e.String():
			t.Errorf("%s: String() %q parses back as %q", d.Pos, e.String(), e2.String())
		case !arrow.TypeEqual(e2.Type(), e.Type()):
			t.Errorf("%s: String() %q parses back with type %s, not %s", d.Pos, e.String(), e2.Type(), e.Type())
		}
	}
	return parsed{e, berr}
}

// eval evaluates one expression and checks its invariances.
func (h *harness) eval(t *testing.T, d *datadriven.TestData, src string) string {
	p := h.parse(t, d, src)
	if p.err != nil {
		return src + ": " + renderErr(p.err)
	}
	e := p.e
	b := h.batch
	if b == nil {
		b = array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
		defer b.Release()
	}
	full, err := h.evalRows(e, b)
	n := int(b.NumRows())
	// Single-row slices: values agree; an error of the whole batch comes
	// from at least one row, with the same code.
	errCodes := map[string]bool{}
	for i := range n {
		s := b.NewSlice(int64(i), int64(i+1))
		row, rerr := h.evalRows(e, s)
		s.Release()
		switch {
		case rerr != nil:
			errCodes[sqlerr.Code(rerr)] = true
		case err == nil && row[0] != full[i]:
			t.Errorf("%s: %s row %d alone gives %s, in the batch %s", d.Pos, src, i, row[0], full[i])
		}
	}
	if err != nil && !errCodes[sqlerr.Code(err)] {
		t.Errorf("%s: %s fails on the batch (%v) but on no single row", d.Pos, src, err)
	}
	if err == nil && len(errCodes) > 0 {
		t.Errorf("%s: %s fails on a single row but not on the batch", d.Pos, src)
	}
	if n > 1 && err == nil {
		s := b.NewSlice(1, int64(n))
		tail, terr := h.evalRows(e, s)
		s.Release()
		if terr != nil || strings.Join(tail, ", ") != strings.Join(full[1:], ", ") {
			t.Errorf("%s: %s over rows 1.. gives %v (%v), want %v", d.Pos, src, tail, terr, full[1:])
		}
	}
	s := b.NewSlice(0, 0)
	empty, eerr := h.evalRows(e, s)
	s.Release()
	if eerr != nil || len(empty) != 0 {
		t.Errorf("%s: %s over no rows gives %v, %v", d.Pos, src, empty, eerr)
	}
	if err != nil {
		return e.String() + ": " + renderErr(err)
	}
	return fmt.Sprintf("%s: %s [%s]", e.String(), typeLabel(e.Type()), strings.Join(full, ", "))
}

// evalRows evaluates e over b and renders the values, checking the
// result's length and type.
func (h *harness) evalRows(e Expr, b arrow.RecordBatch) ([]string, error) {
	a, err := e.Eval(h.mem, b)
	if err != nil {
		if _, ok := sqlerr.As(err); !ok {
			return nil, fmt.Errorf("error without SQLSTATE: %w", err)
		}
		return nil, err
	}
	defer a.Release()
	if a.Len() != int(b.NumRows()) {
		return nil, fmt.Errorf("result has %d rows, batch %d", a.Len(), b.NumRows())
	}
	if !arrow.TypeEqual(a.DataType(), e.Type()) {
		return nil, fmt.Errorf("result has type %s, expression %s", a.DataType(), e.Type())
	}
	out := make([]string, a.Len())
	for i := range out {
		out[i] = renderValue(a, i)
	}
	return out, nil
}

// batchOp runs op over the batch, over the batch without its first row
// (non-zero offsets), and, when rowwise, over every single-row slice,
// checking that the results agree.
func (h *harness) batchOp(t *testing.T, d *datadriven.TestData, op func(arrow.RecordBatch) (arrow.RecordBatch, error), rowwise bool) string {
	b := h.batch
	res, err := op(b)
	if err != nil {
		return renderErr(err)
	}
	defer res.Release()
	out := renderBatch(res)
	if rowwise {
		var rows []string
		for i := range b.NumRows() {
			s := b.NewSlice(i, i+1)
			r, err := op(s)
			s.Release()
			if err != nil {
				t.Errorf("%s: row %d alone fails: %v", d.Pos, i, err)
				continue
			}
			rows = append(rows, renderRows(r)...)
			r.Release()
		}
		if want := renderRows(res); strings.Join(rows, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: row by row gives\n%s\nwant\n%s", d.Pos, strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
	}
	if b.NumRows() > 1 {
		s := b.NewSlice(1, b.NumRows())
		r, err := op(s)
		s.Release()
		if err != nil {
			t.Errorf("%s: over rows 1.. fails: %v", d.Pos, err)
		} else {
			r.Release()
		}
	}
	return out
}

var sortKeyRE = regexp.MustCompile(`(?i)^(.*?)(\s+(ASC|DESC))?(\s+NULLS\s+(FIRST|LAST))?$`)

func (h *harness) sortKey(t *testing.T, d *datadriven.TestData, line string) (SortKey, error) {
	m := sortKeyRE.FindStringSubmatch(line)
	p := h.parse(t, d, m[1])
	if p.err != nil {
		return SortKey{}, p.err
	}
	k := SortKey{Expr: p.e, Desc: strings.EqualFold(m[3], "DESC")}
	k.NullsFirst = k.Desc
	if m[5] != "" {
		k.NullsFirst = strings.EqualFold(m[5], "FIRST")
	}
	return k, nil
}

var aggRE = regexp.MustCompile(`(?i)^(\w+)\((distinct\s+)?(.*)\)$`)

func (h *harness) agg(t *testing.T, d *datadriven.TestData, src string) (Agg, error) {
	m := aggRE.FindStringSubmatch(strings.TrimSpace(src))
	if m == nil {
		d.Fatalf(t, "bad aggregate %q", src)
	}
	kinds := map[string]AggKind{"count": Count, "sum": Sum, "min": Min, "max": Max, "avg": Avg}
	kind, ok := kinds[strings.ToLower(m[1])]
	if !ok {
		d.Fatalf(t, "unknown aggregate %q", m[1])
	}
	if m[3] == "*" {
		return Agg{Kind: CountStar}, nil
	}
	if m[2] != "" {
		kind = CountDistinct
	}
	p := h.parse(t, d, m[3])
	if p.err != nil {
		return Agg{}, p.err
	}
	return Agg{Kind: kind, Arg: p.e}, nil
}

func renderErr(err error) string {
	if e, ok := sqlerr.As(err); ok {
		s := "ERROR " + e.Code + ": " + e.Message
		if e.Hint != "" {
			s += " (hint: " + e.Hint + ")"
		}
		return s
	}
	return "ERROR (no SQLSTATE): " + err.Error()
}

func typeLabel(t arrow.DataType) string {
	return strings.ToLower(sqltypes.Name(t))
}

func renderBatch(b arrow.RecordBatch) string {
	var sb strings.Builder
	for i, f := range b.Schema().Fields() {
		if i > 0 {
			sb.WriteString(" | ")
		}
		sb.WriteString(f.Name + " " + typeLabel(f.Type))
	}
	sb.WriteByte('\n')
	for _, r := range renderRows(b) {
		sb.WriteString(r + "\n")
	}
	return sb.String()
}

func renderRows(b arrow.RecordBatch) []string {
	var rows []string
	for i := range int(b.NumRows()) {
		cells := make([]string, b.NumCols())
		for c := range cells {
			cells[c] = renderValue(b.Column(c), i)
		}
		rows = append(rows, strings.Join(cells, " | "))
	}
	return rows
}

// renderValue renders row i of a independently of the package's own text
// formatting, so the tests check that formatting rather than reuse it.
func renderValue(a arrow.Array, i int) string {
	if a.IsNull(i) || isNullType(a.DataType()) {
		return "NULL"
	}
	switch x := a.(type) {
	case *array.Int64:
		return strconv.FormatInt(x.Value(i), 10)
	case *array.Float64:
		f := x.Value(i)
		if f == 0 && math.Signbit(f) {
			return "-0"
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case *array.String:
		return "'" + strings.ReplaceAll(x.Value(i), "'", "''") + "'"
	case *array.Boolean:
		return strconv.FormatBool(x.Value(i))
	case *array.Timestamp:
		s := time.UnixMilli(int64(x.Value(i))).UTC().Format("2006-01-02 15:04:05.000")
		if isTZ(x.DataType()) {
			s += "Z"
		}
		return s
	}
	return a.ValueStr(i)
}
