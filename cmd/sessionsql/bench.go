package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/pprof/profile"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/source"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// benchConfig is the configuration of `sessionsql bench`.
type benchConfig struct {
	events, users int
	gap           time.Duration
	perMessage    int
	seed          uint64
	dataDir       string
	cpuProfile    string
	postgres      string
	keep          bool
	// checkpoint is the engine's checkpoint interval in both runs; with
	// --postgres it is also how often results reach PostgreSQL.
	checkpoint time.Duration
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &benchConfig{}
	fs.IntVar(&c.events, "events", 2_000_000, "events in the workload")
	fs.IntVar(&c.users, "users", 100_000, "distinct users (each active every ~15 minutes of event time)")
	fs.DurationVar(&c.gap, "gap", 30*time.Minute, "the session gap of the benchmark view (whole seconds)")
	fs.IntVar(&c.perMessage, "events-per-message", 1, "events per JetStream message (1: one JSON object per message)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated workload")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory for the embedded NATS server (default: a temporary directory, removed afterwards)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the live end-to-end run to this file (and of the PostgreSQL run to this file + \".postgres\")")
	fs.StringVar(&c.postgres, "postgres", "", "also measure end to end into PostgreSQL at this DSN, in a schema bench_<random> created for the run, and the sink's COPY -> merge ceiling beside it")
	fs.BoolVar(&c.keep, "keep", false, "with --postgres: keep the run's schema (default: dropped afterwards)")
	fs.DurationVar(&c.checkpoint, "checkpoint-interval", time.Second, "the engine's checkpoint interval in both runs (with --postgres: how often an epoch of results is committed)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case c.events < 1 || c.users < 1:
		return nil, fmt.Errorf("--events and --users must be positive")
	case c.perMessage < 1:
		return nil, fmt.Errorf("--events-per-message must be positive")
	case c.gap < time.Second || c.gap%time.Second != 0:
		return nil, fmt.Errorf("--gap must be a whole number of seconds, at least 1s, not %s", c.gap)
	case c.checkpoint < 10*time.Millisecond:
		return nil, fmt.Errorf("--checkpoint-interval must be at least 10ms, not %s", c.checkpoint)
	case c.keep && c.postgres == "":
		return nil, fmt.Errorf("--keep needs --postgres")
	}
	return c, nil
}

// benchColumns is the workload's schema.
var benchColumns = []source.Column{
	{Name: "user_id", Type: sqltypes.Int64}, {Name: "device", Type: sqltypes.String},
	{Name: "event_type", Type: sqltypes.String}, {Name: "title_id", Type: sqltypes.Int64},
	{Name: "bytes", Type: sqltypes.Int64}, {Name: "ts", Type: sqltypes.Timestamp},
}

// benchEvent is what the answer check needs of a generated event.
type benchEvent struct {
	user, title int32
	ts, bytes   int64 // ts in ms since the Unix epoch
}

// genBench makes the deterministic workload: events in time order with
// ±2 s jitter, each user active every ~15 minutes of event time on
// average. The last payload belongs to user -1 and lies a day after the
// others, so the watermark passes every session and every window closes;
// it is not in evs (its session never closes).
func genBench(c *benchConfig) (payloads [][]byte, evs []benchEvent) {
	rng := rand.New(rand.NewPCG(c.seed, 11))
	span := int64(c.events) * 15 * 60_000 / int64(c.users) // ms of event time
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	devices := []string{"tv", "web", "phone", "tablet"}
	types := []string{"play", "play", "play", "pause", "seek", "heartbeat"}
	payloads = make([][]byte, 0, c.events+1)
	evs = make([]benchEvent, 0, c.events)
	var b []byte
	for i := range c.events {
		ts := start + span*int64(i)/int64(c.events) + rng.Int64N(4001) - 2000
		ev := benchEvent{user: int32(rng.Int64N(int64(c.users))), ts: ts}
		b = b[:0]
		b = append(b, `{"user_id":`...)
		b = strconv.AppendInt(b, int64(ev.user), 10)
		b = append(b, `,"device":"`...)
		b = append(b, devices[rng.IntN(len(devices))]...)
		b = append(b, `","event_type":"`...)
		b = append(b, types[rng.IntN(len(types))]...)
		ev.title = int32(rng.Int64N(5000))
		b = append(b, `","title_id":`...)
		b = strconv.AppendInt(b, int64(ev.title), 10)
		ev.bytes = rng.Int64N(4_000_000)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, ev.bytes, 10)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, '}')
		payloads = append(payloads, append([]byte(nil), b...))
		evs = append(evs, ev)
	}
	flush := fmt.Sprintf(`{"user_id":-1,"device":"tv","event_type":"play","title_id":0,"bytes":0,"ts":%d}`, start+span+24*3600_000)
	return append(payloads, []byte(flush)), evs
}

// benchKey is a result row's key: user and session start (ms).
type benchKey struct{ user, start int64 }

// benchAgg is the rest of a result row (end in ms).
type benchAgg struct{ end, events, bytes, titles int64 }

// benchAnswer is what the benchmark view must produce, computed here
// without the engine.
type benchAnswer struct {
	sessions              map[benchKey]benchAgg
	events, bytes, titles int64 // sums of COUNT(*), SUM(bytes), COUNT(DISTINCT title_id)
}

// expectSessions computes the view's final rows from the events: each
// user's events in time order (ties by arrival), a new session wherever
// two consecutive events lie more than gap apart (SPEC: "two consecutive
// events of a key belong to one session exactly when their times differ
// by at most gap"); WINDOW_END is the last event's time + gap. No event of
// the workload is late: the jitter (±2 s) is within the watermark's 5 s.
func expectSessions(evs []benchEvent, users int, gapMillis int64) *benchAnswer {
	// Bucket the events by user, in arrival order.
	first := make([]int32, users+1)
	for _, e := range evs {
		first[e.user+1]++
	}
	for u := range users {
		first[u+1] += first[u]
	}
	next := slices.Clone(first[:users])
	idx := make([]int32, len(evs))
	for i, e := range evs {
		idx[next[e.user]] = int32(i)
		next[e.user]++
	}
	a := &benchAnswer{sessions: make(map[benchKey]benchAgg, len(evs)/3)}
	var titles []int32
	for u := range users {
		s := idx[first[u]:first[u+1]]
		slices.SortStableFunc(s, func(x, y int32) int { return cmp.Compare(evs[x].ts, evs[y].ts) })
		for i := 0; i < len(s); {
			j := i + 1
			for j < len(s) && evs[s[j]].ts-evs[s[j-1]].ts <= gapMillis {
				j++
			}
			row := benchAgg{end: evs[s[j-1]].ts + gapMillis, events: int64(j - i)}
			titles = titles[:0]
			for _, k := range s[i:j] {
				row.bytes += evs[k].bytes
				titles = append(titles, evs[k].title)
			}
			slices.Sort(titles)
			row.titles = int64(len(slices.Compact(titles)))
			a.sessions[benchKey{int64(u), evs[s[i]].ts}] = row
			a.events += row.events
			a.bytes += row.bytes
			a.titles += row.titles
			i = j
		}
	}
	return a
}

// benchRow is one row read back from a result table.
type benchRow struct {
	benchKey
	benchAgg
	final bool
}

// check compares the rows of a result table (where names it) with the
// answer: every session present once, final, with the right end and
// aggregates, and nothing else. The error lists the totals and the first
// differences.
func (a *benchAnswer) check(where string, rows []benchRow) error {
	var events, bytes, titles int64
	var diffs []string
	ndiff := 0
	diff := func(format string, args ...any) {
		ndiff++
		if len(diffs) < 5 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	seen := make(map[benchKey]bool, len(rows))
	for _, r := range rows {
		events += r.events
		bytes += r.bytes
		titles += r.titles
		name := fmt.Sprintf("user %d session from %s", r.user, time.UnixMilli(r.start).UTC().Format(time.RFC3339Nano))
		want, ok := a.sessions[r.benchKey]
		switch {
		case seen[r.benchKey]:
			diff("%s: twice", name)
		case !ok:
			diff("%s: not expected (%d events)", name, r.events)
		case r.benchAgg != want:
			diff("%s: end %s, events %d, bytes %d, titles %d; want end %s, events %d, bytes %d, titles %d", name,
				time.UnixMilli(r.end).UTC().Format(time.RFC3339Nano), r.events, r.bytes, r.titles,
				time.UnixMilli(want.end).UTC().Format(time.RFC3339Nano), want.events, want.bytes, want.titles)
		case !r.final:
			diff("%s: not final", name)
		}
		seen[r.benchKey] = true
	}
	if len(seen) < len(a.sessions) {
		missing := 0
		for k, w := range a.sessions {
			if !seen[k] {
				missing++
				if missing <= 2 {
					diff("user %d session from %s (%d events): missing", k.user, time.UnixMilli(k.start).UTC().Format(time.RFC3339Nano), w.events)
				} else {
					ndiff++
				}
			}
		}
	}
	if ndiff == 0 {
		return nil
	}
	return fmt.Errorf("answer wrong in %s: %d rows, want %d sessions; events %d, want %d; bytes %d, want %d; titles %d, want %d; %d differences, e.g.:\n  %s",
		where, len(rows), len(a.sessions), events, a.events, bytes, a.bytes, titles, a.titles, ndiff, strings.Join(diffs, "\n  "))
}

// readSessions reads a result table of the benchmark view.
func readSessions(ctx context.Context, conn *pgx.Conn, table string) ([]benchRow, error) {
	rows, err := conn.Query(ctx, "SELECT user_id, session_start, session_end, events, bytes, titles, is_final FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []benchRow
	for rows.Next() {
		var r benchRow
		var start, end time.Time
		if err := rows.Scan(&r.user, &start, &end, &r.events, &r.bytes, &r.titles, &r.final); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		r.start, r.end = start.UnixMilli(), end.UnixMilli()
		out = append(out, r)
	}
	return out, rows.Err()
}

// progress draws a one-line bar on w.
type progress struct {
	w     io.Writer
	what  string
	total int
	last  time.Time
}

func (p *progress) show(done int) {
	if now := time.Now(); done < p.total && now.Sub(p.last) < 200*time.Millisecond {
		return
	} else {
		p.last = now
	}
	const width = 30
	done = min(done, p.total)
	n := width * done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r%-24s [%s%s] %3d%% %d/%d", p.what, strings.Repeat("#", n), strings.Repeat(".", width-n), 100*done/max(p.total, 1), done, p.total)
	if done >= p.total {
		fmt.Fprintln(p.w)
	}
}

type benchFigure struct {
	name, figure, ceiling, ratio string
}

// benchView is the view both end-to-end runs create; the answer check
// and the sink ceiling rely on its columns.
const benchView = "bench_sessions"

// benchStall is how long a run may see no progress before it fails.
const benchStall = 2 * time.Minute

func runBench(ctx context.Context, c *benchConfig, stdout, stderr io.Writer) error {
	dir := c.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sessionsql-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Fprintf(stderr, "generating %d events of %d users...\n", c.events, c.users)
	payloads, evs := genBench(c)
	want := expectSessions(evs, c.users, c.gap.Milliseconds())
	var bytesTotal int
	for _, p := range payloads {
		bytesTotal += len(p)
	}
	events := len(payloads)
	// Messages: one event each, or --events-per-message lines of NDJSON.
	msgs := payloads
	format := "json"
	if c.perMessage > 1 {
		format = "ndjson"
		msgs = nil
		for i := 0; i < len(payloads); i += c.perMessage {
			msgs = append(msgs, bytes.Join(payloads[i:min(i+c.perMessage, len(payloads))], []byte("\n")))
		}
	}
	var figs []benchFigure

	// Decode, in this goroutine: events/s on one core.
	dec, err := source.NewDecoder(memory.NewGoAllocator(), benchColumns, 5)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for i, p := range payloads {
		if reason, ok := dec.Append(uint64(i+1), p); !ok {
			return fmt.Errorf("decode: %s", reason)
		}
		if dec.Len() == 4096 {
			dec.NewBatch().Release()
		}
	}
	dec.NewBatch().Release()
	dec.Release()
	decodeRate := float64(len(payloads)) / time.Since(t0).Seconds()
	figs = append(figs, benchFigure{"decode JSON -> Arrow (1 core)", rate(decodeRate), "2.00M ev/s (issue 7 target)", ratio(decodeRate, 2e6)})

	// NATS is the bench's own, so that the live run's engine can stop
	// and the PostgreSQL run's start over the same stream.
	emb, err := source.StartEmbedded(source.EmbeddedOptions{StoreDir: filepath.Join(dir, "jetstream"), Host: "127.0.0.1", Port: -1})
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	defer emb.Shutdown()
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	engineConfig := func(dsn string) *serveConfig {
		return &serveConfig{dataDir: dir, natsURL: emb.ClientURL(), listen: "127.0.0.1:0", logFormat: "text", logLevel: 8,
			postgres: dsn, checkpointInterval: c.checkpoint}
	}
	eng, err := startBenchEngine(ctx, engineConfig(""))
	if err != nil {
		return err
	}
	defer eng.stop()
	createSource := `CREATE SOURCE plays (user_id BIGINT, device VARCHAR, event_type VARCHAR, title_id BIGINT, bytes BIGINT, ts TIMESTAMP,
	  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'BENCH', subjects = 'bench.>', format = '` + format + `')`
	if _, err := eng.conn.Exec(ctx, createSource); err != nil {
		return err
	}

	// Publish.
	pr := &progress{w: stderr, what: "publishing", total: len(msgs)}
	t0 = time.Now()
	const chunk = 20_000
	for i := 0; i < len(msgs); i += chunk {
		if err := source.Publish(ctx, js, "bench.events", msgs[i:min(i+chunk, len(msgs))]); err != nil {
			return err
		}
		pr.show(min(i+chunk, len(msgs)))
	}
	fmt.Fprintf(stderr, "published %d events in %d messages (%.1f MB) in %s\n", events, len(msgs), float64(bytesTotal)/1e6, time.Since(t0).Round(time.Millisecond))
	// The workload is in the stream now: let it go, so that the engine's
	// garbage collector does not scan millions of payloads the bench
	// alone holds.
	nmsgs := len(msgs)
	payloads, msgs, evs = nil, nil, nil
	runtime.GC()

	// The consume ceiling: a plain ordered consumer draining the stream.
	cons, err := js.OrderedConsumer(ctx, "BENCH", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return err
	}
	pr = &progress{w: stderr, what: "consume ceiling", total: nmsgs}
	t0 = time.Now()
	for n := 1; n <= nmsgs; n++ {
		if _, err := it.Next(); err != nil {
			it.Stop()
			return fmt.Errorf("consume ceiling: %w", err)
		}
		if n%10_000 == 0 || n == nmsgs {
			pr.show(n)
		}
	}
	ceilTime := time.Since(t0)
	it.Stop()
	ceiling := float64(events) / ceilTime.Seconds()
	figs = append(figs, benchFigure{"JetStream consume, no processing", rate(ceiling), "(the ceiling)", ""})

	// End to end into the live table: the view reads the stream from
	// its start; done when it has consumed every message and every
	// window is final.
	live, err := measureView(ctx, eng.conn, nil, c, nmsgs, int64(len(want.sessions)), "end to end (live)", stderr)
	if err != nil {
		return err
	}
	if err := writeProfile(c.cpuProfile, live.profile); err != nil {
		return err
	}
	e2e := float64(events) / live.wall.Seconds()
	figs = append(figs, benchFigure{"end to end, live table", rate(e2e), rate(ceiling), ratio(e2e, ceiling) + " (target 75%)"})
	rows, err := readSessions(ctx, eng.conn, benchView)
	if err != nil {
		return fmt.Errorf("read the live table: %w", err)
	}
	var wrong []error
	checked := []string{"the live table"}
	if err := want.check("the live table", rows); err != nil {
		wrong = append(wrong, fmt.Errorf("%w\n(the view processed %d events, %d of them late)", err, live.events, live.late))
	}
	runs := []*viewRun{live}

	var pgRun *viewRun
	var sinkCeil *sinkCeiling
	var schema string
	if c.postgres != "" {
		// The PostgreSQL run's engine starts over the same stream with
		// an empty catalog.
		for _, stmt := range []string{"DROP MATERIALIZED VIEW " + benchView, "DROP SOURCE plays"} {
			if _, err := eng.conn.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		if err := eng.stop(); err != nil {
			return fmt.Errorf("stop the live run's engine: %w", err)
		}
		var dsn string
		var drop func() error
		schema, dsn, drop, err = benchSchema(ctx, c.postgres)
		if err != nil {
			return err
		}
		if c.keep {
			fmt.Fprintf(stderr, "PostgreSQL schema %s (kept)\n", schema)
		} else {
			fmt.Fprintf(stderr, "PostgreSQL schema %s (dropped at the end)\n", schema)
			defer func() {
				if err := drop(); err != nil {
					fmt.Fprintln(stderr, "sessionsql bench:", err)
				}
			}()
		}
		pg, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("--postgres: %w", err)
		}
		defer pg.Close(context.WithoutCancel(ctx))
		if eng, err = startBenchEngine(ctx, engineConfig(dsn)); err != nil {
			return err
		}
		defer eng.stop()
		if _, err := eng.conn.Exec(ctx, createSource); err != nil {
			return err
		}
		if pgRun, err = measureView(ctx, eng.conn, pg, c, nmsgs, int64(len(want.sessions)), "end to end (PostgreSQL)", stderr); err != nil {
			return err
		}
		if c.cpuProfile != "" {
			if err := writeProfile(c.cpuProfile+".postgres", pgRun.profile); err != nil {
				return err
			}
		}
		runs = append(runs, pgRun)
		for _, t := range []struct {
			where string
			conn  *pgx.Conn
		}{{"the PostgreSQL run's live table", eng.conn}, {"PostgreSQL", pg}} {
			rows, err := readSessions(ctx, t.conn, benchView)
			if err != nil {
				return fmt.Errorf("read %s: %w", t.where, err)
			}
			checked = append(checked, t.where)
			if err := want.check(t.where, rows); err != nil {
				wrong = append(wrong, err)
			}
		}
		// The sink's ceiling, with the engine stopped so that both
		// compete for the same cores as little as possible.
		if err := eng.stop(); err != nil {
			return fmt.Errorf("stop the PostgreSQL run's engine: %w", err)
		}
		if sinkCeil, err = measureSinkCeiling(ctx, pg, benchView, stderr); err != nil {
			return fmt.Errorf("sink ceiling: %w", err)
		}
		pgE2E := float64(events) / pgRun.wall.Seconds()
		sk := pgRun.sink
		written := sk.upserts + sk.deletes
		// The sink's own rate: rows written per second of its
		// transactions. Its ceiling for the same mix: a final row was
		// inserted once (a deleted key once more), every other upsert
		// was an update; deletes are counted at the update rate.
		inserts := min(pgRun.final+sk.deletes, sk.upserts)
		sinkRate := float64(written) / sk.time.Seconds()
		mixCeil := float64(written) / (float64(inserts)/sinkCeil.newRate + float64(written-inserts)/sinkCeil.updRate)
		figs = append(figs,
			benchFigure{fmt.Sprintf("end to end, PostgreSQL (epochs of %s)", c.checkpoint), rate(pgE2E), rate(ceiling), ratio(pgE2E, ceiling) + " (target 60%)"},
			benchFigure{"  of which waiting for the last commits", fmt.Sprintf("%.2f s", (pgRun.wall - pgRun.processed).Seconds()),
				fmt.Sprintf("of %.2f s", pgRun.wall.Seconds()), ratio(float64(pgRun.wall-pgRun.processed), float64(pgRun.wall))},
			benchFigure{"PostgreSQL COPY -> merge, all new", rowRate(sinkCeil.newRate), "(the sink's ceiling)", ""},
			benchFigure{"PostgreSQL COPY -> merge, all updates", rowRate(sinkCeil.updRate), "(the sink's ceiling)", ""},
			benchFigure{"sink: rows written, coalesced per epoch", fmt.Sprintf("%d", written), fmt.Sprintf("of %d rows sent in %d epochs", sk.received, sk.epochs), ratio(float64(written), float64(sk.received))},
			benchFigure{"sink: rows/s in its transactions", rowRate(sinkRate), rowRate(mixCeil) + fmt.Sprintf(" (ceiling for %d new + %d updates)", inserts, written-inserts), ratio(sinkRate, mixCeil) + " (target 90%)"},
		)
	}
	if live.peakOpen > 0 {
		per := float64(live.peakState) / float64(live.peakOpen)
		figs = append(figs, benchFigure{"state per open window (peak)", fmt.Sprintf("%.0f B", per), "<= 256 B (issue 7 target)", ratio(per, 256) + " of the budget"})
	}
	figs = append(figs, benchFigure{"peak RSS", peakRSS(), "", ""})

	fmt.Fprintf(stdout, "\nsessionsql bench: %d events in %d messages (%d per message), %d users, SESSION %s, COUNT(*) + SUM + COUNT(DISTINCT); %d sessions; checkpoint interval %s; GOMAXPROCS=%d, %d CPUs, load average %s\n",
		c.events, nmsgs, c.perMessage, c.users, c.gap, len(want.sessions), c.checkpoint, runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAverage())
	if c.postgres != "" {
		fmt.Fprintf(stdout, "PostgreSQL: schema %s; end to end until every window is final in PostgreSQL (epochs committed every %s, and at once when the view has worked through its backlog); "+
			"sink ceiling: plain SQL, %d rows (%d columns, as the result table), COPY into a temporary table + one INSERT ... ON CONFLICT DO UPDATE per %d rows, one transaction each, one connection\n",
			schema, c.checkpoint, sinkCeil.rows, sinkCeil.cols, ceilingTxRows)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\tfigure\tceiling / target\tratio")
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.name, f.figure, f.ceiling, f.ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printCPU(stdout, runs, int64(events))
	printOperators(stdout, runs)

	if len(wrong) > 0 {
		return errors.Join(wrong...)
	}
	fmt.Fprintf(stdout, "\nanswer checked: %d sessions, totals equal (COUNT(*) %d, SUM(bytes) %d, COUNT(DISTINCT title_id) %d), every row as computed in Go, in %s\n",
		len(want.sessions), want.events, want.bytes, want.titles, strings.Join(checked, ", "))
	return nil
}

// benchEngine is a `sessionsql serve` in this process, with a connection
// to its wire listener.
type benchEngine struct {
	conn   *pgx.Conn
	cancel context.CancelFunc // nil once stopped
	done   chan error
}

func startBenchEngine(ctx context.Context, cfg *serveConfig) (*benchEngine, error) {
	ready := make(chan string, 1)
	cfg.ready = func(addr net.Addr, _ string) { ready <- addr.String() }
	sctx, cancel := context.WithCancel(ctx)
	e := &benchEngine{cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- serve(sctx, cfg, io.Discard) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-e.done:
		cancel()
		return nil, fmt.Errorf("start the engine: %w", err)
	}
	conn, err := pgx.Connect(ctx, "postgres://bench@"+addr+"/bench?sslmode=disable&default_query_exec_mode=simple_protocol")
	if err != nil {
		_ = e.stop()
		return nil, err
	}
	e.conn = conn
	return e, nil
}

// stop closes the connection and stops the engine; later calls do
// nothing.
func (e *benchEngine) stop() error {
	if e.cancel == nil {
		return nil
	}
	if e.conn != nil {
		e.conn.Close(context.Background())
	}
	e.cancel()
	e.cancel = nil
	return <-e.done
}

// viewRun is what one end-to-end run measured.
type viewRun struct {
	what                string
	wall                time.Duration // CREATE MATERIALIZED VIEW until done
	processed           time.Duration // until the pipeline had every message and no open window
	final               int64         // final rows (in PostgreSQL for that run)
	late                int64         // events the view dropped as late (none are)
	events              int64         // events the view processed
	peakOpen, peakState int64
	profile             []byte // CPU profile of the run; nil if none could be taken
	profileErr          error
	ops                 []opTime   // EXPLAIN ANALYZE at the end
	sink                sinkTotals // the same, of the commits to PostgreSQL
}

// measureView creates the benchmark view and waits until it has consumed
// all msgs messages and closed every window, and with pg (the sink
// database) until PostgreSQL has committed the stream's end and holds
// wantFinal final rows. It takes a CPU profile meanwhile.
func measureView(ctx context.Context, conn, pg *pgx.Conn, c *benchConfig, msgs int, wantFinal int64, what string, stderr io.Writer) (*viewRun, error) {
	run := &viewRun{what: strings.Trim(strings.TrimPrefix(what, "end to end "), "()")}
	var prof bytes.Buffer
	profiling := pprof.StartCPUProfile(&prof) == nil
	if !profiling {
		run.profileErr = errors.New("a CPU profile is already being taken (go test -cpuprofile?)")
	}
	stopProfile := func() {
		if profiling {
			pprof.StopCPUProfile()
			profiling = false
			run.profile = prof.Bytes()
		}
	}
	defer stopProfile()
	t0 := time.Now()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE MATERIALIZED VIEW %s AS
	  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
	         COUNT(*) AS events, SUM(bytes) AS bytes, COUNT(DISTINCT title_id) AS titles
	  FROM plays GROUP BY user_id, SESSION(ts, INTERVAL '%d' SECOND)`, benchView, int64(c.gap/time.Second))); err != nil {
		return nil, err
	}
	pr := &progress{w: stderr, what: what, total: msgs}
	var last viewState
	lastFinal, lastChange := int64(-1), time.Now()
	for {
		v, err := showView(ctx, conn, benchView)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(v.status, "failed") || strings.HasPrefix(v.status, "sink error") {
			return nil, fmt.Errorf("view %s: %s", benchView, v.status)
		}
		if v.open > run.peakOpen {
			run.peakOpen, run.peakState = v.open, v.stateBytes
		}
		done := v.pos >= int64(msgs) && v.open <= 1 // user -1's session stays open
		if done && run.processed == 0 {
			run.processed = time.Since(t0)
		}
		if pg == nil {
			pr.show(int(v.pos))
			if done {
				run.final, run.late, run.events = v.emitted, v.late, v.events
				break
			}
		} else {
			pr.show(int(min(v.pos, v.committed)))
			if done && v.committed >= int64(msgs) {
				var n int64
				if err := pg.QueryRow(ctx, "SELECT count(*) FROM "+benchView+" WHERE is_final").Scan(&n); err != nil {
					return nil, fmt.Errorf("count final rows in PostgreSQL: %w", err)
				}
				if n == wantFinal {
					run.final, run.late, run.events = n, v.late, v.events
					break
				}
				if n != lastFinal {
					lastFinal, lastChange = n, time.Now()
				}
			}
		}
		if v != last {
			last, lastChange = v, time.Now()
		} else if time.Since(lastChange) > benchStall {
			return nil, fmt.Errorf("view %s made no progress for %s: state %q, position %d of %d, committed %d, open windows %d, final rows in PostgreSQL %d (want %d)",
				benchView, benchStall, v.status, v.pos, msgs, v.committed, v.open, lastFinal, wantFinal)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	run.wall = time.Since(t0)
	stopProfile()
	var err error
	if run.ops, run.sink, err = explainAnalyze(ctx, conn, benchView); err != nil {
		return nil, err
	}
	return run, nil
}

// viewState is one view's row of SHOW MATERIALIZED VIEWS.
type viewState struct {
	status                                                  string
	open, stateBytes, emitted, late, pos, committed, events int64
}

// showView reads one view's row of SHOW MATERIALIZED VIEWS.
func showView(ctx context.Context, conn *pgx.Conn, name string) (viewState, error) {
	rows, err := conn.Query(ctx, "SHOW MATERIALIZED VIEWS")
	if err != nil {
		return viewState{}, err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return viewState{}, err
		}
		if vals[0] != name {
			continue
		}
		get := func(i int) int64 { v, _ := vals[i].(int64); return v }
		st, _ := vals[2].(string)
		return viewState{status: st, open: get(5), stateBytes: get(6), events: get(3), emitted: get(7), late: get(8), pos: get(9), committed: get(12)}, nil
	}
	if err := rows.Err(); err != nil {
		return viewState{}, err
	}
	return viewState{}, fmt.Errorf("view %q not in SHOW MATERIALIZED VIEWS", name)
}

// opTime is one operator's line of EXPLAIN ANALYZE: the time spent in
// it, not in the operators after it.
type opTime struct {
	name string
	rows int64
	time time.Duration
}

// sinkTotals is EXPLAIN ANALYZE's line on a view's commits to
// PostgreSQL.
type sinkTotals struct {
	epochs, received, upserts, deletes int64
	time                               time.Duration
}

var (
	analyzeLine = regexp.MustCompile(`^[\s└─]*(.*?)\s+\(rows=(\d+) batches=\d+ time=(\S+)\)$`)
	sinkLine    = regexp.MustCompile(`Commits to PostgreSQL: epochs=(\d+) received=(\d+) upserts=(\d+) deletes=(\d+) time=(\S+)$`)
)

// explainAnalyze reads EXPLAIN ANALYZE of a running view: its operators
// in pipeline order (the first one gets the source's batches), and its
// commits to PostgreSQL (zero without a sink database).
func explainAnalyze(ctx context.Context, conn *pgx.Conn, view string) ([]opTime, sinkTotals, error) {
	var sink sinkTotals
	rows, err := conn.Query(ctx, "EXPLAIN ANALYZE "+view)
	if err != nil {
		return nil, sink, err
	}
	defer rows.Close()
	var ops []opTime
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, sink, err
		}
		if m := sinkLine.FindStringSubmatch(line); m != nil {
			for i, p := range []*int64{&sink.epochs, &sink.received, &sink.upserts, &sink.deletes} {
				*p, _ = strconv.ParseInt(m[i+1], 10, 64)
			}
			if sink.time, err = time.ParseDuration(m[5]); err != nil {
				return nil, sink, fmt.Errorf("EXPLAIN ANALYZE %s: %q: %w", view, line, err)
			}
			continue
		}
		m := analyzeLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		d, err := time.ParseDuration(m[3])
		if err != nil {
			return nil, sink, fmt.Errorf("EXPLAIN ANALYZE %s: %q: %w", view, line, err)
		}
		ops = append(ops, opTime{name: m[1], rows: n, time: d})
	}
	if err := rows.Err(); err != nil {
		return nil, sink, err
	}
	slices.Reverse(ops)
	return ops, sink, nil
}

// printOperators prints each operator's share of the pipeline's time,
// one column pair per run.
func printOperators(w io.Writer, runs []*viewRun) {
	fmt.Fprintf(w, "\npipeline operators (EXPLAIN ANALYZE %s: time in each operator, not in those after it; share of the pipeline's time):\n", benchView)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "operator"
	totals := make([]time.Duration, len(runs))
	for i, r := range runs {
		head += "\t" + r.what + "\tshare"
		for _, op := range r.ops {
			totals[i] += op.time
		}
	}
	fmt.Fprintln(tw, head)
	for j, op := range runs[0].ops {
		name := op.name
		if len(name) > 72 {
			name = name[:69] + "..."
		}
		line := name
		for i, r := range runs {
			if j >= len(r.ops) {
				line += "\t\t"
				continue
			}
			line += fmt.Sprintf("\t%.1f ms\t%s", r.ops[j].time.Seconds()*1e3, ratio(float64(r.ops[j].time), float64(totals[i])))
		}
		fmt.Fprintln(tw, line)
	}
	line := "pipeline, busy / wall"
	for i, r := range runs {
		line += fmt.Sprintf("\t%.0f / %.0f ms\t%s", totals[i].Seconds()*1e3, r.wall.Seconds()*1e3, ratio(float64(totals[i]), float64(r.wall)))
	}
	fmt.Fprintln(tw, line)
	_ = tw.Flush()
}

// printCPU prints the CPU time of each stage in each run, from the run's
// CPU profile of the whole process.
func printCPU(w io.Writer, runs []*viewRun, events int64) {
	fmt.Fprintln(w, "\nCPU by stage (a CPU profile of this process during each end-to-end run; PostgreSQL's own CPU is not in it):")
	type cpu struct {
		by    []time.Duration
		total time.Duration
	}
	cpus := make([]*cpu, len(runs))
	for i, r := range runs {
		if r.profile == nil {
			fmt.Fprintf(w, "  %s: no CPU profile: %v\n", r.what, r.profileErr)
			continue
		}
		by, total, err := cpuByStage(r.profile)
		if err != nil {
			fmt.Fprintf(w, "  %s: unreadable CPU profile: %v\n", r.what, err)
			continue
		}
		cpus[i] = &cpu{by, total}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "stage"
	for _, r := range runs {
		head += "\t" + r.what + " CPU\tshare\tev/s per core"
	}
	fmt.Fprintln(tw, head)
	for s, name := range cpuStages {
		line := name
		for _, c := range cpus {
			if c == nil {
				line += "\t\t\t"
				continue
			}
			d := c.by[s]
			perCore := ""
			if d > 0 && s <= stageSink { // the stages every event goes through
				perCore = rate(float64(events) / d.Seconds())
			}
			line += fmt.Sprintf("\t%s\t%s\t%s", d.Round(10*time.Millisecond), ratio(float64(d), float64(c.total)), perCore)
		}
		fmt.Fprintln(tw, line)
	}
	line := "total (cores busy)"
	for i, c := range cpus {
		if c == nil {
			line += "\t\t\t"
			continue
		}
		line += fmt.Sprintf("\t%s\t(%.2f cores)\t%s", c.total.Round(10*time.Millisecond), c.total.Seconds()/runs[i].wall.Seconds(), rate(float64(events)/c.total.Seconds()))
	}
	fmt.Fprintln(tw, line)
	_ = tw.Flush()
}

// The stages a CPU sample is charged to, in print order.
const (
	stageDecode = iota
	stageWindow
	stageSink
	stageCheckpoint
	stageNATSClient
	stageNATSServer
	stageEngine
	stageBench
	stageGC
	stageOther
)

var cpuStages = []string{
	stageDecode:     "decode (JSON -> Arrow)",
	stageWindow:     "window operator",
	stageSink:       "sink (live table; PostgreSQL writes)",
	stageCheckpoint: "checkpoints",
	stageNATSClient: "JetStream client (nats.go)",
	stageNATSServer: "NATS server (embedded)",
	stageEngine:     "engine, other (reader, pipeline, wire)",
	stageBench:      "bench itself (polling)",
	stageGC:         "GC (background workers)",
	stageOther:      "runtime, other",
}

const modulePrefix = "github.com/sessionsql/sessionsql/"

// stageOf charges a sample to a stage, given its functions leaf first: a
// sample under a checkpoint is the checkpoint's; otherwise the innermost
// function of a known stage decides (the decoder calling fastjson is
// decode, the sink operator under the window operator is the sink); then
// the innermost of the engine's other code, the bench's, or the GC's.
func stageOf(frames []string) int {
	for _, f := range frames {
		if strings.HasPrefix(f, modulePrefix+"exec.(*Pipeline).checkpoint") || strings.HasPrefix(f, modulePrefix+"planner.(*checkpointStore)") {
			return stageCheckpoint
		}
	}
	for _, f := range frames {
		switch {
		case strings.HasPrefix(f, modulePrefix+"exec/source.(*Decoder)"):
			return stageDecode
		case strings.HasPrefix(f, modulePrefix+"windows."), strings.HasPrefix(f, modulePrefix+"exec.(*WindowAggOp)"):
			return stageWindow
		case strings.HasPrefix(f, modulePrefix+"exec/sink."), strings.HasPrefix(f, modulePrefix+"exec.(*SinkOp)"):
			return stageSink
		case strings.HasPrefix(f, "github.com/nats-io/nats.go/"), strings.HasPrefix(f, "github.com/nats-io/nats%2ego."):
			return stageNATSClient
		case strings.HasPrefix(f, "github.com/nats-io/nats-server/"):
			return stageNATSServer
		}
	}
	for _, f := range frames {
		switch {
		case strings.HasPrefix(f, "main."), strings.HasPrefix(f, modulePrefix+"cmd/sessionsql."):
			return stageBench
		case strings.HasPrefix(f, modulePrefix):
			return stageEngine
		case f == "runtime.gcBgMarkWorker", f == "runtime.bgsweep", f == "runtime.bgscavenge":
			return stageGC
		}
	}
	return stageOther
}

// cpuByStage adds up the CPU time of a profile written by runtime/pprof by
// stage (see stageOf).
func cpuByStage(gz []byte) (byStage []time.Duration, total time.Duration, err error) {
	prof, err := profile.ParseData(gz)
	if err != nil {
		return nil, 0, err
	}
	vi := -1
	for i, t := range prof.SampleType {
		if t.Unit == "nanoseconds" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, 0, errors.New("CPU profile: no sample type in nanoseconds")
	}
	byStage = make([]time.Duration, len(cpuStages))
	var frames []string
	for _, s := range prof.Sample {
		frames = frames[:0]
		for _, l := range s.Location {
			for _, line := range l.Line {
				if line.Function != nil {
					frames = append(frames, line.Function.Name)
				}
			}
		}
		d := time.Duration(s.Value[vi])
		byStage[stageOf(frames)] += d
		total += d
	}
	return byStage, total, nil
}

// ceilingTxRows is the rows per transaction of the sink ceiling.
const ceilingTxRows = 10_000

// sinkCeiling is what measureSinkCeiling measured.
type sinkCeiling struct {
	rows, cols       int
	newRate, updRate float64 // rows/s
}

// measureSinkCeiling measures PostgreSQL's upsert ceiling on one
// connection with the rows of table (the engine's result table) in plain
// SQL, independent of the engine's sink code: into a fresh table with the
// same columns and unique key, per ceilingTxRows rows one transaction of
// COPY into a temporary table and one INSERT ... SELECT ... ON CONFLICT
// (key) DO UPDATE. First every row is new, then the same rows again, every
// one an update.
func measureSinkCeiling(ctx context.Context, conn *pgx.Conn, table string, stderr io.Writer) (*sinkCeiling, error) {
	src := pgx.Identifier{table}.Sanitize()
	var keys []string
	err := conn.QueryRow(ctx, `SELECT array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_catalog.pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = ($1::text)::regclass AND i.indisunique
		GROUP BY i.indexrelid ORDER BY i.indexrelid LIMIT 1`, src).Scan(&keys)
	if err != nil {
		return nil, fmt.Errorf("read the key of %s: %w", table, err)
	}
	rows, err := conn.Query(ctx, "SELECT * FROM "+src)
	if err != nil {
		return nil, err
	}
	var cols []string
	for _, fd := range rows.FieldDescriptions() {
		cols = append(cols, fd.Name)
	}
	var data [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, err
		}
		data = append(data, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s has no rows", table)
	}
	for _, stmt := range []string{
		"DROP TABLE IF EXISTS bench_ceiling",
		"CREATE TABLE bench_ceiling (LIKE " + src + " INCLUDING INDEXES)",
		"DROP TABLE IF EXISTS pg_temp.bench_stage",
		"CREATE TEMP TABLE bench_stage (LIKE " + src + ") ON COMMIT DELETE ROWS",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	var set []string
	for _, c := range cols {
		if !slices.Contains(keys, c) {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	colList := quoteAll(cols)
	merge := fmt.Sprintf("INSERT INTO bench_ceiling (%s) SELECT %s FROM pg_temp.bench_stage ON CONFLICT (%s) DO UPDATE SET %s",
		colList, colList, quoteAll(keys), strings.Join(set, ", "))
	pass := func(what string) (float64, error) {
		pr := &progress{w: stderr, what: what, total: len(data)}
		t0 := time.Now()
		for i := 0; i < len(data); i += ceilingTxRows {
			j := min(i+ceilingTxRows, len(data))
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "bench_stage"}, cols, pgx.CopyFromRows(data[i:j])); err != nil {
					return fmt.Errorf("COPY: %w", err)
				}
				tag, err := tx.Exec(ctx, merge)
				if err != nil {
					return fmt.Errorf("merge: %w", err)
				}
				if tag.RowsAffected() != int64(j-i) {
					return fmt.Errorf("merge of %d rows affected %d", j-i, tag.RowsAffected())
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			pr.show(j)
		}
		return float64(len(data)) / time.Since(t0).Seconds(), nil
	}
	c := &sinkCeiling{rows: len(data), cols: len(cols)}
	if c.newRate, err = pass("sink ceiling, new rows"); err != nil {
		return nil, err
	}
	if c.updRate, err = pass("sink ceiling, updates"); err != nil {
		return nil, err
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM bench_ceiling").Scan(&n); err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("bench_ceiling has %d rows after the updates, want %d: the second pass did not only update", n, len(data))
	}
	for _, stmt := range []string{"DROP TABLE bench_ceiling", "DROP TABLE pg_temp.bench_stage"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// benchSchema creates a fresh schema bench_<random> in the database at
// dsn, so the run never meets a user's tables, and returns it, a DSN
// whose search_path is that schema, and a function that drops it.
func benchSchema(ctx context.Context, dsn string) (schema, schemaDSN string, drop func() error, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", "", nil, fmt.Errorf("--postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema = fmt.Sprintf("bench_%016x", rand.Uint64())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", "", nil, fmt.Errorf("--postgres: create schema %s: %w", schema, err)
	}
	drop = func() error {
		// Also after Ctrl-C.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(dctx, dsn)
		if err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		defer conn.Close(dctx)
		if _, err := conn.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	if schemaDSN, err = withSearchPath(dsn, schema); err != nil {
		return "", "", nil, errors.Join(err, drop())
	}
	return schema, schemaDSN, drop, nil
}

// withSearchPath adds search_path=schema to dsn (a URL or key=value
// string); pgx passes parameters it does not know to the server as
// run-time parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("--postgres: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

// writeProfile writes a CPU profile taken in memory to path ("": none).
func writeProfile(path string, profile []byte) error {
	if path == "" || profile == nil {
		return nil
	}
	return os.WriteFile(path, profile, 0o644)
}

func rate(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%.2fM ev/s", r/1e6)
	}
	return fmt.Sprintf("%.0fk ev/s", r/1e3)
}

func rowRate(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%.2fM rows/s", r/1e6)
	}
	return fmt.Sprintf("%.1fk rows/s", r/1e3)
}

func ratio(a, b float64) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

// peakRSS reads the process's peak resident set size (Linux).
func peakRSS() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage reads the 1, 5 and 15 minute load averages (Linux).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
