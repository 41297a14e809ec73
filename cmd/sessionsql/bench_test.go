package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/jackc/pgx/v5"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
)

// TestBenchSmall runs `sessionsql bench` on a small workload: it must
// publish, drain, run the view to the end, check its answer and print
// every figure.
func TestBenchSmall(t *testing.T) {
	for _, perMessage := range []string{"1", "100"} {
		t.Run("per-message="+perMessage, func(t *testing.T) {
			out := benchSmall(t, "--events-per-message", perMessage)
			for _, want := range []string{"decode JSON -> Arrow", "JetStream consume, no processing", "end to end, live table",
				"state per open window", "peak RSS", "CPU by stage", "window operator", "pipeline operators (EXPLAIN ANALYZE",
				"WindowAggregate SESSION", "answer checked: ", "in the live table\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestBenchPostgres runs the bench with --postgres: the PostgreSQL run,
// the sink's ceiling, the answer checked in PostgreSQL, and the run's
// schema gone afterwards.
func TestBenchPostgres(t *testing.T) {
	dsn := pgtest.DSN(t) // skips, or fails under CI=true, without PostgreSQL
	out := benchSmall(t, "--postgres", dsn, "--checkpoint-interval", "100ms")
	for _, want := range []string{"end to end, PostgreSQL (epochs of 100ms)", "PostgreSQL COPY -> merge, all new",
		"PostgreSQL COPY -> merge, all updates", "sink: rows written, coalesced per epoch", "sink: rows/s in its transactions", "sink ceiling: plain SQL",
		"answer checked: ", ", PostgreSQL\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	schema := regexp.MustCompile(`schema (bench_[0-9a-f]{16})`).FindStringSubmatch(out)
	if schema == nil {
		t.Fatalf("output names no schema:\n%s", out)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after the bench", schema[1])
	}
}

// benchSmall runs the bench on 20,000 events with extra flags and
// returns what it printed on stdout.
func benchSmall(t *testing.T, flags ...string) string {
	var out, progress bytes.Buffer
	args := append([]string{"--events", "20000", "--users", "500", "--data-dir", t.TempDir()}, flags...)
	c, err := parseBenchFlags(args, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if err := runBench(context.Background(), c, &out, &progress); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), progress.String())
	}
	if !strings.Contains(out.String(), "answer checked: ") || strings.Contains(out.String(), "answer checked: 0 sessions") {
		t.Errorf("no session checked:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
	return out.String()
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--events", "0"}, {"--events-per-message", "0"}, {"--gap", "1500ms"}, {"--gap", "0s"},
		{"--keep"}, {"--checkpoint-interval", "1ms"}, {"extra"}} {
		if _, err := parseBenchFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseBenchFlags(%q) accepted", args)
		}
	}
}

// TestBenchAnswer checks the bench's own oracle on a hand-made workload
// and that its comparison catches each kind of wrong answer.
func TestBenchAnswer(t *testing.T) {
	const gap = 10_000
	evs := []benchEvent{ // arrival order; user 0's events out of time order
		{user: 0, title: 1, ts: 20_000, bytes: 1},
		{user: 1, title: 5, ts: 1_000, bytes: 10},
		{user: 0, title: 2, ts: 10_000, bytes: 2}, // 10 s after the first: the same session (touching)
		{user: 0, title: 1, ts: 30_001, bytes: 4}, // 10.001 s after 20 s: a new session
		{user: 1, title: 5, ts: 1_000, bytes: 20}, // a tie
	}
	a := expectSessions(evs, 3, gap)
	good := []benchRow{
		{benchKey{0, 10_000}, benchAgg{end: 30_000, events: 2, bytes: 3, titles: 2}, true},
		{benchKey{0, 30_001}, benchAgg{end: 40_001, events: 1, bytes: 4, titles: 1}, true},
		{benchKey{1, 1_000}, benchAgg{end: 11_000, events: 2, bytes: 30, titles: 1}, true},
	}
	if len(a.sessions) != 3 || a.events != 5 || a.bytes != 37 || a.titles != 4 {
		t.Fatalf("expectSessions = %+v", a)
	}
	if err := a.check("good", good); err != nil {
		t.Fatal(err)
	}
	tamper := func(f func([]benchRow) []benchRow) []benchRow {
		return f(append([]benchRow(nil), good...))
	}
	for _, tc := range []struct {
		name string
		rows []benchRow
		want string
	}{
		{"wrong count", tamper(func(r []benchRow) []benchRow { r[0].events = 3; return r }), "events 3, bytes 3, titles 2; want end 1970-01-01T00:00:30Z, events 2"},
		{"missing", good[1:], "(2 events): missing"},
		{"twice", append(good, good[2]), "user 1 session from 1970-01-01T00:00:01Z: twice"},
		{"not final", tamper(func(r []benchRow) []benchRow { r[1].final = false; return r }), "not final"},
		{"unexpected", tamper(func(r []benchRow) []benchRow { r[1].start = 30_000; return r }), "user 0 session from 1970-01-01T00:00:30Z: not expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.check("the table", tc.rows)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "answer wrong in the table") {
				t.Errorf("check = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestBenchStageOf(t *testing.T) {
	for _, tc := range []struct {
		frames []string // leaf first
		want   int
	}{
		{[]string{"github.com/valyala/fastjson.(*Parser).Parse", modulePrefix + "exec/source.(*Decoder).Append", modulePrefix + "exec/source.(*run).decode"}, stageDecode},
		{[]string{"runtime.mallocgc", modulePrefix + "exec/sink.(*Memory).Apply", modulePrefix + "exec.(*SinkOp).Push", modulePrefix + "exec.(*WindowAggOp).Advance"}, stageSink},
		{[]string{modulePrefix + "windows.(*Session).Assign", modulePrefix + "exec.(*WindowAggOp).Push"}, stageWindow},
		{[]string{modulePrefix + "windows.(*Session).SaveState", modulePrefix + "exec.(*Pipeline).checkpoint"}, stageCheckpoint},
		{[]string{"github.com/nats-io/nats%2ego.(*Conn).parse", modulePrefix + "exec/source.(*run).consume"}, stageNATSClient},
		{[]string{"github.com/nats-io/nats.go/jetstream.(*pullSubscription).Next"}, stageNATSClient},
		{[]string{"fmt.Sprintf", "github.com/nats-io/nats-server/v2/server.(*consumer).ackReply"}, stageNATSServer},
		{[]string{"github.com/jackc/pgx/v5.(*Conn).Query", "main.showView"}, stageBench},
		{[]string{modulePrefix + "exec.(*WatermarkOp).Push"}, stageEngine},
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, stageGC},
		{[]string{"runtime.futex"}, stageOther},
	} {
		if got := stageOf(tc.frames); got != tc.want {
			t.Errorf("stageOf(%q) = %s, want %s", tc.frames, cpuStages[got], cpuStages[tc.want])
		}
	}
}

// TestBenchCPUByStage feeds cpuByStage a profile of three samples, one
// with an inlined frame, and a truncated one.
func TestBenchCPUByStage(t *testing.T) {
	fns := map[string]*profile.Function{}
	loc := func(id uint64, names ...string) *profile.Location {
		l := &profile.Location{ID: id}
		for _, n := range names {
			f := fns[n]
			if f == nil {
				f = &profile.Function{ID: uint64(len(fns) + 1), Name: n}
				fns[n] = f
			}
			l.Line = append(l.Line, profile.Line{Function: f, Line: 7})
		}
		return l
	}
	decode := loc(1, modulePrefix+"exec/source.(*Decoder).Append")
	parse := loc(2, "github.com/valyala/fastjson.(*Parser).Parse")
	window := loc(3, modulePrefix+"windows.(*Session).Assign")
	sinkLoc := loc(4, "runtime.mallocgc", modulePrefix+"exec/sink.(*Memory).Apply") // mallocgc inlined into the sink
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Sample: []*profile.Sample{
			{Location: []*profile.Location{decode}, Value: []int64{1, 10_000_000}},
			{Location: []*profile.Location{parse, window}, Value: []int64{1, 20_000_000}},
			{Location: []*profile.Location{sinkLoc, window}, Value: []int64{2, 30_000_000}},
		},
		Location: []*profile.Location{decode, parse, window, sinkLoc},
	}
	for _, f := range fns {
		p.Function = append(p.Function, f)
	}
	var gz bytes.Buffer
	if err := p.Write(&gz); err != nil {
		t.Fatal(err)
	}
	by, total, err := cpuByStage(gz.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if total != 60*time.Millisecond || by[stageDecode] != 10*time.Millisecond || by[stageWindow] != 20*time.Millisecond || by[stageSink] != 30*time.Millisecond {
		t.Errorf("cpuByStage: total %s, by stage %v", total, by)
	}
	if _, _, err := cpuByStage(gz.Bytes()[:gz.Len()/2]); err == nil {
		t.Error("cpuByStage accepted a truncated profile")
	}
}
