package planner

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// TestPlanner runs testdata/planner/*:
//
//	exec-ddl   CREATE SOURCE ... into the catalog (no stream is touched)
//	plan       a statement; prints EXPLAIN's tree, the result columns, or
//	           the error with its SQLSTATE and a caret under its position
func TestPlanner(t *testing.T) {
	datadriven.Walk(t, "testdata/planner", func(t *testing.T, path string) {
		cat, err := catalog.Open(context.Background(), catalog.NewMemStore())
		if err != nil {
			t.Fatal(err)
		}
		e := &Engine{cat: cat, mem: memory.NewGoAllocator(), log: slog.New(slog.DiscardHandler),
			sources: map[string]*sourceRT{}, views: map[string]*viewRT{}}
		sess := e.NewSession("tester", "sessionsql").(*session)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			text := strings.TrimSpace(d.Input)
			switch d.Cmd {
			case "exec-ddl":
				st, err := sql.Parse(text)
				if err != nil {
					return render(text, err)
				}
				def, err := defineSource(st.(*sql.CreateSource))
				if err != nil {
					return render(text, err)
				}
				if err := cat.AddSource(context.Background(), def, 1); err != nil {
					return render(text, err)
				}
				return "ok\n"
			case "plan":
				st, err := sql.Parse(text)
				if err != nil {
					return render(text, err)
				}
				var res string
				switch st := st.(type) {
				case *sql.CreateView:
					r, err := sess.explain(context.Background(), &sql.Explain{Stmt: st})
					if err != nil {
						return render(text, err)
					}
					for _, row := range r.Rows {
						res += row[0].(string) + "\n"
					}
					plan, _ := e.planView(st.Name.Name, st.Query, sess)
					var cols []string
					for _, f := range plan.table.Schema.Fields() {
						cols = append(cols, fmt.Sprintf("%s %s", f.Name, strings.ToLower(sqltypes.Name(f.Type))))
					}
					res += "columns: " + strings.Join(cols, ", ") + "\n"
				default:
					p, err := sess.Prepare(context.Background(), text, nil)
					if err != nil {
						return render(text, err)
					}
					var cols []string
					for _, c := range p.Columns {
						cols = append(cols, fmt.Sprintf("%s %s", c.Name, strings.ToLower(sqltypes.Name(c.Type))))
					}
					res = "columns: " + strings.Join(cols, ", ") + "\n"
				}
				return res
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
	})
}

// render prints an error as "ERROR code: message", then the statement's
// line with a caret under the position.
func render(text string, err error) string {
	e, ok := sqlerr.As(err)
	if !ok {
		return fmt.Sprintf("ERROR (no code): %v\n", err)
	}
	out := fmt.Sprintf("ERROR %s: %s\n", e.Code, e.Message)
	if e.Hint != "" {
		out += "HINT: " + e.Hint + "\n"
	}
	if e.Position > 0 {
		runes := []rune(text)
		start := e.Position - 1
		lineStart := start
		for lineStart > 0 && runes[lineStart-1] != '\n' {
			lineStart--
		}
		lineEnd := start
		for lineEnd < len(runes) && runes[lineEnd] != '\n' {
			lineEnd++
		}
		out += string(runes[lineStart:lineEnd]) + "\n" + strings.Repeat(" ", start-lineStart) + "^\n"
	}
	return out
}
