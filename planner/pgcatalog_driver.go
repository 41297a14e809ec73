package planner

// The general reader of catalog queries: JDBC's DatabaseMetaData
// (getTables, getColumns, getPrimaryKeys, getSchemas) and other SELECTs
// over pg_catalog. matchCatalogQuery (pgcatalog.go) tries it before psql's
// reader, and keeps its answer when a dry run over made-up relations
// computes the whole query.
//
// A query is read with pgcatalog_expr.go and run here over rows of the
// catalogs it names. FROM is taken as the join of those catalogs along
// their keys (c.relnamespace = n.oid, a.attrelid = c.oid, a.atttypid =
// t.oid, ...), which is how drivers join them; the ON conditions are not
// evaluated. What one row is follows from the catalogs read:
//
//   - pg_attribute with pg_index or pg_constraint: one row per column of a
//     primary key. indkey and conkey hold that column as the element
//     information_schema._pg_expandarray returns ({x: attnum, n: position
//     in the key}), and _pg_expandarray of it is itself: the row source has
//     already expanded the key. A materialized view's key is its result
//     table's (group keys and window start); sources and dead-letter
//     tables have none.
//   - pg_attribute: one row per column of a relation (pg_type: its type).
//   - pg_class: one row per relation (pg_description: its comment).
//   - pg_namespace alone: the schema public.
//
// The first alias of pg_namespace, pg_class and pg_attribute is the row's
// schema, relation and column; at key grain the second pg_class alias is
// the key's index (<name>_pkey). Other aliases name what sessionsql does
// not have (a second namespace, column defaults and comments): a LEFT JOIN
// of them gives NULLs and an inner join no rows. WHERE, the select list
// and ORDER BY are evaluated; a FROM (SELECT ...) alias runs the inner
// query first. JDBC's getColumns computes ordinal positions with
// row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), which is
// attnum here since no column is ever dropped.
//
// Parameters ($n) are refused: Execute does not hand them to a catalog
// answer.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/server"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// pgSelect is a catalog query as readPgSelect reads it.
type pgSelect struct {
	items    []pgItem
	star     bool         // SELECT *
	tables   []pgTableRef // the catalogs FROM reads, in order
	sub      *pgSelect    // FROM (SELECT ...) subAlias
	subAlias string
	where    pgNode // nil: none
	order    []pgOrderItem
	limit    pgNode // nil: none
	offset   pgNode
}

type pgItem struct {
	expr pgNode
	name string // the result column name
}

// pgTableRef is one catalog of FROM.
type pgTableRef struct {
	catalog string // pg_class, ...
	alias   string
	outer   bool // LEFT JOINed
}

type pgOrderItem struct {
	expr       pgNode
	desc       bool
	nullsFirst bool
}

// pgClauseWords start the clauses of a SELECT.
var pgClauseWords = map[string]bool{"from": true, "where": true, "group": true, "having": true, "order": true,
	"limit": true, "offset": true, "union": true, "intersect": true, "except": true, "window": true, "for": true, "fetch": true}

// pgJoinWords may follow a table name in FROM, so are not its alias.
var pgJoinWords = map[string]bool{"on": true, "join": true, "left": true, "right": true, "full": true, "inner": true,
	"outer": true, "cross": true, "natural": true, "using": true, "lateral": true, "where": true}

// rowNumberRe is JDBC's ordinal position of a column; see the file comment.
var rowNumberRe = regexp.MustCompile(`(?i)^row_number\(\) OVER \(PARTITION BY (\w+)\.attrelid ORDER BY (\w+)\.attnum\)$`)

// readPgSelect reads the SELECT in toks[lo:hi].
func readPgSelect(text string, toks []pgTok, lo, hi int) (*pgSelect, error) {
	for hi > lo && toks[hi-1].punct(";") {
		hi--
	}
	if lo < hi && toks[lo].kw("with") {
		return nil, fmt.Errorf("WITH")
	}
	if lo >= hi || !toks[lo].kw("select") {
		return nil, fmt.Errorf("not a SELECT")
	}
	// Clause boundaries, outside parentheses and brackets.
	type clause struct {
		word   string
		lo, hi int // the clause's tokens after its keyword(s)
	}
	clauses := []clause{{word: "select", lo: lo + 1}}
	depth := 0
	for i := lo + 1; i < hi; i++ {
		t := toks[i]
		switch {
		case t.punct("(") || t.punct("["):
			depth++
		case t.punct(")") || t.punct("]"):
			depth--
		case depth == 0 && t.kind == tkIdent && pgClauseWords[t.text]:
			clauses[len(clauses)-1].hi = i
			c := clause{word: t.text, lo: i + 1}
			if (t.text == "order" || t.text == "group") && i+1 < hi && toks[i+1].kw("by") {
				c.lo++
				i++
			}
			clauses = append(clauses, c)
		}
	}
	clauses[len(clauses)-1].hi = hi
	q := &pgSelect{}
	seen := map[string]bool{}
	for _, c := range clauses {
		if seen[c.word] {
			return nil, fmt.Errorf("%s twice", strings.ToUpper(c.word))
		}
		seen[c.word] = true
		var err error
		switch c.word {
		case "select":
			err = q.readItems(text, toks, c.lo, c.hi)
		case "from":
			err = q.readFrom(text, toks, c.lo, c.hi)
		case "where":
			q.where, err = readPgExpr(text, toks, c.lo, c.hi)
		case "order":
			err = q.readOrder(text, toks, c.lo, c.hi)
		case "limit":
			if c.hi == c.lo+1 && toks[c.lo].kw("all") {
				break
			}
			q.limit, err = readPgExpr(text, toks, c.lo, c.hi)
		case "offset":
			q.offset, err = readPgExpr(text, toks, c.lo, c.hi)
		default:
			err = fmt.Errorf("%s", strings.ToUpper(c.word))
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen["from"] {
		return nil, fmt.Errorf("no FROM")
	}
	return q, nil
}

// readPgExpr reads toks[lo:hi] as one expression.
func readPgExpr(text string, toks []pgTok, lo, hi int) (pgNode, error) {
	p := &pgExprReader{text: text, toks: toks, i: lo, end: hi}
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.i < hi {
		return nil, p.errAt(p.peek(), "unexpected %q", text[p.peek().start:p.peek().end])
	}
	return x, nil
}

// splitTopLevel splits toks[lo:hi] at commas outside parentheses.
func splitTopLevel(toks []pgTok, lo, hi int) [][2]int {
	var parts [][2]int
	depth, start := 0, lo
	for i := lo; i < hi; i++ {
		switch t := toks[i]; {
		case t.punct("(") || t.punct("["):
			depth++
		case t.punct(")") || t.punct("]"):
			depth--
		case depth == 0 && t.punct(","):
			parts = append(parts, [2]int{start, i})
			start = i + 1
		}
	}
	return append(parts, [2]int{start, hi})
}

func (q *pgSelect) readItems(text string, toks []pgTok, lo, hi int) error {
	if lo < hi && (toks[lo].kw("distinct") || toks[lo].kw("all")) {
		return fmt.Errorf("SELECT %s", strings.ToUpper(toks[lo].text))
	}
	if hi == lo+1 && toks[lo].op("*") {
		q.star = true
		return nil
	}
	for _, part := range splitTopLevel(toks, lo, hi) {
		p := &pgExprReader{text: text, toks: toks, i: part[0], end: part[1]}
		x, err := p.expr()
		if err != nil {
			return err
		}
		if o, ok := x.(pgOpaque); ok {
			if m := rowNumberRe.FindStringSubmatch(o.text); m != nil && m[1] == m[2] {
				x = pgCol{qual: strings.ToLower(m[1]), name: "attnum"}
			}
		}
		it := pgItem{expr: x, name: pgDerivedName(x)}
		p.acceptKw("as")
		if t := p.peek(); t.kind == tkIdent || t.kind == tkQIdent {
			it.name = p.next().text
		}
		if p.i < part[1] {
			return p.errAt(p.peek(), "unexpected %q", text[p.peek().start:p.peek().end])
		}
		q.items = append(q.items, it)
	}
	return nil
}

func (q *pgSelect) readFrom(text string, toks []pgTok, lo, hi int) error {
	if lo < hi && toks[lo].punct("(") {
		// FROM (SELECT ...) alias
		depth, end := 0, -1
		for i := lo; i < hi && end < 0; i++ {
			switch {
			case toks[i].punct("("):
				depth++
			case toks[i].punct(")"):
				if depth--; depth == 0 {
					end = i
				}
			}
		}
		if end < 0 {
			return fmt.Errorf("unbalanced parentheses in FROM")
		}
		sub, err := readPgSelect(text, toks, lo+1, end)
		if err != nil {
			return err
		}
		i := end + 1
		if i < hi && toks[i].kw("as") {
			i++
		}
		if i+1 != hi || (toks[i].kind != tkIdent && toks[i].kind != tkQIdent) {
			return fmt.Errorf("FROM (SELECT ...) must be the only table and have an alias")
		}
		q.sub, q.subAlias = sub, toks[i].text
		return nil
	}
	for i := lo; i < hi; i++ {
		t := toks[i]
		if t.punct("(") && i+1 < hi && (toks[i+1].kw("select") || toks[i+1].kw("with")) {
			return fmt.Errorf("a subquery in FROM joined with other tables")
		}
		if t.kw("right") || t.kw("full") {
			return fmt.Errorf("%s JOIN", strings.ToUpper(t.text))
		}
		if t.kind != tkIdent || (i > lo && toks[i-1].punct(".")) {
			continue
		}
		name, j := "", i+1
		switch {
		case (t.text == "pg_catalog" || t.text == "information_schema") && i+2 < hi && toks[i+1].punct("."):
			name, j = toks[i+2].text, i+3
			if t.text == "information_schema" {
				name = "information_schema." + name
			}
		case strings.HasPrefix(t.text, "pg_") && (i == lo || toks[i-1].punct(",") || toks[i-1].kw("join")):
			name = t.text
		default:
			continue
		}
		if j < hi && toks[j].punct("(") {
			continue // a function, not a table
		}
		ref := pgTableRef{catalog: name, alias: name}
		if j < hi && toks[j].kw("as") {
			j++
		}
		if j < hi && (toks[j].kind == tkQIdent || (toks[j].kind == tkIdent && !pgJoinWords[toks[j].text])) {
			ref.alias = toks[j].text
		}
		k := i - 1
		if k > lo && toks[k].kw("join") {
			k--
			if k >= lo && toks[k].kw("outer") {
				k--
			}
			ref.outer = k >= lo && toks[k].kw("left")
		}
		q.tables = append(q.tables, ref)
	}
	if len(q.tables) == 0 {
		return fmt.Errorf("FROM names no catalog")
	}
	return nil
}

func (q *pgSelect) readOrder(text string, toks []pgTok, lo, hi int) error {
	for _, part := range splitTopLevel(toks, lo, hi) {
		p := &pgExprReader{text: text, toks: toks, i: part[0], end: part[1]}
		x, err := p.expr()
		if err != nil {
			return err
		}
		o := pgOrderItem{expr: x}
		if p.acceptKw("desc") {
			o.desc = true
		} else {
			p.acceptKw("asc")
		}
		o.nullsFirst = o.desc // PostgreSQL's default: NULLs sort as if larger than any value
		switch {
		case p.acceptKw("nulls", "first"):
			o.nullsFirst = true
		case p.acceptKw("nulls", "last"):
			o.nullsFirst = false
		}
		if p.i < part[1] {
			return p.errAt(p.peek(), "unexpected %q", text[p.peek().start:p.peek().end])
		}
		q.order = append(q.order, o)
	}
	return nil
}

// pgRows are the rows a query reads: its input columns by alias.column.
type pgRows struct {
	names []string // a subquery's columns, in order (for SELECT *)
	types map[string]arrow.DataType
	rows  []pgInRow
}

// pgInRow is one input row.
type pgInRow struct {
	cols  map[string]any  // by alias.column
	nulls map[string]bool // aliases of tables outer-joined with nothing
}

// pgOutput is a query's result.
type pgOutput struct {
	names []string
	types []arrow.DataType
	rows  [][]any
}

// notSupported is the error of a catalog query this emulation cannot
// answer.
func notSupported(format string, args ...any) error {
	return sqlerr.New(pgerrcode.FeatureNotSupported, "catalog query not supported: "+format, args...)
}

// filterError is a WHERE that cannot be computed. psql's reader, which
// ignores the predicates it does not lift, must not answer such a query
// either.
type filterError struct{ error }

func (e filterError) Unwrap() error { return e.error }

// run runs the query over the catalog of s or, with s nil, over made-up
// relations (pgPrototypes): that dry run gives the result columns and
// shows whether the query can be computed at all.
func (q *pgSelect) run(s *session) (*pgOutput, error) {
	in, err := q.input(s)
	if err != nil {
		return nil, err
	}
	out := &pgOutput{}
	var inNames []string // for SELECT *: the input columns, in order
	if q.star {
		if q.sub == nil {
			return nil, notSupported("SELECT * from the catalogs")
		}
		inNames = in.names
		for _, n := range in.names {
			out.names = append(out.names, strings.TrimPrefix(n, q.subAlias+"."))
			out.types = append(out.types, in.types[n])
		}
	}
	for _, it := range q.items {
		out.names = append(out.names, it.name)
		out.types = append(out.types, pgTypeOf(it.expr, in.types))
	}
	type sorted struct {
		row  []any
		keys []any
	}
	var res []sorted
	for _, r := range in.rows {
		env := &pgEnv{s: s, cols: r.cols, nullAliases: r.nulls}
		if q.where != nil {
			v := env.eval(q.where)
			if env.err != nil {
				return nil, env.err
			}
			if u, ok := v.(pgUnknown); ok {
				return nil, filterError{notSupported("cannot compute %s", u.what)}
			}
			// A dry run keeps every row, so that the select list is
			// tried whatever WHERE picks.
			if v != true && s != nil {
				continue
			}
		}
		row := make([]any, 0, len(out.names))
		for _, n := range inNames {
			row = append(row, r.cols[n])
		}
		for _, it := range q.items {
			v := env.eval(it.expr)
			if env.err != nil {
				return nil, env.err
			}
			if u, ok := v.(pgUnknown); ok {
				return nil, notSupported("cannot compute %s", u.what)
			}
			row = append(row, pgCoerce(v, out.types[len(row)]))
		}
		env.out = map[string]any{}
		for i, n := range out.names {
			env.out[n] = row[i]
		}
		var keys []any
		for _, o := range q.order {
			k, err := orderKey(env, o.expr, row)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		res = append(res, sorted{row, keys})
	}
	sort.SliceStable(res, func(i, j int) bool {
		for k, o := range q.order {
			a, b := res[i].keys[k], res[j].keys[k]
			var c int
			switch {
			case a == nil && b == nil:
				continue
			case a == nil || b == nil:
				return (a == nil) == o.nullsFirst
			default:
				c, _ = pgCompare(a, b).(int)
			}
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	offset, limit := int64(0), int64(-1)
	for _, l := range []struct {
		n   pgNode
		dst *int64
	}{{q.offset, &offset}, {q.limit, &limit}} {
		if l.n == nil {
			continue
		}
		v, ok := (&pgEnv{s: s}).eval(l.n).(int64)
		if !ok || v < 0 {
			return nil, notSupported("LIMIT and OFFSET must be non-negative integer constants")
		}
		*l.dst = v
	}
	for i, r := range res {
		if int64(i) < offset {
			continue
		}
		if limit >= 0 && int64(len(out.rows)) >= limit {
			break
		}
		out.rows = append(out.rows, r.row)
	}
	return out, nil
}

// orderKey is the sort key of one row: an output column by name or
// position, else the expression over the input row.
func orderKey(env *pgEnv, x pgNode, row []any) (any, error) {
	switch x := x.(type) {
	case pgCol:
		if x.qual == "" {
			if v, ok := env.out[x.name]; ok {
				return v, nil
			}
		}
	case pgLit:
		if n, ok := x.v.(int64); ok {
			if n < 1 || int(n) > len(row) {
				return nil, sqlerr.New(pgerrcode.InvalidColumnReference, "ORDER BY position %d is not in select list", n)
			}
			return row[n-1], nil
		}
	}
	v := env.eval(x)
	if u, ok := v.(pgUnknown); ok {
		return nil, notSupported("cannot compute %s", u.what)
	}
	return v, nil
}

// pgCoerce gives v the Go type of the result column type t.
func pgCoerce(v any, t arrow.DataType) any {
	if v == nil {
		return nil
	}
	if _, ok := v.(pgComposite); ok {
		return v // only a subquery's column holds one, read with (x).field
	}
	switch {
	case arrow.TypeEqual(t, sqltypes.String):
		return pgText(v)
	case arrow.TypeEqual(t, sqltypes.Int64):
		if n, ok := pgInt(v); ok {
			return n
		}
	case arrow.TypeEqual(t, sqltypes.Bool):
		if s, ok := v.(string); ok {
			if b, ok := pgBool(s); ok {
				return b
			}
		}
	}
	return v
}

// input returns the rows the query reads.
func (q *pgSelect) input(s *session) (*pgRows, error) {
	if q.sub != nil {
		sub, err := q.sub.run(s)
		if err != nil {
			return nil, err
		}
		in := &pgRows{types: map[string]arrow.DataType{}}
		for i, n := range sub.names {
			in.names = append(in.names, q.subAlias+"."+n)
			in.types[q.subAlias+"."+n] = sub.types[i]
		}
		for _, r := range sub.rows {
			m := make(map[string]any, len(r))
			for i, n := range sub.names {
				m[q.subAlias+"."+n] = r[i]
			}
			in.rows = append(in.rows, pgInRow{cols: m})
		}
		return in, nil
	}
	if s == nil {
		return catalogRows(q.tables, pgPrototypes, true)
	}
	return catalogRows(q.tables, s.e.pgRelations(s), false)
}

// The OIDs PostgreSQL gives the schema public and the catalogs whose OIDs
// drivers compare with.
const (
	pgPublicOID    = 2200
	pgCatalogNSOID = 11
	pgClassOID     = 1259
	pgOwnerOID     = 10
)

// pgTypeInfo is what pg_type says of one of the engine's types.
type pgTypeInfo struct {
	name string // typname
	len  int64  // typlen; -1: variable
}

var pgTypeInfos = map[uint32]pgTypeInfo{
	sqltypes.OIDBool: {"bool", 1}, sqltypes.OIDInt8: {"int8", 8}, sqltypes.OIDText: {"text", -1},
	sqltypes.OIDFloat8: {"float8", 8}, sqltypes.OIDTimestamp: {"timestamp", 8}, sqltypes.OIDTimestampTZ: {"timestamptz", 8},
}

// pgRowBuilder collects one row's columns, with their types.
type pgRowBuilder struct {
	vals  map[string]any
	types map[string]arrow.DataType
}

func (b *pgRowBuilder) set(alias, col string, t arrow.DataType, v any) {
	b.vals[alias+"."+col] = v
	b.types[alias+"."+col] = t
}

func (b *pgRowBuilder) namespace(alias string) {
	b.set(alias, "oid", sqltypes.Int64, int64(pgPublicOID))
	b.set(alias, "nspname", sqltypes.String, "public")
	b.set(alias, "nspowner", sqltypes.Int64, int64(pgOwnerOID))
	b.set(alias, "nspacl", sqltypes.String, nil)
}

func (b *pgRowBuilder) class(alias string, r *pgRel) {
	b.set(alias, "oid", sqltypes.Int64, r.oid)
	b.set(alias, "relname", sqltypes.String, r.name)
	b.set(alias, "relnamespace", sqltypes.Int64, int64(pgPublicOID))
	b.set(alias, "relkind", sqltypes.String, r.kind)
	b.set(alias, "relowner", sqltypes.Int64, int64(pgOwnerOID))
	b.set(alias, "relpersistence", sqltypes.String, "p")
	b.set(alias, "relnatts", sqltypes.Int64, int64(len(r.cols)))
	b.set(alias, "relhasindex", sqltypes.Bool, len(r.key) > 0)
	b.set(alias, "relispartition", sqltypes.Bool, false)
	b.set(alias, "relhasrules", sqltypes.Bool, false)
	b.set(alias, "relhastriggers", sqltypes.Bool, false)
	b.set(alias, "relrowsecurity", sqltypes.Bool, false)
	b.set(alias, "relchecks", sqltypes.Int64, int64(0))
	b.set(alias, "reltablespace", sqltypes.Int64, int64(0))
	b.set(alias, "reloptions", sqltypes.String, nil)
	b.set(alias, "relacl", sqltypes.String, nil)
}

func (b *pgRowBuilder) attribute(alias string, r *pgRel, i int) {
	a := r.cols[i]
	b.set(alias, "attrelid", sqltypes.Int64, r.oid)
	b.set(alias, "attname", sqltypes.String, a.name)
	b.set(alias, "atttypid", sqltypes.Int64, int64(a.oid))
	b.set(alias, "attnum", sqltypes.Int64, int64(i+1))
	b.set(alias, "attlen", sqltypes.Int64, pgTypeInfos[a.oid].len)
	b.set(alias, "atttypmod", sqltypes.Int64, int64(-1))
	b.set(alias, "attndims", sqltypes.Int64, int64(0))
	b.set(alias, "attnotnull", sqltypes.Bool, a.notNull)
	b.set(alias, "atthasdef", sqltypes.Bool, false)
	b.set(alias, "attisdropped", sqltypes.Bool, false)
	b.set(alias, "attidentity", sqltypes.String, "")
	b.set(alias, "attgenerated", sqltypes.String, "")
	b.set(alias, "attstorage", sqltypes.String, a.storage)
	collation := int64(0)
	if a.oid == sqltypes.OIDText {
		collation = 100 // "default"
	}
	b.set(alias, "attcollation", sqltypes.Int64, collation)
}

func (b *pgRowBuilder) typ(alias string, oid uint32) {
	ti := pgTypeInfos[oid]
	b.set(alias, "oid", sqltypes.Int64, int64(oid))
	b.set(alias, "typname", sqltypes.String, ti.name)
	b.set(alias, "typnamespace", sqltypes.Int64, int64(pgCatalogNSOID))
	b.set(alias, "typlen", sqltypes.Int64, ti.len)
	b.set(alias, "typtype", sqltypes.String, "b")
	b.set(alias, "typnotnull", sqltypes.Bool, false)
	b.set(alias, "typtypmod", sqltypes.Int64, int64(-1))
	b.set(alias, "typbasetype", sqltypes.Int64, int64(0))
	b.set(alias, "typelem", sqltypes.Int64, int64(0))
}

// pkName is the name PostgreSQL would give a relation's primary key.
func pkName(rel string) string { return rel + "_pkey" }

// pgOIDOf is the OID of a relation, index or constraint: a hash of its
// name, stable across connections and restarts (pg_class OIDs of user
// relations start at 16384).
func pgOIDOf(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 16384 + int64(h.Sum32()%(1<<30))
}

// key sets the pg_index or pg_constraint columns of key column pos of r.
func (b *pgRowBuilder) key(catalog, alias string, r *pgRel, pos int) {
	elem := pgComposite{"x": int64(r.key[pos] + 1), "n": int64(pos + 1)}
	idx := pgOIDOf(pkName(r.name))
	if catalog == "pg_index" {
		b.set(alias, "indexrelid", sqltypes.Int64, idx)
		b.set(alias, "indrelid", sqltypes.Int64, r.oid)
		b.set(alias, "indnatts", sqltypes.Int64, int64(len(r.key)))
		b.set(alias, "indnkeyatts", sqltypes.Int64, int64(len(r.key)))
		b.set(alias, "indisprimary", sqltypes.Bool, true)
		b.set(alias, "indisunique", sqltypes.Bool, true)
		b.set(alias, "indkey", sqltypes.String, elem)
		return
	}
	b.set(alias, "oid", sqltypes.Int64, idx)
	b.set(alias, "conname", sqltypes.String, pkName(r.name))
	b.set(alias, "connamespace", sqltypes.Int64, int64(pgPublicOID))
	b.set(alias, "contype", sqltypes.String, "p")
	b.set(alias, "conrelid", sqltypes.Int64, r.oid)
	b.set(alias, "conindid", sqltypes.Int64, idx)
	b.set(alias, "conkey", sqltypes.String, elem)
}

// What one row of a catalog join is, finest first.
const (
	grainKey = iota
	grainAttribute
	grainRelation
	grainNamespace
)

// What a catalog alias of FROM is in a row.
type pgRole int

const (
	roleNone        pgRole = iota // something sessionsql has none of
	roleNamespace                 // the schema public
	roleClass                     // the row's relation
	roleIndexClass                // the relation's primary key index
	roleAttribute                 // the row's column
	roleType                      // the column's type
	roleKey                       // the pg_index or pg_constraint of the key
	roleDescription               // the relation's comment
)

// catalogRoles gives each of refs its role (see the file comment), and
// the grain of the rows.
func catalogRoles(refs []pgTableRef) (roles []pgRole, grain int, err error) {
	has := map[string]bool{}
	for _, r := range refs {
		has[r.catalog] = true
	}
	switch {
	case has["pg_attribute"] && (has["pg_index"] || has["pg_constraint"]):
		grain = grainKey
	case has["pg_attribute"]:
		grain = grainAttribute
	case has["pg_class"]:
		grain = grainRelation
	case has["pg_namespace"]:
		grain = grainNamespace
	default:
		return nil, 0, notSupported("catalog %s", refs[0].catalog)
	}
	seen := map[string]int{}
	for _, ref := range refs {
		n := seen[ref.catalog]
		seen[ref.catalog]++
		role := roleNone
		switch {
		case ref.catalog == "pg_namespace" && n == 0:
			role = roleNamespace
		case ref.catalog == "pg_class" && n == 0:
			role = roleClass
		case ref.catalog == "pg_class" && n == 1 && grain == grainKey:
			role = roleIndexClass
		case ref.catalog == "pg_attribute" && n == 0:
			role = roleAttribute
		case ref.catalog == "pg_type" && n == 0 && grain <= grainAttribute:
			role = roleType
		case (ref.catalog == "pg_index" || ref.catalog == "pg_constraint") && n == 0 && grain == grainKey:
			role = roleKey
		case ref.catalog == "pg_description" && n == 0 && grain == grainRelation:
			role = roleDescription
		case ref.catalog == "pg_namespace", ref.catalog == "pg_class", ref.catalog == "pg_attrdef", ref.catalog == "pg_description":
			// A second schema or relation (the description's), column
			// defaults, column comments.
		default:
			return nil, 0, notSupported("catalog %s here", ref.catalog)
		}
		roles = append(roles, role)
	}
	return roles, grain, nil
}

// pgPrototypes are the relations of a dry run: a materialized view with a
// key and a commented table.
var pgPrototypes = []pgRel{
	{oid: pgOIDOf("v"), name: "v", kind: "m", cols: []pgAttr{{name: "k", oid: sqltypes.OIDInt8, storage: "p"}}, key: []int{0}},
	{oid: pgOIDOf("t"), name: "t", kind: "r", desc: "source", cols: []pgAttr{{name: "s", oid: sqltypes.OIDText, storage: "x"}}},
}

// catalogRows returns the rows of the join of refs over rels (see the
// file comment). A dry run keeps the rows an inner join with nothing
// would leave out, so that the query is tried on them.
func catalogRows(refs []pgTableRef, rels []pgRel, dry bool) (*pgRows, error) {
	roles, grain, err := catalogRoles(refs)
	if err != nil {
		return nil, err
	}
	out := &pgRows{types: map[string]arrow.DataType{}}
	add := func(r *pgRel, attr, keyPos int) {
		b := &pgRowBuilder{vals: map[string]any{}, types: out.types}
		nulls := map[string]bool{}
		for i, ref := range refs {
			switch roles[i] {
			case roleNamespace:
				b.namespace(ref.alias)
			case roleClass:
				b.class(ref.alias, r)
			case roleIndexClass:
				b.class(ref.alias, &pgRel{oid: pgOIDOf(pkName(r.name)), name: pkName(r.name), kind: "i", cols: make([]pgAttr, len(r.key))})
			case roleAttribute:
				b.attribute(ref.alias, r, attr)
			case roleType:
				b.typ(ref.alias, r.cols[attr].oid)
			case roleKey:
				b.key(ref.catalog, ref.alias, r, keyPos)
			case roleDescription:
				if r.desc != "" {
					b.set(ref.alias, "objoid", sqltypes.Int64, r.oid)
					b.set(ref.alias, "classoid", sqltypes.Int64, int64(pgClassOID))
					b.set(ref.alias, "objsubid", sqltypes.Int64, int64(0))
					b.set(ref.alias, "description", sqltypes.String, r.desc)
					break
				}
				fallthrough
			default:
				if !ref.outer && !dry {
					return // an inner join with nothing
				}
				nulls[ref.alias] = true
			}
		}
		out.rows = append(out.rows, pgInRow{cols: b.vals, nulls: nulls})
	}
	if grain == grainNamespace {
		add(&pgRel{}, 0, 0) // reads no relation
		return out, nil
	}
	for i := range rels {
		r := &rels[i]
		switch grain {
		case grainRelation:
			add(r, 0, 0)
		case grainAttribute:
			for a := range r.cols {
				add(r, a, 0)
			}
		case grainKey:
			for k := range r.key {
				add(r, r.key[k], k)
			}
		}
	}
	return out, nil
}

// driverAnswer answers text if this file can: if it reads as a SELECT over
// catalogs catalogRows knows and a dry run computes it. Otherwise err says
// why not (nil if text does not read as such a SELECT at all), and
// decided whether that is final: a query whose WHERE cannot be computed,
// or whose error is not 0A000, is not for psql's reader either.
func driverAnswer(text string) (ans pgAnswer, decided bool, err error) {
	toks, err := pgLex(text)
	if err != nil {
		return nil, false, nil
	}
	q, err := readPgSelect(text, toks, 0, len(toks))
	if err != nil {
		return nil, false, notSupported("%v", err)
	}
	for _, t := range toks {
		if t.kind == tkParam {
			return nil, true, notSupported("parameters ($%s)", t.text)
		}
	}
	for _, r := range q.allTables() {
		if v, ok := strings.CutPrefix(r.catalog, "information_schema."); ok {
			if _, known := infoViews[v]; known {
				return nil, true, notSupported("information_schema views are read one at a time, without joins or subqueries")
			}
			return nil, true, notSupported("information_schema.%s (tables, columns, schemata and views are emulated)", v)
		}
	}
	if _, err := q.run(nil); err != nil {
		var fe filterError
		return nil, errors.As(err, &fe) || sqlerr.Code(err) != pgerrcode.FeatureNotSupported, err
	}
	return func(s *session) (*server.Result, error) {
		o, err := q.run(s)
		if err != nil {
			return nil, err
		}
		res := &server.Result{Rows: o.rows}
		for i, n := range o.names {
			res.Columns = append(res.Columns, server.Column{Name: n, Type: o.types[i]})
		}
		return finish(res), nil
	}, true, nil
}

// allTables lists the catalogs q and its subqueries in FROM read.
func (q *pgSelect) allTables() []pgTableRef {
	if q.sub != nil {
		return q.sub.allTables()
	}
	return q.tables
}
