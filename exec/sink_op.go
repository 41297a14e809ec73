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
// into changes and applies them to the view's tables (PostgreSQL first,
// then the live table, so the live table never shows a row the sink
// database refused).
//
// Input: the result columns, a BOOLEAN column that says whether the row is
// final, and a BOOLEAN column that says whether the row is a retraction
// (see WindowAggOp); retractions follow the upserts in a batch. The
// operator appends emitted_at, the processing time of the last Tick, so
// that it never reads the clock itself.
type SinkOp struct {
	mem       memory.Allocator
	schema    *arrow.Schema // the table's schema
	key       []int         // the table's key columns
	keySchema *arrow.Schema
	tables    []Table
	desc      string
	now       time.Time
	rows      atomic.Int64
	deletes   atomic.Int64
}

// NewSinkOp returns a sink writing tables whose schema is schema: the
// result columns, is_final and emitted_at, keyed by the columns key. desc
// names the tables for EXPLAIN.
func NewSinkOp(mem memory.Allocator, schema *arrow.Schema, key []int, desc string, tables ...Table) *SinkOp {
	fields := make([]arrow.Field, len(key))
	for i, k := range key {
		fields[i] = schema.Field(k)
	}
	return &SinkOp{mem: mem, schema: schema, key: key, keySchema: arrow.NewSchema(fields, nil), desc: desc, tables: tables}
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
	nf := s.schema.NumFields()
	if int(b.NumCols()) != nf {
		return fmt.Errorf("sink: batch has %d columns, want %d (the table's without emitted_at, and the retraction flag)", b.NumCols(), nf)
	}
	retract := b.Column(nf - 1).(*array.Boolean)
	nu := int64(0)
	for nu < n && !retract.Value(int(nu)) {
		nu++
	}
	var c Changes
	defer c.Release()
	if nu > 0 {
		tb := array.NewTimestampBuilder(s.mem, s.schema.Field(nf-1).Type.(*arrow.TimestampType))
		defer tb.Release()
		at := arrow.Timestamp(s.now.UnixMilli())
		for range nu {
			tb.Append(at)
		}
		emitted := tb.NewArray()
		defer emitted.Release()
		cols := make([]arrow.Array, 0, nf)
		for i := range nf - 1 {
			col := array.NewSlice(b.Column(i), 0, nu)
			defer col.Release()
			cols = append(cols, col)
		}
		c.Upserts = array.NewRecordBatch(s.schema, append(cols, emitted), nu)
	}
	if nu < n {
		cols := make([]arrow.Array, len(s.key))
		for i, k := range s.key {
			cols[i] = array.NewSlice(b.Column(k), nu, n)
			defer cols[i].Release()
		}
		c.Deletes = array.NewRecordBatch(s.keySchema, cols, n-nu)
	}
	for _, t := range s.tables {
		if err := t.Apply(ctx, c); err != nil {
			return err
		}
	}
	s.rows.Add(nu)
	s.deletes.Add(n - nu)
	return nil
}

// Rows counts the rows written; safe from any goroutine.
func (s *SinkOp) Rows() int64 { return s.rows.Load() }

// Deletes counts the rows retracted; safe from any goroutine.
func (s *SinkOp) Deletes() int64 { return s.deletes.Load() }

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
