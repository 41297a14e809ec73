package expr

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/scalar"

	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

const benchRows = 4096

// benchBatch has bytes BIGINT uniform in [0, 1000) and event_type TEXT,
// a quarter of it 'heartbeat', both with 1% NULLs.
func benchBatch(mem memory.Allocator) arrow.RecordBatch {
	r := rand.New(rand.NewPCG(1, 1))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "bytes", Type: sqltypes.Int64, Nullable: true},
		{Name: "event_type", Type: sqltypes.String, Nullable: true},
	}, nil)
	bld := array.NewRecordBuilder(mem, schema)
	defer bld.Release()
	kinds := []string{"heartbeat", "play", "pause", "seek"}
	for range benchRows {
		if r.IntN(100) == 0 {
			bld.Field(0).AppendNull()
			bld.Field(1).AppendNull()
			continue
		}
		bld.Field(0).(*array.Int64Builder).Append(int64(r.IntN(1000)))
		bld.Field(1).(*array.StringBuilder).Append(kinds[r.IntN(len(kinds))])
	}
	return bld.NewRecordBatch()
}

// BenchmarkFilter filters a 4096-row batch with one comparison (about half
// the rows pass for bytes, three quarters for event_type) and reports
// rows/s. The arrow-compute runs are the baseline: the same comparison and
// filter through arrow-go's generic compute kernels.
func BenchmarkFilter(b *testing.B) {
	mem := memory.NewGoAllocator()
	batch := benchBatch(mem)
	defer batch.Release()
	for _, tc := range []struct {
		name string
		col  int
		op   CmpOp
		fn   string // arrow compute function
		lit  any
	}{
		{"int64", 0, Gt, "greater", int64(500)},
		{"string", 1, Ne, "not_equal", "heartbeat"},
	} {
		f := batch.Schema().Field(tc.col)
		pred, err := Compare(tc.op, Column(tc.col, f.Name, f.Type), Literal(tc.lit, f.Type))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/expr", func(b *testing.B) {
			n := 0
			for b.Loop() {
				out, err := Filter(mem, batch, pred)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
				n++
			}
			b.ReportMetric(float64(n*benchRows)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(tc.name+"/arrow-compute", func(b *testing.B) {
			ctx := compute.WithAllocator(context.Background(), mem)
			n := 0
			for b.Loop() {
				mask, err := compute.CallFunction(ctx, tc.fn, nil,
					compute.NewDatumWithoutOwning(batch.Column(tc.col)), compute.NewDatum(scalar.MakeScalar(tc.lit)))
				if err != nil {
					b.Fatal(err)
				}
				arr := mask.(*compute.ArrayDatum).MakeArray()
				out, err := compute.FilterRecordBatch(ctx, batch, arr, compute.DefaultFilterOptions())
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
				arr.Release()
				mask.Release()
				n++
			}
			b.ReportMetric(float64(n*benchRows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkCompare measures the predicate alone, without the filter.
func BenchmarkCompare(b *testing.B) {
	mem := memory.NewGoAllocator()
	batch := benchBatch(mem)
	defer batch.Release()
	pred, err := Compare(Gt, Column(0, "bytes", sqltypes.Int64), Literal(int64(500), sqltypes.Int64))
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		out, err := pred.Eval(mem, batch)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
		n++
	}
	b.ReportMetric(float64(n*benchRows)/b.Elapsed().Seconds(), "rows/s")
}
