package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec/sink/pgtest"
)

// recoveryEnv turns on TestRecoveryTime: it is a measurement (a minute or
// two, a few GB of memory), not a check the suite needs every time.
const recoveryEnv = "SESSIONSQL_RECOVERY_SESSIONS"

// TestRecoveryTime measures what issue 6 asks of a restart with many open
// sessions: the built binary, with PostgreSQL, holds N open sessions (one
// event each for N users, $SESSIONSQL_RECOVERY_SESSIONS, e.g. 1000000),
// checkpoints them, is killed with SIGKILL and restarted. It logs the
// checkpoint's size and the time to take it, and the time from the restart
// until the view runs again with every session restored. Run it with
//
//	SESSIONSQL_RECOVERY_SESSIONS=1000000 go test ./cmd/sessionsql -run TestRecoveryTime -v
func TestRecoveryTime(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv(recoveryEnv), &n); err != nil || n <= 0 {
		t.Skipf("set $%s to the number of open sessions to measure", recoveryEnv)
	}
	dsn := pgtest.DSN(t)
	bin := buildBinary(t)
	proc := newServeProc(t, "recovery", bin, t.TempDir(), dsn, []string{"--metrics-listen", "", "--checkpoint-interval", "10s", "--log-level", "info"})
	proc.start()
	ctx := context.Background()
	conn := proc.connect()
	mustExec(t, conn, `CREATE SOURCE plays (user_id BIGINT, bytes BIGINT, ts TIMESTAMP,
	  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (stream = 'PLAYS', subjects = 'plays.>', format = 'ndjson')`)
	mustExec(t, conn, `CREATE MATERIALIZED VIEW play_sessions AS
	  SELECT user_id, COUNT(*) AS events, SUM(bytes) AS bytes, COUNT(DISTINCT bytes) AS sizes
	  FROM plays GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`)

	nc, err := nats.Connect(proc.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 events per message; all within one second of event time, so
	// every session stays open.
	const perMsg = 1000
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var msgs int64
	var b strings.Builder
	for u := range n {
		fmt.Fprintf(&b, `{"user_id":%d,"bytes":%d,"ts":%d}`+"\n", u, u%100, t0+int64(u%1000))
		if (u+1)%perMsg == 0 || u == n-1 {
			if _, err := js.Publish(ctx, "plays.x", []byte(b.String())); err != nil {
				t.Fatal(err)
			}
			b.Reset()
			msgs++
		}
	}
	var v viewStatus
	checkFor(t, 5*time.Minute, func() error {
		v = readView(t, conn, "play_sessions")
		if v.committed < msgs {
			return fmt.Errorf("view at %d, committed %d of %d messages", v.pos, v.committed, msgs)
		}
		return nil
	})
	open := v.open
	t.Logf("%d open sessions (%d B of state), checkpoint of %d B taken in %.0f ms", open, v.stateBytes, v.ckBytes, v.ckMs)
	conn.Close(ctx)
	proc.kill()
	ready := proc.start()
	begin := time.Now()
	conn = proc.connect()
	checkFor(t, 5*time.Minute, func() error {
		v = readView(t, conn, "play_sessions")
		if v.state != "running" || v.pos < msgs {
			return fmt.Errorf("view %s", v)
		}
		return nil
	})
	restored := v.open
	if restored != open {
		t.Fatalf("%d open sessions after the restart, %d before", restored, open)
	}
	t.Logf("after kill -9: accepting connections in %s, view running with its %d sessions %s later (%s in all)",
		ready.Round(time.Millisecond), restored, time.Since(begin).Round(time.Millisecond), (ready + time.Since(begin)).Round(time.Millisecond))
}
