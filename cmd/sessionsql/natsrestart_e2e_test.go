package main

// The external-NATS restart test (issue 6): serve runs with --nats
// pointing at a NATS server it does not own; that server goes away under
// a running view and comes back on the same port over the same JetStream
// store. The engine must keep answering on the wire while NATS is away,
// say so in its logs and in SHOW SOURCES / SHOW MATERIALIZED VIEWS, and
// resume by itself once NATS is back, losing and repeating nothing.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/source"
)

const (
	natsRestartEvents  = 20_000
	natsRestartUsers   = 300
	natsRestartView    = "play_sessions"
	natsRestartSubject = "plays.web"
	// natsRestartOutage is how long NATS stays away at least.
	natsRestartOutage = 2 * time.Second
	// natsRestartResume bounds the wait for the view to read the rest of
	// the stream once NATS is back.
	natsRestartResume = 30 * time.Second
)

// TestExternalNATSRestart runs serve against an "external" NATS server
// (started by the test, in process, on a fixed port with its own
// JetStream store), publishes the first half of a seeded workload of
// 20,000 events (out of order within the watermark bound) and waits for
// the view to read it. Then it shuts NATS down for at least 2 s and two
// rounds of statements: the wire must keep answering SHOW MATERIALIZED
// VIEWS and, on other connections at the same time, SHOW SOURCES and a
// SELECT from the view; serve must log the disconnect. A new NATS server
// then starts on the same port over the same store; serve must log the
// reconnect, and the view must read the second half and a far-future
// event that closes every session. The final rows must equal the
// sessions computed here from the events, and the events column must add
// up to the number of non-heartbeat events (nothing lost or counted
// twice). The states seen during the outage and the time to resume are
// logged.
func TestExternalNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a NATS server under a running view")
	}
	ctx := context.Background()
	testStart := time.Now()
	natsAddr := freeAddr(t)
	host, portStr, err := net.SplitHostPort(natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	storeDir := t.TempDir()
	// Registered before serve starts, so that it runs after serve has
	// stopped: serve's stop order must not depend on NATS going first.
	var ns *natsserver.Server
	t.Cleanup(func() {
		if ns != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	})
	ns = startExternalNATS(t, host, port, storeDir)
	natsURL := ns.ClientURL()

	logs := &logCapture{}
	srv := startServeNATS(t, natsURL, io.MultiWriter(t.Output(), logs))
	conn := srv.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)

	evs := generate(11, natsRestartEvents, natsRestartUsers)
	arrival, payloads := withSentinel(12, evs)
	half, lastSeq := len(arrival)/2, int64(len(payloads))

	// Our own publisher, which reconnects to the restarted server.
	nc, err := nats.Connect(natsURL, nats.Name("natsrestart-test"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// Before: the first half read.
	if err := source.Publish(ctx, js, natsRestartSubject, payloads[:half]); err != nil {
		t.Fatal(err)
	}
	waitPosition(t, conn, natsRestartView, int64(half))
	before := readView(t, conn, natsRestartView)
	t.Logf("before the outage (%s in): view %s, events %d; source %s",
		time.Since(testStart).Round(time.Millisecond), before, before.events, readSourceRow(t, conn))

	// The outage.
	outageStart := time.Now()
	ns.Shutdown()
	ns.WaitForShutdown()
	t.Logf("NATS shut down in %s", time.Since(outageStart).Round(time.Millisecond))
	checkFor(t, 15*time.Second, func() error {
		if !logs.contains("NATS disconnected") {
			return fmt.Errorf("no \"NATS disconnected\" in serve's log; log tail:\n%s", logs.tail(30))
		}
		return nil
	})
	t.Logf("serve logged the disconnect %s after the shutdown began", time.Since(outageStart).Round(time.Millisecond))
	others := [2]*pgx.Conn{srv.connect(t), srv.connect(t)}
	seen := &outageStates{}
	var outageObs outageObservation
	// At least two rounds: a checkpoint pending when NATS went away
	// fails to be stored only after the JetStream request times out.
	for n := 0; n < 2 || time.Since(outageStart) < natsRestartOutage; n++ {
		outageObs = observeOutage(t, conn, others, seen, outageStart)
		if outageObs.pos < int64(half) {
			t.Fatalf("view went back during the outage: position %d, had read %d", outageObs.pos, half)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("during the outage (%s): view at position %d, %d rows in the view; states seen:\n%s",
		time.Since(outageStart).Round(time.Millisecond), outageObs.pos, outageObs.rows, seen)
	// The outage shows in SHOW SOURCES and SHOW MATERIALIZED VIEWS, and
	// nothing on the wire waits for NATS.
	for _, want := range []string{`source "waiting for NATS`, `view "waiting for NATS`} {
		if !seen.any(want) {
			t.Errorf("no state %s... seen during the outage:\n%s", want, seen)
		}
	}
	for stmt, d := range seen.slowest {
		if d > time.Second {
			t.Errorf("%s took %s during the outage", stmt, d)
		}
	}

	// NATS comes back on the same port over the same store.
	restart := time.Now()
	ns = startExternalNATS(t, host, port, storeDir)
	t.Logf("NATS back after an outage of %s (start took %s)",
		restart.Sub(outageStart).Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
	checkFor(t, 15*time.Second, func() error {
		if !logs.contains("NATS reconnected") {
			return fmt.Errorf("no \"NATS reconnected\" in serve's log; log tail:\n%s", logs.tail(30))
		}
		return nil
	})
	reconnected := time.Since(restart)
	checkFor(t, 15*time.Second, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("the test's publisher has not reconnected (%s)", nc.Status())
		}
		return nil
	})
	pubStart := time.Now()
	if err := source.Publish(ctx, js, natsRestartSubject, payloads[half:]); err != nil {
		t.Fatal(err)
	}
	published := time.Since(pubStart)
	after := &outageStates{}
	deadline := time.Now().Add(natsRestartResume)
	for {
		v := readView(t, conn, natsRestartView)
		src := readSourceRow(t, conn)
		after.add(time.Since(restart), fmt.Sprintf("view %q", v.state))
		after.add(time.Since(restart), fmt.Sprintf("source %q", src.state))
		if strings.HasPrefix(v.state, "failed") || strings.HasPrefix(src.state, "failed") {
			t.Fatalf("after NATS came back (%s): view %s; source %s; states seen:\n%s\nlog tail:\n%s",
				time.Since(restart).Round(time.Millisecond), v, src, after, logs.tail(40))
		}
		if v.pos >= lastSeq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the view did not resume within %s of NATS coming back: view %s; source %s; states seen:\n%s\nlog tail:\n%s",
				natsRestartResume, v, src, after, logs.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	resumed := time.Since(restart)
	t.Logf("after the restart: serve reconnected in %s, second half (%d messages) published in %s, view at the stream's end (%d) %s after NATS came back; states seen:\n%s",
		reconnected.Round(time.Millisecond), len(payloads)-half, published.Round(time.Millisecond), lastSeq, resumed.Round(time.Millisecond), after)

	// The stream holds every message once: the view's end is its end.
	s, err := js.Stream(ctx, "PLAYS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(lastSeq) || info.State.LastSeq != uint64(lastSeq) {
		t.Fatalf("stream PLAYS holds %d messages up to sequence %d, published %d", info.State.Msgs, info.State.LastSeq, lastSeq)
	}

	// The final rows equal the sessions computed from the events.
	want := natsRestartSessions(evs)
	wantEvents := int64(0)
	for _, e := range evs {
		if e.typ != "heartbeat" {
			wantEvents++
		}
	}
	var got []string
	checkFor(t, 10*time.Second, func() error {
		var open int
		got, open = readNATSRestartRows(t, conn)
		if missing, extra, sample := diffRowStrings(want, got); missing+extra > 0 {
			return fmt.Errorf("final rows differ from the sessions of the events: %d missing, %d extra (%d rows, %d not final)\n%s",
				missing, extra, len(got), open, sample)
		}
		if open != 0 {
			return fmt.Errorf("%d rows are not final; the view emits final rows only", open)
		}
		return nil
	})
	var finalRows, sumEvents int64
	if err := conn.QueryRow(ctx, `SELECT count(*), sum(events) FROM `+natsRestartView+` WHERE is_final`).Scan(&finalRows, &sumEvents); err != nil {
		t.Fatal(err)
	}
	if finalRows != int64(len(want)) || sumEvents != wantEvents {
		t.Fatalf("%d final rows with %d events in all; want %d sessions of %d non-heartbeat events (an event lost or counted twice)",
			finalRows, sumEvents, len(want), wantEvents)
	}
	end := readView(t, conn, natsRestartView)
	src := readSourceRow(t, conn)
	if end.state != "running" || src.state != "running" {
		t.Fatalf("at the end: view %s; source %s", end, src)
	}
	t.Logf("%d events (%d non-heartbeat) in %d sessions, all final and equal to the reference; view events %d; source %s; total %s",
		len(evs), wantEvents, len(want), end.events, src, time.Since(testStart).Round(time.Millisecond))
}

// startExternalNATS runs a NATS server with JetStream on host:port over
// storeDir, as an operator's external server would be; the caller shuts
// it down.
func startExternalNATS(t *testing.T, host string, port int, storeDir string) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "external",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("NATS server not ready on %s:%d after 10s", host, port)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		t.Fatalf("NATS server on %s:%d has no JetStream", host, port)
	}
	return s
}

// startServeNATS is startServe for an external NATS server: serve gets
// natsURL (--nats), keeps results in memory, checkpoints every 100 ms and logs
// to logOut.
func startServeNATS(t *testing.T, natsURL string, logOut io.Writer) *testServer {
	t.Helper()
	return startServeLogging(t, logOut, t.TempDir(), "", func(c *serveConfig) {
		c.natsURL, c.checkpointInterval = natsURL, 100*time.Millisecond
	})
}

// sourceRow is the plays source's row of SHOW SOURCES.
type sourceRow struct {
	state   string
	events  int64
	lastSeq int64
}

func (s sourceRow) String() string {
	return fmt.Sprintf("state %q, events %d, last_seq %d", s.state, s.events, s.lastSeq)
}

// readSourceRow reads the plays source's state (column 5), events (6)
// and last_seq (8) from SHOW SOURCES.
func readSourceRow(t *testing.T, conn *pgx.Conn) sourceRow {
	t.Helper()
	st, err := querySourceRow(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func querySourceRow(ctx context.Context, conn *pgx.Conn) (sourceRow, error) {
	rows, err := conn.Query(ctx, "SHOW SOURCES", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return sourceRow{}, err
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		return sourceRow{}, err
	}
	for _, vals := range all {
		if vals[0] != "plays" || len(vals) < 9 {
			continue
		}
		st := sourceRow{}
		st.state, _ = vals[5].(string)
		st.events, _ = vals[6].(int64)
		st.lastSeq, _ = vals[8].(int64)
		return st, nil
	}
	return sourceRow{state: "missing"}, nil
}

// outageObservation is what observeOutage read.
type outageObservation struct {
	pos  int64 // the view's position
	rows int64 // rows in the view's table
}

// observeOutage asks the server, while NATS is away, for SHOW
// MATERIALIZED VIEWS on conn and, while that runs, for SHOW SOURCES and a
// SELECT from the view on the other two connections; it records the
// states seen and how long each answer took. A statement that fails or
// takes longer than its deadline fails the test: the wire must not depend
// on NATS.
func observeOutage(t *testing.T, conn *pgx.Conn, others [2]*pgx.Conn, seen *outageStates, since time.Time) outageObservation {
	t.Helper()
	const deadline = 10 * time.Second
	at := time.Since(since)
	var obs outageObservation

	type answer struct {
		stmt string
		took time.Duration
		err  error
	}
	answers := make(chan answer, 3)
	var wg sync.WaitGroup
	// Every statement is waited for, even when the test fails, so that no
	// connection is closed under one.
	defer wg.Wait()
	run := func(c *pgx.Conn, stmt string, delay time.Duration, do func(ctx context.Context, c *pgx.Conn) error) {
		wg.Go(func() {
			time.Sleep(delay)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			t0 := time.Now()
			err := do(ctx, c)
			answers <- answer{stmt, time.Since(t0), err}
		})
	}
	var viewRows [][]any
	var src sourceRow
	run(conn, "SHOW MATERIALIZED VIEWS", 0, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SHOW MATERIALIZED VIEWS", pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			viewRows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		}
		return err
	})
	// The others start once SHOW MATERIALIZED VIEWS is being answered.
	const later = 100 * time.Millisecond
	run(others[0], "SHOW SOURCES (other connection, during SHOW MATERIALIZED VIEWS)", later, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		src, err = querySourceRow(ctx, c)
		return err
	})
	run(others[1], "SELECT from the view (other connection, during SHOW MATERIALIZED VIEWS)", later, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM `+natsRestartView+` WHERE events > $1`, 0).Scan(&obs.rows)
	})
	for range 3 {
		a := <-answers
		if a.err != nil {
			t.Fatalf("%s during the outage (%s in, after %s): %v", a.stmt, at.Round(time.Millisecond), a.took.Round(time.Millisecond), a.err)
		}
		seen.took(a.stmt, a.took)
	}
	seen.add(at, fmt.Sprintf("source %q", src.state))
	for _, vals := range viewRows {
		if vals[0] != natsRestartView || len(vals) < 10 {
			continue
		}
		state, _ := vals[2].(string)
		lag := "NULL"
		if n, ok := vals[4].(int64); ok {
			lag = strconv.FormatInt(n, 10)
		}
		obs.pos, _ = vals[9].(int64)
		seen.add(at, fmt.Sprintf("view %q, lag %s", state, lag))
	}
	return obs
}

// outageStates records the distinct states seen, when each was first seen,
// and the slowest answer of each statement.
type outageStates struct {
	order   []string
	first   map[string]time.Duration
	slowest map[string]time.Duration
}

func (l *outageStates) add(at time.Duration, state string) {
	if l.first == nil {
		l.first = map[string]time.Duration{}
	}
	if _, ok := l.first[state]; !ok {
		l.first[state] = at
		l.order = append(l.order, state)
	}
}

// any reports whether a state starting with prefix was seen.
func (l *outageStates) any(prefix string) bool {
	for _, s := range l.order {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func (l *outageStates) took(stmt string, d time.Duration) {
	if l.slowest == nil {
		l.slowest = map[string]time.Duration{}
	}
	l.slowest[stmt] = max(l.slowest[stmt], d)
}

func (l *outageStates) String() string {
	var b strings.Builder
	for _, s := range l.order {
		fmt.Fprintf(&b, "  +%s %s\n", l.first[s].Round(time.Millisecond), s)
	}
	stmts := make([]string, 0, len(l.slowest))
	for s := range l.slowest {
		stmts = append(stmts, s)
	}
	sort.Strings(stmts)
	for _, s := range stmts {
		fmt.Fprintf(&b, "  slowest %s: %s\n", s, l.slowest[s].Round(time.Millisecond))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// logCapture keeps serve's log so the test can look for lines in it.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logCapture) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logCapture) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

// tail returns the last n lines.
func (b *logCapture) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// natsRestartSessions computes the rows createSessions gives for evs once
// every session is closed, one string per row as readNATSRestartRows
// prints them: a key's consecutive non-heartbeat events share a session
// when their times differ by at most 30 minutes.
func natsRestartSessions(evs []event) []string {
	const nullKey = math.MinInt64
	byUser := map[int64][]event{}
	for _, e := range evs {
		if e.typ == "heartbeat" {
			continue
		}
		k := int64(nullKey)
		if e.user != nil {
			k = *e.user
		}
		byUser[k] = append(byUser[k], e)
	}
	var rows []string
	for k, es := range byUser {
		var user *int64
		if k != nullKey {
			user = ptr(k)
		}
		sort.SliceStable(es, func(i, j int) bool { return es[i].ts < es[j].ts })
		var start, last, count, sum, nbytes int64
		minTitle := int64(math.MaxInt64)
		emit := func() {
			var bytesSum *int64
			var avg *float64
			if nbytes > 0 {
				bytesSum = ptr(sum)
				a := float64(sum) / float64(nbytes)
				avg = &a
			}
			rows = append(rows, natsRestartRow(user, start, last+gapMs, count, bytesSum, ptr(minTitle), avg))
		}
		for i, e := range es {
			if i > 0 && e.ts-last > gapMs {
				emit()
				count, sum, nbytes, minTitle = 0, 0, 0, math.MaxInt64
			}
			if count == 0 {
				start = e.ts
			}
			count++
			if e.bytes != nil {
				sum += *e.bytes
				nbytes++
			}
			minTitle = min(minTitle, e.title)
			last = e.ts
		}
		emit()
	}
	slices.Sort(rows)
	return rows
}

// natsRestartRow prints one row of the view; times are ms since the epoch,
// AVG is rounded to 6 decimals.
func natsRestartRow(user *int64, start, end, events int64, sum, firstTitle *int64, avg *float64) string {
	opt := func(v *int64) string {
		if v == nil {
			return "NULL"
		}
		return strconv.FormatInt(*v, 10)
	}
	a := "NULL"
	if avg != nil {
		a = strconv.FormatFloat(*avg, 'f', 6, 64)
	}
	return fmt.Sprintf("user %s [%d, %d) events %d bytes %s first_title %s avg %s",
		opt(user), start, end, events, opt(sum), opt(firstTitle), a)
}

// readNATSRestartRows reads the view's final rows, printed and sorted as
// natsRestartSessions prints them, and the number of rows not final.
func readNATSRestartRows(t *testing.T, conn *pgx.Conn) (final []string, open int) {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT user_id, session_start, session_end, events, bytes, first_title, avg_bytes, is_final FROM `+natsRestartView)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var user, sum, firstTitle *int64
		var start, end time.Time
		var events int64
		var avg *float64
		var isFinal bool
		if err := rows.Scan(&user, &start, &end, &events, &sum, &firstTitle, &avg, &isFinal); err != nil {
			t.Fatal(err)
		}
		if !isFinal {
			open++
			continue
		}
		final = append(final, natsRestartRow(user, start.UnixMilli(), end.UnixMilli(), events, sum, firstTitle, avg))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(final)
	return final, open
}

// diffRowStrings compares two sorted lists as multisets and describes the
// first few differences.
func diffRowStrings(want, got []string) (missing, extra int, sample string) {
	var b strings.Builder
	note := func(what, s string) {
		if missing+extra <= 5 {
			fmt.Fprintf(&b, "  %s: %s\n", what, s)
		}
	}
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			missing++
			note("missing", want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra++
			note("extra", got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra, b.String()
}
