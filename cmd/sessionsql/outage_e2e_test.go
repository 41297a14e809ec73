package main

// The sink-outage test: PostgreSQL goes away under a running view and
// comes back. While it is away the view says so, keeps going until its
// bounded queue of checkpointed epochs is full, then stops reading; once
// it is back everything pending is committed and nothing is lost.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
	"github.com/sessionsql/sessionsql/exec/source"
)

// outageSecondsEnv names the environment variable that lengthens the
// outage of TestPostgresOutage (seconds, default outageDefault).
const outageSecondsEnv = "SESSIONSQL_OUTAGE_SECONDS"

const (
	outageDefault = 5 * time.Second
	outageEvents  = 60_000
	outageUsers   = 1_000
	outageView    = "play_sessions"
	outageSubject = "plays.web"
	// outagePublishRate paces the events published during the outage
	// (per second) until the view waits, so that the pipeline keeps
	// taking epochs (one per checkpoint interval that saw events) until
	// its queue is full. At full speed it would read the whole rest in
	// fewer epochs than the queue holds, and never need to wait. At this
	// rate the rest lasts 3 s.
	outagePublishRate  = 10_000
	outagePublishChunk = 500
)

// TestPostgresOutage cuts the link between the server and its PostgreSQL
// sink (a TCP proxy in between) while a SESSION view runs over a seeded
// workload of 60,000 events (out of order within the watermark bound):
// the first half is committed before the cut, the rest and a far-future
// event that closes every session are published during it (paced until
// the view waits, so that it has epochs to queue). While cut,
// SHOW MATERIALIZED VIEWS must say "sink unavailable: ...", then
// "backpressured...", the view's position must freeze and the source's
// last sequence stop (once the pipeline's input queue is full), both
// short of the stream's end, and the committed position must not move. After restore the view must run again, read and commit
// everything, and the PostgreSQL table must equal the window-function
// oracle, with no duplicate and no non-final row. The heap in use is
// sampled during the outage and logged with the baseline before it.
// $SESSIONSQL_OUTAGE_SECONDS lengthens the outage (default 5).
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps PostgreSQL away for several seconds")
	}
	outage := outageDefault
	if s := os.Getenv(outageSecondsEnv); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("$%s = %q: want a positive number of seconds", outageSecondsEnv, s)
		}
		outage = time.Duration(v * float64(time.Second))
	}
	testStart := time.Now()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	pgCfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(pgCfg.Host, "/") {
		t.Fatalf("the test PostgreSQL is at the socket %s; the outage test needs TCP (set $%s)", pgCfg.Host, pgtest.EnvDSN)
	}
	proxy := startTCPProxy(t, net.JoinHostPort(pgCfg.Host, strconv.Itoa(int(pgCfg.Port))))
	proxied, err := withHostPort(dsn, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// A small sink buffer, so that the outage reaches backpressure with
	// this workload (the default holds 64 MiB of changes first).
	srv := startServe(t, t.TempDir(), proxied, func(c *serveConfig) { c.sinkBuffer = 16 << 10 })
	conn := srv.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)

	evs := generate(6, outageEvents, outageUsers)
	arrival, payloads := withSentinel(7, evs)
	half, lastSeq := int64(len(arrival)/2), int64(len(payloads))
	js := srv.jetstream(t)

	// Before: the first half read and committed.
	for i := int64(0); i < half; i += 10_000 {
		if err := source.Publish(ctx, js, outageSubject, payloads[i:min(i+10_000, half)]); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 30*time.Second, func() error {
		v := readView(t, conn, outageView)
		if strings.HasPrefix(v.state, "failed") {
			t.Fatalf("view %s", v.state)
		}
		if v.committed < half {
			return fmt.Errorf("first half: %s; want committed position %d", v, half)
		}
		return nil
	})
	before := readView(t, conn, outageView)
	t.Logf("before the cut (%s after start): %s; proxy forwarded %d connections",
		time.Since(testStart).Round(time.Millisecond), before, proxy.accepted.Load())

	heap := startHeapSampler(200 * time.Millisecond)
	proxy.cut()
	cutAt := time.Now()
	pubCtx, stopPub := context.WithCancel(ctx)
	t.Cleanup(stopPub) // before serve stops, if the test ends early
	pub, hurry := make(chan error, 1), make(chan struct{})
	go func() { pub <- publishPaced(pubCtx, js, payloads[half:], hurry) }()

	// During: watch SHOW MATERIALIZED VIEWS and SHOW SOURCES.
	var (
		states                       []string // state kinds (stateKind) as they changed
		firstWhy                     string   // the first "sink unavailable: " state in full
		unavailableAt, waitingAt     time.Duration
		published                    time.Duration // when the publisher finished
		frozen                       *viewStatus   // first status 200ms after the view began to wait
		srcAtFreeze, last            int64         // the source's last sequence when the view froze, and now
		srcMovedAt                   time.Duration // when the source's last sequence last changed
		lastView                     viewStatus
		pubDone, sawUnavailableFirst bool
	)
	for {
		el := time.Since(cutAt)
		v := readView(t, conn, outageView)
		srcSeq := sourceLastSeq(t, conn)
		if srcSeq != last {
			srcMovedAt = el
		}
		lastView, last = v, srcSeq
		if k := stateKind(v.state); len(states) == 0 || states[len(states)-1] != k {
			states = append(states, k)
		}
		if firstWhy == "" && strings.Contains(v.state, "sink unavailable: ") {
			firstWhy = v.state
		}
		switch {
		case strings.HasPrefix(v.state, "failed"):
			t.Fatalf("%s into the outage: view %s", el, v.state)
		case v.committed != before.committed:
			t.Fatalf("%s into the outage: committed position moved from %d to %d with the sink unreachable (%s)", el, before.committed, v.committed, v)
		case strings.HasPrefix(v.state, "sink unavailable: "):
			if unavailableAt == 0 {
				unavailableAt = el
				sawUnavailableFirst = waitingAt == 0
			}
		case strings.HasPrefix(v.state, "backpressured"):
			if waitingAt == 0 {
				waitingAt = el
				close(hurry)
			}
			if frozen == nil && el-waitingAt >= 200*time.Millisecond {
				frozen, srcAtFreeze = &v, srcSeq
			}
		case v.state == "running" && unavailableAt == 0 && el < 5*time.Second:
			// Before the first failed commit.
		default:
			t.Fatalf("%s into the outage: unexpected state %q (%s); states so far %q", el, v.state, v, states)
		}
		if frozen != nil {
			// A waiting pipeline takes no batch: its position may not
			// move until the sink is back. The source goes on until the
			// pipeline's input queue is full, then stops fetching (the
			// loop ends only once it has kept still for a second).
			if !strings.HasPrefix(v.state, "backpressured") {
				t.Fatalf("%s into the outage: the view stopped waiting (%s) with the sink unreachable", el, v)
			}
			if v.pos != frozen.pos {
				t.Fatalf("%s into the outage: view position %d; it was frozen at %d since %s",
					el, v.pos, frozen.pos, waitingAt+200*time.Millisecond)
			}
		}
		if !pubDone {
			select {
			case err := <-pub:
				if err != nil {
					t.Fatalf("publish during the outage: %v", err)
				}
				pubDone, published = true, el
			default:
			}
		}
		// The outage lasts its length, and at least a second after the
		// stream is complete, the view froze and the source stopped.
		if pubDone && frozen != nil && el >= outage && el >= max(published, waitingAt, srcMovedAt)+time.Second {
			break
		}
		if el > outage+20*time.Second {
			t.Fatalf("after %s of outage: publisher done %v (at %s), states %q, last %s, source at %d (last moved at %s)",
				el, pubDone, published, states, v, srcSeq, srcMovedAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	outageLen := time.Since(cutAt)
	queued, _ := viewMetric(t, srv, "sessionsql_view_sink_queued_bytes")
	committedMetric, _ := viewMetric(t, srv, "sessionsql_view_committed_position_sequence")
	baseline, peak, samples := heap.stop()
	t.Logf("outage of %s: states %s; sink unavailable after %s, backpressured after %s; publisher done after %s; first state with a reason: %q",
		outageLen.Round(time.Millisecond), strings.Join(states, " -> "), unavailableAt.Round(time.Millisecond), waitingAt.Round(time.Millisecond),
		published.Round(time.Millisecond), firstWhy)
	t.Logf("while cut: view position frozen at %d, source last sequence %d when it froze, stopped at %d after %s; stream end %d (%d and %d short); committed position %d (metric %g); queued changes %g bytes; proxy severed %d connections and refused %d",
		lastView.pos, srcAtFreeze, last, srcMovedAt.Round(time.Millisecond), lastSeq, lastSeq-lastView.pos, lastSeq-last,
		lastView.committed, committedMetric, queued, proxy.severed.Load(), proxy.refused.Load())
	t.Logf("heap in use: baseline %.1f MiB before the cut, peak %.1f MiB during the outage (%+.1f MiB, %d samples every 200ms); last checkpoint %d bytes",
		mib(baseline), mib(peak), mib(peak)-mib(baseline), samples, lastView.ckBytes)
	if unavailableAt == 0 || !sawUnavailableFirst {
		t.Errorf("states during the outage %q: want \"sink unavailable: ...\" before \"backpressured...\"", states)
	}
	if lastView.pos >= lastSeq || last >= lastSeq {
		t.Errorf("while cut the view reached position %d and the source sequence %d: the stream's end is %d; backpressure did not stop the source", lastView.pos, last, lastSeq)
	}
	if queued <= 0 {
		t.Errorf("sessionsql_view_sink_queued_bytes is %g while epochs wait for the sink", queued)
	}

	// After: the sink comes back, everything pending is committed.
	proxy.restore()
	restoreAt := time.Now()
	var runningAfter, committedAfter time.Duration
	checkFor(t, 30*time.Second, func() error {
		v := readView(t, conn, outageView)
		if strings.HasPrefix(v.state, "failed") {
			t.Fatalf("after restore: view %s", v.state)
		}
		if v.state == "running" && runningAfter == 0 {
			runningAfter = time.Since(restoreAt)
		}
		if v.state != "running" || v.pos != lastSeq || v.committed != lastSeq {
			return fmt.Errorf("after restore: %s; want running at position and committed position %d", v, lastSeq)
		}
		committedAfter = time.Since(restoreAt)
		return nil
	})
	t.Logf("after restore: running again after %s, everything committed after %s", runningAfter.Round(time.Millisecond), committedAfter.Round(time.Millisecond))

	// The sink's table against the oracle, over a direct connection.
	pg := pgConnect(t, dsn)
	loadEvents(t, pg, "events", evs)
	count := func(sql string) int64 { return pgCount(t, pg, sql) }
	sample := func(sql string) string { return pgSample(pg, sql) }
	oracleRows := count(`SELECT count(*) FROM (` + oracleSQL + `) o`)
	// Committed position at the end says every result is in PostgreSQL;
	// give a final row emitted after the last event's epoch a moment.
	var resultRows int64
	checkFor(t, 5*time.Second, func() error {
		if resultRows = count(`SELECT count(*) FROM ` + outageView); resultRows != oracleRows {
			return fmt.Errorf("result table has %d rows, the oracle %d sessions", resultRows, oracleRows)
		}
		return nil
	})
	// AVG at 6 decimals, as in TestSessionsMatchPostgresOracle.
	got := `SELECT user_id, session_start, session_end, events, bytes, first_title, round(avg_bytes::numeric, 6) FROM ` +
		outageView + ` WHERE is_final AND user_id IS DISTINCT FROM -1`
	missingSQL, extraSQL := `(`+oracleSQL+`) EXCEPT ALL (`+got+`)`, `(`+got+`) EXCEPT ALL (`+oracleSQL+`)`
	if missing, extra := count(`SELECT count(*) FROM (`+missingSQL+`) d`), count(`SELECT count(*) FROM (`+extraSQL+`) d`); missing != 0 || extra != 0 {
		t.Errorf("result table differs from the oracle: %d sessions missing, %d extra\nfirst missing: %s\nfirst extra: %s",
			missing, extra, sample(missingSQL), sample(extraSQL))
	}
	if keys := count(`SELECT count(*) FROM (SELECT DISTINCT user_id, session_start FROM ` + outageView + `) k`); keys != resultRows {
		t.Errorf("result table: %d rows but %d distinct (user_id, session_start): duplicates", resultRows, keys)
	}
	// EMIT FINAL: every row final; the sentinel's session is open and has
	// no row.
	if n := count(`SELECT count(*) FROM ` + outageView + ` WHERE is_final IS NOT TRUE OR user_id = -1`); n != 0 {
		t.Errorf("result table: %d rows not final or of the open sentinel session", n)
	}
	if oracleRows < outageUsers {
		t.Errorf("the oracle has only %d sessions for %d users", oracleRows, outageUsers)
	}
	var live int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+outageView).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != resultRows {
		t.Errorf("live table has %d rows, PostgreSQL %d", live, resultRows)
	}
	if v := readView(t, conn, outageView); v.late != 0 {
		t.Errorf("%d late events: the workload keeps within the watermark bound", v.late)
	}
	if q, ok := viewMetric(t, srv, "sessionsql_view_sink_queued_bytes"); !ok || q != 0 {
		t.Errorf("sessionsql_view_sink_queued_bytes after recovery: %g (reported %v), want 0", q, ok)
	}
	if c, ok := viewMetric(t, srv, "sessionsql_view_committed_position_sequence"); !ok || int64(c) != lastSeq {
		t.Errorf("sessionsql_view_committed_position_sequence after recovery: %g (reported %v), want %d", c, ok, lastSeq)
	}
	t.Logf("%d events (+1 sentinel): oracle %d sessions, PostgreSQL %d rows, live table %d; test took %s",
		len(evs), oracleRows, resultRows, live, time.Since(testStart).Round(time.Millisecond))
}

// withHostPort returns dsn with its host and port replaced by addr
// (host:port), keeping everything else (a test schema's search_path). A
// key=value DSN must not quote values with spaces.
func withHostPort(dsn, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	var out string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Host = addr
		out = u.String()
	} else {
		var kept []string
		for _, f := range strings.Fields(dsn) {
			switch k, _, _ := strings.Cut(f, "="); k {
			case "host", "hostaddr", "port":
			default:
				kept = append(kept, f)
			}
		}
		out = strings.Join(append(kept, "host="+host, "port="+port), " ")
	}
	cfg, err := pgconn.ParseConfig(out)
	if err != nil {
		return "", fmt.Errorf("DSN with %s: %w", addr, err)
	}
	if cfg.Host != host || strconv.Itoa(int(cfg.Port)) != port || len(cfg.Fallbacks) != 0 {
		return "", fmt.Errorf("DSN with %s connects to %s:%d (and %d fallbacks)", addr, cfg.Host, cfg.Port, len(cfg.Fallbacks))
	}
	return out, nil
}

// publishPaced publishes payloads to the plays stream at
// outagePublishRate until hurry is closed, then as fast as it can.
func publishPaced(ctx context.Context, js jetstream.JetStream, payloads [][]byte, hurry <-chan struct{}) error {
	next := time.Now()
	for i := 0; i < len(payloads); i += outagePublishChunk {
		chunk := payloads[i:min(i+outagePublishChunk, len(payloads))]
		if err := source.Publish(ctx, js, outageSubject, chunk); err != nil {
			return fmt.Errorf("messages %d-%d: %w", i, i+len(chunk)-1, err)
		}
		next = next.Add(time.Duration(len(chunk)) * time.Second / outagePublishRate)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hurry:
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// stateKind is a view state without the error text: "running", "sink
// unavailable", "backpressured: sink unavailable", "backpressured", ...
func stateKind(state string) string {
	if i := strings.Index(state, "sink unavailable"); i >= 0 {
		return state[:i+len("sink unavailable")]
	}
	return state
}

// sourceLastSeq reads last_seq (column 8) of the plays source in SHOW
// SOURCES: the newest message its reader handed over.
func sourceLastSeq(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	var seq int64 = -1
	rows, err := conn.Query(context.Background(), "SHOW SOURCES", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] == "plays" {
			seq, _ = vals[8].(int64)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return seq
}

// viewMetric scrapes the server's /metrics for the outage view's sample
// of a view metric; ok is false when it is absent.
func viewMetric(t *testing.T, srv *testServer, name string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get("http://" + srv.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	prefix := name + `{source="plays",view="` + outageView + `"} `
	for line := range strings.Lines(string(b)) {
		if rest, found := strings.CutPrefix(line, prefix); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// heapSampler samples runtime.MemStats.HeapInuse (serve runs in the test
// process) on a ticker until stop.
type heapSampler struct {
	baseline uint64
	quit     chan struct{}
	done     chan struct{}
	peak     uint64
	samples  int
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{baseline: heapInuse(), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-tick.C:
				h.peak = max(h.peak, heapInuse())
				h.samples++
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the baseline, the peak and the
// number of samples.
func (h *heapSampler) stop() (baseline, peak uint64, samples int) {
	close(h.quit)
	<-h.done
	return h.baseline, h.peak, h.samples
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
