// Package expr evaluates typed scalar expressions a column at a time over
// Arrow record batches, and provides the batch helpers built on them:
// Filter (WHERE), Project (select lists), Sort (ORDER BY), Slice
// (LIMIT/OFFSET) and GroupAggregate (GROUP BY over one batch, for SELECTs
// over a result table).
//
// The planner builds expressions with the constructors here after binding
// names and checking types: Column, Literal, Compare, Arith, Neg, And, Or,
// Not, IsNull, IsBool, In, Between, Like, Case, Coalesce, NullIf, Cast and
// Func. Constructors resolve operand types and return *sqlerr.Error values
// with PostgreSQL's SQLSTATEs and wording (42883 "operator does not exist:
// text = bigint", 42804 "CASE types text and bigint cannot be matched",
// 42846 "cannot cast type boolean to double precision"); they carry no
// position, which the planner adds from the AST node it was building. Every
// node evaluates whole arrays with typed loops over the value buffers and
// validity bitmaps; nothing is evaluated row by row through interfaces.
//
// # Types
//
// Values have one of the engine's types (package sqltypes): BIGINT (Arrow
// int64), DOUBLE PRECISION (float64), TEXT (utf8), BOOLEAN, and TIMESTAMP /
// TIMESTAMPTZ (Arrow timestamp in milliseconds, UTC; TIMESTAMPTZ has time
// zone "UTC"). sqltypes.Null is the type of an untyped NULL literal; it
// takes a real type from its context (the other operand, the other CASE
// values), and an expression is of type Null only when nothing gives it a
// type (NULL + NULL, COALESCE(NULL)).
//
// Implicit conversions, the only ones: BIGINT to DOUBLE PRECISION when the
// two meet (comparison, arithmetic, CASE/COALESCE/GREATEST/IN values);
// TIMESTAMP to TIMESTAMPTZ when the two meet (the same instant: the session
// time zone is UTC); and a string literal, like PostgreSQL's untyped
// literal, to whatever type it meets, parsed as the corresponding cast
// parses it (ts > '2024-01-01' works; n = 'x' is 22P02 at construction).
// A TEXT column never converts implicitly.
//
// # NULL
//
// SQL's three-valued logic throughout: comparisons and arithmetic with a
// NULL operand are NULL; AND is FALSE if either side is FALSE, else NULL
// if either is NULL; OR is TRUE if either side is TRUE, else NULL if either
// is NULL; NOT NULL is NULL; IS [NOT] NULL / TRUE / FALSE are never NULL;
// IN is NULL when no element matches and one is NULL; Filter keeps only
// TRUE rows. Functions return NULL for a NULL argument, except concat,
// greatest and least, which skip NULLs. Aggregates skip NULL inputs; SUM,
// MIN, MAX and AVG of no values are NULL, COUNT is 0. Group keys and
// COUNT(DISTINCT) treat NULLs as equal. Sort puts NULLs first or last as
// each SortKey says. DOUBLE PRECISION follows PostgreSQL: NaN equals NaN
// and sorts above every number, and -0 equals 0.
//
// # Errors and laziness
//
// Evaluation errors are *sqlerr.Error values: 22003 on BIGINT overflow
// (arithmetic, negation, abs, SUM, DOUBLE PRECISION to BIGINT), 22008 on
// timestamp overflow, 22P02 when a cast cannot parse text, 22011 for a
// negative substring length. Division and modulo by zero are NULL instead
// of PostgreSQL's 22012, so one bad row never fails a batch.
//
// A row raises an error only if its value is needed. Values under a NULL
// are never checked. CASE and COALESCE need an argument only for the rows
// that reach it: each is evaluated over the whole batch, and only when that
// fails again over just the rows that need it, so
// CASE WHEN s ~ '^[0-9]+$' THEN s::bigint END-style guards work. AND, OR,
// BETWEEN, IN, NULLIF and function arguments are evaluated for every row
// (PostgreSQL does not promise short-circuiting either). Operators whose
// operands are all constants are folded at construction, keeping their
// rendering; a strict operator with a NULL constant operand (x + NULL,
// x = NULL, lower(NULL)) is NULL without evaluating the other operands, as
// PostgreSQL's constant folding makes it.
//
// # Ownership
//
// Eval borrows the batch and returns a new reference the caller releases;
// the result may share buffers with the batch (a Column returns the
// batch's own column, retained) and may have a non-zero offset. Arrays read
// by this package may be slices of a larger array (a slice of a record), so
// every kernel honours offsets. Filter, Project, Sort, Slice and
// GroupAggregate also borrow their input and return a batch the caller
// releases: Filter and Sort return the input itself (retained) when it
// passes unchanged, Filter and Slice return zero-copy slices where they
// can. All memory comes from the allocator passed in, so tests run with
// memory.NewCheckedAllocator and assert that nothing leaks.
//
// Expressions are immutable once built and keep no per-batch state: one
// Expr may be evaluated from several goroutines at once.
//
// # Example
//
// The WHERE clause of a continuous query, over a batch of plays with
// columns user_id BIGINT, event_type TEXT, bytes BIGINT:
//
//	et := expr.Column(1, "event_type", sqltypes.String)
//	notHeartbeat, err := expr.Compare(expr.Ne, et, expr.Literal("heartbeat", sqltypes.String))
//	if err != nil {
//		return err // a *sqlerr.Error: the planner adds the token's position
//	}
//	big, _ := expr.Compare(expr.Gt, expr.Column(2, "bytes", sqltypes.Int64), expr.Literal(int64(1000), sqltypes.Int64))
//	pred, _ := expr.And(notHeartbeat, big)
//	fmt.Println(pred) // ((event_type <> 'heartbeat') AND (bytes > 1000))
//
//	out, err := expr.Filter(mem, batch, pred) // rows where pred is TRUE
//	if err != nil {
//		return err
//	}
//	defer out.Release()
//
// For rows (event_type, bytes) = ('play', 5000), ('heartbeat', 9000),
// (NULL, 2000) and ('play', NULL), pred is TRUE, FALSE, NULL and NULL, so
// out holds the first row only.
package expr
