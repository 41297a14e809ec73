package planner

// A small pg_catalog / information_schema emulation, enough for psql 15's
// \d, \dt, \dv, \dm, \d <name> (and their + forms), \l and \dn, psql's tab
// completion, JDBC's DatabaseMetaData (getTables, getColumns,
// getPrimaryKeys, getSchemas; getCatalogs and getTableTypes send no query)
// and simple SELECTs over information_schema.tables, columns, schemata and
// views.
//
// Clients send catalog queries in PostgreSQL's dialect, which sql.Parse
// (TiDB's MySQL grammar) cannot read. Prepare hands every statement that
// names pg_catalog or information_schema here first, and four readers try
// it in turn:
//
//  1. completionAnswer: psql's tab-completion queries (they end with
//     "\nLIMIT n"), which never fail.
//  2. infoSchemaAnswer (pgcatalog_infoschema.go): a SELECT over one
//     information_schema view, run by the engine's own SELECT over the
//     view's rows.
//  3. driverAnswer (pgcatalog_driver.go, pgcatalog_expr.go): a general
//     reader of SELECTs over pg_namespace, pg_class, pg_attribute, pg_type,
//     pg_index, pg_constraint, pg_description and pg_attrdef that
//     evaluates the select list, WHERE and ORDER BY in PostgreSQL's
//     dialect. It answers what it can compute entirely, drivers' queries
//     and some of psql's; a WHERE it cannot compute fails the query.
//  4. psqlAnswer, below: psql's backslash commands whose catalogs or
//     select items the general reader does not know (pg_am, pg_database,
//     subqueries in the select list, ...).
//
// psqlAnswer reads a query structurally but shallowly:
//
//   - the select list of the first SELECT is split at top-level commas and
//     each item is matched against the expressions psql writes for the
//     catalog it reads (c.relname, pg_catalog.format_type(...), CASE
//     c.relkind ..., ...); the item's alias names the result column;
//   - the FROM list gives the catalog read (pg_class, pg_attribute,
//     pg_namespace, pg_database). Catalogs of objects sessionsql has none
//     of (policies, statistics, publications, inheritance, rules,
//     triggers, indexes, constraints) answer with no rows;
//   - WHERE is not evaluated. The filters psql varies are lifted out of it
//     and applied: c.relkind IN (...), the name patterns
//     `x OPERATOR(pg_catalog.~) '^(...)$'` (run as Go regexps; psql's
//     patterns are simple POSIX regexps RE2 reads alike) and the relation
//     OID in c.oid = '...' / a.attrelid = '...'. psql's other predicates
//     exclude system schemas, which hold for every relation here.
//
// A query naming the catalogs that no reader takes (an unknown select
// item or catalog, or UNION, LIKE, LIMIT, GROUP BY and the like, whose
// effect would be lost) fails with 0A000 "catalog query not supported: ..."
// rather than get a wrong answer. A cast to a type named pg_catalog.x
// (1::pg_catalog.int4) does not make a query a catalog query. psqlAnswer
// still ignores the predicates it does not lift, so its answer is only as
// right as the assumption that the query is psql's.
//
// What the catalog shows: everything lives in schema public, owned by
// "sessionsql". A source and the dead-letter tables <source>_rejects and
// <view>_late are tables (relkind 'r', so \dt lists them); a materialized
// view is a materialized view (relkind 'm': \d and \dm list it, \dt does
// not, as in PostgreSQL). There are no plain views, so \dv finds nothing.
// A relation's OID is a hash of its name, so psql's second round of queries
// (by OID) finds the relation its first one named, across connections and
// restarts.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/server"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// pgOwner owns every relation, schema and database the catalog shows.
const pgOwner = "sessionsql"

// pgAnswer computes a catalog query's result from the current catalog.
// Prepare runs it for the columns and Execute again for fresh rows.
type pgAnswer func(s *session) (*server.Result, error)

// pgRel is a relation as the emulated pg_class shows it.
type pgRel struct {
	oid     int64
	name    string
	kind    string // relkind: "r" or "m"
	desc    string
	viewSQL string // a materialized view's CREATE statement
	cols    []pgAttr
	key     []int // indices in cols of the primary key's columns, in key order; nil: none
}

type pgAttr struct {
	name    string
	typ     string // as format_type prints it
	oid     uint32 // the type's OID
	storage string // attstorage: "p" plain or "x" extended
	notNull bool
}

var (
	catalogNameRe = regexp.MustCompile(`(?i)\b(pg_catalog|information_schema)\s*\.`)
	relkindInRe   = regexp.MustCompile(`(?i)\bc\.relkind\s+IN\s*\(([^)]*)\)`)
	oidEqRe       = regexp.MustCompile(`(?i)\b(?:c\.oid|a\.attrelid)\s*=\s*'(\d+)'`)
	viewdefRe     = regexp.MustCompile(`(?i)^\s*SELECT\s+pg_catalog\.pg_get_viewdef\(\s*'(\d+)'::pg_catalog\.oid\s*,\s*true\s*\)\s*;?\s*$`)
	fromTableRe   = regexp.MustCompile(`(?i)\bpg_catalog\.(pg_\w+)`)
	aliasRe       = regexp.MustCompile(`(?is)^(.*?)\s+AS\s+(?:"([^"]+)"|(\w+))$`)
	derivedNameRe = regexp.MustCompile(`^(?:\w+\.)?(\w+)(?:\(.*\))?$`)
	literalRe     = regexp.MustCompile(`'(?:[^']|'')*'|"[^"]*"`)
	catalogCastRe = regexp.MustCompile(`(?i)::\s*pg_catalog\s*\.`)
	queryStartRe  = regexp.MustCompile(`(?i)^\s*(SELECT|WITH)\b`)
	unliftedRe    = regexp.MustCompile(`(?i)\b(UNION|INTERSECT|EXCEPT|LIKE|ILIKE|SIMILAR|LIMIT|OFFSET|GROUP\s+BY|HAVING)\b`)
)

// namePatternRes find psql's name filters `<col> OPERATOR(pg_catalog.~) '<re>'`.
var namePatternRes = map[string]*regexp.Regexp{}

func init() {
	for _, col := range []string{"c.relname", "n.nspname", "d.datname"} {
		namePatternRes[col] = regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(col) + `\s+OPERATOR\(pg_catalog\.~\)\s+'((?:[^']|'')*)'`)
	}
}

// patternRe returns the regexp of text's name filter on col, or nil if it
// has none.
func patternRe(text, col string) (*regexp.Regexp, error) {
	m := namePatternRes[col].FindStringSubmatch(text)
	if m == nil {
		return nil, nil
	}
	p, err := regexp.Compile(strings.ReplaceAll(m[1], "''", "'"))
	if err != nil {
		return nil, sqlerr.New(pgerrcode.InvalidRegularExpression, "invalid regular expression: %v", err)
	}
	return p, nil
}

// prepareCatalog prepares text if it reads the catalogs (ok); State is
// the pgAnswer Execute runs, or a catalogQuery when text has parameters.
func (s *session) prepareCatalog(text string) (p *server.Prepared, ok bool, err error) {
	n := catalogParams(text)
	probe := text
	if n > 0 {
		// Describe it with NULL parameters; Execute answers it again
		// with their values.
		probe = bindCatalogParams(text, make([]any, n))
	}
	ans, err := matchCatalogQuery(probe)
	if err != nil || ans == nil {
		return nil, err != nil, err
	}
	res, err := ans(s)
	if err != nil {
		return nil, true, err
	}
	p = &server.Prepared{Text: text, Columns: res.Columns, State: ans}
	if n > 0 {
		p.State = catalogQuery(text)
		for range n {
			p.Params = append(p.Params, sqltypes.OIDText)
		}
	}
	return p, true, nil
}

// catalogQuery is a prepared catalog query with parameters: each
// execution answers its text with the values in place.
type catalogQuery string

func (q catalogQuery) answer(s *session, args []any) (*server.Result, error) {
	ans, err := matchCatalogQuery(bindCatalogParams(string(q), args))
	if err != nil {
		return nil, err
	}
	if ans == nil {
		return nil, sqlerr.New(pgerrcode.FeatureNotSupported, "catalog query not supported with these parameters")
	}
	return ans(s)
}

// catalogParamRe matches $n outside literals (literals are blanked first).
var catalogParamRe = regexp.MustCompile(`\$([0-9]+)`)

// catalogParams returns the largest $n of text outside its literals.
func catalogParams(text string) int {
	n := 0
	for _, m := range catalogParamRe.FindAllStringSubmatch(literalRe.ReplaceAllString(text, "''"), -1) {
		if v, err := strconv.Atoi(m[1]); err == nil {
			n = max(n, v)
		}
	}
	return n
}

// bindCatalogParams puts the values of $1..$n into text as SQL literals
// (strings in single quotes, each quote in them doubled; NULL for nil),
// outside text's own literals. The catalog readers take only literals;
// the values never reach a database.
func bindCatalogParams(text string, args []any) string {
	lit := func(i int) string {
		if i < 1 || i > len(args) || args[i-1] == nil {
			return "NULL"
		}
		switch v := args[i-1].(type) {
		case int64, int32, int, float64, bool:
			return fmt.Sprint(v)
		case []byte:
			return "'" + strings.ReplaceAll(string(v), "'", "''") + "'"
		default:
			return "'" + strings.ReplaceAll(fmt.Sprint(v), "'", "''") + "'"
		}
	}
	var b strings.Builder
	last := 0
	for _, span := range literalRe.FindAllStringIndex(text, -1) {
		b.WriteString(replaceParams(text[last:span[0]], lit))
		b.WriteString(text[span[0]:span[1]])
		last = span[1]
	}
	b.WriteString(replaceParams(text[last:], lit))
	return b.String()
}

func replaceParams(s string, lit func(int) string) string {
	return catalogParamRe.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return lit(n)
	})
}

// matchCatalogQuery returns the answer to text if it is a catalog query
// this emulation knows, an 0A000 error if it is another catalog query,
// and (nil, nil) if it is not a SELECT or WITH that names pg_catalog or
// information_schema.
func matchCatalogQuery(text string) (pgAnswer, error) {
	// A query reads the catalogs if it names them outside its literals:
	// INSERT ... VALUES ('pg_catalog.x') is not one.
	// A cast to a type named pg_catalog.x (x::pg_catalog.int8) reads no
	// catalog.
	if !queryStartRe.MatchString(text) || !catalogNameRe.MatchString(catalogCastRe.ReplaceAllString(literalRe.ReplaceAllString(text, "''"), "::")) {
		return nil, nil
	}
	if ans, ok := completionAnswer(text); ok {
		return ans, nil
	}
	if ans, ok, err := infoSchemaAnswer(text); ok {
		return ans, err
	}
	// A query the general reader can compute is answered by it: it
	// evaluates WHERE, where psql's reader only lifts known filters out.
	dans, decided, derr := driverAnswer(text)
	if decided {
		return dans, derr
	}
	ans, err := psqlAnswer(text)
	if err != nil && derr != nil && sqlerr.Code(err) == pgerrcode.FeatureNotSupported {
		return nil, derr // says more than psql's reader
	}
	return ans, err
}

// psqlAnswer answers the catalog queries of psql's backslash commands.
func psqlAnswer(text string) (pgAnswer, error) {
	unsupported := sqlerr.New(pgerrcode.FeatureNotSupported, "catalog query not supported")
	if m := viewdefRe.FindStringSubmatch(text); m != nil {
		oid, _ := strconv.ParseInt(m[1], 10, 64)
		return func(s *session) (*server.Result, error) {
			res := &server.Result{Columns: []server.Column{{Name: "pg_get_viewdef", Type: sqltypes.String}}}
			for _, r := range s.e.pgRelations(s) {
				if r.oid == oid && r.kind == "m" {
					res.Rows = append(res.Rows, []any{r.viewSQL})
				}
			}
			return finish(res), nil
		}, nil
	}
	items, from, ok := splitSelect(text)
	// psql never reads FROM (SELECT ...); drivers do.
	if !ok || strings.HasPrefix(strings.TrimSpace(from), "(") {
		return nil, unsupported
	}
	tables := map[string]bool{}
	first := ""
	for _, m := range fromTableRe.FindAllStringSubmatch(from, -1) {
		t := strings.ToLower(m[1])
		if first == "" {
			first = t
		}
		tables[t] = true
	}
	for _, t := range []string{"pg_policy", "pg_statistic_ext", "pg_publication", "pg_inherits", "pg_rewrite",
		"pg_trigger", "pg_index", "pg_constraint"} {
		if tables[t] {
			return emptyAnswer(items), nil
		}
	}
	// Filters beyond the ones lifted out below would be ignored: refuse
	// rather than answer wrongly (psql's tab completion, for one, uses LIKE
	// and UNION).
	if unliftedRe.MatchString(literalRe.ReplaceAllString(text, "''")) {
		return nil, unsupported
	}
	var cols []pgColumn
	switch first {
	case "pg_class":
		cols = pgClassColumns
	case "pg_attribute":
		cols = pgAttributeColumns
	case "pg_namespace":
		cols = pgNamespaceColumns
	case "pg_database":
		cols = pgDatabaseColumns
	default:
		return nil, unsupported
	}
	out, err := bindItems(items, cols)
	if err != nil {
		return nil, err
	}
	relname, err := patternRe(text, "c.relname")
	if err != nil {
		return nil, err
	}
	nspname, err := patternRe(text, "n.nspname")
	if err != nil {
		return nil, err
	}
	datname, err := patternRe(text, "d.datname")
	if err != nil {
		return nil, err
	}
	var kinds map[string]bool
	if m := relkindInRe.FindStringSubmatch(text); m != nil {
		kinds = map[string]bool{}
		for _, k := range strings.Split(m[1], ",") {
			kinds[strings.Trim(strings.TrimSpace(k), "'")] = true
		}
	}
	oid := int64(-1)
	if m := oidEqRe.FindStringSubmatch(text); m != nil {
		oid, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if nspname != nil && !nspname.MatchString("public") {
		return func(*session) (*server.Result, error) { return finish(&server.Result{Columns: columnsOf(out)}), nil }, nil
	}
	return func(s *session) (*server.Result, error) {
		res := &server.Result{Columns: columnsOf(out)}
		add := func(c pgRow) {
			row := make([]any, len(out))
			for i, b := range out {
				row[i] = b.col.value(c)
			}
			res.Rows = append(res.Rows, row)
		}
		switch first {
		case "pg_class", "pg_attribute":
			for _, r := range s.e.pgRelations(s) {
				switch {
				case kinds != nil && !kinds[r.kind],
					relname != nil && !relname.MatchString(r.name),
					oid >= 0 && r.oid != oid:
					continue
				}
				if first == "pg_class" {
					add(pgRow{s: s, rel: &r})
					continue
				}
				for i := range r.cols {
					add(pgRow{s: s, rel: &r, attr: &r.cols[i]})
				}
			}
		case "pg_namespace":
			add(pgRow{s: s})
		case "pg_database":
			if datname == nil || datname.MatchString(s.database()) {
				add(pgRow{s: s})
			}
		}
		return finish(res), nil
	}, nil
}

func finish(res *server.Result) *server.Result {
	res.Tag = fmt.Sprintf("SELECT %d", len(res.Rows))
	return res
}

// pgRow is what a select item reads: the session, and for pg_class and
// pg_attribute the relation and attribute of the row.
type pgRow struct {
	s    *session
	rel  *pgRel
	attr *pgAttr
}

// pgColumn is a select-list expression psql writes for one catalog, and
// its value. match is the expression (alias removed, white space
// collapsed) exactly, or, when it ends in "...", a prefix of it.
type pgColumn struct {
	match string
	typ   arrow.DataType
	value func(pgRow) any
}

func constant(v any) func(pgRow) any { return func(pgRow) any { return v } }

func (c pgColumn) matches(expr string) bool {
	if p, ok := strings.CutSuffix(c.match, "..."); ok {
		return strings.HasPrefix(expr, p)
	}
	return expr == c.match
}

var relkindNames = map[string]string{"r": "table", "m": "materialized view"}

var pgClassColumns = []pgColumn{
	{"n.nspname", sqltypes.String, constant("public")},
	{"c.relname", sqltypes.String, func(r pgRow) any { return r.rel.name }},
	{"c.oid", sqltypes.Int64, func(r pgRow) any { return r.rel.oid }},
	{"CASE c.relkind ...", sqltypes.String, func(r pgRow) any { return relkindNames[r.rel.kind] }},
	{"pg_catalog.pg_get_userbyid(c.relowner)", sqltypes.String, constant(pgOwner)},
	{"CASE c.relpersistence ...", sqltypes.String, constant("permanent")},
	{"am.amname", sqltypes.String, constant(nil)},
	{"pg_catalog.pg_size_pretty(...", sqltypes.String, constant(nil)},
	{"pg_catalog.obj_description(c.oid, 'pg_class')", sqltypes.String, func(r pgRow) any { return r.rel.desc }},
	{"c.relchecks", sqltypes.Int64, constant(int64(0))},
	{"c.relkind", sqltypes.String, func(r pgRow) any { return r.rel.kind }},
	{"c.relhasindex", sqltypes.Bool, constant(false)},
	{"c.relhasrules", sqltypes.Bool, constant(false)},
	{"c.relhastriggers", sqltypes.Bool, constant(false)},
	{"c.relrowsecurity", sqltypes.Bool, constant(false)},
	{"c.relforcerowsecurity", sqltypes.Bool, constant(false)},
	{"false", sqltypes.Bool, constant(false)}, // false AS relhasoids
	{"c.relispartition", sqltypes.Bool, constant(false)},
	{"''", sqltypes.String, constant("")},                                          // reloptions, short form
	{"pg_catalog.array_to_string(c.reloptions ...", sqltypes.String, constant("")}, // reloptions, \d+
	{"c.reltablespace", sqltypes.Int64, constant(int64(0))},
	{"CASE WHEN c.reloftype = 0 ...", sqltypes.String, constant("")},
	{"c.relpersistence", sqltypes.String, constant("p")},
	{"c.relreplident", sqltypes.String, constant("d")},
}

var pgAttributeColumns = []pgColumn{
	{"a.attname", sqltypes.String, func(r pgRow) any { return r.attr.name }},
	{"pg_catalog.format_type(a.atttypid, a.atttypmod)", sqltypes.String, func(r pgRow) any { return r.attr.typ }},
	{"(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) ...", sqltypes.String, constant(nil)},
	{"a.attnotnull", sqltypes.Bool, func(r pgRow) any { return r.attr.notNull }},
	{"(SELECT c.collname ...", sqltypes.String, constant(nil)},
	{"a.attidentity", sqltypes.String, constant("")},
	{"a.attgenerated", sqltypes.String, constant("")},
	{"a.attstorage", sqltypes.String, func(r pgRow) any { return r.attr.storage }},
	{"a.attcompression", sqltypes.String, constant("")},
	{"CASE WHEN a.attstattarget=-1 ...", sqltypes.Int64, constant(nil)},
	{"pg_catalog.col_description(a.attrelid, a.attnum)", sqltypes.String, constant(nil)},
}

var pgNamespaceColumns = []pgColumn{
	{"n.nspname", sqltypes.String, constant("public")},
	{"pg_catalog.pg_get_userbyid(n.nspowner)", sqltypes.String, constant(pgOwner)},
	{"pg_catalog.array_to_string(n.nspacl, E'\\n')", sqltypes.String, constant(nil)},
	{"pg_catalog.obj_description(n.oid, 'pg_namespace')", sqltypes.String, constant("standard public schema")},
}

var pgDatabaseColumns = []pgColumn{
	{"d.datname", sqltypes.String, func(r pgRow) any { return r.s.database() }},
	{"pg_catalog.pg_get_userbyid(d.datdba)", sqltypes.String, constant(pgOwner)},
	{"pg_catalog.pg_encoding_to_char(d.encoding)", sqltypes.String, constant("UTF8")},
	{"d.datcollate", sqltypes.String, constant("C")},
	{"d.datctype", sqltypes.String, constant("C")},
	{"d.daticulocale", sqltypes.String, constant(nil)},
	{"CASE d.datlocprovider ...", sqltypes.String, constant("libc")},
	{"pg_catalog.array_to_string(d.datacl, E'\\n')", sqltypes.String, constant(nil)},
	{"CASE WHEN pg_catalog.has_database_privilege(d.datname, 'CONNECT') ...", sqltypes.String, constant(nil)}, // \l+ Size
	{"t.spcname", sqltypes.String, constant(nil)},
	{"pg_catalog.shobj_description(d.oid, 'pg_database')", sqltypes.String, constant(nil)},
}

// boundItem is one select item bound to its column.
type boundItem struct {
	name string
	col  pgColumn
}

func columnsOf(items []boundItem) []server.Column {
	cols := make([]server.Column, len(items))
	for i, b := range items {
		cols[i] = server.Column{Name: b.name, Type: b.col.typ}
	}
	return cols
}

// bindItems binds each select item to the first column it matches.
func bindItems(items []string, cols []pgColumn) ([]boundItem, error) {
	var out []boundItem
	for _, it := range items {
		expr, name := splitAlias(it)
		found := false
		for _, c := range cols {
			if c.matches(expr) {
				out = append(out, boundItem{name: name, col: c})
				found = true
				break
			}
		}
		if !found {
			return nil, sqlerr.New(pgerrcode.FeatureNotSupported, "catalog query not supported: select item %s", expr)
		}
	}
	return out, nil
}

// emptyAnswer answers a query of a catalog sessionsql has no objects in:
// its columns, no rows.
func emptyAnswer(items []string) pgAnswer {
	cols := make([]server.Column, len(items))
	for i, it := range items {
		_, name := splitAlias(it)
		cols[i] = server.Column{Name: name, Type: sqltypes.String}
	}
	return func(*session) (*server.Result, error) { return finish(&server.Result{Columns: cols}), nil }
}

// splitAlias returns a select item's expression, white space collapsed,
// and its result column name: the alias, else what PostgreSQL derives (the
// last name of a column reference or function, else ?column?).
func splitAlias(item string) (expr, name string) {
	expr = strings.Join(strings.Fields(item), " ")
	if m := aliasRe.FindStringSubmatch(expr); m != nil {
		return m[1], m[2] + strings.ToLower(m[3]) // PostgreSQL folds unquoted names
	}
	name = "?column?"
	if m := derivedNameRe.FindStringSubmatch(expr); m != nil {
		name = m[1]
	}
	return expr, name
}

// splitSelect splits a query's first select list into items at top-level
// commas and returns them with the text after the list's FROM. Quotes,
// parentheses and E” escapes are respected; ok is false if text does not
// start with SELECT.
func splitSelect(text string) (items []string, from string, ok bool) {
	t := strings.TrimSpace(text)
	if len(t) < 7 || !strings.EqualFold(t[:6], "SELECT") || !isSpace(t[6]) {
		return nil, "", false
	}
	depth, start := 0, 6
	for i := 6; i < len(t); i++ {
		switch c := t[i]; c {
		case '\'', '"':
			escapes := c == '\'' && (t[i-1] == 'E' || t[i-1] == 'e') // E'...': \' does not end it
			for i++; i < len(t) && t[i] != c; i++ {
				if escapes && t[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				items = append(items, t[start:i])
				start = i + 1
			}
		default:
			if depth == 0 && isSpace(c) && len(t) > i+5 && strings.EqualFold(t[i+1:i+5], "FROM") && isSpace(t[i+5]) {
				return append(items, t[start:i]), t[i+5:], true
			}
		}
	}
	return append(items, strings.TrimRight(t[start:], "; \t\r\n")), "", true
}

func isSpace(c byte) bool { return strings.IndexByte(" \t\r\n\f\v", c) >= 0 }

// pgRelations lists every relation, ordered by name as psql's queries ask.
func (e *Engine) pgRelations(sess *session) []pgRel {
	var rels []pgRel
	add := func(r pgRel) {
		r.oid = pgOIDOf(r.name)
		rels = append(rels, r)
	}
	fromSchema := func(s *arrow.Schema) []pgAttr {
		var attrs []pgAttr
		for _, f := range s.Fields() {
			oid := sqltypes.OID(f.Type)
			attrs = append(attrs, pgAttr{name: f.Name, typ: sqltypes.FormatType(oid), oid: oid, storage: storageOf(f.Type), notNull: !f.Nullable})
		}
		return attrs
	}
	for _, src := range e.cat.Sources() {
		r := pgRel{name: src.Name, kind: "r", desc: "source"}
		for _, c := range src.Columns {
			a := pgAttr{name: c.Name, typ: strings.ToLower(c.Type), oid: sqltypes.OIDText, storage: "x"}
			if t, err := sqltypes.FromName(c.Type); err == nil {
				a.typ, a.oid, a.storage = sqltypes.FormatType(sqltypes.OID(t)), sqltypes.OID(t), storageOf(t)
			}
			r.cols = append(r.cols, a)
		}
		add(r)
		add(pgRel{name: catalog.RejectsTable(src.Name), kind: "r", desc: "messages of source " + src.Name + " that could not be decoded",
			cols: fromSchema(rejectsSchema)})
	}
	for _, v := range e.cat.Views() {
		r := pgRel{name: v.Name, kind: "m", viewSQL: v.SQL}
		if t, ok := e.liveTable(v.Name); ok {
			r.cols, r.key = fromSchema(t.Spec().Schema), t.Spec().Key
		} else if st, err := sql.Parse(v.SQL); err == nil {
			// A view that is not running still shows its columns: plan it again.
			if cv, ok := st.(*sql.CreateView); ok {
				if plan, err := e.planView(cv.Name.Name, cv.Query, sess); err == nil {
					r.cols, r.key = fromSchema(plan.table.Schema), plan.table.Key
				}
			}
		}
		add(r)
		add(pgRel{name: catalog.LateTable(v.Name), kind: "r", desc: "events too late for view " + v.Name,
			cols: fromSchema(lateSchema)})
	}
	slices.SortFunc(rels, func(a, b pgRel) int { return strings.Compare(a.name, b.name) })
	return rels
}

// storageOf is PostgreSQL's attstorage of the type: text is "extended",
// fixed-width types are "plain".
func storageOf(t arrow.DataType) string {
	if sqltypes.OID(t) == sqltypes.OIDText {
		return "x"
	}
	return "p"
}

// psql's tab completion.
//
// On TAB, psql (15 and later; the text is built by _complete_from_query in
// psql's tab-complete.c) sends a query like
//
//	SELECT c.relname, NULL::pg_catalog.text FROM pg_catalog.pg_class c
//	 WHERE c.relkind IN ('r', 'S', 'v', 'm', 'f', 'p') AND (c.relname) LIKE 'pl%'
//	   AND pg_catalog.pg_table_is_visible(c.oid) AND c.relnamespace <> (SELECT ...)
//	UNION ALL
//	SELECT NULL::pg_catalog.text, n.nspname FROM pg_catalog.pg_namespace n
//	 WHERE n.nspname LIKE 'pl%' AND n.nspname NOT LIKE E'pg\\_%'
//	LIMIT 1000
//
// (relation names, then schema names, that start with what was typed),
// and always ends it with "\nLIMIT n". A query that names the catalogs
// and ends so is taken for a completion query and never fails: each
// UNION branch is read as one catalog and the name it returns, and
// answers from the engine's catalog what it can (relation names of
// pg_class, filtered by c.relkind IN (...), by the typed prefix and by
// n.nspname = '...'; the schema public; column names of pg_attribute for
// c.relname = '...'; the current database); every other branch (settings,
// functions, roles, types, ...) has no rows. psql 14 and earlier write the
// prefix test as substring(pg_catalog.quote_ident(c.relname),1,n)='pl',
// which is read too.

var (
	completionLimitRe = regexp.MustCompile(`(?is)^(.*)\nLIMIT\s+(\d+)\s*;?\s*$`)
	// likeRe finds `col LIKE 'pattern'` and `col NOT LIKE 'pattern'`, the
	// column maybe in parentheses; substringRe psql 14's
	// substring(pg_catalog.quote_ident(col),1,n)='prefix'.
	likeRe       = regexp.MustCompile(`(?i)(\bNOT\s+)?\(?\b([\w.]+)\)?\s+LIKE\s+'((?:[^']|'')*)'`)
	substringRe  = regexp.MustCompile(`(?i)substring\(pg_catalog\.quote_ident\(([\w.]+)\),\s*1,\s*\d+\)\s*=\s*'((?:[^']|'')*)'`)
	relnameEqRe  = regexp.MustCompile(`(?i)(?:\bc\.relname|pg_catalog\.quote_ident\(relname\))\s*=\s*'((?:[^']|'')*)'`)
	nspnameEqRe  = regexp.MustCompile(`(?i)\bn\.nspname\s*=\s*'((?:[^']|'')*)'`)
	castNameRe   = regexp.MustCompile(`(?i)::\s*(?:pg_catalog\.)?(\w+)$`)
	plainIdentRe = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)
)

// completionAnswer answers text if it is one of psql's tab-completion
// queries (ok).
func completionAnswer(text string) (pgAnswer, bool) {
	m := completionLimitRe.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil {
		return nil, false
	}
	limit, err := strconv.Atoi(m[2])
	if err != nil {
		return nil, false
	}
	var branches []completionBranch
	for _, b := range splitUnion(m[1]) {
		items, from, ok := splitSelect(b)
		if !ok {
			return nil, false
		}
		branches = append(branches, readBranch(items, from))
	}
	// The columns are the first branch's, all text as psql reads them.
	cols := make([]server.Column, len(branches[0].items))
	for i, it := range branches[0].items {
		cols[i] = server.Column{Name: completionColumnName(it), Type: sqltypes.String}
	}
	return func(s *session) (*server.Result, error) {
		res := &server.Result{Columns: cols}
		for _, b := range branches {
			for _, row := range b.rows(s) {
				if len(res.Rows) == limit {
					break
				}
				if len(row) == len(cols) {
					res.Rows = append(res.Rows, row)
				}
			}
		}
		return finish(res), nil
	}, true
}

// completionBranch is one SELECT of a completion query.
type completionBranch struct {
	items   []string       // the select list, aliases removed
	catalog string         // the first catalog of FROM: pg_class, pg_namespace, ...
	prefix  *regexp.Regexp // the typed prefix as a match on the name returned; nil: any
	kinds   map[string]bool
	relname *string // pg_attribute: the relation named
	nspname *string // the schema named (schema-qualified completion)
	// prefixQuoted: prefix matches quote_ident of the name (psql 14's
	// substring(pg_catalog.quote_ident(c.relname),1,n)='...').
	prefixQuoted bool
}

func readBranch(items []string, from string) completionBranch {
	b := completionBranch{}
	for _, it := range items {
		expr, _ := splitAlias(it)
		b.items = append(b.items, expr)
	}
	if m := fromTableRe.FindStringSubmatch(from); m != nil {
		b.catalog = strings.ToLower(m[1])
	}
	for _, m := range likeRe.FindAllStringSubmatch(from, -1) {
		// RE2 has no look-behind: "x NOT LIKE 'p'" also matches as the
		// column NOT.
		if m[1] == "" && !strings.EqualFold(m[2], "not") && b.prefix == nil {
			b.prefix = likeRegexp(strings.ReplaceAll(m[3], "''", "'"))
		}
	}
	if m := substringRe.FindStringSubmatch(from); m != nil && b.prefix == nil {
		b.prefix = regexp.MustCompile("^" + regexp.QuoteMeta(strings.ReplaceAll(m[2], "''", "'")))
		b.prefixQuoted = true
	}
	if m := relkindInRe.FindStringSubmatch(from); m != nil {
		b.kinds = map[string]bool{}
		for _, k := range strings.Split(m[1], ",") {
			b.kinds[strings.Trim(strings.TrimSpace(k), "'")] = true
		}
	}
	if m := relnameEqRe.FindStringSubmatch(from); m != nil {
		v := strings.ReplaceAll(m[1], "''", "'")
		b.relname = &v
	}
	if m := nspnameEqRe.FindStringSubmatch(from); m != nil {
		v := strings.ReplaceAll(m[1], "''", "'")
		b.nspname = &v
	}
	return b
}

// completionNames are the select items, as psql writes them, that return
// the name of a row of each catalog (maybe in pg_catalog.quote_ident).
var completionNames = map[string][]string{
	"pg_class":     {"c.relname", "relname"},
	"pg_namespace": {"n.nspname", "nspname"},
	"pg_attribute": {"a.attname", "attname"},
	"pg_database":  {"d.datname", "datname"},
}

// rows answers the branch: one row per name of its catalog that passes its
// filters. A branch of another catalog, or that returns no plain name of
// its catalog (psql 14's "schema." forms), has none.
func (b completionBranch) rows(s *session) [][]any {
	if b.nspname != nil && *b.nspname != "public" {
		return nil
	}
	// The name the branch returns: the first item naming its catalog's
	// name column (psql's schema branch is SELECT NULL::pg_catalog.text,
	// n.nspname).
	kind := ""
	for i := range b.items {
		if k, _ := b.itemKind(i); k == b.catalog {
			kind = k
			break
		}
	}
	if kind == "" {
		return nil
	}
	var rows [][]any
	add := func(names map[string]string) {
		name := names[kind]
		if b.prefixQuoted {
			name = quoteIdent(name)
		}
		if b.prefix != nil && !b.prefix.MatchString(name) {
			return
		}
		row := make([]any, len(b.items))
		for i := range b.items {
			k, q := b.itemKind(i)
			if v, ok := names[k]; ok && k != "" {
				if q {
					v = quoteIdent(v)
				}
				row[i] = v
			}
		}
		rows = append(rows, row)
	}
	switch b.catalog {
	case "pg_class", "pg_attribute":
		for _, r := range s.e.pgRelations(s) {
			if (b.kinds != nil && !b.kinds[r.kind]) || (b.relname != nil && *b.relname != r.name) {
				continue
			}
			if b.catalog == "pg_class" {
				add(map[string]string{"pg_class": r.name, "pg_namespace": "public"})
				continue
			}
			if b.relname == nil {
				continue // columns of every relation: psql asks for one
			}
			for _, a := range r.cols {
				add(map[string]string{"pg_attribute": a.name, "pg_class": r.name, "pg_namespace": "public"})
			}
		}
	case "pg_namespace":
		add(map[string]string{"pg_namespace": "public"})
	case "pg_database":
		add(map[string]string{"pg_database": s.database()})
	}
	return rows
}

// itemKind returns which catalog's name item i of the branch is ("" for
// anything else: NULL::pg_catalog.text, an expression), and whether it is
// wrapped in pg_catalog.quote_ident.
func (b completionBranch) itemKind(i int) (kind string, quote bool) {
	expr := b.items[i]
	if inner, ok := strings.CutPrefix(expr, "pg_catalog.quote_ident("); ok && strings.HasSuffix(inner, ")") {
		expr, quote = strings.TrimSuffix(inner, ")"), true
	}
	for cat, names := range completionNames {
		if slices.Contains(names, expr) {
			return cat, quote
		}
	}
	return "", false
}

// likeRegexp turns a LIKE pattern (backslash escapes, as psql writes
// them) into a regexp of the whole name.
func likeRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile("(?s)" + b.String())
}

// quoteIdent is PostgreSQL's quote_ident for the names here: bare when it
// is a lower-case identifier, else in double quotes.
func quoteIdent(name string) string {
	if plainIdentRe.MatchString(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// completionColumnName is the name PostgreSQL gives a select item of a
// completion query: a cast's type name (NULL::pg_catalog.text is "text"),
// else as splitAlias derives it.
func completionColumnName(expr string) string {
	if m := castNameRe.FindStringSubmatch(expr); m != nil {
		return m[1]
	}
	if strings.HasPrefix(expr, "pg_catalog.quote_ident(") {
		return "quote_ident"
	}
	_, name := splitAlias(expr)
	return name
}

// splitUnion splits a query at its top-level UNION and UNION ALL, outside
// quotes and parentheses.
func splitUnion(text string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\'' || c == '"':
			escapes := c == '\'' && i > 0 && (text[i-1] == 'E' || text[i-1] == 'e')
			for i++; i < len(text) && text[i] != c; i++ {
				if escapes && text[i] == '\\' {
					i++
				}
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && (c == 'U' || c == 'u') && (i == 0 || isSpace(text[i-1])) && len(text) >= i+6 &&
			strings.EqualFold(text[i:i+5], "UNION") && isSpace(text[i+5]):
			parts = append(parts, text[start:i])
			j := i + 5
			for j < len(text) && isSpace(text[j]) {
				j++
			}
			if len(text) >= j+4 && strings.EqualFold(text[j:j+3], "ALL") && isSpace(text[j+3]) {
				j += 3
			}
			start, i = j, j-1
		}
	}
	return append(parts, text[start:])
}
