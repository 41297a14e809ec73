package planner

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec/source"
	"github.com/sessionsql/sessionsql/server"
)

// TestMetrics drives an engine on the embedded NATS server through the
// session API and checks the scraped metrics against what was published
// and against SHOW SOURCES / SHOW MATERIALIZED VIEWS.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	e, js := startTestEngine(t)
	sess := e.NewSession("tester", "sessionsql")
	h := e.MetricsHandler()

	run(t, sess, `CREATE SOURCE plays (user_id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
		WITH (stream = 'MPLAYS', subjects = 'mplays.>')`)
	run(t, sess, `CREATE MATERIALIZED VIEW sessions AS
		SELECT user_id, WINDOW_START() AS s, COUNT(*) AS n FROM plays
		GROUP BY user_id, SESSION(ts, INTERVAL '30' MINUTE)`)

	// Stage 1: users 1..3 open a session each at t0; three messages do
	// not decode. Stage 2: users 4 and 5 an hour later move the watermark
	// past those sessions, which close (three final rows). Stage 3: an
	// event of user 1 at t0 is then late. Each stage is processed before
	// the next is published, so each lands in batches of its own: a batch
	// is judged against the watermark of the batches before it.
	const t0 = int64(1704164645000)
	ev := func(user, ms int64) []byte { return fmt.Appendf(nil, `{"user_id":%d,"ts":%d}`, user, ms) }
	var stage1 [][]byte
	for i := range int64(12) {
		stage1 = append(stage1, ev(i%3+1, t0+i*1000))
	}
	bad := [][]byte{[]byte(`not json`), []byte(`{"user_id":"x","ts":1}`), []byte(`{"user_id":1,"ts":"yesterday"}`)}
	stage1 = slices.Insert(stage1, 5, bad[0], bad[1])
	stage1 = append(stage1, bad[2])
	stage2 := [][]byte{ev(4, t0+3600_000), ev(5, t0+3601_000)}
	stage3 := [][]byte{ev(1, t0)}
	good, published := int64(0), 0
	for _, stage := range [][][]byte{stage1, stage2, stage3} {
		if err := source.Publish(ctx, js, "mplays.x", stage); err != nil {
			t.Fatal(err)
		}
		published += len(stage)
		good += int64(len(stage))
		waitProcessed(t, sess, "sessions", uint64(published))
	}
	good -= int64(len(bad))

	// A source without views reads from the stream's end: the messages
	// stored before it was created are not lag.
	if _, err := source.EnsureStream(ctx, js, "MIDLE", []string{"midle.>"}); err != nil {
		t.Fatal(err)
	}
	if err := source.Publish(ctx, js, "midle.x", [][]byte{ev(1, t0), ev(2, t0)}); err != nil {
		t.Fatal(err)
	}
	run(t, sess, `CREATE SOURCE idle (user_id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)
		WITH (stream = 'MIDLE', subjects = 'midle.>')`)

	var mfs map[string]*dto.MetricFamily
	waitFor(t, "the idle source's consumer", func() bool {
		mfs = scrape(t, h)
		_, ok := metricValue(mfs, "sessionsql_source_lag_messages", "source", "idle")
		return ok
	})

	src := map[string]string{"source": "plays"}
	view := map[string]string{"view": "sessions", "source": "plays"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sessionsql_source_events_total", src, float64(good)},
		{"sessionsql_source_rejects_total", src, float64(len(bad))},
		{"sessionsql_source_messages_total", src, float64(published)},
		{"sessionsql_source_last_sequence", src, float64(published)},
		{"sessionsql_source_lag_messages", src, 0},
		{"sessionsql_source_state", map[string]string{"source": "plays", "state": "running"}, 1},
		{"sessionsql_source_state", map[string]string{"source": "plays", "state": "failed"}, 0},
		{"sessionsql_source_events_total", map[string]string{"source": "idle"}, 0},
		{"sessionsql_source_lag_messages", map[string]string{"source": "idle"}, 0},
		{"sessionsql_view_events_total", view, float64(good)},
		{"sessionsql_view_open_windows", view, 2},
		{"sessionsql_view_rows_emitted_total", view, 3},
		{"sessionsql_view_rows_retracted_total", view, 0},
		{"sessionsql_view_late_events_total", view, 1},
		{"sessionsql_view_unmatched_events_total", view, 0},
		{"sessionsql_view_position_sequence", view, float64(published)},
		{"sessionsql_view_lag_messages", view, 0},
		{"sessionsql_view_state", map[string]string{"view": "sessions", "state": "running"}, 1},
		{"sessionsql_view_state", map[string]string{"view": "sessions", "state": "failed"}, 0},
	} {
		got, ok := metricValue(mfs, c.name, flatten(c.labels)...)
		if !ok {
			t.Errorf("%s %v: missing", c.name, c.labels)
		} else if got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v, _ := metricValue(mfs, "sessionsql_view_state_bytes", flatten(view)...); v <= 0 {
		t.Errorf("sessionsql_view_state_bytes = %v with two open windows, want > 0", v)
	}

	// The metrics and SHOW report the same figures. Nothing is published
	// any more, so they hold still between the two reads.
	row := showRow(t, sess, "SHOW MATERIALIZED VIEWS", "sessions")
	for col, metric := range map[string]string{
		"events": "sessionsql_view_events_total", "lag": "sessionsql_view_lag_messages",
		"open_windows": "sessionsql_view_open_windows", "state_bytes": "sessionsql_view_state_bytes",
		"rows_emitted": "sessionsql_view_rows_emitted_total", "late_events": "sessionsql_view_late_events_total",
		"position": "sessionsql_view_position_sequence", "rows_retracted": "sessionsql_view_rows_retracted_total",
		"unmatched_events": "sessionsql_view_unmatched_events_total",
	} {
		got, _ := metricValue(mfs, metric, flatten(view)...)
		if want := row[col].(int64); got != float64(want) {
			t.Errorf("%s = %v, SHOW MATERIALIZED VIEWS %s = %d", metric, got, col, want)
		}
	}
	row = showRow(t, sess, "SHOW SOURCES", "plays")
	for col, metric := range map[string]string{
		"events": "sessionsql_source_events_total", "rejects": "sessionsql_source_rejects_total",
		"last_seq": "sessionsql_source_last_sequence",
	} {
		got, _ := metricValue(mfs, metric, flatten(src)...)
		if want := row[col].(int64); got != float64(want) {
			t.Errorf("%s = %v, SHOW SOURCES %s = %d", metric, got, col, want)
		}
	}

	// A dropped view leaves the scrape.
	run(t, sess, "DROP MATERIALIZED VIEW sessions")
	if _, ok := metricValue(scrape(t, h), "sessionsql_view_events_total", flatten(view)...); ok {
		t.Error("a dropped view is still scraped")
	}
}

// TestStateMetrics checks the state gauge's series for the states that
// exec and the source reader report.
func TestStateMetrics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		want  map[string]float64
	}{
		{"running", "running", map[string]float64{"running": 1, "stopped": 0, "failed": 0, "not_running": 0, "waiting_for_nats": 0}},
		{"reason cut off", "failed: consumer deleted", map[string]float64{"running": 0, "stopped": 0, "failed": 1, "not_running": 0, "waiting_for_nats": 0}},
		{"unknown state kept", "paused", map[string]float64{"running": 0, "stopped": 0, "failed": 0, "not_running": 0, "waiting_for_nats": 0, "paused": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan prometheus.Metric, 10)
			stateMetrics(ch, sourceStateDesc, sourceStates, tc.state, "plays")
			close(ch)
			got := map[string]float64{}
			for m := range ch {
				var pb dto.Metric
				if err := m.Write(&pb); err != nil {
					t.Fatal(err)
				}
				labels := map[string]string{}
				for _, l := range pb.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["source"] != "plays" {
					t.Errorf("source label %q, want plays", labels["source"])
				}
				got[labels["state"]] = pb.GetGauge().GetValue()
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("state %q: got %v, want %v", tc.state, got, tc.want)
			}
		})
	}
}

// startTestEngine runs an engine on an embedded NATS server and an
// in-memory catalog, all stopped at the end of the test.
func startTestEngine(t *testing.T) (*Engine, jetstream.JetStream) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	emb, err := source.StartEmbedded(source.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), catalog.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Config{JS: js, Catalog: cat, Mem: memory.NewGoAllocator(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, js
}

func run(t *testing.T, sess server.Session, text string) *server.Result {
	t.Helper()
	p, err := sess.Prepare(context.Background(), text, nil)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	res, err := sess.Execute(context.Background(), p, nil)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return res
}

// showRow returns the row of a SHOW statement whose first column is name,
// by column name.
func showRow(t *testing.T, sess server.Session, show, name string) map[string]any {
	t.Helper()
	res := run(t, sess, show)
	for _, r := range res.Rows {
		if r[0] == name {
			m := map[string]any{}
			for i, c := range res.Columns {
				m[c.Name] = r[i]
			}
			return m
		}
	}
	t.Fatalf("%s has no row %q", show, name)
	return nil
}

// waitProcessed waits until the view has processed every message up to
// stream sequence seq and its source's reader has counted them.
func waitProcessed(t *testing.T, sess server.Session, view string, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("view %s at sequence %d", view, seq), func() bool {
		v := showRow(t, sess, "SHOW MATERIALIZED VIEWS", view)
		s := showRow(t, sess, "SHOW SOURCES", v["source"].(string))
		return v["position"] == int64(seq) && s["last_seq"] == int64(seq)
	})
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrape fetches the handler's text exposition and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("scrape lacks the Go or process collector:\n%s", body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return mfs
}

// metricValue returns the value of the series of family name whose labels
// include the given name, value pairs.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func flatten(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}
