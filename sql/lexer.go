package sql

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tkEOF    tokKind = iota
	tkIdent          // unquoted identifier or keyword
	tkQIdent         // "quoted" or `quoted` identifier
	tkString         // 'string' or $tag$string$tag$
	tkNumber         // 123, 1.5, 1e3 (and TiDB's 0x1F, 1abc: digits followed by word characters)
	tkParam          // $n, a parameter of the extended protocol
	tkOp             // operator or punctuation
)

// token is one token of a statement. start and end are byte offsets into
// the lexed text, [start, end).
type token struct {
	kind       tokKind
	start, end int
	// val depends on kind: tkIdent the name folded to lower case; tkQIdent
	// the name as written, quotes removed; tkString the contents; tkParam
	// the number n; otherwise the text as written.
	val    string
	n      int  // tkParam: n of $n
	dollar bool // tkString: dollar-quoted
	pos    int  // 1-based character position of start, as errors report it
}

// is reports whether t is the unquoted keyword kw (given in lower case).
func (t token) is(kw string) bool { return t.kind == tkIdent && t.val == kw }

// isOp reports whether t is the operator or punctuation op.
func (t token) isOp(op string) bool { return t.kind == tkOp && t.val == op }

// multiOps are the operators of more than one character, longest first so
// that a prefix never wins over a longer match.
var multiOps = []string{"<=>", "->>", "<=", ">=", "<>", "!=", "::", ":=", "||", "&&", "<<", ">>", "->"}

// lex splits text into tokens, skipping spaces and comments, and ends the
// list with a tkEOF token placed at the end of the last token (so an error
// "at end of input" points just after the statement's last word).
//
// The lexical rules are PostgreSQL's where PostgreSQL and MySQL differ,
// because the text reaches TiDB with every comment blanked out and every
// parameter replaced (see parser.tidbText), and TiDB runs with ANSI_QUOTES
// and NO_BACKSLASH_ESCAPES: so strings, quoted identifiers and tokens end
// where this lexer says. "-- " and "--x" both start a comment, block
// comments nest, backslashes in strings are ordinary characters, and a
// doubled quote character inside quotes stands for one. '#' (a MySQL
// comment), '?' (a MySQL parameter) and '@' (MySQL variables) are
// rejected: TiDB would read them differently from us, or they mean nothing
// to the engine.
func lex(text string) ([]token, error) {
	var toks []token
	// Character positions are counted as the tokens go, so that a long
	// statement does not cost a count from its start for every position.
	counted, runes := 0, 0
	charPos := func(off int) int {
		runes += utf8.RuneCountInString(text[counted:off])
		counted = off
		return runes + 1
	}
	i := 0
	for {
		i = skipSpace(text, i)
		if i >= len(text) {
			break
		}
		c := text[i]
		switch {
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			i = lineCommentEnd(text, i)
			continue
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end, ok := blockCommentEnd(text, i)
			if !ok {
				return nil, sqlerr.Syntax(sqlerr.RunePos(text, i), "unterminated /* comment at or near %s", quoteNear(text[i:]))
			}
			i = end
			continue
		}
		t, err := lexOne(text, i)
		if err != nil {
			return nil, err
		}
		t.pos = charPos(t.start)
		toks = append(toks, t)
		i = t.end
	}
	eof := 0
	if len(toks) > 0 {
		eof = toks[len(toks)-1].end
	}
	toks = append(toks, token{kind: tkEOF, start: eof, end: eof, pos: charPos(eof)})
	return toks, nil
}

// lexOne scans the token that starts at text[i], which is neither a space
// nor the start of a comment.
func lexOne(text string, i int) (token, error) {
	c := text[i]
	switch {
	case c == '\'':
		end, ok := quotedEnd(text, i)
		if !ok {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "unterminated quoted string at or near %s", quoteNear(text[i:]))
		}
		return token{kind: tkString, start: i, end: end, val: unquote(text[i:end])}, nil
	case c == '"' || c == '`':
		end, ok := quotedEnd(text, i)
		if !ok {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "unterminated quoted identifier at or near %s", quoteNear(text[i:]))
		}
		if end == i+2 {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "zero-length delimited identifier at or near %s", quoteNear(text[i:end]))
		}
		return token{kind: tkQIdent, start: i, end: end, val: unquote(text[i:end])}, nil
	case c == '$':
		return lexDollar(text, i)
	case isDigit(c) || (c == '.' && i+1 < len(text) && isDigit(text[i+1])):
		end := numberEnd(text, i)
		if digits := countDigits(text[i:end]); digits > maxNumberDigits {
			return token{}, sqlerr.At(pgerrcode.NumericValueOutOfRange, sqlerr.RunePos(text, i),
				"numeric literal has %d digits, more than %d", digits, maxNumberDigits)
		}
		return token{kind: tkNumber, start: i, end: end, val: text[i:end]}, nil
	case isIdentStart(c):
		end := identEnd(text, i)
		return token{kind: tkIdent, start: i, end: end, val: foldIdent(text[i:end])}, nil
	case c == '?':
		return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "syntax error at or near \"?\"").
			WithHint("parameters are written $1, $2, ...")
	case c == '#' || c == '@' || c < ' ' || c == 0x7f:
		return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "syntax error at or near %s", quoteNear(text[i:i+1]))
	}
	for _, op := range multiOps {
		if strings.HasPrefix(text[i:], op) {
			return token{kind: tkOp, start: i, end: i + len(op), val: op}, nil
		}
	}
	return token{kind: tkOp, start: i, end: i + 1, val: text[i : i+1]}, nil
}

// lexDollar scans a token starting with '$': a parameter $n or a
// dollar-quoted string $tag$...$tag$.
func lexDollar(text string, i int) (token, error) {
	if i+1 < len(text) && isDigit(text[i+1]) {
		end := i + 1
		for end < len(text) && isDigit(text[end]) {
			end++
		}
		if end < len(text) && isIdentChar(text[end]) {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "trailing junk after parameter at or near %s", quoteNear(text[i:identEnd(text, end)]))
		}
		n := 0
		for _, d := range text[i+1 : end] {
			n = n*10 + int(d-'0')
			if n > 65535 {
				// PostgreSQL's Bind message counts parameters in an int16.
				return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "parameter number too large at or near %s", quoteNear(text[i:end]))
			}
		}
		if n == 0 {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "there is no parameter $0")
		}
		return token{kind: tkParam, start: i, end: end, val: text[i:end], n: n}, nil
	}
	if tagEnd, ok := dollarTagEnd(text, i); ok {
		tag := text[i:tagEnd]
		j := strings.Index(text[tagEnd:], tag)
		if j < 0 {
			return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "unterminated dollar-quoted string at or near %s", quoteNear(text[i:]))
		}
		end := tagEnd + j + len(tag)
		return token{kind: tkString, start: i, end: end, val: text[tagEnd : tagEnd+j], dollar: true}, nil
	}
	return token{}, sqlerr.Syntax(sqlerr.RunePos(text, i), "syntax error at or near %s", quoteNear(text[i:i+1]))
}

// Piece is one statement of a simple-query string, as Split cuts it.
type Piece struct {
	Text   string // the statement, without its ';' and surrounding spaces
	Offset int    // byte offset of Text in the string given to Split
}

// Split cuts a simple-query string into statements at the semicolons that
// are outside 'strings', "identifiers", `identifiers`, -- and /* */
// comments and $$dollar$$ quoting. Pieces holding only spaces and comments
// are dropped, so Split of an empty query returns nothing. The quoting
// rules are those of Parse; text that Parse would reject (an unterminated
// string, say) still splits, and the piece holding it fails in Parse.
func Split(text string) []Piece {
	var pieces []Piece
	start := 0
	empty := true // only spaces and comments since start
	cut := func(end int) {
		if !empty {
			s, e := start, end
			for s < e && isSpace(text[s]) {
				s++
			}
			for e > s && isSpace(text[e-1]) {
				e--
			}
			pieces = append(pieces, Piece{Text: text[s:e], Offset: s})
		}
		start, empty = end+1, true
	}
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case isSpace(c):
			i++
		case c == ';':
			cut(i)
			i++
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			i = lineCommentEnd(text, i)
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end, ok := blockCommentEnd(text, i)
			if !ok {
				// An unterminated comment swallows the rest; it is not a
				// statement (PostgreSQL reports it, Parse does too).
				empty = false
			}
			i = end
		case c == '\'' || c == '"' || c == '`':
			i, _ = quotedEnd(text, i)
			empty = false
		case c == '$':
			if tagEnd, ok := dollarTagEnd(text, i); ok {
				tag := text[i:tagEnd]
				if j := strings.Index(text[tagEnd:], tag); j >= 0 {
					i = tagEnd + j + len(tag)
				} else {
					i = len(text)
				}
			} else {
				i++
			}
			empty = false
		case isIdentStart(c):
			// Skip the whole word so that a '$' inside it (a$b) does not
			// start a dollar quote.
			i = identEnd(text, i)
			empty = false
		case isDigit(c):
			i = numberEnd(text, i)
			empty = false
		default:
			i++
			empty = false
		}
	}
	cut(len(text))
	return pieces
}

// skipSpace returns the offset of the first non-space byte at or after i.
func skipSpace(text string, i int) int {
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	return i
}

// lineCommentEnd returns the end of the -- comment at i: the offset of the
// newline that ends it (or len(text)).
func lineCommentEnd(text string, i int) int {
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(text)
}

// blockCommentEnd returns the offset just after the /* comment at i, which
// may nest as in PostgreSQL. ok is false when it is not closed; end is then
// len(text).
func blockCommentEnd(text string, i int) (end int, ok bool) {
	depth := 0
	for j := i; j+1 < len(text); {
		switch {
		case text[j] == '/' && text[j+1] == '*':
			depth++
			j += 2
		case text[j] == '*' && text[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j, true
			}
		default:
			j++
		}
	}
	return len(text), false
}

// quotedEnd returns the offset just after the quoted string or identifier
// that starts at i with the quote text[i]; a doubled quote stands for one.
// ok is false when it is not closed; end is then len(text).
func quotedEnd(text string, i int) (end int, ok bool) {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		if text[j] != q {
			continue
		}
		if j+1 < len(text) && text[j+1] == q {
			j++
			continue
		}
		return j + 1, true
	}
	return len(text), false
}

// unquote removes the quotes around s and undoubles the quotes inside.
func unquote(s string) string {
	q := s[:1]
	return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
}

// dollarTagEnd reports whether a dollar-quote tag ($$ or $tag$, the tag
// being a word that does not start with a digit) starts at i, and returns
// the offset just after it.
func dollarTagEnd(text string, i int) (int, bool) {
	j := i + 1
	if j < len(text) && isIdentStart(text[j]) {
		for j < len(text) && isIdentChar(text[j]) && text[j] != '$' {
			j++
		}
	}
	if j < len(text) && text[j] == '$' {
		return j + 1, true
	}
	return 0, false
}

// numberEnd returns the end of the number starting at i: digits, a
// fraction, an exponent, and any word characters glued to it (TiDB reads
// 0x1F and 1abc; whatever they are, they are one token).
func numberEnd(text string, i int) int {
	j := i
	for j < len(text) && isDigit(text[j]) {
		j++
	}
	if j < len(text) && text[j] == '.' {
		j++
		for j < len(text) && isDigit(text[j]) {
			j++
		}
	}
	if j+1 < len(text) && (text[j] == 'e' || text[j] == 'E') {
		k := j + 1
		if text[k] == '+' || text[k] == '-' {
			k++
		}
		if k < len(text) && isDigit(text[k]) {
			j = k
			for j < len(text) && isDigit(text[j]) {
				j++
			}
		}
	}
	for j < len(text) && isIdentChar(text[j]) {
		j++
	}
	return j
}

// maxNumberDigits bounds the digits of a numeric literal. TiDB turns an
// integer too large for uint64, and any number with a fraction, into a
// decimal of at most nine words of nine digits; its test driver panics
// beyond that, so longer literals are refused here. 63 digits fit in
// eight words however they split between integer and fraction.
const maxNumberDigits = 63

// countDigits counts the digits of a number before any exponent, and the
// 0 that TiDB renders before a leading point (.5 as 0.5), so that what
// Format renders lexes again.
func countDigits(num string) int {
	n := 0
	if strings.HasPrefix(num, ".") {
		n = 1
	}
	for i := 0; i < len(num); i++ {
		switch c := num[i]; {
		case isDigit(c):
			n++
		case c == '.':
		default:
			return n
		}
	}
	return n
}

// foldIdent folds an unquoted identifier to lower case, character by
// character, keeping any character whose lower case would take a
// different number of bytes (so the folded name can replace the original
// in the text TiDB parses, offsets unchanged).
func foldIdent(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			return strings.Map(func(r rune) rune {
				if l := unicode.ToLower(r); utf8.RuneLen(l) == utf8.RuneLen(r) {
					return l
				}
				return r
			}, s)
		}
	}
	return s
}

// identEnd returns the end of the word starting at i.
func identEnd(text string, i int) int {
	for i < len(text) && isIdentChar(text[i]) {
		i++
	}
	return i
}

// isSpace reports whether c is an ASCII space character.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentStart reports whether c may start an unquoted identifier. Bytes of
// multi-byte characters count as letters, as in PostgreSQL and TiDB.
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// isIdentChar reports whether c may continue an unquoted identifier.
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// quoteNear quotes the beginning of s for an error message "at or near":
// up to the end of its line, at most 40 characters.
func quoteNear(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	n := 0
	for i := range s {
		if n == 40 {
			s = s[:i] + "..."
			break
		}
		n++
	}
	return `"` + s + `"`
}
