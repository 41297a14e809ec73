package expr

// A small SQL expression parser used only by the tests, so that test files
// read as SQL. It builds expressions with the package's constructors, which
// is what the planner does after binding and type checking. Constructor
// errors are returned as the parse result's error; malformed test input
// fails the test.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

type tokKind int

const (
	tkEOF tokKind = iota
	tkIdent
	tkNumber
	tkString
	tkOp
)

type token struct {
	kind tokKind
	s    string
}

// syntaxError is a malformed test input (not an expression error).
type syntaxError struct{ msg string }

// buildError carries a constructor's error out of the recursive descent.
type buildError struct{ err error }

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '\'':
			var sb strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("unterminated string in %q", src)
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						sb.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				sb.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{tkString, sb.String()})
			i = j + 1
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' ||
				(src[j] == 'e' || src[j] == 'E') ||
				(src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E')) {
				j++
			}
			toks = append(toks, token{tkNumber, src[i:j]})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{tkIdent, src[i:j]})
			i = j
		default:
			op := string(c)
			if i+1 < len(src) {
				switch two := src[i : i+2]; two {
				case "<>", "!=", "<=", ">=", "::":
					op = two
				}
			}
			if !strings.Contains("=<>!+-*/%(),:", op[:1]) {
				return nil, fmt.Errorf("unexpected character %q in %q", c, src)
			}
			toks = append(toks, token{tkOp, op})
			i += len(op)
		}
	}
	return append(toks, token{kind: tkEOF}), nil
}

type parser struct {
	toks   []token
	pos    int
	schema *arrow.Schema
}

// parseExpr parses src against schema. A malformed src is a Go error
// wrapped in syntaxError (via the second result); a constructor error is
// returned as the first error.
func parseExpr(src string, schema *arrow.Schema) (e Expr, buildErr error, syntaxErr error) {
	toks, err := lex(src)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{toks: toks, schema: schema}
	defer func() {
		switch r := recover().(type) {
		case nil:
		case buildError:
			e, buildErr = nil, r.err
		case syntaxError:
			syntaxErr = fmt.Errorf("%s in %q", r.msg, src)
		default:
			panic(r)
		}
	}()
	e = p.expr()
	if p.peek().kind != tkEOF {
		p.fail("unexpected %q", p.peek().s)
	}
	return e, nil, nil
}

func (p *parser) fail(format string, args ...any) {
	panic(syntaxError{fmt.Sprintf(format, args...)})
}

func must(e Expr, err error) Expr {
	if err != nil {
		panic(buildError{err})
	}
	return e
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

// kw consumes the keyword w if it is next.
func (p *parser) kw(w string) bool {
	if t := p.peek(); t.kind == tkIdent && strings.EqualFold(t.s, w) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) isKw(k int, w string) bool {
	if p.pos+k >= len(p.toks) {
		return false
	}
	t := p.toks[p.pos+k]
	return t.kind == tkIdent && strings.EqualFold(t.s, w)
}

func (p *parser) op(o string) bool {
	if t := p.peek(); t.kind == tkOp && t.s == o {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(o string) {
	if !p.op(o) && !p.kw(o) {
		p.fail("expected %q, found %q", o, p.peek().s)
	}
}

func (p *parser) expr() Expr {
	l := p.and()
	for p.kw("OR") {
		l = must(Or(l, p.and()))
	}
	return l
}

func (p *parser) and() Expr {
	l := p.not()
	for p.kw("AND") {
		l = must(And(l, p.not()))
	}
	return l
}

func (p *parser) not() Expr {
	if p.kw("NOT") {
		return must(Not(p.not()))
	}
	return p.is()
}

func (p *parser) is() Expr {
	l := p.cmp()
	for p.kw("IS") {
		not := p.kw("NOT")
		switch {
		case p.kw("NULL"):
			l = IsNull(l, not)
		case p.kw("TRUE"):
			l = must(IsBool(l, true, not))
		case p.kw("FALSE"):
			l = must(IsBool(l, false, not))
		default:
			p.fail("expected NULL, TRUE or FALSE after IS")
		}
	}
	return l
}

var cmpOps = map[string]CmpOp{"=": Eq, "<>": Ne, "!=": Ne, "<": Lt, "<=": Le, ">": Gt, ">=": Ge}

func (p *parser) cmp() Expr {
	l := p.pred()
	if t := p.peek(); t.kind == tkOp {
		if op, ok := cmpOps[t.s]; ok {
			p.next()
			return must(Compare(op, l, p.pred()))
		}
	}
	return l
}

func (p *parser) pred() Expr {
	l := p.add()
	for {
		not := false
		if p.isKw(0, "NOT") && (p.isKw(1, "BETWEEN") || p.isKw(1, "IN") || p.isKw(1, "LIKE") || p.isKw(1, "ILIKE")) {
			p.next()
			not = true
		}
		switch {
		case p.kw("BETWEEN"):
			lo := p.add()
			p.expect("AND")
			l = must(Between(l, lo, p.add(), not))
		case p.kw("IN"):
			p.expect("(")
			var list []Expr
			for {
				list = append(list, p.expr())
				if !p.op(",") {
					break
				}
			}
			p.expect(")")
			l = must(In(l, list, not))
		case p.kw("LIKE"):
			l = must(Like(l, p.add(), not, false))
		case p.kw("ILIKE"):
			l = must(Like(l, p.add(), not, true))
		default:
			if not {
				p.fail("dangling NOT")
			}
			return l
		}
	}
}

func (p *parser) add() Expr {
	l := p.mul()
	for {
		switch {
		case p.op("+"):
			l = must(Arith(Add, l, p.mul()))
		case p.op("-"):
			l = must(Arith(Sub, l, p.mul()))
		default:
			return l
		}
	}
}

func (p *parser) mul() Expr {
	l := p.unary()
	for {
		switch {
		case p.op("*"):
			l = must(Arith(Mul, l, p.unary()))
		case p.op("/"):
			l = must(Arith(Div, l, p.unary()))
		case p.op("%"):
			l = must(Arith(Mod, l, p.unary()))
		default:
			return l
		}
	}
}

func (p *parser) unary() Expr {
	if p.op("-") {
		return must(Neg(p.unary()))
	}
	e := p.primary()
	for p.op("::") {
		e = must(Cast(e, p.typeName()))
	}
	return e
}

func (p *parser) typeName() arrow.DataType {
	t := p.next()
	if t.kind != tkIdent {
		p.fail("expected a type name, found %q", t.s)
	}
	name := t.s
	if strings.EqualFold(name, "double") && p.kw("precision") {
		name = "double precision"
	}
	dt, err := sqltypes.FromName(name)
	if err != nil {
		p.fail("%v", err)
	}
	return dt
}

func (p *parser) primary() Expr {
	t := p.next()
	switch t.kind {
	case tkNumber:
		if strings.ContainsAny(t.s, ".eE") {
			f, err := strconv.ParseFloat(t.s, 64)
			if err != nil {
				p.fail("bad number %q", t.s)
			}
			return Literal(f, sqltypes.Float64)
		}
		i, err := strconv.ParseInt(t.s, 10, 64)
		if err != nil {
			p.fail("bad number %q", t.s)
		}
		return Literal(i, sqltypes.Int64)
	case tkString:
		return Literal(t.s, sqltypes.String)
	case tkOp:
		if t.s == "(" {
			e := p.expr()
			p.expect(")")
			return e
		}
	case tkIdent:
		switch strings.ToUpper(t.s) {
		case "NULL":
			return Literal(nil, nil)
		case "TRUE":
			return Literal(true, sqltypes.Bool)
		case "FALSE":
			return Literal(false, sqltypes.Bool)
		case "CASE":
			return p.caseExpr()
		case "CAST":
			p.expect("(")
			e := p.expr()
			p.expect("AS")
			dt := p.typeName()
			p.expect(")")
			return must(Cast(e, dt))
		case "TIMESTAMP", "TIMESTAMPTZ":
			if p.peek().kind == tkString {
				dt, _ := sqltypes.FromName(t.s)
				return must(Cast(Literal(p.next().s, sqltypes.String), dt))
			}
		}
		if p.op("(") {
			var args []Expr
			if !p.op(")") {
				for {
					args = append(args, p.expr())
					if !p.op(",") {
						break
					}
				}
				p.expect(")")
			}
			return must(Func(t.s, args))
		}
		if p.schema != nil {
			for i, f := range p.schema.Fields() {
				if strings.EqualFold(f.Name, t.s) {
					return Column(i, f.Name, f.Type)
				}
			}
		}
		p.fail("unknown column %q", t.s)
	}
	p.fail("unexpected %q", t.s)
	return nil
}

func (p *parser) caseExpr() Expr {
	var operand Expr
	if !p.isKw(0, "WHEN") {
		operand = p.expr()
	}
	var whens []When
	for p.kw("WHEN") {
		c := p.expr()
		p.expect("THEN")
		whens = append(whens, When{Cond: c, Then: p.expr()})
	}
	var els Expr
	if p.kw("ELSE") {
		els = p.expr()
	}
	p.expect("END")
	return must(Case(operand, whens, els))
}
