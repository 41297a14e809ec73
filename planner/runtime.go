package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/exec/source"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
	"github.com/sessionsql/sessionsql/windows/snap"
)

// sourceRT is a running source: one reader whose batches a router hands
// to every view of the source.
type sourceRT struct {
	def    *catalog.Source
	cols   []source.Column
	stream jetstream.Stream
	reader *source.Reader
	router *exec.Router
	log    *slog.Logger
	mem    memory.Allocator

	rejects   *sink.Memory
	rejectsPG *sink.PGTable // nil without a sink database

	mu        sync.Mutex // guards the fields below
	cancel    context.CancelFunc
	done      chan struct{}
	runErr    error
	maxReject uint64 // rejects at or before this were recorded already

	// The dead-letter table's checkpoint (see saveRejects); reader
	// goroutine only.
	ckpt    *checkpointStore
	ckEvery time.Duration
	savedAt time.Time
	saved   atomic.Uint64 // position of the last checkpoint
}

// deadLetterSchema is the schema of <source>_rejects.
var rejectsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "seq", Type: sqltypes.Int64},
	{Name: "payload", Type: sqltypes.String, Nullable: true},
	{Name: "reason", Type: sqltypes.String},
	{Name: "received_at", Type: sqltypes.TimestampTZ, Nullable: true},
}, nil)

// lateSchema is the schema of <view>_late.
var lateSchema = arrow.NewSchema([]arrow.Field{
	{Name: "seq", Type: sqltypes.Int64},
	{Name: "event_time", Type: sqltypes.Timestamp},
	{Name: "reason", Type: sqltypes.String},
	{Name: "payload", Type: sqltypes.String, Nullable: true},
}, nil)

// deadLetterSpecs returns the live (append-only, capped) and PostgreSQL
// (keyed by seq, so a replay rewrites the same rows) specs of a
// dead-letter table.
func deadLetterSpecs(name string, schema *arrow.Schema) (live, pg sink.TableSpec) {
	return sink.TableSpec{Name: name, Schema: schema}, sink.TableSpec{Name: name, Schema: schema, Key: []int{0}}
}

// startReader (re)starts the source's reader at sequence from. The
// current run, if any, is stopped first.
func (s *sourceRT) startReader(ctx context.Context, wg *sync.WaitGroup, from uint64) {
	s.stopReader()
	s.mu.Lock()
	defer s.mu.Unlock()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.cancel, s.done, s.runErr = cancel, done, nil
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		s.log.Info("source reading", "from_seq", from)
		err := s.reader.Run(runCtx, from, s)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("source stopped", "err", err)
			s.mu.Lock()
			s.runErr = err
			s.mu.Unlock()
		}
	}()
}

// stopReader stops the current run and waits for it.
func (s *sourceRT) stopReader() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// state describes the reader for SHOW SOURCES.
func (s *sourceRT) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.runErr != nil:
		return "failed: " + s.runErr.Error()
	case s.cancel == nil:
		return "stopped"
	}
	return "running"
}

// HandleBatch implements source.Handler: route, then record what every
// view has processed.
func (s *sourceRT) HandleBatch(ctx context.Context, b source.Batch) error {
	if err := s.router.Route(ctx, b.Rec, b.LastSeq, b.Pending); err != nil {
		return err
	}
	if pos, ok := s.router.MinPosition(); ok {
		s.reader.Processed(pos)
	} else {
		s.reader.Processed(b.LastSeq) // no view needs these events
	}
	if b.LastSeq > s.saved.Load() && time.Since(s.savedAt) >= s.ckEvery {
		s.saveRejects(ctx, b.LastSeq)
	}
	return nil
}

// saveRejects checkpoints the live dead-letter table: every reject up to
// pos is in it (HandleRejects runs before HandleBatch for a batch's
// messages). A restart restores the table, skips rejects up to pos, and
// reads the stream again from pos + 1 at the latest, so the rejects after
// it are recorded once more. A failed save is logged: the previous one
// stays valid, the reader just reads again from further back.
func (s *sourceRT) saveRejects(ctx context.Context, pos uint64) {
	s.savedAt = time.Now()
	blob, err := scanIPC(s.rejects, s.mem)
	if err == nil {
		w := snap.NewWriter(nil)
		w.Section("sessionsql rejects")
		w.Uint(pos)
		w.Blob(blob)
		err = s.ckpt.putSource(ctx, s.def.Name, w.Bytes())
	}
	if err != nil {
		s.log.Warn("dead-letter table not checkpointed", "err", err)
		return
	}
	s.saved.Store(pos)
}

// restoreRejects loads the dead-letter table's checkpoint, if any, and
// returns its position (0 without one).
func (s *sourceRT) restoreRejects(ctx context.Context) (uint64, error) {
	b, err := s.ckpt.getSource(ctx, s.def.Name)
	if err != nil || b == nil {
		return 0, err
	}
	r := snap.NewReader(b)
	r.Section("sessionsql rejects")
	pos, blob := r.Uint(), r.Blob()
	if err := r.Done(); err != nil {
		return 0, err
	}
	if err := restoreIPC(ctx, s.rejects, s.mem, blob); err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.maxReject = pos
	s.mu.Unlock()
	s.saved.Store(pos)
	return pos, nil
}

// HandleRejects implements source.Handler: rejects go to the dead-letter
// table, once each even when a rewind reads them again.
func (s *sourceRT) HandleRejects(ctx context.Context, rs []source.Reject) error {
	s.mu.Lock()
	floor := s.maxReject
	s.mu.Unlock()
	fresh := rs[:0:0]
	for _, r := range rs {
		if r.Seq > floor {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	rec := rejectBatch(s.mem, fresh)
	defer rec.Release()
	if s.rejectsPG != nil {
		// Keyed by sequence, so a retry or a replay rewrites the same
		// rows. While the sink database is unreachable the reader waits
		// here: it fetches nothing more (backpressure) and loses nothing.
		err := retryUnavailable(ctx, s.log, func() error { return s.rejectsPG.Apply(ctx, exec.Changes{Upserts: rec}) })
		if err != nil {
			return fmt.Errorf("write %s: %w", catalog.RejectsTable(s.def.Name), err)
		}
	}
	if err := s.rejects.Apply(ctx, exec.Changes{Upserts: rec}); err != nil {
		return err
	}
	s.mu.Lock()
	s.maxReject = max(s.maxReject, fresh[len(fresh)-1].Seq)
	s.mu.Unlock()
	return nil
}

func rejectBatch(mem memory.Allocator, rs []source.Reject) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, rejectsSchema)
	defer b.Release()
	for _, r := range rs {
		b.Field(0).(*array.Int64Builder).Append(int64(r.Seq))
		b.Field(1).(*array.StringBuilder).Append(string(r.Payload))
		b.Field(2).(*array.StringBuilder).Append(r.Reason)
		if r.At.IsZero() {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(r.At.UnixMilli()))
		}
	}
	return b.NewRecordBatch()
}

// viewRT is a running materialized view.
type viewRT struct {
	def    *catalog.View
	plan   *viewPlan
	src    *sourceRT
	ops    []exec.Operator
	pipe   *exec.Pipeline
	wop    *exec.WindowAggOp
	sinkOp *exec.SinkOp
	commit *committer
	cancel context.CancelFunc

	result   *sink.Memory
	resultPG *sink.PGTable
	late     *sink.Memory
	latePG   *sink.PGTable
}

// lateWriter returns the view's OnLate callback: late events go to
// <view>_late with the raw message, looked up by sequence in the stream.
func (v *viewRT) lateWriter(log *slog.Logger) func(ctx context.Context, seqs, times []int64) error {
	return func(ctx context.Context, seqs, times []int64) error {
		// One deadline for the batch's look-ups, so a slow stream delays
		// the pipeline by at most lookupBudget.
		lctx, cancel := context.WithTimeout(ctx, lookupBudget)
		defer cancel()
		b := array.NewRecordBuilder(v.src.mem, lateSchema)
		defer b.Release()
		for i, seq := range seqs {
			b.Field(0).(*array.Int64Builder).Append(seq)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(times[i]))
			b.Field(2).(*array.StringBuilder).Append("window already closed: event time is behind the watermark minus the allowed lateness")
			payload, err := v.payload(lctx, uint64(seq), i)
			if err != nil {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.StringBuilder).Append(payload)
			}
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		log.Warn("late events", "count", len(seqs))
		if v.latePG != nil {
			// In the epoch, with the result changes: committed together.
			if err := v.commit.table(v.latePG).Apply(ctx, exec.Changes{Upserts: rec}); err != nil {
				return err
			}
		}
		return v.late.Apply(ctx, exec.Changes{Upserts: rec})
	}
}

// maxPayloadLookups and lookupBudget bound the stream look-ups per batch
// of late events; beyond them the payload column is NULL (the sequence
// still points at the message in the stream).
const (
	maxPayloadLookups = 1000
	lookupBudget      = 2 * time.Second
)

func (v *viewRT) payload(ctx context.Context, seq uint64, i int) (string, error) {
	if i >= maxPayloadLookups || v.src.stream == nil || ctx.Err() != nil {
		return "", errors.New("not looked up")
	}
	m, err := v.src.stream.GetMsg(ctx, seq)
	if err != nil {
		return "", err
	}
	return string(m.Data), nil
}

// explainTree renders pipeline lines (sink first) as an indented tree.
func explainTree(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if i == 0 {
			out[i] = l
			continue
		}
		out[i] = strings.Repeat("    ", i-1) + "└── " + l
	}
	return out
}

// retryUnavailable runs write until it succeeds, fails for a reason other
// than an unreachable sink database, or ctx is done; it waits with
// backoff between attempts and logs the outage once.
func retryUnavailable(ctx context.Context, log *slog.Logger, write func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := write()
		if err == nil {
			if attempt > 1 {
				log.Info("sink available again", "attempts", attempt)
			}
			return nil
		}
		if !sink.IsUnavailable(err) {
			return err
		}
		if attempt == 1 {
			log.Warn("sink unavailable: waiting for it", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
