package sql

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// TestParse runs testdata/parse/*. Commands:
//
//	parse [detail]
//	<statement>
//	----
//	<Format of the statement, then with detail its positions>
//
// or, for an error, "ERROR <code> at <position>: <message>", the line of the
// input holding the position with a caret under it, and the hint if any.
// Every statement that parses must also format and re-parse to the same
// text.
func TestParse(t *testing.T) {
	datadriven.Walk(t, "testdata/parse", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "parse" {
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			st, err := Parse(d.Input)
			if err != nil {
				if err := checkErrorPosition(d.Input, err); err != nil {
					d.Fatalf(t, "%v", err)
				}
				return formatError(d.Input, err)
			}
			out := Format(st)
			if err := checkRoundTrip(out, false); err != nil {
				d.Fatalf(t, "%v", err)
			}
			if out == "" {
				out = "(empty)"
			}
			if d.HasArg("detail") {
				out += "\n" + detail(st)
			}
			return strings.TrimRight(out, "\n") + "\n"
		})
	})
}

// checkRoundTrip checks that formatted, the output of Format, parses and
// formats to itself. With tidbLenient, the TiDB-rendered parts may change
// once (TiDB's rendering is not always a fixed point: DEC(0) renders as
// DECIMAL, which reads back as DECIMAL(10)); then our own parts must be
// equal and a second round must be stable.
func checkRoundTrip(formatted string, tidbLenient bool) error {
	st, err := Parse(formatted)
	if err != nil {
		return fmt.Errorf("re-parsing %q: %w", formatted, err)
	}
	again := Format(st)
	if again == formatted {
		return nil
	}
	if !tidbLenient {
		return fmt.Errorf("format is not stable:\nfirst:  %s\nsecond: %s", formatted, again)
	}
	st3, err := Parse(again)
	if err != nil {
		return fmt.Errorf("re-parsing %q: %w", again, err)
	}
	if a, b := ours(st), ours(st3); a != b {
		return fmt.Errorf("our clauses changed:\nfirst:  %s\nsecond: %s", a, b)
	}
	if third := Format(st3); third != again {
		return fmt.Errorf("format is not stable:\nfirst:  %s\nsecond: %s\nthird:  %s", formatted, again, third)
	}
	return nil
}

// ours renders what our layer parsed of st, leaving out what TiDB parsed:
// of the expressions in our clauses only which there are.
func ours(st Statement) string {
	query := func(q *Query) string {
		params := map[int]int{}
		for _, n := range q.Params {
			params[n]++
		}
		c := *q
		c.Select, c.Source, c.Offset, c.Params, c.Filters = nil, "", 0, nil, nil
		c.Emit.Pos = min(c.Emit.Pos, 1)
		var w Window
		var exprs []bool
		if c.Window != nil {
			w = *c.Window
			w.Pos, w.TimeCol.Pos, w.MaxPos = 0, 0, min(w.MaxPos, 1)
			exprs = []bool{w.GapExpr != nil, w.StartWhen != nil, w.EndWhen != nil}
			w.GapExpr, w.StartWhen, w.EndWhen = nil, nil, nil
		}
		c.Window = nil
		return fmt.Sprintf("%+v window %+v exprs %v filters %d params %v", c, w, exprs, len(q.Filters), params)
	}
	switch s := st.(type) {
	case *Select:
		return query(s.Query)
	case *CreateView:
		return s.Name.Name + fmt.Sprint(s.IfNotExists) + query(s.Query)
	case *Explain:
		if s.Analyze != nil {
			return "EXPLAIN ANALYZE " + s.Analyze.Name
		}
		return "EXPLAIN " + ours(s.Stmt)
	case *Insert:
		params := map[int]int{}
		for _, n := range s.Params {
			params[n]++
		}
		return fmt.Sprintf("INSERT params %v", params)
	}
	return Format(st)
}

// checkErrorPosition checks that an error of Parse(input) is at the start
// of a token or just after one (the end of the input TiDB saw), unless the
// lexer itself failed, and then at the start of what it could not lex.
func checkErrorPosition(input string, err error) error {
	e, ok := sqlerr.As(err)
	if !ok || e.Position == 0 {
		return nil
	}
	toks, lexErr := lex(input)
	if lexErr != nil {
		return nil
	}
	for _, t := range toks {
		if e.Position == t.pos || e.Position == sqlerr.RunePos(input, t.end) {
			return nil
		}
	}
	return fmt.Errorf("error %q at %d is neither at the start nor at the end of a token", e.Message, e.Position)
}

// formatError renders an error as the datadriven files show it.
func formatError(input string, err error) string {
	e, ok := sqlerr.As(err)
	if !ok {
		return fmt.Sprintf("ERROR (not a *sqlerr.Error) %T: %v\n", err, err)
	}
	var b strings.Builder
	if e.Position == 0 {
		fmt.Fprintf(&b, "ERROR %s: %s\n", e.Code, e.Message)
	} else {
		fmt.Fprintf(&b, "ERROR %s at %d: %s\n", e.Code, e.Position, e.Message)
		line, col := caretLine(input, e.Position)
		b.WriteString(line + "\n")
		b.WriteString(col + "^\n")
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "HINT: %s\n", e.Hint)
	}
	return b.String()
}

// caretLine returns the line of input holding the 1-based character
// position pos, and the indentation that puts a caret under it (tabs kept,
// so the caret lines up).
func caretLine(input string, pos int) (line, indent string) {
	runes := []rune(input)
	i := pos - 1
	if i > len(runes) {
		i = len(runes)
	}
	start := i
	for start > 0 && runes[start-1] != '\n' {
		start--
	}
	end := i
	for end < len(runes) && runes[end] != '\n' {
		end++
	}
	var ind strings.Builder
	for _, r := range runes[start:i] {
		if r == '\t' {
			ind.WriteRune('\t')
		} else {
			ind.WriteByte(' ')
		}
	}
	return string(runes[start:end]), ind.String()
}

// detail lists the positions and lifted parts of a statement.
func detail(st Statement) string {
	var b strings.Builder
	ident := func(what string, id Ident) { fmt.Fprintf(&b, "%s %s @%d\n", what, id.Name, id.Pos) }
	switch s := st.(type) {
	case *CreateSource:
		ident("source", s.Name)
		for _, c := range s.Columns {
			fmt.Fprintf(&b, "column %s @%d type %q @%d\n", c.Name.Name, c.Name.Pos, c.TypeName, c.TypePos)
		}
		if w := s.Watermark; w != nil {
			fmt.Fprintf(&b, "watermark @%d for %s @%d delay %s\n", w.Pos, w.Column.Name, w.Column.Pos, w.Delay)
		}
		for _, o := range s.Options {
			fmt.Fprintf(&b, "option %s @%d = %q @%d\n", o.Key.Name, o.Key.Pos, o.Value, o.ValuePos)
		}
	case *CreateView:
		ident("view", s.Name)
		detailQuery(&b, s.Query)
	case *Select:
		detailQuery(&b, s.Query)
	case *Explain:
		if s.Analyze != nil {
			ident("view", *s.Analyze)
			break
		}
		b.WriteString(detail(s.Stmt))
	case *Insert:
		fmt.Fprintf(&b, "tidb @%d: %q\n", s.Offset, insertTextOf(s))
		detailParams(&b, s.ParamNumber, s.Pos, s.Stmt)
		detailCasts(&b, s.Source, s.Pos, s.Params, s.Stmt)
	case *DropSource:
		ident("source", s.Name)
	case *DropView:
		ident("view", s.Name)
	case *ShowVar:
		ident("setting", s.Name)
	case *SetVar:
		ident("setting", s.Name)
		fmt.Fprintf(&b, "value %q\n", s.Value)
	case *Describe:
		ident("name", s.Name)
	default:
		fmt.Fprintf(&b, "%T\n", st)
	}
	return b.String()
}

func detailQuery(b *strings.Builder, q *Query) {
	fmt.Fprintf(b, "tidb @%d: %q\n", q.Offset, tidbTextOf(q))
	// Lifted expressions: position (via q.Pos, as the planner reports
	// them) and TiDB's rendering.
	expr := func(what string, e ast.ExprNode) {
		fmt.Fprintf(b, "%s @%d: %s\n", what, q.Pos(e), restoreExpr(e, q.Params))
	}
	nodes := []ast.Node{q.Select}
	if w := q.Window; w != nil {
		switch w.Kind {
		case WindowEvent:
			fmt.Fprintf(b, "window EVENT_WINDOW @%d time %s @%d", w.Pos, w.TimeCol.Name, w.TimeCol.Pos)
			if w.Timeout != 0 {
				fmt.Fprintf(b, " timeout %s", w.Timeout)
			}
			b.WriteString("\n")
			expr("start when", w.StartWhen)
			expr("end when", w.EndWhen)
			nodes = append(nodes, w.StartWhen, w.EndWhen)
		default:
			fmt.Fprintf(b, "window SESSION @%d time %s @%d", w.Pos, w.TimeCol.Name, w.TimeCol.Pos)
			if w.GapExpr == nil {
				fmt.Fprintf(b, " gap %s", w.Gap)
			}
			if w.MaxPos != 0 {
				fmt.Fprintf(b, " max %s @%d", w.Max, w.MaxPos)
			}
			b.WriteString("\n")
			if w.GapExpr != nil {
				expr("gap", w.GapExpr)
				nodes = append(nodes, w.GapExpr)
			}
		}
	}
	type filter struct{ agg, cond ast.ExprNode }
	var filters []filter
	for agg, cond := range q.Filters {
		filters = append(filters, filter{agg, cond})
	}
	sort.Slice(filters, func(i, j int) bool { return q.Pos(filters[i].agg) < q.Pos(filters[j].agg) })
	for _, f := range filters {
		fmt.Fprintf(b, "filter on %s @%d where @%d: %s\n", restoreExpr(f.agg, q.Params), q.Pos(f.agg), q.Pos(f.cond), restoreExpr(f.cond, q.Params))
		nodes = append(nodes, f.cond)
	}
	switch q.Emit.Mode {
	case EmitFinal:
		if q.Emit.Pos != 0 {
			fmt.Fprintf(b, "emit final @%d\n", q.Emit.Pos)
		}
	case EmitEarlyInterval:
		fmt.Fprintf(b, "emit early every %s @%d\n", q.Emit.Every, q.Emit.Pos)
	case EmitEarlyEvents:
		fmt.Fprintf(b, "emit early every %d events @%d\n", q.Emit.EveryEvents, q.Emit.Pos)
	}
	if q.Lateness != 0 {
		fmt.Fprintf(b, "allowed lateness %s\n", q.Lateness)
	}
	detailParams(b, q.ParamNumber, q.Pos, nodes...)
	detailCasts(b, q.Source, q.Pos, q.Params, nodes...)
	// Where TiDB's expression positions land: the first expression of the
	// WHERE clause, if any, mapped back to the user's text.
	if q.Select.Where != nil {
		fmt.Fprintf(b, "where @%d\n", q.Pos(q.Select.Where))
	}
}

// tidbTextOf re-derives, for display, the text TiDB parsed for q by
// replaying the lifting: the parser keeps no copy of it.
func tidbTextOf(q *Query) string {
	toks, err := lex(q.Source)
	if err != nil {
		return err.Error()
	}
	end := len(toks) - 1
	for i, t := range toks[:end] {
		if t.isOp(";") {
			end = i
			break
		}
	}
	s := 0
	for s < end && toks[s].start != q.Offset {
		s++
	}
	p := &parser{text: q.Source, toks: toks, pos: s, limit: end}
	lifted, _, err := p.lift(&Query{}, s, end)
	if err != nil {
		return err.Error()
	}
	text, _, _, err := p.tidbText(s, end, lifted)
	if err != nil {
		return err.Error()
	}
	return text
}

// insertTextOf re-derives the text TiDB parsed for s, for display.
func insertTextOf(s *Insert) string {
	toks, err := lex(s.Source)
	if err != nil {
		return err.Error()
	}
	end := len(toks) - 1
	for i, t := range toks[:end] {
		if t.isOp(";") {
			end = i
			break
		}
	}
	start := 0
	for start < end && toks[start].start != s.Offset {
		start++
	}
	p := &parser{text: s.Source, toks: toks, pos: start, limit: end}
	text, _, _, err := p.tidbText(start, end, nil)
	if err != nil {
		return err.Error()
	}
	return text
}

type paramVisitor struct {
	pms []*test_driver.ParamMarkerExpr
}

func (v *paramVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if pm, ok := n.(*test_driver.ParamMarkerExpr); ok {
		v.pms = append(v.pms, pm)
	}
	return n, false
}

func (v *paramVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func detailParams(b *strings.Builder, number func(ast.Node) (int, bool), pos func(ast.Node) int, nodes ...ast.Node) {
	var v paramVisitor
	for _, n := range nodes {
		n.Accept(&v)
	}
	sort.Slice(v.pms, func(i, j int) bool { return v.pms[i].Offset < v.pms[j].Offset })
	for _, pm := range v.pms {
		k, ok := number(pm)
		fmt.Fprintf(b, "param $%d (%v) @%d\n", k, ok, pos(pm))
	}
}

type castVisitor struct{ casts []*ast.FuncCastExpr }

func (v *castVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if c, ok := n.(*ast.FuncCastExpr); ok {
		v.casts = append(v.casts, c)
	}
	return n, false
}

func (v *castVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// detailCasts lists the casts written expr::type (not CAST(...), CONVERT
// or BINARY: the text at their position is their operand), with their
// positions and rendering.
func detailCasts(b *strings.Builder, source string, pos func(ast.Node) int, params map[int]int, nodes ...ast.Node) {
	var v castVisitor
	for _, n := range nodes {
		n.Accept(&v)
	}
	for _, c := range v.casts {
		at := string([]rune(source)[pos(c)-1:])
		if word := strings.ToLower(at[:min(len(at), 7)]); strings.HasPrefix(word, "cast") || strings.HasPrefix(word, "convert") || strings.HasPrefix(word, "binary") {
			continue
		}
		fmt.Fprintf(b, "cast @%d: %s\n", pos(c), restoreExpr(c, params))
	}
}

// parseInputs returns the inputs of every parse directive in
// testdata/parse, for the fuzz seeds and the position test.
func parseInputs(t testing.TB) []string {
	files, err := filepath.Glob("testdata/parse/*")
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			if !strings.HasPrefix(lines[i], "parse") {
				continue
			}
			var in []string
			for i++; i < len(lines) && lines[i] != "----"; i++ {
				in = append(in, lines[i])
			}
			inputs = append(inputs, strings.Join(in, "\n"))
		}
	}
	return inputs
}

// TestParseConcurrent parses the datadriven inputs from several goroutines
// at once (run with -race): sessions parse concurrently and share the pool
// of TiDB parsers.
func TestParseConcurrent(t *testing.T) {
	inputs := parseInputs(t)
	want := make([]string, len(inputs))
	for i, in := range inputs {
		want[i] = parseResult(in)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for i, in := range inputs {
				if got := parseResult(in); got != want[i] {
					errs <- fmt.Sprintf("Parse(%q) concurrently = %q, want %q", in, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func parseResult(in string) string {
	st, err := Parse(in)
	if err != nil {
		return err.Error()
	}
	return Format(st)
}
