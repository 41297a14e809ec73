package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// testEngine is a tiny engine for the server's tests. It understands
//
//	SELECT item [AS name], ...   item: $n, a literal ('text', 12, 1.5, -3,
//	                             TRUE, FALSE, NULL) or generate_series(a, b),
//	                             each with an optional ::type (int8, bigint,
//	                             float8, text, bool, boolean, timestamp,
//	                             timestamptz); a bare identifier is
//	                             42703 column "x" does not exist at its
//	                             position, as in PostgreSQL
//	SELECT * FROM types          rows with a value of every type, and NULLs
//	SELECT sleep                 blocks until its context is cancelled
//	SELECT panic / prepanic      panics in Execute / Prepare
//	SELECT plainerr              fails without a SQLSTATE
//	SELECT detailerr             fails with a detail and a hint (wrapped)
//	SELECT badvalue              returns a value of a type the server rejects
//	BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT
//	INSERT ...                   tag "INSERT 0 1"; each $n is a text parameter
//
// and answers anything else with 42601 syntax error at its first word. The
// literal SELECTs mean the same in PostgreSQL, so the pgtest files that use
// only them also run against a real server (-addr).
type testEngine struct {
	sessions atomic.Int64 // opened
	closed   atomic.Int64
	prepares atomic.Int64
	executes atomic.Int64

	// started receives the text of every statement that blocks (SELECT
	// sleep) once it blocks; returned when it returns.
	started  chan string
	returned chan error

	mu   sync.Mutex
	last testSessionInfo // of the last session opened
}

type testSessionInfo struct{ user, database string }

func newTestEngine() *testEngine {
	return &testEngine{started: make(chan string, 64), returned: make(chan error, 64)}
}

func (e *testEngine) NewSession(user, database string) Session {
	e.sessions.Add(1)
	e.mu.Lock()
	e.last = testSessionInfo{user, database}
	e.mu.Unlock()
	return &testSession{e: e}
}

type testSession struct {
	e      *testEngine
	closed bool
}

var _ Session = (*testSession)(nil)

// testPlan is Prepared.State: what Execute evaluates.
type testPlan struct {
	kind  string // "select", "types", "sleep", "panic", "plainerr", "detailerr", "badvalue", "tag"
	items []testItem
	tag   string
}

// testItem is one item of a SELECT list.
type testItem struct {
	param      int // $n, 0 if not a parameter
	lit        any // literal value (nil for NULL)
	seriesFrom int64
	seriesTo   int64
	series     bool
	typ        arrow.DataType
}

func (s *testSession) Close() {
	if s.closed {
		panic("testSession closed twice")
	}
	s.closed = true
	s.e.closed.Add(1)
}

func (s *testSession) Prepare(ctx context.Context, text string, paramOIDs []uint32) (*Prepared, error) {
	s.e.prepares.Add(1)
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, sqlerr.Syntax(1, "syntax error at end of input")
	}
	first := strings.ToUpper(toks[0].text)
	tagOnly := func(tag string) (*Prepared, error) {
		return &Prepared{Text: text, State: &testPlan{kind: "tag", tag: tag}}, nil
	}
	switch first {
	case "BEGIN":
		return tagOnly("BEGIN")
	case "START":
		return tagOnly("START TRANSACTION")
	case "COMMIT", "END":
		return tagOnly("COMMIT")
	case "ROLLBACK", "ABORT":
		return tagOnly("ROLLBACK")
	case "INSERT":
		n := 0
		for _, t := range toks {
			if t.kind == tokParam {
				n = max(n, t.n)
			}
		}
		params := make([]uint32, n)
		for i := range params {
			params[i] = sqltypes.OIDText
		}
		return &Prepared{Text: text, Params: params, State: &testPlan{kind: "tag", tag: "INSERT 0 1"}}, nil
	case "SELECT":
	default:
		return nil, sqlerr.Syntax(toks[0].pos, "syntax error at or near %q", toks[0].text)
	}
	rest := toks[1:]
	if len(rest) == 1 && rest[0].kind == tokIdent {
		special := strings.ToLower(rest[0].text)
		cols := []Column{{Name: special, Type: sqltypes.Int64}}
		switch special {
		case "prepanic":
			panic("test panic in Prepare")
		case "sleep", "panic", "plainerr", "detailerr", "badvalue":
			return &Prepared{Text: text, Columns: cols, State: &testPlan{kind: special}}, nil
		}
	}
	if len(rest) == 3 && rest[0].text == "*" && strings.EqualFold(rest[1].text, "FROM") && strings.EqualFold(rest[2].text, "types") {
		return &Prepared{Text: text, Columns: typesColumns, State: &testPlan{kind: "types"}}, nil
	}
	return prepareSelect(text, rest, paramOIDs)
}

// prepareSelect analyses a SELECT list of items.
func prepareSelect(text string, toks []token, declared []uint32) (*Prepared, error) {
	p := &Prepared{Text: text}
	plan := &testPlan{kind: "select"}
	paramTypes := map[int]arrow.DataType{}
	i := 0
	next := func() (token, bool) {
		if i >= len(toks) {
			return token{}, false
		}
		i++
		return toks[i-1], true
	}
	endPos := sqlerr.RunePos(text, len(text))
	for {
		var it testItem
		name := "?column?"
		t, ok := next()
		if !ok {
			return nil, sqlerr.Syntax(endPos, "syntax error at end of input")
		}
		neg := false
		litPos := t.pos
		if t.text == "-" {
			neg = true
			if t, ok = next(); !ok || t.kind != tokNumber {
				return nil, sqlerr.Syntax(endPos, "syntax error at end of input")
			}
		}
		switch {
		case t.kind == tokParam:
			it.param = t.n
		case t.kind == tokNumber:
			if v, err := strconv.ParseInt(t.text, 10, 64); err == nil {
				if neg {
					v = -v
				}
				it.lit, it.typ = v, sqltypes.Int64
			} else {
				f, err := strconv.ParseFloat(t.text, 64)
				if err != nil {
					return nil, sqlerr.Syntax(t.pos, "syntax error at or near %q", t.text)
				}
				if neg {
					f = -f
				}
				it.lit, it.typ = f, sqltypes.Float64
			}
		case t.kind == tokString:
			it.lit, it.typ = t.text, sqltypes.String
		case t.kind == tokIdent && (strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false")):
			it.lit, it.typ = strings.EqualFold(t.text, "true"), sqltypes.Bool
		case t.kind == tokIdent && strings.EqualFold(t.text, "null"):
			it.typ = sqltypes.String
		case t.kind == tokIdent && strings.EqualFold(t.text, "generate_series"):
			var args [2]int64
			if t2, _ := next(); t2.text != "(" {
				return nil, sqlerr.Syntax(t2.pos, "syntax error at or near %q", t2.text)
			}
			for k := range args {
				a, _ := next()
				v, err := strconv.ParseInt(a.text, 10, 64)
				if err != nil {
					return nil, sqlerr.Syntax(a.pos, "syntax error at or near %q", a.text)
				}
				args[k] = v
				if sep, _ := next(); (k == 0 && sep.text != ",") || (k == 1 && sep.text != ")") {
					return nil, sqlerr.Syntax(sep.pos, "syntax error at or near %q", sep.text)
				}
			}
			it.series, it.seriesFrom, it.seriesTo, it.typ = true, args[0], args[1], sqltypes.Int64
			name = "generate_series"
		case t.kind == tokIdent:
			return nil, sqlerr.At(pgerrcode.UndefinedColumn, t.pos, "column %q does not exist", t.text)
		default:
			return nil, sqlerr.Syntax(t.pos, "syntax error at or near %q", t.text)
		}
		t, ok = next()
		if ok && t.text == "::" {
			tn, _ := next()
			typ, cname, err := castType(tn)
			if err != nil {
				return nil, err
			}
			it.typ, name = typ, cname
			if neg {
				name = "?column?" // -x::t is -(x::t) in PostgreSQL
			}
			if it.lit != nil {
				// Constants are cast while parsing, as in PostgreSQL.
				v, err := castValue(it.lit, typ)
				if err != nil {
					if e, ok := sqlerr.As(err); ok {
						e.Position = litPos
					}
					return nil, err
				}
				it.lit = v
			}
			t, ok = next()
		}
		if it.param > 0 {
			if it.typ == nil {
				it.typ = sqltypes.String
				if n := it.param; n <= len(declared) && declared[n-1] != 0 {
					it.typ = typeOfOID(declared[n-1])
				}
			}
			paramTypes[it.param] = it.typ
		}
		if ok && strings.EqualFold(t.text, "AS") {
			alias, _ := next()
			name = alias.text
			t, ok = next()
		}
		plan.items = append(plan.items, it)
		p.Columns = append(p.Columns, Column{Name: name, Type: it.typ})
		if !ok {
			break
		}
		if t.text != "," {
			return nil, sqlerr.Syntax(t.pos, "syntax error at or near %q", t.text)
		}
	}
	n := len(declared)
	for k := range paramTypes {
		n = max(n, k)
	}
	p.Params = make([]uint32, n)
	for k := range p.Params {
		typ, ok := paramTypes[k+1]
		switch {
		case ok:
			p.Params[k] = sqltypes.OID(typ)
		case k < len(declared) && declared[k] != 0:
			p.Params[k] = sqltypes.OID(typeOfOID(declared[k]))
		default:
			p.Params[k] = sqltypes.OIDText
		}
	}
	p.State = plan
	return p, nil
}

// castType reads a type name after ::, returning the type and the column
// name PostgreSQL gives a cast expression.
func castType(t token) (arrow.DataType, string, error) {
	switch strings.ToLower(t.text) {
	case "int8", "bigint":
		return sqltypes.Int64, "int8", nil
	case "float8":
		return sqltypes.Float64, "float8", nil
	case "text":
		return sqltypes.String, "text", nil
	case "bool", "boolean":
		return sqltypes.Bool, "bool", nil
	case "timestamp":
		return sqltypes.Timestamp, "timestamp", nil
	case "timestamptz":
		return sqltypes.TimestampTZ, "timestamptz", nil
	}
	return nil, "", sqlerr.At(pgerrcode.UndefinedObject, t.pos, "type %q does not exist", t.text)
}

// typeOfOID reads a declared parameter type; undeclared ones are text.
func typeOfOID(oid uint32) arrow.DataType {
	if t, ok := sqltypes.FromOID(oid); ok {
		return t
	}
	return sqltypes.String
}

var typesColumns = []Column{
	{Name: "i", Type: sqltypes.Int64},
	{Name: "f", Type: sqltypes.Float64},
	{Name: "s", Type: sqltypes.String},
	{Name: "b", Type: sqltypes.Bool},
	{Name: "ts", Type: sqltypes.Timestamp},
	{Name: "tstz", Type: sqltypes.TimestampTZ},
}

// typesRows are the rows of SELECT * FROM types; typesText is how
// PostgreSQL prints them (checked against a real server's casts).
var (
	typesTime = time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	typesRows = [][]any{
		{int64(1), 1.5, "hello", true, typesTime, typesTime},
		{nil, nil, nil, nil, nil, nil},
		{int64(math.MinInt64), 1e15, "", false, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{int64(math.MaxInt64), math.Inf(1), "it's \"quoted\"\nand ünïcödé", true, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{int64(0), math.NaN(), " ", false, typesTime, typesTime},
		{int64(-1), 1e-05, "x", true, typesTime, typesTime},
		{int64(42), math.Inf(-1), "y", false, typesTime, typesTime},
		{int64(7), 0.1, "z", true, typesTime, typesTime},
		{int64(8), 123456789.125, "w", true, typesTime, typesTime},
		{int64(9), -2.5e-300, "v", true, typesTime, typesTime},
	}
	typesText = [][]string{
		{"1", "1.5", "hello", "t", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"", "", "", "", "", ""},
		{"-9223372036854775808", "1e+15", "", "f", "1999-12-31 23:59:59", "2000-01-01 00:00:00.000001+00"},
		{"9223372036854775807", "Infinity", "it's \"quoted\"\nand ünïcödé", "t", "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999+00"},
		{"0", "NaN", " ", "f", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"-1", "1e-05", "x", "t", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"42", "-Infinity", "y", "f", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"7", "0.1", "z", "t", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"8", "123456789.125", "w", "t", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
		{"9", "-2.5e-300", "v", "t", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678+00"},
	}
)

func (s *testSession) Execute(ctx context.Context, p *Prepared, params []any) (*Result, error) {
	s.e.executes.Add(1)
	plan := p.State.(*testPlan)
	if len(params) != len(p.Params) {
		return nil, fmt.Errorf("test engine: %d params for %d markers", len(params), len(p.Params))
	}
	switch plan.kind {
	case "tag":
		return &Result{Tag: plan.tag}, nil
	case "types":
		return &Result{Columns: typesColumns, Rows: typesRows, Tag: fmt.Sprintf("SELECT %d", len(typesRows))}, nil
	case "sleep":
		select {
		case s.e.started <- p.Text:
		default:
		}
		<-ctx.Done()
		err := fmt.Errorf("sleep interrupted: %w", ctx.Err())
		select {
		case s.e.returned <- err:
		default:
		}
		return nil, err
	case "panic":
		panic("test panic in Execute")
	case "plainerr":
		return nil, fmt.Errorf("test engine: %w", errors.New("something broke"))
	case "detailerr":
		return nil, fmt.Errorf("test engine: %w",
			sqlerr.New(pgerrcode.WindowingError, "window is closed").
				WithDetail("the watermark passed end + allowed lateness").
				WithHint("raise ALLOWED LATENESS"))
	case "badvalue":
		return &Result{Columns: p.Columns, Rows: [][]any{{struct{}{}}}, Tag: "SELECT 1"}, nil
	}
	rows := 1
	for _, it := range plan.items {
		if it.series {
			rows = int(max(0, it.seriesTo-it.seriesFrom+1))
		}
	}
	res := &Result{Columns: p.Columns, Tag: fmt.Sprintf("SELECT %d", rows)}
	for r := range rows {
		row := make([]any, len(plan.items))
		for k, it := range plan.items {
			var v any
			switch {
			case it.series:
				v = it.seriesFrom + int64(r)
			case it.param > 0:
				v = params[it.param-1]
			default:
				v = it.lit
			}
			cv, err := castValue(v, it.typ)
			if err != nil {
				return nil, err
			}
			row[k] = cv
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// castValue converts v to a value of typ, as a PostgreSQL cast would.
func castValue(v any, typ arrow.DataType) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func() error {
		return sqlerr.New(pgerrcode.InvalidTextRepresentation, "invalid input syntax for type %s: \"%v\"",
			strings.ToLower(sqltypes.Name(typ)), v)
	}
	switch sqltypes.OID(typ) {
	case sqltypes.OIDInt8:
		switch v := v.(type) {
		case int64:
			return v, nil
		case float64:
			return int64(math.Round(v)), nil
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, bad()
			}
			return n, nil
		}
	case sqltypes.OIDFloat8:
		switch v := v.(type) {
		case float64:
			return v, nil
		case int64:
			return float64(v), nil
		case string:
			f, err := parseFloat8(v)
			if err != nil {
				return nil, bad()
			}
			return f, nil
		}
	case sqltypes.OIDBool:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			b, ok := parseBool(v)
			if !ok {
				return nil, bad()
			}
			return b, nil
		}
	case sqltypes.OIDTimestamp, sqltypes.OIDTimestampTZ:
		switch v := v.(type) {
		case time.Time:
			return v.UTC(), nil
		case string:
			for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
				if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
					if sqltypes.OID(typ) == sqltypes.OIDTimestamp {
						// TIMESTAMP ignores a zone, as PostgreSQL does.
						t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
					}
					return t.UTC(), nil
				}
			}
			return nil, bad()
		}
	case sqltypes.OIDText:
		switch v := v.(type) {
		case string:
			return v, nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		case float64:
			return string(appendFloat8(nil, v)), nil
		case bool:
			if v {
				return "true", nil
			}
			return "false", nil
		}
	}
	return nil, sqlerr.New(pgerrcode.CannotCoerce, "cannot cast %T to %s", v, sqltypes.Name(typ))
}

// Tokens of the test engine's little language.
const (
	tokIdent = iota
	tokNumber
	tokString
	tokParam
	tokPunct
)

type token struct {
	kind int
	text string // for strings, the unquoted value
	n    int    // parameter number
	pos  int    // 1-based character position
}

// lex cuts text into tokens, skipping spaces, comments and a final ';'.
func lex(text string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(text) {
		c := text[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case strings.HasPrefix(text[i:], "--"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
			continue
		case c == ';':
			i++
			continue
		case c == '\'':
			var sb strings.Builder
			i++
			for {
				if i >= len(text) {
					return nil, sqlerr.Syntax(sqlerr.RunePos(text, start), "unterminated quoted string at or near %q", text[start:])
				}
				if text[i] == '\'' {
					if i+1 < len(text) && text[i+1] == '\'' {
						sb.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				sb.WriteByte(text[i])
				i++
			}
			toks = append(toks, token{kind: tokString, text: sb.String(), pos: sqlerr.RunePos(text, start)})
			continue
		case c == '"':
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				return nil, sqlerr.Syntax(sqlerr.RunePos(text, start), "unterminated quoted identifier at or near %q", text[start:])
			}
			i += j + 2
			toks = append(toks, token{kind: tokIdent, text: text[start+1 : i-1], pos: sqlerr.RunePos(text, start)})
			continue
		case c == '$':
			i++
			for i < len(text) && text[i] >= '0' && text[i] <= '9' {
				i++
			}
			n, err := strconv.Atoi(text[start+1 : i])
			if err != nil || n == 0 {
				return nil, sqlerr.Syntax(sqlerr.RunePos(text, start), "syntax error at or near \"$\"")
			}
			toks = append(toks, token{kind: tokParam, text: text[start:i], n: n, pos: sqlerr.RunePos(text, start)})
			continue
		case c >= '0' && c <= '9' || c == '.':
			for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.' || text[i] == 'e' || text[i] == 'E' ||
				(i > start && (text[i] == '-' || text[i] == '+') && (text[i-1] == 'e' || text[i-1] == 'E'))) {
				i++
			}
			toks = append(toks, token{kind: tokNumber, text: text[start:i], pos: sqlerr.RunePos(text, start)})
			continue
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			for i < len(text) && (text[i] == '_' || text[i] >= 'a' && text[i] <= 'z' || text[i] >= 'A' && text[i] <= 'Z' || text[i] >= '0' && text[i] <= '9') {
				i++
			}
			toks = append(toks, token{kind: tokIdent, text: text[start:i], pos: sqlerr.RunePos(text, start)})
			continue
		case strings.HasPrefix(text[i:], "::"):
			i += 2
		default:
			i++
		}
		toks = append(toks, token{kind: tokPunct, text: text[start:i], pos: sqlerr.RunePos(text, start)})
	}
	return toks, nil
}
