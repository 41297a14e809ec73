package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordOp records the sequences it is pushed, and fails on failAt.
type recordOp struct {
	mu     sync.Mutex
	seqs   []int64
	failAt int64
}

func (r *recordOp) Open(context.Context, Downstream) error { return nil }
func (r *recordOp) Push(_ context.Context, b arrow.RecordBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range b.Column(2).(*array.Int64).Int64Values() {
		if s == r.failAt {
			return fmt.Errorf("failing at %d", s)
		}
		r.seqs = append(r.seqs, s)
	}
	return nil
}
func (r *recordOp) Advance(context.Context, Watermark) error { return nil }
func (r *recordOp) Tick(context.Context, time.Time) error    { return nil }
func (r *recordOp) Close() error                             { return nil }
func (r *recordOp) String() string                           { return "Record" }

func (r *recordOp) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRouterSkipsSeenRows: a pipeline that joins with an earlier position
// gets every row after it once; the others never see a row twice when
// the reader is rewound; a failing pipeline stops alone.
func TestRouterSkipsSeenRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	router := NewRouter(2, log)
	var wg sync.WaitGroup
	start := func(op *recordOp, pos uint64) *Pipeline {
		p := NewPipeline(fmt.Sprint(pos), []Operator{op}, pos, PipelineOptions{Queue: 1}, log)
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Run(ctx) }()
		router.Add(p)
		return p
	}
	send := func(from, to int) { // rows with sequences from..to
		var evs []testEvent
		for range to - from + 1 {
			evs = append(evs, testEvent{ts: 1})
		}
		rec := buildBatch(mem, evs, from)
		defer rec.Release()
		if err := router.Route(ctx, rec, uint64(to), 0); err != nil {
			t.Fatal(err)
		}
	}
	a := &recordOp{failAt: -1}
	pa := start(a, 0)
	send(1, 10)
	send(11, 20)
	b := &recordOp{failAt: -1}
	start(b, 5) // joins having seen 1..5
	send(1, 10) // the reader was rewound: a skips all, b gets 6..10
	send(11, 25)
	failing := &recordOp{failAt: 30}
	pf := start(failing, 25)
	send(26, 40)
	waitFor(t, func() error {
		if len(a.got()) != 40 || len(b.got()) != 35 {
			return fmt.Errorf("a got %d rows, b %d", len(a.got()), len(b.got()))
		}
		return nil
	})
	<-pf.Done()
	if pf.Err() == nil || pf.State() == "running" {
		t.Fatalf("failing pipeline: state %q err %v", pf.State(), pf.Err())
	}
	send(41, 45) // routes around the failed pipeline
	waitFor(t, func() error {
		if pos, _ := router.MinPosition(); pos != 45 || router.Len() != 2 {
			return fmt.Errorf("min position %d over %d pipelines, want 45 over 2 (the failed one no longer routed)", pos, router.Len())
		}
		return nil
	})
	if pa.Position() != 45 {
		t.Fatalf("a at %d", pa.Position())
	}
	for name, r := range map[string]*recordOp{"a": a, "b": b} {
		seen := map[int64]int{}
		for _, s := range r.got() {
			seen[s]++
		}
		for s, n := range seen {
			if n != 1 {
				t.Errorf("%s saw sequence %d %d times", name, s, n)
			}
		}
	}
	cancel()
	wg.Wait()
}

// TestPipelineRecoversPanic: a panicking operator stops its pipeline with
// an error; nothing leaks.
func TestPipelineRecoversPanic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := NewPipeline("p", []Operator{&panicOp{}}, 0, PipelineOptions{}, slog.New(slog.DiscardHandler))
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	rec := buildBatch(mem, []testEvent{{ts: 1}}, 1)
	// The batch is taken; Send may still report the pipeline stopped if
	// the panic closed it before Send returned.
	if err := p.Send(context.Background(), Input{Rec: rec, LastSeq: 1}); err != nil && !strings.Contains(err.Error(), "not running") {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	rec2 := buildBatch(mem, []testEvent{{ts: 1}}, 2)
	if err := p.Send(context.Background(), Input{Rec: rec2, LastSeq: 2}); err == nil {
		t.Fatal("Send to a stopped pipeline succeeded")
	}
}

type panicOp struct{ recordOp }

func (*panicOp) Push(context.Context, arrow.RecordBatch) error { panic("boom") }

// TestPipelineCheckpointsOnCatchUp: with CheckpointOnCatchUp, the batch
// that ends a backlog (read with nothing pending, after one read with
// more than a batch pending) is followed by a checkpoint at once, at
// least a tenth of the interval after the last; batches of a source that
// keeps up (a little pending, or none) take none before the interval.
func TestPipelineCheckpointsOnCatchUp(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	cks := make(chan uint64, 16)
	p := NewPipeline("p", []Operator{&recordOp{}}, 0, PipelineOptions{
		TickEvery: time.Hour, Now: now, CheckpointEvery: 10 * time.Second, CheckpointOnCatchUp: true,
		Checkpoint: func(_ context.Context, c Checkpoint) error { cks <- c.Pos; return nil },
	}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	seq := int64(0)
	send := func(pending uint64) {
		t.Helper()
		seq++
		if err := p.Send(ctx, Input{Rec: buildBatch(mem, []testEvent{{ts: seq}}, int(seq)), LastSeq: uint64(seq), Pending: pending}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			if p.Position() != uint64(seq) {
				return fmt.Errorf("position %d, want %d", p.Position(), seq)
			}
			return nil
		})
	}
	expect := func() {
		t.Helper()
		select {
		case pos := <-cks:
			if pos != uint64(seq) {
				t.Fatalf("checkpoint at %d, want %d", pos, seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no checkpoint after the batch that ends the backlog (%d)", seq)
		}
	}
	none := func(when string) {
		t.Helper()
		select {
		case pos := <-cks:
			t.Fatalf("%s: a checkpoint at %d", when, pos)
		default:
		}
	}
	waitFor(t, func() error {
		if st := p.State(); st != "running" {
			return fmt.Errorf("pipeline %s", st)
		}
		return nil
	})
	advance(2 * time.Second)
	send(1) // keeping up: one message behind
	send(0)
	none("a source that keeps up")
	send(5000) // a backlog
	send(0)    // worked through
	expect()
	send(0)
	none("after the catch-up checkpoint")
	send(5000)
	send(0)
	none("a catch-up within a tenth of the interval of the last checkpoint")
	advance(time.Second)
	send(0)
	expect()
}
