package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPsqlBackslashCommands runs the real psql against sessionsql: its
// \d family sends PostgreSQL catalog queries that planner/pgcatalog.go
// answers. Every command must print its table and no error.
func TestPsqlBackslashCommands(t *testing.T) {
	psql, err := exec.LookPath("psql")
	needClient(t, "psql", "apt-get install postgresql-client", err == nil)
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)

	host, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	// run returns psql's stdout and stderr together (psql prints "Did not
	// find ..." to stderr) and whether it exited 0.
	run := func(cmds ...string) (string, bool) {
		t.Helper()
		args := []string{"-X", "-v", "ON_ERROR_STOP=1", "host=" + host + " port=" + port + " user=x dbname=x sslmode=disable"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		cmd := exec.Command(psql, args...)
		cmd.Env = append(os.Environ(), "PGPASSWORD=", "PGCONNECT_TIMEOUT=10")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); (err != nil && !exited) || strings.Contains(stderr.String(), "ERROR") {
			t.Fatalf("psql %q: %v\nstderr:\n%s\nstdout:\n%s", cmds, err, stderr.String(), stdout.String())
		}
		return stdout.String() + stderr.String(), err == nil
	}

	// Lines are compared with runs of blanks collapsed, so column widths
	// do not matter but the cells and their order do.
	norm := func(s string) string { return regexp.MustCompile(`[ \t]+`).ReplaceAllString(s, " ") }
	for _, tc := range []struct {
		cmd    string
		want   []string // lines of the normalized output
		not    []string // substrings that must be absent
		failed bool     // psql exits 1, as against PostgreSQL
	}{
		{cmd: `\d`, want: []string{
			" public | play_sessions | materialized view | sessionsql",
			" public | play_sessions_late | table | sessionsql",
			" public | plays | table | sessionsql",
			" public | plays_rejects | table | sessionsql",
			"(4 rows)",
		}},
		{cmd: `\dt`, want: []string{" public | plays | table | sessionsql", "(3 rows)"}, not: []string{"materialized view"}},
		{cmd: `\dm`, want: []string{" public | play_sessions | materialized view | sessionsql", "(1 row)"}},
		{cmd: `\dv`, want: []string{"Did not find any relations."}},
		{cmd: `\d play_sessions`, want: []string{
			` Materialized view "public.play_sessions"`,
			" user_id | bigint | | | ",
			" session_start | timestamp without time zone | | | ",
			" events | bigint | | | ",
			" avg_bytes | double precision | | | ",
			" is_final | boolean | | not null | ",
		}},
		{cmd: `\d plays`, want: []string{
			` Table "public.plays"`,
			" event_type | text | | | ",
			" ts | timestamp without time zone | | | ",
		}},
		{cmd: `\d+ play_sessions`, want: []string{"View definition:"}},
		{cmd: `\d plays_rejects`, want: []string{" reason | text | | not null | "}},
		{cmd: `\d nosuch`, want: []string{`Did not find any relation named "nosuch".`}, failed: true},
		{cmd: `\l`, want: []string{" x | sessionsql | UTF8 | C | C | | libc | ", "(1 row)"}},
		{cmd: `\dn`, want: []string{" public | sessionsql", "(1 row)"}},
		{cmd: `\dt+`, want: []string{" public | plays | table | sessionsql | permanent | | | source"}},
		{cmd: `\d+ plays`, want: []string{" event_type | text | | | | extended | | | "}},
		{cmd: `\d pl*`, want: []string{` Materialized view "public.play_sessions"`, ` Table "public.plays_rejects"`}},
		{cmd: `\d public.plays`, want: []string{` Table "public.plays"`}, not: []string{"plays_rejects"}},
		{cmd: `\dt nosuch.*`, want: []string{`Did not find any relation named "nosuch.*".`}},
		{cmd: `\conninfo`, want: []string{`You are connected to database "x" as user "x" on host "127.0.0.1" at port "` + port + `".`}},
	} {
		raw, ok := run(tc.cmd)
		if ok == tc.failed {
			t.Errorf("%s: psql exited 0 = %v, want %v:\n%s", tc.cmd, ok, !tc.failed, raw)
		}
		out := norm(raw)
		lines := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			lines[l] = true
		}
		for _, w := range tc.want {
			if !lines[w] {
				t.Errorf("%s: no line %q in:\n%s", tc.cmd, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("%s: %q in:\n%s", tc.cmd, n, out)
			}
		}
	}
}

// TestPsqlTabCompletion types into the real psql, on a terminal that
// util-linux's script(1) provides, and presses TAB: psql completes from
// the catalog queries planner/pgcatalog.go answers (relation names after
// FROM and \d, column names after WHERE, schema names). A completion
// query that failed would complete nothing.
func TestPsqlTabCompletion(t *testing.T) {
	psql, err := exec.LookPath("psql")
	needClient(t, "psql", "apt-get install postgresql-client", err == nil)
	script, err := exec.LookPath("script")
	needClient(t, "script(1)", "apt-get install util-linux", err == nil)
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	host, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}

	conninfo := "host=" + host + " port=" + port + " user=x dbname=x sslmode=disable"
	cmd := exec.Command(script, "-q", "-e", "-c", psql+" -X -P pager=off '"+conninfo+"'", "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=dumb", "PGPASSWORD=", "PGCONNECT_TIMEOUT=10")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Write([]byte("\x03\x04")) // clear the line, then end psql's input
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// waitFor waits until psql has printed want after byte from of its
	// output, and returns the output's length then.
	waitFor := func(from int, want, what string) int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := out.String()
			// psql rings the bell (\a) when it completes only a common
			// prefix.
			if strings.Contains(strings.ReplaceAll(s[min(from, len(s)):], "\a", ""), want) {
				return len(s)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: psql printed no %q; it printed:\n%q", what, want, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	at := waitFor(0, "x=", "prompt")
	for _, tc := range []struct {
		typed string // typed before TAB
		want  string // what psql shows after TAB
	}{
		{"SELECT * FROM plays_r", "plays_rejects"},
		{`\d play_sessions_l`, "play_sessions_late"},
		{"SELECT * FROM plays WHERE event_t", "event_type"},
		{"SELECT * FROM pu", "public."},
		{"SELECT * FROM public.play_s", "play_sessions"},
		{"SET search_path TO pu", "public"},
	} {
		from := len(out.String())
		if _, err := stdin.Write([]byte(tc.typed + "\t")); err != nil {
			t.Fatal(err)
		}
		at = waitFor(from, tc.want, tc.typed+"<TAB>")
		// Ctrl-C abandons the line; psql prints a new prompt.
		if _, err := stdin.Write([]byte("\x03")); err != nil {
			t.Fatal(err)
		}
		at = waitFor(at, "x=", "prompt after "+tc.typed)
	}
}

// lockedBuffer is a bytes.Buffer that a process writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPostgresCasts sends PostgreSQL's expr::type casts, as drivers and
// people write them, through pgx (extended protocol) and psql (simple
// protocol).
func TestPostgresCasts(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	ctx := context.Background()

	// The parameter takes the cast's type, so pgx's default mode (which
	// encodes by the type the server describes) sends a Go int64.
	var n int64
	if err := conn.QueryRow(ctx, "SELECT $1::bigint", int64(42)).Scan(&n); err != nil || n != 42 {
		t.Errorf("SELECT $1::bigint: %d, %v", n, err)
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT (1 + 2)::text || 'x'").Scan(&s); err != nil || s != "3x" {
		t.Errorf("SELECT (1 + 2)::text || 'x': %q, %v", s, err)
	}
	var tm time.Time
	if err := conn.QueryRow(ctx, "SELECT '2024-01-01 10:00'::timestamp").Scan(&tm); err != nil || !tm.Equal(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("SELECT '2024-01-01 10:00'::timestamp: %v, %v", tm, err)
	}
	var count int64
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM play_sessions WHERE session_start > '2024-01-01'::timestamp AND events::float8 > $1::int", 0).Scan(&count); err != nil || count != 0 {
		t.Errorf("SELECT COUNT(*) FROM play_sessions WHERE ...::timestamp: %d, %v", count, err)
	}
	if err := conn.QueryRow(ctx, "SELECT 7::pg_catalog.int4", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 7 {
		t.Errorf("SELECT 7::pg_catalog.int4 (simple protocol): %d, %v", n, err)
	}
	_, err := conn.Exec(ctx, "SELECT 1::nosuch")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" || pgErr.Position != 11 {
		t.Errorf("SELECT 1::nosuch: %v, want 42704 at 11", err)
	}
}
