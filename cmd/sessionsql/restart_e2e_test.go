package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessionsql/sessionsql/exec/source"
)

// TestLiveTablesSurviveRestart: without a sink database, results live in
// memory only; a restart restores them, with the dead letters of
// plays_rejects and play_sessions_late, from the checkpoints in JetStream,
// once each, and the view goes on from where it was (no replay from the
// stream's start: its event count carries on).
func TestLiveTablesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServe(t, dir, "")
	conn := ts.connect(t)
	ctx := context.Background()
	mustExec(t, conn, createPlays)
	mustExec(t, conn, createSessions)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	ev := func(user, minute int64) []byte {
		return event{user: ptr(user), typ: "play", ts: t0 + minute*60_000, bytes: ptr(10)}.json()
	}
	// User 5's first session closes (the watermark passes it at minute
	// 200); then a bad message, an event too late for it, and user 6's
	// open session.
	msgs := [][]byte{ev(5, 0), ev(5, 10), ev(6, 200), []byte(`{"user_id": 5, "ts": "yesterday"}`), ev(5, 5), ev(6, 201)}
	js := ts.jetstream(t)
	for _, part := range [][2]int{{0, 4}, {4, len(msgs)}} { // the watermark moves between the two
		if err := source.Publish(ctx, js, "plays.x", msgs[part[0]:part[1]]); err != nil {
			t.Fatal(err)
		}
		waitPosition(t, conn, "play_sessions", int64(part[1]))
	}
	type counts struct{ final, open, rejects, late, events int64 }
	read := func(ts *testServer) counts {
		c := ts.connect(t)
		var n counts
		for q, dst := range map[string]*int64{
			`SELECT count(*) FROM play_sessions WHERE is_final AND user_id = 5 AND events = 2`: &n.final,
			`SELECT count(*) FROM play_sessions WHERE user_id = 6`:                             &n.open,
			`SELECT count(*) FROM plays_rejects WHERE seq = 4`:                                 &n.rejects,
			`SELECT count(*) FROM play_sessions_late WHERE seq = 5`:                            &n.late,
		} {
			if err := c.QueryRow(ctx, q).Scan(dst); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		n.events = readView(t, c, "play_sessions").events
		return n
	}
	before := read(ts)
	if before != (counts{final: 1, rejects: 1, late: 1, events: 5}) {
		t.Fatalf("before the restart: %+v", before)
	}
	// Let a checkpoint cover everything, then restart.
	checkFor(t, 10*time.Second, func() error {
		if v := readView(t, conn, "play_sessions"); v.committed < int64(len(msgs)) {
			return fmt.Errorf("committed position %d, want %d", v.committed, len(msgs))
		}
		return nil
	})
	ts.stop()
	ts2 := startServe(t, dir, "")
	after := read(ts2)
	if after != before {
		t.Fatalf("after the restart %+v, before %+v", after, before)
	}
	// The view carries on: user 6's session closes with the rest.
	if err := source.Publish(ctx, ts2.jetstream(t), "plays.x", [][]byte{ev(7, 400)}); err != nil {
		t.Fatal(err)
	}
	conn2 := ts2.connect(t)
	waitPosition(t, conn2, "play_sessions", int64(len(msgs))+1)
	var n int64
	if err := conn2.QueryRow(ctx, `SELECT count(*) FROM play_sessions WHERE is_final AND user_id = 6 AND events = 2`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("user 6's session after the restart: %d final rows, %v", n, err)
	}
}
