package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
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
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &benchConfig{}
	fs.IntVar(&c.events, "events", 2_000_000, "events in the workload")
	fs.IntVar(&c.users, "users", 100_000, "distinct users (each active every ~15 minutes of event time)")
	fs.DurationVar(&c.gap, "gap", 30*time.Minute, "the session gap of the benchmark view")
	fs.IntVar(&c.perMessage, "events-per-message", 1, "events per JetStream message (1: one JSON object per message)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated workload")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory for the embedded NATS server (default: a temporary directory, removed afterwards)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the end-to-end run to this file")
	fs.StringVar(&c.postgres, "postgres", "", "also measure end to end into PostgreSQL at this DSN (not yet implemented)")
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
	case c.postgres != "":
		return nil, fmt.Errorf("--postgres is not implemented yet; the benchmark measures the live result table")
	}
	return c, nil
}

// benchColumns is the workload's schema.
var benchColumns = []source.Column{
	{Name: "user_id", Type: sqltypes.Int64}, {Name: "device", Type: sqltypes.String},
	{Name: "event_type", Type: sqltypes.String}, {Name: "title_id", Type: sqltypes.Int64},
	{Name: "bytes", Type: sqltypes.Int64}, {Name: "ts", Type: sqltypes.Timestamp},
}

// genBench makes the deterministic workload: events in time order with
// ±2 s jitter, each user active every ~15 minutes of event time on
// average. The last event belongs to user -1 and lies a day after the
// others, so the watermark passes every session and every window closes.
func genBench(c *benchConfig) [][]byte {
	rng := rand.New(rand.NewPCG(c.seed, 11))
	span := int64(c.events) * 15 * 60_000 / int64(c.users) // ms of event time
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	devices := []string{"tv", "web", "phone", "tablet"}
	types := []string{"play", "play", "play", "pause", "seek", "heartbeat"}
	out := make([][]byte, 0, c.events+1)
	var b []byte
	for i := range c.events {
		ts := start + span*int64(i)/int64(c.events) + rng.Int64N(4001) - 2000
		b = b[:0]
		b = append(b, `{"user_id":`...)
		b = strconv.AppendInt(b, rng.Int64N(int64(c.users)), 10)
		b = append(b, `,"device":"`...)
		b = append(b, devices[rng.IntN(len(devices))]...)
		b = append(b, `","event_type":"`...)
		b = append(b, types[rng.IntN(len(types))]...)
		b = append(b, `","title_id":`...)
		b = strconv.AppendInt(b, rng.Int64N(5000), 10)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, rng.Int64N(4_000_000), 10)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, '}')
		out = append(out, append([]byte(nil), b...))
	}
	flush := fmt.Sprintf(`{"user_id":-1,"device":"tv","event_type":"play","title_id":0,"bytes":0,"ts":%d}`, start+span+24*3600_000)
	return append(out, []byte(flush))
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
	n := width * done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r%-22s [%s%s] %3d%% %d/%d", p.what, strings.Repeat("#", n), strings.Repeat(".", width-n), 100*done/max(p.total, 1), done, p.total)
	if done >= p.total {
		fmt.Fprintln(p.w)
	}
}

type benchFigure struct {
	name, figure, ceiling, ratio string
}

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
	payloads := genBench(c)
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

	// The server, in this process, over a fresh embedded NATS.
	ready := make(chan [2]string, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(sctx, &serveConfig{dataDir: dir, natsListen: "127.0.0.1:0", listen: "127.0.0.1:0", logFormat: "text", logLevel: 8,
			ready: func(addr net.Addr, url string) { ready <- [2]string{addr.String(), url} }}, io.Discard)
	}()
	var addr, url string
	select {
	case r := <-ready:
		addr, url = r[0], r[1]
	case err := <-done:
		return fmt.Errorf("start the engine: %w", err)
	}
	defer func() {
		cancel()
		<-done
	}()
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, "postgres://bench@"+addr+"/bench?sslmode=disable&default_query_exec_mode=simple_protocol")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SOURCE plays (user_id BIGINT, device VARCHAR, event_type VARCHAR, title_id BIGINT, bytes BIGINT, ts TIMESTAMP,
	  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'BENCH', subjects = 'bench.>', format = '`+format+`')`); err != nil {
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

	// The consume ceiling: a plain ordered consumer draining the stream.
	cons, err := js.OrderedConsumer(ctx, "BENCH", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return err
	}
	pr = &progress{w: stderr, what: "consume ceiling", total: len(msgs)}
	t0 = time.Now()
	for n := 1; n <= len(msgs); n++ {
		if _, err := it.Next(); err != nil {
			it.Stop()
			return fmt.Errorf("consume ceiling: %w", err)
		}
		if n%10_000 == 0 || n == len(msgs) {
			pr.show(n)
		}
	}
	ceilTime := time.Since(t0)
	it.Stop()
	ceiling := float64(events) / ceilTime.Seconds()
	figs = append(figs, benchFigure{"JetStream consume, no processing", rate(ceiling), "(the ceiling)", ""})

	// End to end: the view reads the stream from its start; done when it
	// has consumed every message and every window is final.
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 = time.Now()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE MATERIALIZED VIEW bench_sessions AS
	  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
	         COUNT(*) AS events, SUM(bytes) AS bytes, COUNT(DISTINCT title_id) AS titles
	  FROM plays GROUP BY user_id, SESSION(ts, INTERVAL '%d' SECOND)`, int64(c.gap.Seconds()))); err != nil {
		return err
	}
	pr = &progress{w: stderr, what: "end to end (live)", total: len(msgs)}
	var peakOpen, peakState, rows int64
	for {
		pos, open, state, emitted, st, err := showView(ctx, conn, "bench_sessions")
		if err != nil {
			return err
		}
		if strings.HasPrefix(st, "failed") {
			return fmt.Errorf("the view failed: %s", st)
		}
		if open > peakOpen {
			peakOpen, peakState = open, state
		}
		pr.show(int(pos))
		if pos >= int64(len(msgs)) && open <= 1 { // user -1's session stays open
			rows = emitted
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e2eTime := time.Since(t0)
	e2e := float64(events) / e2eTime.Seconds()
	figs = append(figs, benchFigure{"end to end, live table", rate(e2e), rate(ceiling), ratio(e2e, ceiling) + " (target 75%)"})
	if peakOpen > 0 {
		per := float64(peakState) / float64(peakOpen)
		figs = append(figs, benchFigure{"state per open window (peak)", fmt.Sprintf("%.0f B", per), "<= 256 B (issue 7 target)", ratio(per, 256) + " of the budget"})
	}
	figs = append(figs, benchFigure{"peak RSS", peakRSS(), "", ""})

	fmt.Fprintf(stdout, "\nsessionsql bench: %d events in %d messages (%d per message), %d users, SESSION %s, COUNT(*) + SUM + COUNT(DISTINCT); %d sessions written; GOMAXPROCS=%d\n\n",
		c.events, len(msgs), c.perMessage, c.users, c.gap, rows, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\tfigure\tceiling / target\tratio")
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.name, f.figure, f.ceiling, f.ratio)
	}
	return tw.Flush()
}

// showView reads one view's row of SHOW MATERIALIZED VIEWS.
func showView(ctx context.Context, conn *pgx.Conn, name string) (pos, open, state, emitted int64, st string, err error) {
	rows, err := conn.Query(ctx, "SHOW MATERIALIZED VIEWS")
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		vals, verr := rows.Values()
		if verr != nil {
			return 0, 0, 0, 0, "", verr
		}
		if vals[0] != name {
			continue
		}
		get := func(i int) int64 { v, _ := vals[i].(int64); return v }
		st, _ = vals[2].(string)
		return get(9), get(5), get(6), get(7), st, nil
	}
	return 0, 0, 0, 0, "", fmt.Errorf("view %q not in SHOW MATERIALIZED VIEWS", name)
}

func rate(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%.2fM ev/s", r/1e6)
	}
	return fmt.Sprintf("%.0fk ev/s", r/1e3)
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
