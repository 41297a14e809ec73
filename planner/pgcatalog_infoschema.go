package planner

// information_schema.tables, columns, schemata and views.
//
// A SELECT over one of these views (the form ORMs and BI tools send:
// simple select lists, WHERE on table_schema, table_name or table_type,
// ORDER BY, even GROUP BY) runs on the engine's own SELECT machinery: the
// view's rows are built from the catalog into an in-memory table, and
// planQuery plans the statement over it exactly as it plans a SELECT over
// a materialized view's results. The statement must therefore be one
// sql.Parse reads (MySQL-dialect expressions plus PostgreSQL's casts);
// joins, subqueries and parameters are refused with 0A000.
//
// The rows follow PostgreSQL 15's views, with one deliberate difference:
// PostgreSQL leaves materialized views out of information_schema, but they
// are what one queries here, so they are listed, as table_type 'VIEW' in
// tables and in views, and their columns (is_final and emitted_at
// included) in columns. Sources and dead-letter tables are 'BASE TABLE';
// only sources take INSERT.

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/server"
	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// infoView is one view of information_schema: its columns, in
// PostgreSQL's order, and its rows as column name → value (absent: NULL).
type infoView struct {
	cols []string
	ints map[string]bool // columns of type cardinal_number; the others are text
	rows func(s *session) []map[string]any
}

var infoViews = map[string]infoView{
	"tables": {
		cols: []string{"table_catalog", "table_schema", "table_name", "table_type", "self_referencing_column_name",
			"reference_generation", "user_defined_type_catalog", "user_defined_type_schema", "user_defined_type_name",
			"is_insertable_into", "is_typed", "commit_action"},
		rows: func(s *session) []map[string]any {
			var rows []map[string]any
			for _, r := range s.e.pgRelations(s) {
				typ, insertable := "BASE TABLE", "NO"
				if r.kind == "m" {
					typ = "VIEW"
				} else if r.desc == "source" {
					insertable = "YES"
				}
				rows = append(rows, map[string]any{"table_catalog": s.database(), "table_schema": "public", "table_name": r.name,
					"table_type": typ, "is_insertable_into": insertable, "is_typed": "NO"})
			}
			return rows
		},
	},
	"columns": {
		cols: []string{"table_catalog", "table_schema", "table_name", "column_name", "ordinal_position", "column_default",
			"is_nullable", "data_type", "character_maximum_length", "character_octet_length", "numeric_precision",
			"numeric_precision_radix", "numeric_scale", "datetime_precision", "interval_type", "interval_precision",
			"character_set_catalog", "character_set_schema", "character_set_name", "collation_catalog", "collation_schema",
			"collation_name", "domain_catalog", "domain_schema", "domain_name", "udt_catalog", "udt_schema", "udt_name",
			"scope_catalog", "scope_schema", "scope_name", "maximum_cardinality", "dtd_identifier", "is_self_referencing",
			"is_identity", "identity_generation", "identity_start", "identity_increment", "identity_maximum",
			"identity_minimum", "identity_cycle", "is_generated", "generation_expression", "is_updatable"},
		ints: map[string]bool{"ordinal_position": true, "character_maximum_length": true, "character_octet_length": true,
			"numeric_precision": true, "numeric_precision_radix": true, "numeric_scale": true, "datetime_precision": true,
			"interval_precision": true, "maximum_cardinality": true},
		rows: func(s *session) []map[string]any {
			var rows []map[string]any
			for _, r := range s.e.pgRelations(s) {
				for i, a := range r.cols {
					row := map[string]any{"table_catalog": s.database(), "table_schema": "public", "table_name": r.name,
						"column_name": a.name, "ordinal_position": int64(i + 1), "is_nullable": "YES",
						"data_type": sqltypes.FormatType(a.oid), "udt_catalog": s.database(), "udt_schema": "pg_catalog",
						"udt_name": pgTypeInfos[a.oid].name, "dtd_identifier": strconv.Itoa(i + 1), "is_self_referencing": "NO",
						"is_identity": "NO", "identity_cycle": "NO", "is_generated": "NEVER", "is_updatable": "NO"}
					if a.notNull {
						row["is_nullable"] = "NO"
					}
					// What PostgreSQL shows for these types without a
					// length, precision or scale.
					switch a.oid {
					case sqltypes.OIDText:
						row["character_octet_length"] = int64(1073741824)
					case sqltypes.OIDInt8:
						row["numeric_precision"], row["numeric_precision_radix"], row["numeric_scale"] = int64(64), int64(2), int64(0)
					case sqltypes.OIDFloat8:
						row["numeric_precision"], row["numeric_precision_radix"] = int64(53), int64(2)
					case sqltypes.OIDTimestamp, sqltypes.OIDTimestampTZ:
						row["datetime_precision"] = int64(6)
					}
					rows = append(rows, row)
				}
			}
			return rows
		},
	},
	"schemata": {
		cols: []string{"catalog_name", "schema_name", "schema_owner", "default_character_set_catalog",
			"default_character_set_schema", "default_character_set_name", "sql_path"},
		rows: func(s *session) []map[string]any {
			return []map[string]any{{"catalog_name": s.database(), "schema_name": "public", "schema_owner": pgOwner}}
		},
	},
	"views": {
		cols: []string{"table_catalog", "table_schema", "table_name", "view_definition", "check_option", "is_updatable",
			"is_insertable_into", "is_trigger_updatable", "is_trigger_deletable", "is_trigger_insertable_into"},
		rows: func(s *session) []map[string]any {
			var rows []map[string]any
			for _, r := range s.e.pgRelations(s) {
				if r.kind == "m" {
					rows = append(rows, map[string]any{"table_catalog": s.database(), "table_schema": "public", "table_name": r.name,
						"view_definition": r.viewSQL, "check_option": "NONE", "is_updatable": "NO", "is_insertable_into": "NO",
						"is_trigger_updatable": "NO", "is_trigger_deletable": "NO", "is_trigger_insertable_into": "NO"})
				}
			}
			return rows
		},
	},
}

// infoSchemaRe finds a read of one of infoViews (outside literals).
var infoSchemaRe = regexp.MustCompile(`(?i)\binformation_schema\s*\.\s*"?(tables|columns|schemata|views)\b`)

// infoSchemaAnswer answers text if it reads one of infoViews (ok).
func infoSchemaAnswer(text string) (ans pgAnswer, ok bool, err error) {
	if !infoSchemaRe.MatchString(literalRe.ReplaceAllString(text, "''")) {
		return nil, false, nil
	}
	st, err := sql.Parse(text)
	if err != nil {
		if e, ok := sqlerr.As(err); ok {
			return nil, true, notSupported("%s", e.Message)
		}
		return nil, true, notSupported("%v", err)
	}
	sel, isSelect := st.(*sql.Select)
	if !isSelect {
		return nil, true, notSupported("information_schema is read with SELECT")
	}
	q := sel.Query
	name, ok := infoViewOf(q)
	if !ok {
		return nil, true, notSupported("information_schema views are read one at a time, without joins or subqueries")
	}
	if maxParam(q.Params) > 0 {
		return nil, true, notSupported("parameters")
	}
	return func(s *session) (*server.Result, error) {
		t, err := infoTable(s, name)
		if err != nil {
			return nil, err
		}
		defer t.Close()
		// planQuery finds tables through Engine.liveTable: a scratch Engine
		// whose only live table is the view lets it plan over the view's rows
		// unchanged.
		scratch := &Engine{mem: s.e.mem, views: map[string]*viewRT{name: {def: &catalog.View{Name: name}, result: t}}}
		plan, err := scratch.planQuery(q, s, &params{types: map[int]arrow.DataType{}, values: []any{}})
		if err != nil {
			return nil, err
		}
		rec, err := plan.run(s.e.mem)
		if err != nil {
			return nil, err
		}
		defer rec.Release()
		res := &server.Result{Rows: rowsOf(rec)}
		for _, c := range plan.columnsOf() {
			res.Columns = append(res.Columns, server.Column{Name: c.name, Type: c.typ})
		}
		return finish(res), nil
	}, true, nil
}

// infoViewOf returns the information_schema view q reads, if its FROM is
// exactly one of infoViews.
func infoViewOf(q *sql.Query) (string, bool) {
	from := q.Select.From
	if from == nil || from.TableRefs == nil || from.TableRefs.Right != nil {
		return "", false
	}
	ts, ok := from.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return "", false
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok || tn.Schema.L != "information_schema" {
		return "", false
	}
	_, ok = infoViews[tn.Name.L]
	return tn.Name.L, ok
}

// infoTable builds the rows of information_schema.<name> into a new
// in-memory table; the caller closes it.
func infoTable(s *session, name string) (*sink.Memory, error) {
	v := infoViews[name]
	fields := make([]arrow.Field, len(v.cols))
	for i, c := range v.cols {
		fields[i] = arrow.Field{Name: c, Type: sqltypes.String, Nullable: true}
		if v.ints[c] {
			fields[i].Type = sqltypes.Int64
		}
	}
	schema := arrow.NewSchema(fields, nil)
	rec, err := buildRecord(s.e.mem, schema, v.rows(s))
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	t := sink.NewMemory(sink.TableSpec{Name: name, Schema: schema}, s.e.mem, sink.WithMaxAppendRows(int(rec.NumRows())+1))
	if err := t.Apply(context.Background(), exec.Changes{Upserts: rec}); err != nil {
		t.Close()
		return nil, fmt.Errorf("information_schema.%s: %w", name, err)
	}
	return t, nil
}

// buildRecord builds a batch of rows given as column name → value.
func buildRecord(mem memory.Allocator, schema *arrow.Schema, rows []map[string]any) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, row := range rows {
		for i, f := range schema.Fields() {
			v, ok := row[f.Name]
			switch fb := b.Field(i).(type) {
			case *array.StringBuilder:
				if s, isStr := v.(string); isStr {
					fb.Append(s)
					continue
				}
			case *array.Int64Builder:
				if n, isInt := v.(int64); isInt {
					fb.Append(n)
					continue
				}
			}
			if ok && v != nil {
				return nil, fmt.Errorf("column %s: value %v (%T) does not fit %s", f.Name, v, v, f.Type)
			}
			b.Field(i).AppendNull()
		}
	}
	return b.NewRecordBatch(), nil
}
