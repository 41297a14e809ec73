package planner

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/source"
)

// streamLookupBudget bounds the JetStream look-ups (stream and consumer
// info) of one scrape, all sources together. A lag that could not be
// looked up in time is left out of that scrape rather than delaying it.
const streamLookupBudget = 2 * time.Second

// States a source or view reports through its state gauge. Every one is
// emitted, 1 for the current state and 0 for the others, so that
// `sessionsql_view_state{state="failed"} == 1` alerts without absent().
// "not_running" is a catalog entry without a runtime (it could not be
// restarted; see the log).
var (
	sourceStates = []string{"running", "waiting_for_nats", "stopped", "failed", "not_running"}
	viewStates   = []string{"starting", "running", "backpressured", "sink_unavailable", "sink_error", "checkpoints_unavailable", "waiting_for_nats", "stopped", "failed", "not_running"}
)

var (
	sourceLabels = []string{"source"}
	viewLabels   = []string{"view", "source"}

	sourceMessagesDesc = prometheus.NewDesc("sessionsql_source_messages_total",
		"Messages the source's reader handed over: decoded events plus rejects.", sourceLabels, nil)
	sourceEventsDesc = prometheus.NewDesc("sessionsql_source_events_total",
		"Messages of the source that decoded to rows and were routed to its views.", sourceLabels, nil)
	sourceRejectsDesc = prometheus.NewDesc("sessionsql_source_rejects_total",
		"Messages of the source that could not be decoded and went to <source>_rejects.", sourceLabels, nil)
	sourceBatchesDesc = prometheus.NewDesc("sessionsql_source_batches_total",
		"Batches the source's reader handed over.", sourceLabels, nil)
	sourceRedeliveredDesc = prometheus.NewDesc("sessionsql_source_redelivered_messages_total",
		"JetStream redeliveries the source's reader dropped as already received.", sourceLabels, nil)
	sourceLastSeqDesc = prometheus.NewDesc("sessionsql_source_last_sequence",
		"Stream sequence of the newest message the source's reader handed over.", sourceLabels, nil)
	sourceProcessedSeqDesc = prometheus.NewDesc("sessionsql_source_processed_sequence",
		"Stream sequence up to which every view of the source has processed its messages (each view's committed position is in SHOW MATERIALIZED VIEWS).", sourceLabels, nil)
	sourceLagDesc = prometheus.NewDesc("sessionsql_source_lag_messages",
		"Messages in the source's stream not yet delivered to its reader (the JetStream consumer's num_pending).", sourceLabels, nil)
	sourceStateDesc = prometheus.NewDesc("sessionsql_source_state",
		"1 for the source reader's current state, 0 for the others.", append(sourceLabels, "state"), nil)

	viewEventsDesc = prometheus.NewDesc("sessionsql_view_events_total",
		"Source rows the view's pipeline processed.", viewLabels, nil)
	viewLateDesc = prometheus.NewDesc("sessionsql_view_late_events_total",
		"Events later than the allowed lateness, written to <view>_late.", viewLabels, nil)
	viewUnmatchedDesc = prometheus.NewDesc("sessionsql_view_unmatched_events_total",
		"Events that fell in no window (EVENT_WINDOW with no window open).", viewLabels, nil)
	viewRowsEmittedDesc = prometheus.NewDesc("sessionsql_view_rows_emitted_total",
		"Result rows the view wrote (upserts, early and final).", viewLabels, nil)
	viewRowsRetractedDesc = prometheus.NewDesc("sessionsql_view_rows_retracted_total",
		"Result rows the view deleted (windows absorbed by a merge).", viewLabels, nil)
	viewOpenWindowsDesc = prometheus.NewDesc("sessionsql_view_open_windows",
		"Windows the view holds open.", viewLabels, nil)
	viewStateBytesDesc = prometheus.NewDesc("sessionsql_view_state_bytes",
		"Bytes of window state the view holds.", viewLabels, nil)
	viewPositionDesc = prometheus.NewDesc("sessionsql_view_position_sequence",
		"Last stream sequence the view processed completely.", viewLabels, nil)
	viewLagDesc = prometheus.NewDesc("sessionsql_view_lag_messages",
		"Stream sequences between the stream's last message and the view's position.", viewLabels, nil)
	viewWatermarkDesc = prometheus.NewDesc("sessionsql_view_watermark_seconds",
		"The view's event-time watermark, seconds since the Unix epoch (absent before its first event).", viewLabels, nil)
	viewWatermarkLagDesc = prometheus.NewDesc("sessionsql_view_watermark_lag_seconds",
		"Processing time minus the view's watermark: how far behind real time its windows close.", viewLabels, nil)
	viewCommittedDesc = prometheus.NewDesc("sessionsql_view_committed_position_sequence",
		"Stream position of the view's last committed epoch: its checkpoint and, with a sink database, its results there.", viewLabels, nil)
	viewCheckpointsDesc = prometheus.NewDesc("sessionsql_view_checkpoints_total",
		"Checkpoints the view took.", viewLabels, nil)
	viewCheckpointsDeferredDesc = prometheus.NewDesc("sessionsql_view_checkpoints_deferred_total",
		"Checkpoints put off because earlier epochs were still being committed (the epoch grew instead).", viewLabels, nil)
	viewSinkCommitDesc = prometheus.NewDesc("sessionsql_view_sink_commit_seconds",
		"Duration of the view's last PostgreSQL transaction: an epoch's result changes and its progress row.", viewLabels, nil)
	viewSinkRowsDesc = prometheus.NewDesc("sessionsql_view_sink_rows_total",
		"Rows the view's committed epochs wrote to the sink database, by op: upsert or delete (after each epoch's changes were coalesced per key).", append(viewLabels, "op"), nil)
	viewSinkReceivedDesc = prometheus.NewDesc("sessionsql_view_sink_received_rows_total",
		"Rows of changes the view's pipeline sent to the sink database's tables in committed epochs, before they were coalesced per key.", viewLabels, nil)
	viewSinkSecondsDesc = prometheus.NewDesc("sessionsql_view_sink_transaction_seconds_total",
		"Time spent in the PostgreSQL transactions of the view's committed epochs.", viewLabels, nil)
	viewCommitLatencyDesc = prometheus.NewDesc("sessionsql_view_commit_latency_seconds",
		"Time from the view's last committed checkpoint to the end of its commit (queueing, checkpoint store, sink).", viewLabels, nil)
	viewCheckpointBytesDesc = prometheus.NewDesc("sessionsql_view_checkpoint_bytes",
		"Size of the view's last checkpoint.", viewLabels, nil)
	viewCheckpointSecondsDesc = prometheus.NewDesc("sessionsql_view_checkpoint_seconds",
		"Time the pipeline spent taking the view's last checkpoint.", viewLabels, nil)
	viewSinkQueuedDesc = prometheus.NewDesc("sessionsql_view_sink_queued_bytes",
		"Bytes of result changes checkpointed but not yet committed to the sink database.", viewLabels, nil)
	viewStateDesc = prometheus.NewDesc("sessionsql_view_state",
		"1 for the view pipeline's current state, 0 for the others.", append(viewLabels, "state"), nil)

	allDescs = []*prometheus.Desc{
		sourceMessagesDesc, sourceEventsDesc, sourceRejectsDesc, sourceBatchesDesc, sourceRedeliveredDesc,
		sourceLastSeqDesc, sourceProcessedSeqDesc, sourceLagDesc, sourceStateDesc,
		viewEventsDesc, viewLateDesc, viewUnmatchedDesc, viewRowsEmittedDesc, viewRowsRetractedDesc,
		viewOpenWindowsDesc, viewStateBytesDesc, viewPositionDesc, viewLagDesc, viewStateDesc,
		viewWatermarkDesc, viewWatermarkLagDesc, viewCommittedDesc, viewCheckpointsDesc, viewCheckpointsDeferredDesc, viewSinkCommitDesc, viewSinkRowsDesc, viewSinkReceivedDesc, viewSinkSecondsDesc, viewCommitLatencyDesc, viewCheckpointBytesDesc,
		viewCheckpointSecondsDesc, viewSinkQueuedDesc,
	}
)

// Collector returns a Prometheus collector of the engine's sources and
// views: the figures SHOW SOURCES and SHOW MATERIALIZED VIEWS report,
// labelled by source and view. Each scrape reads them under the engine's
// lock and looks up the streams' positions in JetStream after releasing
// it, so a slow NATS delays the scrape (by at most streamLookupBudget)
// but never a statement.
func (e *Engine) Collector() prometheus.Collector { return engineCollector{e} }

// MetricsHandler returns an HTTP handler that serves the engine's
// metrics, with the Go runtime's and the process's, in the Prometheus
// exposition formats. Each handler has its own registry, so several
// engines (tests) do not collide.
func (e *Engine) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

type engineCollector struct{ e *Engine }

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// sourceFigures is what one scrape reads of a source under the lock.
type sourceFigures struct {
	def      *catalog.Source
	name     string
	state    string
	running  bool // has a runtime; the fields below are set
	stats    source.Stats
	stream   jetstream.Stream
	consumer string
}

// viewFigures is what one scrape reads of a view under the lock.
type viewFigures struct {
	name, source, state string
	running             bool // has a runtime; the fields below are set
	stream              jetstream.Stream
	events, position    int64
	late, unmatched     int64
	rows, deletes       int64
	open, stateBytes    int64
	watermark           exec.Watermark
	commit              *committer
}

// figures reads every source's and view's counters. They are atomics or
// fixed after start, so the lock is held only to walk the maps.
//
// While the connection to NATS is down, a running source or view says so
// in its state: it waits for the client to reconnect.
func (e *Engine) figures() ([]sourceFigures, []viewFigures) {
	away := e.natsAway()
	running := func(state string) string {
		if away != "" && state == "running" {
			return away
		}
		return state
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var srcs []sourceFigures
	for _, def := range e.cat.Sources() {
		f := sourceFigures{def: def, name: def.Name, state: "not running"}
		if s, ok := e.sources[def.Name]; ok {
			f.running, f.state, f.stats = true, running(s.state()), s.reader.Stats()
			f.stream, f.consumer = s.stream, s.reader.ConsumerName()
		}
		srcs = append(srcs, f)
	}
	var views []viewFigures
	for _, def := range e.cat.Views() {
		f := viewFigures{name: def.Name, source: def.Source, state: "not running"}
		if v, ok := e.views[def.Name]; ok {
			f.running, f.state, f.stream, f.commit = true, running(v.commit.state(v.pipe.State())), v.src.stream, v.commit
			f.events, f.position = v.pipe.Events(), int64(v.pipe.Position())
			f.late, f.unmatched = v.wop.LateEvents(), v.wop.UnmatchedEvents()
			f.rows, f.deletes = v.sinkOp.Rows(), v.sinkOp.Deletes()
			f.open, f.stateBytes = v.wop.OpenWindows(), v.wop.StateBytes()
			f.watermark = v.wop.Watermark()
		}
		views = append(views, f)
	}
	return srcs, views
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	srcs, views := c.e.figures()
	ctx, cancel := context.WithTimeout(c.e.ctx, streamLookupBudget)
	defer cancel()

	ends := c.e.streamEnds()
	for _, s := range srcs {
		if !s.running {
			continue
		}
		ends.get(ctx, s.name, s.stream)
		constMetric(ch, sourceMessagesDesc, prometheus.CounterValue, float64(s.stats.Messages), s.name)
		constMetric(ch, sourceEventsDesc, prometheus.CounterValue, float64(s.stats.Events), s.name)
		constMetric(ch, sourceRejectsDesc, prometheus.CounterValue, float64(s.stats.Rejects), s.name)
		constMetric(ch, sourceBatchesDesc, prometheus.CounterValue, float64(s.stats.Batches), s.name)
		constMetric(ch, sourceRedeliveredDesc, prometheus.CounterValue, float64(s.stats.Redelivered), s.name)
		constMetric(ch, sourceLastSeqDesc, prometheus.GaugeValue, float64(s.stats.LastSeq), s.name)
		constMetric(ch, sourceProcessedSeqDesc, prometheus.GaugeValue, float64(s.stats.ProcessedSeq), s.name)
		// The consumer's num_pending, not stream last seq minus LastSeq:
		// a reader of a source without views starts at the stream's end
		// and has handed nothing over, yet is not behind. The reader
		// re-creates its consumer on every restart; a scrape in between
		// finds none and leaves the lag out.
		if cons, err := s.stream.Consumer(ctx, s.consumer); err == nil {
			constMetric(ch, sourceLagDesc, prometheus.GaugeValue, float64(cons.CachedInfo().NumPending), s.name)
		}
	}
	for _, s := range srcs {
		stateMetrics(ch, sourceStateDesc, sourceStates, s.state, s.name)
	}
	for _, v := range views {
		stateMetrics(ch, viewStateDesc, viewStates, v.state, v.name, v.source)
		if !v.running {
			continue
		}
		constMetric(ch, viewEventsDesc, prometheus.CounterValue, float64(v.events), v.name, v.source)
		constMetric(ch, viewLateDesc, prometheus.CounterValue, float64(v.late), v.name, v.source)
		constMetric(ch, viewUnmatchedDesc, prometheus.CounterValue, float64(v.unmatched), v.name, v.source)
		constMetric(ch, viewRowsEmittedDesc, prometheus.CounterValue, float64(v.rows), v.name, v.source)
		constMetric(ch, viewRowsRetractedDesc, prometheus.CounterValue, float64(v.deletes), v.name, v.source)
		constMetric(ch, viewOpenWindowsDesc, prometheus.GaugeValue, float64(v.open), v.name, v.source)
		constMetric(ch, viewStateBytesDesc, prometheus.GaugeValue, float64(v.stateBytes), v.name, v.source)
		constMetric(ch, viewPositionDesc, prometheus.GaugeValue, float64(v.position), v.name, v.source)
		constMetric(ch, viewCommittedDesc, prometheus.GaugeValue, float64(v.commit.committedPos.Load()), v.name, v.source)
		constMetric(ch, viewCheckpointsDesc, prometheus.CounterValue, float64(v.commit.checkpoints.Load()), v.name, v.source)
		constMetric(ch, viewCheckpointsDeferredDesc, prometheus.CounterValue, float64(v.commit.deferred.Load()), v.name, v.source)
		constMetric(ch, viewSinkCommitDesc, prometheus.GaugeValue, float64(v.commit.txNanos.Load())/1e9, v.name, v.source)
		if v.commit.pg != nil {
			sk := &v.commit.sink
			constMetric(ch, viewSinkRowsDesc, prometheus.CounterValue, float64(sk.upserts.Load()), v.name, v.source, "upsert")
			constMetric(ch, viewSinkRowsDesc, prometheus.CounterValue, float64(sk.deletes.Load()), v.name, v.source, "delete")
			constMetric(ch, viewSinkReceivedDesc, prometheus.CounterValue, float64(sk.received.Load()), v.name, v.source)
			constMetric(ch, viewSinkSecondsDesc, prometheus.CounterValue, float64(sk.txNanos.Load())/1e9, v.name, v.source)
		}
		constMetric(ch, viewCommitLatencyDesc, prometheus.GaugeValue, float64(v.commit.latencyNanos.Load())/1e9, v.name, v.source)
		constMetric(ch, viewCheckpointBytesDesc, prometheus.GaugeValue, float64(v.commit.lastBytes.Load()), v.name, v.source)
		constMetric(ch, viewCheckpointSecondsDesc, prometheus.GaugeValue, float64(v.commit.lastNanos.Load())/1e9, v.name, v.source)
		constMetric(ch, viewSinkQueuedDesc, prometheus.GaugeValue, float64(v.commit.queued.Load()), v.name, v.source)
		if v.watermark != exec.MinWatermark {
			wm := float64(v.watermark) / 1000
			constMetric(ch, viewWatermarkDesc, prometheus.GaugeValue, wm, v.name, v.source)
			constMetric(ch, viewWatermarkLagDesc, prometheus.GaugeValue, float64(time.Now().UnixMilli())/1000-wm, v.name, v.source)
		}
		if last, ok := ends.get(ctx, v.source, v.stream); ok {
			// As SHOW MATERIALIZED VIEWS: a view created with start =
			// 'latest' sits one before its first sequence, never behind.
			constMetric(ch, viewLagDesc, prometheus.GaugeValue, float64(max(last-v.position, 0)), v.name, v.source)
		}
	}
}

// streamEnds looks up each source's stream end once (one stream info
// serves the lag of all its views); a failed look-up is not repeated, and
// none is tried while NATS is away.
type streamEnds struct {
	away bool
	m    map[string]*int64
}

func (e *Engine) streamEnds() *streamEnds {
	return &streamEnds{away: e.natsAway() != "", m: map[string]*int64{}}
}

func (m *streamEnds) get(ctx context.Context, source string, stream jetstream.Stream) (int64, bool) {
	if m.away {
		return 0, false
	}
	last, seen := m.m[source]
	if !seen {
		if info, err := stream.Info(ctx); err == nil {
			v := int64(info.State.LastSeq)
			last = &v
		}
		m.m[source] = last
	}
	if last == nil {
		return 0, false
	}
	return *last, true
}

// natsAway describes the connection to NATS when it is not connected
// ("" when it is).
func (e *Engine) natsAway() string {
	if e.js == nil || e.js.Conn() == nil {
		return ""
	}
	switch st := e.js.Conn().Status(); st {
	case nats.CONNECTED, nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return ""
	default:
		return "waiting for NATS: " + strings.ToLower(st.String())
	}
}

func constMetric(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
}

// stateMetrics emits one series per known state, 1 for the current one.
// A state carries its reason after a colon ("failed: ..."); only the word
// before it becomes the label, which keeps the label set small. A state
// not in known (a new one in exec) is emitted too, so it is never lost.
func stateMetrics(ch chan<- prometheus.Metric, d *prometheus.Desc, known []string, state string, labels ...string) {
	cur, _, _ := strings.Cut(state, ":")
	cur = strings.ReplaceAll(strings.TrimSpace(cur), " ", "_")
	seen := false
	for _, st := range known {
		v := 0.0
		if st == cur {
			v, seen = 1, true
		}
		constMetric(ch, d, prometheus.GaugeValue, v, append(labels, st)...)
	}
	if !seen {
		constMetric(ch, d, prometheus.GaugeValue, 1, append(labels, cur)...)
	}
}
