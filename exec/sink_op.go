package exec

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Result-table columns the engine adds after the select list.
const (
	ColIsFinal   = "is_final"
	ColEmittedAt = "emitted_at"
)

// SinkOp is the last operator of a view's pipeline: it turns emitted rows
// into upserts and applies them to the view's tables (PostgreSQL first,
// then the live table, so the live table never shows a row the sink
// database refused).
//
// Input: the result columns, then a BOOLEAN column that says whether the
// row is final. The operator appends emitted_at, the processing time of
// the last Tick, so that it never reads the clock itself.
type SinkOp struct {
	mem    memory.Allocator
	schema *arrow.Schema // the table's schema
	tables []Table
	desc   string
	now    time.Time
	rows   atomic.Int64
}

// NewSinkOp returns a sink writing tables whose schema is schema: the
// result columns, is_final and emitted_at. desc names the tables for
// EXPLAIN.
func NewSinkOp(mem memory.Allocator, schema *arrow.Schema, desc string, tables ...Table) *SinkOp {
	return &SinkOp{mem: mem, schema: schema, desc: desc, tables: tables}
}

var _ Operator = (*SinkOp)(nil)

// Open implements Operator; the sink has no downstream.
func (s *SinkOp) Open(context.Context, Downstream) error { return nil }

// Push implements Operator.
func (s *SinkOp) Push(ctx context.Context, b arrow.RecordBatch) error {
	n := b.NumRows()
	if n == 0 {
		return nil
	}
	if int(b.NumCols()) != s.schema.NumFields()-1 {
		return fmt.Errorf("sink: batch has %d columns, table %d (without emitted_at)", b.NumCols(), s.schema.NumFields())
	}
	tb := array.NewTimestampBuilder(s.mem, s.schema.Field(s.schema.NumFields()-1).Type.(*arrow.TimestampType))
	defer tb.Release()
	at := arrow.Timestamp(s.now.UnixMilli())
	for range n {
		tb.Append(at)
	}
	emitted := tb.NewArray()
	defer emitted.Release()
	cols := append(append([]arrow.Array{}, b.Columns()...), emitted)
	rec := array.NewRecordBatch(s.schema, cols, n)
	defer rec.Release()
	for _, t := range s.tables {
		if err := t.Apply(ctx, Changes{Upserts: rec}); err != nil {
			return err
		}
	}
	s.rows.Add(n)
	return nil
}

// Rows counts the rows written; safe from any goroutine.
func (s *SinkOp) Rows() int64 { return s.rows.Load() }

// Advance implements Operator.
func (s *SinkOp) Advance(context.Context, Watermark) error { return nil }

// Tick implements Operator.
func (s *SinkOp) Tick(_ context.Context, now time.Time) error {
	s.now = now
	return nil
}

// Close implements Operator.
func (s *SinkOp) Close() error { return nil }

// String implements Operator.
func (s *SinkOp) String() string {
	return "Upsert into " + s.desc
}
