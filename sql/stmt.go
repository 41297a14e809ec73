package sql

import (
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Statement is one parsed statement. The concrete types are listed below;
// callers switch on them.
type Statement interface{ statement() }

// Ident is a name as the user wrote it, folded to lower case (identifiers
// are case-insensitive; a double-quoted or back-quoted identifier keeps its
// case), with the 1-based character position of its first character.
type Ident struct {
	Name string
	Pos  int
}

// CreateSource is CREATE SOURCE name (columns, WATERMARK FOR ...) WITH (...).
type CreateSource struct {
	Name        Ident
	IfNotExists bool
	Columns     []ColumnDef
	Watermark   *WatermarkDef // nil when the statement has none
	Options     []Option      // WITH (key = 'value', ...) in the order written
	Text        string        // the whole statement as the user wrote it
}

// ColumnDef is one column of a CREATE SOURCE.
type ColumnDef struct {
	Name     Ident
	TypeName string // as written, e.g. "VARCHAR(20)" or "double precision"
	TypePos  int    // 1-based character position of the type name
}

// WatermarkDef is WATERMARK FOR col AS col - INTERVAL d.
type WatermarkDef struct {
	Column Ident
	Delay  time.Duration // bounded out-of-orderness d; zero for "AS col"
	Pos    int           // position of the WATERMARK keyword
}

// Option is one key = 'value' pair of a WITH clause. Keys are lower case.
type Option struct {
	Key      Ident
	Value    string // the literal's value: quotes removed, or the number/word as written
	ValuePos int
}

// CreateView is CREATE MATERIALIZED VIEW name AS query.
type CreateView struct {
	Name        Ident
	IfNotExists bool
	Query       *Query
	Text        string // the whole statement as the user wrote it
}

// Select is a plain SELECT (over a view, a source's dead-letter table, ...).
type Select struct {
	Query *Query
}

// Query is a SELECT whose extension clauses have been lifted out. Select is
// what TiDB's parser produced for the remaining text; the lifted clauses are
// in Window, Emit, Lateness and Filters.
//
// Positions: TiDB records byte offsets (ast.Node.OriginTextPosition) into
// the text it parsed. That text is the user's SELECT with the lifted clauses
// blanked out by spaces of the same length, so an offset into it plus
// Offset is a byte offset into Source. Use Pos to turn a node into the
// 1-based character position an error reports. The expressions of lifted
// clauses (Window.GapExpr, StartWhen, EndWhen, the conditions in Filters)
// are parsed by TiDB from texts laid out the same way, so Pos, Params and
// ParamNumber work for their nodes too.
//
// FIRST_VALUE(x) and LAST_VALUE(x) without OVER, which TiDB knows only as
// window functions, reach Select as *ast.AggregateFuncExpr with F
// "first_value" or "last_value" (lower case), like TiDB's own aggregates.
// With OVER they are refused: window functions are not supported.
type Query struct {
	Select   *ast.SelectStmt
	Window   *Window       // nil when GROUP BY holds no window clause
	Emit     Emit          // zero value is EMIT FINAL
	Lateness time.Duration // ALLOWED LATENESS; zero when absent
	// Filters maps an aggregate call in Select (always an
	// *ast.AggregateFuncExpr, wherever it stands: select list, HAVING,
	// ORDER BY, a subquery) to the condition of the FILTER (WHERE cond)
	// that follows it. Nil when the query has none. A caller that does not
	// apply the filter of some call must refuse the query.
	Filters map[ast.ExprNode]ast.ExprNode
	Source  string // the whole statement text the user sent
	Offset  int    // byte offset in Source of the text TiDB parsed
	// Params maps the byte offset (in the text TiDB parsed) of each
	// parameter marker to its 1-based number n of $n.
	Params map[int]int
}

// WindowKind tells which window clause a query groups by.
type WindowKind int

const (
	// WindowSession is SESSION(ts, gap [, MAX d]) or SESSION(ts, GAP expr
	// [, MAX d]).
	WindowSession WindowKind = iota + 1
	// WindowEvent is EVENT_WINDOW(ts, START WHEN cond, END WHEN cond
	// [, TIMEOUT d]).
	WindowEvent
)

// Window is the window clause lifted out of GROUP BY. The parser checks
// what it can without the catalog: Gap, Max and Timeout are positive when
// present, and a fixed Gap is at most Max.
type Window struct {
	Kind    WindowKind
	Pos     int   // position of the SESSION or EVENT_WINDOW keyword
	TimeCol Ident // the event-time column, first argument

	// Gap is the fixed gap of SESSION(ts, gap), > 0; zero with GapExpr.
	Gap time.Duration
	// GapExpr is the per-event gap of SESSION(ts, GAP expr); nil for a
	// fixed gap. Its value is in milliseconds: every interval literal in
	// it (INTERVAL '10' MINUTE, INTERVAL 10 MINUTE, INTERVAL '10 minutes')
	// was rewritten to its number of milliseconds (600000, at the offset
	// of the INTERVAL keyword) before TiDB parsed it, so an integer result
	// is a gap in ms. Intervals that are arguments of DATE_ADD, DATE_SUB,
	// ADDDATE and SUBDATE stay TiDB's.
	GapExpr ast.ExprNode
	Max     time.Duration // SESSION's MAX d; zero when absent
	MaxPos  int           // position of the MAX keyword; 0 when absent

	// StartWhen and EndWhen are EVENT_WINDOW's conditions, nil for SESSION.
	StartWhen, EndWhen ast.ExprNode
	Timeout            time.Duration // EVENT_WINDOW's TIMEOUT; zero when absent
}

// EmitMode is how a query emits rows.
type EmitMode int

const (
	// EmitFinal writes one row per window when it closes (the default).
	EmitFinal EmitMode = iota
	// EmitEarlyInterval also writes changed partial rows every Every of
	// processing time.
	EmitEarlyInterval
	// EmitEarlyEvents also writes a partial row after every EveryEvents
	// events of a window.
	EmitEarlyEvents
)

// Emit is the EMIT clause.
type Emit struct {
	Mode        EmitMode
	Every       time.Duration // EmitEarlyInterval
	EveryEvents int64         // EmitEarlyEvents
	Pos         int           // position of EMIT; 0 when absent
}

// DropSource is DROP SOURCE [IF EXISTS] name.
type DropSource struct {
	Name     Ident
	IfExists bool
}

// DropView is DROP MATERIALIZED VIEW [IF EXISTS] name.
type DropView struct {
	Name     Ident
	IfExists bool
}

// ShowSources is SHOW SOURCES.
type ShowSources struct{}

// ShowViews is SHOW MATERIALIZED VIEWS.
type ShowViews struct{}

// ShowVar is SHOW name (a session or server setting, e.g. server_version).
type ShowVar struct {
	Name Ident
}

// SetVar is SET [SESSION|LOCAL] name {=|TO} value.
type SetVar struct {
	Name  Ident
	Value string
}

// Describe is DESCRIBE name (also DESC name).
type Describe struct {
	Name Ident
}

// Explain is EXPLAIN stmt, where stmt is a Select or a CreateView, or
// EXPLAIN ANALYZE name of a running materialized view (then Stmt is nil).
type Explain struct {
	Stmt    Statement
	Analyze *Ident // EXPLAIN ANALYZE's view; nil for a plain EXPLAIN
}

// Insert is INSERT INTO source [(columns)] VALUES (...), (...).
type Insert struct {
	Stmt   *ast.InsertStmt
	Source string // the whole statement text
	Offset int    // byte offset in Source of the text TiDB parsed
	Params map[int]int
}

// TxnKind is a transaction-control statement kind.
type TxnKind int

const (
	TxnBegin TxnKind = iota + 1
	TxnCommit
	TxnRollback
)

// Txn is BEGIN / START TRANSACTION / COMMIT / ROLLBACK. The engine has no
// transactions; clients (JDBC, psql) send these and expect them accepted.
type Txn struct {
	Kind TxnKind
}

// Empty is a statement with nothing in it (only spaces or comments).
type Empty struct{}

func (*CreateSource) statement() {}
func (*CreateView) statement()   {}
func (*Select) statement()       {}
func (*DropSource) statement()   {}
func (*DropView) statement()     {}
func (*ShowSources) statement()  {}
func (*ShowViews) statement()    {}
func (*ShowVar) statement()      {}
func (*SetVar) statement()       {}
func (*Describe) statement()     {}
func (*Explain) statement()      {}
func (*Insert) statement()       {}
func (*Txn) statement()          {}
func (*Empty) statement()        {}
