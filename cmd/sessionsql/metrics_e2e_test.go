package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionsql/sessionsql/exec/source"
)

// TestMetricsEndpoint scrapes /metrics of a running server while events
// flow and at the end: the counters equal what was published.
func TestMetricsEndpoint(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	var payloads [][]byte
	const good, bad = 3000, 7
	for i := range good {
		u := int64(i % 50)
		payloads = append(payloads, event{user: &u, typ: "play", title: 1, ts: 1_700_000_000_000 + int64(i)*1000}.json())
	}
	for range bad {
		payloads = append(payloads, []byte(`{broken`))
	}
	if err := source.Publish(ctx, ts.jetstream(t), "plays.web", payloads); err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		resp, err := http.Get("http://" + ts.metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	if m := scrape(); !strings.Contains(m, `sessionsql_view_state{source="plays",state="running",view="play_sessions"} 1`) {
		t.Fatalf("scrape during the run lacks the running view:\n%s", grep(m, "sessionsql_view_state"))
	}
	waitPosition(t, conn, "play_sessions", good+bad)
	want := []string{
		fmt.Sprintf(`sessionsql_source_events_total{source="plays"} %d`, good),
		fmt.Sprintf(`sessionsql_source_rejects_total{source="plays"} %d`, bad),
		fmt.Sprintf(`sessionsql_view_events_total{source="plays",view="play_sessions"} %d`, good),
		// The newest event time minus the source's 5 s bound.
		fmt.Sprintf(`sessionsql_view_watermark_seconds{source="plays",view="play_sessions"} %s`,
			strconv.FormatFloat(float64(1_700_000_000_000+(good-1)*1000-5000)/1000, 'g', -1, 64)),
	}
	checkFor(t, 10*time.Second, func() error {
		m := scrape()
		for _, w := range want {
			if !strings.Contains(m, w+"\n") {
				return fmt.Errorf("metrics lack %q:\n%s", w, grep(m, "sessionsql_"))
			}
		}
		return nil
	})
}

// TestExplainAnalyze: EXPLAIN ANALYZE of a running view shows each
// operator with the rows that reached it.
func TestExplainAnalyze(t *testing.T) {
	ts := startServe(t, t.TempDir(), "")
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	var payloads [][]byte
	const plays, heartbeats = 2000, 500
	for i := range plays + heartbeats {
		u := int64(i % 40)
		typ := "play"
		if i >= plays {
			typ = "heartbeat"
		}
		payloads = append(payloads, event{user: &u, typ: typ, title: 1, ts: 1_700_000_000_000 + int64(i)*1000}.json())
	}
	if err := source.Publish(ctx, ts.jetstream(t), "plays.web", payloads); err != nil {
		t.Fatal(err)
	}
	waitPosition(t, conn, "play_sessions", plays+heartbeats)
	rows, err := conn.Query(ctx, "EXPLAIN ANALYZE play_sessions")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	t.Logf("\n%s", text)
	// Every event reaches the watermark and the filter; the heartbeats
	// stop there.
	for _, want := range []string{
		fmt.Sprintf("Watermark ts - 5s  (rows=%d ", plays+heartbeats),
		fmt.Sprintf("Filter (event_type <> 'heartbeat')  (rows=%d ", plays+heartbeats),
		fmt.Sprintf("keys=[user_id] aggs=[count(*), sum(bytes), min(title_id), avg(bytes)] emit=final  (rows=%d ", plays),
		"Source plays: 2500 events",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("EXPLAIN ANALYZE lacks %q:\n%s", want, text)
		}
	}
	if _, err := conn.Exec(ctx, "EXPLAIN ANALYZE nosuch"); err == nil || !strings.Contains(err.Error(), "42P01") {
		t.Errorf("EXPLAIN ANALYZE of a missing view: %v", err)
	}
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
