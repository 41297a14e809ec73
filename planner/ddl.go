package planner

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/exec/source"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// sourceOptions are the WITH options of CREATE SOURCE and their defaults.
var sourceOptions = map[string]bool{"stream": true, "subjects": true, "format": true, "start": true, "idle_timeout": true}

// defineSource checks a CREATE SOURCE and turns it into a definition.
func defineSource(cs *sql.CreateSource) (*catalog.Source, error) {
	s := &catalog.Source{Name: cs.Name.Name, Format: "json", Start: "earliest", SQL: cs.Text,
		Stream: strings.ToUpper(sanitizeStream(cs.Name.Name)), Subjects: []string{cs.Name.Name + ".>"}}
	if len(cs.Columns) == 0 {
		return nil, sqlerr.At(pgerrcode.InvalidTableDefinition, cs.Name.Pos, "source %q needs at least one column", cs.Name.Name)
	}
	seen := map[string]bool{}
	for _, c := range cs.Columns {
		if seen[c.Name.Name] {
			return nil, sqlerr.At(pgerrcode.DuplicateColumn, c.Name.Pos, "column %q specified more than once", c.Name.Name)
		}
		seen[c.Name.Name] = true
		if c.Name.Name == SeqColumn {
			return nil, sqlerr.At(pgerrcode.ReservedName, c.Name.Pos, "column name %q is reserved for the stream sequence", SeqColumn)
		}
		t, err := sqltypes.FromName(c.TypeName)
		if err != nil {
			return nil, sqlerr.At(pgerrcode.UndefinedObject, c.TypePos, "%s", err.Error())
		}
		s.Columns = append(s.Columns, catalog.Column{Name: c.Name.Name, Type: sqltypes.Name(t)})
	}
	if cs.Watermark == nil {
		return nil, sqlerr.At(pgerrcode.InvalidTableDefinition, cs.Name.Pos, "source %q needs an event-time column", cs.Name.Name).
			WithHint("add WATERMARK FOR ts AS ts - INTERVAL '5' SECOND to the column list")
	}
	wm := cs.Watermark
	found := false
	for _, c := range s.Columns {
		if c.Name == wm.Column.Name {
			found = true
			if c.Type != "TIMESTAMP" && c.Type != "TIMESTAMPTZ" {
				return nil, sqlerr.At(pgerrcode.DatatypeMismatch, wm.Column.Pos, "watermark column %q must be a TIMESTAMP, not %s", c.Name, c.Type)
			}
		}
	}
	if !found {
		return nil, sqlerr.At(pgerrcode.UndefinedColumn, wm.Column.Pos, "column %q does not exist", wm.Column.Name)
	}
	if wm.Delay < 0 {
		return nil, sqlerr.At(pgerrcode.InvalidParameterValue, wm.Pos, "watermark delay must not be negative")
	}
	s.TimeColumn, s.WatermarkDelay = wm.Column.Name, wm.Delay
	for _, o := range cs.Options {
		if !sourceOptions[o.Key.Name] {
			return nil, sqlerr.At(pgerrcode.InvalidParameterValue, o.Key.Pos, "unknown source option %q", o.Key.Name).
				WithHint("options are stream, subjects, format, start, idle_timeout")
		}
		switch o.Key.Name {
		case "stream":
			if o.Value == "" || strings.ContainsAny(o.Value, " .*>\t") {
				return nil, sqlerr.At(pgerrcode.InvalidParameterValue, o.ValuePos, "invalid stream name %q", o.Value)
			}
			s.Stream = o.Value
		case "subjects":
			s.Subjects = nil
			for _, sub := range strings.Split(o.Value, ",") {
				if sub = strings.TrimSpace(sub); sub != "" {
					s.Subjects = append(s.Subjects, sub)
				}
			}
			if len(s.Subjects) == 0 {
				return nil, sqlerr.At(pgerrcode.InvalidParameterValue, o.ValuePos, "subjects must name at least one subject")
			}
		case "format":
			f := strings.ToLower(o.Value)
			if f != "json" && f != "ndjson" {
				return nil, sqlerr.At(pgerrcode.FeatureNotSupported, o.ValuePos, "format %q is not supported; use 'json' or 'ndjson'", o.Value)
			}
			s.Format = f
		case "start":
			st := strings.ToLower(o.Value)
			if st != "earliest" && st != "latest" {
				return nil, sqlerr.At(pgerrcode.InvalidParameterValue, o.ValuePos, "start must be 'earliest' or 'latest', not %q", o.Value)
			}
			s.Start = st
		case "idle_timeout":
			d, err := time.ParseDuration(o.Value)
			if err != nil || d <= 0 {
				return nil, sqlerr.At(pgerrcode.InvalidParameterValue, o.ValuePos, "idle_timeout must be a positive duration like '10s', not %q", o.Value)
			}
			s.IdleTimeout = d
		}
	}
	return s, nil
}

func sanitizeStream(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// sourceColumns converts a definition's columns for the reader.
func sourceColumns(s *catalog.Source) ([]source.Column, int, error) {
	var cols []source.Column
	timeCol := -1
	for i, c := range s.Columns {
		t, err := sqltypes.FromName(c.Type)
		if err != nil {
			return nil, 0, err
		}
		cols = append(cols, source.Column{Name: c.Name, Type: t})
		if c.Name == s.TimeColumn {
			timeCol = i
		}
	}
	return cols, timeCol, nil
}

// startSource creates the source's stream if absent, its dead-letter
// table and its reader (not yet reading). fresh is true for CREATE, false
// for a restart, which restores the live dead-letter table from its
// checkpoint. The caller holds e.mu.
func (e *Engine) startSource(ctx context.Context, s *catalog.Source, fresh bool) (*sourceRT, error) {
	cols, timeCol, err := sourceColumns(s)
	if err != nil {
		return nil, err
	}
	stream, err := source.EnsureStream(ctx, e.js, s.Stream, s.Subjects)
	if err != nil {
		return nil, sqlerr.New(pgerrcode.ConnectionFailure, "source %q: %v", s.Name, err)
	}
	log := e.log.With("component", "source", "source", s.Name)
	reader, err := source.NewReader(e.js, source.Config{Source: s.Name, Stream: s.Stream, Subjects: s.Subjects, Columns: cols, TimeColumn: timeCol, NDJSON: s.Format == "ndjson"}, e.mem, e.log)
	if err != nil {
		return nil, err
	}
	rt := &sourceRT{def: s, cols: cols, stream: stream, reader: reader, log: log, mem: e.mem,
		router: exec.NewRouter(len(cols), log), ckpt: e.ckpt, ckEvery: e.ckptEvery}
	live, pg := deadLetterSpecs(catalog.RejectsTable(s.Name), rejectsSchema)
	rt.rejects = sink.NewMemory(live, e.mem)
	fail := func(err error) (*sourceRT, error) {
		rt.rejects.Close()
		return nil, err
	}
	if e.pg != nil {
		if rt.rejectsPG, err = e.pg.EnsureTable(ctx, pg, false); err != nil {
			return fail(err)
		}
	}
	if fresh {
		if err := e.ckpt.dropSource(ctx, s.Name); err != nil {
			return fail(err)
		}
	} else if _, err := rt.restoreRejects(ctx); err != nil {
		log.Error("dead-letter checkpoint not usable: the live table starts empty", "err", err)
	}
	e.sources[s.Name] = rt
	return rt, nil
}

// resumeReader starts (or rewinds) a source's reader so that every view
// gets the events it still needs: from the smallest view position + 1. A
// source without views reads from the stream's end (its rejects still
// reach the dead-letter table). The caller holds e.mu.
func (e *Engine) resumeReader(s *sourceRT) {
	need := uint64(0)
	for _, v := range e.views {
		if v.src == s {
			p := v.pipe.Position() + 1
			if need == 0 || p < need {
				need = p
			}
		}
	}
	if need == 0 {
		info, err := s.stream.Info(e.ctx)
		if err == nil {
			need = info.State.LastSeq + 1
		} else {
			need = 1
		}
	}
	if saved := s.saved.Load(); saved > 0 && saved+1 < need {
		need = saved + 1 // rejects after the dead-letter checkpoint are recorded again
	}
	s.startReader(e.ctx, &e.wg, need)
}

// startView builds a view's tables and pipeline and starts it. fresh is
// true for CREATE (the sink table must be new), false for a restart, which
// resumes from the view's checkpoint when it has one (see checkpoint.go).
// The caller holds e.mu; the caller rewinds the reader.
func (e *Engine) startView(ctx context.Context, def *catalog.View, plan *viewPlan, fresh bool) error {
	src := e.sources[def.Source]
	if src == nil {
		return sqlerr.New(pgerrcode.UndefinedTable, "source %q is not running", def.Source)
	}
	v := &viewRT{def: def, plan: plan, src: src}
	v.result = sink.NewMemory(plan.table, e.mem)
	liveLate, pgLate := deadLetterSpecs(catalog.LateTable(def.Name), lateSchema)
	v.late = sink.NewMemory(liveLate, e.mem)
	fail := func(err error) error {
		v.result.Close()
		v.late.Close()
		return err
	}
	var ck *savedCheckpoint
	if fresh {
		if err := e.forgetCheckpoints(ctx, def.Name); err != nil {
			return fail(err)
		}
	} else {
		var err error
		if ck, err = e.loadCheckpoint(ctx, def.Name, def.SQL); err != nil {
			e.log.Error("checkpoint not usable: the view rebuilds from its stream", "view", def.Name, "err", err)
			ck = nil
		}
		if ck == nil {
			// The rebuild numbers its epochs from 1 again: older
			// checkpoints must not be taken for its own later.
			if err := e.ckpt.prune(ctx, def.Name, 0); err != nil {
				return fail(err)
			}
		}
	}
	desc := def.Name
	if e.pg != nil {
		var err error
		if v.resultPG, err = e.pg.EnsureTable(ctx, plan.table, fresh); err != nil {
			return fail(err)
		}
		if v.latePG, err = e.pg.EnsureTable(ctx, pgLate, false); err != nil {
			return fail(err)
		}
		if !fresh && ck == nil && plan.window.Emit != (exec.EmitSpec{}) {
			// The view rebuilds from its start: early rows written before
			// the restart may belong to windows that have merged or moved
			// since, which the rebuild never writes again. Drop them; the
			// rebuild writes the current ones.
			n, err := v.resultPG.DeleteWhereFalse(ctx, exec.ColIsFinal)
			if err != nil {
				return fail(err)
			}
			e.log.Info("dropped partial rows written before the restart", "view", def.Name, "rows", n)
		}
		desc += " (PostgreSQL, live)"
	} else {
		desc += " (live)"
	}
	var start, epoch uint64
	if def.StartSeq > 0 {
		start = def.StartSeq - 1
	}
	var state []byte
	if ck != nil {
		restore := func() error { return restoreIPC(ctx, v.result, e.mem, ck.live) }
		if v.resultPG != nil {
			restore = func() error {
				rec, err := v.resultPG.ReadAll(ctx, e.mem)
				if err != nil {
					return err
				}
				defer rec.Release()
				return v.result.Apply(ctx, exec.Changes{Upserts: rec})
			}
		}
		if err := restore(); err != nil {
			return fail(fmt.Errorf("restore %s from checkpoint %d: %w", def.Name, ck.epoch, err))
		}
		if err := restoreIPC(ctx, v.late, e.mem, ck.late); err != nil {
			return fail(fmt.Errorf("restore %s from checkpoint %d: %w", catalog.LateTable(def.Name), ck.epoch, err))
		}
		start, epoch, state = ck.pos, ck.epoch, ck.state
	}
	log := e.log.With("component", "view", "view", def.Name)
	v.commit = newCommitter(def.Name, e.ckpt, e.pg, e.mem, log, e.sinkBuffer, epoch, start)
	tables := []exec.Table{}
	if v.resultPG != nil {
		tables = append(tables, v.commit.table(v.resultPG))
	}
	tables = append(tables, v.result)
	ops, wop, err := plan.operators(e.mem, tables, desc, v.lateWriter(log))
	if err != nil {
		return fail(err)
	}
	v.ops, v.wop = ops, wop
	v.sinkOp = ops[len(ops)-1].(*exec.SinkOp)
	v.pipe = exec.NewPipeline(def.Name, ops, start, exec.PipelineOptions{
		State:           state,
		CheckpointEvery: e.ckptEvery,
		// With a sink database a checkpoint is what brings results
		// there: a replay or a burst worked through commits at once.
		// (Without one the live table has them already.)
		CheckpointOnCatchUp: e.pg != nil,
		Checkpoint: func(ctx context.Context, c exec.Checkpoint) error {
			return v.commit.checkpoint(ctx, c, v.result, v.late, e.mem, def.SQL)
		},
	}, log)
	runCtx, cancel := context.WithCancel(e.ctx)
	v.cancel = cancel
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		v.commit.run(runCtx)
	}()
	go func() {
		defer e.wg.Done()
		_ = v.pipe.Run(runCtx) // the pipeline logs and records its own failure
	}()
	src.router.Add(v.pipe)
	e.views[def.Name] = v
	if !fresh {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			logCatchUp(runCtx, v, log)
		}()
	}
	if ck != nil {
		log.Info("materialized view resumed from its checkpoint", "source", def.Source, "epoch", ck.epoch, "from_seq", ck.pos+1)
	} else {
		log.Info("materialized view running", "source", def.Source, "from_seq", def.StartSeq)
	}
	return nil
}

// logCatchUp reports a restarted view's replay: every few seconds its
// position against the stream's end at the restart, then when it has
// caught up.
func logCatchUp(ctx context.Context, v *viewRT, log *slog.Logger) {
	const every = 5 * time.Second
	ictx, cancel := context.WithTimeout(ctx, streamLookupBudget)
	info, err := v.src.stream.Info(ictx)
	cancel()
	if err != nil {
		return
	}
	target, from, start := info.State.LastSeq, v.pipe.Position(), time.Now()
	if from >= target {
		return
	}
	log.Info("replaying from the stream", "from_seq", from+1, "to_seq", target)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := start
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pos := v.pipe.Position()
		if pos >= target {
			log.Info("replay done: caught up with the stream", "position", pos, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(last) >= every {
			last = time.Now()
			done := float64(pos-from) / float64(target-from)
			log.Info("replaying", "position", pos, "to_seq", target, "done", fmt.Sprintf("%.0f%%", 100*done),
				"messages_per_s", int(float64(pos-from)/time.Since(start).Seconds()))
		}
	}
}

// stopView stops a view's pipeline and forgets it. The caller holds e.mu.
func (e *Engine) stopView(v *viewRT) {
	v.src.router.Remove(v.pipe)
	v.cancel()
	<-v.pipe.Done()
	<-v.commit.done
	v.commit.buf.release()
	delete(e.views, v.def.Name)
	v.result.Close()
	v.late.Close()
}

func (e *Engine) createSource(ctx context.Context, cs *sql.CreateSource) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	if cs.IfNotExists {
		if _, ok := e.cat.Source(cs.Name.Name); ok {
			return "CREATE SOURCE", nil
		}
	}
	def, err := defineSource(cs)
	if err != nil {
		return "", err
	}
	if err := e.checkName(def.Name, cs.Name.Pos); err != nil {
		return "", err
	}
	rt, err := e.startSource(ctx, def, true)
	if err != nil {
		return "", err
	}
	if err := e.cat.AddSource(ctx, def, cs.Name.Pos); err != nil {
		delete(e.sources, def.Name)
		rt.rejects.Close()
		return "", err
	}
	e.resumeReader(rt)
	e.log.Info("source created", "source", def.Name, "stream", def.Stream, "subjects", def.Subjects)
	return "CREATE SOURCE", nil
}

// checkName rejects names taken by a relation, the derived dead-letter
// names included, before anything is created.
func (e *Engine) checkName(name string, pos int) error {
	for _, n := range []string{name, catalog.RejectsTable(name), catalog.LateTable(name)} {
		if _, ok := e.cat.Source(n); ok {
			return sqlerr.At(pgerrcode.DuplicateTable, pos, "relation %q already exists", n)
		}
		if _, ok := e.cat.View(n); ok {
			return sqlerr.At(pgerrcode.DuplicateTable, pos, "relation %q already exists", n)
		}
	}
	return nil
}

func (e *Engine) createView(ctx context.Context, cv *sql.CreateView, sess *session) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	name := cv.Name.Name
	if _, ok := e.cat.View(name); ok && cv.IfNotExists {
		return "CREATE MATERIALIZED VIEW", nil
	}
	if err := e.checkName(name, cv.Name.Pos); err != nil {
		return "", err
	}
	plan, err := e.planView(name, cv.Query, sess)
	if err != nil {
		return "", err
	}
	src := e.sources[plan.source.Name]
	if src == nil {
		return "", sqlerr.New(pgerrcode.ObjectNotInPrerequisiteState, "source %q is not running", plan.source.Name)
	}
	def := &catalog.View{Name: name, Source: plan.source.Name, SQL: cv.Text, StartSeq: 1}
	info, err := src.stream.Info(ctx)
	if err != nil {
		return "", sqlerr.New(pgerrcode.ConnectionFailure, "source %q: stream %s: %v", plan.source.Name, plan.source.Stream, err)
	}
	if plan.source.Start == "latest" {
		def.StartSeq = info.State.LastSeq + 1
	} else if info.State.FirstSeq > 0 {
		def.StartSeq = info.State.FirstSeq
	}
	if err := e.cat.AddView(ctx, def, cv.Name.Pos); err != nil {
		return "", err
	}
	// The reader stops while the view joins the router, then restarts
	// from the first event any view still needs: the new view gets every
	// event from its start, the others skip what they have seen.
	src.stopReader()
	defer e.resumeReader(src)
	if err := e.startView(ctx, def, plan, true); err != nil {
		_ = e.cat.DropView(ctx, name)
		return "", err
	}
	e.log.Info("materialized view created", "view", name, "source", def.Source)
	return "CREATE MATERIALIZED VIEW", nil
}

func (e *Engine) dropView(ctx context.Context, d *sql.DropView) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.views[d.Name.Name]
	if !ok {
		if _, inCat := e.cat.View(d.Name.Name); !inCat {
			if d.IfExists {
				return "DROP MATERIALIZED VIEW", nil
			}
			return "", sqlerr.At(pgerrcode.UndefinedTable, d.Name.Pos, "materialized view %q does not exist", d.Name.Name)
		}
	}
	if ok {
		e.stopView(v)
	}
	if err := e.cat.DropView(ctx, d.Name.Name); err != nil {
		return "", err
	}
	if err := e.forgetCheckpoints(ctx, d.Name.Name); err != nil {
		e.log.Warn("checkpoints not deleted", "view", d.Name.Name, "err", err)
	}
	if e.pg != nil {
		for _, t := range []string{d.Name.Name, catalog.LateTable(d.Name.Name)} {
			if err := e.pg.DropTable(ctx, t); err != nil {
				return "", fmt.Errorf("drop sink table %q: %w", t, err)
			}
		}
	}
	e.log.Info("materialized view dropped", "view", d.Name.Name)
	return "DROP MATERIALIZED VIEW", nil
}

func (e *Engine) dropSource(ctx context.Context, d *sql.DropSource) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.cat.Source(d.Name.Name); !ok {
		if d.IfExists {
			return "DROP SOURCE", nil
		}
		return "", sqlerr.At(pgerrcode.UndefinedTable, d.Name.Pos, "source %q does not exist", d.Name.Name)
	}
	if err := e.cat.DropSource(ctx, d.Name.Name); err != nil {
		if se, ok := sqlerr.As(err); ok && se.Position == 0 {
			c := *se
			c.Position = d.Name.Pos
			return "", &c
		}
		return "", err
	}
	if err := e.ckpt.dropSource(ctx, d.Name.Name); err != nil {
		e.log.Warn("dead-letter checkpoint not deleted", "source", d.Name.Name, "err", err)
	}
	if s, ok := e.sources[d.Name.Name]; ok {
		s.stopReader()
		s.rejects.Close()
		delete(e.sources, d.Name.Name)
		if err := source.DeleteConsumer(ctx, e.js, s.def.Stream, s.def.Name); err != nil {
			e.log.Warn("consumer not deleted", "source", s.def.Name, "err", err)
		}
	}
	if e.pg != nil {
		if err := e.pg.DropTable(ctx, catalog.RejectsTable(d.Name.Name)); err != nil {
			return "", fmt.Errorf("drop sink table: %w", err)
		}
	}
	e.log.Info("source dropped", "source", d.Name.Name)
	return "DROP SOURCE", nil
}

// insert publishes rows to a source's stream as JSON events.
func (e *Engine) insert(ctx context.Context, ins *sql.Insert, sess *session, prm *params) (string, error) {
	src, payloads, err := e.insertPayloads(ins, sess, prm)
	if err != nil {
		return "", err
	}
	if err := source.Publish(ctx, e.js, publishSubject(src.Subjects), payloads); err != nil {
		return "", sqlerr.New(pgerrcode.ConnectionFailure, "publish to stream %s: %v", src.Stream, err)
	}
	return fmt.Sprintf("INSERT 0 %d", len(payloads)), nil
}

// insertPayloads binds an INSERT's rows to the source's columns and
// encodes them as JSON events. While preparing (no parameter values), it
// learns the parameters' types from their target columns.
func (e *Engine) insertPayloads(ins *sql.Insert, sess *session, prm *params) (*catalog.Source, [][]byte, error) {
	st := ins.Stmt
	if st.Select != nil || st.Setlist || len(st.OnDuplicate) > 0 {
		return nil, nil, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(ins.Source, ins.Offset), "only INSERT INTO <source> VALUES (...) is supported")
	}
	name, err := insertTable(st)
	if err != nil {
		return nil, nil, sqlerr.At(pgerrcode.FeatureNotSupported, sqlerr.RunePos(ins.Source, ins.Offset), "%s", err.Error())
	}
	src, ok := e.cat.Source(name)
	if !ok {
		if _, isView := e.cat.View(name); isView {
			return nil, nil, sqlerr.At(pgerrcode.WrongObjectType, sqlerr.RunePos(ins.Source, ins.Offset), "cannot insert into materialized view %q", name)
		}
		return nil, nil, sqlerr.At(pgerrcode.UndefinedTable, sqlerr.RunePos(ins.Source, ins.Offset), "source %q does not exist", name)
	}
	cols, _, err := sourceColumns(src)
	if err != nil {
		return nil, nil, err
	}
	target := make([]int, 0, len(cols))
	if len(st.Columns) == 0 {
		target = seq(0, len(cols))
	} else {
		for _, c := range st.Columns {
			idx := -1
			for i, sc := range cols {
				if sc.Name == c.Name.O {
					idx = i
				}
			}
			if idx < 0 {
				return nil, nil, sqlerr.At(pgerrcode.UndefinedColumn, sqlerr.RunePos(ins.Source, ins.Offset), "column %q of source %q does not exist", c.Name.O, name)
			}
			target = append(target, idx)
		}
	}
	b := &binder{text: ins.Source, offset: ins.Offset, pmap: ins.Params, sess: sess, params: prm}
	payloads := make([][]byte, 0, len(st.Lists))
	for _, row := range st.Lists {
		if len(row) != len(target) {
			return nil, nil, sqlerr.At(pgerrcode.SyntaxError, b.pos(row[0]), "INSERT has %d expressions but %d target columns", len(row), len(target))
		}
		values := make([]any, len(cols))
		for i, n := range row {
			x, err := b.bindU(n, nil)
			if err != nil {
				return nil, nil, err
			}
			ex, err := b.coerce(x, cols[target[i]].Type, n)
			if err != nil {
				return nil, nil, err
			}
			v, err := evalConst(e.mem, ex)
			if err != nil {
				return nil, nil, b.at(n, err)
			}
			v, err = convertValue(v, ex.Type(), cols[target[i]].Type)
			if err != nil {
				return nil, nil, sqlerr.At(pgerrcode.DatatypeMismatch, b.pos(n), "column %q is %s: %v", cols[target[i]].Name, strings.ToLower(sqltypes.Name(cols[target[i]].Type)), err)
			}
			values[target[i]] = v
		}
		p, err := source.EncodeJSON(cols, values)
		if err != nil {
			return nil, nil, sqlerr.New(pgerrcode.DataException, "encode event: %v", err)
		}
		payloads = append(payloads, p)
	}
	return src, payloads, nil
}

// publishSubject is the subject INSERT publishes to: the source's first
// subject with its wildcards filled in.
func publishSubject(subjects []string) string {
	parts := strings.Split(subjects[0], ".")
	for i, p := range parts {
		if p == "*" || p == ">" {
			parts[i] = "sql"
		}
	}
	return strings.Join(parts, ".")
}

// convertValue turns an evaluated constant into the Go value EncodeJSON
// takes for a column of type to.
func convertValue(v any, from, to arrow.DataType) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch {
	case sqltypes.IsTimestamp(to):
		if ms, ok := v.(int64); ok && sqltypes.IsTimestamp(from) {
			return time.UnixMilli(ms).UTC(), nil
		}
	case to.ID() == arrow.INT64:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case to.ID() == arrow.FLOAT64:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case to.ID() == arrow.STRING:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case to.ID() == arrow.BOOL:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("a %s value does not fit", strings.ToLower(sqltypes.Name(from)))
}
