package sink

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgtype"
)

// ReadAll returns every row of the table as one batch in its spec's
// schema: a restarting view fills its live table from the rows its
// committed epochs wrote. The caller releases the batch.
func (t *PGTable) ReadAll(ctx context.Context, mem memory.Allocator) (arrow.RecordBatch, error) {
	rows, err := t.p.pool.Query(ctx, "SELECT "+quotedList(t.cols)+" FROM "+t.ident.Sanitize())
	if err != nil {
		return nil, t.wrap("read", err)
	}
	defer rows.Close()
	b := array.NewRecordBuilder(mem, t.spec.Schema)
	defer b.Release()
	n := len(t.cols)
	dst := make([]any, n)
	appendFns := make([]func(), n)
	for i, f := range t.spec.Schema.Fields() {
		fb := b.Field(i)
		switch fb := fb.(type) {
		case *array.Int64Builder:
			var v pgtype.Int8
			dst[i] = &v
			appendFns[i] = func() { appendValid(fb, v.Valid, v.Int64) }
		case *array.Float64Builder:
			var v pgtype.Float8
			dst[i] = &v
			appendFns[i] = func() { appendValid(fb, v.Valid, v.Float64) }
		case *array.StringBuilder:
			var v pgtype.Text
			dst[i] = &v
			appendFns[i] = func() { appendValid(fb, v.Valid, v.String) }
		case *array.BooleanBuilder:
			var v pgtype.Bool
			dst[i] = &v
			appendFns[i] = func() { appendValid(fb, v.Valid, v.Bool) }
		case *array.TimestampBuilder:
			// TIMESTAMP comes back as a UTC wall clock, TIMESTAMPTZ as an
			// instant: both are milliseconds since the epoch in UTC.
			var v pgtype.Timestamptz
			var w pgtype.Timestamp
			if f.Type.(*arrow.TimestampType).TimeZone == "" {
				dst[i] = &w
				appendFns[i] = func() { appendValid(fb, w.Valid, arrow.Timestamp(w.Time.UnixMilli())) }
			} else {
				dst[i] = &v
				appendFns[i] = func() { appendValid(fb, v.Valid, arrow.Timestamp(v.Time.UnixMilli())) }
			}
		default:
			return nil, fmt.Errorf("sink table %q: column %q: cannot read type %s", t.spec.Name, f.Name, f.Type)
		}
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return nil, t.wrap("read", err)
		}
		for _, fn := range appendFns {
			fn()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap("read", err)
	}
	return b.NewRecordBatch(), nil
}

func appendValid[T any](b interface {
	Append(T)
	AppendNull()
}, valid bool, v T) {
	if valid {
		b.Append(v)
	} else {
		b.AppendNull()
	}
}
