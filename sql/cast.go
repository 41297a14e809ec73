package sql

import (
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// PostgreSQL's casts, expr::type, which TiDB does not read.
//
// The "::" and the type's tokens are blanked in the text TiDB parses, like
// our lifted clauses, so every other token keeps its offset; the cast is
// then put back into TiDB's tree as the CAST(expr AS type) TiDB would have
// built, around the node that starts where the operand starts. "::" binds
// tighter than any operator, so its operand is what the tokens right
// before it can form on their own: a literal (with DATE, TIME, TIMESTAMP
// or a glued x, b, n or _charset prefix), a parameter, a name (maybe
// qualified), a call (maybe followed by FILTER (...)), a parenthesized
// expression, CASE ... END, or a cast (x::a::b casts x twice). TiDB gives
// every expression node the offset of its first token, and the operand's
// node is the deepest one at the operand's offset (a + b starts where a
// does, and a is deeper): that is the node wrapped. When there is none
// there (the tokens before "::" are not an expression TiDB has a node
// for, as in "SELECT ::int" or "ORDER BY 1::int"), the statement fails
// with a syntax error at the "::".

// castSpan is one "::type" of the statement.
type castSpan struct {
	colon int // index of the "::" token
	end   int // index of the token after the type
	// cands are the indices of the tokens where the operand may start, the
	// likeliest first: a call's name, then its "(" (NOT (a) is no call);
	// a typed literal's type word, then its string.
	cands []int
	call  bool // cands[0] is a call's name: only a call node there is the operand
	// target is the CAST TiDB builds for the engine's type, whose Tp is
	// cloned for each use; nil when err is set.
	target *ast.FuncCastExpr
	// err is why the type is not one to cast to (unknown, or not one of the
	// engine's). It is reported once TiDB has read the statement, so that
	// syntax errors come first, as in PostgreSQL.
	err  *sqlerr.Error
	done bool // put into a tree
}

// castInfo holds the casts of a statement.
type castInfo struct {
	spans []*castSpan
	tok   []bool // tok[i]: token i is a "::" or part of a cast's type
}

// castTok reports whether token i is part of a "::type" (which TiDB must
// not see).
func (p *parser) castTok(i int) bool {
	return p.casts != nil && i < len(p.casts.tok) && p.casts.tok[i]
}

// scanCasts finds the casts of the statement, tokens [0, p.limit), once.
// It fails on a "::" that follows no operand or is followed by no type;
// what the type is is checked later (castSpan.err).
func (p *parser) scanCasts() error {
	if p.casts != nil {
		return nil
	}
	ci := &castInfo{tok: make([]bool, len(p.toks))}
	p.casts = ci
	for i := 0; i < p.limit; i++ {
		if !p.toks[i].isOp("::") {
			continue
		}
		sp := &castSpan{colon: i}
		if err := p.castOperand(sp); err != nil {
			return err
		}
		if err := p.castType(sp); err != nil {
			return err
		}
		for j := i; j < sp.end; j++ {
			ci.tok[j] = true
		}
		ci.spans = append(ci.spans, sp)
		i = sp.end - 1
	}
	return nil
}

// castHint is the hint of syntax errors at a "::".
const castHint = "expr::type casts a literal, a parameter, a name, a call or a parenthesized expression"

// castOperand finds where the operand of the cast at sp.colon may start.
func (p *parser) castOperand(sp *castSpan) error {
	bad := func() error {
		return p.unexpected(p.toks[sp.colon]).WithHint(castHint)
	}
	j := sp.colon - 1
	if j < 0 {
		return bad()
	}
	if p.castTok(j) {
		// x::a::b: the operand of the second is the first cast.
		prev := p.casts.spans[len(p.casts.spans)-1]
		sp.cands, sp.call = prev.cands, prev.call
		return nil
	}
	t := p.toks[j]
	switch {
	case t.isOp(")"):
		for {
			o := p.matchOpen(j)
			if o < 0 {
				return bad()
			}
			// count(*) FILTER (WHERE x)::int casts the filtered aggregate.
			if o >= 2 && p.toks[o-1].is("filter") && p.toks[o-2].isOp(")") {
				j = o - 2
				continue
			}
			if o >= 1 && isName(p.toks[o-1]) {
				sp.cands, sp.call = []int{p.qualified(o - 1), o}, true
			} else {
				sp.cands = []int{o}
			}
			return nil
		}
	case t.is("end"):
		if c := p.matchCase(j); c >= 0 {
			sp.cands = []int{c}
			return nil
		}
		sp.cands = []int{p.qualified(j)}
	case t.kind == tkIdent && notOperands[t.val]:
		return bad()
	case isName(t):
		sp.cands = []int{p.qualified(j)}
	case t.kind == tkString:
		sp.cands = []int{j}
		if j >= 1 && p.toks[j-1].kind == tkIdent {
			w := p.toks[j-1]
			glued := w.end == t.start && !t.dollar && (w.val == "x" || w.val == "b" || w.val == "n" || strings.HasPrefix(w.val, "_"))
			if glued || typedLiterals[w.val] {
				sp.cands = []int{j - 1, j}
			}
		}
	case t.kind == tkNumber || t.kind == tkParam:
		sp.cands = []int{j}
	default:
		return bad()
	}
	return nil
}

// notOperands are the keywords that end no expression, before "::" (so
// that "SELECT ::int" fails at the "::", not at the end of the input).
var notOperands = map[string]bool{
	"select": true, "from": true, "where": true, "and": true, "or": true, "not": true, "by": true,
	"on": true, "as": true, "in": true, "is": true, "like": true, "between": true, "when": true,
	"then": true, "else": true, "case": true, "having": true, "limit": true, "offset": true,
	"distinct": true, "all": true, "with": true, "union": true, "except": true, "intersect": true,
	"join": true, "using": true, "values": true, "into": true, "set": true, "insert": true,
}

// typedLiterals are the type words TiDB reads before a string as one
// literal (DATE '2024-01-01').
var typedLiterals = map[string]bool{"date": true, "time": true, "timestamp": true}

func isName(t token) bool { return t.kind == tkIdent || t.kind == tkQIdent }

// qualified returns the index of the first part of the dotted name whose
// last part is token k.
func (p *parser) qualified(k int) int {
	for k >= 2 && p.toks[k-1].isOp(".") && isName(p.toks[k-2]) {
		k -= 2
	}
	return k
}

// matchOpen returns the index of the "(" that the ")" at j closes, or -1.
func (p *parser) matchOpen(j int) int {
	depth := 0
	for k := j; k >= 0; k-- {
		switch {
		case p.toks[k].isOp(")"):
			depth++
		case p.toks[k].isOp("("):
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

// matchCase returns the index of the CASE that the END at j closes, or -1.
func (p *parser) matchCase(j int) int {
	depth := 0
	for k := j; k >= 0; k-- {
		switch {
		case p.toks[k].is("end"):
			depth++
		case p.toks[k].is("case"):
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

// castType reads the type after the "::" at sp.colon, PostgreSQL's type
// names: a name, maybe qualified by pg_catalog, or quoted; DOUBLE
// PRECISION, CHARACTER VARYING and the like; TIMESTAMP [(p)] WITH[OUT]
// TIME ZONE; modifiers in parentheses. It sets sp.end, and sp.target or
// sp.err.
func (p *parser) castType(sp *castSpan) error {
	i := sp.colon + 1
	first := p.at(i)
	schema := ""
	if isName(first) && p.at(i+1).isOp(".") {
		schema = first.val
		i += 2
	}
	t := p.at(i)
	if !isName(t) {
		return p.unexpected(t).WithHint("a cast is written expr::type")
	}
	i++
	name := t.val
	if t.kind == tkIdent {
		words := func(ws ...string) bool {
			for k, w := range ws {
				if !p.at(i + k).is(w) {
					return false
				}
			}
			i += len(ws)
			return true
		}
		switch name {
		case "double":
			if words("precision") {
				name = "double precision"
			}
		case "national":
			if !words("character") && !words("char") {
				return p.unexpected(p.at(i))
			}
			name = "character"
			fallthrough
		case "character", "char", "nchar":
			if words("varying") {
				name = "character varying"
			}
		case "bit":
			if words("varying") {
				name = "bit varying"
			}
		case "time", "timestamp":
			if p.at(i).isOp("(") {
				var err error
				if i, err = p.typeModifiers(i, name); err != nil {
					return err
				}
			}
			switch {
			case words("with", "time", "zone"):
				name += " with time zone"
			case words("without", "time", "zone"):
				name += " without time zone"
			}
		}
	}
	if p.at(i).isOp("(") {
		var err error
		if i, err = p.typeModifiers(i, name); err != nil {
			return err
		}
	}
	if b := p.at(i); b.isOp("[") {
		return sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(b), "arrays are not supported")
	}
	sp.end = i

	full := name
	if schema != "" {
		full = schema + "." + name
	}
	ct, known := pgCastTypes[name]
	switch {
	case schema != "" && schema != "pg_catalog", !known, t.kind == tkQIdent && strings.Contains(name, " "):
		sp.err = sqlerr.At(pgerrcode.UndefinedObject, p.runePos(first), "type %q does not exist", full)
	case ct.tidb == "" && ct.name == "boolean":
		sp.err = sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(first), "cannot cast to type boolean").
			WithHint("compare instead: x = 'true', x <> 0")
	case ct.tidb == "":
		sp.err = sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(first), "cannot cast to type %s", ct.name).
			WithHint("expr::type casts to bigint, double precision, text, timestamp and timestamptz (and their other names)")
	case ct.name == "timestamp with time zone" && len(sp.cands) == 1 && p.toks[sp.cands[0]].kind == tkString &&
		zoneRe.MatchString(p.toks[sp.cands[0]].val) && !utcRe.MatchString(p.toks[sp.cands[0]].val):
		// x::timestamptz casts as x::timestamp does, which ignores a zone
		// in the text, as PostgreSQL's timestamp does.
		lit := p.toks[sp.cands[0]]
		sp.err = sqlerr.At(pgerrcode.FeatureNotSupported, p.runePos(lit), "a time zone in a timestamptz literal is not supported").
			WithHint("write the time in UTC, the engine's time zone")
	default:
		sp.target = castTemplates()[ct.tidb]
	}
	return nil
}

// zoneRe matches a timestamp text that ends with a time zone (an offset
// or a name) after its time; utcRe one whose zone is UTC.
var (
	zoneRe = regexp.MustCompile(`:\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[+-]\d{1,2}(?::?\d{2})?|[A-Za-z][A-Za-z/_+-]*)\s*$`)
	utcRe  = regexp.MustCompile(`(?i):\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[+-]0{1,2}(?::?00)?|z|utc|gmt)\s*$`)
)

// typeModifiers reads the modifiers "(n [, n])" of a type at token i and
// returns the index after them. The engine's types have no length or
// precision, so they are checked and dropped.
func (p *parser) typeModifiers(i int, name string) (int, error) {
	open := p.at(i)
	if !takesModifiers[name] {
		return 0, sqlerr.Syntax(p.runePos(open), "type modifier is not allowed for type %q", name)
	}
	i++
	for n := 0; ; n++ {
		t := p.at(i)
		if t.kind != tkNumber || n == 2 {
			return 0, p.unexpected(t)
		}
		i++
		if p.at(i).isOp(")") {
			return i + 1, nil
		}
		if !p.at(i).isOp(",") {
			return 0, p.unexpected(p.at(i))
		}
		i++
	}
}

// takesModifiers are the types that take modifiers in parentheses.
var takesModifiers = map[string]bool{
	"character": true, "character varying": true, "varchar": true, "char": true, "nchar": true, "bpchar": true,
	"numeric": true, "decimal": true, "dec": true, "float": true, "time": true, "timestamp": true,
	"bit": true, "bit varying": true, "varbit": true, "interval": true, "timetz": true, "timestamptz": true,
}

// pgCastType is what a PostgreSQL type name casts to: name is
// PostgreSQL's name of the type (as messages print it), tidb the CAST
// target TiDB reads for the engine's type, or "" when the engine has no
// such type.
type pgCastType struct{ name, tidb string }

// pgCastTypes maps PostgreSQL's type names (lower case, words separated by
// one space) to what a cast to them becomes. The engine's integers are
// BIGINT (SIGNED), its floating and numeric types DOUBLE PRECISION, its
// character types TEXT (CHAR) and its timestamps milliseconds in UTC:
// TIMESTAMPTZ casts as TIMESTAMP does (DATETIME), to the same instant,
// typed TIMESTAMP (the planner reads TiDB's CAST types, which have no
// time zone); so a literal with a time zone other than UTC is refused
// (castType), as TIMESTAMP would ignore the zone. Lengths, precisions
// and scales are dropped.
var pgCastTypes = map[string]pgCastType{}

func init() {
	for tidb, names := range map[string][]string{
		"SIGNED":   {"bigint", "int8", "integer", "int", "int4", "smallint", "int2"},
		"DOUBLE":   {"double precision", "float8", "float", "real", "float4", "numeric", "decimal", "dec"},
		"CHAR":     {"text", "character varying", "varchar", "character", "char", "bpchar", "nchar", "name"},
		"DATETIME": {"timestamp", "timestamp without time zone", "timestamptz", "timestamp with time zone"},
		"":         {"boolean", "bool", "date", "time", "time without time zone", "time with time zone", "timetz", "interval", "json", "jsonb", "bytea", "uuid", "oid", "regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper", "regoperator", "regconfig", "regdictionary", "xml", "inet", "cidr", "macaddr", "macaddr8", "money", "bit", "bit varying", "varbit", "point", "line", "lseg", "box", "path", "polygon", "circle", "tsvector", "tsquery", "xid", "cid", "tid", "record", "void", "unknown"},
	} {
		for _, n := range names {
			pgCastTypes[n] = pgCastType{name: n, tidb: tidb}
		}
	}
	for alias, name := range map[string]string{
		"int8": "bigint", "int": "integer", "int4": "integer", "int2": "smallint", "float8": "double precision",
		"float": "double precision", "float4": "real", "decimal": "numeric", "dec": "numeric", "varchar": "character varying",
		"char": "character", "bpchar": "character", "nchar": "character", "timestamp": "timestamp without time zone",
		"timestamptz": "timestamp with time zone", "bool": "boolean", "time": "time without time zone",
		"timetz": "time with time zone", "varbit": "bit varying",
	} {
		ct := pgCastTypes[alias]
		ct.name = name
		pgCastTypes[alias] = ct
	}
}

// castTemplates returns the CAST nodes TiDB builds for each CAST target
// of pgCastTypes, parsed once so that a cast reads back exactly as TiDB
// parses it.
var castTemplates = sync.OnceValue(func() map[string]*ast.FuncCastExpr {
	targets := []string{"SIGNED", "DOUBLE", "CHAR", "DATETIME"}
	text := "select cast(1 as " + strings.Join(targets, "), cast(1 as ") + ")"
	p := &parser{text: text}
	node, err := p.parseTiDB(text, 0)
	if err != nil {
		panic("sql: TiDB does not parse its own CASTs: " + err.Error())
	}
	m := map[string]*ast.FuncCastExpr{}
	for i, f := range node.(*ast.SelectStmt).Fields.Fields {
		m[targets[i]] = f.Expr.(*ast.FuncCastExpr)
	}
	// TiDB types CAST(x AS CHAR) VAR_STRING, which is what its field
	// type's name says (the planner reads that name); CHAR renders the
	// same CAST and is named CHAR.
	m["CHAR"].Tp.SetType(mysql.TypeString)
	return m
})

// applyCasts puts the casts whose operands are in root, a statement TiDB
// parsed from a text at byte offset in p.text, into it. It fails on the
// first such cast whose type is not one to cast to, and on a cast where
// TiDB's grammar takes no expression (LIMIT $1::int).
func (p *parser) applyCasts(root ast.StmtNode, offset int) error {
	if p.casts == nil || len(p.casts.spans) == 0 {
		return nil
	}
	f := deepest{at: map[int]ast.ExprNode{}}
	root.Accept(&f)
	targets := map[ast.Node][]*castSpan{}
	for _, sp := range p.casts.spans {
		if sp.done {
			continue
		}
		for k, c := range sp.cands {
			// Nodes TiDB builds itself have offset 0, that of the text's
			// first token, which is never an operand.
			rel := p.toks[c].start - offset
			n, ok := f.at[rel]
			if rel <= 0 || !ok || (k == 0 && sp.call && !isCall(n)) {
				continue
			}
			if sp.err != nil {
				return sp.err
			}
			targets[n] = append(targets[n], sp)
			sp.done = true
			break
		}
	}
	if len(targets) == 0 {
		return nil
	}
	// A statement is never an operand: the walk keeps root.
	w := &castWrapper{p: p, targets: targets}
	root.Accept(w)
	return w.err
}

// checkCasts fails on the first cast in tokens [s, e) that no tree took:
// its operand is nothing TiDB made an expression of.
func (p *parser) checkCasts(s, e int) error {
	if p.casts == nil {
		return nil
	}
	for _, sp := range p.casts.spans {
		if !sp.done && sp.colon >= s && sp.colon < e {
			return p.unexpected(p.toks[sp.colon]).WithHint(castHint)
		}
	}
	return nil
}

// isCall reports whether n is what a name followed by parentheses makes.
func isCall(n ast.ExprNode) bool {
	switch n.(type) {
	case *ast.FuncCallExpr, *ast.AggregateFuncExpr, *ast.WindowFuncExpr, *ast.FuncCastExpr,
		*ast.ExistsSubqueryExpr, *ast.RowExpr, *ast.DefaultExpr, *ast.ValuesExpr:
		return true
	}
	return false
}

// deepest finds, for each offset, the deepest expression node there: the
// first one left (a walk leaves children before their parents).
type deepest struct{ at map[int]ast.ExprNode }

func (v *deepest) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (v *deepest) Leave(n ast.Node) (ast.Node, bool) {
	if e, ok := n.(ast.ExprNode); ok {
		if _, seen := v.at[nodeOffset(e)]; !seen {
			v.at[nodeOffset(e)] = e
		}
	}
	return n, true
}

// castWrapper replaces each node of targets by its casts, innermost (the
// first written) first.
type castWrapper struct {
	p       *parser
	targets map[ast.Node][]*castSpan
	stack   []ast.Node // the nodes entered and not yet left
	err     error
}

func (v *castWrapper) Enter(n ast.Node) (ast.Node, bool) {
	v.stack = append(v.stack, n)
	return n, false
}

func (v *castWrapper) Leave(n ast.Node) (ast.Node, bool) {
	v.stack = v.stack[:len(v.stack)-1]
	spans, ok := v.targets[n]
	if !ok || v.err != nil {
		return n, true
	}
	var parent ast.Node
	if len(v.stack) > 0 {
		parent = v.stack[len(v.stack)-1]
	}
	if _, limit := parent.(*ast.Limit); limit && isInteger(n) && allSigned(spans) {
		// LIMIT $1::int: LIMIT takes an integer, which the cast does
		// not change, and TiDB's grammar takes no cast there.
		return n, true
	}
	if !castAllowed(parent, n) {
		v.err = sqlerr.At(pgerrcode.FeatureNotSupported, v.p.runePos(v.p.toks[spans[0].colon]), "a cast is not supported here")
		return n, true
	}
	var out ast.ExprNode = n.(ast.ExprNode)
	for _, sp := range spans {
		c := &ast.FuncCastExpr{Expr: out, Tp: sp.target.Tp.Clone(), FunctionType: ast.CastFunction, ExplicitCharSet: sp.target.ExplicitCharSet}
		c.SetOriginTextPosition(out.OriginTextPosition())
		out = c
	}
	return out, true
}

// isInteger reports whether n is a parameter or an integer literal.
func isInteger(n ast.Node) bool {
	switch n := n.(type) {
	case *test_driver.ParamMarkerExpr:
		return true
	case *test_driver.ValueExpr:
		k := n.Kind()
		return k == test_driver.KindInt64 || k == test_driver.KindUint64
	}
	return false
}

// allSigned reports whether every cast of spans is to an integer.
func allSigned(spans []*castSpan) bool {
	for _, sp := range spans {
		if sp.target != castTemplates()["SIGNED"] {
			return false
		}
	}
	return true
}

// castAllowed reports whether the expression n may be replaced by a cast
// under parent: TiDB's grammar takes only literals or parameters in LIMIT
// and window frames, only a subquery after IN, ANY and EXISTS and in a
// WITH, and some of its nodes hold a child of one type only.
func castAllowed(parent, n ast.Node) bool {
	switch pn := parent.(type) {
	case *ast.Limit, *ast.FrameBound, *ast.ValuesExpr, *ast.CommonTableExpression, *ast.TableSource:
		return false
	case *ast.SelectStmt:
		_, row := n.(*ast.RowExpr)
		return !row
	case *ast.CompareSubqueryExpr:
		return n != pn.R
	case *ast.PatternInExpr:
		return n != pn.Sel
	case *ast.ExistsSubqueryExpr:
		return n != pn.Sel
	}
	return true
}
