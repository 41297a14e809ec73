package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests in this file run real PostgreSQL client libraries (JDBC,
// psycopg2, node-postgres) against a fresh sessionsql server. Each client
// creates a source and a SESSION view, publishes events with INSERT (its
// own parameter and protocol style), then polls the view until the closed
// sessions appear and prints them; the Go side checks the printed rows
// against sessions computed here from the same events.
//
// The client programs read their work from environment variables:
//   SSQL_HOST, SSQL_PORT    the wire address
//   SSQL_EVENTS             a file, one event per line: user, event_type,
//                           title_id, bytes (empty: NULL), ts
//                           ("2006-01-02 15:04:05.000", UTC), tab separated
//   SSQL_ROWS               how many rows the view must reach
//   SSQL_SOURCE, SSQL_VIEW  the DDL (driverSource, driverView)
//   SSQL_QUERY              the polling query (driverQuery)
// and print one line per view row: "ROW" and the columns, tab separated,
// NULL for a NULL, then "DONE". Other lines (a client's metadata calls)
// are for the test that runs it to check. Errors go to stderr with exit
// status 1.

const driverSource = `CREATE SOURCE plays (user_id BIGINT, event_type VARCHAR, title_id BIGINT, bytes BIGINT, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'PLAYS', subjects = 'plays.>', format = 'json')`

const driverView = `CREATE MATERIALIZED VIEW play_sessions AS
  SELECT user_id, WINDOW_START() AS session_start, WINDOW_END() AS session_end,
         COUNT(*) AS events, SUM(bytes) AS bytes
  FROM plays WHERE event_type <> 'heartbeat'
  GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`

const driverQuery = `SELECT user_id, session_start, session_end, events, bytes, is_final FROM play_sessions ORDER BY user_id, session_start`

// flushUser is the key of the far-ahead event that closes every session;
// its own session stays open, so it never has a row.
const flushUser = -1

type driverEvent struct {
	user  int64
	typ   string
	title int64
	bytes *int64 // nil: NULL
	ts    time.Time
}

type sessionRow struct {
	user       int64
	start, end time.Time
	events     int64
	bytes      *int64
}

func (r sessionRow) String() string {
	b := "NULL"
	if r.bytes != nil {
		b = strconv.FormatInt(*r.bytes, 10)
	}
	return fmt.Sprintf("user=%d start=%s end=%s events=%d bytes=%s", r.user,
		r.start.Format(time.RFC3339Nano), r.end.Format(time.RFC3339Nano), r.events, b)
}

// driverEvents is the workload: three users with gaps of exactly the
// session gap (same session), one millisecond more (new session), a
// duplicate timestamp, NULL bytes (skipped by SUM; a session of only NULLs
// sums to NULL), millisecond timestamps, and heartbeats the view filters
// out; then the far-ahead flush event. Sorted by time, so nothing is late.
func driverEvents() []driverEvent {
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	ms := func(d int64) time.Time { return base.Add(time.Duration(d) * time.Millisecond) }
	n := func(v int64) *int64 { return &v }
	const gap = 30 * 60 * 1000
	evs := []driverEvent{
		{1, "play", 10, n(100), ms(0)},
		{1, "play", 11, n(250), ms(60_123)},
		{1, "heartbeat", 0, n(99_999), ms(70_000)},
		{1, "play", 12, nil, ms(60_123 + gap)},            // exactly the gap: same session
		{1, "play", 13, n(7), ms(60_123 + 2*gap + 1)},     // one ms more: new session
		{1, "play", 13, n(8), ms(60_123 + 2*gap + 1)},     // same timestamp
		{2, "play", 20, n(1_000_000_000_000), ms(5_500)},  // large value
		{2, "play", 21, n(-3), ms(5_500 + 10*60_000 + 9)}, // negative value
		{2, "heartbeat", 0, n(1), ms(5_500 + 50*60_000)},
		{2, "play", 22, n(40), ms(5_500 + 10*60_000 + 9 + gap + 999)},
		{3, "play", 30, nil, ms(30_000)}, // only NULLs: SUM is NULL
		{3, "play", 31, nil, ms(31_001)},
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts.Before(evs[j].ts) })
	last := evs[len(evs)-1].ts
	return append(evs, driverEvent{flushUser, "play", 0, n(0), last.Add(24 * time.Hour)})
}

// expectedSessions computes the closed sessions of evs, ordered by user
// and start: a key's consecutive events share a session when their times
// differ by at most 30 minutes.
func expectedSessions(evs []driverEvent) []sessionRow {
	const gap = 30 * time.Minute
	byUser := map[int64][]driverEvent{}
	for _, e := range evs {
		if e.typ == "heartbeat" || e.user == flushUser {
			continue
		}
		byUser[e.user] = append(byUser[e.user], e)
	}
	var rows []sessionRow
	for user, es := range byUser {
		sort.SliceStable(es, func(i, j int) bool { return es[i].ts.Before(es[j].ts) })
		var cur *sessionRow
		var last time.Time
		for _, e := range es {
			if cur == nil || e.ts.Sub(last) > gap {
				if cur != nil {
					cur.end = last.Add(gap)
					rows = append(rows, *cur)
				}
				cur = &sessionRow{user: user, start: e.ts}
			}
			cur.events++
			if e.bytes != nil {
				s := *e.bytes
				if cur.bytes != nil {
					s += *cur.bytes
				}
				cur.bytes = &s
			}
			last = e.ts
		}
		cur.end = last.Add(gap)
		rows = append(rows, *cur)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].user != rows[j].user {
			return rows[i].user < rows[j].user
		}
		return rows[i].start.Before(rows[j].start)
	})
	return rows
}

// writeEvents writes evs in the SSQL_EVENTS format.
func writeEvents(t *testing.T, evs []driverEvent) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		bs := ""
		if e.bytes != nil {
			bs = strconv.FormatInt(*e.bytes, 10)
		}
		fmt.Fprintf(&b, "%d\t%s\t%d\t%s\t%s\n", e.user, e.typ, e.title, bs, e.ts.UTC().Format("2006-01-02 15:04:05.000"))
	}
	path := filepath.Join(t.TempDir(), "events.tsv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseClientTime reads a timestamp as a client printed it: the server's
// text form, or the client's rendering of its own timestamp type.
func parseClientTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano} {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q in no known form", s)
}

// parseClientRows reads the ROW lines of a client's output.
func parseClientRows(out string) ([]sessionRow, error) {
	var rows []sessionRow
	done := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "DONE" {
			done = true
			continue
		}
		if !strings.HasPrefix(line, "ROW\t") {
			continue
		}
		f := strings.Split(line, "\t")[1:]
		if len(f) != 6 {
			return nil, fmt.Errorf("row %q: %d columns, want 6", line, len(f))
		}
		var r sessionRow
		var err error
		if r.user, err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return nil, fmt.Errorf("row %q: user_id: %v", line, err)
		}
		if r.start, err = parseClientTime(f[1]); err != nil {
			return nil, fmt.Errorf("row %q: session_start: %v", line, err)
		}
		if r.end, err = parseClientTime(f[2]); err != nil {
			return nil, fmt.Errorf("row %q: session_end: %v", line, err)
		}
		if r.events, err = strconv.ParseInt(f[3], 10, 64); err != nil {
			return nil, fmt.Errorf("row %q: events: %v", line, err)
		}
		if f[4] != "NULL" {
			v, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("row %q: bytes: %v", line, err)
			}
			r.bytes = &v
		}
		switch strings.ToLower(f[5]) {
		case "true", "t":
		default:
			return nil, fmt.Errorf("row %q: is_final is %q, want true", line, f[5])
		}
		rows = append(rows, r)
	}
	if !done {
		return nil, fmt.Errorf("no DONE line: the client did not finish")
	}
	return rows, nil
}

// runDriverClient starts a fresh server, runs the client command (argv)
// with the SSQL_* environment, checks the rows it prints and returns its
// output.
func runDriverClient(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	ts := startServe(t, t.TempDir(), "")
	host, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	evs := driverEvents()
	want := expectedSessions(evs)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...),
		"SSQL_HOST="+host, "SSQL_PORT="+port,
		"SSQL_EVENTS="+writeEvents(t, evs), "SSQL_ROWS="+strconv.Itoa(len(want)),
		"SSQL_SOURCE="+driverSource, "SSQL_VIEW="+driverView, "SSQL_QUERY="+driverQuery)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("%s ran in %s", filepath.Base(argv[0]), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%q: %v\nstderr:\n%s\nstdout:\n%s", argv, err, stderr.String(), stdout.String())
	}
	got, err := parseClientRows(stdout.String())
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		if g != w {
			t.Errorf("row %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	return stdout.String()
}

// needClient finds a client's file or skips (fails under CI=true).
func needClient(t *testing.T, what, install string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must provide it (%s; .ci/run does)", what, install)
	}
	t.Skipf("%s is not installed (%s)", what, install)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

const psycopgClient = `import os, sys, time, datetime
import psycopg2

conn = psycopg2.connect(host=os.environ["SSQL_HOST"], port=os.environ["SSQL_PORT"], user="tester",
                        dbname="sessionsql", sslmode="disable", connect_timeout=10)
# DDL and the INSERTs in autocommit mode.
conn.autocommit = True
cur = conn.cursor()
cur.execute(os.environ["SSQL_SOURCE"])
cur.execute(os.environ["SSQL_VIEW"])
with open(os.environ["SSQL_EVENTS"]) as f:
    for line in f:
        user, typ, title, nbytes, ts = line.rstrip("\n").split("\t")
        # The timestamp goes as a string: psycopg2 renders a datetime as
        # '...'::timestamp, and sessionsql's INSERT does not take :: casts.
        cur.execute("INSERT INTO plays VALUES (%s, %s, %s, %s, %s)",
                    (int(user), typ, int(title), int(nbytes) if nbytes else None, ts))
        if cur.rowcount != 1:
            sys.exit("INSERT: rowcount %r, want 1" % cur.rowcount)
cur.close()

# The polling query in psycopg2's default transaction mode (BEGIN first).
conn.autocommit = False
want = int(os.environ["SSQL_ROWS"])
deadline = time.time() + 60
while True:
    with conn.cursor() as cur:
        cur.execute(os.environ["SSQL_QUERY"])
        rows = cur.fetchall()
    conn.commit()
    if len(rows) >= want or time.time() > deadline:
        break
    time.sleep(0.1)

def cell(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        return v.isoformat(sep=" ")
    return str(v)

for r in rows:
    print("\t".join(["ROW"] + [cell(v) for v in r]))

# information_schema, as ORMs and BI tools read it (psycopg2 interpolates
# the parameters into the text).
with conn.cursor() as cur:
    cur.execute("SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", ("public", "play_sessions"))
    print("\t".join(["DESCRIPTION"] + [d.name for d in cur.description]))
    for name, typ in cur.fetchall():
        print("COLUMN\t%s\t%s" % (name, typ))
conn.commit()
print("DONE")
conn.close()
if len(rows) < want:
    sys.exit("timed out: %d rows, want %d" % (len(rows), want))
`

// psycopgColumns is what the psycopg2 client prints of
// information_schema.columns for driverView.
var psycopgColumns = []string{
	"DESCRIPTION\tcolumn_name\tdata_type",
	"COLUMN\tuser_id\tbigint",
	"COLUMN\tsession_start\ttimestamp without time zone",
	"COLUMN\tsession_end\ttimestamp without time zone",
	"COLUMN\tevents\tbigint",
	"COLUMN\tbytes\tbigint",
	"COLUMN\tis_final\tboolean",
	"COLUMN\temitted_at\ttimestamp with time zone",
}

// metadataLines returns a client's output lines other than its rows.
func metadataLines(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if k, _, ok := strings.Cut(line, "\t"); ok && k != "ROW" {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestPsycopgSessions runs psycopg2 (Debian's python3-psycopg2, with the
// system /usr/bin/python3).
func TestPsycopgSessions(t *testing.T) {
	const python = "/usr/bin/python3"
	ok := fileExists(python) && exec.Command(python, "-c", "import psycopg2").Run() == nil
	needClient(t, "psycopg2 for "+python, "apt-get install python3-psycopg2", ok)
	dir := t.TempDir()
	script := filepath.Join(dir, "client.py")
	if err := os.WriteFile(script, []byte(psycopgClient), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runDriverClient(t, dir, nil, python, script)
	if got := metadataLines(out); strings.Join(got, "\n") != strings.Join(psycopgColumns, "\n") {
		t.Errorf("information_schema.columns:\n got %q\nwant %q", got, psycopgColumns)
	}
}

const nodePGClient = `const fs = require("fs");
const { Client, types } = require("pg");

// Timestamps and bigints as the server's text, not Date and Number.
types.setTypeParser(1114, (v) => v);
types.setTypeParser(20, (v) => v);

async function main() {
  const client = new Client({ host: process.env.SSQL_HOST, port: Number(process.env.SSQL_PORT),
    user: "tester", database: "sessionsql", ssl: false, connectionTimeoutMillis: 10000 });
  await client.connect();
  // DDL: the simple query protocol (no parameters).
  await client.query(process.env.SSQL_SOURCE);
  await client.query(process.env.SSQL_VIEW);
  // INSERT: the extended protocol, with $n parameters (sent as text, type unspecified).
  for (const line of fs.readFileSync(process.env.SSQL_EVENTS, "utf8").split("\n")) {
    if (line === "") continue;
    const [user, typ, title, bytes, ts] = line.split("\t");
    const res = await client.query("INSERT INTO plays VALUES ($1, $2, $3, $4, $5)",
      [Number(user), typ, Number(title), bytes === "" ? null : bytes, ts]);
    if (res.rowCount !== 1) throw new Error("INSERT: rowCount " + res.rowCount + ", want 1");
  }
  // The polling query: extended protocol, no parameters, array rows.
  const want = Number(process.env.SSQL_ROWS);
  const deadline = Date.now() + 60000;
  let rows;
  for (;;) {
    const res = await client.query({ text: process.env.SSQL_QUERY, queryMode: "extended", rowMode: "array" });
    rows = res.rows;
    if (rows.length >= want || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const r of rows) {
    console.log(["ROW", ...r.map((v) => (v === null ? "NULL" : String(v)))].join("\t"));
  }
  console.log("DONE");
  await client.end();
  if (rows.length < want) throw new Error("timed out: " + rows.length + " rows, want " + want);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
`

// nodePGDir is where node-postgres is installed (npm install pg), once
// per machine; .ci/run installs it there.
func nodePGDir() string {
	if d := os.Getenv("SESSIONSQL_NODE_PG"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "sessionsql-node-pg")
}

// TestNodePGSessions runs node-postgres (the npm package pg) with node.
func TestNodePGSessions(t *testing.T) {
	dir := nodePGDir()
	node, err := exec.LookPath("node")
	needClient(t, "node", "apt-get install nodejs", err == nil)
	needClient(t, "node-postgres in "+dir, "npm install --prefix "+dir+" pg", fileExists(filepath.Join(dir, "node_modules", "pg", "package.json")))
	work := t.TempDir()
	script := filepath.Join(work, "client.js")
	if err := os.WriteFile(script, []byte(nodePGClient), 0o644); err != nil {
		t.Fatal(err)
	}
	runDriverClient(t, work, []string{"NODE_PATH=" + filepath.Join(dir, "node_modules")}, node, script)
}

const jdbcClient = `import java.nio.file.*;
import java.sql.*;
import java.util.*;

public class Main {
    public static void main(String[] args) throws Exception {
        // The driver's defaults: setString declares varchar (1043) in
        // Parse, and the server must echo it in ParameterDescription.
        String url = "jdbc:postgresql://" + System.getenv("SSQL_HOST") + ":" + System.getenv("SSQL_PORT")
            + "/sessionsql?user=tester&sslmode=disable&connectTimeout=10";
        try (Connection conn = DriverManager.getConnection(url)) {
            // DDL: a plain Statement.
            try (Statement st = conn.createStatement()) {
                st.execute(System.getenv("SSQL_SOURCE"));
                st.execute(System.getenv("SSQL_VIEW"));
            }
            // INSERT: a PreparedStatement with parameters; after
            // prepareThreshold (5) executions the driver switches to a
            // named server-side statement.
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO plays VALUES (?, ?, ?, ?, ?)")) {
                for (String line : Files.readAllLines(Paths.get(System.getenv("SSQL_EVENTS")))) {
                    if (line.isEmpty()) continue;
                    String[] f = line.split("\t", -1);
                    ps.setLong(1, Long.parseLong(f[0]));
                    ps.setString(2, f[1]);
                    ps.setLong(3, Long.parseLong(f[2]));
                    if (f[3].isEmpty()) ps.setNull(4, Types.BIGINT); else ps.setLong(4, Long.parseLong(f[3]));
                    ps.setTimestamp(5, Timestamp.valueOf(f[4]));
                    int n = ps.executeUpdate();
                    if (n != 1) throw new IllegalStateException("INSERT: update count " + n + ", want 1");
                }
            }
            int want = Integer.parseInt(System.getenv("SSQL_ROWS"));
            long deadline = System.currentTimeMillis() + 60000;
            List<String> rows;
            for (;;) {
                rows = new ArrayList<>();
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(System.getenv("SSQL_QUERY"))) {
                    int cols = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        StringBuilder b = new StringBuilder("ROW");
                        for (int i = 1; i <= cols; i++) {
                            String v = rs.getString(i);
                            b.append('\t').append(v == null ? "NULL" : v);
                        }
                        rows.add(b.toString());
                    }
                }
                if (rows.size() >= want || System.currentTimeMillis() > deadline) break;
                Thread.sleep(100);
            }
            for (String r : rows) System.out.println(r);
            // DatabaseMetaData, as tools (DBeaver, Metabase, ...) call it;
            // the driver builds getColumns' result set itself from the
            // catalog rows it reads, so each column's type OID must be right.
            DatabaseMetaData md = conn.getMetaData();
            try (ResultSet rs = md.getTables(null, "public", "%", null)) {
                while (rs.next()) System.out.println("TABLE\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("TABLE_TYPE"));
            }
            try (ResultSet rs = md.getTables(null, "public", "play%", new String[]{"MATERIALIZED VIEW"})) {
                while (rs.next()) System.out.println("MATVIEW\t" + rs.getString("TABLE_NAME"));
            }
            try (ResultSet rs = md.getColumns(null, "public", "play_sessions", "%")) {
                while (rs.next()) System.out.println("COLUMN\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getInt("DATA_TYPE")
                    + "\t" + rs.getString("TYPE_NAME") + "\t" + rs.getInt("NULLABLE") + "\t" + rs.getInt("ORDINAL_POSITION"));
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "play_sessions")) {
                while (rs.next()) System.out.println("PK\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getInt("KEY_SEQ") + "\t" + rs.getString("PK_NAME"));
            }
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) System.out.println("SCHEMA\t" + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getCatalogs()) {
                while (rs.next()) System.out.println("CATALOG\t" + rs.getString("TABLE_CAT"));
            }
            System.out.println("DONE");
            if (rows.size() < want) throw new IllegalStateException("timed out: " + rows.size() + " rows, want " + want);
        }
    }
}
`

// jdbcMetadata is what the JDBC client prints of DatabaseMetaData for
// driverSource and driverView. getTables orders by type, then name; the
// view's result table adds is_final and emitted_at (NOT NULL: NULLABLE 0)
// and is keyed by the group key and the window start. DATA_TYPE is
// java.sql.Types: BIGINT -5, TIMESTAMP 93, BIT -7 (pgjdbc's boolean).
var jdbcMetadata = []string{
	"TABLE\tplay_sessions\tMATERIALIZED VIEW",
	"TABLE\tplay_sessions_late\tTABLE",
	"TABLE\tplays\tTABLE",
	"TABLE\tplays_rejects\tTABLE",
	"MATVIEW\tplay_sessions",
	"COLUMN\tuser_id\t-5\tint8\t1\t1",
	"COLUMN\tsession_start\t93\ttimestamp\t1\t2",
	"COLUMN\tsession_end\t93\ttimestamp\t1\t3",
	"COLUMN\tevents\t-5\tint8\t1\t4",
	"COLUMN\tbytes\t-5\tint8\t1\t5",
	"COLUMN\tis_final\t-7\tbool\t0\t6",
	"COLUMN\temitted_at\t93\ttimestamptz\t0\t7",
	"PK\tuser_id\t1\tplay_sessions_pkey",
	"PK\tsession_start\t2\tplay_sessions_pkey",
	"SCHEMA\tpublic",
	"CATALOG\tsessionsql",
}

// TestJDBCSessions runs the PostgreSQL JDBC driver (Debian's
// libpostgresql-jdbc-java) with a single-file Java program.
func TestJDBCSessions(t *testing.T) {
	const jar = "/usr/share/java/postgresql.jar"
	java, err := exec.LookPath("java")
	needClient(t, "java", "apt-get install openjdk-17-jdk-headless", err == nil)
	needClient(t, "the PostgreSQL JDBC driver "+jar, "apt-get install libpostgresql-jdbc-java", fileExists(jar))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Main.java"), []byte(jdbcClient), 0o644); err != nil {
		t.Fatal(err)
	}
	// A JVM zone other than UTC: setTimestamp sends the wall-clock time
	// with the JVM's offset, which a TIMESTAMP column must ignore.
	out := runDriverClient(t, dir, []string{"TZ=America/New_York"}, java, "-Duser.timezone=America/New_York", "-cp", jar, "Main.java")
	if got := metadataLines(out); strings.Join(got, "\n") != strings.Join(jdbcMetadata, "\n") {
		t.Errorf("DatabaseMetaData:\n got %q\nwant %q", got, jdbcMetadata)
	}
}
