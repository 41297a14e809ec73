// Package sql turns statement text into the typed statements of stmt.go.
// It owns the SQL surface of SPEC.md: TiDB's parser (MySQL dialect) for
// SELECT and INSERT, and a thin extension layer of its own for everything
// TiDB does not know: CREATE SOURCE, CREATE MATERIALIZED VIEW, the window
// clause in GROUP BY, EMIT, ALLOWED LATENESS, aggregate FILTER (WHERE
// ...), FIRST_VALUE and LAST_VALUE as aggregates, PostgreSQL's expr::type
// casts, and the small statements PostgreSQL clients send (SET, SHOW,
// BEGIN, ...).
//
// Entry points: Split cuts a simple-query string into statements, Parse
// parses one, Format renders a statement back to SQL.
//
// # Invariants
//
//   - Every error Parse returns is a *sqlerr.Error with a SQLSTATE.
//     Position is the 1-based character (not byte) position, in the text
//     given to Parse, of the token the error is about, or 0 when no token
//     is to blame (invalid UTF-8). Syntax errors read like PostgreSQL's:
//     `syntax error at or near "FORM"`, `syntax error at end of input`.
//   - The text TiDB parses is the user's text from the first token of the
//     SELECT (or INSERT) to its last token, with everything that is not a
//     token TiDB should see replaced by spaces of the same byte length
//     (newlines kept): comments, our lifted clauses and the "::type" of
//     casts, and $n parameters become "?" padded with spaces. So a byte offset TiDB reports plus
//     Query.Offset is a byte offset in Query.Source; Query.Pos and
//     Insert.Pos turn a node into a character position.
//   - Unquoted words reach TiDB folded to lower case (same byte length),
//     so TiDB's CIStr.O of a name is what PostgreSQL would call it: folded
//     unless it was quoted, like Ident.Name. Compare names by .O; TiDB's
//     .L lower-cases quoted names too.
//   - Parameters: Query.Params and Insert.Params map the byte offset of
//     each "?" in the text TiDB parsed to n of $n. TiDB's
//     *test_driver.ParamMarkerExpr carries that offset in its Offset field;
//     ParamNumber(node) does the lookup.
//   - The expressions inside our clauses (a GAP expression, START WHEN and
//     END WHEN conditions, FILTER conditions) are parsed by TiDB too, each
//     from a text laid out like the query's (see parser.parseExpr), so
//     their nodes' offsets are in the same coordinates as Query.Select's
//     and Query.Pos, Params and ParamNumber work for them alike.
//   - Parse(Format(st)) formats the same as st (checked by FuzzParse),
//     but for a few MySQL types TiDB renders in a form that reads back
//     different once (DEC(0) as DECIMAL, then DECIMAL(10)).
//
// # Lexical rules
//
// One lexer (lexer.go) serves Split, our grammar and the blanking, with
// PostgreSQL's rules where PostgreSQL and MySQL differ: '...' strings
// without backslash escapes; "..." and `...` identifiers, which keep their
// case (in all three a doubled quote character stands for one); other
// identifiers folded to lower case; -- comments (with or without a space
// after them) and nesting /* */ comments; $n parameters; $tag$...$tag$
// strings (Split respects them, TiDB does not support them). '?', '#' and
// '@' are rejected, as are numbers of more than 63 digits (TiDB's value
// driver panics on them).
// TiDB parses with ANSI_QUOTES, NO_BACKSLASH_ESCAPES, PIPES_AS_CONCAT
// and IGNORE_SPACE, so it reads strings and identifiers as the lexer
// does, || concatenates and "sum (x)" is a call.
//
// # Grammar of the extensions
//
// Keywords are case-insensitive. Our grammar (clauses.go):
//
//	create_source := CREATE SOURCE [IF NOT EXISTS] name
//	                 ( item [, item]... ) [WITH ( option [, option]... )]
//	item          := column type
//	               | WATERMARK FOR column AS column [- interval]   -- at most once, anywhere
//	type          := word [word]... with at most one ( n [, n] )  -- kept as written
//	option        := key = ( 'string' | number | word )
//
//	create_view   := CREATE MATERIALIZED VIEW [IF NOT EXISTS] name AS select
//	select        := TiDB's SELECT, whose outermost GROUP BY may hold one window,
//	                 followed by trailing clauses in either order, each at most once,
//	                 outside all parentheses and after the query's FROM
//	window        := SESSION ( column , gap [, MAX interval] )    -- MAX > 0, >= a fixed gap
//	               | EVENT_WINDOW ( column , START WHEN expr , END WHEN expr
//	                                [, TIMEOUT interval] )        -- TIMEOUT > 0
//	gap           := interval                                     -- > 0
//	               | GAP expr                                     -- milliseconds, see below
//	trailing      := EMIT FINAL
//	               | EMIT EARLY EVERY interval                    -- > 0
//	               | EMIT EARLY EVERY n EVENTS                    -- n > 0
//	               | ALLOWED LATENESS interval                    -- >= 0
//	interval      := INTERVAL 'n' unit | INTERVAL n unit | INTERVAL 'n unit'
//	unit          := SECOND | MINUTE | HOUR | DAY, or their plurals; n a whole number
//	expr          := TiDB's expression, up to the first "," or ")" outside its
//	                 own parentheses
//	aggregate     := call FILTER ( WHERE expr )                   -- anywhere in the query
//	               | FIRST_VALUE ( ... ) | LAST_VALUE ( ... )     -- without OVER
//
//	drop          := DROP SOURCE [IF EXISTS] name
//	               | DROP MATERIALIZED VIEW [IF EXISTS] name
//	show          := SHOW SOURCES | SHOW MATERIALIZED VIEWS | SHOW setting
//	set           := SET [SESSION | LOCAL] setting ( = | TO ) value
//	               | SET TIME ZONE value | SET NAMES value
//	               | SET [SESSION] setting-of-several-words value
//	describe      := ( DESCRIBE | DESC ) name
//	explain       := EXPLAIN ( select | create_view )
//	txn           := BEGIN [WORK | TRANSACTION] [modes] | START TRANSACTION [modes]
//	               | ( COMMIT | END | ROLLBACK | ABORT ) [WORK | TRANSACTION]
//	insert        := TiDB's INSERT INTO name [( columns )] VALUES ( ... ) [, ( ... )]...
//
// A setting is a name, a dotted name, or one of TRANSACTION ISOLATION
// LEVEL, TIME ZONE, SESSION AUTHORIZATION (named transaction_isolation,
// timezone, session_authorization as in PostgreSQL). Any other statement
// is an error: FeatureNotSupported naming it when TiDB parses it (UPDATE,
// CREATE TABLE, ...), else TiDB's syntax error.
//
// A GAP expression's value is a gap in milliseconds: every interval
// literal in it is read as its number of milliseconds (INTERVAL '10'
// MINUTE as 600000; TiDB has no interval values), except the interval
// argument of DATE_ADD, DATE_SUB, ADDDATE and SUBDATE, which is TiDB's.
//
// FILTER (WHERE cond) is lifted when it directly follows the ")" of a
// call; the call must be an aggregate (Query.Filters maps it to cond).
// TiDB parses FIRST_VALUE and LAST_VALUE only as window functions: a call
// of them reaches TiDB renamed to first_valu_ / last_valu_ (same length)
// and comes back as an *ast.AggregateFuncExpr; with OVER it is refused.
//
// # PostgreSQL casts
//
// expr::type (cast.go) becomes the CAST(expr AS type) TiDB builds, for the
// engine's type of PostgreSQL's type name: SIGNED for the integer types,
// DOUBLE for the floating and numeric ones, CHAR for the character
// types, DATETIME for timestamp and timestamptz (a timestamptz literal
// with a zone other than UTC is refused: timestamp ignores the zone).
// Names may be qualified by pg_catalog, quoted, of several words (double
// precision, character varying, timestamp with time zone), with
// modifiers, which are dropped. A type PostgreSQL does not have is 42704
// `type "x" does not exist`; one the engine cannot cast to (boolean,
// date, json, ...) 0A000; both at the type's position, and only once the
// statement has no syntax error. "::" binds tighter than any operator:
// its operand is the literal, parameter, (qualified) name, call (with
// its FILTER), parenthesized expression, CASE ... END or cast right
// before it. The "::type" is blanked in the text TiDB parses and the cast
// is put back into TiDB's tree around the deepest expression node at the
// operand's offset, with that offset, so Pos reports the operand's
// position. A "::" whose operand TiDB made no expression of (SELECT
// ::int, ORDER BY 1::int) is a syntax error at the "::". In LIMIT, which
// takes no expression in TiDB's grammar, $n::int is $n. Format renders
// the CAST:
//
//	SELECT a + b::int, '2024-01-01'::timestamp FROM t
//
// is read by TiDB as
//
//	select a + b     , '2024-01-01'            from t
//
// and formats as SELECT "a"+CAST("b" AS SIGNED),CAST('2024-01-01' AS
// DATETIME) FROM "t".
//
// # Worked example of lifting
//
// The user sends:
//
//	CREATE MATERIALIZED VIEW s AS
//	SELECT user_id, COUNT(*) AS n
//	FROM plays WHERE device = $1
//	GROUP BY SESSION(ts, INTERVAL '30' MINUTE), user_id
//	EMIT EARLY EVERY 100 EVENTS;
//
// Our grammar reads the header up to AS. The query starts at SELECT, byte
// offset 30 (Query.Offset). EMIT ... at the end is parsed into Query.Emit
// (Pos 142); the window, the first GROUP BY item, into Query.Window (Pos
// 99) with the comma that follows it. TiDB then parses this text, where
// "·" marks a byte blanked to a space, words are folded to lower case, and
// the trailing clause and the final ";", after the last token TiDB sees,
// are cut off:
//
//	select·user_id,·count(*)·as·n
//	from·plays·where·device·=·?·
//	group·by····································user_id
//
// Params is {56: 1}: the "?" at byte 56 of that text is $1. An error TiDB
// reports at byte b of it is at byte 30+b of the statement. Format renders
// the statement as
//
//	CREATE MATERIALIZED VIEW s AS SELECT "user_id",COUNT(1) AS "n" FROM "plays"
//	WHERE "device"=$1 GROUP BY "user_id",SESSION(ts, INTERVAL '30' MINUTE)
//	EMIT EARLY EVERY 100 EVENTS
//
// (on one line). When the window is the only GROUP BY item, GROUP BY is
// blanked too; when it is not the first, the comma before it is.
//
// # Errors from TiDB
//
// TiDB reports `line L column C near "REST"`, REST being its input from
// the offending token to the end. The offending token's byte offset is
// len(text) - len(REST) (or len(text) - N when TiDB cuts REST and adds
// "(total length N)"); the column TiDB reports is the position after that
// token, so it is not used.
package sql
