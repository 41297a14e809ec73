package sink

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// column holds one column of a Memory table in Go memory, one slot per row.
// Rows are updated in place, which immutable Arrow arrays cannot do; Scan
// copies the slots into fresh Arrow arrays. Only the slice of the column's
// kind is used. A slot whose valid entry is false is NULL and its value is
// meaningless (strings are cleared so they free their memory).
type column struct {
	kind  kind
	typ   arrow.DataType
	valid []bool
	i64   []int64           // kindInt64
	f64   []float64         // kindFloat64
	str   []string          // kindString; owned copies, never views of Arrow buffers
	b     []bool            // kindBool
	ts    []arrow.Timestamp // kindTimestamp, kindTimestampTZ: ms since the Unix epoch, UTC
}

// span is a half-open range [lo, hi) of slots.
type span struct{ lo, hi int }

// resize makes the column n slots long. New slots are overwritten by the
// scatter that follows every resize.
func (c *column) resize(n int) {
	c.valid = resized(c.valid, n)
	switch c.kind {
	case kindInt64:
		c.i64 = resized(c.i64, n)
	case kindFloat64:
		c.f64 = resized(c.f64, n)
	case kindString:
		c.str = resized(c.str, n)
	case kindBool:
		c.b = resized(c.b, n)
	case kindTimestamp, kindTimestampTZ:
		c.ts = resized(c.ts, n)
	}
}

func resized[T any](s []T, n int) []T {
	if n > cap(s) {
		s = slices.Grow(s, n-len(s))
	}
	return s[:n]
}

// scatter writes row i of arr into slot slots[i], skipping rows whose slot
// is negative. arr must have the column's type (checked by checkChanges).
func (c *column) scatter(arr arrow.Array, slots []int) {
	switch c.kind {
	case kindInt64:
		vals := arr.(*array.Int64).Int64Values()
		for i, s := range slots {
			if s >= 0 {
				c.valid[s] = arr.IsValid(i)
				c.i64[s] = vals[i]
			}
		}
	case kindFloat64:
		vals := arr.(*array.Float64).Float64Values()
		for i, s := range slots {
			if s >= 0 {
				c.valid[s] = arr.IsValid(i)
				c.f64[s] = vals[i]
			}
		}
	case kindString:
		a := arr.(*array.String)
		for i, s := range slots {
			if s < 0 {
				continue
			}
			if a.IsValid(i) {
				c.valid[s] = true
				// Value is a view of the caller's buffer, which is
				// released after Apply returns.
				c.str[s] = strings.Clone(a.Value(i))
			} else {
				c.valid[s] = false
				c.str[s] = ""
			}
		}
	case kindBool:
		a := arr.(*array.Boolean)
		for i, s := range slots {
			if s >= 0 {
				c.valid[s] = a.IsValid(i)
				c.b[s] = a.IsValid(i) && a.Value(i)
			}
		}
	case kindTimestamp, kindTimestampTZ:
		vals := arr.(*array.Timestamp).TimestampValues()
		for i, s := range slots {
			if s >= 0 {
				c.valid[s] = arr.IsValid(i)
				c.ts[s] = vals[i]
			}
		}
	default:
		panic(fmt.Sprintf("sink: column of kind %d has no storage", c.kind))
	}
}

// clearSlot drops what slot s holds beyond its fixed size (a string).
func (c *column) clearSlot(s int) {
	if c.kind == kindString {
		c.str[s] = ""
	}
}

// compact keeps the slots whose live entry is true, in order.
func (c *column) compact(live []bool) {
	c.valid = compacted(c.valid, live)
	switch c.kind {
	case kindInt64:
		c.i64 = compacted(c.i64, live)
	case kindFloat64:
		c.f64 = compacted(c.f64, live)
	case kindString:
		c.str = compacted(c.str, live)
	case kindBool:
		c.b = compacted(c.b, live)
	case kindTimestamp, kindTimestampTZ:
		c.ts = compacted(c.ts, live)
	}
}

func compacted[T any](s []T, live []bool) []T {
	w := 0
	for i, ok := range live {
		if ok {
			s[w] = s[i]
			w++
		}
	}
	clear(s[w:])
	return s[:w]
}

// dropFront removes the first k slots.
func (c *column) dropFront(k int) {
	c.valid = droppedFront(c.valid, k)
	switch c.kind {
	case kindInt64:
		c.i64 = droppedFront(c.i64, k)
	case kindFloat64:
		c.f64 = droppedFront(c.f64, k)
	case kindString:
		c.str = droppedFront(c.str, k)
	case kindBool:
		c.b = droppedFront(c.b, k)
	case kindTimestamp, kindTimestampTZ:
		c.ts = droppedFront(c.ts, k)
	}
}

func droppedFront[T any](s []T, k int) []T {
	n := copy(s, s[k:])
	clear(s[n:])
	return s[:n]
}

// build copies the slots in runs into a new Arrow array of total rows,
// allocated from mem. The caller releases it.
func (c *column) build(mem memory.Allocator, runs []span, total int) arrow.Array {
	switch c.kind {
	case kindInt64:
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(total)
		for _, r := range runs {
			b.AppendValues(c.i64[r.lo:r.hi], c.valid[r.lo:r.hi])
		}
		return b.NewArray()
	case kindFloat64:
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(total)
		for _, r := range runs {
			b.AppendValues(c.f64[r.lo:r.hi], c.valid[r.lo:r.hi])
		}
		return b.NewArray()
	case kindString:
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.Reserve(total)
		size := 0
		for _, r := range runs {
			for _, s := range c.str[r.lo:r.hi] {
				size += len(s)
			}
		}
		b.ReserveData(size)
		for _, r := range runs {
			b.AppendValues(c.str[r.lo:r.hi], c.valid[r.lo:r.hi])
		}
		return b.NewArray()
	case kindBool:
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		b.Reserve(total)
		for _, r := range runs {
			b.AppendValues(c.b[r.lo:r.hi], c.valid[r.lo:r.hi])
		}
		return b.NewArray()
	case kindTimestamp, kindTimestampTZ:
		b := array.NewTimestampBuilder(mem, c.typ.(*arrow.TimestampType))
		defer b.Release()
		b.Reserve(total)
		for _, r := range runs {
			b.AppendValues(c.ts[r.lo:r.hi], c.valid[r.lo:r.hi])
		}
		return b.NewArray()
	}
	panic(fmt.Sprintf("sink: column of kind %d has no storage", c.kind))
}

// appendKey appends an encoding of row's key (the values of cols at row) to
// buf. Two rows get the same encoding exactly when PostgreSQL's UNIQUE
// NULLS NOT DISTINCT index would call their keys equal: NULL equals NULL,
// -0 equals +0 and NaN equals NaN. The string length prefix keeps the
// encoding unambiguous across columns.
func appendKey(buf []byte, cols []arrow.Array, kinds []kind, row int) []byte {
	for i, a := range cols {
		if a.IsNull(row) {
			buf = append(buf, 0)
			continue
		}
		buf = append(buf, 1)
		switch kinds[i] {
		case kindInt64:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(a.(*array.Int64).Value(row)))
		case kindFloat64:
			f := a.(*array.Float64).Value(row)
			var bits uint64
			switch {
			case f == 0: // -0 and +0
			case math.IsNaN(f):
				bits = 0x7ff8000000000001
			default:
				bits = math.Float64bits(f)
			}
			buf = binary.LittleEndian.AppendUint64(buf, bits)
		case kindString:
			s := a.(*array.String).Value(row)
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		case kindBool:
			if a.(*array.Boolean).Value(row) {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		case kindTimestamp, kindTimestampTZ:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(a.(*array.Timestamp).Value(row)))
		default:
			panic(fmt.Sprintf("sink: key column of kind %d", kinds[i]))
		}
	}
	return buf
}
