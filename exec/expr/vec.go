package expr

// Low-level helpers over Arrow buffers. Arrays read here may be slices with
// a non-zero offset; arrays built here always have offset 0.

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// bitBytes is the number of bytes holding n bits.
func bitBytes(n int) int { return int(bitutil.BytesForBits(int64(n))) }

// b2u converts a bool to 0 or 1 without a branch.
func b2u(b bool) byte {
	var x byte
	if b {
		x = 1
	}
	return x
}

// validity returns a's validity bitmap and the bit offset of row 0 in it,
// or nil when a has no nulls. An array of type Null gets an all-zero bitmap.
func validity(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	if isNullType(a.DataType()) {
		return make([]byte, bitBytes(a.Len())), 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

// alignedValidity returns a's validity as a bitmap starting at bit 0 of its
// first byte (copied when a's offset is not a multiple of 8), or nil when a
// has no nulls. The result may alias a's buffer: do not modify it.
func alignedValidity(a arrow.Array) []byte {
	bm, off := validity(a)
	if bm == nil {
		return nil
	}
	return alignBits(bm, off, a.Len())
}

// alignBits returns n bits of bm starting at bit off, aligned to bit 0.
func alignBits(bm []byte, off, n int) []byte {
	if off%8 == 0 {
		return bm[off/8 : off/8+bitBytes(n)]
	}
	out := make([]byte, bitBytes(n))
	bitutil.CopyBitmap(bm, off, n, out, 0)
	return out
}

// boolValues returns the value bits of a Boolean array aligned to bit 0.
func boolValues(a arrow.Array) []byte {
	d := a.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return make([]byte, bitBytes(d.Len()))
	}
	return alignBits(d.Buffers()[1].Bytes(), d.Offset(), d.Len())
}

// newBitmap allocates a bitmap of n bits, all set to val.
func newBitmap(mem memory.Allocator, n int, val bool) *memory.Buffer {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(bitBytes(n))
	bs := buf.Bytes()
	fill := byte(0)
	if val {
		fill = 0xFF
	}
	for i := range bs {
		bs[i] = fill
	}
	return buf
}

// andValidity returns a bitmap with bit i set when every array of arrs is
// valid at row i, or nil when none of them has nulls.
func andValidity(mem memory.Allocator, n int, arrs ...arrow.Array) *memory.Buffer {
	var out *memory.Buffer
	for _, a := range arrs {
		if a == nil || a.NullN() == 0 {
			continue
		}
		v := alignedValidity(a)
		if out == nil {
			out = newBitmap(mem, n, true)
		}
		o := out.Bytes()
		for i := range o {
			o[i] &= v[i]
		}
	}
	return out
}

// newWords allocates a buffer of n 8-byte values and returns it with its
// int64 view. Contents are unspecified.
func newWords(mem memory.Allocator, n int) (*memory.Buffer, []int64) {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(n * 8)
	return buf, arrow.Int64Traits.CastFromBytes(buf.Bytes())
}

// newFloats allocates a buffer of n float64 values.
func newFloats(mem memory.Allocator, n int) (*memory.Buffer, []float64) {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(n * 8)
	return buf, arrow.Float64Traits.CastFromBytes(buf.Bytes())
}

// newArray builds an array of type dt and length n from bufs (validity
// first, nil when there are no nulls) and takes over the caller's
// reference to each buffer.
func newArray(dt arrow.DataType, n int, bufs ...*memory.Buffer) arrow.Array {
	nulls := 0
	if bufs[0] != nil {
		nulls = n - bitutil.CountSetBits(bufs[0].Bytes(), 0, n)
		if nulls == 0 {
			bufs[0].Release()
			bufs[0] = nil
		}
	}
	data := array.NewData(dt, n, bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	a := array.MakeFromData(data)
	data.Release()
	return a
}

// newBool builds a Boolean array from value bits and validity (may be nil).
func newBool(n int, valid, vals *memory.Buffer) arrow.Array {
	return newArray(arrow.FixedWidthTypes.Boolean, n, valid, vals)
}

// words returns the values of an array of an 8-byte fixed-width type
// (BIGINT, DOUBLE PRECISION as raw bits, timestamps) from its offset.
func words(a arrow.Array) []int64 {
	d := a.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return nil
	}
	return arrow.Int64Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()]
}

// floats returns the values of a DOUBLE PRECISION array from its offset.
func floats(a arrow.Array) []float64 {
	d := a.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return nil
	}
	return arrow.Float64Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset() : d.Offset()+d.Len()]
}

// strs gives direct access to the values of a String array.
type strs struct {
	offs []int32 // len n+1, absolute offsets into the original data
	data []byte  // the data from offs[0] on
	base int32   // offs[0]
}

func stringsOf(a arrow.Array) strs {
	s := a.(*array.String)
	offs := s.ValueOffsets()
	var base int32
	if len(offs) > 0 {
		base = offs[0]
	}
	return strs{offs: offs, data: s.ValueBytes(), base: base}
}

func (s strs) at(i int) []byte { return s.data[s.offs[i]-s.base : s.offs[i+1]-s.base] }

// relabel returns a's data under type dt (same physical layout).
func relabel(a arrow.Array, dt arrow.DataType) arrow.Array {
	d := a.Data()
	nd := array.NewData(dt, d.Len(), d.Buffers(), nil, a.NullN(), d.Offset())
	out := array.MakeFromData(nd)
	nd.Release()
	return out
}

// constArray materializes l as n equal values.
func constArray(mem memory.Allocator, l *literal, n int) arrow.Array {
	if l.null {
		return array.MakeArrayOfNull(mem, l.typ, n)
	}
	switch l.typ.ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		buf, v := newWords(mem, n)
		for i := range v {
			v[i] = l.i
		}
		return newArray(l.typ, n, nil, buf)
	case arrow.FLOAT64:
		buf, v := newFloats(mem, n)
		for i := range v {
			v[i] = l.f
		}
		return newArray(l.typ, n, nil, buf)
	case arrow.BOOL:
		return newBool(n, nil, newBitmap(mem, n, l.b))
	case arrow.STRING:
		bld := array.NewStringBuilder(mem)
		defer bld.Release()
		bld.Reserve(n)
		bld.ReserveData(n * len(l.s))
		for range n {
			bld.Append(l.s)
		}
		return bld.NewArray()
	}
	return array.MakeArrayOfNull(mem, l.typ, n)
}

// take returns a new array whose row i is a's row idx[i], or NULL where
// idx[i] < 0. It handles every type; the engine's types take a fast path.
func take(mem memory.Allocator, a arrow.Array, idx []int32) (arrow.Array, error) {
	n := len(idx)
	dt := a.DataType()
	var valid *memory.Buffer
	needValid := a.NullN() > 0
	if !needValid {
		for _, j := range idx {
			if j < 0 {
				needValid = true
				break
			}
		}
	}
	if needValid && dt.ID() != arrow.NULL {
		valid = newBitmap(mem, n, false)
		vb := valid.Bytes()
		src, off := validity(a)
		for i, j := range idx {
			if j >= 0 && (src == nil || bitutil.BitIsSet(src, off+int(j))) {
				vb[i>>3] |= 1 << (i & 7)
			}
		}
	}
	switch dt.ID() {
	case arrow.NULL:
		if valid != nil {
			valid.Release()
		}
		return array.NewNull(n), nil
	case arrow.INT64, arrow.FLOAT64, arrow.TIMESTAMP:
		src := words(a)
		buf, dst := newWords(mem, n)
		for i, j := range idx {
			if j >= 0 {
				dst[i] = src[j]
			} else {
				dst[i] = 0
			}
		}
		return newArray(dt, n, valid, buf), nil
	case arrow.BOOL:
		d := a.Data()
		src := d.Buffers()[1].Bytes()
		off := d.Offset()
		vals := newBitmap(mem, n, false)
		vb := vals.Bytes()
		for i, j := range idx {
			if j >= 0 && bitutil.BitIsSet(src, off+int(j)) {
				vb[i>>3] |= 1 << (i & 7)
			}
		}
		return newBool(n, valid, vals), nil
	case arrow.STRING:
		s := stringsOf(a)
		total := 0
		for _, j := range idx {
			if j >= 0 {
				total += int(s.offs[j+1] - s.offs[j])
			}
		}
		offBuf := memory.NewResizableBuffer(mem)
		offBuf.Resize((n + 1) * 4)
		offs := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
		dataBuf := memory.NewResizableBuffer(mem)
		dataBuf.Resize(total)
		data := dataBuf.Bytes()
		pos := 0
		offs[0] = 0
		for i, j := range idx {
			if j >= 0 {
				pos += copy(data[pos:], s.at(int(j)))
			}
			offs[i+1] = int32(pos)
		}
		return newArray(dt, n, valid, offBuf, dataBuf), nil
	}
	if valid != nil {
		valid.Release()
	}
	return takeGeneric(mem, a, idx)
}

// takeGeneric takes rows of any type by concatenating slices of runs of
// consecutive indices. It serves types the engine does not compute with
// but that a batch may carry.
func takeGeneric(mem memory.Allocator, a arrow.Array, idx []int32) (arrow.Array, error) {
	var parts []arrow.Array
	defer func() { releaseAll(parts) }()
	for i := 0; i < len(idx); {
		j := i + 1
		if idx[i] < 0 {
			for j < len(idx) && idx[j] < 0 {
				j++
			}
			parts = append(parts, array.MakeArrayOfNull(mem, a.DataType(), j-i))
		} else {
			for j < len(idx) && idx[j] == idx[j-1]+1 {
				j++
			}
			parts = append(parts, array.NewSlice(a, int64(idx[i]), int64(idx[i])+int64(j-i)))
		}
		i = j
	}
	if len(parts) == 0 {
		return array.MakeArrayOfNull(mem, a.DataType(), 0), nil
	}
	out, err := array.Concatenate(parts, mem)
	if err != nil {
		return nil, sqlerr.New(pgerrcode.InternalError, "take rows of type %s: %v", a.DataType(), err)
	}
	return out, nil
}

// takeBatch returns a new batch holding b's rows idx (see take).
func takeBatch(mem memory.Allocator, b arrow.RecordBatch, idx []int32) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, b.NumCols())
	defer func() { releaseAll(cols) }()
	for i := range cols {
		c, err := take(mem, b.Column(i), idx)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", b.ColumnName(i), err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(b.Schema(), cols, int64(len(idx))), nil
}

// pick builds an array of type dt and length n whose row i is row i of
// srcs[choice[i]], or NULL where choice[i] < 0. Every chosen source has
// length n and type dt.
func pick(mem memory.Allocator, dt arrow.DataType, n int, srcs []arrow.Array, choice []int32) (arrow.Array, error) {
	valid := newBitmap(mem, n, false)
	vb := valid.Bytes()
	for i, c := range choice {
		if c >= 0 && srcs[c].IsValid(i) {
			vb[i>>3] |= 1 << (i & 7)
		}
	}
	switch dt.ID() {
	case arrow.NULL:
		valid.Release()
		return array.NewNull(n), nil
	case arrow.INT64, arrow.FLOAT64, arrow.TIMESTAMP:
		ws := make([][]int64, len(srcs))
		for k, s := range srcs {
			if s != nil {
				ws[k] = words(s)
			}
		}
		buf, dst := newWords(mem, n)
		for i, c := range choice {
			if c >= 0 {
				dst[i] = ws[c][i]
			} else {
				dst[i] = 0
			}
		}
		return newArray(dt, n, valid, buf), nil
	case arrow.BOOL:
		vals := newBitmap(mem, n, false)
		out := vals.Bytes()
		for i, c := range choice {
			if c >= 0 && srcs[c].(*array.Boolean).Value(i) {
				out[i>>3] |= 1 << (i & 7)
			}
		}
		return newBool(n, valid, vals), nil
	case arrow.STRING:
		valid.Release()
		bld := array.NewStringBuilder(mem)
		defer bld.Release()
		bld.Reserve(n)
		for i, c := range choice {
			if c < 0 || srcs[c].IsNull(i) {
				bld.AppendNull()
				continue
			}
			bld.Append(srcs[c].(*array.String).Value(i))
		}
		return bld.NewArray(), nil
	}
	valid.Release()
	return nil, sqlerr.New(pgerrcode.InternalError, "cannot assemble values of type %s", dt)
}

// evalOn evaluates e for the rows sel of b (sorted, distinct; len(sel) == n
// means all rows). Rows outside sel are unspecified in the result. The
// whole batch is tried first; only when that fails are the selected rows
// evaluated alone, so an error raised by a row outside sel (a CASE branch
// the row does not take) does not fail the batch.
func evalOn(mem memory.Allocator, b arrow.RecordBatch, e Expr, sel []int32) (arrow.Array, error) {
	a, err := e.Eval(mem, b)
	n := nrows(b)
	if err == nil || len(sel) == n {
		return a, err
	}
	sub, terr := takeBatch(mem, b, sel)
	if terr != nil {
		return nil, terr
	}
	part, err := e.Eval(mem, sub)
	sub.Release()
	if err != nil {
		return nil, err
	}
	defer part.Release()
	inv := make([]int32, n)
	for i := range inv {
		inv[i] = -1
	}
	for j, r := range sel {
		inv[r] = int32(j)
	}
	return take(mem, part, inv)
}

// allRows returns the selection of every row 0..n-1.
func allRows(n int) []int32 {
	sel := make([]int32, n)
	for i := range sel {
		sel[i] = int32(i)
	}
	return sel
}
