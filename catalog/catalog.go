// Package catalog keeps the definitions of sources and materialized views
// and persists them, so that a restart brings every source and view back.
//
// Definitions are small JSON documents in a Store: a JetStream key-value
// bucket in production (KVStore: the engine always has NATS, embedded or
// external, so the catalog lives beside the data), or memory in tests.
// A definition records the statement the user typed and what was derived
// when it ran (the stream position a view starts from), so re-planning it
// after a restart gives the same pipeline.
//
// Sources, views and the tables the engine derives from them
// (<source>_rejects, <view>_late) share one namespace of relation names.
package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// Column is a column of a source or result table. Type is the canonical
// SQL type name (sqltypes.Name).
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Source is a declared event stream.
type Source struct {
	Name           string        `json:"name"`
	Columns        []Column      `json:"columns"`
	TimeColumn     string        `json:"time_column"`
	WatermarkDelay time.Duration `json:"watermark_delay"`
	IdleTimeout    time.Duration `json:"idle_timeout,omitempty"`
	Stream         string        `json:"stream"`
	Subjects       []string      `json:"subjects"`
	Format         string        `json:"format"`
	Start          string        `json:"start"` // earliest | latest
	SQL            string        `json:"sql"`
	Created        int64         `json:"created"` // creation order
}

// View is a materialized view (a continuous query).
type View struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	SQL    string `json:"sql"`
	// StartSeq is the first stream sequence the view reads (fixed when
	// the view is created: the stream's start, or its end for
	// start = 'latest').
	StartSeq uint64 `json:"start_seq"`
	Created  int64  `json:"created"`
}

// RejectsTable and LateTable name the dead-letter tables.
func RejectsTable(source string) string { return source + "_rejects" }

// LateTable names a view's table of events too late for their window.
func LateTable(view string) string { return view + "_late" }

// Store persists definitions under string keys.
type Store interface {
	Put(ctx context.Context, key string, val []byte) error
	Delete(ctx context.Context, key string) error
	// List returns every key and value.
	List(ctx context.Context) (map[string][]byte, error)
}

// Catalog is the set of definitions; safe for concurrent use.
type Catalog struct {
	store Store

	mu      sync.RWMutex
	sources map[string]*Source
	views   map[string]*View
	next    int64
}

const (
	sourcePrefix = "source."
	viewPrefix   = "view."
)

// Open loads the catalog from store.
func Open(ctx context.Context, store Store) (*Catalog, error) {
	c := &Catalog{store: store, sources: map[string]*Source{}, views: map[string]*View{}}
	all, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	for k, v := range all {
		switch {
		case strings.HasPrefix(k, sourcePrefix):
			var s Source
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("load catalog entry %q: %w", k, err)
			}
			c.sources[s.Name] = &s
			c.next = max(c.next, s.Created+1)
		case strings.HasPrefix(k, viewPrefix):
			var w View
			if err := json.Unmarshal(v, &w); err != nil {
				return nil, fmt.Errorf("load catalog entry %q: %w", k, err)
			}
			c.views[w.Name] = &w
			c.next = max(c.next, w.Created+1)
		}
	}
	return c, nil
}

// Source returns the source named name.
func (c *Catalog) Source(name string) (*Source, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.sources[name]
	return s, ok
}

// View returns the view named name.
func (c *Catalog) View(name string) (*View, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.views[name]
	return v, ok
}

// Sources returns every source in creation order.
func (c *Catalog) Sources() []*Source {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Source, 0, len(c.sources))
	for _, s := range c.sources {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Source) int { return cmp.Compare(a.Created, b.Created) })
	return out
}

// Views returns every view in creation order.
func (c *Catalog) Views() []*View {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*View, 0, len(c.views))
	for _, v := range c.views {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *View) int { return cmp.Compare(a.Created, b.Created) })
	return out
}

// ViewsOf returns the views that read source, in creation order.
func (c *Catalog) ViewsOf(source string) []*View {
	var out []*View
	for _, v := range c.Views() {
		if v.Source == source {
			out = append(out, v)
		}
	}
	return out
}

// taken reports whether name is used by a relation: a source, a view, or
// a dead-letter table of either. The caller holds mu.
func (c *Catalog) taken(name string) bool {
	if c.sources[name] != nil || c.views[name] != nil {
		return true
	}
	for s := range c.sources {
		if RejectsTable(s) == name {
			return true
		}
	}
	for v := range c.views {
		if LateTable(v) == name {
			return true
		}
	}
	return false
}

func duplicate(name string, pos int) error {
	return sqlerr.At(pgerrcode.DuplicateTable, pos, "relation %q already exists", name)
}

// AddSource records a new source. pos is the position of its name in the
// statement, for the error when the name is taken (42P07).
func (c *Catalog) AddSource(ctx context.Context, s *Source, pos int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken(s.Name) || c.taken(RejectsTable(s.Name)) {
		return duplicate(s.Name, pos)
	}
	s.Created = c.next
	if err := c.put(ctx, sourcePrefix+s.Name, s); err != nil {
		return err
	}
	c.next++
	c.sources[s.Name] = s
	return nil
}

// AddView records a new view.
func (c *Catalog) AddView(ctx context.Context, v *View, pos int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken(v.Name) || c.taken(LateTable(v.Name)) {
		return duplicate(v.Name, pos)
	}
	if c.sources[v.Source] == nil {
		return sqlerr.New(pgerrcode.UndefinedTable, "source %q does not exist", v.Source)
	}
	v.Created = c.next
	if err := c.put(ctx, viewPrefix+v.Name, v); err != nil {
		return err
	}
	c.next++
	c.views[v.Name] = v
	return nil
}

// DropSource removes a source; it fails with 2BP01 while views read it.
func (c *Catalog) DropSource(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sources[name] == nil {
		return sqlerr.New(pgerrcode.UndefinedTable, "source %q does not exist", name)
	}
	var deps []string
	for _, v := range c.views {
		if v.Source == name {
			deps = append(deps, v.Name)
		}
	}
	if len(deps) > 0 {
		slices.Sort(deps)
		return sqlerr.New(pgerrcode.DependentObjectsStillExist, "cannot drop source %q because materialized views depend on it", name).
			WithDetail("views: %s", strings.Join(deps, ", ")).
			WithHint("drop the views first")
	}
	if err := c.store.Delete(ctx, sourcePrefix+name); err != nil {
		return fmt.Errorf("drop source %q: %w", name, err)
	}
	delete(c.sources, name)
	return nil
}

// DropView removes a view.
func (c *Catalog) DropView(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views[name] == nil {
		return sqlerr.New(pgerrcode.UndefinedTable, "materialized view %q does not exist", name)
	}
	if err := c.store.Delete(ctx, viewPrefix+name); err != nil {
		return fmt.Errorf("drop view %q: %w", name, err)
	}
	delete(c.views, name)
	return nil
}

func (c *Catalog) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := c.store.Put(ctx, key, b); err != nil {
		return fmt.Errorf("save catalog entry %q: %w", key, err)
	}
	return nil
}
