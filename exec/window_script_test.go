package exec

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/datadriven"
)

// TestWindowScripts runs testdata/windows/*: window kinds, emission,
// lateness and retractions step by step. Commands:
//
//	new kind=session|event [gap=30s] [max=2m] [timeout=10s] [dynamic] [lateness=1m] [every=1s|events=3]
//	push        one batch, a line per event: "key HH:MM:SS [value|null] [start] [end] [gap=10s]"
//	            (key "null" is a NULL key); prints the rows written
//	advance HH:MM:SS   the watermark; prints the rows written
//	tick HH:MM:SS      processing time; prints the rows written
//
// A written row prints as "k [start, end) count sum first last distinct
// final|partial" or "retract k@start".
func TestWindowScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/windows", func(t *testing.T, path string) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		ctx := context.Background()
		var op *WindowAggOp
		out := &scriptOut{}
		seq := int64(0)
		defer func() {
			if op != nil {
				op.Close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out.lines = out.lines[:0]
			switch d.Cmd {
			case "new":
				if op != nil {
					op.Close()
				}
				var c kindCase
				var lateness time.Duration
				var emit EmitSpec
				for _, a := range d.CmdArgs {
					v := ""
					if len(a.Vals) > 0 {
						v = a.Vals[0]
					}
					ms := func() int64 {
						dur, err := time.ParseDuration(v)
						if err != nil {
							d.Fatalf(t, "%s: %v", a.Key, err)
						}
						return dur.Milliseconds()
					}
					switch a.Key {
					case "kind":
						c.event = v == "event"
					case "gap":
						c.gap = ms()
					case "max":
						c.max = ms()
					case "timeout":
						c.timeout = ms()
					case "dynamic":
						c.dynamic = true
					case "lateness":
						lateness = time.Duration(ms()) * time.Millisecond
					case "every":
						emit.Every = time.Duration(ms()) * time.Millisecond
					case "events":
						n, _ := strconv.Atoi(v)
						emit.EveryEvents = int64(n)
					default:
						d.Fatalf(t, "unknown argument %q", a.Key)
					}
				}
				spec := c.spec(lateness, emit)
				spec.OnLate = func(_ context.Context, seqs, _ []int64) error {
					for _, s := range seqs {
						out.lines = append(out.lines, fmt.Sprintf("late #%d", s))
					}
					return nil
				}
				var err error
				if op, err = NewWindowAggOp(mem, spec, kindSchema); err != nil {
					d.Fatalf(t, "%v", err)
				}
				if err := op.Open(ctx, out); err != nil {
					d.Fatalf(t, "%v", err)
				}
				seq = 0
				return ""
			case "push":
				var evs []kindEvent
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					seq++
					e := kindEvent{key: f[0], ts: parseClock(t, f[1]), seq: seq}
					if e.key == "null" {
						e.key = ""
					}
					for _, w := range f[2:] {
						switch {
						case w == "start":
							e.st = true
						case w == "end":
							e.en = true
						case strings.HasPrefix(w, "gap="):
							g, err := time.ParseDuration(w[4:])
							if err != nil {
								d.Fatalf(t, "%v", err)
							}
							e.gap = g.Milliseconds()
						case w == "null":
						default:
							v, err := strconv.ParseInt(w, 10, 64)
							if err != nil {
								d.Fatalf(t, "bad word %q", w)
							}
							e.v = &v
						}
					}
					evs = append(evs, e)
				}
				rec := buildKindBatch(mem, evs)
				defer rec.Release()
				if err := op.Push(ctx, rec); err != nil {
					return "error: " + err.Error() + "\n"
				}
			case "advance":
				if err := op.Advance(ctx, Watermark(parseClock(t, d.CmdArgs[0].Key))); err != nil {
					return "error: " + err.Error() + "\n"
				}
			case "tick":
				if err := op.Tick(ctx, time.UnixMilli(parseClock(t, d.CmdArgs[0].Key))); err != nil {
					return "error: " + err.Error() + "\n"
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			res := strings.Join(out.lines, "\n")
			if res == "" {
				res = "(nothing)"
			}
			return res + fmt.Sprintf("\nopen=%d\n", op.OpenWindows())
		})
	})
}

type scriptOut struct{ lines []string }

func (s *scriptOut) Push(_ context.Context, b arrow.RecordBatch) error {
	nc := int(b.NumCols())
	for i := 0; i < int(b.NumRows()); i++ {
		key := b.Column(0).ValueStr(i)
		start := clockOf(b.Column(1), i)
		if b.Column(nc-1).ValueStr(i) == "true" {
			s.lines = append(s.lines, fmt.Sprintf("retract %s@%s", key, start))
			continue
		}
		end := "?"
		if b.Column(2).IsValid(i) {
			end = clockOf(b.Column(2), i)
		}
		var aggs []string
		for c := 3; c < nc-2; c++ {
			aggs = append(aggs, b.Column(c).ValueStr(i))
		}
		state := "partial"
		if b.Column(nc-2).ValueStr(i) == "true" {
			state = "final"
		}
		s.lines = append(s.lines, fmt.Sprintf("%s [%s, %s) %s %s", key, start, end, strings.Join(aggs, " "), state))
	}
	return nil
}

func (s *scriptOut) Advance(context.Context, Watermark) error { return nil }

func clockOf(col arrow.Array, i int) string {
	ms := int64(col.(interface{ Value(int) arrow.Timestamp }).Value(i))
	d := time.Duration(ms) * time.Millisecond
	str := fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	if ms%1000 != 0 {
		str += fmt.Sprintf(".%03d", ms%1000)
	}
	return str
}

func parseClock(t *testing.T, s string) int64 {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		t.Fatalf("bad time %q (want HH:MM:SS)", s)
	}
	h, _ := strconv.Atoi(parts[0])
	m, _ := strconv.Atoi(parts[1])
	sec, err := strconv.ParseFloat(parts[2], 64)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	return int64(h)*3600_000 + int64(m)*60_000 + int64(math.Round(sec*1000))
}
