package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/server"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// Config is what an Engine runs on.
type Config struct {
	JS       jetstream.JetStream
	Catalog  *catalog.Catalog
	Postgres *sink.Postgres // nil: results live in memory only
	Mem      memory.Allocator
	Log      *slog.Logger
	// CheckpointInterval is how often views checkpoint and commit an
	// epoch (default DefaultCheckpointInterval). With a sink database,
	// results reach it at each commit.
	CheckpointInterval time.Duration
	// SinkBuffer is how many bytes of result changes a view keeps for the
	// sink database while earlier epochs wait for their commit, before it
	// stops taking events (default DefaultSinkBuffer).
	SinkBuffer int64
}

// Engine runs statements: it binds them against the catalog, lowers
// continuous queries to pipelines and keeps them running. It implements
// server.Engine.
//
// Lock order: Engine.mu, then sourceRT.mu. DDL holds Engine.mu for its
// whole run, so DDL statements are serialized; SELECTs take it only to
// find their table.
type Engine struct {
	js  jetstream.JetStream
	cat *catalog.Catalog
	pg  *sink.Postgres
	mem memory.Allocator
	log *slog.Logger

	ckpt       *checkpointStore
	ckptEvery  time.Duration
	sinkBuffer int64

	ctx    context.Context // parent of every background goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	sources map[string]*sourceRT
	views   map[string]*viewRT
	closed  bool
}

var _ server.Engine = (*Engine)(nil)

// New starts an engine and brings back every source and view of the
// catalog. A view that cannot be restarted is logged and left out; the
// others run.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Mem == nil {
		cfg.Mem = memory.NewGoAllocator()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.SinkBuffer <= 0 {
		cfg.SinkBuffer = DefaultSinkBuffer
	}
	e := &Engine{js: cfg.JS, cat: cfg.Catalog, pg: cfg.Postgres, mem: cfg.Mem, log: cfg.Log, ckptEvery: cfg.CheckpointInterval, sinkBuffer: cfg.SinkBuffer,
		sources: map[string]*sourceRT{}, views: map[string]*viewRT{}}
	var err error
	if e.ckpt, err = openCheckpointStore(ctx, cfg.JS); err != nil {
		return nil, err
	}
	if e.pg != nil {
		if err := e.pg.EnsureProgress(ctx); err != nil {
			return nil, err
		}
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.cat.Sources() {
		if _, err := e.startSource(ctx, s, false); err != nil {
			e.log.Error("source not restarted", "source", s.Name, "err", err)
		}
	}
	for _, v := range e.cat.Views() {
		if err := e.restoreView(ctx, v); err != nil {
			e.log.Error("materialized view not restarted", "view", v.Name, "err", err)
		}
	}
	for _, s := range e.sources {
		e.resumeReader(s)
	}
	return e, nil
}

// restoreView re-plans a view from its saved statement and starts it.
func (e *Engine) restoreView(ctx context.Context, v *catalog.View) error {
	st, err := sql.Parse(v.SQL)
	if err != nil {
		return fmt.Errorf("parse saved definition: %w", err)
	}
	cv, ok := st.(*sql.CreateView)
	if !ok {
		return fmt.Errorf("saved definition is a %T, not CREATE MATERIALIZED VIEW", st)
	}
	plan, err := e.planView(v.Name, cv.Query, nil)
	if err != nil {
		return err
	}
	return e.startView(ctx, v, plan, false)
}

// Close stops every view and source and waits for their goroutines. Stop
// order: readers first (no new batches), then pipelines, so nothing is
// routed to a stopped view.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for _, s := range e.sources {
		s.stopReader()
	}
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.views {
		v.commit.buf.release()
		v.result.Close()
		v.late.Close()
	}
	for _, s := range e.sources {
		s.rejects.Close()
	}
}

// liveTable returns the in-memory table named name: a view's results,
// or a dead-letter table.
func (e *Engine) liveTable(name string) (*sink.Memory, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.views[name]; ok {
		return v.result, true
	}
	for _, v := range e.views {
		if catalog.LateTable(v.def.Name) == name {
			return v.late, true
		}
	}
	for _, s := range e.sources {
		if catalog.RejectsTable(s.def.Name) == name {
			return s.rejects, true
		}
	}
	return nil, false
}

// NewSession implements server.Engine.
func (e *Engine) NewSession(user, database string) server.Session {
	return &session{e: e, usr: user, db: database, vars: map[string]string{}}
}

// errClosed is returned for statements that arrive during shutdown.
var errClosed = sqlerr.New(pgerrcode.AdminShutdown, "the server is shutting down")

func (e *Engine) checkOpen() error {
	if e.closed {
		return errClosed
	}
	return nil
}

// wrapInternal gives errors without a SQLSTATE one that says where they
// came from, keeping the chain.
func wrapInternal(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := sqlerr.As(err); ok || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
