package sink

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/exec"
)

// DefaultMaxAppendRows is how many rows a Memory keeps of an append-only
// table unless WithMaxAppendRows says otherwise.
const DefaultMaxAppendRows = 100_000

// compactMinDead is the number of deleted slots below which a keyed Memory
// never compacts; above it, it compacts once deleted slots are at least
// half of all slots, which keeps Apply amortised O(rows changed).
const compactMinDead = 32

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithMaxAppendRows sets how many of the newest rows an append-only Memory
// keeps (n <= 0 means DefaultMaxAppendRows). Older rows are let go and
// counted by Dropped; the PostgreSQL table keeps them all. It has no effect
// on keyed tables, whose size is bounded by their live windows.
func WithMaxAppendRows(n int) MemoryOption {
	return func(m *Memory) {
		if n > 0 {
			m.maxAppend = n
		}
	}
}

// Memory is the live in-memory result table served to SELECT.
//
// Apply is called from one pipeline goroutine; Scan, Len and Dropped from
// any number of connection goroutines at the same time. A Scan sees either
// all or none of an Apply: Apply holds the write lock for the whole change
// set, Scan the read lock while it copies the rows out.
//
// Rows live in Go memory, one slice per column, updated in place; Scan
// copies them into a new batch. Row order is deterministic: for a keyed
// table, the order in which keys were first inserted (an update keeps the
// row's place, a delete and re-insert moves it to the end); for an
// append-only table, arrival order.
type Memory struct {
	spec      TableSpec
	specErr   error // from spec.Validate; returned by every Apply and Scan
	mem       memory.Allocator
	maxAppend int
	keyKinds  []kind
	isKey     []bool // by column index

	dropped atomic.Int64 // rows an append-only table let go

	mu     sync.RWMutex
	closed bool
	cols   []column
	n      int // slots in use in every column

	// Keyed tables. Slot s holds a row when live[s]; keys[s] is its encoded
	// key and index[keys[s]] == s. dead counts slots with live[s] false.
	live  []bool
	keys  []string
	index map[string]int
	dead  int

	// Append-only tables: slots [start, n) hold the newest rows.
	start int

	// Scratch for Apply, used under the write lock.
	keyBuf []byte
	slots  []int
}

var _ exec.Table = (*Memory)(nil)

// NewMemory returns an empty table for spec. mem is the allocator Scan uses
// when its caller passes nil (nil here means memory.DefaultAllocator); the
// rows themselves are held in Go memory. An invalid spec (see
// TableSpec.Validate) is reported by every Apply and Scan.
func NewMemory(spec TableSpec, mem memory.Allocator, opts ...MemoryOption) *Memory {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	m := &Memory{spec: spec, mem: mem, maxAppend: DefaultMaxAppendRows}
	for _, o := range opts {
		o(m)
	}
	if m.specErr = spec.Validate(); m.specErr != nil {
		return m
	}
	m.cols = make([]column, spec.Schema.NumFields())
	for i, f := range spec.Schema.Fields() {
		m.cols[i] = column{kind: kindOf(f.Type), typ: f.Type}
	}
	if spec.Keyed() {
		m.index = make(map[string]int)
		m.keyKinds = make([]kind, len(spec.Key))
		m.isKey = make([]bool, len(m.cols))
		for i, k := range spec.Key {
			m.keyKinds[i] = m.cols[k].kind
			m.isKey[k] = true
		}
	}
	return m
}

// Spec returns the table's spec.
func (m *Memory) Spec() TableSpec { return m.spec }

// Apply applies c atomically: the deletes, then the upserts. A delete of an
// absent key does nothing. On an append-only table every upserted row is
// appended and only the newest rows are kept (see WithMaxAppendRows). A
// Changes that does not fit the table's schema is refused whole.
func (m *Memory) Apply(ctx context.Context, c exec.Changes) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.specErr != nil {
		return fmt.Errorf("memory table %q: %w", m.spec.Name, m.specErr)
	}
	if err := m.spec.checkChanges(c); err != nil {
		return fmt.Errorf("memory table: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("memory table %q: %w", m.spec.Name, ErrClosed)
	}
	if !m.spec.Keyed() {
		if c.Upserts != nil {
			m.appendLocked(c.Upserts)
		}
		return nil
	}
	if c.Deletes != nil {
		m.deleteLocked(c.Deletes)
	}
	if c.Upserts != nil {
		m.upsertLocked(c.Upserts)
	}
	if m.dead >= compactMinDead && 2*m.dead >= m.n {
		m.compactLocked()
	}
	return nil
}

func (m *Memory) deleteLocked(d arrow.RecordBatch) {
	keyCols := d.Columns()
	for row := range int(d.NumRows()) {
		m.keyBuf = appendKey(m.keyBuf[:0], keyCols, m.keyKinds, row)
		s, ok := m.index[string(m.keyBuf)]
		if !ok {
			continue
		}
		delete(m.index, m.keys[s])
		m.keys[s] = ""
		m.live[s] = false
		m.dead++
		for i := range m.cols {
			m.cols[i].clearSlot(s)
		}
	}
}

func (m *Memory) upsertLocked(u arrow.RecordBatch) {
	rows := int(u.NumRows())
	if rows == 0 {
		return
	}
	keyCols := make([]arrow.Array, len(m.spec.Key))
	for i, k := range m.spec.Key {
		keyCols[i] = u.Column(k)
	}
	// slots[row] is the row's slot; newSlots[row] the same for a new key
	// and -1 for an existing one, whose key columns keep their value (as
	// PostgreSQL's ON CONFLICT DO UPDATE does, which matters for keys that
	// are equal but not identical: -0 and 0, NaNs).
	buf := resized(m.slots, 2*rows)
	slots, newSlots := buf[:rows], buf[rows:]
	next := m.n
	for row := range rows {
		m.keyBuf = appendKey(m.keyBuf[:0], keyCols, m.keyKinds, row)
		if s, ok := m.index[string(m.keyBuf)]; ok {
			slots[row], newSlots[row] = s, -1
			continue
		}
		k := string(m.keyBuf)
		m.index[k] = next
		m.keys = append(m.keys, k)
		m.live = append(m.live, true)
		slots[row], newSlots[row] = next, next
		next++
	}
	for i := range m.cols {
		m.cols[i].resize(next)
		if m.isKey[i] {
			m.cols[i].scatter(u.Column(i), newSlots)
		} else {
			m.cols[i].scatter(u.Column(i), slots)
		}
	}
	m.n = next
	m.slots = buf
}

// compactLocked removes the dead slots, keeping the live rows in order.
func (m *Memory) compactLocked() {
	for i := range m.cols {
		m.cols[i].compact(m.live)
	}
	w := 0
	for s, ok := range m.live {
		if ok {
			k := m.keys[s]
			m.keys[w] = k
			m.index[k] = w
			w++
		}
	}
	clear(m.keys[w:])
	m.keys = m.keys[:w]
	m.live = m.live[:w]
	for s := range m.live {
		m.live[s] = true
	}
	m.n = w
	m.dead = 0
}

func (m *Memory) appendLocked(u arrow.RecordBatch) {
	rows := int(u.NumRows())
	if rows == 0 {
		return
	}
	// Rows of this batch beyond the cap would be let go at once: skip them.
	skip := max(0, rows-m.maxAppend)
	slots := resized(m.slots, rows)
	for row := range rows {
		if row < skip {
			slots[row] = -1
		} else {
			slots[row] = m.n + row - skip
		}
	}
	next := m.n + rows - skip
	for i := range m.cols {
		m.cols[i].resize(next)
		m.cols[i].scatter(u.Column(i), slots)
	}
	m.n = next
	m.slots = slots
	let := int64(skip)
	if live := m.n - m.start; live > m.maxAppend {
		m.start += live - m.maxAppend
		let += int64(live - m.maxAppend)
	}
	m.dropped.Add(let)
	// Memory stays below twice the cap: shift once the dropped prefix is
	// as long as what is kept.
	if m.start > 0 && m.start >= m.n-m.start {
		for i := range m.cols {
			m.cols[i].dropFront(m.start)
		}
		m.n -= m.start
		m.start = 0
	}
}

// Scan returns a consistent snapshot of every row as one batch, in the
// table's deterministic order, allocated from mem (the table's allocator
// when mem is nil). The caller releases it. Scan may run concurrently with
// Apply and other Scans.
func (m *Memory) Scan(mem memory.Allocator) (arrow.RecordBatch, error) {
	if mem == nil {
		mem = m.mem
	}
	if m.specErr != nil {
		return nil, fmt.Errorf("memory table %q: %w", m.spec.Name, m.specErr)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, fmt.Errorf("memory table %q: %w", m.spec.Name, ErrClosed)
	}
	runs, total := m.runsLocked()
	arrs := make([]arrow.Array, len(m.cols))
	for i := range m.cols {
		arrs[i] = m.cols[i].build(mem, runs, total)
	}
	rec := array.NewRecordBatch(m.spec.Schema, arrs, int64(total))
	for _, a := range arrs {
		a.Release()
	}
	return rec, nil
}

// runsLocked returns the live slots as runs, and how many there are.
func (m *Memory) runsLocked() ([]span, int) {
	if !m.spec.Keyed() {
		if m.n == m.start {
			return nil, 0
		}
		return []span{{m.start, m.n}}, m.n - m.start
	}
	var runs []span
	lo := -1
	for s, ok := range m.live {
		switch {
		case ok && lo < 0:
			lo = s
		case !ok && lo >= 0:
			runs = append(runs, span{lo, s})
			lo = -1
		}
	}
	if lo >= 0 {
		runs = append(runs, span{lo, m.n})
	}
	return runs, m.n - m.dead
}

// Len returns the number of rows in the table (0 once closed).
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.closed || m.specErr != nil:
		return 0
	case m.spec.Keyed():
		return m.n - m.dead
	default:
		return m.n - m.start
	}
}

// Dropped returns how many rows an append-only table has let go to stay
// within its cap since it was created. It is always 0 for a keyed table.
func (m *Memory) Dropped() int64 { return m.dropped.Load() }

// Close releases every row. It is idempotent; Apply and Scan then return
// ErrClosed.
func (m *Memory) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.cols, m.live, m.keys, m.index, m.keyBuf, m.slots = nil, nil, nil, nil, nil, nil
	m.n, m.dead, m.start = 0, 0, 0
}
