package planner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
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
// The catalog queries of psql15 and completion are the ones psql 15 sends
// (captured with psql -E, and for tab completion through a logging proxy,
// against PostgreSQL 15), and those of jdbc the ones pgjdbc 42.5.5's
// DatabaseMetaData sends (through the same proxy), so these files pin
// what the clients get back; reader and infoschema pin the general reader
// and information_schema; casts pins PostgreSQL's expr::type through
// Prepare and Execute.
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

func TestPgLex(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`SELECT n.nspname AS "Schema" FROM x`, `select n . nspname as Schema from x`},
		{`'it''s' E'a\'b\n' "q""d"`, "it's a'b\n q\"d"},
		{`a<>b!~'x' c!~*d -- comment` + "\n" + `/* more */ $12::pg_catalog.int8`, `a <> b !~ x c !~* d 12 :: pg_catalog . int8`},
		{`(x)[1], 1.5`, `( x ) [ 1 ] , 1.5`},
	} {
		toks, err := pgLex(tc.text)
		if err != nil {
			t.Errorf("pgLex(%q): %v", tc.text, err)
			continue
		}
		var got []string
		for _, tok := range toks {
			got = append(got, tok.text)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("pgLex(%q) = %q, want %q", tc.text, strings.Join(got, " "), tc.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `/* open`, `a ? b`} {
		if _, err := pgLex(bad); err == nil {
			t.Errorf("pgLex(%q) did not fail", bad)
		}
	}
}

// TestPgEval evaluates expressions over one row (c.relname = 'plays',
// c.relkind = 'r', c.oid = 16400, a.attnum = 3, d.* outer-joined with
// nothing) in SQL's three-valued logic plus unknown.
func TestPgEval(t *testing.T) {
	env := &pgEnv{
		cols:        map[string]any{"c.relname": "plays", "c.relkind": "r", "c.oid": int64(16400), "a.attnum": int64(3), "a.attnotnull": false},
		nullAliases: map[string]bool{"d": true},
	}
	for _, tc := range []struct {
		expr string
		want any // "unknown" for the unknown value
	}{
		{"c.relname LIKE 'pl%'", true},
		{"c.relname NOT LIKE 'pl\\_%'", true},
		{"relname ILIKE 'PLAYS'", true},
		{"c.relname ~ '^p' AND c.relname !~* 'S$'", false},
		{"c.relname OPERATOR(pg_catalog.~) '^(plays)$' COLLATE pg_catalog.default", true},
		{"c.oid = '16400' AND a.attnum > 0 AND NOT a.attnotnull", true},
		{"c.relkind IN ('m', NULL)", nil},
		{"c.relkind NOT IN ('m', 'v')", true},
		{"d.description IS NULL AND d.objoid IS NOT NULL", false},
		{"d.description = 'x'", nil},
		{"d.description = 'x' OR true", true},
		{"(SELECT 1) = 1 AND false", false},
		{"(SELECT 1) = 1 OR false", "unknown"},
		{"(pg_catalog.current_schemas(true))[1] = 'public'", "unknown"},
		{"c.nosuch = 1", "unknown"},
		{"CASE c.relkind WHEN 'r' THEN 'table' WHEN 'm' THEN 'materialized view' END", "table"},
		{"CASE WHEN a.attnum > 5 THEN 'big' ELSE 'small' END", "small"},
		{"CASE c.relname ~ '^pg_' WHEN true THEN 'system' WHEN false THEN 'user' END", "user"},
		{"nullif(c.relkind, 'r')", nil},
		{"coalesce(d.description, c.relname || '!')", "plays!"},
		{"c.oid::text || '/' || (a.attnum + 1)::text", "16400/4"},
		{"'t'::boolean AND 'yes'::bool", true},
		{"pg_catalog.pg_get_expr(d.adbin, d.adrelid)", nil},
		{"pg_catalog.pg_get_expr(c.oid, c.oid)", "unknown"},
		{"pg_catalog.format_type(20, -1)", "bigint"},
		{"-a.attnum * 2 % 4", int64(-2)},
		{"row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)", "unknown"},
	} {
		toks, err := pgLex(tc.expr)
		if err != nil {
			t.Fatalf("pgLex(%q): %v", tc.expr, err)
		}
		x, err := readPgExpr(tc.expr, toks, 0, len(toks))
		if err != nil {
			t.Errorf("readPgExpr(%q): %v", tc.expr, err)
			continue
		}
		got := env.eval(x)
		if pgIsUnknown(got) {
			got = "unknown"
		}
		if got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
		}
	}
}

func TestReadPgSelect(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`SELECT c.relname AS "Name", n.nspname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE true ORDER BY 1 DESC LIMIT 5;`,
			`items=[Name nspname] tables=[pg_class c, pg_namespace n outer] where order=1 limit`},
		{`select nspname as TABLE_SCHEM from pg_catalog.pg_namespace`, `items=[table_schem] tables=[pg_namespace pg_namespace]`},
		{`SELECT * FROM (SELECT a.attname FROM pg_catalog.pg_attribute a) c WHERE true ORDER BY attname`, `star sub=c(items=[attname] tables=[pg_attribute a]) where order=1`},
		{`SELECT x FROM pg_catalog.pg_class GROUP BY x`, `error: GROUP`},
		{`SELECT DISTINCT x FROM pg_catalog.pg_class`, `error: SELECT DISTINCT`},
		{`SELECT x FROM pg_catalog.pg_class c JOIN (SELECT 1) v ON true`, `error: a subquery in FROM joined with other tables`},
		{`SELECT x FROM pg_catalog.pg_class UNION SELECT y FROM pg_catalog.pg_class`, `error: UNION`},
		{`SELECT 1`, `error: no FROM`},
	} {
		toks, err := pgLex(tc.text)
		if err != nil {
			t.Fatalf("pgLex(%q): %v", tc.text, err)
		}
		q, err := readPgSelect(tc.text, toks, 0, len(toks))
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = describePgSelect(q)
		}
		if got != tc.want {
			t.Errorf("readPgSelect(%q) = %s, want %s", tc.text, got, tc.want)
		}
	}
}

func describePgSelect(q *pgSelect) string {
	var parts []string
	if q.star {
		parts = append(parts, "star")
	}
	if len(q.items) > 0 {
		var names []string
		for _, it := range q.items {
			names = append(names, it.name)
		}
		parts = append(parts, fmt.Sprintf("items=%v", names))
	}
	if q.sub != nil {
		parts = append(parts, fmt.Sprintf("sub=%s(%s)", q.subAlias, describePgSelect(q.sub)))
	}
	if len(q.tables) > 0 {
		var ts []string
		for _, r := range q.tables {
			s := r.catalog + " " + r.alias
			if r.outer {
				s += " outer"
			}
			ts = append(ts, s)
		}
		parts = append(parts, "tables=["+strings.Join(ts, ", ")+"]")
	}
	if q.where != nil {
		parts = append(parts, "where")
	}
	if len(q.order) > 0 {
		parts = append(parts, fmt.Sprintf("order=%d", len(q.order)))
	}
	if q.limit != nil {
		parts = append(parts, "limit")
	}
	return strings.Join(parts, " ")
}

// FuzzCatalogQuery checks that no text makes the catalog readers panic and
// that every error they return carries a SQLSTATE. The seeds are the
// queries of testdata/pgcatalog.
func FuzzCatalogQuery(f *testing.F) {
	for _, name := range []string{"jdbc", "reader", "infoschema", "psql15", "completion"} {
		b, err := os.ReadFile(filepath.Join("testdata/pgcatalog", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, blk := range strings.Split(string(b), "\nquery\n")[1:] {
			f.Add(strings.SplitN(blk, "\n----\n", 2)[0])
		}
	}
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.NewMemStore())
	if err != nil {
		f.Fatal(err)
	}
	e := &Engine{cat: cat, mem: memory.NewGoAllocator(), log: slog.New(slog.DiscardHandler),
		sources: map[string]*sourceRT{}, views: map[string]*viewRT{}}
	sess := e.NewSession("tester", "shop").(*session)
	f.Fuzz(func(t *testing.T, text string) {
		ans, err := matchCatalogQuery(text)
		if err == nil && ans != nil {
			_, err = ans(sess)
		}
		if err != nil {
			if _, ok := sqlerr.As(err); !ok {
				t.Errorf("%q: error without a SQLSTATE: %v", text, err)
			}
		}
	})
}
