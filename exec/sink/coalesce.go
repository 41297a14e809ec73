package sink

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sessionsql/sessionsql/exec"
)

// DefaultCoalesceRows is the size of the change sets Coalesce makes for
// the sink database: about what one COPY -> merge round trip writes best
// (issue 7 measured the ceiling with 10,000 rows per statement).
const DefaultCoalesceRows = 10_000

// Coalesce returns the net effect of applying cs, in order, to a table of
// spec, as change sets of at most maxRows keys each: every key that cs
// touch appears in one of them only, upserted once with its last row, and
// deleted there too if cs deleted it. So a session updated by every batch
// of an epoch is written once per epoch, not once per batch. Applying the
// result in order has the same effect as applying cs in order:
//
//   - a key whose last change is a delete is deleted;
//   - a key deleted and then upserted is deleted and upserted (the delete
//     comes first within a change set), so the row is inserted anew with
//     the key values of its first upsert after the delete;
//   - a key only upserted is upserted with the key values of its first
//     upsert and the other columns of its last, as a run of upserts leaves
//     it (an update keeps the key values first written, which matters for
//     keys equal but not identical: -0 and 0, NaNs).
//
// Keys are ordered by their first change in cs. An append-only table's
// change sets are returned as they are (retained). cs is not modified; the
// caller releases both cs and the result.
func (s TableSpec) Coalesce(mem memory.Allocator, cs []exec.Changes, maxRows int) ([]exec.Changes, error) {
	for _, c := range cs {
		if err := s.checkChanges(c); err != nil {
			return nil, fmt.Errorf("coalesce: %w", err)
		}
	}
	if !s.Keyed() {
		out := make([]exec.Changes, 0, len(cs))
		for _, c := range cs {
			if c.Upserts != nil && c.Upserts.NumRows() > 0 {
				c.Upserts.Retain()
				out = append(out, exec.Changes{Upserts: c.Upserts})
			}
		}
		return out, nil
	}
	if maxRows <= 0 {
		maxRows = DefaultCoalesceRows
	}
	kinds := make([]kind, len(s.Key))
	for i, k := range s.Key {
		kinds[i] = kindOf(s.Schema.Field(k).Type)
	}
	// The net change of each key, in order of first appearance.
	type net struct {
		del       rowRef // the last delete; batch < 0: none
		first     rowRef // key columns of the upsert; batch < 0: no upsert
		last      rowRef // other columns of the upsert
		upserting bool   // the last change is an upsert
	}
	var nets []net
	index := make(map[string]int32)
	var buf []byte
	lookup := func(cols []arrow.Array, row int) *net {
		buf = appendKey(buf[:0], cols, kinds, row)
		i, ok := index[string(buf)]
		if !ok {
			i = int32(len(nets))
			index[string(buf)] = i
			nets = append(nets, net{del: rowRef{-1, 0}, first: rowRef{-1, 0}})
		}
		return &nets[i]
	}
	keyCols := make([]arrow.Array, len(s.Key))
	for bi, c := range cs {
		if d := c.Deletes; d != nil {
			for row := range int(d.NumRows()) {
				n := lookup(d.Columns(), row)
				n.del, n.first, n.upserting = rowRef{int32(bi), int32(row)}, rowRef{-1, 0}, false
			}
		}
		if u := c.Upserts; u != nil {
			for i, k := range s.Key {
				keyCols[i] = u.Column(k)
			}
			for row := range int(u.NumRows()) {
				n := lookup(keyCols, row)
				ref := rowRef{int32(bi), int32(row)}
				if !n.upserting {
					n.first, n.upserting = ref, true
				}
				n.last = ref
			}
		}
	}

	var out []exec.Changes
	var dels, keyRefs, lastRefs []rowRef
	for lo := 0; lo < len(nets); lo += maxRows {
		dels, keyRefs, lastRefs = dels[:0], keyRefs[:0], lastRefs[:0]
		for _, n := range nets[lo:min(lo+maxRows, len(nets))] {
			if n.del.batch >= 0 {
				dels = append(dels, n.del)
			}
			if n.upserting {
				keyRefs, lastRefs = append(keyRefs, n.first), append(lastRefs, n.last)
			}
		}
		var c exec.Changes
		if len(dels) > 0 {
			cols := make([]arrow.Array, len(s.Key))
			for i := range s.Key {
				cols[i] = gatherColumn(mem, cs, true, i, dels)
			}
			c.Deletes = newRecord(s.KeySchema(), cols, len(dels))
		}
		if len(keyRefs) > 0 {
			cols := make([]arrow.Array, s.Schema.NumFields())
			for i := range cols {
				refs := lastRefs
				if slices.Contains(s.Key, i) {
					refs = keyRefs
				}
				cols[i] = gatherColumn(mem, cs, false, i, refs)
			}
			c.Upserts = newRecord(s.Schema, cols, len(keyRefs))
		}
		out = append(out, c)
	}
	return out, nil
}

// rowRef is a row of one of the change sets Coalesce reads.
type rowRef struct{ batch, row int32 }

// newRecord makes a batch of cols and releases them.
func newRecord(schema *arrow.Schema, cols []arrow.Array, rows int) arrow.RecordBatch {
	rec := array.NewRecordBatch(schema, cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// gatherColumn builds column col of cs's deletes (or upserts) at refs.
func gatherColumn(mem memory.Allocator, cs []exec.Changes, deletes bool, col int, refs []rowRef) arrow.Array {
	arrs := make([]arrow.Array, len(cs))
	for i, c := range cs {
		rec := c.Upserts
		if deletes {
			rec = c.Deletes
		}
		if rec != nil {
			arrs[i] = rec.Column(col)
		}
	}
	dt := arrs[refs[0].batch].DataType()
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.Reserve(len(refs))
	switch kindOf(dt) {
	case kindInt64:
		gather(b.(*array.Int64Builder), typed[*array.Int64](arrs), refs)
	case kindFloat64:
		gather(b.(*array.Float64Builder), typed[*array.Float64](arrs), refs)
	case kindBool:
		gather(b.(*array.BooleanBuilder), typed[*array.Boolean](arrs), refs)
	case kindTimestamp, kindTimestampTZ:
		gather(b.(*array.TimestampBuilder), typed[*array.Timestamp](arrs), refs)
	case kindString:
		sb := b.(*array.StringBuilder)
		ss := typed[*array.String](arrs)
		for _, r := range refs {
			if a, row := ss[r.batch], int(r.row); a.IsValid(row) {
				sb.Append(a.Value(row))
			} else {
				sb.AppendNull()
			}
		}
	default:
		// checkChanges has compared every batch with the spec.
		panic(fmt.Sprintf("sink: coalesce a column of type %s", dt))
	}
	return b.NewArray()
}

func typed[A arrow.Array](arrs []arrow.Array) []A {
	out := make([]A, len(arrs))
	for i, a := range arrs {
		if a != nil {
			out[i] = a.(A)
		}
	}
	return out
}

// gather appends the values at refs of fixed-width arrays to b.
func gather[V any, A interface {
	arrow.Array
	Value(int) V
}, B interface {
	UnsafeAppend(V)
	UnsafeAppendBoolToBitmap(bool)
}](b B, arrs []A, refs []rowRef) {
	for _, r := range refs {
		if a, row := arrs[r.batch], int(r.row); a.IsValid(row) {
			b.UnsafeAppend(a.Value(row))
		} else {
			b.UnsafeAppendBoolToBitmap(false) // a NULL
		}
	}
}
