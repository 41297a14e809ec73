package expr

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// kernel computes a function over its evaluated arguments (n rows each).
type kernel func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error)

type funcExpr struct {
	name string
	orig []Expr // as given, for rendering
	args []Expr // coerced to the signature
	typ  arrow.DataType
	k    kernel
	// lax functions (concat, greatest, least) ignore NULL arguments; the
	// others are strict: NULL when any argument is.
	lax bool
}

func (f *funcExpr) Type() arrow.DataType { return f.typ }
func (f *funcExpr) String() string       { return f.name + "(" + renderList(f.orig) + ")" }

func (f *funcExpr) Eval(mem memory.Allocator, b arrow.RecordBatch) (arrow.Array, error) {
	n := nrows(b)
	if isNullType(f.typ) {
		return array.MakeArrayOfNull(mem, f.typ, n), nil
	}
	if !f.lax {
		for _, a := range f.args {
			if isNullLiteral(a) {
				return array.MakeArrayOfNull(mem, f.typ, n), nil
			}
		}
	}
	args, err := evalAll(mem, b, f.args)
	if err != nil {
		return nil, err
	}
	defer releaseAll(args)
	return f.k(mem, args, n)
}

func errFunc(name string, args []Expr) error {
	ts := make([]string, len(args))
	for i, a := range args {
		ts[i] = typeName(a.Type())
	}
	return sqlerr.New(pgerrcode.UndefinedFunction, "function %s(%s) does not exist", name, strings.Join(ts, ", ")).
		WithHint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

// argAs converts e for a parameter of type t: equal types, NULL, string
// literals (parsed), and BIGINT for DOUBLE PRECISION.
func argAs(e Expr, t arrow.DataType) (Expr, bool) {
	et := e.Type()
	if arrow.TypeEqual(et, t) || isNullType(et) || isUnknownLiteral(e) || isInt(et) && isFloat(t) {
		c, err := coerce(e, t)
		return c, err == nil
	}
	return nil, false
}

// Func returns the scalar function name(args...). Names are
// case-insensitive. Supported (NULL arguments give NULL unless noted):
//
//	lower(text), upper(text)                  text
//	length(text), char_length, character_length   bigint, in characters
//	abs(x)                                    x's type (22003 for the smallest bigint)
//	round(x [, n bigint])                     x's type, half away from zero at
//	                                          n decimal places (n < 0 rounds
//	                                          to tens, hundreds...), decimal
//	                                          semantics: round(1.005, 2) = 1.01
//	floor(x), ceil(x), ceiling(x)             x's type
//	greatest(x, ...), least(x, ...)           common type; NULLs are ignored,
//	                                          NULL only when all are NULL
//	concat(any, ...)                          text; NULLs are ignored, never NULL;
//	                                          values as PostgreSQL's output
//	                                          functions print them (bool t/f)
//	substr(s, from [, count]), substring      text; 1-based characters as
//	                                          PostgreSQL (from < 1 shortens
//	                                          the count); 22011 when count < 0
//	trim(s [, chars]), btrim, ltrim, rtrim    text; chars defaults to a space
//	replace(s, from, to)                      text
//	mod(a, b)                                 a % b (see Arith)
//	coalesce(...), nullif(a, b)               see Coalesce and NullIf
//
// x is BIGINT or DOUBLE PRECISION (a NULL literal counts as DOUBLE
// PRECISION). Anything else is 42883 "function foo(bigint) does not
// exist". Constant calls are folded.
func Func(name string, args []Expr) (Expr, error) {
	lname := strings.ToLower(name)
	f, err := resolveFunc(lname, args)
	if err != nil {
		return nil, err
	}
	if fe, ok := f.(*funcExpr); ok {
		for _, a := range fe.args {
			if _, ok := asLiteral(a); !ok {
				return f, nil
			}
		}
		return fold(f), nil
	}
	return f, nil
}

func resolveFunc(name string, args []Expr) (Expr, error) {
	fail := func() (Expr, error) { return nil, errFunc(name, args) }
	f := &funcExpr{name: name, orig: args}
	// textArgs coerces every argument to TEXT.
	textArgs := func() bool {
		f.args = make([]Expr, len(args))
		for i, a := range args {
			c, ok := argAs(a, sqltypes.String)
			if !ok {
				return false
			}
			f.args[i] = c
		}
		return true
	}
	// numArg resolves a numeric first argument: BIGINT or DOUBLE PRECISION.
	numArg := func() (arrow.DataType, bool) {
		t := args[0].Type()
		switch {
		case isInt(t), isFloat(t):
		case isNullType(t):
			t = sqltypes.Float64
		default:
			return nil, false
		}
		c, _ := coerce(args[0], t)
		f.args = []Expr{c}
		return t, true
	}
	switch name {
	case "coalesce":
		return Coalesce(args)
	case "nullif":
		if len(args) != 2 {
			return fail()
		}
		return NullIf(args[0], args[1])
	case "mod":
		if len(args) != 2 {
			return fail()
		}
		return Arith(Mod, args[0], args[1])
	case "lower", "upper":
		if len(args) != 1 || !textArgs() {
			return fail()
		}
		f.typ = sqltypes.String
		conv := strings.ToLower
		if name == "upper" {
			conv = strings.ToUpper
		}
		f.k = func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
			return mapText(mem, a[0], conv), nil
		}
	case "length", "char_length", "character_length":
		if len(args) != 1 || !textArgs() {
			return fail()
		}
		f.typ = sqltypes.Int64
		f.k = lengthKernel
	case "abs", "floor", "ceil", "ceiling":
		if len(args) != 1 {
			return fail()
		}
		t, ok := numArg()
		if !ok {
			return fail()
		}
		f.typ = t
		f.k = mathKernel(name)
	case "round":
		if len(args) != 1 && len(args) != 2 {
			return fail()
		}
		t, ok := numArg()
		if !ok {
			return fail()
		}
		f.typ = t
		if len(args) == 2 {
			places, ok := argAs(args[1], sqltypes.Int64)
			if !ok {
				return fail()
			}
			f.args = append(f.args, places)
		}
		f.k = roundKernel
	case "greatest", "least":
		if len(args) == 0 {
			return fail()
		}
		vals, t, err := unify(strings.ToUpper(name), args)
		if err != nil {
			return nil, err
		}
		f.args, f.typ, f.lax = vals, t, true
		f.k = extremeKernel(name == "greatest")
	case "concat":
		if len(args) == 0 {
			return fail()
		}
		f.args = make([]Expr, len(args))
		for i, a := range args {
			f.args[i] = a
			if isNullType(a.Type()) {
				f.args[i], _ = coerce(a, sqltypes.String)
			}
		}
		f.typ, f.lax = sqltypes.String, true
		f.k = concatKernel
	case "substr", "substring":
		if len(args) != 2 && len(args) != 3 {
			return fail()
		}
		s, ok := argAs(args[0], sqltypes.String)
		if !ok {
			return fail()
		}
		f.args = []Expr{s}
		for _, a := range args[1:] {
			c, ok := argAs(a, sqltypes.Int64)
			if !ok {
				return fail()
			}
			f.args = append(f.args, c)
		}
		f.typ = sqltypes.String
		f.k = substrKernel
	case "trim", "btrim", "ltrim", "rtrim":
		if len(args) != 1 && len(args) != 2 || !textArgs() {
			return fail()
		}
		f.typ = sqltypes.String
		f.k = trimKernel(name)
	case "replace":
		if len(args) != 3 || !textArgs() {
			return fail()
		}
		f.typ = sqltypes.String
		f.k = replaceKernel
	default:
		return fail()
	}
	for _, a := range f.args {
		if isNullType(a.Type()) && !isNullType(f.typ) {
			return nil, sqlerr.New(pgerrcode.InternalError, "function %s: untyped argument %s", name, a)
		}
	}
	return f, nil
}

// mapText applies conv to every non-NULL string.
func mapText(mem memory.Allocator, a arrow.Array, conv func(string) string) arrow.Array {
	s := a.(*array.String)
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.Reserve(s.Len())
	for i := range s.Len() {
		if s.IsNull(i) {
			bld.AppendNull()
			continue
		}
		bld.Append(conv(s.Value(i)))
	}
	return bld.NewArray()
}

func lengthKernel(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	s := stringsOf(a[0])
	buf, out := newWords(mem, n)
	for i := range n {
		out[i] = int64(utf8.RuneCount(s.at(i)))
	}
	return newArray(sqltypes.Int64, n, andValidity(mem, n, a[0]), buf), nil
}

func mathKernel(name string) kernel {
	return func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
		x := a[0]
		if isInt(x.DataType()) {
			if name != "abs" {
				x.Retain()
				return x, nil
			}
			in := words(x)
			buf, out := newWords(mem, n)
			valid := andValidity(mem, n, x)
			for i, v := range in {
				if v == math.MinInt64 && (valid == nil || bitutil.BitIsSet(valid.Bytes(), i)) {
					buf.Release()
					if valid != nil {
						valid.Release()
					}
					return nil, errBigintRange()
				}
				if v < 0 {
					v = -v
				}
				out[i] = v
			}
			return newArray(sqltypes.Int64, n, valid, buf), nil
		}
		op := math.Abs
		switch name {
		case "floor":
			op = math.Floor
		case "ceil", "ceiling":
			op = math.Ceil
		}
		buf, out := newFloats(mem, n)
		for i, v := range floats(x) {
			out[i] = op(v)
		}
		return newArray(sqltypes.Float64, n, andValidity(mem, n, x), buf), nil
	}
}

func roundKernel(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	x := a[0]
	var places []int64
	if len(a) == 2 {
		places = words(a[1])
	}
	valid := andValidity(mem, n, a...)
	isValid := func(i int) bool { return valid == nil || bitutil.BitIsSet(valid.Bytes(), i) }
	if isInt(x.DataType()) {
		buf, out := newWords(mem, n)
		for i, v := range words(x) {
			out[i] = v
			if places == nil || !isValid(i) {
				continue
			}
			r, ok := roundInt(v, places[i])
			if !ok {
				buf.Release()
				if valid != nil {
					valid.Release()
				}
				return nil, errBigintRange()
			}
			out[i] = r
		}
		return newArray(sqltypes.Int64, n, valid, buf), nil
	}
	buf, out := newFloats(mem, n)
	for i, v := range floats(x) {
		switch {
		case places == nil:
			out[i] = math.Round(v)
		case isValid(i):
			out[i] = roundFloat(v, places[i])
		default:
			out[i] = 0
		}
		if out[i] == 0 {
			out[i] = 0 // numeric has no negative zero
		}
	}
	return newArray(sqltypes.Float64, n, valid, buf), nil
}

// roundInt rounds v half away from zero to a multiple of 10^-places.
func roundInt(v, places int64) (int64, bool) {
	if places >= 0 {
		return v, true
	}
	if places < -18 {
		return 0, true
	}
	p := int64(1)
	for range -places {
		p *= 10
	}
	q, r := v/p, v%p
	if r < 0 {
		r = -r
	}
	if r >= p-r { // r*2 >= p without overflow
		if v < 0 {
			q--
		} else {
			q++
		}
	}
	ovf, r := mulOverflow(q, p)
	return r, !ovf
}

// mulOverflow returns x*y and whether it overflowed.
func mulOverflow(x, y int64) (bool, int64) {
	if x == 0 || y == 0 {
		return false, 0
	}
	p := x * y
	return p/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64), p
}

// roundFloat rounds v half away from zero at places decimal places, on the
// shortest decimal form of v (so 1.005 is 1.005, as NUMERIC holds it).
func roundFloat(v float64, places int64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	neg := v < 0
	s := strconv.FormatFloat(math.Abs(v), 'f', -1, 64)
	ip, fp, _ := strings.Cut(s, ".")
	var digits string // the kept digits
	var zeros int     // zeros after the kept digits
	var next byte     // the first dropped digit
	switch {
	case places >= int64(len(fp)):
		return v
	case places >= 0:
		digits = ip + fp[:places]
		next = fp[places]
	case -places > int64(len(ip)):
		return 0
	default:
		k := int(-places)
		digits = ip[:len(ip)-k]
		next = ip[len(ip)-k]
		zeros = k
	}
	b := []byte(digits)
	if next >= '5' {
		i := len(b) - 1
		for ; i >= 0 && b[i] == '9'; i-- {
			b[i] = '0'
		}
		if i >= 0 {
			b[i]++
		} else {
			b = append([]byte{'1'}, b...)
		}
	}
	var out string
	if places > 0 {
		cut := len(b) - int(places)
		out = string(b[:cut]) + "." + string(b[cut:])
	} else {
		out = string(b) + strings.Repeat("0", zeros)
	}
	r, err := strconv.ParseFloat(out, 64)
	if err != nil {
		return v
	}
	if neg {
		r = -r
	}
	return r
}

// rowComparer returns a three-way comparison of row i of a with row j of
// b, two non-NULL rows of one type, in the order ORDER BY uses.
func rowComparer(a, b arrow.Array) func(i, j int) int {
	switch {
	case isInt(a.DataType()), isTS(a.DataType()):
		av, bv := words(a), words(b)
		return func(i, j int) int {
			switch {
			case av[i] < bv[j]:
				return -1
			case av[i] > bv[j]:
				return 1
			}
			return 0
		}
	case isFloat(a.DataType()):
		av, bv := floats(a), floats(b)
		return func(i, j int) int { return cmpFloat(av[i], bv[j]) }
	case isString(a.DataType()):
		as, bs := stringsOf(a), stringsOf(b)
		return func(i, j int) int { return bytes.Compare(as.at(i), bs.at(j)) }
	case isBool(a.DataType()):
		ab, bb := a.(*array.Boolean), b.(*array.Boolean)
		return func(i, j int) int { return int(b2u(ab.Value(i))) - int(b2u(bb.Value(j))) }
	}
	return func(i, j int) int { return 0 }
}

func extremeKernel(greatest bool) kernel {
	return func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
		choice := make([]int32, n)
		for i := range choice {
			choice[i] = -1
		}
		for k, x := range a {
			cmps := make([]func(i, j int) int, k)
			for c := range k {
				cmps[c] = rowComparer(x, a[c])
			}
			for i := range n {
				if x.IsNull(i) {
					continue
				}
				c := choice[i]
				if c < 0 {
					choice[i] = int32(k)
					continue
				}
				d := cmps[c](i, i)
				if greatest && d > 0 || !greatest && d < 0 {
					choice[i] = int32(k)
				}
			}
		}
		return pick(mem, a[0].DataType(), n, a, choice)
	}
}

func concatKernel(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	texts := make([]*array.String, len(a))
	for k, x := range a {
		if isNullType(x.DataType()) {
			continue
		}
		t := castToText(mem, x, true)
		defer t.Release()
		texts[k] = t.(*array.String)
	}
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.Reserve(n)
	var buf []byte
	for i := range n {
		buf = buf[:0]
		for _, t := range texts {
			if t != nil && t.IsValid(i) {
				buf = append(buf, t.Value(i)...)
			}
		}
		bld.BinaryBuilder.Append(buf)
	}
	return bld.NewArray(), nil
}

func substrKernel(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	s := a[0].(*array.String)
	from := words(a[1])
	var count []int64
	if len(a) == 3 {
		count = words(a[2])
	}
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.Reserve(n)
	for i := range n {
		if s.IsNull(i) || a[1].IsNull(i) || count != nil && a[2].IsNull(i) {
			bld.AppendNull()
			continue
		}
		start := from[i]
		end := int64(math.MaxInt64) // exclusive, in 1-based characters
		if count != nil {
			if count[i] < 0 {
				return nil, sqlerr.New(pgerrcode.SubstringError, "negative substring length not allowed")
			}
			if start <= math.MaxInt64-count[i] {
				end = start + count[i]
			}
		}
		start = max(start, 1)
		str := s.Value(i)
		if end <= start {
			bld.Append("")
			continue
		}
		// Walk characters to byte offsets.
		bs, be := len(str), len(str)
		pos := int64(1)
		for bi := range str {
			if pos == start {
				bs = bi
			}
			if pos == end {
				be = bi
				break
			}
			pos++
		}
		if bs > be {
			bs = be
		}
		bld.Append(str[bs:be])
	}
	return bld.NewArray(), nil
}

func trimKernel(name string) kernel {
	return func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
		s := a[0].(*array.String)
		var chars *array.String
		if len(a) == 2 {
			chars = a[1].(*array.String)
		}
		bld := array.NewStringBuilder(mem)
		defer bld.Release()
		bld.Reserve(n)
		for i := range n {
			if s.IsNull(i) || chars != nil && chars.IsNull(i) {
				bld.AppendNull()
				continue
			}
			cut := " "
			if chars != nil {
				cut = chars.Value(i)
			}
			v := s.Value(i)
			switch name {
			case "ltrim":
				v = strings.TrimLeft(v, cut)
			case "rtrim":
				v = strings.TrimRight(v, cut)
			default:
				v = strings.Trim(v, cut)
			}
			bld.Append(v)
		}
		return bld.NewArray(), nil
	}
}

func replaceKernel(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	s, from, to := a[0].(*array.String), a[1].(*array.String), a[2].(*array.String)
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.Reserve(n)
	for i := range n {
		if s.IsNull(i) || from.IsNull(i) || to.IsNull(i) {
			bld.AppendNull()
			continue
		}
		v := s.Value(i)
		if f := from.Value(i); f != "" {
			v = strings.ReplaceAll(v, f, to.Value(i))
		}
		bld.Append(v)
	}
	return bld.NewArray(), nil
}
