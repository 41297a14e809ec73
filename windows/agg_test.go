package windows

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestAccumulators folds a column into three windows (row i goes to window
// ids[i]), merges window 2 into window 0, and checks every aggregate over
// every input type, NULLs included.
func TestAccumulators(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Millisecond}
	ids := []ID{0, 0, 1, 2, NoWindow, 2, 0}
	cases := []struct {
		name string
		kind AggKind
		typ  arrow.DataType
		in   string // JSON array, one value per row
		want string // windows 0 and 1 after merging 2 into 0
	}{
		{"count star", CountStar, nil, ``, `[5,1]`},
		{"count col", Count, arrow.PrimitiveTypes.Int64, `[1,null,3,4,5,null,7]`, `[3,1]`},
		{"sum int", Sum, arrow.PrimitiveTypes.Int64, `[1,null,3,4,100,null,7]`, `[12,3]`},
		{"sum int all null", Sum, arrow.PrimitiveTypes.Int64, `[1,2,null,3,4,5,6]`, `[17,null]`},
		{"sum float", Sum, arrow.PrimitiveTypes.Float64, `[1.5,null,3,4,5,null,0.25]`, `[5.75,3]`},
		{"avg int", Avg, arrow.PrimitiveTypes.Int64, `[1,null,3,4,5,null,7]`, `[4,3]`},
		{"avg float", Avg, arrow.PrimitiveTypes.Float64, `[1,2,null,4,5,6,null]`, `[3.25,null]`},
		{"min int", Min, arrow.PrimitiveTypes.Int64, `[5,null,3,-4,-100,9,7]`, `[-4,3]`},
		{"max int", Max, arrow.PrimitiveTypes.Int64, `[5,null,3,-4,100,9,7]`, `[9,3]`},
		{"min float", Min, arrow.PrimitiveTypes.Float64, `[5,null,3,-4.5,-100,9,7]`, `[-4.5,3]`},
		{"min string", Min, arrow.BinaryTypes.String, `["b","a",null,"c","0","d",null]`, `["a",null]`},
		{"max string", Max, arrow.BinaryTypes.String, `["b","a",null,"c","z","d",null]`, `["d",null]`},
		{"min bool", Min, arrow.FixedWidthTypes.Boolean, `[true,null,false,true,false,true,true]`, `[true,false]`},
		{"max bool", Max, arrow.FixedWidthTypes.Boolean, `[false,null,false,true,true,false,false]`, `[true,false]`},
		{"min timestamp", Min, ts, `[5000,null,3000,4000,1,9000,7000]`, `["1970-01-01T00:00:04","1970-01-01T00:00:03"]`},
		{"max timestamp", Max, ts, `[5000,null,3000,4000,99999,9000,7000]`, `["1970-01-01T00:00:09","1970-01-01T00:00:03"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			acc, err := NewAccumulator(tc.kind, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			var col arrow.Array
			if tc.in != "" {
				col, _, err = array.FromJSON(mem, tc.typ, strings.NewReader(tc.in))
				if err != nil {
					t.Fatal(err)
				}
				defer col.Release()
				// A sliced input must work too: prepend a row and slice it off.
			}
			acc.Update(ids, col)
			acc.Merge(0, 2)
			out := acc.Emit(mem, []ID{0, 1})
			defer out.Release()
			if got := jsonOf(t, out); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			acc.Reset(0)
			empty := acc.Emit(mem, []ID{0, 2})
			defer empty.Release()
			wantEmpty := `[null,null]`
			if tc.kind == CountStar || tc.kind == Count {
				wantEmpty = `[0,0]`
			}
			if got := jsonOf(t, empty); got != wantEmpty {
				t.Fatalf("after reset/merge got %s, want %s", got, wantEmpty)
			}
		})
	}
}

func jsonOf(t *testing.T, a arrow.Array) string {
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "Z", "")
}

// TestAccumulatorSlicedInput checks that inputs with a non-zero offset
// (slices of a record) are read at the right rows.
func TestAccumulatorSlicedInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int64, strings.NewReader(`[1000,null,2,3]`))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Release()
	col := array.NewSlice(full, 1, 4)
	defer col.Release()
	for _, kind := range []AggKind{Sum, Min, Max, Avg, Count} {
		acc, _ := NewAccumulator(kind, arrow.PrimitiveTypes.Int64)
		acc.Update([]ID{0, 0, 0}, col)
		out := acc.Emit(mem, []ID{0})
		want := map[AggKind]string{Sum: "[5]", Min: "[2]", Max: "[3]", Avg: "[2.5]", Count: "[2]"}[kind]
		if got := jsonOf(t, out); got != want {
			t.Errorf("%s over a sliced column: got %s, want %s", kind, got, want)
		}
		out.Release()
	}
}
