package sink

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// ErrClosed is returned by the methods of a closed Memory or Postgres.
var ErrClosed = errors.New("sink is closed")

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer identifiers are
// silently truncated by the server, which would make a table impossible to
// find again by its name.
const maxIdentLen = 63

// maxKeyColumns bounds a key so a NULL pattern over the key columns fits in
// a uint64 (see PGTable's delete statement).
const maxKeyColumns = 64

// TableSpec describes one result table: a view's result table, or a dead
// letter table (a source's rejects, a view's late events).
type TableSpec struct {
	// Name is the table name as the user named the view or source, a
	// lower-case identifier of at most 63 bytes. SQL quotes it with
	// pgx.Identifier, so any characters are safe.
	Name string
	// Schema holds the columns. Every type is one of sqltypes.Int64,
	// Float64, String, Bool, Timestamp or TimestampTZ.
	Schema *arrow.Schema
	// Key holds the indices of the key columns in key order. An empty key
	// makes the table append-only (dead letters): it takes no deletes and
	// every upsert is an insert.
	Key []int
}

// Keyed reports whether the table has key columns (is not append-only).
func (s TableSpec) Keyed() bool { return len(s.Key) > 0 }

// KeySchema returns the schema of a Changes.Deletes batch for this table:
// the key columns in key order. It is nil for an append-only table.
func (s TableSpec) KeySchema() *arrow.Schema {
	if !s.Keyed() {
		return nil
	}
	fields := make([]arrow.Field, len(s.Key))
	for i, k := range s.Key {
		fields[i] = s.Schema.Field(k)
	}
	return arrow.NewSchema(fields, nil)
}

// Validate checks the spec: a name, at least one column, supported types,
// unique column names, identifiers PostgreSQL keeps whole, and key indices
// in range without repeats.
func (s TableSpec) Validate() error {
	if s.Name == "" {
		return errors.New("table spec has no name")
	}
	if len(s.Name) > maxIdentLen {
		return sqlerr.New(pgerrcode.NameTooLong, "table name %q is longer than %d bytes", s.Name, maxIdentLen)
	}
	if s.Schema == nil || s.Schema.NumFields() == 0 {
		return fmt.Errorf("table %q has no columns", s.Name)
	}
	seen := make(map[string]bool, s.Schema.NumFields())
	for i, f := range s.Schema.Fields() {
		switch {
		case f.Name == "":
			return fmt.Errorf("table %q: column %d has no name", s.Name, i)
		case len(f.Name) > maxIdentLen:
			return sqlerr.New(pgerrcode.NameTooLong, "column name %q of table %q is longer than %d bytes", f.Name, s.Name, maxIdentLen)
		case seen[f.Name]:
			return sqlerr.New(pgerrcode.DuplicateColumn, "column %q of table %q appears twice", f.Name, s.Name)
		}
		seen[f.Name] = true
		if kindOf(f.Type) == kindInvalid {
			return fmt.Errorf("table %q: column %q has type %s, which a result table cannot hold", s.Name, f.Name, f.Type)
		}
	}
	if len(s.Key) > maxKeyColumns {
		return fmt.Errorf("table %q: %d key columns, at most %d", s.Name, len(s.Key), maxKeyColumns)
	}
	inKey := make(map[int]bool, len(s.Key))
	for _, k := range s.Key {
		if k < 0 || k >= s.Schema.NumFields() {
			return fmt.Errorf("table %q: key column index %d out of range [0, %d)", s.Name, k, s.Schema.NumFields())
		}
		if inKey[k] {
			return fmt.Errorf("table %q: key column %q appears twice", s.Name, s.Schema.Field(k).Name)
		}
		inKey[k] = true
	}
	return nil
}

// checkChanges verifies that c fits the table: Upserts has the table's
// column types in order, Deletes the key column types in key order, and an
// append-only table gets no deletes. Column names are not compared: the
// contract is positional.
func (s TableSpec) checkChanges(c exec.Changes) error {
	if u := c.Upserts; u != nil {
		if err := checkColumns(s.Name, "upserts", u.Schema(), s.Schema, nil); err != nil {
			return err
		}
	}
	if d := c.Deletes; d != nil {
		if !s.Keyed() {
			if d.NumRows() > 0 {
				return fmt.Errorf("table %q is append-only and takes no deletes (got %d)", s.Name, d.NumRows())
			}
			return nil
		}
		if err := checkColumns(s.Name, "deletes", d.Schema(), s.Schema, s.Key); err != nil {
			return err
		}
	}
	return nil
}

// checkColumns compares got's column types with want's columns at idx (all
// columns when idx is nil).
func checkColumns(table, what string, got, want *arrow.Schema, idx []int) error {
	n := want.NumFields()
	if idx != nil {
		n = len(idx)
	}
	if got.NumFields() != n {
		return fmt.Errorf("table %q: %s batch has %d columns, want %d", table, what, got.NumFields(), n)
	}
	for i := range n {
		j := i
		if idx != nil {
			j = idx[i]
		}
		wf := want.Field(j)
		if gt := got.Field(i).Type; !arrow.TypeEqual(gt, wf.Type) {
			return fmt.Errorf("table %q: %s column %d (%q) is %s, want %s", table, what, i, wf.Name, gt, wf.Type)
		}
	}
	return nil
}

// kind is the storage class of one of the engine's column types.
type kind uint8

const (
	kindInvalid kind = iota
	kindInt64
	kindFloat64
	kindString
	kindBool
	kindTimestamp   // sqltypes.Timestamp: UTC wall time
	kindTimestampTZ // sqltypes.TimestampTZ: an instant
)

func kindOf(t arrow.DataType) kind {
	switch {
	case arrow.TypeEqual(t, sqltypes.Int64):
		return kindInt64
	case arrow.TypeEqual(t, sqltypes.Float64):
		return kindFloat64
	case arrow.TypeEqual(t, sqltypes.String):
		return kindString
	case arrow.TypeEqual(t, sqltypes.Bool):
		return kindBool
	case arrow.TypeEqual(t, sqltypes.Timestamp):
		return kindTimestamp
	case arrow.TypeEqual(t, sqltypes.TimestampTZ):
		return kindTimestampTZ
	}
	return kindInvalid
}
