package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testServer is a Server on 127.0.0.1:0 in front of a testEngine, stopped
// in t.Cleanup (which also checks that Serve returned nil and every session
// was closed).
type testServer struct {
	srv  *Server
	eng  *testEngine
	addr string
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	eng := newTestEngine()
	if cfg.Engine == nil {
		cfg.Engine = eng
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if o, c := eng.sessions.Load(), eng.closed.Load(); o != c {
			t.Errorf("%d sessions opened, %d closed", o, c)
		}
	})
	waitFor(t, 5*time.Second, func() error {
		if srv.Addr() == nil {
			return errors.New("no address yet")
		}
		return nil
	})
	return &testServer{srv: srv, eng: eng, addr: srv.Addr().String()}
}

// waitFor polls cond until it returns nil or the deadline passes
// (nats-server's checkFor).
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func (ts *testServer) dsn() string {
	return fmt.Sprintf("postgres://tester@%s/testdb?sslmode=disable&application_name=servertest", ts.addr)
}

func (ts *testServer) connConfig(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(ts.dsn())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (ts *testServer) connect(t testing.TB, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	if cfg == nil {
		cfg = ts.connConfig(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pgErr returns err's *pgconn.PgError or fails.
func pgErr(t testing.TB, err error) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a *pgconn.PgError", err, err)
	}
	return pe
}

var allExecModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

// TestPgxParams round-trips parameters of every type through every pgx
// query mode: the extended protocol with binary parameters and results
// (cached statements), text parameters (Exec), and client-side
// interpolation over the simple protocol.
func TestPgxParams(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	tsv := time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	const q = "SELECT $1::int8, $2::float8, $3::text, $4::bool, $5::timestamp, $6::timestamptz, $7::int8"
	for _, mode := range allExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, in := range []struct {
				i   int64
				f   float64
				s   string
				b   bool
				tim time.Time
			}{
				{42, 1.5, "hello", true, tsv},
				{-7, -0.25, "it's \"quoted\" ünïcödé", false, tsv.Add(-time.Hour)},
				{math.MinInt64, 1e300, "", true, tsv},
			} {
				var (
					i   int64
					f   float64
					s   string
					b   bool
					ts1 time.Time
					ts2 time.Time
					n   *int64
				)
				err := conn.QueryRow(ctx, q, mode, in.i, in.f, in.s, in.b, in.tim, in.tim, nil).Scan(&i, &f, &s, &b, &ts1, &ts2, &n)
				if err != nil {
					t.Fatal(err)
				}
				if i != in.i || f != in.f || s != in.s || b != in.b || n != nil {
					t.Errorf("got %v %v %q %v %v, want %v %v %q %v nil", i, f, s, b, n, in.i, in.f, in.s, in.b)
				}
				if !ts1.Equal(in.tim) || !ts2.Equal(in.tim) {
					t.Errorf("timestamps: got %v and %v, want %v", ts1, ts2, in.tim)
				}
			}
		})
	}
}

// TestPgxTypes reads a row of every type in every mode (binary results
// in the extended modes, text in the simple protocol).
func TestPgxTypes(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	for _, mode := range allExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			rows, err := conn.Query(ctx, "SELECT * FROM types", mode)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(typesRows) {
				t.Fatalf("got %d rows, want %d", len(got), len(typesRows))
			}
			for r, row := range got {
				for c, v := range row {
					want := typesRows[r][c]
					if !sameValue(v, want) {
						t.Errorf("row %d column %s: got %#v, want %#v", r, typesColumns[c].Name, v, want)
					}
				}
			}
		})
	}
}

func sameValue(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || math.IsNaN(g) && math.IsNaN(w))
	}
	return got == want
}

// TestResultFormats asks for text and binary results explicitly with
// pgconn's ExecParams and checks the bytes: text as PostgreSQL prints it.
func TestResultFormatsOnTheWire(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)

	res := conn.PgConn().ExecParams(ctx, "SELECT * FROM types", nil, nil, nil, []int16{formatText}).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	for r, row := range res.Rows {
		for c, v := range row {
			if want := typesText[r][c]; string(v) != want || (v == nil) != (typesRows[r][c] == nil) {
				t.Errorf("text row %d column %s: got %q, want %q", r, typesColumns[c].Name, v, want)
			}
		}
	}

	// One format per column: binary int8 and bool, text for the rest.
	res = conn.PgConn().ExecParams(ctx, "SELECT $1::int8, $2::text, $3::bool",
		[][]byte{[]byte("5"), []byte("x"), []byte("t")}, nil, nil, []int16{1, 0, 1}).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("got %d rows", len(res.Rows))
	}
	row := res.Rows[0]
	if string(row[0]) != "\x00\x00\x00\x00\x00\x00\x00\x05" || string(row[1]) != "x" || string(row[2]) != "\x01" {
		t.Errorf("got %q", row)
	}
	if f := res.FieldDescriptions; f[0].Format != 1 || f[1].Format != 0 || f[2].Format != 1 || f[0].DataTypeOID != 20 {
		t.Errorf("field descriptions %+v", f)
	}
}

// TestPrepareOnce checks that a cached statement is planned once and
// executed many times.
func TestPrepareOnce(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	for i := range 5 {
		var got int64
		if err := conn.QueryRow(ctx, "SELECT $1::int8 AS n", int64(i)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != int64(i) {
			t.Fatalf("got %d, want %d", got, i)
		}
	}
	if p, e := ts.eng.prepares.Load(), ts.eng.executes.Load(); p != 1 || e != 5 {
		t.Errorf("engine saw %d prepares and %d executes, want 1 and 5", p, e)
	}
}

// TestErrors checks SQLSTATE, message, detail, hint and position in every
// mode, including positions in the second statement of a simple query.
func TestErrors(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	tests := []struct {
		name     string
		query    string
		code     string
		message  string
		position int32
		detail   string
		hint     string
	}{
		{"undefined column", "SELECT bad", pgerrcode.UndefinedColumn, `column "bad" does not exist`, 8, "", ""},
		{"syntax", "  SELEC 1", pgerrcode.SyntaxError, `syntax error at or near "SELEC"`, 3, "", ""},
		{"detail and hint", "SELECT detailerr", pgerrcode.WindowingError, "window is closed", 0,
			"the watermark passed end + allowed lateness", "raise ALLOWED LATENESS"},
		{"no code", "SELECT plainerr", pgerrcode.InternalError, "test engine: something broke", 0, "", ""},
		{"unsupported value", "SELECT badvalue", pgerrcode.InternalError, "", 0, "", ""},
		{"bad cast", "SELECT 'x'::int8", pgerrcode.InvalidTextRepresentation, `invalid input syntax for type bigint: "x"`, 8, "", ""},
		{"multi-byte position", "SELECT 'é', bad", pgerrcode.UndefinedColumn, `column "bad" does not exist`, 13, "", ""},
	}
	for _, mode := range allExecModes {
		for _, tc := range tests {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				_, err := conn.Exec(ctx, tc.query, mode)
				pe := pgErr(t, err)
				if pe.Code != tc.code || pe.Position != tc.position || pe.Detail != tc.detail || pe.Hint != tc.hint ||
					(tc.message != "" && pe.Message != tc.message) || pe.Severity != "ERROR" {
					t.Errorf("got %s %q position %d detail %q hint %q severity %s", pe.Code, pe.Message, pe.Position, pe.Detail, pe.Hint, pe.Severity)
				}
				// The connection goes on.
				var one int64
				if err := conn.QueryRow(ctx, "SELECT 1::int8", mode).Scan(&one); err != nil || one != 1 {
					t.Fatalf("after the error: %v, %d", err, one)
				}
			})
		}
	}

	t.Run("position in second statement", func(t *testing.T) {
		results, err := conn.PgConn().Exec(ctx, "SELECT 1::int8; SELECT bad; SELECT 3::int8").ReadAll()
		pe := pgErr(t, err)
		if pe.Code != pgerrcode.UndefinedColumn || pe.Position != 24 {
			t.Errorf("got %s at %d, want 42703 at 24", pe.Code, pe.Position)
		}
		// pgconn returns the results before the error, the error apart.
		if len(results) != 1 || len(results[0].Rows) != 1 {
			t.Errorf("got %d results, want the first statement's rows", len(results))
		}
	})
}

// TestPanicInEngine checks that a panic fails only its statement.
func TestPanicInEngine(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	for _, mode := range allExecModes {
		for _, q := range []string{"SELECT panic", "SELECT prepanic"} {
			t.Run(mode.String()+"/"+q, func(t *testing.T) {
				_, err := conn.Exec(ctx, q, mode)
				if pe := pgErr(t, err); pe.Code != pgerrcode.InternalError || !strings.Contains(pe.Message, "test panic") {
					t.Errorf("got %s %q", pe.Code, pe.Message)
				}
				var one int64
				if err := conn.QueryRow(ctx, "SELECT 1::int8", mode).Scan(&one); err != nil || one != 1 {
					t.Fatalf("after the panic: %v, %d", err, one)
				}
			})
		}
	}
	// Other clients never noticed.
	other := ts.connect(t, nil)
	if err := other.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCancel cancels a blocking statement with a CancelRequest, sent both
// explicitly and by pgx when the query's context is cancelled; the
// connection stays usable.
func TestCancel(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)

	t.Run("CancelRequest", func(t *testing.T) {
		conn := ts.connect(t, nil)
		errc := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, "SELECT sleep")
			errc <- err
		}()
		waitStarted(t, ts.eng)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := conn.PgConn().CancelRequest(cctx); err != nil {
			t.Fatal(err)
		}
		pe := pgErr(t, <-errc)
		if pe.Code != pgerrcode.QueryCanceled || pe.Message != "canceling statement due to user request" {
			t.Errorf("got %s %q", pe.Code, pe.Message)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("after cancel: %v", err)
		}
	})

	t.Run("context", func(t *testing.T) {
		cfg := ts.connConfig(t)
		cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			// Fall back to a deadline only long after the cancel request
			// should have worked, so that the test sees which one did.
			return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 30 * time.Second}
		}
		conn := ts.connect(t, cfg)
		qctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := conn.Exec(qctx, "SELECT sleep")
			errc <- err
		}()
		waitStarted(t, ts.eng)
		cancel()
		err := <-errc
		if !errors.Is(err, context.Canceled) {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != pgerrcode.QueryCanceled {
				t.Fatalf("got %v, want query_canceled or context.Canceled", err)
			}
		}
		if conn.IsClosed() {
			t.Fatal("connection closed: the cancel request did not work")
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("after cancel: %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		conn := ts.connect(t, nil)
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := (&pgproto3.CancelRequest{ProcessID: conn.PgConn().PID(), SecretKey: []byte{0, 0, 0, 0}}).Encode(nil)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		// The server closes a cancel connection without answering.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("read %d bytes, %v", n, err)
		}
		c.Close()
		if err := conn.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func waitStarted(t *testing.T, eng *testEngine) {
	t.Helper()
	select {
	case <-eng.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking statement did not start")
	}
}

// TestHangUpCancelsStatement checks that the reader notices a client that
// goes away while its statement runs, and cancels the statement.
func TestHangUpCancelsStatement(t *testing.T) {
	ts := startServer(t, Config{})
	fe, c := rawConnect(t, ts.addr)
	fe.Send(&pgproto3.Query{String: "SELECT sleep"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, ts.eng)
	c.Close()
	select {
	case err := <-ts.eng.returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("statement returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the statement was not cancelled after the client hung up")
	}
}

// rawConnect opens a connection and completes startup with pgproto3.
func rawConnect(t testing.TB, addr string) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "raw"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return fe, c
}

// TestConcurrentClients runs 50 clients at once.
func TestConcurrentClients(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, ts.dsn())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			for j := range 10 {
				var n int64
				var s string
				want := int64(i*100 + j)
				if err := conn.QueryRow(ctx, "SELECT $1::int8, $2::text", want, fmt.Sprint(want)).Scan(&n, &s); err != nil {
					errs <- err
					return
				}
				if n != want || s != fmt.Sprint(want) {
					errs <- fmt.Errorf("client %d: got %d %q, want %d", i, n, s, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ts.eng.sessions.Load(); n != clients {
		t.Errorf("%d sessions, want %d", n, clients)
	}
}

// TestMaxConns refuses the client beyond the limit with 53300 and admits
// one again once a slot is free.
func TestMaxConns(t *testing.T) {
	ts := startServer(t, Config{MaxConns: 2})
	ctx := testCtx(t)
	ts.connect(t, nil)
	second := ts.connect(t, nil)
	_, err := pgx.Connect(ctx, ts.dsn())
	if pe := pgErr(t, err); pe.Code != pgerrcode.TooManyConnections || pe.Severity != "FATAL" {
		t.Fatalf("got %s %s %q", pe.Severity, pe.Code, pe.Message)
	}
	second.Close(ctx)
	waitFor(t, 10*time.Second, func() error {
		conn, err := pgx.Connect(ctx, ts.dsn())
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

// TestMaxStatementBytes rejects a long statement with 54000 in both
// protocols; the connection goes on.
func TestMaxStatementBytes(t *testing.T) {
	ts := startServer(t, Config{MaxStatementBytes: 64})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	long := "SELECT '" + strings.Repeat("x", 100) + "'::text"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			_, err := conn.Exec(ctx, long, mode)
			if pe := pgErr(t, err); pe.Code != pgerrcode.ProgramLimitExceeded {
				t.Errorf("got %s %q", pe.Code, pe.Message)
			}
			if err := conn.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A message far over the limit ends the connection with FATAL 54000.
	_, err := conn.Exec(ctx, "SELECT '"+strings.Repeat("x", 1<<20)+"'::text", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(t, err); pe.Code != pgerrcode.ProgramLimitExceeded || pe.Severity != "FATAL" {
		t.Errorf("got %s %s %q", pe.Severity, pe.Code, pe.Message)
	}
}

// TestTransactionStatus follows BEGIN / error / ROLLBACK in
// ReadyForQuery, and refuses statements in a failed block with 25P02.
func TestTransactionStatus(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	for _, mode := range allExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			conn := ts.connect(t, nil)
			status := func(want byte) {
				t.Helper()
				if got := conn.PgConn().TxStatus(); got != want {
					t.Fatalf("status %c, want %c", got, want)
				}
			}
			exec := func(q string) error {
				_, err := conn.Exec(ctx, q, mode)
				return err
			}
			status('I')
			if err := exec("BEGIN"); err != nil {
				t.Fatal(err)
			}
			status('T')
			if err := exec("SELECT 1::int8"); err != nil {
				t.Fatal(err)
			}
			status('T')
			if err := exec("SELECT bad"); err == nil {
				t.Fatal("want an error")
			}
			status('E')
			if pe := pgErr(t, exec("SELECT 1::int8")); pe.Code != pgerrcode.InFailedSQLTransaction {
				t.Fatalf("got %s %q", pe.Code, pe.Message)
			}
			status('E')
			if err := exec("ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			status('I')
			if err := exec("START TRANSACTION"); err != nil {
				t.Fatal(err)
			}
			status('T')
			if err := exec("COMMIT"); err != nil {
				t.Fatal(err)
			}
			status('I')
		})
	}
}

// TestPgxTx runs pgx's own transaction helpers.
func TestPgxTx(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t, nil)
	ctx := testCtx(t)
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", "a")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("status %c", conn.PgConn().TxStatus())
	}
}

// TestStdlib goes through database/sql with pgx's driver.
func TestStdlib(t *testing.T) {
	ts := startServer(t, Config{})
	db, err := sql.Open("pgx", ts.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := testCtx(t)

	var (
		i int64
		f float64
		s string
		b bool
		n sql.NullInt64
	)
	if err := db.QueryRowContext(ctx, "SELECT $1::int8, $2::float8, $3::text, $4::bool, NULL::int8", 3, 2.5, "db", true).Scan(&i, &f, &s, &b, &n); err != nil {
		t.Fatal(err)
	}
	if i != 3 || f != 2.5 || s != "db" || !b || n.Valid {
		t.Errorf("got %v %v %q %v %v", i, f, s, b, n)
	}

	rows, err := db.QueryContext(ctx, "SELECT * FROM types")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for rows.Next() {
		var (
			i    sql.NullInt64
			f    sql.NullFloat64
			s    sql.NullString
			b    sql.NullBool
			ts1  sql.NullTime
			ts2  sql.NullTime
			want = typesRows[count]
		)
		if err := rows.Scan(&i, &f, &s, &b, &ts1, &ts2); err != nil {
			t.Fatal(err)
		}
		if want[0] != nil && (i.Int64 != want[0] || s.String != want[2] || b.Bool != want[3] || !ts2.Time.Equal(want[5].(time.Time))) {
			t.Errorf("row %d: got %v %v %v %v %v", count, i, s, b, ts1, ts2)
		}
		count++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if count != len(typesRows) {
		t.Errorf("got %d rows", count)
	}

	res, err := db.ExecContext(ctx, "INSERT INTO plays VALUES ($1, $2)", "u1", "x")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Errorf("rows affected %d, %v", n, err)
	}

	_, err = db.ExecContext(ctx, "SELECT bad")
	if pe := pgErr(t, err); pe.Code != pgerrcode.UndefinedColumn || pe.Position != 8 {
		t.Errorf("got %s at %d", pe.Code, pe.Position)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO plays VALUES ($1)", "u2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestPsql runs the real psql client: SSLRequest declined, simple
// protocol, text output, errors with SQLSTATE and a caret under the
// position.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("psql is not installed: %v", err)
		}
		t.Skipf("psql is not installed: %v", err)
	}
	ts := startServer(t, Config{})
	_, port, _ := net.SplitHostPort(ts.addr)
	run := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, psql, append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", port, "-U", "psqluser", "-d", "psqldb"}, args...)...)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGSSLMODE=prefer", "PGAPPNAME=psqltest")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	out, errOut, err := run("-A", "-t", "-F", "|", "-c", "SELECT * FROM types")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, errOut)
	}
	var want strings.Builder
	for _, row := range typesText {
		want.WriteString(strings.Join(row, "|") + "\n")
	}
	if out != want.String() {
		t.Errorf("psql output:\n%s\nwant:\n%s", out, want.String())
	}
	ts.eng.mu.Lock()
	if ts.eng.last != (testSessionInfo{"psqluser", "psqldb"}) {
		t.Errorf("session for %+v", ts.eng.last)
	}
	ts.eng.mu.Unlock()

	out, _, err = run("-c", "SELECT 1::int8 AS one")
	if err != nil || !strings.Contains(out, " one \n-----\n   1\n(1 row)") {
		t.Errorf("aligned output %q, %v", out, err)
	}

	_, errOut, err = run("-v", "VERBOSITY=verbose", "-c", "SELECT bad")
	if err == nil {
		t.Fatal("psql succeeded, want exit status 1")
	}
	for _, s := range []string{`ERROR:  42703: column "bad" does not exist`, "LINE 1: SELECT bad", "               ^"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr %q does not contain %q", errOut, s)
		}
	}

	out, errOut, err = run("-A", "-t", "-c", "BEGIN", "-c", "SELECT 2::int8", "-c", "COMMIT")
	if err != nil || out != "BEGIN\n2\nCOMMIT\n" {
		t.Errorf("psql: %q %q %v", out, errOut, err)
	}
}

// TestShutdown stops Serve while a client idles and another runs a
// statement: both get FATAL admin_shutdown (or see the connection close),
// and Serve returns nil after every connection goroutine ended.
func TestShutdown(t *testing.T) {
	eng := newTestEngine()
	srv := New(Config{Engine: eng, Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()

	idleFE, _ := rawConnect(t, ln.Addr().String())
	busyFE, _ := rawConnect(t, ln.Addr().String())
	busyFE.Send(&pgproto3.Query{String: "SELECT sleep"})
	if err := busyFE.Flush(); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, eng)
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	for name, fe := range map[string]*pgproto3.Frontend{"idle": idleFE, "busy": busyFE} {
		msg, err := fe.Receive()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != pgerrcode.AdminShutdown || e.Severity != "FATAL" {
			t.Errorf("%s: got %#v, want FATAL 57P01", name, msg)
		}
	}
	if o, c := eng.sessions.Load(), eng.closed.Load(); o != 2 || c != 2 {
		t.Errorf("%d sessions opened, %d closed", o, c)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts")
	}
}

// TestServeListenerError returns the listener's error.
func TestServeListenerError(t *testing.T) {
	srv := New(Config{Engine: newTestEngine(), Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := srv.Serve(context.Background(), ln); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve = %v, want net.ErrClosed", err)
	}
	if err := New(Config{}).Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve without an engine succeeded")
	}
}

// TestStartupRejections covers startup packets the server refuses.
func TestStartupRejections(t *testing.T) {
	ts := startServer(t, Config{})
	tests := []struct {
		name string
		raw  []byte
		code string
	}{
		{"no user", mustEncode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": "x"}}),
			pgerrcode.InvalidAuthorizationSpecification},
		{"protocol 2", []byte{0, 0, 0, 8, 0, 2, 0, 0}, pgerrcode.ProtocolViolation},
		{"short", []byte{0, 0, 0, 2}, pgerrcode.ProtocolViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			msg, err := pgproto3.NewFrontend(c, c).Receive()
			if err != nil {
				t.Fatal(err)
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != tc.code || e.Severity != "FATAL" {
				t.Fatalf("got %#v, want FATAL %s", msg, tc.code)
			}
		})
	}
}

// TestProtocol32 downgrades a client asking for protocol 3.2 to 3.0.
func TestProtocol32(t *testing.T) {
	ts := startServer(t, Config{})
	cfg := ts.connConfig(t)
	cfg.MaxProtocolVersion = "3.2"
	conn := ts.connect(t, cfg)
	if err := conn.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t testing.TB, msg interface{ Encode([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := msg.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
