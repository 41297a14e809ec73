package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
	"github.com/sessionsql/sessionsql/exec/source"
)

// testServer is `sessionsql serve` running in the test process on random
// ports, with its embedded NATS server.
type testServer struct {
	addr        string
	natsURL     string
	metricsAddr string
	cancel      context.CancelFunc
	done        chan error
	once        sync.Once
}

// startServe runs serve over dataDir; postgres may be "". Options change
// the configuration before it starts.
func startServe(t *testing.T, dataDir, postgres string, options ...func(*serveConfig)) *testServer {
	t.Helper()
	return startServeLogging(t, t.Output(), dataDir, postgres, options...)
}

// startServeLogging is startServe with serve's log written to logOut.
func startServeLogging(t *testing.T, logOut io.Writer, dataDir, postgres string, options ...func(*serveConfig)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	cfg := &serveConfig{dataDir: dataDir, natsListen: "127.0.0.1:0", listen: "127.0.0.1:0", postgres: postgres, logFormat: "text",
		checkpointInterval: 250 * time.Millisecond,
		metricsListen:      "127.0.0.1:0", metricsReady: func(addr net.Addr) { ts.metricsAddr = addr.String() },
		ready: func(addr net.Addr, natsURL string) {
			ts.addr, ts.natsURL = addr.String(), natsURL
			close(ready)
		}}
	for _, o := range options {
		o(cfg)
	}
	go func() { ts.done <- serve(ctx, cfg, logOut) }()
	select {
	case <-ready:
	case err := <-ts.done:
		t.Fatalf("serve stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready after 30s")
	}
	t.Cleanup(ts.stop)
	return ts
}

// stop stops serve and waits for it; it is idempotent.
func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.cancel()
		if err := <-ts.done; err != nil {
			panic(fmt.Sprintf("serve: %v", err))
		}
	})
}

func (ts *testServer) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), "postgres://tester@"+ts.addr+"/sessionsql?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (ts *testServer) jetstream(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ts.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withSentinel returns evs in arrival order (out of order within the 5 s
// watermark bound, seeded) and their payloads, plus a last payload: an
// event of user -1 a day after the others, whose watermark makes every
// other session final.
func withSentinel(seed uint64, evs []event) (arrival []event, payloads [][]byte) {
	arrival = arrivalOrder(seed, evs, func(e event) int64 { return e.ts }, 5000)
	payloads = make([][]byte, 0, len(arrival)+1)
	maxTS := evs[0].ts
	for _, e := range arrival {
		payloads = append(payloads, e.json())
		maxTS = max(maxTS, e.ts)
	}
	sentinel := int64(-1)
	return arrival, append(payloads, event{user: &sentinel, typ: "play", ts: maxTS + 24*3600_000}.json())
}

// loadEvents copies evs into a new PostgreSQL table name, the input of
// the oracles.
func loadEvents(t *testing.T, pg *pgx.Conn, name string, evs []event) {
	t.Helper()
	mustExec(t, pg, `CREATE TABLE `+pgx.Identifier{name}.Sanitize()+` (user_id BIGINT, event_type TEXT, title_id BIGINT, bytes BIGINT, ts TIMESTAMP(3))`)
	if _, err := pg.CopyFrom(context.Background(), pgx.Identifier{name}, []string{"user_id", "event_type", "title_id", "bytes", "ts"},
		pgx.CopyFromSlice(len(evs), func(i int) ([]any, error) {
			e := evs[i]
			return []any{e.user, e.typ, e.title, e.bytes, time.UnixMilli(e.ts).UTC()}, nil
		})); err != nil {
		t.Fatal(err)
	}
}

// pgCount returns the count(*) that sql computes.
func pgCount(t *testing.T, pg *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := pg.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return n
}

// pgSample returns the first rows of sql's result, for failure messages.
func pgSample(pg *pgx.Conn, sql string) string {
	rows, err := pg.Query(context.Background(), sql+` ORDER BY 1, 2 LIMIT 5`)
	if err != nil {
		return err.Error()
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(got)
}

// checkFor polls cond until it returns nil or the deadline passes.
func checkFor(t *testing.T, total time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// viewStatus is a view's row of SHOW MATERIALIZED VIEWS.
type viewStatus struct {
	state                                 string
	events, pos, committed, late, ckBytes int64
	open, stateBytes                      int64
	ckMs                                  float64
}

func (v viewStatus) String() string {
	return fmt.Sprintf("state %q, position %d, committed position %d", v.state, v.pos, v.committed)
}

// readView reads a view's row of SHOW MATERIALIZED VIEWS: state (column
// 2), events (3), open_windows (5), state_bytes (6), late_events (8),
// position (9), committed_position (12), checkpoint_bytes (13),
// checkpoint_ms (14). A view that is not there has state "missing".
func readView(t *testing.T, conn *pgx.Conn, view string) viewStatus {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SHOW MATERIALIZED VIEWS", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatal(err)
	}
	for _, vals := range all {
		if vals[0] != view {
			continue
		}
		if len(vals) < 15 {
			t.Fatalf("SHOW MATERIALIZED VIEWS has %d columns, want 15", len(vals))
		}
		num := func(i int) int64 { n, _ := vals[i].(int64); return n }
		state, _ := vals[2].(string)
		ckMs, _ := vals[14].(float64)
		return viewStatus{state: state, events: num(3), pos: num(9), committed: num(12), late: num(8), ckBytes: num(13),
			open: num(5), stateBytes: num(6), ckMs: ckMs}
	}
	return viewStatus{state: "missing", pos: -1}
}

// viewPosition reads a view's position and state from SHOW MATERIALIZED VIEWS.
func viewPosition(t *testing.T, conn *pgx.Conn, view string) (int64, string) {
	t.Helper()
	v := readView(t, conn, view)
	return v.pos, v.state
}

func waitPosition(t *testing.T, conn *pgx.Conn, view string, seq int64) {
	t.Helper()
	checkFor(t, 60*time.Second, func() error {
		pos, state := viewPosition(t, conn, view)
		if strings.HasPrefix(state, "failed") {
			t.Fatalf("view %s %s", view, state)
		}
		if pos < seq {
			return fmt.Errorf("view %s at position %d, want %d (%s)", view, pos, seq, state)
		}
		return nil
	})
}

// event is one generated play event; nil pointers are JSON nulls.
type event struct {
	user  *int64
	typ   string
	title int64
	bytes *int64
	ts    int64 // ms
}

func (e event) json() []byte {
	var b strings.Builder
	b.WriteString(`{"user_id":`)
	writeNullable(&b, e.user)
	fmt.Fprintf(&b, `,"event_type":%q,"title_id":%d,"bytes":`, e.typ, e.title)
	writeNullable(&b, e.bytes)
	// Alternate the two timestamp forms the decoder takes.
	if e.ts%2 == 0 {
		fmt.Fprintf(&b, `,"ts":%q}`, time.UnixMilli(e.ts).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	} else {
		fmt.Fprintf(&b, `,"ts":%d}`, e.ts)
	}
	return []byte(b.String())
}

func writeNullable(b *strings.Builder, v *int64) {
	if v == nil {
		b.WriteString("null")
		return
	}
	b.WriteString(strconv.FormatInt(*v, 10))
}

const gapMs = 30 * 60 * 1000

// generate makes n events over keys users (user 0 is NULL: NULL keys form
// one group), with gaps drawn to hit the edge cases: exactly the session
// gap, one millisecond more, duplicate timestamps, long silences.
func generate(seed uint64, n, keys int) []event {
	rng := rand.New(rand.NewPCG(seed, 42))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	clock := make([]int64, keys)
	for i := range clock {
		clock[i] = base + rng.Int64N(3_600_000)
	}
	evs := make([]event, 0, n)
	for range n {
		k := rng.IntN(keys)
		switch r := rng.IntN(100); {
		case r < 5:
			clock[k] += gapMs // exactly the gap: same session
		case r < 8:
			clock[k] += gapMs + 1 // one ms more: a new session
		case r < 11: // same timestamp as the previous event
		case r < 15:
			clock[k] += gapMs + rng.Int64N(6*gapMs)
		default:
			clock[k] += rng.Int64N(5 * 60_000)
		}
		e := event{typ: "play", title: int64(rng.IntN(50)), ts: clock[k]}
		if k != 0 {
			u := int64(k)
			e.user = &u
		}
		if rng.IntN(100) < 15 {
			e.typ = "heartbeat"
		}
		if rng.IntN(100) >= 5 {
			b := int64(rng.IntN(100_000))
			e.bytes = &b
		}
		evs = append(evs, e)
	}
	return evs
}

// arrivalOrder shuffles events within a bound: each event (at time ts(e))
// is delayed by up to bound ms, so every event arrives within the
// watermark's bound.
func arrivalOrder[E any](seed uint64, evs []E, ts func(E) int64, bound int64) []E {
	rng := rand.New(rand.NewPCG(seed, 99))
	at := make([]int64, len(evs))
	idx := make([]int, len(evs))
	for i, e := range evs {
		at[i], idx[i] = ts(e)+rng.Int64N(bound+1), i
	}
	sort.SliceStable(idx, func(i, j int) bool { return at[idx[i]] < at[idx[j]] })
	out := make([]E, len(evs))
	for i, j := range idx {
		out[i] = evs[j]
	}
	return out
}

const createPlays = `CREATE SOURCE plays (user_id BIGINT, event_type VARCHAR, title_id BIGINT, bytes BIGINT, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'PLAYS', subjects = 'plays.>', format = 'json')`

const createSessions = `CREATE MATERIALIZED VIEW play_sessions AS
  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
         COUNT(*) AS events, SUM(bytes) AS bytes, MIN(title_id) AS first_title, AVG(bytes) AS avg_bytes
  FROM plays WHERE event_type <> 'heartbeat'
  GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`

// oracleSQL computes the same sessions in PostgreSQL from the raw events:
// LAG finds where a key's gap exceeds 30 minutes, a running SUM numbers
// the sessions.
const oracleSQL = `
WITH e AS (SELECT user_id, ts, bytes, title_id FROM events WHERE event_type <> 'heartbeat'),
m AS (SELECT *, CASE WHEN ts - LAG(ts) OVER (PARTITION BY user_id ORDER BY ts) <= interval '30 minutes' THEN 0 ELSE 1 END AS new_session FROM e),
s AS (SELECT *, SUM(new_session) OVER (PARTITION BY user_id ORDER BY ts, new_session DESC ROWS UNBOUNDED PRECEDING) AS sid FROM m)
SELECT user_id, MIN(ts) AS session_start, MAX(ts) + interval '30 minutes' AS session_end,
       COUNT(*) AS events, SUM(bytes) AS bytes, MIN(title_id) AS first_title, round(AVG(bytes), 6) AS avg_bytes
FROM s GROUP BY user_id, sid`

// TestSessionsMatchPostgresOracle is the differential test: a seeded
// workload of 120,000 events over 1,000 keys (one of them NULL), arriving
// out of order within the watermark bound, with gaps exactly equal to the
// session gap and malformed messages mixed in, flows from real JetStream
// into a real PostgreSQL table; the final rows must equal PostgreSQL's
// window-function computation over the same events.
func TestSessionsMatchPostgresOracle(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ts := startServe(t, dir, dsn)
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)

	evs := generate(1, 120_000, 1000)
	arrival := arrivalOrder(2, evs, func(e event) int64 { return e.ts }, 5000)
	payloads := make([][]byte, 0, len(arrival)+60)
	bad := [][]byte{[]byte(`not json`), []byte(`{"user_id":"seven","ts":"2024-03-01T00:00:00Z"}`), []byte(`{"user_id":1}`), []byte(`[1,2]`)}
	rejects := 0
	for i, e := range arrival {
		payloads = append(payloads, e.json())
		if i%2000 == 1999 {
			payloads = append(payloads, bad[rejects%len(bad)])
			rejects++
		}
	}
	// A last event far ahead moves the watermark past every session above.
	flushTS := evs[0].ts
	for _, e := range evs {
		flushTS = max(flushTS, e.ts)
	}
	flush := int64(-1)
	payloads = append(payloads, event{user: &flush, typ: "play", ts: flushTS + 24*3600_000}.json())
	js := ts.jetstream(t)
	for i := 0; i < len(payloads); i += 10_000 {
		if err := source.Publish(ctx, js, "plays.web", payloads[i:min(i+10_000, len(payloads))]); err != nil {
			t.Fatal(err)
		}
	}
	waitPosition(t, conn, "play_sessions", int64(len(payloads)))

	// Load the same events into PostgreSQL and compare.
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	loadEvents(t, pg, "events", evs)
	// AVG is compared at 6 decimals: PostgreSQL averages bigints in
	// numeric, the engine in float64.
	got := `SELECT user_id, session_start, session_end, events, bytes, first_title, round(avg_bytes::numeric, 6) FROM play_sessions WHERE is_final AND user_id IS DISTINCT FROM -1`
	var missing, extra, oracleRows, resultRows int64
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	compare := func(when string) {
		t.Helper()
		must(pg.QueryRow(ctx, `SELECT count(*) FROM (`+oracleSQL+`) o`).Scan(&oracleRows))
		must(pg.QueryRow(ctx, `SELECT count(*) FROM play_sessions`).Scan(&resultRows))
		must(pg.QueryRow(ctx, `SELECT count(*) FROM ((`+oracleSQL+`) EXCEPT ALL (`+got+`)) d`).Scan(&missing))
		must(pg.QueryRow(ctx, `SELECT count(*) FROM ((`+got+`) EXCEPT ALL (`+oracleSQL+`)) d`).Scan(&extra))
		t.Logf("%s: %d events (+%d rejects), oracle %d sessions, result table %d rows", when, len(evs), rejects, oracleRows, resultRows)
		if missing != 0 || extra != 0 {
			t.Fatalf("%s: result table differs from the oracle: %d sessions missing, %d extra; first missing: %v", when, missing, extra,
				pgSample(pg, `(`+oracleSQL+`) EXCEPT ALL (`+got+`)`))
		}
		if oracleRows < 1000 || resultRows != oracleRows {
			t.Fatalf("%s: oracle has %d sessions, result table %d rows (every test session final, the flush session still open)", when, oracleRows, resultRows)
		}
	}
	compare("first run")
	checkSinkFigures(t, conn, "play_sessions", resultRows)

	// The live table over the wire holds the same rows.
	var live int64
	must(conn.QueryRow(ctx, `SELECT count(*) FROM play_sessions WHERE is_final`).Scan(&live))
	if live != resultRows {
		t.Fatalf("live table has %d final rows, PostgreSQL %d", live, resultRows)
	}
	var rej int64
	must(conn.QueryRow(ctx, `SELECT count(*) FROM plays_rejects`).Scan(&rej))
	var pgRej int64
	must(pg.QueryRow(ctx, `SELECT count(*) FROM plays_rejects WHERE reason <> ''`).Scan(&pgRej))
	if rej != int64(rejects) || pgRej != int64(rejects) {
		t.Fatalf("rejects: live %d, PostgreSQL %d, published %d", rej, pgRej, rejects)
	}

	// Restart over the same data directory and sink: the view rebuilds
	// from its start and upserts the same rows; nothing is duplicated.
	ts.stop()
	ts2 := startServe(t, dir, dsn)
	conn2 := ts2.connect(t)
	waitPosition(t, conn2, "play_sessions", int64(len(payloads)))
	compare("after restart")
	must(pg.QueryRow(ctx, `SELECT count(*) FROM plays_rejects`).Scan(&pgRej))
	if pgRej != int64(rejects) {
		t.Fatalf("rejects in PostgreSQL after restart: %d, published %d", pgRej, rejects)
	}
}

// checkSinkFigures reads EXPLAIN ANALYZE's line on a view's commits to
// PostgreSQL: the rows written (upserts and deletes, after each epoch was
// coalesced per key) are no more than the rows the pipeline sent, and
// every one of the table's final rows was upserted.
func checkSinkFigures(t *testing.T, conn *pgx.Conn, view string, finalRows int64) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN ANALYZE "+view)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var epochs, received, upserts, deletes int64
	var took string
	found := false
	for _, l := range lines {
		if _, err := fmt.Sscanf(strings.TrimLeft(l, " └─"), "Commits to PostgreSQL: epochs=%d received=%d upserts=%d deletes=%d time=%s",
			&epochs, &received, &upserts, &deletes, &took); err == nil {
			found = true
		}
	}
	t.Logf("sink: %d epochs, %d rows received, %d upserted, %d deleted, in %s", epochs, received, upserts, deletes, took)
	if !found || epochs < 1 || upserts+deletes > received || upserts < finalRows {
		t.Fatalf("EXPLAIN ANALYZE's sink figures: want epochs >= 1, upserts + deletes <= received, upserts >= %d final rows:\n%s",
			finalRows, strings.Join(lines, "\n"))
	}
}

// TestQuickStartSession runs the README's psql session through pgx's
// default (extended) protocol against the in-memory result table, then
// restarts the server over the same data directory: the source and view
// come back and rebuild the same rows.
func TestQuickStartSession(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ts := startServe(t, dir, "")
	conn := ts.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, `INSERT INTO plays VALUES
	  (1, 'play', 10, 100, '2024-01-01 10:00:00'), (1, 'heartbeat', 10, 5, '2024-01-01 10:10:00'),
	  (1, 'play', 11, 200, '2024-01-01 10:20:00'), (2, 'play', 10, 300, '2024-01-01 10:05:00'),
	  (2, 'play', 12, NULL, '2024-01-01 10:35:00'), (1, 'play', 13, 50, '2024-01-01 10:50:00.001')`)
	mustExec(t, conn, `CREATE MATERIALIZED VIEW play_sessions AS
	  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
	         COUNT(*) AS events, SUM(bytes) AS bytes
	  FROM plays WHERE event_type <> 'heartbeat'
	  GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`)
	mustExec(t, conn, `INSERT INTO plays (user_id, event_type, ts) VALUES ($1, $2, $3)`, int64(9), "play", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC))
	want := "1 2024-01-01T10:00:00 2024-01-01T10:50:00 2 300\n" +
		"1 2024-01-01T10:50:00.001 2024-01-01T11:20:00.001 1 50\n" +
		"2 2024-01-01T10:05:00 2024-01-01T11:05:00 2 300\n"
	read := func(conn *pgx.Conn) string {
		rows, err := conn.Query(ctx, `SELECT user_id, session_start, session_end, events, bytes FROM play_sessions WHERE user_id < $1 ORDER BY user_id, session_start`, 9)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for rows.Next() {
			var u, n, by int64
			var s, e time.Time
			if err := rows.Scan(&u, &s, &e, &n, &by); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%d %s %s %d %d\n", u, s.Format("2006-01-02T15:04:05.999"), e.Format("2006-01-02T15:04:05.999"), n, by)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	checkFor(t, 30*time.Second, func() error {
		if got := read(conn); got != want {
			return fmt.Errorf("rows:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})
	ts.stop()
	t.Log("restarting over the same data directory")
	ts2 := startServe(t, dir, "")
	conn2 := ts2.connect(t)
	checkFor(t, 30*time.Second, func() error {
		if got := read(conn2); got != want {
			return fmt.Errorf("after restart rows:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})
}

// TestBadInputKeepsRunning sends bad statements and malformed events and
// checks the errors (SQLSTATE and position), and that neither the view nor
// the other connection notices.
func TestBadInputKeepsRunning(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	other := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	cases := []struct {
		sql      string
		code     string
		position int32
	}{
		{`SELECT user_id FORM play_sessions`, "42601", 21},
		{`SELECT nope FROM play_sessions`, "42703", 8},
		{`SELECT * FROM nothing_here`, "42P01", 15},
		{createPlays, "42P07", 15},
		{`CREATE MATERIALIZED VIEW v AS SELECT user_id, COUNT(*) FROM plays GROUP BY user_id, SESSION(ts, INTERVAL '30' FORTNIGHT)`, "42601", 111},
		{`CREATE MATERIALIZED VIEW v AS SELECT nope, COUNT(*) FROM plays GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`, "42803", 38},
		{`CREATE MATERIALIZED VIEW v AS SELECT user_id, COUNT(*) FROM plays WHERE bogus > 1 GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`, "42703", 73},
	}
	for _, tc := range cases {
		_, err := conn.Exec(ctx, tc.sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Position != tc.position {
			t.Errorf("%s\n  got %v (position %d), want SQLSTATE %s at %d", tc.sql, err, func() int32 {
				if pe != nil {
					return pe.Position
				}
				return 0
			}(), tc.code, tc.position)
		}
	}
	js := ts.jetstream(t)
	good := event{user: ptr(5), typ: "play", ts: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), bytes: ptr(10)}
	later := good
	later.ts += 3 * 3600_000
	if err := source.Publish(ctx, js, "plays.x", [][]byte{good.json(), []byte(`{"user_id": 5, "ts": "yesterday"}`), []byte("\x00\x01"), later.json()}); err != nil {
		t.Fatal(err)
	}
	waitPosition(t, other, "play_sessions", 4)
	var n, rejects int64
	if err := other.QueryRow(ctx, `SELECT count(*) FROM play_sessions WHERE user_id = 5 AND events = 1 AND bytes = 10`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := other.QueryRow(ctx, `SELECT count(*) FROM plays_rejects`).Scan(&rejects); err != nil {
		t.Fatal(err)
	}
	if n != 1 || rejects != 2 {
		t.Fatalf("sessions of user 5: %d (want 1), rejects %d (want 2)", n, rejects)
	}
	_, state := viewPosition(t, other, "play_sessions")
	if state != "running" {
		t.Fatalf("view state %q after bad input", state)
	}

	// An event for user 5's closed session is late: it goes to
	// play_sessions_late with its raw message, and the final row stays.
	tooLate := good
	tooLate.ts += 60_000
	if err := source.Publish(ctx, js, "plays.x", [][]byte{tooLate.json()}); err != nil {
		t.Fatal(err)
	}
	waitPosition(t, other, "play_sessions", 5)
	var seq int64
	var payload string
	if err := other.QueryRow(ctx, `SELECT seq, payload FROM play_sessions_late`).Scan(&seq, &payload); err != nil {
		t.Fatal(err)
	}
	if seq != 5 || payload != string(tooLate.json()) {
		t.Fatalf("late row: seq %d payload %s", seq, payload)
	}
	if err := other.QueryRow(ctx, `SELECT count(*) FROM play_sessions WHERE user_id = 5 AND events = 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("user 5's final row changed by a late event: %d rows, %v", n, err)
	}
}

func ptr(v int64) *int64 { return &v }

// TestManyClients: many connections read the live table while events
// flow in and another connection runs bad statements; every read sees a
// consistent table (counts never go down, the view keeps running).
func TestManyClients(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	js := ts.jetstream(t)
	evs := generate(7, 20_000, 200)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, err := pgx.Connect(ctx, "postgres://reader@"+ts.addr+"/sessionsql?sslmode=disable")
			if err != nil {
				errs <- err
				return
			}
			defer cc.Close(ctx)
			last := int64(0)
			for range 25 {
				var n int64
				if c%4 == 0 {
					_, err := cc.Exec(ctx, "SELECT nope FROM play_sessions")
					var pe *pgconn.PgError
					if !errors.As(err, &pe) || pe.Code != "42703" {
						errs <- fmt.Errorf("bad statement: %v", err)
						return
					}
					continue
				}
				if err := cc.QueryRow(ctx, "SELECT count(*) FROM play_sessions WHERE events >= $1", 0).Scan(&n); err != nil {
					errs <- err
					return
				}
				if n < last {
					errs <- fmt.Errorf("final rows went from %d to %d", last, n)
					return
				}
				last = n
			}
		}()
	}
	var payloads [][]byte
	for _, e := range evs {
		payloads = append(payloads, e.json())
	}
	if err := source.Publish(ctx, js, "plays.web", payloads); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitPosition(t, conn, "play_sessions", int64(len(payloads)))
	if _, state := viewPosition(t, conn, "play_sessions"); state != "running" {
		t.Fatalf("view %s", state)
	}
}

// TestStartLatestAndIdleTimeout: with start = 'latest' a new view reads
// only events published after it was created; with idle_timeout the
// watermark follows processing time when the stream is quiet, so the
// session closes without any later event.
func TestStartLatestAndIdleTimeout(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, `CREATE SOURCE clicks (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
	  WITH (start = 'latest', idle_timeout = '1s')`)
	mustExec(t, conn, `INSERT INTO clicks VALUES (1, '2024-01-01 00:00:00')`)
	mustExec(t, conn, `CREATE MATERIALIZED VIEW s AS SELECT k, COUNT(*) AS n FROM clicks GROUP BY k, SESSION(ts, INTERVAL '1' MINUTE)`)
	mustExec(t, conn, `INSERT INTO clicks VALUES (1, '2024-01-01 00:00:30'), (2, '2024-01-01 00:00:10')`)
	checkFor(t, 30*time.Second, func() error {
		rows, err := conn.Query(ctx, `SELECT k, n FROM s WHERE is_final ORDER BY k`)
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var k, n int64
			err := r.Scan(&k, &n)
			return fmt.Sprintf("%d:%d", k, n), err
		})
		if err != nil {
			return err
		}
		if strings.Join(got, " ") != "1:1 2:1" {
			return fmt.Errorf("final rows %v, want [1:1 2:1] (the event before the view is not read)", got)
		}
		return nil
	})
}
