package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
	"github.com/sessionsql/sessionsql/exec/source"
)

const createActs = `CREATE SOURCE acts (user_id BIGINT, device VARCHAR, event_type VARCHAR, title_id BIGINT, bytes BIGINT, gap_ms BIGINT, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'ACTS', subjects = 'acts.>', format = 'json')`

// startActsView starts a server over dir with the PostgreSQL sink, creates
// the acts source and the view viewSQL, and returns the server, a wire
// connection and a direct connection to the sink database.
func startActsView(t *testing.T, dir, viewSQL string) (*testServer, *pgx.Conn, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.DSN(t)
	ts := startServe(t, dir, dsn)
	conn := ts.connect(t)
	mustExec(t, conn, createActs)
	mustExec(t, conn, viewSQL)
	pg, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })
	return ts, conn, pg
}

// TestWindowKindsMatchPostgresOracle is the differential test of every
// window kind: a seeded workload of 100,000 events over 1,000 users (one
// of them NULL), arriving out of order within the watermark bound, with
// malformed messages mixed in, flows from JetStream through five views
// (one per window kind, windowKinds) into PostgreSQL; each view's final
// rows must equal its PostgreSQL oracle over the same events, which
// TestWindowOraclesAgree checks against a Go reference.
func TestWindowKindsMatchPostgresOracle(t *testing.T) {
	dsn := pgtest.DSN(t)
	ts := startServe(t, t.TempDir(), dsn)
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createActs)
	for _, k := range windowKinds {
		mustExec(t, conn, `CREATE MATERIALIZED VIEW `+k.view+` AS `+viewSelect+` GROUP BY user_id, `+k.window)
	}

	// seq is the stream sequence (the stream is fresh): the malformed
	// messages take sequences too.
	arrival := arrivalOrder(2, genActs(1, 100_000, 1000), func(a act) int64 { return a.ts }, 5000)
	payloads := make([][]byte, 0, len(arrival)+60)
	bad := [][]byte{[]byte(`not json`), []byte(`{"user_id":"seven","ts":"2024-03-01T00:00:00Z"}`), []byte(`{"user_id":1}`), []byte(`[1,2]`)}
	rejects := 0
	flushTS := arrival[0].ts
	for i := range arrival {
		arrival[i].seq = int64(len(payloads) + 1)
		payloads = append(payloads, arrival[i].json())
		flushTS = max(flushTS, arrival[i].ts)
		if i%2000 == 1999 {
			payloads = append(payloads, bad[rejects%len(bad)])
			rejects++
		}
	}
	// A last event far ahead moves the watermark past every window above
	// (user -1 is left out of the comparison).
	payloads = append(payloads, act{user: ptr(-1), typ: str("play"), ts: flushTS + 24*3600_000}.json())
	js := ts.jetstream(t)
	start := time.Now()
	if err := source.Publish(ctx, js, "acts.web", payloads); err != nil {
		t.Fatal(err)
	}
	for _, k := range windowKinds {
		waitPosition(t, conn, k.view, int64(len(payloads)))
	}
	t.Logf("%d events (+%d rejects) published and consumed by %d views in %s", len(arrival), rejects, len(windowKinds), time.Since(start).Round(time.Millisecond))

	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	loadActs(t, pg, arrival)
	count := func(c *pgx.Conn, sql string) int64 {
		t.Helper()
		var n int64
		if err := c.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for _, k := range windowKinds {
		t.Run(k.view, func(t *testing.T) {
			got := `SELECT ` + resultCols + ` FROM ` + k.view + ` WHERE is_final AND user_id IS DISTINCT FROM -1`
			oracleRows := count(pg, `SELECT count(*) FROM (`+k.oracle+`) o`)
			finalRows := count(pg, `SELECT count(*) FROM (`+got+`) g`)
			allRows := count(pg, `SELECT count(*) FROM `+k.view)
			missing := queryRows(t, pg, `(`+k.oracle+`) EXCEPT ALL (`+got+`)`)
			extra := queryRows(t, pg, `(`+got+`) EXCEPT ALL (`+k.oracle+`)`)
			t.Logf("%s: oracle %d windows, result table %d final rows (%d rows in all)", k.window, oracleRows, finalRows, allRows)
			if len(missing) != 0 || len(extra) != 0 {
				_, _, sample := diffRows(missing, extra)
				t.Fatalf("%s: result table differs from the oracle: %d rows missing, %d extra (want = oracle, got = result table):%s",
					k.window, len(missing), len(extra), sample)
			}
			if oracleRows < 1000 {
				t.Fatalf("the oracle has only %d windows", oracleRows)
			}
			// The live table over the wire holds the same final rows.
			if live := count(conn, `SELECT count(*) FROM `+k.view+` WHERE is_final AND user_id <> -1`) +
				count(conn, `SELECT count(*) FROM `+k.view+` WHERE is_final AND user_id IS NULL`); live != finalRows {
				t.Fatalf("live table has %d final rows, PostgreSQL %d", live, finalRows)
			}
		})
	}
	if rej := count(conn, `SELECT count(*) FROM acts_rejects`); rej != int64(rejects) {
		t.Fatalf("acts_rejects has %d rows, %d malformed messages published", rej, rejects)
	}
}

// TestEarlyFiringEndToEnd: with EMIT EARLY EVERY INTERVAL '1' SECOND, a
// session that stays open shows in PostgreSQL as a partial row (is_final
// false) carrying each round's count; when the watermark passes its end
// the final row replaces it: one row for the window, final, with the total.
func TestEarlyFiringEndToEnd(t *testing.T) {
	ts, _, pg := startActsView(t, t.TempDir(), `CREATE MATERIALIZED VIEW early_sessions AS
	  SELECT user_id, WINDOW_START() AS ws, WINDOW_END() AS we, COUNT(*) AS n
	  FROM acts GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)
	  EMIT EARLY EVERY INTERVAL '1' SECOND`)
	ctx := context.Background()
	js := ts.jetstream(t)

	type row struct {
		ws, we time.Time
		n      int64
		final  bool
	}
	read := func() []row {
		rows, err := pg.Query(ctx, `SELECT ws, we, n, is_final FROM early_sessions WHERE user_id = 7`)
		if err != nil {
			return nil // the sink may not have created the table yet
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.ws, &x.we, &x.n, &x.final)
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// One session of user 7: events a minute apart, in rounds. The
	// watermark trails the last event by 5 s, the session ends 30 minutes
	// after it, so nothing is final until the far-ahead event.
	base := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	const rounds, perRound = 4, 3
	var seen []int64 // every count read, in order
	total := 0
	for round := 1; round <= rounds; round++ {
		var payloads [][]byte
		for range perRound {
			payloads = append(payloads, act{user: ptr(7), typ: str("play"), ts: base.Add(time.Duration(total) * time.Minute).UnixMilli()}.json())
			total++
		}
		if err := source.Publish(ctx, js, "acts.web", payloads); err != nil {
			t.Fatal(err)
		}
		checkFor(t, 30*time.Second, func() error {
			rows := read()
			if len(rows) > 1 {
				t.Fatalf("round %d: %d rows for one open session: %v", round, len(rows), rows)
			}
			for _, r := range rows {
				if r.final {
					t.Fatalf("round %d: a final row while the session is open: %+v", round, r)
				}
				if len(seen) > 0 && r.n < seen[len(seen)-1] {
					t.Fatalf("round %d: the partial count went from %d down to %d", round, seen[len(seen)-1], r.n)
				}
				seen = append(seen, r.n)
				if r.n == int64(total) {
					return nil
				}
			}
			return fmt.Errorf("round %d: want a partial row with count %d, have %+v", round, total, rows)
		})
	}

	flush := act{user: ptr(8), typ: str("play"), ts: base.Add(24 * time.Hour).UnixMilli()}
	if err := source.Publish(ctx, js, "acts.web", [][]byte{flush.json()}); err != nil {
		t.Fatal(err)
	}
	want := row{ws: base, we: base.Add(time.Duration(total-1)*time.Minute + 30*time.Minute), n: int64(total), final: true}
	checkFor(t, 30*time.Second, func() error {
		if rows := read(); len(rows) != 1 || rows[0] != want {
			return fmt.Errorf("rows of user 7 %+v, want only %+v", rows, want)
		}
		return nil
	})
	if m := slices.Max(seen); m > want.n {
		t.Fatalf("a partial count %d exceeded the final %d", m, want.n)
	}
	t.Logf("partial counts seen: %v; final %d", seen, want.n)
}

// TestLatenessEndToEnd: with ALLOWED LATENESS INTERVAL '1' MINUTE a
// session's final row appears when the watermark passes its end, a late
// event within the allowed lateness updates it, and an event for the same
// time range after the watermark has passed end + 1 minute goes to the
// view's _late table (over the wire and in PostgreSQL) and changes
// nothing.
func TestLatenessEndToEnd(t *testing.T) {
	ts, conn, pg := startActsView(t, t.TempDir(), `CREATE MATERIALIZED VIEW late_sessions AS
	  SELECT user_id, WINDOW_START() AS ws, WINDOW_END() AS we, COUNT(*) AS n
	  FROM acts GROUP BY user_id, SESSION(ts, INTERVAL '10' SECOND)
	  ALLOWED LATENESS INTERVAL '1' MINUTE`)
	ctx := context.Background()
	js := ts.jetstream(t)

	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(user int64, d time.Duration) act {
		return act{user: ptr(user), typ: str("play"), ts: t0.Add(d).UnixMilli()}
	}
	published := int64(0)
	publish := func(evs ...act) {
		t.Helper()
		var payloads [][]byte
		for _, e := range evs {
			payloads = append(payloads, e.json())
		}
		if err := source.Publish(ctx, js, "acts.web", payloads); err != nil {
			t.Fatal(err)
		}
		published += int64(len(evs))
		waitPosition(t, conn, "late_sessions", published)
	}
	type row struct {
		we    time.Time
		n     int64
		final bool
	}
	// expect waits until user 1's only row in PostgreSQL is want.
	expect := func(step string, want row) {
		t.Helper()
		checkFor(t, 30*time.Second, func() error {
			rows, err := pg.Query(ctx, `SELECT ws, we, n, is_final FROM late_sessions WHERE user_id = 1`)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				var ws time.Time
				err := r.Scan(&ws, &x.we, &x.n, &x.final)
				if err == nil && !ws.Equal(t0) {
					err = fmt.Errorf("window start %s, want %s", ws, t0)
				}
				return x, err
			})
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0] != want {
				return fmt.Errorf("%s: rows of user 1 %+v, want only %+v", step, got, want)
			}
			return nil
		})
	}

	// The session [t0, t0+14s); user 2 at t0+30s moves the watermark to
	// t0+25s, past its end: the row is final.
	publish(at(1, 0), at(1, 2*time.Second), at(1, 4*time.Second), at(2, 30*time.Second))
	expect("watermark past the end", row{we: t0.Add(14 * time.Second), n: 3, final: true})

	// t0+6s is behind the watermark, but the watermark minus a minute
	// (t0-35s) has not passed the session's end: the event still counts.
	publish(at(1, 6*time.Second))
	expect("late event within the allowed lateness", row{we: t0.Add(16 * time.Second), n: 4, final: true})

	// The watermark moves to t0+115s: minus a minute it has passed
	// t0+16s. An event in the session's range now is too late.
	publish(at(2, 2*time.Minute))
	tooLate := at(1, 8*time.Second)
	publish(tooLate)
	wantSeq := published
	for _, c := range []struct {
		where string
		conn  *pgx.Conn
	}{{"live", conn}, {"PostgreSQL", pg}} {
		checkFor(t, 30*time.Second, func() error {
			rows, err := c.conn.Query(ctx, `SELECT seq, payload FROM late_sessions_late`)
			if err != nil {
				return err
			}
			type late struct {
				seq     int64
				payload string
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (late, error) {
				var l late
				return l, r.Scan(&l.seq, &l.payload)
			})
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0] != (late{wantSeq, string(tooLate.json())}) {
				return fmt.Errorf("%s late_sessions_late: %+v, want only seq %d with the event's message", c.where, got, wantSeq)
			}
			return nil
		})
	}
	expect("too late an event changes nothing", row{we: t0.Add(16 * time.Second), n: 4, final: true})
}

// TestRestartDropsStalePartialRows: a view with EMIT EARLY that restarts
// without a usable checkpoint rebuilds from its stream, and may never
// write again a partial row it wrote before (the window merged or moved
// since, or the rebuild ran faster than the interval). The restart drops
// the partial rows in PostgreSQL and the rebuild writes the current ones;
// final rows stay.
func TestRestartDropsStalePartialRows(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ts := startServe(t, dir, dsn)
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createActs)
	mustExec(t, conn, `CREATE MATERIALIZED VIEW restart_sessions AS
	  SELECT user_id, WINDOW_START() AS ws, COUNT(*) AS n
	  FROM acts GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)
	  EMIT EARLY EVERY INTERVAL '1' SECOND`)
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	base := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	var payloads [][]byte
	for i := range 3 {
		payloads = append(payloads, act{user: ptr(7), typ: str("play"), ts: base.Add(time.Duration(i) * time.Minute).UnixMilli()}.json())
	}
	if err := source.Publish(ctx, ts.jetstream(t), "acts.web", payloads); err != nil {
		t.Fatal(err)
	}
	rowsOf := func() string {
		var s string
		if err := pg.QueryRow(ctx, `SELECT coalesce(string_agg(format('%s@%s n=%s final=%s', user_id, to_char(ws, 'HH24:MI'), n, is_final::text), ', ' ORDER BY user_id, ws), '') FROM restart_sessions`).Scan(&s); err != nil {
			return err.Error()
		}
		return s
	}
	want := "7@10:00 n=3 final=false"
	checkFor(t, 30*time.Second, func() error {
		if got := rowsOf(); got != want {
			return fmt.Errorf("rows %q, want %q", got, want)
		}
		return nil
	})
	ts.stop()

	// Without a usable checkpoint (here: its progress row is gone) the
	// view rebuilds from its stream. Rows the rebuild will not write: a
	// partial row of a session that no longer exists, and a final row
	// (which a restart must keep).
	mustExec(t, pg, `DELETE FROM sessionsql_progress WHERE view_name = 'restart_sessions'`)
	mustExec(t, pg, `INSERT INTO restart_sessions (user_id, ws, n, is_final, emitted_at) VALUES
	  (7, '2024-01-01 09:00', 1, false, now()), (9, '2024-01-01 08:00', 2, true, now())`)

	ts2 := startServe(t, dir, dsn)
	conn2 := ts2.connect(t)
	waitPosition(t, conn2, "restart_sessions", 3)
	want = "7@10:00 n=3 final=false, 9@08:00 n=2 final=true"
	checkFor(t, 30*time.Second, func() error {
		if got := rowsOf(); got != want {
			return fmt.Errorf("rows after the restart %q, want %q", got, want)
		}
		return nil
	})
}

// TestMergeRetractsInPostgres: two sessions of a user each have a row in
// PostgreSQL (the first final: the watermark passed it; the second
// partial, from EMIT EARLY EVERY 2 EVENTS); late events within the allowed
// lateness bridge them, and the absorbed session's row is deleted in the
// same batch that updates the survivor, in PostgreSQL and in the live
// table. The final row then replaces the partial one.
func TestMergeRetractsInPostgres(t *testing.T) {
	ts, conn, pg := startActsView(t, t.TempDir(), `CREATE MATERIALIZED VIEW merged AS
	  SELECT user_id, WINDOW_START() AS ws, COUNT(*) AS n
	  FROM acts GROUP BY user_id, SESSION(ts, INTERVAL '10' MINUTE)
	  EMIT EARLY EVERY 2 EVENTS ALLOWED LATENESS INTERVAL '1' HOUR`)
	ctx := context.Background()
	js := ts.jetstream(t)
	base := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	publish := func(minutes ...int) {
		t.Helper()
		var payloads [][]byte
		for _, m := range minutes {
			payloads = append(payloads, act{user: ptr(7), typ: str("play"), ts: base.Add(time.Duration(m) * time.Minute).UnixMilli()}.json())
		}
		if err := source.Publish(ctx, js, "acts.web", payloads); err != nil {
			t.Fatal(err)
		}
	}
	rowsIn := func(q func(context.Context, string, ...any) (pgx.Rows, error)) string {
		rows, err := q(ctx, `SELECT user_id, ws, n, is_final FROM merged WHERE user_id = 7 ORDER BY ws`)
		if err != nil {
			return err.Error()
		}
		var out []string
		for rows.Next() {
			var user, n int64
			var ws time.Time
			var final bool
			if err := rows.Scan(&user, &ws, &n, &final); err != nil {
				return err.Error()
			}
			out = append(out, fmt.Sprintf("%d@%s n=%d final=%t", user, ws.UTC().Format("15:04"), n, final))
		}
		rows.Close()
		return strings.Join(out, ", ")
	}
	expect := func(want string) {
		t.Helper()
		checkFor(t, 30*time.Second, func() error {
			if got := rowsIn(pg.Query); got != want {
				return fmt.Errorf("PostgreSQL: %q, want %q", got, want)
			}
			if got := rowsIn(conn.Query); got != want {
				return fmt.Errorf("live table: %q, want %q", got, want)
			}
			return nil
		})
	}
	// Two sessions 30 minutes apart, two events each. The watermark
	// (10:35 - 5 s) has passed the first one's end (10:15): final.
	publish(0, 5, 30, 35)
	expect("7@10:00 n=2 final=true, 7@10:30 n=2 final=false")
	// 10:15 and 10:22, late but within the hour, bridge them: 10:05 + 10
	// min reaches 10:15, 10:22 + 10 min reaches 10:30. One session, whose
	// end (10:45) the watermark has not passed; the one at 10:30 is gone.
	publish(15, 22)
	expect("7@10:00 n=6 final=false")
	// A far-ahead event of another user closes it.
	if err := source.Publish(ctx, js, "acts.web", [][]byte{act{user: ptr(8), typ: str("play"), ts: base.Add(24 * time.Hour).UnixMilli()}.json()}); err != nil {
		t.Fatal(err)
	}
	expect("7@10:00 n=6 final=true")
}
