package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/windows/snap"
)

// Checkpoints and epochs (see DESIGN.md, "Exactly-once to PostgreSQL").
//
// Every CheckpointInterval a view's pipeline saves its operators' state
// between two batches. That state, with the stream position it covers and
// the view's live tables, is the epoch's checkpoint. The result changes
// the view produced since the previous checkpoint are the epoch's
// changes. A committer goroutine per view then, in order:
//
//  1. puts the checkpoint into the JetStream object store (the engine
//     always has it), under the view's name and the epoch's number;
//  2. with a sink database, writes the epoch's changes and the view's
//     progress row (epoch, position) in one PostgreSQL transaction;
//  3. deletes the view's older checkpoints.
//
// On restart a view restores the checkpoint of the epoch PostgreSQL says
// is committed (without a sink database: the newest checkpoint), and its
// source rewinds to the checkpoint's position + 1. Replayed events produce
// exactly the changes of the epochs after it, none of which PostgreSQL
// holds, so nothing is lost or applied twice.
//
// When the sink database is unreachable the committer retries with
// backoff (the view's state says "sink unavailable") while the pipeline
// goes on into a bounded queue of epochs; when that is full the pipeline
// waits ("backpressured"), its input queue fills, and the source stops
// fetching from JetStream.

// checkpointBucket is the JetStream object store of views' checkpoints.
const checkpointBucket = "sessionsql_checkpoints"

// DefaultCheckpointInterval is how often views checkpoint unless
// Config.CheckpointInterval says otherwise.
const DefaultCheckpointInterval = 10 * time.Second

// errCheckpointStore marks a commit that failed to store its checkpoint
// (NATS away), as opposed to one the sink database refused.
var errCheckpointStore = errors.New("checkpoint store")

// epochQueue is how many checkpointed epochs may wait for their commit.
const epochQueue = 2

// DefaultSinkBuffer is how many bytes of result changes a view keeps for
// the sink database, beyond the epochs queued for commit, before its
// pipeline waits (Config.SinkBuffer).
const DefaultSinkBuffer = 64 << 20

// checkpointStore keeps checkpoints in a JetStream object store, one
// object per view and epoch.
type checkpointStore struct {
	os jetstream.ObjectStore
}

func openCheckpointStore(ctx context.Context, js jetstream.JetStream) (*checkpointStore, error) {
	os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      checkpointBucket,
		Description: "sessionsql: materialized views' checkpoints",
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open checkpoint store %s: %w", checkpointBucket, err)
	}
	return &checkpointStore{os: os}, nil
}

func checkpointPrefix(view string) string { return "view/" + view + "/" }

func checkpointName(view string, epoch uint64) string {
	return fmt.Sprintf("%s%020d", checkpointPrefix(view), epoch)
}

func (c *checkpointStore) put(ctx context.Context, view string, epoch uint64, data []byte) error {
	if _, err := c.os.PutBytes(ctx, checkpointName(view, epoch), data); err != nil {
		return fmt.Errorf("store checkpoint %d of %q: %w", epoch, view, err)
	}
	return nil
}

func (c *checkpointStore) get(ctx context.Context, view string, epoch uint64) ([]byte, error) {
	b, err := c.os.GetBytes(ctx, checkpointName(view, epoch))
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %d of %q: %w", epoch, view, err)
	}
	return b, nil
}

// epochs returns the epochs of the view's stored checkpoints, ascending.
func (c *checkpointStore) epochs(ctx context.Context, view string) ([]uint64, error) {
	infos, err := c.os.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	prefix := checkpointPrefix(view)
	var out []uint64
	for _, info := range infos {
		var e uint64
		if rest, ok := strings.CutPrefix(info.Name, prefix); ok {
			if _, err := fmt.Sscanf(rest, "%d", &e); err == nil {
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// delete deletes one checkpoint of the view, if it exists.
func (c *checkpointStore) delete(ctx context.Context, view string, epoch uint64) error {
	if err := c.os.Delete(ctx, checkpointName(view, epoch)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete checkpoint %d of %q: %w", epoch, view, err)
	}
	return nil
}

// prune deletes the view's checkpoints other than keep (all when keep is
// 0).
func (c *checkpointStore) prune(ctx context.Context, view string, keep uint64) error {
	es, err := c.epochs(ctx, view)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e != keep {
			if err := c.delete(ctx, view, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func sourceCheckpointName(source string) string { return "source/" + source }

// putSource stores a source's dead-letter checkpoint (one per source).
func (c *checkpointStore) putSource(ctx context.Context, source string, data []byte) error {
	if _, err := c.os.PutBytes(ctx, sourceCheckpointName(source), data); err != nil {
		return fmt.Errorf("store checkpoint of source %q: %w", source, err)
	}
	return nil
}

// getSource returns a source's dead-letter checkpoint, nil when none.
func (c *checkpointStore) getSource(ctx context.Context, source string) ([]byte, error) {
	b, err := c.os.GetBytes(ctx, sourceCheckpointName(source))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint of source %q: %w", source, err)
	}
	return b, nil
}

// dropSource deletes a source's dead-letter checkpoint.
func (c *checkpointStore) dropSource(ctx context.Context, source string) error {
	err := c.os.Delete(ctx, sourceCheckpointName(source))
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete checkpoint of source %q: %w", source, err)
	}
	return nil
}

// savedCheckpoint is what one object of the store holds.
type savedCheckpoint struct {
	epoch, pos uint64
	sql        string // the view's definition: a checkpoint of another is refused
	state      []byte // the pipeline's state (exec.Checkpoint.State)
	live, late []byte // the live result (without a sink database) and late tables, Arrow IPC (empty: no rows)
}

func (s *savedCheckpoint) encode() []byte {
	w := snap.NewWriter(make([]byte, 0, len(s.state)+len(s.live)+len(s.late)+len(s.sql)+64))
	w.Section("sessionsql checkpoint")
	w.Uint(s.epoch)
	w.Uint(s.pos)
	w.String(s.sql)
	w.Blob(s.state)
	w.Blob(s.live)
	w.Blob(s.late)
	return w.Bytes()
}

func decodeCheckpoint(b []byte) (*savedCheckpoint, error) {
	r := snap.NewReader(b)
	r.Section("sessionsql checkpoint")
	s := &savedCheckpoint{epoch: r.Uint(), pos: r.Uint(), sql: r.String(), state: r.Blob(), live: r.Blob(), late: r.Blob()}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return s, nil
}

// scanIPC returns a live table's rows as Arrow IPC (nil when empty).
func scanIPC(m *sink.Memory, mem memory.Allocator) ([]byte, error) {
	rec, err := m.Scan(mem)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	if rec.NumRows() == 0 {
		return nil, nil
	}
	return exec.WriteIPC(rec)
}

// restoreIPC applies rows saved by scanIPC to a live table.
func restoreIPC(ctx context.Context, m *sink.Memory, mem memory.Allocator, blob []byte) error {
	if len(blob) == 0 {
		return nil
	}
	rec, err := exec.ReadIPC(mem, blob)
	if err != nil {
		return err
	}
	defer rec.Release()
	return m.Apply(ctx, exec.Changes{Upserts: rec})
}

// epochBuffer keeps the changes a view makes to its tables in the sink
// database during the current epoch, in order, until the checkpoint hands
// them to the committer.
type epochBuffer struct {
	changes []tableChanges
	bytes   int64
}

// tableChanges is one Changes for one table of the sink database.
type tableChanges struct {
	t *sink.PGTable
	c exec.Changes
}

// into is the exec.Table the pipeline writes for t: it buffers.
type into struct {
	b *epochBuffer
	t *sink.PGTable
}

func (w into) Apply(_ context.Context, c exec.Changes) error {
	if c.Empty() {
		return nil
	}
	if c.Upserts != nil {
		c.Upserts.Retain()
		w.b.bytes += recordBytes(c.Upserts)
	}
	if c.Deletes != nil {
		c.Deletes.Retain()
		w.b.bytes += recordBytes(c.Deletes)
	}
	w.b.changes = append(w.b.changes, tableChanges{w.t, c})
	return nil
}

// recordBytes is the size of a batch's buffers (slices count whole).
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}

// cut returns the epoch's changes and starts the next epoch.
func (b *epochBuffer) cut() ([]tableChanges, int64) {
	cs, n := b.changes, b.bytes
	b.changes, b.bytes = nil, 0
	return cs, n
}

func (b *epochBuffer) release() {
	for _, c := range b.changes {
		c.c.Release()
	}
	b.changes, b.bytes = nil, 0
}

// epoch is one checkpointed epoch on its way to being committed.
type epoch struct {
	n, pos   uint64
	blob     []byte
	changes  []tableChanges
	bytes    int64
	received int64     // rows of changes before coalesce
	at       time.Time // when the checkpoint was taken
}

// changeRows is the number of rows c upserts and deletes.
func changeRows(c exec.Changes) int64 {
	var n int64
	if c.Upserts != nil {
		n += c.Upserts.NumRows()
	}
	if c.Deletes != nil {
		n += c.Deletes.NumRows()
	}
	return n
}

func (ep *epoch) release() {
	for _, c := range ep.changes {
		c.c.Release()
	}
	ep.changes = nil
}

// sinkTotals add up the committed epochs' writes to the sink database,
// for EXPLAIN ANALYZE and /metrics.
type sinkTotals struct {
	epochs   atomic.Int64
	received atomic.Int64 // rows the pipeline wrote, before Coalesce
	upserts  atomic.Int64 // rows upserted (or appended)
	deletes  atomic.Int64 // keys deleted
	txNanos  atomic.Int64 // time in the epochs' transactions
}

// String is EXPLAIN ANALYZE's line for the sink.
func (s *sinkTotals) String() string {
	return fmt.Sprintf("Commits to PostgreSQL: epochs=%d received=%d upserts=%d deletes=%d time=%s",
		s.epochs.Load(), s.received.Load(), s.upserts.Load(), s.deletes.Load(), time.Duration(s.txNanos.Load()).Round(time.Microsecond))
}

// committer commits a view's epochs in order (see the top of this file).
type committer struct {
	view  string
	store *checkpointStore
	pg    *sink.Postgres // nil: checkpoints only
	mem   memory.Allocator
	log   *slog.Logger

	buf      epochBuffer // written by the pipeline's goroutine only
	limit    int64       // bytes buf may hold while the queue is full
	next     uint64      // the next epoch's number; pipeline goroutine only
	warnedAt time.Time   // of the last backpressure warning; pipeline goroutine only
	last     uint64      // position of the last checkpoint taken
	queue    chan *epoch
	done     chan struct{}
	prev     uint64 // the last epoch committed by this run; committer goroutine only

	committedEpoch, committedPos atomic.Uint64
	checkpoints, deferred        atomic.Int64
	txNanos, latencyNanos        atomic.Int64 // of the last commit: its transaction, and from its checkpoint to its end
	lastBytes, lastNanos         atomic.Int64 // size of the last checkpoint, and the pipeline's time to take it
	waiting                      atomic.Bool  // the pipeline waits for room in the queue
	unavailable                  atomic.Value // string: "sink unavailable: why" (or sink error, checkpoints unavailable) while commits fail; "" when fine
	queued                       atomic.Int64 // bytes of changes queued for commit
	sink                         sinkTotals   // of the epochs committed to the sink database

	stopOnce sync.Once
}

func newCommitter(view string, store *checkpointStore, pg *sink.Postgres, mem memory.Allocator, log *slog.Logger, limit int64, epochAfter, pos uint64) *committer {
	c := &committer{view: view, store: store, pg: pg, mem: mem, log: log, limit: limit, next: epochAfter + 1, last: pos,
		queue: make(chan *epoch, epochQueue), done: make(chan struct{})}
	c.committedEpoch.Store(epochAfter)
	c.committedPos.Store(pos)
	c.unavailable.Store("")
	return c
}

// table is what the pipeline writes for t, a table of the sink database:
// the epoch's buffer. It must be used on the pipeline's goroutine.
func (c *committer) table(t *sink.PGTable) exec.Table { return into{&c.buf, t} }

// state refines the pipeline's state for SHOW MATERIALIZED VIEWS.
func (c *committer) state(pipe string) string {
	if pipe != "running" {
		return pipe
	}
	if why := c.unavailable.Load().(string); why != "" {
		if c.waiting.Load() {
			return "backpressured: " + why
		}
		return why
	}
	if c.waiting.Load() {
		return "backpressured"
	}
	return "running"
}

// checkpoint is the pipeline's Checkpoint callback: it packs the epoch
// and queues it. While the committer is behind (the queue is full), the
// checkpoint is put off and the epoch goes on growing, so a slow sink
// makes epochs longer, not the pipeline slower; once the epoch holds more
// than the limit of changes, the pipeline waits for room (backpressure).
func (c *committer) checkpoint(ctx context.Context, ck exec.Checkpoint, live, late *sink.Memory, mem memory.Allocator, sql string) error {
	if ck.Pos == c.last && len(c.buf.changes) == 0 {
		return nil // nothing happened since the last one
	}
	if len(c.queue) == cap(c.queue) && c.buf.bytes < c.limit {
		c.deferred.Add(1)
		return nil
	}
	t0 := time.Now()
	s := savedCheckpoint{pos: ck.Pos, sql: sql, state: ck.State, epoch: c.next}
	var err error
	if c.pg == nil {
		// Without a sink database the live table is the only copy of
		// the results. With one, a restart reads them back from there
		// (the committed epoch's tables are this checkpoint's), so
		// checkpoints do not grow with every row ever written.
		if s.live, err = scanIPC(live, mem); err != nil {
			return err
		}
	}
	if s.late, err = scanIPC(late, mem); err != nil {
		return err
	}
	ep := &epoch{n: c.next, pos: ck.Pos, blob: s.encode(), at: t0}
	ep.changes, ep.bytes = c.buf.cut()
	c.next++
	c.last = ck.Pos
	c.lastBytes.Store(int64(len(ep.blob)))
	c.lastNanos.Store(int64(ck.Took + time.Since(t0)))
	c.checkpoints.Add(1)
	c.queued.Add(ep.bytes)
	select {
	case c.queue <- ep:
		return nil
	default:
	}
	c.waiting.Store(true)
	if time.Since(c.warnedAt) > time.Minute {
		c.warnedAt = time.Now()
		c.log.Warn("backpressure: waiting for earlier epochs to commit", "epoch", ep.n, "queued_bytes", c.queued.Load())
	}
	defer c.waiting.Store(false)
	select {
	case c.queue <- ep:
		return nil
	case <-ctx.Done():
		ep.release()
		return ctx.Err()
	}
}

// run commits queued epochs until ctx is done.
func (c *committer) run(ctx context.Context) {
	defer close(c.done)
	defer func() {
		for {
			select {
			case ep := <-c.queue:
				ep.release()
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ep := <-c.queue:
			err := c.coalesce(ep)
			if err == nil {
				err = c.commitRetrying(ctx, ep)
			} else {
				c.unavailable.Store("sink error: " + shortErr(err))
				c.log.Error("epoch not committed", "epoch", ep.n, "err", err)
			}
			c.queued.Add(-ep.bytes)
			ep.release()
			if err != nil {
				return
			}
		}
	}
}

// coalesce replaces the epoch's changes, one per batch the pipeline
// pushed, with their net effect per table (sink.TableSpec.Coalesce): a
// row updated by many batches of the epoch is written once, in change
// sets of about 10,000 rows.
func (c *committer) coalesce(ep *epoch) error {
	var tables []*sink.PGTable
	byTable := map[*sink.PGTable][]exec.Changes{}
	ep.received = 0
	for _, ch := range ep.changes {
		if _, ok := byTable[ch.t]; !ok {
			tables = append(tables, ch.t)
		}
		byTable[ch.t] = append(byTable[ch.t], ch.c)
		ep.received += changeRows(ch.c)
	}
	var out []tableChanges
	for _, t := range tables {
		cs, err := t.Spec().Coalesce(c.mem, byTable[t], sink.DefaultCoalesceRows)
		if err != nil {
			for _, tc := range out {
				tc.c.Release()
			}
			return fmt.Errorf("sink table %q: %w", t.Spec().Name, err)
		}
		for _, cc := range cs {
			out = append(out, tableChanges{t, cc})
		}
	}
	ep.release()
	ep.changes = out
	return nil
}

// commitRetrying commits ep, retrying with backoff until it succeeds or
// ctx is done.
func (c *committer) commitRetrying(ctx context.Context, ep *epoch) error {
	stored := false
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := c.commit(ctx, ep, &stored)
		if err == nil {
			if why := c.unavailable.Load().(string); why != "" {
				c.log.Info("sink available again: committed", "epoch", ep.n, "attempts", attempt+1)
				c.unavailable.Store("")
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.unavailable.Load().(string) == "" {
			c.log.Warn("epoch not committed: retrying", "epoch", ep.n, "err", err)
		}
		// A sink that cannot be reached is the usual case; any other
		// failure (a table altered behind our back) is retried too, so
		// that fixing it is enough, but named for what it is.
		why := "sink unavailable: "
		switch {
		case errors.Is(err, errCheckpointStore):
			why = "checkpoints unavailable: "
		case !sink.IsUnavailable(err):
			why = "sink error: "
		}
		c.unavailable.Store(why + shortErr(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// commit stores the checkpoint (once), then commits the epoch's changes
// with the progress row, then forgets older checkpoints.
func (c *committer) commit(ctx context.Context, ep *epoch, stored *bool) error {
	if !*stored {
		if err := c.store.put(ctx, c.view, ep.n, ep.blob); err != nil {
			return fmt.Errorf("%w: %w", errCheckpointStore, err)
		}
		*stored = true
	}
	if c.pg != nil {
		t0 := time.Now()
		err := c.pg.InTx(ctx, func(tx pgx.Tx) error {
			for _, ch := range ep.changes {
				if err := ch.t.ApplyTx(ctx, tx, ch.c); err != nil {
					return err
				}
			}
			return c.pg.SetProgressTx(ctx, tx, c.view, ep.n, ep.pos)
		})
		if err != nil {
			return err
		}
		took := int64(time.Since(t0))
		c.txNanos.Store(took)
		c.sink.txNanos.Add(took)
		c.sink.epochs.Add(1)
		c.sink.received.Add(ep.received)
		for _, ch := range ep.changes {
			if ch.c.Upserts != nil {
				c.sink.upserts.Add(ch.c.Upserts.NumRows())
			}
			if ch.c.Deletes != nil {
				c.sink.deletes.Add(ch.c.Deletes.NumRows())
			}
		}
	}
	c.latencyNanos.Store(int64(time.Since(ep.at)))
	c.committedEpoch.Store(ep.n)
	c.committedPos.Store(ep.pos)
	// The first commit of a run deletes whatever older checkpoints a
	// crash left; later ones only the previous epoch's, without listing
	// the store.
	var err error
	if c.prev == 0 {
		err = c.store.prune(ctx, c.view, ep.n)
	} else {
		err = c.store.delete(ctx, c.view, c.prev)
	}
	if err != nil {
		c.log.Warn("old checkpoints not deleted", "err", err)
	}
	c.prev = ep.n
	c.log.Debug("epoch committed", "epoch", ep.n, "position", ep.pos, "checkpoint_bytes", len(ep.blob), "latency", time.Since(ep.at))
	return nil
}

// loadCheckpoint returns the checkpoint a restarting view resumes from,
// or nil to rebuild from the stream: with a sink database, the one of its
// committed epoch; without, the newest.
func (e *Engine) loadCheckpoint(ctx context.Context, view, sql string) (*savedCheckpoint, error) {
	var epoch uint64
	if e.pg != nil {
		ep, _, ok, err := e.pg.Progress(ctx, view)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		epoch = ep
	} else {
		es, err := e.ckpt.epochs(ctx, view)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, nil
		}
		epoch = es[len(es)-1]
	}
	b, err := e.ckpt.get(ctx, view, epoch)
	if err != nil {
		return nil, err
	}
	s, err := decodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d of %q: %w", epoch, view, err)
	}
	if s.epoch != epoch {
		return nil, fmt.Errorf("checkpoint object %d of %q holds epoch %d", epoch, view, s.epoch)
	}
	if s.sql != sql {
		return nil, fmt.Errorf("checkpoint %d of %q is of another definition of the view", epoch, view)
	}
	return s, nil
}

// forgetCheckpoints deletes a view's checkpoints and progress row (DROP,
// or CREATE of a name an earlier view had).
func (e *Engine) forgetCheckpoints(ctx context.Context, view string) error {
	if err := e.ckpt.prune(ctx, view, 0); err != nil {
		return err
	}
	if e.pg != nil {
		return e.pg.DeleteProgress(ctx, view)
	}
	return nil
}
