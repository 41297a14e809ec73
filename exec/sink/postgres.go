package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// MinServerVersion is the oldest PostgreSQL the sink accepts, as
// server_version_num: 15 brought UNIQUE NULLS NOT DISTINCT, which keyed
// result tables need.
const MinServerVersion = 150000

// rollbackTimeout bounds a rollback after a failed transaction, which runs
// even when the caller's context is done.
const rollbackTimeout = 10 * time.Second

// Postgres is the sink database: a connection pool and the tables the
// engine writes. It is safe for concurrent use.
type Postgres struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	version int // server_version_num
	closed  atomic.Bool
}

// OpenPostgres connects to the sink database at dsn (a PostgreSQL URL or
// key=value string), checks that it answers and that it runs PostgreSQL 15
// or later. log may be nil. An unreachable server gives an error for which
// IsUnavailable is true.
func OpenPostgres(ctx context.Context, dsn string, log *slog.Logger) (*Postgres, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's ParseConfigError masks the password.
		return nil, fmt.Errorf("sink database: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sink database: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sink database %s is unreachable: %w", where, err)
	}
	var version int
	if err := pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sink database %s: read server version: %w", where, err)
	}
	if version < MinServerVersion {
		pool.Close()
		return nil, sqlerr.New(pgerrcode.FeatureNotSupported,
			"sink database %s runs PostgreSQL %d.%d, sessionsql needs 15 or later", where, version/10000, version%10000).
			WithHint("keyed result tables use UNIQUE NULLS NOT DISTINCT, new in PostgreSQL 15")
	}
	p := &Postgres{pool: pool, log: log.With("component", "sink"), version: version}
	p.log.Info("sink database connected", "host", cfg.ConnConfig.Host, "port", cfg.ConnConfig.Port,
		"database", cfg.ConnConfig.Database, "server_version_num", version)
	return p, nil
}

// ServerVersion returns the server's server_version_num (150020 for 15.20).
func (p *Postgres) ServerVersion() int { return p.version }

// Close closes every connection. It is idempotent; later calls fail with
// an error that wraps ErrClosed.
func (p *Postgres) Close() {
	if p.closed.CompareAndSwap(false, true) {
		p.pool.Close()
	}
}

// InTx runs fn in one transaction: it commits when fn returns nil and rolls
// back otherwise, returning fn's error unchanged. An epoch commit uses it to
// write several tables and its progress row atomically.
func (p *Postgres) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if p.closed.Load() {
		return fmt.Errorf("sink database: %w", ErrClosed)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		if p.closed.Load() {
			err = errors.Join(ErrClosed, err)
		}
		return fmt.Errorf("sink database: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		// The server rolls back on its own if the connection is gone; a
		// rollback error adds nothing the caller can act on.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if rerr := tx.Rollback(rctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			p.log.Debug("rollback failed", "err", rerr)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("sink database: commit: %w", err)
	}
	return nil
}

// DropTable drops the table name of the current schema (where EnsureTable
// creates tables) if it exists.
func (p *Postgres) DropTable(ctx context.Context, name string) error {
	if p.closed.Load() {
		return fmt.Errorf("sink table %q: %w", name, ErrClosed)
	}
	schema, err := p.currentSchema(ctx, name)
	if err != nil {
		return err
	}
	if _, err := p.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{schema, name}.Sanitize()); err != nil {
		return fmt.Errorf("sink table %q: drop: %w", name, err)
	}
	return nil
}

// currentSchema returns the schema unqualified CREATE TABLE uses: the first
// existing schema of search_path. Tables are always named with it, so a
// temporary table or a table of a later schema of search_path is never
// taken for one of ours.
func (p *Postgres) currentSchema(ctx context.Context, table string) (string, error) {
	var schema *string
	if err := p.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("sink table %q: read current schema: %w", table, err)
	}
	if schema == nil {
		return "", sqlerr.New(pgerrcode.InvalidSchemaName, "the sink database has no schema for table %q", table).
			WithHint("check search_path of the sink database's user")
	}
	return *schema, nil
}

// EnsureTable creates the table for spec in the connection's current
// schema (the first schema of search_path) and returns a handle to write
// it:
//
//	CREATE TABLE [IF NOT EXISTS] "schema"."name" ("c1" BIGINT, ...,
//	    UNIQUE NULLS NOT DISTINCT ("k1", "k2"))
//
// Only keyed tables get the constraint. It is UNIQUE NULLS NOT DISTINCT, not
// a PRIMARY KEY, because SQL's GROUP BY puts NULL keys in one group while a
// primary key column cannot hold NULL. The constraint is left for
// PostgreSQL to name (name_k1_k2_key, numbered on a clash), so no table name
// can collide with another table's index.
//
// With exclusive, the table must not exist yet: a *sqlerr.Error with code
// 42P07 says so. Without, an existing table is reused when its columns have
// the spec's names and types (in any order: every statement lists its
// columns) and, for a keyed table, it has a UNIQUE NULLS NOT DISTINCT index
// on exactly the key columns; otherwise a 42P16 error says what differs.
func (p *Postgres) EnsureTable(ctx context.Context, spec TableSpec, exclusive bool) (*PGTable, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if p.closed.Load() {
		return nil, fmt.Errorf("sink table %q: %w", spec.Name, ErrClosed)
	}
	schema, err := p.currentSchema(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	t := newPGTable(p, spec, schema)

	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	if !exclusive {
		b.WriteString("IF NOT EXISTS ")
	}
	b.WriteString(t.ident.Sanitize())
	b.WriteString(" (")
	writeColumnDefs(&b, spec, nil)
	if spec.Keyed() {
		b.WriteString(", UNIQUE NULLS NOT DISTINCT (")
		b.WriteString(t.keyList)
		b.WriteString(")")
	}
	b.WriteString(")")
	if _, err := p.pool.Exec(ctx, b.String()); err != nil {
		var pgErr *pgconn.PgError
		if exclusive && errors.As(err, &pgErr) && pgErr.Code == pgerrcode.DuplicateTable {
			return nil, sqlerr.New(pgerrcode.DuplicateTable, "table %q already exists in the sink database", spec.Name).
				WithHint("drop it there (DROP TABLE %s) or choose another name", t.ident.Sanitize())
		}
		return nil, fmt.Errorf("sink table %q: create: %w", spec.Name, err)
	}
	if !exclusive {
		if err := t.checkExisting(ctx); err != nil {
			return nil, err
		}
	}
	p.log.Debug("sink table ready", "table", spec.Name, "schema", schema, "exclusive", exclusive)
	return t, nil
}

// writeColumnDefs writes "c1" TYPE, "c2" TYPE for the columns at idx (all
// when idx is nil).
func writeColumnDefs(b *strings.Builder, spec TableSpec, idx []int) {
	if idx == nil {
		idx = make([]int, spec.Schema.NumFields())
		for i := range idx {
			idx[i] = i
		}
	}
	for i, j := range idx {
		if i > 0 {
			b.WriteString(", ")
		}
		f := spec.Schema.Field(j)
		b.WriteString(pgx.Identifier{f.Name}.Sanitize())
		b.WriteByte(' ')
		b.WriteString(sqltypes.Name(f.Type))
	}
}

// checkExisting compares the table in the database with the spec.
func (t *PGTable) checkExisting(ctx context.Context) error {
	const relQuery = `SELECT c.oid, c.relkind FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`
	var (
		oid     uint32
		relkind string
	)
	err := t.p.pool.QueryRow(ctx, relQuery, t.ident[0], t.spec.Name).Scan(&oid, &relkind)
	if err != nil {
		return fmt.Errorf("sink table %q: look up: %w", t.spec.Name, err)
	}
	if relkind != "r" && relkind != "p" {
		return sqlerr.New(pgerrcode.WrongObjectType, "%q in the sink database is not a table", t.spec.Name).
			WithHint("drop it there or choose another name")
	}

	const colQuery = `SELECT a.attname, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod)
		FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`
	rows, err := t.p.pool.Query(ctx, colQuery, oid)
	if err != nil {
		return fmt.Errorf("sink table %q: read columns: %w", t.spec.Name, err)
	}
	type col struct {
		oid     uint32
		typName string
	}
	have := map[string]col{}
	var order []string
	for rows.Next() {
		var (
			name string
			c    col
		)
		if err := rows.Scan(&name, &c.oid, &c.typName); err != nil {
			rows.Close()
			return fmt.Errorf("sink table %q: read columns: %w", t.spec.Name, err)
		}
		have[name] = c
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sink table %q: read columns: %w", t.spec.Name, err)
	}

	var diffs []string
	want := map[string]bool{}
	for _, f := range t.spec.Schema.Fields() {
		want[f.Name] = true
		c, ok := have[f.Name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %q is missing", f.Name))
		case c.oid != sqltypes.OID(f.Type):
			diffs = append(diffs, fmt.Sprintf("column %q is %s, want %s", f.Name, c.typName, strings.ToLower(sqltypes.Name(f.Type))))
		}
	}
	for _, name := range order {
		if !want[name] {
			diffs = append(diffs, fmt.Sprintf("column %q is not in the result", name))
		}
	}

	if t.spec.Keyed() && len(diffs) == 0 {
		const keyQuery = `SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k), i.indnullsnotdistinct
			FROM pg_catalog.pg_index i
			WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL`
		rows, err := t.p.pool.Query(ctx, keyQuery, oid)
		if err != nil {
			return fmt.Errorf("sink table %q: read indexes: %w", t.spec.Name, err)
		}
		wantKey := slices.Clone(t.keyCols)
		slices.Sort(wantKey)
		found, nullsDistinct := false, false
		for rows.Next() {
			var (
				cols        []string
				notDistinct bool
			)
			if err := rows.Scan(&cols, &notDistinct); err != nil {
				rows.Close()
				return fmt.Errorf("sink table %q: read indexes: %w", t.spec.Name, err)
			}
			slices.Sort(cols)
			if slices.Equal(cols, wantKey) {
				if notDistinct {
					found = true
				} else {
					nullsDistinct = true
				}
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sink table %q: read indexes: %w", t.spec.Name, err)
		}
		switch {
		case found:
		case nullsDistinct:
			diffs = append(diffs, fmt.Sprintf("the unique key on (%s) treats NULLs as distinct, want UNIQUE NULLS NOT DISTINCT", strings.Join(t.keyCols, ", ")))
		default:
			diffs = append(diffs, fmt.Sprintf("no UNIQUE NULLS NOT DISTINCT key on (%s)", strings.Join(t.keyCols, ", ")))
		}
	}
	if len(diffs) > 0 {
		return sqlerr.New(pgerrcode.InvalidTableDefinition, "table %q in the sink database does not match the result's columns", t.spec.Name).
			WithDetail("%s", strings.Join(diffs, "; ")).
			WithHint("drop the table in the sink database (DROP TABLE %s) to let sessionsql create it again", t.ident.Sanitize())
	}
	return nil
}

// IsUnavailable reports whether err means the sink database could not be
// reached or the connection broke: a refused or reset connection, a
// timeout of the network (not of the caller's context), a server shutting
// down or out of connection slots, or a closed Postgres. Such a write may
// succeed when retried later; every other error (a constraint, a type, a
// canceled context) will not. Retrying is the caller's business; a retry
// loop must also watch its context, since a closed Postgres stays closed.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrClosed) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgerrcode.IsConnectionException(pgErr.Code), // class 08
			pgErr.Code == pgerrcode.AdminShutdown,
			pgErr.Code == pgerrcode.CrashShutdown,
			pgErr.Code == pgerrcode.CannotConnectNow,
			pgErr.Code == pgerrcode.TooManyConnections:
			return true
		}
		return false // the server answered: authentication, SQL, data
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
