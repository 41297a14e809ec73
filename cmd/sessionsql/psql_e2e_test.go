package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestPsqlBackslashCommands runs the real psql against sessionsql: its
// \d family sends PostgreSQL catalog queries that planner/pgcatalog.go
// answers. Every command must print its table and no error.
func TestPsqlBackslashCommands(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("psql is not installed; CI must provide it (apt-get install postgresql-client)")
		}
		t.Skip("psql is not installed")
	}
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
