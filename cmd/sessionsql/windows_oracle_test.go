package main

// The oracles of the window-kind tests: for every window kind, a plain-loop
// Go reference and a PostgreSQL query over the same events. The end-to-end
// test (windows_e2e_test.go) compares the engine with the PostgreSQL
// queries; TestWindowOraclesAgree compares those queries with the Go
// reference, so each oracle is checked by an independent computation
// before it judges the engine.
//
// Semantics shared by both (SPEC.md "Continuous queries"): per key, over
// the key's non-heartbeat events in (ts, seq) order, where seq is the
// stream sequence (arrival order) and NULL user_id is one key.

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
)

// act is one event of the acts source; nil pointers are JSON nulls (a nil
// device is left out of the message: missing fields are NULL too).
type act struct {
	seq    int64 // stream sequence: ties in event time go by it
	user   *int64
	device *string
	typ    *string
	title  *int64
	bytes  *int64
	gapMs  int64
	ts     int64 // ms
}

func (a act) json() []byte {
	b := []byte(`{"user_id":`)
	b = appendNullInt(b, a.user)
	if a.device != nil {
		b = append(b, `,"device":`...)
		b = strconv.AppendQuote(b, *a.device)
	}
	b = append(b, `,"event_type":`...)
	if a.typ == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendQuote(b, *a.typ)
	}
	b = append(b, `,"title_id":`...)
	b = appendNullInt(b, a.title)
	b = append(b, `,"bytes":`...)
	b = appendNullInt(b, a.bytes)
	b = append(b, `,"gap_ms":`...)
	b = strconv.AppendInt(b, a.gapMs, 10)
	// Alternate the two timestamp forms the decoder takes.
	if a.ts%2 == 0 {
		b = append(b, `,"ts":`...)
		b = strconv.AppendQuote(b, time.UnixMilli(a.ts).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	} else {
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, a.ts, 10)
	}
	return append(b, '}')
}

func appendNullInt(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

func str(s string) *string { return &s }

const minute = 60_000

// genActs makes n events over keys users (user 0 is NULL). Each key has
// its own clock, stepped so that the edges of every window kind occur:
// duplicate timestamps, steps of exactly 10, 20, 30 and 60 minutes (the
// dynamic gaps, the TIMEOUT, the fixed gap) and one millisecond more, long
// silences. Event types follow a loose play state machine per key, with
// STARTs while playing, ENDs while not, heartbeats and NULL types mixed
// in; devices, titles and bytes are sometimes NULL.
func genActs(seed uint64, n, keys int) []act {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	clock := make([]int64, keys)
	playing := make([]bool, keys)
	for i := range clock {
		clock[i] = base + rng.Int64N(60*minute)
	}
	steps := []int64{0, 10 * minute, 10*minute + 1, 20 * minute, 20*minute + 1, 30 * minute, 30*minute + 1, 60 * minute, 60*minute + 1}
	devices := []string{"tv", "tv", "tv", "web", "web", "phone", "phone"}
	evs := make([]act, 0, n)
	for range n {
		k := rng.IntN(keys)
		switch r := rng.IntN(100); {
		case r < 4*len(steps):
			clock[k] += steps[r/4]
		case r < 4*len(steps)+3:
			clock[k] += 60*minute + rng.Int64N(4*60*minute)
		default:
			clock[k] += rng.Int64N(5 * minute)
		}
		a := act{ts: clock[k], gapMs: rng.Int64N(60 * minute)}
		if k != 0 {
			a.user = ptr(int64(k))
		}
		if r := rng.IntN(100); r < 95 {
			a.device = &devices[r%len(devices)]
		}
		a.typ = str(nextType(rng, &playing[k]))
		if rng.IntN(100) < 1 {
			a.typ = nil
		}
		if rng.IntN(100) >= 8 {
			a.title = ptr(int64(rng.IntN(50)))
		}
		if rng.IntN(100) >= 5 {
			a.bytes = ptr(int64(rng.IntN(100_000)))
		}
		evs = append(evs, a)
	}
	return evs
}

// nextType draws a key's next event type: mostly play_start, plays and a
// play_stop, but also STARTs while playing and stops while not.
func nextType(rng *rand.Rand, playing *bool) string {
	r := rng.IntN(100)
	switch {
	case r < 12:
		return "heartbeat"
	case *playing && r < 24:
		*playing = false
		return "play_stop"
	case *playing && r < 29:
		return "play_start"
	case *playing:
		return "play"
	case r < 60:
		*playing = true
		return "play_start"
	case r < 66:
		return "play_stop"
	}
	return "play"
}

// windowRow is one row of a view (and of its oracle), in select-list order.
type windowRow struct {
	user        *int64
	ws, we      int64 // ms
	n           int64
	bytes       *int64
	titles      int64
	first, last *int64
	tv          int64
	kind        string
	score       int64
}

func (r windowRow) String() string {
	f := func(v *int64) string {
		if v == nil {
			return "NULL"
		}
		return strconv.FormatInt(*v, 10)
	}
	tf := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000") }
	return fmt.Sprintf("user=%s ws=%s we=%s n=%d bytes=%s titles=%d first=%s last=%s tv=%d kind=%s score=%d",
		f(r.user), tf(r.ws), tf(r.we), r.n, f(r.bytes), r.titles, f(r.first), f(r.last), r.tv, r.kind, r.score)
}

// refWindow is a window of the Go reference: its bounds and its events in
// (ts, seq) order.
type refWindow struct {
	start, end int64
	evs        []act
}

// hits counts the edge cases a reference met, so a test can insist that
// its workload reaches them. A nil hits counts nothing.
type hits map[string]int

func (h hits) add(edge string) {
	if h != nil {
		h[edge]++
	}
}

// windowKind is one window clause, with its two oracles.
type windowKind struct {
	view   string // the materialized view's name
	window string // the window clause in GROUP BY
	// oracle is a PostgreSQL query over acts_keyed (see loadActs) giving
	// the final rows, columns in select-list order.
	oracle string
	// ref computes one key's final windows from its events in (ts, seq)
	// order, counting edges in h.
	ref func(key []act, h hits) []refWindow
	// edges must each be hit at least once by TestWindowOraclesAgree's
	// workload.
	edges []string
}

func isType(typ string) func(act) bool {
	return func(a act) bool { return a.typ != nil && *a.typ == typ }
}

// dynamicGap is the GAP expression of the dynamic session view.
func dynamicGap(a act) int64 {
	if a.device != nil && *a.device == "tv" {
		return 60 * minute
	}
	return 10 * minute
}

// windowKinds are the five views of TestWindowKindsMatchPostgresOracle.
var windowKinds = []windowKind{
	sessionKind("w_session", `SESSION(ts, INTERVAL '30' MINUTE)`,
		`interval '30 minutes'`, func(act) int64 { return 30 * minute }, 30),
	maxSessionKind("w_session_max", `SESSION(ts, INTERVAL '30' MINUTE, MAX INTERVAL '2' HOUR)`, 30*minute, 120*minute),
	sessionKind("w_session_gap", `SESSION(ts, GAP CASE WHEN device = 'tv' THEN INTERVAL '60' MINUTE ELSE INTERVAL '10' MINUTE END)`,
		`CASE WHEN e.device = 'tv' THEN interval '60 minutes' ELSE interval '10 minutes' END`, dynamicGap, 10, 60),
	eventKind("w_event", `EVENT_WINDOW(ts, START WHEN event_type = 'play_start', END WHEN event_type = 'play_stop')`,
		`e.event_type = 'play_start'`, `e.event_type = 'play_stop'`, isType("play_start"), isType("play_stop"), 0),
	eventKind("w_event_timeout", `EVENT_WINDOW(ts, START WHEN event_type = 'play_start', END WHEN event_type = 'play_stop', TIMEOUT INTERVAL '20' MINUTE)`,
		`e.event_type = 'play_start'`, `e.event_type = 'play_stop'`, isType("play_start"), isType("play_stop"), 20*minute),
}

// sessionKind is SESSION with a fixed or a per-event gap: gapSQL is the
// gap as a PostgreSQL interval over acts_keyed e, gap the same in Go, and
// gapMinutes every value it takes (each one's edges must be reached).
func sessionKind(view, window, gapSQL string, gap func(act) int64, gapMinutes ...int64) windowKind {
	// An event starts a new session when its time is after the largest
	// t + gap of the key's earlier events (every earlier session ended
	// before the current one began, so that maximum is the current
	// session's end); a running sum of those starts numbers the sessions.
	oracle := `WITH g AS (SELECT e.*, e.ts + ` + gapSQL + ` AS hi FROM acts_keyed e),
b AS (SELECT g.*, CASE WHEN g.ts <= max(g.hi) OVER (PARTITION BY g.k ORDER BY g.rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                  THEN 0 ELSE 1 END AS brk FROM g),
e AS (SELECT b.*, sum(b.brk) OVER (PARTITION BY b.k ORDER BY b.rn) AS wid FROM b)
SELECT ` + aggSQL("min(e.ts)", "max(e.hi)") + ` FROM e GROUP BY e.k, e.wid`
	ref := func(key []act, h hits) []refWindow {
		var out []refWindow
		var endGap int64 // the gap of the event that set the open session's end
		for _, e := range key {
			hi := e.ts + gap(e)
			if n := len(out); n > 0 {
				w := &out[n-1]
				switch {
				case e.ts == w.end:
					h.add(fmt.Sprintf("event exactly at the end of a %dm gap joins", endGap/minute))
				case e.ts == w.end+1:
					h.add(fmt.Sprintf("event 1 ms after the end of a %dm gap starts a session", endGap/minute))
				}
				if e.ts <= w.end {
					if hi > w.end {
						w.end, endGap = hi, gap(e)
					}
					w.evs = append(w.evs, e)
					continue
				}
			}
			out = append(out, refWindow{start: e.ts, end: hi, evs: []act{e}})
			endGap = gap(e)
		}
		return out
	}
	var edges []string
	for _, m := range gapMinutes {
		edges = append(edges, fmt.Sprintf("event exactly at the end of a %dm gap joins", m),
			fmt.Sprintf("event 1 ms after the end of a %dm gap starts a session", m))
	}
	return windowKind{view: view, window: window, oracle: oracle, ref: ref, edges: edges}
}

// maxSessionKind is SESSION(ts, gap, MAX maxd): sequential, so its oracle
// is a recursive query that walks each key's events one step per
// recursion, all keys at once.
func maxSessionKind(view, window string, gap, maxd int64) windowKind {
	g := fmt.Sprintf("interval '%d milliseconds'", gap)
	m := fmt.Sprintf("interval '%d milliseconds'", maxd)
	oracle := `WITH RECURSIVE r (k, rn, ws, we, wid) AS (
  SELECT k, rn, ts, ts + ` + g + `, rn FROM acts_keyed WHERE rn = 1
  UNION ALL
  SELECT e.k, e.rn,
         CASE WHEN j.joins THEN r.ws ELSE e.ts END,
         CASE WHEN j.joins THEN greatest(r.we, e.ts + ` + g + `) ELSE e.ts + ` + g + ` END,
         CASE WHEN j.joins THEN r.wid ELSE e.rn END
  FROM r JOIN acts_keyed e ON e.k = r.k AND e.rn = r.rn + 1,
       LATERAL (SELECT e.ts <= r.we AND greatest(r.we, e.ts + ` + g + `) - r.ws <= ` + m + ` AS joins) j
)
SELECT ` + aggSQL("min(r.ws)", "max(r.we)") + ` FROM r JOIN acts_keyed e ON e.k = r.k AND e.rn = r.rn GROUP BY r.k, r.wid`
	ref := func(key []act, h hits) []refWindow {
		var out []refWindow
		for _, e := range key {
			hi := e.ts + gap
			if n := len(out); n > 0 && e.ts <= out[n-1].end {
				w := &out[n-1]
				if span := max(w.end, hi) - w.start; span <= maxd {
					if span == maxd {
						h.add("joins at exactly MAX")
					}
					w.end = max(w.end, hi)
					w.evs = append(w.evs, e)
					continue
				}
				h.add("MAX cuts a touching session")
			}
			out = append(out, refWindow{start: e.ts, end: hi, evs: []act{e}})
		}
		return out
	}
	return windowKind{view: view, window: window, oracle: oracle, ref: ref,
		edges: []string{"joins at exactly MAX", "MAX cuts a touching session"}}
}

// eventKind is EVENT_WINDOW(ts, START WHEN start, END WHEN end [, TIMEOUT
// timeout]); timeout 0 means none. startSQL and endSQL are the conditions
// over acts_keyed e. Its oracle is a recursive query: one step per event
// of every key, carrying the key's state (open, open window's id and last
// event time, the latest window's start) and recording which window the
// event is in and which window it closed with what end.
func eventKind(view, window, startSQL, endSQL string, isStart, isEnd func(act) bool, timeout int64) windowKind {
	t := "NULL::interval"
	if timeout > 0 {
		t = fmt.Sprintf("interval '%d milliseconds'", timeout)
	}
	// Window ids are the rn of their START event. A NULL timeout makes
	// every "last + T" NULL: no timeouts, no end at the end of the data.
	oracle := `WITH RECURSIVE r (k, rn, open, wid, last, lstart, ev_wid, cl_wid, cl_end) AS (
  SELECT e.k, e.rn, f.st, CASE WHEN f.st THEN e.rn END, e.ts, CASE WHEN f.st THEN e.ts END,
         CASE WHEN f.st THEN e.rn END, NULL::bigint, NULL::timestamp
  FROM acts_keyed e, LATERAL (SELECT coalesce(` + startSQL + `, false) AS st) f WHERE e.rn = 1
  UNION ALL
  SELECT e.k, e.rn,
         f.st OR (f.live AND NOT f.en),
         CASE WHEN f.st THEN e.rn WHEN f.live AND NOT f.en THEN r.wid END,
         CASE WHEN f.st OR f.live THEN e.ts ELSE r.last END,
         CASE WHEN f.st THEN e.ts ELSE r.lstart END,
         CASE WHEN f.st THEN e.rn WHEN f.live THEN r.wid END,
         CASE WHEN x.tmo OR (f.live AND (f.st OR f.en)) THEN r.wid END,
         CASE WHEN x.tmo THEN r.last + ` + t + ` WHEN f.live AND (f.st OR f.en) THEN e.ts END
  FROM r JOIN acts_keyed e ON e.k = r.k AND e.rn = r.rn + 1,
       LATERAL (SELECT coalesce(r.open AND e.ts > r.last + ` + t + `, false) AS tmo) x,
       LATERAL (SELECT coalesce(` + startSQL + `, false) AND e.ts IS DISTINCT FROM r.lstart AS st,
                       r.open AND NOT x.tmo AS live,
                       coalesce(` + endSQL + `, false) AS en) f
),
ends (k, wid, we) AS (
  SELECT k, cl_wid, cl_end FROM r WHERE cl_wid IS NOT NULL
  UNION ALL
  SELECT r.k, r.wid, r.last + ` + t + ` FROM r JOIN (SELECT k, max(rn) AS rn FROM acts_keyed GROUP BY k) m ON m.k = r.k AND m.rn = r.rn
  WHERE r.open AND r.last + ` + t + ` IS NOT NULL
)
SELECT ` + aggSQL("min(e.ts)", "x.we") + `
FROM r JOIN acts_keyed e ON e.k = r.k AND e.rn = r.rn JOIN ends x ON x.k = r.k AND x.wid = r.ev_wid
GROUP BY r.k, r.ev_wid, x.we`

	ref := func(key []act, h hits) []refWindow {
		var out []refWindow
		open := false
		var last int64                    // last event of the open window
		lastStart := int64(math.MinInt64) // start of the key's latest window
		for _, e := range key {
			if open && timeout > 0 {
				switch {
				case e.ts == last+timeout:
					h.add("silence of exactly TIMEOUT keeps the window open")
				case e.ts == last+timeout+1:
					h.add("silence of TIMEOUT + 1 ms closes the window")
				}
				if e.ts > last+timeout {
					out[len(out)-1].end = last + timeout
					open = false
				}
			}
			if isStart(e) && e.ts != lastStart {
				if open {
					h.add("START while open")
					out[len(out)-1].end = e.ts
				}
				if isEnd(e) {
					h.add("START and END on one event")
				}
				out = append(out, refWindow{start: e.ts, evs: []act{e}})
				open, last, lastStart = true, e.ts, e.ts
				continue
			}
			if isStart(e) {
				h.add("START at the latest window's start time is ordinary")
			}
			if !open {
				if isEnd(e) {
					h.add("END without START")
				}
				continue // unmatched
			}
			w := &out[len(out)-1]
			w.evs = append(w.evs, e)
			last = e.ts
			if isEnd(e) {
				w.end, open = e.ts, false
			}
		}
		if open {
			if timeout == 0 {
				return out[:len(out)-1] // no end: never final
			}
			out[len(out)-1].end = last + timeout
		}
		return out
	}
	edges := []string{"START while open", "END without START", "START at the latest window's start time is ordinary"}
	if timeout > 0 {
		edges = append(edges, "silence of exactly TIMEOUT keeps the window open", "silence of TIMEOUT + 1 ms closes the window")
	}
	return windowKind{view: view, window: window, oracle: oracle, ref: ref, edges: edges}
}

// aggSQL is the select list of every window view over the events e of a
// window, with the window's bounds ws and we: the same aggregates as the
// views, spelled in PostgreSQL. FIRST_VALUE and LAST_VALUE ignore NULLs,
// as the engine's do.
func aggSQL(ws, we string) string {
	return `min(e.user_id) AS user_id, ` + ws + ` AS ws, ` + we + ` AS we, count(*) AS n, sum(e.bytes)::bigint AS bytes,
       count(DISTINCT e.title_id) AS titles,
       (array_agg(e.title_id ORDER BY e.ts, e.seq) FILTER (WHERE e.title_id IS NOT NULL))[1] AS first_title,
       (array_agg(e.title_id ORDER BY e.ts DESC, e.seq DESC) FILTER (WHERE e.title_id IS NOT NULL))[1] AS last_title,
       count(*) FILTER (WHERE e.device = 'tv') AS tv_events,
       CASE WHEN count(*) > 5 THEN 'long' ELSE 'short' END AS kind,
       (coalesce(sum(e.bytes), 0) * 2 + count(*))::bigint AS score`
}

// viewSelect is the select list of every window view, over the acts source.
const viewSelect = `SELECT user_id, WINDOW_START() AS ws, WINDOW_END() AS we, COUNT(*) AS n, SUM(bytes) AS bytes,
       COUNT(DISTINCT title_id) AS titles, FIRST_VALUE(title_id) AS first_title, LAST_VALUE(title_id) AS last_title,
       COUNT(*) FILTER (WHERE device = 'tv') AS tv_events,
       CASE WHEN COUNT(*) > 5 THEN 'long' ELSE 'short' END AS kind, COALESCE(SUM(bytes), 0) * 2 + COUNT(*) AS score
FROM acts WHERE event_type <> 'heartbeat'`

// resultCols are the view's columns in select-list order.
const resultCols = `user_id, ws, we, n, bytes, titles, first_title, last_title, tv_events, kind, score`

// refRows runs a kind's Go reference over evs: WHERE first (a NULL
// event_type fails event_type <> 'heartbeat'), then per key in (ts, seq)
// order, then the aggregates.
func refRows(k windowKind, evs []act, h hits) []windowRow {
	keys := map[int64][]act{}
	const nullKey = math.MinInt64 // no generated user has it
	for _, e := range evs {
		if e.typ == nil || *e.typ == "heartbeat" {
			continue
		}
		u := int64(nullKey)
		if e.user != nil {
			u = *e.user
		}
		keys[u] = append(keys[u], e)
	}
	var rows []windowRow
	for _, key := range keys {
		slices.SortFunc(key, func(a, b act) int { return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.seq, b.seq)) })
		for _, w := range k.ref(key, h) {
			rows = append(rows, aggregate(w))
		}
	}
	return rows
}

func aggregate(w refWindow) windowRow {
	r := windowRow{user: w.evs[0].user, ws: w.start, we: w.end, n: int64(len(w.evs))}
	titles := map[int64]bool{}
	var sum int64
	for _, e := range w.evs {
		if e.bytes != nil {
			sum += *e.bytes
			r.bytes = &sum
		}
		if e.title != nil {
			titles[*e.title] = true
			if r.first == nil {
				r.first = e.title
			}
			r.last = e.title
		}
		if e.device != nil && *e.device == "tv" {
			r.tv++
		}
	}
	r.titles = int64(len(titles))
	r.kind = "short"
	if r.n > 5 {
		r.kind = "long"
	}
	r.score = sum*2 + r.n
	return r
}

// loadActs copies evs into acts_events and derives acts_keyed, the
// oracles' input: the events that pass the views' WHERE, with k (a dense
// number per user_id, NULL being one key, so joins need no IS NOT DISTINCT
// FROM) and rn (the event's place in its key's (ts, seq) order), indexed
// on (k, rn) for the recursive oracles' one-row-per-key steps.
func loadActs(t *testing.T, pg *pgx.Conn, evs []act) {
	t.Helper()
	ctx := context.Background()
	mustExec(t, pg, `CREATE TABLE acts_events (seq BIGINT PRIMARY KEY, user_id BIGINT, device TEXT, event_type TEXT,
	  title_id BIGINT, bytes BIGINT, gap_ms BIGINT, ts TIMESTAMP(3))`)
	if _, err := pg.CopyFrom(ctx, pgx.Identifier{"acts_events"},
		[]string{"seq", "user_id", "device", "event_type", "title_id", "bytes", "gap_ms", "ts"},
		pgx.CopyFromSlice(len(evs), func(i int) ([]any, error) {
			e := evs[i]
			return []any{e.seq, e.user, e.device, e.typ, e.title, e.bytes, e.gapMs, time.UnixMilli(e.ts).UTC()}, nil
		})); err != nil {
		t.Fatal(err)
	}
	mustExec(t, pg, `CREATE TABLE acts_keyed AS
	  SELECT dense_rank() OVER (ORDER BY user_id) AS k, row_number() OVER (PARTITION BY user_id ORDER BY ts, seq) AS rn, e.*
	  FROM acts_events e WHERE event_type <> 'heartbeat'`)
	mustExec(t, pg, `CREATE UNIQUE INDEX ON acts_keyed (k, rn)`)
	mustExec(t, pg, `ANALYZE acts_keyed`)
}

// queryRows runs a query whose columns are resultCols.
func queryRows(t *testing.T, pg *pgx.Conn, sql string) []windowRow {
	t.Helper()
	rows, err := pg.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (windowRow, error) {
		var r windowRow
		var ws, we time.Time
		err := row.Scan(&r.user, &ws, &we, &r.n, &r.bytes, &r.titles, &r.first, &r.last, &r.tv, &r.kind, &r.score)
		r.ws, r.we = ws.UnixMilli(), we.UnixMilli()
		return r, err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return out
}

// diffRows compares two multisets of rows; it returns how many rows are
// only in want, only in got, and a few of each.
func diffRows(want, got []windowRow) (missing, extra int, sample string) {
	count := map[string]int{}
	for _, r := range want {
		count[r.String()]++
	}
	for _, r := range got {
		count[r.String()]--
	}
	var miss, ext []string
	for s, c := range count {
		for ; c > 0; c-- {
			miss = append(miss, s)
		}
		for ; c < 0; c++ {
			ext = append(ext, s)
		}
	}
	slices.Sort(miss)
	slices.Sort(ext)
	var b strings.Builder
	for _, s := range miss[:min(5, len(miss))] {
		fmt.Fprintf(&b, "\n  only in want: %s", s)
	}
	for _, s := range ext[:min(5, len(ext))] {
		fmt.Fprintf(&b, "\n  only in got:  %s", s)
	}
	return len(miss), len(ext), b.String()
}

// TestWindowOraclesAgree checks each PostgreSQL oracle against the Go
// reference over a seeded workload that reaches every kind's edge cases,
// plus an EVENT_WINDOW whose END condition can hold on a START event. It
// needs PostgreSQL, not the engine.
func TestWindowOraclesAgree(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	evs := arrivalOrder(12, genActs(11, 100_000, 1000), func(a act) int64 { return a.ts }, 5000)
	for i := range evs {
		evs[i].seq = int64(i + 1)
	}
	// Loaded in random order, so that nothing but (ts, seq) can give the
	// oracles the events' order.
	shuffled := slices.Clone(evs)
	rand.New(rand.NewPCG(13, 0)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	loadActs(t, pg, shuffled)

	both := eventKind("w_event_both", `EVENT_WINDOW(ts, START WHEN event_type = 'play_start', END WHEN event_type = 'play_stop' OR title_id = 7)`,
		`e.event_type = 'play_start'`, `e.event_type = 'play_stop' OR e.title_id = 7`,
		isType("play_start"), func(a act) bool { return isType("play_stop")(a) || a.title != nil && *a.title == 7 }, 0)
	both.edges = append(both.edges, "START and END on one event")
	for _, k := range append(slices.Clip(windowKinds), both) {
		t.Run(k.view, func(t *testing.T) {
			h := hits{}
			want := refRows(k, evs, h)
			start := time.Now()
			got := queryRows(t, pg, k.oracle)
			t.Logf("%s: %d windows, oracle took %s; edges %v", k.window, len(want), time.Since(start).Round(time.Millisecond), h)
			for _, e := range k.edges {
				if h[e] == 0 {
					t.Errorf("the workload never reaches %q", e)
				}
			}
			if missing, extra, sample := diffRows(want, got); missing != 0 || extra != 0 {
				t.Fatalf("oracle differs from the Go reference: %d rows missing, %d extra:%s", missing, extra, sample)
			}
			if len(want) < 1000 {
				t.Fatalf("only %d windows", len(want))
			}
		})
	}
}

// TestWindowReference pins the Go reference on hand-worked cases of one
// key, so that the reference and the PostgreSQL oracles cannot share a
// misreading of the semantics unnoticed. Events are "hh:mm[:ss.mmm] type
// [device]", in (ts, seq) order; windows are "start-end n".
func TestWindowReference(t *testing.T) {
	isAny := func(typs ...string) func(act) bool {
		return func(a act) bool { return a.typ != nil && slices.Contains(typs, *a.typ) }
	}
	session := windowKinds[0]
	maxSession := windowKinds[1]
	gapSession := windowKinds[2]
	event := windowKinds[3]
	eventTimeout := windowKinds[4]
	// start_stop is a START and an END at once.
	both := eventKind("b", "", "", "", isAny("play_start", "start_stop"), isAny("play_stop", "start_stop"), 0)
	cases := []struct {
		name   string
		kind   windowKind
		events []string
		want   []string
	}{
		{"gap exactly, then 1 ms more", session,
			[]string{"00:00 play", "00:30 play", "01:00:00.001 play"},
			[]string{"00:00:00.000-01:00:00.000 2", "01:00:00.001-01:30:00.001 1"}},
		{"duplicate timestamps", session,
			[]string{"00:00 play", "00:00 play_stop"},
			[]string{"00:00:00.000-00:30:00.000 2"}},
		{"MAX: a span of exactly MAX joins, the next event is cut", maxSession,
			[]string{"00:00 play", "00:30 play", "01:00 play", "01:30 play", "02:00 play"},
			[]string{"00:00:00.000-02:00:00.000 4", "02:00:00.000-02:30:00.000 1"}},
		{"MAX: the cut session overlaps the next", maxSession,
			[]string{"00:00 play", "00:29 play", "00:58 play", "01:27 play", "01:56 play"},
			[]string{"00:00:00.000-01:57:00.000 4", "01:56:00.000-02:26:00.000 1"}},
		{"dynamic gap: a tv event keeps the session open for 60 minutes", gapSession,
			[]string{"00:00 play tv", "01:00 play web", "01:10 play phone", "01:20:00.001 play"},
			[]string{"00:00:00.000-01:20:00.000 3", "01:20:00.001-01:30:00.001 1"}},
		{"dynamic gap: the end is the largest t + gap, not the last event's", gapSession,
			[]string{"00:00 play tv", "00:05 play web", "01:00 play web"},
			[]string{"00:00:00.000-01:10:00.000 3"}},
		{"dynamic gap: a web event 10m01 after a web event", gapSession,
			[]string{"00:00 play web", "00:10:00.001 play tv"},
			[]string{"00:00:00.000-00:10:00.000 1", "00:10:00.001-01:10:00.001 1"}},
		{"event window: unmatched, END without START, START while open", event,
			[]string{"00:00 play", "00:01 play_stop", "00:02 play_start", "00:03 play", "00:04 play_start", "00:05 play_stop", "00:06 play"},
			[]string{"00:02:00.000-00:04:00.000 2", "00:04:00.000-00:05:00.000 2"}},
		{"event window: open at the end without TIMEOUT is never final", event,
			[]string{"00:00 play_start", "00:01 play_stop", "00:02 play_start", "00:03 play"},
			[]string{"00:00:00.000-00:01:00.000 2"}},
		{"event window: a START at the latest start's time is ordinary", event,
			[]string{"00:00 play_start", "00:00 play_start", "00:01 play_stop"},
			[]string{"00:00:00.000-00:01:00.000 3"}},
		{"event window: ... also when the window has closed", event,
			[]string{"00:00 play_start", "00:00 play_stop", "00:00 play_start", "00:00 play_stop", "00:01 play_start", "00:02 play_stop"},
			[]string{"00:00:00.000-00:00:00.000 2", "00:01:00.000-00:02:00.000 2"}},
		{"timeout: a silence of exactly TIMEOUT keeps it open, 1 ms more closes it", eventTimeout,
			[]string{"00:00 play_start", "00:20 play", "00:40:00.001 play", "00:41 play_stop"},
			[]string{"00:00:00.000-00:40:00.000 2"}},
		{"timeout: a START after a silence; the end of the data", eventTimeout,
			[]string{"00:00 play_start", "00:30 play_start", "00:31 play"},
			[]string{"00:00:00.000-00:20:00.000 1", "00:30:00.000-00:51:00.000 2"}},
		{"START and END on one event: the END is ignored", both,
			[]string{"00:00 start_stop", "00:01 play", "00:02 start_stop", "00:02 start_stop", "00:03 play"},
			[]string{"00:00:00.000-00:02:00.000 2", "00:02:00.000-00:02:00.000 2"}},
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var key []act
			for i, s := range tc.events {
				f := strings.Fields(s)
				var at time.Time
				var err error
				for _, layout := range []string{"15:04", "15:04:05.000"} {
					if at, err = time.Parse(layout, f[0]); err == nil {
						break
					}
				}
				if err != nil {
					t.Fatalf("event %q: %v", s, err)
				}
				a := act{seq: int64(i + 1), user: ptr(1), typ: &f[1], ts: base.Add(at.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))).UnixMilli()}
				if len(f) > 2 {
					a.device = &f[2]
				}
				key = append(key, a)
			}
			var got []string
			for _, w := range tc.kind.ref(key, nil) {
				f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.000") }
				got = append(got, fmt.Sprintf("%s-%s %d", f(w.start), f(w.end), len(w.evs)))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("windows\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}
