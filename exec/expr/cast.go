package expr

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

type cast struct {
	e        Expr
	to       arrow.DataType
	implicit bool // inserted by type resolution: renders as e alone
}

// Cast returns CAST(e AS t) for t one of the engine's types. Supported, as
// in PostgreSQL:
//
//   - BIGINT → DOUBLE PRECISION; DOUBLE PRECISION → BIGINT rounds half away
//     from zero (22003 "bigint out of range" beyond int64, and for NaN/Inf).
//   - BIGINT ↔ BOOLEAN (0 is false, anything else true; true is 1).
//   - TIMESTAMP ↔ TIMESTAMPTZ: the same instant, the session time zone
//     being UTC.
//   - anything → TEXT, rendered as PostgreSQL's ::text renders it: true and
//     false, shortest round-trip floats (1e+20, 1.5, NaN, Infinity),
//     timestamps as 2024-01-02 03:04:05.678 (fraction only when non-zero,
//     "+00" appended for TIMESTAMPTZ).
//   - TEXT → BIGINT, DOUBLE PRECISION, BOOLEAN (t/true/yes/on/1 and
//     f/false/no/off/0, any case, unique prefixes), TIMESTAMP[TZ]
//     (YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][zone]; a zone is applied for
//     TIMESTAMPTZ and ignored for TIMESTAMP, as PostgreSQL does; fractions
//     round to milliseconds). Leading and trailing blanks are allowed. A
//     value that does not parse is 22P02 "invalid input syntax for type
//     bigint: \"abc\""; out of range is 22003 (22008 for date fields).
//   - a NULL literal → any type (a typed NULL).
//
// Casting to the same type returns e. Other pairs are 42846 "cannot cast
// type boolean to timestamp without time zone". A constant is folded.
func Cast(e Expr, t arrow.DataType) (Expr, error) {
	if !isEngineType(t) || isNullType(t) {
		return nil, sqlerr.New(pgerrcode.FeatureNotSupported, "cannot cast to type %s", t)
	}
	from := e.Type()
	if arrow.TypeEqual(from, t) {
		return e, nil
	}
	if !castable(from, t) {
		return nil, errCast(from, t)
	}
	c := &cast{e: e, to: t}
	if isNullType(from) {
		return &literal{typ: t, null: true, text: c.String()}, nil
	}
	if _, ok := asLiteral(e); ok {
		return fold(c), nil
	}
	return c, nil
}

func castable(from, to arrow.DataType) bool {
	switch {
	case isNullType(from), isString(to), isString(from):
		return true
	case isInt(from):
		return isFloat(to) || isBool(to)
	case isFloat(from):
		return isInt(to)
	case isBool(from):
		return isInt(to)
	case isTS(from):
		return isTS(to)
	}
	return false
}

func errCast(from, to arrow.DataType) error {
	return sqlerr.New(pgerrcode.CannotCoerce, "cannot cast type %s to %s", typeName(from), typeName(to))
}

func (c *cast) Type() arrow.DataType { return c.to }
func (c *cast) String() string {
	if c.implicit {
		return c.e.String()
	}
	return "CAST(" + c.e.String() + " AS " + sqltypes.Name(c.to) + ")"
}

func (c *cast) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	a, err := c.e.Eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	return castArray(mem, a, c.to)
}

// castArray converts a to type to (a pair castable allows).
func castArray(mem memory.Allocator, a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	from := a.DataType()
	n := a.Len()
	switch {
	case arrow.TypeEqual(from, to):
		a.Retain()
		return a, nil
	case isNullType(from):
		return array.MakeArrayOfNull(mem, to, n), nil
	case isTS(from) && isTS(to):
		return relabel(a, to), nil
	case isInt(from) && isFloat(to):
		buf, out := newFloats(mem, n)
		for i, v := range words(a) {
			out[i] = float64(v)
		}
		return newArray(to, n, andValidity(mem, n, a), buf), nil
	case isFloat(from) && isInt(to):
		buf, out := newWords(mem, n)
		valid := andValidity(mem, n, a)
		for i, v := range floats(a) {
			r, ok := floatToInt(v)
			if !ok && (valid == nil || bitutil.BitIsSet(valid.Bytes(), i)) {
				buf.Release()
				if valid != nil {
					valid.Release()
				}
				return nil, errBigintRange()
			}
			out[i] = r
		}
		return newArray(to, n, valid, buf), nil
	case isInt(from) && isBool(to):
		vals := newBitmap(mem, n, false)
		vb := vals.Bytes()
		for i, v := range words(a) {
			vb[i>>3] |= b2u(v != 0) << (i & 7)
		}
		return newBool(n, andValidity(mem, n, a), vals), nil
	case isBool(from) && isInt(to):
		buf, out := newWords(mem, n)
		ba := a.(*array.Boolean)
		for i := range n {
			out[i] = int64(b2u(ba.Value(i)))
		}
		return newArray(to, n, andValidity(mem, n, a), buf), nil
	case isString(to):
		return castToText(mem, a, false), nil
	case isString(from):
		return castFromText(mem, a, to)
	}
	return nil, errCast(from, to)
}

// floatToInt rounds half away from zero and reports whether the result fits.
func floatToInt(v float64) (int64, bool) {
	r := math.Round(v)
	if r != r || r < -9223372036854775808.0 || r >= 9223372036854775808.0 {
		return 0, false
	}
	return int64(r), true
}

// castToText renders a as TEXT. outputFn selects PostgreSQL's type output
// function (bool as t/f, as concat() shows it) instead of the ::text cast.
func castToText(mem memory.Allocator, a arrow.Array, outputFn bool) arrow.Array {
	n := a.Len()
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.Reserve(n)
	var buf []byte
	for i := range n {
		if a.IsNull(i) {
			bld.AppendNull()
			continue
		}
		buf = appendText(buf[:0], a, i, outputFn)
		bld.BinaryBuilder.Append(buf)
	}
	return bld.NewArray()
}

// appendText appends the text form of non-NULL row i of a.
func appendText(dst []byte, a arrow.Array, i int, outputFn bool) []byte {
	switch x := a.(type) {
	case *array.Int64:
		return strconv.AppendInt(dst, x.Value(i), 10)
	case *array.Float64:
		return append(dst, formatFloat(x.Value(i))...)
	case *array.Boolean:
		switch {
		case outputFn && x.Value(i):
			return append(dst, 't')
		case outputFn:
			return append(dst, 'f')
		case x.Value(i):
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case *array.Timestamp:
		return append(dst, formatTimestamp(int64(x.Value(i)), isTZ(x.DataType()))...)
	case *array.String:
		return append(dst, x.Value(i)...)
	}
	return append(dst, a.ValueStr(i)...)
}

// formatFloat renders f as PostgreSQL's float8 output does (since 12):
// the shortest digits that round-trip, in exponent form when the decimal
// exponent is below -4 or at least 15.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 15 {
		return e
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// formatTimestamp renders milliseconds since the epoch as PostgreSQL
// renders a timestamp (with DateStyle ISO and TimeZone UTC).
func formatTimestamp(ms int64, tz bool) string {
	t := time.UnixMilli(ms).UTC()
	year := t.Year()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	var sb strings.Builder
	sb.Grow(32)
	if year < 1000 {
		sb.WriteString(strings.Repeat("0", 4-len(strconv.Itoa(year))))
	}
	sb.WriteString(strconv.Itoa(year))
	sb.WriteString(t.Format("-01-02 15:04:05"))
	if frac := ms % 1000; frac != 0 {
		if frac < 0 {
			frac += 1000
		}
		s := strconv.Itoa(int(frac) + 1000)[1:]
		sb.WriteByte('.')
		sb.WriteString(strings.TrimRight(s, "0"))
	}
	if tz {
		sb.WriteString("+00")
	}
	if bc {
		sb.WriteString(" BC")
	}
	return sb.String()
}

// castFromText parses a TEXT array as type to.
func castFromText(mem memory.Allocator, a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	s := a.(*array.String)
	valid := andValidity(mem, n, a)
	fail := func(bufs ...*memory.Buffer) {
		for _, b := range bufs {
			b.Release()
		}
		if valid != nil {
			valid.Release()
		}
	}
	switch {
	case isInt(to), isTS(to):
		buf, out := newWords(mem, n)
		tz := isTZ(to)
		for i := range n {
			if s.IsNull(i) {
				out[i] = 0
				continue
			}
			var err error
			if isInt(to) {
				out[i], err = parseInt(s.Value(i))
			} else {
				out[i], err = parseTimestamp(s.Value(i), tz)
			}
			if err != nil {
				fail(buf)
				return nil, err
			}
		}
		return newArray(to, n, valid, buf), nil
	case isFloat(to):
		buf, out := newFloats(mem, n)
		for i := range n {
			if s.IsNull(i) {
				out[i] = 0
				continue
			}
			v, err := parseFloat(s.Value(i))
			if err != nil {
				fail(buf)
				return nil, err
			}
			out[i] = v
		}
		return newArray(to, n, valid, buf), nil
	case isBool(to):
		vals := newBitmap(mem, n, false)
		vb := vals.Bytes()
		for i := range n {
			if s.IsNull(i) {
				continue
			}
			v, err := parseBool(s.Value(i))
			if err != nil {
				fail(vals)
				return nil, err
			}
			vb[i>>3] |= b2u(v) << (i & 7)
		}
		return newBool(n, valid, vals), nil
	}
	if valid != nil {
		valid.Release()
	}
	return nil, errCast(a.DataType(), to)
}

func errSyntaxValue(typ, v string) error {
	return sqlerr.New(pgerrcode.InvalidTextRepresentation, "invalid input syntax for type %s: %s", typ, strconv.Quote(v))
}

// trimBlanks removes the whitespace PostgreSQL's input functions accept
// around a value.
func trimBlanks(s string) string { return strings.Trim(s, " \t\n\r\f\v") }

// parseInt parses a BIGINT as PostgreSQL's int8in does (decimal, optional
// sign, surrounding blanks).
func parseInt(v string) (int64, error) {
	s := trimBlanks(v)
	i, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return i, nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, sqlerr.New(pgerrcode.NumericValueOutOfRange, "value %s is out of range for type bigint", strconv.Quote(v))
	}
	return 0, errSyntaxValue("bigint", v)
}

// parseFloat parses DOUBLE PRECISION as float8in does: decimal or exponent
// notation, NaN, [-]Infinity / inf, surrounding blanks.
func parseFloat(v string) (float64, error) {
	s := trimBlanks(v)
	if s == "" || strings.ContainsAny(s, "_xXpP") {
		return 0, errSyntaxValue("double precision", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil {
		return f, nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, sqlerr.New(pgerrcode.NumericValueOutOfRange, "%s is out of range for type double precision", strconv.Quote(v))
	}
	return 0, errSyntaxValue("double precision", v)
}

// parseBool parses BOOLEAN as boolin does.
func parseBool(v string) (bool, error) {
	s := strings.ToLower(trimBlanks(v))
	prefixOf := func(word string, min int) bool {
		return len(s) >= min && strings.HasPrefix(word, s)
	}
	switch {
	case prefixOf("true", 1), prefixOf("yes", 1), s == "on", s == "1":
		return true, nil
	case prefixOf("false", 1), prefixOf("no", 1), prefixOf("off", 2), s == "0":
		return false, nil
	}
	return false, errSyntaxValue("boolean", v)
}

// parseTimestamp parses a timestamp to milliseconds since the epoch, UTC.
func parseTimestamp(v string, tz bool) (int64, error) {
	typ := "timestamp without time zone"
	if tz {
		typ = "timestamp with time zone"
	}
	bad := func() (int64, error) { return 0, errSyntaxValue(typ, v) }
	s := trimBlanks(v)
	if strings.EqualFold(s, "epoch") {
		return 0, nil
	}
	p := &tsParser{s: s}
	year, ok1 := p.digits(4, 6)
	ok2 := p.byte('-')
	month, ok3 := p.digits(1, 2)
	ok4 := p.byte('-')
	day, ok5 := p.digits(1, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return bad()
	}
	var hour, minute, sec, ms int
	if p.byte('T') || p.byte('t') || (p.peek() == ' ' && p.next(1) >= '0' && p.next(1) <= '9' && p.byte(' ')) {
		var ok bool
		if hour, ok = p.digits(1, 2); !ok || !p.byte(':') {
			return bad()
		}
		if minute, ok = p.digits(2, 2); !ok {
			return bad()
		}
		if p.byte(':') {
			if sec, ok = p.digits(2, 2); !ok {
				return bad()
			}
			if p.byte('.') {
				start := p.i
				for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
					p.i++
				}
				frac := p.s[start:p.i]
				if frac == "" {
					return bad()
				}
				frac += "000"
				ms, _ = strconv.Atoi(frac[:3])
				if frac[3] >= '5' {
					ms++
				}
			}
		}
	}
	// Zone.
	offsetSec := 0
	for p.peek() == ' ' {
		p.i++
	}
	switch c := p.peek(); {
	case c == 'Z' || c == 'z':
		p.i++
	case strings.EqualFold(p.s[p.i:], "utc") || strings.EqualFold(p.s[p.i:], "gmt"):
		p.i = len(p.s)
	case c == '+' || c == '-':
		p.i++
		zh, ok := p.digits(1, 2)
		if !ok {
			return bad()
		}
		zm := 0
		if p.byte(':') {
			if zm, ok = p.digits(2, 2); !ok {
				return bad()
			}
		} else if c := p.peek(); c >= '0' && c <= '9' {
			if zm, ok = p.digits(2, 2); !ok {
				return bad()
			}
		}
		offsetSec = zh*3600 + zm*60
		if c == '-' {
			offsetSec = -offsetSec
		}
	}
	for p.peek() == ' ' {
		p.i++
	}
	if p.i != len(p.s) {
		return bad()
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return 0, sqlerr.New(pgerrcode.DatetimeFieldOverflow, "date/time field value out of range: %s", strconv.Quote(v))
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return 0, sqlerr.New(pgerrcode.DatetimeFieldOverflow, "date/time field value out of range: %s", strconv.Quote(v))
	}
	out := t.Unix()*1000 + int64(ms)
	if tz {
		out -= int64(offsetSec) * 1000
	}
	return out, nil
}

// tsParser scans a timestamp string.
type tsParser struct {
	s string
	i int
}

func (p *tsParser) peek() byte { return p.next(0) }
func (p *tsParser) next(k int) byte {
	if p.i+k < len(p.s) {
		return p.s[p.i+k]
	}
	return 0
}

func (p *tsParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// digits reads between lo and hi decimal digits.
func (p *tsParser) digits(lo, hi int) (int, bool) {
	start := p.i
	for p.i < len(p.s) && p.i-start < hi && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i-start < lo {
		return 0, false
	}
	v, _ := strconv.Atoi(p.s[start:p.i])
	return v, true
}
