package expr_test

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/exec/expr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// The worked example of the package documentation.
func ExampleFilter() {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: sqltypes.Int64, Nullable: true},
		{Name: "event_type", Type: sqltypes.String, Nullable: true},
		{Name: "bytes", Type: sqltypes.Int64, Nullable: true},
	}, nil)
	batch, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[
		{"user_id": 1, "event_type": "play", "bytes": 5000},
		{"user_id": 2, "event_type": "heartbeat", "bytes": 9000},
		{"user_id": 3, "event_type": null, "bytes": 2000},
		{"user_id": 4, "event_type": "play", "bytes": null}]`))
	if err != nil {
		panic(err)
	}
	defer batch.Release()

	et := expr.Column(1, "event_type", sqltypes.String)
	notHeartbeat, err := expr.Compare(expr.Ne, et, expr.Literal("heartbeat", sqltypes.String))
	if err != nil {
		panic(err)
	}
	big, _ := expr.Compare(expr.Gt, expr.Column(2, "bytes", sqltypes.Int64), expr.Literal(int64(1000), sqltypes.Int64))
	pred, _ := expr.And(notHeartbeat, big)
	fmt.Println(pred)

	out, err := expr.Filter(mem, batch, pred)
	if err != nil {
		panic(err)
	}
	defer out.Release()
	fmt.Println(out.NumRows(), out.Column(0))
	// Output:
	// ((event_type <> 'heartbeat') AND (bytes > 1000))
	// 1 [1]
}

// A type error carries PostgreSQL's SQLSTATE and wording.
func ExampleCompare_error() {
	_, err := expr.Compare(expr.Eq, expr.Column(0, "event_type", sqltypes.String), expr.Column(1, "bytes", sqltypes.Int64))
	fmt.Println(err)
	// Output:
	// operator does not exist: text = bigint (SQLSTATE 42883)
}
