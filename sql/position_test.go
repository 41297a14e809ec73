package sql

import (
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// TestErrorPositions checks that an error's position is the offending
// token: at names the text that must start at the position ("" for the end
// of the statement), in characters, whatever the layer that found it (our
// lexer, our grammar, TiDB) and on whatever line.
func TestErrorPositions(t *testing.T) {
	for _, tc := range []struct {
		name, sql, at string
	}{
		{"lexer string", "SELECT a FROM t WHERE b = 'oops", "'oops"},
		{"lexer identifier", `SELECT "oops FROM t`, `"oops`},
		{"lexer comment", "SELECT a /* oops", "/* oops"},
		{"lexer question mark", "SELECT a FROM t WHERE b = ?", "?"},
		{"lexer after multi-byte", "SELECT 'ü', 'é', ? FROM t", "?"},
		{"source missing paren", "CREATE SOURCE s (a BIGINT", ""},
		{"source missing type", "CREATE SOURCE s (a, b BIGINT)", ","},
		{"source bad watermark", "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS x)", "x"},
		{"source second watermark", "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts,\n  WATERMARK FOR ts AS ts)", "WATERMARK FOR ts AS ts)"},
		{"source option twice", "CREATE SOURCE s (a BIGINT) WITH (k = 1, K = 2)", "K = 2"},
		{"source bad unit", "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' WEEKS)", "WEEKS"},
		{"interval not whole", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL '1.5' MINUTE)", "'1.5'"},
		{"interval pg style unit", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL '30 weeks')", "'30 weeks'"},
		{"interval zero gap", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL 0 MINUTE)", "0 MINUTE"},
		{"window without interval", "SELECT a FROM t GROUP BY SESSION(ts)", ")"},
		{"window missing paren", "SELECT a FROM t GROUP BY a, SESSION(ts, INTERVAL 1 MINUTE HAVING a > 1", "HAVING"},
		{"two windows", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL 1 MINUTE), a,\n  SESSION(ts, INTERVAL 2 MINUTE)", "SESSION(ts, INTERVAL 2"},
		{"window outside group by", "SELECT a FROM t WHERE SESSION(ts, INTERVAL 1 MINUTE)", "SESSION"},
		{"emit twice", "SELECT a FROM t EMIT FINAL\nEMIT FINAL", "EMIT FINAL"},
		{"emit bad", "SELECT a FROM t EMIT EARLY SOMETIMES", "SOMETIMES"},
		{"emit zero events", "SELECT a FROM t EMIT EARLY EVERY 0 EVENTS", "0 EVENTS"},
		{"lateness then junk", "SELECT a FROM t ALLOWED LATENESS INTERVAL 1 MINUTE LIMIT 3", "LIMIT"},
		{"tidb error", "SELECT a FROM t WHERE a = = 1", "= 1"},
		{"tidb error at end", "SELECT a FROM t WHERE", ""},
		{"tidb error second line", "SELECT a\nFROM t\nWHERE a IN (1,, 2)", ", 2)"},
		{"tidb error after lifted window", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL '1' MINUTE), a HAVING > 1", "> 1"},
		{"tidb error after multi-byte", "SELECT 'ü' FROM t WHERE b = 'é' AND AND", "AND\x00"},
		{"tidb error in view", "CREATE MATERIALIZED VIEW v AS\n  SELECT a FORM t", "t"},
		{"tidb error with params", "SELECT a FROM t WHERE a = $1 AND AND b = $2", "AND b"},
		{"tidb error in insert", "INSERT INTO t VALUES (1,, 2)", ", 2)"},
		{"tidb error in explain", "EXPLAIN SELECT a FROM t WHERE a = = 1", "= 1"},
		{"unknown statement", "FROBNICATE t", "FROBNICATE"},
		{"unknown after comment", "/* hi */ FROBNICATE t", "FROBNICATE"},
		{"unsupported statement", "  UPDATE t SET a = 1", "UPDATE"},
		{"multiple statements", "SELECT 1; SELECT 2", "SELECT 2"},
		{"show junk", "SHOW server_version please", "please"},
		{"set without value", "SET a TO", ""},
		{"drop missing name", "DROP SOURCE ;", ";"},
		{"gap expr tidb error", "SELECT 'ü' FROM t\nGROUP BY SESSION(ts, GAP 'é' + + * 2)", "* 2"},
		{"gap expr bad interval", "SELECT a FROM t GROUP BY SESSION(ts, GAP CASE WHEN 'é' THEN INTERVAL 1 WEEK END)", "WEEK"},
		{"gap expr error at its interval", "SELECT a FROM t GROUP BY SESSION(ts, GAP b INTERVAL '1' MINUTE)", "INTERVAL '1'"},
		{"max shorter than gap", "SELECT a FROM t GROUP BY SESSION(ts, INTERVAL 1 HOUR, MAX INTERVAL 1 MINUTE)", "1 MINUTE"},
		{"event window condition", "SELECT 'ü' FROM t GROUP BY EVENT_WINDOW(ts, START WHEN 'é' = = 1, END WHEN b)", "= 1"},
		{"event window missing end", "SELECT a FROM t GROUP BY EVENT_WINDOW(ts, START WHEN a = f(1, 2))", ")\x00"},
		{"event window timeout", "SELECT a FROM t GROUP BY EVENT_WINDOW(ts, START WHEN a, END WHEN b, TIMEOUT INTERVAL -1 SECOND)", "-1"},
		{"filter condition", "SELECT 'ü', COUNT(*) FILTER (WHERE 'é' AND AND b) FROM t", "AND b"},
		{"filter not aggregate", "SELECT 'ü', LOWER('é') FILTER (WHERE b) FROM t", "FILTER"},
		{"first_value over", "SELECT 'ü', FIRST_VALUE(a) OVER () FROM t", "FIRST_VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.sql)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tc.sql)
			}
			e, ok := sqlerr.As(err)
			if !ok || e.Position == 0 {
				t.Fatalf("Parse(%q) = %v, want an error with a position", tc.sql, err)
			}
			runes := []rune(tc.sql)
			rest := string(runes[min(e.Position-1, len(runes)):])
			at, exact := strings.CutSuffix(tc.at, "\x00")
			switch {
			case at == "":
				if strings.TrimRight(tc.sql, " ;") != string(runes[:e.Position-1]) {
					t.Fatalf("Parse(%q): %v\nwant the position at the end of the statement, got %q after it", tc.sql, err, rest)
				}
			case exact && rest != at, !strings.HasPrefix(rest, at):
				t.Fatalf("Parse(%q): %v\nwant the position at %q, got %q", tc.sql, err, at, rest)
			}
		})
	}
}

// TestNodePositions checks that Query.Pos maps TiDB's nodes back to the
// user's text through the blanked header and lifted clauses, and that
// parameters map to their numbers wherever TiDB puts them.
func TestNodePositions(t *testing.T) {
	src := "CREATE MATERIALIZED VIEW v AS /* ü */\nSELECT a FROM t\nGROUP BY SESSION(ts, INTERVAL '1' MINUTE), a\nHAVING \"é\" > $2 LIMIT $1"
	st, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	q := st.(*CreateView).Query
	runes := []rune(src)
	at := func(pos int) string { return string(runes[pos-1:]) }
	if got := at(q.Pos(q.Select.Having.Expr)); !strings.HasPrefix(got, `"é" > $2`) {
		t.Errorf("HAVING at %q", got)
	}
	if got := at(q.Pos(q.Select.Fields.Fields[0].Expr)); !strings.HasPrefix(got, "a FROM") {
		t.Errorf("first field at %q", got)
	}
	var v paramVisitor
	q.Select.Accept(&v)
	want := map[string]int{"$2": 2, "$1": 1}
	if len(v.pms) != len(want) {
		t.Fatalf("found %d parameters, want %d", len(v.pms), len(want))
	}
	for _, pm := range v.pms {
		n, ok := q.ParamNumber(pm)
		text := at(q.Pos(pm))[:2]
		if !ok || want[text] != n {
			t.Errorf("parameter at %q has number %d (%v)", text, n, ok)
		}
	}
}

// TestLiftedPositions checks that the nodes of expressions lifted out of
// the query (GAP, START WHEN, END WHEN, FILTER conditions) have positions
// in the user's text, through comments, multi-byte characters and
// newlines, as the planner reports them, and that their parameters map to
// their numbers.
func TestLiftedPositions(t *testing.T) {
	view := "CREATE MATERIALIZED VIEW v AS /* ü */\nSELECT 'é', COUNT(*) FILTER (WHERE \"é\" = $2) FROM t\n" +
		"GROUP BY EVENT_WINDOW(ts,\n  START WHEN kind = 'ö' AND x > $1,\n  END WHEN FIRST_VALUE(y) = $3)"
	session := "SELECT 'ü' FROM t GROUP BY SESSION(ts, GAP CASE WHEN b THEN INTERVAL '1' HOUR ELSE $1 END)"
	binary := func(e ast.ExprNode) *ast.BinaryOperationExpr { return e.(*ast.BinaryOperationExpr) }
	for _, tc := range []struct {
		name, sql string
		node      func(q *Query) ast.Node
		at        string
	}{
		{"start when", view, func(q *Query) ast.Node { return q.Window.StartWhen }, "kind = 'ö' AND"},
		{"start when right", view, func(q *Query) ast.Node { return binary(q.Window.StartWhen).R }, "x > $1"},
		{"end when aggregate", view, func(q *Query) ast.Node { return binary(q.Window.EndWhen).L.(*ast.AggregateFuncExpr) }, "FIRST_VALUE(y)"},
		{"end when param", view, func(q *Query) ast.Node { return binary(q.Window.EndWhen).R }, "$3)"},
		{"filtered aggregate", view, func(q *Query) ast.Node { return q.Select.Fields.Fields[1].Expr }, "COUNT(*) FILTER"},
		{"filter condition", view, func(q *Query) ast.Node {
			for _, cond := range q.Filters {
				return binary(cond).R
			}
			return nil
		}, "$2)"},
		{"gap interval", session, func(q *Query) ast.Node { return q.Window.GapExpr.(*ast.CaseExpr).WhenClauses[0].Result }, "INTERVAL '1' HOUR"},
		{"gap param", session, func(q *Query) ast.Node { return q.Window.GapExpr.(*ast.CaseExpr).ElseClause }, "$1 END"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			var q *Query
			switch s := st.(type) {
			case *CreateView:
				q = s.Query
			case *Select:
				q = s.Query
			}
			n := tc.node(q)
			runes := []rune(tc.sql)
			if got := string(runes[q.Pos(n)-1:]); !strings.HasPrefix(got, tc.at) {
				t.Fatalf("node %T at %q, want %q", n, got, tc.at)
			}
			if pm, ok := n.(*test_driver.ParamMarkerExpr); ok {
				k, ok := q.ParamNumber(pm)
				if want := tc.at[:2]; !ok || "$"+string(rune('0'+k)) != want {
					t.Fatalf("parameter at %q has number %d (%v)", tc.at, k, ok)
				}
			}
		})
	}
}
