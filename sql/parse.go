package sql

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	tidb "github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// Parse parses one statement. The text may end with semicolons and may
// hold comments anywhere; a text with nothing else is an *Empty. Every
// error is a *sqlerr.Error whose Position (when not 0) is the 1-based
// character position in text of the offending token.
func Parse(text string) (Statement, error) {
	if !utf8.ValidString(text) {
		return nil, sqlerr.New(pgerrcode.CharacterNotInRepertoire, `invalid byte sequence for encoding "UTF8"`)
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	end := len(toks) - 1
	for i, t := range toks[:end] {
		if !t.isOp(";") {
			continue
		}
		for _, u := range toks[i+1 : end] {
			if !u.isOp(";") {
				return nil, sqlerr.Syntax(u.pos, "cannot insert multiple commands into a prepared statement")
			}
		}
		end = i
		break
	}
	if end == 0 {
		return &Empty{}, nil
	}
	p := &parser{text: text, toks: toks, limit: end}
	st, err := p.statement(true)
	if err != nil {
		return nil, err // not a typed nil in a Statement
	}
	return st, nil
}

// statement parses the statement at p.pos. top is false under EXPLAIN.
func (p *parser) statement(top bool) (Statement, error) {
	t := p.peek()
	switch {
	case t.is("select") || t.is("with") || t.isOp("("):
		q, err := p.query()
		if err != nil {
			return nil, err
		}
		return &Select{Query: q}, nil
	case t.is("create") && p.peekAt(1).is("source"):
		p.next()
		p.next()
		return p.createSource()
	case t.is("create") && p.peekAt(1).is("materialized"):
		return p.createView(top)
	case t.is("insert"):
		return p.insert()
	case t.is("drop") && p.peekAt(1).is("source"):
		p.next()
		p.next()
		ds := &DropSource{IfExists: p.ifExists()}
		var err error
		if ds.Name, err = p.ident(); err != nil {
			return nil, err
		}
		return ds, p.expectEnd()
	case t.is("drop") && p.peekAt(1).is("materialized"):
		p.next()
		p.next()
		if _, err := p.expectKw("view"); err != nil {
			return nil, err
		}
		dv := &DropView{IfExists: p.ifExists()}
		var err error
		if dv.Name, err = p.ident(); err != nil {
			return nil, err
		}
		return dv, p.expectEnd()
	case t.is("show"):
		p.next()
		return p.show()
	case t.is("set"):
		p.next()
		return p.set()
	case t.is("describe") || t.is("desc"):
		p.next()
		d := &Describe{}
		var err error
		if d.Name, err = p.ident(); err != nil {
			return nil, err
		}
		return d, p.expectEnd()
	case t.is("explain") && top:
		p.next()
		return p.explain()
	case t.is("begin") || t.is("start") || t.is("commit") || t.is("end") || t.is("rollback") || t.is("abort"):
		return p.txn()
	}
	return nil, p.unsupported()
}

// createView parses CREATE MATERIALIZED VIEW [IF NOT EXISTS] name AS query.
func (p *parser) createView(top bool) (*CreateView, error) {
	create := p.next()
	p.next() // MATERIALIZED
	if _, err := p.expectKw("view"); err != nil {
		return nil, err
	}
	cv := &CreateView{Text: p.text}
	if !top {
		cv.Text = p.text[create.start:]
	}
	var err error
	if cv.IfNotExists, err = p.ifNotExists(); err != nil {
		return nil, err
	}
	if cv.Name, err = p.ident(); err != nil {
		return nil, err
	}
	if _, err := p.expectKw("as"); err != nil {
		return nil, err
	}
	if t := p.peek(); !t.is("select") && !t.is("with") && !t.isOp("(") {
		return nil, withHint(p.unexpected(t), "a materialized view is CREATE MATERIALIZED VIEW name AS SELECT ...")
	}
	if cv.Query, err = p.query(); err != nil {
		return nil, err
	}
	return cv, nil
}

// explain parses the statement after EXPLAIN: a SELECT or a CREATE
// MATERIALIZED VIEW.
func (p *parser) explain() (*Explain, error) {
	t := p.peek()
	if t.is("analyze") {
		p.next()
		if n := p.peek(); n.is("select") || n.is("with") || n.is("create") || n.isOp("(") {
			return nil, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(n), "EXPLAIN ANALYZE of a statement is not supported").
				WithHint("EXPLAIN ANALYZE name shows a running materialized view's operators with their rows and time")
		}
		name, err := p.ident()
		if err != nil {
			return nil, withHint(err, "write EXPLAIN ANALYZE <materialized view>")
		}
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		return &Explain{Analyze: &name}, nil
	}
	if t.is("select") || t.is("with") || t.isOp("(") || (t.is("create") && p.peekAt(1).is("materialized")) {
		st, err := p.statement(false)
		if err != nil {
			return nil, err
		}
		return &Explain{Stmt: st}, nil
	}
	if t.kind == tkIdent {
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(t), "EXPLAIN %s is not supported", strings.ToUpper(t.val)).
			WithHint("EXPLAIN shows the plan of a SELECT or a CREATE MATERIALIZED VIEW")
	}
	return nil, p.unexpected(t)
}

// show parses what follows SHOW.
func (p *parser) show() (Statement, error) {
	t := p.peek()
	switch {
	case t.is("sources") && p.peekAt(1).kind == tkEOF:
		p.next()
		return &ShowSources{}, nil
	case t.is("materialized"):
		p.next()
		if _, err := p.expectKw("views"); err != nil {
			return nil, err
		}
		return &ShowViews{}, p.expectEnd()
	}
	name, _, err := p.settingName()
	if err != nil {
		return nil, err
	}
	return &ShowVar{Name: name}, p.expectEnd()
}

// settingNames are the settings whose SQL names are several words, and
// the name PostgreSQL gives them.
var settingNames = []struct {
	words []string
	name  string
}{
	{[]string{"transaction", "isolation", "level"}, "transaction_isolation"},
	{[]string{"time", "zone"}, "timezone"},
	{[]string{"session", "authorization"}, "session_authorization"},
}

// settingName parses the name of a setting for SHOW or SET: a name of
// several words (TIME ZONE), or a name possibly qualified with dots
// (my.setting), returned as one Ident. words tells the first kind, which
// SET follows with its value directly (SET TRANSACTION ISOLATION LEVEL
// READ COMMITTED).
func (p *parser) settingName() (name Ident, words bool, err error) {
	first := p.peek()
	for _, sn := range settingNames {
		match := true
		for i, w := range sn.words {
			if !p.peekAt(i).is(w) {
				match = false
				break
			}
		}
		if match {
			for range sn.words {
				p.next()
			}
			return Ident{Name: sn.name, Pos: p.runePos(first)}, true, nil
		}
	}
	if name, err = p.ident(); err != nil {
		return Ident{}, false, err
	}
	for p.peek().isOp(".") {
		p.next()
		part, err := p.ident()
		if err != nil {
			return Ident{}, false, err
		}
		name.Name += "." + part.Name
	}
	return name, false, nil
}

// set parses what follows SET: [SESSION | LOCAL] name {= | TO} value,
// SET TIME ZONE value, SET NAMES value, and the settings of several words
// followed by their value (SET TRANSACTION ISOLATION LEVEL READ COMMITTED,
// SET SESSION AUTHORIZATION DEFAULT).
func (p *parser) set() (*SetVar, error) {
	if t, u := p.peek(), p.peekAt(1); (t.is("session") || t.is("local")) && !u.isOp("=") && !u.is("to") && !u.is("authorization") {
		p.next()
	}
	sv := &SetVar{}
	switch t := p.peek(); {
	case t.is("time") && p.peekAt(1).is("zone"):
		p.next()
		p.next()
		sv.Name = Ident{Name: "timezone", Pos: p.runePos(t)}
	case t.is("names") && !p.peekAt(1).isOp("=") && !p.peekAt(1).is("to"):
		p.next()
		sv.Name = Ident{Name: "client_encoding", Pos: p.runePos(t)}
	default:
		name, words, err := p.settingName()
		if err != nil {
			return nil, err
		}
		sv.Name = name
		if !p.acceptOp("=") && !p.acceptKw("to") && !words {
			return nil, p.unexpected(p.peek())
		}
	}
	if p.atEnd() {
		return nil, p.unexpected(p.peek())
	}
	// The value as text: a literal's value, or the words, numbers and
	// strings of a list as written, separated by ", " at commas.
	var b strings.Builder
	prev := token{kind: tkOp, val: ","}
	for !p.atEnd() {
		t := p.next()
		switch {
		case t.isOp(","):
			if prev.isOp(",") {
				return nil, p.unexpected(t)
			}
			b.WriteString(", ")
		case t.kind == tkString:
			b.WriteString(t.val)
		case t.kind == tkNumber || t.kind == tkIdent || t.kind == tkQIdent || t.isOp("-") || t.isOp("+"):
			if !prev.isOp(",") && !((prev.isOp("-") || prev.isOp("+")) && t.kind == tkNumber) {
				b.WriteByte(' ')
			}
			if t.kind == tkQIdent {
				b.WriteString(t.val)
			} else {
				b.WriteString(p.text[t.start:t.end])
			}
		default:
			return nil, p.unexpected(t)
		}
		prev = t
	}
	if prev.isOp(",") {
		return nil, p.unexpected(p.peek())
	}
	sv.Value = b.String()
	return sv, nil
}

// txn parses BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK and ABORT,
// with PostgreSQL's optional WORK / TRANSACTION and transaction modes,
// which are accepted and ignored: the engine has no transactions.
func (p *parser) txn() (*Txn, error) {
	t := p.next()
	tx := &Txn{}
	switch t.val {
	case "begin":
		tx.Kind = TxnBegin
		if !p.acceptKw("work") {
			p.acceptKw("transaction")
		}
	case "start":
		tx.Kind = TxnBegin
		if _, err := p.expectKw("transaction"); err != nil {
			return nil, err
		}
	case "commit", "end":
		tx.Kind = TxnCommit
		if !p.acceptKw("work") {
			p.acceptKw("transaction")
		}
	default: // rollback, abort
		tx.Kind = TxnRollback
		if !p.acceptKw("work") {
			p.acceptKw("transaction")
		}
	}
	if tx.Kind != TxnBegin {
		return tx, p.expectEnd()
	}
	for !p.atEnd() {
		switch {
		case p.acceptKw("isolation"):
			if _, err := p.expectKw("level"); err != nil {
				return nil, err
			}
			switch {
			case p.acceptKw("serializable"):
			case p.acceptKw("repeatable"):
				if _, err := p.expectKw("read"); err != nil {
					return nil, err
				}
			case p.acceptKw("read"):
				if !p.acceptKw("committed") {
					if _, err := p.expectKw("uncommitted"); err != nil {
						return nil, err
					}
				}
			default:
				return nil, p.unexpected(p.peek())
			}
		case p.acceptKw("read"):
			if !p.acceptKw("only") {
				if _, err := p.expectKw("write"); err != nil {
					return nil, err
				}
			}
		case p.acceptKw("not"):
			if _, err := p.expectKw("deferrable"); err != nil {
				return nil, err
			}
		case p.acceptKw("deferrable"):
		default:
			return nil, p.unexpected(p.peek())
		}
		if !p.atEnd() {
			p.acceptOp(",")
		}
	}
	return tx, nil
}

// objectWords are the objects of CREATE / DROP / ALTER statements that
// MySQL or PostgreSQL know and this engine does not.
var objectWords = map[string]bool{
	"table": true, "view": true, "index": true, "database": true, "schema": true, "user": true,
	"role": true, "sequence": true, "function": true, "procedure": true, "trigger": true,
	"event": true, "type": true, "extension": true, "tablespace": true, "server": true,
	"resource": true, "placement": true, "binding": true, "statistics": true,
}

// objectModifiers may stand between CREATE / DROP and the object word.
var objectModifiers = map[string]bool{
	"or": true, "replace": true, "unique": true, "temporary": true, "temp": true,
	"global": true, "local": true, "unlogged": true, "fulltext": true, "spatial": true,
}

// unsupported reports a statement that is not ours: FeatureNotSupported
// naming it when it is valid MySQL (or an obvious CREATE / DROP / ALTER of
// a known object), else the syntax error TiDB finds.
func (p *parser) unsupported() error {
	first := p.peek()
	if first.kind != tkIdent {
		return p.unexpected(first)
	}
	name := strings.ToUpper(first.val)
	known := false
	if first.is("create") || first.is("drop") || first.is("alter") {
		i := 1
		for objectModifiers[p.peekAt(i).val] && p.peekAt(i).kind == tkIdent {
			i++
		}
		if obj := p.peekAt(i); obj.kind == tkIdent {
			name += " " + strings.ToUpper(obj.val)
			known = objectWords[obj.val]
		}
	}
	if !known {
		text, offset, _, err := p.tidbText(p.pos, p.limit, nil)
		if err != nil {
			return err
		}
		if _, err := p.parseTiDB(text, offset); err != nil {
			return err
		}
	}
	e := sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(first), "%s is not supported", name)
	switch {
	case first.is("create"):
		e.Message += "; use CREATE SOURCE or CREATE MATERIALIZED VIEW"
	case first.is("drop"):
		e.Message += "; use DROP SOURCE or DROP MATERIALIZED VIEW"
	}
	return e
}

// query parses a SELECT from p.pos to p.limit: it lifts our clauses out,
// blanks them, and has TiDB parse the rest. See doc.go for an example.
func (p *parser) query() (*Query, error) {
	s, e := p.pos, p.limit
	q := &Query{Source: p.text}
	lifted, filters, err := p.lift(q, s, e)
	if err != nil {
		return nil, err
	}
	text, offset, params, err := p.tidbText(s, e, lifted)
	if err != nil {
		return nil, err
	}
	node, err := p.parseTiDB(text, offset)
	if err != nil {
		return nil, err
	}
	if err := p.applyCasts(node, offset); err != nil {
		return nil, err
	}
	if err := p.checkCasts(s, e); err != nil {
		return nil, err
	}
	if err := p.refuse(node, s); err != nil {
		return nil, err
	}
	switch n := node.(type) {
	case *ast.SelectStmt:
		if _, err := (&callFixer{p: p, offset: offset}).check(n); err != nil {
			return nil, err
		}
		q.Select, q.Offset = n, offset
		addParams(q, params)
	case *ast.SetOprStmt:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(p.toks[s]), "UNION, EXCEPT and INTERSECT are not supported")
	default:
		return nil, sqlerr.Syntax(p.runePos(p.toks[s]), "expected a SELECT, found %s", strings.TrimPrefix(fmt.Sprintf("%T", node), "*ast."))
	}
	if err := p.attachFilters(q, filters); err != nil {
		return nil, err
	}
	p.pos = e
	return q, nil
}

// addParams adds parameters found in a text TiDB parsed to q.Params.
func addParams(q *Query, params map[int]int) {
	for off, n := range params {
		if q.Params == nil {
			q.Params = map[int]int{}
		}
		q.Params[off] = n
	}
}

// lift parses our clauses in the query of tokens [s, e) into q and returns
// which tokens they cover: lifted[i] is true for a token TiDB must not see.
// The expressions inside them are parsed already (see parseExpr), but the
// FILTER clauses wait for TiDB's tree of the query: the caller attaches
// them to their aggregate calls with attachFilters.
func (p *parser) lift(q *Query, s, e int) ([]bool, []pendingFilter, error) {
	if err := p.scanCasts(); err != nil {
		return nil, nil, err
	}
	lifted := make([]bool, e)

	// Depth of each token: parentheses around it. The query proper is at
	// the depth top of its first SELECT (1 for "(SELECT ...)").
	depth := make([]int, e+1)
	d := 0
	for i := s; i < e; i++ {
		if p.toks[i].isOp(")") {
			d--
		}
		depth[i] = d
		if p.toks[i].isOp("(") {
			d++
		}
	}
	top := 0
	for i := s; i < e && p.toks[i].isOp("("); i++ {
		top++
	}

	// EMIT and ALLOWED LATENESS end the statement, outside all parentheses
	// and after the query's FROM (so "SELECT emit early FROM t", a column
	// and its alias, stays TiDB's; "t.from" is a column).
	tail := e
	from := false
	for i := s; i < e; i++ {
		t := p.toks[i]
		if depth[i] == top && t.is("from") && (i == s || !p.toks[i-1].isOp(".")) {
			from = true
		}
		if depth[i] != 0 || !from {
			continue
		}
		next := p.toks[i+1]
		if i+1 >= e {
			next = token{kind: tkEOF}
		}
		if (t.is("emit") && (next.is("final") || next.is("early"))) || (t.is("allowed") && next.is("lateness")) {
			tail = i
			break
		}
	}
	if tail < e {
		sub := &parser{text: p.text, toks: p.toks, pos: tail, limit: e}
		if err := sub.trailing(q); err != nil {
			return nil, nil, err
		}
		for i := tail; i < e; i++ {
			lifted[i] = true
		}
	}

	// The window clause is an item of the query's own GROUP BY.
	if err := p.liftWindow(q, s, tail, top, depth, lifted); err != nil {
		return nil, nil, err
	}
	for i := s; i < tail; i++ {
		if t := p.toks[i]; !lifted[i] && (t.is("session") || t.is("event_window")) && p.toks[i+1].isOp("(") && i+1 < tail {
			return nil, nil, sqlerr.Syntax(p.runePos(t), "%s(...) is only allowed in the GROUP BY of the outermost query", strings.ToUpper(t.val))
		}
	}

	match := matchParens(p.toks, s, tail)
	for i := s; i+1 < tail; i++ {
		// SPEC: FIRST_VALUE(col) and LAST_VALUE(col) are aggregates "by
		// event time"; with OVER they would be window functions.
		if p.aggAlias(i) == "" {
			continue
		}
		if c := match[i+1]; c >= 0 && c+1 < tail && p.toks[c+1].is("over") {
			return nil, nil, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(p.toks[i]), "window functions are not supported").
				WithHint("without OVER, %s(x) is an aggregate: the value of x at the %s event of its group, by event time",
					strings.ToUpper(p.toks[i].val), strings.TrimSuffix(p.toks[i].val, "_value"))
		}
	}
	filters, err := p.liftFilters(q, s, tail, depth, match, lifted)
	if err != nil {
		return nil, nil, err
	}
	return lifted, filters, nil
}

// matchParens returns, for each token in [s, e), the index of the
// parenthesis that matches it, or -1 (not a parenthesis, or unmatched).
func matchParens(toks []token, s, e int) []int {
	match := make([]int, e)
	var open []int
	for i := s; i < e; i++ {
		match[i] = -1
		switch {
		case toks[i].isOp("("):
			open = append(open, i)
		case toks[i].isOp(")") && len(open) > 0:
			o := open[len(open)-1]
			open = open[:len(open)-1]
			match[o], match[i] = i, o
		}
	}
	return match
}

// refuse fails on TiDB features that have no meaning here and that TiDB
// cannot render back to text it parses (TABLESAMPLE REGIONS()), s being
// the statement's first token.
func (p *parser) refuse(node ast.Node, s int) error {
	var v refuser
	node.Accept(&v)
	if v.what != "" {
		return sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(p.toks[s]), "%s is not supported", v.what)
	}
	return nil
}

type refuser struct{ what string }

func (v *refuser) Enter(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.TableSample); ok && v.what == "" {
		v.what = "TABLESAMPLE"
	}
	return n, v.what != ""
}

func (v *refuser) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// groupByEnd are the words that end a GROUP BY list at its own depth.
var groupByEnd = map[string]bool{
	"having": true, "order": true, "limit": true, "window": true, "union": true, "except": true,
	"intersect": true, "for": true, "lock": true, "into": true, "with": true, "offset": true, "fetch": true,
}

// liftWindow finds the query's GROUP BY in tokens [s, tail) at depth top,
// parses a SESSION or EVENT_WINDOW item there into q.Window (with its
// expressions, see parseExpr) and marks its tokens lifted,
// with the comma that separates it from its neighbour, or with GROUP BY
// itself when it is the only item.
func (p *parser) liftWindow(q *Query, s, tail, top int, depth []int, lifted []bool) error {
	g := -1
	for i := s; i+1 < tail; i++ {
		if depth[i] == top && p.toks[i].is("group") && p.toks[i+1].is("by") {
			g = i
			break
		}
	}
	if g < 0 {
		return nil
	}
	// Items: [a, b) separated by commas at depth top.
	type item struct{ a, b int }
	var items []item
	a := g + 2
	i := a
	for ; i < tail; i++ {
		t := p.toks[i]
		if p.castTok(i) {
			continue // "::timestamp with time zone" ends no list
		}
		if depth[i] < top || (depth[i] == top && t.kind == tkIdent && groupByEnd[t.val]) {
			break
		}
		if depth[i] == top && t.isOp(",") {
			items = append(items, item{a, i})
			a = i + 1
		}
	}
	items = append(items, item{a, i})
	for k, it := range items {
		t := p.toks[it.a]
		if it.a >= it.b || !p.toks[it.a+1].isOp("(") || it.a+1 >= it.b || !(t.is("session") || t.is("event_window")) {
			continue
		}
		if q.Window != nil {
			return sqlerr.At(pgerrcode.WindowingError, p.runePos(t), "a query has at most one window clause")
		}
		sub := &parser{text: p.text, toks: p.toks, pos: it.a, limit: it.b}
		parse := sub.sessionWindow
		if t.is("event_window") {
			parse = sub.eventWindow
		}
		w, spans, err := parse()
		if err != nil {
			return err
		}
		for _, sp := range spans {
			if err := p.parseExpr(q, s, sp); err != nil {
				return err
			}
		}
		q.Window = w
		from, to := it.a, it.b // lifted token range [from, to)
		switch {
		case len(items) == 1:
			from = g
		case k == 0:
			to = it.b + 1 // the comma after it
		default:
			from = it.a - 1 // the comma before it
		}
		for j := from; j < to; j++ {
			lifted[j] = true
		}
	}
	return nil
}

// pendingFilter is a FILTER (WHERE cond) lifted out of the query, waiting
// for the aggregate call it follows to be found in TiDB's tree.
type pendingFilter struct {
	name   int // index of the called function's name, the token before "("
	filter int // index of the FILTER keyword
	cond   ast.ExprNode
}

// liftFilters lifts every FILTER ( WHERE cond ) that directly follows the
// ")" closing a call (a name, then parentheses) in tokens [s, tail), and
// parses its condition. Whether the call is an aggregate is for
// attachFilters to tell, from TiDB's tree.
func (p *parser) liftFilters(q *Query, s, tail int, depth, match []int, lifted []bool) ([]pendingFilter, error) {
	var filters []pendingFilter
	for i := s; i+3 < tail; i++ {
		if lifted[i] || !p.toks[i].isOp(")") || !p.toks[i+1].is("filter") || !p.toks[i+2].isOp("(") || !p.toks[i+3].is("where") {
			continue
		}
		open, end := match[i], match[i+2]
		if open <= s || end < 0 {
			continue
		}
		if name := p.toks[open-1]; name.kind != tkIdent && name.kind != tkQIdent {
			continue
		}
		if end+1 < tail && p.toks[end+1].is("over") {
			return nil, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(p.toks[open-1]), "window functions are not supported")
		}
		if i+4 == end {
			return nil, p.unexpected(p.toks[end]).WithHint("an aggregate's filter is written FILTER (WHERE condition)")
		}
		for j := i + 4; j < end; j++ {
			if p.toks[j].isOp(",") && depth[j] == depth[i+2]+1 {
				return nil, p.unexpected(p.toks[j]).WithHint("an aggregate's filter is one condition: FILTER (WHERE a AND b)")
			}
		}
		f := pendingFilter{name: open - 1, filter: i + 1}
		if err := p.parseExpr(q, s, exprSpan{a: i + 4, b: end, dst: &f.cond}); err != nil {
			return nil, err
		}
		for j := i + 1; j <= end; j++ {
			lifted[j] = true
		}
		filters = append(filters, f)
		i = end
	}
	return filters, nil
}

// attachFilters records each lifted FILTER in q.Filters under the
// aggregate call it follows: the *ast.AggregateFuncExpr that TiDB put at
// the offset of the call's name.
func (p *parser) attachFilters(q *Query, filters []pendingFilter) error {
	if len(filters) == 0 {
		return nil
	}
	v := aggFinder{at: map[int]*ast.AggregateFuncExpr{}}
	q.Select.Accept(&v)
	q.Filters = map[ast.ExprNode]ast.ExprNode{}
	for _, f := range filters {
		name := p.toks[f.name]
		agg := v.at[name.start-q.Offset]
		if agg == nil {
			return sqlerr.Syntax(p.runePos(p.toks[f.filter]), "FILTER specified, but %s is not an aggregate function", name.val)
		}
		q.Filters[agg] = f.cond
	}
	return nil
}

// aggFinder collects the aggregate calls of a tree by offset.
type aggFinder struct {
	at map[int]*ast.AggregateFuncExpr
}

func (v *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	if a, ok := n.(*ast.AggregateFuncExpr); ok {
		if _, seen := v.at[a.OriginTextPosition()]; !seen {
			v.at[a.OriginTextPosition()] = a
		}
	}
	return n, false
}

func (v *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// aggAliases maps FIRST_VALUE and LAST_VALUE, which TiDB reserves for its
// window functions and parses only with OVER, to names of the same length
// that it reads as plain function calls. putToken writes the alias for a
// call; callFixer turns the call back into an aggregate.
var aggAliases = map[string]string{"first_value": "first_valu_", "last_value": "last_valu_"}

// aggAlias returns the alias of token i when it is FIRST_VALUE or
// LAST_VALUE called as a function (unquoted, unqualified, before "("),
// else "".
func (p *parser) aggAlias(i int) string {
	t := p.toks[i]
	alias, ok := aggAliases[t.val]
	if !ok || t.kind != tkIdent || !p.toks[i+1].isOp("(") || (i > 0 && p.toks[i-1].isOp(".")) {
		return ""
	}
	return alias
}

// callFixer mends the function calls of a tree TiDB parsed (offset is
// that of its text in p.text):
//
//   - It replaces each call TiDB parsed from an alias of aggAliases (the
//     alias at an offset where the user wrote FIRST_VALUE or LAST_VALUE),
//     and each call of a quoted "first_value" or "last_value", by the
//     aggregate *ast.AggregateFuncExpr{F: "first_value"} or "last_value"
//     with the same arguments and offset.
//   - TiDB renders the name of an unqualified call as a keyword, bare and
//     upper case, which reads back different, or not at all, when the
//     name was quoted ("MyFunc", "#x", "value", "session"): such calls
//     are marked generic, whose names TiDB renders quoted.
//   - It refuses, in err, the calls that TiDB renders in a special syntax
//     that their arguments do not fit (specialCalls).
type callFixer struct {
	p      *parser
	offset int
	err    error // the first call refused
}

// specialCalls are the functions TiDB parses with a syntax of their own
// (TRIM(x FROM y), DATE_ADD(d, INTERVAL n unit), ...) and renders back in
// it whatever their arguments, which breaks, or panics, for a call of the
// quoted name with arguments of any shape. json_memberof is TiDB's name
// for MEMBER OF, which it can render with two arguments only.
var specialCalls = map[string]bool{
	"convert": true, "adddate": true, "subdate": true, "date_add": true, "date_sub": true,
	"extract": true, "position": true, "trim": true, "weight_string": true, "json_memberof": true,
}

// check runs the fixer over n and returns the node that replaces it.
func (v *callFixer) check(n ast.Node) (ast.Node, error) {
	n, _ = n.Accept(v)
	return n, v.err
}

func (v *callFixer) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (v *callFixer) Leave(n ast.Node) (ast.Node, bool) {
	fc, ok := n.(*ast.FuncCallExpr)
	if !ok || fc.Schema.L != "" {
		return n, true
	}
	at := v.offset + fc.OriginTextPosition()
	for name, alias := range aggAliases {
		written := at+len(name) <= len(v.p.text) && strings.EqualFold(v.p.text[at:at+len(name)], name)
		if fc.FnName.L == name || (fc.FnName.L == alias && written) {
			agg := &ast.AggregateFuncExpr{F: name, Args: fc.Args}
			agg.SetOriginTextPosition(fc.OriginTextPosition())
			return agg, true
		}
	}
	t, ok := v.callName(at, fc.FnName.O)
	switch {
	case !ok:
	case fc.FnName.L == "json_memberof" && v.err == nil:
		v.err = sqlerr.At(pgerrcode.FeatureNotSupported, v.p.runePos(t), "%s(...) is not supported", fc.FnName.O).
			WithHint("write value MEMBER OF (json_array)")
	case specialCalls[fc.FnName.L] && t.kind == tkQIdent && v.err == nil:
		v.err = sqlerr.At(pgerrcode.FeatureNotSupported, v.p.runePos(t), "%s cannot be called by a quoted name", strings.ToUpper(fc.FnName.L)).
			WithHint("write %s(...) without quotes", strings.ToUpper(fc.FnName.L))
	case t.kind == tkQIdent && fc.Tp == ast.FuncCallExprTypeKeyword:
		fc.Tp = ast.FuncCallExprTypeGeneric
	}
	return n, true
}

// callName returns the token at byte at of p.text when the user wrote
// there a call of name, quoted or not: calls TiDB builds itself (DATE_ADD
// for ts + INTERVAL ...) are at the offset of another token.
func (v *callFixer) callName(at int, name string) (token, bool) {
	toks := v.p.toks
	i := sort.Search(len(toks), func(i int) bool { return toks[i].start >= at })
	if i+1 >= len(toks) || toks[i].start != at || !toks[i+1].isOp("(") {
		return token{}, false
	}
	t := toks[i]
	return t, (t.kind == tkIdent || t.kind == tkQIdent) && t.val == name
}

// insert parses INSERT INTO source [(columns)] VALUES (...), ... with TiDB.
func (p *parser) insert() (*Insert, error) {
	s, e := p.pos, p.limit
	text, offset, params, err := p.tidbText(s, e, nil)
	if err != nil {
		return nil, err
	}
	node, err := p.parseTiDB(text, offset)
	if err != nil {
		return nil, err
	}
	if err := p.applyCasts(node, offset); err != nil {
		return nil, err
	}
	if err := p.checkCasts(s, e); err != nil {
		return nil, err
	}
	if _, err := (&callFixer{p: p, offset: offset}).check(node); err != nil {
		return nil, err
	}
	ins, ok := node.(*ast.InsertStmt)
	first := p.runePos(p.toks[s])
	switch {
	case !ok:
		return nil, sqlerr.Syntax(first, "expected an INSERT, found %s", strings.TrimPrefix(fmt.Sprintf("%T", node), "*ast."))
	case ins.Select != nil:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, first, "INSERT ... SELECT is not supported; use INSERT ... VALUES")
	case ins.Setlist:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, first, "INSERT ... SET is not supported; use INSERT ... VALUES")
	case len(ins.OnDuplicate) > 0:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, first, "INSERT ... ON DUPLICATE KEY UPDATE is not supported")
	case ins.IgnoreErr:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, first, "INSERT IGNORE is not supported")
	case len(ins.PartitionNames) > 0:
		return nil, sqlerr.At(pgerrcode.FeatureNotSupported, first, "INSERT ... PARTITION is not supported")
	}
	p.pos = e
	return &Insert{Stmt: ins, Source: p.text, Offset: offset, Params: params}, nil
}

// tidbText returns the text TiDB parses for tokens [s, e): the user's text
// from the first token to the last one not lifted, with everything else
// (spaces, comments, lifted tokens) blanked by spaces, newlines kept, so
// that a byte offset in it plus offset is a byte offset in p.text. Each
// parameter $n becomes "?" padded to the same length; params maps its
// offset to n. Unquoted words are folded to lower case (foldIdent keeps
// their length), FIRST_VALUE and LAST_VALUE calls renamed (aggAliases).
func (p *parser) tidbText(s, e int, lifted []bool) (text string, offset int, params map[int]int, err error) {
	if err := p.scanCasts(); err != nil {
		return "", 0, nil, err
	}
	last := s
	for i := s; i < e; i++ {
		if lifted == nil || !lifted[i] {
			last = i
		}
	}
	offset = p.toks[s].start
	buf := p.blank(offset, p.toks[last].end)
	for i := s; i <= last; i++ {
		if lifted != nil && lifted[i] {
			continue
		}
		n, err := p.putToken(buf, offset, i)
		if err != nil {
			return "", 0, nil, err
		}
		if n > 0 {
			if params == nil {
				params = map[int]int{}
			}
			params[p.toks[i].start-offset] = n
		}
	}
	return string(buf), offset, params, nil
}

// blank returns spaces for the bytes of p.text[offset:end], its newlines
// kept (bytes past the end of p.text are spaces too).
func (p *parser) blank(offset, end int) []byte {
	buf := make([]byte, end-offset)
	for i := range buf {
		buf[i] = ' '
		if j := offset + i; j < len(p.text) && p.text[j] == '\n' {
			buf[i] = '\n'
		}
	}
	return buf
}

// putToken writes token i, as TiDB must read it, into buf, which holds the
// text TiDB parses from byte offset of p.text on. It returns n when the
// token is the parameter $n, written as "?".
func (p *parser) putToken(buf []byte, offset, i int) (int, error) {
	t := p.toks[i]
	at := buf[t.start-offset:]
	switch {
	case p.castTok(i):
		// Blank: the cast goes back into TiDB's tree (applyCasts).
	case t.kind == tkParam:
		at[0] = '?'
		return t.n, nil
	case t.kind == tkString && t.dollar:
		return 0, sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(t), "dollar-quoted strings are not supported here").
			WithHint("write the string in single quotes, doubling any quote inside it")
	case t.kind == tkIdent:
		// Fold names (and keywords) as PostgreSQL does, so that TiDB's
		// CIStr.O of an unquoted name is the folded name and only a
		// quoted name keeps its case.
		if alias := p.aggAlias(i); alias != "" {
			copy(at, alias)
		} else {
			copy(at, t.val)
		}
	default:
		copy(at, p.text[t.start:t.end])
	}
	return 0, nil
}

// parseExpr has TiDB parse the expression sp of our clauses, in the query
// whose first token is s, and stores it in *sp.dst. TiDB reads a text laid
// out like the query's own (see tidbText; same start, so the same offset):
// blank but for "select" over the query's first SELECT keyword, "(" just
// before the expression, the expression's tokens where the user wrote
// them, and ")" over the token after it. So the offsets TiDB records in
// the expression's nodes, and those of its errors, are offsets in the
// query's text like those of Query.Select. Its parameters are added to
// q.Params. The parentheses keep TiDB from reading more than one
// expression (an alias, a FROM); the ParenthesesExpr they make is dropped.
func (p *parser) parseExpr(q *Query, s int, sp exprSpan) error {
	sel := s
	for sel < sp.a && !p.toks[sel].is("select") {
		sel++
	}
	if sel == sp.a {
		// A query that is not a SELECT (TABLE t, VALUES ROW(1)) has no
		// place for our clauses.
		return sqlerr.Syntax(p.runePos(p.toks[s]), "expected a SELECT")
	}
	offset := p.toks[s].start
	open, closing := p.toks[sp.a].start-1, p.toks[sp.b].start
	buf := p.blank(offset, closing+1)
	copy(buf[p.toks[sel].start-offset:], "select")
	buf[open-offset] = '('
	buf[closing-offset] = ')'
	var lits []intervalLit
	if sp.gap {
		var err error
		if lits, err = p.gapIntervals(sp.a, sp.b); err != nil {
			return err
		}
	}
	var params map[int]int
	for i := sp.a; i < sp.b; i++ {
		if len(lits) > 0 && lits[0].a == i {
			copy(buf[p.toks[i].start-offset:], lits[0].ms)
			i = lits[0].b - 1
			lits = lits[1:]
			continue
		}
		n, err := p.putToken(buf, offset, i)
		if err != nil {
			return err
		}
		if n > 0 {
			if params == nil {
				params = map[int]int{}
			}
			params[p.toks[i].start-offset] = n
		}
	}
	node, err := p.parseTiDB(string(buf), offset)
	if err != nil {
		return err
	}
	if err := p.applyCasts(node, offset); err != nil {
		return err
	}
	if err := p.refuse(node, s); err != nil {
		return err
	}
	var paren *ast.ParenthesesExpr
	if sel, ok := node.(*ast.SelectStmt); ok && sel.Fields != nil && len(sel.Fields.Fields) == 1 {
		paren, _ = sel.Fields.Fields[0].Expr.(*ast.ParenthesesExpr)
	}
	if paren == nil {
		// The expression's parentheses are balanced and it holds no ","
		// outside them (exprUntil, liftFilters), so TiDB read our
		// parentheses as something else: a bare SELECT as a subquery.
		return p.unexpected(p.toks[sp.a]).WithHint("a subquery is written in parentheses")
	}
	expr, err := (&callFixer{p: p, offset: offset}).check(paren.Expr)
	if err != nil {
		return err
	}
	*sp.dst = expr.(ast.ExprNode)
	addParams(q, params)
	return nil
}

// intervalLit is an interval literal of a GAP expression, tokens [a, b),
// and its value in milliseconds, padded with spaces to the literal's byte
// length.
type intervalLit struct {
	a, b int
	ms   string
}

// dateFuncs are the functions whose INTERVAL argument is TiDB's.
var dateFuncs = map[string]bool{"date_add": true, "date_sub": true, "adddate": true, "subdate": true}

// gapIntervals returns the interval literals of the GAP expression of
// tokens [a, b), which TiDB cannot read as values, as milliseconds (see
// Window.GapExpr). parseExpr writes each at the offset of its INTERVAL
// keyword, padded on the right, so that nothing else moves and the number
// TiDB reads is where the user wrote INTERVAL: its node's position, and
// errors about it, point there. Intervals that TiDB reads itself stay:
// INTERVAL(...) the function, INTERVAL expr unit, and the interval
// argument of a date function (TiDB renders ADDDATE(d, n) as ADDDATE(d,
// INTERVAL n DAY), which must read back the same).
func (p *parser) gapIntervals(a, b int) ([]intervalLit, error) {
	var lits []intervalLit
	for i := a; i+1 < b; i++ {
		t, v := p.toks[i], p.toks[i+1]
		literal := v.kind == tkString || v.kind == tkNumber || ((v.isOp("-") || v.isOp("+")) && i+2 < b && p.toks[i+2].kind == tkNumber)
		if !t.is("interval") || !literal || (i > a && p.toks[i-1].isOp(".")) || p.dateArg(a, i) {
			continue
		}
		sub := &parser{text: p.text, toks: p.toks, pos: i, limit: b}
		d, valTok, err := sub.interval()
		if err != nil {
			return nil, err
		}
		width := p.toks[sub.pos-1].end - t.start
		ms := strconv.FormatInt(d.Milliseconds(), 10)
		if len(ms) > width {
			// Unreachable: a day is 8 digits of ms; INTERVAL and the unit
			// take more room than that.
			return nil, sqlerr.Syntax(p.runePos(valTok), "interval value %q is out of range", p.text[valTok.start:valTok.end])
		}
		lits = append(lits, intervalLit{a: i, b: sub.pos, ms: ms + strings.Repeat(" ", width-len(ms))})
		i = sub.pos - 1
	}
	return lits, nil
}

// dateArg reports whether the INTERVAL at token i, inside the expression
// that starts at token a, follows the "," of a call of dateFuncs.
func (p *parser) dateArg(a, i int) bool {
	if i == a || !p.toks[i-1].isOp(",") {
		return false
	}
	depth := 0
	for j := i - 2; j > a; j-- {
		switch t := p.toks[j]; {
		case t.isOp(")"):
			depth++
		case t.isOp("(") && depth > 0:
			depth--
		case t.isOp("("):
			name := p.toks[j-1]
			return name.kind == tkIdent && dateFuncs[name.val]
		}
	}
	return false
}

// tidbMode is the SQL mode TiDB parses with. ANSI_QUOTES: "x" is an
// identifier, as in PostgreSQL. NO_BACKSLASH_ESCAPES: a backslash in a
// string is itself, as PostgreSQL drivers assume when they interpolate
// strings (standard_conforming_strings). PIPES_AS_CONCAT: || concatenates.
// IGNORE_SPACE: "sum (x)" is a call, as in PostgreSQL.
const tidbMode = mysql.ModeANSIQuotes | mysql.ModeNoBackslashEscapes | mysql.ModePipesAsConcat | mysql.ModeIgnoreSpace

// parseTiDB parses text, which sits at byte offset in p.text, as exactly
// one statement, and maps TiDB's errors to positions in p.text.
//
// Each statement gets a parser of its own. A TiDB parser allocates AST
// nodes from caches it reuses on its next ParseSQL, so a statement's tree
// is only valid until its parser parses again: a pool of parsers let one
// connection's parse overwrite another's tree (the race detector caught
// it in TestParseConcurrent).
func (p *parser) parseTiDB(text string, offset int) (ast.StmtNode, error) {
	tp := tidb.New()
	tp.SetSQLMode(tidbMode)
	stmts, _, err := tp.ParseSQL(text)
	if err != nil {
		return nil, p.tidbError(err, text, offset)
	}
	if len(stmts) != 1 {
		// Unreachable: the text holds no ';' and at least one token.
		return nil, sqlerr.Syntax(sqlerr.RunePos(p.text, offset), "expected one statement, found %d", len(stmts))
	}
	return stmts[0], nil
}

// tidbNear matches the start of TiDB's syntax errors, which lexer.go's
// Errorf formats as `line L column C near "REST"EXTRA (total length N)`,
// REST being the text from the offending token on.
var tidbNear = regexp.MustCompile(`^line \d+ column \d+ near "`)

// tidbTotal matches the suffix TiDB adds when it cuts REST at 2048 bytes.
var tidbTotal = regexp.MustCompile(`\(total length (\d+)\)$`)

// tidbError turns an error of TiDB's parser on text (at byte offset in
// p.text) into a syntax error at the offending token, worded as
// PostgreSQL does.
func (p *parser) tidbError(err error, text string, offset int) error {
	msg := err.Error()
	loc := tidbNear.FindStringIndex(msg)
	if loc == nil {
		// Errors that are not about a token (an unknown character set,
		// say): TiDB's message, without its "[parser:1115]" tag.
		if i := strings.Index(msg, "]"); strings.HasPrefix(msg, "[") && i > 0 {
			msg = msg[i+1:]
		}
		return sqlerr.Syntax(sqlerr.RunePos(p.text, offset), "%s", lowerFirst(strings.TrimSpace(msg)))
	}
	rest := msg[loc[1]:]
	near := -1 // byte offset in text of the offending token
	if m := tidbTotal.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n <= len(text) {
			near = len(text) - n
		}
	} else if n := len(rest) - 2; n >= 0 && n <= len(text) && rest[n:] == `" ` && rest[:n] == text[len(text)-n:] {
		near = len(text) - n // the usual case: no EXTRA
	} else {
		for off := 0; off <= len(text); off++ {
			if n := len(text) - off; n < len(rest) && rest[n] == '"' && rest[:n] == text[off:] {
				near = off
				break
			}
		}
	}
	if near < 0 {
		return sqlerr.Syntax(sqlerr.RunePos(p.text, offset), "syntax error: %s", strings.TrimSpace(msg))
	}
	abs := offset + near
	if strings.TrimSpace(text[near:]) == "" {
		// The text ends with its last token, maybe a parameter "?" padded
		// with spaces: the end of input is the end of that token.
		return sqlerr.Syntax(sqlerr.RunePos(p.text, offset+len(text)), "syntax error at end of input")
	}
	nearText := text[near:]
	k := 0 // index of the token TiDB stopped at, or of the one after abs
	for k < len(p.toks)-1 && p.toks[k].end <= abs {
		k++
	}
	if t := p.toks[k]; t.start <= abs {
		nearText = p.text[abs:t.end]
	}
	e := sqlerr.Syntax(sqlerr.RunePos(p.text, abs), "syntax error at or near %s", quoteNear(nearText))
	// TiDB reads a misplaced EMIT as an alias and stops at the word after.
	for _, t := range p.toks[max(k-1, 0) : k+1] {
		if t.is("emit") || t.is("allowed") {
			e.WithHint("EMIT and ALLOWED LATENESS end a query, after its FROM and all its other clauses")
		}
	}
	return e
}

// lowerFirst lower-cases the first letter of a message.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// Pos returns the 1-based character position in q.Source of a node of
// q.Select or of an expression of the lifted clauses (q.Window's, the
// conditions of q.Filters). TiDB records positions of expressions only;
// for other nodes (and expressions TiDB built itself) it returns the
// position of the start of the query.
func (q *Query) Pos(n ast.Node) int {
	return sqlerr.RunePos(q.Source, q.Offset+nodeOffset(n))
}

// ParamNumber returns n when node is the parameter $n of the query: TiDB
// parses each $n as a *test_driver.ParamMarkerExpr whose Offset is the key
// of q.Params.
func (q *Query) ParamNumber(node ast.Node) (int, bool) {
	return paramNumber(q.Params, node)
}

// Pos returns the 1-based character position in s.Source of a node of
// s.Stmt, as Query.Pos does.
func (s *Insert) Pos(n ast.Node) int {
	return sqlerr.RunePos(s.Source, s.Offset+nodeOffset(n))
}

// nodeOffset returns the byte offset TiDB recorded for n in the text it
// parsed. A parameter marker's own Offset is always set, where its
// OriginTextPosition is not (LIMIT $1).
func nodeOffset(n ast.Node) int {
	if pm, ok := n.(*test_driver.ParamMarkerExpr); ok {
		return pm.Offset
	}
	return n.OriginTextPosition()
}

// ParamNumber returns n when node is the parameter $n of the statement.
func (s *Insert) ParamNumber(node ast.Node) (int, bool) {
	return paramNumber(s.Params, node)
}

func paramNumber(params map[int]int, node ast.Node) (int, bool) {
	pm, ok := node.(*test_driver.ParamMarkerExpr)
	if !ok {
		return 0, false
	}
	n, ok := params[pm.Offset]
	return n, ok
}
