package expr

import (
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

type like struct {
	e, pattern Expr
	not, ci    bool
	m          *likeMatcher // compiled constant pattern, or nil
}

// Like returns e LIKE pattern (ILIKE when caseInsensitive, negated when
// not). In the pattern % matches any sequence of characters, _ exactly one
// character (a UTF-8 code point), and a backslash makes the next character
// literal; a pattern ending in a lone backslash is 22025. ILIKE compares
// strings.ToLower of both sides. A constant pattern is compiled once; any
// other pattern is compiled once per distinct value in a batch. NULL on
// either side gives NULL. Both sides must be TEXT (42883 otherwise).
func Like(e, pattern Expr, not bool, caseInsensitive bool) (Expr, error) {
	et, pt := e.Type(), pattern.Type()
	if !(isString(et) || isNullType(et)) || !(isString(pt) || isNullType(pt)) {
		return nil, errOperator(likeOpName(not, caseInsensitive), et, pt)
	}
	x := &like{e: e, pattern: pattern, not: not, ci: caseInsensitive}
	if l, ok := asLiteral(pattern); ok && !l.null && isString(l.typ) {
		m, err := compileLike(l.s, caseInsensitive)
		if err != nil {
			return nil, err
		}
		x.m = m
	}
	return x, nil
}

// likeOpName is PostgreSQL's operator name, as its errors print it.
func likeOpName(not, ci bool) string {
	switch {
	case not && ci:
		return "!~~*"
	case not:
		return "!~~"
	case ci:
		return "~~*"
	}
	return "~~"
}

func (x *like) Type() arrow.DataType { return sqltypes.Bool }
func (x *like) String() string {
	op := " LIKE "
	if x.ci {
		op = " ILIKE "
	}
	if x.not {
		op = " NOT" + op
	}
	return "(" + x.e.String() + op + x.pattern.String() + ")"
}

func (x *like) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if isNullLiteral(x.e) || isNullLiteral(x.pattern) {
		return array.MakeArrayOfNull(mem, sqltypes.Bool, n), nil
	}
	a, err := x.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	s := a.(*array.String)
	vals := newBitmap(mem, n, false)
	out := vals.Bytes()
	if x.m != nil {
		valid := andValidity(mem, n, a)
		for i := range n {
			if s.IsValid(i) {
				out[i>>3] |= b2u(x.m.match(s.Value(i)) != x.not) << (i & 7)
			}
		}
		return newBool(n, valid, vals), nil
	}
	pa, err := x.pattern.Eval(mem, b)
	if err != nil {
		vals.Release()
		return nil, err
	}
	defer pa.Release()
	p := pa.(*array.String)
	valid := andValidity(mem, n, a, pa)
	cache := map[string]*likeMatcher{}
	for i := range n {
		if s.IsNull(i) || p.IsNull(i) {
			continue
		}
		ps := p.Value(i)
		m, ok := cache[ps]
		if !ok {
			if m, err = compileLike(ps, x.ci); err != nil {
				vals.Release()
				if valid != nil {
					valid.Release()
				}
				return nil, err
			}
			cache[strings.Clone(ps)] = m
		}
		out[i>>3] |= b2u(m.match(s.Value(i)) != x.not) << (i & 7)
	}
	return newBool(n, valid, vals), nil
}

// likeKind selects a fast path for common pattern shapes.
type likeKind int

const (
	likeGeneral  likeKind = iota
	likeExact             // abc
	likePrefix            // abc%
	likeSuffix            // %abc
	likeContains          // %abc%
	likeAny               // %
)

// likeElem is one pattern character: a literal rune, or any rune for _.
type likeElem struct {
	any bool
	r   rune
}

// likeSeg is a run of pattern characters between %s.
type likeSeg struct {
	elems []likeElem
	lit   string // the segment as a string when it has no _
	plain bool   // no _ in the segment
}

type likeMatcher struct {
	kind     likeKind
	lit      string // for the fast paths
	ci       bool
	segs     []likeSeg
	leadPct  bool // pattern starts with %
	trailPct bool // pattern ends with %
}

func compileLike(p string, ci bool) (*likeMatcher, error) {
	if ci {
		p = strings.ToLower(p)
	}
	m := &likeMatcher{ci: ci}
	var cur []likeElem
	flush := func() {
		if len(cur) == 0 {
			return
		}
		seg := likeSeg{elems: cur, plain: true}
		var sb strings.Builder
		for _, e := range cur {
			if e.any {
				seg.plain = false
			} else {
				sb.WriteRune(e.r)
			}
		}
		if seg.plain {
			seg.lit = sb.String()
		}
		m.segs = append(m.segs, seg)
		cur = nil
	}
	sawPct := false
	for i := 0; i < len(p); {
		r, w := utf8.DecodeRuneInString(p[i:])
		i += w
		switch r {
		case '%':
			if len(m.segs) == 0 && len(cur) == 0 {
				m.leadPct = true
			}
			sawPct = true
			flush()
			m.trailPct = true
			continue
		case '_':
			cur = append(cur, likeElem{any: true})
		case '\\':
			if i >= len(p) {
				return nil, sqlerr.New(pgerrcode.InvalidEscapeSequence, "LIKE pattern must not end with escape character")
			}
			r, w = utf8.DecodeRuneInString(p[i:])
			i += w
			cur = append(cur, likeElem{r: r})
		default:
			cur = append(cur, likeElem{r: r})
		}
		m.trailPct = false
	}
	flush()
	switch {
	case len(m.segs) == 0 && sawPct:
		m.kind = likeAny
	case len(m.segs) == 0:
		m.kind, m.lit = likeExact, ""
	case len(m.segs) == 1 && m.segs[0].plain:
		m.lit = m.segs[0].lit
		switch {
		case !m.leadPct && !m.trailPct:
			m.kind = likeExact
		case !m.leadPct:
			m.kind = likePrefix
		case !m.trailPct:
			m.kind = likeSuffix
		default:
			m.kind = likeContains
		}
	}
	return m, nil
}

func (m *likeMatcher) match(s string) bool {
	if m.ci {
		s = strings.ToLower(s)
	}
	switch m.kind {
	case likeAny:
		return true
	case likeExact:
		return s == m.lit
	case likePrefix:
		return strings.HasPrefix(s, m.lit)
	case likeSuffix:
		return strings.HasSuffix(s, m.lit)
	case likeContains:
		return strings.Contains(s, m.lit)
	}
	segs := m.segs
	pos := 0
	if !m.leadPct {
		end, ok := matchSegAt(segs[0], s, 0)
		if !ok {
			return false
		}
		pos = end
		segs = segs[1:]
		if len(segs) == 0 {
			return m.trailPct || pos == len(s)
		}
	}
	// The last segment is anchored at the end unless a % follows it; the
	// ones between are placed leftmost, which leaves the most room.
	last := len(segs)
	if !m.trailPct {
		last--
	}
	for _, seg := range segs[:last] {
		end, ok := findSeg(seg, s, pos)
		if !ok {
			return false
		}
		pos = end
	}
	if m.trailPct {
		return true
	}
	seg := segs[last]
	start := len(s)
	for range seg.elems {
		if start <= pos {
			return false
		}
		_, w := utf8.DecodeLastRuneInString(s[:start])
		start -= w
	}
	end, ok := matchSegAt(seg, s, start)
	return ok && end == len(s)
}

// matchSegAt matches seg at byte position pos of s and returns the end.
func matchSegAt(seg likeSeg, s string, pos int) (int, bool) {
	if seg.plain {
		if strings.HasPrefix(s[pos:], seg.lit) {
			return pos + len(seg.lit), true
		}
		return 0, false
	}
	for _, e := range seg.elems {
		if pos >= len(s) {
			return 0, false
		}
		r, w := utf8.DecodeRuneInString(s[pos:])
		if !e.any && r != e.r {
			return 0, false
		}
		pos += w
	}
	return pos, true
}

// findSeg finds the leftmost match of seg in s at or after pos.
func findSeg(seg likeSeg, s string, pos int) (int, bool) {
	if seg.plain {
		i := strings.Index(s[pos:], seg.lit)
		if i < 0 {
			return 0, false
		}
		return pos + i + len(seg.lit), true
	}
	for p := pos; p <= len(s); {
		if end, ok := matchSegAt(seg, s, p); ok {
			return end, true
		}
		if p == len(s) {
			break
		}
		_, w := utf8.DecodeRuneInString(s[p:])
		p += w
	}
	return 0, false
}
