package source

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
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
// Decoding is one pass over the message by a hand-written scanner (scan)
// that checks the JSON and writes each matched field straight into its
// column; anything it is not sure of, rejects included, goes to a
// fastjson parse (parseSlow) that decides and words the reason. Once
// the column buffers have grown, a message that becomes a row allocates
// nothing either way.
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

	// Of scan: names are the column names; byLen[n] lists the columns
	// whose name is n bytes long; taken[i] is how column i matched in the
	// current message (a match*); unesc[i] holds column i's string
	// value when it had escapes (or came from parseSlow). hints[j] is 1 +
	// the column the j-th field of the last message matched exactly, if
	// its name needs no escaping (else 0): producers write fields in the
	// same order, so one comparison usually finds the column.
	names []string
	kinds []kind
	keys  []keyWords
	byLen [][]int
	taken []uint8
	unesc [][]byte
	hints [maxHints]uint16

	// rowNulls says a column may be null in the row being decoded;
	// nullCols counts the columns with a null in the batch. While both
	// are zero, no validity bitmap is touched.
	rowNulls bool
	nullCols int
	// slowOnly (tests) skips scan.
	slowOnly bool
}

// maxHints is how many fields of a message Decoder.hints covers.
const maxHints = 32

// field is one declared column and the rows of the current batch.
type field struct {
	name string
	kind kind
	// valid is the validity bitmap, bit i for row i, kept only once the
	// batch has a null (nulls > 0).
	valid []byte
	nulls int
	// rowNull says the column is null in the row being decoded.
	rowNull bool
	i64     []int64   // BIGINT, TIMESTAMP (ms)
	f64     []float64 // DOUBLE PRECISION
	bits    []byte    // BOOLEAN, a bitmap
	offs    []int32   // TEXT: offsets, len rows+1
	data    []byte    // TEXT: the bytes
}

// cell is one value converted by parseSlow, held until every column of
// the message converted so that a reject appends nothing.
type cell struct {
	null bool
	i    int64 // BIGINT, BOOLEAN (0/1), TIMESTAMP (ms)
	f    float64
	// TEXT values are in the column's Decoder.unesc buffer.
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
		taken:   make([]uint8, len(cols)),
		unesc:   make([][]byte, len(cols)),
	}
	for i, c := range cols {
		k, _ := kindOf(c.Type)
		d.fields[i] = field{name: c.Name, kind: k}
		if k == kindString {
			d.fields[i].offs = []int32{0}
		}
		d.names = append(d.names, c.Name)
		d.kinds = append(d.kinds, k)
		d.keys = append(d.keys, newKeyWords(c.Name))
		for len(d.byLen) <= len(c.Name) {
			d.byLen = append(d.byLen, nil)
		}
		d.byLen[len(c.Name)] = append(d.byLen[len(c.Name)], i)
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
	d.rows, d.nullCols = 0, 0
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
//
// Most messages take one pass of scan, which checks the JSON and writes
// the matched fields into the columns as it goes. A message scan is not
// sure of (a reject, or a rare shape such as an escaped field name) goes
// through the fastjson path, parseSlow and convert, which decides whether
// it is a row or a reject and words the reason; scan accepts only
// messages that path accepts, with the same values (sameAsSlow, used by
// TestDecode, TestScanRandom and FuzzDecode, checks).
func (d *Decoder) Append(seq uint64, payload []byte) (reason string, ok bool) {
	if !d.slowOnly {
		if d.scan(payload) {
			d.commitRow(seq)
			return "", true
		}
		d.dropRow()
	}
	if reason, ok := d.parseSlow(payload); !ok {
		return reason, false
	}
	row := d.rows
	for i := range d.fields {
		f, c := &d.fields[i], &d.cells[i]
		switch {
		case c.null:
			f.setNull(row)
		case f.kind == kindInt64, f.kind == kindTimestamp:
			f.setInt(row, c.i)
		case f.kind == kindFloat64:
			f.setFloat(row, c.f)
		case f.kind == kindBool:
			f.setBool(row, c.i != 0)
		case f.kind == kindString:
			f.setText(row, d.unesc[i])
		}
	}
	d.rowNulls = true
	d.commitRow(seq)
	return "", true
}

// commitRow ends the row being written (number d.rows), whose every
// column has been set: it updates the validity bitmaps and appends seq.
func (d *Decoder) commitRow(seq uint64) {
	row := d.rows
	if d.rowNulls || d.nullCols > 0 {
		d.nullCols = 0
		for i := range d.fields {
			f := &d.fields[i]
			if f.rowNull || f.nulls > 0 {
				f.appendValidity(row, f.rowNull)
				d.nullCols++
			}
		}
	}
	d.seqs = append(d.seqs, int64(seq))
	d.rows++
}

// dropRow undoes the writes of a row that was not committed.
func (d *Decoder) dropRow() {
	for i := range d.fields {
		d.fields[i].truncate(d.rows)
	}
}

// parseSlow is the fastjson path: it parses payload and converts every
// column into d.cells, or returns the reject reason.
func (d *Decoder) parseSlow(payload []byte) (reason string, ok bool) {
	if reason, ok := d.parse(payload); !ok {
		return reason, false
	}
	for i := range d.fields {
		if reason, ok := d.convert(i); !ok {
			return reason, false
		}
	}
	return "", true
}

// The set methods write the value of column f in row number row, the row
// being decoded: they append it, or overwrite it when the row already has
// one (a field that matched the column better came later).

func (f *field) setInt(row int, v int64) {
	f.rowNull = false
	if len(f.i64) > row {
		f.i64[row] = v
		return
	}
	f.i64 = append(f.i64, v)
}

func (f *field) setFloat(row int, v float64) {
	f.rowNull = false
	if len(f.f64) > row {
		f.f64[row] = v
		return
	}
	f.f64 = append(f.f64, v)
}

func (f *field) setBool(row int, v bool) {
	f.rowNull = false
	if len(f.bits) == row/8 {
		f.bits = append(f.bits, 0)
	}
	if v {
		f.bits[row/8] |= 1 << (row % 8)
	} else {
		f.bits[row/8] &^= 1 << (row % 8)
	}
}

func (f *field) setText(row int, s []byte) {
	f.rowNull = false
	if len(f.offs) > row+1 {
		f.data = f.data[:f.offs[row]]
		f.offs = f.offs[:row+1]
	}
	f.appendText(s)
	f.offs = append(f.offs, int32(len(f.data)))
}

// setNull makes the column null in row number row.
func (f *field) setNull(row int) {
	switch f.kind {
	case kindInt64, kindTimestamp:
		f.setInt(row, 0)
	case kindFloat64:
		f.setFloat(row, 0)
	case kindBool:
		f.setBool(row, false)
	case kindString:
		f.setText(row, nil)
	}
	f.rowNull = true
}

// truncate drops what was written of row number rows (the one being
// decoded), leaving rows rows.
func (f *field) truncate(rows int) {
	f.i64 = f.i64[:min(len(f.i64), rows)]
	f.f64 = f.f64[:min(len(f.f64), rows)]
	n := (rows + 7) / 8
	f.bits = f.bits[:min(len(f.bits), n)]
	if rows%8 != 0 && len(f.bits) == n {
		f.bits[rows/8] &^= 1 << (rows % 8) // unused bits stay clear
	}
	if f.kind == kindString && len(f.offs) > rows+1 {
		f.data = f.data[:f.offs[rows]]
		f.offs = f.offs[:rows+1]
	}
}

// appendValidity sets the validity bit of row number row; null or not, it
// is called for every row once the batch has a null.
func (f *field) appendValidity(row int, null bool) {
	switch {
	case f.nulls > 0:
		if row%8 == 0 {
			f.valid = append(f.valid, 0)
		}
		if null {
			f.nulls++
		} else {
			f.valid[row/8] |= 1 << (row % 8)
		}
	case null:
		// The first null of the batch: only now is the bitmap needed.
		f.valid = f.valid[:0]
		for range row / 8 {
			f.valid = append(f.valid, 0xff)
		}
		f.valid = append(f.valid, byte(1)<<(row%8)-1)
		f.nulls = 1
	}
}

// appendText appends s to f.data. Unlike append(f.data, s...), it stores
// f.data's pointer only when it grows, which spares a write barrier per
// row while the garbage collector runs.
func (f *field) appendText(s []byte) {
	n := len(f.data)
	if cap(f.data)-n < len(s) {
		f.data = append(f.data, s...)
		return
	}
	f.data = f.data[:n+len(s)]
	copy(f.data[n:], s)
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
		d.unesc[i] = append(d.unesc[i][:0], s...)
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

// How a column matched a field of the current message (Decoder.taken).
const (
	matchNone  uint8 = iota
	matchFold        // a field equal to the name ignoring ASCII case
	matchExact       // a field equal to the name
)

// maxScanDepth bounds how deeply scan follows nested values before it
// leaves the message to the parser, whose limit (fastjson.MaxDepth) is
// far above it.
const maxScanDepth = 64

// scan is Append's fast path: one pass over payload that checks it is a
// JSON object (RFC 8259: strict numbers, strings free of control
// characters, valid UTF-8, escapes with paired surrogates) and writes the
// fields that columns match into row d.rows of the columns, by the rules
// on Decoder. It allocates nothing (once the columns' buffers have grown)
// and calls no parser.
//
// It returns false when it is not sure the message is a row: bad JSON,
// anything convert would reject (a missing or null event time, a wrong
// type, a number out of range), and shapes it leaves alone (an escaped
// field name, nesting deeper than maxScanDepth). Append then drops what
// scan wrote and asks parseSlow, so every reject and its reason come from
// there. When it returns true, the row holds what parseSlow would have
// converted, ready for commitRow.
func (d *Decoder) scan(b []byte) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	clear(d.taken)
	d.rowNulls = false
	ntaken := 0
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for nf := 0; ; nf++ {
			if i >= len(b) || b[i] != '"' {
				return false
			}
			ks, ke := i+1, -1
			var k int
			var m uint8
			if nf < maxHints && d.hints[nf] > 0 {
				k = int(d.hints[nf]) - 1
				if e := d.keys[k].match(b, ks); e >= 0 {
					ke, m = e, matchExact
				}
			}
			if ke < 0 {
				ke = plainEnd(b, ks)
				if ke >= len(b) || b[ke] != '"' {
					end, esc, ok := scanString(b, ke)
					if !ok || esc {
						return false
					}
					ke = end
				}
				k, m = d.lookup(b[ks:ke])
				if nf < maxHints {
					d.hints[nf] = 0
					if m == matchExact && plainEnd(b, ks) == ke {
						d.hints[nf] = uint16(k) + 1
					}
				}
			}
			i = skipWS(b, ke+1)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i = skipWS(b, i+1)
			if i >= len(b) {
				return false
			}
			if m > d.taken[k] {
				if d.taken[k] == matchNone {
					ntaken++
				}
				d.taken[k] = m
				i = d.take(k, b, i)
			} else {
				i = skipValue(b, i, 1)
			}
			if i < 0 {
				return false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return false
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] != '}' {
				return false
			}
			i++
			break
		}
	}
	if skipWS(b, i) != len(b) {
		return false
	}
	if ntaken < len(d.taken) {
		d.rowNulls = true
		for k, m := range d.taken {
			if m == matchNone {
				d.fields[k].setNull(d.rows)
			}
		}
	}
	return !d.fields[d.timeCol].rowNull
}

// keyWords is a column name and its closing quote as two little-endian
// words with masks, so that a field name in a payload can be compared
// with two loads.
type keyWords struct {
	w0, m0, w1, m1 uint64
	name           string
}

func newKeyWords(name string) keyWords {
	k := keyWords{name: name}
	q := name + `"`
	for j := 0; j < len(q) && j < 16; j++ {
		w, m := &k.w0, &k.m0
		if j >= 8 {
			w, m = &k.w1, &k.m1
		}
		*w |= uint64(q[j]) << (8 * (j % 8))
		*m |= 0xff << (8 * (j % 8))
	}
	return k
}

// match reports whether b[i:] starts with the name and a quote, and
// returns the index of the quote, or -1. The name must need no escaping
// in JSON (plainEnd finds no byte of it).
func (k *keyWords) match(b []byte, i int) int {
	if n := len(k.name); n < 16 && len(b)-i >= 16 {
		x0 := binary.LittleEndian.Uint64(b[i:])
		x1 := binary.LittleEndian.Uint64(b[i+8:])
		if x0&k.m0 == k.w0 && x1&k.m1 == k.w1 {
			return i + n
		}
		return -1
	}
	if e := i + len(k.name); e < len(b) && b[e] == '"' && string(b[i:e]) == k.name {
		return e
	}
	return -1
}

// lookup returns the column a field name matches and how; matchNone (and
// column 0) when none does. Column names are distinct ignoring ASCII case,
// so at most one column matches.
func (d *Decoder) lookup(key []byte) (col int, m uint8) {
	if len(key) >= len(d.byLen) {
		return 0, matchNone
	}
	cands := d.byLen[len(key)]
	for _, k := range cands {
		if string(key) == d.names[k] {
			return k, matchExact
		}
	}
	for _, k := range cands {
		if equalFoldASCII(key, d.names[k]) {
			return k, matchFold
		}
	}
	return 0, matchNone
}

// take converts the value at b[i:] into row d.rows of column k and
// returns the index after it, or -1 when the value is not valid JSON or
// does not convert (scan gives up).
func (d *Decoder) take(k int, b []byte, i int) int {
	f := &d.fields[k]
	row := d.rows
	if b[i] == 'n' {
		f.setNull(row)
		d.rowNulls = true
		return literalEnd(b, i, "null")
	}
	switch f.kind {
	case kindInt64:
		n, end := scanInt(b, i)
		f.setInt(row, n)
		return end
	case kindTimestamp:
		if b[i] != '"' {
			n, end := scanInt(b, i)
			if n < minMillis || n > maxMillis {
				return -1
			}
			f.setInt(row, n)
			return end
		}
		ms, end := scanTimestamp(b, i+1, &d.dates)
		if end < 0 {
			var s []byte
			if s, end = d.stringValue(k, b, i+1); end < 0 {
				return -1
			}
			var ok bool
			if ms, ok = parseTimestamp(s, &d.dates); !ok {
				return -1
			}
		}
		f.setInt(row, ms)
		return end
	case kindString:
		if b[i] != '"' {
			return -1
		}
		s, end := d.stringValue(k, b, i+1)
		if end >= 0 {
			f.setText(row, s)
		}
		return end
	case kindFloat64:
		end := scanNumber(b, i)
		if end < 0 {
			return -1
		}
		x, err := strconv.ParseFloat(unsafe.String(&b[i], end-i), 64)
		if err != nil {
			return -1
		}
		f.setFloat(row, x)
		return end
	case kindBool:
		switch b[i] {
		case 't':
			f.setBool(row, true)
			return literalEnd(b, i, "true")
		case 'f':
			f.setBool(row, false)
			return literalEnd(b, i, "false")
		}
	}
	return -1
}

// stringValue scans the string whose text starts at b[i] (after the
// quote) and returns its unescaped bytes and the index after the closing
// quote, or -1. The bytes are b's own or, when the string has escapes,
// d.unesc[k]'s.
func (d *Decoder) stringValue(k int, b []byte, i int) ([]byte, int) {
	j := plainEnd(b, i)
	if j < len(b) && b[j] == '"' {
		return b[i:j], j + 1
	}
	end, esc, ok := scanString(b, j)
	if !ok {
		return nil, -1
	}
	if !esc {
		return b[i:end], end + 1
	}
	d.unesc[k] = unescape(d.unesc[k][:0], b[i:end])
	return d.unesc[k], end + 1
}

// skipWS returns the index of the first byte at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// literalEnd returns the index after lit (true, false, null) at b[i:], or
// -1.
func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// strSpecial marks the bytes that end the plain run of a JSON string: the
// quote, the backslash, control characters, and non-ASCII bytes (whose
// UTF-8 must be checked).
var strSpecial = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80
	}
	return t
}()

// plainEnd returns the index of the first strSpecial byte at or after i,
// or len(b).
func plainEnd(b []byte, i int) int {
	for len(b)-i >= 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for i < len(b) && !strSpecial[b[i]] {
		i++
	}
	return i
}

// specialBytes returns the high bit of each byte of x (little-endian)
// that is strSpecial; of the bytes after the first one it marks, some may
// be marked wrongly (a borrow crosses into them), so only the lowest mark
// is to be used. A byte is a quote or a backslash when its XOR with one
// is zero (v-1 borrows into its high bit while v's own is clear), below
// 0x20 when x-0x20 borrows likewise, and non-ASCII when its high bit is
// set.
func specialBytes(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	return ((q-ones)&^q | (bs-ones)&^bs | (x-0x20*ones)&^x | x) & highs
}

// scanString checks the rest of a string from b[i] (inside it) and returns
// the index of its closing quote and whether it has escapes. ok is false
// for a control character, an invalid escape, a \u escape of a surrogate
// that is not a high one followed by a low one, invalid UTF-8, or no
// closing quote.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	for i < len(b) {
		c := b[i]
		switch {
		case !strSpecial[c]:
			i++
		case c == '"':
			return i, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return 0, false, false
			}
			r, ok := hex4At(b, i+2)
			if !ok {
				return 0, false, false
			}
			i += 6
			if r < 0xD800 || r > 0xDFFF {
				continue
			}
			if r > 0xDBFF || i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
				return 0, false, false
			}
			lo, ok := hex4At(b, i+2)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, false, false
			}
			i += 6
		case c < 0x20:
			return 0, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, false
			}
			i += size
		}
	}
	return 0, false, false
}

// hex4At decodes the four hexadecimal digits at b[i:].
func hex4At(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the text of s, a string's contents already checked by
// scanString, to dst with its escapes decoded.
func unescape(dst, s []byte) []byte {
	for {
		j := bytes.IndexByte(s, '\\')
		if j < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:j]...)
		c := s[j+1]
		s = s[j+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[:4])
			s = s[4:]
			if r >= 0xD800 && r <= 0xDFFF { // a high surrogate, then \u and a low one
				r = utf16.DecodeRune(r, hex4(s[2:6]))
				s = s[6:]
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// skipValue checks the JSON value at b[i:], depth levels deep, and
// returns the index after it, or -1.
func skipValue(b []byte, i, depth int) int {
	switch b[i] {
	case '"':
		j := plainEnd(b, i+1)
		if j < len(b) && b[j] == '"' {
			return j + 1
		}
		end, _, ok := scanString(b, j)
		if !ok {
			return -1
		}
		return end + 1
	case '{', '[':
		if depth >= maxScanDepth {
			return -1
		}
		obj := b[i] == '{'
		close := byte(']')
		if obj {
			close = '}'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1
		}
		for {
			if i >= len(b) {
				return -1
			}
			if obj {
				if b[i] != '"' {
					return -1
				}
				if i = skipValue(b, i, depth+1); i < 0 {
					return -1
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return -1
				}
				i = skipWS(b, i+1)
				if i >= len(b) {
					return -1
				}
			}
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == close {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
		}
	case 't':
		return literalEnd(b, i, "true")
	case 'f':
		return literalEnd(b, i, "false")
	case 'n':
		return literalEnd(b, i, "null")
	}
	return scanNumber(b, i)
}

// scanNumber checks the JSON number at b[i:] (RFC 8259,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and returns the index
// after it, or -1.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digitsEnd(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digitsEnd(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsEnd(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// scanInt parses the JSON integer at b[i:] and returns it and the index
// after it; end is -1 when the number is not valid JSON, has a fraction or
// an exponent, or does not fit int64.
func scanInt(b []byte, i int) (n int64, end int) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var u uint64
	// Eight bytes at a time while they last; u does not wrap before the
	// 20th digit, and 20 digits never fit.
	for len(b)-i >= 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		nd := leadingDigits(x)
		if nd < 8 {
			if nd > 0 {
				u = u*pow10[nd] + eightDigits(x<<(64-8*nd))
				i += nd
			}
			goto digitsDone
		}
		u = u*1e8 + eightDigits(x)
		i += 8
	}
	for i < len(b) {
		dg := b[i] - '0'
		if dg > 9 {
			break
		}
		u = u*10 + uint64(dg)
		i++
	}
digitsDone:
	switch nd := i - start; {
	case nd == 0, nd > 1 && b[start] == '0':
		return 0, -1
	case nd >= 19:
		limit := uint64(1<<63 - 1)
		if neg {
			limit = 1 << 63
		}
		if nd > 19 || u > limit {
			return 0, -1
		}
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, -1
	}
	if neg {
		return int64(-u), i // -(1<<63) wraps to itself, as wanted
	}
	return int64(u), i
}

var pow10 = [...]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000}

// leadingDigits returns how many of the eight bytes of x (little-endian,
// the first byte lowest) are ASCII digits before the first that is not.
// Per byte, adding 0x46 sets the high bit of a byte above '9' (or the
// subtraction does, for one that wraps) and subtracting 0x30 sets it for
// a byte below '0'; carries and borrows only cross from bytes after the
// first non-digit, which do not matter.
func leadingDigits(x uint64) int {
	const highs = 0x8080808080808080
	t := ((x + 0x4646464646464646) | (x - 0x3030303030303030)) & highs
	return bits.TrailingZeros64(t) / 8
}

// eightDigits returns the value of eight ASCII digits (or NUL bytes,
// read as zeros) held little-endian in x, the first digit lowest (the
// SWAR method of simdjson's parse_eight_digits_unrolled).
func eightDigits(x uint64) uint64 {
	x = (x & 0x0F0F0F0F0F0F0F0F) * 2561 >> 8
	x = (x & 0x00FF00FF00FF00FF) * 6553601 >> 16
	return (x & 0x0000FFFF0000FFFF) * 42949672960001 >> 32
}
