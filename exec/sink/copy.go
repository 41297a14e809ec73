package sink

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL's timestamp range, as milliseconds since the Unix epoch that
// pgx can encode: from 4713 BC (PostgreSQL's lower bound) to the largest
// microsecond count an int64 holds (pgx computes Unix microseconds).
const (
	minTimestampMillis int64 = -210_866_803_200_000
	maxTimestampMillis int64 = 9_223_372_036_854_775
)

// batchSource is a pgx.CopyFromSource over the columns cols of an Arrow
// batch. It reads the Arrow arrays directly: Values returns the same slice
// every row, whose elements are per-column cells pointing at the current
// row, and pgx encodes them through the pgtype *Valuer interfaces before
// asking for the next row. Nothing is boxed or copied per value.
type batchSource struct {
	rows int
	row  int // current row; -1 before the first Next
	vals []any
	err  error
}

var _ pgx.CopyFromSource = (*batchSource)(nil)

// newBatchSource copies the columns cols of b, followed by the constant
// batch id when batch >= 0.
func newBatchSource(b arrow.RecordBatch, cols []int, batch int64) *batchSource {
	n := len(cols)
	if batch >= 0 {
		n++
	}
	src := &batchSource{rows: int(b.NumRows()), row: -1, vals: make([]any, n)}
	if batch >= 0 {
		src.vals[len(cols)] = batch // boxed once, encoded every row
	}
	for i, c := range cols {
		arr := b.Column(c)
		switch kindOf(arr.DataType()) {
		case kindInt64:
			src.vals[i] = &int64Cell{arr.(*array.Int64), src}
		case kindFloat64:
			src.vals[i] = &float64Cell{arr.(*array.Float64), src}
		case kindString:
			src.vals[i] = &textCell{arr.(*array.String), src}
		case kindBool:
			src.vals[i] = &boolCell{arr.(*array.Boolean), src}
		case kindTimestamp:
			src.vals[i] = &timestampCell{arr.(*array.Timestamp), src}
		case kindTimestampTZ:
			src.vals[i] = &timestamptzCell{arr.(*array.Timestamp), src}
		default:
			// checkChanges has compared the batch with the spec.
			panic(fmt.Sprintf("sink: copy of column %d with type %s", c, arr.DataType()))
		}
	}
	return src
}

func (s *batchSource) Next() bool {
	if s.err != nil {
		return false
	}
	s.row++
	return s.row < s.rows
}

func (s *batchSource) Values() ([]any, error) { return s.vals, s.err }

func (s *batchSource) Err() error { return s.err }

// fail records the first error a cell meets; pgx aborts the COPY with it.
func (s *batchSource) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return err
}

type int64Cell struct {
	a   *array.Int64
	src *batchSource
}

func (c *int64Cell) Int64Value() (pgtype.Int8, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Int8{}, nil
	}
	return pgtype.Int8{Int64: c.a.Value(i), Valid: true}, nil
}

type float64Cell struct {
	a   *array.Float64
	src *batchSource
}

func (c *float64Cell) Float64Value() (pgtype.Float8, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Float8{}, nil
	}
	return pgtype.Float8{Float64: c.a.Value(i), Valid: true}, nil
}

type boolCell struct {
	a   *array.Boolean
	src *batchSource
}

func (c *boolCell) BoolValue() (pgtype.Bool, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Bool{}, nil
	}
	return pgtype.Bool{Bool: c.a.Value(i), Valid: true}, nil
}

type textCell struct {
	a   *array.String
	src *batchSource
}

// TextValue returns the string as PostgreSQL TEXT can hold it: a NUL byte
// or invalid UTF-8 (a raw payload in a dead-letter table may hold either)
// would make the server refuse the whole COPY and wedge the pipeline, so
// each becomes U+FFFD.
func (c *textCell) TextValue() (pgtype.Text, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Text{}, nil
	}
	return pgtype.Text{String: pgText(c.a.Value(i)), Valid: true}, nil
}

func pgText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

type timestampCell struct {
	a   *array.Timestamp
	src *batchSource
}

// TimestampValue writes a TIMESTAMP as UTC wall time: pgx sends the wall
// clock of a time in time.UTC unchanged.
func (c *timestampCell) TimestampValue() (pgtype.Timestamp, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Timestamp{}, nil
	}
	t, err := c.src.time(int64(c.a.Value(i)))
	return pgtype.Timestamp{Time: t.UTC(), Valid: err == nil}, err
}

type timestamptzCell struct {
	a   *array.Timestamp
	src *batchSource
}

// TimestamptzValue writes a TIMESTAMPTZ as the instant, whatever the
// session's TimeZone.
func (c *timestamptzCell) TimestamptzValue() (pgtype.Timestamptz, error) {
	i := c.src.row
	if c.a.IsNull(i) {
		return pgtype.Timestamptz{}, nil
	}
	t, err := c.src.time(int64(c.a.Value(i)))
	return pgtype.Timestamptz{Time: t, Valid: err == nil}, err
}

func (s *batchSource) time(ms int64) (time.Time, error) {
	if ms < minTimestampMillis || ms > maxTimestampMillis {
		return time.Time{}, s.fail(fmt.Errorf("timestamp %d ms since the Unix epoch is outside PostgreSQL's range", ms))
	}
	return time.UnixMilli(ms), nil
}
