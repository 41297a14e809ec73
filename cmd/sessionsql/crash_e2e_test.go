package main

// The crash test of SPEC.md's exactly-once guarantee: "after a crash
// (kill -9) and restart, no event is lost or counted twice, and every final
// row equals what an uninterrupted run writes".

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
)

// crashServeFlags are the serve flags of both runs besides the data
// directory, the addresses and the sink. A checkpoint every 500ms puts
// several checkpoints between kills.
var crashServeFlags = []string{"--metrics-listen", "", "--checkpoint-interval", "500ms", "--log-level", "info"}

// crashSeedEnv names the environment variable that picks another workload
// (and other kill points) for TestCrashRecoveryExactlyOnce; crashEmitEnv
// one that adds an EMIT clause to its view (e.g. "EMIT EARLY EVERY 3
// EVENTS"): the final table must be the same, with every early row gone.
const (
	crashSeedEnv = "SESSIONSQL_CRASH_SEED"
	crashEmitEnv = "SESSIONSQL_CRASH_EMIT"
)

const (
	crashEvents  = 200_000
	crashUsers   = 2_000
	crashStream  = "PLAYS"
	crashSubject = "plays.web"
	crashView    = "play_sessions"
	// crashPublishRate paces the publisher of the crashed run (messages
	// per second) so that the first kills fall while events still arrive.
	crashPublishRate = 60_000
)

const createCrashSource = `CREATE SOURCE plays (user_id BIGINT, title_id BIGINT, bytes BIGINT, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'PLAYS', subjects = 'plays.>', format = 'json')`

const createCrashView = `CREATE MATERIALIZED VIEW play_sessions AS
  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
         COUNT(*) AS events, SUM(bytes) AS bytes, COUNT(DISTINCT title_id) AS titles,
         MIN(ts) AS first_ts, MAX(ts) AS last_ts
  FROM plays
  GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`

// crashCols are the view's columns, all but is_final and emitted_at.
const crashCols = `user_id, session_start, session_end, events, bytes, titles, first_ts, last_ts`

// crashOracleSQL is oracleSQL (e2e_test.go) without the WHERE, with the
// crash view's aggregates, over crash_events.
const crashOracleSQL = `
WITH m AS (SELECT user_id, ts, bytes, title_id,
  CASE WHEN ts - LAG(ts) OVER (PARTITION BY user_id ORDER BY ts) <= interval '30 minutes' THEN 0 ELSE 1 END AS new_session FROM crash_events),
s AS (SELECT *, SUM(new_session) OVER (PARTITION BY user_id ORDER BY ts, new_session DESC ROWS UNBOUNDED PRECEDING) AS sid FROM m)
SELECT user_id, MIN(ts) AS session_start, MAX(ts) + interval '30 minutes' AS session_end,
       COUNT(*) AS events, SUM(bytes) AS bytes, COUNT(DISTINCT title_id) AS titles, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM s GROUP BY user_id, sid`

// TestCrashRecoveryExactlyOnce runs the real binary twice over the same
// seeded workload (200,000 events over 2,000 users, out of order within
// the watermark bound, then a far-future event of user -1 that closes
// every session): once without interruption, once killed with SIGKILL at
// 4 to 6 random points, some while events are still being published, and
// restarted over the same data directory each time. The crashed run's
// result table must hold no duplicate and no non-final row, equal the
// PostgreSQL window-function oracle, and equal the uninterrupted run's
// table. $SESSIONSQL_CRASH_SEED picks another workload and other kill
// points.
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it for about a minute")
	}
	seed := uint64(1)
	if s := os.Getenv(crashSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("$%s: %v", crashSeedEnv, err)
		}
		seed = v
	}
	t.Logf("seed %d (set $%s to run another workload)", seed, crashSeedEnv)
	testStart := time.Now()
	dsnCrash, dsnGold := pgtest.DSN(t), pgtest.DSN(t)
	bin := buildBinary(t)
	ctx := context.Background()

	evs := generate(seed, crashEvents, crashUsers)
	_, payloads := withSentinel(seed+1, evs)
	lastSeq := int64(len(payloads))

	pgCrash, pgGold := pgConnect(t, dsnCrash), pgConnect(t, dsnGold)
	var crashSchema, goldSchema string
	if err := pgCrash.QueryRow(ctx, `SELECT current_schema()`).Scan(&crashSchema); err != nil {
		t.Fatal(err)
	}
	if err := pgGold.QueryRow(ctx, `SELECT current_schema()`).Scan(&goldSchema); err != nil {
		t.Fatal(err)
	}

	// The uninterrupted run: its result table is the golden output.
	runStart := time.Now()
	gold := newServeProc(t, "uninterrupted", bin, t.TempDir(), dsnGold, crashServeFlags)
	gold.start()
	conn := gold.connect()
	mustExec(t, conn, createCrashSource)
	mustExec(t, conn, createCrashView+" "+os.Getenv(crashEmitEnv))
	pub := startCrashPublisher(t, gold.natsURL, payloads, 0)
	pub.wait(t)
	published := time.Since(runStart)
	waitFinalRows(t, conn, pgGold, lastSeq)
	gold.kill()
	goldTime := time.Since(runStart)
	t.Logf("uninterrupted run: %d events published in %s, final rows stable after %s",
		lastSeq, published.Round(time.Millisecond), goldTime.Round(time.Millisecond))

	// The crashed run.
	runStart = time.Now()
	rng := rand.New(rand.NewPCG(seed, 0xdead))
	crash := newServeProc(t, "crashed", bin, t.TempDir(), dsnCrash, crashServeFlags)
	crash.start()
	conn = crash.connect()
	mustExec(t, conn, createCrashSource)
	mustExec(t, conn, createCrashView+" "+os.Getenv(crashEmitEnv))
	pub = startCrashPublisher(t, crash.natsURL, payloads, crashPublishRate)
	kills := 4 + rng.IntN(3)
	var catchUps []string
	started, killPos := time.Now(), int64(-1)
	for i := 1; i <= kills; i++ {
		delay := 300*time.Millisecond + time.Duration(rng.Int64N(2200))*time.Millisecond
		deadline := started.Add(delay)
		caughtUp, waiting := "(first start)", killPos >= 0
		if waiting {
			caughtUp = "not before this kill"
		}
		for time.Now().Before(deadline) {
			if waiting {
				if pos, _ := viewPosition(t, conn, crashView); pos >= killPos {
					caughtUp, waiting = time.Since(started).Round(time.Millisecond).String(), false
				}
			}
			time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
		}
		if killPos >= 0 {
			catchUps = append(catchUps, caughtUp)
		}
		pos, state := viewPosition(t, conn, crashView)
		stored := pub.stored.Load()
		crash.kill()
		t.Logf("kill %d of %d, %s after (re)start: view at position %d (%s), %d of %d messages published; committed progress: %s; time to get back to the previous kill's position: %s",
			i, kills, delay, pos, state, stored, lastSeq, committedProgress(pgCrash), caughtUp)
		killPos = pos
		ready := crash.start()
		started = time.Now()
		conn = crash.connect()
		t.Logf("restart %d: accepting connections after %s", i, ready.Round(time.Millisecond))
	}
	// After the last restart: the time to catch up with the last kill's
	// position, then to process everything.
	caughtUp := time.Duration(-1)
	checkFor(t, 60*time.Second, func() error {
		if pos, _ := viewPosition(t, conn, crashView); pos < killPos {
			return fmt.Errorf("view at position %d, the last kill's position is %d", pos, killPos)
		}
		caughtUp = time.Since(started)
		return nil
	})
	catchUps = append(catchUps, caughtUp.Round(time.Millisecond).String())
	pub.wait(t)
	waitFinalRows(t, conn, pgCrash, lastSeq)
	finished := time.Since(started)
	crash.kill()
	crashTime := time.Since(runStart)
	if n := pub.lostAcked.Load(); n > 0 {
		t.Logf("JetStream lost %d acknowledged messages in the kills; they were published again", n)
	}
	t.Logf("crashed run: %d kills, %d publisher reconnects, time after each restart to catch up with the kill's position: %s; final rows stable %s after the last restart; whole run %s",
		kills, pub.reconnects.Load(), strings.Join(catchUps, ", "), finished.Round(time.Millisecond), crashTime.Round(time.Millisecond))

	// Checks, in PostgreSQL. The crashed run's schema also gets the events,
	// for the oracle.
	checkStart := time.Now()
	loadEvents(t, pgCrash, "crash_events", evs)
	count := func(sql string) int64 { return pgCount(t, pgCrash, sql) }
	sample := func(sql string) string { return pgSample(pgCrash, sql) }
	crashTable, goldTable := pgx.Identifier{crashSchema, crashView}.Sanitize(), pgx.Identifier{goldSchema, crashView}.Sanitize()
	for _, tbl := range []struct{ run, schema, table string }{{"crashed", crashSchema, crashTable}, {"uninterrupted", goldSchema, goldTable}} {
		// (a) One row per key and window start.
		rows := count(`SELECT count(*) FROM ` + tbl.table)
		keys := count(`SELECT count(*) FROM (SELECT DISTINCT user_id, session_start FROM ` + tbl.table + `) k`)
		if rows != keys {
			t.Errorf("%s run: %d rows but %d distinct (user_id, session_start): duplicates", tbl.run, rows, keys)
		}
		// (c) Every session but the sentinel's is closed: no early row
		// (with $SESSIONSQL_CRASH_EMIT) is left of them.
		if n := count(`SELECT count(*) FROM ` + tbl.table + ` WHERE is_final IS NOT TRUE AND user_id IS DISTINCT FROM -1`); n != 0 {
			t.Errorf("%s run: %d rows are not final", tbl.run, n)
		}
		// No event was late: the workload keeps within the watermark bound.
		late := pgx.Identifier{tbl.schema, crashView + "_late"}.Sanitize()
		if count(`SELECT count(*) FROM pg_tables WHERE schemaname = '`+tbl.schema+`' AND tablename = '`+crashView+`_late'`) == 1 {
			if n := count(`SELECT count(*) FROM ` + late); n != 0 {
				t.Errorf("%s run: %d late events", tbl.run, n)
			}
		}
	}

	// (b) The crashed run's final rows equal the oracle.
	final := `SELECT ` + crashCols + ` FROM ` + crashTable + ` WHERE is_final AND user_id IS DISTINCT FROM -1`
	oracleRows := count(`SELECT count(*) FROM (` + crashOracleSQL + `) o`)
	resultRows := count(`SELECT count(*) FROM ` + crashTable + ` WHERE user_id IS DISTINCT FROM -1`)
	missingSQL, extraSQL := `(`+crashOracleSQL+`) EXCEPT ALL (`+final+`)`, `(`+final+`) EXCEPT ALL (`+crashOracleSQL+`)`
	missing, extra := count(`SELECT count(*) FROM (`+missingSQL+`) d`), count(`SELECT count(*) FROM (`+extraSQL+`) d`)
	if missing != 0 || extra != 0 {
		t.Errorf("crashed run differs from the oracle: %d sessions missing, %d extra\nfirst missing: %s\nfirst extra: %s",
			missing, extra, sample(missingSQL), sample(extraSQL))
	}
	if oracleRows < crashUsers || resultRows != oracleRows {
		t.Errorf("oracle has %d sessions, the crashed run's table %d rows besides the sentinel's",
			oracleRows, resultRows)
	}

	// (d) The crashed run's table equals the uninterrupted run's.
	crashAll := `SELECT ` + crashCols + `, is_final FROM ` + crashTable
	goldAll := `SELECT ` + crashCols + `, is_final FROM ` + goldTable
	missingSQL, extraSQL = `(`+goldAll+`) EXCEPT ALL (`+crashAll+`)`, `(`+crashAll+`) EXCEPT ALL (`+goldAll+`)`
	missing, extra = count(`SELECT count(*) FROM (`+missingSQL+`) d`), count(`SELECT count(*) FROM (`+extraSQL+`) d`)
	goldRows := count(`SELECT count(*) FROM ` + goldTable + ` WHERE user_id IS DISTINCT FROM -1`)
	if missing != 0 || extra != 0 || goldRows != resultRows {
		t.Errorf("crashed run (%d rows) differs from the uninterrupted run (%d rows): %d rows missing, %d extra\nfirst missing: %s\nfirst extra: %s",
			resultRows, goldRows, missing, extra, sample(missingSQL), sample(extraSQL))
	}
	t.Logf("%d events (+1 sentinel), %d sessions in the oracle, %d rows in the crashed run's table, %d in the uninterrupted run's; %d kills; checks took %s; test %s",
		len(evs), oracleRows, resultRows, goldRows, kills, time.Since(checkStart).Round(time.Millisecond),
		time.Since(testStart).Round(time.Millisecond))
}

// pgConnect connects to the sink database, closed at the end of the test.
func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// committedProgress describes the view's row in the sink's progress
// table, or why there is none.
func committedProgress(pg *pgx.Conn) string {
	var epoch, pos int64
	err := pg.QueryRow(context.Background(), `SELECT epoch, position FROM sessionsql_progress WHERE view_name = $1`, crashView).Scan(&epoch, &pos)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "none yet"
	case err != nil:
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgerrcode.UndefinedTable {
			return "no progress table"
		}
		return "unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("epoch %d at position %d", epoch, pos)
}

// waitFinalRows waits until the view has read the stream up to lastSeq
// and the sink's result table has stopped changing: the same row counts
// for three checkpoint intervals.
func waitFinalRows(t *testing.T, conn, pg *pgx.Conn, lastSeq int64) {
	t.Helper()
	waitPosition(t, conn, crashView, lastSeq)
	var last [2]int64
	since := time.Now()
	checkFor(t, 30*time.Second, func() error {
		var n [2]int64
		if err := pg.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE is_final) FROM `+crashView).Scan(&n[0], &n[1]); err != nil {
			return err
		}
		if n != last {
			last, since = n, time.Now()
		}
		if d := time.Since(since); d < 1500*time.Millisecond {
			return fmt.Errorf("result table: %d rows, %d final, unchanged for only %s", n[0], n[1], d)
		}
		return nil
	})
}

// crashPublisher publishes payloads to the crash stream in order, each
// exactly once, while the server (and so its embedded NATS server) is
// killed and restarted under it. Message i carries the ID i, so stream
// sequence i+1 holds payload i; after every reconnect the publisher reads
// the stream's last message and resumes after it. It never reconnects a
// connection on its own (nats.go would resend its buffer after messages
// the stream already holds), and it checks that the stream holds exactly
// a prefix of the payloads: anything else is a harness failure.
type crashPublisher struct {
	url      string
	payloads [][]byte
	rate     int // messages per second; 0: as fast as acks come back

	stored     atomic.Int64 // payloads known to be in the stream
	reconnects atomic.Int64
	lostAcked  atomic.Int64 // acknowledged messages the stream no longer held after a restart
	cancel     context.CancelFunc
	done       chan struct{}
	err        error // read after done is closed
}

const crashPublishChunk = 2000

func startCrashPublisher(t *testing.T, url string, payloads [][]byte, rate int) *crashPublisher {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &crashPublisher{url: url, payloads: payloads, rate: rate, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits until every payload is in the stream.
func (p *crashPublisher) wait(t *testing.T) {
	t.Helper()
	<-p.done
	if p.err != nil {
		t.Fatalf("publisher: %v", p.err)
	}
}

func (p *crashPublisher) run(ctx context.Context) error {
	for {
		done, err := p.session(ctx)
		if done {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d messages stored: %w (last error: %v)", p.stored.Load(), len(p.payloads), ctx.Err(), err)
		}
		p.reconnects.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

// session publishes over one connection. It returns done with a nil error
// once every payload is stored, done with an error when the stream is not
// a prefix of the payloads, and not done when the connection failed.
func (p *crashPublisher) session(ctx context.Context) (bool, error) {
	// Without reconnects a lost connection closes: closed tells the
	// waits for acks at once.
	closed := make(chan struct{})
	nc, err := nats.Connect(p.url, nats.NoReconnect(), nats.Timeout(time.Second),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		return false, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false, err
	}
	next, err := p.resume(ctx, js)
	if err != nil {
		return errors.Is(err, errNotPrefix), err
	}
	pace := time.Now()
	for next < len(p.payloads) {
		end := min(next+crashPublishChunk, len(p.payloads))
		futures := make([]jetstream.PubAckFuture, 0, end-next)
		for i := next; i < end; i++ {
			f, err := js.PublishAsync(crashSubject, p.payloads[i], jetstream.WithMsgID(strconv.Itoa(i)))
			if err != nil {
				return false, err
			}
			futures = append(futures, f)
		}
		timeout := time.NewTimer(3 * time.Second)
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				timeout.Stop()
				return false, err
			case <-closed:
				timeout.Stop()
				return false, errors.New("connection closed")
			case <-timeout.C:
				return false, errors.New("no ack within 3s")
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		timeout.Stop()
		if p.rate > 0 {
			pace = pace.Add(time.Duration(end-next) * time.Second / time.Duration(p.rate))
			time.Sleep(time.Until(pace))
		}
		next = end
		p.stored.Store(int64(next))
	}
	// The stream must now hold every payload once, in order, and no more.
	if next, err := p.resume(ctx, js); err != nil || next != len(p.payloads) {
		return errors.Is(err, errNotPrefix), fmt.Errorf("after publishing all %d messages the stream's last is %d: %v", len(p.payloads), next, err)
	}
	return true, nil
}

var errNotPrefix = errors.New("the stream is not a prefix of the workload")

// resume returns the index of the first payload the stream lacks.
func (p *crashPublisher) resume(ctx context.Context, js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, crashStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	if last == 0 {
		return 0, nil
	}
	m, err := s.GetMsg(ctx, last)
	if err != nil {
		return 0, err
	}
	id := m.Header.Get(jetstream.MsgIDHeader)
	if i, err := strconv.ParseUint(id, 10, 64); err != nil || i+1 != last || info.State.Msgs != last || last > uint64(len(p.payloads)) {
		return 0, fmt.Errorf("%w: it holds %d messages, the last at sequence %d with ID %q", errNotPrefix, info.State.Msgs, last, id)
	}
	if stored := p.stored.Load(); int64(last) < stored {
		// Acknowledged messages lost with the process are the stream's
		// durability, not the engine's: republishing them keeps the
		// stream a prefix of the workload. Counted for the report.
		p.lostAcked.Add(stored - int64(last))
	}
	p.stored.Store(int64(last))
	return int(last), nil
}
