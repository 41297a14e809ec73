package exec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// KeyCodec turns the group-key columns of a batch into one byte string per
// row (equal strings = same group, NULLs included: "NULL group keys form
// one group") and back into columns when windows are emitted.
//
// Encoding, per column: a tag byte (0 NULL, 1 value) and, for a value,
// 8 bytes little-endian for BIGINT/DOUBLE/TIMESTAMP, 1 byte for BOOLEAN,
// or a uvarint length and the bytes for TEXT. Doubles are normalised so
// that -0 and 0, and all NaNs, are one group each.
type KeyCodec struct {
	types []arrow.DataType
	sizes []int // scratch: encoded size per row
	buf   []byte
	rows  [][]byte
}

// NewKeyCodec returns a codec for key columns of the given types.
func NewKeyCodec(types []arrow.DataType) (*KeyCodec, error) {
	for _, t := range types {
		switch t.ID() {
		case arrow.INT64, arrow.FLOAT64, arrow.TIMESTAMP, arrow.BOOL, arrow.STRING:
		default:
			return nil, fmt.Errorf("group key of type %s is not supported", t)
		}
	}
	return &KeyCodec{types: types}, nil
}

// Encode encodes rows [0, n) of cols (the key columns, in order). The
// returned slices point into a buffer reused by the next call.
func (c *KeyCodec) Encode(cols []arrow.Array, n int) [][]byte {
	if len(cols) == 1 && c.types[0].ID() == arrow.STRING {
		return c.encodeString(cols[0].(*array.String), n)
	}
	c.sizes = resize(c.sizes, n)
	clear(c.sizes)
	for j, col := range cols {
		switch c.types[j].ID() {
		case arrow.STRING:
			s := col.(*array.String)
			for i := 0; i < n; i++ {
				c.sizes[i]++
				if s.IsValid(i) {
					l := len(s.Value(i))
					c.sizes[i] += uvarintLen(uint64(l)) + l
				}
			}
		case arrow.BOOL:
			for i := 0; i < n; i++ {
				c.sizes[i] += 1 + int(boolToInt(col.IsValid(i)))
			}
		default:
			for i := 0; i < n; i++ {
				c.sizes[i] += 1 + 8*int(boolToInt(col.IsValid(i)))
			}
		}
	}
	total := 0
	for _, s := range c.sizes {
		total += s
	}
	c.buf = resize(c.buf, total)
	c.rows = resize(c.rows, n)
	off := 0
	for i := 0; i < n; i++ {
		c.rows[i] = c.buf[off : off : off+c.sizes[i]]
		off += c.sizes[i]
	}
	for j, col := range cols {
		switch c.types[j].ID() {
		case arrow.INT64:
			v := col.(*array.Int64).Int64Values()
			for i := 0; i < n; i++ {
				c.rows[i] = appendFixed(c.rows[i], col.IsValid(i), uint64(v[i]))
			}
		case arrow.TIMESTAMP:
			v := col.(*array.Timestamp).TimestampValues()
			for i := 0; i < n; i++ {
				c.rows[i] = appendFixed(c.rows[i], col.IsValid(i), uint64(v[i]))
			}
		case arrow.FLOAT64:
			v := col.(*array.Float64).Float64Values()
			for i := 0; i < n; i++ {
				c.rows[i] = appendFixed(c.rows[i], col.IsValid(i), normFloatBits(v[i]))
			}
		case arrow.BOOL:
			b := col.(*array.Boolean)
			for i := 0; i < n; i++ {
				if !b.IsValid(i) {
					c.rows[i] = append(c.rows[i], 0)
					continue
				}
				c.rows[i] = append(c.rows[i], 1, byte(boolToInt(b.Value(i))))
			}
		case arrow.STRING:
			s := col.(*array.String)
			for i := 0; i < n; i++ {
				if !s.IsValid(i) {
					c.rows[i] = append(c.rows[i], 0)
					continue
				}
				v := s.Value(i)
				c.rows[i] = append(c.rows[i], 1)
				c.rows[i] = binary.AppendUvarint(c.rows[i], uint64(len(v)))
				c.rows[i] = append(c.rows[i], v...)
			}
		}
	}
	return c.rows
}

// encodeString is Encode of one TEXT key column, the common case, in two
// tight passes over the column's offsets and bytes.
func (c *KeyCodec) encodeString(s *array.String, n int) [][]byte {
	offs := s.ValueOffsets()
	data := s.ValueBytes()
	base := offs[0]
	total := 0
	for i := 0; i < n; i++ {
		l := int(offs[i+1] - offs[i])
		total += 1 + uvarintLen(uint64(l)) + l
	}
	c.buf = resize(c.buf, total)
	c.rows = resize(c.rows, n)
	buf, rows := c.buf, c.rows
	off := 0
	nulls := s.NullN() > 0
	for i := 0; i < n; i++ {
		start := off
		if nulls && s.IsNull(i) {
			buf[off] = 0
			off++
			rows[i] = buf[start:off:off]
			continue
		}
		lo, hi := offs[i]-base, offs[i+1]-base
		l := int(hi - lo)
		buf[off] = 1
		off++
		if l < 0x80 {
			buf[off] = byte(l)
			off++
		} else {
			off += binary.PutUvarint(buf[off:], uint64(l))
		}
		off += copy(buf[off:], data[lo:hi])
		rows[i] = buf[start:off:off]
	}
	return rows
}

// Decode appends the key values encoded in key to one builder per key
// column (builders of the key types, in order).
func (c *KeyCodec) Decode(key []byte, bs []array.Builder) error {
	for j, t := range c.types {
		if len(key) == 0 {
			return fmt.Errorf("key truncated at column %d", j)
		}
		tag := key[0]
		key = key[1:]
		if tag == 0 {
			bs[j].AppendNull()
			continue
		}
		switch t.ID() {
		case arrow.INT64, arrow.TIMESTAMP, arrow.FLOAT64:
			if len(key) < 8 {
				return fmt.Errorf("key truncated in column %d", j)
			}
			u := binary.LittleEndian.Uint64(key)
			key = key[8:]
			switch b := bs[j].(type) {
			case *array.Int64Builder:
				b.Append(int64(u))
			case *array.TimestampBuilder:
				b.Append(arrow.Timestamp(int64(u)))
			case *array.Float64Builder:
				b.Append(math.Float64frombits(u))
			}
		case arrow.BOOL:
			bs[j].(*array.BooleanBuilder).Append(key[0] == 1)
			key = key[1:]
		case arrow.STRING:
			l, n := binary.Uvarint(key)
			if n <= 0 || uint64(len(key)-n) < l {
				return fmt.Errorf("key truncated in text column %d", j)
			}
			// BinaryBuilder.Append copies the bytes: no string per row.
			bs[j].(*array.StringBuilder).BinaryBuilder.Append(key[n : n+int(l)])
			key = key[n+int(l):]
		}
	}
	if len(key) != 0 {
		return fmt.Errorf("%d bytes left over after decoding a key", len(key))
	}
	return nil
}

func appendFixed(b []byte, valid bool, u uint64) []byte {
	if !valid {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.LittleEndian.AppendUint64(b, u)
}

func normFloatBits(f float64) uint64 {
	switch {
	case f == 0:
		return 0 // -0 and +0 are one group
	case math.IsNaN(f):
		return 0x7ff8000000000001
	}
	return math.Float64bits(f)
}

func boolToInt(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, max(n, 2*cap(s)))
	}
	return s[:n]
}
