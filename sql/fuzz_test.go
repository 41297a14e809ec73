package sql

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// FuzzParse checks that Parse never panics, that every error is a
// *sqlerr.Error with a position inside the input (or none), and that what
// parses formats to text that parses and formats the same again (allowing
// TiDB's rendering one normalizing step, see checkRoundTrip). It is seeded
// with every input of testdata/parse.
//
//	go test ./sql -run '^$' -fuzz FuzzParse -fuzztime 500000x
//
// (A count, not a duration: with -fuzztime 60s, Go's fuzzing coordinator
// may end with a spurious "context deadline exceeded", golang/go#75804.)
func FuzzParse(f *testing.F) {
	for _, in := range parseInputs(f) {
		f.Add(in)
	}
	for _, in := range extraSeeds {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, text string) {
		st, err := Parse(text)
		if err != nil {
			e, ok := sqlerr.As(err)
			if !ok {
				t.Fatalf("Parse(%q): error %T is not a *sqlerr.Error: %v", text, err, err)
			}
			if e.Code == "" || e.Message == "" || strings.HasSuffix(e.Message, `near ""`) {
				t.Fatalf("Parse(%q): error without code or message, or near nothing: %#v", text, e)
			}
			if n := utf8.RuneCountInString(text); e.Position < 0 || e.Position > n+1 {
				t.Fatalf("Parse(%q): position %d outside 1..%d", text, e.Position, n+1)
			}
			return
		}
		if err := checkRoundTrip(Format(st), true); err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
	})
}

// extraSeeds steer the fuzzer to TiDB features whose rendering differs
// from their text (parameters in LIMIT and special functions, operators
// TiDB rewrites, literals of every kind).
var extraSeeds = []string{
	"SELECT a FROM t GROUP BY a, SESSION(ts, INTERVAL 1 MINUTE) WITH ROLLUP",
	"SELECT CAST(a AS SIGNED), CAST(b AS CHAR(10)), CONVERT(c, DECIMAL(10,2)) FROM t",
	"SELECT x'ff', b'0101', N'abc', _utf8mb4'x' COLLATE utf8mb4_bin, TRUE, NULL, 1e10, -0.5 FROM t",
	"SELECT a FROM t WHERE a LIKE 'x%' ESCAPE '!' AND b IS NOT NULL AND c NOT BETWEEN 1 AND 2 AND d IN (SELECT 1) AND EXISTS (SELECT 2)",
	"SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
	"SELECT DATE_ADD(ts, INTERVAL 1 DAY), ts + INTERVAL $1 SECOND, EXTRACT(HOUR FROM ts) FROM t",
	"SELECT a->'$.x', a->>'$.y' FROM t",
	"SELECT COALESCE(a, $1, $2), IF($3, 1, 2), CASE $4 WHEN 1 THEN $5 END FROM t LIMIT $6 OFFSET $7",
	"SELECT t.a, s.b FROM t JOIN s ON t.id = s.id LEFT JOIN u USING (id)",
	"SELECT DISTINCT a FROM t ORDER BY a DESC, b",
	"SELECT a FROM t WHERE a = 'x' || 'y'",
	"SELECT COUNT(*) FILTER (WHERE a) FROM t",
	"SELECT a FROM t FOR UPDATE",
	"SELECT @@version",
	"SELECT 'a\\'b'",
	"SELECT a FROM t WHERE b = $1::int",
	"SELECT GROUP_CONCAT(a ORDER BY b SEPARATOR ',') FROM t",
	"SELECT a FROM t GROUP BY a HAVING $1 > 1",
	"SELECT * FROM t AS OF TIMESTAMP NOW()",
	"SELECT a FROM t USE INDEX (i)",
	"SELECT MATCH (a) AGAINST ('x') FROM t",
	"SELECT a FROM t WHERE a REGEXP 'x'",
	"SELECT a FROM t TABLESAMPLE REGIONS()",
	"SELECT SQL_CALC_FOUND_ROWS a FROM t",
	"SELECT a FROM t PARTITION (p0)",
	"SELECT CHAR(65 USING utf8mb4)",
	"SELECT TRIM(LEADING 'x' FROM a), POSITION('a' IN b), SUBSTRING(a FROM 1 FOR 2) FROM t",
	"SELECT DEFAULT(a), VALUES(a) FROM t",
	"SELECT 1 FROM DUAL",
	"SELECT CURRENT_TIMESTAMP, NOW(3), CURRENT_DATE FROM t",
	"SELECT a FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
	"SELECT a FROM t WHERE a = ANY (SELECT 1)",
	"SELECT a FROM t LOCK IN SHARE MODE",
	"SELECT a FROM t INTO OUTFILE 'x'",
	"SELECT a FROM t WINDOW w AS (ORDER BY a)",
	"SELECT `a``b`, \"c\"\"d\" FROM t",
	"SELECT 0x1F, 0b101, .5e-3 FROM t",
	"INSERT INTO t (a) VALUES (DEFAULT), (NULL), ($1 + 1)",
	"INSERT INTO t VALUES ()",
	"INSERT INTO t () VALUES ()",
	"INSERT INTO t VALUE (1)",
	"INSERT INTO db.t VALUES (1)",
	"INSERT t VALUES (1)",
	"INSERT LOW_PRIORITY INTO t VALUES (1)",
	"INSERT INTO t VALUES (1) RETURNING a",
	"INSERT /*+ hint */ INTO t VALUES (1)",
	"INSERT INTO t VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a",
	"INSERT INTO t VALUES (FIRST_VALUE(1), LAST_VALUE($1))",
	"SELECT a FROM t GROUP BY a, SESSION(ts, GAP DATE_SUB(ts, INTERVAL $1 MINUTE) - SUBDATE(ts, 1) + INTERVAL(a, 1, 2), MAX INTERVAL '1' DAY) WITH ROLLUP",
	"SELECT a FROM t GROUP BY EVENT_WINDOW(ts, START WHEN EXISTS (SELECT 1 FROM u WHERE u.a = t.a), END WHEN a LIKE '%,%' ESCAPE '!', TIMEOUT INTERVAL '1 hour') HAVING COUNT(*) FILTER (WHERE $1) > 0 EMIT EARLY EVERY 5 EVENTS",
	"SELECT GROUP_CONCAT(a ORDER BY b SEPARATOR ',') FILTER (WHERE c), first_value(a) FILTER (WHERE b) FROM t",
	"SELECT (SELECT COUNT(*) FILTER (WHERE x) FROM u) FROM t GROUP BY SESSION(ts, GAP (SELECT MAX(g) FROM u))",
	// PostgreSQL's expr::type (cast.go): operands of every kind, types of
	// several words, places where TiDB's grammar takes no expression.
	"SELECT '2024-01-01 10:00'::timestamp, $1::bigint, x::text::int, -y::int8, (a + b)::numeric(10,2) FROM t WHERE ts > '2024-01-01'::timestamptz",
	"SELECT f(x)::text, t.a::double precision, CASE WHEN a THEN 1 END::varchar(3), count(*) FILTER (WHERE b::int > 0)::float8, date '2024-01-01'::text, x'ff'::text FROM t",
	"SELECT a::timestamp(3) with time zone FROM t GROUP BY a::timestamp without time zone, SESSION(ts, GAP $1::bigint) HAVING COUNT(*)::text <> '0' ORDER BY a::character varying LIMIT $2::int",
	"SELECT EXISTS (SELECT 1::int)::int, (SELECT 2)::text, a IN (SELECT 1)::int, a = ANY (SELECT 1)::text, CAST(a AS SIGNED)::text FROM t",
	"INSERT INTO t VALUES ($1::bigint, 'x'::text, NOW()::timestamp)",
	"SELECT a::pg_catalog.int4, a::\"int8\", a::national character(2), a::int[], a::nosuch, a::boolean FROM t",
	"SELECT a FROM t GROUP BY EVENT_WINDOW(ts, START WHEN x::text = 'a', END WHEN y::int = 1) EMIT EARLY EVERY 5::int EVENTS",
}
