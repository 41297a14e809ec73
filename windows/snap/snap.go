// Package snap is the binary encoding of operator state in checkpoints: a
// Writer appends values, a Reader reads them back in the same order.
//
// Integers are varints (zigzag for signed), floats their IEEE bits, byte
// strings and slices a length then their elements. There are no field
// names: a checkpoint is read by the same code that wrote it, and Section
// marks let a reader notice when it is not. A Reader never panics on
// corrupt input: the first error sticks, later reads return zero values,
// and lengths are checked against the bytes left before anything is
// allocated.
package snap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Writer appends encoded values to a buffer.
type Writer struct {
	b []byte
}

// NewWriter returns a writer that appends to buf[:0].
func NewWriter(buf []byte) *Writer { return &Writer{b: buf[:0]} }

// Bytes returns the encoded state; it aliases the writer's buffer.
func (w *Writer) Bytes() []byte { return w.b }

// Len is the number of bytes written.
func (w *Writer) Len() int { return len(w.b) }

// Uint writes an unsigned varint.
func (w *Writer) Uint(u uint64) { w.b = binary.AppendUvarint(w.b, u) }

// Int writes a signed (zigzag) varint.
func (w *Writer) Int(i int64) { w.b = binary.AppendVarint(w.b, i) }

// Bool writes one byte.
func (w *Writer) Bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// Float writes a float64's bits, little-endian.
func (w *Writer) Float(f float64) { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(f)) }

// Blob writes a length and the bytes.
func (w *Writer) Blob(p []byte) {
	w.Uint(uint64(len(p)))
	w.b = append(w.b, p...)
}

// String writes a length and the string's bytes.
func (w *Writer) String(s string) {
	w.Uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// Ints writes a length and signed varints.
func (w *Writer) Ints(xs []int64) {
	w.Uint(uint64(len(xs)))
	for _, x := range xs {
		w.b = binary.AppendVarint(w.b, x)
	}
}

// Bools writes a length and a bitmap.
func (w *Writer) Bools(xs []bool) {
	w.Uint(uint64(len(xs)))
	var cur byte
	for i, x := range xs {
		if x {
			cur |= 1 << (i % 8)
		}
		if i%8 == 7 {
			w.b = append(w.b, cur)
			cur = 0
		}
	}
	if len(xs)%8 != 0 {
		w.b = append(w.b, cur)
	}
}

// Section writes a marker that Reader.Section checks, so that a reader out
// of step with the writer fails there with a clear error instead of
// reading garbage.
func (w *Writer) Section(name string) { w.String(name) }

// Reader reads values a Writer wrote.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a reader of b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Failf records an error (the first one sticks) and returns it.
func (r *Reader) Failf(format string, args ...any) error {
	if r.err == nil {
		r.err = fmt.Errorf("snapshot at byte %d: %s", r.off, fmt.Sprintf(format, args...))
	}
	return r.err
}

// Remaining is the number of bytes not read yet.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Done returns Err, or an error if bytes are left unread.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.b) {
		r.Failf("%d bytes left over", len(r.b)-r.off)
	}
	return r.err
}

var errShort = errors.New("truncated")

// Uint reads an unsigned varint.
func (r *Reader) Uint() uint64 {
	if r.err != nil {
		return 0
	}
	u, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.Failf("bad unsigned varint")
		return 0
	}
	r.off += n
	return u
}

// Int reads a signed varint.
func (r *Reader) Int() int64 {
	if r.err != nil {
		return 0
	}
	i, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.Failf("bad varint")
		return 0
	}
	r.off += n
	return i
}

// Bool reads one byte, 0 or 1.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if r.off >= len(r.b) {
		r.Failf("%v", errShort)
		return false
	}
	v := r.b[r.off]
	if v > 1 {
		r.Failf("bad bool %d", v)
		return false
	}
	r.off++
	return v == 1
}

// Float reads a float64.
func (r *Reader) Float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.Failf("%v", errShort)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return f
}

// Len reads a count of items that take at least minBytes each (0 for
// items that may take none) and checks that many could be left, so a
// corrupt count never makes the caller allocate beyond the input's size.
func (r *Reader) Len(minBytes int) int {
	u := r.Uint()
	if r.err != nil {
		return 0
	}
	if u > math.MaxInt32 || (minBytes > 0 && u > uint64(r.Remaining()/minBytes)) {
		r.Failf("count %d exceeds the %d bytes left", u, r.Remaining())
		return 0
	}
	return int(u)
}

// Blob reads a byte string; the result is a copy.
func (r *Reader) Blob() []byte {
	n := r.Len(1)
	if r.err != nil {
		return nil
	}
	p := make([]byte, n)
	copy(p, r.b[r.off:])
	r.off += n
	return p
}

// String reads a string.
func (r *Reader) String() string {
	n := r.Len(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

// Ints reads signed varints.
func (r *Reader) Ints() []int64 {
	n := r.Len(1)
	if r.err != nil {
		return nil
	}
	xs := make([]int64, n)
	for i := range xs {
		xs[i] = r.Int()
	}
	if r.err != nil {
		return nil
	}
	return xs
}

// Bools reads a bitmap.
func (r *Reader) Bools() []bool {
	u := r.Uint()
	if r.err != nil {
		return nil
	}
	if u > math.MaxInt32 || (u+7)/8 > uint64(r.Remaining()) {
		r.Failf("bitmap of %d exceeds the %d bytes left", u, r.Remaining())
		return nil
	}
	xs := make([]bool, u)
	for i := range xs {
		xs[i] = r.b[r.off+i/8]&(1<<(i%8)) != 0
	}
	r.off += int(u+7) / 8
	return xs
}

// Section checks a marker written by Writer.Section.
func (r *Reader) Section(name string) error {
	if got := r.String(); r.err == nil && got != name {
		r.Failf("expected section %q, found %q", name, got)
	}
	return r.err
}
