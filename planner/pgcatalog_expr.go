package planner

// A reader and evaluator for the PostgreSQL-dialect SELECTs drivers send
// to read the catalogs (JDBC's DatabaseMetaData and the like; see
// pgcatalog_driver.go for the rows they run over).
//
// The reader knows the statement shape drivers write:
//
//	SELECT items FROM from [WHERE cond] [ORDER BY keys] [LIMIT n] [OFFSET n]
//
// where from is a list of catalogs (joined with commas or JOIN ... ON) or a
// single (SELECT ...) alias, and expressions are PostgreSQL's: literals
// (E'...' too), $n, column references, AND/OR/NOT, comparisons, LIKE,
// ILIKE, ~ and the other regular-expression operators (also spelled
// OPERATOR(pg_catalog.~)), IN, IS [NOT] NULL, CASE, casts, function calls,
// field selection (x).f. Anything else, such as a subquery in an
// expression, an array subscript or a window function, is read as
// "opaque": it parses but has no value.
//
// Evaluation is SQL's three-valued logic plus a fourth state, unknown, for
// what cannot be computed here (an opaque expression, a function or column
// the emulation does not know). Unknown spreads like NULL, except that
// AND with false is false and OR with true is true, so that a predicate
// such as `nspname !~ '^pg_temp_' OR nspname = (current_schemas(true))[1]`
// still decides. A row whose WHERE or select item stays unknown fails the
// query with 0A000: the emulation refuses rather than guesses.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

type pgTokKind int

const (
	tkEOF    pgTokKind = iota
	tkIdent            // unquoted; text folded to lower case, as PostgreSQL does
	tkQIdent           // "quoted"; text as written
	tkString           // text is the literal's value
	tkNumber
	tkParam // $n; text is n
	tkOp    // = <> != < <= > >= ~ !~ ~* !~* || :: + - * / %
	tkPunct // ( ) , [ ] . ;
)

// pgTok is one token; start and end are byte offsets in the text.
type pgTok struct {
	kind       pgTokKind
	text       string
	start, end int
}

func (t pgTok) kw(word string) bool { return t.kind == tkIdent && t.text == word }
func (t pgTok) punct(p string) bool { return t.kind == tkPunct && t.text == p }
func (t pgTok) op(o string) bool    { return t.kind == tkOp && t.text == o }

// pgOperators are the operators the lexer knows, longest first.
var pgOperators = []string{"!~*", "::", "<>", "!=", "<=", ">=", "!~", "~*", "||", "=", "<", ">", "~", "+", "-", "*", "/", "%"}

// pgLex splits text into tokens.
func pgLex(text string) ([]pgTok, error) {
	var toks []pgTok
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case isSpace(c):
			i++
		case strings.HasPrefix(text[i:], "--"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case strings.HasPrefix(text[i:], "/*"):
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("unterminated comment")
			}
			i += j + 4
		case c == '\'' || ((c == 'E' || c == 'e') && i+1 < len(text) && text[i+1] == '\''):
			start := i
			escapes := c != '\''
			if escapes {
				i++
			}
			var b strings.Builder
			for i++; ; i++ {
				if i >= len(text) {
					return nil, fmt.Errorf("unterminated string literal")
				}
				if text[i] == '\'' {
					if i+1 < len(text) && text[i+1] == '\'' {
						b.WriteByte('\'')
						i++
						continue
					}
					break
				}
				if escapes && text[i] == '\\' && i+1 < len(text) {
					i++
					switch text[i] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(text[i])
					}
					continue
				}
				b.WriteByte(text[i])
			}
			i++
			toks = append(toks, pgTok{tkString, b.String(), start, i})
		case c == '"':
			start := i
			var b strings.Builder
			for i++; ; i++ {
				if i >= len(text) {
					return nil, fmt.Errorf("unterminated quoted identifier")
				}
				if text[i] == '"' {
					if i+1 < len(text) && text[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(text[i])
			}
			i++
			toks = append(toks, pgTok{tkQIdent, b.String(), start, i})
		case c == '_' || c >= 0x80 || ('a' <= c|0x20 && c|0x20 <= 'z'):
			start := i
			for i < len(text) && (text[i] == '_' || text[i] == '$' || text[i] >= 0x80 || ('a' <= text[i]|0x20 && text[i]|0x20 <= 'z') || ('0' <= text[i] && text[i] <= '9')) {
				i++
			}
			toks = append(toks, pgTok{tkIdent, strings.ToLower(text[start:i]), start, i})
		case '0' <= c && c <= '9':
			start := i
			for i < len(text) && (('0' <= text[i] && text[i] <= '9') || text[i] == '.') {
				i++
			}
			toks = append(toks, pgTok{tkNumber, text[start:i], start, i})
		case c == '$' && i+1 < len(text) && '0' <= text[i+1] && text[i+1] <= '9':
			start := i
			for i++; i < len(text) && '0' <= text[i] && text[i] <= '9'; i++ {
			}
			toks = append(toks, pgTok{tkParam, text[start+1 : i], start, i})
		case strings.IndexByte("(),[].;", c) >= 0:
			toks = append(toks, pgTok{tkPunct, text[i : i+1], i, i + 1})
			i++
		default:
			found := false
			for _, o := range pgOperators {
				if strings.HasPrefix(text[i:], o) {
					toks = append(toks, pgTok{tkOp, o, i, i + len(o)})
					i += len(o)
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("unexpected character %q", c)
			}
		}
	}
	return toks, nil
}

// Expression nodes.
type (
	pgNode any
	// pgLit is a constant: string, int64, float64, bool or nil (NULL).
	pgLit   struct{ v any }
	pgParam struct{ n int }
	// pgCol is a column reference; qual is the table alias or "".
	pgCol   struct{ qual, name string }
	pgUnary struct {
		op string // "not", "-"
		x  pgNode
	}
	pgBinary struct {
		op   string // "and", "or", "=", "<>", "<", "<=", ">", ">=", "like", "ilike", "~", "~*", "||", "+", ...
		not  bool   // NOT LIKE, NOT ILIKE; !~ and !~* are ~ and ~* with not
		l, r pgNode
	}
	pgIn struct {
		x    pgNode
		list []pgNode
		not  bool
	}
	pgIs struct {
		x    pgNode
		what string // "null", "true", "false"
		not  bool
	}
	pgCase struct {
		arg          pgNode // nil for a searched CASE
		whens, thens []pgNode
		els          pgNode // nil: ELSE NULL
	}
	pgFunc struct {
		name string // lower case, without pg_catalog.
		args []pgNode
	}
	pgCast struct {
		x   pgNode
		typ string // the type name, lower case, without pg_catalog.
	}
	pgField struct {
		x    pgNode
		name string
	}
	// pgOpaque parses but has no value here: a subquery, an array, a
	// subscript, a window function...
	pgOpaque struct{ text string }
)

// pgExprReader reads expressions from toks (the whole statement's tokens,
// so that opaque parts keep their text).
type pgExprReader struct {
	text string
	toks []pgTok
	i    int
	end  int // toks[end:] are not read
}

func (p *pgExprReader) peek() pgTok {
	if p.i >= p.end {
		return pgTok{kind: tkEOF, start: len(p.text), end: len(p.text)}
	}
	return p.toks[p.i]
}

func (p *pgExprReader) peekAt(k int) pgTok {
	if p.i+k >= p.end {
		return pgTok{kind: tkEOF, start: len(p.text), end: len(p.text)}
	}
	return p.toks[p.i+k]
}

func (p *pgExprReader) next() pgTok {
	t := p.peek()
	if p.i < p.end {
		p.i++
	}
	return t
}

func (p *pgExprReader) acceptKw(words ...string) bool {
	for k, w := range words {
		if !p.peekAt(k).kw(w) {
			return false
		}
	}
	p.i += len(words)
	return true
}

func (p *pgExprReader) expect(punct string) error {
	if t := p.next(); !t.punct(punct) {
		return p.errAt(t, "expected %q", punct)
	}
	return nil
}

func (p *pgExprReader) errAt(t pgTok, format string, args ...any) error {
	near := "end of input"
	if t.kind != tkEOF {
		near = strconv.Quote(p.text[t.start:t.end])
	}
	return fmt.Errorf(format+" near %s", append(args, near)...)
}

// skipGroup skips the parenthesised or bracketed group that starts at the
// current token.
func (p *pgExprReader) skipGroup() error {
	open := p.next()
	closer := map[string]string{"(": ")", "[": "]"}[open.text]
	depth := 1
	for depth > 0 {
		t := p.next()
		switch {
		case t.kind == tkEOF:
			return p.errAt(t, "unbalanced %q", open.text)
		case t.punct(open.text):
			depth++
		case t.punct(closer):
			depth--
		}
	}
	return nil
}

func (p *pgExprReader) opaqueFrom(start int) pgNode {
	return pgOpaque{text: strings.Join(strings.Fields(p.text[p.toks[start].start:p.toks[p.i-1].end]), " ")}
}

func (p *pgExprReader) expr() (pgNode, error) { return p.or() }

func (p *pgExprReader) or() (pgNode, error) {
	l, err := p.and()
	for err == nil && p.acceptKw("or") {
		var r pgNode
		if r, err = p.and(); err == nil {
			l = pgBinary{op: "or", l: l, r: r}
		}
	}
	return l, err
}

func (p *pgExprReader) and() (pgNode, error) {
	l, err := p.not()
	for err == nil && p.acceptKw("and") {
		var r pgNode
		if r, err = p.not(); err == nil {
			l = pgBinary{op: "and", l: l, r: r}
		}
	}
	return l, err
}

func (p *pgExprReader) not() (pgNode, error) {
	if p.acceptKw("not") {
		x, err := p.not()
		return pgUnary{op: "not", x: x}, err
	}
	return p.is()
}

func (p *pgExprReader) is() (pgNode, error) {
	x, err := p.cmp()
	for err == nil {
		switch {
		case p.acceptKw("isnull"):
			x = pgIs{x: x, what: "null"}
		case p.acceptKw("notnull"):
			x = pgIs{x: x, what: "null", not: true}
		case p.acceptKw("is"):
			not := p.acceptKw("not")
			t := p.next()
			if !t.kw("null") && !t.kw("true") && !t.kw("false") {
				return nil, p.errAt(t, "expected NULL, TRUE or FALSE after IS")
			}
			x = pgIs{x: x, what: t.text, not: not}
		default:
			return x, nil
		}
	}
	return x, err
}

var pgCmpOps = map[string]bool{"=": true, "<>": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func (p *pgExprReader) cmp() (pgNode, error) {
	l, err := p.like()
	for err == nil && p.peek().kind == tkOp && pgCmpOps[p.peek().text] {
		op := p.next().text
		if op == "!=" {
			op = "<>"
		}
		var r pgNode
		if r, err = p.like(); err == nil {
			l = pgBinary{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *pgExprReader) like() (pgNode, error) {
	l, err := p.other()
	if err != nil {
		return nil, err
	}
	not := false
	if p.peek().kw("not") && (p.peekAt(1).kw("like") || p.peekAt(1).kw("ilike") || p.peekAt(1).kw("in")) {
		p.next()
		not = true
	}
	switch t := p.peek(); {
	case t.kw("like"), t.kw("ilike"):
		p.next()
		r, err := p.other()
		if err != nil {
			return nil, err
		}
		if p.peek().kw("escape") {
			return nil, p.errAt(p.peek(), "LIKE ... ESCAPE is not supported")
		}
		return pgBinary{op: t.text, not: not, l: l, r: r}, nil
	case t.kw("in"):
		p.next()
		if p.peek().punct("(") && (p.peekAt(1).kw("select") || p.peekAt(1).kw("with")) {
			start := p.i
			if err := p.skipGroup(); err != nil {
				return nil, err
			}
			return p.opaqueFrom(start), nil
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		in := pgIn{x: l, not: not}
		for {
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			in.list = append(in.list, x)
			if !p.peek().punct(",") {
				break
			}
			p.next()
		}
		return in, p.expect(")")
	}
	return l, nil
}

// other reads PostgreSQL's "any other operator" level: ~ and friends, ||.
func (p *pgExprReader) other() (pgNode, error) {
	l, err := p.add()
	for err == nil {
		op := ""
		switch t := p.peek(); {
		case t.kind == tkOp && (t.text == "~" || t.text == "!~" || t.text == "~*" || t.text == "!~*" || t.text == "||"):
			op = p.next().text
		case t.kw("operator") && p.peekAt(1).punct("("):
			// OPERATOR(pg_catalog.~): the operator is the last token inside.
			p.next()
			p.next()
			for !p.peek().punct(")") && p.peek().kind != tkEOF {
				op = p.next().text
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			if op != "~" && op != "!~" && op != "~*" && op != "!~*" && op != "||" {
				return nil, fmt.Errorf("operator OPERATOR(%s) is not supported", op)
			}
		default:
			return l, nil
		}
		var r pgNode
		if r, err = p.add(); err != nil {
			return nil, err
		}
		not := strings.HasPrefix(op, "!")
		l = pgBinary{op: strings.TrimPrefix(op, "!"), not: not, l: l, r: r}
	}
	return l, err
}

func (p *pgExprReader) add() (pgNode, error) {
	l, err := p.mul()
	for err == nil && (p.peek().op("+") || p.peek().op("-")) {
		op := p.next().text
		var r pgNode
		if r, err = p.mul(); err == nil {
			l = pgBinary{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *pgExprReader) mul() (pgNode, error) {
	l, err := p.unary()
	for err == nil && (p.peek().op("*") || p.peek().op("/") || p.peek().op("%")) {
		op := p.next().text
		var r pgNode
		if r, err = p.unary(); err == nil {
			l = pgBinary{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *pgExprReader) unary() (pgNode, error) {
	if p.peek().op("-") {
		p.next()
		x, err := p.unary()
		return pgUnary{op: "-", x: x}, err
	}
	if p.peek().op("+") {
		p.next()
	}
	return p.postfix()
}

func (p *pgExprReader) postfix() (pgNode, error) {
	start := p.i
	x, err := p.primary()
	for err == nil {
		switch t := p.peek(); {
		case t.op("::"):
			p.next()
			var typ string
			if typ, err = p.typeName(); err == nil {
				x = pgCast{x: x, typ: typ}
			}
		case t.punct("["):
			if err = p.skipGroup(); err == nil {
				x = p.opaqueFrom(start)
			}
		case t.punct(".") && (p.peekAt(1).kind == tkIdent || p.peekAt(1).kind == tkQIdent):
			p.next()
			x = pgField{x: x, name: p.next().text}
		case t.kw("collate"):
			p.next()
			_, err = p.typeName() // a collation name reads like a type name; collations do not matter here
		default:
			return x, nil
		}
	}
	return x, err
}

// typeName reads a type name after ::, as lower case without
// pg_catalog. and without a length or precision.
func (p *pgExprReader) typeName() (string, error) {
	t := p.next()
	if t.kind != tkIdent && t.kind != tkQIdent {
		return "", p.errAt(t, "expected a type name")
	}
	name := t.text
	if p.peek().punct(".") {
		p.next()
		name = p.next().text
	}
	switch {
	case name == "double" && p.acceptKw("precision"):
		name = "double precision"
	case name == "character" && p.acceptKw("varying"):
		name = "character varying"
	case name == "timestamp" || name == "time":
		if p.acceptKw("with", "time", "zone") {
			name += "tz"
		} else {
			p.acceptKw("without", "time", "zone")
		}
	}
	if p.peek().punct("(") {
		if err := p.skipGroup(); err != nil {
			return "", err
		}
	}
	for p.peek().punct("[") && p.peekAt(1).punct("]") {
		p.next()
		p.next()
		name += "[]"
	}
	return name, nil
}

// pgBareFuncs are SQL's functions written without parentheses.
var pgBareFuncs = map[string]bool{"current_user": true, "session_user": true, "user": true, "current_catalog": true, "current_schema": true, "current_role": true}

func (p *pgExprReader) primary() (pgNode, error) {
	start := p.i
	t := p.next()
	switch t.kind {
	case tkString:
		return pgLit{t.text}, nil
	case tkNumber:
		if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return pgLit{n}, nil
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, p.errAt(t, "bad number")
		}
		return pgLit{f}, nil
	case tkParam:
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 1 {
			return nil, p.errAt(t, "bad parameter")
		}
		return pgParam{n}, nil
	case tkPunct:
		if !t.punct("(") {
			return nil, p.errAt(t, "unexpected %q", t.text)
		}
		if p.peek().kw("select") || p.peek().kw("with") {
			p.i = start
			if err := p.skipGroup(); err != nil {
				return nil, err
			}
			return p.opaqueFrom(start), nil
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		return x, p.expect(")")
	case tkIdent, tkQIdent:
	default:
		return nil, p.errAt(t, "unexpected %q", p.text[t.start:t.end])
	}
	if t.kind == tkIdent {
		switch t.text {
		case "null":
			return pgLit{nil}, nil
		case "true":
			return pgLit{true}, nil
		case "false":
			return pgLit{false}, nil
		case "case":
			return p.caseExpr()
		case "array", "exists":
			if p.peek().punct("[") || p.peek().punct("(") {
				if err := p.skipGroup(); err != nil {
					return nil, err
				}
				return p.opaqueFrom(start), nil
			}
		}
		if pgBareFuncs[t.text] && !p.peek().punct("(") && !p.peek().punct(".") {
			return pgFunc{name: t.text}, nil
		}
	}
	names := []string{t.text}
	for p.peek().punct(".") && (p.peekAt(1).kind == tkIdent || p.peekAt(1).kind == tkQIdent) {
		p.next()
		names = append(names, p.next().text)
	}
	if !p.peek().punct("(") {
		if len(names) > 2 {
			return nil, p.errAt(t, "column reference %s is not supported", strings.Join(names, "."))
		}
		if len(names) == 2 {
			return pgCol{qual: names[0], name: names[1]}, nil
		}
		return pgCol{name: names[0]}, nil
	}
	// A function call.
	f := pgFunc{name: names[len(names)-1]}
	if len(names) > 2 || (len(names) == 2 && names[0] != "pg_catalog") {
		f.name = strings.Join(names, ".")
	}
	if p.peekAt(1).kw("distinct") || p.peekAt(1).op("*") {
		// count(*), count(DISTINCT x): aggregates, which no query here needs.
		if err := p.skipGroup(); err != nil {
			return nil, err
		}
		return p.opaqueFrom(start), nil
	}
	p.next()
	if !p.peek().punct(")") {
		for {
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			f.args = append(f.args, x)
			if !p.peek().punct(",") {
				break
			}
			p.next()
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if p.peek().kw("over") || p.peek().kw("filter") || p.peek().kw("within") {
		for p.peek().kw("over") || p.peek().kw("filter") || p.peek().kw("within") || p.peek().kw("group") {
			p.next()
		}
		if p.peek().punct("(") {
			if err := p.skipGroup(); err != nil {
				return nil, err
			}
		}
		return p.opaqueFrom(start), nil
	}
	return f, nil
}

func (p *pgExprReader) caseExpr() (pgNode, error) {
	c := pgCase{}
	var err error
	if !p.peek().kw("when") {
		if c.arg, err = p.expr(); err != nil {
			return nil, err
		}
	}
	for p.acceptKw("when") {
		w, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !p.acceptKw("then") {
			return nil, p.errAt(p.peek(), "expected THEN")
		}
		th, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.whens, c.thens = append(c.whens, w), append(c.thens, th)
	}
	if len(c.whens) == 0 {
		return nil, p.errAt(p.peek(), "expected WHEN")
	}
	if p.acceptKw("else") {
		if c.els, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if !p.acceptKw("end") {
		return nil, p.errAt(p.peek(), "expected END")
	}
	return c, nil
}

// pgUnknown is the value of what cannot be computed here; what says which
// part of the query it was.
type pgUnknown struct{ what string }

// pgComposite is a row value, read with (x).field.
type pgComposite map[string]any

// pgEnv is what expressions read: the columns of one row, by alias.column,
// the statement's parameters and the session.
type pgEnv struct {
	s      *session
	params []any
	cols   map[string]any
	// nullAliases are tables outer-joined with nothing: every column is NULL.
	nullAliases map[string]bool
	// out holds the select list's values by result name, for ORDER BY.
	out map[string]any
	err error // the first error evaluation met (a bad regular expression)
}

// lookup finds a column: alias.name exactly, or a bare name in exactly one
// of the row's tables.
func (env *pgEnv) lookup(qual, name string) (any, bool) {
	if qual != "" {
		if v, ok := env.cols[qual+"."+name]; ok {
			return v, true
		}
		if env.nullAliases[qual] {
			return nil, true
		}
		return nil, false
	}
	var found any
	n := 0
	for k, v := range env.cols {
		if i := strings.IndexByte(k, '.'); i >= 0 && k[i+1:] == name {
			found = v
			n++
		}
	}
	return found, n == 1
}

// pgIsUnknown reports whether v is the unknown value.
func pgIsUnknown(v any) bool {
	_, ok := v.(pgUnknown)
	return ok
}

func (env *pgEnv) eval(n pgNode) any {
	switch n := n.(type) {
	case pgLit:
		return n.v
	case pgParam:
		if n.n <= len(env.params) {
			return env.params[n.n-1]
		}
		return pgUnknown{fmt.Sprintf("$%d", n.n)}
	case pgCol:
		if v, ok := env.lookup(n.qual, n.name); ok {
			return v
		}
		return pgUnknown{"column " + pgColText(n)}
	case pgOpaque:
		return pgUnknown{n.text}
	case pgUnary:
		x := env.eval(n.x)
		switch {
		case pgIsUnknown(x), x == nil:
			return x
		case n.op == "not":
			if b, ok := x.(bool); ok {
				return !b
			}
		case n.op == "-":
			switch v := x.(type) {
			case int64:
				return -v
			case float64:
				return -v
			}
		}
		return pgUnknown{n.op + " of " + fmt.Sprint(x)}
	case pgBinary:
		return env.binary(n)
	case pgIn:
		x := env.eval(n.x)
		if x == nil || pgIsUnknown(x) {
			return x
		}
		var res any = false
		for _, e := range n.list {
			v := env.eval(e)
			switch c := pgCompare(x, v); {
			case pgIsUnknown(c):
				res = c
			case c == nil:
				if res == false {
					res = nil
				}
			case c.(int) == 0:
				return !n.not
			}
		}
		if b, ok := res.(bool); ok {
			return b != n.not
		}
		return res
	case pgIs:
		x := env.eval(n.x)
		if pgIsUnknown(x) {
			return x
		}
		var r bool
		switch n.what {
		case "null":
			r = x == nil
		case "true":
			r = x == true
		case "false":
			r = x == false
		}
		return r != n.not
	case pgCase:
		var arg any
		if n.arg != nil {
			if arg = env.eval(n.arg); pgIsUnknown(arg) {
				return arg
			}
		}
		for i, w := range n.whens {
			v := env.eval(w)
			if n.arg != nil {
				v = pgCompare(arg, v)
				if c, ok := v.(int); ok {
					v = c == 0
				}
			}
			if pgIsUnknown(v) {
				return v
			}
			if v == true {
				return env.eval(n.thens[i])
			}
		}
		if n.els != nil {
			return env.eval(n.els)
		}
		return nil
	case pgFunc:
		return env.call(n)
	case pgCast:
		return pgCastValue(env.eval(n.x), n.typ)
	case pgField:
		x := env.eval(n.x)
		if c, ok := x.(pgComposite); ok {
			if v, ok := c[n.name]; ok {
				return v
			}
		}
		if x == nil || pgIsUnknown(x) {
			return x
		}
		return pgUnknown{"field " + n.name}
	}
	return pgUnknown{fmt.Sprintf("%T", n)}
}

func pgColText(c pgCol) string {
	if c.qual != "" {
		return c.qual + "." + c.name
	}
	return c.name
}

func (env *pgEnv) binary(n pgBinary) any {
	switch n.op {
	case "and", "or":
		l, r := env.eval(n.l), env.eval(n.r)
		decisive := n.op == "or" // true decides OR, false decides AND
		if l == decisive || r == decisive {
			return decisive
		}
		for _, v := range []any{l, r} {
			if _, ok := v.(bool); !ok && v != nil && !pgIsUnknown(v) {
				return pgUnknown{fmt.Sprintf("%s of %v", strings.ToUpper(n.op), v)}
			}
		}
		switch {
		case pgIsUnknown(l):
			return l
		case pgIsUnknown(r):
			return r
		case l == nil || r == nil:
			return nil
		}
		return !decisive
	}
	l, r := env.eval(n.l), env.eval(n.r)
	switch {
	case pgIsUnknown(l):
		return l
	case pgIsUnknown(r):
		return r
	case l == nil || r == nil:
		return nil
	}
	switch n.op {
	case "=", "<>", "<", "<=", ">", ">=":
		c := pgCompare(l, r)
		ci, ok := c.(int)
		if !ok {
			return c
		}
		switch n.op {
		case "=":
			return ci == 0
		case "<>":
			return ci != 0
		case "<":
			return ci < 0
		case "<=":
			return ci <= 0
		case ">":
			return ci > 0
		}
		return ci >= 0
	case "like", "ilike", "~", "~*":
		ls, lok := l.(string)
		rs, rok := r.(string)
		if !lok || !rok {
			return pgUnknown{fmt.Sprintf("%v %s %v", l, n.op, r)}
		}
		var re *regexp.Regexp
		if n.op == "like" || n.op == "ilike" {
			re = likeRegexp(rs)
			if n.op == "ilike" {
				re = regexp.MustCompile("(?i)" + re.String())
			}
		} else {
			if n.op == "~*" {
				rs = "(?i)" + rs
			}
			var err error
			if re, err = regexp.Compile(rs); err != nil {
				if env.err == nil {
					env.err = sqlerr.New(pgerrcode.InvalidRegularExpression, "invalid regular expression: %v", err)
				}
				return pgUnknown{"regular expression " + rs}
			}
		}
		return re.MatchString(ls) != n.not
	case "||":
		return pgText(l) + pgText(r)
	case "+", "-", "*", "/", "%":
		a, aok := pgInt(l)
		b, bok := pgInt(r)
		if !aok || !bok || ((n.op == "/" || n.op == "%") && b == 0) {
			return pgUnknown{fmt.Sprintf("%v %s %v", l, n.op, r)}
		}
		switch n.op {
		case "+":
			return a + b
		case "-":
			return a - b
		case "*":
			return a * b
		case "/":
			return a / b
		}
		return a % b
	}
	return pgUnknown{"operator " + n.op}
}

// pgCompare compares two values as PostgreSQL would after coercing a
// string literal to the other side's type: -1, 0 or 1, nil if either is
// NULL, unknown if they do not compare.
func pgCompare(a, b any) any {
	if pgIsUnknown(a) {
		return a
	}
	if pgIsUnknown(b) {
		return b
	}
	if a == nil || b == nil {
		return nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
		// A string literal takes the other side's type.
		c := pgCompare(b, a)
		if ci, ok := c.(int); ok {
			return -ci
		}
		return c
	case int64:
		if y, ok := pgInt(b); ok {
			return cmpOrdered(x, y)
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return cmpOrdered(x, y)
		case int64:
			return cmpOrdered(x, float64(y))
		}
	case bool:
		y, ok := b.(bool)
		if s, isStr := b.(string); isStr {
			y, ok = pgBool(s)
		}
		if ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	}
	return pgUnknown{fmt.Sprintf("comparison of %v and %v", a, b)}
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func pgInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func pgBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "yes", "on", "1":
		return true, true
	case "f", "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// pgText is a value's text form, as PostgreSQL's output function writes it.
func pgText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	case pgComposite:
		return fmt.Sprint(map[string]any(v))
	}
	return fmt.Sprint(v)
}

// pgCastValue casts v to the type named typ.
func pgCastValue(v any, typ string) any {
	if v == nil || pgIsUnknown(v) {
		return v
	}
	switch typ {
	case "text", "varchar", "character varying", "name", "char", "bpchar":
		return pgText(v)
	case "int", "int2", "int4", "int8", "integer", "bigint", "smallint", "oid":
		if n, ok := pgInt(v); ok {
			return n
		}
	case "bool", "boolean":
		switch v := v.(type) {
		case bool:
			return v
		case string:
			if b, ok := pgBool(v); ok {
				return b
			}
		}
	}
	return pgUnknown{fmt.Sprintf("cast of %v to %s", v, typ)}
}

// pgStrictFuncs return NULL for a NULL argument, which is all the
// emulation knows of them: they read what sessionsql does not have
// (defaults, comments, expression trees).
var pgStrictFuncs = map[string]bool{"pg_get_expr": true, "obj_description": true, "col_description": true,
	"shobj_description": true, "pg_get_viewdef": true}

func (env *pgEnv) call(f pgFunc) any {
	args := make([]any, len(f.args))
	for i, a := range f.args {
		args[i] = env.eval(a)
	}
	firstUnknown := func() any {
		for _, a := range args {
			if pgIsUnknown(a) {
				return a
			}
		}
		return nil
	}
	switch f.name {
	case "current_database", "current_catalog":
		return env.s.database()
	case "current_user", "session_user", "user", "current_role":
		return env.s.user()
	case "current_schema":
		return "public"
	case "version":
		return "PostgreSQL 15.0 (sessionsql)"
	case "pg_table_is_visible", "has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege":
		// Everything is in schema public, on the search path, and users
		// have no per-object privileges.
		return true
	case "pg_get_userbyid":
		return pgOwner
	case "information_schema._pg_expandarray":
		// A set-returning function; the rows of a key have been expanded
		// already, each holding its element (see pgcatalog_driver.go).
		if len(args) == 1 {
			if c, ok := args[0].(pgComposite); ok {
				return c
			}
		}
	case "nullif":
		if len(args) == 2 {
			if u := firstUnknown(); u != nil {
				return u
			}
			if c, ok := pgCompare(args[0], args[1]).(int); ok && c == 0 {
				return nil
			}
			return args[0]
		}
	case "coalesce":
		for _, a := range args {
			if a != nil {
				return a
			}
		}
		return nil
	case "lower", "upper", "quote_ident", "format_type":
		if u := firstUnknown(); u != nil {
			return u
		}
		if len(args) == 0 || args[0] == nil {
			return nil
		}
		switch f.name {
		case "lower":
			return strings.ToLower(pgText(args[0]))
		case "upper":
			return strings.ToUpper(pgText(args[0]))
		case "quote_ident":
			return quoteIdent(pgText(args[0]))
		}
		if oid, ok := pgInt(args[0]); ok {
			return sqltypes.FormatType(uint32(oid))
		}
	}
	if pgStrictFuncs[f.name] {
		for _, a := range args {
			if a == nil {
				return nil
			}
		}
	}
	if u := firstUnknown(); u != nil {
		return u
	}
	return pgUnknown{"function " + f.name}
}

// pgTypeOf is the result type of n over columns of the given types.
func pgTypeOf(n pgNode, types map[string]arrow.DataType) arrow.DataType {
	switch n := n.(type) {
	case pgLit:
		switch n.v.(type) {
		case int64:
			return sqltypes.Int64
		case float64:
			return sqltypes.Float64
		case bool:
			return sqltypes.Bool
		}
	case pgCol:
		if n.qual != "" {
			if t, ok := types[n.qual+"."+n.name]; ok {
				return t
			}
		}
		for k, t := range types {
			if i := strings.IndexByte(k, '.'); i >= 0 && k[i+1:] == n.name {
				return t
			}
		}
	case pgUnary:
		if n.op == "not" {
			return sqltypes.Bool
		}
		return pgTypeOf(n.x, types)
	case pgBinary:
		switch n.op {
		case "||":
			return sqltypes.String
		case "+", "-", "*", "/", "%":
			return sqltypes.Int64
		}
		return sqltypes.Bool
	case pgIn, pgIs:
		return sqltypes.Bool
	case pgCase:
		for _, t := range append(append([]pgNode{}, n.thens...), n.els) {
			if l, ok := t.(pgLit); (ok && l.v == nil) || t == nil {
				continue
			}
			return pgTypeOf(t, types)
		}
	case pgFunc:
		switch n.name {
		case "pg_table_is_visible", "has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege":
			return sqltypes.Bool
		case "nullif", "coalesce":
			if len(n.args) > 0 {
				return pgTypeOf(n.args[0], types)
			}
		}
	case pgCast:
		switch n.typ {
		case "int", "int2", "int4", "int8", "integer", "bigint", "smallint", "oid":
			return sqltypes.Int64
		case "bool", "boolean":
			return sqltypes.Bool
		}
	case pgField:
		return sqltypes.Int64 // the fields read here are _pg_expandarray's x and n
	}
	return sqltypes.String
}

// pgDerivedName is the result column name PostgreSQL gives an item
// without an alias.
func pgDerivedName(n pgNode) string {
	switch n := n.(type) {
	case pgCol:
		return n.name
	case pgFunc:
		if i := strings.LastIndexByte(n.name, '.'); i >= 0 {
			return n.name[i+1:]
		}
		return n.name
	case pgCase:
		return "case"
	case pgCast:
		if name := pgDerivedName(n.x); name != "?column?" {
			return name
		}
		return strings.TrimSuffix(n.typ, "[]")
	case pgField:
		return n.name
	}
	return "?column?"
}
