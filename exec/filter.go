package exec

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/exec/expr"
)

// FilterOp passes on the rows for which a predicate is TRUE (WHERE).
type FilterOp struct {
	mem  memory.Allocator
	pred expr.Expr
	out  Downstream
}

// NewFilterOp returns a filter on pred, a BOOLEAN expression.
func NewFilterOp(mem memory.Allocator, pred expr.Expr) *FilterOp {
	return &FilterOp{mem: mem, pred: pred}
}

var _ Operator = (*FilterOp)(nil)

// Open implements Operator.
func (f *FilterOp) Open(_ context.Context, out Downstream) error { f.out = out; return nil }

// Push implements Operator.
func (f *FilterOp) Push(ctx context.Context, b arrow.RecordBatch) error {
	kept, err := expr.Filter(f.mem, b, f.pred)
	if err != nil {
		return fmt.Errorf("filter %s: %w", f.pred, err)
	}
	defer kept.Release()
	if kept.NumRows() == 0 {
		return nil
	}
	return f.out.Push(ctx, kept)
}

// Advance implements Operator.
func (f *FilterOp) Advance(ctx context.Context, wm Watermark) error { return f.out.Advance(ctx, wm) }

// Tick implements Operator.
func (f *FilterOp) Tick(context.Context, time.Time) error { return nil }

// Close implements Operator.
func (f *FilterOp) Close() error { return nil }

// String implements Operator.
func (f *FilterOp) String() string { return "Filter " + f.pred.String() }

// ProjectOp computes a batch of new columns from each input batch.
type ProjectOp struct {
	mem    memory.Allocator
	exprs  []expr.Expr
	schema *arrow.Schema
	out    Downstream
}

// NewProjectOp returns a projection producing schema's columns, column i
// computed by exprs[i].
func NewProjectOp(mem memory.Allocator, exprs []expr.Expr, schema *arrow.Schema) *ProjectOp {
	return &ProjectOp{mem: mem, exprs: exprs, schema: schema}
}

var _ Operator = (*ProjectOp)(nil)

// Schema is the output schema.
func (p *ProjectOp) Schema() *arrow.Schema { return p.schema }

// Open implements Operator.
func (p *ProjectOp) Open(_ context.Context, out Downstream) error { p.out = out; return nil }

// Push implements Operator.
func (p *ProjectOp) Push(ctx context.Context, b arrow.RecordBatch) error {
	rec, err := expr.Project(p.mem, b, p.exprs, p.schema)
	if err != nil {
		return fmt.Errorf("project: %w", err)
	}
	defer rec.Release()
	return p.out.Push(ctx, rec)
}

// Advance implements Operator.
func (p *ProjectOp) Advance(ctx context.Context, wm Watermark) error { return p.out.Advance(ctx, wm) }

// Tick implements Operator.
func (p *ProjectOp) Tick(context.Context, time.Time) error { return nil }

// Close implements Operator.
func (p *ProjectOp) Close() error { return nil }

// String implements Operator.
func (p *ProjectOp) String() string {
	parts := make([]string, len(p.exprs))
	for i, e := range p.exprs {
		name := p.schema.Field(i).Name
		if s := e.String(); s != name {
			parts[i] = s + " AS " + name
		} else {
			parts[i] = s
		}
	}
	return "Project " + strings.Join(parts, ", ")
}
