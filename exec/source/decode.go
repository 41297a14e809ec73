package source

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/valyala/fastjson"

	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// SeqColumn is the name of the column the decoder appends after the
// declared columns: the message's JetStream stream sequence (BIGINT, never
// NULL).
const SeqColumn = "_seq"

// Column is one declared column of a source.
type Column struct {
	Name string
	// Type is one of sqltypes.Int64, Float64, String, Bool, Timestamp or
	// TimestampTZ.
	Type arrow.DataType
}

// kind is a column type as the decoder switches on it.
type kind uint8

const (
	kindInt64 kind = iota
	kindFloat64
	kindString
	kindBool
	kindTimestamp // TIMESTAMP and TIMESTAMPTZ: both UTC milliseconds
)

func kindOf(t arrow.DataType) (kind, bool) {
	switch {
	case t == nil:
		return 0, false
	case arrow.TypeEqual(t, sqltypes.Int64):
		return kindInt64, true
	case arrow.TypeEqual(t, sqltypes.Float64):
		return kindFloat64, true
	case arrow.TypeEqual(t, sqltypes.String):
		return kindString, true
	case arrow.TypeEqual(t, sqltypes.Bool):
		return kindBool, true
	case arrow.TypeEqual(t, sqltypes.Timestamp), arrow.TypeEqual(t, sqltypes.TimestampTZ):
		return kindTimestamp, true
	}
	return 0, false
}

// ValidateColumns checks what NewDecoder requires: at least one column,
// supported types, names that are non-empty, distinct ignoring ASCII case,
// and not SeqColumn; timeCol indexes a TIMESTAMP or TIMESTAMPTZ column.
func ValidateColumns(cols []Column, timeCol int) error {
	if len(cols) == 0 {
		return fmt.Errorf("a source needs at least one column")
	}
	for i, c := range cols {
		if c.Name == "" {
			return fmt.Errorf("column %d has no name", i+1)
		}
		if strings.EqualFold(c.Name, SeqColumn) {
			return fmt.Errorf("column name %q is reserved", c.Name)
		}
		if _, ok := kindOf(c.Type); !ok {
			return fmt.Errorf("column %q: type %v is not supported", c.Name, c.Type)
		}
		for _, o := range cols[:i] {
			if strings.EqualFold(o.Name, c.Name) {
				return fmt.Errorf("column %q is declared twice", c.Name)
			}
		}
	}
	if timeCol < 0 || timeCol >= len(cols) {
		return fmt.Errorf("event time column index %d is out of range for %d columns", timeCol, len(cols))
	}
	if !sqltypes.IsTimestamp(cols[timeCol].Type) {
		return fmt.Errorf("event time column %q must be TIMESTAMP or TIMESTAMPTZ, not %s",
			cols[timeCol].Name, sqltypes.Name(cols[timeCol].Type))
	}
	return nil
}

// BatchSchema returns the schema of the batches a decoder for cols builds:
// the declared columns in order, then SeqColumn. Every declared column is
// nullable except the event-time column (a message without one is a
// reject); SeqColumn is not nullable.
func BatchSchema(cols []Column, timeCol int) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(cols)+1)
	for i, c := range cols {
		fields = append(fields, arrow.Field{Name: c.Name, Type: c.Type, Nullable: i != timeCol})
	}
	fields = append(fields, arrow.Field{Name: SeqColumn, Type: sqltypes.Int64})
	return arrow.NewSchema(fields, nil)
}

// Decoder turns JSON messages into the rows of a batch (see BatchSchema).
// It is not safe for concurrent use.
//
// Format (SPEC.md, "format json"): one JSON object per message. A field
// feeds the column whose name it equals; failing that, the column it
// equals ignoring ASCII case. When several fields match one column, the
// first exact match wins, else the first case-insensitive match. Missing
// fields and JSON null are NULL; other fields are ignored (but must be
// valid JSON). Per column type:
//
//   - BIGINT: a JSON number written as an integer (no fraction, no
//     exponent) that fits int64.
//   - DOUBLE PRECISION: any JSON number that fits float64 (correctly
//     rounded, as strconv.ParseFloat).
//   - TEXT: a JSON string.
//   - BOOLEAN: true or false.
//   - TIMESTAMP, TIMESTAMPTZ: a string accepted by parseTimestamp (RFC 3339,
//     or "2006-01-02 15:04:05[.fff]" read as UTC), or a JSON integer of
//     epoch milliseconds; in both cases between years 0000 and 9999.
//
// The event-time column must be present and not null. The whole message
// must be UTF-8 JSON with every \u surrogate escape paired, nested at most
// fastjson.MaxDepth (300) deep. Anything else is a reject: nothing is
// appended and Append returns a reason that names the column. Columns are
// checked in declared order and the first problem is the reason.
//
// Rows accumulate in the decoder's own typed slices, reused from batch to
// batch; NewBatch copies each column once into a buffer of exactly its
// size from the allocator. Appending through Arrow builders instead cost
// several times more per row, mostly in garbage collection: builders grow
// by doubling and hand their buffers away with every batch.
type Decoder struct {
	mem     memory.Allocator
	schema  *arrow.Schema
	cols    []Column
	timeCol int
	fields  []field
	seqs    []int64 // SeqColumn

	parser fastjson.Parser
	visit  func(key []byte, v *fastjson.Value) // d.visitField, bound once
	vals   []*fastjson.Value                   // per column: the field matched in the current message
	exact  []bool                              // per column: vals[i] matched exactly
	cells  []cell                              // per column: the converted value of the current message
	num    []byte                              // scratch: text of a JSON number
	// checkNums asks visitField to check number syntax (the payload was
	// not validated); badNum is the reject reason of a bad one.
	checkNums bool
	badNum    string
	dates     dateCache // of parseTimestamp
	rows      int       // rows since the last NewBatch
}

// field is one declared column and the rows of the current batch.
type field struct {
	name  string
	kind  kind
	valid []byte // validity bitmap, bit i for row i; only read when nulls > 0
	nulls int
	i64   []int64   // BIGINT, TIMESTAMP (ms)
	f64   []float64 // DOUBLE PRECISION
	bits  []byte    // BOOLEAN, a bitmap
	offs  []int32   // TEXT: offsets, len rows+1
	data  []byte    // TEXT: the bytes
}

// cell is one converted value, held until every column of the message
// converted so that a reject appends nothing.
type cell struct {
	null bool
	i    int64 // BIGINT, BOOLEAN (0/1), TIMESTAMP (ms)
	f    float64
	s    []byte // TEXT; points into the parser's buffer until the next parse
}

// NewDecoder returns a decoder for cols whose event-time column is
// cols[timeCol]. Batches are allocated from mem. It returns the error of
// ValidateColumns.
func NewDecoder(mem memory.Allocator, cols []Column, timeCol int) (*Decoder, error) {
	if err := ValidateColumns(cols, timeCol); err != nil {
		return nil, err
	}
	d := &Decoder{
		mem:     mem,
		schema:  BatchSchema(cols, timeCol),
		cols:    append([]Column(nil), cols...),
		timeCol: timeCol,
		fields:  make([]field, len(cols)),
		vals:    make([]*fastjson.Value, len(cols)),
		exact:   make([]bool, len(cols)),
		cells:   make([]cell, len(cols)),
	}
	for i, c := range cols {
		k, _ := kindOf(c.Type)
		d.fields[i] = field{name: c.Name, kind: k}
		if k == kindString {
			d.fields[i].offs = []int32{0}
		}
	}
	d.visit = d.visitField
	return d, nil
}

// Schema returns the schema of the batches (BatchSchema of the columns).
func (d *Decoder) Schema() *arrow.Schema { return d.schema }

// Len returns the number of rows appended since the last NewBatch.
func (d *Decoder) Len() int { return d.rows }

// NewBatch returns the rows appended so far (possibly none) and resets the
// decoder. The caller owns the batch and releases it.
func (d *Decoder) NewBatch() arrow.RecordBatch {
	n := d.rows
	arrs := make([]arrow.Array, 0, len(d.fields)+1)
	for i := range d.fields {
		arrs = append(arrs, d.fields[i].array(d.mem, d.cols[i].Type, n))
		d.fields[i].reset()
	}
	arrs = append(arrs, fixedArray(d.mem, sqltypes.Int64, n, nil, 0, int64Bytes(d.seqs)))
	d.seqs = d.seqs[:0]
	d.rows = 0
	rec := array.NewRecordBatch(d.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// Release drops the decoder's buffers. The decoder must not be used
// afterwards. Batches already returned are not affected.
func (d *Decoder) Release() {
	d.fields, d.seqs, d.rows = nil, nil, 0
}

// Append decodes one message whose stream sequence is seq and appends it
// as one row. When the message is a reject it appends nothing and returns
// ok false and the reason (see Decoder). payload is not retained.
func (d *Decoder) Append(seq uint64, payload []byte) (reason string, ok bool) {
	if reason, ok := d.parse(payload); !ok {
		return reason, false
	}
	for i := range d.fields {
		if reason, ok := d.convert(i); !ok {
			return reason, false
		}
	}
	row := d.rows
	for i := range d.fields {
		d.fields[i].append(row, &d.cells[i])
	}
	d.seqs = append(d.seqs, int64(seq))
	d.rows++
	return "", true
}

// append appends c as row number row.
func (f *field) append(row int, c *cell) {
	if row%8 == 0 {
		f.valid = append(f.valid, 0)
		if f.kind == kindBool {
			f.bits = append(f.bits, 0)
		}
	}
	if c.null {
		f.nulls++
	} else {
		f.valid[row/8] |= 1 << (row % 8)
	}
	switch f.kind {
	case kindInt64, kindTimestamp:
		f.i64 = append(f.i64, c.i)
	case kindFloat64:
		f.f64 = append(f.f64, c.f)
	case kindBool:
		if c.i != 0 {
			f.bits[row/8] |= 1 << (row % 8)
		}
	case kindString:
		f.data = append(f.data, c.s...)
		f.offs = append(f.offs, int32(len(f.data)))
	}
}

func (f *field) reset() {
	f.valid, f.nulls = f.valid[:0], 0
	f.i64, f.f64, f.bits, f.data = f.i64[:0], f.f64[:0], f.bits[:0], f.data[:0]
	if f.kind == kindString {
		f.offs = f.offs[:1]
	}
}

// array copies the column's n rows into an Arrow array allocated from mem.
func (f *field) array(mem memory.Allocator, t arrow.DataType, n int) arrow.Array {
	var valid []byte
	if f.nulls > 0 {
		valid = f.valid
	}
	switch f.kind {
	case kindInt64, kindTimestamp:
		return fixedArray(mem, t, n, valid, f.nulls, int64Bytes(f.i64))
	case kindFloat64:
		return fixedArray(mem, t, n, valid, f.nulls, arrow.Float64Traits.CastToBytes(f.f64))
	case kindBool:
		return fixedArray(mem, t, n, valid, f.nulls, f.bits)
	}
	// TEXT. 32-bit offsets cap a batch's text at 2 GiB, far beyond
	// BatchRows messages of NATS's default 1 MiB maximum payload.
	buffers := []*memory.Buffer{
		copyBuffer(mem, valid),
		copyBuffer(mem, arrow.Int32Traits.CastToBytes(f.offs)),
		copyBuffer(mem, f.data),
	}
	return makeArray(t, n, buffers, f.nulls)
}

// fixedArray builds a fixed-width array: validity (nil: no nulls) and
// values.
func fixedArray(mem memory.Allocator, t arrow.DataType, n int, valid []byte, nulls int, values []byte) arrow.Array {
	return makeArray(t, n, []*memory.Buffer{copyBuffer(mem, valid), copyBuffer(mem, values)}, nulls)
}

func makeArray(t arrow.DataType, n int, buffers []*memory.Buffer, nulls int) arrow.Array {
	data := array.NewData(t, n, buffers, nil, nulls, 0)
	for _, b := range buffers {
		if b != nil {
			b.Release() // data holds its own reference
		}
	}
	a := array.MakeFromData(data)
	data.Release()
	return a
}

// copyBuffer returns a buffer from mem holding a copy of b; nil for nil.
func copyBuffer(mem memory.Allocator, b []byte) *memory.Buffer {
	if b == nil {
		return nil
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(len(b))
	copy(buf.Bytes(), b)
	return buf
}

func int64Bytes(v []int64) []byte { return arrow.Int64Traits.CastToBytes(v) }

// parse checks and parses payload and matches its fields to columns.
//
// fastjson's parser is lenient about number tokens (it takes "01", "1.",
// "nan") and about string contents (control characters, escapes); the
// rest of the grammar it checks. So when the payload has no backslash and
// no control byte (the common case), its strings are fine and only its
// numbers need a strict look, which visitField gives every number it
// meets. Otherwise the payload goes through fastjson.ValidateBytes, which
// is strict, and checkEscapedStrings. Parse runs first: its depth limit
// bounds the recursion of the validator.
func (d *Decoder) parse(payload []byte) (reason string, ok bool) {
	if len(payload) == 0 || isSpace(payload[0]) {
		if len(bytes.TrimLeft(payload, " \t\r\n")) == 0 {
			return "invalid JSON: empty message", false
		}
	}
	if !utf8.Valid(payload) {
		return "invalid JSON: invalid UTF-8", false
	}
	plain := isPlain(payload)
	v, err := d.parser.ParseBytes(payload)
	if err == nil && !plain {
		err = fastjson.ValidateBytes(payload)
	}
	if err != nil {
		return "invalid JSON: " + syntaxReason(err), false
	}
	if !plain {
		if r, ok := checkEscapedStrings(payload); !ok {
			return r, false
		}
	}
	obj, err := v.Object()
	if err != nil {
		if plain {
			if r, ok := checkNumbers(v); !ok {
				return r, false
			}
		}
		return "not a JSON object: got " + describe(v), false
	}
	clear(d.vals)
	clear(d.exact)
	d.checkNums, d.badNum = plain, ""
	obj.Visit(d.visit)
	if d.badNum != "" {
		return d.badNum, false
	}
	return "", true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isPlain reports whether b has no backslash and no byte below 0x20, eight
// bytes at a time.
func isPlain(b []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		bsl   = 0x5c * ones
		ctl   = 0x20 * ones
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// A byte is below 0x20 (x-ctl borrows into its high bit while the
		// byte's own high bit is clear) or is a backslash (x^bsl is zero).
		y := x ^ bsl
		if ((x-ctl)&^x|(y-ones)&^y)&highs != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 || b[i] == '\\' {
			return false
		}
	}
	return true
}

// checkNumbers checks every number in v strictly (the plain path).
func checkNumbers(v *fastjson.Value) (reason string, ok bool) {
	var buf []byte
	var walk func(v *fastjson.Value) bool
	walk = func(v *fastjson.Value) bool {
		switch v.Type() {
		case fastjson.TypeNumber:
			buf = v.MarshalTo(buf[:0])
			if !validNumber(buf) {
				reason = fmt.Sprintf("invalid JSON: invalid number %q", shorten(string(buf)))
				return false
			}
		case fastjson.TypeArray:
			a, _ := v.Array()
			for _, e := range a {
				if !walk(e) {
					return false
				}
			}
		case fastjson.TypeObject:
			o, _ := v.Object()
			good := true
			o.Visit(func(_ []byte, e *fastjson.Value) { good = good && walk(e) })
			return good
		}
		return true
	}
	if walk(v) {
		return "", true
	}
	return reason, false
}

// validNumber reports whether b is a JSON number (RFC 8259):
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// syntaxReason shortens a fastjson error, which nests one "cannot parse
// ...: " per level, to its innermost clause and the unparsed tail.
func syntaxReason(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "too big depth") {
		return fmt.Sprintf("nested deeper than %d levels", fastjson.MaxDepth)
	}
	head, tail, hasTail := strings.Cut(msg, "; unparsed tail: ")
	if i := strings.LastIndex(head, "cannot parse "); i >= 0 {
		head = head[i:]
	}
	if hasTail {
		head += " at " + tail
	}
	// fastjson prints the offending byte raw; a reason is one line.
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, head)
}

// visitField matches one field of the message to the columns.
func (d *Decoder) visitField(key []byte, v *fastjson.Value) {
	if d.checkNums && d.badNum == "" {
		switch v.Type() {
		case fastjson.TypeNumber:
			d.num = v.MarshalTo(d.num[:0])
			if !validNumber(d.num) {
				d.badNum = fmt.Sprintf("invalid JSON: invalid number %q", shorten(string(d.num)))
			}
		case fastjson.TypeObject, fastjson.TypeArray:
			d.badNum, _ = checkNumbers(v)
		}
	}
	for i := range d.fields {
		name := d.fields[i].name
		if len(name) != len(key) {
			continue
		}
		if string(key) == name {
			if !d.exact[i] {
				d.vals[i], d.exact[i] = v, true
			}
		} else if d.vals[i] == nil && equalFoldASCII(key, name) {
			d.vals[i] = v
		}
	}
}

// convert converts the value of column i of the current message into
// d.cells[i].
func (d *Decoder) convert(i int) (reason string, ok bool) {
	f := &d.fields[i]
	c := &d.cells[i]
	v := d.vals[i]
	*c = cell{}
	if v == nil || v.Type() == fastjson.TypeNull {
		if i == d.timeCol {
			if v == nil {
				return fmt.Sprintf("missing event time column %q", f.name), false
			}
			return fmt.Sprintf("event time column %q is null", f.name), false
		}
		c.null = true
		return "", true
	}
	switch f.kind {
	case kindInt64:
		if v.Type() != fastjson.TypeNumber {
			return d.wrongType(i, "an integer", v), false
		}
		d.num = v.MarshalTo(d.num[:0])
		n, st := parseInt(d.num)
		switch st {
		case intNotInteger:
			return d.wrongType(i, "an integer", v), false
		case intOutOfRange:
			return d.outOfRange(i, v), false
		}
		c.i = n
	case kindFloat64:
		if v.Type() != fastjson.TypeNumber {
			return d.wrongType(i, "a number", v), false
		}
		d.num = v.MarshalTo(d.num[:0])
		x, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(d.num), len(d.num)), 64)
		if err != nil {
			return d.outOfRange(i, v), false
		}
		c.f = x
	case kindString:
		if v.Type() != fastjson.TypeString {
			return d.wrongType(i, "a string", v), false
		}
		s, _ := v.StringBytes()
		c.s = s
	case kindBool:
		switch v.Type() {
		case fastjson.TypeTrue:
			c.i = 1
		case fastjson.TypeFalse:
		default:
			return d.wrongType(i, "true or false", v), false
		}
	case kindTimestamp:
		switch v.Type() {
		case fastjson.TypeString:
			s, _ := v.StringBytes()
			ms, ok := parseTimestamp(s, &d.dates)
			if !ok {
				return fmt.Sprintf("column %q: %s is not a timestamp (want RFC 3339, \"2006-01-02 15:04:05\" as UTC, or epoch milliseconds)",
					f.name, describe(v)), false
			}
			c.i = ms
		case fastjson.TypeNumber:
			d.num = v.MarshalTo(d.num[:0])
			n, st := parseInt(d.num)
			switch {
			case st == intNotInteger:
				return d.wrongType(i, "an RFC 3339 string or integer epoch milliseconds", v), false
			case st == intOutOfRange || n < minMillis || n > maxMillis:
				return d.outOfRange(i, v), false
			}
			c.i = n
		default:
			return d.wrongType(i, "an RFC 3339 string or integer epoch milliseconds", v), false
		}
	}
	return "", true
}

func (d *Decoder) wrongType(i int, want string, v *fastjson.Value) string {
	return fmt.Sprintf("column %q: expected %s, got %s", d.fields[i].name, want, describe(v))
}

func (d *Decoder) outOfRange(i int, v *fastjson.Value) string {
	return fmt.Sprintf("column %q: %s is out of range for %s", d.fields[i].name, describe(v), sqltypes.Name(d.cols[i].Type))
}

// describe renders a JSON value for a reject reason, shortened.
func describe(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "an array"
	case fastjson.TypeTrue:
		return "boolean true"
	case fastjson.TypeFalse:
		return "boolean false"
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeNumber:
		return "number " + shorten(string(v.MarshalTo(nil)))
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return "string " + strconv.Quote(shorten(string(s)))
	}
	return v.Type().String()
}

// shorten cuts s to at most 40 bytes (on a rune boundary) plus "...".
func shorten(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

type intStatus uint8

const (
	intOK intStatus = iota
	intNotInteger
	intOutOfRange
)

// parseInt parses the text of a valid JSON number as an int64. A number
// with a fraction or an exponent is not an integer, whatever its value.
func parseInt(b []byte) (int64, intStatus) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, intNotInteger
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var n uint64
	overflow := false
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, intNotInteger
		}
		dg := uint64(c - '0')
		if n > (limit-dg)/10 {
			overflow = true // keep scanning: "1e999999..." is not an integer
			continue
		}
		n = n*10 + dg
	}
	if overflow {
		return 0, intOutOfRange
	}
	if neg {
		return int64(-n), intOK // -(1<<63) wraps to itself, as wanted
	}
	return int64(n), intOK
}

// equalFoldASCII reports whether a and b are equal ignoring ASCII case.
func equalFoldASCII(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// checkEscapedStrings is a second look at the strings of a payload that
// contains a backslash, which fastjson.ValidateBytes does not fully check:
//
//   - A control character before the last escape of a string passes its
//     validator (which scans only the text after the last escape).
//   - A \u escape of a UTF-16 surrogate that is not a high surrogate
//     followed by a \u escape of a low one is valid JSON syntax, but
//     fastjson would keep it as six literal characters and encoding/json
//     would turn it into U+FFFD; neither is what the producer meant, so it
//     is a reject.
//
// payload is valid JSON apart from these, so outside strings there are no
// backslashes and every backslash inside one starts a complete escape.
func checkEscapedStrings(payload []byte) (reason string, ok bool) {
	in := false
	for i := 0; i < len(payload); i++ {
		c := payload[i]
		if !in {
			in = c == '"'
			continue
		}
		switch {
		case c == '"':
			in = false
		case c < 0x20:
			return fmt.Sprintf("invalid JSON: string cannot contain control char 0x%02X", c), false
		case c == '\\':
			i++
			if payload[i] != 'u' {
				continue
			}
			r := hex4(payload[i+1 : i+5])
			i += 4
			switch {
			case r < 0xD800 || r > 0xDFFF:
			case r <= 0xDBFF && i+6 < len(payload) && payload[i+1] == '\\' && payload[i+2] == 'u':
				lo := hex4(payload[i+3 : i+7])
				if lo < 0xDC00 || lo > 0xDFFF {
					return fmt.Sprintf("invalid JSON: unpaired UTF-16 surrogate \\u%04x", r), false
				}
				i += 6
			default:
				return fmt.Sprintf("invalid JSON: unpaired UTF-16 surrogate \\u%04x", r), false
			}
		}
	}
	return "", true
}

// hex4 decodes four hexadecimal digits (already validated).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		}
	}
	return r
}
