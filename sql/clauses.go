package sql

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// parser walks the tokens of one statement with our own grammar: the
// statements TiDB does not know and the clauses lifted out of a SELECT.
type parser struct {
	text  string    // the whole statement as the user sent it
	toks  []token   // lex(text), ending with tkEOF
	pos   int       // index of the next token
	limit int       // index of the token that ends the part being parsed
	casts *castInfo // the statement's expr::type casts, once scanCasts has run
}

// peek returns the next token. At the limit it returns a tkEOF token that
// covers the token at the limit, so an error there quotes that token
// (`syntax error at or near ";"`), or "end of input" at the real end.
func (p *parser) peek() token { return p.at(p.pos) }

// peekAt returns the token k places after the next one.
func (p *parser) peekAt(k int) token { return p.at(p.pos + k) }

func (p *parser) at(i int) token {
	if i >= p.limit {
		t := p.toks[p.limit]
		return token{kind: tkEOF, start: t.start, end: t.end, pos: t.pos}
	}
	return p.toks[i]
}

// next returns the next token and moves past it (never past the limit).
func (p *parser) next() token {
	t := p.peek()
	if p.pos < p.limit {
		p.pos++
	}
	return t
}

// atEnd reports whether every token up to the limit has been consumed.
func (p *parser) atEnd() bool { return p.pos >= p.limit }

// runePos returns the 1-based character position of t.
func (p *parser) runePos(t token) int { return t.pos }

// unexpected is the syntax error for finding t where something else was
// expected, worded as PostgreSQL does.
func (p *parser) unexpected(t token) *sqlerr.Error {
	if t.start == t.end {
		return sqlerr.Syntax(p.runePos(t), "syntax error at end of input")
	}
	return sqlerr.Syntax(p.runePos(t), "syntax error at or near %s", quoteNear(p.text[t.start:t.end]))
}

// acceptKw consumes the next token if it is the keyword kw.
func (p *parser) acceptKw(kw string) bool {
	if p.peek().is(kw) {
		p.next()
		return true
	}
	return false
}

// expectKw consumes the keyword kw or fails at the token found instead.
func (p *parser) expectKw(kw string) (token, error) {
	t := p.peek()
	if !t.is(kw) {
		return t, p.unexpected(t)
	}
	return p.next(), nil
}

// acceptOp consumes the next token if it is the punctuation op.
func (p *parser) acceptOp(op string) bool {
	if p.peek().isOp(op) {
		p.next()
		return true
	}
	return false
}

// expectOp consumes the punctuation op or fails at the token found instead.
func (p *parser) expectOp(op string) (token, error) {
	t := p.peek()
	if !t.isOp(op) {
		return t, p.unexpected(t)
	}
	return p.next(), nil
}

// expectEnd fails at the first token left before the limit.
func (p *parser) expectEnd() error {
	if !p.atEnd() {
		return p.unexpected(p.peek())
	}
	return nil
}

// ident consumes an identifier, quoted or not.
func (p *parser) ident() (Ident, error) {
	t := p.peek()
	if t.kind != tkIdent && t.kind != tkQIdent {
		return Ident{}, p.unexpected(t)
	}
	p.next()
	return Ident{Name: t.val, Pos: p.runePos(t)}, nil
}

// ifNotExists consumes IF NOT EXISTS when the next tokens are IF NOT.
func (p *parser) ifNotExists() (bool, error) {
	if !p.peek().is("if") || !p.peekAt(1).is("not") {
		return false, nil
	}
	p.next()
	p.next()
	_, err := p.expectKw("exists")
	return err == nil, err
}

// ifExists consumes IF EXISTS when the next tokens are IF EXISTS.
func (p *parser) ifExists() bool {
	if p.peek().is("if") && p.peekAt(1).is("exists") {
		p.next()
		p.next()
		return true
	}
	return false
}

// createSource parses the rest of CREATE SOURCE, after those two words:
//
//	[IF NOT EXISTS] name ( item [, item]... ) [WITH ( option [, option]... )]
//	item   := column type | WATERMARK FOR column AS column [- interval]
//	type   := word [word]... with at most one ( n [, m] ) after a word
//	option := key = 'string' | number | word
func (p *parser) createSource() (*CreateSource, error) {
	cs := &CreateSource{Text: p.text}
	var err error
	if cs.IfNotExists, err = p.ifNotExists(); err != nil {
		return nil, err
	}
	if cs.Name, err = p.ident(); err != nil {
		return nil, err
	}
	if _, err := p.expectOp("("); err != nil {
		return nil, err
	}
	for {
		if p.peek().is("watermark") && p.peekAt(1).is("for") {
			t := p.peek()
			if cs.Watermark != nil {
				return nil, sqlerr.Syntax(p.runePos(t), "a source has at most one WATERMARK")
			}
			if cs.Watermark, err = p.watermark(); err != nil {
				return nil, err
			}
		} else {
			col, err := p.columnDef()
			if err != nil {
				return nil, err
			}
			cs.Columns = append(cs.Columns, col)
		}
		if p.acceptOp(",") {
			continue
		}
		if _, err := p.expectOp(")"); err != nil {
			return nil, err
		}
		break
	}
	if len(cs.Columns) == 0 {
		return nil, sqlerr.Syntax(cs.Name.Pos, "source %q has no columns", cs.Name.Name)
	}
	if p.acceptKw("with") {
		if cs.Options, err = p.options(); err != nil {
			return nil, err
		}
	}
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	return cs, nil
}

// columnDef parses "name type" in a CREATE SOURCE column list.
func (p *parser) columnDef() (ColumnDef, error) {
	name, err := p.ident()
	if err != nil {
		return ColumnDef{}, err
	}
	first := p.peek()
	if first.kind != tkIdent {
		return ColumnDef{}, p.unexpected(first).WithHint("a column is written name TYPE, e.g. user_id BIGINT")
	}
	var b strings.Builder
	sawParens := false
	for {
		t := p.peek()
		switch {
		case t.kind == tkIdent && constraintWords[t.val]:
			return ColumnDef{}, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(t), "column constraints are not supported").
				WithHint("a source column is just a name and a type; missing fields are NULL")
		case t.kind == tkIdent:
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p.text[t.start:t.end])
			p.next()
		case t.isOp("(") && !sawParens:
			p.next()
			args, err := p.typeArgs()
			if err != nil {
				return ColumnDef{}, err
			}
			b.WriteString(args)
			sawParens = true
		case t.isOp(",") || t.isOp(")"):
			return ColumnDef{Name: name, TypeName: b.String(), TypePos: p.runePos(first)}, nil
		default:
			return ColumnDef{}, p.unexpected(t)
		}
	}
}

// constraintWords start a column constraint, which a source does not have.
var constraintWords = map[string]bool{
	"not": true, "null": true, "primary": true, "key": true, "default": true, "unique": true,
	"references": true, "check": true, "constraint": true, "collate": true, "generated": true,
}

// typeArgs parses "n [, m] )" after the "(" of a type and returns them as
// "(n)" or "(n,m)".
func (p *parser) typeArgs() (string, error) {
	var args []string
	for {
		t := p.peek()
		if t.kind != tkNumber || !isUint(t.val) {
			return "", p.unexpected(t)
		}
		p.next()
		args = append(args, t.val)
		if len(args) < 2 && p.acceptOp(",") {
			continue
		}
		if _, err := p.expectOp(")"); err != nil {
			return "", err
		}
		return "(" + strings.Join(args, ",") + ")", nil
	}
}

// watermark parses WATERMARK FOR col AS col [- interval].
func (p *parser) watermark() (*WatermarkDef, error) {
	wmTok := p.next() // WATERMARK
	p.next()          // FOR
	col, err := p.ident()
	if err != nil {
		return nil, err
	}
	if _, err := p.expectKw("as"); err != nil {
		return nil, err
	}
	t := p.peek()
	as, err := p.ident()
	if err != nil {
		return nil, err
	}
	if as.Name != col.Name {
		return nil, sqlerr.Syntax(p.runePos(t), "watermark expression must use the column %q itself", col.Name).
			WithHint("write WATERMARK FOR %s AS %s - INTERVAL '5' SECOND", col.Name, col.Name)
	}
	wm := &WatermarkDef{Column: col, Pos: p.runePos(wmTok)}
	if p.peek().isOp("-") {
		p.next()
		d, valTok, err := p.interval()
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "watermark delay must not be negative")
		}
		wm.Delay = d
	}
	if t := p.peek(); !t.isOp(",") && !t.isOp(")") {
		return nil, p.unexpected(t).WithHint("the watermark is WATERMARK FOR col AS col - INTERVAL d")
	}
	return wm, nil
}

// options parses ( key = value [, key = value]... ) after WITH.
func (p *parser) options() ([]Option, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, err
	}
	var opts []Option
	seen := map[string]bool{}
	for {
		k := p.peek()
		if k.kind != tkIdent && k.kind != tkQIdent && k.kind != tkString {
			return nil, p.unexpected(k)
		}
		p.next()
		key := Ident{Name: strings.ToLower(k.val), Pos: p.runePos(k)}
		if key.Name == "" {
			return nil, sqlerr.Syntax(key.Pos, "an option name must not be empty")
		}
		if seen[key.Name] {
			return nil, sqlerr.Syntax(key.Pos, "option %q is specified more than once", key.Name)
		}
		seen[key.Name] = true
		if _, err := p.expectOp("="); err != nil {
			return nil, err
		}
		v := p.peek()
		var val string
		switch {
		case v.kind == tkString:
			val = v.val
		case v.kind == tkNumber || v.kind == tkIdent:
			val = p.text[v.start:v.end]
		case (v.isOp("-") || v.isOp("+")) && p.peekAt(1).kind == tkNumber:
			p.next()
			n := p.peek()
			val = v.val + n.val
		default:
			return nil, p.unexpected(v).WithHint("an option value is a 'string', a number or a word")
		}
		p.next()
		opts = append(opts, Option{Key: key, Value: val, ValuePos: p.runePos(v)})
		if p.acceptOp(",") {
			continue
		}
		if _, err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return opts, nil
	}
}

// intervalUnits maps the units an interval may be written in to their
// length. SPEC: "units SECOND, MINUTE, HOUR, DAY (plural forms too)".
var intervalUnits = map[string]time.Duration{
	"second": time.Second, "seconds": time.Second,
	"minute": time.Minute, "minutes": time.Minute,
	"hour": time.Hour, "hours": time.Hour,
	"day": 24 * time.Hour, "days": 24 * time.Hour,
}

const intervalHint = "an interval is written INTERVAL '30' MINUTE, INTERVAL 30 MINUTE or INTERVAL '30 minutes'; units are SECOND, MINUTE, HOUR and DAY"

// interval parses an interval in one of its three spellings:
//
//	INTERVAL '30' MINUTE     SQL standard
//	INTERVAL 30 MINUTE       MySQL (a sign is allowed: INTERVAL -5 MINUTE)
//	INTERVAL '30 minutes'    PostgreSQL: number and unit in one string
//
// It returns the duration, possibly zero or negative (callers decide what
// they accept), and the token holding the number, where errors about the
// value point.
func (p *parser) interval() (time.Duration, token, error) {
	kw := p.peek()
	if !kw.is("interval") {
		err := p.unexpected(kw)
		if kw.kind == tkNumber || kw.kind == tkString {
			return 0, kw, err.WithHint("write INTERVAL before the value: %s", intervalHint)
		}
		return 0, kw, err.WithHint(intervalHint)
	}
	p.next()
	valTok := p.peek()
	var num, unit string
	unitTok := valTok
	switch {
	case valTok.kind == tkString:
		p.next()
		f := strings.Fields(valTok.val)
		switch len(f) {
		case 1:
			num = f[0]
		case 2:
			num, unit = f[0], f[1]
		default:
			return 0, valTok, sqlerr.Syntax(p.runePos(valTok), "invalid interval value %q", valTok.val).WithHint(intervalHint)
		}
	case valTok.kind == tkNumber:
		p.next()
		num = valTok.val
	case (valTok.isOp("-") || valTok.isOp("+")) && p.peekAt(1).kind == tkNumber:
		p.next()
		num = valTok.val + p.next().val
	default:
		return 0, valTok, p.unexpected(valTok).WithHint(intervalHint)
	}
	if unit == "" {
		unitTok = p.peek()
		if unitTok.kind != tkIdent {
			return 0, valTok, p.unexpected(unitTok).WithHint(intervalHint)
		}
		p.next()
		unit = p.text[unitTok.start:unitTok.end]
	}
	per, ok := intervalUnits[strings.ToLower(unit)]
	if !ok {
		return 0, valTok, sqlerr.Syntax(p.runePos(unitTok), "interval unit %q is not supported", unit).WithHint(intervalHint)
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(num, "+"), 10, 64)
	if err != nil {
		switch {
		case isDecimal(num):
			return 0, valTok, sqlerr.Syntax(p.runePos(valTok), "interval value %q must be a whole number", num).
				WithHint("use a smaller unit: INTERVAL '90' SECOND rather than INTERVAL '1.5' MINUTE")
		case isUint(strings.TrimLeft(num, "+-")):
			return 0, valTok, sqlerr.Syntax(p.runePos(valTok), "interval value %q is out of range", num)
		}
		return 0, valTok, sqlerr.Syntax(p.runePos(valTok), "invalid interval value %q", num).WithHint(intervalHint)
	}
	if n > math.MaxInt64/int64(per) || n < -math.MaxInt64/int64(per) {
		return 0, valTok, sqlerr.Syntax(p.runePos(valTok), "interval value %q is out of range", num)
	}
	return time.Duration(n) * per, valTok, nil
}

// exprSpan is an expression inside one of our clauses, the tokens [a, b),
// which TiDB parses on its own (see parser.parseExpr); dst receives it.
type exprSpan struct {
	a, b int
	dst  *ast.ExprNode
	gap  bool // a GAP expression: interval literals become milliseconds
}

const (
	sessionHint     = "a session window is SESSION(ts, INTERVAL '30' MINUTE [, MAX INTERVAL '8' HOUR]) or SESSION(ts, GAP expr [, MAX ...])"
	eventWindowHint = "an event window is EVENT_WINDOW(ts, START WHEN condition, END WHEN condition [, TIMEOUT INTERVAL '30' MINUTE])"
)

// timeColumn parses the first argument of a window clause, a plain column
// name; clause, example and hint describe the clause in errors.
func (p *parser) timeColumn(clause, example, hint string) (Ident, error) {
	colTok := p.peek()
	col, err := p.ident()
	if err != nil {
		return Ident{}, withHint(err, "%s", hint)
	}
	if p.peek().isOp(".") {
		return Ident{}, sqlerr.Syntax(p.runePos(colTok), "the time column of %s must be a plain column name", clause).
			WithHint("write %s", example)
	}
	return col, nil
}

// exprEnd reports whether t ends an expression of our clauses at the
// clause's own depth: the words that end a GROUP BY list do, so that a
// missing ")" is reported where the clause visibly ends. OFFSET does not:
// TiDB does not reserve it, so it may be a column's name.
func exprEnd(t token) bool {
	return t.kind == tkIdent && groupByEnd[t.val] && t.val != "offset"
}

// exprUntil consumes the tokens of an expression inside a clause's
// parentheses, up to the first "," or ")" outside the expression's own
// parentheses (so a condition may hold calls, CASE ... END, IN lists), a
// word of exprEnd, or the limit. It returns the expression's tokens
// [a, b), empty when there are none.
func (p *parser) exprUntil() (a, b int) {
	a = p.pos
	depth := 0
	for !p.atEnd() {
		t := p.peek()
		if depth == 0 && (t.isOp(",") || t.isOp(")") || exprEnd(t)) {
			break
		}
		switch {
		case t.isOp("("):
			depth++
		case t.isOp(")"):
			depth--
		}
		p.next()
	}
	return a, p.pos
}

// sessionWindow parses, from the SESSION keyword,
//
//	SESSION ( column , interval [, MAX interval] )
//	SESSION ( column , GAP expr [, MAX interval] )
//
// and returns the GAP expression, if any, for the caller to parse.
func (p *parser) sessionWindow() (*Window, []exprSpan, error) {
	kw := p.next() // SESSION
	if _, err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	w := &Window{Kind: WindowSession, Pos: p.runePos(kw)}
	col, err := p.timeColumn("SESSION", "SESSION(ts, INTERVAL '30' MINUTE)", "a session window is SESSION(ts, INTERVAL '30' MINUTE)")
	if err != nil {
		return nil, nil, err
	}
	w.TimeCol = col
	if _, err := p.expectOp(","); err != nil {
		return nil, nil, withHint(err, "a session window needs a gap: SESSION(%s, INTERVAL '30' MINUTE)", col.Name)
	}
	var spans []exprSpan
	if p.acceptKw("gap") {
		a, b := p.exprUntil()
		if a == b {
			return nil, nil, p.unexpected(p.peek()).
				WithHint("a gap per event is GAP followed by an expression, e.g. GAP CASE WHEN device = 'tv' THEN INTERVAL '60' MINUTE ELSE INTERVAL '10' MINUTE END")
		}
		spans = append(spans, exprSpan{a: a, b: b, dst: &w.GapExpr, gap: true})
	} else {
		gap, valTok, err := p.interval()
		if err != nil {
			return nil, nil, err
		}
		if gap <= 0 {
			return nil, nil, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "session gap must be positive")
		}
		w.Gap = gap
	}
	if p.peek().isOp(",") && p.peekAt(1).is("max") {
		p.next()
		maxTok := p.next()
		d, valTok, err := p.interval()
		if err != nil {
			return nil, nil, err
		}
		if d <= 0 {
			return nil, nil, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "session MAX must be positive")
		}
		if w.Gap > d {
			// SPEC: no session window ever spans more than MAX, and a
			// single event's window already spans the gap.
			return nil, nil, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok),
				"session MAX %s is shorter than the gap %s", FormatInterval(d), FormatInterval(w.Gap)).
				WithHint("MAX bounds the span of a whole session, so it must be at least the gap")
		}
		w.Max, w.MaxPos = d, p.runePos(maxTok)
	}
	if t := p.peek(); t.isOp(",") {
		return nil, nil, p.unexpected(t).WithHint("%s", sessionHint)
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, nil, err
	}
	if err := p.expectEnd(); err != nil {
		return nil, nil, withHint(err, "a window clause is a GROUP BY item of its own")
	}
	return w, spans, nil
}

// eventWindow parses, from the EVENT_WINDOW keyword,
//
//	EVENT_WINDOW ( column , START WHEN cond , END WHEN cond [, TIMEOUT interval] )
//
// and returns the two conditions for the caller to parse.
func (p *parser) eventWindow() (*Window, []exprSpan, error) {
	kw := p.next() // EVENT_WINDOW
	if _, err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	w := &Window{Kind: WindowEvent, Pos: p.runePos(kw)}
	col, err := p.timeColumn("EVENT_WINDOW", "EVENT_WINDOW(ts, START WHEN condition, END WHEN condition)", eventWindowHint)
	if err != nil {
		return nil, nil, err
	}
	w.TimeCol = col
	if _, err := p.expectOp(","); err != nil {
		return nil, nil, withHint(err, "%s", eventWindowHint)
	}
	var spans []exprSpan
	for i, part := range []struct {
		kw  string
		dst *ast.ExprNode
	}{{"start", &w.StartWhen}, {"end", &w.EndWhen}} {
		t := p.peek()
		if i > 0 {
			if t.isOp(")") {
				return nil, nil, sqlerr.Syntax(p.runePos(t), "EVENT_WINDOW needs an END WHEN condition").WithHint("%s", eventWindowHint)
			}
			if _, err := p.expectOp(","); err != nil {
				return nil, nil, withHint(err, "%s", eventWindowHint)
			}
			t = p.peek()
		}
		switch {
		case t.is(part.kw):
			p.next()
			if _, err := p.expectKw("when"); err != nil {
				return nil, nil, withHint(err, "%s", eventWindowHint)
			}
		case part.kw == "start" && t.is("end"):
			return nil, nil, sqlerr.Syntax(p.runePos(t), "EVENT_WINDOW needs a START WHEN condition before END WHEN").WithHint("%s", eventWindowHint)
		case part.kw == "end" && t.is("timeout"):
			return nil, nil, sqlerr.Syntax(p.runePos(t), "TIMEOUT must come after END WHEN").WithHint("%s", eventWindowHint)
		default:
			return nil, nil, p.unexpected(t).WithHint("%s", eventWindowHint)
		}
		a, b := p.exprUntil()
		if a == b {
			return nil, nil, p.unexpected(p.peek()).WithHint("%s WHEN is followed by a condition: %s", strings.ToUpper(part.kw), eventWindowHint)
		}
		spans = append(spans, exprSpan{a: a, b: b, dst: part.dst})
	}
	if p.acceptOp(",") {
		if _, err := p.expectKw("timeout"); err != nil {
			return nil, nil, withHint(err, "%s", eventWindowHint)
		}
		d, valTok, err := p.interval()
		if err != nil {
			return nil, nil, err
		}
		if d <= 0 {
			return nil, nil, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "EVENT_WINDOW TIMEOUT must be positive")
		}
		w.Timeout = d
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, nil, withHint(err, "%s", eventWindowHint)
	}
	if err := p.expectEnd(); err != nil {
		return nil, nil, withHint(err, "a window clause is a GROUP BY item of its own")
	}
	return w, spans, nil
}

// trailing parses the clauses that end a continuous query, in either order
// and each at most once:
//
//	EMIT FINAL | EMIT EARLY EVERY interval | EMIT EARLY EVERY n EVENTS
//	ALLOWED LATENESS interval
func (p *parser) trailing(q *Query) error {
	lateness := false
	for !p.atEnd() {
		t := p.peek()
		switch {
		case t.is("emit"):
			if q.Emit.Pos != 0 {
				return sqlerr.Syntax(p.runePos(t), "EMIT is specified more than once")
			}
			e, err := p.emit()
			if err != nil {
				return err
			}
			q.Emit = e
		case t.is("allowed"):
			if lateness {
				return sqlerr.Syntax(p.runePos(t), "ALLOWED LATENESS is specified more than once")
			}
			p.next()
			if _, err := p.expectKw("lateness"); err != nil {
				return err
			}
			d, valTok, err := p.interval()
			if err != nil {
				return err
			}
			if d < 0 {
				return sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "allowed lateness must not be negative")
			}
			q.Lateness, lateness = d, true
		default:
			return p.unexpected(t).WithHint("EMIT and ALLOWED LATENESS end the query")
		}
	}
	return nil
}

// emit parses EMIT FINAL | EMIT EARLY EVERY interval | EMIT EARLY EVERY n EVENTS.
func (p *parser) emit() (Emit, error) {
	kw := p.next() // EMIT
	e := Emit{Pos: p.runePos(kw)}
	if p.acceptKw("final") {
		return e, nil
	}
	if _, err := p.expectKw("early"); err != nil {
		return e, withHint(err, "write EMIT FINAL, EMIT EARLY EVERY INTERVAL '10' SECOND or EMIT EARLY EVERY 100 EVENTS")
	}
	if _, err := p.expectKw("every"); err != nil {
		return e, err
	}
	if t := p.peek(); t.kind == tkNumber && (p.peekAt(1).is("events") || p.peekAt(1).is("event")) {
		p.next()
		p.next()
		n, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil || n <= 0 {
			return e, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(t), "EMIT EARLY EVERY n EVENTS needs a positive whole number, not %s", t.val)
		}
		e.Mode, e.EveryEvents = EmitEarlyEvents, n
		return e, nil
	}
	d, valTok, err := p.interval()
	if err != nil {
		return e, err
	}
	if d <= 0 {
		return e, sqlerr.At(pgerrcode.InvalidParameterValue, p.runePos(valTok), "EMIT EARLY EVERY interval must be positive")
	}
	e.Mode, e.Every = EmitEarlyInterval, d
	return e, nil
}

// withHint sets the hint of err when err is a *sqlerr.Error.
func withHint(err error, format string, args ...any) error {
	if e, ok := sqlerr.As(err); ok {
		e.WithHint(format, args...)
	}
	return err
}

// isUint reports whether s is a non-empty string of digits.
func isUint(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isDecimal reports whether s is a number with a fraction, like -1.5.
func isDecimal(s string) bool {
	s = strings.TrimLeft(s, "+-")
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return false
	}
	return (isUint(s[:i]) || s[:i] == "") && (isUint(s[i+1:]) || s[i+1:] == "") && len(s) > 1
}
