package source

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

var allTypes = []Column{
	{Name: "n", Type: sqltypes.Int64},
	{Name: "x", Type: sqltypes.Float64},
	{Name: "s", Type: sqltypes.String},
	{Name: "b", Type: sqltypes.Bool},
	{Name: "ts", Type: sqltypes.Timestamp},
	{Name: "tz", Type: sqltypes.TimestampTZ},
}

func TestEncodeJSON(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name   string
		values []any
		want   string
	}{
		{"all", []any{int64(-5), 1.5, "a\"b\\c\n\x01é", true, ts, arrow.Timestamp(0)},
			`{"n":-5,"x":1.5,"s":"a\"b\\c\n\u0001é","b":true,"ts":"2024-01-02T02:04:05.678Z","tz":"1970-01-01T00:00:00.000Z"}`},
		{"nulls", []any{nil, nil, nil, nil, ts, nil},
			`{"n":null,"x":null,"s":null,"b":null,"ts":"2024-01-02T02:04:05.678Z","tz":null}`},
		{"int as double, range ends", []any{int64(math.MaxInt64), int64(3), "", false, arrow.Timestamp(maxMillis), time.UnixMilli(minMillis)},
			`{"n":9223372036854775807,"x":3,"s":"","b":false,"ts":"9999-12-31T23:59:59.999Z","tz":"0000-01-01T00:00:00.000Z"}`},
		{"far future", []any{nil, nil, nil, nil, arrow.Timestamp(maxMillis + 1), nil}, `error: column "ts": timestamp 253402300800000 ms is outside years 0000-9999`},
		{"far past", []any{nil, nil, nil, nil, ts, time.UnixMilli(minMillis - 1)}, `error: column "tz": timestamp -62167219200001 ms is outside years 0000-9999`},
		{"exponent", []any{nil, 1e21, nil, nil, ts, nil},
			`{"n":null,"x":1e+21,"s":null,"b":null,"ts":"2024-01-02T02:04:05.678Z","tz":null}`},
		{"nan", []any{nil, math.NaN(), nil, nil, ts, nil}, `error: column "x": NaN cannot be written as JSON`},
		{"inf", []any{nil, math.Inf(-1), nil, nil, ts, nil}, `error: column "x": -Inf cannot be written as JSON`},
		{"wrong type", []any{1.5, nil, nil, nil, ts, nil}, `error: column "n": cannot encode float64 as int64`},
		{"bad utf8", []any{nil, nil, "\xff", nil, ts, nil}, `error: column "s": string is not valid UTF-8`},
		{"count", []any{nil}, `error: 1 values for 6 columns`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeJSON(allTypes, tc.values)
			got := string(b)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestPublishRoundTrip publishes encoded rows and reads them back through
// a Reader: the decoded rows equal the values encoded.
func TestPublishRoundTrip(t *testing.T) {
	e := startServer(t)
	js := connect(t, e.ClientURL())
	ctx := context.Background()
	if _, err := EnsureStream(ctx, js, "RT", []string{"rt"}); err != nil {
		t.Fatal(err)
	}
	rows := [][]any{
		{int64(1), 0.1, "tv", true, time.UnixMilli(1704164645678), time.UnixMilli(-1)},
		{nil, nil, nil, nil, arrow.Timestamp(minMillis), nil},
		{int64(math.MinInt64), -math.MaxFloat64, "ünï\"\\\t", false, arrow.Timestamp(maxMillis), arrow.Timestamp(maxMillis - 5)},
		{int64(0), math.SmallestNonzeroFloat64, "", nil, time.UnixMilli(0), time.UnixMilli(123)},
	}
	var payloads [][]byte
	for _, r := range rows {
		b, err := EncodeJSON(allTypes, r)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, b)
	}
	if err := Publish(ctx, js, "rt", payloads); err != nil {
		t.Fatal(err)
	}
	if err := Publish(ctx, js, "nobody.listens", payloads[:1]); err == nil {
		t.Error("Publish to a subject without a stream succeeded")
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r, err := NewReader(js, Config{Source: "rt", Stream: "RT", Subjects: []string{"rt"}, Columns: allTypes, TimeColumn: 4}, mem, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &rowCollector{}
	stop, done, runErr := runReader(t, r, 0, h)
	waitFor(t, 5*time.Second, "rows", func() bool {
		select {
		case <-done:
			t.Fatalf("Run ended: %v", *runErr)
		default:
		}
		return h.len() == len(rows)
	})
	stop()

	schema := BatchSchema(allTypes, 4)
	for i, want := range rows {
		w := make([]any, len(want)+1)
		for j, v := range want {
			switch x := v.(type) {
			case time.Time:
				w[j] = x.UnixMilli()
			case arrow.Timestamp:
				w[j] = int64(x)
			default:
				w[j] = v
			}
		}
		w[len(want)] = int64(i + 1)
		if g, ws := renderRow(schema, h.get(i)), renderRow(schema, w); g != ws {
			t.Errorf("row %d:\n got %s\nwant %s", i, g, ws)
		}
	}
}

// rowCollector keeps every row as batchRows returns it.
type rowCollector struct {
	sync.Mutex
	rows [][]any
}

func (c *rowCollector) HandleRejects(ctx context.Context, rs []Reject) error {
	return fmt.Errorf("unexpected reject: %s", rs[0].Reason)
}

func (c *rowCollector) HandleBatch(ctx context.Context, b Batch) error {
	c.Lock()
	defer c.Unlock()
	c.rows = append(c.rows, batchRows(b.Rec)...)
	return nil
}

func (c *rowCollector) len() int {
	c.Lock()
	defer c.Unlock()
	return len(c.rows)
}

func (c *rowCollector) get(i int) []any {
	c.Lock()
	defer c.Unlock()
	return c.rows[i]
}

// TestPublishMany publishes more messages than nats.go lets an async
// publisher have outstanding (4,000 by default): Publish must wait in
// windows rather than stall.
func TestPublishMany(t *testing.T) {
	e := startServer(t)
	js := connect(t, e.ClientURL())
	ctx := context.Background()
	s, err := EnsureStream(ctx, js, "MANY", []string{"many"})
	if err != nil {
		t.Fatal(err)
	}
	payloads := make([][]byte, 20_000)
	for i := range payloads {
		payloads[i] = []byte(`{"n":` + strconv.Itoa(i) + `}`)
	}
	if err := Publish(ctx, js, "many", payloads); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(payloads)) {
		t.Fatalf("stream holds %d messages, published %d", info.State.Msgs, len(payloads))
	}
}
