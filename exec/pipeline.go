package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sessionsql/sessionsql/windows/snap"
)

// Input is one batch for a pipeline: source rows with their stream
// sequences. The pipeline owns Rec (one reference) once Send accepts it.
type Input struct {
	Rec     arrow.RecordBatch
	LastSeq uint64 // the last stream sequence the batch covers
	// Pending is how many messages the stream held after LastSeq when
	// the batch was read: 0 when the source had caught up.
	Pending uint64
}

// Pipeline runs one view's chain of operators on its own goroutine:
// batches arrive through Send, processing time through a ticker.
type Pipeline struct {
	name string
	ops  []Operator
	in   chan Input
	tick time.Duration
	log  *slog.Logger
	now  func() time.Time

	pos    atomic.Uint64 // last stream sequence fully processed
	events atomic.Int64  // source rows processed
	stats  []opStats     // per operator, for EXPLAIN ANALYZE
	state  atomic.Value  // string: running, failed: ..., stopped
	done   chan struct{}
	err    error

	restore []byte
	ckEvery time.Duration
	ckFn    func(ctx context.Context, c Checkpoint) error
	lastCk  time.Time
	ckSize  int // bytes of the last checkpoint
	// ckCatchUp: see PipelineOptions.CheckpointOnCatchUp; backlog is
	// whether a batch since the last checkpoint came with a backlog.
	ckCatchUp, backlog bool
}

// PipelineOptions tune a pipeline.
type PipelineOptions struct {
	// Queue is how many batches may wait for the pipeline (default 4);
	// Send blocks beyond that, which backpressures the source.
	Queue int
	// TickEvery is the processing-time tick period (default 100ms).
	TickEvery time.Duration
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
	// State is a checkpoint's state to restore after Open; the pipeline's
	// pos must be the checkpoint's position.
	State []byte
	// Every CheckpointEvery of processing time, between batches, the
	// pipeline saves its operators' state and hands it to Checkpoint,
	// which may block (the pipeline then stops taking batches: that is
	// backpressure). An error from Checkpoint stops the pipeline.
	CheckpointEvery time.Duration
	Checkpoint      func(ctx context.Context, c Checkpoint) error
	// CheckpointOnCatchUp also checkpoints as soon as the pipeline has
	// worked through a backlog: after a batch read with nothing pending,
	// when an earlier batch since the last checkpoint was read with more
	// than a batch's worth pending, and at least a tenth of
	// CheckpointEvery after the last checkpoint. A burst or a replay then
	// reaches the sink database at once instead of up to an interval
	// later; a source that keeps up takes no extra checkpoints.
	CheckpointOnCatchUp bool
}

// Checkpoint is a pipeline's state at a point between batches: every
// event up to Pos is in it and none after.
type Checkpoint struct {
	Pos    uint64
	Events int64         // source rows processed up to Pos
	State  []byte        // the operators' state (see Stateful)
	Took   time.Duration // time to save State
}

// NewPipeline returns a pipeline of ops, each feeding the next. pos is the
// last stream sequence already reflected in the operators' state (rows at
// or before it are skipped).
func NewPipeline(name string, ops []Operator, pos uint64, opts PipelineOptions, log *slog.Logger) *Pipeline {
	if opts.Queue <= 0 {
		opts.Queue = 4
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pipeline{name: name, ops: ops, stats: make([]opStats, len(ops)), in: make(chan Input, opts.Queue), tick: opts.TickEvery,
		log: log, now: opts.Now, done: make(chan struct{}),
		restore: opts.State, ckEvery: opts.CheckpointEvery, ckFn: opts.Checkpoint, ckCatchUp: opts.CheckpointOnCatchUp}
	p.pos.Store(pos)
	p.state.Store("starting")
	return p
}

// Name is the view's name.
func (p *Pipeline) Name() string { return p.name }

// Position returns the last stream sequence fully processed (written to
// the sink); safe from any goroutine.
func (p *Pipeline) Position() uint64 { return p.pos.Load() }

// Events counts source rows processed; safe from any goroutine.
func (p *Pipeline) Events() int64 { return p.events.Load() }

// State returns "running", "stopped" or "failed: <reason>".
func (p *Pipeline) State() string { return p.state.Load().(string) }

// Done is closed when Run has returned.
func (p *Pipeline) Done() <-chan struct{} { return p.done }

// Err is Run's error, once Done is closed.
func (p *Pipeline) Err() error { return p.err }

// Send hands a batch to the pipeline, blocking while its queue is full.
// It takes ownership of in.Rec even when it fails.
func (p *Pipeline) Send(ctx context.Context, in Input) error {
	stopped := func() error {
		return fmt.Errorf("view %q is not running: %s", p.name, p.State())
	}
	select {
	case <-p.done:
		in.Rec.Release()
		return stopped()
	default:
	}
	select {
	case p.in <- in:
		select {
		case <-p.done:
			// Run stopped while we enqueued: its final drain may have
			// missed this batch, so drain here too.
			p.drain()
			return stopped()
		default:
		}
		return nil
	case <-p.done:
		in.Rec.Release()
		return stopped()
	case <-ctx.Done():
		in.Rec.Release()
		return ctx.Err()
	}
}

// Run opens the operators and processes input until ctx is done or an
// operator fails. A panic in an operator stops this pipeline alone; it is
// logged with its stack and returned as an error.
func (p *Pipeline) Run(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("pipeline panicked", "view", p.name, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("view %q: internal error: %v", p.name, r)
		}
		for _, op := range p.ops {
			if cerr := op.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		switch {
		case err == nil || errors.Is(err, context.Canceled):
			p.state.Store("stopped")
		default:
			p.state.Store("failed: " + err.Error())
			p.log.Error("view stopped", "view", p.name, "err", err)
		}
		p.err = err
		close(p.done)
		p.drain()
	}()
	for i, op := range p.ops {
		var out Downstream
		if i+1 < len(p.ops) {
			out = timedLink{p, i + 1}
		}
		if err := op.Open(ctx, out); err != nil {
			return fmt.Errorf("open %s: %w", op, err)
		}
	}
	if p.restore != nil {
		if err := p.load(p.restore); err != nil {
			return fmt.Errorf("restore checkpoint: %w", err)
		}
		p.restore = nil
	}
	p.lastCk = p.now()
	p.state.Store("running")
	if err := p.tickAll(ctx); err != nil {
		return err
	}
	ticker := time.NewTicker(p.tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			if err := p.tickAll(ctx); err != nil {
				return err
			}
		case in := <-p.in:
			// More than a batch's worth waiting in the stream: a backlog.
			if p.ckCatchUp && in.Pending > uint64(max(in.Rec.NumRows(), 1)) {
				p.backlog = true
			}
			if err := p.process(ctx, in); err != nil {
				return err
			}
			if p.backlog && in.Pending == 0 && p.ckFn != nil && p.now().Sub(p.lastCk) >= p.ckEvery/10 {
				if err := p.checkpoint(ctx); err != nil {
					return err
				}
				continue
			}
		}
		if p.ckFn != nil && p.now().Sub(p.lastCk) >= p.ckEvery {
			if err := p.checkpoint(ctx); err != nil {
				return err
			}
		}
	}
}

// checkpoint saves the operators' state and hands it to the callback.
func (p *Pipeline) checkpoint(ctx context.Context) error {
	p.lastCk, p.backlog = p.now(), false
	t0 := time.Now()
	c := Checkpoint{Pos: p.pos.Load(), Events: p.events.Load()}
	// Sized for the last checkpoint and a little growth: a large state
	// is not copied over and over as the buffer doubles.
	w := snap.NewWriter(make([]byte, 0, p.ckSize+p.ckSize/8+4096))
	w.Section("pipeline")
	w.Uint(checkpointVersion)
	w.Uint(c.Pos)
	w.Int(c.Events)
	for i, op := range p.ops {
		if s, ok := op.(Stateful); ok {
			if err := s.SaveState(w); err != nil {
				return fmt.Errorf("checkpoint %s: %w", op, err)
			}
		} else {
			w.Section(fmt.Sprintf("stateless %d", i))
		}
	}
	c.State, c.Took = w.Bytes(), time.Since(t0)
	p.ckSize = len(c.State)
	if err := p.ckFn(ctx, c); err != nil {
		return fmt.Errorf("checkpoint at %d: %w", c.Pos, err)
	}
	return nil
}

// load restores the operators' state from a checkpoint.
func (p *Pipeline) load(state []byte) error {
	r := snap.NewReader(state)
	r.Section("pipeline")
	if v := r.Uint(); r.Err() == nil && v != checkpointVersion {
		return fmt.Errorf("checkpoint format %d, this version reads %d", v, checkpointVersion)
	}
	pos, events := r.Uint(), r.Int()
	if r.Err() == nil && pos != p.pos.Load() {
		return fmt.Errorf("checkpoint at position %d, pipeline at %d", pos, p.pos.Load())
	}
	p.events.Store(events)
	for i, op := range p.ops {
		if s, ok := op.(Stateful); ok {
			if err := s.LoadState(r); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		} else {
			r.Section(fmt.Sprintf("stateless %d", i))
		}
	}
	return r.Done()
}

// process pushes one input through the operators and releases it, even
// when an operator panics.
func (p *Pipeline) process(ctx context.Context, in Input) error {
	defer in.Rec.Release()
	if err := p.tickAll(ctx); err != nil {
		return err
	}
	if err := (timedLink{p, 0}).Push(ctx, in.Rec); err != nil {
		return err
	}
	p.events.Add(in.Rec.NumRows())
	if in.LastSeq > p.pos.Load() {
		p.pos.Store(in.LastSeq)
	}
	return nil
}

func (p *Pipeline) tickAll(ctx context.Context) error {
	now := p.now()
	for i, op := range p.ops {
		t0 := time.Now()
		err := op.Tick(ctx, now)
		p.stats[i].nanos.Add(int64(time.Since(t0)))
		if err != nil {
			return err
		}
	}
	return nil
}

// opStats counts what one operator was given and the time spent in it,
// including its downstream (nanos) and in its downstream alone (below).
type opStats struct {
	rows, batches, nanos, below atomic.Int64
}

// OperatorStats is what EXPLAIN ANALYZE shows of one operator.
type OperatorStats struct {
	Rows, Batches int64         // rows and batches pushed into it
	Time          time.Duration // time spent in it, not in its downstream
}

// Stats returns each operator's figures, in pipeline order; safe from any
// goroutine.
func (p *Pipeline) Stats() []OperatorStats {
	out := make([]OperatorStats, len(p.ops))
	for i := range p.stats {
		s := &p.stats[i]
		out[i] = OperatorStats{Rows: s.rows.Load(), Batches: s.batches.Load(), Time: time.Duration(s.nanos.Load() - s.below.Load())}
	}
	return out
}

// timedLink is the Downstream of operator to-1 (or the pipeline's entry
// for to = 0): it times the calls into operator to.
type timedLink struct {
	p  *Pipeline
	to int
}

func (l timedLink) Push(ctx context.Context, b arrow.RecordBatch) error {
	t0 := time.Now()
	err := l.p.ops[l.to].Push(ctx, b)
	l.account(time.Since(t0))
	s := &l.p.stats[l.to]
	s.rows.Add(b.NumRows())
	s.batches.Add(1)
	return err
}

func (l timedLink) Advance(ctx context.Context, wm Watermark) error {
	t0 := time.Now()
	err := l.p.ops[l.to].Advance(ctx, wm)
	l.account(time.Since(t0))
	return err
}

func (l timedLink) account(d time.Duration) {
	l.p.stats[l.to].nanos.Add(int64(d))
	if l.to > 0 {
		l.p.stats[l.to-1].below.Add(int64(d))
	}
}

// drain releases batches left in the queue after Run stops.
func (p *Pipeline) drain() {
	for {
		select {
		case in := <-p.in:
			in.Rec.Release()
		default:
			return
		}
	}
}

// Explain returns the operators' EXPLAIN lines, last (the sink) first.
func Explain(ops []Operator) []string {
	lines := make([]string, len(ops))
	for i, op := range ops {
		lines[len(ops)-1-i] = op.String()
	}
	return lines
}
