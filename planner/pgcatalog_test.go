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
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// TestCatalogQueries runs testdata/pgcatalog/* (TestPlanner walks
// testdata/planner):
//
//	exec-ddl   CREATE SOURCE or CREATE MATERIALIZED VIEW into the catalog
//	           (nothing runs: view columns come from planning the view)
//	query      a statement through Prepare and Execute; prints the result
//	           columns and rows, or the error with its SQLSTATE. With
//	           args=(v1, ...) the statement's parameters get these values
//	           (as the server passes text-format values of text
//	           parameters), and their types are printed first
//	prepare    a statement through Prepare only (there is no JetStream to
//	           run an INSERT against); prints "prepared" or the error
//
// The catalog queries are the ones psql 15 sends (captured with psql -E,
// and for tab completion through a logging proxy, against PostgreSQL 15),
// so these files pin what psql gets back; casts pins PostgreSQL's
// expr::type through Prepare and Execute.
func TestCatalogQueries(t *testing.T) {
	datadriven.Walk(t, "testdata/pgcatalog", func(t *testing.T, path string) {
		ctx := context.Background()
		cat, err := catalog.Open(ctx, catalog.NewMemStore())
		if err != nil {
			t.Fatal(err)
		}
		e := &Engine{cat: cat, mem: memory.NewGoAllocator(), log: slog.New(slog.DiscardHandler),
			sources: map[string]*sourceRT{}, views: map[string]*viewRT{}}
		sess := e.NewSession("tester", "shop").(*session)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			text := strings.TrimSpace(d.Input)
			switch d.Cmd {
			case "exec-ddl":
				st, err := sql.Parse(text)
				if err != nil {
					return render(text, err)
				}
				switch st := st.(type) {
				case *sql.CreateSource:
					def, err := defineSource(st)
					if err == nil {
						err = cat.AddSource(ctx, def, 1)
					}
					if err != nil {
						return render(text, err)
					}
				case *sql.CreateView:
					plan, err := e.planView(st.Name.Name, st.Query, sess)
					if err == nil {
						err = cat.AddView(ctx, &catalog.View{Name: st.Name.Name, Source: plan.source.Name, SQL: st.Text}, 1)
					}
					if err != nil {
						return render(text, err)
					}
				default:
					t.Fatalf("exec-ddl needs CREATE SOURCE or CREATE MATERIALIZED VIEW, got %T", st)
				}
				return "ok\n"
			case "query", "prepare":
				p, err := sess.Prepare(ctx, text, nil)
				if err != nil {
					return render(text, err)
				}
				if d.Cmd == "prepare" {
					return "prepared\n"
				}
				var b strings.Builder
				var args []any
				if d.HasArg("args") {
					var types []string
					for _, oid := range p.Params {
						types = append(types, sqltypes.FormatType(oid))
					}
					fmt.Fprintf(&b, "params: %s\n", strings.Join(types, ", "))
					for _, a := range d.CmdArgs {
						if a.Key == "args" {
							for _, v := range a.Vals {
								args = append(args, v)
							}
						}
					}
				}
				res, err := sess.Execute(ctx, p, args)
				if err != nil {
					return b.String() + render(text, err)
				}
				var cols []string
				for i, c := range res.Columns {
					if c != p.Columns[i] {
						t.Errorf("column %d: prepared %v, executed %v", i, p.Columns[i], c)
					}
					cols = append(cols, fmt.Sprintf("%s %s", c.Name, strings.ToLower(sqltypes.Name(c.Type))))
				}
				fmt.Fprintf(&b, "columns: %s\n", strings.Join(cols, ", "))
				for _, row := range res.Rows {
					cells := make([]string, len(row))
					for i, v := range row {
						if v == nil {
							cells[i] = "NULL"
						} else {
							cells[i] = fmt.Sprint(v)
						}
					}
					fmt.Fprintf(&b, "%s\n", strings.Join(cells, " | "))
				}
				fmt.Fprintf(&b, "%s\n", res.Tag)
				return b.String()
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
	})
}

func TestSplitSelect(t *testing.T) {
	for _, tc := range []struct {
		text  string
		items []string
		from  string
		ok    bool
	}{
		{"SELECT a, b FROM t", []string{" a", " b"}, " t", true},
		{"select f(a, b) AS \"x, y\", 'from, here' FROM t WHERE z", []string{" f(a, b) AS \"x, y\"", " 'from, here'"}, " t WHERE z", true},
		{"SELECT (SELECT c FROM u), E'\\'', d\nFROM t", []string{" (SELECT c FROM u)", " E'\\''", " d"}, " t", true},
		{"SELECT pg_catalog.pg_get_viewdef('1'::pg_catalog.oid, true);", []string{" pg_catalog.pg_get_viewdef('1'::pg_catalog.oid, true)"}, "", true},
		{"SELECTa FROM t", nil, "", false},
		{"WITH x AS (SELECT 1) SELECT * FROM x", nil, "", false},
	} {
		items, from, ok := splitSelect(tc.text)
		if ok != tc.ok || fmt.Sprintf("%q", items) != fmt.Sprintf("%q", tc.items) || from != tc.from {
			t.Errorf("splitSelect(%q) = %q, %q, %v; want %q, %q, %v", tc.text, items, from, ok, tc.items, tc.from, tc.ok)
		}
	}
}

func TestSplitAlias(t *testing.T) {
	for _, tc := range []struct{ item, expr, name string }{
		{` n.nspname as "Schema"`, "n.nspname", "Schema"},
		{"\n  c.relname", "c.relname", "relname"},
		{"false AS relhasoids", "false", "relhasoids"},
		{"pg_catalog.format_type(a.atttypid, a.atttypmod)", "pg_catalog.format_type(a.atttypid, a.atttypmod)", "format_type"},
		{"(SELECT x AS y FROM t)", "(SELECT x AS y FROM t)", "?column?"},
		{"(SELECT x AS y FROM t) AS attcollation", "(SELECT x AS y FROM t)", "attcollation"},
		{"''", "''", "?column?"},
	} {
		expr, name := splitAlias(tc.item)
		if expr != tc.expr || name != tc.name {
			t.Errorf("splitAlias(%q) = %q, %q; want %q, %q", tc.item, expr, name, tc.expr, tc.name)
		}
	}
}
