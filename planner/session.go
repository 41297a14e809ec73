package planner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgerrcode"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/expr"
	"github.com/sessionsql/sessionsql/server"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// session is the engine side of one connection.
type session struct {
	e    *Engine
	usr  string
	db   string
	vars map[string]string
}

func (s *session) user() string {
	if s == nil {
		return "sessionsql"
	}
	return s.usr
}

func (s *session) database() string {
	if s == nil {
		return "sessionsql"
	}
	return s.db
}

// prepared is the engine's state of a prepared statement.
type prepared struct {
	stmt       sql.Statement
	paramTypes map[int]arrow.DataType
}

// Prepare implements server.Session: it parses and binds the statement,
// which checks names and types and gives the result columns.
func (s *session) Prepare(ctx context.Context, text string, paramOIDs []uint32) (*server.Prepared, error) {
	// psql's catalog queries are PostgreSQL dialect; pgcatalog.go answers them.
	if p, ok, err := s.prepareCatalog(text); ok {
		return p, err
	}
	st, err := sql.Parse(text)
	if err != nil {
		return nil, err
	}
	prm := &params{types: map[int]arrow.DataType{}}
	for i, oid := range paramOIDs {
		if t, ok := sqltypes.FromOID(oid); ok {
			prm.types[i+1] = t
		}
	}
	cols, nparams, err := s.describe(ctx, st, prm)
	if err != nil {
		return nil, err
	}
	p := &server.Prepared{Text: text, Columns: cols, State: &prepared{stmt: st, paramTypes: prm.types}}
	n := max(nparams, len(paramOIDs))
	for i := 1; i <= n; i++ {
		t := prm.types[i]
		if t == nil {
			t = sqltypes.String
		}
		p.Params = append(p.Params, sqltypes.OID(t))
	}
	return p, nil
}

// describe returns a statement's result columns (nil for no rows) and the
// number of parameters it has.
func (s *session) describe(ctx context.Context, st sql.Statement, prm *params) ([]server.Column, int, error) {
	switch st := st.(type) {
	case *sql.Select:
		plan, err := s.e.planQuery(st.Query, s, prm)
		if err != nil {
			return nil, 0, err
		}
		var cols []server.Column
		for _, c := range plan.columnsOf() {
			cols = append(cols, server.Column{Name: c.name, Type: c.typ})
		}
		return cols, maxParam(st.Query.Params), nil
	case *sql.Insert:
		if _, _, err := s.e.insertPayloads(st, s, prm); err != nil {
			return nil, 0, err
		}
		return nil, maxParam(st.Params), nil
	case *sql.ShowSources:
		return showSourcesColumns, 0, nil
	case *sql.ShowViews:
		return showViewsColumns, 0, nil
	case *sql.ShowVar:
		return []server.Column{{Name: st.Name.Name, Type: sqltypes.String}}, 0, nil
	case *sql.Describe:
		return describeColumns, 0, nil
	case *sql.Explain:
		return []server.Column{{Name: "QUERY PLAN", Type: sqltypes.String}}, 0, nil
	}
	return nil, 0, nil
}

func maxParam(m map[int]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

// Execute implements server.Session.
func (s *session) Execute(ctx context.Context, sp *server.Prepared, args []any) (*server.Result, error) {
	switch st := sp.State.(type) {
	case pgAnswer:
		return st(s)
	case catalogQuery:
		return st.answer(s, args)
	}
	p, ok := sp.State.(*prepared)
	if !ok {
		return nil, sqlerr.New(pgerrcode.InternalError, "statement was not prepared by this engine")
	}
	prm := &params{types: p.paramTypes, values: args}
	if prm.values == nil {
		prm.values = []any{}
	}
	switch st := p.stmt.(type) {
	case *sql.Select:
		return s.query(ctx, st, prm)
	case *sql.CreateSource:
		tag, err := s.e.createSource(ctx, st)
		return tagged(tag, err)
	case *sql.CreateView:
		tag, err := s.e.createView(ctx, st, s)
		return tagged(tag, err)
	case *sql.DropSource:
		tag, err := s.e.dropSource(ctx, st)
		return tagged(tag, err)
	case *sql.DropView:
		tag, err := s.e.dropView(ctx, st)
		return tagged(tag, err)
	case *sql.Insert:
		tag, err := s.e.insert(ctx, st, s, prm)
		return tagged(tag, err)
	case *sql.ShowSources:
		return s.e.showSources(ctx)
	case *sql.ShowViews:
		return s.e.showViews(ctx)
	case *sql.ShowVar:
		return s.showVar(st)
	case *sql.SetVar:
		s.vars[st.Name.Name] = st.Value
		return &server.Result{Tag: "SET"}, nil
	case *sql.Describe:
		return s.e.describeRelation(st)
	case *sql.Explain:
		return s.explain(ctx, st)
	case *sql.Txn:
		switch st.Kind {
		case sql.TxnBegin:
			return &server.Result{Tag: "BEGIN"}, nil
		case sql.TxnCommit:
			return &server.Result{Tag: "COMMIT"}, nil
		}
		return &server.Result{Tag: "ROLLBACK"}, nil
	case *sql.Empty:
		return &server.Result{Tag: ""}, nil
	}
	return nil, sqlerr.New(pgerrcode.FeatureNotSupported, "statement %T is not supported", p.stmt)
}

func tagged(tag string, err error) (*server.Result, error) {
	if err != nil {
		return nil, wrapInternal("statement failed", err)
	}
	return &server.Result{Tag: tag}, nil
}

// Close implements server.Session.
func (s *session) Close() {}

func (s *session) query(ctx context.Context, st *sql.Select, prm *params) (*server.Result, error) {
	plan, err := s.e.planQuery(st.Query, s, prm)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := plan.run(s.e.mem)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	res := &server.Result{}
	for _, c := range plan.columnsOf() {
		res.Columns = append(res.Columns, server.Column{Name: c.name, Type: c.typ})
	}
	res.Rows = rowsOf(rec)
	res.Tag = fmt.Sprintf("SELECT %d", len(res.Rows))
	return res, nil
}

// rowsOf converts a batch to Go values for the wire.
func rowsOf(rec arrow.RecordBatch) [][]any {
	n := int(rec.NumRows())
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = make([]any, rec.NumCols())
	}
	for j, col := range rec.Columns() {
		for i := 0; i < n; i++ {
			if col.IsNull(i) {
				continue
			}
			switch c := col.(type) {
			case *array.Int64:
				rows[i][j] = c.Value(i)
			case *array.Float64:
				rows[i][j] = c.Value(i)
			case *array.String:
				rows[i][j] = c.Value(i)
			case *array.Boolean:
				rows[i][j] = c.Value(i)
			case *array.Timestamp:
				rows[i][j] = time.UnixMilli(int64(c.Value(i))).UTC()
			default:
				rows[i][j] = col.ValueStr(i)
			}
		}
	}
	return rows
}

// evalConst evaluates an expression without columns.
func evalConst(mem memory.Allocator, e expr.Expr) (any, error) {
	rec := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
	defer rec.Release()
	a, err := e.Eval(mem, rec)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	one := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: a.DataType(), Nullable: true}}, nil), []arrow.Array{a}, 1)
	defer one.Release()
	v := rowsOf(one)[0][0]
	if t, ok := v.(time.Time); ok {
		return t.UnixMilli(), nil
	}
	return v, nil
}

func insertTable(st *ast.InsertStmt) (string, error) {
	if st.Table == nil || st.Table.TableRefs == nil || st.Table.TableRefs.Right != nil {
		return "", fmt.Errorf("INSERT needs one target source")
	}
	ts, ok := st.Table.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return "", fmt.Errorf("INSERT needs one target source")
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return "", fmt.Errorf("INSERT needs one target source")
	}
	return tn.Name.O, nil
}

// settings answers SHOW name for the settings clients ask about.
var settings = map[string]string{
	"server_version":                "15.0",
	"server_version_num":            "150000",
	"server_encoding":               "UTF8",
	"client_encoding":               "UTF8",
	"datestyle":                     "ISO, MDY",
	"timezone":                      "UTC",
	"integer_datetimes":             "on",
	"standard_conforming_strings":   "on",
	"transaction_isolation":         "read committed",
	"default_transaction_isolation": "read committed",
	"max_identifier_length":         "63",
	"search_path":                   `"$user", public`,
}

func (s *session) showVar(st *sql.ShowVar) (*server.Result, error) {
	name := strings.ToLower(st.Name.Name)
	v, ok := s.vars[name]
	if !ok {
		v, ok = settings[name]
	}
	if !ok {
		return nil, sqlerr.At(pgerrcode.UndefinedObject, st.Name.Pos, "unrecognized configuration parameter %q", st.Name.Name)
	}
	return &server.Result{Columns: []server.Column{{Name: name, Type: sqltypes.String}}, Rows: [][]any{{v}}, Tag: "SHOW"}, nil
}

var showSourcesColumns = []server.Column{
	{Name: "name", Type: sqltypes.String}, {Name: "stream", Type: sqltypes.String}, {Name: "subjects", Type: sqltypes.String},
	{Name: "format", Type: sqltypes.String}, {Name: "event_time", Type: sqltypes.String}, {Name: "state", Type: sqltypes.String},
	{Name: "events", Type: sqltypes.Int64}, {Name: "rejects", Type: sqltypes.Int64}, {Name: "last_seq", Type: sqltypes.Int64},
}

func (e *Engine) showSources(ctx context.Context) (*server.Result, error) {
	srcs, _ := e.figures()
	res := &server.Result{Columns: showSourcesColumns}
	for _, f := range srcs {
		def := f.def
		row := []any{def.Name, def.Stream, strings.Join(def.Subjects, ","), def.Format,
			fmt.Sprintf("%s - %s", def.TimeColumn, def.WatermarkDelay), f.state, nil, nil, nil}
		if f.running {
			row[6], row[7], row[8] = int64(f.stats.Events), int64(f.stats.Rejects), int64(f.stats.LastSeq)
		}
		res.Rows = append(res.Rows, row)
	}
	res.Tag = fmt.Sprintf("SELECT %d", len(res.Rows))
	return res, nil
}

var showViewsColumns = []server.Column{
	{Name: "name", Type: sqltypes.String}, {Name: "source", Type: sqltypes.String}, {Name: "state", Type: sqltypes.String},
	{Name: "events", Type: sqltypes.Int64}, {Name: "lag", Type: sqltypes.Int64}, {Name: "open_windows", Type: sqltypes.Int64},
	{Name: "state_bytes", Type: sqltypes.Int64}, {Name: "rows_emitted", Type: sqltypes.Int64}, {Name: "late_events", Type: sqltypes.Int64},
	{Name: "position", Type: sqltypes.Int64}, {Name: "rows_retracted", Type: sqltypes.Int64}, {Name: "unmatched_events", Type: sqltypes.Int64},
	{Name: "committed_position", Type: sqltypes.Int64}, {Name: "checkpoint_bytes", Type: sqltypes.Int64}, {Name: "checkpoint_ms", Type: sqltypes.Float64},
	{Name: "commit_ms", Type: sqltypes.Float64},
}

// showViews reads the views' figures under the engine's lock, then asks
// JetStream for the streams' ends (for the lag) without it, within
// streamLookupBudget: with NATS away, the lag is NULL and no other
// statement waits.
func (e *Engine) showViews(ctx context.Context) (*server.Result, error) {
	_, views := e.figures()
	lctx, cancel := context.WithTimeout(ctx, streamLookupBudget)
	defer cancel()
	ends := e.streamEnds()
	res := &server.Result{Columns: showViewsColumns}
	for _, v := range views {
		if !v.running {
			res.Rows = append(res.Rows, []any{v.name, v.source, v.state, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil})
			continue
		}
		var lag any
		if last, ok := ends.get(lctx, v.source, v.stream); ok {
			// A view created with start = 'latest' sits one before its
			// first sequence, never behind.
			lag = max(last-v.position, 0)
		}
		res.Rows = append(res.Rows, []any{v.name, v.source, v.state, v.events, lag,
			v.open, v.stateBytes, v.rows, v.late, v.position, v.deletes, v.unmatched,
			int64(v.commit.committedPos.Load()), v.commit.lastBytes.Load(), float64(v.commit.lastNanos.Load()) / 1e6,
			float64(v.commit.txNanos.Load()) / 1e6})
	}
	res.Tag = fmt.Sprintf("SELECT %d", len(res.Rows))
	return res, nil
}

var describeColumns = []server.Column{
	{Name: "column_name", Type: sqltypes.String}, {Name: "data_type", Type: sqltypes.String}, {Name: "attributes", Type: sqltypes.String},
}

func (e *Engine) describeRelation(d *sql.Describe) (*server.Result, error) {
	name := d.Name.Name
	res := &server.Result{Columns: describeColumns}
	add := func(col, typ, attr string) { res.Rows = append(res.Rows, []any{col, typ, attr}) }
	if src, ok := e.cat.Source(name); ok {
		for _, c := range src.Columns {
			attr := ""
			if c.Name == src.TimeColumn {
				attr = fmt.Sprintf("event time, watermark %s - %s", c.Name, src.WatermarkDelay)
			}
			add(c.Name, c.Type, attr)
		}
	} else if t, ok := e.liveTable(name); ok {
		spec := t.Spec() // a view's result table carries its key; dead letters have none
		keys := map[int]bool{}
		for _, k := range spec.Key {
			keys[k] = true
		}
		for i, f := range spec.Schema.Fields() {
			attr := ""
			if keys[i] {
				attr = "key"
			}
			add(f.Name, sqltypes.Name(f.Type), attr)
		}
	} else {
		return nil, sqlerr.At(pgerrcode.UndefinedTable, d.Name.Pos, "relation %q does not exist", name)
	}
	res.Tag = fmt.Sprintf("SELECT %d", len(res.Rows))
	return res, nil
}

func (s *session) explain(ctx context.Context, st *sql.Explain) (*server.Result, error) {
	var lines []string
	if st.Analyze != nil {
		var err error
		if lines, err = s.e.explainAnalyze(st.Analyze); err != nil {
			return nil, err
		}
	}
	switch inner := st.Stmt.(type) {
	case nil:
	case *sql.CreateView:
		plan, err := s.e.planView(inner.Name.Name, inner.Query, s)
		if err != nil {
			return nil, err
		}
		ops, _, err := plan.operators(s.e.mem, nil, inner.Name.Name, nil)
		if err != nil {
			return nil, err
		}
		keyNames := make([]string, len(plan.table.Key))
		for i, k := range plan.table.Key {
			keyNames[i] = plan.table.Schema.Field(k).Name
		}
		lines = exec.Explain(ops)
		lines[0] = fmt.Sprintf("%s key=(%s)", lines[0], strings.Join(keyNames, ", "))
		lines = append(lines, fmt.Sprintf("Source %s stream=%s subjects=%s format=%s", plan.source.Name, plan.source.Stream,
			strings.Join(plan.source.Subjects, ","), plan.source.Format))
		for _, op := range ops {
			_ = op.Close()
		}
	case *sql.Select:
		plan, err := s.e.planQuery(inner.Query, s, &params{})
		if err != nil {
			return nil, err
		}
		for i := len(plan.explain) - 1; i >= 0; i-- {
			lines = append(lines, plan.explain[i])
		}
	default:
		return nil, sqlerr.New(pgerrcode.FeatureNotSupported, "EXPLAIN of %T is not supported", st.Stmt)
	}
	res := &server.Result{Columns: []server.Column{{Name: "QUERY PLAN", Type: sqltypes.String}}}
	for _, l := range explainTree(lines) {
		res.Rows = append(res.Rows, []any{l})
	}
	res.Tag = "EXPLAIN"
	return res, nil
}

// explainAnalyze is the operator tree of a running view, each operator
// with the rows and batches pushed into it and the time spent in it (not
// in the operators after it) since the view started.
func (e *Engine) explainAnalyze(name *sql.Ident) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.views[name.Name]
	if !ok {
		if _, inCat := e.cat.View(name.Name); inCat {
			return nil, sqlerr.At(pgerrcode.ObjectNotInPrerequisiteState, name.Pos, "materialized view %q is not running", name.Name)
		}
		return nil, sqlerr.At(pgerrcode.UndefinedTable, name.Pos, "materialized view %q does not exist", name.Name)
	}
	lines := exec.Explain(v.ops)
	stats := v.pipe.Stats()
	for i, st := range stats {
		line := &lines[len(stats)-1-i]
		*line += fmt.Sprintf("  (rows=%d batches=%d time=%s)", st.Rows, st.Batches, st.Time.Round(time.Microsecond))
	}
	if v.commit.pg != nil {
		lines = append(lines, v.commit.sink.String())
	}
	return append(lines, fmt.Sprintf("Source %s: %d events, state %s, position %d", v.def.Source, v.pipe.Events(), v.pipe.State(), v.pipe.Position())), nil
}
